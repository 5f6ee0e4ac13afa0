# Copyright (c) pgqueue contributors
#
# 021_batch_contiguous.pl
#	  A pgq_send_batch appends each partition's share of the batch under one
#	  hold of the partition's append lock, so the share gets consecutive
#	  offsets (Kafka clients compute a batch's offsets as base + i):
#	  - a single send made while a big batch is appending waits for it and
#	    gets the offset after the batch's last (it used to get one in the
#	    middle, when batches appended in chunks of 1000);
#	  - two sessions sending many 10,000-record batches to one partition at
#	    once each get contiguous ranges, in input order;
#	  - a cancel request still stops a big batch in the middle of its append
#	    (the lock holds off interrupts), and nothing of it becomes readable.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $records = 2000000;

my $node = PostgreSQL::Test::Cluster->new('contiguous');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pgqueue'\n");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pgqueue;
	SELECT pgq_create_topic('big', 1);
	SELECT pgq_create_topic('contig', 1);
	SELECT pgq_create_topic('cancel', 1);
	CREATE TABLE batch_result (n int, msg_offset bigint);
	CREATE TABLE concurrent (session int, batch int, n int, msg_offset bigint);
});

# wait until a batch has begun appending to a topic's partition 0
sub wait_appending
{
	my ($topic) = @_;
	$node->safe_psql('postgres', qq{
		DO \$\$
		BEGIN
			WHILE (SELECT high_watermark FROM pgq_partitions WHERE topic = '$topic') = 0 LOOP
				PERFORM pg_sleep(0.001);
			END LOOP;
		END \$\$;});
}

# 1. a big batch and a single send made while it appends
my $batch = $node->background_psql('postgres', on_error_stop => 1);
$batch->query_until(qr/started/, qq{
	\\echo started
	INSERT INTO batch_result
		SELECT r.n, r.msg_offset
		  FROM pgq_send_batch('big', (SELECT array_agg(g::text) FROM generate_series(1, $records) g))
			   WITH ORDINALITY AS r(partition, msg_offset, n);
	\\echo done
});
wait_appending('big');
my $single = $node->safe_psql('postgres', q{SELECT msg_offset FROM pgq_send('big', 'single')});
$batch->query_until(qr/done/, "");
$batch->quit;

my ($count, $first, $last, $consecutive) = split /\|/, $node->safe_psql('postgres', q{
	SELECT count(*), min(msg_offset), max(msg_offset),
		   bool_and(msg_offset = min_offset + n - 1)
	  FROM (SELECT n, msg_offset, min(msg_offset) OVER () AS min_offset FROM batch_result) s});
is($count, $records, 'every record of the batch got an offset');
is($consecutive, 't', "the batch's offsets are consecutive, in input order");
is($last - $first + 1, $records, 'the batch took one range of offsets');
is($single, $last + 1, 'the single send waited for the batch and came right after it');

# 2. two sessions, many big batches each, to the same partition at once
my @sessions;
foreach my $s (1, 2)
{
	my $psql = $node->background_psql('postgres', on_error_stop => 1);
	$psql->query_until(qr/started/, qq{
		\\echo started
		INSERT INTO concurrent
			SELECT $s, b, r.n, r.msg_offset
			  FROM generate_series(1, 10) b,
				   LATERAL pgq_send_batch('contig',
					   (SELECT array_agg(b || '-' || g) FROM generate_series(1, 10000) g))
				   WITH ORDINALITY AS r(partition, msg_offset, n);
		\\echo done
	});
	push @sessions, $psql;
}
foreach my $psql (@sessions)
{
	$psql->query_until(qr/done/, "");
	$psql->quit;
}
my ($batches, $contiguous, $total, $distinct) = split /\|/, $node->safe_psql('postgres', q{
	SELECT count(*), count(*) FILTER (WHERE contiguous), sum(records), (SELECT count(DISTINCT msg_offset) FROM concurrent)
	  FROM (SELECT session, batch, count(*) AS records,
				   count(*) = 10000 AND max(msg_offset) - min(msg_offset) = 9999
				   AND bool_and(msg_offset - n = min_offset - 1) AS contiguous
			  FROM (SELECT *, min(msg_offset) OVER (PARTITION BY session, batch) AS min_offset
					  FROM concurrent) c
			 GROUP BY session, batch) b});
is($batches, 20, 'both sessions sent their ten batches');
is($contiguous, 20, "every batch's offsets are contiguous, in input order");
is($distinct, $total, 'no offset was given twice');
# whether the sessions' batches actually alternated depends on scheduling:
# report it, do not assert it
note('the two sessions alternated '
	  . $node->safe_psql('postgres', q{
		SELECT count(*) FROM (SELECT session, lag(session) OVER (ORDER BY lo) AS prev
								FROM (SELECT session, batch, min(msg_offset) AS lo
										FROM concurrent GROUP BY 1, 2) b) s
		 WHERE session <> prev})
	  . ' times');

# 3. a cancel request stops a big batch in the middle of its append
my $big = $node->background_psql('postgres', on_error_stop => 0);
$big->query_until(qr/started/, qq{
	\\echo started
	SELECT count(*) FROM pgq_send_batch('cancel', (SELECT array_agg(g::text) FROM generate_series(1, $records) g));
	\\echo done
});
wait_appending('cancel');
$node->safe_psql('postgres', q{
	SELECT pg_cancel_backend(pid) FROM pg_stat_activity
	 WHERE query LIKE '%pgq_send_batch(''cancel''%' AND pid <> pg_backend_pid()});
$big->query_until(qr/done/, "");
like($big->{stderr}, qr/canceling statement due to user request/, 'the batch was canceled');
$big->quit;
my $hwm = $node->safe_psql('postgres', q{SELECT high_watermark FROM pgq_partitions WHERE topic = 'cancel'});
cmp_ok($hwm, '<', $records, "the cancel stopped the append in the middle (at offset $hwm)");
is($node->safe_psql('postgres', q{SELECT count(*) FROM pgq_fetch('cancel', 0, 0, 1000000)}),
	'0', 'nothing of the canceled batch is readable');
cmp_ok($node->safe_psql('postgres', q{SELECT msg_offset FROM pgq_send('cancel', 'after')}),
	'>=', $hwm, 'the next send gets an offset past the canceled ones');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pgq_fetch('cancel', 0, 0, 1000000)}),
	'1', 'and is readable');

$node->stop;
done_testing();
