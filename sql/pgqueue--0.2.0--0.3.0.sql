/* pgqueue--0.2.0--0.3.0.sql: update script.
 *
 * Every change of 0.3.0 to the SQL objects, in the order of the install
 * script (pgqueue--0.3.0.sql), which has the same objects.
 */

\echo Use "ALTER EXTENSION pgqueue UPDATE TO '0.3.0'" to load this file. \quit

/*
 * Monitoring: consumer lag in records and in time, readable by pg_monitor.
 * The function reads records (the first one each group has not consumed)
 * whatever the caller's rights on the topics, so only pg_monitor (and the
 * extension owner) may run it; see src/lag.c for what each column means.
 */
CREATE FUNCTION pgqueue.lag_info(
    OUT group_id text, OUT topic text, OUT partition integer,
    OUT committed_offset bigint, OUT committed_at timestamptz,
    OUT log_start_offset bigint, OUT high_watermark bigint, OUT last_stable_offset bigint,
    OUT lag bigint, OUT first_unconsumed_offset bigint,
    OUT first_unconsumed_timestamp timestamptz, OUT lag_ms bigint, OUT owner text)
RETURNS SETOF record LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_lag_info';
COMMENT ON FUNCTION pgqueue.lag_info() IS 'backs the pgq_lag view (granted to pg_monitor)';
REVOKE EXECUTE ON FUNCTION pgqueue.lag_info() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgqueue.lag_info() TO pg_monitor;

CREATE VIEW pgq_lag AS SELECT * FROM pgqueue.lag_info();
COMMENT ON VIEW pgq_lag IS
'for monitoring (pg_monitor): per group and partition, the committed offset, the log''s offsets, the lag in offsets and in time behind the first unconsumed record, and the owner';
REVOKE ALL ON pgq_lag FROM PUBLIC;
GRANT SELECT ON pgq_lag TO pg_monitor;
