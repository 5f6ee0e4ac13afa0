# Copyright (c) pgqueue contributors
#
# 005_failover_sync.pl
#	  Failover to a synchronous standby under load (SPEC §3, §4, §8): with
#	  synchronous_commit = on and the standby in synchronous_standby_names
#	  (Kafka's acks=all), the primary dies (immediate stop) while producers,
#	  a consumer group and a plain reader run, and the standby is promoted.
#	  On the new primary:
#	  - every acknowledged send is there, at its partition and offset, with
#		its value; every record any reader (pgq_fetch or a group member) was
#		served is there at the offset it was served at;
#	  - new sends get offsets above every offset ever acknowledged or served;
#	  - the group's committed offsets are at least what its members had
#		committed (and seen committed) before the crash;
#	  - a prepared transaction's send survives, still holds back its
#		partition's readers, and COMMIT PREPARED makes it readable at its
#		offset;
#	  - the members, polling again under the same member_ids, resume from the
#		committed offsets and, once drained, the group has been delivered
#		every record of the log, every acknowledged one included, at least
#		once (before or after the failover): nothing is lost to the group;
#	  - the background worker runs on the promoted server and applies
#		retention there.
#
# Vocabulary (as in 001_crash_restart.pl):
#	acknowledged	a send whose autocommit statement returned to its producer:
#					committed locally and flushed on the synchronous standby;
#	served			a record a reader received before the crash;
#	committed		a group offset a member saw in pgq_consumer_lag after its
#					pgq_commit returned (so it was committed, hence replicated).
#
# The group commits explicitly after every third poll and pauses between
# polls, so that at the crash it has served records it has not committed and
# lags behind the producers: it resumes on the new primary with a backlog
# and some records to deliver again.
#
# Every helper process is bounded (45 s) and no check depends on tight
# timing; the test takes 10-25 s.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use PgqueueTap;
use Time::HiRes qw(time);

my $topic = 'fo_t';
my $group = 'fo_g';
my $ret_topic = 'fo_ret';
my $npartitions = 3;
my $nproducers = 4;
my $producer_sends = 40000;    # far more than can run before the crash
my $member_rounds = 20000;
my $reader_rounds = 20000;
my $process_timeout = 45;      # seconds any helper process may live
$PgqueueTap::client_timeout = $process_timeout;
my @members = ('m1', 'm2');
my $gid = 'pgq_failover_prepared';

###########################################################################
# A primary and a synchronous standby
###########################################################################

my $primary = PostgreSQL::Test::Cluster->new('fo_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'pgqueue'
max_prepared_transactions = 10
synchronous_standby_names = 'standby1'
synchronous_commit = on
pgqueue.maintenance_interval = 200
});
$primary->start;

# The standby is made from a backup, so it gets the primary's
# postgresql.conf: the library preloaded, the same retention interval.  Its
# walreceiver connects as application_name standby1 (Cluster.pm sets no
# application_name in primary_conninfo; it would default to the cluster
# name, so we say it).  Once promoted it has no standby of its own, so it
# must not wait for one.
$primary->backup('fo_backup');
my $standby = PostgreSQL::Test::Cluster->new('standby1');
$standby->init_from_backup($primary, 'fo_backup', has_streaming => 1);
$standby->append_conf(
	'postgresql.conf', "
primary_conninfo = '" . $primary->connstr . " application_name=standby1'
synchronous_standby_names = ''
");
$standby->start;

ok( wait_for($primary,
		q{SELECT sync_state = 'sync' AND state = 'streaming' FROM pg_stat_replication
		   WHERE application_name = 'standby1'}, 60),
	'the standby streams from the primary as its synchronous standby');

# created under synchronous replication
$primary->safe_psql('postgres', qq{
	CREATE EXTENSION pgqueue;
	SELECT pgq_create_topic('$topic', $npartitions);
	SELECT pgq_create_topic('$ret_topic', 1, '{"retention.ms": 1000}');
	SELECT pgq_alter_group('$group', '{"enable.auto.commit": false}');
});

ok( wait_for($standby,
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pgqueue worker'}, 30),
	'the pgqueue worker runs on the standby (idle until promotion)');

# retention works on the primary before the failover
$primary->safe_psql('postgres',
	"SELECT count(*) FROM generate_series(1, 3) i, LATERAL pgq_send('$ret_topic', 'old ' || i)");
ok( wait_for($primary,
		"SELECT log_start_offset = 3 FROM pgq_partitions WHERE topic = '$ret_topic'", 30),
	'before the failover, retention on the primary drops the segment of a topic with retention.ms 1000');

###########################################################################
# Load: producers, a consumer group of two, a plain reader
###########################################################################

my @producers = start_producers($primary, $topic, $nproducers, $producer_sends);

# Group members (enable.auto.commit off): poll, commit explicitly, then print
# the committed offsets of the partitions they own, as the group sees them
# after the commit.
my @member_clients;
foreach my $m (@members)
{
	my $s =
	    "PREPARE pl AS SELECT format('served|%s|%s|%s', partition, msg_offset, convert_from(value, 'UTF8'))\n"
	  . "  FROM pgq_poll('$group', '$topic', 50, 0, '$m');\n"
	  . "PREPARE cm AS SELECT 'commit_ok' FROM (SELECT count(*) FROM pgq_commit('$group', '$m')) c;\n"
	  . "PREPARE co AS SELECT format('committed|%s|%s', partition, committed_offset)\n"
	  . "  FROM pgq_consumer_lag WHERE group_id = '$group' AND topic = '$topic'\n"
	  . "   AND owner = '$m' AND committed_offset IS NOT NULL;\n";
	# commit after every third poll, so that at the crash some served
	# records are not committed yet and must be delivered again; pause
	# between polls, so that the group lags behind the producers and has a
	# backlog to resume on the new primary
	$s .= "EXECUTE pl;\n" . ($_ % 3 == 0 ? "EXECUTE cm;\nEXECUTE co;\n" : '') . "SELECT FROM pg_sleep(0.05);\n"
	  for 1 .. $member_rounds;
	push @member_clients, start_client($primary, "member_$m", write_script("member_$m", $s));
}

# The plain reader follows every partition with pgq_fetch.
my $reader = start_reader($primary, 'reader', $topic, $npartitions, $reader_rounds);

ok( wait_for($primary,
		"SELECT bool_and(EXISTS (SELECT FROM pgq_fetch('$topic', p, 49, 1))) "
		  . "FROM generate_series(0, $npartitions - 1) p", 30),
	'under load, every partition has at least 50 readable records');
ok( wait_for($primary,
		"SELECT (SELECT count(*) FROM pgq_members WHERE group_id = '$group' AND cardinality(partitions) > 0) = 2 "
		  . "AND (SELECT count(*) FROM pgq_consumer_lag WHERE group_id = '$group' AND committed_offset > 0) = $npartitions",
		30),
	'both members own partitions and every partition has a committed offset');

# A prepared transaction holding a send on partition 0: PREPARE waits for
# the synchronous standby too, so it must survive the failover and keep
# holding back partition 0's readers there until COMMIT PREPARED.
my $prepared_out = $primary->safe_psql('postgres',
	"BEGIN;\n"
	  . "SELECT partition, msg_offset FROM pgq_send('$topic', 'prepared-0'::text, NULL::text, 0);\n"
	  . "PREPARE TRANSACTION '$gid';");
my ($prepared_part, $prepared_off) = split /\|/, $prepared_out;
is($prepared_part, 0, 'a prepared transaction holds a send on partition 0');

# more load, so that records are acknowledged after the prepared send
sleep 2;
is( $primary->safe_psql('postgres',
		q{SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby1'}),
	'sync', 'the standby is still synchronous just before the crash');

###########################################################################
# The primary dies; the standby is promoted
###########################################################################

$primary->stop('immediate');

my ($acked, undef, undef, $producer_last) = finish_producers(\@producers, 'the primary died');
my %acked = %$acked;
my %producer_last = %$producer_last;
my (@served, %member_served, %committed_before);

foreach my $i (0 .. $#members)
{
	my $m = $members[$i];
	my $lines = finish_cut_client($member_clients[$i],
		"member $m polled and committed without error until the primary died");
	my $commits = 0;
	foreach my $line (@$lines)
	{
		next if $line eq '';
		if ($line =~ /^served\|(\d+)\|(\d+)\|(.*)$/)
		{
			push @served, [ $1, $2, $3 ];
			push @{ $member_served{$m} }, [ $1, $2, $3 ];
		}
		elsif ($line =~ /^committed\|(\d+)\|(\d+)$/)
		{
			$committed_before{$1} = $2
			  if !defined $committed_before{$1} || $2 > $committed_before{$1};
		}
		elsif ($line eq 'commit_ok')
		{
			$commits++;
		}
		else
		{
			diag("member $m: unexpected output line: $line");
		}
	}
	ok(scalar(@{ $member_served{$m} // [] }) > 0 && $commits > 0,
		"member $m was served records and committed before the crash");
}

my @reader_served = @{
	parse_served('reader',
		finish_cut_client($reader, 'the reader read without error until the primary died'))
};
push @served, @reader_served;

note(sprintf('before the crash: %d acknowledged, %d served (%d to the reader), commits seen: %s',
		scalar(keys %acked), scalar(@served), scalar(@reader_served),
		join(', ', map { "$_=$committed_before{$_}" } sort keys %committed_before)));

for my $p (0 .. $npartitions - 1)
{
	ok(scalar(grep { $_->[0] == $p } values %acked),
		"sends to partition $p were acknowledged before the crash");
	ok(scalar(grep { $_->[0] == $p } @reader_served),
		"the reader was served records of partition $p before the crash");
	ok(defined $committed_before{$p} && $committed_before{$p} > 0,
		"the group committed an offset of partition $p before the crash");
	ok( strictly_increasing([ map { $_->[1] } grep { $_->[0] == $p } @reader_served ]),
		"the reader was served partition $p in strictly increasing offsets");
}

ok(scalar(grep { $_->[0] == 0 && $_->[1] > $prepared_off } values %acked),
	"sends to partition 0 were acknowledged after the prepared send (offset $prepared_off)");
none_bad([ map { "$_->[2] at $_->[0]/$_->[1]" } grep { $_->[0] == 0 && $_->[1] >= $prepared_off } @served ],
	'before the crash no reader, in the group or not, was served partition 0 at or past the prepared send');

$standby->promote;
ok(wait_for($standby, 'SELECT NOT pg_is_in_recovery()', 60), 'the standby was promoted');
my $new = $standby;

###########################################################################
# The prepared transaction on the new primary
###########################################################################

is($new->safe_psql('postgres', "SELECT count(*) FROM pg_prepared_xacts WHERE gid = '$gid'"),
	'1', 'the prepared transaction is on the new primary');
is( $new->safe_psql('postgres',
		"SELECT count(*) FROM pgq_fetch('$topic', 0, $prepared_off, 10) UNION ALL "
		  . "SELECT count(*) FROM pgq_fetch('$topic', 0, $prepared_off + 1, 10) UNION ALL "
		  . "SELECT last_stable_offset FROM pgq_partitions WHERE topic = '$topic' AND partition = 0"),
	"0\n0\n$prepared_off",
	'on the new primary it still holds back partition 0\'s readers at its offset');
$new->safe_psql('postgres', "COMMIT PREPARED '$gid'");
is( $new->safe_psql('postgres',
		"SELECT msg_offset, convert_from(value, 'UTF8') FROM pgq_fetch('$topic', 0, $prepared_off, 1)"),
	"$prepared_off|prepared-0",
	'after COMMIT PREPARED on the new primary its record is readable at its original offset');

###########################################################################
# The log on the new primary
###########################################################################

my (%log, %where, @dup_offsets, @dup_values);
my @max_log = (-1) x $npartitions;
for my $p (0 .. $npartitions - 1)
{
	my $records = read_partition(
		$new, $topic, $p,
		from => $new->safe_psql(
			'postgres',
			"SELECT log_start_offset FROM pgq_partitions WHERE topic = '$topic' AND partition = $p"));
	ok(strictly_increasing([ map { $_->[0] } @$records ]),
		"on the new primary, partition $p is served in strictly increasing offsets");
	foreach my $r (@$records)
	{
		my ($off, $val) = @$r;
		push @dup_offsets, "$p/$off" if exists $log{"$p/$off"};
		push @dup_values, $val if exists $where{$val};
		$log{"$p/$off"} = $val;
		$where{$val} = "$p/$off";
		$max_log[$p] = $off if $off > $max_log[$p];
	}
}
note(scalar(keys %log) . ' records in the log on the new primary');
none_bad(\@dup_offsets, 'no two records share a partition and offset');
none_bad(\@dup_values, 'no record appears twice');

none_bad(
	[
		map {
			my ($p, $o) = @{ $acked{$_} };
			"$_ acknowledged at $p/$o, found " . ($log{"$p/$o"} // 'nothing')
			  . (exists $where{$_} ? " (the value is at $where{$_})" : '')
		  } grep {
			my ($p, $o) = @{ $acked{$_} };
			($log{"$p/$o"} // '') ne $_
		  } sort keys %acked
	],
	'every acknowledged send is on the new primary at its partition and offset, with its value');

none_bad(
	[
		map { "$_->[2] served at $_->[0]/$_->[1], found " . ($log{"$_->[0]/$_->[1]"} // 'nothing') }
		  grep { ($log{"$_->[0]/$_->[1]"} // '') ne $_->[2] } @served
	],
	'every record served before the crash (to the reader or the group) is there, same offset, same value');

{
	my @bad;
	foreach my $v (sort keys %where)
	{
		if ($v =~ /^v-(\d+)-(\d+)$/)
		{
			next if exists $acked{$v};
			my $last = $producer_last{$1} // 0;
			push @bad, "$v at $where{$v} (producer $1 was acknowledged up to $last)"
			  unless $2 == $last + 1;
		}
		else
		{
			push @bad, "'$v' at $where{$v} was never sent"
			  unless $v eq 'prepared-0' && $where{$v} eq "0/$prepared_off";
		}
	}
	none_bad(\@bad,
		'the log holds only sent records; the only unacknowledged autocommit sends are those in flight at the crash');
}

###########################################################################
# Committed offsets survived
###########################################################################

my %committed_after;
foreach my $line (split /\n/,
	$new->safe_psql('postgres',
		"SELECT partition, committed_offset FROM pgq_consumer_lag WHERE group_id = '$group' AND topic = '$topic'"))
{
	my ($p, $c) = split /\|/, $line;
	$committed_after{$p} = $c;
}
for my $p (0 .. $npartitions - 1)
{
	my $after = $committed_after{$p} // '';
	ok($after ne '' && $after >= ($committed_before{$p} // 0),
		"the group's committed offset of partition $p survived ($after >= " . ($committed_before{$p} // 'none') . ')');
}

###########################################################################
# New sends continue above every offset acknowledged or served
###########################################################################

my @max_before = (-1) x $npartitions;
foreach my $r (values %acked, map { [ $_->[0], $_->[1] ] } @served)
{
	$max_before[ $r->[0] ] = $r->[1] if $r->[1] > $max_before[ $r->[0] ];
}
my %after_sends;
for my $p (0 .. $npartitions - 1)
{
	my @offs;
	for my $k (1 .. 2)
	{
		my $v = "after-$p-$k";
		my ($ret, $out, $err) = $new->psql('postgres',
			"SELECT partition, msg_offset FROM pgq_send('$topic', '$v'::text, NULL::text, $p)");
		if ($ret != 0)
		{
			diag("sending $v on the new primary failed: $err");
			push @offs, -1;
			next;
		}
		my ($part, $off) = split /\|/, $out;
		$after_sends{$v} = [ $part, $off ];
		$log{"$part/$off"} = $v;
		$where{$v} = "$part/$off";
		push @offs, $off;
	}
	ok($offs[0] > $max_before[$p] && $offs[0] > $max_log[$p] && $offs[1] > $offs[0],
		"on the new primary, sends to partition $p get offsets above every offset acknowledged, served or present ($max_before[$p], $max_log[$p])")
	  or diag("new offsets @offs (-1: the send failed)");
}
is( $new->safe_psql('postgres',
		"SELECT string_agg(convert_from(value, 'UTF8'), ',' ORDER BY partition, msg_offset) FROM ("
		  . join(' UNION ALL ',
			map { "SELECT * FROM pgq_fetch('$topic', $_->[0], $_->[1], 1)" } @after_sends{ sort keys %after_sends })
		  . ') f'),
	join(',', sort keys %after_sends),
	'the new sends are readable at their offsets');

###########################################################################
# The group resumes on the new primary
###########################################################################

my %session;
$session{$_} = $new->background_psql('postgres', timeout => $process_timeout) foreach @members;

my %delivered_after;    # "partition/offset" => value, delivered after the failover
my %first_after;        # partition => the lowest offset delivered after the failover
my $quiet = 0;
my $deadline = time + 40;
my $group_error = '';
while ($quiet < 3 && time < $deadline && $group_error eq '')
{
	my $got = 0;
	foreach my $m (@members)
	{
		my $out = $session{$m}->query(
			"SELECT format('%s|%s|%s', partition, msg_offset, convert_from(value, 'UTF8')) "
			  . "FROM pgq_poll('$group', '$topic', 2000, 0, '$m')");
		if ($session{$m}->{stderr} ne '')
		{
			$group_error = "$m poll: $session{$m}->{stderr}";
			last;
		}
		foreach my $line (split /\n/, $out)
		{
			my ($p, $o, $v) = split /\|/, $line, 3;
			$delivered_after{"$p/$o"} = $v;
			$first_after{$p} = $o if !defined $first_after{$p} || $o < $first_after{$p};
			$got++;
		}
		$session{$m}->query("SELECT pgq_commit('$group', '$m')");
		if ($session{$m}->{stderr} ne '')
		{
			$group_error = "$m commit: $session{$m}->{stderr}";
			last;
		}
	}
	my $members_live = $new->safe_psql('postgres',
		"SELECT count(DISTINCT member_id) FROM pgq_members WHERE group_id = '$group' AND topic = '$topic'");
	$quiet = ($got == 0 && $members_live == 2) ? $quiet + 1 : 0;
}
is($group_error, '', 'on the new primary the members polled and committed without error');
ok($quiet >= 3, 'the group drained the topic on the new primary');
$_->quit foreach values %session;

{
	my $owned = $new->safe_psql('postgres',
		"SELECT string_agg(member_id || ':' || array_length(partitions, 1), ',' ORDER BY member_id) "
		  . "FROM pgq_members WHERE group_id = '$group' AND topic = '$topic'");
	like($owned, qr/^m1:[12],m2:[12]$/, 'both members share the partitions on the new primary')
	  or diag("pgq_members: $owned");
}

for my $p (0 .. $npartitions - 1)
{
	# the first record at or after the committed offset
	my ($expected) = sort { $a <=> $b }
	  grep { $_ >= ($committed_after{$p} // 0) }
	  map { (split m{/})[1] } grep { m{^$p/} } keys %log;
	is($first_after{$p} // 'none', $expected // 'none',
		"on the new primary the group resumed partition $p at its committed offset ("
		  . ($committed_after{$p} // 'none') . ')');
}

{
	my %delivered = %delivered_after;
	$delivered{"$_->[0]/$_->[1]"} = $_->[2] foreach map { @$_ } values %member_served;
	none_bad(
		[
			map { "$_ acknowledged at $acked{$_}[0]/$acked{$_}[1]" }
			  grep { ($delivered{"$acked{$_}[0]/$acked{$_}[1]"} // '') ne $_ } sort keys %acked
		],
		'every acknowledged record was delivered to the group at least once, before or after the failover');
	none_bad(
		[ map { "$log{$_} at $_" } grep { ($delivered{$_} // '') ne $log{$_} } sort keys %log ],
		'every record in the log, the new sends included, was delivered to the group');
	none_bad(
		[
			map { "'$delivered_after{$_}' delivered at $_, the log has " . ($log{$_} // 'nothing') }
			  grep { ($log{$_} // '') ne $delivered_after{$_} } sort keys %delivered_after
		],
		'after the failover the group was delivered only records of the log, at their offsets');
	my %before = map { ("$_->[0]/$_->[1]" => 1) } map { @$_ } values %member_served;
	note(scalar(keys %delivered_after) . ' records delivered to the group after the failover, '
		  . scalar(grep { $before{$_} } keys %delivered_after) . ' of them again');
}

is( $new->safe_psql('postgres',
		"SELECT bool_and(committed_offset = high_watermark AND lag = 0) FROM pgq_consumer_lag "
		  . "WHERE group_id = '$group' AND topic = '$topic'"),
	't', 'after draining, the group has committed every partition up to its high watermark');

###########################################################################
# The background worker on the promoted server
###########################################################################

ok( wait_for($new,
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pgqueue worker'}, 30),
	'the pgqueue worker runs on the promoted server');
my $ret_start = $new->safe_psql('postgres',
	"SELECT log_start_offset FROM pgq_partitions WHERE topic = '$ret_topic'");
cmp_ok($ret_start, '>=', 3, 'retention done on the old primary was replicated');
my $ret_off = $new->safe_psql('postgres',
	"SELECT msg_offset FROM pgq_send('$ret_topic', 'on the new primary'::text)");
ok( wait_for($new,
		"SELECT log_start_offset > $ret_off FROM pgq_partitions WHERE topic = '$ret_topic'", 30),
	'a retention round on the promoted server dropped the segment of a record sent there');

$new->stop;

done_testing();
