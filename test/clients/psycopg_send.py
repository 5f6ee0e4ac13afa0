#!/usr/bin/python3
# psycopg_send.py: sends every kind of key and value through pgq_send and
# pgq_send_batch the way psycopg 3 adapts Python values by default (no casts
# in the SQL), reads each record back with pgq_fetch and checks that the
# stored bytes are exactly the ones meant.  Prints "ok <what>" or
# "not ok <what>: ..." per check, then "done"; run by test/t/030_drivers.pl.
# Connects with the usual PG* environment variables.
import sys

import psycopg
from psycopg.types.json import Json, Jsonb

TOPIC = "psycopg"


def main():
    conn = psycopg.connect(autocommit=True)
    conn.execute("SELECT pgq_create_topic(%s, 4)", (TOPIC,))
    failed = False

    def fetch(partition, offset):
        return conn.execute(
            "SELECT key, value FROM pgq_fetch(%s, %s, %s, 1)", (TOPIC, partition, offset)
        ).fetchone()

    def check(what, got, want):
        nonlocal failed
        if got == want:
            print(f"ok {what}")
        else:
            failed = True
            print(f"not ok {what}: stored {got!r}, meant {want!r}")

    def failing(call):
        """runs call; a failed statement is a failed check"""
        def run(what, *args, **kwargs):
            nonlocal failed
            try:
                return call(what, *args, **kwargs)
            except psycopg.Error as e:
                failed = True
                print(f"not ok {what}: {e.sqlstate} {str(e).splitlines()[0]}")
        return run

    @failing
    def send(what, value, key=None, stored_value=None, stored_key=None):
        """pgq_send(topic, value[, key]) and what it stored"""
        if key is None:
            row = conn.execute("SELECT * FROM pgq_send(%s, %s)", (TOPIC, value)).fetchone()
        else:
            row = conn.execute("SELECT * FROM pgq_send(%s, %s, %s)", (TOPIC, value, key)).fetchone()
        k, v = fetch(*row)
        check(f"pgq_send {what}: value", None if v is None else bytes(v), stored_value)
        if key is not None:
            check(f"pgq_send {what}: key", bytes(k), stored_key)
        return row[0]

    @failing
    def send_batch(what, values, keys=None, stored_values=None, stored_keys=None):
        """pgq_send_batch(topic, values[, keys]) and what it stored"""
        if keys is None:
            rows = conn.execute("SELECT * FROM pgq_send_batch(%s, %s)", (TOPIC, values)).fetchall()
        else:
            rows = conn.execute(
                "SELECT * FROM pgq_send_batch(%s, %s, %s)", (TOPIC, values, keys)
            ).fetchall()
        got = [fetch(*row) for row in rows]
        check(f"pgq_send_batch {what}: values",
              [None if v is None else bytes(v) for _, v in got], stored_values)
        if keys is not None:
            check(f"pgq_send_batch {what}: keys",
                  [None if k is None else bytes(k) for k, _ in got], stored_keys)
        return [row[0] for row in rows]

    # str: unknown (OID 0), text format
    for s in ["héllo", "\\x41", "\\\\x41", ""]:
        send(f"str {s!r}", s, stored_value=s.encode())
    # bytes: bytea (OID 17), binary format
    for b in [b"\x00\xff\xfe", b"\\x41", b""]:
        send(f"bytes {b!r}", b, stored_value=b)
    # dicts: Jsonb is jsonb (3802), Json is json (114); a bare dict is not adapted
    send("Jsonb", Jsonb({"id": 1, "name": "é"}), stored_value='{"id": 1, "name": "é"}'.encode())
    send("Json", Json({"b": 1, "a": [1, 2]}), stored_value='{"b": 1, "a": [1, 2]}'.encode())
    send("None (a tombstone)", None, key="k", stored_value=None, stored_key=b"k")

    # keys: a str and the same bytes land on the same partition
    p_str = send("str key", "v", key="clé-1", stored_value=b"v", stored_key="clé-1".encode())
    p_bytes = send("bytes key", b"v", key="clé-1".encode(), stored_value=b"v",
                   stored_key="clé-1".encode())
    send("Jsonb value, str key", Jsonb({"a": 1}), key="k\xff", stored_value=b'{"a": 1}',
         stored_key="k\xff".encode())
    send("str value, bytes key", "v", key=b"\xff\x00", stored_value=b"v", stored_key=b"\xff\x00")
    check("a str key and its bytes go to the same partition", p_bytes, p_str)

    # list[str]: unknown (OID 0), text format
    strs = ["a", "\\x41", "\\\\x41", "a,b", '"q"', " sp ", "", "NULL", "{x}", "é", None]
    send_batch("list[str]", strs, stored_values=[None if s is None else s.encode() for s in strs])
    # list[bytes]: bytea[] (OID 1001), text format
    bl = [b"\x00\xff", b"\xff" * 3, b"", b"\\x41", None]
    send_batch("list[bytes]", bl, stored_values=bl)
    # list[Jsonb]: jsonb[] (OID 3807)
    send_batch("list[Jsonb]", [Jsonb({"a": 1}), Jsonb([1, "x"])],
               stored_values=[b'{"a": 1}', b'[1, "x"]'])
    # list[Json]: json[] (OID 199)
    send_batch("list[Json]", [Json({"b": 2, "a": 1})], stored_values=[b'{"b": 2, "a": 1}'])

    # keys of either kind with values of either kind
    ks = ["clé-1", "k2", "\\x00"]
    p_strs = send_batch("list[bytes] values, list[str] keys", [b"\xff", b"\x00", b""], keys=ks,
                        stored_values=[b"\xff", b"\x00", b""], stored_keys=[k.encode() for k in ks])
    p_bl = send_batch("list[str] values, list[bytes] keys", ["x", "y", "z"],
                      keys=[k.encode() for k in ks], stored_values=[b"x", b"y", b"z"],
                      stored_keys=[k.encode() for k in ks])
    check("str keys and their bytes go to the same partitions", p_bl, p_strs)
    check("a batch key goes where pgq_send's key went", p_strs and p_strs[0], p_str)

    print("done")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
