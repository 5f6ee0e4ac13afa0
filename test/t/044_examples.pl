# Copyright (c) pgqueue contributors
#
# 044_examples.pl
#	  The client examples in examples/ work as documented (SPEC §4, §10):
#	  the Python ones (psycopg 3) and the Node ones (node-postgres), each a
#	  producer and a consumer-group worker that polls, processes and
#	  commits, run against a server directly and through PgBouncer in
#	  transaction mode.
#
# For each language and each way in (direct: the server's Unix socket;
# pooled: a PgBouncer started here with pool_mode = transaction, three
# server connections and server_round_robin, so that one client's
# consecutive statements run on different server connections, which the
# test checks first), two runs, each on a topic of 4 partitions and a group
# of its own (enable.auto.commit off: the workers commit explicitly):
#	clean	two producers send records while three workers consume them;
#			once the producers are done and the group's committed offsets
#			reached the high watermarks, the workers get SIGTERM and must
#			finish, commit, leave and exit 0.  Every record in the log must
#			have been processed exactly once;
#	kill	the same, but two workers are killed (SIGKILL) in the middle of
#			a batch, holding records they processed and had not committed
#			yet: one is restarted with the same member_id, the other
#			replaced by a worker with a new one (the group's
#			session.timeout.ms is short, so that its partitions move soon).
#			Every record must have been processed at least once.
# Both runs also check that the producers sent every record without error
# and that the log holds exactly what they were acknowledged; that no
# worker processed a record that is not in the log (same key, same value)
# or saw a partition's offsets go backwards; that every worker left (no
# member is left in pgq_members); and that the committed offsets end at
# the high watermarks, with lag 0 in pgq_consumer_lag.
#
# A worker's output (one line per record it processed, written before it
# commits) is the proof of processing: one file per worker process.
#
# Needs python3 with psycopg 3 (Debian: python3-psycopg), node with the pg
# package in node_modules/ of the tree, and pgbouncer (Debian: pgbouncer).
# Every wait is bounded; the test takes about a minute.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use PgqueueTap;
use Cwd qw(abs_path);
use IPC::Run;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time usleep);

my $examples = abs_path("$FindBin::RealBin/../../examples");
my $npartitions = 4;
my $poll_timeout_ms = 1000;    # the workers' long polls
my $kill_session_timeout_ms = 4000;    # kill runs: a killed member's lease
my $lag_wait = 20;    # seconds for the committed offsets to reach the end

# nothing buffered that a forked child could write out again
STDOUT->autoflush(1);
STDERR->autoflush(1);

# a backstop for the whole test, beyond its bounded waits
$SIG{ALRM} = sub { die "044_examples.pl ran for more than 300 s\n" };
alarm 300;

###########################################################################
# Helpers: processes the test starts and stops
###########################################################################

my $workdir = PostgreSQL::Test::Utils::tempdir('examples');
my %running;    # pid => name, of every process started and not yet reaped

# Start a program with extra environment variables, its standard output
# and error going to files in $workdir named after it.
sub start_proc
{
	my ($name, $env, @cmd) = @_;
	my $p = {
		name => $name,
		out => "$workdir/$name.out",
		err => "$workdir/$name.err"
	};
	my $pid = fork() // die "fork: $!";
	if ($pid == 0)
	{
		# never return into the test (its END blocks stop the server)
		eval {
			@ENV{ keys %$env } = values %$env;
			open STDIN, '<', '/dev/null' or die;
			open STDOUT, '>', $p->{out} or die;
			open STDERR, '>', $p->{err} or die;
			exec @cmd;
		};
		POSIX::_exit(127);
	}
	$p->{pid} = $pid;
	$running{$pid} = $name;
	return $p;
}

# Wait up to $seconds for a process to exit, then kill it; sets
# $p->{status} (the wait status) and $p->{timed_out}.
sub wait_proc
{
	my ($p, $seconds) = @_;
	my $deadline = time + $seconds;
	while (waitpid($p->{pid}, WNOHANG) != $p->{pid})
	{
		if (time > $deadline)
		{
			diag("$p->{name} did not exit within $seconds s: killed");
			kill 'KILL', $p->{pid};
			waitpid($p->{pid}, 0);
			$p->{timed_out} = 1;
			last;
		}
		usleep(50_000);
	}
	$p->{status} = $?;
	delete $running{ $p->{pid} };
	return $p;
}

# Did it exit 0 by itself, with nothing on stderr but the examples' own
# "worker <member>: ..." lines and none saying it failed?
sub exited_cleanly
{
	my ($p) = @_;
	my $err = slurp_file($p->{err});
	my @bad = grep { !/^worker \S+: / || /failed/ } split /\n/, $err;
	return 1 if !$p->{timed_out} && $p->{status} == 0 && !@bad;
	diag("$p->{name}: wait status $p->{status}, stderr:\n$err");
	return 0;
}

# A process's complete output lines (a line a kill cut short is dropped).
sub output_lines
{
	my ($p) = @_;
	return () unless -e $p->{out};    # not opened yet
	my @lines = split /\n/, slurp_file($p->{out}), -1;
	pop @lines;
	return @lines;
}

# Wait until a process printed at least $n lines, for at most $seconds.
sub wait_for_lines
{
	my ($p, $n, $seconds) = @_;
	my $deadline = time + $seconds;
	while (time < $deadline)
	{
		return 1 if scalar(my @l = output_lines($p)) >= $n;
		usleep(50_000);
	}
	return 0;
}

END
{
	kill 'KILL', keys %running;
}

# Run a query on a node until it returns 't', for at most $seconds.
sub wait_until
{
	my ($node, $query, $seconds) = @_;
	my $deadline = time + $seconds;
	while (time < $deadline)
	{
		my ($ret, $out) = $node->psql('postgres', $query);
		return 1 if $ret == 0 && $out eq 't';
		usleep(100_000);
	}
	return 0;
}

# The first of these commands that runs "$cmd @args" with exit code 0.
sub first_working
{
	my ($args, @candidates) = @_;
	foreach my $cmd (@candidates)
	{
		my ($out, $err) = ('', '');
		my $ok = eval { IPC::Run::run([ $cmd, @$args ], '<', \'', '>', \$out, '2>', \$err,
				IPC::Run::timeout(30)) };
		return $cmd if $ok;
	}
	return undef;
}

###########################################################################
# The server, the clients' interpreters and PgBouncer
###########################################################################

my $python = first_working([ '-c', 'import psycopg' ], 'python3', '/usr/bin/python3');
ok(defined $python, 'python3 with psycopg 3 is there (Debian: python3-psycopg)');
my $node_js = first_working(
	[ '-e', 'require(require.resolve("pg", { paths: [process.argv[1]] }))', "$examples/node" ],
	'node', '/usr/bin/node');
ok(defined $node_js, 'node and the pg package are there (npm install in the tree)');
my $pgbouncer_bin = first_working([ '--version' ], 'pgbouncer', '/usr/sbin/pgbouncer');
ok(defined $pgbouncer_bin, 'pgbouncer is there (Debian: pgbouncer)');
die "cannot run the examples without them\n"
  unless defined $python && defined $node_js && defined $pgbouncer_bin;

my $node = PostgreSQL::Test::Cluster->new('examples');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'pgqueue'
max_connections = 50
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pgqueue');
my $user = $node->safe_psql('postgres', 'SELECT current_user');

my $pgb_port = PostgreSQL::Test::Cluster::get_free_port();
my $pgb_dir = "$workdir/pgbouncer";
mkdir $pgb_dir or die "mkdir $pgb_dir: $!";
{
	open my $fh, '>', "$pgb_dir/userlist.txt" or die;
	print $fh qq{"$user" ""\n};
	close $fh;
	my $host = $node->host;
	my $port = $node->port;
	open $fh, '>', "$pgb_dir/pgbouncer.ini" or die;
	print $fh <<"INI";
[databases]
postgres = host=$host port=$port dbname=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $pgb_port
unix_socket_dir =
auth_type = trust
auth_file = $pgb_dir/userlist.txt
pool_mode = transaction
default_pool_size = 3
min_pool_size = 3
server_round_robin = 1
max_client_conn = 100
query_wait_timeout = 30
ignore_startup_parameters = extra_float_digits
logfile = $pgb_dir/pgbouncer.log
pidfile = $pgb_dir/pgbouncer.pid
INI
	close $fh;
}
my $pgbouncer = start_proc('pgbouncer', {}, $pgbouncer_bin, "$pgb_dir/pgbouncer.ini");

# psql through PgBouncer: (exit code, stdout)
sub psql_pooled
{
	my ($sql) = @_;
	my ($out, $err) = ('', '');
	my $ok = eval {
		IPC::Run::run(
			[
				$node->installed_command('psql'), '-XAtq', '-v', 'ON_ERROR_STOP=1',
				'-h', '127.0.0.1', '-p', $pgb_port, '-U', $user, '-d', 'postgres', '-f', '-'
			],
			'<', \$sql, '>', \$out, '2>', \$err,
			IPC::Run::timeout(30));
	};
	chomp $out;
	return ($ok ? 0 : 1, $out);
}

my $pooled_up = 0;
for (my $i = 0; $i < 100 && !$pooled_up; $i++)
{
	my ($rc, $out) = psql_pooled('SELECT 1;');
	$pooled_up = $rc == 0 && $out eq '1';
	usleep(100_000) unless $pooled_up;
}
ok($pooled_up, 'PgBouncer accepts connections')
  or diag(slurp_file("$pgb_dir/pgbouncer.log"));

# The pooled runs prove something only if a client's statements really move
# between server connections: the autocommit statements of one client must
# run on more than one backend.  PgBouncer opens min_pool_size connections
# only while a client is connected, one per maintenance round, so the
# client stays a while.
my $rotates = 0;
for (my $i = 0; $i < 5 && !$rotates; $i++)
{
	my ($rc, $out) = psql_pooled("SELECT pg_backend_pid();\nSELECT pg_sleep(0.1);\n" x 20);
	my %pids = map { $_ => 1 } grep { /^\d+$/ } split /\n/, $out;
	$rotates = $rc == 0 && keys %pids > 1;
}
ok($rotates, "one client's statements run on several server connections through PgBouncer");

###########################################################################
# A run
###########################################################################

# The command lines of the examples, for one language and way in.
sub producer_cmd
{
	my ($lang, $way, $topic, $count, $prefix) = @_;
	my @args = ('--topic', $topic, '--count', $count, '--batch', 50, '--prefix', $prefix);
	return ($python, "$examples/python/producer.py", @args, $way eq 'pooled' ? ('--no-prepare') : ())
	  if $lang eq 'python';
	return ($node_js, "$examples/node/producer.js", @args);
}

sub worker_cmd
{
	my ($lang, $way, $group, $topic, $member, $process_ms) = @_;
	my @args = (
		'--group', $group, '--topic', $topic, '--member', $member,
		'--max-records', 50, '--timeout-ms', $poll_timeout_ms, '--process-ms', $process_ms);
	return ($python, "$examples/python/worker.py", @args, $way eq 'pooled' ? ('--no-prepare') : ())
	  if $lang eq 'python';
	return ($node_js, "$examples/node/worker.js", @args);
}

# Kill a worker (SIGKILL) while it holds records it processed and has not
# committed, as a crash mid-batch would: stopped (SIGSTOP), so that it can
# commit nothing meanwhile, it is killed if some partition's last record it
# processed is at or past the group's committed offset, else let go on and
# tried again.  Returns whether it was killed so within $seconds (it is
# killed anyway then).
sub kill_mid_batch
{
	my ($w, $group, $topic, $seconds) = @_;
	my $deadline = time + $seconds;
	while (time < $deadline)
	{
		kill 'STOP', $w->{pid};
		usleep(50_000);    # a commit the server was running has ended
		my %committed = map { split /\|/ } split /\n/,
		  $node->safe_psql('postgres',
			"SELECT partition, coalesce(committed_offset, 0) FROM pgq_consumer_lag"
			  . " WHERE group_id = '$group' AND topic = '$topic'");
		my %last;
		foreach my $line (output_lines($w))
		{
			my (undef, $p, $o) = split /\t/, $line;
			$last{$p} = $o if !defined $last{$p} || $o > $last{$p};
		}
		if (grep { $last{$_} >= ($committed{$_} // 0) } keys %last)
		{
			kill 'KILL', $w->{pid};
			return 1;
		}
		kill 'CONT', $w->{pid};
		usleep(10_000 + int(rand(40_000)));
	}
	kill 'KILL', $w->{pid};
	return 0;
}

sub run_examples
{
	my ($lang, $way, $kill) = @_;
	my $run = "$lang $way " . ($kill ? 'kill' : 'clean');
	my $topic = "ex_${lang}_${way}_" . ($kill ? 'kill' : 'clean');
	my $group = "g_$topic";
	# per producer; in a kill run enough that the workers are still busy
	# when they are killed (keys hash unevenly: a partition may get an
	# eighth of the records, and its worker must not have finished them)
	my $count = $kill ? 3000 : 600;
	my $process_ms = $kill ? 2 : 1;    # so that a kill lands mid-batch
	my %env = (
		PGUSER => $user,
		PGDATABASE => 'postgres',
		$way eq 'direct'
		? (PGHOST => $node->host, PGPORT => $node->port)
		: (PGHOST => '127.0.0.1', PGPORT => $pgb_port));

	$node->safe_psql('postgres', "SELECT pgq_create_topic('$topic', $npartitions)");
	my $config = '"enable.auto.commit": false'
	  . ($kill ? qq{, "session.timeout.ms": $kill_session_timeout_ms} : '');
	$node->safe_psql('postgres', "SELECT pgq_alter_group('$group', '{$config}')");

	my @producers = map {
		start_proc("$topic-producer$_", \%env,
			producer_cmd($lang, $way, $topic, $count, "$lang$_"))
	} 1 .. 2;
	my %workers = map {
		$_ => start_proc("$topic-$_", \%env,
			worker_cmd($lang, $way, $group, $topic, "$topic-$_", $process_ms))
	} qw(w1 w2 w3);
	my @finished;    # workers killed, in the order killed

	if ($kill)
	{
		# once w1 and w2 processed some records, kill each in the middle of
		# a batch; restart w1 as the same member, replace w2 by a new
		# member w4
		foreach my $w (qw(w1 w2))
		{
			ok(wait_for_lines($workers{$w}, 50, 30), "$run: $w processed records before its kill");
			ok(kill_mid_batch($workers{$w}, $group, $topic, 10),
				"$run: $w killed with processed records not committed");
			push @finished, wait_proc($workers{$w}, 10);
		}
		$workers{w1} = start_proc("$topic-w1-restarted", \%env,
			worker_cmd($lang, $way, $group, $topic, "$topic-w1", $process_ms));
		$workers{w4} = start_proc("$topic-w4", \%env,
			worker_cmd($lang, $way, $group, $topic, "$topic-w4", $process_ms));
		delete $workers{w2};
	}

	foreach my $p (@producers)
	{
		wait_proc($p, 60);
		ok(exited_cleanly($p), "$run: $p->{name} exited 0 without errors");
	}

	my $at_end = "SELECT count(*) = $npartitions"
	  . "       AND bool_and(committed_offset IS NOT DISTINCT FROM high_watermark AND lag = 0)"
	  . "  FROM pgq_consumer_lag WHERE group_id = '$group' AND topic = '$topic'";
	ok(wait_until($node, $at_end, $lag_wait),
		"$run: the committed offsets reach the high watermarks, lag 0")
	  or diag($node->safe_psql('postgres',
			"SELECT * FROM pgq_consumer_lag WHERE group_id = '$group' ORDER BY partition"));

	# SIGTERM: each worker finishes its batch, commits, leaves, exits 0; a
	# worker started late (a restarted one) may still be starting: it is
	# sent SIGTERM once it joined and installed its handler (its log says so)
	foreach my $w (values %workers)
	{
		my $deadline = time + 30;
		usleep(50_000) until -e $w->{err} && slurp_file($w->{err}) =~ /: consuming / || time > $deadline;
	}
	kill 'TERM', map { $_->{pid} } values %workers;
	foreach my $w (sort keys %workers)
	{
		wait_proc($workers{$w}, 15);
		ok(exited_cleanly($workers{$w}), "$run: $workers{$w}{name} exited 0 after SIGTERM");
	}
	is($node->safe_psql('postgres', "SELECT count(*) FROM pgq_members WHERE group_id = '$group'"),
		'0', "$run: every worker left the group");
	is($node->safe_psql('postgres', $at_end), 't', "$run: lag 0 after the workers left");

	# what the producers were acknowledged, and what the log holds
	my (%sent, @bad_sent);
	foreach my $p (@producers)
	{
		foreach my $line (output_lines($p))
		{
			if ($line =~ /^(\d+)\t(\d+)\t(key-\d+)\t(\S+)$/) { $sent{$4} = [ $1, $2, $3 ]; }
			else { push @bad_sent, "$p->{name}: unexpected line: $line"; }
		}
	}
	foreach my $i (1 .. 2)
	{
		exists $sent{"$lang$i-$_"} or push @bad_sent, "$lang$i-$_ was not acknowledged"
		  foreach 1 .. $count;
	}
	none_bad(\@bad_sent, "$run: the producers were acknowledged every record");

	my %log;    # "partition/offset" => [key, value]
	foreach my $p (0 .. $npartitions - 1)
	{
		my $next = 0;
		while (1)
		{
			my $out = $node->safe_psql('postgres',
				"SELECT msg_offset, convert_from(key, 'UTF8'), convert_from(value, 'UTF8')"
				  . "  FROM pgq_fetch('$topic', $p, $next, 1000)");
			last if $out eq '';
			foreach my $line (split /\n/, $out)
			{
				my ($o, $k, $v) = split /\|/, $line;
				$log{"$p/$o"} = [ $k, $v ];
				$next = $o + 1 if $o >= $next;
			}
		}
	}
	my @bad_log;
	push @bad_log, "the log holds " . scalar(keys %log) . " records, not " . 2 * $count
	  if keys %log != 2 * $count;
	foreach my $v (sort keys %sent)
	{
		my ($p, $o, $k) = @{ $sent{$v} };
		my $in_log = $log{"$p/$o"};
		push @bad_log, "$v acknowledged at $p/$o, where the log has "
		  . ($in_log ? "$in_log->[1]" : 'nothing')
		  unless $in_log && $in_log->[0] eq $k && $in_log->[1] eq $v;
	}
	none_bad(\@bad_log, "$run: the log holds exactly the acknowledged records");

	# what the workers processed
	my (%times, @bad_processed);
	foreach my $w (@finished, values %workers)
	{
		my %last;    # partition => the last offset this process processed
		foreach my $line (output_lines($w))
		{
			my ($t, $p, $o, $k, $v) = split /\t/, $line, -1;
			if (!defined $v || $t ne $topic || $p !~ /^\d+$/ || $o !~ /^\d+$/)
			{
				push @bad_processed, "$w->{name}: unexpected line: $line";
				next;
			}
			my $in_log = $log{"$p/$o"};
			push @bad_processed, "$w->{name} processed $p/$o as $k/$v, not in the log"
			  unless $in_log && $in_log->[0] eq $k && $in_log->[1] eq $v;
			push @bad_processed, "$w->{name} processed $p/$o after $p/$last{$p}"
			  if defined $last{$p} && $o <= $last{$p};
			$last{$p} = $o;
			$times{"$p/$o"}++;
		}
	}
	none_bad(\@bad_processed,
		"$run: the workers processed records of the log only, each partition in offset order");

	my @not_once;
	foreach my $r (sort keys %log)
	{
		my $n = $times{$r} // 0;
		push @not_once, "$r processed $n times" if $kill ? $n < 1 : $n != 1;
	}
	if ($kill)
	{
		none_bad(\@not_once, "$run: every record was processed at least once");
		my $again = grep { $_ > 1 } values %times;
		note("$run: $again records were processed more than once");
	}
	else
	{
		none_bad(\@not_once, "$run: every record was processed exactly once");
	}
	return;
}

foreach my $lang (qw(python node))
{
	foreach my $way (qw(direct pooled))
	{
		run_examples($lang, $way, 0);
		run_examples($lang, $way, 1);
	}
}

kill 'TERM', $pgbouncer->{pid};
wait_proc($pgbouncer, 10);

$node->stop;
done_testing();
