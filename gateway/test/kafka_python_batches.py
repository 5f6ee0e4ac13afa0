#!/usr/bin/python3
# Copyright (c) pgqueue contributors
#
# kafka_python_batches.py DIR
#	  Reads the Fetch batches test_records --dump wrote to DIR (NAME.bin)
#	  with python3-kafka's own RecordBatch reader, an independent client
#	  implementation, and compares what it reads with NAME.expect: each
#	  batch's base and last offset (where a client moves on to), its CRC,
#	  and each record's offset, timestamp, key, value and headers.
#	  Prints "ok NAME" or "not ok NAME: why" per file; exits 1 on a mismatch.

import glob
import os
import sys

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
            headers = ','.join('%s=%s' % (hexed(k.encode('utf-8')), hexed(v))
                               for k, v in r.headers) or '-'
            rows.append('%d %d %s %s %s' % (r.offset, r.timestamp, hexed(r.key),
                                            hexed(r.value), headers))
        lines.append('batch %d %d %d' % (batch.base_offset,
                                         batch.base_offset + batch.last_offset_delta,
                                         len(rows)))
        lines.extend(rows)
    if records.valid_bytes() != records.size_in_bytes():
        raise ValueError('bytes left after the last batch')
    return lines


def main():
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
