# Copyright (c) pgqueue contributors
#
# 052_gateway_produce.pl
#	  Producing through pgqueue-kafka (Produce, InitProducerId), checked
#	  against what SQL reads back:
#	  - kcat -P with keys and headers: the records pgq_fetch shows, in
#		order, at consecutive offsets from 0;
#	  - each codec (gzip, snappy, lz4, zstd): librdkafka really compresses
#		(its request is smaller than the value), and the records arrive;
#	  - acks 0, 1 and all each append, in order;
#	  - python3-confluent-kafka with acks=all: the offsets of the delivery
#		reports are those pgq_fetch shows, with the producer's timestamps,
#		keys and headers (bytes, repeated keys, null values);
#	  - an idempotent producer whose gateway connections to Postgres are
#		killed while it sends: every record arrives exactly once, in order;
#	  - a record over the topic's max.message.bytes gets MESSAGE_TOO_LARGE;
#	  - requests queued on a connection to one partition go together: one
#		transaction, each answered in order with its own offsets, a corrupt
#		batch among them refused alone, an idempotent one on its own;
#	  - the gateway's statements are prepared once per connection and then
#		executed by name (the server log of three produces and a consume);
#	  - by hand: an unknown topic or partition gets
#		UNKNOWN_TOPIC_OR_PARTITION, a corrupt batch CORRUPT_MESSAGE, and the
#		advertised but unserved Produce v2 UNSUPPORTED_VERSION.

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use GatewayTap;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('gw_produce');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pgqueue'");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pgqueue;
	SELECT pgq_create_topic('orders', 2);
	SELECT pgq_create_topic('codecs', 1);
	SELECT pgq_create_topic('acks', 1);
	SELECT pgq_create_topic('delivery', 2);
	SELECT pgq_create_topic('idem', 2);
	SELECT pgq_create_topic('small', 1, '{"max.message.bytes": 1000}');
	SELECT pgq_create_topic('together', 2);
});

my $gw = gateway_start($node);

# A partition's records as "offset|key|value|headers", in offset order.
sub sql_records
{
	my ($topic, $partition, $from) = @_;
	$from //= 0;
	return $node->safe_psql('postgres', qq{
		SELECT string_agg(msg_offset || '|' || coalesce(convert_from(key, 'UTF8'), '(null)') || '|'
		                  || convert_from(value, 'UTF8') || '|' || coalesce(headers::text, '(null)'),
		                  E'\\n' ORDER BY msg_offset)
		  FROM pgq_fetch('$topic', $partition, $from, 100000)});
}

# --- kcat: keys and headers ---------------------------------------------------
my ($rc, $out, $err) = kcat($gw, [ '-P', '-t', 'orders', '-p', '1', '-K', ':', '-H', 'trace=abc',
		'-H', 'n=1' ], stdin => "k1:v1\nk2:v2\nk3:v3\n");
is($rc, 0, 'kcat -P with keys and headers succeeds') or diag($err);
is(sql_records('orders', 1),
	qq{0|k1|v1|[["trace", "abc"], ["n", "1"]]\n1|k2|v2|[["trace", "abc"], ["n", "1"]]\n2|k3|v3|[["trace", "abc"], ["n", "1"]]},
	'pgq_fetch shows the records at offsets 0-2, with their keys and headers in their order');
is(sql_records('orders', 0), '', 'and nothing in the other partition');

# --- compression ----------------------------------------------------------------
my $big = 'a' x 5000;
my $expect = '';
my $offset = 0;
for my $codec ('gzip', 'snappy', 'lz4', 'zstd')
{
	my @opt = $codec eq 'zstd' ? ('-X', 'compression.codec=zstd') : ('-z', $codec);
	($rc, $out, $err) = kcat($gw, [ '-P', '-t', 'codecs', '-p', '0', @opt, '-d', 'protocol' ],
		stdin => "$codec-small\n$big\n");
	is($rc, 0, "kcat -P with $codec succeeds");
	my ($size) = $err =~ /Sent ProduceRequest \(v\d+, (\d+) bytes/;
	ok(defined $size && $size < 1000, "librdkafka compresses with $codec (request of "
		  . ($size // '?') . ' bytes for a value of 5000)');
	$expect .= "$offset|(null)|$codec-small|(null)\n" . ($offset + 1) . "|(null)|$big|(null)\n";
	$offset += 2;
}
chomp $expect;
is(sql_records('codecs', 0), $expect, 'every codec\'s records arrive, in order');

# --- acks ---------------------------------------------------------------------
for my $acks ('0', '1', 'all')
{
	($rc, $out, $err) = kcat($gw, [ '-P', '-t', 'acks', '-p', '0', '-X', "acks=$acks" ],
		stdin => "acks-$acks-a\nacks-$acks-b\n");
	is($rc, 0, "kcat -P with acks=$acks succeeds");
}
# acks=0 gets no answer: its records may commit after kcat is gone
$node->poll_query_until('postgres',
	q{SELECT count(*) = 6 FROM pgq_fetch('acks', 0, 0, 100)})
  or diag('the acks=all records did not all arrive');
is( $node->safe_psql('postgres',
		q{SELECT string_agg(convert_from(value, 'UTF8'), ' ' ORDER BY msg_offset) FROM pgq_fetch('acks', 0, 0, 100)}),
	'acks-0-a acks-0-b acks-1-a acks-1-b acks-all-a acks-all-b',
	'acks 0, 1 and all append, in order');

# --- confluent-kafka: delivery reports ---------------------------------------------
($rc, $out, $err) = run_python($gw, q{
import os
from confluent_kafka import Producer
reports = []
def report(err, msg):
    reports.append('%s|%d|%d' % (err, msg.partition(), msg.offset()))
p = Producer({'bootstrap.servers': os.environ['BOOTSTRAP'], 'acks': 'all', 'linger.ms': 20})
for i in range(30):
    p.produce('delivery', value=b'v%d' % i, key=b'k%d' % i, partition=i % 2,
              timestamp=1700000000000 + i, headers=[('h', b'\x00\xff'), ('h', None), ('t', b'x%d' % i)],
              on_delivery=report)
left = p.flush(30)
print('left=%d' % left)
print('\n'.join(reports))
});
is($rc, 0, 'a confluent-kafka producer with acks=all runs') or diag($err);
my @lines = split /\n/, $out;
is(shift @lines, 'left=0', 'every record is delivered');
my @reported = sort @lines;
my $sql = $node->safe_psql('postgres', q{
	SELECT 'None|' || partition || '|' || msg_offset FROM pgq_fetch('delivery', 0, 0, 100)
	UNION ALL SELECT 'None|' || partition || '|' || msg_offset FROM pgq_fetch('delivery', 1, 0, 100)
	ORDER BY 1});
is(join("\n", @reported), $sql, 'the delivery reports\' offsets are those pgq_fetch shows');
is( $node->safe_psql('postgres', q{
		SELECT string_agg(format('%s:%s:%s:%s:%s', msg_offset, convert_from(key, 'UTF8'),
		                         convert_from(value, 'UTF8'),
		                         (extract(epoch FROM "timestamp") * 1000)::bigint, headers),
		                  ' ' ORDER BY msg_offset)
		  FROM pgq_fetch('delivery', 1, 0, 3)}),
	'0:k1:v1:1700000000001:[["h", {"base64": "AP8="}], ["h", null], ["t", "x1"]] '
	  . '1:k3:v3:1700000000003:[["h", {"base64": "AP8="}], ["h", null], ["t", "x3"]] '
	  . '2:k5:v5:1700000000005:[["h", {"base64": "AP8="}], ["h", null], ["t", "x5"]]',
	'with the producer\'s keys, timestamps and headers (bytes, a repeated key, a null value)');

# --- idempotence while the gateway's connections are killed -------------------
my $killer = IPC::Run::start(
	[
		$node->installed_command('psql'), '-XAtq', '-d', $node->connstr('postgres'),
		'-c', q{DO $$ DECLARE n int := 0; k int; BEGIN FOR i IN 1..40 LOOP
			SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) INTO k FROM pg_stat_activity
			 WHERE query LIKE '%pgq_send_batch($1%'
			   AND pid <> pg_backend_pid();
			n := n + k;
			PERFORM pg_stat_clear_snapshot();
			PERFORM pg_sleep(0.1); END LOOP; RAISE NOTICE 'killed %', n; END $$}
	],
	'<', \undef, '>', \my $kout, '2>', \my $kerr);
($rc, $out, $err) = run_python($gw, q{
import os
from confluent_kafka import Producer
errors = []
def report(err, msg):
    if err: errors.append(str(err))
p = Producer({'bootstrap.servers': os.environ['BOOTSTRAP'], 'enable.idempotence': True,
              'linger.ms': 2, 'batch.num.messages': 50})
for i in range(10000):
    p.produce('idem', value=b'%d' % i, partition=i % 2, on_delivery=report)
    if i % 100 == 0: p.poll(0.05)
print('left=%d errors=%d %s' % (p.flush(60), len(errors), errors[:3]))
}, timeout => 120);
$killer->finish;
like($kerr, qr/killed [1-9]/, 'gateway connections were killed while it sent');
is($rc, 0, 'an idempotent confluent-kafka producer runs') or diag($err);
like($out, qr/^left=0 errors=0 /, 'every record is delivered without error') or diag($out);
is( $node->safe_psql('postgres', q{
		SELECT count(*) || ' ' || count(DISTINCT value) || ' '
		       || bool_and(ok)
		  FROM (SELECT value,
		               convert_from(value, 'UTF8')::int
		                 > coalesce(lag(convert_from(value, 'UTF8')::int) OVER (PARTITION BY partition ORDER BY msg_offset), -1) AS ok
		          FROM (SELECT * FROM pgq_fetch('idem', 0, 0, 10000)
		                UNION ALL SELECT * FROM pgq_fetch('idem', 1, 0, 10000)) r) s}),
	'10000 10000 true',
	'with connections killed while it sends, every record is in the log exactly once, in order');

# --- errors ---------------------------------------------------------------------
($rc, $out, $err) = run_python($gw, q{
import os
from confluent_kafka import Producer
res = []
p = Producer({'bootstrap.servers': os.environ['BOOTSTRAP'], 'acks': 'all'})
# one batch each: a batch with a record too large is refused whole, as in Kafka
p.produce('small', value=b'x' * 2000, partition=0,
          on_delivery=lambda err, msg: res.append(err.code() if err else 0))
p.flush(30)
p.produce('small', value=b'y' * 100, partition=0,
          on_delivery=lambda err, msg: res.append(err.code() if err else 0))
p.flush(30)
print(res)
});
is($out, "[10, 0]\n", 'a record over max.message.bytes gets MESSAGE_TOO_LARGE, a smaller one is appended')
  or diag($err);
is($node->safe_psql('postgres', q{SELECT string_agg(length(value)::text, ' ') FROM pgq_fetch('small', 0, 0)}),
	'100', 'only the smaller record is in the log');

# by hand, with python3-kafka's protocol classes: a client that trusts no
# metadata sends to any topic and partition, and may send garbage
($rc, $out, $err) = run_python($gw, q{
import os, time
from kafka.client_async import KafkaClient
from kafka.protocol.produce import ProduceRequest
from kafka.record.memory_records import MemoryRecordsBuilder
c = KafkaClient(bootstrap_servers=os.environ['BOOTSTRAP'], api_version=(2, 0, 0))
node = c.least_loaded_node()
deadline = time.time() + 20
while not c.ready(node) and time.time() < deadline:
    c.poll(timeout_ms=100)
def batch():
    b = MemoryRecordsBuilder(magic=2, compression_type=0, batch_size=1 << 20)
    b.append(timestamp=None, key=None, value=b'hand', headers=[])
    b.close()
    return bytes(b.buffer())
def produce(topic, partition, records):
    f = c.send(node, ProduceRequest[3](transactional_id=None, required_acks=-1, timeout=5000,
                                       topics=[(topic, [(partition, records)])]))
    c.poll(future=f, timeout_ms=20000)
    return f.value.topics[0][1][0][1]
corrupt = bytearray(batch()); corrupt[-1] ^= 0xff
print(produce('nosuch', 0, batch()), produce('orders', 7, batch()), produce('orders', -1, batch()),
      produce('orders', 0, bytes(corrupt)), produce('orders', 0, batch()))
});
is($out, "3 3 3 2 0\n",
	'an unknown topic or partition gets UNKNOWN_TOPIC_OR_PARTITION, a corrupt batch CORRUPT_MESSAGE')
  or diag($err);
is(sql_records('orders', 0), '0|(null)|hand|(null)', 'and only the good batch is appended');

# --- requests queued on a connection go together ------------------------------
# Seven Produce requests written at once (python3-kafka's codec, one
# socket write): to partition 0 two records, one, a corrupt batch, three,
# then one to partition 1, one idempotent, and one more to partition 0.
my $pid = $node->safe_psql('postgres', 'SELECT producer_id FROM pgq_init_producer()');
($rc, $out, $err) = run_python($gw, q{
import os, socket, sys
from kafka.protocol.parser import KafkaProtocol
from kafka.protocol.produce import ProduceRequest
from kafka.record.default_records import DefaultRecordBatchBuilder
def batch(*values, producer_id=-1):
    b = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=False,
                                  producer_id=producer_id, producer_epoch=0 if producer_id >= 0 else -1,
                                  base_sequence=0 if producer_id >= 0 else -1, batch_size=1 << 20)
    for i, v in enumerate(values):
        b.append(i, timestamp=None, key=None, value=v.encode(), headers=[])
    return bytes(b.build())
corrupt = bytearray(batch('x')); corrupt[-1] ^= 0xff
sends = [(0, batch('a1', 'a2')), (0, batch('b1')), (0, bytes(corrupt)), (0, batch('c1', 'c2', 'c3')),
         (1, batch('d1')), (0, batch('i1', producer_id=int(sys.argv[1]))), (0, batch('e1'))]
host, port = os.environ['BOOTSTRAP'].split(':')
s = socket.create_connection((host, int(port)), timeout=20)
proto = KafkaProtocol(client_id='together')
def burst(sends):
    for part, records in sends:
        proto.send_request(ProduceRequest[3](transactional_id=None, required_acks=-1, timeout=5000,
                                             topics=[('together', [(part, records)])]))
    s.sendall(proto.send_bytes())
    got = []
    while len(got) < len(sends):
        data = s.recv(65536)
        if not data:
            break
        got += proto.receive_bytes(data)
    for cid, r in got:
        p = r.topics[0][1][0]
        print(cid, p[0], p[1], p[2])
burst(sends)
# then requests that all go together, the last one ending the input
burst([(0, batch('f1')), (0, batch('g1', 'g2'))])
}, args => [$pid]);
is($out, "1 0 0 0\n2 0 0 2\n3 0 2 -1\n4 0 0 3\n5 1 0 0\n6 0 0 6\n7 0 0 7\n8 0 0 8\n9 0 0 9\n",
	'queued requests are answered in order, each with its own base offset or error')
  or diag($err);
is(sql_records('together', 0), join("\n", map { "$_->[0]|(null)|$_->[1]|(null)" }
		([0, 'a1'], [1, 'a2'], [2, 'b1'], [3, 'c1'], [4, 'c2'], [5, 'c3'], [6, 'i1'], [7, 'e1'],
		 [8, 'f1'], [9, 'g1'], [10, 'g2'])),
	'their records are in partition 0 in request order, the corrupt batch left out');
my $segment = $node->safe_psql('postgres', q{
	SELECT s.relid FROM pgqueue.segment s JOIN pgqueue.topic t USING (topic_id)
	 WHERE t.name = 'together' AND s.partition = 0});
is($node->safe_psql('postgres', qq{
	SELECT string_agg(n::text, ' ' ORDER BY first) FROM (
	  SELECT count(*) AS n, min(msg_offset) AS first FROM $segment GROUP BY xmin::text) x}),
	'6 1 1 3',
	'the requests to partition 0 before the one to partition 1 were appended by one transaction, and so were the last two');

# Statements are prepared: each of three producers' requests (and a
# consumer's reads) is executed by name, none parsed anew (an unnamed
# statement's execution is logged as "execute <unnamed>")
$node->safe_psql('postgres', q{
	ALTER SYSTEM SET log_statement = 'all'; SELECT pg_reload_conf(); SELECT pgq_create_topic('prepared', 1)});
my $log_from = -s $node->logfile;
for my $i (1 .. 3)
{
	($rc, $out, $err) = kcat($gw, [ '-P', '-t', 'prepared', '-p', '0' ], stdin => "p$i\n");
	is($rc, 0, "producer $i of 3 sends a record") or diag($err);
}
($rc, $out, $err) = kcat($gw, [ '-C', '-t', 'prepared', '-o', 'beginning', '-e', '-q', '-f', '%s\n' ]);
is($out, "p1\np2\np3\n", 'and a consumer reads them');
$node->safe_psql('postgres', q{ALTER SYSTEM RESET log_statement; SELECT pg_reload_conf()});
my $log = substr(slurp_file($node->logfile), $log_from);
my $named = () = $log =~ /execute pgqk_\d+: SELECT min\(msg_offset\) FROM pgq_send_batch/g;
is($named, 3, 'the three Produce statements were executed by name');
unlike($log, qr/execute <unnamed>: SELECT (min\(msg_offset\)|msg_offset, key)/,
	'no Produce or Fetch statement was run unnamed');
like($log, qr/execute pgqk_\d+: SELECT msg_offset, key/, 'the Fetch statements neither');

# Produce v2 (the old message sets) is advertised for librdkafka, not served
my $s = kafka_connect($gw);
my $body = pack('s> l> l> s>/a* l> l> l>', -1, 5000, 1, 'orders', 1, 0, -1);
my ($cid, $resp) = kafka_request($s, 0, 2, 42, $body);
is($cid, 42, 'Produce v2 gets an answer');
my ($nt, $name, $np, $part, $error) = unpack('l> s>/a* l> l> s>', $resp // '');
is("$name $part $error", 'orders 0 35', 'with UNSUPPORTED_VERSION for its partition');
close $s;

gateway_stop($gw);
done_testing();
