/* pgqueue--0.2.0--0.3.0.sql: update script.
 *
 * Every change of 0.3.0 to the SQL objects, in the order of the install
 * script (pgqueue--0.3.0.sql), which has the same objects.
 */

\echo Use "ALTER EXTENSION pgqueue UPDATE TO '0.3.0'" to load this file. \quit

/*
 * Producing: keys and values of the types pgq_payload and pgq_payloads
 * instead of the text, bytea and mixed overloads, so that what typed
 * drivers send untyped resolves without casts (see the install script and
 * payload.c).  A view or a BEGIN ATOMIC function that calls an old overload
 * depends on it and stops the update: drop it first and create it again
 * after.
 */
DROP FUNCTION pgq_send(text, bytea, bytea, integer, jsonb, timestamptz);
DROP FUNCTION pgq_send(text, text, text, integer, jsonb, timestamptz);
DROP FUNCTION pgq_send(text, jsonb, text, integer, jsonb, timestamptz);
DROP FUNCTION pgq_send(text, bytea, text, integer, jsonb, timestamptz);
DROP FUNCTION pgq_send(text, text, bytea, integer, jsonb, timestamptz);
DROP FUNCTION pgq_send(text, jsonb, bytea, integer, jsonb, timestamptz);
DROP FUNCTION pgq_send_batch(text, bytea[], bytea[], integer, jsonb[]);
DROP FUNCTION pgq_send_batch(text, text[], text[], integer, jsonb[]);
DROP FUNCTION pgq_send_batch(text, jsonb[], text[], integer, jsonb[]);
DROP FUNCTION pgq_send_batch(text, bytea[], text[], integer, jsonb[]);
DROP FUNCTION pgq_send_batch(text, text[], bytea[], integer, jsonb[]);

CREATE TYPE pgq_payload;
CREATE FUNCTION pgqueue.payload_in(cstring) RETURNS pgq_payload
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgq_payload_in';
CREATE FUNCTION pgqueue.payload_out(pgq_payload) RETURNS cstring
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgq_payload_out';
CREATE FUNCTION pgqueue.payload_recv(internal) RETURNS pgq_payload
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgq_payload_recv';
CREATE FUNCTION pgqueue.payload_send(pgq_payload) RETURNS bytea
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgq_payload_send';
CREATE TYPE pgq_payload (
    INPUT = pgqueue.payload_in, OUTPUT = pgqueue.payload_out,
    RECEIVE = pgqueue.payload_recv, SEND = pgqueue.payload_send,
    INTERNALLENGTH = VARIABLE, ALIGNMENT = int4, STORAGE = extended,
    CATEGORY = 'S');
COMMENT ON FUNCTION pgqueue.payload_in(cstring) IS 'pgq_payload''s text input: the string as text, its UTF-8 bytes';
COMMENT ON FUNCTION pgqueue.payload_out(pgq_payload) IS 'pgq_payload''s text output: text as text, other bytes in hex';
COMMENT ON FUNCTION pgqueue.payload_recv(internal) IS 'pgq_payload''s binary input: the bytes as they are';
COMMENT ON FUNCTION pgqueue.payload_send(pgq_payload) IS 'pgq_payload''s binary output: the bytes';
COMMENT ON TYPE pgq_payload IS
'a key or value for pgq_send: text (stored as UTF-8) or bytes; an untyped argument in text format is text, in binary format bytes';

CREATE FUNCTION pgqueue.payload_from_text(text) RETURNS pgq_payload
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgq_payload_from_text';
CREATE FUNCTION pgqueue.payload_from_json(json) RETURNS pgq_payload
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgq_payload_from_text';
COMMENT ON FUNCTION pgqueue.payload_from_text(text) IS 'the cast of text and varchar to pgq_payload: their UTF-8 bytes';
COMMENT ON FUNCTION pgqueue.payload_from_json(json) IS 'the cast of json to pgq_payload: the UTF-8 bytes of its text';
CREATE CAST (text AS pgq_payload) WITH FUNCTION pgqueue.payload_from_text(text) AS IMPLICIT;
CREATE CAST (varchar AS pgq_payload) WITH FUNCTION pgqueue.payload_from_text(text) AS IMPLICIT;
CREATE CAST (json AS pgq_payload) WITH FUNCTION pgqueue.payload_from_json(json) AS IMPLICIT;
CREATE CAST (bytea AS pgq_payload) WITHOUT FUNCTION AS IMPLICIT;

CREATE TYPE pgq_payloads;
CREATE FUNCTION pgqueue.payloads_in(cstring) RETURNS pgq_payloads
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgq_payloads_in';
CREATE FUNCTION pgqueue.payloads_out(pgq_payloads) RETURNS cstring
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgq_payloads_out';
CREATE FUNCTION pgqueue.payloads_recv(internal) RETURNS pgq_payloads
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgq_payloads_recv';
CREATE FUNCTION pgqueue.payloads_send(pgq_payloads) RETURNS bytea
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgq_payloads_send';
CREATE TYPE pgq_payloads (
    INPUT = pgqueue.payloads_in, OUTPUT = pgqueue.payloads_out,
    RECEIVE = pgqueue.payloads_recv, SEND = pgqueue.payloads_send,
    INTERNALLENGTH = VARIABLE, ALIGNMENT = int4, STORAGE = extended,
    CATEGORY = 'S');
COMMENT ON FUNCTION pgqueue.payloads_in(cstring) IS 'pgq_payloads''s text input: an array literal whose unquoted \\x<hex> elements are bytes';
COMMENT ON FUNCTION pgqueue.payloads_out(pgq_payloads) IS 'pgq_payloads''s text output: text quoted, other bytes unquoted in hex';
COMMENT ON FUNCTION pgqueue.payloads_recv(internal) IS 'pgq_payloads''s binary input: an array of bytea, text, varchar or json';
COMMENT ON FUNCTION pgqueue.payloads_send(pgq_payloads) IS 'pgq_payloads''s binary output: an array';
COMMENT ON TYPE pgq_payloads IS
'keys or values for pgq_send_batch: an array of text and bytes; in an untyped array literal an unquoted element \\x<hex> is bytes, every other element text';

CREATE FUNCTION pgqueue.payloads_from_text(text[]) RETURNS pgq_payloads
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgq_payloads_from_array';
CREATE FUNCTION pgqueue.payloads_from_varchar(varchar[]) RETURNS pgq_payloads
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgq_payloads_from_array';
CREATE FUNCTION pgqueue.payloads_from_json(json[]) RETURNS pgq_payloads
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgq_payloads_from_array';
CREATE FUNCTION pgqueue.payloads_from_bytea(bytea[]) RETURNS pgq_payloads
LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE AS 'MODULE_PATHNAME', 'pgq_payloads_from_array';
COMMENT ON FUNCTION pgqueue.payloads_from_text(text[]) IS 'the cast of text[] to pgq_payloads';
COMMENT ON FUNCTION pgqueue.payloads_from_varchar(varchar[]) IS 'the cast of varchar[] to pgq_payloads';
COMMENT ON FUNCTION pgqueue.payloads_from_json(json[]) IS 'the cast of json[] to pgq_payloads';
COMMENT ON FUNCTION pgqueue.payloads_from_bytea(bytea[]) IS 'the cast of bytea[] to pgq_payloads';
CREATE CAST (text[] AS pgq_payloads) WITH FUNCTION pgqueue.payloads_from_text(text[]) AS IMPLICIT;
CREATE CAST (varchar[] AS pgq_payloads) WITH FUNCTION pgqueue.payloads_from_varchar(varchar[]) AS IMPLICIT;
CREATE CAST (json[] AS pgq_payloads) WITH FUNCTION pgqueue.payloads_from_json(json[]) AS IMPLICIT;
CREATE CAST (bytea[] AS pgq_payloads) WITH FUNCTION pgqueue.payloads_from_bytea(bytea[]) AS IMPLICIT;

CREATE FUNCTION pgq_send(topic text, value pgq_payload, key pgq_payload DEFAULT NULL,
                         partition integer DEFAULT NULL, headers jsonb DEFAULT NULL,
                         "timestamp" timestamptz DEFAULT NULL)
RETURNS TABLE(partition integer, msg_offset bigint)
LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_send';
CREATE FUNCTION pgq_send(topic text, value jsonb, key pgq_payload DEFAULT NULL,
                         partition integer DEFAULT NULL, headers jsonb DEFAULT NULL,
                         "timestamp" timestamptz DEFAULT NULL)
RETURNS TABLE(partition integer, msg_offset bigint)
LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_send';
COMMENT ON FUNCTION pgq_send(text, pgq_payload, pgq_payload, integer, jsonb, timestamptz) IS
'appends one record (text stored as UTF-8, bytea as it is); returns its partition and offset (visible to readers when the transaction commits)';
COMMENT ON FUNCTION pgq_send(text, jsonb, pgq_payload, integer, jsonb, timestamptz) IS
'appends one record with a jsonb value (stored as the UTF-8 bytes of its text form)';

CREATE FUNCTION pgq_send_batch(topic text, "values" pgq_payloads, keys pgq_payloads DEFAULT NULL,
                               partition integer DEFAULT NULL, headers jsonb[] DEFAULT NULL)
RETURNS TABLE(partition integer, msg_offset bigint)
LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_send_batch';
CREATE FUNCTION pgq_send_batch(topic text, "values" jsonb[], keys pgq_payloads DEFAULT NULL,
                               partition integer DEFAULT NULL, headers jsonb[] DEFAULT NULL)
RETURNS TABLE(partition integer, msg_offset bigint)
LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_send_batch';
COMMENT ON FUNCTION pgq_send_batch(text, pgq_payloads, pgq_payloads, integer, jsonb[]) IS
'appends many records in one call; returns (partition, offset) per record, in input order';
COMMENT ON FUNCTION pgq_send_batch(text, jsonb[], pgq_payloads, integer, jsonb[]) IS
'appends many records with jsonb values in one call';

/*
 * Consuming in a group: pgq_commit and pgq_leave return what they
 * committed (a return type cannot be changed in place); pgq_join;
 * pgq_assignment.
 */
DROP FUNCTION pgq_commit(text, text);
DROP FUNCTION pgq_commit(text, text, integer, bigint, text);
DROP FUNCTION pgq_leave(text, text);

CREATE FUNCTION pgq_commit(group_id text, member_id text DEFAULT NULL)
RETURNS TABLE(topic text, partition integer, msg_offset bigint)
LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_commit';
COMMENT ON FUNCTION pgq_commit(text, text) IS
'commits the member''s positions (what its polls returned) as the group''s committed offsets, and returns them';

CREATE FUNCTION pgq_commit(group_id text, topic text, partition integer, msg_offset bigint,
                           member_id text DEFAULT NULL)
RETURNS TABLE(topic text, partition integer, msg_offset bigint)
LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_commit_offset';
COMMENT ON FUNCTION pgq_commit(text, text, integer, bigint, text) IS
'commits one offset (the next record to process) of a partition the member owns, and returns it';

CREATE FUNCTION pgq_leave(group_id text, member_id text DEFAULT NULL)
RETURNS TABLE(topic text, partition integer, msg_offset bigint)
LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_leave';
COMMENT ON FUNCTION pgq_leave(text, text) IS
'leaves the group (with auto-commit, committing the member''s positions first, which it returns): the member''s partitions are handed over at once';

CREATE FUNCTION pgq_join(group_id text, member_id text DEFAULT NULL)
RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_join';
COMMENT ON FUNCTION pgq_join(text, text) IS
'starts a new process of the member: forgets the positions an earlier one left uncommitted, so that it reads on from the committed offsets';

CREATE FUNCTION pgq_assignment(group_id text, topic text, member_id text DEFAULT NULL)
RETURNS TABLE(partitions integer[], generation bigint)
LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_assignment';
COMMENT ON FUNCTION pgq_assignment(text, text, text) IS
'the partitions the member owns in the topic now, and the generation of the group''s assignment, which changes whenever the assignment does';

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

-- messages counts the records in the readable log (gaps no longer count)
COMMENT ON VIEW pgq_partitions IS
'per partition: log start, high watermark (next offset), last stable offset (readers see below it), records in the readable log and bytes on disk';
