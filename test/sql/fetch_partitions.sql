-- Reading many partitions in one call (pgq_fetch_partitions) and waiting
-- for any of them (pgq_wait): records, per-partition bounds, the next
-- offset past gaps, per-partition errors, record and byte limits.
SELECT pgq_create_topic('fp', 3);
SELECT pgq_create_topic('fp.other', 1);
SELECT count(*) FROM pgq_send_batch('fp', ARRAY['a0', 'a1', 'a2'], partition => 0);
SELECT count(*) FROM pgq_send_batch('fp', ARRAY['b0', 'b1'], partition => 1);
SELECT count(*) FROM pgq_send_batch('fp.other', ARRAY['o0', 'o1', 'o2', 'o3'], partition => 0);
-- a rolled-back tail in partition 1: offset 2 is a gap
BEGIN;
SELECT * FROM pgq_send('fp', 'rolled back', partition => 1);
ROLLBACK;

-- per entry in input order: its records, then its partition row (msg_offset NULL)
SELECT topic, partition, msg_offset, convert_from(value, 'UTF8') AS value,
       log_start_offset, high_watermark, last_stable_offset, next_offset, error
  FROM pgq_fetch_partitions(ARRAY['fp', 'fp', 'fp', 'fp.other'], ARRAY[0, 1, 2, 0], ARRAY[1, 0, 0, 2]);

-- the record rows carry what pgq_fetch returns
SELECT f.topic, f.partition, f.msg_offset, f.key, f.value, f.headers, f."timestamp" IS NOT NULL AS has_ts
  FROM pgq_fetch_partitions(ARRAY['fp'], ARRAY[0], ARRAY[0]) f WHERE f.msg_offset IS NOT NULL
EXCEPT
SELECT g.topic, g.partition, g.msg_offset, g.key, g.value, g.headers, true FROM pgq_fetch('fp', 0, 0) g;

-- one topic applies to every partition
SELECT partition, count(msg_offset) AS records, max(next_offset) AS next_offset
  FROM pgq_fetch_partitions(ARRAY['fp'], ARRAY[0, 1, 2], ARRAY[0, 0, 0])
 GROUP BY partition ORDER BY partition;

-- caught up: no records, and next_offset = last_stable_offset (past the gap)
SELECT partition, msg_offset, last_stable_offset, next_offset
  FROM pgq_fetch_partitions(ARRAY['fp'], ARRAY[0, 1], ARRAY[3, 3]);

-- per-partition errors: 42704 unknown topic or partition, 22023 offset out
-- of range (below the log start, or past the high watermark); the others
-- are read as usual, and an out-of-range partition still gets its bounds
SELECT topic, partition, msg_offset, log_start_offset, high_watermark,
       last_stable_offset, next_offset, error
  FROM pgq_fetch_partitions(ARRAY['fp', 'no_such_topic', 'fp', 'fp', 'fp', 'fp', 'fp'],
                            ARRAY[0, 0, 3, -1, 0, 0, 1], ARRAY[2, 0, 0, 0, -1, 4, 3]);

-- limits: max_records for the whole call, shared in input order
SELECT partition, msg_offset, last_stable_offset, next_offset
  FROM pgq_fetch_partitions(ARRAY['fp'], ARRAY[0, 1], ARRAY[0, 0], max_records => 4);
-- per-partition record limits (NULL: none)
SELECT partition, msg_offset, last_stable_offset, next_offset
  FROM pgq_fetch_partitions(ARRAY['fp'], ARRAY[0, 1], ARRAY[0, 0],
                            partition_max_records => ARRAY[1, NULL]);
-- bytes (key + value + headers): records of 2 bytes; a record that does not
-- fit ends the partition's read before it
SELECT partition, msg_offset, last_stable_offset, next_offset
  FROM pgq_fetch_partitions(ARRAY['fp'], ARRAY[0, 1], ARRAY[0, 0], max_bytes => 5);
SELECT partition, msg_offset, last_stable_offset, next_offset
  FROM pgq_fetch_partitions(ARRAY['fp'], ARRAY[0, 1], ARRAY[0, 0],
                            partition_max_bytes => ARRAY[4, 3]);
-- KIP-74: the call's first record is served even if larger than the
-- limits; after it, the limits hold for the other partitions too
SELECT count(*) FROM pgq_send('fp', repeat('x', 100), key => 'k', headers => '{"h": "v"}', partition => 2);
SELECT partition, msg_offset, octet_length(value) AS bytes, last_stable_offset, next_offset
  FROM pgq_fetch_partitions(ARRAY['fp'], ARRAY[2, 0], ARRAY[0, 0], max_bytes => 10);
SELECT partition, msg_offset, last_stable_offset, next_offset
  FROM pgq_fetch_partitions(ARRAY['fp'], ARRAY[0, 2], ARRAY[0, 0], partition_max_bytes => ARRAY[10, 10]);

-- a pending record bounds the read: LSO = next_offset = its offset
BEGIN;
SELECT * FROM pgq_send('fp', 'mine', partition => 0);
SELECT * FROM pgq_send('fp', 'mine too', partition => 0);
SELECT partition, msg_offset, high_watermark, last_stable_offset, next_offset
  FROM pgq_fetch_partitions(ARRAY['fp'], ARRAY[0], ARRAY[2]);
-- asked from above a pending record: nothing, and the LSO below the offset
SELECT partition, msg_offset, high_watermark, last_stable_offset, next_offset
  FROM pgq_fetch_partitions(ARRAY['fp'], ARRAY[0], ARRAY[4]);
-- behind a pending record nothing is ready for a wait
SELECT * FROM pgq_wait(ARRAY['fp'], ARRAY[0], ARRAY[3]);
COMMIT;
SELECT partition, msg_offset, convert_from(value, 'UTF8') AS value, last_stable_offset, next_offset
  FROM pgq_fetch_partitions(ARRAY['fp'], ARRAY[0], ARRAY[3]);

-- pgq_wait: the entries a read would answer now (records, a gap to move
-- past, an error), numbered by their position in the arrays
SELECT * FROM pgq_wait(ARRAY['fp', 'fp', 'fp', 'fp.other', 'fp', 'nope', 'fp'],
                       ARRAY[0, 0, 1, 0, 1, 0, 9], ARRAY[4, 5, 2, 4, 3, 0, 0]);
-- nothing ready: waits for the timeout, then returns no rows
SELECT * FROM pgq_wait(ARRAY['fp', 'fp.other'], ARRAY[0, 0], ARRAY[5, 4], 50);
SELECT * FROM pgq_wait(ARRAY[]::text[], ARRAY[]::integer[], ARRAY[]::bigint[], 1000);

-- a read that waits (timeout_ms): with something to answer it reads at once;
-- with nothing, it waits for the timeout and answers the partition rows
SELECT partition, msg_offset, convert_from(value, 'UTF8') AS value, last_stable_offset, next_offset
  FROM pgq_fetch_partitions(ARRAY['fp'], ARRAY[0, 1], ARRAY[4, 3], timeout_ms => 60000);
SELECT partition, msg_offset, last_stable_offset, next_offset, error
  FROM pgq_fetch_partitions(ARRAY['fp', 'fp.other'], ARRAY[0, 0], ARRAY[5, 4], timeout_ms => 50);
-- an error is something to answer too
SELECT partition, msg_offset, error
  FROM pgq_fetch_partitions(ARRAY['fp', 'fp'], ARRAY[0, 7], ARRAY[5, 0], timeout_ms => 60000);
SELECT count(*) FROM pgq_fetch_partitions(ARRAY[]::text[], ARRAY[]::integer[], ARRAY[]::bigint[]);

-- bad calls fail as a whole
SELECT * FROM pgq_fetch_partitions(NULL, ARRAY[0], ARRAY[0]);
SELECT * FROM pgq_fetch_partitions(ARRAY['fp'], ARRAY[0, NULL], ARRAY[0, 0]);
SELECT * FROM pgq_fetch_partitions(ARRAY['fp', 'fp'], ARRAY[0, 1, 2], ARRAY[0, 0, 0]);
SELECT * FROM pgq_fetch_partitions(ARRAY['fp'], ARRAY[0, 1], ARRAY[0]);
SELECT * FROM pgq_fetch_partitions(ARRAY['fp'], ARRAY[[0, 1]], ARRAY[[0, 0]]);
SELECT * FROM pgq_fetch_partitions(ARRAY['fp'], ARRAY[0], ARRAY[0], max_records => 0);
SELECT * FROM pgq_fetch_partitions(ARRAY['fp'], ARRAY[0], ARRAY[0], max_bytes => -1);
SELECT * FROM pgq_fetch_partitions(ARRAY['fp'], ARRAY[0], ARRAY[0], partition_max_bytes => ARRAY[0]);
SELECT * FROM pgq_fetch_partitions(ARRAY['fp'], ARRAY[0], ARRAY[0], partition_max_records => ARRAY[1, 1]);
SELECT * FROM pgq_fetch_partitions(ARRAY['bad name'], ARRAY[0], ARRAY[0]);
SELECT * FROM pgq_fetch_partitions(ARRAY['fp'], ARRAY[0], ARRAY[0], timeout_ms => -1);
SELECT * FROM pgq_fetch_partitions(ARRAY['fp'], ARRAY[0], ARRAY[0], timeout_ms => NULL);
SELECT * FROM pgq_wait(ARRAY['fp'], ARRAY[0], ARRAY[0], -1);
SELECT * FROM pgq_wait(ARRAY['fp'], ARRAY[0], NULL);
SELECT * FROM pgq_wait(ARRAY['fp'], ARRAY[0], ARRAY[0], NULL);

-- rights: consume on every topic that exists, or the call fails
CREATE ROLE pgq_fp_reader;
SELECT pgq_grant('fp', 'pgq_fp_reader', 'consume');
SET ROLE pgq_fp_reader;
SELECT topic, partition, count(msg_offset) AS records, max(error) AS error
  FROM pgq_fetch_partitions(ARRAY['fp', 'fp', 'no_such_topic'], ARRAY[0, 1, 0], ARRAY[0, 0, 0])
 GROUP BY topic, partition ORDER BY topic, partition;
SELECT * FROM pgq_fetch_partitions(ARRAY['fp', 'fp.other'], ARRAY[0, 0], ARRAY[0, 0]);
SELECT * FROM pgq_wait(ARRAY['fp.other'], ARRAY[0], ARRAY[0]);
RESET ROLE;
SELECT pgq_revoke('fp', 'pgq_fp_reader', 'consume');
DROP ROLE pgq_fp_reader;

SELECT pgq_drop_topic('fp');
SELECT pgq_drop_topic('fp.other');
