# Copyright (c) pgqueue contributors
#
# 003_long_poll.pl
#	  Long polling (SPEC §4-5, src/wait.c): pgq_fetch and pgq_poll with
#	  timeout_ms > 0 that find nothing wait until a transaction that sent to
#	  the topic commits, the timeout passes, or the query is cancelled.
#
# Checked here, each on a topic of its own:
#	1. a waiting pgq_fetch is woken by a commit and returns the record far
#	   sooner than its timeout;
#	2. a rollback does not end a wait: the fetch runs to its timeout;
#	3. a record held back by an open sending transaction: a later committed
#	   record does not end the wait, the open one's commit returns both;
#	4. a cancelled wait fails with the usual error and leaves the session
#	   able to wait, and be woken, again;
#	5. ten waiters at once (pgq_fetch and pgq_poll in different groups) are
#	   all woken by one commit and all get the record;
#	6. pgq_poll in a group is woken by a commit to one of its partitions;
#	7. while waiting a backend holds no lock on pgqueue's relations and
#	   burns no CPU;
#	8. in REPEATABLE READ (and SERIALIZABLE) there is no wait, while in a
#	   READ COMMITTED transaction block there is;
#	9. a pgq_poll wait is capped at half the group's session.timeout.ms.
#
# A woken reader must return within 0.8 s of the commit, measured from the
# server's clock just after the commit, not from before a psql started:
# tight enough that a reader that slept and retried every second would fail
# most of these checks, loose enough for a slow, shared machine.  A wait
# that must not be ended early must last most of its timeout.  The whole
# test takes about 15 s.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use PgqueueTap qw(wait_until_waiting);
use Time::HiRes qw(usleep time);

my $long_timeout_ms = 30000;   # a wait that something else must end
my $woken_within = 0.8;        # seconds from the commit to the reader's return
my $cancel_within = 10;        # seconds from pg_cancel_backend to the return
my $give_up_after = 40;        # seconds after which a reader is taken as stuck
my $committed_at;              # server time just after send_committed's commit
my $session_timeout = 120;     # seconds any background psql may live

my $node = PostgreSQL::Test::Cluster->new('long_poll');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pgqueue'\n");
$node->start;

$node->safe_psql('postgres', 'CREATE EXTENSION pgqueue');

###########################################################################
# Helpers
###########################################################################

# A background psql session that does not stop at errors, and its backend pid.
sub new_session
{
	my ($name) = @_;
	my $psql = $node->background_psql(
		'postgres',
		on_error_stop => 0,
		timeout => $session_timeout);
	my $pid = $psql->query_safe('SELECT pg_backend_pid()');
	return { name => $name, psql => $psql, pid => $pid };
}

my $query_seq = 0;

# Send a query (one or more statements) to a session without waiting for it
# to finish.  A tag echoed after it, on stdout and stderr, marks its end.
sub start_query
{
	my ($s, $sql) = @_;
	my $p = $s->{psql};
	my $tag = 'lp_query_done_' . ++$query_seq;

	note "$s->{name}: starting: $sql";
	$p->{stdout} = '';
	$p->{stderr} = '';
	$s->{tag} = $tag;
	$p->{stdin} .= "$sql;\n\\echo '$tag'\n\\warn '$tag'\n";
	$p->{run}->pump_nb while length $p->{stdin};
	$s->{started} = time;
	return;
}

# Has the session's current query finished?  Does not block.
sub query_done
{
	my ($s) = @_;
	my $p = $s->{psql};
	my $tag = $s->{tag};
	$p->{run}->pump_nb;
	return $p->{stdout} =~ /^\Q$tag\E$/m && $p->{stderr} =~ /^\Q$tag\E$/m;
}

# Wait at most $limit seconds for the session's current query to finish.
# Returns (finished, stdout, stderr, time at which it was seen finished).
sub finish_query
{
	my ($s, $limit) = @_;
	my $p = $s->{psql};
	my $tag = $s->{tag};
	my $deadline = time + $limit;

	until (query_done($s))
	{
		if (time > $deadline)
		{
			diag("$s->{name}: query still running after $limit s");
			return (0, undef, undef, time);
		}
		usleep(10_000);
	}
	my $end = time;
	my $out = $p->{stdout};
	my $err = $p->{stderr};
	$out =~ s/^\Q$tag\E\n//m;
	$err =~ s/^\Q$tag\E\n//m;
	chomp $out;
	$p->{stdout} = '';
	$p->{stderr} = '';
	note "$s->{name}: finished after " . sprintf('%.2f', $end - $s->{started})
	  . " s; stdout: '$out'; stderr: '$err'";
	return (1, $out, $err, $end);
}

# Wait until all these sessions' backends are inside a long-poll wait.
sub sessions_waiting
{
	my @pids = map { $_->{pid} } @_;
	return wait_until_waiting($node, 'pid IN (' . join(', ', @pids) . ')', scalar(@pids));
}

# Is this backend inside a long-poll wait right now?  (Only where nothing can
# have woken it: a woken reader is briefly out of the wait while it reads.)
sub is_waiting
{
	my ($s) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE pid = $s->{pid}"
		  . " AND state = 'active' AND wait_event_type = 'Extension'") eq '1';
}

# Commit a send to a partition from a fresh session (autocommit); returns
# its offset, and sets $committed_at to the server's clock read by the next
# statement, just after the commit (the same clock as time() here).
sub send_committed
{
	my ($topic, $partition, $value) = @_;
	my ($offset, $at) = split /\n/, $node->safe_psql('postgres',
		"SELECT msg_offset FROM pgq_send('$topic', '$value'::text, NULL::text, $partition);\n"
		  . "SELECT extract(epoch FROM clock_timestamp())");
	$committed_at = $at;
	return $offset;
}

# A query reading records as "partition|offset|value" lines.
sub fetch_sql
{
	my ($topic, $partition, $offset, $timeout_ms) = @_;
	return "SELECT partition, msg_offset, convert_from(value, 'UTF8') "
	  . "FROM pgq_fetch('$topic', $partition, $offset, 100, $timeout_ms)";
}

sub poll_sql
{
	my ($group, $topic, $timeout_ms) = @_;
	return "SELECT partition, msg_offset, convert_from(value, 'UTF8') "
	  . "FROM pgq_poll('$group', '$topic', 100, $timeout_ms)";
}

# Relation locks a backend holds on relations of the schema pgqueue: all of
# them, or ($segments_only) only on segment tables and their indexes.
sub pgqueue_locks
{
	my ($pid, $segments_only) = @_;
	my $segment_filter = $segments_only
	  ? "AND (c.oid IN (SELECT relid FROM pgqueue.segment) OR c.oid IN "
	  . "(SELECT indexrelid FROM pg_index WHERE indrelid IN (SELECT relid FROM pgqueue.segment))) "
	  : '';
	return $node->safe_psql('postgres',
		"SELECT coalesce(string_agg(c.relname || ':' || l.mode, ', ' ORDER BY c.relname), '') "
		  . "FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
		  . "JOIN pg_namespace n ON n.oid = c.relnamespace "
		  . "WHERE l.pid = $pid AND l.locktype = 'relation' "
		  . "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
		  . "AND n.nspname = 'pgqueue' $segment_filter");
}

# The lock check of a waiting backend: none on segment tables, so that it
# never holds up retention (which drops segments) nor anyone else.  The
# topic lookup's AccessShareLocks on pgqueue's catalog tables last until the
# end of the transaction, as for any statement; they conflict only with
# DROP EXTENSION, VACUUM FULL or REINDEX of the catalog (documented).
sub check_no_locks
{
	my ($pid, $what) = @_;
	is(pgqueue_locks($pid, 1), '', "$what, the backend holds no lock on any segment table");
}

# CPU time (user + system, in clock ticks) a process has used so far, or
# undef if /proc is not there to tell.
sub cpu_ticks
{
	my ($pid) = @_;
	open my $fh, '<', "/proc/$pid/stat" or return undef;
	my $line = <$fh>;
	close $fh;
	return undef unless defined $line && $line =~ /\)\s+(.*)$/;
	my @f = split /\s+/, $1;    # from field 3 (state) on
	return $f[11] + $f[12];     # fields 14 (utime) and 15 (stime)
}

###########################################################################
# 1 and 7. A waiting pgq_fetch holds no lock, burns no CPU, and is woken by
# a commit.
###########################################################################

$node->safe_psql('postgres', "SELECT pgq_create_topic('lp_wake', 1)");
my $w = new_session('waiter');

# The lock query does see a lock on a segment table when there is one.
{
	my $segtab = $node->safe_psql('postgres',
		"SELECT s.relid::regclass FROM pgqueue.segment s JOIN pgqueue.topic t USING (topic_id) "
		  . "WHERE t.name = 'lp_wake' AND s.partition = 0 ORDER BY s.segment_no LIMIT 1");
	isnt($segtab, '', "the empty partition has a segment table ($segtab)");
	my $locker = new_session('locker');
	$locker->{psql}->query_safe('BEGIN');
	$locker->{psql}->query_safe("SELECT count(*) FROM $segtab");
	like(pgqueue_locks($locker->{pid}, 1), qr/:AccessShareLock\b/,
		'control: pg_locks shows a lock a backend holds on a segment table');
	$locker->{psql}->query_safe('COMMIT');
	$locker->{psql}->quit;
}

start_query($w, fetch_sql('lp_wake', 0, 0, $long_timeout_ms));
ok(sessions_waiting($w), 'a fetch on an empty partition waits (wait_event_type Extension)');

check_no_locks($w->{pid}, 'while waiting on an empty partition');

SKIP:
{
	my $before = cpu_ticks($w->{pid});
	skip 'no /proc/<pid>/stat to read CPU time from', 2 unless defined $before;
	sleep 2;
	my $after = cpu_ticks($w->{pid});
	note 'CPU ticks used while waiting 2 s: ' . ($after - $before);
	ok(!query_done($w) && is_waiting($w), 'the fetch is still waiting 2 s later');
	ok($after - $before <= 10,
		'while waiting 2 s the backend used no more than 10 clock ticks of CPU')
	  or diag("it used " . ($after - $before) . " ticks");
}

ok(!query_done($w), 'the fetch has not returned before anything was sent');
is(send_committed('lp_wake', 0, 'wake-1'), '0', 'a committed send to the partition');
my $t_commit = $committed_at;
{
	my ($done, $out, $err, $end) = finish_query($w, $give_up_after);
	ok($done && $end - $t_commit < $woken_within,
		"the waiting fetch returned within $woken_within s of the commit (timeout 30 s)")
	  or diag(sprintf('returned %.2f s after the commit', $end - $t_commit));
	is($out, '0|0|wake-1', 'the woken fetch returned the committed record');
	is($err, '', 'without error');
}

###########################################################################
# 2. A rollback does not end a wait.
###########################################################################

$node->safe_psql('postgres', "SELECT pgq_create_topic('lp_rollback', 1)");
start_query($w, fetch_sql('lp_rollback', 0, 0, 3000));
ok(sessions_waiting($w), 'a fetch with timeout 3 s waits');
$node->safe_psql('postgres',
	"BEGIN; SELECT pgq_send('lp_rollback', 'rolled-back'::text, NULL::text, 0); ROLLBACK;");
usleep(300_000);
ok(!query_done($w) && sessions_waiting($w),
	'after another session sent and rolled back, the fetch is still waiting');
{
	my ($done, $out, $err, $end) = finish_query($w, 30);
	my $elapsed = $end - $w->{started};
	ok($done, 'the fetch returned');
	is($out, '', 'it returned no record');
	is($err, '', 'without error');
	ok($elapsed >= 2.5, 'it ran to its timeout (at least 2.5 s of 3 s), the rollback did not end it')
	  or diag(sprintf('it took %.2f s', $elapsed));
	ok($elapsed < 20, 'and did not run much past its timeout')
	  or diag(sprintf('it took %.2f s', $elapsed));
}

###########################################################################
# 3. A record held back by an open sending transaction.
###########################################################################

$node->safe_psql('postgres', "SELECT pgq_create_topic('lp_held', 1)");
is(send_committed('lp_held', 0, 'held-pre'), '0', 'a first committed record at offset 0');
my $a = new_session('open sender');
$a->{psql}->query_safe('BEGIN');
my $n = $a->{psql}->query_safe(
	"SELECT msg_offset FROM pgq_send('lp_held', 'held-a'::text, NULL::text, 0)");
is($n, '1', 'an open transaction sent to offset 1');

start_query($w, fetch_sql('lp_held', 0, $n, $long_timeout_ms));
ok(sessions_waiting($w), "a fetch from offset $n waits");

my $n1 = send_committed('lp_held', 0, 'held-b');
is($n1, $n + 1, 'another transaction sent to the next offset and committed');
usleep(1_000_000);
ok(!query_done($w) && sessions_waiting($w),
	'the fetch is still waiting: the committed record is held back by the open one');
is($node->safe_psql('postgres', fetch_sql('lp_held', 0, $n, 0)), '',
	"a fetch from offset $n without waiting returns nothing");
check_no_locks($w->{pid}, 'while waiting on a partition with records');

# Readers read only up to the last stable offset (SPEC §3), also when they
# start past it.  Today a fetch from $n1 serves $n1 although $n is still
# pending, and $n becomes visible after A commits: an ordering violation,
# not a long-polling one.
is($node->safe_psql('postgres', fetch_sql('lp_held', 0, $n1, 0)), '',
	"a fetch from offset $n1 (past the last stable offset) returns nothing either");
is( $node->safe_psql('postgres',
		"SELECT last_stable_offset FROM pgq_partitions WHERE topic = 'lp_held' AND partition = 0"),
	$n, "the last stable offset is $n");

$t_commit = time;
$a->{psql}->query_safe('COMMIT');
{
	my ($done, $out, $err, $end) = finish_query($w, $give_up_after);
	ok($done && $end - $t_commit < $woken_within,
		"when the open transaction commits, the fetch returns within $woken_within s")
	  or diag(sprintf('returned %.2f s after the commit', $end - $t_commit));
	is($out, "0|$n|held-a\n0|$n1|held-b", 'with both records, in offset order');
	is($err, '', 'without error');
}
$a->{psql}->quit;

###########################################################################
# 4. A cancelled wait cleans up.
###########################################################################

$node->safe_psql('postgres', "SELECT pgq_create_topic('lp_cancel', 1)");
start_query($w, fetch_sql('lp_cancel', 0, 0, $long_timeout_ms));
ok(sessions_waiting($w), 'a fetch waits');
my $t_cancel = time;
is($node->safe_psql('postgres', "SELECT pg_cancel_backend($w->{pid})"), 't', 'cancel it');
{
	my ($done, $out, $err, $end) = finish_query($w, $give_up_after);
	ok($done && $end - $t_cancel < $cancel_within,
		"the cancelled fetch returned within $cancel_within s")
	  or diag(sprintf('returned %.2f s after the cancel', $end - $t_cancel));
	like($err, qr/canceling statement due to user request/, 'with the cancel error');
	is($out, '', 'and no record');
}
ok( $node->poll_query_until('postgres',
		"SELECT state = 'idle' FROM pg_stat_activity WHERE pid = $w->{pid}"),
	'the cancelled session is idle');
is(pgqueue_locks($w->{pid}, 0), '', 'and holds no lock on any relation of the schema pgqueue');

start_query($w, fetch_sql('lp_cancel', 0, 0, $long_timeout_ms));
ok(sessions_waiting($w), 'the same session waits again');
is(send_committed('lp_cancel', 0, 'after-cancel'), '0', 'a committed send');
$t_commit = $committed_at;
{
	my ($done, $out, $err, $end) = finish_query($w, $give_up_after);
	ok($done && $end - $t_commit < $woken_within,
		"the second wait is woken by the commit within $woken_within s")
	  or diag(sprintf('returned %.2f s after the commit', $end - $t_commit));
	is($out, '0|0|after-cancel', 'and returns the record');
	is($err, '', 'without error');
}

###########################################################################
# 5. Many waiters at once.
###########################################################################

$node->safe_psql('postgres', "SELECT pgq_create_topic('lp_many', 1)");
my @fetchers = map { new_session("fetcher $_") } 1 .. 6;
my @pollers = map { new_session("poller $_") } 1 .. 4;

# Each poller joins its own group first (it then owns the only partition),
# so that its waiting poll is a wait for records.
for my $i (0 .. $#pollers)
{
	is($pollers[$i]->{psql}->query_safe(poll_sql("lp_many_g$i", 'lp_many', 0)), '',
		"poller $i joined group lp_many_g$i, nothing to read yet");
}
start_query($_, fetch_sql('lp_many', 0, 0, $long_timeout_ms)) for @fetchers;
start_query($pollers[$_], poll_sql("lp_many_g$_", 'lp_many', $long_timeout_ms)) for 0 .. $#pollers;
ok(sessions_waiting(@fetchers, @pollers), 'all 10 sessions (6 fetches, 4 polls) are waiting');
ok(!(grep { query_done($_) } @fetchers, @pollers), 'none has returned');

is(send_committed('lp_many', 0, 'for-all'), '0', 'one committed send');
$t_commit = $committed_at;
{
	my @late;
	my @wrong;
	foreach my $s (@fetchers, @pollers)
	{
		my ($done, $out, $err, $end) = finish_query($s, $give_up_after);
		if (!$done || $end - $t_commit >= $woken_within)
		{
			push @late, $s->{name};
		}
		elsif ($out ne '0|0|for-all' || $err ne '')
		{
			push @wrong, "$s->{name}: '$out' '$err'";
		}
	}
	ok(@late == 0, "one commit woke all 10 waiters within $woken_within s")
	  or diag('late: ' . join(', ', @late));
	ok(@wrong == 0, 'all of them got the record')
	  or diag(join("\n", @wrong));
}
$_->{psql}->quit for @fetchers, @pollers;

###########################################################################
# 6. pgq_poll in a group is woken by a commit to one of its partitions.
###########################################################################

$node->safe_psql('postgres', "SELECT pgq_create_topic('lp_group', 3)");
is($w->{psql}->query_safe(poll_sql('lp_group_g', 'lp_group', 0)), '',
	'a member joins the group, nothing to read yet');
is( $node->safe_psql('postgres',
		"SELECT partitions FROM pgq_members WHERE group_id = 'lp_group_g' AND topic = 'lp_group'"),
	'{0,1,2}', 'it owns all three partitions');
start_query($w, poll_sql('lp_group_g', 'lp_group', $long_timeout_ms));
ok(sessions_waiting($w), 'its poll waits');
is(send_committed('lp_group', 2, 'to-p2'), '0', 'a committed send to partition 2');
$t_commit = $committed_at;
{
	my ($done, $out, $err, $end) = finish_query($w, $give_up_after);
	ok($done && $end - $t_commit < $woken_within,
		"the waiting poll returned within $woken_within s of the commit")
	  or diag(sprintf('returned %.2f s after the commit', $end - $t_commit));
	is($out, '2|0|to-p2', 'with the record from partition 2');
	is($err, '', 'without error');
}

###########################################################################
# 9. A pgq_poll wait is capped at half the group's session.timeout.ms.
###########################################################################

$node->safe_psql('postgres', "SELECT pgq_create_topic('lp_cap', 1)");
$node->safe_psql('postgres',
	q{SELECT pgq_alter_group('lp_cap_g', '{"session.timeout.ms": 6000}')});
is($w->{psql}->query_safe(poll_sql('lp_cap_g', 'lp_cap', 0)), '',
	'a member joins a group whose session timeout is 6 s');
start_query($w, poll_sql('lp_cap_g', 'lp_cap', $long_timeout_ms));
ok(sessions_waiting($w), 'its poll with timeout 30 s waits');
{
	my ($done, $out, $err, $end) = finish_query($w, 30);
	my $elapsed = $end - $w->{started};
	ok($done, 'the poll returned');
	is($out, '', 'with no record');
	is($err, '', 'without error');
	ok($elapsed >= 2.5 && $elapsed < 15,
		'after about half the session timeout (3 s), well before its own timeout (30 s)')
	  or diag(sprintf('it took %.2f s', $elapsed));
}

###########################################################################
# 8. REPEATABLE READ: no wait.
###########################################################################

$node->safe_psql('postgres', "SELECT pgq_create_topic('lp_iso', 1)");
foreach my $level ('REPEATABLE READ', 'SERIALIZABLE')
{
	start_query($w,
		"BEGIN ISOLATION LEVEL $level;\n"
		  . "SELECT count(*) FROM pgq_fetch('lp_iso', 0, 0, 10, 5000);\n"
		  . "COMMIT");
	my ($done, $out, $err, $end) = finish_query($w, 30);
	my $elapsed = $end - $w->{started};
	ok($done && $elapsed < 2.5, "in $level a fetch with timeout 5 s returns at once")
	  or diag(sprintf('it took %.2f s', $elapsed));
	is($out, '0', 'with nothing');
	is($err, '', 'without error');
}
{
	start_query($w,
		"BEGIN ISOLATION LEVEL REPEATABLE READ;\n"
		  . poll_sql('lp_iso_g', 'lp_iso', 0) . ";\n"
		  . poll_sql('lp_iso_g', 'lp_iso', 5000) . ";\n"
		  . "COMMIT");
	my ($done, $out, $err, $end) = finish_query($w, 30);
	my $elapsed = $end - $w->{started};
	ok($done && $elapsed < 2.5, 'in REPEATABLE READ a poll with timeout 5 s returns at once')
	  or diag(sprintf('it took %.2f s', $elapsed));
	is($out, '', 'with nothing');
	is($err, '', 'without error');
}

# Control: in a READ COMMITTED transaction block the fetch does wait, and is
# woken by a commit.
start_query($w,
	"BEGIN ISOLATION LEVEL READ COMMITTED;\n"
	  . fetch_sql('lp_iso', 0, 0, $long_timeout_ms) . ";\n"
	  . "COMMIT");
ok(sessions_waiting($w), 'in a READ COMMITTED transaction block a fetch waits');
is(send_committed('lp_iso', 0, 'rc'), '0', 'a committed send');
$t_commit = $committed_at;
{
	my ($done, $out, $err, $end) = finish_query($w, $give_up_after);
	ok($done && $end - $t_commit < $woken_within,
		"and is woken by the commit within $woken_within s")
	  or diag(sprintf('returned %.2f s after the commit', $end - $t_commit));
	is($out, '0|0|rc', 'with the record');
	is($err, '', 'without error');
}

$w->{psql}->quit;
$node->stop;

done_testing();
