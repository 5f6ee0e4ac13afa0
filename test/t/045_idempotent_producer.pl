# Copyright (c) pgqueue contributors
#
# 045_idempotent_producer.pl
#	  An idempotent producer's retry finds each record exactly once when the
#	  reply to its COMMIT was lost (docs/producers.md):
#	  - the server crashes (immediate stop) right after the COMMIT, before
#		the client could learn of it: after the restart the retry returns
#		the first attempt's offsets and appends nothing; so does a retry of
#		an earlier batch, and the producer's next sequence follows on;
#	  - the primary dies right after the COMMIT and its synchronous standby
#		is promoted: the retry on the new primary does the same, and a send
#		with a fenced epoch is refused there too;
#	  - stress: pairs of clients share a producer and send its next
#		sequences concurrently, rolling back whole transactions and
#		savepoints and sending sequences again at random: in the end every
#		producer's sequences are in the log once each, 0, 1, 2, ... with no
#		duplicate and no gap.

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('idem_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'pgqueue'
synchronous_standby_names = 'standby1'
synchronous_commit = on
});
$primary->start;
$primary->backup('idem_backup');
my $standby = PostgreSQL::Test::Cluster->new('standby1');
$standby->init_from_backup($primary, 'idem_backup', has_streaming => 1);
$standby->append_conf(
	'postgresql.conf', "
primary_conninfo = '" . $primary->connstr . " application_name=standby1'
synchronous_standby_names = ''
");
$standby->start;

$primary->safe_psql('postgres', q{
	CREATE EXTENSION pgqueue;
	SELECT pgq_create_topic('orders', 2);
});
my ($pid, $epoch) = split /\|/,
  $primary->safe_psql('postgres', q{SELECT producer_id, producer_epoch FROM pgq_init_producer('shop')});

sub send_batch
{
	my ($node, $seq, $values) = @_;
	my $array = join(',', map { "'$_'" } @$values);
	return $node->safe_psql('postgres', qq{
		SELECT string_agg(partition || ':' || msg_offset, ' ' ORDER BY msg_offset)
		  FROM pgq_send_batch('orders', ARRAY[$array], partition => 0,
		                      producer_id => $pid, producer_epoch => $epoch, sequence => $seq)});
}

sub log_of
{
	my ($node) = @_;
	return $node->safe_psql('postgres', q{
		SELECT string_agg(msg_offset || '=' || convert_from(value, 'UTF8'), ' ' ORDER BY msg_offset)
		  FROM pgq_fetch('orders', 0, 0, 1000)});
}

# --- a crash between the COMMIT and the reply ------------------------------
my $first = send_batch($primary, 0, [ 'a', 'b', 'c' ]);
is($first, '0:0 0:1 0:2', 'the first batch appends at offsets 0-2');
my $second = send_batch($primary, 3, ['d']);
$primary->stop('immediate');    # the client never heard of the second COMMIT
$primary->start;
is(send_batch($primary, 3, ['d']), $second, 'after a crash, the retry returns the offset the send got');
is(send_batch($primary, 0, [ 'a', 'b', 'c' ]), $first, 'and a retry of the batch before it too');
is(log_of($primary), '0=a 1=b 2=c 3=d', 'each record is in the log once');
my $third = send_batch($primary, 4, ['e']);
like($third, qr/^0:\d+$/, 'the next sequence appends');

# --- a failover to the synchronous standby between COMMIT and reply --------
ok( $primary->poll_query_until(
		'postgres', q{SELECT sync_state = 'sync' FROM pg_stat_replication WHERE application_name = 'standby1'}),
	'the standby is synchronous');
my $fourth = send_batch($primary, 5, [ 'f', 'g' ]);
$primary->stop('immediate');
$standby->promote;
is(send_batch($standby, 5, [ 'f', 'g' ]), $fourth,
	'on the promoted standby, the retry returns the offsets the send got');
is(send_batch($standby, 4, ['e']), $third, 'and so does a retry of the send before it');
like(log_of($standby), qr/^0=a 1=b 2=c 3=d \d+=e \d+=f \d+=g$/, 'each record is in its log once');
my ($rc, $out, $err) = $standby->psql('postgres', qq{
	SELECT * FROM pgq_init_producer('shop');
	SELECT * FROM pgq_send('orders', 'h', partition => 0, producer_id => $pid,
	                       producer_epoch => $epoch, sequence => 7)});
like($err, qr/producer $pid has epoch \d+, not $epoch/, 'a fenced epoch is refused on the new primary');

# --- stress: concurrent producers retrying at random -------------------------
my $node = $standby;
$node->safe_psql('postgres', q{
	SELECT pgq_create_topic('stress', 1);
	SELECT count(*) FROM generate_series(1, 4) i, LATERAL pgq_init_producer('stress-' || i);
	CREATE SEQUENCE stress_refused;    -- sends refused as out of order or older (not transactional)
	-- the producer columns of a segment's visible rows
	CREATE FUNCTION stress_rows(seg regclass)
	RETURNS TABLE(producer_id bigint, sequence integer) LANGUAGE plpgsql AS $$
	BEGIN
	  RETURN QUERY EXECUTE format('SELECT producer_id, sequence FROM %s WHERE producer_id IS NOT NULL', seg);
	END $$;
	CREATE VIEW stress_log AS
	  SELECT s.producer_id, s.sequence
	    FROM pgqueue.segment g JOIN pgqueue.topic t USING (topic_id),
	         LATERAL stress_rows(g.relid) s
	   WHERE t.name = 'stress';
	-- one send of producer n's next sequence, as the log says it is: another
	-- client of the same producer may be sending it too (then this one waits
	-- for it, and returns its offset or appends); at random the send is
	-- rolled back (a savepoint) or sent twice, or an earlier sequence again
	CREATE FUNCTION stress_send(n integer) RETURNS void LANGUAGE plpgsql AS $$
	DECLARE
	  p record;
	  s integer;
	  r double precision := random();
	BEGIN
	  SELECT producer_id AS id, producer_epoch AS epoch INTO p FROM pgqueue.producer
	   WHERE transactional_id = 'stress-' || n;
	  SELECT coalesce(max(sequence) + 1, 0) INTO s FROM stress_log WHERE producer_id = p.id;
	  BEGIN
	    PERFORM pgq_send('stress', 'v', producer_id => p.id, producer_epoch => p.epoch, sequence => s);
	    IF r < 0.2 THEN
	      RAISE EXCEPTION 'roll back to the savepoint' USING ERRCODE = 'P0001';
	    ELSIF r < 0.4 THEN
	      PERFORM pgq_send('stress', 'v', producer_id => p.id, producer_epoch => p.epoch, sequence => s);
	    ELSIF r < 0.5 AND s > 0 THEN
	      PERFORM pgq_send('stress', 'v', producer_id => p.id, producer_epoch => p.epoch, sequence => s - 1);
	    END IF;
	  EXCEPTION
	    WHEN SQLSTATE 'P0001' THEN
	      NULL;
	    WHEN SQLSTATE 'PQ001' OR SQLSTATE 'PQ002' THEN
	      PERFORM nextval('stress_refused');    -- another client's send came first
	  END;
	END $$;
});
my $script = PostgreSQL::Test::Utils::tempdir() . '/stress.sql';
PostgreSQL::Test::Utils::append_to_file($script, q{
\set n 1 + :client_id / 2
BEGIN;
SELECT stress_send(:n);
\set r random(1, 10)
\if :r <= 2
ROLLBACK;
\else
COMMIT;
\endif
});
$node->command_ok(
	[ 'pgbench', '-n', '-c', '8', '-j', '2', '-T', '8', '-f', $script, '-h', $node->host, '-p', $node->port, 'postgres' ],
	'eight clients, two per producer, send for 8 s');
my $summary = $node->safe_psql('postgres', q{
	SELECT count(DISTINCT producer_id) || ' producers, ' || count(*) || ' records, '
	       || (SELECT count(*) FROM (SELECT FROM stress_log GROUP BY producer_id, sequence HAVING count(*) > 1) d)
	       || ' duplicates, '
	       || (SELECT coalesce(sum(n), 0) FROM (SELECT max(sequence) + 1 - count(DISTINCT sequence) AS n
	                                              FROM stress_log GROUP BY producer_id) g)
	       || ' gaps'
	  FROM stress_log});
like($summary, qr/^4 producers, \d+ records, 0 duplicates, 0 gaps$/, "stress: $summary");
my ($records) = $summary =~ /(\d+) records/;
note('sends refused as out of order or as older duplicates: '
	  . $node->safe_psql('postgres', q{SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM stress_refused}));
cmp_ok($records, '>', 40, 'the stress run appended records');

$node->stop;
done_testing();
