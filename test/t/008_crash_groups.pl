# Copyright (c) pgqueue contributors
#
# 008_crash_groups.pl
#	  A crash (immediate-mode stop) and restart with consumer groups
#	  mid-flight (SPEC §4, §8): committed group offsets survive,
#	  transactional consumption stays exactly-once, and the state kept in
#	  shared memory (members, leases, ownership, offset counters) is rebuilt.
#
# Load: autocommit producers send to a topic of 4 partitions while three
# groups consume it, every member with a static member_id:
#	g_auto		three members a1..a3, auto-commit (the default): a poll first
#				commits what the same session's previous poll returned;
#	g_manual	enable.auto.commit false (pgq_alter_group), two members m1, m2
#				that call pgq_commit(group, member) after every poll;
#	g_txn		one member t1 consuming transactionally: BEGIN; INSERT INTO
#				processed SELECT ... FROM pgq_poll(...); SELECT pgq_commit(...);
#				COMMIT (every fifth transaction rolls back instead).
# Everything each client got back is recorded.  A transaction with a send
# to partition 0 is PREPARED, then the server is stopped in immediate mode
# and started again.  Checked:
#	- committed offsets survived: each group's committed offset is at least
#	  what an acknowledged commit had committed (a later auto-committing
#	  poll, pgq_commit, or the COMMIT of the transactional member), and none
#	  is past the prepared send;
#	- exactly-once inside the database: the processed table holds exactly
#	  the records below g_txn's committed offsets, each once, same values;
#	- shared memory starts empty: pgq_members is empty, a heartbeat is
#	  refused and a commit before polling again is fenced (55000) once
#	  another member is live (into a group with no live member, a commit by
#	  a non-member is accepted, as Kafka's commit with generation -1);
#	- members rejoin by polling and the assignment is balanced again (in
#	  g_auto each member owns 1 or 2 partitions, in g_manual 2, every
#	  partition owned once);
#	- pgq_partitions is right after the restart: each high watermark is just
#	  above the highest offset in the partition's offset index and above
#	  everything acknowledged or delivered, the last stable offset is the
#	  prepared send's offset on partition 0 and the high watermark elsewhere;
#	  new sends take exactly the high watermark;
#	- the prepared send still holds back partition 0's readers and, after
#	  COMMIT PREPARED, is delivered at its original offset;
#	- after draining, every group got every record of the log at least once
#	  (every acknowledged send among them), and g_txn processed each exactly
#	  once.
#
# Every wait is bounded; the test takes about 10-20 s.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use PgqueueTap;
use IPC::Run;
use Time::HiRes qw(time);

my $topic = 'cg_t';
my $npartitions = 4;
my $nproducers = 3;
my $producer_sends = 60000;  # far more than can run before the crash
my $polls = 40000;           # per consumer script, likewise
my $process_timeout = 60;    # seconds any helper process may live
$PgqueueTap::client_timeout = $process_timeout;
my $gid = 'pgq_crash_groups_prepared';
my @auto_members = qw(a1 a2 a3);
my @manual_members = qw(m1 m2);

my $node = PostgreSQL::Test::Cluster->new('crash_groups');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'pgqueue'
max_prepared_transactions = 10
synchronous_commit = on
});
$node->start;

$node->safe_psql('postgres', 'CREATE EXTENSION pgqueue');
$node->safe_psql('postgres', 'CREATE EXTENSION pageinspect');
$node->safe_psql('postgres', "SELECT pgq_create_topic('$topic', $npartitions)");
$node->safe_psql('postgres', q{SELECT pgq_alter_group('g_manual', '{"enable.auto.commit": false}')});
$node->safe_psql('postgres',
	'CREATE TABLE processed (partition int NOT NULL, msg_offset bigint NOT NULL, value text)');

###########################################################################
# Helpers
###########################################################################

# A quiet interactive psql session (one database session), for members that
# must keep their session across polls.
my $session_seq = 0;

sub session_start
{
	my ($name) = @_;
	my $s = { name => $name, in => '', out => '', err => '' };
	$s->{h} = IPC::Run::start(
		[
			$node->installed_command('psql'), '-XAtq',
			'-d', $node->connstr('postgres'), '-f', '-'
		],
		'<', \$s->{in},
		'>', \$s->{out},
		'2>', \$s->{err},
		IPC::Run::timeout($process_timeout));
	return $s;
}

# Run SQL (complete statements, ';'-terminated) in a session; returns its
# output (dies on an error).
sub session_query
{
	my ($s, $sql) = @_;
	my $tag = 'session_done_' . ++$session_seq;
	$s->{out} = '';
	$s->{err} = '';
	$s->{in} .= "$sql\n\\echo $tag\n";
	$s->{h}->pump until $s->{out} =~ /^\Q$tag\E$/m;
	die "$s->{name}: $s->{err}" if $s->{err} ne '';
	my $out = $s->{out};
	$out =~ s/^\Q$tag\E\n//m;
	return $out;
}

sub session_end
{
	my ($s) = @_;
	$s->{in} .= "\\q\n";
	eval { $s->{h}->finish; 1 } or $s->{h}->kill_kill;
}

# group => { member => [ partitions ] } from pgq_members
sub members_now
{
	my %m;
	foreach my $line (split /\n/, $node->safe_psql('postgres',
			"SELECT group_id, member_id, array_to_string(partitions, ',') FROM pgq_members WHERE topic = '$topic'"))
	{
		my ($g, $mem, $parts) = split /\|/, $line, -1;
		$m{$g}{$mem} = [ grep { $_ ne '' } split /,/, $parts ];
	}
	return \%m;
}

# Is the group's assignment balanced over these members, each partition
# owned exactly once?  Returns '' if so, else what is wrong.
sub unbalanced
{
	my ($members, $g, @ids) = @_;
	my $lo = int($npartitions / @ids);
	my $hi = $lo + ($npartitions % @ids ? 1 : 0);
	my %owner;
	foreach my $id (@ids)
	{
		my $parts = $members->{$g}{$id};
		return "$id is not a member" unless defined $parts;
		my $n = scalar(@$parts);
		return "$id owns $n partitions" if $n < $lo || $n > $hi;
		foreach my $p (@$parts)
		{
			return "partition $p is owned by $owner{$p} and $id" if exists $owner{$p};
			$owner{$p} = $id;
		}
	}
	return "only partitions " . join(',', sort keys %owner) . " are owned"
	  if keys %owner != $npartitions;
	return '';
}

# The processed table as "partition/offset" => value, and the keys that are
# in it more than once.
sub read_processed
{
	my (%processed, @dups);
	foreach my $line (split /\n/, $node->safe_psql('postgres',
			'SELECT partition, msg_offset, value FROM processed'))
	{
		my ($p, $o, $v) = split /\|/, $line, 3;
		push @dups, "$p/$o" if exists $processed{"$p/$o"};
		$processed{"$p/$o"} = $v;
	}
	return (\%processed, \@dups);
}

# group => partition => the lowest committed offset that must survive: the
# highest reached by an acknowledged commit
my %committed_floor;

sub raise_floor
{
	my ($g, $p, $o) = @_;
	$committed_floor{$g}{$p} = $o
	  if !defined $committed_floor{$g}{$p} || $o > $committed_floor{$g}{$p};
}

###########################################################################
# Load
###########################################################################

my @producers = start_producers($node, $topic, $nproducers, $producer_sends);

my @consumers;
foreach my $m (@auto_members)
{
	my $s = "PREPARE pl AS SELECT 'got', partition, msg_offset, convert_from(value, 'UTF8')\n"
	  . "  FROM pgq_poll('g_auto', '$topic', 50, 100, '$m');\n";
	$s .= "EXECUTE pl;\n\\echo end|$_\n" for 1 .. $polls;
	push @consumers, start_client($node, $m, write_script($m, $s));
}
foreach my $m (@manual_members)
{
	my $s = "PREPARE pl AS SELECT 'got', partition, msg_offset, convert_from(value, 'UTF8')\n"
	  . "  FROM pgq_poll('g_manual', '$topic', 50, 100, '$m');\n";
	$s .= "EXECUTE pl;\nSELECT count(*) AS committed FROM pgq_commit('g_manual', '$m') \\gset\n\\echo end|$_\n" for 1 .. $polls;
	push @consumers, start_client($node, $m, write_script($m, $s));
}
{
	my $s = "PREPARE pl AS INSERT INTO processed\n"
	  . "  SELECT partition, msg_offset, convert_from(value, 'UTF8')\n"
	  . "    FROM pgq_poll('g_txn', '$topic', 50, 100, 't1')\n"
	  . "  RETURNING 'got', partition, msg_offset, value;\n";
	for my $k (1 .. $polls)
	{
		my $end = $k % 5 == 0 ? 'rollback' : 'commit';
		$s .= "BEGIN;\nEXECUTE pl;\nSELECT count(*) AS committed FROM pgq_commit('g_txn', 't1') \\gset\n"
		  . uc($end) . ";\n\\echo end|$end|$k\n";
	}
	push @consumers, start_client($node, 't1', write_script('t1', $s));
}

ok( wait_for(
		$node,
		"SELECT count(*) = 3 * $npartitions FROM pgqueue.group_offset o "
		  . "JOIN pgqueue.topic t USING (topic_id) WHERE t.name = '$topic' AND o.committed_offset >= 20",
		30),
	'under load, every group committed offsets of at least 20 on every partition');

# A prepared transaction holding a send on partition 0.
my ($prepared_part, $prepared_off) = split /\|/, $node->safe_psql('postgres',
	"BEGIN;\n"
	  . "SELECT partition, msg_offset FROM pgq_send('$topic', 'prepared-0'::text, NULL::text, 0);\n"
	  . "PREPARE TRANSACTION '$gid';");
is($prepared_part, 0, 'the prepared send went to partition 0');

sleep 2;

###########################################################################
# The crash
###########################################################################

$node->stop('immediate');

my ($acked, undef, undef, $producer_last) = finish_producers(\@producers, 'the server stopped');
my %acked = %$acked;
my %producer_last = %$producer_last;

my %delivered;          # group => "p/o" => value, everything its consumers got
my %delivered_bad;      # group => [ deliveries that disagree with one another ]
my %txn_acked;          # "p/o" => value, in a transaction whose COMMIT returned
my %txn_in_doubt;       # "p/o" => value, in the transaction cut by the crash

sub deliver
{
	my ($g, $p, $o, $v) = @_;
	my $k = "$p/$o";
	push @{ $delivered_bad{$g} }, "$k delivered as '$delivered{$g}{$k}' and as '$v'"
	  if exists $delivered{$g}{$k} && $delivered{$g}{$k} ne $v;
	$delivered{$g}{$k} = $v;
}

foreach my $c (@consumers)
{
	my $m = $c->{name};
	my $lines = finish_cut_client($c, "$m consumed without error until the server stopped");

	my $g = $m =~ /^a/ ? 'g_auto' : $m =~ /^m/ ? 'g_manual' : 'g_txn';
	my @batch;          # rows since the last end marker
	my @prev;           # the previous completed poll's rows (auto-commit)
	my $nend = 0;
	foreach my $line (@$lines)
	{
		next if $line eq '';
		if ($line =~ /^got\|(\d+)\|(\d+)\|(.*)$/)
		{
			push @batch, [ $1, $2, $3 ];
		}
		elsif ($line =~ /^end\|(\d+)$/ && $g eq 'g_auto')
		{
			# this poll's completion committed what the previous one returned
			raise_floor($g, $_->[0], $_->[1] + 1) foreach @prev;
			deliver($g, @$_) foreach @batch;
			@prev = @batch;
			@batch = ();
			$nend++;
		}
		elsif ($line =~ /^end\|(\d+)$/ && $g eq 'g_manual')
		{
			# pgq_commit returned after this poll
			foreach (@batch)
			{
				deliver($g, @$_);
				raise_floor($g, $_->[0], $_->[1] + 1);
			}
			@batch = ();
			$nend++;
		}
		elsif ($line =~ /^end\|(commit|rollback)\|(\d+)$/ && $g eq 'g_txn')
		{
			if ($1 eq 'commit')
			{
				foreach (@batch)
				{
					raise_floor($g, $_->[0], $_->[1] + 1);
					$txn_acked{"$_->[0]/$_->[1]"} = $_->[2];
				}
			}
			@batch = ();
			$nend++;
		}
		else
		{
			diag("$m: unexpected output line: $line");
		}
	}
	if ($g eq 'g_txn')
	{
		$txn_in_doubt{"$_->[0]/$_->[1]"} = $_->[2] foreach @batch;
	}
	else
	{
		deliver($g, @$_) foreach @batch;    # returned, but the crash came before its end marker
	}
	ok($nend > 0, "$m polled (and committed) before the crash");
}

note(sprintf('at the crash: %d sends acknowledged; delivered %d records to g_auto, %d to g_manual; '
		  . '%d processed by acknowledged transactions of g_txn, %d in its transaction in doubt',
		scalar(keys %acked), scalar(keys %{ $delivered{g_auto} }),
		scalar(keys %{ $delivered{g_manual} }), scalar(keys %txn_acked), scalar(keys %txn_in_doubt)));

###########################################################################
# Restart: durable state survived, shared-memory state is empty
###########################################################################

$node->start;

is($node->safe_psql('postgres', "SELECT count(*) FROM pg_prepared_xacts WHERE gid = '$gid'"),
	'1', 'the prepared transaction survived the crash');

is($node->safe_psql('postgres', 'SELECT count(*) FROM pgq_members'),
	'0', 'right after the restart pgq_members is empty: leases and ownership are gone');
is($node->safe_psql('postgres',
		"SELECT string_agg(group_id || ':' || members, ' ' ORDER BY group_id) FROM pgq_groups"),
	'g_auto:0 g_manual:0 g_txn:0',
	'the three groups are still there (committed offsets, config), with no live member');
{
	my ($ret, $out, $err) = $node->psql('postgres', "SELECT pgq_heartbeat('g_auto', 'a1')",
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	like($err, qr/55000.*member "a1" is not in group "g_auto"/,
		'a heartbeat before polling again is refused: the member must poll to rejoin');
}

my %committed;    # group => partition => committed offset, right after the restart
foreach my $line (split /\n/, $node->safe_psql('postgres',
		"SELECT o.group_id, o.partition, o.committed_offset FROM pgqueue.group_offset o "
		  . "JOIN pgqueue.topic t USING (topic_id) WHERE t.name = '$topic'"))
{
	my ($g, $p, $o) = split /\|/, $line;
	$committed{$g}{$p} = $o;
}

{
	# a live member, which holds every partition until it leaves
	$node->safe_psql('postgres', "SELECT pgq_sync_member('g_manual', '$topic', 'probe')");
	my ($ret, $out, $err) = $node->psql('postgres',
		"SELECT pgq_commit('g_manual', '$topic', 1, 0, 'm1')",
		extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	$node->safe_psql('postgres', "SELECT pgq_leave('g_manual', 'probe')");
	like($err, qr/55000.*member "m1" of group "g_manual" does not own partition 1/,
		'a commit before polling again is fenced');
	is($node->safe_psql('postgres',
			"SELECT committed_offset FROM pgqueue.group_offset o JOIN pgqueue.topic t USING (topic_id) "
			  . "WHERE t.name = '$topic' AND group_id = 'g_manual' AND partition = 1"),
		$committed{g_manual}{1}, 'and it changed nothing');
}

foreach my $g (qw(g_auto g_manual g_txn))
{
	my @bad;
	for my $p (0 .. $npartitions - 1)
	{
		my $floor = $committed_floor{$g}{$p} // 0;
		my $c = $committed{$g}{$p};
		push @bad, "partition $p: committed " . ($c // 'nothing') . ", acknowledged commits reached $floor"
		  if $floor > 0 && (!defined $c || $c < $floor);
	}
	none_bad(\@bad, "$g\'s committed offsets survived the crash (at least what acknowledged commits committed)");
	ok(!defined $committed{$g}{0} || $committed{$g}{0} <= $prepared_off,
		"$g\'s committed offset of partition 0 is not past the prepared send ($prepared_off)")
	  or diag("committed $committed{$g}{0}");
	ok(scalar(grep { ($committed_floor{$g}{$_} // 0) > 0 } 0 .. $npartitions - 1) == $npartitions,
		"$g had acknowledged commits on every partition before the crash");
}

# Exactly-once inside the database: the processed table and g_txn's
# committed offsets moved together.
{
	my ($processed, $dups) = read_processed();
	my %processed = %$processed;
	none_bad($dups, 'no record is in the processed table twice');

	my @bad;
	my %expected;
	for my $p (0 .. $npartitions - 1)
	{
		my $c = $committed{g_txn}{$p} // 0;
		$expected{"$p/$_->[0]"} = $_->[1] foreach @{ read_partition($node, $topic, $p, upto => $c) };
	}
	foreach my $k (sort keys %expected)
	{
		push @bad, "$k ('$expected{$k}') is below the committed offset but not processed"
		  unless exists $processed{$k};
	}
	foreach my $k (sort keys %processed)
	{
		push @bad, "$k ('$processed{$k}') is processed but not below the committed offset"
		  unless exists $expected{$k};
		push @bad, "$k processed as '$processed{$k}' but the log has '$expected{$k}'"
		  if exists $expected{$k} && $processed{$k} ne $expected{$k};
	}
	none_bad(\@bad,
		'the processed table holds exactly the records below g_txn\'s committed offsets: exactly-once');
	none_bad([ grep { !exists $processed{$_} } sort keys %txn_acked ],
		'every record of an acknowledged transactional poll is in the processed table');
	my $doubt_in = grep { exists $processed{$_} } keys %txn_in_doubt;
	ok($doubt_in == 0 || $doubt_in == keys %txn_in_doubt,
		'the transaction in doubt at the crash is all in the processed table or not at all');
	note(scalar(keys %processed) . " records processed by g_txn before the crash; the one in doubt ("
		  . scalar(keys %txn_in_doubt) . " records) " . ($doubt_in ? 'committed' : 'did not commit'));
}

###########################################################################
# Partition state after the restart
###########################################################################

my %view;
foreach my $line (split /\n/, $node->safe_psql('postgres',
		"SELECT partition, high_watermark, last_stable_offset FROM pgq_partitions WHERE topic = '$topic'"))
{
	my ($p, $hw, $lso) = split /\|/, $line;
	$view{$p} = [ $hw, $lso ];
}
my $index_max = max_offsets_present($node, $topic, $npartitions, 0);
my $heap_max = max_offsets_present($node, $topic, $npartitions, 1);

# The highest offset per partition anyone was told of before the crash.
my %known_max = map { $_ => -1 } 0 .. $npartitions - 1;
foreach my $r (values %acked)
{
	$known_max{ $r->[0] } = $r->[1] if $r->[1] > $known_max{ $r->[0] };
}
foreach my $g (keys %delivered)
{
	foreach my $k (keys %{ $delivered{$g} })
	{
		my ($p, $o) = split m{/}, $k;
		$known_max{$p} = $o if $o > $known_max{$p};
	}
}
$known_max{0} = $prepared_off if $prepared_off > $known_max{0};

for my $p (0 .. $npartitions - 1)
{
	my ($hw, $lso) = @{ $view{$p} };
	ok($hw > $index_max->{$p} && $hw <= $index_max->{$p} + 1 + 100,
		"after the restart, partition ${p}'s high watermark is above the highest offset in its index ($index_max->{$p}), "
		  . "within its offset floor ($hw)");
	cmp_ok($hw, '>', $known_max{$p},
		"partition ${p}'s high watermark is above every offset acknowledged, delivered or prepared");
	note("partition $p: a record whose index entry the crash lost is in the heap at offset $heap_max->{$p}")
	  if $heap_max->{$p} > $index_max->{$p};
	if ($p == 0)
	{
		is($lso, $prepared_off, 'partition 0\'s last stable offset is the prepared send\'s offset');
	}
	else
	{
		is($lso, $hw, "partition ${p}'s last stable offset is its high watermark");
	}
}

is($node->safe_psql('postgres', "SELECT count(*) FROM pgq_fetch('$topic', 0, $prepared_off, 10)"),
	'0', 'the prepared send still holds back partition 0 after the restart');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM pgq_fetch('$topic', 0, 0, 100000) WHERE msg_offset >= $prepared_off"),
	'0', 'a read of partition 0 from its start stops at the prepared send');

# New sends: they take exactly the high watermark, above everything present.
my %after;
for my $p (0 .. $npartitions - 1)
{
	for my $k (1 .. 2)
	{
		my $v = "after-$p-$k";
		my ($part, $off) = split /\|/, $node->safe_psql('postgres',
			"SELECT partition, msg_offset FROM pgq_send('$topic', '$v'::text, NULL::text, $p)");
		$after{$v} = [ $part, $off ];
	}
	my @offs = map { $after{"after-$p-$_"}[1] } 1 .. 2;
	is($offs[0], $view{$p}[0], "the first send to partition $p after the restart takes its high watermark");
	ok($offs[0] > $index_max->{$p} && $offs[0] > $known_max{$p} && $offs[1] == $offs[0] + 1,
		"the offset counter of partition $p resumed above every offset present and known")
	  or diag("new offsets @offs");
}

###########################################################################
# Members rejoin; the assignment is balanced again
###########################################################################

my %sessions = map { $_ => session_start($_) } @auto_members, @manual_members, 't1';

# One poll by a member in its session; records what it got.
sub poll_member
{
	my ($m) = @_;
	my $s = $sessions{$m};
	my $out;
	if ($m =~ /^a/)
	{
		$out = session_query($s,
			"SELECT partition, msg_offset, convert_from(value, 'UTF8') FROM pgq_poll('g_auto', '$topic', 500, 0, '$m');");
		deliver('g_auto', split(/\|/, $_, 3)) foreach grep { /^\d+\|/ } split /\n/, $out;
	}
	elsif ($m =~ /^m/)
	{
		$out = session_query($s,
			"SELECT partition, msg_offset, convert_from(value, 'UTF8') FROM pgq_poll('g_manual', '$topic', 500, 0, '$m');\n"
			  . "SELECT count(*) AS committed FROM pgq_commit('g_manual', '$m') \\gset");
		deliver('g_manual', split(/\|/, $_, 3)) foreach grep { /^\d+\|/ } split /\n/, $out;
	}
	else
	{
		$out = session_query($s,
			"BEGIN;\n"
			  . "INSERT INTO processed SELECT partition, msg_offset, convert_from(value, 'UTF8')\n"
			  . "  FROM pgq_poll('g_txn', '$topic', 500, 0, 't1') RETURNING partition, msg_offset, value;\n"
			  . "SELECT count(*) AS committed FROM pgq_commit('g_txn', 't1') \\gset\nCOMMIT;");
	}
	return scalar(grep { /^\d+\|/ } split /\n/, $out);
}

{
	my $deadline = time + 30;
	my ($why_auto, $why_manual) = ('not tried', 'not tried');
	while (time < $deadline)
	{
		poll_member($_) foreach @auto_members, @manual_members, 't1';
		my $members = members_now();
		$why_auto = unbalanced($members, 'g_auto', @auto_members);
		$why_manual = unbalanced($members, 'g_manual', @manual_members);
		last if $why_auto eq '' && $why_manual eq '';
	}
	is($why_auto, '', 'g_auto\'s three members rejoined: each owns 1 or 2 partitions, every partition once');
	is($why_manual, '', 'g_manual\'s two members rejoined: each owns 2 partitions, every partition once');
	my $members = members_now();
	is(join(',', @{ $members->{g_txn}{t1} // [] }), '0,1,2,3', 'g_txn\'s single member owns all 4 partitions');
	note('g_auto: ' . join('; ', map { "$_ owns " . join(',', @{ $members->{g_auto}{$_} // [] }) } @auto_members));
}

###########################################################################
# COMMIT PREPARED, then drain every group
###########################################################################

$node->safe_psql('postgres', "COMMIT PREPARED '$gid'");
is($node->safe_psql('postgres',
		"SELECT msg_offset, convert_from(value, 'UTF8') FROM pgq_fetch('$topic', 0, $prepared_off, 1)"),
	"$prepared_off|prepared-0",
	'after COMMIT PREPARED the prepared record is readable at its original offset');
is($node->safe_psql('postgres',
		"SELECT last_stable_offset = high_watermark FROM pgq_partitions WHERE topic = '$topic' AND partition = 0"),
	't', 'and partition 0\'s last stable offset is its high watermark again');

{
	my $deadline = time + 40;
	my $drained = 0;
	while (time < $deadline)
	{
		my $got = 0;
		$got += poll_member($_) foreach @auto_members, @manual_members, 't1';
		# an idle round: auto-commit has committed what the previous one returned
		next if $got > 0;
		$drained = $node->safe_psql('postgres',
			"SELECT bool_and(lag = 0) AND count(*) = 3 * $npartitions FROM pgq_consumer_lag WHERE topic = '$topic'")
		  eq 't';
		last if $drained;
	}
	ok($drained, 'every group drained the topic: its committed offsets reached the high watermarks');
}
session_end($_) foreach values %sessions;

# The whole log, as a reader sees it now.
my %log;
for my $p (0 .. $npartitions - 1)
{
	$log{"$p/$_->[0]"} = $_->[1] foreach @{ read_partition($node, $topic, $p) };
}
note(scalar(keys %log) . ' records in the log after draining');

none_bad(
	[
		map { "$_ acknowledged at $acked{$_}[0]/$acked{$_}[1], found " . ($log{"$acked{$_}[0]/$acked{$_}[1]"} // 'nothing') }
		  grep { ($log{"$acked{$_}[0]/$acked{$_}[1]"} // '') ne $_ } sort keys %acked
	],
	'every acknowledged send is in the log at its offset');
none_bad(
	[ map { "$_ sent to $after{$_}[0]/$after{$_}[1]" } grep { ($log{"$after{$_}[0]/$after{$_}[1]"} // '') ne $_ } sort keys %after ],
	'the sends after the restart are in the log at their offsets');

foreach my $g (qw(g_auto g_manual))
{
	none_bad($delivered_bad{$g} // [], "$g was never delivered two different records at one offset");
	none_bad(
		[
			map { "$_ ('$log{$_}') never delivered" . (exists $delivered{$g}{$_} ? " (got '$delivered{$g}{$_}')" : '') }
			  grep { ($delivered{$g}{$_} // "\0") ne $log{$_} } sort keys %log
		],
		"$g got every record of the log at least once (every acknowledged send among them)");
	none_bad([ grep { !exists $log{$_} } sort keys %{ $delivered{$g} } ],
		"$g was delivered nothing that is not in the log");
}
is($delivered{g_auto}{"0/$prepared_off"}, 'prepared-0', 'g_auto got the prepared record at its original offset');

{
	my ($processed, $dups) = read_processed();
	my %processed = %$processed;
	none_bad($dups, 'after draining, no record is in the processed table twice');
	none_bad(
		[
			(map { "$_ ('$log{$_}') not processed" } grep { !exists $processed{$_} } sort keys %log),
			(map { "$_ processed as '$processed{$_}', log has " . ($log{$_} // 'nothing') }
				grep { ($log{$_} // "\0") ne $processed{$_} } sort keys %processed)
		],
		'g_txn processed every record of the log exactly once, across the crash');
}

$node->stop;

done_testing();
