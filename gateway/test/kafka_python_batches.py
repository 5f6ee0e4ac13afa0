#!/usr/bin/python3
# Copyright (c) pgqueue contributors
#
# kafka_python_batches.py DIR
#	  Reads the Fetch batches test_records --dump wrote to DIR (NAME.bin)
#	  with python3-kafka's own RecordBatch reader, an independent client
#	  implementation, and compares what it reads with NAME.expect: each
#	  batch's base and last offset (where a client moves on to), its CRC,
#	  and each record's offset, timestamp, key, value and headers.
#
# kafka_python_batches.py --produce DIR TEST_RECORDS
#	  The other way: builds Produce batches with python3-kafka's
#	  RecordBatch builder (uncompressed and gzip, the codecs it has without
#	  optional modules; one idempotent) and checks that records_decode
#	  (TEST_RECORDS --decode) reads exactly what was built.
#
# Prints "ok NAME" or "not ok NAME: why" per batch; exits 1 on a mismatch.

import glob
import os
import subprocess
import sys

from kafka.record.default_records import DefaultRecordBatchBuilder
from kafka.record.memory_records import MemoryRecords


def hexed(b):
    return 'null' if b is None else 'x' + bytes(b).hex()


def read(path):
    lines = []
    records = MemoryRecords(open(path, 'rb').read())
    while records.has_next():
        batch = records.next_batch()
        if not batch.validate_crc():
            raise ValueError('CRC does not match at base offset %d' % batch.base_offset)
        rows = []
        for r in batch:
            rows.append(record_line(r.offset, r.timestamp, r.key, r.value, r.headers))
        lines.append('batch %d %d %d' % (batch.base_offset,
                                         batch.base_offset + batch.last_offset_delta,
                                         len(rows)))
        lines.extend(rows)
    if records.valid_bytes() != records.size_in_bytes():
        raise ValueError('bytes left after the last batch')
    return lines


def record_line(offset, timestamp, key, value, headers):
    hs = ','.join('%s=%s' % (hexed(k.encode('utf-8')), hexed(v)) for k, v in headers) or '-'
    return '%d %d %s %s %s' % (offset, timestamp, hexed(key), hexed(value), hs)


def produce(dir, test_records):
    failed = 0
    records = []
    for i in range(30):
        key = None if i % 7 == 1 else ('key-%d' % i).encode()
        value = None if i % 7 == 2 else (b'' if i % 7 == 3 else ('value %d ' % i).encode() * 8)
        headers = [] if i % 3 else [('trace', b'abc'), ('trace', None), ('h\u00e9', b'\x00\x01')]
        records.append((i, 1700000000000 + 13 * i, key, value, headers))
    cases = [('none', 0, -1, -1, -1), ('gzip', 1, -1, -1, -1), ('idempotent', 1, 42, 3, 17)]
    for name, codec, pid, epoch, seq in cases:
        builder = DefaultRecordBatchBuilder(magic=2, compression_type=codec, is_transactional=False,
                                            producer_id=pid, producer_epoch=epoch,
                                            base_sequence=seq, batch_size=1 << 20)
        for r in records:
            builder.append(*r)
        path = os.path.join(dir, 'produce_%s.bin' % name)
        with open(path, 'wb') as f:
            f.write(bytes(builder.build()))
        want = ['batch 0 %d %d' % (len(records) - 1, len(records))]
        if pid >= 0:
            want.append('producer %d %d %d' % (pid, epoch, seq))
        want += [record_line(*r) for r in records]
        out = subprocess.run([test_records, '--decode', path], capture_output=True, text=True,
                             timeout=60)
        got = out.stdout.splitlines()
        if got == want and out.returncode == 0:
            print('ok produce_%s' % name)
        else:
            failed += 1
            print('not ok produce_%s:\n  got:  %s\n  want: %s' % (name, '\n        '.join(got),
                                                                 '\n        '.join(want)))
    return 1 if failed else 0


def main():
    if sys.argv[1] == '--produce':
        return produce(sys.argv[2], sys.argv[3])
    failed = 0
    paths = sorted(glob.glob(os.path.join(sys.argv[1], '*.bin')))
    if not paths:
        print('not ok: no batches in %s' % sys.argv[1])
        return 1
    for path in paths:
        name = os.path.basename(path)[:-4]
        want = open(path[:-4] + '.expect').read().splitlines()
        try:
            got = read(path)
        except Exception as e:     # a decoding error is a failure to report
            got = ['error: %r' % e]
        if got == want:
            print('ok %s' % name)
        else:
            failed += 1
            print('not ok %s:\n  got:  %s\n  want: %s' % (name, '\n        '.join(got),
                                                         '\n        '.join(want)))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
