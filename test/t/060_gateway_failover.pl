# Copyright (c) pgqueue contributors
#
# 060_gateway_failover.pl
#	  pgqueue-kafka follows a promoted standby through a multi-host conninfo
#	  with target_session_attrs=read-write, and ends requests cleanly:
#	  - while the primary is down and the standby not yet promoted, the
#		gateway has no connection (libpq refuses the read-only standby), and
#		a Metadata request for a topic gets the retriable
#		LEADER_NOT_AVAILABLE instead of a hang;
#	  - once the standby is promoted, every pool connection of the gateway
#		is on it and kcat -L lists the topics again, with no restart of the
#		gateway;
#	  - SIGTERM while a request waits on a lock: the request is answered
#		when the lock goes, then the gateway exits with status 0.

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use GatewayTap;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

my $primary = PostgreSQL::Test::Cluster->new('gw_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', "shared_preload_libraries = 'pgqueue'");
$primary->start;
$primary->safe_psql('postgres', q{
	CREATE EXTENSION pgqueue;
	SELECT pgq_create_topic('orders', 2);
});
$primary->backup('gw_backup');
my $standby = PostgreSQL::Test::Cluster->new('gw_standby');
$standby->init_from_backup($primary, 'gw_backup', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);

# the gateway's conninfo names both servers: libpq picks the writable one
# (the application name tells its sessions apart: the TAP framework sets
# PGAPPNAME, which would override the gateway's default, pgqueue-kafka)
my $conninfo = sprintf(
	'host=%s,%s port=%d,%d dbname=postgres target_session_attrs=read-write application_name=gw060',
	$primary->host, $standby->host, $primary->port, $standby->port);
my $gw = gateway_start($primary, conninfo => $conninfo);

sub topics_seen
{
	my ($rc, $out) = kcat($gw, [ '-L', '-J', '-m', '3' ], timeout => 20);
	return '' unless $rc == 0;
	my $md = eval { decode_json($out) } or return '';
	return join ' ', map { "$_->{topic}:" . scalar @{ $_->{partitions} } } @{ $md->{topics} };
}

is(topics_seen(), 'orders:2', 'the gateway serves Metadata from the primary');

my $app = q{SELECT count(*) FROM pg_stat_activity WHERE application_name = 'gw060'};
ok($primary->poll_query_until('postgres', "SELECT ($app) = 6"),
	'its three pools of two connections are on the primary');

# the primary goes away; the standby is read-only, so nothing may connect
$primary->stop('immediate');
my $c = kafka_connect($gw);
my $t0 = time();
my ($id, $resp) = kafka_request($c, 3, 1, 1, pack('l> s>/a*', 1, 'orders'));
close $c;
ok(defined $resp, 'a Metadata request while there is no primary is answered');
# v1: brokers (node id, host, port, rack), controller, then the topics
my $pos = 4 + 4 + 2 + unpack('s>', substr($resp // '', 8, 2)) + 4;
my $rack = unpack('s>', substr($resp // '', $pos, 2));
$pos += 2 + ($rack > 0 ? $rack : 0) + 4 + 4;
is(unpack('s>', substr($resp // '', $pos, 2)), 5,
	'with LEADER_NOT_AVAILABLE for the topic (retriable)');
ok(time() - $t0 < 15, 'without waiting for a primary to come back');
# libpq's read-write check connects to the standby and leaves at once (the
# gateway retries every second): no connection of it may stay
is($standby->safe_psql('postgres', "$app AND backend_start < now() - interval '500 ms'"),
	'0', 'the gateway did not stay connected to the standby');

$standby->promote;
my $seen = '';
for (1 .. 60)
{
	$seen = topics_seen();
	last if $seen eq 'orders:2';
	usleep(250_000);
}
is($seen, 'orders:2', 'after the promotion, the gateway serves Metadata from the new primary');
ok($standby->poll_query_until('postgres', "SELECT ($app) = 6"),
	'and all its pool connections moved there, without a restart');
like(gateway_log($gw), qr/connected to the database \(\S+:${\ $standby->port}\)/,
	'the reconnection is logged with the new server');

# --- SIGTERM with a request in flight ---------------------------------------------
# A transaction holds pgqueue's topic catalog locked: Metadata waits on it.
my $script = PostgreSQL::Test::Utils::tempdir('lock') . '/lock.sql';
open my $fh, '>', $script or die "could not write $script: $!";
print $fh "BEGIN;\nLOCK TABLE pgqueue.topic IN ACCESS EXCLUSIVE MODE;\nSELECT pg_sleep(5);\nCOMMIT;\n";
close $fh;
my ($lock_out, $lock_err) = ('', '');
my $locker = IPC::Run::start(
	[ 'psql', '-XAtq', '-v', 'ON_ERROR_STOP=1', '-d', $standby->connstr('postgres'), '-f', $script ],
	'<', '/dev/null', '>', \$lock_out, '2>', \$lock_err, IPC::Run::timeout(60));
ok($standby->poll_query_until('postgres',
		q{SELECT count(*) > 0 FROM pg_locks WHERE relation = 'pgqueue.topic'::regclass AND mode = 'AccessExclusiveLock' AND granted}),
	'a transaction holds the topic catalog');
$c = kafka_connect($gw);
kafka_send($c, do {
	my $req = pack('s> s> l> s>/a*', 3, 1, 42, 'gwtap') . pack('l>', -1);
	pack('N', length $req) . $req;
});
ok($standby->poll_query_until('postgres',
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE application_name = 'gw060' AND wait_event_type = 'Lock'}),
	'the Metadata request waits for the lock');
$gw->{h}->signal('TERM');
($id) = kafka_read_response($c, 20);
is($id, 42, 'after SIGTERM, the request in flight is still answered once the lock goes');
close $c;
eval { $locker->finish; 1 } or diag("the lock's psql: $@ $lock_err");
gateway_stop($gw);
like(gateway_log($gw), qr/received SIGTERM: shutting down/, 'the shutdown is logged');

$standby->stop;
done_testing();
