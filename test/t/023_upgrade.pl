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
		'postgres', q{
	SELECT count(*) FROM pg_proc
	 WHERE proname IN ('pgq_fetch_partitions', 'pgq_wait') AND obj_description(oid, 'pg_proc') IS NOT NULL}),
	'2', 'the update adds pgq_fetch_partitions and pgq_wait, with comments');

ok( $new->poll_query_until(
		'postgres', q{SELECT count(*) > 0 FROM pg_stat_activity WHERE backend_type = 'pgqueue worker'}),
	'the worker runs after the update');

$new->stop;
done_testing();
