# Copyright (c) pgqueue contributors
#
# 033_drivers.pl
#	  The natural calls of typed drivers resolve without casts and store the
#	  bytes the client meant.  Two client programs (test/clients/) send every
#	  kind of key and value their driver has through pgq_send and
#	  pgq_send_batch, with no cast in the SQL, and read each record back
#	  with pgq_fetch: psycopg 3 (str untyped; bytes as bytea; lists of str
#	  untyped; lists of bytes as bytea[]; Jsonb, Json) and node-postgres
#	  (every parameter untyped: a string as text, a Buffer in binary format,
#	  an array as one text literal with Buffers written \\x<hex>, an object
#	  as its JSON.stringify).  A string that reads \x41 must stay text, a
#	  Buffer of 0xff bytes must stay those bytes, and a text key must land
#	  on the partition of the same bytes as a bytea key.
#
#	  Each program prints "ok <what>" or "not ok <what>: ..." per check and
#	  "done" at the end; every line is a test here.  The drivers come from
#	  scripts/lib.sh: Debian's python3-psycopg, and pg from npm in the
#	  project's node_modules (package.json).

use strict;
use warnings;

use IPC::Run qw(run timeout);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('drivers');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pgqueue'\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pgqueue');

local $ENV{PGHOST} = $node->host;
local $ENV{PGPORT} = $node->port;
local $ENV{PGDATABASE} = 'postgres';

# Debian's psycopg is for the system's Python, whatever python3 PATH finds
foreach my $client (['psycopg', '/usr/bin/python3', 'test/clients/psycopg_send.py'],
	['node-postgres', 'node', 'test/clients/pg_send.js'])
{
	my ($name, @cmd) = @$client;
	my ($out, $err) = ('', '');
	my $ran = eval { run(\@cmd, '>', \$out, '2>', \$err, timeout(120)) };
	my $checks = 0;
	foreach my $line (split /\n/, $out)
	{
		next unless $line =~ /^(not )?ok (.*)$/;
		ok(!defined $1, "$name: $2");
		$checks++;
	}
	ok($ran && $out =~ /^done$/m, "$name: the client ran to the end")
	  or diag("$name exited with $?: $@\n$err");
	cmp_ok($checks, '>=', 20, "$name: the client made its checks");
}

$node->stop;
done_testing();
