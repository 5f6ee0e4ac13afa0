# Copyright (c) pgqueue contributors
#
# PgqueueTap.pm
#	  What the TAP tests that run clients against a crashing or failing-over
#	  server share: psql scripts run in the background (write_script,
#	  start_client, finish_client, finish_cut_client), the producers and
#	  readers those tests run and what they printed (start_producers,
#	  start_txn_producer, finish_producers, start_reader, parse_served),
#	  waiting for a condition (wait_for) or for backends in a long poll
#	  (wait_until_waiting), sending one record (send_value), reading a
#	  partition whole (read_partition), and checks over what clients saw
#	  (none_bad, strictly_increasing, max_offsets_present).
#
# Vocabulary: a producer prints "sent|partition|offset|value" for every
# send whose statement returned (in autocommit: acknowledged); a reader
# prints "served|partition|offset|value" for every record pgq_fetch served
# it, in the order served.
#
#	  A test sets $PgqueueTap::client_timeout to the seconds a background
#	  client may live, if the default does not suit it.

package PgqueueTap;

use strict;
use warnings;

use Exporter 'import';
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

our @EXPORT = qw(write_script start_client finish_client finish_cut_client
  start_producers start_txn_producer finish_producers start_reader
  parse_served wait_for wait_until_waiting send_value read_partition
  none_bad strictly_increasing max_offsets_present);

our $client_timeout = 60;

# where the scripts and the clients' output go: one directory per test
my $workdir;

sub workdir
{
	$workdir //= PostgreSQL::Test::Utils::tempdir('clients');
	return $workdir;
}

# Write a psql script to a file and return its path.
sub write_script
{
	my ($name, $text) = @_;
	my $path = workdir() . "/$name.sql";
	open my $fh, '>', $path or die "could not write $path: $!";
	print $fh $text;
	close $fh;
	return $path;
}

# Start psql on a script against a node's postgres database, its output
# going to files, so that it runs on its own while the test does other
# things.  Returns a handle for finish_client().
sub start_client
{
	my ($node, $name, $script) = @_;
	my $out = workdir() . "/$name.out";
	my $err = workdir() . "/$name.err";
	my $h = IPC::Run::start(
		[
			$node->installed_command('psql'), '-XAtq',
			'-v', 'ON_ERROR_STOP=1',
			'-d', $node->connstr('postgres'),
			'-f', $script
		],
		'<', '/dev/null',
		'>', $out,
		'2>', $err,
		IPC::Run::timeout($client_timeout));
	return { name => $name, h => $h, out => $out, err => $err };
}

# Wait for a client to exit (killing it if it outlives its timeout); return
# (exit code, complete output lines, stderr).  A line cut short by a kill is
# dropped, so that a truncated number is never taken for an offset.
sub finish_client
{
	my ($c) = @_;
	my $rc;
	if (eval { $c->{h}->finish; 1 })
	{
		$rc = $c->{h}->result(0);
	}
	else
	{
		diag("$c->{name} did not exit in time: $@");
		$c->{h}->kill_kill;
		$rc = -1;
	}
	my @lines = split /\n/, slurp_file($c->{out}), -1;
	pop @lines;    # what follows the last newline: empty, or a cut-off line
	return ($rc, \@lines, slurp_file($c->{err}));
}

# Wait for a client that stopping the server cut short, and check that it
# ran without error until then (one test, named $test_name: it exited
# non-zero, with no ERROR on stderr).  Returns its complete output lines.
sub finish_cut_client
{
	my ($c, $test_name) = @_;
	my ($rc, $lines, $err) = finish_client($c);
	ok($rc != 0 && $err !~ /ERROR:/, $test_name)
	  or diag("exit code $rc, stderr:\n$err");
	return $lines;
}

# Start $n autocommit producers of a topic, producer1 .. producer$n: each
# sends $sends records "v-<i>-<n>" with key "k-<n>", one per statement, so
# that a printed row is an acknowledged, committed record (the server
# commits before it reports the statement complete).  Returns the clients.
sub start_producers
{
	my ($node, $topic, $n, $sends) = @_;
	my @producers;
	for my $i (1 .. $n)
	{
		my $s = "PREPARE snd(text, text) AS\n"
		  . "  SELECT 'sent', partition, msg_offset, \$1 FROM pgq_send('$topic', \$1, \$2);\n";
		$s .= "EXECUTE snd('v-$i-$_', 'k-$_');\n" for 1 .. $sends;
		push @producers, start_client($node, "producer$i", write_script("producer$i", $s));
	}
	return @producers;
}

# Start the transactional producer, txproducer: $txns transactions of two
# records, "tx-<n>-a" placed by key, "tx-<n>-b" on an explicit partition;
# every fourth transaction rolls back.  The rows are printed before the
# transaction ends, a line "end|commit|<n>" or "end|rollback|<n>" after it.
sub start_txn_producer
{
	my ($node, $topic, $npartitions, $txns) = @_;
	my $s = "PREPARE send_key(text, text) AS\n"
	  . "  SELECT 'sent', partition, msg_offset, \$1 FROM pgq_send('$topic', \$1, \$2);\n"
	  . "PREPARE send_part(text, int) AS\n"
	  . "  SELECT 'sent', partition, msg_offset, \$1 FROM pgq_send('$topic', \$1, NULL::text, \$2);\n";
	for my $n (1 .. $txns)
	{
		my $end = $n % 4 == 0 ? 'rollback' : 'commit';
		my $p = $n % $npartitions;
		$s .=
		    "BEGIN;\n"
		  . "EXECUTE send_key('tx-$n-a', 'tx-$n');\n"
		  . "EXECUTE send_part('tx-$n-b', $p);\n"
		  . uc($end) . ";\n"
		  . "\\echo end|$end|$n\n";
	}
	return start_client($node, 'txproducer', write_script('txproducer', $s));
}

# Finish the producers (of start_producers and start_txn_producer) after
# the server stopped under them: each must have sent without error until
# then (one test each, "<name> sent without error until $until").  Returns
# what they printed, as four hashes: the acknowledged records (autocommit
# sends, and those of a transaction whose end|commit line came), those in
# doubt (in the transaction the stop cut short), those rolled back, each
# value => [partition, offset]; and per producer number the highest n it
# was acknowledged.
sub finish_producers
{
	my ($producers, $until) = @_;
	my (%acked, %in_doubt, %rolled_back, %last);
	foreach my $c (@$producers)
	{
		my $lines = finish_cut_client($c, "$c->{name} sent without error until $until");
		my %txn_rows;    # transaction number => [ [value, partition, offset] ... ]
		foreach my $line (@$lines)
		{
			if ($line =~ /^sent\|(\d+)\|(\d+)\|(v-(\d+)-(\d+))$/)
			{
				$acked{$3} = [ $1, $2 ];
				$last{$4} = $5 if !defined $last{$4} || $5 > $last{$4};
			}
			elsif ($line =~ /^sent\|(\d+)\|(\d+)\|(tx-(\d+)-[ab])$/)
			{
				push @{ $txn_rows{$4} }, [ $3, $1, $2 ];
			}
			elsif ($line =~ /^end\|(commit|rollback)\|(\d+)$/)
			{
				my ($how, $n) = ($1, $2);
				foreach my $r (@{ delete $txn_rows{$n} || [] })
				{
					if ($how eq 'commit') { $acked{ $r->[0] } = [ $r->[1], $r->[2] ]; }
					else { $rolled_back{ $r->[0] } = [ $r->[1], $r->[2] ]; }
				}
			}
			else
			{
				diag("$c->{name}: unexpected output line: $line");
			}
		}
		foreach my $rows (values %txn_rows)
		{
			$in_doubt{ $_->[0] } = [ $_->[1], $_->[2] ] foreach @$rows;
		}
	}
	return (\%acked, \%in_doubt, \%rolled_back, \%last);
}

# Start a reader named $name that follows every partition of a topic with
# pgq_fetch (at most 100 records a fetch) for $rounds rounds, printing what
# it is served.  Options: wait_ms, the fetches' timeout (an idle partition
# is then waited on that long); in_recovery, to add "|t" or "|f" to every
# line, pg_is_in_recovery() of the server that served it; stop_table, a
# table whose creation makes the reader quit (checked after every round).
sub start_reader
{
	my ($node, $name, $topic, $npartitions, $rounds, %opt) = @_;
	my $format = $opt{in_recovery} ? 'served|%s|%s|%s|%s' : 'served|%s|%s|%s';
	my $recovery = $opt{in_recovery} ? ', pg_is_in_recovery()' : '';
	my $wait = defined $opt{wait_ms} ? ", $opt{wait_ms}" : '';
	my $s = '';
	$s .= "\\set n$_ 0\n" for 0 .. $npartitions - 1;
	$s .=
	    "PREPARE rd(int, bigint) AS\n"
	  . "  SELECT coalesce(string_agg(format('$format', partition, msg_offset,\n"
	  . "                                    convert_from(value, 'UTF8')$recovery),\n"
	  . "                             E'\\n' ORDER BY ord), '') AS rows,\n"
	  . "         coalesce(max(msg_offset) + 1, \$2) AS next\n"
	  . "    FROM pgq_fetch('$topic', \$1, \$2, 100$wait) WITH ORDINALITY\n"
	  . "         AS f(topic, partition, msg_offset, key, value, headers, ts, ord);\n";
	$s .= "PREPARE stop AS SELECT to_regclass('public.$opt{stop_table}') IS NOT NULL AS stop;\n"
	  if defined $opt{stop_table};
	for (1 .. $rounds)
	{
		for my $p (0 .. $npartitions - 1)
		{
			$s .= "EXECUTE rd($p, :n$p) \\gset\n\\set n$p :next\n\\echo :rows\n";
		}
		$s .= "EXECUTE stop \\gset\n\\if :stop\n\\q\n\\endif\n" if defined $opt{stop_table};
	}
	return start_client($node, $name, write_script($name, $s));
}

# Parse a reader's output lines: a list of [partition, offset, value], in
# the order served, with in_recovery (see start_reader) a fourth element,
# true if a standby served it.
sub parse_served
{
	my ($name, $lines, %opt) = @_;
	my @served;
	foreach my $line (@$lines)
	{
		next if $line eq '';
		if ($opt{in_recovery} && $line =~ /^served\|(\d+)\|(\d+)\|(.*)\|([tf])$/)
		{
			push @served, [ $1, $2, $3, $4 eq 't' ];
		}
		elsif (!$opt{in_recovery} && $line =~ /^served\|(\d+)\|(\d+)\|(.*)$/)
		{
			push @served, [ $1, $2, $3 ];
		}
		else
		{
			diag("$name: unexpected output line: $line");
		}
	}
	return \@served;
}

# Poll a query on a node until it returns 't', for at most $seconds.
sub wait_for
{
	my ($node, $query, $seconds) = @_;
	for (my $i = 0; $i < $seconds * 10; $i++)
	{
		my ($ret, $out) = $node->psql('postgres', $query);
		return 1 if $ret == 0 && $out eq 't';
		usleep(100_000);
	}
	return 0;
}

# Wait until $count backends (default 1) that an SQL condition on
# pg_stat_activity picks are inside a long poll: an active statement
# waiting on an Extension wait event.
sub wait_until_waiting
{
	my ($node, $which, $count) = @_;
	$count //= 1;
	return $node->poll_query_until('postgres',
		    "SELECT count(*) = $count FROM pg_stat_activity WHERE ($which)"
		  . " AND state = 'active' AND wait_event_type = 'Extension'");
}

# Send a text record to a partition (default 0) of a topic in autocommit;
# returns its offset.
sub send_value
{
	my ($node, $topic, $value, $partition) = @_;
	$partition //= 0;
	return $node->safe_psql('postgres',
		"SELECT msg_offset FROM pgq_send('$topic', '$value'::text, NULL::text, $partition)");
}

# Read a partition of a topic with pgq_fetch, as a list of [offset, value]
# in the order served: from offset $opt{from} (default 0), up to but not
# including offset $opt{upto} if given.  Stops at the first empty fetch, or
# at one that returned only offsets below where it started.
sub read_partition
{
	my ($node, $topic, $p, %opt) = @_;
	my @records;
	my $next = $opt{from} // 0;
	for (my $round = 0; $round < 10000; $round++)
	{
		my $out = $node->safe_psql('postgres',
			"SELECT msg_offset, convert_from(value, 'UTF8') FROM pgq_fetch('$topic', $p, $next, 1000)");
		last if $out eq '';
		my $advanced = 0;
		foreach my $line (split /\n/, $out)
		{
			my ($off, $val) = split /\|/, $line, 2;
			return \@records if defined $opt{upto} && $off >= $opt{upto};
			push @records, [ $off, $val ];
			if ($off >= $next)
			{
				$next = $off + 1;
				$advanced = 1;
			}
		}
		if (!$advanced)
		{
			diag("pgq_fetch('$topic', $p, $next) returned only offsets below $next");
			last;
		}
	}
	return \@records;
}

# A partition's offsets are strictly increasing in the order served.
sub strictly_increasing
{
	my ($offsets) = @_;
	for my $i (1 .. $#$offsets)
	{
		return 0 unless $offsets->[$i] > $offsets->[ $i - 1 ];
	}
	return 1;
}

# Report a check over many items: pass if @$bad is empty, else show a few.
sub none_bad
{
	my ($bad, $name) = @_;
	my $ok = ok(@$bad == 0, $name);
	diag(scalar(@$bad) . " violation(s), first ones:\n  "
		  . join("\n  ", @$bad[ 0 .. ($#$bad < 9 ? $#$bad : 9) ]))
	  unless $ok;
	return $ok;
}

# The highest offset per partition of a topic in the partition's offset
# index (every entry, whatever the state of its record's transaction: dead
# and pending records too; separator keys of inner pages never exceed the
# leaves' keys), read with pageinspect; with $heap, in the heap pages
# instead.  The two differ only when the WAL ended (a crash, a promotion)
# between a record's heap and index insertions: such a record never
# committed and no reader can ever reach it.  partition => offset (-1: none).
sub max_offsets_present
{
	my ($node, $topic, $npartitions, $heap) = @_;
	my %max = map { $_ => -1 } 0 .. $npartitions - 1;
	my $sql = $heap
	  ? qq{
		SELECT s.partition, max(o.off)
		  FROM pgqueue.segment s JOIN pgqueue.topic t USING (topic_id),
		       generate_series(0, pg_relation_size(s.relid) / current_setting('block_size')::int - 1) b,
		       heap_page_items(get_raw_page(s.relid::text, b)) h,
		       LATERAL (SELECT sum(get_byte(h.t_data, i)::bigint << (8 * i)) AS off
		                  FROM generate_series(0, 7) i) o
		 WHERE t.name = '$topic' AND h.t_data IS NOT NULL
		 GROUP BY s.partition}
	  : qq{
		SELECT s.partition, max(o.off)
		  FROM pgqueue.segment s JOIN pgqueue.topic t USING (topic_id)
		       JOIN pg_index x ON x.indrelid = s.relid,
		       generate_series(1, pg_relation_size(x.indexrelid) / current_setting('block_size')::int - 1) b,
		       bt_page_items(x.indexrelid::regclass::text, b) it,
		       LATERAL (SELECT sum(('x' || byte)::bit(8)::int::bigint << (8 * (n - 1))::int)::bigint AS off
		                  FROM unnest(string_to_array(it.data, ' ')) WITH ORDINALITY u(byte, n)
		                 WHERE n <= 8) o
		 WHERE t.name = '$topic'
		 GROUP BY s.partition};
	foreach my $line (split /\n/, $node->safe_psql('postgres', $sql))
	{
		my ($p, $o) = split /\|/, $line;
		$max{$p} = $o;
	}
	return \%max;
}

1;
