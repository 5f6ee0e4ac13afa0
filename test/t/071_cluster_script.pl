# Copyright (c) pgqueue contributors
#
# 071_cluster_script.pl
#	  scripts/cluster.sh, the formation users try failover on by hand (a
#	  pg_auto_failover monitor, node1 primary, node2 and node3 standbys,
#	  pgqueue-kafka in front; docs/durability.md, "Try failover by hand"),
#	  run as the test's user with the installed pgqueue, its own directory
#	  and free ports:
#	  - start brings up one primary and two secondaries, the topic "demo"
#		and the gateway;
#	  - a record sent through the gateway (kcat, acks=all) and one sent by
#		psql through the multi-host conninfo are read back, by kcat through
#		the gateway and by SQL;
#	  - kill-primary (kill -9 of the primary's pg_autoctl and postmaster)
#		reports a new primary elected and a write accepted through the
#		multi-host conninfo; the gateway then serves Metadata and Produce
#		on the new primary;
#	  - revive brings the killed node back as a secondary;
#	  - stop leaves no process of the formation behind and the gateway's
#		port closed; stop again is fine; state then says it is stopped;
#		clean removes the directory.
#	  The durations of start, kill-primary and stop are reported.

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use AutoFailoverTap qw(auto_failover_missing);
use IO::Socket::INET;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $missing = auto_failover_missing();
plan skip_all => $missing if $missing;

my $script = "$FindBin::RealBin/../../scripts/cluster.sh";
my $dir = PostgreSQL::Test::Utils::tempdir('cluster') . '/formation';

# Four consecutive free ports (the monitor and three nodes) and one for the
# gateway, on 127.0.0.1.
sub free_port_block
{
	for (1 .. 50)
	{
		my $base = PostgreSQL::Test::Cluster::get_free_port();
		return $base
		  unless grep { !PostgreSQL::Test::Cluster::can_bind('127.0.0.1', $base + $_) } 1 .. 3;
	}
	die 'no block of four free ports';
}
my $base = free_port_block();
my $kafka_port = PostgreSQL::Test::Cluster::get_free_port();
$kafka_port = PostgreSQL::Test::Cluster::get_free_port()
  while $kafka_port >= $base && $kafka_port <= $base + 3;
my @opts = ('--dir' => $dir);
my $bootstrap = "127.0.0.1:$kafka_port";

# Run a command to its end within $seconds: (exit status, stdout + stderr).
sub run_bounded
{
	my ($cmd, $seconds, $stdin) = @_;
	my $out = '';
	my $ok = eval {
		IPC::Run::run($cmd, '<', \($stdin // ''), '>', \$out, '2>&1',
			IPC::Run::timeout($seconds));
		1;
	};
	chomp $out;
	return ($ok ? $? >> 8 : -1, $out . ($ok ? '' : "\n(timed out or failed: $@)"));
}

# cluster.sh COMMAND [extra options]: (exit status, output, seconds taken)
sub cluster
{
	my ($command, @extra) = @_;
	my $t0 = time();
	my ($rc, $out) = run_bounded([ 'bash', $script, $command, @opts, @extra ], 150);
	return ($rc, $out, time() - $t0);
}

# A formation left by a test that died half-way is stopped.
my $started;
END
{
	local $?;
	run_bounded([ 'bash', $script, 'stop', @opts ], 60) if $started;
}

sub kcat
{
	my ($args, %opt) = @_;
	return run_bounded([ 'kcat', '-b', $bootstrap, @$args ], $opt{timeout} // 30, $opt{stdin});
}

# The nodes' reported/assigned states from "pg_autoctl show state".
sub table_states
{
	my ($out) = @_;
	my %s;
	$s{$1} = "$2/$3" while $out =~ /^(node\d)\s*\|.*\|\s*(\w+)\s*\|\s*(\w+)\s*$/mg;
	return join ' ', map { "$_:$s{$_}" } sort keys %s;
}

# Every value in topic demo, read through the gateway.
sub consume_all
{
	my ($rc, $out) = kcat([ '-C', '-t', 'demo', '-o', 'beginning', '-e', '-q', '-f', '%s\n' ]);
	return $rc == 0 ? [ sort split /\n/, $out ] : ["kcat failed: $out"];
}

# --- start ---------------------------------------------------------------------
$started = 1;
my ($rc, $out, $t_start) = cluster('start', '--port-base' => $base, '--kafka-port' => $kafka_port,
	'--timeout' => 90);
is($rc, 0, 'cluster.sh start succeeds') or diag($out);
like($out, qr/^primary: node1 \(127\.0\.0\.1:\Q@{[$base + 1]}\E\)$/m, 'node1 is the primary');
is(table_states($out), 'node1:primary/primary node2:secondary/secondary node3:secondary/secondary',
	'one primary and two secondaries');
my ($conninfo) = $out =~ /^\s*psql '([^']+)'$/m;
like($conninfo // '', qr/target_session_attrs=read-write/, 'start prints the multi-host conninfo');
like($out, qr/kcat -b \Q$bootstrap\E -P -t demo/, 'and the kcat command lines');
like($out, qr/cluster\.sh kill-primary --dir \Q$dir\E$/m, 'and how to kill the primary');
like($out, qr/cluster\.sh stop --dir \Q$dir\E$/m, 'and the stop command');

# number_sync_standbys = 1 took effect on the primary
my $psql = sub {
	my ($sql) = @_;
	return run_bounded([ 'psql', '-X', '-q', '-At', '-v', 'ON_ERROR_STOP=1', $conninfo, '-c', $sql ], 30);
};
($rc, $out) = $psql->('SHOW synchronous_standby_names');
like($out, qr/^ANY 1 \(/, 'the primary waits for one of its two standbys');

# --- a record by kcat, one by psql, read back ---------------------------------
($rc, $out) = kcat([ '-P', '-t', 'demo', '-X', 'acks=all' ], stdin => "from-kcat\n");
is($rc, 0, 'kcat produces through the gateway') or diag($out);
($rc, $out) = $psql->(q{SELECT partition FROM pgq_send('demo', 'from-psql')});
is($rc, 0, 'psql sends through the multi-host conninfo') or diag($out);
is_deeply(consume_all(), [ 'from-kcat', 'from-psql' ], 'kcat reads both back through the gateway');
($rc, $out) = $psql->(q{SELECT string_agg(convert_from(f.value, 'UTF8'), ',' ORDER BY convert_from(f.value, 'UTF8'))
	FROM generate_series(0, 2) p, LATERAL pgq_fetch('demo', p, 0) f});
is($out, 'from-kcat,from-psql', 'and SQL reads both');

# --- kill-primary ------------------------------------------------------------
my $t_kill;
($rc, $out, $t_kill) = cluster('kill-primary');
is($rc, 0, 'cluster.sh kill-primary succeeds') or diag($out);
like($out, qr/kill -9 of node1's pg_autoctl and postmaster/, 'it kills node1');
my ($new, $elected) = $out =~ /^the monitor elected (node[23]) after ([\d.]+) s$/m;
ok($new, 'the monitor elected a standby: ' . ($new // 'none'));
my ($written) = $out =~ /^first write accepted through the multi-host conninfo after ([\d.]+) s$/m;
ok(defined $written, 'a write was accepted through the multi-host conninfo');
like($out, qr/^primary: \Q$new\E /m, "state shows $new as the primary") if $new;
my ($served) = $out =~ /^the gateway serves topic demo from the new primary after ([\d.]+) s$/m;
ok(defined $served, 'kill-primary waits until the gateway serves the topic again');

($rc, $out) = kcat([ '-L', '-t', 'demo' ]);
like($out, qr/topic "demo" with 3 partitions/, 'the gateway serves Metadata after the failover')
  or diag($out);
($rc, $out) = kcat([ '-P', '-t', 'demo', '-X', 'acks=all', '-X', 'message.timeout.ms=20000' ],
	stdin => "after-failover\n", timeout => 40);
is($rc, 0, 'and Produce, on the new primary') or diag($out);
is_deeply(consume_all(), [ 'after-failover', 'from-kcat', 'from-psql', 'written after kill-primary' ],
	'every record is read back through the gateway');

($rc, $out) = cluster('state');
is($rc, 0, 'cluster.sh state succeeds');
like($out, qr/^primary: \Q$new\E /m, 'state names the new primary') if $new;

# --- revive ---------------------------------------------------------------------
($rc, $out) = cluster('revive');
is($rc, 0, 'cluster.sh revive succeeds') or diag($out);
like(table_states($out), qr/node1:secondary\/secondary/, 'node1 is back, as a secondary');

# --- stop ---------------------------------------------------------------------
my $t_stop;
($rc, $out, $t_stop) = cluster('stop');
is($rc, 0, 'cluster.sh stop succeeds') or diag($out);
like($out, qr/stopped the gateway/, 'it says it stopped the gateway');
like($out, qr/the formation in \Q$dir\E is stopped/, 'and the formation');

# whatever the formation started carries PGQUEUE_CLUSTER=$dir; pgrep looks
# for command lines naming the directory (postmasters, pg_autoctl runs)
my @left;
foreach my $proc (glob '/proc/[0-9]*')
{
	open my $fh, '<', "$proc/environ" or next;
	local $/;
	my $env = <$fh> // '';
	push @left, $proc if grep { $_ eq "PGQUEUE_CLUSTER=$dir" } split /\0/, $env;
}
is_deeply(\@left, [], 'no process of the formation is left');
($rc, $out) = run_bounded([ 'pgrep', '-af', $dir ], 10);
is($out, '', 'pgrep finds nothing running in the directory');
ok(!IO::Socket::INET->new(PeerAddr => $bootstrap, Timeout => 2), 'the gateway port is closed');

($rc, $out) = cluster('stop');
is($rc, 0, 'stop again is fine');
($rc, $out) = cluster('state');
isnt($rc, 0, 'state fails once stopped');
like($out, qr/is stopped/, 'and says so');
($rc, $out) = cluster('clean');
is($rc, 0, 'cluster.sh clean succeeds');
ok(!-e $dir, 'clean removes the directory');
$started = 0;

diag(sprintf(
		'cluster.sh start %.1f s; kill-primary %.1f s (election %s s, first write %s s, '
		  . 'gateway serving %s s); stop %.1f s',
		$t_start, $t_kill, $elected // '?', $written // '?', $served // '?', $t_stop));

done_testing();
