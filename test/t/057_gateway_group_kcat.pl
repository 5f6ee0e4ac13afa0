# Copyright (c) pgqueue contributors
#
# 057_gateway_group_kcat.pl
#	  Balanced consumers through the gateway with an unmodified client:
#	  kcat -G (librdkafka 2.0.2, eager "range"), docs/gateway.md "Consumer
#	  groups":
#	  - two kcat -G consumers of one group share a topic: pgqueue gives each
#		half of the partitions, and together they print every record once;
#	  - kill -9 one of them: after its session timeout the other takes its
#		partitions, and prints the records sent to them afterwards;
#	  - a SQL member (pgq_poll) joins the same group: the Kafka member gives
#		it partitions, no partition ever has two owners (sampled
#		throughout), and the two print and poll every later record once;
#	  - Postgres restarts under them (the leases are gone): the Kafka
#		member rejoins through the gateway, and both go on from their
#		commits;
#	  - over all of it, every record is printed or polled exactly once:
#		hand-overs, the kill and the restart repeat nothing, because the
#		consumers start from the committed offsets (kcat runs with
#		auto.offset.reset, not -o, which would reset every assignment);
#	  - pgq_consumer_lag shows the Kafka members' commits (lag 0 before
#		each hand-over);
#	  - a kcat consumer (range only) and a python3-kafka one (round-robin
#		only: test/clients/gw_group_kafka_python.py) share a group, which a
#		Kafka broker would refuse for want of a common protocol: each gets
#		half of the partitions, together they print every record once.

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use GatewayTap;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('gw_kcat_groups');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pgqueue'");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pgqueue;
	SELECT pgq_create_topic('orders', 4);
});
my $gw = gateway_start($node);
my $dir = PostgreSQL::Test::Utils::tempdir('kcat');

# A kcat -G consumer in the background, printing "partition:offset value"
# unbuffered (-u), so that what it printed survives a kill -9.
sub start_consumer
{
	my ($name, $group, @args) = @_;
	my $out = "$dir/$name.out";
	my $h = IPC::Run::start(
		[
			'kcat', '-b', $gw->{bootstrap}, '-G', $group // 'g1', '-u', '-q', @args,
			'-X', 'auto.offset.reset=earliest', '-f', '%p:%o %s\n',
			'-X', 'session.timeout.ms=6000',
			'-X', 'heartbeat.interval.ms=500',
			'-X', 'auto.commit.interval.ms=500',
			'orders'
		],
		'<', \undef, '>', $out, '2>', "$dir/$name.err",
		IPC::Run::timeout(180));
	return { h => $h, out => $out, name => $name };
}

sub printed
{
	my ($c) = @_;
	return () unless -e $c->{out};
	return grep { /\S/ } split /\n/, slurp_file($c->{out});
}

# wait until a query returns t, checking that no partition has two owners
# each time: returns 1, or 0 on timeout or a double owner
my $double_owner = 0;

sub wait_for_members
{
	my ($query, $seconds) = @_;
	for (my $i = 0; $i < $seconds * 10; $i++)
	{
		my ($owners, $ok) = split /\|/, $node->safe_psql('postgres', qq{
			SELECT (SELECT count(*) = count(DISTINCT (m.group_id, p))
			          FROM pgq_members m, unnest(m.partitions) p
			         WHERE m.topic = 'orders'),
			       ($query)});
		$double_owner++ if $owners ne 't';
		return 1 if $ok eq 't';
		usleep(100_000);
	}
	return 0;
}

sub members
{
	return $node->safe_psql('postgres', q{
		SELECT string_agg(cardinality(partitions)::text, ',' ORDER BY member_id)
		  FROM pgq_members WHERE group_id = 'g1' AND topic = 'orders'});
}

# send n records "tag-i" to every partition in turn
sub send_records
{
	my ($tag, $n) = @_;
	$node->safe_psql('postgres', qq{
		SELECT count(*) FROM generate_series(1, $n) i,
		       LATERAL pgq_send('orders', '$tag-' || i, partition => i % 4)});
}

# wait until the consumers printed every record with the tag; returns the
# values printed (with their repeats)
sub wait_printed
{
	my ($tag, $n, @consumers) = @_;
	my @values;
	for (my $i = 0; $i < 300; $i++)
	{
		@values = grep { /^\d+:\d+ \Q$tag\E-/ } map { printed($_) } @consumers;
		my %seen = map { (split / /)[1] => 1 } @values;
		return @values if scalar(keys %seen) >= $n;
		usleep(100_000);
	}
	return @values;
}

sub once_each
{
	my ($tag, $n, @lines) = @_;
	my %count;
	$count{ (split / /)[1] }++ for @lines;
	my @wrong = grep { ($count{"$tag-$_"} // 0) != 1 } 1 .. $n;
	diag("printed not once: @wrong[0 .. ($#wrong < 9 ? $#wrong : 9)]") if @wrong;
	return @wrong == 0 && scalar(keys %count) == $n;
}

# --- two consumers share the topic -------------------------------------------
my $c1 = start_consumer('c1');
ok(wait_for_members(q{SELECT string_agg(cardinality(partitions)::text, ',') = '4'
                        FROM pgq_members WHERE group_id = 'g1'}, 60),
	'the first kcat -G consumer owns every partition');
my $c2 = start_consumer('c2');
ok(wait_for_members(q{SELECT string_agg(cardinality(partitions)::text, ',') = '2,2'
                        FROM pgq_members WHERE group_id = 'g1'}, 60),
	'with a second one, pgqueue gives each half of them')
  or diag('members: ' . members());

send_records('a', 200);
my @a = wait_printed('a', 200, $c1, $c2);
ok(once_each('a', 200, @a), 'together the two consumers print every record once');
my %by_c1 = map { (split /:/)[0] => 1 } grep { /^\d+:\d+ a-/ } printed($c1);
my %by_c2 = map { (split /:/)[0] => 1 } grep { /^\d+:\d+ a-/ } printed($c2);
is(scalar(keys %by_c1) . ' ' . scalar(keys %by_c2), '2 2',
	'each consumer printed the records of two partitions');
ok(!grep({ $by_c2{$_} } keys %by_c1), 'and none printed a partition of the other');

ok( wait_for_members(q{SELECT bool_and(lag = 0) FROM pgq_consumer_lag
                        WHERE group_id = 'g1' AND topic = 'orders'}, 30),
	"pgq_consumer_lag shows the Kafka members' commits: lag 0");

# --- kill -9 one of them ----------------------------------------------------
$c2->{h}->signal('KILL');
eval { $c2->{h}->finish };
ok( wait_for_members(q{SELECT string_agg(cardinality(partitions)::text, ',') = '4'
                        FROM pgq_members WHERE group_id = 'g1'}, 30),
	'after its session timeout the survivor owns every partition')
  or diag('members: ' . members());
send_records('b', 100);
my @b = wait_printed('b', 100, $c1);
ok(once_each('b', 100, @b), 'and prints every record sent afterwards, once');

# --- a SQL member joins the group ----------------------------------------------
my @polled;

# a poll, and the commit of what it returned in the same session: the
# positions a session set go with it (docs/consuming.md)
sub poll_sql
{
	push @polled, grep { /^\d+:\d+ / } split /\n/, $node->safe_psql('postgres', q{
		SELECT partition || ':' || msg_offset || ' ' || convert_from(value, 'UTF8')
		  FROM pgq_poll('g1', 'orders', 100, 0, 'sql-1');
		SELECT count(*) FROM pgq_commit('g1', 'sql-1');});
}

my $balanced = 0;
for (my $i = 0; $i < 300 && !$balanced; $i++)
{
	poll_sql();
	$balanced = wait_for_members(q{SELECT string_agg(cardinality(partitions)::text, ',') = '2,2'
	                                 FROM pgq_members WHERE group_id = 'g1'}, 0.1);
}
ok($balanced, 'a SQL member polling the group gets half of the partitions')
  or diag('members: ' . members());
send_records('c', 200);
my @c;
for (my $i = 0; $i < 300; $i++)
{
	poll_sql();
	@c = (grep({ / c-/ } @polled), grep { /^\d+:\d+ c-/ } printed($c1));
	my %seen = map { (split / /)[1] => 1 } @c;
	last if keys %seen >= 200;
	usleep(100_000);
}
ok(once_each('c', 200, @c), 'the Kafka and the SQL member print and poll every record once');

# --- Postgres restarts under them ---------------------------------------------------
my $committed = 0;
for (my $i = 0; $i < 300 && !$committed; $i++)
{
	poll_sql();
	$committed = wait_for_members(q{SELECT bool_and(lag = 0) FROM pgq_consumer_lag
	                                 WHERE group_id = 'g1' AND topic = 'orders'}, 0.1);
}
ok($committed, 'both members committed everything');
$node->restart;
is($node->safe_psql('postgres', q{SELECT count(*) FROM pgq_members}), 0,
	'a restart of Postgres ends every lease');
$balanced = 0;
for (my $i = 0; $i < 600 && !$balanced; $i++)
{
	poll_sql();
	$balanced = wait_for_members(q{SELECT string_agg(cardinality(partitions)::text, ',') = '2,2'
	                                 FROM pgq_members WHERE group_id = 'g1'}, 0.1);
}
ok($balanced, 'the kcat consumer joins again through the gateway, beside the SQL member')
  or diag('members: ' . members());
send_records('e', 200);
my @e;
for (my $i = 0; $i < 300; $i++)
{
	poll_sql();
	@e = (grep({ / e-/ } @polled), grep { /^\d+:\d+ e-/ } printed($c1));
	my %seen = map { (split / /)[1] => 1 } @e;
	last if keys %seen >= 200;
	usleep(100_000);
}
ok(once_each('e', 200, @e), 'and they print and poll every record sent afterwards once');

my @all = (@polled, map { printed($_) } ($c1, $c2));
my $all_once = 1;
for my $batch ([ 'a', 200 ], [ 'b', 100 ], [ 'c', 200 ], [ 'e', 200 ])
{
	my ($tag, $n) = @$batch;
	$all_once &&= once_each($tag, $n, grep { / \Q$tag\E-/ } @all);
}
ok($all_once, 'over all of it, the group printed or polled every record exactly once');
is($double_owner, 0, 'no partition ever had two owners');

$c1->{h}->signal('TERM');
eval { $c1->{h}->finish };

# --- two client libraries without a common protocol in one group ----------------
my $c3 = start_consumer('c3', 'mix', '-X', 'partition.assignment.strategy=range');
my $kp = { out => "$dir/kp.out" };
$kp->{h} = IPC::Run::start(
	[
		'/usr/bin/python3', "$FindBin::RealBin/../clients/gw_group_kafka_python.py",
		$gw->{bootstrap}, 'mix'
	],
	'<', \undef, '>', $kp->{out}, '2>', "$dir/kp.err", IPC::Run::timeout(180));
ok( wait_for_members(q{SELECT string_agg(cardinality(partitions)::text, ',') = '2,2'
                        FROM pgq_members WHERE group_id = 'mix'}, 60),
	'a kcat (range) and a python3-kafka (round-robin) consumer share a group, half each')
  or diag('members: ' . members());
send_records('d', 200);
my @d = wait_printed('d', 200, $c3, $kp);
ok(once_each('d', 200, @d), 'together they print every record once');
my %by_c3 = map { (split /:/)[0] => 1 } grep { / d-/ } printed($c3);
my %by_kp = map { (split /:/)[0] => 1 } grep { / d-/ } printed($kp);
is(scalar(keys %by_c3) . ' ' . scalar(keys %by_kp), '2 2', 'each of them two partitions');
is($double_owner, 0, 'still no partition with two owners');

$_->{h}->signal('TERM') for ($c3, $kp);
eval { $_->{h}->finish } for ($c3, $kp);

# --- the end --------------------------------------------------------------------------
gateway_stop($gw);
$node->stop;
done_testing();
