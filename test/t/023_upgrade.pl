# 023_upgrade.pl
#	  The upgrade path from the last release: a server runs the library and
#	  SQL of pgqueue 0.1.0 (built from git history by scripts/test.sh, which
#	  passes its installation in PGQ_OLD_INSTALL) and holds topics, records,
#	  a group config and committed offsets.  Then the current library is
#	  installed and the server restarted on the same data directory: before
#	  ALTER EXTENSION pgqueue UPDATE the library refuses to work with the old
#	  objects (and changes nothing); after it every record, offset and
#	  committed offset is intact, and sending, polling and committing go on
#	  where they left off.  The update runs every update script from 0.1.0
#	  to the version this tree builds (pgqueue.control).
#
#	  Every later change to the SQL surface ships its update script and
#	  extends this test.
use strict;
use warnings;

use File::Copy qw(move);
use File::Path qw(rmtree);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $old_install = $ENV{PGQ_OLD_INSTALL};

# the version this tree builds: what ALTER EXTENSION pgqueue UPDATE goes to
my ($version) = slurp_file('pgqueue.control') =~ /^default_version = '([^']+)'/m
  or die 'no default_version in pgqueue.control';
BAIL_OUT('PGQ_OLD_INSTALL is not set: run the tests with scripts/test.sh, which builds release 0.1.0')
  unless defined $old_install && -x "$old_install/bin/postgres";

# --- the old release ---------------------------------------------------------
my $old = PostgreSQL::Test::Cluster->new('old', install_path => $old_install);
$old->init;
$old->append_conf('postgresql.conf', q{shared_preload_libraries = 'pgqueue'});
$old->start;
$old->safe_psql('postgres', 'CREATE EXTENSION pgqueue');
is($old->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'pgqueue'}),
	'0.1.0', 'the old server runs extension version 0.1.0');

$old->safe_psql('postgres', q{
	SELECT pgq_create_topic('orders', 3, '{"retention.ms": -1}');
	SELECT pgq_create_topic('events');
	SELECT count(*) FROM generate_series(1, 30) i,
	       LATERAL pgq_send('orders', 'order-' || i, 'customer-' || (i % 7),
	                        headers => jsonb_build_object('n', i::text));
	SELECT count(*) FROM pgq_send_batch('events', ARRAY['a', 'b', 'c', 'd', 'e']);
	BEGIN; SELECT count(*) FROM pgq_send('events', 'rolled back'); ROLLBACK;
	SELECT count(*) FROM pgq_send('events', 'after the gap');
	SELECT pgq_alter_group('billing', '{"enable.auto.commit": false}');
	SELECT count(*) FROM pgq_poll('billing', 'orders', 12, 0, 'w1');
	SELECT pgq_commit('billing', 'w1');
	SELECT count(*) FROM pgq_poll('audit', 'events', 2, 0, 'a1');
	SELECT pgq_commit('audit', 'events', 0, 2, 'a1');
	SELECT pgq_leave('billing', 'w1');
	SELECT pgq_leave('audit', 'a1');
});

# what must survive the upgrade
my %state_sql = (
	records => q{
		SELECT string_agg(format('%s/%s/%s/%s/%s/%s/%s', t.topic, f.partition, f.msg_offset,
		                         encode(f.key, 'escape'), encode(f.value, 'escape'), f.headers,
		                         f."timestamp"), E'\n' ORDER BY t.topic, f.partition, f.msg_offset)
		  FROM pgq_partitions t, LATERAL pgq_fetch(t.topic, t.partition, 0, 1000) f},
	log_starts => q{
		SELECT string_agg(format('%s/%s/%s', topic, partition, log_start_offset), ' '
		                  ORDER BY topic, partition)
		  FROM pgq_partitions},
	committed => q{
		SELECT string_agg(format('%s/%s/%s/%s', group_id, topic, partition, committed_offset),
		                  ' ' ORDER BY group_id, topic, partition)
		  FROM pgq_consumer_lag WHERE committed_offset IS NOT NULL},
	topics => q{SELECT string_agg(topic || '/' || partitions || '/' || config, ' ' ORDER BY topic) FROM pgq_topics},
	groups => q{SELECT string_agg(group_id || '/' || config, ' ' ORDER BY group_id) FROM pgq_groups},
);
my %before = map { $_ => $old->safe_psql('postgres', $state_sql{$_}) } keys %state_sql;
my $hwms_sql = q{SELECT string_agg(high_watermark::text, ' ' ORDER BY topic, partition) FROM pgq_partitions};
my @old_hwms = split / /, $old->safe_psql('postgres', $hwms_sql);
like($before{records}, qr{^events/0/6/}m, 'the old log has a gap where the rolled-back send was');
is(scalar(() = $before{records} =~ /\n/g) + 1, 36, 'the old server holds 36 records');
like($before{committed}, qr{audit/events/0/2 billing/orders/}, 'both groups committed offsets');
$old->stop;

# --- the current library, on the same data directory -------------------------
my $new = PostgreSQL::Test::Cluster->new('new');
$new->init;
rmtree($new->data_dir);
move($old->data_dir, $new->data_dir) or die "could not move the data directory: $!";
$new->append_conf('postgresql.conf', sprintf(q{
port = %d
unix_socket_directories = '%s'
pgqueue.maintenance_interval = 100
}, $new->port, $new->host));
$new->start;

# an operator that the update script's views would capture if they did not
# qualify theirs (pg_catalog has no oid = integer; see test/sql/view_operators.sql)
$new->safe_psql('postgres', q{
	CREATE FUNCTION public.oid_int_eq_captured(oid, integer) RETURNS boolean
	    LANGUAGE sql IMMUTABLE AS 'SELECT true';
	CREATE OPERATOR public.= (LEFTARG = oid, RIGHTARG = integer,
	                         FUNCTION = public.oid_int_eq_captured)});

my ($rc, $stdout, $stderr) = $new->psql('postgres', q{SELECT * FROM pgq_send('orders', 'too early')});
isnt($rc, 0, 'the new library refuses the 0.1.0 objects');
like($stderr, qr/pgqueue library version \Q$version\E cannot use the objects of extension version 0\.1\.0/,
	'the error names both versions');
like($stderr, qr/HINT:  Run ALTER EXTENSION pgqueue UPDATE\./, 'the error says what to run');
($rc, $stdout, $stderr) = $new->psql('postgres', q{SELECT count(*) FROM pgq_poll('billing', 'orders', 10, 0, 'w1')});
like($stderr, qr/Run ALTER EXTENSION pgqueue UPDATE/, 'polling is refused too');
ok($new->wait_for_log(qr/pgqueue worker skips database "postgres" until its extension is updated/),
	'the worker leaves the database alone until the update');

$new->safe_psql('postgres', 'ALTER EXTENSION pgqueue UPDATE');
is($new->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'pgqueue'}),
	$version, "the extension was updated to $version");

# (so the refused calls changed nothing either)
foreach my $what (sort keys %state_sql)
{
	is($new->safe_psql('postgres', $state_sql{$what}), $before{$what}, "the $what are intact");
}
my @new_hwms = split / /, $new->safe_psql('postgres', $hwms_sql);
ok(!grep({ $new_hwms[$_] < $old_hwms[$_] } 0 .. $#old_hwms),
	"no high watermark went back (@old_hwms before, @new_hwms after)");
($rc, $stdout, $stderr) = $new->psql('postgres', 'DROP OPERATOR public.= (oid, integer)');
is($rc, 0, 'the updated views do not use an operator of the search_path');

# 0.3.0's monitoring view: audit committed 2 of events/0, whose records 2-4
# and 6 it has not consumed (the lag counts offsets up to the last stable
# offset, which the restart moved on)
is( $new->safe_psql(
		'postgres', q{
	SELECT format('%s/%s/%s', committed_offset, first_unconsumed_offset,
	              lag = last_stable_offset - 2)
	  FROM pgq_lag WHERE group_id = 'audit'}),
	'2/2/t',
	'the update adds pgq_lag');
is( $new->safe_psql(
		'postgres', q{
	SELECT format('%s/%s', has_table_privilege('pg_monitor', 'pgq_lag', 'SELECT'),
	              has_table_privilege('public', 'pgq_lag', 'SELECT'))}),
	't/f',
	'which pg_monitor may read, and not everybody');

# 0.3.0's pgq_partitions counts the records, not the offsets: events/0's
# gaps (a rolled-back send, the offsets the restart skipped) do not count
is( $new->safe_psql(
		'postgres', q{
	SELECT format('%s/%s', p.messages = (SELECT count(*) FROM pgq_fetch('events', 0, p.log_start_offset, 1000)),
	              p.messages < p.last_stable_offset - p.log_start_offset)
	  FROM pgq_partitions p WHERE topic = 'events' AND partition = 0}),
	't/t',
	'after the update, messages counts the records, without the gaps');
like($new->safe_psql('postgres', q{SELECT obj_description('pgq_partitions'::regclass, 'pg_class')}),
	qr/records in the readable log/, 'and the view says so');

# sending, polling and committing go on where they left off
my $hwm = $new->safe_psql('postgres', q{SELECT high_watermark FROM pgq_partitions WHERE topic = 'events'});
is($new->safe_psql('postgres', q{SELECT msg_offset FROM pgq_send('events', 'new')}),
	$hwm, 'a send continues at the high watermark: no offset is reused');
is( $new->safe_psql(
		'postgres', q{
	SELECT string_agg(msg_offset::text, ',' ORDER BY msg_offset)
	  FROM pgq_poll('audit', 'events', 100, 0, 'a1')}),
	"2,3,4,6,$hwm",
	'a group resumes from its committed offset');
# (positions belong to the session: poll and commit in one)
my ($read) = split /\n/, $new->safe_psql('postgres', q{
	SELECT count(*) FROM pgq_poll('billing', 'orders', 100, 0, 'w1');
	SELECT pgq_commit('billing', 'w1')});
is($read, 30 - 12, 'the other group reads the rest of its topic');
is($new->safe_psql('postgres', q{SELECT sum(lag) FROM pgq_consumer_lag WHERE group_id = 'billing'}),
	'0', 'and commits the end of every partition: no lag is left');
# 0.3.0's overloads: untyped keys and values resolve as typed drivers send
# them (see docs/drivers.md), with no cast
$new->safe_psql('postgres', <<'SQL');
SELECT pgq_create_topic('natural');
SELECT * FROM pgq_send('natural', '\x41', '\x42');
SELECT * FROM pgq_send_batch('natural', '{"\\x41",\\xff00}');
SQL
is( $new->safe_psql(
		'postgres', q{
	SELECT string_agg(coalesce(encode(key, 'hex'), '-') || '/' || encode(value, 'hex'), ','
	                  ORDER BY msg_offset)
	  FROM pgq_fetch('natural', 0, 0)}),
	'5c783432/5c783431,-/5c783431,-/ff00',
	'after the update, untyped values and keys store text as text and unquoted \\x<hex> batch elements as bytes');
is( $new->safe_psql(
		'postgres', q{
	SELECT string_agg(proargtypes[1]::regtype::text, ',' ORDER BY proargtypes[1]::regtype::text)
	  FROM pg_proc WHERE proname IN ('pgq_send', 'pgq_send_batch')}),
	'jsonb,jsonb[],pgq_payload,pgq_payloads', 'the old overloads are replaced');

# 0.4.0's reads of many partitions and waits: the old records, with each
# partition's bounds (next_offset past the offsets the restart skipped)
is( $new->safe_psql(
		'postgres', q{
	SELECT format('%s/%s', count(f.msg_offset),
	              bool_and(f.msg_offset IS NOT NULL
	                       OR (f.next_offset = p.high_watermark AND f.last_stable_offset = p.high_watermark
	                           AND f.log_start_offset = p.log_start_offset AND f.error IS NULL)))
	  FROM pgq_fetch_partitions(ARRAY['orders'], ARRAY[0, 1, 2], ARRAY[0, 0, 0], max_records => 1000) f
	  JOIN pgq_partitions p ON p.topic = f.topic AND p.partition = f.partition}),
	'30/t',
	'after the update, pgq_fetch_partitions reads the old records and reports their bounds');
is( $new->safe_psql(
		'postgres', qq{
	SELECT string_agg(msg_offset::text, ',' ORDER BY msg_offset)
	  FROM pgq_fetch_partitions(ARRAY['events'], ARRAY[0], ARRAY[5]) WHERE msg_offset IS NOT NULL}),
	"6,$hwm",
	'and skips the old gap');
is( $new->safe_psql(
		'postgres', qq{
	SELECT string_agg(entry::text, ',') FROM pgq_wait(ARRAY['events'], ARRAY[0, 0], ARRAY[5, $hwm + 1])}),
	'1',
	'pgq_wait finds the entry a read would answer');
is( $new->safe_psql(
		'postgres', qq{
	SELECT string_agg(coalesce(msg_offset, -next_offset)::text, ',')
	  FROM pgq_fetch_partitions(ARRAY['events'], ARRAY[0, 0], ARRAY[$hwm, $hwm + 1], timeout_ms => 600000)}),
	"$hwm,-" . ($hwm + 1) . ",-" . ($hwm + 1),
	'a read that waits (timeout_ms) answers at once when a partition has a record');
is( $new->safe_psql(
		'postgres', q{
	SELECT count(*) FROM pg_proc
	 WHERE proname IN ('pgq_fetch_partitions', 'pgq_wait') AND obj_description(oid, 'pg_proc') IS NOT NULL}),
	'2', 'the update adds pgq_fetch_partitions and pgq_wait, with comments');

# 0.4.0's idempotent producers, on a segment made by 0.1.0: the update gave
# it the producer columns and index
my $idempotent_at = $hwm + 1;
is( $new->safe_psql(
		'postgres', q{
	SELECT producer_id AS pid FROM pgq_init_producer() \gset
	SELECT string_agg(msg_offset::text, ',')
	  FROM generate_series(1, 2),
	       LATERAL pgq_send('events', 'idempotent', partition => 0, producer_id => :pid,
	                        producer_epoch => 0, sequence => 0);
	SELECT count(*) FROM pgq_fetch('events', 0, 0) WHERE convert_from(value, 'UTF8') = 'idempotent'}),
	"$idempotent_at,$idempotent_at\n1",
	'after the update, an idempotent send to an old segment appends once, and its retry returns its offset');

# 0.4.0's send path: pgq_send_batch takes per-record timestamps and gives a
# partition's records consecutive offsets; headers take the list form, stored
# in the same column as the records sent before the update
my $next = $new->safe_psql('postgres', q{SELECT high_watermark FROM pgq_partitions WHERE topic = 'events'});
is( $new->safe_psql(
		'postgres', q{
	SELECT string_agg(msg_offset::text, ',' ORDER BY msg_offset)
	  FROM pgq_send_batch('events', ARRAY['t1', 't2', 't3'],
	                      timestamps => ARRAY['2001-02-03 04:05:06+00', NULL, '1999-01-01 00:00:00+00']::timestamptz[])}),
	join(',', $next, $next + 1, $next + 2),
	'after the update, a batch takes consecutive offsets from the high watermark');
is( $new->safe_psql(
		'postgres', qq{
	SET TIME ZONE 'UTC';
	SELECT string_agg(CASE WHEN "timestamp" > now() - interval '1 hour' THEN 'now' ELSE "timestamp"::text END,
	                  ',' ORDER BY msg_offset)
	  FROM pgq_fetch('events', 0, $next)}),
	'2001-02-03 04:05:06+00,now,1999-01-01 00:00:00+00',
	'and stores the timestamps given (now for a NULL one)');
my $listed = $new->safe_psql('postgres', q{
	SELECT msg_offset FROM pgq_send('orders', 'listed', partition => 0,
	                                headers => '[["n", "x"], ["n", null], ["b", {"base64": "AP8="}]]')});
is( $new->safe_psql(
		'postgres', qq{
	SELECT headers FROM pgq_fetch('orders', 0, $listed, 1)}),
	'[["n", "x"], ["n", null], ["b", {"base64": "AP8="}]]',
	'after the update, the list form of headers is stored and read back');
is( $new->safe_psql(
		'postgres', q{
	SELECT count(*) FILTER (WHERE pgq_headers_to_kafka(f.headers)
	                              = '\x02026e'::bytea || CASE WHEN length(f.headers ->> 'n') = 1 THEN '\x02'::bytea
	                                                          ELSE '\x04'::bytea END
	                                || convert_to(f.headers ->> 'n', 'UTF8')
	                          AND pgq_headers_from_kafka(pgq_headers_to_kafka(f.headers)) = f.headers)
	  FROM generate_series(0, 2) p, LATERAL pgq_fetch('orders', p, 0, 1000) f
	 WHERE f.headers ? 'n'}),
	'30',
	"records sent before the update map to Kafka's headers and back");
is( $new->safe_psql(
		'postgres', q{
	SELECT count(*) FROM pgq_partitions t, LATERAL pgq_fetch(t.topic, t.partition, 0, 1000) f,
	       LATERAL pgq_headers_list(f.headers) h
	 WHERE f.msg_offset < 1000 AND h.key = 'n' AND h.value = convert_to(f.headers ->> 'n', 'UTF8')}),
	'30', 'and pgq_headers_list reads their headers');
is( $new->safe_psql(
		'postgres', q{
	SELECT string_agg(p.oid::regprocedure::text || ':' || (obj_description(p.oid, 'pg_proc') IS NOT NULL)::text, ' '
	                  ORDER BY p.oid::regprocedure::text)
	  FROM pg_proc p WHERE proname LIKE 'pgq\_headers\_%' OR (proname = 'pgq_send_batch' AND pronargs = 9)}),
	'pgq_headers_from_kafka(bytea):true pgq_headers_list(jsonb):true pgq_headers_to_kafka(jsonb):true '
	  . 'pgq_send_batch(text,jsonb[],pgq_payloads,integer,jsonb[],timestamp with time zone[],bigint,integer,integer):true '
	  . 'pgq_send_batch(text,pgq_payloads,pgq_payloads,integer,jsonb[],timestamp with time zone[],bigint,integer,integer):true',
	'the update adds the header functions and the timestamps argument, with comments');
# 0.4.0's commit metadata: the update added the column, the old committed
# offsets read back with none, a commit stores one, and both lag views show
# it in their new last column (pgq_lag made again, still for pg_monitor only)
is( $new->safe_psql(
		'postgres', q{
	SELECT string_agg(format('%s/%s/%s', partition, msg_offset, coalesce(metadata, '-')), ' '
	                  ORDER BY partition)
	  FROM pgq_committed_offsets('audit', 'events')}),
	'0/2/-',
	'after the update, pgq_committed_offsets reads the old committed offsets');
$new->safe_psql('postgres', q{
	SELECT pgq_leave('audit', 'a1');
	SELECT partitions FROM pgq_sync_member('audit', 'events', 'k1', '{}', 10000);
	SELECT pgq_commit('audit', 'events', 0, 3, 'k1', 'kafka metadata');
	SELECT pgq_leave('audit', 'k1')});
is( $new->safe_psql(
		'postgres', q{
	SELECT format('%s/%s', l.metadata, c.metadata)
	  FROM pgq_lag l JOIN pgq_consumer_lag c USING (group_id, topic, partition)
	 WHERE group_id = 'audit'}),
	'kafka metadata/kafka metadata',
	'a commit with metadata after the update shows in both lag views');
is( $new->safe_psql(
		'postgres', q{
	SELECT string_agg(format('%s.%s:%s', a.attrelid::regclass, a.attnum, a.attname), ' '
	                  ORDER BY a.attrelid::regclass::text)
	  FROM pg_attribute a
	 WHERE a.attrelid IN ('pgq_lag'::regclass, 'pgq_consumer_lag'::regclass)
	   AND a.attnum = (SELECT max(b.attnum) FROM pg_attribute b WHERE b.attrelid = a.attrelid)}),
	'pgq_consumer_lag.8:metadata pgq_lag.14:metadata',
	'metadata is the last column of both views, after the columns they had');
is( $new->safe_psql(
		'postgres', q{
	SELECT format('%s/%s', has_table_privilege('pg_monitor', 'pgq_lag', 'SELECT'),
	              has_table_privilege('public', 'pgq_lag', 'SELECT'))}),
	't/f',
	'the remade pgq_lag is still for pg_monitor only');
# a non-member commit into a group with no live member is accepted
is($new->safe_psql('postgres', q{SELECT msg_offset FROM pgq_commit('fresh', 'orders', 0, 1, 'simple')}),
	'1', 'a commit by a non-member of an empty group is accepted');

# 0.4.0's pgq_sync_member: a syncing and a polling member share the old group
is( $new->safe_psql(
		'postgres', q{
	SELECT pgq_leave('billing', 'w1');
	SELECT partitions FROM pgq_sync_member('billing', 'orders', 'k1', '{}');
	SELECT count(*) FROM pgq_poll('billing', 'orders', 100, 0, 'w2');
	SELECT partitions FROM pgq_sync_member('billing', 'orders', 'k1', '{0,1}');
	SELECT count(*) FROM pgq_poll('billing', 'orders', 100, 0, 'w2');
	SELECT string_agg(member_id || ':' || partitions::text, ' ' ORDER BY member_id)
	  FROM pgq_members WHERE group_id = 'billing';
	SELECT pgq_leave('billing', 'k1');
	SELECT pgq_leave('billing', 'w2')}),
	"{0,1,2}
0
{0,1}
0
k1:{0,1} w2:{2}",
	'after the update, a syncing member gives up a partition to a polling one');
# 0.4.0's pgq_gateway_auth: added with its comment, EXECUTE revoked from
# PUBLIC, and it gives a granted role's verifier to a gateway role only
is( $new->safe_psql(
		'postgres', q{
	SELECT obj_description('pgq_gateway_auth(text)'::regprocedure, 'pg_proc') IS NOT NULL,
	       has_function_privilege('public', 'pgq_gateway_auth(text)', 'EXECUTE')}),
	't|f', 'the update adds pgq_gateway_auth, commented, not executable by PUBLIC');
is( $new->safe_psql(
		'postgres', q{
	CREATE ROLE upg_gateway LOGIN;
	CREATE ROLE upg_alice LOGIN PASSWORD 'secret';
	CREATE ROLE upg_bob LOGIN PASSWORD 'secret';
	GRANT upg_alice TO upg_gateway;
	GRANT EXECUTE ON FUNCTION pgq_gateway_auth(text) TO upg_gateway;
	SET SESSION AUTHORIZATION upg_gateway;
	SELECT pgq_gateway_auth('upg_alice') LIKE 'SCRAM-SHA-256$%', pgq_gateway_auth('upg_bob') IS NULL;
	RESET SESSION AUTHORIZATION;
	REVOKE EXECUTE ON FUNCTION pgq_gateway_auth(text) FROM upg_gateway;
	DROP ROLE upg_gateway, upg_alice, upg_bob}),
	't|t', 'after the update, pgq_gateway_auth gives only the granted role\'s verifier');
ok( $new->poll_query_until(
		'postgres', q{SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'pgqueue worker'}),
	'the worker runs after the update');

$new->stop;
done_testing();
