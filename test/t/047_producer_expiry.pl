# Copyright (c) pgqueue contributors
#
# 047_producer_expiry.pl
#	  Idempotent producers' state in shared memory is bounded and expires
#	  (docs/producers.md): with room for few producers, a new producer is
#	  refused (53200) while the others' states are fresh; once they have been
#	  idle for pgqueue.producer_id_expiration the worker forgets them, the new
#	  producer sends, and an expired producer's retry still finds its offset
#	  (its state is rebuilt from its records).

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('expiry');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'pgqueue'
pgqueue.max_producer_states = 16
pgqueue.producer_id_expiration = '1h'
pgqueue.maintenance_interval = 100
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pgqueue;
	SELECT pgq_create_topic('exp', 1);
	CREATE FUNCTION send_as_new_producer(seq integer DEFAULT 0) RETURNS bigint LANGUAGE sql AS $$
	  SELECT s.msg_offset FROM pgq_init_producer() p,
	         LATERAL pgq_send('exp', 'v', producer_id => p.producer_id, producer_epoch => 0, sequence => seq) s
	$$;
});

# fill shared memory with fresh producers until a new one is refused
my ($sent, $rc, $out, $err) = (0);
for (1 .. 200)
{
	($rc, $out, $err) = $node->psql('postgres', 'SELECT send_as_new_producer()');
	last if $rc != 0;
	$sent++;
}
like($err, qr/too many idempotent producers/, "a new producer is refused once $sent are in shared memory");
cmp_ok($sent, '>=', 16, 'room for at least pgqueue.max_producer_states producers');
cmp_ok($sent, '<', 200, 'and a bound');
my $first_offset = $node->safe_psql('postgres',
	q{SELECT msg_offset FROM pgq_fetch('exp', 0, 0, 1)});

# make them expire: the worker forgets the idle states
$node->safe_psql('postgres', q{ALTER SYSTEM SET pgqueue.producer_id_expiration = '1s'; SELECT pg_reload_conf()});
ok( $node->poll_query_until(
		'postgres', q{SELECT send_as_new_producer() IS NOT NULL}, 't'),
	'after the others expired, a new producer sends');
# producer 1 (the first of the expired ones) retries its sequence 0 (until
# there is room: the producers the poll above tried while memory was full
# are in it too until they expire in turn)
ok( $node->poll_query_until(
		'postgres', q{
	SELECT msg_offset FROM pgq_send('exp', 'v', producer_id => 1, producer_epoch => 0, sequence => 0)},
		$first_offset),
	'an expired producer\'s retry returns its offset: its state is rebuilt from the log');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pgq_fetch('exp', 0, 0, 1000)}),
	$sent + 1, 'and appends nothing');

$node->stop;
done_testing();
