# Copyright (c) pgqueue contributors
#
# 059_gateway_kafkajs.pl
#	  kafkajs 2.2.4 (from npm, the project's node_modules) through the
#	  gateway, with test/clients/gw_kafkajs.js; every record it prints is
#	  compared with what SQL reads:
#	  - producers: acks -1 and acks 1 with gzip, sendBatch to two topics;
#		keys, null keys and values, empty values, headers (a repeated key,
#		bytes), explicit timestamps; the offsets in the RecordMetadata that
#		send returns are the records' offsets in pgq_fetch; kafkajs's
#		default partitioner (Java's murmur2) puts a keyed record on the
#		partition pgq_send picks for that key;
#	  - a group consumer with autoCommit false that commitOffsets each
#		record: it reads every record as sent, its commits show in
#		pgq_consumer_lag, and its next run reads only the records sent since;
#	  - the admin client: listTopics, fetchTopicMetadata, fetchTopicOffsets
#		(by time too), fetchOffsets of a group, listGroups, describeGroups
#		and describeCluster give what SQL shows;
#	  - a partition whose tail was rolled back: a consumer moves past the
#		gap (the gateway answers a gap alone with a control batch) and its
#		auto-commit reaches the high watermark, without fetching in a busy
#		loop (it did with an empty batch);
#	  - two consumers of one group share the partitions: every record once;
#	  - an idempotent producer whose Produce response is lost (a proxy
#		drops the connection instead): kafkajs retries the batch with the
#		same sequence, and each record is appended once.

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use GatewayTap;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('gw_kafkajs');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pgqueue'");
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pgqueue;
	SELECT pgq_create_topic('orders', 3);
	SELECT pgq_create_topic('events', 1);
	SELECT pgq_create_topic('keys', 3);
});
my $client = "$FindBin::RealBin/../clients/gw_kafkajs.js";
my $gw = gateway_start($node);

# Runs the client: (exit code, stdout); its "ok"/"not ok" lines are tests.
sub kafkajs
{
	my ($bootstrap, $what, @args) = @_;
	my ($rc, $out, $err) = GatewayTap::run_bounded([ 'node', $client, $bootstrap, @args ]);
	client_checks($what, $out);
	ok($rc == 0 && $out =~ /^done$/m, "$what: the client ran to its end")
	  or diag("exit code $rc\n$out\n$err");
	return $out;
}

sub client_checks
{
	my ($what, $out) = @_;
	foreach my $line (split /\n/, $out)
	{
		ok(!defined $1, "$what: $2") if $line =~ /^(not )?ok (.*)$/;
	}
}

# The lines "record ..." of an output, sorted.
sub records_of
{
	my ($out, $filter) = @_;
	$filter //= qr/./;
	return join("\n", sort grep { /$filter/ } $out =~ /^(record .*)$/mg);
}

# What SQL reads of the given topics, in the client's format, sorted as
# records_of sorts.
sub sql_records
{
	my ($topics, $where) = @_;
	$where //= 'true';
	my $out = $node->safe_psql('postgres', qq{
		SELECT format('record %s %s %s %s %s %s %s', f.topic, f.partition, f.msg_offset,
		         CASE WHEN f.key IS NULL THEN '-' WHEN f.key = '' THEN '~' ELSE encode(f.key, 'hex') END,
		         CASE WHEN f.value IS NULL THEN '-' WHEN f.value = '' THEN '~' ELSE encode(f.value, 'hex') END,
		         floor(extract(epoch FROM f.timestamp) * 1000)::bigint,
		         coalesce((SELECT string_agg(h.key || '=' || encode(h.value, 'hex'), ';' ORDER BY h.n)
		                     FROM pgq_headers_list(f.headers) WITH ORDINALITY h(key, value, n)), '-'))
		  FROM pgq_partitions p, LATERAL pgq_fetch(p.topic, p.partition, 0, 100000) f
		 WHERE p.topic IN ($topics) AND $where});
	return join("\n", sort split /\n/, $out);
}

sub lag_of
{
	my ($group) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT string_agg(partition || ':' || coalesce(committed_offset::text, '-') || '/' || high_watermark,
		                  ' ' ORDER BY partition)
		  FROM pgq_consumer_lag WHERE group_id = '$group' AND topic = 'orders'});
}

sub hwm_of
{
	my ($topic) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT string_agg(partition || ':' || high_watermark || '/' || high_watermark, ' ' ORDER BY partition)
		  FROM pgq_partitions WHERE topic = '$topic'});
}

# --- producers ---------------------------------------------------------------
my $out = kafkajs($gw->{bootstrap}, 'producers', 'produce');
my $sent = records_of($out);
is(scalar(() = $sent =~ /^record orders /mg), 27, 'kafkajs sent 27 records to orders');
is(scalar(() = $sent =~ /^record events /mg), 2, 'and 2 to events');
is($sent, sql_records(q{'orders', 'events'}),
	'pgq_fetch reads every record as sent (key, value, timestamp, headers), at the offset its RecordMetadata gave');
my @keyed = $out =~ /^keyed (\S+) (\d+)$/mg;
my @mismatch;
while (my ($key, $partition) = splice(@keyed, 0, 2))
{
	my $sql = $node->safe_psql('postgres',
		qq{SELECT partition FROM pgq_send('keys', 'x', key => decode('$key', 'hex'))});
	push @mismatch, "$key: kafkajs $partition, pgq_send $sql" if $sql ne $partition;
}
is(join(', ', @mismatch), '', "kafkajs's default partitioner puts each key where pgq_send does");

# --- a group consumer, commitOffsets --------------------------------------------
$out = kafkajs($gw->{bootstrap}, 'consumer', 'consume', 'g1', 27);
is(records_of($out), sql_records(q{'orders'}), 'a group consumer reads every record of orders as sent');
is(lag_of('g1'), hwm_of('orders'), 'its commitOffsets show in pgq_consumer_lag: it committed every partition to its end');
my $more = records_of(kafkajs($gw->{bootstrap}, 'producer of 5 more', 'more', 5));
$out = kafkajs($gw->{bootstrap}, 'consumer, second run', 'consume', 'g1', 5);
is(records_of($out), $more, 'its next run resumes after its commits: it reads only the 5 records sent since');
is(lag_of('g1'), hwm_of('orders'), 'and commits them');

# --- the admin client ------------------------------------------------------------
$out = kafkajs($gw->{bootstrap}, 'admin', 'admin', 'g1');
is(($out =~ /^topics (.*)$/m)[0],
	$node->safe_psql('postgres', q{SELECT string_agg(topic, ',' ORDER BY topic) FROM pgq_topics}),
	'listTopics lists the pgqueue topics');
like($out, qr/^metadata events 1 0\nmetadata orders 3 0,0,0$/m,
	'fetchTopicMetadata gives their partitions, led by the gateway');
is(($out =~ /^offsets orders (.*)$/m)[0],
	$node->safe_psql('postgres', q{
		SELECT string_agg(partition || ':' || log_start_offset || '-' || high_watermark, ' ' ORDER BY partition)
		  FROM pgq_partitions WHERE topic = 'orders'}),
	'fetchTopicOffsets gives the log start offsets and high watermarks of pgq_partitions');
is(($out =~ /^offsets-by-time orders (.*)$/m)[0],
	$node->safe_psql('postgres', q{
		SELECT string_agg(partition || ':' || msg_offset, ' ' ORDER BY partition)
		  FROM pgq_offsets_for_time('orders', to_timestamp(1700000001.010))}),
	'fetchTopicOffsetsByTimestamp gives the offsets of pgq_offsets_for_time');
is(($out =~ /^committed g1 orders (.*)$/m)[0],
	$node->safe_psql('postgres', q{
		SELECT string_agg(partition || ':' || msg_offset, ' ' ORDER BY partition)
		  FROM pgq_committed_offsets('g1', 'orders')}),
	"fetchOffsets gives the group's committed offsets");
like($out, qr/^group g1 consumer$/m, 'listGroups lists the group');
like($out, qr/^described g1 Empty 0$/m, 'describeGroups: without members, it is Empty');
like($out, qr/^cluster 0\@\Q$gw->{bootstrap}\E 0$/m, 'describeCluster: the gateway is the broker and controller');

# --- a rolled-back tail -----------------------------------------------------------
# offsets 0 and 2 hold records, 1 and 3-4 were rolled back
$node->safe_psql('postgres', q{
	SELECT pgq_create_topic('gappy', 1);
	SELECT pgq_send('gappy', 'a');
	BEGIN; SELECT pgq_send('gappy', 'rolled back'); ROLLBACK;
	SELECT pgq_send('gappy', 'b');
	BEGIN; SELECT pgq_send('gappy', 'rolled back'); SELECT pgq_send('gappy', 'rolled back'); ROLLBACK;
});
{
	local $ENV{TOPIC} = 'gappy';
	local $ENV{CLIENT_ID} = 'gap-reader';
	$out = kafkajs($gw->{bootstrap}, 'consumer at a rolled-back tail', 'consume', 'gq', 2, 'auto');
}
is(records_of($out), sql_records(q{'gappy'}), 'a consumer of a topic with gaps reads its records');
is( $node->safe_psql('postgres', q{
		SELECT committed_offset || '/' || high_watermark FROM pgq_consumer_lag WHERE group_id = 'gq'}),
	'5/5', 'it moved past the rolled-back tail: its auto-commit reached the high watermark');
my $requests = 0;
$requests += $_ for gateway_log($gw) =~ /client id "gap-reader", (\d+) requests/g;
cmp_ok($requests, '<', 100, 'without fetching in a busy loop at the gap (it idled 2 s)');

# --- two consumers share a group -----------------------------------------------
sub start_share
{
	my ($o, $e) = ('', '');
	my $h = IPC::Run::start([ 'node', $client, $gw->{bootstrap}, 'share', 'g2' ],
		'<', \undef, '>', \$o, '2>', \$e, IPC::Run::timeout(90));
	return { h => $h, out => \$o, err => \$e };
}

# the last assignment a consumer printed
sub assigned
{
	my ($c) = @_;
	$c->{h}->pump_nb;
	my @a = ${ $c->{out} } =~ /^assigned (.*)$/mg;
	return @a ? $a[-1] : undef;
}

my $ca = start_share();
my $ok = 0;
for (my $i = 0; $i < 600 && !$ok; $i++)
{
	$ok = (assigned($ca) // '') eq '0,1,2' && lag_of('g2') eq hwm_of('orders');
	usleep(100_000);
}
ok($ok, 'a first consumer of g2 gets every partition and reads them to the end');
my $cb = start_share();
$ok = 0;
for (my $i = 0; $i < 600 && !$ok; $i++)
{
	my ($a, $b) = (assigned($ca) // '', assigned($cb) // '');
	$ok = $a ne '' && $b ne '' && join(',', sort split(/,/, "$a,$b")) eq '0,1,2';
	usleep(100_000);
}
ok($ok, 'a second one joins: they share the partitions')
  or diag(${ $ca->{out} } . ${ $cb->{out} });
$node->safe_psql('postgres',
	q{SELECT count(*) FROM generate_series(0, 29) i, LATERAL pgq_send('orders', 'share-' || i, partition => i % 3)});
$ok = 0;
for (my $i = 0; $i < 600 && !$ok; $i++)
{
	$ok = lag_of('g2') eq hwm_of('orders');
	assigned($_) for $ca, $cb;
	usleep(100_000);
}
ok($ok, 'they read and commit 30 more records');
foreach my $c ($ca, $cb)
{
	$c->{h}->signal('TERM');
	eval { $c->{h}->finish };
	diag(${ $c->{err} }) if ${ $c->{out} } !~ /^done$/m;
}
client_checks('first consumer of g2', ${ $ca->{out} });
client_checks('second consumer of g2', ${ $cb->{out} });
my @both = (split(/\n/, records_of(${ $ca->{out} })), split(/\n/, records_of(${ $cb->{out} })));
is(join("\n", sort @both), sql_records(q{'orders'}), 'together they read every record of orders once');
ok(records_of(${ $cb->{out} }, qr/ 73686172652d/) ne '' && records_of(${ $ca->{out} }, qr/ 73686172652d/) ne '',
	'each read some of the 30');

# --- an idempotent producer's retry ---------------------------------------------
# a second gateway (any gateway serves any client: they keep no state)
# that advertises the client's proxy as its address
my $proxy_port = PostgreSQL::Test::Cluster::get_free_port();
my $gw2 = gateway_start($node, name => 'proxied gateway', args => [ '--advertise' => "127.0.0.1:$proxy_port" ]);
$out = kafkajs("127.0.0.1:$proxy_port", 'idempotent producer', 'idempotent', $proxy_port, $gw2->{port});
is(scalar(() = $out =~ /^record /mg), 15, 'it sent 15 records in 3 sends');
is(records_of($out), sql_records(q{'orders'}, q{encode(f.value, 'escape') LIKE 'idem-%'}),
	'each is appended once, at the offset its RecordMetadata gave, although a batch was sent twice');
gateway_stop($gw2);

gateway_stop($gw);
$node->stop;
done_testing();
