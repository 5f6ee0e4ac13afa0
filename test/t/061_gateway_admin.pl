# Copyright (c) pgqueue contributors
#
# 061_gateway_admin.pl
#	  pgqueue-kafka's administration APIs, from real Kafka clients and by
#	  hand, each answer checked against SQL (pgq_topics, pgq_partitions):
#	  - python3-confluent-kafka's AdminClient (librdkafka): create_topics
#		(with configs, validate_only, an existing topic, an illegal name, an
#		unknown config key, a bad value, a name given twice),
#		create_partitions (and fewer partitions, validate_only),
#		describe_configs (topic and broker), alter_configs (which
#		replaces the set keys), delete_topics; kcat -L after each change;
#	  - kafkajs 2.2.4's admin client (test/clients/gw_kafkajs_admin.js);
#	  - hand-made requests: counts, replication factors and replica
#		assignments refused without SQL, IncrementalAlterConfigs SET,
#		DELETE and APPEND, DescribeConfigs v0 and v3, and malformed
#		requests, which close the connection;
#	  - a role without the rights gets TOPIC_AUTHORIZATION_FAILED through
#		a gateway that logs in as it, until pgq_grant gives it the admin
#		right;
#	  - librdkafka's feature list is unchanged by the new APIs.

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

my $node = PostgreSQL::Test::Cluster->new('gw_admin');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pgqueue'");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pgqueue;
	SELECT pgq_create_topic('existing', 2);
	SELECT pgq_create_topic('ref', 1);  -- never changed: its config is the defaults
	CREATE ROLE app LOGIN;
});

my $gw = gateway_start($node, args => [ '--default-partitions' => 2 ]);

sub sql { return $node->safe_psql('postgres', $_[0]); }

# a topic's partitions and set keys (those that differ from a new topic's, ref's)
sub topic_row
{
	my ($topic) = @_;
	return sql(qq{
		SELECT t.partitions || ' ' || coalesce(string_agg(e.key || '=' || (e.value #>> '{}'), ',' ORDER BY e.key), '')
		  FROM pgq_topics t
		  LEFT JOIN LATERAL jsonb_each(t.config) e
		    ON e.value IS DISTINCT FROM (SELECT config -> e.key FROM pgq_topics WHERE topic = 'ref')
		 WHERE t.topic = '$topic' GROUP BY t.partitions});
}

sub kcat_partitions
{
	my ($gw) = @_;
	my ($rc, $out, $err) = kcat($gw, [ '-L', '-J' ]);
	return undef unless $rc == 0;
	my $md = decode_json($out);
	return { map { $_->{topic} => scalar @{ $_->{partitions} } } @{ $md->{topics} } };
}

# --- features -----------------------------------------------------------------
my ($rc, $out, $err) = kcat($gw, [ '-L', '-d', 'broker,feature' ]);
my ($features) = $err =~ /Updated enabled protocol features to (\S+)\s*$/m;
is($features,
	'MsgVer1,ApiVersion,BrokerBalancedConsumer,ThrottleTime,Sasl,'
	  . 'BrokerGroupCoordinator,LZ4,OffsetTime,MsgVer2,IdempotentProducer,ZSTD',
	'the admin APIs leave librdkafka\'s features as they were');

# --- confluent-kafka's AdminClient ---------------------------------------------
my $prelude = q{
import json, os
from confluent_kafka.admin import AdminClient, NewTopic, NewPartitions, ConfigResource
a = AdminClient({'bootstrap.servers': os.environ['BOOTSTRAP']})
def results(fs, **kw):
    out = {}
    for k, f in fs.items():
        try:
            f.result(timeout=20)
            out[str(k)] = 'ok'
        except Exception as e:
            err = e.args[0] if e.args else None
            out[str(k)] = err.name() if hasattr(err, 'name') else repr(e)
    print(json.dumps(out))
def configs(res):
    out = {}
    for r, f in a.describe_configs(res).items():
        try:
            out[r.name] = {n: [c.value, c.source, int(c.is_default), int(c.is_read_only)]
                           for n, c in f.result(timeout=20).items()}
        except Exception as e:
            out[r.name] = e.args[0].name()
    print(json.dumps(out))
};

sub admin
{
	my ($code, $gw_) = @_;
	my ($rc, $out, $err) = run_python($gw_ // $gw, $prelude . $code);
	my $r = eval { decode_json($out) };
	diag("python: $rc\n$out\n$err") unless $r;
	return $r // {};
}

my $r = admin(q{
results(a.create_topics([
    NewTopic('py_a', 3, 1, config={'retention.ms': '1000', 'cleanup.policy': 'delete'}),
    NewTopic('py_b', 1, 3),
    NewTopic('existing', 1, 1),
    NewTopic('bad$name', 1, 1),
    NewTopic('py_c', 1, 1, config={'compression.type': 'lz4'}),
    NewTopic('py_d', 1, 1, config={'retention.ms': 'forever'}),
    NewTopic('py_e', 1, 1, config={'cleanup.policy': 'compact'}),
]))
});
is_deeply(
	$r,
	{
		py_a => 'ok',
		py_b => 'ok',
		existing => 'TOPIC_ALREADY_EXISTS',
		'bad$name' => 'TOPIC_EXCEPTION',
		py_c => 'INVALID_CONFIG',
		py_d => 'INVALID_CONFIG',
		py_e => 'INVALID_CONFIG'
	},
	'create_topics: each topic its answer');
is(topic_row('py_a'), '3 retention.ms=1000', 'py_a has 3 partitions and the config given');
is(topic_row('py_b'), '1 ', 'a replication factor of 3 is accepted (the database\'s replication)');
is(sql(q{SELECT string_agg(topic, ',' ORDER BY topic) FROM pgq_topics}),
	'existing,py_a,py_b,ref', 'the refused topics were not created');
is(sql(q{SELECT count(*) FROM pgq_partitions WHERE topic = 'py_a'}), '3', 'pgq_partitions has py_a\'s 3');
is_deeply(kcat_partitions($gw), { existing => 2, py_a => 3, py_b => 1, ref => 1 }, 'kcat -L shows the new topics');

$r = admin(q{
results(a.create_topics([NewTopic('py_v', 4, 1, config={'segment.ms': '1000'}),
                         NewTopic('py_a', 1, 1), NewTopic('py_w', 1, 1, config={'x': '1'})],
                        validate_only=True))
});
is_deeply($r, { py_v => 'ok', py_a => 'TOPIC_ALREADY_EXISTS', py_w => 'INVALID_CONFIG' },
	'validate_only checks as a creation would');
is(sql(q{SELECT count(*) FROM pgq_topics WHERE topic IN ('py_v', 'py_w')}), '0',
	'and creates nothing');

($rc, $out, $err) = run_python($gw, $prelude . q{
results(a.create_topics([NewTopic('py_twice', 1, 1), NewTopic('py_twice', 2, 1)]))
});
like($out, qr/"py_twice": "INVALID_REQUEST"/, 'a name given twice: INVALID_REQUEST')
  or diag($err);
is(sql(q{SELECT count(*) FROM pgq_topics WHERE topic = 'py_twice'}), '0', 'and not created');

# --- partitions -----------------------------------------------------------------
$r = admin(q{
results(a.create_partitions([NewPartitions('py_a', 5), NewPartitions('py_b', 1),
                             NewPartitions('nope', 2)]))
});
is_deeply($r, { py_a => 'ok', py_b => 'INVALID_PARTITIONS', nope => 'UNKNOWN_TOPIC_OR_PART' },
	'create_partitions: a new total, not fewer, not of an unknown topic');
$r = admin(q{results(a.create_partitions([NewPartitions('py_a', 9)], validate_only=True))});
is_deeply($r, { py_a => 'ok' }, 'create_partitions with validate_only');
is(topic_row('py_a'), '5 retention.ms=1000', 'py_a has 5 partitions (validate_only added none)');
is(sql(q{SELECT string_agg(partition::text, ',' ORDER BY partition) FROM pgq_partitions WHERE topic = 'py_a'}),
	'0,1,2,3,4', 'pgq_partitions shows them');
is(kcat_partitions($gw)->{py_a}, 5, 'and kcat -L');

# --- configs --------------------------------------------------------------------
$r = admin(q{configs([ConfigResource('topic', 'py_a'), ConfigResource('topic', 'py_b'),
                      ConfigResource('topic', 'nope'), ConfigResource('broker', '0')])});
my %effective = map { split /\|/ } split /\n/,
  sql(q{SELECT e.key || '|' || (e.value #>> '{}') FROM pgq_topics, jsonb_each(config) e WHERE topic = 'py_a'});
is_deeply({ map { $_ => $r->{py_a}{$_}[0] } keys %{ $r->{py_a} } }, \%effective,
	'describe_configs: every key of pgq_topics with its effective value');
is_deeply([ map { "$_=$r->{py_a}{$_}[1]" } sort grep { !$r->{py_a}{$_}[2] } keys %{ $r->{py_a} } ],
	['retention.ms=1'], 'the key set is TOPIC_CONFIG, the others DEFAULT_CONFIG');
is(scalar(grep { $_->[1] != 5 || !$_->[2] || $_->[3] } values %{ $r->{py_b} }), 0,
	'a new topic: every key is a default (the gateway knows pgqueue\'s defaults)');
is(scalar(keys %{ $r->{py_b} }), 6, 'six keys');
is($r->{nope}, 'UNKNOWN_TOPIC_OR_PART', 'an unknown topic: UNKNOWN_TOPIC_OR_PARTITION');
is_deeply(
	$r->{0},
	{
		'advertised.listeners' => [ "PLAINTEXT://$gw->{bootstrap}", 4, 0, 1 ],
		'auto.create.topics.enable' => [ 'false', 4, 0, 1 ],
		'broker.id' => [ '0', 4, 0, 1 ],
		'num.partitions' => [ '2', 4, 0, 1 ],
		'socket.request.max.bytes' => [ '104857600', 4, 0, 1 ],
	},
	'broker 0: the gateway\'s options, read-only');

$r = admin(q{
results(a.alter_configs([ConfigResource('topic', 'py_a', set_config={'segment.ms': '60000'}),
                         ConfigResource('topic', 'py_b', set_config={'retention.bytes': 'lots'}),
                         ConfigResource('topic', 'nope', set_config={'segment.ms': '60000'})]))
});
is_deeply($r, { 'ConfigResource(Type.TOPIC,py_a)' => 'ok', 'ConfigResource(Type.TOPIC,py_b)' => 'INVALID_CONFIG',
		'ConfigResource(Type.TOPIC,nope)' => 'UNKNOWN_TOPIC_OR_PART' }, 'alter_configs: each resource its answer');
is(topic_row('py_a'), '5 segment.ms=60000',
	'alter_configs replaces the set keys: retention.ms is back to its default');
$r = admin(q{
results(a.alter_configs([ConfigResource('topic', 'py_a', set_config={'retention.bytes': '1000'})],
                        validate_only=True))
});
is_deeply($r, { 'ConfigResource(Type.TOPIC,py_a)' => 'ok' }, 'alter_configs with validate_only');
is(topic_row('py_a'), '5 segment.ms=60000', 'changes nothing');
$r = admin(q{configs([ConfigResource('topic', 'py_a')])});
is_deeply([ map { "$_=$r->{py_a}{$_}[0]" } sort grep { !$r->{py_a}{$_}[2] } keys %{ $r->{py_a} } ],
	['segment.ms=60000'], 'describe_configs shows the change');

# --- delete ---------------------------------------------------------------------
$r = admin(q{results(a.delete_topics(['py_b', 'nope']))});
is_deeply($r, { py_b => 'ok', nope => 'UNKNOWN_TOPIC_OR_PART' }, 'delete_topics');
is(sql(q{SELECT string_agg(topic, ',' ORDER BY topic) FROM pgq_topics}), 'existing,py_a,ref', 'py_b is dropped');
is_deeply(kcat_partitions($gw), { existing => 2, py_a => 5, ref => 1 }, 'kcat -L no longer shows it');

# --- kafkajs --------------------------------------------------------------------
($rc, $out, $err) =
  GatewayTap::run_bounded([ 'node', "$FindBin::RealBin/../clients/gw_kafkajs_admin.js", $gw->{bootstrap} ]);
is($rc, 0, 'the kafkajs admin client ran to its end') or diag("$out\n$err");
my @expect = (
	'created kjs_a,kjs_b true',
	'created kjs_b false',
	'created kjs_v true',
	'error create-bad-config KafkaJSAggregateError INVALID_CONFIG',
	'error create-bad-name KafkaJSAggregateError INVALID_TOPIC_EXCEPTION',
	'error partitions-fewer INVALID_PARTITIONS',
	'partitions kjs_a 4',
	'error describe-missing UNKNOWN_TOPIC_OR_PARTITION',
	'error alter-bad INVALID_CONFIG',
	'error delete-missing KafkaJSNumberOfRetriesExceeded UNKNOWN_TOPIC_OR_PARTITION',
	'topics existing,kjs_a,py_a,ref',
	'done');
is_deeply([ grep { !/^(config|broker) / } split /\n/, $out ], \@expect,
	'kafkajs: createTopics, createPartitions, alterConfigs, deleteTopics, listTopics answer as Kafka would');
my @kjs_configs = grep { /^config kjs_a / } split /\n/, $out;
is(scalar(@kjs_configs), 12, 'describeConfigs before and after alterConfigs: six keys each');
is_deeply([ grep { / false 1$/ } @kjs_configs ],
	[ 'config kjs_a retention.ms 3600000 false 1', 'config kjs_a segment.ms 60000 false 1' ],
	'the key set at creation, then only the altered one, are not defaults');
like($out, qr/^broker broker\.id 0 true$/m, 'describeConfigs of broker 0');
is(topic_row('kjs_a'), '4 segment.ms=60000', 'SQL agrees: 4 partitions, segment.ms set');
is(sql(q{SELECT count(*) FROM pgq_topics WHERE topic IN ('kjs_b', 'kjs_v', 'kjs_c')}), '0',
	'kjs_b dropped, kjs_v and kjs_c never created');

# --- by hand ------------------------------------------------------------------------
sub str { return pack('s>/a*', $_[0]); }
sub nstr { return defined $_[0] ? str($_[0]) : pack('s>', -1); }
sub arr { return pack('l>', scalar @_) . join('', @_); }

# reads an int16-length string (undef for null) from the front of $$buf
sub take_str
{
	my ($buf) = @_;
	my $len = unpack('s>', substr($$buf, 0, 2, ''));
	return undef if $len < 0;
	return substr($$buf, 0, $len, '');
}

# CreateTopics v1: [name, partitions, factor, assignments, configs]; returns
# "name:error" for each topic, or 'closed'
sub create_topics
{
	my ($s, $topics, $validate) = @_;
	my $body = arr(
		map {
			my ($name, $parts, $factor, $assign, $configs) = @$_;
			str($name)
			  . pack('l> s>', $parts, $factor)
			  . arr(map { pack('l>', $_) . arr(pack('l>', 0)) } @{ $assign // [] })
			  . arr(map { str($_->[0]) . nstr($_->[1]) } @{ $configs // [] })
		} @$topics) . pack('l> c', 5000, $validate ? 1 : 0);
	my ($cid, $resp) = kafka_request($s, 19, 1, 1, $body);
	return 'closed' unless defined $cid;
	my $n = unpack('l>', substr($resp, 0, 4, ''));
	my @out;
	for (1 .. $n)
	{
		my $name = take_str(\$resp);
		my $error = unpack('s>', substr($resp, 0, 2, ''));
		take_str(\$resp);
		push @out, "$name:$error";
	}
	return join(' ', @out);
}

my $s = kafka_connect($gw);
is(create_topics($s, [ [ 'h_zero', 0, 1 ], [ 'h_factor', 1, 0 ], [ 'h_assign', -1, -1, [ 0, 1 ] ],
			[ 'h_default', -1, -1 ], [ 'h_null', 1, 1, [], [ [ 'retention.ms', undef ] ] ] ]),
	'h_zero:37 h_factor:38 h_assign:39 h_default:0 h_null:0',
	'CreateTopics: a count below 1, a factor of 0, replica assignments are refused; -1 is the default');
is(topic_row('h_default'), '2 ', 'num_partitions -1: --default-partitions');
is(topic_row('h_null'), '1 ', 'a config of null value is the default');

# IncrementalAlterConfigs v0: [type, name, [key, op, value]...]
sub incremental
{
	my ($s, $name, @configs) = @_;
	my $body = arr(pack('c', 2) . str($name) . arr(map { str($_->[0]) . pack('c', $_->[1]) . nstr($_->[2]) } @configs))
	  . pack('c', 0);
	my ($cid, $resp) = kafka_request($s, 44, 0, 2, $body);
	return 'closed' unless defined $cid;
	my ($throttle, $n, $error) = unpack('l> l> s>', $resp);
	return $error;
}
sql(q{SELECT pgq_alter_topic('py_a', '{"retention.ms": 5000}')});
is(incremental($s, 'py_a', [ 'retention.bytes', 0, '100000' ], [ 'segment.ms', 1, undef ]), 0,
	'IncrementalAlterConfigs: SET and DELETE');
is(topic_row('py_a'), '5 retention.bytes=100000,retention.ms=5000',
	'set one key, put another back to its default, left the third');
is(incremental($s, 'py_a', [ 'cleanup.policy', 2, 'delete' ]), 40, 'APPEND: INVALID_CONFIG');
is(incremental($s, 'py_a', [ 'segment.ms', 9, '1' ]), 42, 'an unknown operation: INVALID_REQUEST');
is(incremental($s, 'nope', [ 'segment.ms', 0, '1' ]), 3, 'an unknown topic: UNKNOWN_TOPIC_OR_PARTITION');

# DescribeConfigs v0 (is_default) and v3 (types, documentation) of chosen keys
my $describe = arr(pack('c', 2) . str('py_a') . arr(str('retention.ms'), str('segment.ms')));
my ($cid, $resp) = kafka_request($s, 32, 0, 3, $describe);
my (undef, undef, $error, undef, undef, undef, $nconf, $k1, $v1, $ro1, $def1, undef, $k2, $v2, $ro2, $def2) =
  unpack('l> l> s> s> c s>/a l> s>/a s>/a c c c s>/a s>/a c c', $resp // '');
is("$error $nconf $k1=$v1 $ro1 $def1 $k2=$v2 $ro2 $def2", '0 2 retention.ms=5000 0 0 segment.ms=604800000 0 1',
	'DescribeConfigs v0: the keys asked for, is_default');
my $describe3 = arr(pack('c', 2) . str('py_a') . arr(str('retention.ms'))) . pack('c c', 1, 1);
($cid, $resp) = kafka_request($s, 32, 3, 4, $describe3);
my @f = unpack('l> l> s> s> c s>/a l> s>/a s>/a c c c l> (s>/a s>/a c)2 c s>/a', $resp // '');
is(join(' ', map { $_ // 'undef' } @f[ 6 .. 20 ]),
	'1 retention.ms 5000 0 1 0 2 retention.ms 5000 1 retention.ms 604800000 5 5 '
	  . 'How long a closed segment is kept; -1: forever.',
	'DescribeConfigs v3: the source, the synonyms (the value, then the default), the type and documentation');

# DeleteTopics v3
($cid, $resp) = kafka_request($s, 20, 3, 5, arr(str('h_null'), str('h_null')) . pack('l>', 5000));
is(join(',', unpack('x4 l> s>/a s>', $resp // '')), '1,h_null,42',
	'DeleteTopics of a name given twice: INVALID_REQUEST, answered once');
($cid, $resp) = kafka_request($s, 20, 3, 6, arr(str('h_null'), str('h_default')) . pack('l>', 5000));
is(join(',', unpack('x4 l> (s>/a s>)2', $resp // '')), '2,h_null,0,h_default,0', 'DeleteTopics v3');
is(sql(q{SELECT count(*) FROM pgq_topics WHERE topic LIKE 'h\_%'}), '0', 'both dropped');
close $s;

# malformed requests close the connection, and the gateway serves the next one
my %malformed = (
	'CreateTopics with a count beyond the request' => [ 19, 1, pack('l>', 0x7fffffff) ],
	'CreateTopics cut short' => [ 19, 4, arr(str('x') . pack('l> s>', 1, 1)) ],
	'CreateTopics with a null config name' => [ 19, 0,
		arr(str('x') . pack('l> s>', 1, 1) . arr() . arr(nstr(undef) . str('1'))) . pack('l>', 1) ],
	'DeleteTopics with a null name' => [ 20, 1, arr(nstr(undef)) . pack('l>', 1) ],
	'CreatePartitions cut short' => [ 37, 1, arr(str('py_a') . pack('l>', 9)) ],
	'DescribeConfigs with a key array beyond the request' => [ 32, 1, arr(pack('c', 2) . str('py_a') . pack('l>', 1000)) ],
	'AlterConfigs without validate_only' => [ 33, 1, arr(pack('c', 2) . str('py_a') . arr(str('segment.ms') . str('1'))) ],
	'IncrementalAlterConfigs with a null name' => [ 44, 0, arr(pack('c', 2) . nstr(undef) . arr()) . pack('c', 0) ],
);
for my $what (sort keys %malformed)
{
	my ($key, $version, $body) = @{ $malformed{$what} };
	my $c = kafka_connect($gw);
	my @resp = kafka_request($c, $key, $version, 9, $body);
	is(scalar @resp, 0, "$what: the connection closes");
	close $c;
}

# every prefix of a valid request of each API (none has an optional
# trailing field) is malformed: each closes its connection
my %valid = (
	'CreateTopics v4' => [ 19, 4,
		arr(str('cut') . pack('l> s>', 1, 1) . arr() . arr(str('retention.ms') . str('1000'))) . pack('l> c', 1000, 1) ],
	'DeleteTopics v3' => [ 20, 3, arr(str('cut'), str('cut2')) . pack('l>', 1000) ],
	'CreatePartitions v1' => [ 37, 1, arr(str('py_a') . pack('l>', 9) . pack('l>', -1)) . pack('l> c', 1000, 1) ],
	'DescribeConfigs v3' => [ 32, 3, arr(pack('c', 2) . str('py_a') . arr(str('segment.ms'))) . pack('c c', 1, 1) ],
	'AlterConfigs v1' => [ 33, 1, arr(pack('c', 2) . str('py_a') . arr(str('segment.ms') . str('1'))) . pack('c', 1) ],
	'IncrementalAlterConfigs v0' => [ 44, 0,
		arr(pack('c', 2) . str('py_a') . arr(str('segment.ms') . pack('c', 0) . str('1'))) . pack('c', 1) ],
);
for my $what (sort keys %valid)
{
	my ($key, $version, $body) = @{ $valid{$what} };
	my $c = kafka_connect($gw);
	my @resp = kafka_request($c, $key, $version, 10, $body);
	is(scalar @resp, 2, "$what: answered whole");
	close $c;
	my @answered;
	for my $cut (0 .. length($body) - 1)
	{
		$c = kafka_connect($gw);
		push @answered, $cut if kafka_request($c, $key, $version, 11, substr($body, 0, $cut));
		close $c;
	}
	is("@answered", '', "$what: every prefix closes the connection");
}
is(topic_row('py_a'), '5 retention.bytes=100000,retention.ms=5000', 'and nothing changed');
is(kcat_partitions($gw)->{py_a}, 5, 'the gateway still serves');

# --- rights ---------------------------------------------------------------------
my $gw_app = gateway_start($node, name => 'gateway-app', conninfo => $node->connstr('postgres') . ' user=app');
($rc, $out, $err) = run_python($gw_app, $prelude . q{
results(a.create_topics([NewTopic('app_t', 1, 1)]))
results(a.create_partitions([NewPartitions('existing', 3)]))
results(a.alter_configs([ConfigResource('topic', 'existing', set_config={'segment.ms': '60000'})]))
results(a.delete_topics(['existing']))
configs([ConfigResource('topic', 'existing')])
});
my @lines = map { decode_json($_) } split /\n/, $out;
is_deeply(
	[ @lines[ 0 .. 3 ] ],
	[
		{ app_t => 'TOPIC_AUTHORIZATION_FAILED' },
		{ existing => 'TOPIC_AUTHORIZATION_FAILED' },
		{ 'ConfigResource(Type.TOPIC,existing)' => 'TOPIC_AUTHORIZATION_FAILED' },
		{ existing => 'TOPIC_AUTHORIZATION_FAILED' }
	],
	'a role without the rights: TOPIC_AUTHORIZATION_FAILED for every change')
  or diag($err);
is(scalar(keys %{ $lines[4]{existing} // {} }), 6, 'describing needs no right');
is(topic_row('existing'), '2 ', 'nothing changed');
sql(q{SELECT pgq_grant('existing', 'app', 'admin')});
($rc, $out, $err) = run_python($gw_app, $prelude . q{
results(a.create_partitions([NewPartitions('existing', 3)]))
results(a.alter_configs([ConfigResource('topic', 'existing', set_config={'segment.ms': '60000'})]))
});
is($out, qq({"existing": "ok"}\n{"ConfigResource(Type.TOPIC,existing)": "ok"}\n),
	'with the admin right granted by pgq_grant, the changes succeed') or diag($err);
is(topic_row('existing'), '3 segment.ms=60000', 'SQL shows them');

# --- without the database -----------------------------------------------------
$node->stop;
$s = kafka_connect($gw);
is(create_topics($s, [ [ 'down', 1, 1 ] ]), 'down:41',
	'the database down: NOT_CONTROLLER, which clients retry');
close $s;
$node->start;
my $answer = '';
for (1 .. 100)
{
	$s = kafka_connect($gw);
	$answer = create_topics($s, [ [ 'down', 1, 1 ] ]);
	close $s;
	last if $answer eq 'down:0';
	usleep(100_000);
}
is($answer, 'down:0', 'once it is back, the retry creates the topic');

gateway_stop($gw_app);
gateway_stop($gw);
$node->stop;
done_testing();
