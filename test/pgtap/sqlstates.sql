-- Every bad call gets a specific SQLSTATE (clients branch on these; the
-- README lists them) and changes nothing.
BEGIN;
SELECT plan(88);

SELECT pgq_create_topic('tap', 2);
SELECT pgq_send('tap', 'one', partition => 0);
-- an idempotent producer that has sent sequences 0-5 to partition 0
SELECT producer_id AS tap_pid FROM pgq_init_producer() \gset
SELECT pgq_send('tap', 'idem', partition => 0, producer_id => :tap_pid, producer_epoch => 0, sequence => 0);
SELECT pgq_send('tap', 'idem', partition => 0, producer_id => :tap_pid, producer_epoch => 0, sequence => s)
  FROM generate_series(1, 5) s;
CREATE TEMP TABLE before AS
    SELECT (SELECT jsonb_agg(t ORDER BY topic) FROM pgq_topics t) AS topics,
           (SELECT jsonb_agg(p ORDER BY topic, partition) FROM pgq_partitions p) AS partitions;

-- 22004 null_value_not_allowed
SELECT throws_ok($$SELECT pgq_create_topic(NULL)$$, '22004', 'topic must not be null', 'create: null topic');
SELECT throws_ok($$SELECT pgq_create_topic('x', NULL)$$, '22004', NULL, 'create: null partitions');
SELECT throws_ok($$SELECT pgq_create_topic('x', 1, NULL)$$, '22004', NULL, 'create: null config');
SELECT throws_ok($$SELECT pgq_create_topic('x', 1, '{}', NULL)$$, '22004', NULL, 'create: null if_not_exists');
SELECT throws_ok($$SELECT pgq_drop_topic(NULL)$$, '22004', NULL, 'drop: null topic');
SELECT throws_ok($$SELECT pgq_drop_topic('tap', NULL)$$, '22004', NULL, 'drop: null if_exists');
SELECT throws_ok($$SELECT pgq_add_partitions('tap', NULL)$$, '22004', NULL, 'add partitions: null');
SELECT throws_ok($$SELECT pgq_alter_topic('tap', NULL)$$, '22004', NULL, 'alter: null config');
SELECT throws_ok($$SELECT pgq_send(NULL, 'x')$$, '22004', NULL, 'send: null topic');
SELECT throws_ok($$SELECT pgq_send_batch('tap', NULL::text[])$$, '22004', NULL, 'send_batch: null values');
SELECT throws_ok($$SELECT pgq_fetch('tap', NULL, 0)$$, '22004', NULL, 'fetch: null partition');
SELECT throws_ok($$SELECT pgq_fetch('tap', 0, NULL)$$, '22004', NULL, 'fetch: null offset');
SELECT throws_ok($$SELECT pgq_fetch('tap', 0, 0, NULL)$$, '22004', NULL, 'fetch: null max_records');
SELECT throws_ok($$SELECT pgq_fetch('tap', 0, 0, 1, NULL)$$, '22004', NULL, 'fetch: null timeout');
SELECT throws_ok($$SELECT pgq_offsets_for_time('tap', NULL)$$, '22004', NULL, 'offsets_for_time: null time');
SELECT throws_ok($$SELECT pgq_grant('tap', 'public', NULL)$$, '22004', NULL, 'grant: null privilege');

-- 42602 invalid_name
SELECT throws_ok($$SELECT pgq_create_topic('bad name')$$, '42602', NULL, 'create: space in name');
SELECT throws_ok($$SELECT pgq_create_topic(repeat('x', 250))$$, '42602', NULL, 'create: name too long');
SELECT throws_ok($$SELECT pgq_create_topic('')$$, '42602', NULL, 'create: empty name');
SELECT throws_ok($$SELECT pgq_create_topic('..')$$, '42602', NULL, 'create: ".."');
SELECT throws_ok($$SELECT pgq_create_topic('a"; DROP TABLE x; --')$$, '42602', NULL, 'create: injection attempt');
SELECT throws_ok($$SELECT pgq_send('a b', 'x')$$, '42602', NULL, 'send: bad name');
SELECT throws_ok($$SELECT pgq_fetch('a/b', 0, 0)$$, '42602', NULL, 'fetch: bad name');

-- 42704 undefined_object
SELECT throws_ok($$SELECT pgq_send('missing', 'x')$$, '42704', 'topic "missing" does not exist', 'send: unknown topic');
SELECT throws_ok($$SELECT pgq_send_batch('missing', ARRAY['x'])$$, '42704', NULL, 'send_batch: unknown topic');
SELECT throws_ok($$SELECT pgq_fetch('missing', 0, 0)$$, '42704', NULL, 'fetch: unknown topic');
SELECT throws_ok($$SELECT pgq_offsets_for_time('missing', now())$$, '42704', NULL, 'offsets_for_time: unknown topic');
SELECT throws_ok($$SELECT pgq_drop_topic('missing')$$, '42704', NULL, 'drop: unknown topic');
SELECT throws_ok($$SELECT pgq_alter_topic('missing', '{}')$$, '42704', NULL, 'alter: unknown topic');
SELECT throws_ok($$SELECT pgq_add_partitions('missing', 3)$$, '42704', NULL, 'add partitions: unknown topic');
SELECT throws_ok($$SELECT pgq_grant('tap', 'no_such_role', 'produce')$$, '42704', NULL, 'grant: unknown role');

-- 42710 duplicate_object
SELECT throws_ok($$SELECT pgq_create_topic('tap')$$, '42710', 'topic "tap" already exists', 'create: duplicate');

-- 22023 invalid_parameter_value
SELECT throws_ok($$SELECT pgq_create_topic('x', 0)$$, '22023', NULL, 'create: zero partitions');
SELECT throws_ok($$SELECT pgq_create_topic('x', -3)$$, '22023', NULL, 'create: negative partitions');
SELECT throws_ok($$SELECT pgq_create_topic('x', 1, '{"nope": 1}')$$, '22023', NULL, 'create: unknown config key');
SELECT throws_ok($$SELECT pgq_create_topic('x', 1, '{"retention.ms": "7d"}')$$, '22023', NULL, 'create: config of wrong type');
SELECT throws_ok($$SELECT pgq_create_topic('x', 1, '{"retention.bytes": -5}')$$, '22023', NULL, 'create: config out of range');
SELECT throws_ok($$SELECT pgq_create_topic('x', 1, '[]')$$, '22023', NULL, 'create: config not an object');
SELECT throws_ok($$SELECT pgq_alter_topic('tap', '{"max.message.bytes": -1}')$$, '22023', NULL, 'alter: bad value');
SELECT throws_ok($$SELECT pgq_add_partitions('tap', 2)$$, '22023', NULL, 'add partitions: not growing');
SELECT throws_ok($$SELECT pgq_send('tap', 'x', partition => 2)$$, '22023', NULL, 'send: partition out of range');
SELECT throws_ok($$SELECT pgq_send('tap', 'x', partition => -1)$$, '22023', NULL, 'send: negative partition');
SELECT throws_ok($$SELECT pgq_send('tap', 'x', headers => '{"a": 1}')$$, '22023', NULL, 'send: non-string header');
SELECT throws_ok($$SELECT pgq_fetch('tap', 5, 0)$$, '22023', NULL, 'fetch: partition out of range');
SELECT throws_ok($$SELECT pgq_fetch('tap', 0, -1)$$, '22023', NULL, 'fetch: negative offset');
SELECT throws_ok($$SELECT pgq_fetch('tap', 0, 0, 0)$$, '22023', NULL, 'fetch: zero max_records');
SELECT throws_ok($$SELECT pgq_fetch('tap', 0, 0, -1)$$, '22023', NULL, 'fetch: negative max_records');
SELECT throws_ok($$SELECT pgq_fetch('tap', 0, 0, 1, -1)$$, '22023', NULL, 'fetch: negative timeout');
SELECT throws_ok($$SELECT pgq_grant('tap', 'public', 'write')$$, '22023', NULL, 'grant: unknown privilege');

-- 2202E array_subscript_error
SELECT throws_ok($$SELECT pgq_send_batch('tap', ARRAY['a', 'b'], ARRAY['k'])$$, '2202E', NULL, 'send_batch: keys of another length');

-- 54000 program_limit_exceeded
SELECT throws_ok($$SELECT pgq_send('tap', repeat('x', 1048589))$$, '54000', NULL, 'send: record over max.message.bytes');
SELECT throws_ok($$SELECT pgq_create_topic('x', 1000000)$$, '54000', NULL, 'create: too many partitions');

-- 0A000 feature_not_supported
SELECT throws_ok($$SELECT pgq_create_topic('x', 1, '{"cleanup.policy": "compact"}')$$, '0A000', NULL, 'create: compaction');

-- 25006 read_only_sql_transaction
SAVEPOINT read_only;
SET LOCAL transaction_read_only = on;
SELECT throws_ok($$SELECT pgq_send('tap', 'x')$$, '25006', NULL, 'send: read-only transaction');
SELECT throws_ok($$SELECT pgq_create_topic('x')$$, '25006', NULL, 'create: read-only transaction');
SELECT throws_ok($$SELECT pgq_drop_topic('tap')$$, '25006', NULL, 'drop: read-only transaction');
ROLLBACK TO SAVEPOINT read_only;

-- consumer groups (holder is a live member of g on tap: see the non-member commit)
SELECT is((SELECT partitions FROM pgq_sync_member('g', 'tap', 'holder')), '{0,1}', 'a live member joins');
SELECT throws_ok($$SELECT pgq_poll(NULL, 'tap')$$, '22004', 'group_id must not be null', 'poll: null group');
SELECT throws_ok($$SELECT pgq_poll('g', 'tap', NULL)$$, '22004', NULL, 'poll: null max_records');
SELECT throws_ok($$SELECT pgq_poll('', 'tap')$$, '42602', NULL, 'poll: empty group_id');
SELECT throws_ok($$SELECT pgq_poll('g', 'tap', 1, 0, repeat('m', 200))$$, '42602', NULL, 'poll: member_id too long');
SELECT throws_ok($$SELECT pgq_poll('g', 'missing')$$, '42704', NULL, 'poll: unknown topic');
SELECT throws_ok($$SELECT pgq_poll('g', 'tap', 0)$$, '22023', NULL, 'poll: zero max_records');
SELECT throws_ok($$SELECT pgq_commit('g', 'tap', 0, 1, 'stranger')$$, '55000', NULL, 'commit: non-member of a group with a live member');
SELECT throws_ok($$SELECT pgq_commit('g', 'tap', 0, 1, 'holder', repeat('m', 4097))$$, '54000', NULL, 'commit: metadata too long');
SELECT throws_ok($$SELECT pgq_sync_member('g', 'tap', 'k', '{2}')$$, '22023', NULL, 'sync member: partition out of range');
SELECT throws_ok($$SELECT pgq_sync_member('g', 'tap', 'k', '{NULL}')$$, '22004', NULL, 'sync member: null partition');
SELECT throws_ok($$SELECT pgq_sync_member('g', 'tap', 'k', NULL, 10)$$, '22023', NULL, 'sync member: session timeout too short');
SELECT throws_ok($$SELECT pgq_committed_offsets('g', 'tap', '{5}')$$, '22023', NULL, 'committed offsets: partition out of range');
SELECT throws_ok($$SELECT pgq_commit('g', 'stranger')$$, '55000', 'member "stranger" is not in group "g"', 'commit: unknown member');
SELECT throws_ok($$SELECT pgq_heartbeat('g', 'stranger')$$, '55000', NULL, 'heartbeat: unknown member');
SELECT is((SELECT count(*) FROM pgq_leave('g', 'stranger')), 0::bigint, 'leave: an unknown member has nothing to leave');
SELECT throws_ok($$SELECT pgq_assignment('g', 'tap', 'stranger')$$, '55000', NULL, 'assignment: unknown member');
SELECT throws_ok($$SELECT pgq_seek('g', 'tap', 'earliest', 'stranger')$$, '55000', NULL, 'seek: member owns nothing');
SELECT throws_ok($$SELECT pgq_seek('g', 'tap', 'sideways', 'stranger')$$, '22023', NULL, 'seek: bad position');
SELECT throws_ok($$SELECT pgq_alter_group('g', '{"session.timeout.ms": true}')$$, '22023', NULL, 'alter group: bad value');
SELECT throws_ok($$SELECT pgq_alter_group('g', '{"bogus": 1}')$$, '22023', NULL, 'alter group: unknown key');
SELECT throws_ok($$SELECT pgq_drop_group('never-was')$$, '42704', NULL, 'drop group: unknown');

-- idempotent producers: PQ001-PQ004 (Kafka's sequence and producer errors)
SELECT throws_ok(format($$SELECT pgq_send('tap', 'x', partition => 0, producer_id => %s, producer_epoch => 0, sequence => 9)$$, :tap_pid),
                 'PQ001', NULL, 'send: out-of-order sequence');
SELECT throws_ok(format($$SELECT pgq_send('tap', 'x', partition => 0, producer_id => %s, producer_epoch => 0, sequence => 0)$$, :tap_pid),
                 'PQ002', NULL, 'send: a duplicate older than the last 5 batches');
SELECT throws_ok(format($$SELECT pgq_send('tap', 'x', partition => 0, producer_id => %s, producer_epoch => 1, sequence => 6)$$, :tap_pid),
                 'PQ003', NULL, 'send: not the producer''s epoch');
SELECT throws_ok($$SELECT pgq_send('tap', 'x', producer_id => 999999999, producer_epoch => 0, sequence => 0)$$,
                 'PQ004', NULL, 'send: unknown producer id');
SELECT throws_ok(format($$SELECT pgq_send('tap', 'x', partition => 1, producer_id => %s, producer_epoch => 0, sequence => 3)$$, :tap_pid),
                 'PQ004', NULL, 'send: a first sequence other than 0 in a partition');
SELECT throws_ok(format($$SELECT pgq_send('tap', 'x', producer_id => %s, producer_epoch => 0)$$, :tap_pid),
                 '22004', NULL, 'send: producer arguments not all given');
SELECT throws_ok(format($$SELECT pgq_send_batch('tap', '{a,b,c,d}', '{k1,k2,k3,k4}', producer_id => %s, producer_epoch => 0, sequence => 0)$$, :tap_pid),
                 '22023', NULL, 'send batch: an idempotent batch over several partitions');
SELECT throws_ok($$SELECT pgq_init_producer('')$$, '22023', NULL, 'init producer: empty transactional id');

-- nothing changed
SELECT is((SELECT jsonb_agg(t ORDER BY topic) FROM pgq_topics t), (SELECT topics FROM before),
          'the topics are unchanged');
SELECT is((SELECT jsonb_agg(p ORDER BY topic, partition) FROM pgq_partitions p), (SELECT partitions FROM before),
          'the partitions are unchanged');

SELECT * FROM finish();
ROLLBACK;
