# Copyright (c) pgqueue contributors
#
# GatewayTap.pm
#	  What the TAP tests of pgqueue-kafka (the Kafka protocol gateway) share:
#	  starting a gateway in front of a node on a free 127.0.0.1 port and
#	  waiting until it accepts (gateway_start), stopping it with SIGTERM and
#	  checking that it exited 0 with a clean log (gateway_stop), running the
#	  Kafka clients with a time limit (kcat, run_python), and talking the
#	  protocol by hand for the bad-input tests (kafka_connect, kafka_send,
#	  kafka_request, kafka_read_response).
#
#	  The gateway run is gateway/pgqueue-kafka-asan, built here with
#	  AddressSanitizer and UBSan (make -C gateway asan), so that every test
#	  also checks the daemon's memory safety: a sanitizer report, a leak at
#	  exit included, makes gateway_stop fail.  PGQK_GATEWAY=/path/to/binary
#	  runs another build instead (e.g. the installed pgqueue-kafka).

package GatewayTap;

use strict;
use warnings;

use Exporter 'import';
use File::Basename qw(dirname);
use IO::Socket::INET;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

our @EXPORT = qw(gateway_start gateway_stop gateway_log kcat run_python
  kafka_connect kafka_send kafka_request kafka_read_response
  tail_start tails_read tails_warm tails_stop parked wait_unparked);

# the seconds a client may run before it is killed (and the test fails)
our $client_timeout = 60;

my $gateway_binary;

# The gateway to run: built once per test file (make keeps it up to date).
sub gateway_binary
{
	return $gateway_binary if defined $gateway_binary;
	if ($ENV{PGQK_GATEWAY})
	{
		$gateway_binary = $ENV{PGQK_GATEWAY};
		return $gateway_binary;
	}
	my $dir = dirname(__FILE__) . '/../../gateway';
	my ($out, $err);
	IPC::Run::run([ 'make', '-s', '-C', $dir, 'asan' ], '>', \$out, '2>', \$err)
	  or BAIL_OUT("could not build the gateway with AddressSanitizer:\n$out$err");
	$gateway_binary = "$dir/pgqueue-kafka-asan";
	return $gateway_binary;
}

# Start a gateway for a node's postgres database (or $opt{conninfo}) on a
# free port of 127.0.0.1, with extra command-line options in $opt{args},
# and wait until it accepts connections.  Returns a handle: {port, bootstrap, log, ...}.
sub gateway_start
{
	my ($node, %opt) = @_;
	my $name = $opt{name} // 'gateway';
	my $port = PostgreSQL::Test::Cluster::get_free_port();
	my $log = PostgreSQL::Test::Utils::tempdir('gw') . "/$name.log";
	my @cmd = (
		gateway_binary(),
		'--listen' => "127.0.0.1:$port",
		'--conninfo' => $opt{conninfo} // $node->connstr('postgres'),
		'--pool-size' => 2,
		@{ $opt{args} // [] });
	# leaks are reported at exit, and make the exit status non-zero
	local $ENV{ASAN_OPTIONS} = 'detect_leaks=1:exitcode=86';
	local $ENV{UBSAN_OPTIONS} = 'print_stacktrace=1:halt_on_error=1:exitcode=87';
	my $h = IPC::Run::start(\@cmd, '<', \undef, '>>', $log, '2>>', $log);
	my $gw = {
		h => $h,
		name => $name,
		port => $port,
		bootstrap => "127.0.0.1:$port",
		log => $log
	};
	my $deadline = time() + 30;
	while (time() < $deadline)
	{
		my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 1);
		if ($s)
		{
			close $s;
			return $gw;
		}
		last unless $h->pumpable;
		usleep(50_000);
	}
	diag("gateway log:\n" . gateway_log($gw));
	BAIL_OUT("the gateway did not start listening on port $port");
}

# The gateway's log so far.
sub gateway_log
{
	my ($gw) = @_;
	return -e $gw->{log} ? slurp_file($gw->{log}) : '';
}

# Stop a gateway with SIGTERM: one test, that it exited with status 0
# within 20 seconds and its log has no sanitizer report.  Returns the
# exit status.  The signal is sent again every 50 ms until the gateway is
# gone, as an impatient service manager might: a repeated SIGTERM must not
# kill a gateway that is already stopping (nor one tearing down, with the
# leak check at exit).
sub gateway_stop
{
	my ($gw) = @_;
	my $rc;
	$gw->{h}->signal('TERM');
	my $t = IPC::Run::timer(20);
	$t->start;
	while ($gw->{h}->pumpable && !$t->is_expired)
	{
		usleep(50_000);
		$gw->{h}->signal('TERM');
		# pump_nb dies ("process ended prematurely") if the gateway exits
		# between pumpable and it: that is the end this loop waits for
		eval { $gw->{h}->pump_nb; 1 } or last;
	}
	if ($gw->{h}->pumpable)
	{
		$gw->{h}->kill_kill;
		$rc = -1;
	}
	else
	{
		$gw->{h}->finish;
		$rc = $gw->{h}->full_result(0);
	}
	my $log = gateway_log($gw);
	my $clean = $log !~ /(AddressSanitizer|LeakSanitizer|runtime error:)/;
	ok($rc == 0 && $clean, "$gw->{name} exits with status 0 on SIGTERM, with no sanitizer report")
	  or diag("exit status $rc; log:\n$log");
	return $rc;
}

# Run a program with arguments and optional stdin text, killed after
# $opt{timeout} seconds; returns (exit code or -1 if killed, stdout, stderr).
sub run_bounded
{
	my ($cmd, %opt) = @_;
	my ($out, $err) = ('', '');
	my $in = $opt{stdin} // '';
	my $rc;
	eval {
		IPC::Run::run($cmd, '<', \$in, '>', \$out, '2>', \$err,
			IPC::Run::timeout($opt{timeout} // $client_timeout));
		$rc = $? >> 8;
		1;
	} or do {
		diag("@$cmd: $@");
		$rc = -1;
	};
	return ($rc, $out, $err);
}

# Run kcat against a gateway: kcat($gw, [args], timeout => s, stdin => text).
sub kcat
{
	my ($gw, $args, %opt) = @_;
	return run_bounded([ 'kcat', '-b', $gw->{bootstrap}, @$args ], %opt);
}

# ------------------------------------------------- consumers that long-poll

# A kcat consumer at the end of a topic, waiting up to 10 s per Fetch and
# printing "<topic> <value>" per record; @extra are more kcat arguments (a
# role's SASL settings).  Give it to tails_read in a hash by its topic.
sub tail_start
{
	my ($gw, $topic, @extra) = @_;
	my $c = { out => '', err => '' };
	$c->{h} = IPC::Run::start(
		[
			'kcat', '-b', $gw->{bootstrap}, @extra, '-C', '-t', $topic, '-o', 'end', '-u', '-q',
			'-X', 'fetch.wait.max.ms=10000', '-f', '%t %s\n'
		],
		'<', \undef, '>', \$c->{out}, '2>', \$c->{err}, IPC::Run::timeout(90));
	return $c;
}

# The seconds from $from until the tails (a hash topic => tail_start's) of
# @topics printed the record $value, or until $secs passed: topic => seconds.
sub tails_read
{
	my ($tails, $value, $from, $secs, @topics) = @_;
	my %took;
	my $deadline = time() + $secs;
	while (time() < $deadline && grep { !defined $took{$_} } @topics)
	{
		for my $t (grep { !defined $took{$_} } @topics)
		{
			$tails->{$t}{h}->pump_nb;
			$took{$t} = time() - $from if $tails->{$t}{out} =~ /^\Q$t $value\E$/m;
		}
		usleep(2_000);
	}
	return %took;
}

# Sends "warm" to the tails' topics until each read one (librdkafka starts
# at the end only once it has looked the offset up); the topics that did
# not within 30 s.
sub tails_warm
{
	my ($node, $tails, @cold) = @_;
	my $deadline = time() + 30;
	while (@cold && time() < $deadline)
	{
		$node->safe_psql('postgres', join(' ', map { "SELECT pgq_send('$_', 'warm');" } @cold));
		my %took = tails_read($tails, 'warm', time(), 1, @cold);
		@cold = grep { !defined $took{$_} } @cold;
	}
	return @cold;
}

sub tails_stop
{
	my ($tails) = @_;
	for my $c (values %$tails)
	{
		$c->{h}->kill_kill;
		$c->{h}->finish;
	}
	return;
}

# The statements of parked Fetch requests: a pgq_wait shared by several
# requests, or a request's own read that waits (pgq_fetch_partitions with
# a timeout).  $what 'shared' or 'own': those only.
my %parked_query = (
	shared => q{query LIKE '%FROM pgq_wait(%'},
	own => q{query LIKE '%FROM pgq_fetch_partitions(%'});

sub parked_condition
{
	my ($what) = @_;
	my $query = $what ? $parked_query{$what} : "($parked_query{shared} OR $parked_query{own})";
	return "state = 'active' AND $query AND pid <> pg_backend_pid()";
}

# How many of them are asleep in Postgres, waiting for a commit.
sub parked
{
	my ($node, $what) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Extension' AND "
		  . parked_condition($what));
}

# Waits until no Fetch of a gone client is parked any more (its wait runs
# out its time: a gateway's shutdown would wait for it).
sub wait_unparked
{
	my ($node) = @_;
	$node->poll_query_until('postgres',
		'SELECT count(*) = 0 FROM pg_stat_activity WHERE ' . parked_condition());
	return;
}

# Run a Python 3 program (Debian's, which has confluent_kafka and kafka)
# with the gateway's address in the environment as BOOTSTRAP.
sub run_python
{
	my ($gw, $code, %opt) = @_;
	local $ENV{BOOTSTRAP} = $gw->{bootstrap};
	return run_bounded([ '/usr/bin/python3', '-c', $code, @{ $opt{args} // [] } ], %opt);
}

# ---------------------------------------------------------- raw protocol

# A TCP connection to the gateway, for hand-made requests.
sub kafka_connect
{
	my ($gw) = @_;
	my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $gw->{port}, Timeout => 5)
	  or die "could not connect to the gateway: $!";
	binmode $s;
	return $s;
}

# Send raw bytes.
sub kafka_send
{
	my ($s, $bytes) = @_;
	local $SIG{PIPE} = 'IGNORE';
	return defined syswrite($s, $bytes);
}

# Read exactly $n bytes within $timeout seconds; undef if the connection
# closed (or the time ran out) first.
sub read_exactly
{
	my ($s, $n, $timeout) = @_;
	my $buf = '';
	my $deadline = time() + $timeout;
	while (length($buf) < $n)
	{
		my $left = $deadline - time();
		return undef if $left <= 0;
		my $rin = '';
		vec($rin, fileno($s), 1) = 1;
		return undef unless select(my $rout = $rin, undef, undef, $left);
		my $r = sysread($s, $buf, $n - length($buf), length($buf));
		return undef unless $r;    # EOF or error
	}
	return $buf;
}

# Read one response frame: (correlation id, the rest) or () if the
# connection closed without one within $timeout seconds (default 10).
sub kafka_read_response
{
	my ($s, $timeout) = @_;
	$timeout //= 10;
	my $size = read_exactly($s, 4, $timeout);
	return () unless defined $size;
	my $frame = read_exactly($s, unpack('N', $size), $timeout);
	return () unless defined $frame;
	return (unpack('l>', substr($frame, 0, 4)), substr($frame, 4));
}

# Send a request (header v1: api key, version, correlation id, client id
# "gwtap") with a body, and read its response: (correlation id, response
# after it) or () if the gateway closed the connection.
sub kafka_request
{
	my ($s, $key, $version, $correlation_id, $body) = @_;
	my $req = pack('s> s> l> s>/a*', $key, $version, $correlation_id, 'gwtap') . ($body // '');
	kafka_send($s, pack('N', length $req) . $req) or return ();
	return kafka_read_response($s);
}

1;
