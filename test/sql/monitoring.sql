-- The pgq_lag view: lag in offsets and in time per group and partition,
-- offset gaps not counted as lag, an empty partition, a dropped topic, and
-- who may read it (pg_monitor, without any right on the topics).
SELECT pgq_create_topic('mon', 3);
-- partition 0: five records sent an hour ago
SELECT count(*) FROM generate_series(0, 4) i,
       LATERAL pgq_send('mon', 'r' || i, NULL::text, 0, NULL, now() - interval '1 hour');
-- partition 1: empty
-- partition 2: 0-2, a rolled-back send (3), 4, two rolled-back sends (5, 6)
SELECT count(*) FROM pgq_send_batch('mon', ARRAY['a', 'b', 'c'], partition => 2);
BEGIN; SELECT count(*) FROM pgq_send('mon', 'gone', NULL::text, 2); ROLLBACK;
SELECT msg_offset FROM pgq_send('mon', 'e', NULL::text, 2);
BEGIN; SELECT count(*) FROM pgq_send_batch('mon', ARRAY['gone', 'gone'], partition => 2); ROLLBACK;

-- g1: p0 at 2, p2 at 3 (just before the gap at 3 and the record at 4)
SELECT pgq_reset_offsets('g1', 'mon', 0, 2);
SELECT pgq_reset_offsets('g1', 'mon', 2, 3);
-- g2: p2 at 5: only gaps are left, so no lag
SELECT pgq_reset_offsets('g2', 'mon', 2, 5);
-- g3: a live member that has committed nothing: it owns every partition
SELECT count(*) FROM pgq_poll('g3', 'mon', 1, 0, 'm1');

SELECT group_id, partition, committed_offset, log_start_offset, high_watermark,
       last_stable_offset, lag, first_unconsumed_offset,
       CASE WHEN first_unconsumed_timestamp IS NULL THEN 'none'
            WHEN now() - first_unconsumed_timestamp BETWEEN interval '1 hour'
                                                       AND interval '1 hour 10 minutes' THEN 'an hour ago'
            WHEN now() - first_unconsumed_timestamp < interval '10 minutes' THEN 'recent'
       END AS first_unconsumed,
       CASE WHEN lag_ms = 0 THEN '0'
            WHEN lag_ms BETWEEN 3600000 AND 4200000 THEN 'an hour'
            WHEN lag_ms < 600000 THEN 'minutes'
       END AS lag_time,
       committed_at IS NOT NULL AS has_committed_at, owner
  FROM pgq_lag WHERE topic = 'mon' ORDER BY group_id, partition;

-- the same columns in the same order as the function
SELECT attname FROM pg_attribute WHERE attrelid = 'pgq_lag'::regclass AND attnum > 0 ORDER BY attnum;

-- the reader's own pending send holds back the last stable offset of the
-- empty partition; nothing is readable, so no lag
BEGIN;
SELECT msg_offset FROM pgq_send('mon', 'pending', NULL::text, 1);
SELECT partition, high_watermark, last_stable_offset, lag, first_unconsumed_offset
  FROM pgq_lag WHERE topic = 'mon' AND group_id = 'g3' AND partition = 1;
ROLLBACK;

-- a committed offset at the high watermark: caught up
SELECT pgq_reset_offsets('g2', 'mon', 0, 5);
SELECT partition, committed_offset, lag, lag_ms, first_unconsumed_offset
  FROM pgq_lag WHERE topic = 'mon' AND group_id = 'g2' ORDER BY partition;

-- who may read it: pg_monitor, without any right on the topic
CREATE ROLE mon_reader IN ROLE pg_monitor;
CREATE ROLE mon_plain;
SELECT has_table_privilege('mon_reader', 'pgq_lag', 'SELECT') AS monitor_view,
       has_function_privilege('mon_reader', 'pgqueue.lag_info()', 'EXECUTE') AS monitor_function,
       has_table_privilege('mon_plain', 'pgq_lag', 'SELECT') AS plain_view,
       has_function_privilege('mon_plain', 'pgqueue.lag_info()', 'EXECUTE') AS plain_function,
       has_function_privilege('public', 'pgqueue.lag_info()', 'EXECUTE') AS public_function;
SET ROLE mon_reader;
SELECT count(*) FROM pgq_fetch('mon', 0, 0);
SELECT group_id, partition, lag FROM pgq_lag WHERE topic = 'mon' ORDER BY group_id, partition;
RESET ROLE;
SET ROLE mon_plain;
SELECT count(*) FROM pgq_lag;
SELECT count(*) FROM pgqueue.lag_info();
RESET ROLE;
DROP ROLE mon_reader;
DROP ROLE mon_plain;

-- the metadata a commit carried (Kafka's OffsetCommit metadata), in both views
SELECT * FROM pgq_commit('g3', 'mon', 0, 1, 'm1', 'm1 was here');
SELECT group_id, partition, committed_offset, metadata IS NULL AS no_metadata, metadata
  FROM pgq_lag WHERE topic = 'mon' ORDER BY group_id, partition;
SELECT group_id, partition, committed_offset, metadata IS NULL AS no_metadata, metadata
  FROM pgq_consumer_lag WHERE topic = 'mon' ORDER BY group_id, partition;

-- a dropped topic's rows go with it
SELECT pgq_leave('g3', 'm1');
SELECT pgq_drop_topic('mon');
SELECT count(*) FROM pgq_lag WHERE topic = 'mon';
