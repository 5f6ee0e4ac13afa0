# Copyright (c) pgqueue contributors
#
# 070_auto_failover.pl
#	  Kafka's no-loss recipe with automatic leader election: pgqueue under
#	  pg_auto_failover (a monitor, a primary, two standbys,
#	  number_sync_standbys = 1, i.e. min.insync.replicas = 2; see
#	  AutoFailoverTap.pm and docs/durability.md).
#	  - the extension's objects replicate, its worker waits on the standbys;
#	  - under load (an idempotent SQL producer retrying through a multi-host
#		conninfo with the same sequence; python3-confluent-kafka's
#		idempotent acks=all producer through pgqueue-kafka; a group member
#		polling with pgq_poll and committing after processing) the
#		primary's machine dies (kill -9 of its pg_autoctl and postmaster),
#		the monitor elects a standby and the clients reconnect: every
#		acknowledged record is in the log exactly once at its offset, no
#		offset was handed out twice, every committed offset survived, the
#		consumer resumed from its commits and read everything, the worker
#		runs on the new primary; the time from the kill to the first
#		acknowledged send on the new primary is reported;
#	  - the old primary's pg_autoctl, started again, rejoins it as a
#		standby (pg_rewind) with pgqueue loaded;
#	  - the primary dies while the only other standby that has everything
#		is down too: the standby left, which lacks acknowledged records, is
#		not promoted (Kafka's unclean election off); once the nodes are
#		back, a primary is elected and no acknowledged record is lost.

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use AutoFailoverTap;
use GatewayTap;
use PgqueueTap;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep time);

my $missing = auto_failover_missing();
plan skip_all => $missing if $missing;

my $t_start = time();
my $f = formation_start(topics => q{SELECT pgq_create_topic('orders', 2);});
my ($node1, $node2, $node3) = @{ $f->{nodes} };
note(sprintf('formation up in %.1f s: %s', time() - $t_start, formation_states($f)));

# --- the formation, and pgqueue on it ----------------------------------------------
like($node1->safe_psql('postgres', 'SHOW synchronous_standby_names'),
	qr/^ANY 1 \(pgautofailover_standby_\d, pgautofailover_standby_\d\)$/,
	'number_sync_standbys = 1: the primary waits for one of its two standbys');
foreach my $node ($node2, $node3)
{
	my $name = $node->name;
	ok( wait_for($node,
			q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pgqueue worker'}, 30),
		"the pgqueue worker runs on $name (idle until a promotion)");
	is($node->safe_psql('postgres', q{SELECT partitions FROM pgqueue.topic WHERE name = 'orders'}),
		'2', "the extension and its topic replicated to $name");
}

# --- case 1: the primary dies under load ---------------------------------------
my $conninfo = multi_host_conninfo($f);
my $gw = gateway_start($node1, conninfo => "$conninfo application_name=gw070");
my $dir = PostgreSQL::Test::Utils::tempdir('clients');
my $stopfile = "$dir/stop";
my $script = "$FindBin::RealBin/auto_failover_clients.py";
my %clients;

sub start_py
{
	my ($role, @args) = @_;
	my $out = "$dir/$role.out";
	$clients{$role} = {
		out => $out,
		h => IPC::Run::start(
			[ '/usr/bin/python3', $script, $role, $stopfile, 120, @args ],
			'<', \undef, '>', $out, '2>', "$dir/$role.err",
			IPC::Run::timeout(150))
	};
	return;
}

# the client's complete output lines, split on |
sub lines_of
{
	my ($role) = @_;
	my @lines = split /\n/, slurp_file($clients{$role}{out}), -1;
	pop @lines;
	return map { [ split /\|/, $_, -1 ] } @lines;
}

sub acks_after
{
	my ($role, $t) = @_;
	return grep { $_->[0] eq 'ack' && $_->[1] > $t } lines_of($role);
}

start_py('sqlprod', $conninfo, 'orders', 2);
start_py('kafkaprod', $gw->{bootstrap}, 'orders');
start_py('consumer', $conninfo, 'billing', 'orders');

sub wait_until
{
	my ($seconds, $cond) = @_;
	my $deadline = time() + $seconds;
	while (time() < $deadline)
	{
		return 1 if $cond->();
		usleep(100_000);
	}
	return 0;
}

ok( wait_until(30, sub {
			acks_after('sqlprod', 0) >= 50 && acks_after('kafkaprod', 0) >= 50
			  && grep { $_->[0] eq 'commit' } lines_of('consumer')
		}),
	'the producers are acknowledged and the consumer commits, under load')
  or diag(slurp_file("$dir/kafkaprod.err") . slurp_file("$dir/sqlprod.err"));

my $t_kill = time();
node_kill($f, $node1);
ok( wait_until(60, sub { my $p = primary_node($f); $p && $p != $node1 }),
	'the monitor elects a standby as the new primary')
  or diag(formation_states($f));
my $t_elected = time();
my $primary = primary_node($f) // $node2;
# The dead server sends nothing after the kill, but a client may report an
# answer it had already received a moment later (a delivery callback runs
# on the next poll): an acknowledgement more than 0.5 s after the kill is
# the new primary's.
my $t_new = $t_kill + 0.5;
ok(wait_until(60, sub { acks_after('sqlprod', $t_new) && acks_after('kafkaprod', $t_new) }),
	'both producers are acknowledged by the new primary');
my ($first_sql) = sort { $a <=> $b } map { $_->[1] } acks_after('sqlprod', $t_new);
my ($first_kafka) = sort { $a <=> $b } map { $_->[1] } acks_after('kafkaprod', $t_new);
diag(sprintf(
		'kill -9 of the primary -> monitor elects %s: %.1f s; first acknowledged send on it: '
		  . 'SQL %.1f s, Kafka (through pgqueue-kafka) %.1f s',
		$primary->name, $t_elected - $t_kill, ($first_sql // 0) - $t_kill,
		($first_kafka // 0) - $t_kill));
usleep(1_000_000);

open my $fh, '>', $stopfile or die $!;
close $fh;
foreach my $role (qw(sqlprod kafkaprod consumer))
{
	my $ok = eval { $clients{$role}{h}->finish; 1 };
	ok($ok && $clients{$role}{h}->result(0) == 0, "$role ends cleanly")
	  or diag("$role: " . ($@ // '') . slurp_file("$dir/$role.err"));
}

# the log of the new primary, and what the clients were told
my %log;    # "partition|offset" => value
foreach my $p (0, 1)
{
	$log{"$p|$_->[0]"} = $_->[1] foreach @{ read_partition($primary, 'orders', $p) };
}
my (%acked, @bad_ack, @twice);
foreach my $role ('sqlprod', 'kafkaprod')
{
	foreach my $l (grep { $_->[0] eq 'ack' } lines_of($role))
	{
		my (undef, undef, $p, $o, $v) = @$l;
		push @twice, "$p|$o: $acked{\"$p|$o\"} and $v"
		  if exists $acked{"$p|$o"} && $acked{"$p|$o"} ne $v;
		$acked{"$p|$o"} = $v;
		push @bad_ack, "$role $v acknowledged at $p|$o, log has " . ($log{"$p|$o"} // 'nothing')
		  unless ($log{"$p|$o"} // '') eq $v;
	}
}
my @errs = grep { $_->[0] eq 'err' } lines_of('kafkaprod');
is(scalar @errs, 0, 'the Kafka producer got no delivery error');
my ($left) = map { $_->[2] } grep { $_->[0] eq 'left' } lines_of('kafkaprod');
is($left, 0, 'and flushed every record it produced');
cmp_ok(scalar keys %acked, '>', 100, 'acknowledged records: ' . scalar keys %acked);
none_bad(\@twice, 'no offset was handed out twice');
none_bad(\@bad_ack, 'every acknowledged record is in the log at its offset');
my %count;
$count{$_}++ foreach values %log;
none_bad([ map { "$_ x$count{$_}" } grep { $count{$_} > 1 } sort keys %count ],
	'every record is in the log once (retries appended nothing twice)');

# the consumer
my @c = lines_of('consumer');
my %got = map { $_->[4] => 1 } grep { $_->[0] eq 'got' } @c;
none_bad([ grep { !$got{ $acked{$_} } } sort keys %acked ],
	'the consumer processed every acknowledged record');
my (%last_commit, %tries, %resumed, $reconnected);
foreach my $l (@c)
{
	my ($what, $t, $p, $o) = @$l;
	if ($what eq 'retry' && $t > $t_kill) { $reconnected = 1; next; }
	if (!$reconnected)
	{
		if ($what eq 'commit') { $last_commit{$p} = $o; $tries{$p} = {}; }
		$tries{$p}{$o} = 1 if $what eq 'try';
	}
	elsif ($what eq 'got' && !exists $resumed{$p})
	{
		$resumed{$p} = $o;
	}
}
ok($reconnected, 'the consumer lost its connection and reconnected');
# It resumed at its last acknowledged commit, or at one whose answer the
# kill cut off; or, if no record is there, at the next record in the log
# (a promotion makes the new primary skip offsets: a poll moves past them).
my @not_resumed;
foreach my $p (0, 1)
{
	my @offsets = sort { $a <=> $b } map { (split /\|/)[1] } grep { /^$p\|/ } keys %log;
	my %ok;
	foreach my $c (grep { defined } $last_commit{$p}, keys %{ $tries{$p} // {} })
	{
		my ($next) = grep { $_ >= $c } @offsets;
		$ok{$next} = 1 if defined $next;
	}
	my $from = $resumed{$p} // 'nothing';
	push @not_resumed, "partition $p: resumed at $from, last commit "
	  . ($last_commit{$p} // 'none') . ', in flight: ' . join(',', sort keys %{ $tries{$p} // {} })
	  unless defined $resumed{$p} && $ok{ $resumed{$p} };
}
none_bad(\@not_resumed, 'the consumer resumed from its committed offsets');
my %committed = map { split /\|/ }
  split /\n/, $primary->safe_psql('postgres',
	q{SELECT partition, msg_offset FROM pgq_committed_offsets('billing', 'orders')});
none_bad([ map { "partition $_: $committed{$_} < $last_commit{$_}" }
	  grep { ($committed{$_} // -1) < $last_commit{$_} } keys %last_commit ],
	'every committed offset survived the failover');
ok( wait_for($primary,
		q{SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pgqueue worker'}, 30),
	'the pgqueue worker runs on the new primary');
is($primary->safe_psql('postgres', q{SELECT count(*) FROM pg_stat_activity WHERE application_name = 'gw070'}),
	'6', 'the gateway reconnected all its pools to the new primary');

# the old primary rejoins as a standby
node_run($f, $node1);
ok(wait_for_states($f, { node1 => 'secondary' }, 90), 'the old primary rejoins as a standby')
  or diag(formation_states($f));
ok(wait_for($node1, 'SELECT pg_is_in_recovery()', 30), 'node1 is a standby now');
like(node_log($f, $node1), qr/pg_rewind/, 'rewound with pg_rewind');
my $lsn = $primary->safe_psql('postgres', 'SELECT pg_current_wal_lsn()');
ok(wait_for($node1, "SELECT pg_last_wal_replay_lsn() >= '$lsn'", 30), 'and replays the new primary');
is( $node1->safe_psql('postgres', q{SELECT count(*) FROM pgq_fetch('orders', 0, 0, 100000)})
	  + $node1->safe_psql('postgres', q{SELECT count(*) FROM pgq_fetch('orders', 1, 0, 100000)}),
	scalar keys %log, 'with every record of the new primary');

# --- case 2: no election without a standby that has everything -------------------
my ($caught_up, $behind) = ($node1, grep { $_ != $primary && $_ != $node1 } ($node2, $node3));
ok(wait_for_states($f, { $behind->name => 'secondary', $caught_up->name => 'secondary' }, 60),
	'both standbys are secondaries');
node_kill($f, $behind);
my @sent;
push @sent, [ $_, send_value($primary, 'orders', "c2-$_", $_ % 2) ] for 1 .. 20;
pass('20 sends acknowledged while ' . $behind->name . ' is down (by ' . $caught_up->name . ')');
node_kill($f, $caught_up);
node_kill($f, $primary);
node_run($f, $behind);
my $t_behind = time();
my $elected = 0;
while (time() - $t_behind < 15)
{
	$elected = 1
	  if formation_states($f) =~ /(?:^| )\Q${\ $behind->name }\E:[^ ]*(?:primary|prepare_promotion|stop_replication)/;
	usleep(200_000);
}
ok(!$elected, 'with the primary and the caught-up standby down, the standby left is not promoted')
  or diag(formation_states($f));
ok(wait_for($behind, 'SELECT pg_is_in_recovery()', 10), $behind->name . ' stays a standby');
is($behind->safe_psql('postgres', q{SELECT count(*) FROM pgq_fetch('orders', 0, 0, 100000) WHERE convert_from(value, 'UTF8') LIKE 'c2-%'})
	  + $behind->safe_psql('postgres', q{SELECT count(*) FROM pgq_fetch('orders', 1, 0, 100000) WHERE convert_from(value, 'UTF8') LIKE 'c2-%'}),
	'0', 'it lacks the records acknowledged while it was down (promoting it would lose them)');
note(formation_states($f));

# The old primary comes back first: it still is the primary for the
# monitor, which never elected another, and serves again; then the
# caught-up standby.  (Bringing the caught-up standby back first, or both
# at once, trips pg_auto_failover 2.0: the monitor resumes the election it
# had started and tells that standby to fast-forward from itself, forever.)
node_run($f, $primary);
ok( wait_until(90, sub {
			my $p = primary_node($f) or return 0;
			my ($ret, $rec) = $p->psql('postgres', 'SELECT pg_is_in_recovery()');
			return $ret == 0 && $rec eq 'f';
		}),
	'with the old primary back, a primary serves again')
  or diag(formation_states($f));
my $p2 = primary_node($f) // $primary;
note('primary: ' . $p2->name . '; ' . formation_states($f));
my @lost;
foreach my $s (@sent)
{
	my ($n, $off) = @$s;
	my $v = $p2->safe_psql('postgres',
		"SELECT convert_from(value, 'UTF8') FROM pgq_fetch('orders', ${\ ($n % 2) }, $off, 1) WHERE msg_offset = $off");
	push @lost, "c2-$n at $off: $v" unless $v eq "c2-$n";
}
none_bad(\@lost, 'no record acknowledged while a standby was down is lost');
my $n_case1 = scalar keys %log;
my $total = $p2->safe_psql('postgres', q{SELECT count(*) FROM pgq_fetch('orders', 0, 0, 100000)})
  + $p2->safe_psql('postgres', q{SELECT count(*) FROM pgq_fetch('orders', 1, 0, 100000)});
is($total, $n_case1 + 20, 'and the log holds everything from before');
note(formation_states($f));
node_run($f, $caught_up);
ok(wait_for_states($f, { node1 => qr/^(secondary|primary)$/, node2 => qr/^(secondary|primary)$/,
			node3 => qr/^(secondary|primary)$/ }, 90),
	'the standbys rejoin: the formation is whole again')
  or diag(formation_states($f));
ok( wait_for($behind,
		q{SELECT count(*) = 20 FROM (SELECT value FROM pgq_fetch('orders', 0, 0, 100000)
		  UNION ALL SELECT value FROM pgq_fetch('orders', 1, 0, 100000)) r
		 WHERE convert_from(value, 'UTF8') LIKE 'c2-%'}, 60),
	$behind->name . ' has caught up with the records it missed');

gateway_stop($gw);
formation_stop($f);
note(sprintf('the test took %.0f s', time() - $t_start));
done_testing();
