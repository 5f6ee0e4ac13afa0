# Copyright (c) pgqueue contributors
#
# 062_gateway_auth.pl
#	  pgqueue-kafka --sasl: Kafka clients authenticate as Postgres roles,
#	  with the roles' own passwords, and their requests have exactly that
#	  role's rights (docs/gateway.md, "Authentication and TLS"):
#	  - kcat and python3-confluent-kafka with SASL PLAIN and SCRAM-SHA-256
#		produce and consume (a group with manual commits) as alice;
#	  - a wrong password, an unknown role, a role not granted to the
#		gateway's role, and SCRAM for a role with an md5 password are
#		refused (SASL_AUTHENTICATION_FAILED; the log says why, never the
#		password), while PLAIN works for the md5 role;
#	  - alice cannot produce to a topic on which only the gateway's role
#		has rights (TOPIC_AUTHORIZATION_FAILED: her rights, not the
#		gateway's), until pgq_grant gives her the right; her consumer group
#		on it gets GROUP_AUTHORIZATION_FAILED;
#	  - malformed or unsupported SCRAM messages are refused;
#	  - parked Fetch requests of two roles, more than the waiting pool's
#		connections, each wait in their own role (alice's and bob's topics
#		readable only by them) and are woken by their records;
#	  - a request other than ApiVersions and the SASL ones before
#		authenticating closes the connection; ApiVersions advertises the
#		SASL APIs; SaslAuthenticate without SaslHandshake is refused;
#	  - the same over TLS (SASL_SSL, a self-signed certificate);
#	  - without --sasl the gateway refuses a non-loopback listen address,
#		and on loopback logs that clients are not authenticated.

use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use GatewayTap;
use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $node = PostgreSQL::Test::Cluster->new('gw_auth');
$node->init;
$node->append_conf('postgresql.conf', qq{shared_preload_libraries = 'pgqueue'
password_encryption = 'scram-sha-256'});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION pgqueue;
	CREATE ROLE kafka_gw LOGIN;
	GRANT EXECUTE ON FUNCTION pgq_gateway_auth(text) TO kafka_gw;
	CREATE ROLE alice LOGIN PASSWORD 'alice-secret';
	CREATE ROLE carol LOGIN PASSWORD 'carol-secret';
	SET password_encryption = 'md5';
	CREATE ROLE bob LOGIN PASSWORD 'bob-secret';
	RESET password_encryption;
	GRANT alice, bob TO kafka_gw;
	SELECT pgq_create_topic('orders', 2);
	SELECT pgq_create_topic('audit', 1);
	SELECT pgq_grant('orders', 'alice', 'all');
	SELECT pgq_grant('orders', 'bob', 'all');
	SELECT pgq_grant('orders', 'carol', 'all');
	-- the gateway's own role may write audit: alice may not
	SELECT pgq_grant('audit', 'kafka_gw', 'all');
});
my $conninfo = $node->connstr('postgres') . ' user=kafka_gw';
my $gw = gateway_start($node, conninfo => $conninfo, args => ['--sasl']);

# kcat as a user with a mechanism: (rc, out, err)
sub kcat_as
{
	my ($g, $mech, $user, $password, $args, %opt) = @_;
	return kcat(
		$g,
		[
			'-X', 'security.protocol=' . ($opt{protocol} // 'SASL_PLAINTEXT'),
			'-X', "sasl.mechanisms=$mech",
			'-X', "sasl.username=$user",
			'-X', "sasl.password=$password",
			@{ $opt{extra} // [] },
			@$args
		],
		%opt);
}

# --- kcat: PLAIN and SCRAM-SHA-256 ------------------------------------------------
my ($rc, $out, $err) = kcat_as($gw, 'PLAIN', 'alice', 'alice-secret',
	[ '-P', '-t', 'orders', '-p', '0' ], stdin => "plain-1\nplain-2\n");
is($rc, 0, 'kcat produces as alice with PLAIN') or diag($err);
($rc, $out, $err) = kcat_as($gw, 'SCRAM-SHA-256', 'alice', 'alice-secret',
	[ '-P', '-t', 'orders', '-p', '0' ], stdin => "scram-1\n");
is($rc, 0, 'kcat produces as alice with SCRAM-SHA-256') or diag($err);
($rc, $out, $err) = kcat_as($gw, 'SCRAM-SHA-256', 'alice', 'alice-secret',
	[ '-C', '-t', 'orders', '-p', '0', '-o', 'beginning', '-e', '-q' ]);
is($out, "plain-1\nplain-2\nscram-1\n", 'kcat consumes what alice produced, with SCRAM-SHA-256')
  or diag($err);
like(gateway_log($gw), qr/authenticated as "alice" with PLAIN/, 'the log names the role and PLAIN');
like(gateway_log($gw), qr/authenticated as "alice" with SCRAM-SHA-256/,
	'the log names the role and SCRAM-SHA-256');

# --- refusals ---------------------------------------------------------------------
my @refusals = (
	[ 'SCRAM-SHA-256', 'alice', 'wrong', qr/"alice" with SCRAM-SHA-256 failed: wrong password/,
		'a wrong SCRAM password' ],
	[ 'PLAIN', 'alice', 'wrong', qr/"alice" with PLAIN failed: wrong password/,
		'a wrong PLAIN password' ],
	[ 'PLAIN', 'nobody', 'x', qr/"nobody" with PLAIN failed: no such role/, 'an unknown role' ],
	[ 'SCRAM-SHA-256', 'nobody', 'x', qr/"nobody" with SCRAM-SHA-256 failed: no such role/,
		'an unknown role with SCRAM' ],
	[ 'SCRAM-SHA-256', 'carol', 'carol-secret', qr/"carol" with SCRAM-SHA-256 failed: no such role/,
		'a role not granted to the gateway\'s role' ],
	[ 'SCRAM-SHA-256', 'bob', 'bob-secret', qr/"bob" with SCRAM-SHA-256 failed: the role has an md5 password/,
		'SCRAM for a role with an md5 password' ],
);
for my $r (@refusals)
{
	my ($mech, $user, $password, $logged, $what) = @$r;
	($rc, $out, $err) = kcat_as($gw, $mech, $user, $password, [ '-L', '-m', '5' ], timeout => 30);
	isnt($rc, 0, "$what: kcat fails");
	like($err, qr/Authentication failed: invalid credentials/,
		"$what: the client is told SASL_AUTHENTICATION_FAILED");
	like(gateway_log($gw), $logged, "$what: the log says why");
}
unlike(gateway_log($gw), qr/-secret/,
	'no password is ever logged');
($rc, $out, $err) = kcat_as($gw, 'PLAIN', 'bob', 'bob-secret',
	[ '-P', '-t', 'orders', '-p', '1' ], stdin => "md5-1\n");
is($rc, 0, 'PLAIN works for a role with an md5 password') or diag($err);

# --- confluent-kafka: SCRAM, rights ---------------------------------------------
my $python_producer = q{
import os, sys
from confluent_kafka import Producer
mech, user, password, topic = sys.argv[1:5]
reports = []
p = Producer({'bootstrap.servers': os.environ['BOOTSTRAP'], 'security.protocol': 'SASL_PLAINTEXT',
              'sasl.mechanisms': mech, 'sasl.username': user, 'sasl.password': password,
              'message.send.max.retries': 0, 'message.timeout.ms': 10000,
              'error_cb': lambda e: reports.append('error:' + e.name())})
for i in range(3):
    p.produce(topic, value=b'py-%d' % i, partition=0,
              on_delivery=lambda err, msg: reports.append(err.name() if err else 'ok'))
p.flush(20)
print(' '.join(sorted(set(reports))))
};
($rc, $out, $err) = run_python($gw, $python_producer, args => [ 'SCRAM-SHA-256', 'alice', 'alice-secret', 'orders' ]);
is($out, "ok\n", 'confluent-kafka produces as alice with SCRAM-SHA-256') or diag($err);
($rc, $out, $err) = run_python($gw, $python_producer, args => [ 'SCRAM-SHA-256', 'alice', 'nope', 'orders' ]);
like($out, qr/error:_AUTHENTICATION/, 'confluent-kafka with a wrong password: an authentication error')
  or diag($err);
unlike($out, qr/\bok\b/, 'and nothing is delivered');
($rc, $out, $err) = run_python($gw, $python_producer, args => [ 'PLAIN', 'alice', 'alice-secret', 'audit' ]);
like($out, qr/^TOPIC_AUTHORIZATION_FAILED/,
	'alice may not produce to audit, although the gateway\'s role may: TOPIC_AUTHORIZATION_FAILED')
  or diag($err);
is($node->safe_psql('postgres', q{SELECT count(*) FROM pgq_fetch('audit', 0, 0)}), '0',
	'nothing was appended to audit');
$node->safe_psql('postgres', q{SELECT pgq_grant('audit', 'alice', 'produce')});
($rc, $out, $err) = run_python($gw, $python_producer, args => [ 'PLAIN', 'alice', 'alice-secret', 'audit' ]);
is($out, "ok\n", 'after pgq_grant, alice produces to audit') or diag($err);
is($node->safe_psql('postgres', q{SELECT count(*) FROM pgq_fetch('audit', 0, 0)}), '3',
	'her records are in audit');

($rc, $out, $err) = run_python($gw, q{
import os
from confluent_kafka import Consumer
c = Consumer({'bootstrap.servers': os.environ['BOOTSTRAP'], 'security.protocol': 'SASL_PLAINTEXT',
              'sasl.mechanisms': 'SCRAM-SHA-256', 'sasl.username': 'alice',
              'sasl.password': 'alice-secret', 'group.id': 'alice-group',
              'enable.auto.commit': False, 'auto.offset.reset': 'earliest'})
c.subscribe(['orders'])
seen = []
empty = 0
while len(seen) < 7 and empty < 40:
    m = c.poll(0.5)
    if m is None or m.error():
        empty += 1
        continue
    seen.append(m.value().decode())
    c.commit(message=m, asynchronous=False)
c.close()
print(' '.join(sorted(seen)))
}, timeout => 90);
is($out, "md5-1 plain-1 plain-2 py-0 py-1 py-2 scram-1\n",
	'a confluent-kafka consumer group as alice reads orders, committing by hand') or diag($err);
is( $node->safe_psql('postgres',
		q{SELECT sum(committed_offset) FROM pgq_consumer_lag WHERE group_id = 'alice-group'}),
	'7', 'its commits are pgqueue\'s');

# a group on a topic alice may write but not read: GROUP_AUTHORIZATION_FAILED
($rc, $out, $err) = run_python($gw, q{
import os
from confluent_kafka import Consumer
errors = set()
c = Consumer({'bootstrap.servers': os.environ['BOOTSTRAP'], 'security.protocol': 'SASL_PLAINTEXT',
              'sasl.mechanisms': 'PLAIN', 'sasl.username': 'alice', 'sasl.password': 'alice-secret',
              'group.id': 'audit-readers', 'error_cb': lambda e: errors.add(e.name())})
c.subscribe(['audit'])
for i in range(40):
    m = c.poll(0.5)
    if m is not None and m.error():
        errors.add(m.error().name())
    if errors:
        break
c.close()
print(' '.join(sorted(errors)))
}, timeout => 60);
is($out, "GROUP_AUTHORIZATION_FAILED\n",
	'a group of alice\'s on a topic she may not consume: GROUP_AUTHORIZATION_FAILED') or diag($err);

# --- the protocol before authentication -----------------------------------------
my $s = kafka_connect($gw);
my ($cid, $resp) = kafka_request($s, 18, 0, 1, '');
my %advertised;
if (defined $resp)
{
	my $n = unpack('l>', substr($resp, 2, 4));
	for my $i (0 .. $n - 1)
	{
		my ($key, $min, $max) = unpack('s> s> s>', substr($resp, 6 + 6 * $i, 6));
		$advertised{$key} = "$min-$max";
	}
}
is("$advertised{17} $advertised{36}", '0-1 0-2', 'ApiVersions advertises SaslHandshake and SaslAuthenticate');
my @meta = kafka_request($s, 3, 1, 2, pack('l>', -1));
is(scalar(@meta), 0, 'a Metadata request before authenticating closes the connection');
like(gateway_log($gw), qr/Metadata request before authentication/, 'and the log says so');
$s = kafka_connect($gw);
($cid, $resp) = kafka_request($s, 36, 0, 3, pack('l>/a*', "\0alice\0alice-secret"));
is(unpack('s>', $resp // "\xff\xff"), 34, 'SaslAuthenticate without SaslHandshake: ILLEGAL_SASL_STATE');
my @after = kafka_read_response($s, 5);
is(scalar(@after), 0, 'and the connection closes');
$s = kafka_connect($gw);
($cid, $resp) = kafka_request($s, 17, 1, 4, pack('s>/a*', 'GSSAPI'));
is(unpack('s>', $resp // "\xff\xff"), 33, 'an unknown mechanism: UNSUPPORTED_SASL_MECHANISM');
like($resp // '', qr/PLAIN.*SCRAM-SHA-256/s, 'with the mechanisms we have');

# SCRAM client-first-messages that are refused (SASL_AUTHENTICATION_FAILED, then close)
for my $bad (
	[ 'p=tls-unique,,n=alice,r=abcdef', 'channel binding' ],
	[ 'n,a=bob,n=alice,r=abcdef', 'an authorization identity that is not the user' ],
	[ 'n,,m=x,n=alice,r=abcdef', 'a mandatory extension' ],
	[ 'n,,n=alice,r=abcdef,tokenauth=true', 'a delegation token' ],
	[ 'n,,n=al=ice,r=abcdef', 'a malformed user name' ],
	[ 'n,,n=' . ('a' x 64) . ',r=abcdef', 'a user name longer than a role name' ],
	[ "n,,n=alice\0,r=abcdef", 'a NUL byte' ])
{
	my ($msg, $what) = @$bad;
	$s = kafka_connect($gw);
	($cid, $resp) = kafka_request($s, 17, 1, 5, pack('s>/a*', 'SCRAM-SHA-256'));
	($cid, $resp) = kafka_request($s, 36, 1, 6, pack('l>/a*', $msg));
	is(unpack('s>', $resp // "\xff\xff"), 58, "SCRAM with $what: SASL_AUTHENTICATION_FAILED");
	my @closed = kafka_read_response($s, 5);
	is(scalar(@closed), 0, "SCRAM with $what: the connection closes");
}

# --- long polls of two roles --------------------------------------------------
# Two consumers of alice and two of bob, each at the end of a topic only its
# role may read, on a waiting pool of two connections: requests of one role
# share a wait, which runs in that role (one over both roles' topics would
# fail on the other's topics, "permission denied" in the server log, and
# wake its requests with nothing)
$node->safe_psql('postgres', q{
	SELECT pgq_create_topic(t, 1) FROM unnest(ARRAY['lp_a1', 'lp_a2', 'lp_b1', 'lp_b2']) t;
	SELECT pgq_grant('lp_a1', 'alice', 'all'), pgq_grant('lp_a2', 'alice', 'all'),
	       pgq_grant('lp_b1', 'bob', 'all'), pgq_grant('lp_b2', 'bob', 'all');
});
my $log_from = -s $node->logfile;
my %lp;
sub lp_start
{
	my ($t) = @_;
	my ($user, $password) = $t =~ /_a/ ? ('alice', 'alice-secret') : ('bob', 'bob-secret');
	$lp{$t} = tail_start($gw, $t, '-X', 'security.protocol=SASL_PLAINTEXT',
		'-X', 'sasl.mechanisms=PLAIN', '-X', "sasl.username=$user", '-X', "sasl.password=$password");
	return;
}

# alice's two first: each gets a connection's wait of her role; then bob's
# need one of those connections
lp_start($_) for 'lp_a1', 'lp_a2';
is(join(' ', tails_warm($node, \%lp, 'lp_a1', 'lp_a2')), '', 'alice\'s consumers read their topics');
sleep 1;
lp_start($_) for 'lp_b1', 'lp_b2';
is(join(' ', tails_warm($node, \%lp, 'lp_b1', 'lp_b2')), '', 'and then bob\'s');
sleep 1;
for my $t ('lp_b2', 'lp_a1')
{
	my $sent = time();
	$node->safe_psql('postgres', "SELECT pgq_send('$t', 'wake')");
	my %took = tails_read(\%lp, 'wake', $sent, 15, $t);
	ok(defined $took{$t} && $took{$t} < 1.0,
		sprintf('the parked consumer of %s reads its record at once (%.0f ms)', $t, ($took{$t} // 99) * 1000));
	select(undef, undef, undef, 0.3);
}
tails_stop(\%lp);
my $lp_log = substr(slurp_file($node->logfile), $log_from);
unlike($lp_log, qr/permission denied for topic "lp_/, 'no wait failed (each ran in its own role)');
my $cancels = () = $lp_log =~ /pg_cancel_backend/g;
cmp_ok($cancels, '<', 50, "the waits settled: $cancels cancelled to make room, not one after another");
# their last requests wait out their 10 s: let them end before the shutdown
wait_unparked($node);
gateway_stop($gw);

# --- TLS --------------------------------------------------------------------------
my $dir = PostgreSQL::Test::Utils::tempdir('tls');
my ($ossl_out, $ossl_err);
IPC::Run::run(
	[
		'openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
		'-keyout', "$dir/key.pem", '-out', "$dir/cert.pem", '-subj', '/CN=127.0.0.1',
		'-addext', 'subjectAltName=IP:127.0.0.1'
	],
	'>', \$ossl_out, '2>', \$ossl_err) or die "openssl req: $ossl_err";
my $tls = gateway_start($node, name => 'tls_gateway', conninfo => $conninfo,
	args => [ '--sasl', '--tls-cert', "$dir/cert.pem", '--tls-key', "$dir/key.pem" ]);
my @tls = (protocol => 'SASL_SSL', extra => [ '-X', "ssl.ca.location=$dir/cert.pem" ]);
($rc, $out, $err) = kcat_as($tls, 'SCRAM-SHA-256', 'alice', 'alice-secret',
	[ '-P', '-t', 'orders', '-p', '1' ], stdin => "tls-1\n", @tls);
is($rc, 0, 'kcat produces over SASL_SSL with SCRAM-SHA-256') or diag($err);
($rc, $out, $err) = kcat_as($tls, 'PLAIN', 'alice', 'alice-secret',
	[ '-C', '-t', 'orders', '-p', '1', '-o', 'beginning', '-e', '-q' ], @tls);
is($out, "md5-1\ntls-1\n", 'and consumes over SASL_SSL with PLAIN') or diag($err);
($rc, $out, $err) = kcat_as($tls, 'PLAIN', 'alice', 'wrong', [ '-L', '-m', '5' ], @tls, timeout => 30);
like($err, qr/Authentication failed: invalid credentials/, 'a wrong password over TLS is refused');
($rc, $out, $err) = kcat_as($tls, 'PLAIN', 'alice', 'alice-secret', [ '-L', '-m', '5' ],
	timeout => 30);
isnt($rc, 0, 'a client without TLS cannot talk to the TLS listener');
like(gateway_log($tls), qr/listening on 127\.0\.0\.1:\d+ \(TLS\)/, 'the TLS gateway says it speaks TLS');
gateway_stop($tls);

# --- the loopback rule ------------------------------------------------------------
my $port = PostgreSQL::Test::Cluster::get_free_port();
my ($gout, $gerr) = ('', '');
IPC::Run::run([ GatewayTap::gateway_binary(), '--listen', "0.0.0.0:$port", '--conninfo', $conninfo ],
	'<', \undef, '>', \$gout, '2>', \$gerr, IPC::Run::timeout(30));
is($? >> 8, 1, 'without --sasl, a non-loopback listen address: exit 1');
like($gerr, qr/refusing to listen on 0\.0\.0\.0 without --sasl/, 'with a clear message');
my $open = gateway_start($node, name => 'open_gateway', conninfo => $conninfo);
like(gateway_log($open), qr/clients are not authenticated/, 'on loopback, it logs that clients are not authenticated');
($rc, $out, $err) = kcat($open, [ '-L', '-t', 'orders' ]);
like($out, qr/topic "orders" with 2 partitions/, 'and serves them without SASL');
gateway_stop($open);

done_testing();
