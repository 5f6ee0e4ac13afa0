#!/usr/bin/python3
"""bench/driver.py: the suite's workloads through a client driver (psycopg 3).

pgbench sends SQL whose data the server generates; a real producer sends its
records as parameters, and a real consumer reads every column of what it
gets back.  This driver does that, with psycopg's default settings (the
extended query protocol, parameters in the format psycopg picks for them,
results in text format, statements prepared after 5 executions), one
connection, for pgqueue or the plain table of bench/run.sh:

  driver.py p2 --system pgqueue|plain --name T [--seconds S | --batches N]
      one transaction per batch of --batch-size (1000) records: a 100-byte
      value (bytes, so a bytea[] parameter) and a 16-digit key (str, a text[]
      parameter) each, drawn from 16 batches generated before timing.
        pgqueue  SELECT count(*) FROM pgq_send_batch(%s, %s::bytea[], %s::text[])
        plain    INSERT INTO plain_T (partition, key, value)
                 SELECT 0, k, v FROM unnest(%s::bytea[], %s::text[]) AS u(v, k)
  driver.py c1 --system pgqueue|plain --name T --group G --messages M
      drains M pre-loaded messages, batches of 1000, one transaction per
      batch, the same five columns of every row fetched into Python objects
      from both systems (pgq_poll's topic and headers are left out: the
      plain table has neither).
        pgqueue  SELECT partition, msg_offset, key, value, "timestamp" FROM
                 pgq_poll(G, T, 1000, 0, 'm1'); SELECT * FROM
                 pgq_commit(G, 'm1'); COMMIT   (the group has auto commit off)
        plain    SELECT partition, msg_offset, key, value, ts FROM plain_T
                 WHERE partition = 0 AND msg_offset >= (SELECT pos FROM
                 plain_cursor WHERE consumer = G) ORDER BY msg_offset LIMIT 1000;
                 UPDATE plain_cursor SET pos = greatest(pos, last + 1)
                 WHERE consumer = G; COMMIT

Prints one line: "messages N seconds S rate R" (R in messages/s).  The
connection comes from the PG* environment variables.

--warmup W runs W batches before the measured ones; --before CMD and
--after CMD are shell commands run just before and after the measured
batches, with the backend's process id in $BACKEND_PID (bench/instructions.sh
uses them to count the backend's instructions with callgrind).
"""
import argparse
import os
import random
import subprocess
import sys
import time

import psycopg


def hook(cmd, pid):
    if cmd:
        subprocess.run(cmd, shell=True, check=True, env=dict(os.environ, BACKEND_PID=str(pid)))


def p2(conn, a):
    rng = random.Random(12)
    value = b"v" * 100
    batches = [([value] * a.batch_size,
                ["%016d" % rng.randrange(10**15) for _ in range(a.batch_size)])
               for _ in range(16)]
    if a.system == "pgqueue":
        sql = "SELECT count(*) FROM pgq_send_batch(%s, %s::bytea[], %s::text[])"
    else:
        sql = ("INSERT INTO plain_%s (partition, key, value) "
               "SELECT 0, k, v FROM unnest(%%s::bytea[], %%s::text[]) AS u(v, k)" % a.name)
    cur = conn.cursor()
    i = 0

    def batch():
        nonlocal i
        vals, keys = batches[i % len(batches)]
        i += 1
        if a.system == "pgqueue":
            cur.execute(sql, (a.name, vals, keys))
            if cur.fetchone()[0] != len(vals):
                sys.exit("pgq_send_batch returned the wrong number of rows")
        else:
            cur.execute(sql, (vals, keys))
            if cur.rowcount != len(vals):
                sys.exit("INSERT inserted the wrong number of rows")
        conn.commit()
        return len(vals)

    for _ in range(a.warmup):
        batch()
    pid = conn.info.backend_pid
    hook(a.before, pid)
    n = 0
    t0 = time.monotonic()
    if a.batches:
        for _ in range(a.batches):
            n += batch()
    else:
        while time.monotonic() - t0 < a.seconds:
            n += batch()
    t = time.monotonic() - t0
    hook(a.after, pid)
    return n, t


def c1(conn, a):
    cur = conn.cursor()
    if a.system == "pgqueue":
        poll = ('SELECT partition, msg_offset, key, value, "timestamp" '
                "FROM pgq_poll(%s, %s, 1000, 0, 'm1')")
        poll_args = (a.group, a.name)
    else:
        poll = ("SELECT partition, msg_offset, key, value, ts FROM plain_%s "
                "WHERE partition = 0 AND msg_offset >= (SELECT pos FROM plain_cursor WHERE consumer = %%s) "
                "ORDER BY msg_offset LIMIT 1000" % a.name)
        poll_args = (a.group,)
    state = {"bytes": 0}

    def batch():
        cur.execute(poll, poll_args)
        rows = cur.fetchall()
        if rows:
            # the rows are Python objects now; touch the payload as a consumer would
            state["bytes"] += sum(len(r[2]) + len(r[3]) for r in rows)
            if a.system == "pgqueue":
                cur.execute("SELECT * FROM pgq_commit(%s, 'm1')", (a.group,))
                cur.fetchall()
            else:
                cur.execute("UPDATE plain_cursor SET pos = greatest(pos, %s) WHERE consumer = %s",
                            (rows[-1][1] + 1, a.group))
        conn.commit()
        return len(rows)

    n = 0
    for _ in range(a.warmup):
        n += batch()
    pid = conn.info.backend_pid
    hook(a.before, pid)
    t0 = time.monotonic()
    m = 0
    while n + m < a.messages:
        got = batch()
        if got == 0:
            break
        m += got
    t = time.monotonic() - t0
    hook(a.after, pid)
    if n + m != a.messages:
        sys.exit("drained %d messages of %d" % (n + m, a.messages))
    return m, t


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("workload", choices=["p2", "c1"])
    p.add_argument("--system", required=True, choices=["pgqueue", "plain"])
    p.add_argument("--name", required=True, help="the topic, or the plain table without plain_")
    p.add_argument("--seconds", type=float, default=15)
    p.add_argument("--batches", type=int, default=0, help="p2: this many batches instead of --seconds")
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--group", default="g", help="c1: the group, or the plain cursor's consumer")
    p.add_argument("--messages", type=int, default=1000000, help="c1: messages to drain")
    p.add_argument("--warmup", type=int, default=0, help="batches before the measured ones")
    p.add_argument("--before", help="shell command run before the measured batches ($BACKEND_PID)")
    p.add_argument("--after", help="shell command run after them")
    a = p.parse_args()

    with psycopg.connect(application_name="bench-driver") as conn:
        n, t = (p2 if a.workload == "p2" else c1)(conn, a)
    print("messages %d seconds %.3f rate %.1f" % (n, t, n / t if t > 0 else 0))


if __name__ == "__main__":
    main()
