# Copyright (c) pgqueue contributors
#
# 055_gateway_producer_ids.pl
#	  InitProducerId and idempotent Produce requests by hand, and
#	  python3-kafka's producer as an independent implementation:
#	  - InitProducerId without a transactional id gives a new producer id
#		with epoch 0 each time; with one, the same id and the next epoch;
#		another role's transactional id gets
#		TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
#	  - Produce requests with producer ids: a retry of a batch appends
#		nothing and answers the first attempt's base offset; a fenced epoch
#		gets INVALID_PRODUCER_EPOCH, a gap in the sequence
#		OUT_OF_ORDER_SEQUENCE_NUMBER, an unknown producer id
#		UNKNOWN_PRODUCER_ID;
#	  - python3-kafka's KafkaProducer with acks 0, 1 and all, and gzip:
#		its futures' offsets are those pgq_fetch shows, with its keys,
#		headers and timestamps.

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use GatewayTap;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('gw_producer_ids');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pgqueue'");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pgqueue;
	SELECT pgq_create_topic('idem', 1);
	SELECT pgq_create_topic('kp', 1);
});

my $gw = gateway_start($node);

# --- InitProducerId ------------------------------------------------------------
my $s = kafka_connect($gw);

# InitProducerId v1: "error producer_id epoch"
sub init_producer
{
	my ($txn) = @_;
	my $body = (defined $txn ? pack('s>/a*', $txn) : pack('s>', -1)) . pack('l>', 60000);
	my ($cid, $resp) = kafka_request($s, 22, 1, 5, $body);
	return 'closed' unless defined $cid;
	my ($throttle, $error, $pid, $epoch) = unpack('l> s> q> s>', $resp);
	return "$error $pid $epoch";
}
my ($e1, $pid1, $epoch1) = split / /, init_producer(undef);
my ($e2, $pid2, $epoch2) = split / /, init_producer(undef);
is("$e1 $epoch1 $e2 $epoch2", '0 0 0 0', 'InitProducerId without a transactional id: epoch 0');
ok($pid1 >= 0 && $pid2 >= 0 && $pid1 != $pid2, 'and a new producer id each time');
my ($t1, $tpid1, $tepoch1) = split / /, init_producer('billing');
my ($t2, $tpid2, $tepoch2) = split / /, init_producer('billing');
is("$t1 $t2 $tepoch1 $tepoch2", '0 0 0 1', 'with a transactional id: the next epoch each time');
is($tpid2, $tpid1, 'and the same producer id');
close $s;

# --- idempotent Produce requests by hand -----------------------------------------
my ($rc, $out, $err) = run_python($gw, qq{
import os, time
from kafka.client_async import KafkaClient
from kafka.protocol.produce import ProduceRequest
from kafka.record.default_records import DefaultRecordBatchBuilder
c = KafkaClient(bootstrap_servers=os.environ['BOOTSTRAP'], api_version=(2, 0, 0))
node = c.least_loaded_node()
deadline = time.time() + 20
while not c.ready(node) and time.time() < deadline:
    c.poll(timeout_ms=100)
def batch(pid, epoch, seq, values):
    b = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=False,
                                  producer_id=pid, producer_epoch=epoch, base_sequence=seq,
                                  batch_size=1 << 20)
    for i, v in enumerate(values):
        b.append(i, timestamp=None, key=None, value=v, headers=[])
    return bytes(b.build())
def produce(records):
    f = c.send(node, ProduceRequest[3](transactional_id=None, required_acks=-1, timeout=5000,
                                       topics=[('idem', [(0, records)])]))
    c.poll(future=f, timeout_ms=20000)
    p = f.value.topics[0][1][0]
    return '%d:%d' % (p[1], p[2])
first = batch($tpid1, 1, 0, [b'a', b'b', b'c'])
print(produce(first))                                  # appended at 0
print(produce(first))                                  # a retry: the same offsets
print(produce(batch($tpid1, 1, 3, [b'd'])))            # the next sequence
print(produce(batch($tpid1, 0, 4, [b'zombie'])))       # a fenced epoch
print(produce(batch($tpid1, 1, 9, [b'gap'])))          # a gap in the sequence
print(produce(batch(987654321, 0, 0, [b'who'])))       # an unknown producer id
});
is($out, "0:0\n0:0\n0:3\n47:-1\n45:-1\n59:-1\n",
	'a retry answers the first offsets; a fenced epoch, a gap and an unknown producer get 47, 45, 59')
  or diag($err);
is($node->safe_psql('postgres',
		q{SELECT string_agg(convert_from(value, 'UTF8'), ' ' ORDER BY msg_offset) FROM pgq_fetch('idem', 0, 0)}),
	'a b c d', 'and each record is in the log once');

# --- python3-kafka's producer ------------------------------------------------------------
($rc, $out, $err) = run_python($gw, q{
import os
from kafka import KafkaProducer
for acks, codec in ((0, None), (1, 'gzip'), ('all', None), ('all', 'gzip')):
    p = KafkaProducer(bootstrap_servers=os.environ['BOOTSTRAP'], acks=acks, compression_type=codec,
                      api_version=(2, 0, 0), linger_ms=10)
    fs = [p.send('kp', value=b'%s-%s-%d' % (str(acks).encode(), str(codec).encode(), i),
                 key=b'k%d' % i, partition=0, timestamp_ms=1700000000000 + i,
                 headers=[('a', b'1'), ('b', b'\xff')]) for i in range(3)]
    p.flush()
    print(' '.join(str(f.get(10).offset) for f in fs))
    p.close()
});
my @offsets = split /\n/, $out;
is(scalar(@offsets), 4, 'python3-kafka\'s producer sends with acks 0, 1 and all, with and without gzip')
  or diag($err);
is($offsets[0], '-1 -1 -1', 'acks=0 learns no offsets');
is(join(' ', @offsets[ 1 .. 3 ]), '3 4 5 6 7 8 9 10 11', 'the others learn the offsets pgq_fetch shows');
$node->poll_query_until('postgres', q{SELECT count(*) = 12 FROM pgq_fetch('kp', 0, 0)});
is( $node->safe_psql('postgres', q{
		SELECT string_agg(format('%s=%s/%s/%s/%s', msg_offset, convert_from(value, 'UTF8'), convert_from(key, 'UTF8'),
		                         (extract(epoch FROM "timestamp") * 1000)::bigint - 1700000000000, headers),
		                  ' ' ORDER BY msg_offset)
		  FROM pgq_fetch('kp', 0, 0) WHERE msg_offset IN (0, 5, 11)}),
	'0=0-None-0/k0/0/[["a", "1"], ["b", {"base64": "/w=="}]] '
	  . '5=1-gzip-2/k2/2/[["a", "1"], ["b", {"base64": "/w=="}]] '
	  . '11=all-gzip-2/k2/2/[["a", "1"], ["b", {"base64": "/w=="}]]',
	'with their values, keys, timestamps and headers');

gateway_stop($gw);

# a transactional id belongs to the role that first used it
$node->safe_psql('postgres', 'CREATE ROLE other LOGIN');
my $gw_other = gateway_start($node, name => 'gateway_other',
	args => [ '--conninfo' => $node->connstr('postgres') . ' user=other' ]);
$s = kafka_connect($gw_other);
is((split / /, init_producer('billing'))[0], 53,
	'another role\'s transactional id: TRANSACTIONAL_ID_AUTHORIZATION_FAILED');
is((split / /, init_producer('others'))[0], 0, 'its own is fine');
close $s;
gateway_stop($gw_other);

done_testing();
