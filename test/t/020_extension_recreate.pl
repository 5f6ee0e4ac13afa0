# Copyright (c) pgqueue contributors
#
# 020_extension_recreate.pl
#	  DROP EXTENSION and CREATE EXTENSION start afresh without a restart: a
#	  topic created afterwards gets the topic_id of a dead one (topic_id_seq
#	  restarts), and so the key of its shared partition state
#	  (partition_state.c).  It must not inherit that state: its offsets start
#	  at 0, pgq_partitions shows it empty, sending does not spin, and the
#	  dead topic's stable hint does not let a reader skip a pending record;
#	  the dead topic's group members do not hold the new topic's partitions.
#
#	  The same on a hot standby, which does not run the install script but
#	  only replays its WAL, and on a standby promoted afterwards: a standby
#	  that read 50 records of topic "old" (so its stable hint for that key is
#	  50) must not let a reader of the new topic "new", which has the same
#	  topic_id, skip its pending record at offset 1 (committed 0 and 2): the
#	  stable hint of the old incarnation is not trusted for the new one.
#	  statement_timeout makes a regression fail fast instead of hanging.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use PgqueueTap;

my $node = PostgreSQL::Test::Cluster->new('recreate');
$node->init;
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'pgqueue'\nmax_prepared_transactions = 2\n"
	  . "statement_timeout = '10s'\n");
$node->start;

# the old incarnation: 50 records in each of two partitions, all read (so
# the stable hints are at 50 too)
$node->safe_psql('postgres', q{
	CREATE EXTENSION pgqueue;
	SELECT pgq_create_topic('x', 2);
	SELECT count(*) FROM generate_series(1, 50) g, pgq_send('x', 'old' || g, partition => 0);
	SELECT count(*) FROM generate_series(1, 50) g, pgq_send('x', 'old' || g, partition => 1);
	SELECT count(*) FROM pgq_fetch('x', 0, 0, 100);
	SELECT count(*) FROM pgq_fetch('x', 1, 0, 100);
	SELECT count(*) FROM pgq_poll('g', 'x', 1, 0, 'old-member');
});
is($node->safe_psql('postgres', q{SELECT string_agg(high_watermark::text, ',' ORDER BY partition)
		FROM pgq_partitions}), '50,50', 'the old topic has 50 records per partition');
my $old_id = $node->safe_psql('postgres', q{SELECT topic_id FROM pgqueue.topic});

$node->safe_psql('postgres', q{
	DROP EXTENSION pgqueue;
	CREATE EXTENSION pgqueue;
	SELECT pgq_create_topic('x', 2);
});
is($node->safe_psql('postgres', q{SELECT topic_id FROM pgqueue.topic}), $old_id,
	'the new topic has the old topic_id');

is($node->safe_psql('postgres', q{SELECT string_agg(format('%s:%s/%s/%s', partition, high_watermark,
		last_stable_offset, messages), ',' ORDER BY partition) FROM pgq_partitions}),
	'0:0/0/0,1:0/0/0', 'pgq_partitions shows the new topic empty');

my ($ret, $out, $err) = $node->psql('postgres',
	q{SELECT string_agg(format('%s:%s', partition, msg_offset), ',')
		FROM (SELECT * FROM pgq_send('x', 'a', partition => 0)
		UNION ALL SELECT * FROM pgq_send('x', 'b', partition => 0)) s});
is($ret, 0, 'sending to the new topic succeeds') or diag($err);
is($out, '0:0,0:1', 'its offsets start at 0');

# partition 1: a prepared (pending) record at offset 0, a committed one at
# offset 1; a reader must stop before offset 0, whatever the dead topic's
# stable hint said
$node->safe_psql('postgres', q{
	BEGIN;
	SELECT pgq_send('x', 'pending', partition => 1);
	PREPARE TRANSACTION 'p';
});
is($node->safe_psql('postgres', q{SELECT msg_offset FROM pgq_send('x', 'later', partition => 1)}),
	'1', 'a committed send after the prepared one gets offset 1');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pgq_fetch('x', 1, 0, 100)}), '0',
	'a reader does not skip the pending record at offset 0');
$node->safe_psql('postgres', q{COMMIT PREPARED 'p'});
is($node->safe_psql('postgres', q{SELECT string_agg(convert_from(value, 'UTF8'), ',' ORDER BY msg_offset)
		FROM pgq_fetch('x', 1, 0, 100)}), 'pending,later', 'after the commit it reads both');
is($node->safe_psql('postgres', q{SELECT string_agg(format('%s:%s/%s', partition, high_watermark,
		last_stable_offset), ',' ORDER BY partition) FROM pgq_partitions}),
	'0:2/2,1:2/2', 'pgq_partitions counts only the new records');

# the old topic's member (its lease has 45 s to run) is not in the new
# topic's group: a new member gets every partition at once
is($node->safe_psql('postgres', q{SELECT count(*) FROM pgq_poll('g', 'x', 100, 0, 'new-member')}),
	'4', 'a new member reads every partition of the new topic');
is($node->safe_psql('postgres', q{SELECT string_agg(member_id || ':' || partitions::text, ',') FROM pgq_members}),
	'new-member:{0,1}', 'the old member is gone');

$node->stop;

###########################################################################
# The same on a hot standby, and on a standby promoted afterwards
###########################################################################

my $primary = PostgreSQL::Test::Cluster->new('recreate_primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf',
	"shared_preload_libraries = 'pgqueue'\nstatement_timeout = '10s'\n");
$primary->start;
$primary->safe_psql('postgres', q{
	CREATE EXTENSION pgqueue;
	SELECT pgq_create_topic('old');
	SELECT count(*) FROM generate_series(1, 50) g, pgq_send('old', 'old' || g, partition => 0);
});
$primary->backup('recreate_backup');

# two standbys: the first reads the new topic while still a standby, the
# second only once promoted (so it meets the old incarnation's entry then)
my @standbys;
for my $name ('recreate_standby', 'recreate_standby2')
{
	my $s = PostgreSQL::Test::Cluster->new($name);
	$s->init_from_backup($primary, 'recreate_backup', has_streaming => 1);
	$s->start;
	push @standbys, $s;
}
my ($standby, $standby2) = @standbys;
for my $s (@standbys)
{
	$primary->wait_for_catchup($s);
	# the read moves the standby's stable hint of (topic_id, 0) to 50
	is($s->safe_psql('postgres', q{SELECT count(*) FROM pgq_fetch('old', 0, 0, 100)}), '50',
		$s->name . ': reads the 50 records of the old topic');
	is($s->safe_psql('postgres', q{SELECT last_stable_offset FROM pgq_partitions}), '50',
		$s->name . ': the old topic\'s last stable offset is 50');
}
my $old_topic_id = $primary->safe_psql('postgres', q{SELECT topic_id FROM pgqueue.topic});

$primary->safe_psql('postgres', q{
	DROP EXTENSION pgqueue;
	CREATE EXTENSION pgqueue;
	SELECT pgq_create_topic('new');
});
is($primary->safe_psql('postgres', q{SELECT topic_id FROM pgqueue.topic}), $old_topic_id,
	'the new topic has the old topic\'s topic_id');

# offset 0 committed, offset 1 held by an open transaction, offset 2 committed
is($primary->safe_psql('postgres', q{SELECT msg_offset FROM pgq_send('new', 'c0', partition => 0)}),
	'0', 'a committed send gets offset 0');
my $open = $primary->background_psql('postgres', timeout => 60);
$open->query_safe('BEGIN');
is($open->query_safe(q{SELECT msg_offset FROM pgq_send('new', 'open', partition => 0)}),
	'1', 'the open transaction\'s send gets offset 1');
is($primary->safe_psql('postgres', q{SELECT msg_offset FROM pgq_send('new', 'c2', partition => 0)}),
	'2', 'a committed send after it gets offset 2');
$primary->wait_for_catchup($_) for @standbys;

my $fetch_2 = q{SELECT msg_offset || '|' || convert_from(value, 'UTF8') FROM pgq_fetch('new', 0, 2)};
my $fetch_0 = q{SELECT msg_offset || '|' || convert_from(value, 'UTF8') FROM pgq_fetch('new', 0, 0)};
my $lso = q{SELECT format('%s/%s', high_watermark, last_stable_offset) FROM pgq_partitions};
for my $n ($primary, $standby)
{
	is($n->safe_psql('postgres', $fetch_2), '',
		$n->name . ': a fetch from offset 2 does not skip the pending record at offset 1');
	is($n->safe_psql('postgres', $fetch_0), '0|c0',
		$n->name . ': a fetch from offset 0 stops at the pending record');
	is($n->safe_psql('postgres', $lso), '3/1',
		$n->name . ': pgq_partitions shows last_stable_offset 1');
}

# Promote the second standby, which has not looked at the new topic yet:
# there the primary's open transaction never ends (offset 1 is a gap), and
# the promoted server assigns offsets from the replayed offset floor.  A
# send left open there and a committed one after it must hold readers back
# just the same, although both offsets are below the old topic's stable
# hint of 50 on this server.
$standby2->promote;
ok(wait_for($standby2, 'SELECT NOT pg_is_in_recovery()', 30), $standby2->name . ': promoted');
my $open2 = $standby2->background_psql('postgres', timeout => 60);
$open2->query_safe('BEGIN');
my $p = $open2->query_safe(q{SELECT msg_offset FROM pgq_send('new', 'open2', partition => 0)});
my $c = $standby2->safe_psql('postgres',
	q{SELECT msg_offset FROM pgq_send('new', 'c-after', partition => 0)});
ok($p >= 3 && $c > $p && $c < 50,
	"the promoted server's open send ($p) and committed send ($c) are above 2 and below 50");
is($standby2->safe_psql('postgres',
		"SELECT msg_offset FROM pgq_fetch('new', 0, $c)"), '',
	$standby2->name . ': after promotion a fetch does not skip the pending record');
is($standby2->safe_psql('postgres', q{SELECT last_stable_offset FROM pgq_partitions}), $p,
	$standby2->name . ': after promotion pgq_partitions shows the pending offset as last_stable_offset');
$open2->query_safe('COMMIT');
is($standby2->safe_psql('postgres',
		"SELECT string_agg(convert_from(value, 'UTF8'), ',' ORDER BY msg_offset) FROM pgq_fetch('new', 0, 0)"),
	'c0,c2,open2,c-after', $standby2->name . ': after the commit it reads every committed record');
$open2->quit;

$open->query_safe('COMMIT');
$primary->wait_for_catchup($standby);
is($standby->safe_psql('postgres',
		"SELECT string_agg(convert_from(value, 'UTF8'), ',' ORDER BY msg_offset) FROM pgq_fetch('new', 0, 0)"),
	'c0,open,c2', $standby->name . ': after the commit the standby reads all three records');
$open->quit;

$standby2->stop;
$standby->stop;
$primary->stop;
done_testing();
