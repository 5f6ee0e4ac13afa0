# Copyright (c) pgqueue contributors
#
# 053_gateway_fetch.pl
#	  Consuming through pgqueue-kafka (Fetch, ListOffsets) returns exactly
#	  what SQL returns, in order:
#	  - kcat -C -e from the beginning, from the end, -o -10 and -o s@<ms>,
#		over a log with gaps (rolled-back sends) in the middle and at the
#		tail: kcat -e ends although the last offsets will never have a
#		record;
#	  - reads with a small fetch size (many Fetch requests, batches cut
#		by the byte limits) return the same;
#	  - python3-confluent-kafka and python3-kafka consumers without a group
#		read the records' exact bytes: keys, values, null values,
#		timestamps, headers with bytes, repeated keys and null values;
#		their end, beginning and time offsets are SQL's; python3-kafka
#		(Fetch v4, no empty batches) waits at a rolled-back tail, without
#		polling busily, and reads the record that follows;
#	  - by hand: Fetch and ListOffsets of an unknown topic or partition get
#		UNKNOWN_TOPIC_OR_PARTITION, an offset past the end
#		OFFSET_OUT_OF_RANGE, and the advertised but unserved Fetch v3 and
#		ListOffsets v0 UNSUPPORTED_VERSION; malformed Fetch, ListOffsets,
#		Produce and InitProducerId requests (absurd counts, truncations)
#		close their connection, and the next client is served.

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use GatewayTap;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('gw_fetch');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pgqueue'");
$node->start;

# 2 partitions; in each, 30 records of which some were rolled back (gaps),
# and a rolled-back tail
$node->safe_psql('postgres', q{
	CREATE EXTENSION pgqueue;
	SELECT pgq_create_topic('reads', 2);
	SELECT pgq_create_topic('bytes', 1);
});
for my $i (0 .. 29)
{
	my $p = $i % 2;
	my $rollback = ($i % 7 == 3) ? 'ROLLBACK' : 'COMMIT';
	$node->safe_psql('postgres', qq{
		BEGIN;
		SELECT pgq_send_batch('reads', ARRAY['v$i-a', 'v$i-b'], ARRAY['k$i', NULL], partition => $p,
		                      headers => ARRAY['{"h": "$i"}', NULL]::jsonb[],
		                      timestamps => ARRAY[to_timestamp(1700000000 + $i), NULL]);
		$rollback;});
}
$node->safe_psql('postgres', q{
	BEGIN; SELECT pgq_send('reads', 'gone', partition => 0); SELECT pgq_send('reads', 'gone', partition => 1); ROLLBACK;
});

my $gw = gateway_start($node);

# What SQL reads, as kcat prints it with -f '%p|%o|%k|%s|%h|%T\n', sorted.
sub sql_read
{
	my ($where) = @_;
	$where //= 'true';
	return $node->safe_psql('postgres', qq{
		SELECT string_agg(format('%s|%s|%s|%s|%s|%s', partition, msg_offset,
		                         coalesce(convert_from(key, 'UTF8'), ''), convert_from(value, 'UTF8'),
		                         coalesce((SELECT string_agg(h.key || '=' || convert_from(h.value, 'UTF8'), ',')
		                                     FROM pgq_headers_list(headers) h), ''),
		                         floor(extract(epoch FROM "timestamp") * 1000)::bigint),
		                  E'\\n' ORDER BY partition, msg_offset)
		  FROM (SELECT * FROM pgq_fetch('reads', 0, 0, 1000)
		        UNION ALL SELECT * FROM pgq_fetch('reads', 1, 0, 1000)) r
		 WHERE $where});
}

sub kcat_read
{
	my (@args) = @_;
	my ($rc, $out, $err) = kcat($gw, [ '-C', '-t', 'reads', '-e', '-q', '-f', '%p|%o|%k|%s|%h|%T\n', @args ],
		timeout => 30);
	return ($rc, join("\n", sort { (split /\|/, $a)[0] <=> (split /\|/, $b)[0]
			  || (split /\|/, $a)[1] <=> (split /\|/, $b)[1] } split /\n/, $out), $err);
}

my $all = sql_read();
my $count = () = $all =~ /\n/g;
ok($count > 30, 'the log has records, gaps and a rolled-back tail');

my ($rc, $out, $err) = kcat_read('-o', 'beginning');
is($rc, 0, 'kcat -C -o beginning -e ends although the tail of each partition was rolled back')
  or diag($err);
is($out, $all, 'and prints exactly what SQL reads, in order, past the gaps');

($rc, $out, $err) = kcat_read('-o', 'beginning', '-X', 'message.max.bytes=1000', '-X', 'fetch.max.bytes=1000',
	'-X', 'max.partition.fetch.bytes=100', '-X', 'fetch.message.max.bytes=100');
is($rc, 0, 'kcat -e with tiny fetch sizes ends') or diag($err);
is($out, $all, 'and prints the same, batch by batch');

($rc, $out, $err) = kcat_read('-o', 'end');
is("$rc|$out", '0|', 'kcat -o end -e prints nothing and ends');

($rc, $out, $err) = kcat_read('-o', '-10');
is($out,
	sql_read(q{msg_offset >= (SELECT last_stable_offset - 10 FROM pgq_partitions p
	                            WHERE p.topic = 'reads' AND p.partition = r.partition)}),
	'kcat -o -10 prints the records of the last 10 offsets');

my $ms = 1700000000 * 1000 + 14 * 1000;
($rc, $out, $err) = kcat_read('-o', "s\@$ms");
is($out,
	sql_read(qq{msg_offset >= (SELECT msg_offset FROM pgq_offsets_for_time('reads', to_timestamp($ms / 1000.0)) o
	                            WHERE o.partition = r.partition)}),
	'kcat -o s@<ms> starts where pgq_offsets_for_time says');
like($out, qr/^0\|/, 'which has records to print');

# --- exact bytes, from two other client libraries ----------------------------
$node->safe_psql('postgres', q{
	SELECT pgq_send('bytes', '\x00ff'::bytea, '\x01'::bytea,
	                headers => '[["r", "1"], ["r", {"base64": "AP8="}], ["n", null]]',
	                "timestamp" => '2024-01-02 03:04:05.678+00');
	SELECT pgq_send('bytes', NULL::bytea, 'tomb');
	BEGIN; SELECT pgq_send('bytes', 'gone'); ROLLBACK;
	SELECT pgq_send('bytes', '');
});
my $expect = q{0 b'\x01' b'\x00\xff' 1704164645678 [('r', b'1'), ('r', b'\x00\xff'), ('n', None)]
1 b'tomb' None True []
3 None b'' True []
};

($rc, $out, $err) = run_python($gw, q{
import os, time
from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
c = Consumer({'bootstrap.servers': os.environ['BOOTSTRAP'], 'group.id': 'unused',
              'enable.auto.commit': False, 'enable.partition.eof': True})
c.assign([TopicPartition('bytes', 0, OFFSET_BEGINNING)])
deadline = time.time() + 20
while time.time() < deadline:
    m = c.poll(1)
    if m is None: continue
    if m.error(): break
    ts = m.timestamp()[1]
    print(m.offset(), m.key(), m.value(), ts if m.offset() == 0 else ts > 0, m.headers() or [])
lo, hi = c.get_watermark_offsets(TopicPartition('bytes', 0), timeout=10)
t = c.offsets_for_times([TopicPartition('bytes', 0, 1704164645679)], timeout=10)[0].offset
print(lo, hi, t)
c.close()
});
is($out, $expect . "0 4 1\n",
	'confluent-kafka reads the exact bytes, timestamps and headers, and SQL\'s offsets') or diag($err);

($rc, $out, $err) = run_python($gw, q{
import os
from kafka import KafkaConsumer, TopicPartition
tp = TopicPartition('bytes', 0)
c = KafkaConsumer(bootstrap_servers=os.environ['BOOTSTRAP'], enable_auto_commit=False,
                  consumer_timeout_ms=3000, api_version=(2, 0, 0))
c.assign([tp]); c.seek_to_beginning(tp)
for m in c:
    print(m.offset, m.key, m.value, m.timestamp if m.offset == 0 else m.timestamp > 0, m.headers)
print(c.beginning_offsets([tp])[tp], c.end_offsets([tp])[tp], c.offsets_for_times({tp: 1704164645679})[tp].offset)
});
is($out, $expect . "0 4 1\n", 'python3-kafka reads the same') or diag($err);

# python3-kafka at a gap alone: it fetches with v4, which gets no empty
# batch (kafka-python 2.0.2 fails on one), so it waits there, caught up,
# in long polls from the gap's end, and reads the next record after it
$node->safe_psql('postgres', q{BEGIN; SELECT pgq_send('bytes', 'gone'); ROLLBACK;});
($rc, $out, $err) = run_python($gw, q{
import os
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
tp = TopicPartition('bytes', 0)
c = KafkaConsumer(bootstrap_servers=os.environ['BOOTSTRAP'], enable_auto_commit=False,
                  consumer_timeout_ms=2000, fetch_max_wait_ms=500, api_version=(2, 0, 0),
                  client_id='gap-reader')
c.assign([tp]); c.seek(tp, 4)
print('at the gap', [m.offset for m in c], c.position(tp))
p = KafkaProducer(bootstrap_servers=os.environ['BOOTSTRAP'], api_version=(2, 0, 0))
p.send('bytes', b'after', partition=0).get(timeout=10)
p.close()
print('then', [(m.offset, m.value) for m in c])
c.close()
});
is($out, "at the gap [] 4\nthen [(5, b'after')]\n",
	'python3-kafka at a rolled-back tail waits, then reads the record after it') or diag($err);
my @polls = gateway_log($gw) =~ /client id "gap-reader", (\d+) requests/g;
my $polls = 0;
$polls += $_ for @polls;
ok(@polls && $polls < 100, "without polling busily ($polls requests in 4 s)");

# --- by hand: errors ----------------------------------------------------------------
my $s = kafka_connect($gw);

# Fetch v4 of (topic, partition, offset): the partition's error code
sub fetch_error
{
	my ($topic, $partition, $offset, $version) = @_;
	$version //= 4;
	my $body = pack('l> l> l> l>', -1, 0, 1, 1 << 20) . ($version >= 4 ? pack('c', 1) : '')
	  . pack('l> s>/a* l> l> q> l>', 1, $topic, 1, $partition, $offset, 1 << 20);
	my ($cid, $resp) = kafka_request($s, 1, $version, 7, $body);
	return 'closed' unless defined $cid;
	my ($throttle, $nt, $name, $np, $part, $error) = unpack('l> l> s>/a* l> l> s>', $resp);
	return $error;
}
is(fetch_error('nosuch', 0, 0), 3, 'Fetch of an unknown topic: UNKNOWN_TOPIC_OR_PARTITION');
is(fetch_error('reads', 5, 0), 3, 'Fetch of an unknown partition: UNKNOWN_TOPIC_OR_PARTITION');
is(fetch_error('reads', 0, 1000), 1, 'Fetch past the end: OFFSET_OUT_OF_RANGE');
is(fetch_error('reads', 0, -5), 1, 'Fetch of a negative offset: OFFSET_OUT_OF_RANGE');
is(fetch_error('reads', 0, 0), 0, 'Fetch of a partition: no error');
is(fetch_error('reads', 0, 0, 3), 35, 'Fetch v3 (advertised, not served): UNSUPPORTED_VERSION');

# ListOffsets v1 of (topic, partition, timestamp): "error offset"
sub list_offsets
{
	my ($topic, $partition, $timestamp, $version) = @_;
	$version //= 1;
	my $body = pack('l> l> s>/a* l> l> q>', -1, 1, $topic, 1, $partition, $timestamp)
	  . ($version == 0 ? pack('l>', 1) : '');
	my ($cid, $resp) = kafka_request($s, 2, $version, 8, $body);
	return 'closed' unless defined $cid;
	my ($nt, $name, $np, $part, $error, $rest) = unpack('l> s>/a* l> l> s> a*', $resp);
	return $error if $version == 0;
	my ($ts, $offset) = unpack('q> q>', $rest);
	return "$error $offset";
}
my $lso0 = $node->safe_psql('postgres',
	q{SELECT last_stable_offset FROM pgq_partitions WHERE topic = 'reads' AND partition = 0});
is(list_offsets('reads', 0, -1), "0 $lso0", 'ListOffsets latest: the last stable offset');
is(list_offsets('reads', 0, -2), '0 0', 'ListOffsets earliest: the log start');
is(list_offsets('reads', 0, 4102444800000), '0 -1', 'ListOffsets of a time after every record: -1');
is(list_offsets('reads', 9, -1), '3 -1', 'ListOffsets of an unknown partition: UNKNOWN_TOPIC_OR_PARTITION');
is(list_offsets('nosuch', 0, -1), '3 -1', 'and of an unknown topic');
is(list_offsets('reads', 0, -1, 0), 35, 'ListOffsets v0: UNSUPPORTED_VERSION');
close $s;

# malformed requests close the connection; the next client is served
my @bad = (
	[ 1, 4, pack('l> l> l> l> c l>', -1, 0, 1, 1 << 20, 1, 1_000_000_000), 'a Fetch with an absurd topic count' ],
	[ 1, 11, pack('l> l> l> l> c l> l> l> s>/a* l>', -1, 0, 1, 1, 1, 0, -1, 1, 'reads', 1), 'a truncated Fetch' ],
	[ 2, 1, pack('l> l> s>/a* l>', -1, 1, 'reads', 2_000_000_000), 'a ListOffsets with an absurd partition count' ],
	[ 0, 3, pack('s> s> l> l> s>/a* l> l> l>', -1, 1, 5000, 1, 'reads', 1, 0, 1 << 30), 'a Produce whose records run past the end' ],
	[ 22, 1, pack('s>', 50), 'a truncated InitProducerId' ]);
for my $bad (@bad)
{
	my ($key, $version, $body, $what) = @$bad;
	$s = kafka_connect($gw);
	my ($cid) = kafka_request($s, $key, $version, 11, $body);
	ok(!defined $cid, "$what closes the connection");
	close $s;
}
$s = kafka_connect($gw);
is(fetch_error('reads', 0, 0), 0, 'and the gateway serves the next client');
close $s;

gateway_stop($gw);
done_testing();
