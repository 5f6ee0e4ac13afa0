-- Committed offsets with metadata (Kafka's OffsetCommit metadata), read
-- back with pgq_committed_offsets and shown by pgq_consumer_lag; and commits
-- by a client that is not a member (Kafka's generation -1), accepted only
-- while the group has no live member on the topic.
\pset null '<null>'
SELECT pgq_create_topic('om', 3);
SELECT count(*) FROM generate_series(0, 2) p, generate_series(1, 5) i,
       LATERAL pgq_send('om', 'r' || i, partition => p);

-- nothing committed yet: -1 and NULL per partition, every partition by default
SELECT * FROM pgq_committed_offsets('gmeta', 'om');

-- a member commits with metadata; a commit without any stores NULL
SELECT partitions FROM pgq_sync_member('gmeta', 'om', 'k1', '{}');
SELECT * FROM pgq_commit('gmeta', 'om', 0, 2, 'k1', 'client-state: 7');
SELECT * FROM pgq_commit('gmeta', 'om', 1, 3, 'k1', metadata => '');
SELECT * FROM pgq_commit('gmeta', 'om', 2, 1, 'k1');
SELECT * FROM pgq_committed_offsets('gmeta', 'om');
-- the partitions asked for, in the order asked
SELECT * FROM pgq_committed_offsets('gmeta', 'om', '{2,0}');
SELECT * FROM pgq_committed_offsets('gmeta', 'om', '{}');
-- every commit sets it anew
SELECT * FROM pgq_commit('gmeta', 'om', 0, 4, 'k1');
SELECT * FROM pgq_commit('gmeta', 'om', 2, 2, 'k1', 'again');
SELECT * FROM pgq_committed_offsets('gmeta', 'om');
SELECT partition, committed_offset, metadata FROM pgq_consumer_lag
 WHERE group_id = 'gmeta' ORDER BY partition;
-- a rolled-back commit leaves the metadata as it was
BEGIN;
SELECT * FROM pgq_commit('gmeta', 'om', 2, 3, 'k1', 'rolled back');
ROLLBACK;
SELECT * FROM pgq_committed_offsets('gmeta', 'om', '{2}');
-- a member's positions (pgq_poll, pgq_commit(group_id, member_id)) commit no metadata
SELECT count(*) FROM pgq_leave('gmeta', 'k1');
SELECT count(*) FROM pgq_poll('gmeta', 'om', 1, 0, 'p1');
SELECT * FROM pgq_commit('gmeta', 'p1');
SELECT * FROM pgq_committed_offsets('gmeta', 'om');
SELECT count(*) FROM pgq_leave('gmeta', 'p1');

-- bad input
SELECT * FROM pgq_commit('gmeta', 'om', 0, 1, 'k1', repeat('x', 4097));
SELECT * FROM pgq_committed_offsets('gmeta', 'om', '{3}');
SELECT * FROM pgq_committed_offsets('gmeta', 'om', '{0,NULL}');
SELECT * FROM pgq_committed_offsets('gmeta', 'nosuch');
SELECT * FROM pgq_committed_offsets(NULL, 'om');
SELECT * FROM pgq_committed_offsets('', 'om');

-- a client that is not a member: its commit is accepted while the group
-- has no live member on the topic ...
SELECT * FROM pgq_commit('gsimple', 'om', 1, 4, 'standalone', 'simple consumer');
SELECT * FROM pgq_commit('gsimple', 'om', 2, 5);     -- the session, not a member either
SELECT * FROM pgq_committed_offsets('gsimple', 'om');
-- ... and a poll resumes from it
SELECT partition, msg_offset FROM pgq_poll('gsimple', 'om', 100, 0, 'p1') ORDER BY 1, 2;
-- while the group has a live member on the topic, it is refused and changes nothing
SELECT * FROM pgq_commit('gsimple', 'om', 1, 0, 'standalone');
SELECT * FROM pgq_committed_offsets('gsimple', 'om', '{1}');
-- a member that does not own the partition is fenced as before
SELECT partitions FROM pgq_sync_member('gsimple', 'om', 'k2');
SELECT * FROM pgq_commit('gsimple', 'om', 1, 0, 'k2');
SELECT count(*) FROM pgq_leave('gsimple', 'k2');
-- live members on another topic do not count
SELECT pgq_create_topic('om2', 1);
SELECT * FROM pgq_commit('gsimple', 'om2', 0, 0, 'standalone');
SELECT count(*) FROM pgq_leave('gsimple', 'p1');
-- once the group is empty, it is accepted again
SELECT * FROM pgq_commit('gsimple', 'om', 1, 0, 'standalone');

-- rights: reading committed offsets needs the right to consume the topic
CREATE ROLE meta_nobody;
SET ROLE meta_nobody;
SELECT * FROM pgq_committed_offsets('gmeta', 'om');
SELECT * FROM pgq_commit('gmeta', 'om', 0, 1, 'x', 'm');
RESET ROLE;
DROP ROLE meta_nobody;

-- it only reads: it works in a read-only transaction
BEGIN READ ONLY;
SELECT * FROM pgq_committed_offsets('gmeta', 'om', '{0}');
ROLLBACK;

SELECT pgq_drop_topic('om');
SELECT pgq_drop_topic('om2');
SELECT pgq_drop_group(group_id) FROM pgq_groups WHERE group_id IN ('gmeta', 'gsimple');
