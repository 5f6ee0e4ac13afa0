# Copyright (c) pgqueue contributors
#
# 056_gateway_group_protocol.pl
#	  The gateway's group coordinator, request by request (Kafka requests
#	  written by hand, test/clients/kafka_group_raw.py), against pgqueue's
#	  own view of the group (docs/gateway.md, "Consumer groups"):
#	  - FindCoordinator names the gateway; JoinGroup v4+ asks a new member
#		to come back with the id it made (MEMBER_ID_REQUIRED), v0-3 use it
#		at once; no member leads; the first eager protocol is chosen;
#	  - a second member: the first one's heartbeat answers
#		REBALANCE_IN_PROGRESS, it commits what it gives up and rejoins, the
#		second gets the freed partitions: each member's assignment is what
#		pgq_members shows, and no partition has two owners;
#	  - a SQL pgq_poll member in the same group: the balance takes it in,
#		still one owner per partition;
#	  - OffsetCommit: the owner's commit (with metadata) is what
#		OffsetFetch and pgq_consumer_lag show; a member's commit for a
#		partition it lost gets ILLEGAL_GENERATION, a commit of a member
#		that left UNKNOWN_MEMBER_ID, and generation -1 commits only while
#		the group has no live member;
#	  - a cooperative member keeps the partitions it lists as owned;
#	  - LeaveGroup (v0 and v3), DescribeGroups, ListGroups;
#	  - bad requests: Kafka's error codes, or a closed connection after
#		which the gateway still serves; every request of the group APIs cut
#		short at every byte, and with every byte damaged, gets an answer or
#		a closed connection, never a crash, a hang or a leak (the gateway
#		runs under AddressSanitizer).

use strict;
use warnings;
use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes ();
use FindBin;
use lib $FindBin::RealBin;
use GatewayTap;

my $node = PostgreSQL::Test::Cluster->new('gw_groups');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pgqueue'");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pgqueue;
	SELECT pgq_create_topic('orders', 4);
	SELECT pgq_create_topic('audit', 2);
	SELECT pgq_send('orders', 'r' || i, partition => i % 4) FROM generate_series(0, 39) i;
});

# --- the gateway ------------------------------------------------------------
my $gw = gateway_start($node);
my $bootstrap = $gw->{bootstrap};
my $port = $gw->{port};
my $raw_client = dirname(__FILE__) . '/../clients/kafka_group_raw.py';

# one request; its answer's fields as a hash (and the whole line as "line")
sub kafka
{
	my @args = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ '/usr/bin/python3', $raw_client, $bootstrap, @args ],
		'>', \$out, '2>', \$err, IPC::Run::timeout(60));
	chomp $out;
	diag("kafka_group_raw.py @args: $err") if $err ne '';
	my %f = (line => $out);
	$f{$1} = $2 while $out =~ /(\w+)=(\S*)/g;
	return \%f;
}


# the members of group g1 in topic orders: "member:{partitions} ..."
sub members
{
	my ($group) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT string_agg(member_id || ':' || partitions::text, ' ' ORDER BY member_id)
		  FROM pgq_members WHERE group_id = '$group' AND topic = 'orders'});
}

# no partition of orders has two owners in a group
sub one_owner_each
{
	my ($group) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT count(*) = count(DISTINCT p)
		  FROM pgq_members m, unnest(m.partitions) p
		 WHERE m.group_id = '$group' AND m.topic = 'orders'});
}

# --- FindCoordinator, joining --------------------------------------------------
my $f = kafka('find', 'g1');
is($f->{line}, "error=0 node=$f->{node} host=127.0.0.1 port=$port",
	'FindCoordinator: this gateway coordinates the group');

$f = kafka('join', 'g1', '', 'orders', 'v=5', 'client=clientA');
is($f->{error}, 79, 'JoinGroup v5 without a member id: MEMBER_ID_REQUIRED');
like($f->{member}, qr/^clientA-[0-9a-f-]{36}$/, 'with a new member id made from the client id');
my $a = $f->{member};
is(members('g1'), '', 'and no member yet');

$f = kafka('join', 'g1', $a, 'orders', 'v=5', 'protocols=cooperative-sticky,range,roundrobin');
is($f->{error}, 0, 'JoinGroup with that id');
is($f->{protocol}, 'range', 'the first eager protocol is chosen');
is($f->{leader}, '', 'no member leads');
is($f->{members}, 0, 'so the answer lists no members');
my $gen_a = $f->{generation};
cmp_ok($gen_a, '>', 0, 'a generation');
is(kafka('sync', 'g1', $a, $gen_a)->{assignment}, 'orders:0,1,2,3',
	'SyncGroup: the only member gets every partition');
is(members('g1'), "$a:{0,1,2,3}", 'as pgq_members shows');
is(kafka('heartbeat', 'g1', $a, $gen_a)->{error}, 0, 'Heartbeat: nothing changed');

# --- a second member ------------------------------------------------------------
$f = kafka('join', 'g1', '', 'orders', 'v=3');
is($f->{error}, 0, 'JoinGroup v3 without a member id uses the new id at once');
my $b = $f->{member};
my $gen_b = $f->{generation};
is(kafka('sync', 'g1', $b, $gen_b)->{assignment}, 'orders:',
	'the second member gets nothing while the first holds everything');
is(kafka('heartbeat', 'g1', $a, $gen_a)->{error}, 27,
	"the first member's heartbeat: REBALANCE_IN_PROGRESS");
is(kafka('commit', 'g1', $a, $gen_a, 'orders:2:5:from-a', 'orders:3:7')->{line},
	'orders:2:0 orders:3:0', 'it commits the partitions it gives up, with its old generation');
$f = kafka('join', 'g1', $a, 'orders');
is($f->{error}, 0, 'and rejoins');
$gen_a = $f->{generation};
is(kafka('sync', 'g1', $a, $gen_a)->{assignment}, 'orders:0,1', 'keeping half of the partitions');
is(kafka('heartbeat', 'g1', $b, $gen_b)->{error}, 27, 'the second member is told to rebalance');
$f = kafka('join', 'g1', $b, 'orders');
$gen_b = $f->{generation};
is(kafka('sync', 'g1', $b, $gen_b)->{assignment}, 'orders:2,3', 'and gets the other half');
is(kafka('heartbeat', 'g1', $a, $gen_a)->{error}, 0, 'the first member need not rejoin again');
is(kafka('heartbeat', 'g1', $b, $gen_b)->{error}, 0, 'nor the second');
is(members('g1'), join(' ', sort("$a:{0,1}", "$b:{2,3}")), 'pgq_members agrees');

# --- commits and offsets ---------------------------------------------------------
is(kafka('commit', 'g1', $a, $gen_a, 'orders:2:9')->{line}, 'orders:2:22',
	'a commit for a partition the member lost: ILLEGAL_GENERATION');
is(kafka('commit', 'g1', $b, $gen_b, 'orders:2:6:from-b', 'orders:9:1')->{line},
	'orders:2:0 orders:9:3',
	'each partition gets its own error (UNKNOWN_TOPIC_OR_PARTITION) and the others commit');
is( kafka('commit', 'g1', $b, $gen_b, 'orders:3:1000', 'orders:2:6:' . ('m' x 5000))->{line},
	'orders:3:1 orders:2:12',
	'an offset above the high watermark: OFFSET_OUT_OF_RANGE; '
	  . 'metadata over 4096 bytes: OFFSET_METADATA_TOO_LARGE');
is(kafka('commit', 'g1', '', -1, 'orders:0:1')->{line}, 'orders:0:25',
	'generation -1 while the group has members: UNKNOWN_MEMBER_ID');
is(kafka('fetch', 'g1', 'orders:0,2,3', 'nosuch:0')->{line},
	'error=0 orders:0:-1:None:0 orders:2:6:from-b:0 orders:3:7:None:0 nosuch:0:-1:None:0',
	'OffsetFetch: the committed offsets and metadata, -1 where none');
is(kafka('fetch', 'g1', 'orders:2', 'v=1')->{line}, 'error=0 orders:2:6:from-b:0', 'OffsetFetch v1');
is(kafka('fetch', 'g1', 'all')->{line}, 'error=0 orders:2:6:from-b:0 orders:3:7:None:0',
	'OffsetFetch of all topics');
is( $node->safe_psql('postgres', q{
		SELECT string_agg(partition || ':' || coalesce(committed_offset::text, '-') || ':' || lag
		                  || ':' || coalesce(metadata, '-'), ' ' ORDER BY partition)
		  FROM pgq_consumer_lag WHERE group_id = 'g1'}),
	'0:-:10:- 1:-:10:- 2:6:4:from-b 3:7:3:-',
	"pgq_consumer_lag shows the Kafka members' commits");

# --- a SQL member in the same group ---------------------------------------------
$node->safe_psql('postgres', q{SELECT count(*) FROM pgq_poll('g1', 'orders', 1, 0, 'sql-1')});
for my $round (1 .. 4)
{
	for my $m ([ \$a, \$gen_a ], [ \$b, \$gen_b ])
	{
		my ($id, $gen) = (${ $m->[0] }, $m->[1]);
		next if kafka('heartbeat', 'g1', $id, $$gen)->{error} != 27;
		$$gen = kafka('join', 'g1', $id, 'orders')->{generation};
		kafka('sync', 'g1', $id, $$gen);
	}
	$node->safe_psql('postgres', q{SELECT count(*) FROM pgq_poll('g1', 'orders', 1, 0, 'sql-1')});
	is(one_owner_each('g1'), 't', "a SQL member joined: one owner per partition (round $round)");
}
is( $node->safe_psql('postgres', q{
		SELECT string_agg(cardinality(partitions)::text, ',' ORDER BY cardinality(partitions))
		  FROM pgq_members WHERE group_id = 'g1' AND topic = 'orders'}),
	'1,1,2', 'the three members share the partitions');
is(kafka('heartbeat', 'g1', $a, $gen_a)->{error}, 0, 'the Kafka members settled');
is(kafka('heartbeat', 'g1', $b, $gen_b)->{error}, 0, 'both of them');

# --- a cooperative member ----------------------------------------------------
$f = kafka('join', 'g2', 'coop-1', 'orders', 'protocols=cooperative-sticky');
is($f->{protocol}, 'cooperative-sticky', 'a client offering only cooperative-sticky gets it');
is(kafka('sync', 'g2', 'coop-1', $f->{generation})->{assignment}, 'orders:0,1,2,3', 'all partitions');
$f = kafka('join', 'g2', 'coop-2', 'orders', 'protocols=cooperative-sticky');
$f = kafka('join', 'g2', 'coop-1', 'orders', 'protocols=cooperative-sticky',
	'owned=orders:0,orders:1,orders:2,orders:3');
is(kafka('sync', 'g2', 'coop-1', $f->{generation})->{assignment}, 'orders:0,1',
	'a rejoin listing what it owns: its target is its share');
is(members('g2'), 'coop-1:{0,1,2,3} coop-2:{}',
	'and it keeps the rest until it gives them up (cooperative)');
$f = kafka('join', 'g2', 'coop-1', 'orders', 'protocols=cooperative-sticky',
	'owned=orders:0,orders:1');
is(members('g2'), 'coop-1:{0,1} coop-2:{}', 'a rejoin without them gives them up');

# --- generation -1 commits -----------------------------------------------------
is(kafka('commit', 'g3', '', -1, 'orders:1:4:manual')->{line}, 'orders:1:0',
	'generation -1 in a group with no live member: committed');
is(kafka('fetch', 'g3', 'orders:1')->{line}, 'error=0 orders:1:4:manual:0', 'and fetched back');
is(kafka('commit', 'g3', '', 3, 'orders:1:4')->{line}, 'orders:1:25',
	'a commit naming no member with a generation: UNKNOWN_MEMBER_ID');

# --- leaving ---------------------------------------------------------------------
$f = kafka('leave', 'g1', "$a,nobody");
is($f->{line}, "error=0 members=$a:0,nobody:25", 'LeaveGroup v3: each member its error');
unlike(members('g1'), qr/\Q$a\E/, 'the member left');
is(kafka('heartbeat', 'g1', $a, $gen_a)->{error}, 25, 'its heartbeat: UNKNOWN_MEMBER_ID');
is(kafka('commit', 'g1', $a, $gen_a, 'orders:0:1')->{line}, 'orders:0:25',
	'its commit: UNKNOWN_MEMBER_ID');
is(kafka('sync', 'g1', $a, $gen_a)->{error}, 25, 'its SyncGroup: UNKNOWN_MEMBER_ID');
is(kafka('leave', 'g1', $b, 'v=0')->{line}, 'error=0', 'LeaveGroup v0');

# --- DescribeGroups and ListGroups ---------------------------------------------
$node->safe_psql('postgres', q{SELECT pgq_leave('g1', 'sql-1')});
$f = kafka('describe', 'g2', 'g3', 'nosuch');
is( $f->{line},
	'g2:error=0,state=Stable,type=consumer,protocol=pgqueue,'
	  . 'members=coop-1[orders](orders:0,1)+coop-2[orders](orders:) '
	  . 'g3:error=0,state=Empty,type=consumer,protocol=,members= '
	  . 'nosuch:error=0,state=Dead,type=,protocol=,members=',
	'DescribeGroups: members with their topics and partitions, empty and unknown groups');
is(kafka('describe', 'g3', 'v=0')->{line}, 'g3:error=0,state=Empty,type=consumer,protocol=,members=',
	'DescribeGroups v0');
is(kafka('list')->{line}, 'error=0 groups=g1/consumer,g2/consumer,g3/consumer', 'ListGroups');
is(kafka('list', 'v=0')->{line}, 'error=0 groups=g1/consumer,g2/consumer,g3/consumer', 'ListGroups v0');

# --- a subscription that drops a topic --------------------------------------------
sub topics_of
{
	my ($group) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT string_agg(topic || partitions::text, ' ' ORDER BY topic)
		  FROM pgq_members WHERE group_id = '$group'});
}
$f = kafka('join', 'g6', 'sub-1', 'orders,audit');
is(kafka('sync', 'g6', 'sub-1', $f->{generation})->{assignment}, 'audit:0,1;orders:0,1,2,3',
	'a member of two topics gets the partitions of both');
is(topics_of('g6'), 'audit{0,1} orders{0,1,2,3}', 'it is a member in both');
$f = kafka('join', 'g6', 'sub-1', 'orders');
is(topics_of('g6'), 'orders{0,1,2,3}', 'a JoinGroup without one of them leaves that topic');
is(kafka('heartbeat', 'g6', 'sub-1', $f->{generation})->{error}, 0, 'and its heartbeats are fine');
is(kafka('join', 'g6', 'sub-1', 'nosuch')->{generation}, 0,
	'a subscription of no existing topic: generation 0');
is(topics_of('g6'), '', 'and no membership');
is(kafka('heartbeat', 'g6', 'sub-1', 0)->{error}, 0, 'whose heartbeats answer no error');

# --- bad requests ------------------------------------------------------------------
is(kafka('join', 'g4', 'm1', 'orders', 'type=connect')->{error}, 23,
	'a protocol type other than consumer: INCONSISTENT_GROUP_PROTOCOL');
is(kafka('join', 'g4', 'm1', 'orders', 'timeout=50')->{error}, 26,
	'a session timeout below 100 ms: INVALID_SESSION_TIMEOUT');
is(kafka('join', '', 'm1', 'orders')->{error}, 24, 'an empty group id: INVALID_GROUP_ID');
is(kafka('join', 'g4', 'x' x 200, 'orders')->{error}, 25, 'a member id pgqueue cannot take: UNKNOWN_MEMBER_ID');
is(kafka('heartbeat', 'g4', 'nobody', 5)->{error}, 25, 'a heartbeat of no member: UNKNOWN_MEMBER_ID');
is(members('g4'), '', 'none of them joined');
# JoinGroup v5 cut after the session timeout
is(kafka('raw', 11, 5, '0002673400001770')->{closed}, 1, 'a truncated JoinGroup closes the connection');
# OffsetCommit v7 claiming 2^31-1 topics in a few bytes
is(kafka('raw', 8, 7, '000267310000000100016dffff7fffffff')->{closed}, 1,
	'an OffsetCommit with an absurd array length closes the connection');
# a subscription that is not ConsumerProtocolSubscription
like( kafka('raw', 11, 1,
		'00026734' . '00001770' . '00007530' . '0000' . '0008' . unpack('H*', 'consumer')
		  . '00000001' . '0005' . unpack('H*', 'range') . '00000003' . '000100')->{line},
	qr/^closed=0 body=0017/, 'a malformed subscription: INCONSISTENT_GROUP_PROTOCOL');
is(kafka('find', 'g1')->{error}, 0, 'the gateway still serves');

# every group request, cut at each byte and with each byte damaged
my @requests = (
	[ 'find', 'g1' ],
	[ 'join', 'g5', 'm1', 'orders,audit', 'owned=orders:1' ],
	[ 'join', 'g5', 'm1', 'orders', 'v=0' ],
	[ 'sync', 'g5', 'm1', 1 ],
	[ 'heartbeat', 'g5', 'm1', 1 ],
	[ 'leave', 'g5', 'm1,m2' ],
	[ 'commit', 'g5', 'm1', 1, 'orders:1:1:md', 'audit:0:1' ],
	[ 'commit', 'g5', 'm1', 1, 'orders:1:1', 'v=2' ],
	[ 'fetch', 'g5', 'orders:0,1', 'audit:1' ],
	[ 'describe', 'g5', 'g1' ],
	[ 'list' ]);
my ($answered, $closed, $sent, $slow) = (0, 0, 0, 0);
for my $r (@requests)
{
	my ($api, $version, $hex) = split / /, kafka(@$r, 'dump=1')->{line};
	my $body = pack('H*', $hex);
	my @variants = map { substr($body, 0, $_) } 0 .. length($body) - 1;
	for my $i (0 .. length($body) - 1)
	{
		my $damaged = $body;
		substr($damaged, $i, 1) = chr(ord(substr($body, $i, 1)) ^ 0xff);
		push @variants, $damaged;
	}
	for my $v (@variants)
	{
		my $start = Time::HiRes::time();
		my $s = kafka_connect($gw);
		my ($cid) = kafka_request($s, $api, $version, 1, $v);
		close $s;
		$sent++;
		defined $cid ? $answered++ : $closed++;
		# an answer or a close comes at once; waiting means a hang
		$slow++ if Time::HiRes::time() - $start > 5;
	}
}
note("$sent damaged requests: $answered answered, $closed closed");
is($slow, 0, "$sent cut or damaged requests: each answered or closed at once");
cmp_ok($closed, '>', 0, 'some of them closed the connection');
is(kafka('find', 'g1')->{error}, 0, 'and the gateway still serves');

gateway_stop($gw);
$node->stop;
done_testing();
