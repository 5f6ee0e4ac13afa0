/* pgqueue--0.4.0.sql: install script.
 *
 * The SQL surface is thin: every function is a C function (or a view over
 * one), so the C code is the single source of truth for behaviour.  The
 * internal catalog lives in the schema "pgqueue"; the API (pgq_*) lives in
 * the schema the extension is created in (public by default), so that
 * SELECT pgq_send(...) works without qualification.
 */

\echo Use "CREATE EXTENSION pgqueue" to load this file. \quit

CREATE SCHEMA pgqueue;
COMMENT ON SCHEMA pgqueue IS 'pgqueue internal catalog and segment tables; use the pgq_* functions and views instead';
REVOKE ALL ON SCHEMA pgqueue FROM PUBLIC;

/*
 * Catalog.  Rows are written only by the pgq_* functions, running as the
 * extension owner; nobody else has any right on these tables.
 */
CREATE SEQUENCE pgqueue.topic_id_seq AS integer;

CREATE TABLE pgqueue.topic (
    topic_id    integer PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    partitions  integer NOT NULL CHECK (partitions > 0),
    config      jsonb NOT NULL DEFAULT '{}',   -- the keys set explicitly
    owner       regrole NOT NULL,          -- regrole/regclass: pg_dump writes names, not OIDs
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);

CREATE TABLE pgqueue.partition (
    topic_id          integer NOT NULL REFERENCES pgqueue.topic ON DELETE CASCADE,
    partition         integer NOT NULL,
    log_start_offset  bigint NOT NULL DEFAULT 0,
    -- a sequence whose value bounds every offset ever assigned (see send.c)
    offset_floor      regclass NOT NULL,
    PRIMARY KEY (topic_id, partition)
);

-- One row per segment table; a partition's log is its segments in base_offset order.
CREATE TABLE pgqueue.segment (
    topic_id     integer NOT NULL,
    partition    integer NOT NULL,
    segment_no   integer NOT NULL,
    base_offset  bigint NOT NULL,
    relid        regclass NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (topic_id, partition, segment_no),
    FOREIGN KEY (topic_id, partition) REFERENCES pgqueue.partition ON DELETE CASCADE
);

-- Per-topic rights granted with pgq_grant; grantee '-' (0) means PUBLIC.
CREATE TABLE pgqueue.topic_grant (
    topic_id   integer NOT NULL REFERENCES pgqueue.topic ON DELETE CASCADE,
    grantee    regrole NOT NULL,
    privilege  text NOT NULL CHECK (privilege IN ('produce', 'consume', 'admin')),
    PRIMARY KEY (topic_id, grantee, privilege)
);

-- Consumer groups: config and committed offsets are durable; membership,
-- leases and partition ownership live in shared memory (see src/group.c).
-- A group exists while it has a config row, committed offsets or live
-- members; polling creates no row, so that members never wait on each
-- other's uncommitted inserts.
CREATE TABLE pgqueue.consumer_group (
    group_id    text PRIMARY KEY,
    config      jsonb NOT NULL DEFAULT '{}',   -- the keys set explicitly
    created_at  timestamptz NOT NULL DEFAULT pg_catalog.now()
);

-- The committed offset of each (group, partition) the group has consumed.
-- Append-only: a commit deletes the newest version and inserts the next in
-- the same transaction, so every snapshot sees one row per partition, and
-- the newest is read from the end of the primary key, not by walking the
-- versions a held snapshot keeps, as an update in place would.  Written
-- directly by src/poll.c: no foreign key or trigger, and no index but the
-- primary key.  pgq_drop_topic deletes a topic's rows.
CREATE TABLE pgqueue.group_offset (
    group_id          text NOT NULL,
    topic_id          integer NOT NULL,
    partition         integer NOT NULL,
    version           bigint NOT NULL,       -- 1, 2, ... per partition
    committed_offset  bigint NOT NULL,       -- the next offset to process
    committed_at      timestamptz,
    metadata          text,                  -- the commit's (Kafka's OffsetCommit metadata)
    PRIMARY KEY (group_id, topic_id, partition, version)
);

/*
 * pg_dump dumps the rows of the catalog (and the segment tables, which are
 * not members of the extension, with their data); see README "Backups".
 */
/*
 * Shared memory may still hold partition and group state of an earlier
 * installation of the extension in this database (DROP EXTENSION cannot
 * clear it); topic ids start again at 1, so forget it.  Group state needs
 * this; partition state would not (each entry carries its partition's
 * incarnation, which a standby, where this never runs, checks too), but its
 * slots are freed at once.  See pgq_forget_shared_state.
 */
CREATE FUNCTION pgqueue.forget_shared_state() RETURNS void
    LANGUAGE C AS 'MODULE_PATHNAME', 'pgq_forget_shared_state';
SELECT pgqueue.forget_shared_state();
DROP FUNCTION pgqueue.forget_shared_state();

-- Idempotent producers (src/producer.c): ids come from the sequence; a
-- transactional id has a row with its producer id and current epoch.  The
-- sequence numbers travel with the records, in the segment tables.
CREATE SEQUENCE pgqueue.producer_id_seq AS bigint;

CREATE TABLE pgqueue.producer (
    transactional_id  text PRIMARY KEY,
    producer_id       bigint NOT NULL UNIQUE,
    producer_epoch    integer NOT NULL,
    owner             regrole NOT NULL,   -- who may raise the epoch: the first user, and roles with its rights
    updated_at        timestamptz NOT NULL DEFAULT pg_catalog.now()
);

SELECT pg_catalog.pg_extension_config_dump('pgqueue.topic', '');
SELECT pg_catalog.pg_extension_config_dump('pgqueue.topic_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('pgqueue.partition', '');
SELECT pg_catalog.pg_extension_config_dump('pgqueue.segment', '');
SELECT pg_catalog.pg_extension_config_dump('pgqueue.topic_grant', '');
SELECT pg_catalog.pg_extension_config_dump('pgqueue.consumer_group', '');
SELECT pg_catalog.pg_extension_config_dump('pgqueue.group_offset', '');
SELECT pg_catalog.pg_extension_config_dump('pgqueue.producer_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('pgqueue.producer', '');

/*
 * Topics
 */
CREATE FUNCTION pgq_create_topic(topic text, partitions integer DEFAULT 1,
                                 config jsonb DEFAULT '{}',
                                 if_not_exists boolean DEFAULT false)
RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_create_topic';
COMMENT ON FUNCTION pgq_create_topic(text, integer, jsonb, boolean) IS
'creates a topic with the given number of partitions and config overrides (Kafka key names)';
REVOKE EXECUTE ON FUNCTION pgq_create_topic(text, integer, jsonb, boolean) FROM PUBLIC;

CREATE FUNCTION pgq_drop_topic(topic text, if_exists boolean DEFAULT false)
RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_drop_topic';
COMMENT ON FUNCTION pgq_drop_topic(text, boolean) IS
'drops a topic with all its records (requires the admin right on the topic)';

CREATE FUNCTION pgq_add_partitions(topic text, partitions integer)
RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_add_partitions';
COMMENT ON FUNCTION pgq_add_partitions(text, integer) IS
'grows a topic to the given total number of partitions; partitions can only be added';

CREATE FUNCTION pgq_alter_topic(topic text, config jsonb)
RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_alter_topic';
COMMENT ON FUNCTION pgq_alter_topic(text, jsonb) IS
'sets topic config keys; a JSON null value removes a key (back to its default)';

CREATE FUNCTION pgq_grant(topic text, role text, privilege text)
RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_grant';
COMMENT ON FUNCTION pgq_grant(text, text, text) IS
'grants produce, consume, admin or all on a topic to a role (or public)';

CREATE FUNCTION pgq_revoke(topic text, role text, privilege text)
RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_revoke';
COMMENT ON FUNCTION pgq_revoke(text, text, text) IS
'revokes produce, consume, admin or all on a topic from a role (or public)';

CREATE FUNCTION pgqueue.effective_config(config jsonb)
RETURNS jsonb LANGUAGE c IMMUTABLE STRICT AS 'MODULE_PATHNAME', 'pgq_effective_config';
COMMENT ON FUNCTION pgqueue.effective_config(jsonb) IS
'a topic''s config overrides merged over the defaults';

CREATE VIEW pgq_topics AS
    SELECT t.name AS topic, t.partitions, pgqueue.effective_config(t.config) AS config,
           t.created_at
      FROM pgqueue.topic t;
COMMENT ON VIEW pgq_topics IS 'topics with their effective config';

CREATE VIEW pgq_topic_grants AS
    SELECT t.name AS topic,
           CASE WHEN g.grantee::pg_catalog.oid OPERATOR(pg_catalog.=) 0 THEN 'public'
                ELSE g.grantee::pg_catalog.text END AS grantee,
           g.privilege
      FROM pgqueue.topic_grant g
      JOIN pgqueue.topic t ON t.topic_id OPERATOR(pg_catalog.=) g.topic_id;
COMMENT ON VIEW pgq_topic_grants IS 'rights granted on topics with pgq_grant';

CREATE FUNCTION pgqueue.partitions_info(
    OUT topic text, OUT partition integer, OUT log_start_offset bigint,
    OUT high_watermark bigint, OUT last_stable_offset bigint,
    OUT messages bigint, OUT bytes bigint)
RETURNS SETOF record LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_partitions_info';
COMMENT ON FUNCTION pgqueue.partitions_info() IS 'backs the pgq_partitions view';

CREATE VIEW pgq_partitions AS SELECT * FROM pgqueue.partitions_info();
COMMENT ON VIEW pgq_partitions IS
'per partition: log start, high watermark (next offset), last stable offset (readers see below it), records in the readable log and bytes on disk';

/*
 * Producing.  Keys and values are of the types pgq_payload and pgq_payloads
 * (payload.c): text is stored as its UTF-8 bytes, bytea as it is; an untyped
 * argument (a literal, or a driver's parameter of OID 0) resolves to them,
 * because they are of the string category and the only other overloads take
 * jsonb, and text, varchar, json and bytea (and their arrays) are cast to
 * them implicitly.  So there is no text overload: an untyped parameter
 * would resolve to it (text is the string category's preferred type), and
 * text's binary input rejects the bytes of a node-postgres Buffer.  One C
 * function serves every overload; it reads the arguments by their types.
 */
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

CREATE FUNCTION pgq_init_producer(transactional_id text DEFAULT NULL)
RETURNS TABLE(producer_id bigint, producer_epoch integer)
LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_init_producer';
COMMENT ON FUNCTION pgq_init_producer(text) IS
'a producer id and epoch for idempotent sends: a new id, or for a transactional id its id and the next epoch, which fences the earlier ones';

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

CREATE FUNCTION pgq_murmur2(data bytea)
RETURNS integer LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'pgq_murmur2';
COMMENT ON FUNCTION pgq_murmur2(bytea) IS
'Kafka''s murmur2 hash (seed 0x9747b28c) of the bytes, as a signed 32-bit integer';

CREATE FUNCTION pgq_partition_for_key(key bytea, partitions integer)
RETURNS integer LANGUAGE c IMMUTABLE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'pgq_partition_for_key';
COMMENT ON FUNCTION pgq_partition_for_key(bytea, integer) IS
'the partition Kafka''s default partitioner picks for a key: (murmur2(key) & 0x7fffffff) % partitions';

/*
 * Reading without a group
 */
CREATE FUNCTION pgq_fetch(topic text, partition integer, msg_offset bigint,
                          max_records integer DEFAULT 100, timeout_ms integer DEFAULT 0)
RETURNS TABLE(topic text, partition integer, msg_offset bigint, key bytea,
              value bytea, headers jsonb, "timestamp" timestamptz)
LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_fetch';
COMMENT ON FUNCTION pgq_fetch(text, integer, bigint, integer, integer) IS
'reads committed records of one partition from an offset, never past the last stable offset';

CREATE FUNCTION pgq_offsets_for_time(topic text, "timestamp" timestamptz)
RETURNS TABLE(partition integer, msg_offset bigint)
LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_offsets_for_time';
COMMENT ON FUNCTION pgq_offsets_for_time(text, timestamptz) IS
'per partition, the first readable offset whose timestamp is at or after the given time (NULL if none)';

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

/*
 * Consuming in a group
 */
CREATE FUNCTION pgq_poll(group_id text, topic text, max_records integer DEFAULT 100,
                         timeout_ms integer DEFAULT 0, member_id text DEFAULT NULL)
RETURNS TABLE(topic text, partition integer, msg_offset bigint, key bytea,
              value bytea, headers jsonb, "timestamp" timestamptz)
LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_poll';
COMMENT ON FUNCTION pgq_poll(text, text, integer, integer, text) IS
'joins the group if needed, heartbeats, takes the member''s share of partitions and returns records from them';

CREATE FUNCTION pgq_commit(group_id text, member_id text DEFAULT NULL)
RETURNS TABLE(topic text, partition integer, msg_offset bigint)
LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_commit';
COMMENT ON FUNCTION pgq_commit(text, text) IS
'commits the member''s positions (what its polls returned) as the group''s committed offsets, and returns them';

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

CREATE FUNCTION pgq_heartbeat(group_id text, member_id text DEFAULT NULL)
RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_heartbeat';
COMMENT ON FUNCTION pgq_heartbeat(text, text) IS
'renews the member''s lease on every topic it consumes in the group';

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

CREATE FUNCTION pgq_sync_member(group_id text, topic text, member_id text DEFAULT NULL,
                                owned integer[] DEFAULT NULL, session_timeout_ms integer DEFAULT NULL)
RETURNS TABLE(partitions integer[], generation bigint)
LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_sync_member';
COMMENT ON FUNCTION pgq_sync_member(text, text, text, integer[], integer) IS
'joins or renews a member without reading records (for its own session timeout, if given), gives up the partitions it owns but does not list in owned (NULL: none), and returns its target assignment and the generation';

CREATE FUNCTION pgq_seek(group_id text, topic text, partition integer, msg_offset bigint,
                         member_id text DEFAULT NULL)
RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_seek';
CREATE FUNCTION pgq_seek(group_id text, topic text, to_position text, member_id text DEFAULT NULL)
RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_seek';
CREATE FUNCTION pgq_seek(group_id text, topic text, to_timestamp timestamptz,
                         member_id text DEFAULT NULL)
RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_seek';
COMMENT ON FUNCTION pgq_seek(text, text, integer, bigint, text) IS
'moves the member''s fetch position in one partition it owns';
COMMENT ON FUNCTION pgq_seek(text, text, text, text) IS
'moves the member''s fetch positions in the partitions it owns to ''earliest'' or ''latest''';
COMMENT ON FUNCTION pgq_seek(text, text, timestamptz, text) IS
'moves the member''s fetch positions in the partitions it owns to the first offset at or after a time';

CREATE FUNCTION pgq_reset_offsets(group_id text, topic text, partition integer, msg_offset bigint)
RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_reset_offsets';
CREATE FUNCTION pgq_reset_offsets(group_id text, topic text, to_position text)
RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_reset_offsets';
CREATE FUNCTION pgq_reset_offsets(group_id text, topic text, to_timestamp timestamptz)
RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_reset_offsets';
COMMENT ON FUNCTION pgq_reset_offsets(text, text, integer, bigint) IS
'admin: sets a group''s committed offset of one partition (no live member of the group may consume the topic)';
COMMENT ON FUNCTION pgq_reset_offsets(text, text, text) IS
'admin: sets a group''s committed offsets of a topic to ''earliest'' or ''latest''';
COMMENT ON FUNCTION pgq_reset_offsets(text, text, timestamptz) IS
'admin: sets a group''s committed offsets of a topic to the first offsets at or after a time';

CREATE FUNCTION pgq_alter_group(group_id text, config jsonb)
RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_alter_group';
COMMENT ON FUNCTION pgq_alter_group(text, jsonb) IS
'sets group config keys (creating the group if needed); a JSON null removes a key';

CREATE FUNCTION pgq_drop_group(group_id text, if_exists boolean DEFAULT false)
RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_drop_group';
COMMENT ON FUNCTION pgq_drop_group(text, boolean) IS
'drops a group and its committed offsets (it must have no live member)';

CREATE FUNCTION pgqueue.group_effective_config(config jsonb)
RETURNS jsonb LANGUAGE c IMMUTABLE STRICT AS 'MODULE_PATHNAME', 'pgq_group_effective_config';
COMMENT ON FUNCTION pgqueue.group_effective_config(jsonb) IS
'a group''s config overrides merged over the defaults';

CREATE FUNCTION pgqueue.members_info(
    OUT group_id text, OUT member_id text, OUT topic_id integer,
    OUT partitions integer[], OUT lease_expires_at timestamptz)
RETURNS SETOF record LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_members_info';
COMMENT ON FUNCTION pgqueue.members_info() IS 'backs the pgq_members view: live members, from shared memory';

CREATE VIEW pgq_members AS
    SELECT m.group_id, m.member_id, t.name AS topic, m.partitions, m.lease_expires_at
      FROM pgqueue.members_info() m
      JOIN pgqueue.topic t ON t.topic_id OPERATOR(pg_catalog.=) m.topic_id;
COMMENT ON VIEW pgq_members IS 'live group members per topic, the partitions they own and their lease expiry';

CREATE VIEW pgq_groups AS
    WITH ids AS (SELECT o.group_id FROM pgqueue.consumer_group o
                 UNION SELECT o.group_id FROM pgqueue.group_offset o
                        JOIN pgqueue.topic t ON t.topic_id OPERATOR(pg_catalog.=) o.topic_id
                 UNION SELECT m.group_id FROM pgqueue.members_info() m)
    SELECT i.group_id, pgqueue.group_effective_config(coalesce(g.config, '{}')) AS config,
           (SELECT pg_catalog.count(DISTINCT m.member_id) FROM pgqueue.members_info() m
             WHERE m.group_id OPERATOR(pg_catalog.=) i.group_id)::pg_catalog.int4 AS members
      FROM ids i
      LEFT JOIN pgqueue.consumer_group g ON g.group_id OPERATOR(pg_catalog.=) i.group_id;
COMMENT ON VIEW pgq_groups IS
'consumer groups (with a config, committed offsets or live members), their effective config and number of live members';

CREATE VIEW pgq_consumer_lag AS
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

REVOKE EXECUTE ON FUNCTION pgq_alter_group(text, jsonb) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION pgq_drop_group(text, boolean) FROM PUBLIC;

GRANT SELECT ON pgq_topics, pgq_partitions, pgq_topic_grants,
                pgq_members, pgq_groups, pgq_consumer_lag TO PUBLIC;

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
 * Authentication for pgqueue-kafka (gateway/auth.c), after pgbouncer's
 * auth_query: the gateway checks a Kafka client's SASL password against
 * the role's own password verifier, so there is no second user list, and
 * then runs the client's requests after SET ROLE to it.  The function
 * gives the verifier only of a role the gateway could SET ROLE to anyway
 * (its session user is a member of it), that may log in, is no
 * superuser and has not expired: so the DBA chooses the roles Kafka
 * clients may be by granting them to the gateway's login role, and EXECUTE
 * on this function is granted to that role alone.
 */
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
