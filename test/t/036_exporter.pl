# 036_exporter.pl
#	  monitoring/postgres_exporter_queries.yaml works with Debian's
#	  prometheus-postgres-exporter: the exporter, connected as a role that
#	  is only in pg_monitor (no right on any topic), is scraped over
#	  loopback and reports each group's lag in offsets and in seconds and
#	  each partition's offsets, with the values pgq_lag has, for a group
#	  behind by a known number of records an hour old, an empty partition,
#	  a committed offset that retention left below the log start, and a
#	  dropped topic (absent, and no scrape error).
#
#	  The exporter is /usr/bin/prometheus-postgres-exporter (scripts/lib.sh
#	  installs it), or the one PGQ_POSTGRES_EXPORTER names.
use strict;
use warnings;

use HTTP::Tiny;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $exporter = $ENV{PGQ_POSTGRES_EXPORTER} // '/usr/bin/prometheus-postgres-exporter';
BAIL_OUT("$exporter is missing: install prometheus-postgres-exporter (scripts/test.sh does)")
  unless -x $exporter;
my $queries = 'monitoring/postgres_exporter_queries.yaml';
ok(-f $queries, "$queries is in the tree");

my $node = PostgreSQL::Test::Cluster->new('exporter');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'pgqueue'
pgqueue.maintenance_interval = 100
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pgqueue;
	CREATE ROLE monitor LOGIN IN ROLE pg_monitor;

	-- orders: partition 0 holds 6 records sent an hour ago, partition 1 is empty
	SELECT pgq_create_topic('orders', 2);
	SELECT count(*) FROM generate_series(0, 5) i,
	       LATERAL pgq_send('orders', 'o' || i, NULL::text, 0, NULL, now() - interval '1 hour');
	-- billing has processed 2 of them; live has a member and has committed nothing
	SELECT pgq_reset_offsets('billing', 'orders', 0, 2);
	SELECT count(*) FROM pgq_poll('live', 'orders', 1, 0, 'w1');

	-- gone: a group's topic, dropped
	SELECT pgq_create_topic('gone');
	SELECT count(*) FROM pgq_send('gone', 'x');
	SELECT pgq_reset_offsets('audit', 'gone', 0, 1);
	SELECT pgq_drop_topic('gone');

	-- ret: 10 records, a group at offset 3, then retention drops them all
	SELECT pgq_create_topic('ret', 1, '{"retention.ms": 1000}');
	SELECT count(*) FROM pgq_send_batch('ret', ARRAY['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j']);
	SELECT pgq_reset_offsets('stale', 'ret', 0, 3);
});
ok( $node->poll_query_until('postgres',
		q{SELECT log_start_offset = 10 FROM pgq_partitions WHERE topic = 'ret'}),
	'retention moved the log start of ret past the committed offset');
$node->safe_psql('postgres', q{
	SELECT pgq_alter_topic('ret', '{"retention.ms": null}');
	SELECT count(*) FROM pgq_send_batch('ret', ARRAY['k', 'l', 'm', 'n']);
});

# the view itself, as the monitor role: no error below the log start
is( $node->safe_psql('postgres', q{
	SELECT string_agg(format('%s/%s/%s:%s/%s/%s/%s/%s', group_id, topic, partition, committed_offset,
	                         log_start_offset, last_stable_offset, lag, first_unconsumed_offset),
	                  ' ' ORDER BY group_id, topic, partition)
	  FROM pgq_lag}, extra_params => [ '-U', 'monitor' ]),
	'billing/orders/0:2/0/6/4/2 billing/orders/1:/0/0/0/ '
	  . 'live/orders/0:/0/6/6/0 live/orders/1:/0/0/0/ stale/ret/0:3/10/14/4/10',
	'pgq_lag as a pg_monitor role: lag from the log start when retention passed the committed offset');

# --- the exporter ------------------------------------------------------------
my $port = PostgreSQL::Test::Cluster::get_free_port();
my $log = PostgreSQL::Test::Utils::tempdir('exporter') . '/exporter.log';
local $ENV{DATA_SOURCE_NAME} = sprintf('host=%s port=%d user=monitor dbname=postgres sslmode=disable',
	$node->host, $node->port);
my $h = IPC::Run::start(
	[ $exporter, "--web.listen-address=127.0.0.1:$port", "--extend.query-path=$queries" ],
	'<', '/dev/null', '>', $log, '2>&1');

my $http = HTTP::Tiny->new(timeout => 10);
my $body;
for (my $i = 0; $i < 300; $i++)
{
	my $res = $http->get("http://127.0.0.1:$port/metrics");
	if ($res->{success} && $res->{content} =~ /^pgqueue_group_lag\{/m)
	{
		$body = $res->{content};
		last;
	}
	usleep(100_000);
}
$h->kill_kill;
$h->finish;
ok(defined $body, 'the exporter serves pgqueue metrics on loopback')
  or diag("exporter output:\n" . slurp_file($log));
$body //= '';

# name => { "label=value,..." (sorted, the server label left out) => value }
my %metrics;
foreach my $line (split /\n/, $body)
{
	next unless $line =~ /^(\w+)(?:\{(.*)\})? (\S+)$/;
	my ($name, $labels, $value) = ($1, $2 // '', $3);
	my %l = $labels =~ /(\w+)="([^"]*)"/g;
	delete $l{server};
	$metrics{$name}{ join(',', map { "$_=$l{$_}" } sort keys %l) } = $value;
}
sub metric
{
	my ($name, %labels) = @_;
	return $metrics{$name}{ join(',', map { "$_=$labels{$_}" } sort keys %labels) };
}

is(metric('pg_exporter_last_scrape_error'), 0, 'the scrape had no error');
is(metric('pgqueue_group_lag', group_id => 'billing', topic => 'orders', partition => 0),
	4, 'billing is 4 records behind on orders/0');
my $age = metric('pgqueue_group_lag_seconds', group_id => 'billing', topic => 'orders', partition => 0);
ok(defined $age && $age >= 3600 && $age < 3600 + 600,
	'and its first unconsumed record is an hour old') or diag('lag_seconds: ' . ($age // 'missing'));
is(metric('pgqueue_group_lag', group_id => 'billing', topic => 'orders', partition => 1),
	0, 'an empty partition has no lag');
is(metric('pgqueue_group_lag_seconds', group_id => 'billing', topic => 'orders', partition => 1),
	0, 'and no lag in time');
is(metric('pgqueue_group_lag', group_id => 'live', topic => 'orders', partition => 0),
	6, 'a group with nothing committed lags from the log start');
is(metric('pgqueue_group_owned', group_id => 'live', topic => 'orders', partition => 0),
	1, 'its partition has a live owner');
is(metric('pgqueue_group_owned', group_id => 'billing', topic => 'orders', partition => 0),
	0, 'a group without members owns nothing');
is(metric('pgqueue_group_lag', group_id => 'stale', topic => 'ret', partition => 0),
	4, 'a committed offset below the log start: lag from the log start');
$age = metric('pgqueue_group_lag_seconds', group_id => 'stale', topic => 'ret', partition => 0);
ok(defined $age && $age >= 0 && $age < 600, 'and the age of the first record after it')
  or diag('lag_seconds: ' . ($age // 'missing'));
ok(!grep(/topic=gone/, map { keys %$_ } values %metrics), 'a dropped topic has no metrics');

is(metric('pgqueue_partition_log_start_offset', topic => 'ret', partition => 0),
	10, 'the log start of a partition after retention');
is(metric('pgqueue_partition_high_watermark', topic => 'ret', partition => 0),
	14, 'its high watermark');
is(metric('pgqueue_partition_last_stable_offset', topic => 'ret', partition => 0),
	14, 'its last stable offset');
is(metric('pgqueue_partition_high_watermark', topic => 'orders', partition => 1),
	0, 'the high watermark of an empty partition');

$node->stop;
done_testing();
