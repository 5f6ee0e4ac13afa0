# Copyright (c) pgqueue contributors
#
# 013_worker_sync_standby.pl
#	  The worker's transactions do not wait for synchronous standbys
#	  (src/worker.c).  A segment roll holds the partition's senders until
#	  its commit returns; if that commit waited for a standby that is not
#	  there, every send to the partition would hang, even one made with
#	  synchronous_commit = off.  Here synchronous_standby_names names a
#	  standby that never connects, the worker rolls a partition over several
#	  times, and sends with synchronous_commit = off all complete.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('worker_sync_standby');
# synchronous replication needs wal senders, which a plain init disables
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'pgqueue'
pgqueue.maintenance_interval = 100
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pgqueue');
$node->safe_psql('postgres',
	q{SELECT pgq_create_topic('sync_roll', 1, '{"segment.ms": 300}')});

# From now on a commit that waits for a synchronous standby waits for ever.
$node->append_conf('postgresql.conf', "synchronous_standby_names = 'absent_standby'\n");
$node->reload;
is($node->safe_psql('postgres', 'SHOW synchronous_standby_names'), 'absent_standby',
	'synchronous replication to a standby that is not there');
{
	# a commit that waits for the standby, in a psql of its own
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[ 'psql', '-XAtq', '-d',
		  $node->connstr('postgres') . ' application_name=sync_control',
		  '-c', 'SET synchronous_commit = on; CREATE TABLE control ()' ],
		'>', \$out, '2>', \$err, IPC::Run::timeout(120));
	ok( $node->poll_query_until('postgres',
			"SELECT count(*) = 1 FROM pg_stat_activity"
			  . " WHERE application_name = 'sync_control' AND wait_event = 'SyncRep'"),
		'control: a commit with synchronous_commit = on waits for the absent standby');
	$node->safe_psql('postgres',
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
		  . " WHERE application_name = 'sync_control'");
	$h->finish;
}

my $all_sent = 1;
for my $i (0 .. 5)
{
	my ($out, $err) = ('', '');
	my $rc = $node->psql('postgres',
		"SET synchronous_commit = off; SET statement_timeout = '20s';\n"
		  . "SELECT msg_offset FROM pgq_send('sync_roll', 'v$i'::text, NULL::text, 0)",
		stdout => \$out, stderr => \$err, timeout => 60);
	if ($rc != 0 || $out ne "$i")
	{
		diag("send $i: rc $rc, stdout '$out', stderr '$err'");
		$all_sent = 0;
		last;
	}
	usleep(500_000);    # the worker rolls the partition over meanwhile
}
ok($all_sent, 'six sends with synchronous_commit = off, a roll between each two, all completed');
cmp_ok(
	$node->safe_psql('postgres',
		"SELECT count(*) FROM pgqueue.segment s JOIN pgqueue.topic t USING (topic_id)"
		  . " WHERE t.name = 'sync_roll'"),
	'>=', 4, 'the worker did roll the partition over between the sends');
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity"
		  . " WHERE backend_type = 'pgqueue worker' AND wait_event = 'SyncRep'"),
	'0', 'the worker is not waiting for the absent standby');
is( $node->safe_psql('postgres',
		"SELECT string_agg(convert_from(value, 'UTF8'), ',' ORDER BY msg_offset)"
		  . " FROM pgq_fetch('sync_roll', 0, 0)"),
	'v0,v1,v2,v3,v4,v5', 'every record can be read, in order');

$node->stop('immediate');
done_testing();
