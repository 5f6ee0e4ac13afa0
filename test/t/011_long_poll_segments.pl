# Copyright (c) pgqueue contributors
#
# 011_long_poll_segments.pl
#	  A long poll sees the segments of its partition as they are after each
#	  wake-up, not as they were when the call started (src/wait.c).  The
#	  worker rolls partitions over to new segments and drops old ones while
#	  readers wait; a waiter must then
#	1. (pgq_fetch) return a record sent after its partition was rolled over
#	   to a segment that did not exist when the wait began;
#	2. (pgq_poll) likewise for a group member;
#	3. (pgq_fetch) not fail with "topic ... does not exist" when the segment
#	   it took for the partition's newest was dropped by retention during
#	   the wait, and return the record sent afterwards.
#	  Each waiter has a 30 s timeout; before the fix each of them ran to it
#	  and returned nothing (or failed, in 3).

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use PgqueueTap qw(wait_until_waiting send_value);
use IPC::Run;
use Time::HiRes qw(time usleep);

my $timeout_ms = 30000;
my $returns_within = 10;    # seconds from the send to the waiter's return

my $node = PostgreSQL::Test::Cluster->new('long_poll_segments');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'pgqueue'
pgqueue.maintenance_interval = 100
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pgqueue');

# Starts a query in its own psql, without waiting for it; application_name
# tags the backend so that we can see when it waits.
sub start_reader
{
	my ($name, $sql) = @_;
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d',
		  $node->connstr('postgres') . " application_name=$name", '-c', $sql ],
		'>', \$out, '2>', \$err,
		IPC::Run::timeout(120));
	return { h => $h, out => \$out, err => \$err, name => $name };
}

# Waits for the reader's psql to end; returns (stdout, stderr, end time).
sub finish_reader
{
	my ($r) = @_;
	$r->{h}->finish;
	my $end = time;
	my $out = ${ $r->{out} };
	chomp $out;
	return ($out, ${ $r->{err} }, $end);
}

sub segments
{
	my ($topic) = @_;
	return $node->safe_psql('postgres',
		"SELECT string_agg(s.segment_no || ':' || s.base_offset, ',' ORDER BY s.segment_no)"
		  . " FROM pgqueue.segment s JOIN pgqueue.topic t USING (topic_id)"
		  . " WHERE t.name = '$topic' AND s.partition = 0");
}

###########################################################################
# 1. pgq_fetch across a roll.
###########################################################################

$node->safe_psql('postgres',
	q{SELECT pgq_create_topic('roll_fetch', 1, '{"segment.ms": 3000}')});
is(send_value($node, 'roll_fetch', 'a'), '0', 'a first record at offset 0');
my $r = start_reader('w_fetch',
	"SELECT msg_offset, convert_from(value, 'UTF8') FROM pgq_fetch('roll_fetch', 0, 1, 10, $timeout_ms)");
ok(wait_until_waiting($node, "application_name = 'w_fetch'"), 'a fetch from offset 1 waits');
is(segments('roll_fetch'), '0:0', 'when it began, the partition had one segment');
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 2 FROM pgqueue.segment s JOIN pgqueue.topic t USING (topic_id)"
		  . " WHERE t.name = 'roll_fetch'"),
	'the worker rolled the partition over during the wait');
is(segments('roll_fetch'), '0:0,1:1', 'to a new segment starting at offset 1');
my $t_send = time;
is(send_value($node, 'roll_fetch', 'b'), '1', 'a record sent to the new segment');
{
	my ($out, $err, $end) = finish_reader($r);
	is($out, '1|b', 'the waiting fetch returned the record in the new segment');
	is($err, '', 'without error');
	ok($end - $t_send < $returns_within, "within $returns_within s of the send")
	  or diag(sprintf('it returned %.2f s after the send', $end - $t_send));
}

###########################################################################
# 2. pgq_poll across a roll.
###########################################################################

$node->safe_psql('postgres',
	q{SELECT pgq_create_topic('roll_poll', 1, '{"segment.ms": 3000}')});
is(send_value($node, 'roll_poll', 'a'), '0', 'a first record at offset 0');
$node->safe_psql('postgres', q{SELECT pgq_reset_offsets('roll_g', 'roll_poll', 'latest')});
$r = start_reader('w_poll',
	"SELECT msg_offset, convert_from(value, 'UTF8') FROM pgq_poll('roll_g', 'roll_poll', 10, $timeout_ms, 'm1')");
ok(wait_until_waiting($node, "application_name = 'w_poll'"), 'a group member polling from the committed offset 1 waits');
is(segments('roll_poll'), '0:0', 'when it began, the partition had one segment');
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 2 FROM pgqueue.segment s JOIN pgqueue.topic t USING (topic_id)"
		  . " WHERE t.name = 'roll_poll'"),
	'the worker rolled the partition over during the wait');
$t_send = time;
is(send_value($node, 'roll_poll', 'b'), '1', 'a record sent to the new segment');
{
	my ($out, $err, $end) = finish_reader($r);
	is($out, '1|b', 'the waiting poll returned the record in the new segment');
	is($err, '', 'without error');
	ok($end - $t_send < $returns_within, "within $returns_within s of the send")
	  or diag(sprintf('it returned %.2f s after the send', $end - $t_send));
}

###########################################################################
# 3. pgq_fetch while retention drops the segment it took for the newest.
###########################################################################

$node->safe_psql('postgres',
	q{SELECT pgq_create_topic('roll_drop', 1, '{"retention.ms": 3000}')});
is(send_value($node, 'roll_drop', 'a'), '0', 'a first record at offset 0');
$r = start_reader('w_drop',
	"SELECT msg_offset, convert_from(value, 'UTF8') FROM pgq_fetch('roll_drop', 0, 1, 10, $timeout_ms)");
ok(wait_until_waiting($node, "application_name = 'w_drop'"), 'a fetch from offset 1 waits');
is(segments('roll_drop'), '0:0', 'when it began, the partition had one segment');
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 1 AND min(s.segment_no) = 1 FROM pgqueue.segment s"
		  . " JOIN pgqueue.topic t USING (topic_id) WHERE t.name = 'roll_drop'"),
	'during the wait the partition was rolled over and its first segment dropped');
is( $node->safe_psql('postgres',
		"SELECT log_start_offset FROM pgq_partitions WHERE topic = 'roll_drop'"),
	'1', 'the log starts at offset 1');
$t_send = time;
is(send_value($node, 'roll_drop', 'b'), '1', 'a record sent to the remaining segment');
{
	my ($out, $err, $end) = finish_reader($r);
	is($err, '', 'the waiting fetch did not fail');
	is($out, '1|b', 'it returned the record');
	ok($end - $t_send < $returns_within, "within $returns_within s of the send")
	  or diag(sprintf('it returned %.2f s after the send', $end - $t_send));
}

$node->stop;
done_testing();
