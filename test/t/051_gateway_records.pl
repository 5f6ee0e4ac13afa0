# Copyright (c) pgqueue contributors
#
# 051_gateway_records.pl
#	  The gateway's RecordBatch v2 codec (gateway/records.c, compress.c,
#	  kbuf.c), built with AddressSanitizer and UBSan:
#	  - gateway/test/test_records: CRC-32C, kbuf's limits, round trips with
#		every codec, each refusal's Kafka error code, decompression bombs,
#		and the batches librdkafka sends with each codec (through a proxy
#		in front of librdkafka's mock cluster) decoded exactly;
#	  - the Fetch batches records_encode writes (gaps, a stretched last
#		offset, the empty batch) read by python3-kafka, an independent
#		client, exactly as meant; and the Produce batches python3-kafka
#		builds (uncompressed, gzip, idempotent) decoded exactly;
#	  - gateway/test/fuzz_records for PGQ_FUZZ_SECONDS (default 5): mutated
#		batches and bombs, no sanitizer report, memory bounded.
#	  No server is needed: these are the codec's own programs.

use strict;
use warnings;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run qw(run timeout);

my $dir = 'gateway/test';
my $fuzz_seconds = $ENV{PGQ_FUZZ_SECONDS} // 5;

# Runs a program that prints "ok N - what" / "not ok N - what" lines and
# turns each into a check of this test.  Returns its exit status.
sub run_checks
{
	my ($name, $cmd, $secs) = @_;
	my ($out, $err) = ('', '');
	my $ran = eval { run($cmd, '>', \$out, '2>', \$err, timeout($secs)) };
	my $checks = 0;
	foreach my $line (split /\n/, $out)
	{
		if ($line =~ /^(not )?ok (?:\d+ - )?(.*)$/)
		{
			ok(!defined $1, "$name: $2");
			$checks++;
		}
		elsif ($line =~ /^# (.*)$/)
		{
			note("$name: $1");
		}
	}
	ok($ran, "$name ran to the end without a failure or sanitizer report")
	  or diag("$name exited with " . ($? >> 8) . ": $@\n" . substr($err, 0, 4000));
	return $checks;
}

my ($out, $err) = ('', '');
ok(run([ 'make', '-s', '-C', $dir, 'test_records', 'fuzz_records' ], '>', \$out, '2>', \$err,
		timeout(300)),
	'the test programs build with ASan and UBSan')
  or BAIL_OUT("build failed: $err");

my $dump = PostgreSQL::Test::Utils::tempdir('batches');
cmp_ok(run_checks('test_records', [ "$dir/test_records", '--dump', $dump ], 300),
	'>=', 80, 'test_records made its checks');

cmp_ok(run_checks('python3-kafka', [ '/usr/bin/python3', "$dir/kafka_python_batches.py", $dump ], 60),
	'>=', 5, 'python3-kafka read every encoded batch');

my $produce = PostgreSQL::Test::Utils::tempdir('produce');
cmp_ok(
	run_checks(
		'python3-kafka batches',
		[
			'/usr/bin/python3', "$dir/kafka_python_batches.py",
			'--produce', $produce, "$dir/test_records"
		],
		60),
	'>=', 3,
	'records_decode read every batch python3-kafka built');

cmp_ok(run_checks('fuzz_records', [ "$dir/fuzz_records", $fuzz_seconds ], $fuzz_seconds + 120),
	'>=', 20, 'fuzz_records made its checks');

done_testing();
