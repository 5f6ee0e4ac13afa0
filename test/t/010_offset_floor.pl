# 010_offset_floor.pl
#	  An offset once handed out is never handed out again, even when the
#	  record that had it was rolled back and VACUUM removed it before a
#	  restart: the partition's offset floor (a sequence, raised ahead of the
#	  counter and WAL-logged) keeps the counter above it.  Otherwise a group
#	  that committed past the gap would never see the record that reused it.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('floor');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pgqueue'\nautovacuum = off");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pgqueue;
	SELECT pgq_create_topic('r', 1);
	SELECT pgq_send('r', 'a');
	BEGIN; SELECT pgq_send('r', 'rolled back'); ROLLBACK;
});
$node->restart;

my $segment = $node->safe_psql('postgres', q{SELECT relid FROM pgqueue.segment});
is($node->safe_psql('postgres', q{
	SELECT string_agg(convert_from(value, 'UTF8'), ',') FROM pgq_poll('g', 'r', 10, 0, 'm');
	SELECT count(*) FROM pgq_commit('g', 'm');
	SELECT committed_offset >= 2 FROM pgq_consumer_lag WHERE group_id = 'g'}), "a\n1\nt",
	'the group read offset 0 and committed past the rolled-back offset 1');

$node->safe_psql('postgres', "VACUUM $segment");
is($node->safe_psql('postgres', qq{SELECT count(*) FROM $segment}), '1',
	'VACUUM removed the rolled-back record');
$node->restart;

my $offset = $node->safe_psql('postgres', q{SELECT msg_offset FROM pgq_send('r', 'c')});
cmp_ok($offset, '>=', 2, "a new send does not reuse the rolled-back offset 1 (got $offset)");
is($node->safe_psql('postgres',
		q{SELECT string_agg(convert_from(value, 'UTF8'), ',') FROM pgq_poll('g', 'r', 10, 0, 'm')}),
	'c', 'the group, which committed past offset 1, gets the new record');

$node->stop;
done_testing();
