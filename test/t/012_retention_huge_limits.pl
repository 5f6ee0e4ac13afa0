# Copyright (c) pgqueue contributors
#
# 012_retention_huge_limits.pl
#	  retention.ms and segment.ms as large as a bigint allows (Kafka users
#	  write Long.MAX_VALUE, 9223372036854775807, for "forever") mean "never"
#	  to the worker (src/retention.c), not a moment that wrapped around:
#	1. with segment.ms = 9223372036854775807 (and retention.ms = -1) the
#	   active segment is never rolled over for its age;
#	2. with retention.ms = 9223372036854775807 and a short segment.ms, the
#	   partition is rolled over but no segment is ever dropped and the log
#	   keeps starting at offset 0.
#	  Before the fix, 1 rolled the partition at every round that found a
#	  record in it and 2 dropped every closed segment at the next round.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use PgqueueTap qw(send_value);
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('retention_huge_limits');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'pgqueue'
pgqueue.maintenance_interval = 100
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pgqueue');

my $max = '9223372036854775807';

sub segment_count
{
	my ($topic) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM pgqueue.segment s JOIN pgqueue.topic t USING (topic_id)"
		  . " WHERE t.name = '$topic'");
}

# 1. segment.ms = Long.MAX_VALUE never rolls for age.
$node->safe_psql('postgres',
	qq{SELECT pgq_create_topic('one_segment', 1, '{"segment.ms": $max, "retention.ms": -1}')});
for my $i (1 .. 5)
{
	send_value($node, 'one_segment', "s$i");
	usleep(300_000);    # three rounds
}
is(segment_count('one_segment'), '1',
	'with segment.ms = Long.MAX_VALUE the partition was never rolled over');

# 2. retention.ms = Long.MAX_VALUE keeps everything.
$node->safe_psql('postgres',
	qq{SELECT pgq_create_topic('keep_forever', 1, '{"retention.ms": $max, "segment.ms": 300}')});
for my $i (1 .. 3)
{
	send_value($node, 'keep_forever', "r$i");
	my $want = $i + 1;
	ok( $node->poll_query_until('postgres',
			"SELECT count(*) >= $want FROM pgqueue.segment s JOIN pgqueue.topic t USING (topic_id)"
			  . " WHERE t.name = 'keep_forever'"),
		"record $i was followed by a roll: the worker runs on this topic");
}
# several more rounds, in which a wrapped-around retention.ms would drop
usleep(1_000_000);
is( $node->safe_psql('postgres',
		"SELECT min(s.segment_no) FROM pgqueue.segment s JOIN pgqueue.topic t USING (topic_id)"
		  . " WHERE t.name = 'keep_forever'"),
	'0', 'with retention.ms = Long.MAX_VALUE no segment was dropped');
is( $node->safe_psql('postgres',
		"SELECT log_start_offset FROM pgq_partitions WHERE topic = 'keep_forever'"),
	'0', 'the log still starts at offset 0');
is( $node->safe_psql('postgres',
		"SELECT string_agg(convert_from(value, 'UTF8'), ',' ORDER BY msg_offset)"
		  . " FROM pgq_fetch('keep_forever', 0, 0)"),
	'r1,r2,r3', 'and every record can still be read');

$node->stop;
done_testing();
