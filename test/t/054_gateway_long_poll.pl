# Copyright (c) pgqueue contributors
#
# 054_gateway_long_poll.pl
#	  A Fetch that finds nothing waits in Postgres (the long poll of
#	  Kafka's fetch.wait.max.ms), without polling:
#	  - a kcat consumer at the end of two partitions, with a 10 s wait,
#		gets a record sent from psql within a fraction of a second of the
#		commit, whichever partition it goes to;
#	  - while it waits, the gateway sends no statement but the one read
#		that waits (no pgq_wait: the consumer is alone), and librdkafka no
#		second Fetch;
#	  - once caught up, each record takes the consumer one statement: the
#		read that waits, and neither a read that finds nothing nor a
#		pgq_wait (the server's statement log, over 20 sends);
#	  - a send that rolls back does not end the wait with a record;
#	  - more parked Fetch requests than the waiting pool has connections
#		(--pool-size 2): six consumers on topics of their own are all
#		woken within a fraction of a second of their records' commits,
#		none sits out another's wait, and a read that waited, cancelled to
#		make room, is never answered with the cancel;
#	  - a wait that nothing wakes ends at max_wait_ms with an empty answer,
#		also while the other requests parked with it wait longer;
#	  - a Fetch from the offset of the gateway's hint, parked without a
#		read, gets a record sent after the hint was taken at once.

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use GatewayTap;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $node = PostgreSQL::Test::Cluster->new('gw_long_poll');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pgqueue'");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pgqueue;
	SELECT pgq_create_topic('lp', 2);
	SELECT pgq_send('lp', 'old', partition => 0);
});

my $gw = gateway_start($node);

# a consumer at the end of both partitions, printing each record with the
# time it read it, and logging its Fetch requests
my ($out, $err) = ('', '');
my $kcat = IPC::Run::start(
	[
		'kcat', '-b', $gw->{bootstrap}, '-C', '-t', 'lp', '-o', 'end', '-u', '-q',
		'-X', 'fetch.wait.max.ms=10000', '-d', 'fetch', '-f', '%p %o %s\n'
	],
	'<', \undef, '>', \$out, '2>', \$err, IPC::Run::timeout(90));

# the gateway's statements in which Fetch requests are parked
sub waiting
{
	return parked($node);
}

sub wait_until_parked
{
	my $deadline = time() + 30;
	while (time() < $deadline)
	{
		$kcat->pump_nb;
		return 1 if waiting() eq '1';
		usleep(50_000);
	}
	return 0;
}

sub fetches
{
	$kcat->pump_nb;
	my $n = () = $err =~ /Fetch \d+\/\d+\/\d+ toppar/g;
	return $n;
}

ok(wait_until_parked(), 'the consumer\'s Fetch is parked');
is(parked($node, 'own'), '1', 'in a read that waits, its own: no pgq_wait for a lone consumer');

# librdkafka adds a partition to its Fetch requests once it knows where to
# start: a record read from each shows that both are in the next Fetch
$node->safe_psql('postgres', q{SELECT pgq_send('lp', 'warm', partition => 0), pgq_send('lp', 'warm', partition => 1)});
my $deadline = time() + 30;
while (time() < $deadline && !($out =~ /^0 \d+ warm$/m && $out =~ /^1 \d+ warm$/m))
{
	$kcat->pump_nb;
	usleep(10_000);
}
like($out, qr/^0 \d+ warm\n1 \d+ warm$|^1 \d+ warm\n0 \d+ warm$/m, 'the consumer reads from both partitions');
ok(wait_until_parked(), 'and waits again');

# nothing happens for 2 s: one statement waiting, one Fetch in flight
my $before = fetches();
sleep 2;
is(fetches() - $before, 0, 'librdkafka sends no further Fetch while one waits');
is(waiting(), '1', 'and the gateway still waits in the same statement');

# caught up: one statement per record, the read that waits and returns it
my $log_from = -s $node->logfile;
for my $i (1 .. 20)
{
	$node->safe_psql('postgres', "SELECT pgq_send('lp', 'one-$i', partition => @{[ $i % 2 ]})");
	$deadline = time() + 30;
	while (time() < $deadline && $out !~ /^\d \d+ one-$i$/m)
	{
		$kcat->pump_nb;
		usleep(2_000);
	}
	last unless wait_until_parked();
}
like($out, qr/one-20$/m, 'the consumer reads 20 records sent one at a time');
my $log = substr(slurp_file($node->logfile), $log_from);
my $reads = () = $log =~ /execute \S+: SELECT .*FROM pgq_fetch_partitions\(/g;
my $waits = () = $log =~ /execute \S+: SELECT .*FROM pgq_wait\(/g;
cmp_ok($reads, '<=', 25, "one read per record, and a few more ($reads; an empty read and a read after pgq_wait per record made 40)");
is($waits, 0, 'and no pgq_wait');

for my $p (1, 0)
{
	ok(wait_until_parked(), "parked before the send to partition $p");
	# from before psql starts: an upper bound of the time from the commit
	my $sent = time();
	$node->safe_psql('postgres', "SELECT pgq_send('lp', 'wake-$p', partition => $p)");
	my $got;
	while (time() < $sent + 9)
	{
		$kcat->pump_nb;
		if ($out =~ /^$p \d+ wake-$p$/m)
		{
			$got = time();
			last;
		}
		usleep(2_000);
	}
	ok(defined $got, "the record sent to partition $p is read");
	my $latency = defined $got ? $got - $sent : 99;
	diag(sprintf('partition %d: read %.1f ms after psql started to send', $p, $latency * 1000));
	ok($latency < 1.0, "within a fraction of the 10 s wait of its commit (partition $p)");
}

# a rolled-back send wakes nothing with a record
ok(wait_until_parked(), 'parked again');
$node->safe_psql('postgres', q{BEGIN; SELECT pgq_send('lp', 'rolled-back', partition => 0); ROLLBACK;});
usleep(500_000);
$kcat->pump_nb;
unlike($out, qr/rolled-back/, 'a rolled-back send is never read');
$node->safe_psql('postgres', q{SELECT pgq_send('lp', 'after', partition => 0)});
$deadline = time() + 10;
$kcat->pump_nb until $out =~ /after/ || time() > $deadline;
like($out, qr/^0 \d+ after$/m, 'and the next send is read past its gap');
unlike($out, qr/\bold\b/, 'the consumer started at the end');

$kcat->kill_kill;
$kcat->finish;
# its last Fetch waits out its 10 s in pgq_wait: let it end first
wait_unparked($node);

my $many_log_from = -s $node->logfile;
# Six consumers, each at the end of a topic of its own, with 10 s waits:
# three times the waiting pool's two connections.  The requests share the
# waits (and a request parked while both connections wait cancels one of
# them, which waits again with it), so each is woken by its own commit.
my %many;
my @topics = map { "many$_" } 0 .. 5;
for my $t (@topics)
{
	$node->safe_psql('postgres', "SELECT pgq_create_topic('$t', 1)");
	$many{$t} = tail_start($gw, $t);
}
is(join(' ', tails_warm($node, \%many, @topics)), '', 'six consumers read from their topics');
sleep 1;
cmp_ok(waiting(), '<=', 2, 'their Fetch requests wait on at most the waiting pool\'s 2 connections');

# one topic at a time, so that each send wakes one parked request
for my $t ('many5', 'many0', 'many3')
{
	my $sent = time();
	$node->safe_psql('postgres', "SELECT pgq_send('$t', 'wake')");
	my %took = tails_read(\%many, 'wake', $sent, 15, $t);
	ok(defined $took{$t} && $took{$t} < 1.0,
		sprintf('the consumer of %s, one of 6, reads its record within a fraction of its 10 s wait (%.0f ms)',
			$t, ($took{$t} // 99) * 1000));
	usleep(300_000);		# it parks again
}

# all at once
my $sent_all = time();
$node->safe_psql('postgres', join(' ', map { "SELECT pgq_send('$_', 'all');" } @topics));
my %took_all = tails_read(\%many, 'all', $sent_all, 15, @topics);
is(scalar(grep { defined $took_all{$_} && $took_all{$_} < 2.0 } @topics), 6,
	'a send to each of the six topics is read by each consumer at once');
my $cancels = () = substr(slurp_file($node->logfile), $many_log_from) =~ /pg_cancel_backend/g;
cmp_ok($cancels, '<', 60, "the waits settle between sends ($cancels cancelled to make room)");
# a consumer's read that waited, cancelled to make room, waits again with
# the others: it is never answered with the cancel
ok($cancels > 0, 'some waits were cancelled to make room');
unlike(gateway_log($gw), qr/Fetch failed/, 'and no Fetch failed');

# Fetch v4 by hand of lp's partition 1 from $offset, waiting up to
# $max_wait_ms: (error, record batches, seconds taken)
my $s = kafka_connect($gw);
my $correlation = 0;
sub fetch_by_hand
{
	my ($offset, $max_wait_ms) = @_;
	my $body = pack('l> l> l> l> c', -1, $max_wait_ms, 1, 1 << 20, 1)
	  . pack('l> s>/a* l> l> q> l>', 1, 'lp', 1, 1, $offset, 1 << 20);
	my $t0 = time();
	my ($cid, $resp) = kafka_request($s, 1, 4, ++$correlation, $body);
	my $elapsed = time() - $t0;
	my ($throttle, $nt, $name, $np, $part, $error, $hwm, $lso, $naborted, $records) =
	  unpack('l> l> s>/a* l> l> s> q> q> l> l>/a*', $resp // '');
	return ($error, $records, $elapsed);
}

# a wait that nothing wakes: an empty answer at max_wait_ms, while the six
# consumers wait with 10 s
my $lso = $node->safe_psql('postgres',
	q{SELECT last_stable_offset FROM pgq_partitions WHERE topic = 'lp' AND partition = 1});
my ($error, $records, $elapsed) = fetch_by_hand($lso, 1500);
is("$error $records", "0 ", 'an unwoken Fetch answers no records and no error');
ok($elapsed >= 1.4 && $elapsed < 5, sprintf('after its max_wait_ms of 1.5 s (%.2f s)', $elapsed));

# that read left the gateway's hint for the partition at $lso: a record
# sent since, and a Fetch from $lso, which is parked without a read, finds
# it at once
$node->safe_psql('postgres', q{SELECT pgq_send('lp', 'behind the hint', partition => 1)});
($error, $records, $elapsed) = fetch_by_hand($lso, 10000);
like($records, qr/behind the hint/, 'a Fetch from a stale hint gets the record sent since');
ok($elapsed < 1.0, sprintf('at once, not after its 10 s wait (%.2f s)', $elapsed));
close $s;

tails_stop(\%many);
wait_unparked($node);
gateway_stop($gw);
done_testing();
