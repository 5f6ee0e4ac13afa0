/* pgqueue--0.3.0--0.4.0.sql: update script.
 *
 * Every change of 0.4.0 to the SQL objects, in the order of the install
 * script (pgqueue--0.4.0.sql), which has the same objects.
 */

\echo Use "ALTER EXTENSION pgqueue UPDATE TO '0.4.0'" to load this file. \quit

/*
 * Idempotent producers (src/producer.c): producer ids, transactional ids
 * with their epochs, and the producer id, epoch and sequence of each
 * idempotent record in its segment table, with a partial index to find a
 * producer's newest records.  Adding the columns rewrites nothing; each
 * index is built by a scan of its segment, which finds no entries.
 */
CREATE SEQUENCE pgqueue.producer_id_seq AS bigint;

CREATE TABLE pgqueue.producer (
    transactional_id  text PRIMARY KEY,
    producer_id       bigint NOT NULL UNIQUE,
    producer_epoch    integer NOT NULL,
    owner             regrole NOT NULL,   -- who may raise the epoch: the first user, and roles with its rights
    updated_at        timestamptz NOT NULL DEFAULT pg_catalog.now()
);
SELECT pg_catalog.pg_extension_config_dump('pgqueue.producer_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('pgqueue.producer', '');

DO $$
DECLARE
    seg regclass;
BEGIN
    FOR seg IN SELECT relid FROM pgqueue.segment LOOP
        EXECUTE pg_catalog.format('ALTER TABLE %s ADD COLUMN producer_id bigint,'
                                  ' ADD COLUMN producer_epoch integer, ADD COLUMN sequence integer', seg);
        EXECUTE pg_catalog.format('CREATE INDEX %I ON %s (producer_id, producer_epoch, sequence)'
                                  ' WHERE producer_id IS NOT NULL',
                                  (SELECT c.relname OPERATOR(pg_catalog.||) '_producer'
                                     FROM pg_catalog.pg_class c
                                    WHERE c.oid OPERATOR(pg_catalog.=) seg), seg);
    END LOOP;
END
$$;

DROP FUNCTION pgq_send(text, pgq_payload, pgq_payload, integer, jsonb, timestamptz);
DROP FUNCTION pgq_send(text, jsonb, pgq_payload, integer, jsonb, timestamptz);
DROP FUNCTION pgq_send_batch(text, pgq_payloads, pgq_payloads, integer, jsonb[]);
DROP FUNCTION pgq_send_batch(text, jsonb[], pgq_payloads, integer, jsonb[]);

CREATE FUNCTION pgq_send(topic text, value pgq_payload, key pgq_payload DEFAULT NULL,
                         partition integer DEFAULT NULL, headers jsonb DEFAULT NULL,
                         "timestamp" timestamptz DEFAULT NULL,
                         producer_id bigint DEFAULT NULL, producer_epoch integer DEFAULT NULL,
                         sequence integer DEFAULT NULL)
RETURNS TABLE(partition integer, msg_offset bigint)
LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_send';
CREATE FUNCTION pgq_send(topic text, value jsonb, key pgq_payload DEFAULT NULL,
                         partition integer DEFAULT NULL, headers jsonb DEFAULT NULL,
                         "timestamp" timestamptz DEFAULT NULL,
                         producer_id bigint DEFAULT NULL, producer_epoch integer DEFAULT NULL,
                         sequence integer DEFAULT NULL)
RETURNS TABLE(partition integer, msg_offset bigint)
LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_send';
COMMENT ON FUNCTION pgq_send(text, pgq_payload, pgq_payload, integer, jsonb, timestamptz, bigint, integer, integer) IS
'appends one record (text stored as UTF-8, bytea as it is); returns its partition and offset (visible to readers when the transaction commits); with producer_id, producer_epoch and sequence, a retry appends nothing and returns the first attempt''s';
COMMENT ON FUNCTION pgq_send(text, jsonb, pgq_payload, integer, jsonb, timestamptz, bigint, integer, integer) IS
'appends one record with a jsonb value (stored as the UTF-8 bytes of its text form)';

CREATE FUNCTION pgq_init_producer(transactional_id text DEFAULT NULL)
RETURNS TABLE(producer_id bigint, producer_epoch integer)
LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_init_producer';
COMMENT ON FUNCTION pgq_init_producer(text) IS
'a producer id and epoch for idempotent sends: a new id, or for a transactional id its id and the next epoch, which fences the earlier ones';

/*
 * pgq_send_batch: per-record timestamps, contiguous offsets and the
 * idempotence arguments (dropped above); headers in the list form, and the functions that convert them (src/headers.c).  The
 * segment tables do not change: both header forms are stored in the
 * headers jsonb column.
 */
CREATE FUNCTION pgq_send_batch(topic text, "values" pgq_payloads, keys pgq_payloads DEFAULT NULL,
                               partition integer DEFAULT NULL, headers jsonb[] DEFAULT NULL,
                               timestamps timestamptz[] DEFAULT NULL,
                               producer_id bigint DEFAULT NULL, producer_epoch integer DEFAULT NULL,
                               sequence integer DEFAULT NULL)
RETURNS TABLE(partition integer, msg_offset bigint)
LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_send_batch';
CREATE FUNCTION pgq_send_batch(topic text, "values" jsonb[], keys pgq_payloads DEFAULT NULL,
                               partition integer DEFAULT NULL, headers jsonb[] DEFAULT NULL,
                               timestamps timestamptz[] DEFAULT NULL,
                               producer_id bigint DEFAULT NULL, producer_epoch integer DEFAULT NULL,
                               sequence integer DEFAULT NULL)
RETURNS TABLE(partition integer, msg_offset bigint)
LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_send_batch';
COMMENT ON FUNCTION pgq_send_batch(text, pgq_payloads, pgq_payloads, integer, jsonb[], timestamptz[], bigint, integer, integer) IS
'appends many records in one call, each partition''s at consecutive offsets; returns (partition, offset) per record, in input order; timestamps (a NULL one: now) are stored as given; with producer_id, producer_epoch and sequence (the first record''s), all go to one partition, and a retry appends nothing';
COMMENT ON FUNCTION pgq_send_batch(text, jsonb[], pgq_payloads, integer, jsonb[], timestamptz[], bigint, integer, integer) IS
'appends many records with jsonb values in one call';

/*
 * Headers (src/headers.c): a send takes a record's headers jsonb as an
 * object of string values or as a list [["key", value], ...] whose values
 * are strings, null or {"base64": "..."} (Kafka's headers: ordered, keys may
 * repeat, values are bytes); a list is stored in the object form whenever
 * that denotes the same list.  These convert either form; see
 * docs/headers.md.
 */
CREATE FUNCTION pgq_headers_to_kafka(headers jsonb)
RETURNS bytea LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'pgq_headers_to_kafka';
COMMENT ON FUNCTION pgq_headers_to_kafka(jsonb) IS
'a record''s headers (object or list form) in Kafka''s encoding of a record''s headers: a varint count, then per header its key and value (length -1: null)';

CREATE FUNCTION pgq_headers_from_kafka(data bytea)
RETURNS jsonb LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'pgq_headers_from_kafka';
COMMENT ON FUNCTION pgq_headers_from_kafka(bytea) IS
'Kafka''s encoding of a record''s headers as the headers jsonb pgqueue stores: the object form if it denotes the same list, else the list form';

CREATE FUNCTION pgq_headers_list(headers jsonb)
RETURNS TABLE(key text, value bytea) LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'pgq_headers_list';
COMMENT ON FUNCTION pgq_headers_list(jsonb) IS
'a record''s headers (object or list form) as rows in their order, each value as its bytes (NULL: a null value)';

/*
 * Group membership without records (src/poll.c, src/group.c): a member
 * joins, renews and gives up partitions without polling.
 */
CREATE FUNCTION pgq_sync_member(group_id text, topic text, member_id text DEFAULT NULL,
                                owned integer[] DEFAULT NULL, session_timeout_ms integer DEFAULT NULL)
RETURNS TABLE(partitions integer[], generation bigint)
LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_sync_member';
COMMENT ON FUNCTION pgq_sync_member(text, text, text, integer[], integer) IS
'joins or renews a member without reading records (for its own session timeout, if given), gives up the partitions it owns but does not list in owned (NULL: none), and returns its target assignment and the generation';

/*
 * Offset commits with metadata (src/commit.c, src/lag.c): committed offsets
 * carry the committer's metadata string (Kafka's OffsetCommit metadata);
 * pgq_commit of one offset takes it, pgq_committed_offsets reads it back,
 * and both lag views show it in a new last column.  Adding the column
 * rewrites nothing.  pgq_lag's function changes its result, so the view is
 * made again (with its grants).
 */
ALTER TABLE pgqueue.group_offset ADD COLUMN metadata text;

DROP FUNCTION pgq_commit(text, text, integer, bigint, text);
CREATE FUNCTION pgq_commit(group_id text, topic text, partition integer, msg_offset bigint,
                           member_id text DEFAULT NULL, metadata text DEFAULT NULL)
RETURNS TABLE(topic text, partition integer, msg_offset bigint)
LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_commit_offset';
COMMENT ON FUNCTION pgq_commit(text, text, integer, bigint, text, text) IS
'commits one offset (the next record to process) of a partition the member owns, or as a non-member of a group with no live member on the topic, with an optional metadata string, and returns it';

CREATE FUNCTION pgq_committed_offsets(group_id text, topic text, partitions integer[] DEFAULT NULL)
RETURNS TABLE(partition integer, msg_offset bigint, metadata text)
LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_committed_offsets';
COMMENT ON FUNCTION pgq_committed_offsets(text, text, integer[]) IS
'the group''s committed offset and its metadata per partition listed (NULL: every partition of the topic); -1 and NULL where none';

CREATE OR REPLACE VIEW pgq_consumer_lag AS
    WITH consumed AS (SELECT o.group_id, o.topic_id FROM pgqueue.group_offset o
                      UNION SELECT m.group_id, m.topic_id FROM pgqueue.members_info() m)
    SELECT c.group_id, p.topic, p.partition, o.committed_offset, p.high_watermark,
           p.high_watermark OPERATOR(pg_catalog.-)
               coalesce(o.committed_offset, p.log_start_offset) AS lag,
           (SELECT m.member_id FROM pgqueue.members_info() m
             WHERE m.group_id OPERATOR(pg_catalog.=) c.group_id
               AND m.topic_id OPERATOR(pg_catalog.=) c.topic_id
               AND p.partition OPERATOR(pg_catalog.=) ANY (m.partitions)) AS owner,
           o.metadata
      FROM consumed c
      JOIN pgqueue.topic t ON t.topic_id OPERATOR(pg_catalog.=) c.topic_id
      JOIN pgq_partitions p ON p.topic OPERATOR(pg_catalog.=) t.name
      LEFT JOIN pgqueue.group_offset o
             ON o.group_id OPERATOR(pg_catalog.=) c.group_id
            AND o.topic_id OPERATOR(pg_catalog.=) c.topic_id
            AND o.partition OPERATOR(pg_catalog.=) p.partition;
COMMENT ON VIEW pgq_consumer_lag IS
'per group and partition of the topics it consumes: committed offset (NULL: none yet), high watermark, lag (from the log start if nothing is committed), owner and the committed offset''s metadata';

DROP VIEW pgq_lag;
DROP FUNCTION pgqueue.lag_info();
CREATE FUNCTION pgqueue.lag_info(
    OUT group_id text, OUT topic text, OUT partition integer,
    OUT committed_offset bigint, OUT committed_at timestamptz,
    OUT log_start_offset bigint, OUT high_watermark bigint, OUT last_stable_offset bigint,
    OUT lag bigint, OUT first_unconsumed_offset bigint,
    OUT first_unconsumed_timestamp timestamptz, OUT lag_ms bigint, OUT owner text,
    OUT metadata text)
RETURNS SETOF record LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_lag_info';
COMMENT ON FUNCTION pgqueue.lag_info() IS 'backs the pgq_lag view (granted to pg_monitor)';
REVOKE EXECUTE ON FUNCTION pgqueue.lag_info() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgqueue.lag_info() TO pg_monitor;

CREATE VIEW pgq_lag AS SELECT * FROM pgqueue.lag_info();
COMMENT ON VIEW pgq_lag IS
'for monitoring (pg_monitor): per group and partition, the committed offset, the log''s offsets, the lag in offsets and in time behind the first unconsumed record, the owner, and the committed offset''s metadata';
REVOKE ALL ON pgq_lag FROM PUBLIC;
GRANT SELECT ON pgq_lag TO pg_monitor;

/*
 * Reading many partitions in one call, and waiting for any of them
 * (src/fetch.c, src/wait.c): pgq_fetch_partitions and pgq_wait.
 */
CREATE FUNCTION pgq_fetch_partitions(topics text[], partitions integer[], msg_offsets bigint[],
                                     max_records integer DEFAULT 100, max_bytes integer DEFAULT NULL,
                                     partition_max_records integer[] DEFAULT NULL,
                                     partition_max_bytes integer[] DEFAULT NULL,
                                     timeout_ms integer DEFAULT 0)
RETURNS TABLE(topic text, partition integer, msg_offset bigint, key bytea,
              value bytea, headers jsonb, "timestamp" timestamptz,
              log_start_offset bigint, high_watermark bigint, last_stable_offset bigint,
              next_offset bigint, error text)
LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_fetch_partitions';
COMMENT ON FUNCTION pgq_fetch_partitions(text[], integer[], bigint[], integer, integer, integer[], integer[], integer) IS
'reads many partitions in one call: per partition its records, then a row (msg_offset NULL) with the log start, high watermark and last stable offset that bounded the read, where the next read continues, and an error code; with timeout_ms > 0 it first waits, as pgq_wait does, until one of them has something to answer';

CREATE FUNCTION pgq_wait(topics text[], partitions integer[], msg_offsets bigint[],
                         timeout_ms integer DEFAULT 0)
RETURNS TABLE(entry integer, topic text, partition integer, msg_offset bigint)
LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_wait';
COMMENT ON FUNCTION pgq_wait(text[], integer[], bigint[], integer) IS
'waits until a read of one of the (topic, partition, offset) entries would answer (records, a gap to move past, or an error) or the timeout passes; returns the ready entries (entry = position in the arrays), no records';

/* pgq_gateway_auth: the Kafka gateway's SASL passwords (docs/gateway.md). */
CREATE FUNCTION pgq_gateway_auth(role_name text)
RETURNS text
LANGUAGE sql STABLE STRICT SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
SELECT a.rolpassword
  FROM pg_catalog.pg_authid a
 WHERE a.rolname OPERATOR(pg_catalog.=) $1::pg_catalog.name
   AND a.rolcanlogin
   AND NOT a.rolsuper
   AND (a.rolvaliduntil IS NULL OR a.rolvaliduntil OPERATOR(pg_catalog.>) pg_catalog.now())
   AND pg_catalog.pg_has_role(session_user, a.oid, 'MEMBER')
$$;
COMMENT ON FUNCTION pgq_gateway_auth(text) IS
'for pgqueue-kafka: the password verifier (SCRAM-SHA-256 or md5) of a role that can log in, is no superuser, has not expired and is granted to the session user; else NULL';
REVOKE EXECUTE ON FUNCTION pgq_gateway_auth(text) FROM PUBLIC;
