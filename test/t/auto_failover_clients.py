# Copyright (c) pgqueue contributors
#
# auto_failover_clients.py ROLE STOPFILE SECONDS ...
#	  The clients of test/t/070_auto_failover.pl, run under load while the
#	  primary is killed and pg_auto_failover elects a standby.  Each prints
#	  one line per event, flushed at once, with the wall-clock time:
#
#	  sqlprod CONNINFO TOPIC PARTITIONS
#		an idempotent SQL producer (pgq_init_producer, then batches of 5
#		with producer_id/producer_epoch/sequence, partitions in turn); on
#		any error it reconnects through the multi-host conninfo and sends
#		the same batch with the same sequence again until it succeeds:
#		"ack|time|partition|offset|value" per record, "retry|time|error"
#	  kafkaprod BOOTSTRAP TOPIC
#		python3-confluent-kafka's Producer through the gateway, acks=all,
#		idempotence on, retries unbounded: "ack|time|partition|offset|value"
#		from the delivery callback, "err|time|value|error" for a failure
#	  consumer CONNINFO GROUP TOPIC
#		a group member that polls with pgq_poll and commits with pgq_commit
#		after processing (manual commit): "got|time|partition|offset|value"
#		per record, "commit|time|partition|offset" per committed offset once
#		the commit returned, "try|time|partition|offset" before it (a commit
#		whose answer is lost may still have happened), "retry|time|error"
#
#	  Each runs until STOPFILE exists (the consumer: and it read nothing
#	  for a second) or SECONDS passed.

import os
import sys
import time

role, stopfile, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
args = sys.argv[4:]
deadline = time.time() + seconds


def out(*fields):
    print('|'.join(str(f) for f in fields), flush=True)


def stopping():
    return os.path.exists(stopfile) or time.time() > deadline


def connect(conninfo):
    import psycopg
    while True:
        try:
            return psycopg.connect(conninfo, autocommit=True)
        except psycopg.Error as e:
            out('retry', time.time(), str(e).splitlines()[0] if str(e) else type(e).__name__)
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def sqlprod(conninfo, topic, partitions):
    import psycopg
    partitions = int(partitions)
    conn = connect(conninfo)
    while True:
        try:
            pid, epoch = conn.execute('SELECT producer_id, producer_epoch FROM pgq_init_producer()').fetchone()
            break
        except psycopg.Error as e:
            out('retry', time.time(), type(e).__name__)
            conn = connect(conninfo)
    seqs = [0] * partitions
    batch = 0
    while not stopping():
        p = batch % partitions
        values = ['s-%d-%d' % (batch, i) for i in range(5)]
        while True:
            try:
                rows = conn.execute(
                    'SELECT partition, msg_offset FROM pgq_send_batch(%s, %s::text[], partition => %s,'
                    ' producer_id => %s, producer_epoch => %s, sequence => %s)',
                    (topic, values, p, pid, epoch, seqs[p])).fetchall()
                break
            except psycopg.Error as e:
                # the same batch with the same sequence: appended once
                out('retry', time.time(), type(e).__name__)
                if time.time() > deadline:
                    return
                try:
                    conn.close()
                except psycopg.Error:
                    pass
                conn = connect(conninfo)
        now = time.time()
        for (part, off), v in zip(rows, values):
            out('ack', now, part, off, v)
        seqs[p] += len(values)
        batch += 1
        time.sleep(0.02)


def kafkaprod(bootstrap, topic):
    from confluent_kafka import Producer
    producer = Producer({
        'bootstrap.servers': bootstrap,
        'acks': 'all',
        'enable.idempotence': True,
        'retries': 1000000,
        'retry.backoff.ms': 100,
        'message.timeout.ms': int(seconds * 1000),
        'linger.ms': 5,
        'socket.timeout.ms': 10000,
        'topic.metadata.refresh.interval.ms': 1000,
    })

    def delivered(err, msg):
        if err is not None:
            out('err', time.time(), msg.value().decode(), err)
        else:
            out('ack', time.time(), msg.partition(), msg.offset(), msg.value().decode())

    n = 0
    while not stopping():
        producer.produce(topic, value=('k-%d' % n).encode(), on_delivery=delivered)
        n += 1
        producer.poll(0.01)
    left = producer.flush(max(5.0, deadline - time.time()))
    out('left', time.time(), left)


def consumer(conninfo, group, topic):
    import psycopg
    conn = connect(conninfo)
    idle_since = time.time()
    while time.time() < deadline:
        try:
            rows = conn.execute(
                "SELECT partition, msg_offset, convert_from(value, 'UTF8')"
                " FROM pgq_poll(%s, %s, 50, 200, 'c1')", (group, topic)).fetchall()
            now = time.time()
            for part, off, v in rows:
                out('got', now, part, off, v)
            if rows:
                idle_since = now
                # processing done: commit what was polled
                last = {}
                for part, off, v in rows:
                    last[part] = max(last.get(part, -1), off)
                for part, off in sorted(last.items()):
                    out('try', now, part, off + 1)
                committed = conn.execute("SELECT partition, msg_offset FROM pgq_commit(%s, 'c1')",
                                         (group,)).fetchall()
                now = time.time()
                for part, off in committed:
                    out('commit', now, part, off)
            elif os.path.exists(stopfile) and now - idle_since > 1.0:
                return
        except psycopg.Error as e:
            out('retry', time.time(), type(e).__name__)
            try:
                conn.close()
            except psycopg.Error:
                pass
            conn = connect(conninfo)


{'sqlprod': sqlprod, 'kafkaprod': kafkaprod, 'consumer': consumer}[role](*args)
