# 009_dump_restore.pl
#	  pg_dump and pg_restore carry topics over whole: their config, rights,
#	  segments with every record at its offset, the log start, the groups'
#	  committed offsets; after the restore the offset counters continue above
#	  every restored offset, and consuming resumes from the committed offsets.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('dump');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pgqueue'");
$node->start;

$node->safe_psql('postgres', q{
	CREATE ROLE dump_reader;
	CREATE DATABASE source;
	CREATE DATABASE target;
});
$node->safe_psql('source', q{
	CREATE EXTENSION pgqueue;
	SELECT pgq_create_topic('orders', 3, '{"retention.ms": -1, "max.message.bytes": 5000}');
	SELECT pgq_create_topic('events', 1);
	SELECT pgq_grant('orders', 'dump_reader', 'consume');
	SELECT count(*) FROM generate_series(1, 30) i,
	       LATERAL pgq_send('orders', 'order ' || i, 'customer ' || (i % 7),
	                        headers => jsonb_build_object('n', i::text));
	SELECT pgq_send('orders', NULL, 'tombstone');
	SELECT pgq_send('events', 'e' || i, "timestamp" => '2024-01-01'::timestamptz + i * interval '1 hour')
	  FROM generate_series(1, 5) i;
	-- a rolled-back send leaves a gap that must stay a gap
	BEGIN; SELECT pgq_send('events', 'never'); ROLLBACK;
	SELECT pgq_send('events', 'after the gap');
	-- headers in the list form (docs/headers.md)
	SELECT pgq_send('events', 'listed', headers => '[["k", null], ["k", {"base64": "AP8="}]]');
	SELECT pgq_alter_group('billing', '{"enable.auto.commit": false}');
	SELECT count(*) FROM pgq_poll('billing', 'orders', 10, 0, 'w1');
	SELECT pgq_commit('billing', 'w1');
	SELECT pgq_leave('billing', 'w1');
});
# an idempotent producer with a transactional id, and one without
my $idempotent_before = $node->safe_psql('source', q{
	SELECT producer_id AS tx FROM pgq_init_producer('dump-tx') \gset
	SELECT producer_id AS plain FROM pgq_init_producer() \gset
	SELECT string_agg(partition || ':' || msg_offset, ' ')
	  FROM (SELECT * FROM pgq_send_batch('events', ARRAY['i0', 'i1'], producer_id => :tx,
	                                     producer_epoch => 0, sequence => 0)
	        UNION ALL
	        SELECT * FROM pgq_send('events', 'i2', partition => 0, producer_id => :plain,
	                               producer_epoch => 0, sequence => 0)) s});

my $records_sql = q{
	SELECT string_agg(format('%s/%s/%s/%s/%s/%s', f.topic, f.partition, f.msg_offset,
	                         convert_from(f.key, 'UTF8'), convert_from(f.value, 'UTF8'), f.headers),
	                  ' ' ORDER BY f.topic, f.partition, f.msg_offset)
	  FROM pgq_partitions p, LATERAL pgq_fetch(p.topic, p.partition, p.log_start_offset, 1000) f};
my $state_sql = q{
	SELECT (SELECT string_agg(format('%s:%s:%s', topic, partitions, config), ' ' ORDER BY topic) FROM pgq_topics)
	    || ' | ' || (SELECT string_agg(format('%s:%s', topic, grantee || '=' || privilege), ' ') FROM pgq_topic_grants)
	    || ' | ' || (SELECT string_agg(format('%s:%s:%s:%s', group_id, topic, partition, committed_offset), ' '
	                                   ORDER BY group_id, topic, partition) FROM pgq_consumer_lag)
	    || ' | ' || (SELECT string_agg(format('%s:%s', group_id, config), ' ') FROM pgq_groups)};

my $records_before = $node->safe_psql('source', $records_sql);
my $state_before = $node->safe_psql('source', $state_sql);
my $hwm_before = $node->safe_psql('source',
	q{SELECT string_agg(topic || partition || '=' || high_watermark, ' ' ORDER BY topic, partition) FROM pgq_partitions});

my $dump = $node->basedir . '/source.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('source') ], 'pg_dump of the source');
$node->command_ok([ 'pg_restore', '-d', $node->connstr('target'), $dump ], 'pg_restore into the target');

is($node->safe_psql('target', $records_sql), $records_before,
	'every record is restored at its partition and offset, with key, value and headers');
like($records_before, qr{/listed/\[\["k", null\], \["k", \{"base64": "AP8="\}\]\]},
	'(headers in the list form among them)');
is($node->safe_psql('target', $state_sql), $state_before,
	'topics, config, rights, groups and committed offsets are restored');
like($records_before, qr{events/0/6/}, 'the gap left by the rolled-back send is there in the source');
unlike($node->safe_psql('target', $records_sql), qr/never/, 'and stays a gap after the restore');

# the restored segments are the catalog's, by name
is($node->safe_psql('target', q{
	SELECT count(*) FROM pgqueue.segment s JOIN pg_class c ON c.oid = s.relid
	 WHERE c.relnamespace = 'pgqueue'::regnamespace}),
	$node->safe_psql('target', q{SELECT count(*) FROM pgqueue.segment}),
	'every segment row points at a restored segment table');

# offsets continue above every restored offset (at or a little above the
# source's high watermarks: the restored offset floors may skip a few)
my $next = $node->safe_psql('target', q{
	SELECT string_agg(topic || p || '=' || o, ' ' ORDER BY topic, p) FROM (
	  SELECT 'orders' AS topic, s.partition AS p, s.msg_offset AS o
	    FROM generate_series(0, 2) p, LATERAL pgq_send('orders', 'new', partition => p) s
	  UNION ALL SELECT 'events', s.partition, s.msg_offset FROM pgq_send('events', 'new') s) x});
my %source = map { split /=/ } split / /, $hwm_before;
my %target = map { split /=/ } split / /, $next;
is(join(' ', sort keys %target), join(' ', sort keys %source), 'a new send went to every partition');
ok(!grep({ $target{$_} < $source{$_} || $target{$_} > $source{$_} + 100 } keys %source),
	"new sends take offsets at or just above the source's high watermarks ($next vs $hwm_before)");

# consuming resumes from the committed offsets
my $committed = $node->safe_psql('target',
	q{SELECT sum(committed_offset) FROM pgq_consumer_lag WHERE group_id = 'billing'});
my $resumed = $node->safe_psql('target', q{
	SELECT count(*) FROM pgq_poll('billing', 'orders', 1000, 0, 'w2')});
is($resumed, 31 + 3 - 10, 'the group resumes after what it committed in the source');
cmp_ok($committed, '>', 0, 'committed offsets came along');

# idempotent producers came along: retries append nothing, the epochs hold
is( $node->safe_psql('target', q{
	SELECT producer_id AS tx FROM pgqueue.producer WHERE transactional_id = 'dump-tx' \gset
	SELECT last_value AS plain FROM pgqueue.producer_id_seq \gset
	SELECT string_agg(partition || ':' || msg_offset, ' ')
	  FROM (SELECT * FROM pgq_send_batch('events', ARRAY['i0', 'i1'], producer_id => :tx,
	                                     producer_epoch => 0, sequence => 0)
	        UNION ALL
	        SELECT * FROM pgq_send('events', 'i2', partition => 0, producer_id => :plain,
	                               producer_epoch => 0, sequence => 0)) s}),
	$idempotent_before, 'after the restore, retries of idempotent sends return their offsets');
is( $node->safe_psql('target', q{
	SELECT producer_epoch FROM pgq_init_producer('dump-tx');
	SELECT count(*) FROM pgq_fetch('events', 0, 0) WHERE convert_from(value, 'UTF8') LIKE 'i_'}),
	"1\n3", 'the transactional id goes on with its next epoch, and the records are there once');

# rights came along (by role name)
$node->safe_psql('target', q{GRANT USAGE ON SCHEMA public TO dump_reader});
is($node->safe_psql('target', q{SET ROLE dump_reader; SELECT count(*) FROM pgq_fetch('orders', 0, 0)}) > 0,
	1, 'a granted role can consume in the target');

$node->stop;
done_testing();
