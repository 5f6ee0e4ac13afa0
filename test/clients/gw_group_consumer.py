#!/usr/bin/python3
# Copyright (c) pgqueue contributors
#
# gw_group_consumer.py BOOTSTRAP MODE GROUP [ARG]
#	  python3-confluent-kafka (librdkafka 2.0.2) as a group consumer of the
#	  topic "orders" through the gateway, for 058_gateway_group_python.pl.
#	  Prints one line per event.
#
#	  consume GROUP N [INSTANCE]
#	                     reads N records (or until none came for 5 s),
#	                     printing "record partition:offset value", and
#	                     commits each with commit(asynchronous=False);
#	                     enable.auto.commit is false; with INSTANCE, a
#	                     static member (group.instance.id)
#	  fenced GROUP       waits for all four partitions, then for a
#	                     rebalance that leaves it two (another member
#	                     joined), then commits an offset of a partition it
#	                     lost: prints "commit error NAME"
#	  cooperative GROUP SECONDS
#	                     a cooperative-sticky consumer for SECONDS: prints
#	                     "added P,..." and "revoked P,..." as its
#	                     assignment changes, then "closing"; SECONDS 0:
#	                     until it had all four partitions, fewer, then all
#	                     four again (at most 90 s); librdkafka's group log
#	                     goes to stderr
#	  groups             AdminClient.list_groups(): "group ID STATE TYPE
#	                     PROTOCOL member MEMBER TOPICS PARTITIONS ..."

import struct
import sys
import time

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient


def consumer(bootstrap, group, instance=None, session_timeout_ms=6000):
    conf = {
        'bootstrap.servers': bootstrap,
        'group.id': group,
        'enable.auto.commit': False,
        'auto.offset.reset': 'earliest',
        'session.timeout.ms': session_timeout_ms,
        'heartbeat.interval.ms': 500,
    }
    if instance:
        conf['group.instance.id'] = instance
    return Consumer(conf)


def consume(bootstrap, group, n, instance=None):
    c = consumer(bootstrap, group, instance, 120000 if instance else 6000)
    c.subscribe(['orders'])
    got = 0
    last = time.time()
    deadline = time.time() + 60
    while got < n and time.time() < deadline and time.time() - last < 5:
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            print('error', m.error().name(), flush=True)
            continue
        print('record %d:%d %s' % (m.partition(), m.offset(), m.value().decode()), flush=True)
        c.commit(message=m, asynchronous=False)
        got += 1
        last = time.time()
    c.close()


def fenced(bootstrap, group):
    c = consumer(bootstrap, group)
    assigned = []

    def on_assign(cons, parts):
        assigned[:] = sorted(p.partition for p in parts)
        print('assigned', ','.join(str(p) for p in assigned), flush=True)

    c.subscribe(['orders'], on_assign=on_assign)
    deadline = time.time() + 90
    had_all = False
    while time.time() < deadline:
        c.poll(0.2)
        if len(assigned) == 4:
            had_all = True
        if had_all and len(assigned) == 2:
            lost = min(p for p in range(4) if p not in assigned)
            try:
                c.commit(offsets=[TopicPartition('orders', lost, 1)], asynchronous=False)
                print('commit ok', flush=True)
            except KafkaException as e:
                print('commit error', e.args[0].name(), flush=True)
            break
    c.close()


def cooperative(bootstrap, group, seconds):
    c = Consumer({
        'bootstrap.servers': bootstrap,
        'group.id': group,
        'auto.offset.reset': 'earliest',
        'session.timeout.ms': 6000,
        'heartbeat.interval.ms': 500,
        'partition.assignment.strategy': 'cooperative-sticky',
        'debug': 'cgrp',
    })
    owned = set()
    phases = []

    def show(what, parts):
        ps = set(p.partition for p in parts)
        owned.update(ps) if what == 'added' else owned.difference_update(ps)
        if not phases or phases[-1] != (len(owned) == 4):
            phases.append(len(owned) == 4)
        print(what, ','.join(str(p) for p in sorted(ps)), flush=True)

    c.subscribe(['orders'], on_assign=lambda cons, parts: show('added', parts),
                on_revoke=lambda cons, parts: show('revoked', parts))
    end = time.time() + (seconds or 90)
    while time.time() < end and not (seconds == 0 and phases[-3:] == [True, False, True]):
        c.poll(0.2)
    print('closing', flush=True)
    c.close()


def read_topics(b, assignment):
    # ConsumerProtocolSubscription/Assignment: version, [topic, ([partition])]
    if not b:
        return ''
    pos = 2
    (n,) = struct.unpack_from('>i', b, pos)
    pos += 4
    out = []
    for _ in range(n):
        (tl,) = struct.unpack_from('>h', b, pos)
        topic = b[pos + 2:pos + 2 + tl].decode()
        pos += 2 + tl
        if assignment:
            (pn,) = struct.unpack_from('>i', b, pos)
            parts = struct.unpack_from('>%di' % pn, b, pos + 4)
            pos += 4 + 4 * pn
            topic += ':' + ','.join(str(p) for p in parts)
        out.append(topic)
    return ';'.join(out)


def groups(bootstrap):
    admin = AdminClient({'bootstrap.servers': bootstrap})
    for g in sorted(admin.list_groups(timeout=20), key=lambda g: g.id):
        line = 'group %s %s %s %s' % (g.id, g.state, g.protocol_type, g.protocol or '-')
        for m in sorted(g.members, key=lambda m: m.id):
            line += ' member %s %s %s' % (m.id, read_topics(m.metadata, False),
                                          read_topics(m.assignment, True))
        print(line, flush=True)


def main():
    bootstrap, mode = sys.argv[1], sys.argv[2]
    if mode == 'consume':
        consume(bootstrap, sys.argv[3], int(sys.argv[4]),
                sys.argv[5] if len(sys.argv) > 5 else None)
    elif mode == 'cooperative':
        cooperative(bootstrap, sys.argv[3], float(sys.argv[4]))
    elif mode == 'fenced':
        fenced(bootstrap, sys.argv[3])
    else:
        groups(bootstrap)


if __name__ == '__main__':
    main()
