# 004_retention_worker.pl
#	  The background worker applies retention by dropping whole segments:
#	  under a steady produce/consume load with autovacuum off, a topic's
#	  storage stays bounded, the log start advances, and reads below it are
#	  out of range (groups fall back to auto.offset.reset).  The worker is
#	  restarted after it is killed and after a server restart.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $node = PostgreSQL::Test::Cluster->new('retention');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'pgqueue'
pgqueue.maintenance_interval = 200
autovacuum = off
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pgqueue');

sub worker_pid
{
	return $node->safe_psql('postgres',
		q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'pgqueue worker'});
}

# the size of a topic on disk: its segment tables with their indexes and TOAST
my $size_sql = q{
	SELECT coalesce(sum(pg_total_relation_size(s.relid)), 0)
	  FROM pgqueue.segment s JOIN pgqueue.topic t USING (topic_id) WHERE t.name = 'steady'};

ok( $node->poll_query_until(
		'postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pgqueue worker'}),
	'the worker runs');

# --- time retention under a steady load -----------------------------------
$node->safe_psql('postgres',
	q{SELECT pgq_create_topic('steady', 2, '{"retention.ms": 1000}')});

# a group that commits offset 0 and then stays away while retention runs
$node->safe_psql('postgres', q{SELECT pgq_reset_offsets('stale', 'steady', 'earliest')});

my @sizes;
my $sent = 0;
my $start = time;
while (time - $start < 8)
{
	$node->safe_psql('postgres', q{
		SELECT count(*) FROM generate_series(1, 300) i,
		       LATERAL pgq_send('steady', repeat('x', 400) || i, 'k' || i)});
	$sent += 300;
	# a consumer keeps up, committing as it goes
	$node->safe_psql('postgres',
		q{SELECT count(*) FROM pgq_poll('drain', 'steady', 10000, 0, 'c')});
	push @sizes, $node->safe_psql('postgres', $size_sql);
	usleep(200_000);
}
my ($max_late) = sort { $b <=> $a } @sizes[int(@sizes / 2) .. $#sizes];
my $produced_bytes = $sent * 400;
note("sent $sent records (~$produced_bytes bytes); sizes: @sizes");
cmp_ok($max_late, '<', $produced_bytes / 2,
	'storage stays bounded: far below what was produced, with autovacuum off');

my $starts = $node->safe_psql('postgres',
	q{SELECT min(log_start_offset) FROM pgq_partitions WHERE topic = 'steady'});
cmp_ok($starts, '>', 0, 'the log start offset advanced on every partition');
my $segments = $node->safe_psql('postgres', q{
	SELECT max(n) FROM (SELECT count(*) AS n FROM pgqueue.segment s JOIN pgqueue.topic t USING (topic_id)
	                     WHERE t.name = 'steady' GROUP BY partition) c});
cmp_ok($segments, '<=', 4, 'old segments were dropped (at most a few per partition remain)');
my $orphans = $node->safe_psql('postgres', q{
	SELECT count(*) FROM pg_class WHERE relnamespace = 'pgqueue'::regnamespace AND relkind = 'r'
	   AND relname LIKE 't%\_p%\_s%' AND oid NOT IN (SELECT relid FROM pgqueue.segment)});
is($orphans, '0', 'no segment table is left behind');

# every record still in the log is readable, in order, from the log start;
# a roll or a drop may race with the check (a fetch from a log start that a
# drop just moved is out of range): allow retries
my $readable = '';
for (1 .. 3)
{
	my ($ret, $out) = $node->psql('postgres', q{
		SELECT bool_and(n = hwm - ls) FROM (
		  SELECT p.high_watermark AS hwm, p.log_start_offset AS ls,
		         (SELECT count(*) FROM pgq_fetch('steady', p.partition, p.log_start_offset, 100000)) AS n
		    FROM pgq_partitions p WHERE topic = 'steady') x});
	$readable = $out if $ret == 0;
	last if $readable eq 't';
}
is($readable, 't', 'the retained log is complete from its log start to its high watermark');

# reads below the log start are out of range
my ($ret, $out, $err) = $node->psql('postgres', q{SELECT * FROM pgq_fetch('steady', 0, 0)});
like($err, qr/offset 0 is out of range for partition 0 of topic "steady"/,
	'pgq_fetch below the log start is an error');

# a group whose committed offset fell below the log start resets to earliest
my $first = $node->safe_psql('postgres', q{
	SELECT min(msg_offset) >= (SELECT log_start_offset FROM pgq_partitions WHERE topic = 'steady' AND partition = 0)
	  FROM pgq_poll('stale', 'steady', 10, 0, 'late') WHERE partition = 0});
is($first, 't', 'a group behind the log start resumes from the earliest retained record');

# a session whose own position fell below the log start between two polls
# starts again as auto.offset.reset says: with "latest", at the end, so it
# reads nothing of what retention left (not from the log start)
my $slow = $node->background_psql('postgres');
$slow->query_safe(q{SELECT pgq_alter_group('slow', '{"auto.offset.reset": "latest", "enable.auto.commit": false}')});
$slow->query_safe(q{SELECT count(*) FROM pgq_poll('slow', 'steady', 10, 0, 'm')});
$node->safe_psql('postgres', q{SELECT count(*) FROM pgq_send('steady', 'mark', partition => 0)});
my $slow_pos = $slow->query_safe(
	q{SELECT max(msg_offset) + 1 FROM pgq_poll('slow', 'steady', 10, 0, 'm') WHERE partition = 0});
my $passed = 0;
my $deadline = time + 30;
while (!$passed && time < $deadline)
{
	$node->safe_psql('postgres', q{
		SELECT count(*) FROM generate_series(1, 300) i,
		       LATERAL pgq_send('steady', repeat('x', 400) || i, partition => 0)});
	$slow->query_safe(q{SELECT pgq_heartbeat('slow', 'm')});    # keep the lease, and the position
	$passed = $node->safe_psql('postgres',
		"SELECT log_start_offset > $slow_pos FROM pgq_partitions WHERE topic = 'steady' AND partition = 0")
	  eq 't';
	usleep(200_000);
}
ok($passed, "retention moved partition 0's log start past the session's position $slow_pos");
is( $slow->query_safe(
		q{SELECT count(*) FROM pgq_poll('slow', 'steady', 10000, 0, 'm') WHERE partition = 0}),
	'0',
	'a position that fell below the log start resets to the end ("latest")');
$slow->quit;

# --- size retention ----------------------------------------------------------
$node->safe_psql('postgres',
	q{SELECT pgq_create_topic('sized', 1, '{"retention.bytes": 200000, "retention.ms": -1}')});
for (1 .. 10)
{
	$node->safe_psql('postgres',
		q{SELECT count(*) FROM generate_series(1, 500) i,
		         LATERAL pgq_send('sized', (SELECT string_agg(md5(random()::text || i || j), '')
		                                      FROM generate_series(1, 12) j))});
	usleep(300_000);
}
ok( $node->poll_query_until(
		'postgres',
		q{SELECT bytes < 600000 AND log_start_offset > 0 FROM pgq_partitions WHERE topic = 'sized'}),
	'size retention keeps the partition near retention.bytes (about 2 MB were sent)');

# --- the worker survives being killed and a restart ------------------------
my $pid = worker_pid();
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
ok( $node->poll_query_until(
		'postgres',
		qq{SELECT count(*) = 1 FROM pg_stat_activity
		     WHERE backend_type = 'pgqueue worker' AND pid <> $pid}),
	'the worker is restarted after being killed');
my $before = $node->safe_psql('postgres',
	q{SELECT max(segment_no) FROM pgqueue.segment s JOIN pgqueue.topic t USING (topic_id) WHERE t.name = 'steady'});
$node->safe_psql('postgres', q{SELECT pgq_send('steady', 'after the kill', partition => 0)});
ok( $node->poll_query_until(
		'postgres',
		qq{SELECT max(segment_no) > $before FROM pgqueue.segment s JOIN pgqueue.topic t USING (topic_id)
		     WHERE t.name = 'steady'}),
	'the restarted worker keeps rolling segments');

$node->restart;
ok( $node->poll_query_until(
		'postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pgqueue worker'}),
	'the worker runs again after a server restart');
my $sends = $node->safe_psql('postgres',
	q{SELECT count(*) FROM generate_series(1, 10) i, LATERAL pgq_send('steady', 'after restart ' || i)});
is($sends, '10', 'sending works after the restart');

# --- the switch and the interval are reloadable ----------------------------
$node->safe_psql('postgres', q{ALTER SYSTEM SET pgqueue.segment_maintenance = off});
$node->reload;
usleep(500_000);
my $frozen = $node->safe_psql('postgres',
	q{SELECT max(segment_no) FROM pgqueue.segment s JOIN pgqueue.topic t USING (topic_id) WHERE t.name = 'steady'});
$node->safe_psql('postgres', q{SELECT pgq_send('steady', 'while off')});
sleep(2);
is($node->safe_psql('postgres',
		q{SELECT max(segment_no) FROM pgqueue.segment s JOIN pgqueue.topic t USING (topic_id) WHERE t.name = 'steady'}),
	$frozen, 'with pgqueue.segment_maintenance = off the worker leaves segments alone');

$node->stop;
done_testing();
