# Copyright (c) pgqueue contributors
#
# 001_crash_restart.pl
#	  A crash (immediate-mode stop) under load, then a restart, loses no
#	  committed record and reuses no served offset (SPEC §3, §8).
#
# Vocabulary:
#	acknowledged	a send whose statement returned to its producer; it ran in
#					autocommit (or its COMMIT returned), and synchronous_commit is
#					on, so it is committed and must survive the crash.
#	in doubt		a send whose transaction was in COMMIT (or still running)
#					when the server died: it may be there or not, but if it is,
#					it is at the offset it was given, and a transaction's
#					records are all there or none are.
#	served			a record a reader received from pgq_fetch before the crash;
#					it must still be there, at the same offset, with the same
#					value, and its offset must never be given to another record.
#
# While several producers and a reader run, we leave one PREPARED transaction
# holding a send on partition 0 and one open transaction holding an
# uncommitted send on partition 1, then stop the server with -m immediate and
# start it again.  The open transaction must vanish; the prepared one must
# survive, keep holding back partition 0's readers at its offset, and after
# COMMIT PREPARED its record must be readable at that very offset.
#
# Everything runs under short timeouts: the test takes well under a minute.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use PgqueueTap;

my $topic = 'crash_t';
my $npartitions = 3;
my $nproducers = 4;          # autocommit producers, one send per transaction
my $producer_sends = 60000;  # far more than can run before the crash
my $txn_producer_txns = 20000;
my $reader_rounds = 40000;
my $process_timeout = 45;    # seconds any helper process may live
$PgqueueTap::client_timeout = $process_timeout;
my $gid = 'pgq_crash_prepared';

my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'pgqueue'
max_prepared_transactions = 10
synchronous_commit = on
});
$node->start;

$node->safe_psql('postgres', 'CREATE EXTENSION pgqueue');
$node->safe_psql('postgres', "SELECT pgq_create_topic('$topic', $npartitions)");

###########################################################################
# Load: producers and a reader.
###########################################################################

# Autocommit producers (a printed row is an acknowledged, committed
# record), a transactional producer (two records per transaction, one
# placed by key, one on an explicit partition; every fourth transaction
# rolls back), and a reader that follows every partition with pgq_fetch.
my @producers = (
	start_producers($node, $topic, $nproducers, $producer_sends),
	start_txn_producer($node, $topic, $npartitions, $txn_producer_txns));
my $reader = start_reader($node, 'reader', $topic, $npartitions, $reader_rounds);

# Let the load build up until every partition has stable records.
ok( wait_for(
		$node,
		"SELECT bool_and(EXISTS (SELECT FROM pgq_fetch('$topic', p, 49, 1))) "
		  . "FROM generate_series(0, $npartitions - 1) p",
		20),
	'every partition has at least 50 readable records under load');

# A prepared transaction holding a send on partition 0: it must survive the
# crash, and until it is committed readers must stop at its offset.
my $prepared_out = $node->safe_psql('postgres',
	"BEGIN;\n"
	  . "SELECT partition, msg_offset FROM pgq_send('$topic', 'prepared-0'::text, NULL::text, 0);\n"
	  . "PREPARE TRANSACTION '$gid';");
my ($prepared_part, $prepared_off) = split /\|/, $prepared_out;
is($prepared_part, 0, 'the prepared send went to partition 0');

# An open transaction with an uncommitted send on partition 1: it must
# vanish in the crash.
my $open = $node->background_psql('postgres', timeout => $process_timeout);
$open->query_safe('BEGIN');
my ($open_part, $open_off) = split /\|/,
  $open->query_safe(
	"SELECT partition, msg_offset FROM pgq_send('$topic', 'uncommitted-1'::text, NULL::text, 1)");
is($open_part, 1, 'the uncommitted send went to partition 1');

# More load on top of both, so that committed records follow them.
sleep 2;

###########################################################################
# The crash.
###########################################################################

$node->stop('immediate');

my ($acked, $in_doubt, $rolled_back, $producer_last) =
  finish_producers(\@producers, 'the server stopped');
my %acked = %$acked;
my %in_doubt = %$in_doubt;
my %rolled_back = %$rolled_back;
my %producer_last = %$producer_last;    # producer number => highest n acknowledged
my @served = @{
	parse_served('reader',
		finish_cut_client($reader, 'the reader read without error until the server stopped'))
};

eval { $open->quit; };

note(sprintf('before the crash: %d acknowledged, %d in doubt, %d rolled back, %d served',
		scalar(keys %acked), scalar(keys %in_doubt),
		scalar(keys %rolled_back), scalar(@served)));

# Preconditions: the load really was there, on every partition, and
# committed records followed the prepared and the open send.
for my $p (0 .. $npartitions - 1)
{
	ok(scalar(grep { $_->[0] == $p } @served),
		"the reader was served records of partition $p before the crash");
}
ok(scalar(grep { $_->[0] == 0 && $_->[1] > $prepared_off } values %acked),
	'records were acknowledged on partition 0 after the prepared send');
ok(scalar(grep { $_->[0] == 1 && $_->[1] > $open_off } values %acked),
	'records were acknowledged on partition 1 after the uncommitted send');

# What the reader saw before the crash already obeys the ordering guarantee.
for my $p (0 .. $npartitions - 1)
{
	ok( strictly_increasing([ map { $_->[1] } grep { $_->[0] == $p } @served ]),
		"the reader was served partition $p in strictly increasing offsets");
}
none_bad([ map { "partition 0 offset $_->[1]" } grep { $_->[0] == 0 && $_->[1] >= $prepared_off } @served ],
	"the reader was never served past the prepared send (offset $prepared_off)");
none_bad([ map { "partition 1 offset $_->[1]" } grep { $_->[0] == 1 && $_->[1] >= $open_off } @served ],
	"the reader was never served past the open send (offset $open_off)");
none_bad([ map { "$_->[2] at $_->[0]/$_->[1]" } grep { exists $rolled_back{ $_->[2] } } @served ],
	'the reader was never served a rolled-back record');

###########################################################################
# Restart: recovery, then the prepared transaction still holds partition 0.
###########################################################################

$node->start;

is( $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_prepared_xacts WHERE gid = '$gid'"),
	'1',
	'the prepared transaction survived the crash');

{
	my $p0 = read_partition($node, $topic, 0);
	none_bad([ map { "offset $_->[0]" } grep { $_->[0] >= $prepared_off } @$p0 ],
		"after restart, readers of partition 0 still stop at the prepared send (offset $prepared_off)");
	is( $node->safe_psql('postgres',
			"SELECT count(*) FROM pgq_fetch('$topic', 0, $prepared_off, 10)"),
		'0',
		'after restart, fetching at the prepared offset returns nothing');
	my $lso = $node->safe_psql('postgres',
		"SELECT last_stable_offset FROM pgq_partitions WHERE topic = '$topic' AND partition = 0");
	ok($lso ne '' && $lso <= $prepared_off,
		'after restart, pgq_partitions puts partition 0\'s last stable offset at or below the prepared send')
	  or diag("last_stable_offset = '$lso', prepared offset = $prepared_off");
}

# The highest offset per partition that anyone may have relied on before
# the crash: acknowledged, served, or held by the prepared transaction.
my @max_before = (-1) x $npartitions;
foreach my $r (values %acked, map { [ $_->[0], $_->[1] ] } @served)
{
	$max_before[ $r->[0] ] = $r->[1] if $r->[1] > $max_before[ $r->[0] ];
}
$max_before[0] = $prepared_off if $prepared_off > $max_before[0];

# New sends, two per partition, in autocommit.
my %after;    # value => [partition, offset]
for my $p (0 .. $npartitions - 1)
{
	for my $k (1 .. 2)
	{
		my $v = "after-$p-$k";
		my ($ret, $out, $err) = $node->psql('postgres',
			"SELECT partition, msg_offset FROM pgq_send('$topic', '$v'::text, NULL::text, $p)");
		if ($ret != 0)
		{
			diag("sending $v after the restart failed: $err");
			next;
		}
		my ($part, $off) = split /\|/, $out;
		$after{$v} = [ $part, $off ];
	}
	my @offs = map { $after{"after-$p-$_"} ? $after{"after-$p-$_"}[1] : -1 } 1 .. 2;
	ok($offs[0] > $max_before[$p] && $offs[1] > $offs[0],
		"new sends to partition $p get offsets above every offset acknowledged, served or prepared ($max_before[$p])")
	  or diag("new offsets @offs (-1: the send failed), highest before the crash $max_before[$p]");
}

$node->safe_psql('postgres', "COMMIT PREPARED '$gid'");

is( $node->safe_psql('postgres',
		"SELECT msg_offset, convert_from(value, 'UTF8') FROM pgq_fetch('$topic', 0, $prepared_off, 1)"),
	"$prepared_off|prepared-0",
	'after COMMIT PREPARED the prepared record is readable at its original offset');

###########################################################################
# The whole log after the restart.
###########################################################################

my %log;         # "partition/offset" => value
my %where;       # value => "partition/offset"
my @dup_offsets;
my @dup_values;
for my $p (0 .. $npartitions - 1)
{
	my $records = read_partition($node, $topic, $p);
	ok(strictly_increasing([ map { $_->[0] } @$records ]),
		"after restart, partition $p is served in strictly increasing offsets");
	foreach my $r (@$records)
	{
		my ($off, $val) = @$r;
		push @dup_offsets, "$p/$off" if exists $log{"$p/$off"};
		push @dup_values, $val if exists $where{$val};
		$log{"$p/$off"} = $val;
		$where{$val} = "$p/$off";
	}
	my $hw = $node->safe_psql('postgres',
		"SELECT high_watermark FROM pgq_partitions WHERE topic = '$topic' AND partition = $p");
	my $max = -1;
	foreach my $r (@$records) { $max = $r->[0] if $r->[0] > $max; }
	ok($hw ne '' && $hw > $max, "the high watermark of partition $p is above its last record")
	  or diag("high_watermark = '$hw', last offset = $max");
}
note(scalar(keys %log) . ' records in the log after the restart');

none_bad(\@dup_offsets, 'no two records share a partition and offset');
none_bad(\@dup_values, 'no record appears twice');

none_bad(
	[
		map {
			my ($p, $o) = @{ $acked{$_} };
			my $got = $log{"$p/$o"};
			"$_ acknowledged at $p/$o, found "
			  . (defined $got ? "'$got'" : 'nothing')
			  . (exists $where{$_} ? " (the value is at $where{$_})" : '')
		  } grep {
			my ($p, $o) = @{ $acked{$_} };
			!defined $log{"$p/$o"} || $log{"$p/$o"} ne $_
		  } sort keys %acked
	],
	'every acknowledged record is in the log at its partition and offset');

none_bad(
	[
		map { "$_->[2] served at $_->[0]/$_->[1], found " . ($log{"$_->[0]/$_->[1]"} // 'nothing') }
		  grep { !defined $log{"$_->[0]/$_->[1]"} || $log{"$_->[0]/$_->[1]"} ne $_->[2] } @served
	],
	'every record served before the crash is still there, same offset, same value');

ok(!exists $where{'uncommitted-1'}, 'the uncommitted send vanished')
  or diag("found at $where{'uncommitted-1'}");
{
	my $there = $log{"1/$open_off"};
	ok(!defined $there || $there =~ /^after-/,
		'the uncommitted send\'s offset holds no record from before the crash')
	  or diag("found '$there' at 1/$open_off");
}

none_bad([ map { "$_ at $where{$_}" } grep { exists $where{$_} } sort keys %rolled_back ],
	'no rolled-back record is in the log');

# In-doubt records: if there, at their offset; and their transaction is all
# there or not at all (a transaction cut short before its second send cannot
# have committed, so its first record must be gone too).
{
	my @bad;
	my %txns;
	foreach my $v (sort keys %in_doubt)
	{
		my ($p, $o) = @{ $in_doubt{$v} };
		push @bad, "$v was given $p/$o but is at $where{$v}"
		  if exists $where{$v} && $where{$v} ne "$p/$o";
		my ($n) = $v =~ /^tx-(\d+)-/;
		$txns{$n} = 1;
	}
	foreach my $n (sort { $a <=> $b } keys %txns)
	{
		my $present = grep { exists $where{"tx-$n-$_"} } qw(a b);
		push @bad, "transaction $n is only partly in the log" if $present == 1;
	}
	none_bad(\@bad,
		'records in doubt at the crash are all-or-nothing per transaction and at their given offsets');
}

# Unacknowledged autocommit sends in the log can only be the one each
# producer had in flight.
{
	my @bad;
	foreach my $v (sort keys %where)
	{
		next unless $v =~ /^v-(\d+)-(\d+)$/;
		next if exists $acked{$v};
		my $last = $producer_last{$1} // 0;
		push @bad, "$v at $where{$v} (producer $1 was acknowledged up to $last)"
		  unless $2 == $last + 1;
	}
	none_bad(\@bad, 'the only unacknowledged sends in the log are those in flight at the crash');
}

{
	my @bad;
	foreach my $v (sort keys %where)
	{
		next if $v =~ /^(v-\d+-\d+|tx-\d+-[ab]|after-\d-\d|prepared-0)$/;
		push @bad, "'$v' at $where{$v}";
	}
	none_bad(\@bad, 'the log holds only records that were sent');
}

none_bad(
	[
		map { "$_ sent to $after{$_}[0]/$after{$_}[1], found " . ($log{"$after{$_}[0]/$after{$_}[1]"} // 'nothing') }
		  grep { ($log{"$after{$_}[0]/$after{$_}[1]"} // '') ne $_ } sort keys %after
	],
	'the sends after the restart are readable at their offsets');

$node->stop;

done_testing();
