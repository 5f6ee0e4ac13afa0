# Copyright (c) pgqueue contributors
#
# AutoFailoverTap.pm
#	  A pg_auto_failover formation for the TAP tests, on this machine, as
#	  the calling (postgres) user: a monitor and three Postgres nodes,
#	  node1 the first primary, node2 and node3 its standbys, each run by
#	  its own "pg_autoctl run" in the background (formation_start), with
#	  number_sync_standbys = 1 (Kafka's min.insync.replicas = 2) and
#	  pgqueue preloaded on every node and created on the primary.
#	  Everything listens on 127.0.0.1 and a Unix socket directory of the
#	  test only; every wait is bounded.
#
#	  A node is PostgreSQL::Test::Cluster object (for psql, connstr, port)
#	  whose data directory pg_autoctl owns: the Cluster object never
#	  starts or stops it.  node_kill kills a node as a machine loss would
#	  (kill -9 of its pg_autoctl processes and of its postmaster);
#	  node_run starts its pg_autoctl again, which restarts Postgres or
#	  rejoins the node as a standby as the monitor says.
#
#	  The monitor's timeouts are cut from pg_auto_failover's production
#	  defaults so that an election takes seconds (see @monitor_settings);
#	  docs/durability.md explains them.
#
#	  pg_autoctl is found in PATH (Debian: /usr/bin/pg_autoctl, package
#	  pg-auto-failover-cli); the monitor's pgautofailover extension must
#	  be installed in the PostgreSQL the tests run on (package
#	  postgresql-15-auto-failover).  auto_failover_missing() says what is
#	  missing, for a skip_all.

package AutoFailoverTap;

use strict;
use warnings;

use Exporter 'import';
use File::Path qw(make_path);
use IPC::Run;
use POSIX ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

our @EXPORT = qw(auto_failover_missing formation_start formation_stop
  node_run node_kill formation_states wait_for_states primary_node
  multi_host_conninfo node_log);

# Monitor settings (milliseconds).  Production defaults in parentheses:
# a health check every second (5 s) with a 1 s connect timeout (5 s), one
# retry (2) after 0.5 s (2 s); a node silent for 3 s is unhealthy (20 s);
# the old primary gets 5 s to drain (30 s) before a standby is promoted;
# failovers are allowed 1 s after the monitor starts (10 s).
my @monitor_settings = (
	'pgautofailover.health_check_period = 1000',
	'pgautofailover.health_check_timeout = 1000',
	'pgautofailover.health_check_max_retries = 1',
	'pgautofailover.health_check_retry_delay = 500',
	'pgautofailover.node_considered_unhealthy_timeout = 3000',
	'pgautofailover.primary_demote_timeout = 5000',
	'pgautofailover.startup_grace_period = 1000');

# Keeper settings (seconds): a primary that can reach neither the monitor
# nor a standby for 3 s (20 s) demotes itself; this must stay below the
# monitor's primary_demote_timeout, so that the old primary has stopped
# before a standby is promoted.
my @keeper_settings = ('timeout.network_partition_timeout' => 3);

# every formation started, for the END block
my @formations;

# What is missing to run a formation: '' if nothing.
sub auto_failover_missing
{
	my ($out, $err) = ('', '');
	eval { IPC::Run::run([ 'pg_autoctl', 'version' ], '>', \$out, '2>', \$err); 1 }
	  or return 'pg_autoctl is not installed (Debian: postgresql-15-auto-failover)';
	my $sharedir = pg_config('--sharedir');
	return "the pgautofailover extension is not installed in $sharedir"
	  unless -e "$sharedir/extension/pgautofailover.control";
	return '';
}

sub pg_config
{
	my ($opt) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'pg_config', $opt ], '>', \$out, '2>', \$err)
	  or die "pg_config $opt failed: $err";
	chomp $out;
	return $out;
}

# Run a pg_autoctl command to its end (within $timeout seconds); dies if
# it fails.  Its output goes to $log.
sub autoctl
{
	my ($f, $log, $timeout, @args) = @_;
	my $ok = eval {
		IPC::Run::run([ 'pg_autoctl', @args ], '<', \undef, '>>', $log, '2>>', $log,
			IPC::Run::timeout($timeout));
	};
	return if $ok;
	diag("pg_autoctl @args failed; $log:\n" . slurp_file($log));
	die "pg_autoctl @args failed";
}

# An initdb'd data directory with the settings every node needs, in
# postgresql.auto.conf: pg_autoctl's own postgresql-auto-failover.conf is
# included from postgresql.conf, and postgresql.auto.conf is read after it,
# so these win; a standby's pg_basebackup copies them from the primary.
sub init_datadir
{
	my ($node, @settings) = @_;
	my $pgdata = $node->data_dir;
	my ($out, $err) = ('', '');
	IPC::Run::run([ 'initdb', '-D', $pgdata, '-A', 'trust', '-N' ], '>', \$out, '2>', \$err)
	  or die "initdb failed: $err";
	open my $fh, '>>', "$pgdata/postgresql.auto.conf" or die "$pgdata: $!";
	print $fh "$_\n" foreach (
		"unix_socket_directories = '" . $node->host . "'",
		"shared_buffers = '16MB'",
		"fsync = off",
		# pg_basebackup waits for a spread checkpoint: no spreading
		"checkpoint_completion_target = 0",
		@settings);
	close $fh;
	return;
}

# Wait until a node accepts connections, with pg_isready: poll_query_until
# writes its query to psql's stdin, and dies of EPIPE when psql, refused,
# exits before reading it.
sub wait_accepting
{
	my ($node, $seconds) = @_;
	my $deadline = time() + $seconds;
	while (time() < $deadline)
	{
		return 1
		  if IPC::Run::run([ 'pg_isready', '-q', '-h', $node->host, '-p', $node->port ],
			'>', \my $out, '2>', \my $err);
		usleep(100_000);
	}
	return 0;
}

# Start a formation; returns {monitor, nodes => [node1, node2, node3], ...}.
# Options: topics, SQL run on the primary after CREATE EXTENSION pgqueue.
sub formation_start
{
	my (%opt) = @_;
	my $base = PostgreSQL::Test::Utils::tempdir('paf');
	# pg_autoctl keeps its configuration, state and pid files under the
	# XDG directories: those of this test, not of the postgres user
	$ENV{XDG_CONFIG_HOME} = "$base/config";
	$ENV{XDG_DATA_HOME} = "$base/share";
	$ENV{XDG_RUNTIME_DIR} = "$base/run";
	make_path($ENV{XDG_CONFIG_HOME}, $ENV{XDG_DATA_HOME}, $ENV{XDG_RUNTIME_DIR});
	my $f = { base => $base, pg_ctl => pg_config('--bindir') . '/pg_ctl', runs => {} };
	push @formations, $f;

	my $monitor = PostgreSQL::Test::Cluster->new('monitor');
	$f->{monitor} = $monitor;
	init_datadir($monitor, @monitor_settings);
	autoctl($f, "$base/monitor.create.log", 60,
		'create', 'monitor', '--pgdata' => $monitor->data_dir,
		'--pgport' => $monitor->port, '--pgctl' => $f->{pg_ctl},
		'--hostname' => '127.0.0.1', '--listen' => '127.0.0.1',
		'--auth' => 'trust', '--no-ssl');
	node_run($f, $monitor);
	wait_accepting($monitor, 60) or die 'the monitor did not start';
	$f->{uri} = 'postgres://autoctl_node@127.0.0.1:' . $monitor->port
	  . '/pg_auto_failover?sslmode=disable';

	my @nodes = map { PostgreSQL::Test::Cluster->new("node$_") } 1 .. 3;
	$f->{nodes} = \@nodes;
	init_datadir($nodes[0], "shared_preload_libraries = 'pgqueue'");
	create_node($f, $nodes[0]);
	wait_for_states($f, { node1 => 'single' }, 60) or die 'node1 did not become single';
	# "single" may be the state create left, before run has started Postgres
	wait_accepting($nodes[0], 60) or die 'node1 did not start';
	$nodes[0]->safe_psql('postgres', "CREATE EXTENSION pgqueue;\n" . ($opt{topics} // ''));
	$nodes[0]->safe_psql('postgres', 'CHECKPOINT');
	create_node($f, $_) foreach @nodes[ 1, 2 ];
	wait_for_states($f, { node1 => 'primary', node2 => 'secondary', node3 => 'secondary' }, 90)
	  or die 'the formation did not converge: ' . formation_states($f);
	autoctl($f, "$base/formation.log", 30,
		'set', 'formation', 'number-sync-standbys', '1', '--monitor' => $f->{uri});
	return $f;
}

# Register a node with the monitor (a standby is cloned from the primary
# then) and start its pg_autoctl.
sub create_node
{
	my ($f, $node) = @_;
	my $name = $node->name;
	autoctl($f, "$f->{base}/$name.create.log", 120,
		'create', 'postgres', '--pgdata' => $node->data_dir,
		'--pgport' => $node->port, '--pghost' => $node->host,
		'--pgctl' => $f->{pg_ctl}, '--listen' => '127.0.0.1',
		'--hostname' => '127.0.0.1', '--name' => $name,
		'--dbname' => 'postgres', '--username' => scalar getpwuid($<),
		'--auth' => 'trust', '--no-ssl', '--monitor' => $f->{uri});
	my @set = @keeper_settings;
	while (my ($key, $value) = splice @set, 0, 2)
	{
		autoctl($f, "$f->{base}/$name.create.log", 30,
			'config', 'set', '--pgdata' => $node->data_dir, $key, $value);
	}
	node_run($f, $node);
	return;
}

# Start "pg_autoctl run" for a node (the monitor too) in the background,
# in a process group of its own, so that node_kill takes all of it.
sub node_run
{
	my ($f, $node) = @_;
	my $name = $node->name;
	my $log = "$f->{base}/$name.log";
	$f->{runs}{$name} = IPC::Run::start(
		[ 'pg_autoctl', 'run', '--pgdata' => $node->data_dir ],
		'<', \undef, '>>', $log, '2>>', $log,
		init => sub { POSIX::setsid() });
	return;
}

# The pid of a node's postmaster, from postmaster.pid; undef if none.
sub postmaster_pid
{
	my ($node) = @_;
	my $file = $node->data_dir . '/postmaster.pid';
	return undef unless -e $file;
	my ($pid) = split /\n/, slurp_file($file);
	return $pid;
}

# Kill a node as a machine loss would: SIGKILL to its pg_autoctl
# processes and its postmaster at once.  (Killing only the postmaster is a
# crash that the node's pg_autoctl repairs by restarting Postgres in place.)
sub node_kill
{
	my ($f, $node) = @_;
	my $name = $node->name;
	my $h = delete $f->{runs}{$name};
	my $pm = postmaster_pid($node);
	if ($h)
	{
		my $pgid = $h->{KIDS}[0]{PID};
		kill 'KILL', -$pgid if $pgid;
	}
	kill 'KILL', $pm if $pm;
	if ($h)
	{
		eval { $h->finish; 1 };
	}
	# the postmaster's children see it die and exit at once
	return;
}

# Stop everything (at the end of a test): "pg_autoctl stop" (a fast
# shutdown) for every node at once, at most 20 s, then SIGKILL for what is
# left.
sub formation_stop
{
	my ($f) = @_;
	my @nodes = grep { $f->{runs}{ $_->name } } @{ $f->{nodes} }, $f->{monitor};
	foreach my $node (@nodes)
	{
		eval {
			IPC::Run::run([ 'pg_autoctl', 'stop', '--pgdata' => $node->data_dir ],
				'>', \my $out, '2>', \my $err, IPC::Run::timeout(10));
		};
	}
	my $deadline = time() + 20;
	foreach my $node (@nodes)
	{
		my $h = $f->{runs}{ $node->name };
		while (time() < $deadline && $h->pumpable)
		{
			# pump_nb dies once the process is gone: what this waits for
			eval { $h->pump_nb; 1 } or last;
			usleep(100_000);
		}
		node_kill($f, $node);
	}
	return;
}

# The log of a node's pg_autoctl (all its runs).
sub node_log
{
	my ($f, $node) = @_;
	my $log = "$f->{base}/" . $node->name . '.log';
	return -e $log ? slurp_file($log) : '';
}

# A test that dies half-way leaves no server behind.
END
{
	local $?;
	foreach my $f (@formations)
	{
		node_kill($f, $_) foreach grep { $f->{runs}{ $_->name } } @{ $f->{nodes} }, $f->{monitor};
	}
}

# The formation as the monitor sees it: "node1:reported/assigned ..."
sub formation_states
{
	my ($f) = @_;
	my ($ret, $out) = $f->{monitor}->psql('pg_auto_failover', q{
		SELECT string_agg(nodename || ':' || reportedstate || '/' || goalstate, ' ' ORDER BY nodeid)
		  FROM pgautofailover.node});
	return $ret == 0 ? $out : '(monitor unreachable)';
}

# Wait until the nodes named in %$want have reported and been assigned
# those states (a state or a regex), for at most $seconds.
sub wait_for_states
{
	my ($f, $want, $seconds) = @_;
	my $deadline = time() + $seconds;
	while (time() < $deadline)
	{
		my %have = map { my ($n, $r, $g) = split m{[:/]}; ($n => [ $r, $g ]) }
		  split / /, formation_states($f);
		my $all = 1;
		foreach my $n (keys %$want)
		{
			my $re = ref $want->{$n} ? $want->{$n} : qr/^\Q$want->{$n}\E$/;
			$all = 0
			  unless $have{$n} && $have{$n}[0] =~ $re && $have{$n}[1] =~ $re;
		}
		return 1 if $all;
		usleep(200_000);
	}
	return 0;
}

# The node the monitor has as primary (reported and assigned), or undef.
sub primary_node
{
	my ($f) = @_;
	foreach (split / /, formation_states($f))
	{
		my ($n, $r, $g) = split m{[:/]};
		next unless $r eq 'primary' && $g eq 'primary';
		my ($node) = grep { $_->name eq $n } @{ $f->{nodes} };
		return $node;
	}
	return undef;
}

# A libpq conninfo naming every node, for clients that must find the
# primary: target_session_attrs=read-write, a short connect timeout.
sub multi_host_conninfo
{
	my ($f, %opt) = @_;
	my @nodes = @{ $f->{nodes} };
	return sprintf(
		'host=%s port=%s dbname=postgres target_session_attrs=read-write connect_timeout=%d%s',
		join(',', ('127.0.0.1') x @nodes),
		join(',', map { $_->port } @nodes),
		$opt{connect_timeout} // 2,
		defined $opt{application_name} ? " application_name=$opt{application_name}" : '');
}

1;
