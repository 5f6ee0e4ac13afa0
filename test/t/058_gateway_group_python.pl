# Copyright (c) pgqueue contributors
#
# 058_gateway_group_python.pl
#	  python3-confluent-kafka's Consumer through the gateway
#	  (test/clients/gw_group_consumer.py), docs/gateway.md "Consumer
#	  groups":
#	  - with enable.auto.commit false and commit(asynchronous=False) after
#		each record, a consumer that stops resumes where it committed, also
#		after the gateway and Postgres restarted: every record once;
#	  - a static member (group.instance.id) that stops does not leave (as
#		KIP-345 wants): it keeps its partitions, and its next process is the
#		same member and reads on from its commits;
#	  - cooperative-sticky consumers: when a second one joins, the first
#		revokes only the partitions it hands over, and keeps consuming the
#		others (incremental rebalancing);
#	  - a commit for a partition the consumer lost in a rebalance (a SQL
#		member joined the group) raises ILLEGAL_GENERATION;
#	  - the consumer's close() leaves the group (LeaveGroup): the SQL member
#		takes every partition;
#	  - AdminClient.list_groups() (ListGroups and DescribeGroups) shows the
#		groups, their state, and each member's topics and partitions, the
#		SQL member's included.

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use GatewayTap;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('gw_py_groups');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pgqueue'");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pgqueue;
	SELECT pgq_create_topic('orders', 4);
	SELECT count(*) FROM generate_series(0, 99) i,
	       LATERAL pgq_send('orders', 'v' || i, partition => i % 4);
});
my $client = "$FindBin::RealBin/../clients/gw_group_consumer.py";
my $gw = gateway_start($node);

sub consumer
{
	my ($gw, @args) = @_;
	my ($rc, $out, $err) = GatewayTap::run_bounded(
		[ '/usr/bin/python3', $client, $gw->{bootstrap}, @args ], timeout => 120);
	diag($err) if $rc != 0;
	return ($rc, $out);
}

# --- resuming from committed offsets -------------------------------------------
my ($rc, $out) = consumer($gw, 'consume', 'py1', 30);
is($rc, 0, 'a consumer reads 30 records, committing each');
my @first = $out =~ /^record (\S+ \S+)$/mg;
is(scalar(@first), 30, 'it printed them');

gateway_stop($gw);
$node->restart;
$gw = gateway_start($node);
($rc, $out) = consumer($gw, 'consume', 'py1', 1000);
is($rc, 0, 'after a restart of the gateway and of Postgres, a new consumer of the group');
my @second = $out =~ /^record (\S+ \S+)$/mg;
my %count;
$count{ (split / /)[1] }++ for @first, @second;
is(scalar(@second), 70, 'reads the 70 others');
is(join(',', grep { ($count{"v$_"} // 0) != 1 } 0 .. 99), '', 'every record once');
is( $node->safe_psql('postgres', q{
		SELECT string_agg(partition || ':' || committed_offset, ' ' ORDER BY partition)
		  FROM pgq_consumer_lag WHERE group_id = 'py1'}),
	'0:25 1:25 2:25 3:25', 'pgq_consumer_lag shows its commits');

# --- a static member ----------------------------------------------------------------
$node->safe_psql('postgres', q{
	SELECT count(*) FROM generate_series(100, 139) i,
	       LATERAL pgq_send('orders', 'v' || i, partition => i % 4);
});
($rc, $out) = consumer($gw, 'consume', 'pys', 50, 'static-1');
my @s1 = $out =~ /^record (\S+ \S+)$/mg;
is(scalar(@s1), 50, 'a static member reads 50 records');
is( $node->safe_psql('postgres', q{
		SELECT member_id || ' ' || partitions::text FROM pgq_members WHERE group_id = 'pys'}),
	'static-1 {0,1,2,3}', 'it stopped without leaving: it is still the member, with its partitions');
($rc, $out) = consumer($gw, 'consume', 'pys', 1000, 'static-1');
my @s2 = $out =~ /^record (\S+ \S+)$/mg;
%count = ();
$count{ (split / /)[1] }++ for @s1, @s2;
is(join(',', grep { ($count{"v$_"} // 0) != 1 } 0 .. 139), '',
	'its next process reads on from its commits: every record once');
is( $node->safe_psql('postgres', q{
		SELECT string_agg(member_id, ' ') FROM pgq_members WHERE group_id = 'pys'}),
	'static-1', 'as the same member');

# --- cooperative consumers -----------------------------------------------------------
sub start_cooperative
{
	my ($seconds) = @_;
	my ($o, $e) = ('', '');
	my $h = IPC::Run::start([ '/usr/bin/python3', $client, $gw->{bootstrap}, 'cooperative', 'pyc', $seconds ],
		'<', \undef, '>', \$o, '2>', \$e, IPC::Run::timeout(150));
	return { h => $h, out => \$o, err => \$e };
}

sub wait_members
{
	my ($group, $want) = @_;
	return $node->poll_query_until('postgres', qq{
		SELECT string_agg(cardinality(partitions)::text, ',' ORDER BY cardinality(partitions))
		  FROM pgq_members WHERE group_id = '$group'}, $want);
}

my $ca = start_cooperative(0);
ok(wait_members('pyc', '4'), 'a cooperative-sticky consumer gets every partition');
my $cb = start_cooperative(8);
ok(wait_members('pyc', '2,2'), 'a second one: two partitions each');
eval { $_->{h}->finish } for ($cb, $ca);
my ($before_close) = ${ $ca->{out} } =~ /\A(.*?)^closing$/ms;
my @revoked = ($before_close // '') =~ /^revoked (\S*)$/mg;
is(${ $ca->{out} } =~ /\Aadded 0,1,2,3$/m ? "@revoked" : 'no first assignment', '2,3',
	'the first revoked only the two partitions it handed over (until it closed)')
  or diag(${ $ca->{out} });
like(${ $cb->{out} }, qr/^added 2,3$/m, 'which the second got');
like($before_close // '', qr/^added 2,3$/m, 'and got them back when the second one left')
  or diag(${ $ca->{out} } . "first:\n" . ${ $ca->{err} } . "second:\n" . ${ $cb->{err} });

# --- a commit after losing the partition ----------------------------------------
my $fenced_out = '';
my $h = IPC::Run::start([ '/usr/bin/python3', $client, $gw->{bootstrap}, 'fenced', 'pyf' ],
	'<', \undef, '>', \$fenced_out, '2>&1', IPC::Run::timeout(120));
my $all = 0;
for (my $i = 0; $i < 600 && !$all; $i++)
{
	$h->pump_nb;
	$all = $fenced_out =~ /^assigned 0,1,2,3$/m;
	usleep(100_000);
}
ok($all, 'a consumer of another group gets every partition');
# a SQL member joins: it polls until the Kafka member gave it its share
for (my $i = 0; $i < 600 && $h->pumpable; $i++)
{
	$node->safe_psql('postgres', q{SELECT count(*) FROM pgq_poll('pyf', 'orders', 1, 0, 'sql-1')});
	usleep(100_000);
	$h->pump_nb;
}
eval { $h->finish };
like($fenced_out, qr/^assigned 0,1$/m, 'when a SQL member joins, it keeps half of them');
like($fenced_out, qr/^commit error ILLEGAL_GENERATION$/m,
	'its commit for a partition it lost raises ILLEGAL_GENERATION');

# --- listing and describing groups ---------------------------------------------
$node->safe_psql('postgres', q{SELECT count(*) FROM pgq_poll('pyf', 'orders', 1, 0, 'sql-1')});
($rc, $out) = consumer($gw, 'groups');
is($rc, 0, 'AdminClient.list_groups()');
like($out, qr/^group py1 Empty consumer -$/m, 'a group without live members: Empty');
like($out, qr/^group pys Stable consumer pgqueue member static-1 orders orders:0,1,2,3$/m,
	'a static member is listed by its group.instance.id');
like($out, qr/^group pyf Stable consumer pgqueue member sql-1 orders orders:0,1,2,3$/m,
	'a group with a member (the SQL one, after the Kafka one left): Stable, its topics and partitions')
  or diag($out);

gateway_stop($gw);
$node->stop;
done_testing();
