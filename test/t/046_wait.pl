# Copyright (c) pgqueue contributors
#
# 046_wait.pl
#	  pgq_wait (src/wait.c): a wait for many (topic, partition, offset)
#	  entries ends when a read of one of them would answer, woken by the
#	  sending transaction's commit, not by its timeout.
#
# Checked here:
#	1. entries of one topic: a commit to one partition ends the wait and
#	   returns that entry only;
#	2. entries of several topics (the shared condition variable): a commit
#	   to one of them ends the wait, and so does a rolled-back send at the
#	   offset waited for (a read would move past the gap); a commit to a
#	   topic not listed does not;
#	3. an entry held back by an open sending transaction: a later commit
#	   or rollback in the partition does not end the wait (past the last
#	   stable offset), the open one's commit does;
#	4. a cancelled wait (pg_cancel_backend, statement_timeout) fails with
#	   the usual error and leaves the session able to wait again;
#	5. a read that waits (pgq_fetch_partitions with timeout_ms) sleeps
#	   the same way, and returns the records that ended its wait, or moves
#	   past the gap that did.
#
# No timing assertion: every wait has a timeout of ten minutes, and a wait
# that returns its entry cannot have timed out (it would return no rows).
# "Does not end the wait" is checked after the event was seen by the
# waiter: it is woken, checks its entries, and is found waiting again.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use PgqueueTap qw(wait_until_waiting send_value);
use Time::HiRes qw(usleep time);

my $timeout_ms = 600000;
my $give_up_after = 120;	# seconds after which a waiter is taken as stuck

my $node = PostgreSQL::Test::Cluster->new('wait');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pgqueue'\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pgqueue');
$node->safe_psql('postgres',
	"SELECT pgq_create_topic('w1', 2); SELECT pgq_create_topic('w2', 1); "
	  . "SELECT pgq_create_topic('w3', 1)");

my $waiter = $node->background_psql('postgres', on_error_stop => 0,
	timeout => 3 * $give_up_after);
my $waiter_pid = $waiter->query_safe('SELECT pg_backend_pid()');
my $query_seq = 0;
my $tag;

# Start a statement in the waiter session without waiting for its end.
sub start_statement
{
	my ($sql) = @_;
	$tag = 'wait_done_' . ++$query_seq;
	$waiter->{stdout} = '';
	$waiter->{stderr} = '';
	$waiter->{stdin} .= "$sql\n\\echo '$tag'\n\\warn '$tag'\n";
	$waiter->{run}->pump_nb while length $waiter->{stdin};
	return;
}

# Start a pgq_wait.
sub start_wait
{
	my ($topics, $partitions, $offsets, $extra) = @_;
	$extra //= '';
	start_statement("$extra SELECT entry, topic, partition, msg_offset FROM pgq_wait("
		  . "ARRAY[$topics]::text[], ARRAY[$partitions], ARRAY[$offsets]::bigint[], $timeout_ms);");
	return;
}

# Start a read that waits: its records' and partition rows' topic,
# partition, offset, value and next offset.
sub start_read
{
	my ($topics, $partitions, $offsets) = @_;
	start_statement("SELECT topic, partition, msg_offset, convert_from(value, 'UTF8'), next_offset "
		  . "FROM pgq_fetch_partitions(ARRAY[$topics]::text[], ARRAY[$partitions], "
		  . "ARRAY[$offsets]::bigint[], timeout_ms => $timeout_ms);");
	return;
}

sub wait_done
{
	$waiter->{run}->pump_nb;
	return $waiter->{stdout} =~ /^\Q$tag\E$/m && $waiter->{stderr} =~ /^\Q$tag\E$/m;
}

# The wait's output (stdout, stderr) once it ended, or undef if it is stuck.
sub finish_wait
{
	my $deadline = time + $give_up_after;
	until (wait_done())
	{
		return (undef, undef) if time > $deadline;
		usleep(10_000);
	}
	my ($out, $err) = ($waiter->{stdout}, $waiter->{stderr});
	s/^\Q$tag\E\n//m for ($out, $err);
	chomp $out;
	chomp $err;
	return ($out, $err);
}

sub waiting
{
	return wait_until_waiting($node, "pid = $waiter_pid");
}

# The waiter's number of wake-ups is not visible; instead, after an event
# that must not end the wait, give the waiter time to be woken and check,
# then see it is still in the wait.
sub still_waiting_after
{
	my ($what) = @_;
	usleep(300_000);
	ok(!wait_done() && waiting(), "$what does not end the wait");
	return;
}

# 1. One topic, two partitions: a commit to partition 1.
start_wait("'w1', 'w1'", '0, 1', '0, 0');
ok(waiting(), 'a wait for two partitions of one topic sleeps');
send_value($node, 'w1', 'one', 1);
my ($out, $err) = finish_wait();
is($out, '2|w1|1|0', 'a commit to one partition ends it and returns that entry');

# 2. Several topics: the shared condition variable.
start_wait("'w1', 'w2'", '0, 0', '0, 0');
ok(waiting(), 'a wait for two topics sleeps');
send_value($node, 'w3', 'elsewhere');
still_waiting_after('a commit to a topic not listed');
# a rolled-back send at the offset waited for is a gap a read would move past
$node->safe_psql('postgres',
	"BEGIN; SELECT pgq_send('w2', 'rolled back'::text); ROLLBACK;");
($out, $err) = finish_wait();
is($out, '2|w2|0|0', 'a gap at the offset waited for ends it');
start_wait("'w1', 'w2'", '0, 0', '0, 1');
ok(waiting(), 'a wait for two topics sleeps again');
send_value($node, 'w2', 'two');
($out, $err) = finish_wait();
is($out, '2|w2|0|1', 'a commit to the second topic ends it');
start_wait("'w1', 'w2'", '0, 0', '0, 2');
ok(waiting(), 'and again');
send_value($node, 'w1', 'three', 0);
($out, $err) = finish_wait();
is($out, '1|w1|0|0', 'a commit to the first topic ends it');

# 3. Held back by an open sending transaction.
my $open = $node->background_psql('postgres');
$open->query_safe("BEGIN");
my $held = $open->query_safe("SELECT msg_offset FROM pgq_send('w3', 'open'::text)");
start_wait("'w3'", '0', $held);
ok(waiting(), 'a wait behind an open send sleeps');
send_value($node, 'w3', 'after the open one');
still_waiting_after('a commit past an open send');
$node->safe_psql('postgres',
	"BEGIN; SELECT pgq_send('w3', 'rolled back'::text); ROLLBACK;");
still_waiting_after('a rolled-back send past an open send');
$open->query_safe("COMMIT");
($out, $err) = finish_wait();
is($out, "1|w3|0|$held", "the open send's commit ends it");
$open->quit;

# 4. Cancel and statement_timeout.
start_wait("'w1', 'w2'", '0, 0', '1, 2');
ok(waiting(), 'a wait to cancel sleeps');
$node->safe_psql('postgres', "SELECT pg_cancel_backend($waiter_pid)");
($out, $err) = finish_wait();
like($err, qr/canceling statement due to user request/, 'a cancelled wait fails');
start_wait("'w1', 'w2'", '0, 0', '1, 2', "SET statement_timeout = '200ms';");
($out, $err) = finish_wait();
like($err, qr/canceling statement due to statement timeout/, 'statement_timeout ends a wait');
start_wait("'w1', 'w2'", '0, 0', '1, 2', "RESET statement_timeout;");
ok(waiting(), 'the session waits again');
send_value($node, 'w2', 'four');
($out, $err) = finish_wait();
is($out, '2|w2|0|2', 'and is woken again');

# 5. A read that waits: w1/0 holds offset 0, w2/0 offsets 0 (a gap) to 2.
start_read("'w1', 'w2'", '0, 0', '1, 3');
ok(waiting(), 'a read that waits for two topics sleeps');
send_value($node, 'w3', 'elsewhere again');
still_waiting_after('a commit to a topic not read');
send_value($node, 'w2', 'five');
($out, $err) = finish_wait();
is($out, "w1|0|||1\nw2|0|3|five|\nw2|0|||4",
	'a commit ends it, and it returns the record that ended it');
start_read("'w1', 'w2'", '0, 0', '1, 4');
ok(waiting(), 'it sleeps again');
$node->safe_psql('postgres',
	"BEGIN; SELECT pgq_send('w1', 'rolled back'::text, partition => 0); ROLLBACK;");
($out, $err) = finish_wait();
is($out, "w1|0|||2\nw2|0|||4", 'a gap at the offset read ends it, and it moves past the gap');

$waiter->quit;
$node->stop;
done_testing();
