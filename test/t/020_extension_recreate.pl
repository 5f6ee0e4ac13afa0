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
#	  statement_timeout makes a regression fail fast instead of hanging.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

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
done_testing();
