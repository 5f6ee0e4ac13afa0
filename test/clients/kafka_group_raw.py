#!/usr/bin/python3
# Copyright (c) pgqueue contributors
#
# kafka_group_raw.py BOOTSTRAP COMMAND ARGS... [key=value ...]
#	  One consumer-group request to a Kafka broker (the gateway), written by
#	  hand from Kafka's protocol reference, so that a test can send exactly
#	  the version and fields it wants, step by step, and check the error
#	  codes.  The gateway keeps no state, so each step may be its own
#	  process.  Prints one line of key=value fields.
#
#	  find GROUP                              FindCoordinator
#	  join GROUP MEMBER TOPICS                JoinGroup (MEMBER "" for none;
#	       [v=5 timeout=MS protocols=range,roundrobin type=consumer
#	        instance=ID owned=topic:0,topic:1 client=ID]
#	  sync GROUP MEMBER GENERATION [v=3]      SyncGroup: assignment=topic:0,1;...
#	  heartbeat GROUP MEMBER GENERATION [v=3]
#	  leave GROUP MEMBER[,MEMBER...] [v=3]    LeaveGroup
#	  commit GROUP MEMBER GENERATION topic:partition:offset[:metadata]...
#	       [v=7]                              OffsetCommit: topic:partition:error...
#	  fetch GROUP topic:p,p... | all [v=5]    OffsetFetch: topic:p:offset:metadata:error...
#	  describe GROUP... [v=4]                 DescribeGroups
#	  list [v=2]                              ListGroups
#	  raw API VERSION HEXBODY                 any request: closed=1 if the
#	                                          connection closed, else the body
#	                                          in hex
#
#	  With dump=1 a command prints "API VERSION HEXBODY" of its request
#	  instead of sending it (for tests that cut and damage requests).

import socket
import struct
import sys

TIMEOUT = 20
DUMP = False


def s16(v):
    return struct.pack('>h', v)


def s32(v):
    return struct.pack('>i', v)


def s64(v):
    return struct.pack('>q', v)


def string(s):
    if s is None:
        return s16(-1)
    b = s.encode()
    return s16(len(b)) + b


def bytes_(b):
    if b is None:
        return s32(-1)
    return s32(len(b)) + b


def array(items):
    if items is None:
        return s32(-1)
    return s32(len(items)) + b''.join(items)


class Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise ValueError('response too short')
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def i8(self):
        return struct.unpack('>b', self.take(1))[0]

    def i16(self):
        return struct.unpack('>h', self.take(2))[0]

    def i32(self):
        return struct.unpack('>i', self.take(4))[0]

    def i64(self):
        return struct.unpack('>q', self.take(8))[0]

    def string(self):
        n = self.i16()
        return None if n < 0 else self.take(n).decode()

    def bytes_(self):
        n = self.i32()
        return None if n < 0 else self.take(n)

    def array(self, fn):
        n = self.i32()
        return None if n < 0 else [fn() for _ in range(n)]

    def done(self):
        if self.pos != len(self.data):
            raise ValueError('%d bytes left over' % (len(self.data) - self.pos))


def request(bootstrap, api, version, body, client='raw-test'):
    """Sends one request; returns the response body, or None if the
    connection closed."""
    if DUMP:
        print('%d %d %s' % (api, version, body.hex()))
        sys.exit(0)
    host, port = bootstrap.rsplit(':', 1)
    sock = socket.create_connection((host, int(port)), timeout=TIMEOUT)
    try:
        msg = s16(api) + s16(version) + s32(7) + string(client) + body
        sock.sendall(s32(len(msg)) + msg)
        head = recv_all(sock, 4)
        if head is None:
            return None
        size = struct.unpack('>i', head)[0]
        resp = recv_all(sock, size)
        if resp is None or struct.unpack('>i', resp[:4])[0] != 7:
            raise ValueError('bad correlation id')
        return resp[4:]
    finally:
        sock.close()


def recv_all(sock, n):
    buf = b''
    while len(buf) < n:
        try:
            chunk = sock.recv(n - len(buf))
        except ConnectionResetError:
            return None
        if not chunk:
            return None
        buf += chunk
    return buf


def subscription(topics, owned):
    # ConsumerProtocolSubscription v1: topics, user data, owned partitions
    by_topic = {}
    for t, p in owned:
        by_topic.setdefault(t, []).append(p)
    return (s16(1) + array([string(t) for t in topics]) + bytes_(None) +
            array([string(t) + array([s32(p) for p in ps]) for t, ps in by_topic.items()]))


def parse_assignment(b):
    if not b:
        return ''
    r = Reader(b)
    r.i16()
    topics = r.array(lambda: (r.string(), r.array(r.i32)))
    r.bytes_()
    return ';'.join('%s:%s' % (t, ','.join(str(p) for p in ps)) for t, ps in topics)


def throttle(r, version, since):
    if version >= since:
        r.i32()


def cmd_find(bs, opts, group):
    v = int(opts.get('v', 2))
    body = string(group) + (struct.pack('>b', 0) if v >= 1 else b'')
    r = Reader(request(bs, 10, v, body))
    throttle(r, v, 1)
    err = r.i16()
    if v >= 1:
        r.string()
    node, host, port = r.i32(), r.string(), r.i32()
    r.done()
    return 'error=%d node=%d host=%s port=%d' % (err, node, host, port)


def cmd_join(bs, opts, group, member, topics):
    v = int(opts.get('v', 5))
    protocols = opts.get('protocols', 'range,roundrobin').split(',')
    owned = []
    if opts.get('owned'):
        for tp in opts['owned'].split(','):
            t, p = tp.rsplit(':', 1)
            owned.append((t, int(p)))
    meta = subscription([t for t in topics.split(',') if t], owned)
    body = string(group) + s32(int(opts.get('timeout', 6000)))
    if v >= 1:
        body += s32(30000)
    body += string(member)
    if v >= 5:
        body += string(opts.get('instance'))
    body += string(opts.get('type', 'consumer'))
    body += array([string(p) + bytes_(meta) for p in protocols])
    r = Reader(request(bs, 11, v, body, client=opts.get('client', 'raw-test')))
    throttle(r, v, 2)
    err, gen, proto, leader, mid = r.i16(), r.i32(), r.string(), r.string(), r.string()
    members = r.array(lambda: (r.string(), r.string() if v >= 5 else None, r.bytes_()))
    r.done()
    return 'error=%d generation=%d protocol=%s leader=%s member=%s members=%d' % (
        err, gen, proto, leader, mid, len(members))


def cmd_sync(bs, opts, group, member, gen):
    v = int(opts.get('v', 3))
    body = string(group) + s32(int(gen)) + string(member)
    if v >= 3:
        body += string(None)
    body += array([])
    r = Reader(request(bs, 14, v, body))
    throttle(r, v, 1)
    err = r.i16()
    assignment = r.bytes_()
    r.done()
    return 'error=%d assignment=%s' % (err, parse_assignment(assignment))


def cmd_heartbeat(bs, opts, group, member, gen):
    v = int(opts.get('v', 3))
    body = string(group) + s32(int(gen)) + string(member)
    if v >= 3:
        body += string(None)
    r = Reader(request(bs, 12, v, body))
    throttle(r, v, 1)
    err = r.i16()
    r.done()
    return 'error=%d' % err


def cmd_leave(bs, opts, group, members):
    v = int(opts.get('v', 3))
    ids = members.split(',')
    if v >= 3:
        body = string(group) + array([string(m) + string(None) for m in ids])
    else:
        body = string(group) + string(ids[0])
    r = Reader(request(bs, 13, v, body))
    throttle(r, v, 1)
    err = r.i16()
    out = 'error=%d' % err
    if v >= 3:
        ms = r.array(lambda: (r.string(), r.string(), r.i16()))
        out += ' members=' + ','.join('%s:%d' % (m, e) for m, _, e in ms)
    r.done()
    return out


def cmd_commit(bs, opts, group, member, gen, *offsets):
    v = int(opts.get('v', 7))
    by_topic = {}
    for o in offsets:
        parts = o.split(':', 3)
        md = parts[3] if len(parts) > 3 else None
        by_topic.setdefault(parts[0], []).append((int(parts[1]), int(parts[2]), md))
    body = string(group) + s32(int(gen)) + string(member)
    if v >= 7:
        body += string(None)
    if v <= 4:
        body += s64(-1)
    body += array([string(t) + array([s32(p) + s64(off) + (s32(-1) if v >= 6 else b'') + string(md)
                                      for p, off, md in ps])
                   for t, ps in by_topic.items()])
    r = Reader(request(bs, 8, v, body))
    throttle(r, v, 3)
    topics = r.array(lambda: (r.string(), r.array(lambda: (r.i32(), r.i16()))))
    r.done()
    return ' '.join('%s:%d:%d' % (t, p, e) for t, ps in topics for p, e in ps)


def cmd_fetch(bs, opts, group, *wanted):
    v = int(opts.get('v', 5))
    if wanted == ('all',):
        topics = None
    else:
        topics = []
        for w in wanted:
            t, ps = w.rsplit(':', 1)
            topics.append(string(t) + array([s32(int(p)) for p in ps.split(',')]))
    body = string(group) + array(topics)
    r = Reader(request(bs, 9, v, body))
    throttle(r, v, 3)

    def partition():
        p, off = r.i32(), r.i64()
        if v >= 5:
            r.i32()
        return p, off, r.string(), r.i16()
    result = r.array(lambda: (r.string(), r.array(partition)))
    err = r.i16() if v >= 2 else 0
    r.done()
    return 'error=%d %s' % (err, ' '.join('%s:%d:%d:%s:%d' % (t, p, off, md, e)
                                         for t, ps in result for p, off, md, e in ps))


def cmd_describe(bs, opts, *groups):
    v = int(opts.get('v', 4))
    body = array([string(g) for g in groups])
    if v >= 3:
        body += struct.pack('>b', 0)
    r = Reader(request(bs, 15, v, body))
    throttle(r, v, 1)
    out = []

    def member():
        mid = r.string()
        if v >= 4:
            r.string()
        r.string()
        r.string()
        meta = r.bytes_()
        assignment = r.bytes_()
        sub = Reader(meta)
        sub.i16()
        sub_topics = sub.array(sub.string)
        return '%s[%s](%s)' % (mid, ','.join(sub_topics), parse_assignment(assignment))

    for _ in range(r.i32()):
        err, gid, state, ptype, proto = r.i16(), r.string(), r.string(), r.string(), r.string()
        members = r.array(member)
        if v >= 3:
            r.i32()
        out.append('%s:error=%d,state=%s,type=%s,protocol=%s,members=%s' % (
            gid, err, state, ptype, proto, '+'.join(members)))
    r.done()
    return ' '.join(out)


def cmd_list(bs, opts):
    v = int(opts.get('v', 2))
    r = Reader(request(bs, 16, v, b''))
    throttle(r, v, 1)
    err = r.i16()
    groups = r.array(lambda: (r.string(), r.string()))
    r.done()
    return 'error=%d groups=%s' % (err, ','.join('%s/%s' % g for g in groups))


def cmd_raw(bs, opts, api, version, hexbody):
    resp = request(bs, int(api), int(version), bytes.fromhex(hexbody))
    return 'closed=1' if resp is None else 'closed=0 body=' + resp.hex()


def main():
    bs, cmd = sys.argv[1], sys.argv[2]
    args = [a for a in sys.argv[3:] if '=' not in a or a.count(':') > 0 and cmd == 'commit']
    opts = dict(a.split('=', 1) for a in sys.argv[3:] if a not in args)
    global DUMP
    DUMP = opts.get('dump') == '1'
    fn = globals()['cmd_' + cmd]
    print(fn(bs, opts, *args))


if __name__ == '__main__':
    main()
