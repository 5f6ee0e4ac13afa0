# Copyright (c) pgqueue contributors
#
# PgqueueTap.pm
#	  What the TAP tests that run clients against a crashing or failing-over
#	  server share: psql scripts run in the background (write_script,
#	  start_client, finish_client), waiting for a condition (wait_for),
#	  reading a partition whole (read_partition), and checks over what
#	  clients saw (none_bad, strictly_increasing, max_offsets_present).
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

our @EXPORT = qw(write_script start_client finish_client wait_for
  read_partition none_bad strictly_increasing max_offsets_present);

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
