# Copyright (c) pgqueue contributors
#
# 015_worker_databases.pl
#	  pgqueue.databases lists several databases, and a worker runs in each
#	  (src/worker.c):
#	1. topics in two listed databases both get retention;
#	2. a listed database that does not exist gets one clear warning, not a
#	   failing worker restarted every five seconds; its worker idles;
#	3. once that database is created, its worker connects to it and its
#	   topics get retention too.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('worker_databases');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'pgqueue'
pgqueue.maintenance_interval = 100
pgqueue.databases = 'postgres, db_two, "Later db"'
});
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE db_two');

# Sends records to a topic with short retention until the worker of its
# database has dropped a segment.
sub retention_runs_in
{
	my ($db) = @_;
	$node->safe_psql($db, 'CREATE EXTENSION pgqueue');
	$node->safe_psql($db, q{SELECT pgq_create_topic('short', 1, '{"retention.ms": 300}')});
	for (1 .. 150)
	{
		$node->safe_psql($db, q{SELECT pgq_send('short', 'x'::text)});
		return 1
		  if $node->safe_psql($db,
			"SELECT log_start_offset > 0 FROM pgq_partitions WHERE topic = 'short'") eq 't';
		usleep(200_000);
	}
	return 0;
}

ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 2 FROM pg_stat_activity"
		  . " WHERE backend_type = 'pgqueue worker' AND datname IN ('postgres', 'db_two')"),
	'a worker runs in each of the databases postgres and db_two');
ok(retention_runs_in('postgres'), 'retention drops segments in postgres');
ok(retention_runs_in('db_two'), 'and in db_two');

# the database "Later db" does not exist yet
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity"
		  . " WHERE backend_type = 'pgqueue worker' AND datname IS NULL"),
	'the worker for the missing database idles, connected to no database');
sleep 12;    # more than two restart intervals of a failing worker
my $log = slurp_file($node->logfile);
my $warnings = () = $log =~ /database "Later db" listed in pgqueue\.databases does not exist/g;
my $fatals = () = $log =~ /FATAL:  database "Later db" does not exist/g;
is($warnings, 1, 'the missing database was reported once');
cmp_ok($fatals, '<=', 1, 'the worker did not fail again and again');

$node->safe_psql('postgres', 'CREATE DATABASE "Later db"');
ok( $node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity"
		  . " WHERE backend_type = 'pgqueue worker' AND datname = 'Later db'"),
	'once the database exists its worker connects to it');
ok(retention_runs_in('Later db'), 'and retention drops segments there');

$node->stop;
done_testing();
