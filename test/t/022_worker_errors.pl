# 022_worker_errors.pl
#	  An error ends the background worker, and the postmaster starts it
#	  again: nothing of the failed round is left behind.  Here a segment
#	  roll fails after it marked the partition "rolling" (its catalog insert
#	  waits on a lock and is cancelled): the partition's waiting sender goes
#	  on at once, the worker is a new process, the new worker rolls the
#	  partition once the lock is gone, and the failed round's memory went
#	  with the old process.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $node = PostgreSQL::Test::Cluster->new('worker_errors');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'pgqueue'
pgqueue.maintenance_interval = 100
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pgqueue');
$node->safe_psql('postgres', 'CREATE TABLE sent (msg_offset bigint, at timestamptz)');

my $worker_sql = q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'pgqueue worker'};
$node->poll_query_until('postgres',
	q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pgqueue worker'})
  or die 'the worker did not start';
my $old_pid = $node->safe_psql('postgres', $worker_sql);

my $segments_sql = q{
	SELECT count(*) FROM pgqueue.segment s JOIN pgqueue.topic t ON t.topic_id = s.topic_id
	 WHERE t.name = 'rolled'};
$node->safe_psql('postgres', q{SELECT pgq_create_topic('rolled')});
$node->safe_psql('postgres', q{SELECT * FROM pgq_send('rolled', 'first')});

# Hold back the roll's insert into the segment catalog, then make the
# partition due: the worker marks it rolling and waits on the lock.
my $locker = $node->background_psql('postgres');
$locker->query_safe('BEGIN');
$locker->query_safe('LOCK TABLE pgqueue.segment IN SHARE MODE');
$node->safe_psql('postgres', q{SELECT pgq_alter_topic('rolled', '{"segment.ms": 1}')});
$node->poll_query_until('postgres', qq{
	SELECT count(*) = 1 FROM pg_locks
	 WHERE pid = $old_pid AND NOT granted
	   AND relation = 'pgqueue.segment'::regclass})
  or die 'the worker did not wait for the segment catalog';

# a sender to the rolling partition waits for the roll to end
my $sender = $node->background_psql('postgres');
$sender->query_until(qr/waiting/, q{
\echo waiting
INSERT INTO sent SELECT msg_offset, clock_timestamp() FROM pgq_send('rolled', 'during');
});
$node->poll_query_until('postgres', q{
	SELECT count(*) = 1 FROM pg_stat_activity
	 WHERE wait_event_type = 'Extension' AND query LIKE 'INSERT INTO sent%'})
  or die 'the sender did not wait for the roll';
is($node->safe_psql('postgres', 'SELECT count(*) FROM sent'), '0', 'the sender waits while the partition rolls');

# the roll fails: the sender goes on at once, not after the worker's restart
my $cancelled_at = $node->safe_psql('postgres', 'SELECT clock_timestamp()');
$node->safe_psql('postgres', "SELECT pg_cancel_backend($old_pid)");
ok($node->poll_query_until('postgres', 'SELECT count(*) = 1 FROM sent'), 'the sender finished');
my $waited = $node->safe_psql('postgres', "SELECT extract(epoch FROM at - '$cancelled_at') FROM sent");
cmp_ok($waited, '<', 3, "the failed roll let the sender go at once (after $waited s)");
$sender->quit;

# the error ended the worker; the postmaster starts a new one
ok( $node->poll_query_until(
		'postgres',
		qq{SELECT count(*) = 1 FROM pg_stat_activity
		    WHERE backend_type = 'pgqueue worker' AND pid <> $old_pid}),
	'the worker exited on the error and was restarted');
ok($node->log_contains('canceling statement due to user request'), 'the error was logged');
my $new_pid = $node->safe_psql('postgres', $worker_sql);

# with the lock gone, the new worker rolls the partition
$locker->query_safe('COMMIT');
$locker->quit;
ok($node->poll_query_until('postgres', "SELECT ($segments_sql) = 2"),
	'the restarted worker rolled the partition');
is($node->safe_psql('postgres', q{SELECT string_agg(convert_from(value, 'UTF8'), ',' ORDER BY msg_offset)
	FROM pgq_fetch('rolled', 0, 0)}), 'first,during', 'both records are in the log, in order');

# Nothing of the failed round's memory is left in the worker: with
# maintenance off it is idle, and its memory contexts hold no retention
# context (0.1.0 leaked one under TopMemoryContext at every error).
$node->safe_psql('postgres', 'ALTER SYSTEM SET pgqueue.segment_maintenance = off');
$node->reload;
usleep(500_000);
my $log_offset = -s $node->logfile;
$node->safe_psql('postgres', "SELECT pg_log_backend_memory_contexts($new_pid)");
my $deadline = time + 30;
my $log = '';
while (time < $deadline)
{
	$log = slurp_file($node->logfile, $log_offset);
	last if $log =~ /Grand total:/;
	usleep(100_000);
}
like($log, qr/logging memory contexts of PID $new_pid/, 'the worker logged its memory contexts');
unlike($log, qr/pgqueue retention/, 'no retention memory context is left in the idle worker');

$node->stop;
done_testing();
