# Copyright (c) pgqueue contributors
#
# 014_worker_stats.pl
#	  The worker's activity is visible to the cumulative statistics system
#	  (and so to autovacuum), and it is cheap on idle partitions
#	  (src/worker.c, src/retention.c):
#	1. the rows retention deletes from pgqueue.segment show up in
#	   pg_stat_user_tables (the worker reports its statistics every round);
#	2. partitions whose empty active segment is past segment.ms are not
#	   rolled over, and cost the worker no transaction each: in a database
#	   of its own, with 20 such partitions, the worker commits about one
#	   transaction per round.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $node = PostgreSQL::Test::Cluster->new('worker_stats');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'pgqueue'
pgqueue.maintenance_interval = 100
pgqueue.databases = 'postgres, quiet'
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE quiet');
$node->safe_psql('postgres', 'CREATE EXTENSION pgqueue');

# 1. retention's deletes are reported
$node->safe_psql('postgres',
	q{SELECT pgq_create_topic('churn', 1, '{"retention.ms": 300}')});
my $deleted = 0;
my $deadline = time + 30;
while (time < $deadline)
{
	$node->safe_psql('postgres', q{SELECT pgq_send('churn', 'x'::text)});
	$deleted = $node->safe_psql('postgres',
		"SELECT n_tup_del FROM pg_stat_user_tables"
		  . " WHERE schemaname = 'pgqueue' AND relname = 'segment'");
	last if $deleted > 0;
	usleep(200_000);
}
cmp_ok($deleted, '>', 0,
	'segment rows deleted by the worker show up in pg_stat_user_tables');

# 2. idle partitions past segment.ms cost nothing
$node->safe_psql('quiet', 'CREATE EXTENSION pgqueue');
$node->safe_psql('quiet', q{SELECT pgq_create_topic('idle', 20, '{"segment.ms": 1}')});
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity"
		  . " WHERE backend_type = 'pgqueue worker' AND datname = 'quiet'"),
	'a worker runs in the database quiet');
sleep 2;    # let it settle, and its statistics be reported

my $commits_sql =
  "SELECT xact_commit FROM pg_stat_database WHERE datname = 'quiet'";
my $t0 = time;
my $c0 = $node->safe_psql('postgres', $commits_sql);
sleep 4;
my $c1 = $node->safe_psql('postgres', $commits_sql);
my $rounds = (time - $t0) / 0.1;
my $commits = $c1 - $c0;
note("the worker committed $commits transactions in about $rounds rounds");
cmp_ok($commits, '>=', 5,
	'control: the worker\'s transactions in quiet are counted');
cmp_ok($commits, '<=', 2 * $rounds,
	'at most about one transaction per round, not one per idle partition');
is( $node->safe_psql('quiet', 'SELECT count(*) FROM pgqueue.segment'),
	'20', 'no empty segment was rolled over');

$node->stop;
done_testing();
