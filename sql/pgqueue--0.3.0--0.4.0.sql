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

CREATE FUNCTION pgq_send_batch(topic text, "values" pgq_payloads, keys pgq_payloads DEFAULT NULL,
                               partition integer DEFAULT NULL, headers jsonb[] DEFAULT NULL,
                               producer_id bigint DEFAULT NULL, producer_epoch integer DEFAULT NULL,
                               sequence integer DEFAULT NULL)
RETURNS TABLE(partition integer, msg_offset bigint)
LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_send_batch';
CREATE FUNCTION pgq_send_batch(topic text, "values" jsonb[], keys pgq_payloads DEFAULT NULL,
                               partition integer DEFAULT NULL, headers jsonb[] DEFAULT NULL,
                               producer_id bigint DEFAULT NULL, producer_epoch integer DEFAULT NULL,
                               sequence integer DEFAULT NULL)
RETURNS TABLE(partition integer, msg_offset bigint)
LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_send_batch';
COMMENT ON FUNCTION pgq_send_batch(text, pgq_payloads, pgq_payloads, integer, jsonb[], bigint, integer, integer) IS
'appends many records in one call; returns (partition, offset) per record, in input order; with producer_id, producer_epoch and sequence (the first record''s), all go to one partition at consecutive offsets, and a retry appends nothing';
COMMENT ON FUNCTION pgq_send_batch(text, jsonb[], pgq_payloads, integer, jsonb[], bigint, integer, integer) IS
'appends many records with jsonb values in one call';

CREATE FUNCTION pgq_init_producer(transactional_id text DEFAULT NULL)
RETURNS TABLE(producer_id bigint, producer_epoch integer)
LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_init_producer';
COMMENT ON FUNCTION pgq_init_producer(text) IS
'a producer id and epoch for idempotent sends: a new id, or for a transactional id its id and the next epoch, which fences the earlier ones';

/*
 * Reading many partitions in one call, and waiting for any of them
 * (src/fetch.c, src/wait.c): pgq_fetch_partitions and pgq_wait.
 */
CREATE FUNCTION pgq_fetch_partitions(topics text[], partitions integer[], msg_offsets bigint[],
                                     max_records integer DEFAULT 100, max_bytes integer DEFAULT NULL,
                                     partition_max_records integer[] DEFAULT NULL,
                                     partition_max_bytes integer[] DEFAULT NULL)
RETURNS TABLE(topic text, partition integer, msg_offset bigint, key bytea,
              value bytea, headers jsonb, "timestamp" timestamptz,
              log_start_offset bigint, high_watermark bigint, last_stable_offset bigint,
              next_offset bigint, error text)
LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_fetch_partitions';
COMMENT ON FUNCTION pgq_fetch_partitions(text[], integer[], bigint[], integer, integer, integer[], integer[]) IS
'reads many partitions in one call: per partition its records, then a row (msg_offset NULL) with the log start, high watermark and last stable offset that bounded the read, where the next read continues, and an error code';

CREATE FUNCTION pgq_wait(topics text[], partitions integer[], msg_offsets bigint[],
                         timeout_ms integer DEFAULT 0)
RETURNS TABLE(entry integer, topic text, partition integer, msg_offset bigint)
LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_wait';
COMMENT ON FUNCTION pgq_wait(text[], integer[], bigint[], integer) IS
'waits until a read of one of the (topic, partition, offset) entries would answer (records, a gap to move past, or an error) or the timeout passes; returns the ready entries (entry = position in the arrays), no records';
