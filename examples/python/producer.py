#!/usr/bin/env python3
"""producer.py: send keyed records to a pgqueue topic with psycopg 3.

    producer.py --topic orders --count 1000 [--batch 100] [--keys 16]
                [--prefix py] [--dsn CONNINFO] [--no-prepare]

Sends the records "<prefix>-1" .. "<prefix>-<count>", the i-th with the key
"key-<i mod keys>" (so a key always lands on the same partition), in
batches of --batch records, one pgq_send_batch call each.  The connection
is in autocommit: each batch is its own transaction, acknowledged when the
call returns.  For every record sent it prints one line,

    <partition> TAB <offset> TAB <key> TAB <value>

The connection comes from --dsn, else from libpq's environment (PGHOST,
PGPORT, PGUSER, PGDATABASE, ...).  Through PgBouncer 1.18 in transaction
mode pass --no-prepare: psycopg prepares a statement on the server after
it ran five times, and such a statement lives on one server connection
only, which the pooler does not keep for the client.
"""

import argparse
import sys

import psycopg


def main():
    ap = argparse.ArgumentParser(description="send keyed records to a pgqueue topic")
    ap.add_argument("--topic", required=True)
    ap.add_argument("--count", type=int, default=1000, help="records to send")
    ap.add_argument("--batch", type=int, default=100, help="records per pgq_send_batch call")
    ap.add_argument("--keys", type=int, default=16, help="distinct keys")
    ap.add_argument("--prefix", default="py", help="values are <prefix>-<n>")
    ap.add_argument("--dsn", default="", help="libpq connection string (default: PG* variables)")
    ap.add_argument("--no-prepare", action="store_true",
                    help="never prepare statements on the server (PgBouncer < 1.21 in transaction mode)")
    args = ap.parse_args()

    with psycopg.connect(args.dsn, autocommit=True,
                         prepare_threshold=None if args.no_prepare else 5) as conn:
        for start in range(1, args.count + 1, args.batch):
            numbers = range(start, min(start + args.batch, args.count + 1))
            values = [f"{args.prefix}-{i}" for i in numbers]
            keys = [f"key-{i % args.keys}" for i in numbers]
            # lists of str need no cast: pgq_send_batch takes them as they
            # come and stores each string's UTF-8 bytes (docs/drivers.md)
            rows = conn.execute(
                "SELECT partition, msg_offset FROM pgq_send_batch(%s, %s, %s)",
                (args.topic, values, keys)).fetchall()
            # one row per record, in input order
            out = "".join(f"{p}\t{o}\t{k}\t{v}\n" for (p, o), k, v in zip(rows, keys, values))
            sys.stdout.write(out)
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
