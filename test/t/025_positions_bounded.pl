# 025_positions_bounded.pl
#	  Members' positions live in shared memory, bounded by
#	  pgqueue.max_positions: a poll that would need more fails with 53200
#	  and a hint, and the worker frees the positions of members whose lease
#	  expired, so that others can use the slots.  The positions a session
#	  set go when the session ends.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('positions');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'pgqueue'
pgqueue.max_positions = 16
pgqueue.maintenance_interval = 100
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pgqueue;
	SELECT pgq_create_topic('wide', 12);
	SELECT pgq_create_topic('narrow', 8);
	SELECT pgq_alter_group('g', '{"session.timeout.ms": 500}');
});

# one member, on a session that stays, reads 12 partitions: 12 positions
my $a = $node->background_psql('postgres');
is($a->query_safe(q{SELECT count(*) FROM pgq_poll('g', 'wide', 10, 0, 'a')}),
	'0', 'a member of 12 partitions polls');

# another 8 do not fit next to them
my ($ret, $out, $err) = $node->psql('postgres',
	q{SELECT count(*) FROM pgq_poll('g', 'narrow', 10, 0, 'b')});
isnt($ret, 0, 'a poll that needs more positions than pgqueue.max_positions fails');
like($err, qr/ERROR:  out of pgqueue position slots/, 'with its own message');
like($err, qr/HINT:  Increase pgqueue.max_positions and restart the server\./, 'and a hint');

# once the first member's lease expired, the worker frees its positions
ok( $node->poll_query_until(
		'postgres', q{SELECT count(*) = 0 FROM pgq_members WHERE member_id = 'a'}),
	'the silent member expired');
ok( $node->poll_query_until(
		'postgres', q{SELECT count(*) FROM pgq_poll('g', 'narrow', 10, 0, 'b')}, '0'),
	'after the worker freed them, the other member gets positions');

# the positions a session set go with it: three sessions in turn read 12
# partitions each, 36 positions in all
$a->quit;
for my $round (1 .. 3)
{
	is($node->safe_psql('postgres', q{SELECT count(*) FROM pgq_poll('g2', 'wide', 10, 0)}),
		'0', "session member $round reads 12 partitions, then its session ends");
}

$node->stop;
done_testing();
