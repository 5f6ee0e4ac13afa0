-- Reading by offset: pgq_fetch and pgq_offsets_for_time, up to the last
-- stable offset; rolled-back sends are gaps; prepared transactions hold
-- readers back.
SELECT pgq_create_topic('f', 2);
SELECT * FROM pgq_send_batch('f', ARRAY['r0', 'r1', 'r2', 'r3', 'r4'], partition => 0);

SELECT topic, partition, msg_offset, convert_from(value, 'UTF8') AS value FROM pgq_fetch('f', 0, 0);
SELECT msg_offset FROM pgq_fetch('f', 0, 2);
SELECT msg_offset FROM pgq_fetch('f', 0, 1, 2);
SELECT msg_offset FROM pgq_fetch('f', 0, 5);      -- at the end: nothing yet
SELECT msg_offset FROM pgq_fetch('f', 0, 500);    -- past the end: nothing
SELECT msg_offset FROM pgq_fetch('f', 1, 0);      -- empty partition

-- a rolled-back send leaves a gap that is never served
BEGIN;
SELECT * FROM pgq_send('f', 'rolled back', partition => 0);
ROLLBACK;
SELECT * FROM pgq_send('f', 'r6', partition => 0);
SELECT msg_offset, convert_from(value, 'UTF8') AS value FROM pgq_fetch('f', 0, 4);

-- a savepoint rolled back inside a committed transaction
BEGIN;
SELECT * FROM pgq_send('f', 'kept 1', partition => 0);
SAVEPOINT sp;
SELECT * FROM pgq_send('f', 'undone', partition => 0);
ROLLBACK TO SAVEPOINT sp;
SELECT * FROM pgq_send('f', 'kept 2', partition => 0);
COMMIT;
SELECT msg_offset, convert_from(value, 'UTF8') AS value FROM pgq_fetch('f', 0, 7);

-- a transaction does not read its own uncommitted records, nor past them
BEGIN;
SELECT * FROM pgq_send('f', 'mine', partition => 0);
SELECT count(*) AS visible_to_myself FROM pgq_fetch('f', 0, 10);
SELECT last_stable_offset, high_watermark FROM pgq_partitions WHERE topic = 'f' AND partition = 0;
COMMIT;
SELECT msg_offset, convert_from(value, 'UTF8') AS value FROM pgq_fetch('f', 0, 10);

-- a prepared transaction's records hold readers back until it ends
BEGIN;
SELECT * FROM pgq_send('f', 'prepared', partition => 1);
PREPARE TRANSACTION 'pgq_fetch_test';
SELECT * FROM pgq_send('f', 'after prepared', partition => 1);
SELECT count(*) AS readable FROM pgq_fetch('f', 1, 0);
SELECT high_watermark, last_stable_offset FROM pgq_partitions WHERE topic = 'f' AND partition = 1;
COMMIT PREPARED 'pgq_fetch_test';
SELECT msg_offset, convert_from(value, 'UTF8') AS value FROM pgq_fetch('f', 1, 0);
SELECT high_watermark, last_stable_offset FROM pgq_partitions WHERE topic = 'f' AND partition = 1;
BEGIN;
SELECT * FROM pgq_send('f', 'prepared, rolled back', partition => 1);
PREPARE TRANSACTION 'pgq_fetch_test2';
ROLLBACK PREPARED 'pgq_fetch_test2';
SELECT * FROM pgq_send('f', 'last', partition => 1);
SELECT msg_offset, convert_from(value, 'UTF8') AS value FROM pgq_fetch('f', 1, 2);

-- records larger than a page come back whole (TOAST)
SELECT msg_offset AS big_offset FROM pgq_send('f', repeat('big', 100000), partition => 1) \gset
SELECT md5(value) = md5(convert_to(repeat('big', 100000), 'UTF8')) AS same
  FROM pgq_fetch('f', 1, :big_offset, 1);

-- offsets for time: the first offset at or after a time, per partition
SELECT pgq_create_topic('times', 2);
SELECT * FROM pgq_send('times', 'a', partition => 0, "timestamp" => '2024-01-01 00:00+00');
SELECT * FROM pgq_send('times', 'b', partition => 0, "timestamp" => '2024-01-02 00:00+00');
SELECT * FROM pgq_send('times', 'c', partition => 0, "timestamp" => '2024-01-01 12:00+00');
SELECT * FROM pgq_send('times', 'd', partition => 0, "timestamp" => '2024-01-03 00:00+00');
SELECT * FROM pgq_offsets_for_time('times', '2023-12-31 00:00+00');
SELECT * FROM pgq_offsets_for_time('times', '2024-01-01 06:00+00');
SELECT * FROM pgq_offsets_for_time('times', '2024-01-02 00:00+00');
SELECT * FROM pgq_offsets_for_time('times', '2024-01-02 00:00:01+00');
SELECT * FROM pgq_offsets_for_time('times', '2025-01-01 00:00+00');
SELECT pgq_offsets_for_time('times', NULL);
SELECT pgq_offsets_for_time('nope', now());

-- bad input
SELECT pgq_fetch('f', 2, 0);
SELECT pgq_fetch('f', -1, 0);
SELECT pgq_fetch('f', 0, -1);
SELECT pgq_fetch('f', 0, 0, 0);
SELECT pgq_fetch('f', 0, 0, 10, -5);
SELECT pgq_fetch('f', NULL, 0);
SELECT pgq_fetch('f', 0, NULL);
SELECT pgq_fetch('f', 0, 0, NULL);
SELECT pgq_fetch(NULL, 0, 0);
SELECT pgq_fetch('nope', 0, 0);
-- with timeout_ms and nothing to read, the call waits that long and returns nothing
SELECT count(*) FROM pgq_fetch('f', 0, 1000, 10, 50);

-- the partitions view
SELECT topic, partition, log_start_offset, high_watermark, last_stable_offset, messages, bytes > 0 AS has_bytes
  FROM pgq_partitions WHERE topic IN ('f', 'times') ORDER BY 1, 2;
-- messages counts records, so f's gaps (rolled-back sends) do not
-- count; the next look counts on from where this one stopped
SELECT count(*) FROM pgq_send('f', 'r8', partition => 0);
BEGIN;
SELECT count(*) FROM pgq_send('f', 'rolled back', partition => 0);
ROLLBACK;
SELECT count(*) FROM pgq_send('f', 'r10', partition => 0);
SELECT p.messages, (SELECT count(*) FROM pgq_fetch('f', 0, 0, 1000)) AS fetched,
       p.last_stable_offset - p.log_start_offset AS offsets
  FROM pgq_partitions p WHERE topic = 'f' AND partition = 0;

SELECT pgq_drop_topic('f');
SELECT pgq_drop_topic('times');
