# 002_preload_required.pl
#	  pgqueue keeps partition state in shared memory, so it must be loaded
#	  with shared_preload_libraries; anything else is refused with an error
#	  that says what to add to postgresql.conf.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('no_preload');
$node->init;
$node->start;

my ($ret, $stdout, $stderr) = $node->psql('postgres', 'CREATE EXTENSION pgqueue');
isnt($ret, 0, 'CREATE EXTENSION fails without shared_preload_libraries');
like($stderr, qr/pgqueue must be loaded via shared_preload_libraries/, 'the error says why');
like($stderr, qr/HINT:  Add pgqueue to shared_preload_libraries in postgresql.conf/, 'the hint says what to do');

($ret, $stdout, $stderr) = $node->psql('postgres', q{LOAD 'pgqueue'});
isnt($ret, 0, 'LOAD fails too');

$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pgqueue'");
$node->restart;
$node->safe_psql('postgres', 'CREATE EXTENSION pgqueue');
is($node->safe_psql('postgres', q{SELECT pgq_create_topic('t'); SELECT msg_offset FROM pgq_send('t', 'x')}),
	"\n0", 'with the library preloaded, the extension works');
is($node->safe_psql('postgres', q{SHOW pgqueue.max_partitions}), '8192', 'its GUC is defined');

$node->stop;
done_testing();
