# Copyright (c) pgqueue contributors
#
# 050_gateway_metadata.pl
#	  pgqueue-kafka's core, from real Kafka clients and by hand:
#	  - librdkafka (kcat) negotiates exactly the features of a Kafka 2.x
#		broker from our advertised API versions;
#	  - kcat -L and Python's AdminClient.list_topics() see every topic with
#		its partitions, this gateway the leader and only replica of each;
#	  - an unknown topic gets UNKNOWN_TOPIC_OR_PARTITION, and is created
#		only with --auto-create-topics (an illegal name never);
#	  - responses come back in request order, also when pipelined;
#	  - bad input (truncated frames, absurd or negative lengths, unknown API
#		keys, unsupported versions, malformed headers) gets an error answer
#		or a closed connection, and the gateway serves the next client;
#	  - after a restart of Postgres, Metadata works again;
#	  - SIGTERM stops the gateway with status 0 (under AddressSanitizer,
#		with no leak).

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use GatewayTap;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('gw_meta');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pgqueue'");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pgqueue;
	SELECT pgq_create_topic('orders', 3);
	SELECT pgq_create_topic('events', 1);
});

my $gw = gateway_start($node, args => [ '--node-id' => 7 ]);

# --- features ---------------------------------------------------------------
# librdkafka < 2.11 enables a feature when our range of each API it needs
# overlaps its own: this line proves every range (min versions 0 included).
# librdkafka 2.0.2 logs the line in the broker context: -d feature alone
# does not show it.
my ($rc, $out, $err) = kcat($gw, [ '-L', '-d', 'broker,feature,protocol' ]);
is($rc, 0, 'kcat -L succeeds');
my ($features) = $err =~ /Updated enabled protocol features to (\S+)\s*$/m;
is($features,
	'MsgVer1,ApiVersion,BrokerBalancedConsumer,ThrottleTime,Sasl,'
	  . 'BrokerGroupCoordinator,LZ4,OffsetTime,MsgVer2,IdempotentProducer,ZSTD',
	'librdkafka enables the features of a Kafka 2.x broker, no more');
like($err, qr/Sent ApiVersionRequest \(v3/, 'librdkafka negotiates with ApiVersions v3');
unlike($err, qr/ApiVersionRequest failed|Retrying ApiVersionRequest/,
	'and reads its response without falling back');

# --- topics -------------------------------------------------------------------
sub kcat_topics
{
	my (@args) = @_;
	my ($rc, $out, $err) = kcat($gw, [ '-L', '-J', @args ]);
	return undef unless $rc == 0;
	return decode_json($out);
}

my $md = kcat_topics();
my %topics = map { $_->{topic} => scalar @{ $_->{partitions} } } @{ $md->{topics} };
is_deeply(\%topics, { orders => 3, events => 1 }, 'kcat -L lists every topic with its partitions');
is_deeply([ map { $_->{id} } @{ $md->{brokers} } ], [7], 'one broker: the gateway, with its node id');
is($md->{brokers}[0]{name}, $gw->{bootstrap}, 'at its advertised address');
is($md->{controllerid}, 7, 'the gateway is the controller');
my @bad = grep {
	     $_->{leader} != 7
	  || join(',', map { $_->{id} } @{ $_->{replicas} }) ne '7'
	  || join(',', map { $_->{id} } @{ $_->{isrs} }) ne '7'
} map { @{ $_->{partitions} } } @{ $md->{topics} };
is(scalar @bad, 0, 'the gateway leads every partition and is its only replica and ISR');
is_deeply([ sort map { $_->{partition} } @{ (grep { $_->{topic} eq 'orders' } @{ $md->{topics} })[0]{partitions} } ],
	[ 0, 1, 2 ], 'partitions are numbered from 0');

($rc, $out, $err) = run_python($gw, q{
import json, os
from confluent_kafka.admin import AdminClient
md = AdminClient({'bootstrap.servers': os.environ['BOOTSTRAP']}).list_topics(timeout=20)
print(json.dumps({'cluster_id': md.cluster_id, 'controller_id': md.controller_id,
                  'brokers': [[b.id, b.host, b.port] for b in md.brokers.values()],
                  'topics': {t: sorted(md.topics[t].partitions) for t in md.topics}}))
});
is($rc, 0, 'AdminClient.list_topics() succeeds') or diag($err);
my $py = decode_json($out || '{}');
is_deeply($py->{topics}, { orders => [ 0, 1, 2 ], events => [0] }, 'AdminClient.list_topics() agrees with kcat');
is_deeply($py->{brokers}, [ [ 7, '127.0.0.1', $gw->{port} ] ], 'and sees the same broker');
my $sysid = $node->safe_psql('postgres', 'SELECT system_identifier FROM pg_control_system()');
is($py->{cluster_id}, "pgqueue-$sysid-postgres", 'the cluster id is derived from the database');

($rc, $out, $err) = run_python($gw, q{
import os
from kafka import KafkaConsumer
c = KafkaConsumer(bootstrap_servers=os.environ['BOOTSTRAP'])
print(sorted(c.topics()), sorted(c.partitions_for_topic('orders')))
c.close()
});
is($out, "['events', 'orders'] [0, 1, 2]\n", 'python3-kafka sees the same topics') or diag($err);

# --- unknown topics and auto-creation ------------------------------------------
$md = kcat_topics('-t', 'nope');
is($md->{topics}[0]{error} // '', 'Broker: Unknown topic or partition', 'an unknown topic is reported as such');
($rc, $out, $err) = run_python($gw, q{
import os
from confluent_kafka.admin import AdminClient
md = AdminClient({'bootstrap.servers': os.environ['BOOTSTRAP']}).list_topics(topic='nope', timeout=20)
print(md.topics['nope'].error.code())
});
is($out, "3\n", 'AdminClient gets UNKNOWN_TOPIC_OR_PARTITION (3)') or diag($err);
is($node->safe_psql('postgres', "SELECT count(*) FROM pgq_topics WHERE topic = 'nope'"),
	'0', 'and the topic is not created without --auto-create-topics');
$md = kcat_topics('-t', 'bad$name');
is($md->{topics}[0]{error} // '', 'Broker: Invalid topic', 'an illegal name gets INVALID_TOPIC_EXCEPTION');

my $gw2 = gateway_start($node, name => 'autocreate',
	args => [ '--auto-create-topics', '--default-partitions' => 2 ]);
# librdkafka's Metadata requests allow creation (v4+: allow_auto_topic_creation)
my %made;
for my $t ('made_by_metadata', 'bad$name', 'orders')
{
	($rc, $out) = kcat($gw2, [ '-L', '-J', '-t', $t ]);
	$md = decode_json($out || '{}');
	$made{$t} = [ $md->{topics}[0]{error} // '', scalar @{ $md->{topics}[0]{partitions} // [] } ];
}
is_deeply(\%made,
	{ made_by_metadata => [ '', 2 ], 'bad$name' => [ 'Broker: Invalid topic', 0 ], orders => [ '', 3 ] },
	'with --auto-create-topics, Metadata creates an unknown topic with --default-partitions');
is($node->safe_psql('postgres', q{SELECT string_agg(topic || ':' || partitions, ' ' ORDER BY topic) FROM pgq_topics}),
	'events:1 made_by_metadata:2 orders:3', 'pgq_topics shows it, and no illegal one');
like(gateway_log($gw2), qr/created topic "made_by_metadata"/, 'the creation is logged');

# Metadata v4 of one topic, allow_auto_topic_creation false: the topic's
# error code in the response (throttle, brokers, cluster id, controller,
# then the topics)
sub metadata_v4_error
{
	my ($g, $topic) = @_;
	my $c = kafka_connect($g);
	my ($id, $resp) = kafka_request($c, 3, 4, 1, pack('l> s>/a* C', 1, $topic, 0));
	close $c;
	return 'closed' unless defined $resp;
	my $pos = 4;
	my $nbrokers = unpack('l>', substr($resp, $pos, 4));
	$pos += 4;
	for (1 .. $nbrokers)
	{
		$pos += 4;
		$pos += 2 + unpack('s>', substr($resp, $pos, 2));    # host
		$pos += 4;
		my $rack = unpack('s>', substr($resp, $pos, 2));
		$pos += 2 + ($rack > 0 ? $rack : 0);
	}
	my $cluster = unpack('s>', substr($resp, $pos, 2));
	$pos += 2 + ($cluster > 0 ? $cluster : 0) + 4 + 4;    # controller, topic count
	return unpack('s>', substr($resp, $pos, 2));
}
is(metadata_v4_error($gw2, 'not_asked'), 3,
	'a Metadata v4 request that does not allow creation gets UNKNOWN_TOPIC_OR_PARTITION');
is($node->safe_psql('postgres', "SELECT count(*) FROM pgq_topics WHERE topic = 'not_asked'"),
	'0', 'and creates nothing');
is(metadata_v4_error($gw2, 'orders'), 0, 'an existing topic has no error in Metadata v4');
gateway_stop($gw2);

# --- the raw protocol -----------------------------------------------------------
# Metadata v1 of one topic (body: array of 1 string)
my $meta_orders = pack('l> s>/a*', 1, 'orders');

# responses in request order, also when the client pipelines
my $s = kafka_connect($gw);
my $frames = '';
for my $r ([ 3, 1, 101, $meta_orders ], [ 18, 0, 102, '' ], [ 3, 1, 103, pack('l>', -1) ], [ 18, 2, 104, '' ])
{
	my $req = pack('s> s> l> s>/a*', $r->[0], $r->[1], $r->[2], 'gwtap') . $r->[3];
	$frames .= pack('N', length $req) . $req;
}
kafka_send($s, $frames);
my @ids;
for (1 .. 4)
{
	my ($id) = kafka_read_response($s);
	push @ids, $id // 'closed';
}
is("@ids", '101 102 103 104', 'pipelined requests are answered in order');

# ApiVersions v0 and v3 by hand
my ($id, $resp) = kafka_request($s, 18, 0, 7, '');
my ($error, $n) = unpack('s> l>', $resp);
my %apis;
for my $i (0 .. $n - 1)
{
	my ($k, $min, $max) = unpack('s> s> s>', substr($resp, 6 + 6 * $i, 6));
	$apis{$k} = "$min-$max";
}
is($error, 0, 'ApiVersions v0 answers without error');
is_deeply(
	\%apis,
	{
		0 => '0-7', 1 => '0-11', 2 => '0-3', 3 => '0-8', 8 => '2-7', 9 => '1-5',
		10 => '0-2', 11 => '0-5', 12 => '0-3', 13 => '0-3', 14 => '0-3', 15 => '0-4',
		16 => '0-2', 18 => '0-3', 19 => '0-4', 20 => '0-3', 22 => '0-1', 32 => '0-3', 33 => '0-1',
		37 => '0-1', 44 => '0-0'
	},
	'and advertises the versions of the research notes');
# v3: header v2 (a tagged-field byte after the client id), compact strings
my $v3 = pack('s> s> l> s>/a* C', 18, 3, 8, 'gwtap', 0)
  . pack('C a* C a* C', 1 + length('tap'), 'tap', 1 + length('1.0'), '1.0', 0);
kafka_send($s, pack('N', length $v3) . $v3);
($id, $resp) = kafka_read_response($s);
is($id, 8, 'ApiVersions v3 is answered (response header v0)');
is(unpack('s>', $resp), 0, 'without error');
is(unpack('C', substr($resp, 2, 1)), 22, 'its compact array holds our 21 APIs');
close $s;

# Each bad input: an answer with an error, or the connection closed; then
# the gateway still serves a new client.
sub closed_by_gateway
{
	my ($bytes, $what) = @_;
	my $c = kafka_connect($gw);
	kafka_send($c, $bytes);
	my @r = kafka_read_response($c, 10);
	ok(!@r, "$what: the gateway closes the connection");
	close $c;
}

sub header { my ($k, $v, $id) = @_; return pack('s> s> l> s>/a*', $k, $v, $id, 'gwtap'); }
sub frame { return pack('N', length $_[0]) . $_[0]; }

closed_by_gateway(pack('N', 0x7fffffff) . 'x' x 100, 'a frame of 2 GB');
closed_by_gateway(pack('N', 0xffffffff) . 'x' x 100, 'a frame of negative length');
closed_by_gateway(frame(pack('s> s>', 18, 0)), 'a truncated request header');
closed_by_gateway(frame(pack('s> s> l> s>', 18, 0, 1, 500) . 'abc'), 'a client id longer than the frame');
closed_by_gateway(frame(header(999, 0, 1)), 'an unknown API key');
closed_by_gateway(frame(header(-1, 0, 1)), 'a negative API key');
closed_by_gateway(frame(header(3, 99, 1) . pack('l>', -1)), 'an unsupported version of Metadata');
closed_by_gateway(frame(header(3, 1, 1) . pack('l>', 1_000_000_000)), 'a topic array count beyond the frame');
closed_by_gateway(frame(header(3, 1, 1) . pack('l> s>', 1, 300) . 'short'), 'a topic name longer than the frame');
closed_by_gateway(frame(header(8, 0, 1)), 'an API version below the advertised range (OffsetCommit v0)');

# a truncated frame: the client goes away in the middle of it
my $c = kafka_connect($gw);
kafka_send($c, pack('N', 100) . header(18, 0, 1));
close $c;

# ApiVersions of a version we do not have: UNSUPPORTED_VERSION in v0's format
$c = kafka_connect($gw);
($id, $resp) = kafka_request($c, 18, 99, 9, '');
is($id, 9, 'ApiVersions v99 is answered');
is(unpack('s>', $resp // ''), 35, 'with UNSUPPORTED_VERSION');
ok(unpack('l>', substr($resp // '', 2, 4)) == 21, 'and our API list, so that the client can retry');
close $c;

my $ntopics = $node->safe_psql('postgres', 'SELECT count(*) FROM pgq_topics');
$md = kcat_topics();
is(scalar @{ $md->{topics} // [] }, $ntopics, 'after all that, the gateway still serves kcat');
my $log = gateway_log($gw);
like($log, qr/unknown API key 999/, 'an unknown API key is logged');
like($log, qr/request of -1 bytes/, 'an absurd length is logged');
like($log, qr/new connection from 127\.0\.0\.1:\d+/, 'connections are logged');
like($log, qr/closing connection from 127\.0\.0\.1:\d+ \(client id "rdkafka"/,
	'and their end, with the client id');

# --- a restart of Postgres ------------------------------------------------------------
$node->restart;
my $ok = 0;
for (1 .. 60)
{
	$md = kcat_topics();
	if ($md && scalar @{ $md->{topics} } == $ntopics)
	{
		$ok = 1;
		last;
	}
	usleep(500_000);
}
ok($ok, 'after a restart of Postgres, Metadata works again');
like(gateway_log($gw), qr/lost the connection to the database/, 'the lost connections were logged');

gateway_stop($gw);
$node->stop;
done_testing();
