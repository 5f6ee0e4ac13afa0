-- Consumer groups: joining, balanced sticky assignment, positions and the
-- three commit modes, fencing, seek and reset, config, views.
SELECT pgq_create_topic('gt', 4);
SELECT count(*) FROM generate_series(0, 3) p, generate_series(1, 5) i,
       LATERAL pgq_send('gt', 'p' || p || '-' || i, partition => p);

-- the first poll joins: a lone member owns every partition and reads them
-- fairly (max_records is shared among the partitions)
SELECT partition, count(*) FROM pgq_poll('g', 'gt', 8, 0, 'a') GROUP BY 1 ORDER BY 1;
SELECT member_id, topic, partitions FROM pgq_members;
-- auto-commit (the default): the next poll commits what the previous one returned
SELECT partition, committed_offset FROM pgq_consumer_lag WHERE group_id = 'g' ORDER BY 1;
SELECT count(*) FROM pgq_poll('g', 'gt', 100, 0, 'a');
SELECT partition, committed_offset, high_watermark, lag, owner
  FROM pgq_consumer_lag WHERE group_id = 'g' ORDER BY 1;
SELECT count(*) FROM pgq_poll('g', 'gt', 100, 0, 'a');   -- nothing new
SELECT partition, committed_offset, lag FROM pgq_consumer_lag WHERE group_id = 'g' ORDER BY 1;

-- a second member joins: cooperative rebalancing, only what must move moves
SELECT count(*) FROM pgq_poll('g', 'gt', 100, 0, 'b');   -- b must wait for a to release
SELECT member_id, partitions FROM pgq_members ORDER BY 1;
SELECT count(*) FROM pgq_poll('g', 'gt', 100, 0, 'a');   -- a releases its share
SELECT count(*) FROM pgq_poll('g', 'gt', 100, 0, 'b');   -- b claims it
SELECT member_id, partitions FROM pgq_members ORDER BY 1;
-- a third: 4 partitions over 3 members is 2 + 1 + 1, and a keeps two
SELECT count(*) FROM pgq_poll('g', 'gt', 100, 0, 'c');
SELECT count(*) FROM pgq_poll('g', 'gt', 100, 0, 'a');
SELECT count(*) FROM pgq_poll('g', 'gt', 100, 0, 'b');
SELECT count(*) FROM pgq_poll('g', 'gt', 100, 0, 'c');
SELECT member_id, partitions FROM pgq_members ORDER BY 1;
SELECT members FROM pgq_groups WHERE group_id = 'g';

-- records sent now go to their owners; each partition's records in order
SELECT count(*) FROM generate_series(0, 3) p, LATERAL pgq_send('gt', 'new-' || p, partition => p);
SELECT partition, msg_offset, convert_from(value, 'UTF8') AS value FROM pgq_poll('g', 'gt', 100, 0, 'b');
SELECT partition, msg_offset, convert_from(value, 'UTF8') AS value FROM pgq_poll('g', 'gt', 100, 0, 'c');
SELECT partition, msg_offset, convert_from(value, 'UTF8') AS value FROM pgq_poll('g', 'gt', 100, 0, 'a');

-- leaving hands the partitions over at once (after committing, with auto-commit)
SELECT pgq_leave('g', 'c');
SELECT count(*) FROM pgq_poll('g', 'gt', 100, 0, 'b');
SELECT member_id, partitions FROM pgq_members ORDER BY 1;
SELECT partition, committed_offset, lag FROM pgq_consumer_lag WHERE group_id = 'g' ORDER BY 1;

-- fencing: a commit for a partition the member does not own fails and changes nothing
SELECT pgq_commit('g', 'gt', 3, 1, 'a');
SELECT pgq_commit('g', 'gt', 0, 1, 'nobody');
SELECT pgq_commit('g', 'gt', 0, 3, 'a');     -- a owns 0: fine (rewinds the committed offset)
SELECT partition, committed_offset FROM pgq_consumer_lag WHERE group_id = 'g' AND partition = 0;
SELECT pgq_commit('g', 'gt', 0, 6, 'a');

-- manual commits
SELECT pgq_create_topic('gm', 1);
SELECT pgq_alter_group('gmanual', '{"enable.auto.commit": false}');
SELECT count(*) FROM generate_series(1, 6) i, LATERAL pgq_send('gm', 'm' || i);
SELECT msg_offset FROM pgq_poll('gmanual', 'gm', 2, 0, 'x');
SELECT msg_offset FROM pgq_poll('gmanual', 'gm', 2, 0, 'x');
SELECT committed_offset FROM pgq_consumer_lag WHERE group_id = 'gmanual';   -- nothing committed
SELECT pgq_commit('gmanual', 'x');
SELECT committed_offset FROM pgq_consumer_lag WHERE group_id = 'gmanual';
-- a new session of the member (here: leave and come back) resumes from the
-- committed offset: what was polled but not committed is delivered again
SELECT msg_offset FROM pgq_poll('gmanual', 'gm', 1, 0, 'x');
SELECT pgq_leave('gmanual', 'x');
SELECT msg_offset FROM pgq_poll('gmanual', 'gm', 10, 0, 'x');
SELECT pgq_commit('gmanual', 'x');

-- transactional: poll, process and commit in one transaction, all or nothing
SELECT count(*) FROM generate_series(1, 3) i, LATERAL pgq_send('gm', 't' || i);
CREATE TABLE processed (v text);
BEGIN;
INSERT INTO processed SELECT convert_from(value, 'UTF8') FROM pgq_poll('gmanual', 'gm', 10, 0, 'x');
SELECT pgq_commit('gmanual', 'x');
ROLLBACK;
SELECT count(*) FROM processed;
SELECT committed_offset FROM pgq_consumer_lag WHERE group_id = 'gmanual';
-- the rollback moved the position back too: the same records come again
BEGIN;
INSERT INTO processed SELECT convert_from(value, 'UTF8') FROM pgq_poll('gmanual', 'gm', 10, 0, 'x');
SELECT pgq_commit('gmanual', 'x');
COMMIT;
SELECT v FROM processed ORDER BY v;
SELECT committed_offset FROM pgq_consumer_lag WHERE group_id = 'gmanual';
DROP TABLE processed;
-- a poll in a subtransaction that rolls back is undone as well
SELECT count(*) FROM generate_series(1, 2) i, LATERAL pgq_send('gm', 's' || i);
BEGIN;
SAVEPOINT before_poll;
SELECT msg_offset FROM pgq_poll('gmanual', 'gm', 1, 0, 'x');
ROLLBACK TO SAVEPOINT before_poll;
SAVEPOINT again;
SELECT msg_offset FROM pgq_poll('gmanual', 'gm', 1, 0, 'x');
RELEASE SAVEPOINT again;
SELECT msg_offset FROM pgq_poll('gmanual', 'gm', 1, 0, 'x');
ROLLBACK;
SELECT msg_offset FROM pgq_poll('gmanual', 'gm', 5, 0, 'x');
SELECT pgq_commit('gmanual', 'x');

-- seek moves this session's position (not the committed offset)
SELECT pgq_seek('gmanual', 'gm', 0, 2::bigint, 'x');
SELECT msg_offset FROM pgq_poll('gmanual', 'gm', 2, 0, 'x');
SELECT pgq_seek('gmanual', 'gm', 'earliest', 'x');
SELECT msg_offset FROM pgq_poll('gmanual', 'gm', 1, 0, 'x');
SELECT pgq_seek('gmanual', 'gm', 'latest', 'x');
SELECT msg_offset FROM pgq_poll('gmanual', 'gm', 1, 0, 'x');
SELECT pgq_seek('gmanual', 'gm', now() - interval '1 day', 'x');
SELECT msg_offset FROM pgq_poll('gmanual', 'gm', 1, 0, 'x');
SELECT pgq_seek('gmanual', 'gm', now() + interval '1 day', 'x');
SELECT msg_offset FROM pgq_poll('gmanual', 'gm', 1, 0, 'x');
SELECT committed_offset FROM pgq_consumer_lag WHERE group_id = 'gmanual';
SELECT pgq_seek('gmanual', 'gm', 'middle', 'x');
SELECT pgq_seek('gmanual', 'gm', 0, -1::bigint, 'x');
SELECT pgq_seek('gmanual', 'gm', 1, 0::bigint, 'x');
SELECT pgq_seek('gmanual', 'gm', 'earliest', 'stranger');

-- reset (admin) needs the group to have no live member on the topic
SELECT pgq_reset_offsets('gmanual', 'gm', 'earliest');
SELECT pgq_leave('gmanual', 'x');
SELECT pgq_reset_offsets('gmanual', 'gm', 'earliest');
SELECT committed_offset FROM pgq_consumer_lag WHERE group_id = 'gmanual';
SELECT pgq_reset_offsets('gmanual', 'gm', 'latest');
SELECT committed_offset FROM pgq_consumer_lag WHERE group_id = 'gmanual';
SELECT pgq_reset_offsets('gmanual', 'gm', 0, 4);
SELECT committed_offset FROM pgq_consumer_lag WHERE group_id = 'gmanual';
SELECT pgq_reset_offsets('gmanual', 'gm', now() - interval '1 hour');
SELECT committed_offset FROM pgq_consumer_lag WHERE group_id = 'gmanual';
SELECT msg_offset FROM pgq_poll('gmanual', 'gm', 1, 0, 'x');
SELECT pgq_leave('gmanual', 'x');

-- auto.offset.reset: where a group without a committed offset starts
SELECT pgq_alter_group('glatest', '{"auto.offset.reset": "latest"}');
SELECT count(*) FROM pgq_poll('glatest', 'gm', 100, 0, 'y');
SELECT * FROM pgq_send('gm', 'after the latest member joined');
SELECT convert_from(value, 'UTF8') FROM pgq_poll('glatest', 'gm', 100, 0, 'y');
SELECT count(*) FROM pgq_poll('gearliest', 'gm', 100, 0, 'y');
SELECT pgq_leave('glatest', 'y');
SELECT pgq_leave('gearliest', 'y');

-- a silent member loses its partitions after session.timeout.ms
SELECT pgq_alter_group('gshort', '{"session.timeout.ms": 2000}');
SELECT count(*) FROM pgq_poll('gshort', 'gt', 1, 0, 'slow');
SELECT member_id, partitions FROM pgq_members WHERE group_id = 'gshort';
SELECT pg_sleep(2.2);
SELECT count(*) FROM pgq_members WHERE group_id = 'gshort';      -- expired: no longer listed
SELECT count(*) FROM pgq_poll('gshort', 'gt', 1, 0, 'fast');     -- fast takes all
SELECT member_id, partitions FROM pgq_members WHERE group_id = 'gshort' ORDER BY 1;
SELECT pgq_heartbeat('gshort', 'slow');
SELECT pgq_commit('gshort', 'gt', 0, 1, 'slow');
SELECT pgq_leave('gshort', 'fast');

-- a session member (member_id NULL) is listed under its session's id
SELECT count(*) FROM pgq_poll('gsession', 'gm', 1);
SELECT member_id LIKE 'session-%' AS session_member FROM pgq_members WHERE group_id = 'gsession';
SELECT pgq_heartbeat('gsession');
SELECT pgq_leave('gsession');

-- group config: Kafka's keys, validated; the view shows the effective config
SELECT group_id, config FROM pgq_groups WHERE group_id IN ('g', 'gmanual', 'gshort') ORDER BY 1;
SELECT pgq_alter_group('g', '{"session.timeout.ms": 50}');
SELECT pgq_alter_group('g', '{"session.timeout.ms": "45000"}');
SELECT pgq_alter_group('g', '{"enable.auto.commit": "yes"}');
SELECT pgq_alter_group('g', '{"auto.offset.reset": "none"}');
SELECT pgq_alter_group('g', '{"group.id": "x"}');
SELECT pgq_alter_group('g', '[]');
SELECT pgq_alter_group('g', NULL);
SELECT pgq_alter_group('gmanual', '{"enable.auto.commit": null}');
SELECT config FROM pgq_groups WHERE group_id = 'gmanual';

-- bad input
SELECT pgq_poll(NULL, 'gt');
SELECT pgq_poll('g', NULL);
SELECT pgq_poll('g', 'nope');
SELECT pgq_poll('', 'gt');
SELECT pgq_poll(repeat('g', 128), 'gt');
SELECT pgq_poll('g', 'gt', 0);
SELECT pgq_poll('g', 'gt', 10, -1);
SELECT pgq_poll('g', 'gt', 10, 0, '');
SELECT pgq_poll('g', 'gt', 10, 0, E'tab\there');
SELECT pgq_commit('g', 'gt', 9, 1, 'a');
SELECT pgq_commit('g', 'gt', 0, -1, 'a');
SELECT pgq_heartbeat('g', 'never-polled');
SELECT pgq_reset_offsets('g', 'gt', 'sideways');
BEGIN READ ONLY;
SELECT pgq_poll('g', 'gt');
ROLLBACK;
-- a committed offset or a seek past the high watermark would skip records
-- sent later
SELECT high_watermark FROM pgq_partitions WHERE topic = 'gt' AND partition = 0;
SELECT pgq_commit('g', 'gt', 0, 1000, 'a');
SELECT pgq_seek('g', 'gt', 0, 1000, 'a');
-- a transaction that polled cannot be prepared (it would carry this
-- session's positions and its member's hand-overs across sessions)
BEGIN;
SELECT count(*) FROM pgq_poll('g', 'gt', 1, 0, 'a');
PREPARE TRANSACTION 'pgq_polled';
-- a leave takes effect when its transaction commits
BEGIN;
SELECT pgq_leave('g', 'a');
ROLLBACK;
SELECT member_id FROM pgq_members WHERE group_id = 'g' AND member_id = 'a';

-- drop group: only without live members; its offsets go with it
SELECT pgq_drop_group('g');
SELECT pgq_leave('g', 'a');
SELECT pgq_leave('g', 'b');
SELECT pgq_drop_group('g');
SELECT pgq_drop_group('g');
SELECT pgq_drop_group('g', if_exists => true);
SELECT count(*) FROM pgq_consumer_lag WHERE group_id = 'g';
-- dropping a topic drops its groups' offsets and members
SELECT count(*) FROM pgq_poll('gmanual', 'gm', 1, 0, 'x');
SELECT pgq_commit('gmanual', 'x');
SELECT count(*) FROM pgqueue.group_offset JOIN pgqueue.topic USING (topic_id) WHERE name = 'gm';
SELECT pgq_drop_topic('gm');
SELECT count(*) FROM pgq_consumer_lag WHERE topic = 'gm';
SELECT count(*) FROM pgqueue.group_offset o
 WHERE NOT EXISTS (SELECT FROM pgqueue.topic t WHERE t.topic_id = o.topic_id);
-- offsets a commit racing with a drop leaves behind: no view shows them,
-- and dropping their group removes them
INSERT INTO pgqueue.group_offset VALUES ('ghost', 999999, 0, 1, 5, now());
SELECT count(*) FROM pgq_groups WHERE group_id = 'ghost';
SELECT count(*) FROM pgq_consumer_lag WHERE group_id = 'ghost';
SELECT pgq_drop_group('ghost');
SELECT count(*) FROM pgqueue.group_offset WHERE group_id = 'ghost';
SELECT count(*) FROM pgq_members WHERE group_id = 'gmanual';
SELECT pgq_drop_topic('gt');
SELECT pgq_drop_group(group_id) FROM pgq_groups;
SELECT count(*) FROM pgq_groups;

-- pgq_assignment: a member's partitions and the assignment's generation,
-- which changes when the assignment does; reading it renews nothing
SELECT pgq_create_topic('asg', 4);
SELECT count(*) FROM pgq_poll('gasg', 'asg', 1, 0, 'one');
SELECT partitions FROM pgq_assignment('gasg', 'asg', 'one');
CREATE TEMP TABLE asg_gen AS SELECT generation FROM pgq_assignment('gasg', 'asg', 'one');
SELECT generation = (SELECT generation FROM asg_gen) AS same_generation
  FROM pgq_assignment('gasg', 'asg', 'one');
SELECT count(*) FROM pgq_poll('gasg', 'asg', 1, 0, 'two');
SELECT count(*) FROM pgq_poll('gasg', 'asg', 1, 0, 'one');   -- gives up its share
SELECT partitions, generation > (SELECT generation FROM asg_gen) AS new_generation
  FROM pgq_assignment('gasg', 'asg', 'one');
SELECT partitions FROM pgq_assignment('gasg', 'asg', 'two');  -- claims them at its next poll
SELECT count(*) FROM pgq_poll('gasg', 'asg', 1, 0, 'two');
SELECT partitions FROM pgq_assignment('gasg', 'asg', 'two');
SELECT pgq_assignment('gasg', 'asg', 'three');
SELECT count(*) FROM pgq_leave('gasg', 'one');
SELECT count(*) FROM pgq_leave('gasg', 'two');
SELECT pgq_drop_topic('asg');
