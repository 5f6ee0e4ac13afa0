#!/usr/bin/env python3
"""worker.py: a member of a pgqueue consumer group, with psycopg 3.

    worker.py --group billing --topic orders [--member NAME]
              [--max-records 100] [--timeout-ms 5000] [--process-ms 0]
              [--dsn CONNINFO] [--no-prepare]

The loop is Kafka's: poll, process, commit.

  - pgq_join(group, member), once at start: this process is a new instance
    of the member, so it reads on from the committed offsets, not from the
    positions a previous process of the member may have left (behind a
    pool nothing else tells the server that the old process died).
  - pgq_poll(group, topic, max_records, timeout_ms, member) returns records
    from the partitions this member owns; with nothing to return it waits
    up to timeout_ms for a send (a long poll).  The poll is also the
    member's heartbeat.
  - Processing a record here means printing it, one line per record, to
    standard output:  <topic> TAB <partition> TAB <offset> TAB <key> TAB <value>
    (--process-ms makes each record take that long, as real work would).
  - pgq_commit(group, member) then commits what the poll returned.  A crash
    between processing and committing delivers that batch again, to this
    member or to the one that takes its partitions over: at-least-once.

On SIGTERM (or SIGINT) the worker finishes the batch in hand, commits it,
leaves the group with pgq_leave(group, member), so that its partitions go
to the other members at once, and exits 0.  A long poll in progress is
waited for first, so stopping takes up to timeout_ms.
On an error (a lost connection, a fenced commit) it exits non-zero: run it
under a supervisor that restarts it; the records after the committed
offset are then delivered again.

The member is named (--member, default <hostname>-<pid>): a named member
is what works through a connection pool, where consecutive statements may
run on different server connections.  Every statement runs in autocommit,
one transaction each.  Through PgBouncer 1.18 in transaction mode pass
--no-prepare (see producer.py).
"""

import argparse
import os
import signal
import socket
import sys
import time

import psycopg

stopping = False


def request_stop(signum, frame):
    # Only a flag: the loop stops after the batch in hand.
    global stopping
    stopping = True


def log(member, msg):
    print(f"worker {member}: {msg}", file=sys.stderr, flush=True)


def process(records, process_ms):
    for topic, partition, offset, key, value in records:
        if process_ms:
            time.sleep(process_ms / 1000)
        key = key.decode() if key is not None else ""
        value = value.decode() if value is not None else ""
        sys.stdout.write(f"{topic}\t{partition}\t{offset}\t{key}\t{value}\n")
        # written out now, as a real side effect would be: a crash after
        # it and before the commit processes the record a second time
        sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description="a member of a pgqueue consumer group")
    ap.add_argument("--group", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--member", default=f"{socket.gethostname()}-{os.getpid()}",
                    help="member_id (default: <hostname>-<pid>)")
    ap.add_argument("--max-records", type=int, default=100)
    ap.add_argument("--timeout-ms", type=int, default=5000, help="long-poll timeout")
    ap.add_argument("--process-ms", type=int, default=0, help="time to process one record")
    ap.add_argument("--dsn", default="", help="libpq connection string (default: PG* variables)")
    ap.add_argument("--no-prepare", action="store_true",
                    help="never prepare statements on the server (PgBouncer < 1.21 in transaction mode)")
    args = ap.parse_args()
    member = args.member

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    processed = 0
    with psycopg.connect(args.dsn, autocommit=True,
                         prepare_threshold=None if args.no_prepare else 5) as conn:
        conn.execute("SELECT pgq_join(%s, %s)", (args.group, member))
        log(member, f"consuming {args.topic} in group {args.group}")
        while not stopping:
            records = conn.execute(
                "SELECT topic, partition, msg_offset, key, value"
                "  FROM pgq_poll(%s, %s, %s, %s, %s)",
                (args.group, args.topic, args.max_records, args.timeout_ms, member)).fetchall()
            if not records:
                continue
            process(records, args.process_ms)
            conn.execute("SELECT pgq_commit(%s, %s)", (args.group, member))
            processed += len(records)
        conn.execute("SELECT pgq_leave(%s, %s)", (args.group, member))
    log(member, f"processed {processed} records, left the group")
    return 0


if __name__ == "__main__":
    sys.exit(main())
