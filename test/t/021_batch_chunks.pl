# Copyright (c) pgqueue contributors
#
# 021_batch_chunks.pl
#	  A big pgq_send_batch does not hold a partition's append lock for its
#	  whole share: it appends in chunks, releasing the lock in between, so a
#	  single send to the same partition made while the batch is appending
#	  gets an offset in the middle of the batch's (the batch's offsets
#	  increase but are not consecutive).  Holding the lock throughout would
#	  make that send wait for the whole batch and get an offset after it.
#	  The batch stays correct: every record once, in input order.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $records = 2000000;

my $node = PostgreSQL::Test::Cluster->new('chunks');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pgqueue'\n");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pgqueue;
	SELECT pgq_create_topic('chunks', 1);
	CREATE TABLE batch_result (n int, msg_offset bigint);
});

my $batch = $node->background_psql('postgres', on_error_stop => 1);
$batch->query_until(qr/started/, qq{
	\\echo started
	INSERT INTO batch_result
		SELECT r.n, r.msg_offset
		  FROM pgq_send_batch('chunks', (SELECT array_agg(g::text) FROM generate_series(1, $records) g))
			   WITH ORDINALITY AS r(partition, msg_offset, n);
	\\echo done
});

# as soon as the batch has begun appending, send one record
my $single = $node->safe_psql('postgres', q{
	DO $$
	BEGIN
		WHILE (SELECT high_watermark FROM pgq_partitions WHERE topic = 'chunks') = 0 LOOP
			PERFORM pg_sleep(0.001);
		END LOOP;
	END $$;
	SELECT msg_offset FROM pgq_send('chunks', 'single');
});
$batch->query_until(qr/done/, "");
$batch->quit;

my ($count, $first, $last, $in_order) = split /\|/, $node->safe_psql('postgres', q{
	SELECT count(*), min(msg_offset), max(msg_offset),
		   bool_and(msg_offset > prev) IS NOT FALSE
	  FROM (SELECT msg_offset, lag(msg_offset) OVER (ORDER BY n) AS prev FROM batch_result) s});
is($count, $records, 'every record of the batch got an offset');
is($in_order, 't', "the batch's offsets increase in input order");
cmp_ok($single, '>', $first, "the single send came after the batch's first record");
cmp_ok($single, '<', $last,
	"the single send did not wait for the whole batch (offset $single, batch $first..$last)");

is($node->safe_psql('postgres', qq{
	SELECT count(*) FROM generate_series(0, $last) o
	 WHERE NOT EXISTS (SELECT 1 FROM batch_result b WHERE b.msg_offset = o) AND o <> $single}),
	'0', 'the batch and the single send together have every offset, without gaps');

$node->stop;
done_testing();
