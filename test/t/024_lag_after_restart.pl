# 024_lag_after_restart.pl
#	  Offset gaps are not records: a group that has read everything up to
#	  the last stable offset can commit the end and shows lag 0, also when
#	  the end is a gap: after a restart (the offset floor skips up to 32
#	  offsets, so the high watermark moves up with no record behind it) and
#	  after a rolled-back send at the tail that VACUUM removed.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('lag');
$node->init;
$node->append_conf('postgresql.conf', q{shared_preload_libraries = 'pgqueue'});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pgqueue;
	SELECT pgq_create_topic('lagged');
	SELECT count(*) FROM generate_series(1, 3) i, LATERAL pgq_send('lagged', 'r' || i);
	SELECT count(*) FROM pgq_poll('g', 'lagged', 10, 0, 'm');
	SELECT count(*) FROM pgq_commit('g', 'm');
});
is($node->safe_psql('postgres', q{SELECT committed_offset || '/' || lag FROM pgq_consumer_lag}),
	'3/0', 'caught up before the restart');

$node->restart;
# the first send after the restart takes its offset from the floor, above a gap
$node->safe_psql('postgres', q{SELECT count(*) FROM pgq_send('lagged', 'after')});
my ($offset) = $node->safe_psql('postgres',
	q{SELECT max(msg_offset) FROM pgq_fetch('lagged', 0, 3)});
cmp_ok($offset, '>', 3, "the send after the restart got offset $offset, above a gap");
is( $node->safe_psql(
		'postgres', q{
	SELECT string_agg(msg_offset::text, ',') FROM pgq_poll('g', 'lagged', 10, 0, 'm');
	SELECT count(*) FROM pgq_commit('g', 'm')}),
	"$offset\n1", 'the member reads the record after the gap, and commits');
is($node->safe_psql('postgres', q{SELECT lag FROM pgq_consumer_lag}), '0',
	'committed past the gap: lag 0');
is($node->safe_psql('postgres', q{SELECT messages FROM pgq_partitions}), '4',
	'pgq_partitions counts the 4 records, not the offsets of the gap');

# a restart with nothing sent after it: the high watermark is a gap
$node->restart;
$node->safe_psql('postgres', q{SELECT count(*) FROM pgq_send('lagged', 'x');});
$node->safe_psql('postgres', q{
	BEGIN; SELECT count(*) FROM pgq_send('lagged', 'rolled back'); ROLLBACK;
	SELECT count(*) FROM pgq_poll('g', 'lagged', 10, 0, 'm');
	SELECT count(*) FROM pgq_commit('g', 'm');
});
# VACUUM removes the rolled-back record's index entry: the tail is a bare gap
$node->safe_psql('postgres', q{
	SELECT format('VACUUM %s', relid::regclass) FROM pgqueue.segment \gexec
});
$node->restart;
is( $node->safe_psql(
		'postgres', q{
	SELECT count(*) FROM pgq_poll('g', 'lagged', 10, 0, 'm')}),
	'0', 'nothing new to read after the restarts');
my $hwm = $node->safe_psql('postgres', q{SELECT high_watermark FROM pgq_partitions});
$node->safe_psql('postgres', q{SELECT count(*) FROM pgq_poll('g', 'lagged', 10, 0, 'm'); SELECT count(*) FROM pgq_commit('g', 'm')});
is($node->safe_psql('postgres', q{SELECT committed_offset || '/' || lag FROM pgq_consumer_lag}),
	"$hwm/0", 'a caught-up member commits the high watermark and shows lag 0');

$node->stop;
done_testing();
