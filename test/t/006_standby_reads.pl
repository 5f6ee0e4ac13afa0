# Copyright (c) pgqueue contributors
#
# 006_standby_reads.pl
#	  Reading on a hot standby, Kafka's follower fetching (SPEC §5, §8):
#	  pgq_fetch, pgq_offsets_for_time and the views work on a streaming
#	  standby and keep the ordering guarantee there; everything that writes
#	  fails with read_only_sql_transaction (25006); the background worker
#	  idles on the standby and starts its jobs once the standby is promoted.
#
# The primary gets, on topic sr (3 partitions):
#	partition 0	offsets 0-4 committed (explicit timestamps), offset 5 sent by
#				a transaction left open (pending), offsets 6-7 committed
#				after it (default timestamps);
#	partition 1	offsets 0-3 committed with explicit timestamps out of order,
#				offset 4 rolled back (a gap at the end of the log);
#	partition 2	empty, for a long poll.
# and topics sr_cfg (non-default config) and sr_ret (tiny retention, empty).
#
# Checked on the standby once it has replayed all that:
#	- pgq_fetch serves exactly what the primary serves: offsets 0-4 of
#	  partition 0 and nothing at or past the pending offset 5, also when the
#	  fetch starts above it (6, 7, 100); partition 1 without the rolled-back
#	  offset 4;
#	- pgq_topics is identical; pgq_partitions has the same log_start_offset,
#	  last_stable_offset and messages as on the primary.  high_watermark is
#	  computed differently on a standby (the highest offset present in the
#	  newest segment plus one, whatever its transaction's state, instead of
#	  the primary's counter in shared memory): we check it against the
#	  offsets we know are present (8, 5 and 0 here: the pending and the
#	  rolled-back record are present as tuples) and that here it equals the
#	  primary's;
#	- pgq_offsets_for_time gives the same answers as on the primary, and
#	  the expected ones (never a pending, rolled-back or unreadable offset);
#	- a long poll (pgq_fetch with timeout_ms) on the standby waits, and
#	  returns the record once the primary commits it and the standby replays
#	  it; one held back by the pending record is not released by a later
#	  committed record, only by the pending transaction's commit, and then
#	  serves the pending record at its original offset;
#	- pgq_send, pgq_send_batch, pgq_poll, pgq_commit (both forms),
#	  pgq_heartbeat, pgq_leave, pgq_create_topic, pgq_drop_topic,
#	  pgq_add_partitions, pgq_alter_topic, pgq_alter_group and
#	  pgq_reset_offsets fail with SQLSTATE 25006;
#	- the worker runs on the standby (pg_stat_activity) but never starts a
#	  round, nothing in the standby's log fails, and after promotion it runs
#	  rounds: retention drops a segment written on the promoted node.
#
# Waits are bounded (30-60 s) and no check depends on tight timing; the test
# takes about 15 s.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use PgqueueTap;
use IPC::Run;
use Time::HiRes qw(time usleep);

my $wait_ms = 60000;          # long-poll timeout on the standby
my $process_timeout = 90;     # seconds a helper psql may live

###########################################################################
# Primary and standby
###########################################################################

my $primary = PostgreSQL::Test::Cluster->new('sr_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'pgqueue'
pgqueue.maintenance_interval = 200
});
$primary->start;
$primary->safe_psql('postgres', 'CREATE EXTENSION pgqueue');

# the standby is made from a backup, so it shares the primary's
# postgresql.conf: the library is preloaded there too
$primary->backup('sr_backup');
my $standby = PostgreSQL::Test::Cluster->new('sr_standby');
$standby->init_from_backup($primary, 'sr_backup', has_streaming => 1);
my $standby_log_start = -s $standby->logfile // 0;
$standby->start;

# Start a psql running one query on a node, on its own, with its own
# application_name.  Returns a handle for bg_done/bg_finish.
sub bg_start
{
	my ($node, $appname, $sql) = @_;
	my %c = (name => $appname, out => '', err => '');
	$c{h} = IPC::Run::start(
		[
			$node->installed_command('psql'), '-XAtq', '-v', 'ON_ERROR_STOP=1',
			'-d', $node->connstr('postgres') . " application_name=$appname",
			'-c', $sql
		],
		'<', \undef,
		'>', \$c{out},
		'2>', \$c{err},
		IPC::Run::timeout($process_timeout));
	$c{started} = time;
	return \%c;
}

# Has the psql exited?  Does not block.
sub bg_done
{
	my ($c) = @_;
	$c->{h}->pump_nb if $c->{h}->pumpable;
	return !$c->{h}->pumpable;
}

# Wait (at most $limit seconds) for the psql to exit; returns (finished,
# exit code, stdout, stderr, time it was seen finished).
sub bg_finish
{
	my ($c, $limit) = @_;
	my $deadline = time + $limit;
	until (bg_done($c))
	{
		if (time > $deadline)
		{
			diag("$c->{name}: still running after $limit s");
			$c->{h}->kill_kill;
			return (0, -1, $c->{out}, $c->{err}, time);
		}
		usleep(10_000);
	}
	my $end = time;
	$c->{h}->finish;
	my $out = $c->{out};
	chomp $out;
	note("$c->{name}: finished after " . sprintf('%.2f', $end - $c->{started})
		  . " s; stdout '$out', stderr '$c->{err}'");
	return (1, $c->{h}->result(0), $out, $c->{err}, $end);
}

# The SQLSTATE of the error a statement raises on a node ('' if none).
sub sqlstate_of
{
	my ($node, $sql) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\n$sql;");
	return $err =~ /ERROR:\s+([0-9A-Z]{5}):/ ? $1 : "none (exit code $ret, stderr '$err')";
}

# The same query on both nodes must give the same, expected, answer.
sub same_on_both
{
	my ($sql, $expected, $name) = @_;
	my $on_primary = $primary->safe_psql('postgres', $sql);
	my $on_standby = $standby->safe_psql('postgres', $sql);
	is($on_standby, $on_primary, "$name: the standby answers as the primary");
	is($on_standby, $expected, "$name: the answer is the expected one")
	  if defined $expected;
}

sub worker_sql
{
	return q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pgqueue worker'};
}

###########################################################################
# Topics and records on the primary
###########################################################################

$primary->safe_psql('postgres', q{
	SELECT pgq_create_topic('sr', 3);
	SELECT pgq_create_topic('sr_cfg', 2, '{"retention.ms": 3600000, "max.message.bytes": 5000}');
	SELECT pgq_create_topic('sr_ret', 1, '{"retention.ms": 1000}');
});

# partition 0: offsets 0-4, with keys, headers and explicit timestamps
for my $i (0 .. 4)
{
	my $off = $primary->safe_psql('postgres',
		"SELECT msg_offset FROM pgq_send('sr', 'p0-$i'::text, 'k$i'::text, 0,"
		  . " '{\"h\": \"$i\"}'::jsonb, '2024-03-02 00:00:0$i+00')");
	is($off, $i, "record p0-$i was sent at offset $i of partition 0");
}

# partition 1: offsets 0-3 with timestamps out of order, offset 4 rolled back
my @p1_ts = ('2024-03-01 10:00:00+00', '2024-03-01 09:00:00+00',
	'2024-03-01 11:00:00+00', '2024-03-01 12:00:00+00');
for my $i (0 .. 3)
{
	$primary->safe_psql('postgres',
		"SELECT pgq_send('sr', 'p1-$i'::text, NULL::text, 1, NULL, '$p1_ts[$i]')");
}
is( $primary->safe_psql('postgres', q{
		BEGIN;
		SELECT msg_offset FROM pgq_send('sr', 'p1-rolled-back'::text, NULL::text, 1, NULL,
		                                '2024-03-01 13:00:00+00');
		ROLLBACK;}),
	'4',
	'the rolled-back send had offset 4 of partition 1');

# the pending record: offset 5 of partition 0, its transaction left open; its
# timestamp is older than every other record's
my $pending = $primary->background_psql('postgres', timeout => $process_timeout);
$pending->query_safe('BEGIN');
is( $pending->query_safe(
		q{SELECT msg_offset FROM pgq_send('sr', 'p0-5-pending'::text, NULL::text, 0, NULL,
		                                  '2024-03-01 08:00:00+00')}),
	'5',
	'the pending send has offset 5 of partition 0');

# committed after it
for my $i (6 .. 7)
{
	is( $primary->safe_psql('postgres',
			"SELECT msg_offset FROM pgq_send('sr', 'p0-$i'::text, NULL::text, 0)"),
		$i,
		"record p0-$i, committed after the pending one, has offset $i");
}

$primary->wait_for_catchup($standby);

is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't',
	'the standby is in recovery (a hot standby)');

###########################################################################
# The worker idles on the standby
###########################################################################

ok(wait_for($standby, worker_sql(), 30), 'the pgqueue worker runs on the standby');
my ($worker_pid, $worker_query) = split /\|/,
  $standby->safe_psql('postgres',
	q{SELECT pid, query FROM pg_stat_activity WHERE backend_type = 'pgqueue worker'}), -1;
# ten check intervals
sleep 2;
is( $standby->safe_psql('postgres',
		q{SELECT pid || '|' || query FROM pg_stat_activity WHERE backend_type = 'pgqueue worker'}),
	"$worker_pid|",
	'on the standby the same worker is still there and has never started a round (no activity reported)');
{
	my $log = slurp_file($standby->logfile, $standby_log_start);
	my @bad = grep { /\b(ERROR|FATAL|PANIC):/ || /pgqueue worker.*exited/ } split /\n/, $log;
	ok(@bad == 0, 'nothing failed in the standby\'s log, the worker included')
	  or diag("log lines:\n" . join("\n", @bad));
}

###########################################################################
# pgq_fetch on the standby
###########################################################################

my $fetch_cols = q{msg_offset, convert_from(key, 'UTF8'), convert_from(value, 'UTF8'), headers, "timestamp"};

same_on_both(
	"SELECT msg_offset, convert_from(value, 'UTF8') FROM pgq_fetch('sr', 0, 0, 100)",
	join("\n", map { "$_|p0-$_" } 0 .. 4),
	'fetching partition 0 from offset 0 stops at the pending record (offset 5)');
same_on_both("SELECT $fetch_cols FROM pgq_fetch('sr', 0, 0, 100)", undef,
	'partition 0: keys, values, headers and timestamps');
same_on_both(
	"SELECT msg_offset, convert_from(value, 'UTF8') FROM pgq_fetch('sr', 0, 3, 100)",
	"3|p0-3\n4|p0-4", 'fetching partition 0 from offset 3');
same_on_both("SELECT msg_offset FROM pgq_fetch('sr', 0, 0, 2)", "0\n1",
	'fetching partition 0 with max_records 2');
for my $from (5, 6, 7, 8, 100)
{
	same_on_both("SELECT count(*) FROM pgq_fetch('sr', 0, $from, 100)", '0',
		"fetching partition 0 from offset $from (at or above the pending offset 5) serves nothing");
}
same_on_both(
	"SELECT msg_offset, convert_from(value, 'UTF8'), \"timestamp\" FROM pgq_fetch('sr', 1, 0, 100)",
	undef, 'partition 1: offsets, values and timestamps');
same_on_both("SELECT string_agg(msg_offset::text, ',' ORDER BY msg_offset) FROM pgq_fetch('sr', 1, 0, 100)",
	'0,1,2,3', 'partition 1 serves offsets 0-3, not the rolled-back offset 4');
same_on_both("SELECT count(*) FROM pgq_fetch('sr', 1, 4, 100)", '0',
	'fetching partition 1 from the rolled-back offset serves nothing');
same_on_both("SELECT count(*) FROM pgq_fetch('sr', 2, 0, 100)", '0', 'partition 2 is empty');

{
	my ($ret, $out, $err) = $standby->psql('postgres',
		"\\set VERBOSITY verbose\nSELECT * FROM pgq_fetch('nope', 0, 0)");
	like($err, qr/ERROR:\s+42704:.*topic "nope" does not exist/,
		'on the standby, fetching from an unknown topic is the usual error');
}

###########################################################################
# The views and pgq_offsets_for_time on the standby
###########################################################################

same_on_both(q{SELECT topic, partitions, config, created_at FROM pgq_topics ORDER BY topic},
	undef, 'pgq_topics (topic, partitions, effective config, created_at)');
is( $standby->safe_psql('postgres',
		q{SELECT config->>'retention.ms', config->>'max.message.bytes' FROM pgq_topics WHERE topic = 'sr_cfg'}),
	'3600000|5000',
	'pgq_topics on the standby shows a topic\'s configured keys');

same_on_both(
	q{SELECT topic, partition, log_start_offset, last_stable_offset, messages
	    FROM pgq_partitions ORDER BY topic, partition},
	join("\n",
		'sr|0|0|5|5', 'sr|1|0|5|4', 'sr|2|0|0|0',
		'sr_cfg|0|0|0|0', 'sr_cfg|1|0|0|0', 'sr_ret|0|0|0|0'),
	'pgq_partitions: log_start_offset, last_stable_offset (5, the pending offset, in partition 0) and messages (records: the rolled-back offset 4 of partition 1 does not count)');

# On the standby the high watermark is the highest offset present plus one:
# 8 in partition 0 (offsets 5-7 are there, 5 pending), 5 in partition 1 (the
# rolled-back offset 4 is there, as a dead tuple), 0 where nothing was sent.
# Every offset assigned on the primary is present, so it equals the primary's.
same_on_both(q{SELECT topic, partition, high_watermark FROM pgq_partitions ORDER BY topic, partition},
	join("\n", 'sr|0|8', 'sr|1|5', 'sr|2|0', 'sr_cfg|0|0', 'sr_cfg|1|0', 'sr_ret|0|0'),
	'pgq_partitions: high_watermark is the highest offset present plus one');

my %for_time = (
	'2024-01-01 00:00:00+00' => "0|0\n1|0\n2|",
	'2024-03-01 09:30:00+00' => "0|0\n1|0\n2|",
	'2024-03-01 10:30:00+00' => "0|0\n1|2\n2|",
	'2024-03-01 12:00:00+00' => "0|0\n1|3\n2|",
	'2024-03-01 12:30:00+00' => "0|0\n1|\n2|",
	'2024-03-02 00:00:03+00' => "0|3\n1|\n2|",
	'2024-03-02 00:00:05+00' => "0|\n1|\n2|",
);
foreach my $ts (sort keys %for_time)
{
	same_on_both("SELECT partition, msg_offset FROM pgq_offsets_for_time('sr', '$ts') ORDER BY partition",
		$for_time{$ts}, "pgq_offsets_for_time at $ts");
}

###########################################################################
# Writing on the standby fails with read_only_sql_transaction
###########################################################################

my @writes = (
	q{SELECT * FROM pgq_send('sr', 'on the standby'::text)},
	q{SELECT * FROM pgq_send('sr', 'on the standby'::text, NULL::text, 2)},
	q{SELECT * FROM pgq_send_batch('sr', ARRAY['a', 'b'])},
	q{SELECT * FROM pgq_poll('sr_group', 'sr', 10, 0, 'm1')},
	q{SELECT * FROM pgq_poll('sr_group', 'sr', 10, 1000)},
	q{SELECT pgq_commit('sr_group', 'm1')},
	q{SELECT pgq_commit('sr_group', 'sr', 0, 1, 'm1')},
	q{SELECT pgq_heartbeat('sr_group', 'm1')},
	q{SELECT pgq_leave('sr_group', 'm1')},
	q{SELECT pgq_create_topic('sr_new', 1)},
	q{SELECT pgq_drop_topic('sr')},
	q{SELECT pgq_drop_topic('sr_missing', true)},
	q{SELECT pgq_add_partitions('sr', 4)},
	q{SELECT pgq_alter_topic('sr', '{"retention.ms": 1000}')},
	q{SELECT pgq_alter_group('sr_group', '{"session.timeout.ms": 1000}')},
	q{SELECT pgq_reset_offsets('sr_group', 'sr', 'earliest')},
);
foreach my $sql (@writes)
{
	is(sqlstate_of($standby, $sql), '25006', "on the standby, '$sql' fails with 25006");
}
same_on_both(q{SELECT topic, partitions, config FROM pgq_topics ORDER BY topic}, undef,
	'the failed calls changed no topic');
same_on_both(q{SELECT count(*) FROM pgq_groups}, '0', 'and created no group');

###########################################################################
# Long polls on the standby
###########################################################################

# An empty partition: the wait ends when a record sent on the primary is
# replayed.
{
	my $w = bg_start($standby, 'sr_wait_p2',
		"SELECT msg_offset, convert_from(value, 'UTF8') FROM pgq_fetch('sr', 2, 0, 10, $wait_ms)");
	ok(wait_until_waiting($standby, "application_name = 'sr_wait_p2'"),
		'a long poll on an empty partition of the standby waits');
	sleep 1;
	ok(!bg_done($w), 'it is still waiting a second later');
	my $sent_at = time;
	is($primary->safe_psql('postgres',
			q{SELECT msg_offset FROM pgq_send('sr', 'p2-0'::text, NULL::text, 2)}),
		'0', 'a record is sent to partition 2 on the primary');
	my ($finished, $rc, $out, $err, $end) = bg_finish($w, 50);
	ok($finished && $rc == 0, 'the long poll on the standby returned without error')
	  or diag("exit code $rc, stderr: $err");
	is($out, '0|p2-0', 'it returned the record, at its offset');
	cmp_ok($end - $sent_at, '<', 30,
		'it returned once the record was replayed, long before its timeout');
}

# A partition held back by the pending record: a later committed record
# does not end the wait; the pending transaction's commit does, and the
# pending record is served at its original offset.
{
	my $w = bg_start($standby, 'sr_wait_p0',
		"SELECT msg_offset, convert_from(value, 'UTF8') FROM pgq_fetch('sr', 0, 5, 10, $wait_ms)");
	ok(wait_until_waiting($standby, "application_name = 'sr_wait_p0'"),
		'a long poll at the pending offset of partition 0 waits on the standby');
	is($primary->safe_psql('postgres',
			q{SELECT msg_offset FROM pgq_send('sr', 'p0-8'::text, NULL::text, 0)}),
		'8', 'another record is committed to partition 0 on the primary, at offset 8');
	$primary->wait_for_catchup($standby);
	usleep(500_000);
	ok(!bg_done($w), 'the long poll is still held back by the pending record once that is replayed');
	is($standby->safe_psql('postgres', q{SELECT count(*) FROM pgq_fetch('sr', 0, 0, 100)}), '5',
		'and the standby still serves only offsets 0-4 of partition 0');

	$pending->query_safe('COMMIT');
	$pending->quit;
	my ($finished, $rc, $out, $err) = bg_finish($w, 50);
	ok($finished && $rc == 0, 'the long poll returned once the pending transaction committed')
	  or diag("exit code $rc, stderr: $err");
	is($out, "5|p0-5-pending\n6|p0-6\n7|p0-7\n8|p0-8",
		'it serves the formerly pending record at its original offset 5, then 6-8');
}

$primary->wait_for_catchup($standby);
same_on_both("SELECT msg_offset, convert_from(value, 'UTF8') FROM pgq_fetch('sr', 0, 0, 100)",
	join("\n", (map { "$_|p0-$_" } 0 .. 4), '5|p0-5-pending', (map { "$_|p0-$_" } 6 .. 8)),
	'after the commit, partition 0 reads 0-8 in offset order');
same_on_both(
	q{SELECT topic, partition, log_start_offset, high_watermark, last_stable_offset, messages
	    FROM pgq_partitions WHERE topic = 'sr' ORDER BY partition},
	"sr|0|0|9|9|9\nsr|1|0|5|5|4\nsr|2|0|1|1|1",
	'after the commit, pgq_partitions agrees on both nodes');
same_on_both(
	q{SELECT partition, msg_offset FROM pgq_offsets_for_time('sr', '2024-03-02 00:00:05+00') ORDER BY partition},
	"0|6\n1|\n2|0", 'pgq_offsets_for_time now reaches past the formerly pending offset');

###########################################################################
# Promotion: the worker starts its jobs
###########################################################################

$standby->promote;
ok(wait_for($standby, 'SELECT NOT pg_is_in_recovery()', 60), 'the standby was promoted');

{
	# offsets continue above every offset present; a restart or promotion may
	# skip up to the partition's offset floor (a few dozen offsets)
	my ($p, $o) = split /\|/, $standby->safe_psql('postgres',
		q{SELECT partition, msg_offset FROM pgq_send('sr', 'after promotion'::text, NULL::text, 0)});
	ok($p == 0 && $o >= 9 && $o < 9 + 100,
		"on the promoted node a send continues partition 0 at offset 9 or a little above (got $o)");
}

ok(wait_for($standby, worker_sql(), 30), 'the worker runs on the promoted node');
my $ret_off = $standby->safe_psql('postgres',
	q{SELECT msg_offset FROM pgq_send('sr_ret', 'to be dropped'::text)});
is($ret_off, '0', 'a record is sent to sr_ret (retention.ms 1000) on the promoted node');
ok( wait_for($standby,
		"SELECT log_start_offset > $ret_off FROM pgq_partitions WHERE topic = 'sr_ret'", 30),
	'a retention round on the promoted node dropped the segment holding it (log_start_offset advanced)');
like( $standby->safe_psql('postgres',
		q{SELECT query FROM pg_stat_activity WHERE backend_type = 'pgqueue worker'}),
	qr/pgqueue maintenance/,
	'the worker reports its maintenance rounds on the promoted node');
{
	my $log = slurp_file($standby->logfile, $standby_log_start);
	my @bad = grep { /pgqueue worker.*exited/ || /PANIC:/ } split /\n/, $log;
	ok(@bad == 0, 'the worker never died on the standby or the promoted node')
	  or diag("log lines:\n" . join("\n", @bad));
}

$standby->stop;
$primary->stop;

done_testing();
