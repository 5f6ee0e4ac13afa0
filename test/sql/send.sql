-- Producing: pgq_send overloads, partition choice, headers, timestamps,
-- tombstones, max.message.bytes, pgq_send_batch.
SELECT pgq_create_topic('s', 4);

-- the text overload: no casts needed, stored as UTF-8 bytes
SELECT * FROM pgq_send('s', '{"id":1}', partition => 0);
SELECT * FROM pgq_send('s', 'plain text', 'a key', partition => 0);
SELECT * FROM pgq_send('s', '{"id": 2}'::jsonb, partition => 0);
SELECT * FROM pgq_send('s', '\x00ff'::bytea, partition => 0);
SELECT * FROM pgq_send('s', '\x01'::bytea, 'text key', partition => 0);
SELECT * FROM pgq_send('s', 'v', '\xdeadbeef'::bytea, partition => 0);
SELECT * FROM pgq_send('s', '{"a":1}'::jsonb, '\x01'::bytea, partition => 0);
SELECT * FROM pgq_send('s', 'héllo wörld', 'ключ', partition => 0);
SELECT * FROM pgq_send('s', NULL, 'tombstone key', partition => 0);
SELECT * FROM pgq_send('s', 'with headers', NULL, 0, '{"trace": "abc", "n": "1"}');
SELECT * FROM pgq_send('s', 'old', partition => 0, "timestamp" => '2020-01-01 00:00:00+00');
SELECT msg_offset, key, value, headers, "timestamp" = '2020-01-01 00:00:00+00' AS given_ts
  FROM pgq_fetch('s', 0, 0);
SELECT msg_offset, convert_from(value, 'UTF8') AS value, convert_from(key, 'UTF8') AS key
  FROM pgq_fetch('s', 0, 7, 1);
-- the default timestamp is the time of the send
SELECT "timestamp" BETWEEN now() - interval '1 minute' AND clock_timestamp() AS recent
  FROM pgq_fetch('s', 0, 0, 1);

-- keyed records land where Kafka's default partitioner puts them
SELECT k, s.partition = pgq_partition_for_key(convert_to(k, 'UTF8'), 4) AS kafka_partition
  FROM unnest(ARRAY['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta']) k,
       LATERAL pgq_send('s', 'v', k) s;
-- the same key always goes to the same partition
SELECT count(DISTINCT s.partition), count(*) FROM generate_series(1, 10) i, LATERAL pgq_send('s', 'v' || i, 'same-key') s;

-- keyless records go round-robin over the partitions
-- (each session starts at a random partition, then takes them in turn)
SELECT pgq_create_topic('rr', 4);
SELECT partition AS first_p FROM pgq_send('rr', 'probe') \gset
SELECT array_agg(s.partition ORDER BY i) = array_agg((:first_p + i) % 4 ORDER BY i) AS in_turn,
       count(DISTINCT s.partition) AS partitions_used, count(*) AS records
  FROM generate_series(1, 8) i, LATERAL pgq_send('rr', 'rr' || i) s;
SELECT pgq_drop_topic('rr');

-- offsets strictly increase per partition
SELECT s.partition, array_agg(s.msg_offset ORDER BY i) AS offsets
  FROM generate_series(1, 5) i, LATERAL pgq_send('s', 'inc' || i, partition => 3) s
  GROUP BY 1;

-- bad input: clear errors, nothing sent
SELECT pgq_send(NULL, 'x');
SELECT pgq_send('nope', 'x');
SELECT pgq_send('bad name!', 'x');
SELECT pgq_send('s', 'x', partition => 4);
SELECT pgq_send('s', 'x', partition => -1);
SELECT pgq_send('s', 'x', headers => '[1]');
SELECT pgq_send('s', 'x', headers => '"h"');
SELECT pgq_send('s', 'x', headers => '{"n": 1}');
SELECT pgq_send('s', 'x', headers => '{"o": {"nested": "x"}}');
SELECT high_watermark FROM pgq_partitions WHERE topic = 's' AND partition = 3;

-- max.message.bytes counts key, value and headers
SELECT pgq_alter_topic('s', '{"max.message.bytes": 10}');
SELECT * FROM pgq_send('s', '0123456789', partition => 1);
SELECT * FROM pgq_send('s', '0123456789', 'k', partition => 1);
SELECT * FROM pgq_send('s', '01234', '56789', partition => 1);
SELECT * FROM pgq_send('s', '01234', '567890', partition => 1);
SELECT pgq_alter_topic('s', '{"max.message.bytes": null}');
SELECT msg_offset AS big_offset FROM pgq_send('s', repeat('x', 100000), partition => 2) \gset
SELECT length(value) FROM pgq_fetch('s', 2, :big_offset, 1);
-- a statement does not read the records it sends itself (they are not committed)
SELECT count(f.*) FROM pgq_send('s', 'same statement', partition => 2) s,
       LATERAL pgq_fetch('s', 2, s.msg_offset, 1) f;

-- pgq_send_batch: one call, many records, results in input order
SELECT pgq_create_topic('b', 3);
SELECT * FROM pgq_send_batch('b', ARRAY['a', 'b', 'c', 'd', 'e'], partition => 1);
SELECT * FROM pgq_send_batch('b', ARRAY['k1', 'k2', 'k3'], ARRAY['alpha', 'beta', 'gamma']);
SELECT k, s.partition = pgq_partition_for_key(convert_to(k, 'UTF8'), 3) AS kafka_partition
  FROM (SELECT ARRAY['alpha', 'beta', 'gamma'] AS ks) a,
       LATERAL (SELECT * FROM pgq_send_batch('b', ARRAY['1', '2', '3'], a.ks) WITH ORDINALITY) s(partition, msg_offset, n),
       LATERAL (SELECT a.ks[s.n] AS k) kk;
SELECT * FROM pgq_send_batch('b', ARRAY['\x01', '\x02']::bytea[], partition => 0);
SELECT * FROM pgq_send_batch('b', ARRAY['{"a":1}']::jsonb[], partition => 0);
SELECT * FROM pgq_send_batch('b', ARRAY['v1', NULL], ARRAY['x', 'y'], 2, ARRAY['{"h": "1"}', NULL]::jsonb[]);
SELECT msg_offset, convert_from(key, 'UTF8') AS key, convert_from(value, 'UTF8') AS value, headers
  FROM pgq_fetch('b', 2, 0) ORDER BY msg_offset;
SELECT * FROM pgq_send_batch('b', ARRAY[]::text[]);
SELECT count(*) FROM pgq_send_batch('b', (SELECT array_agg('m' || i) FROM generate_series(1, 1000) i));
SELECT pgq_send_batch('b', NULL::text[]);
SELECT pgq_send_batch('b', ARRAY['a', 'b'], ARRAY['k']);
SELECT pgq_send_batch('b', ARRAY['a'], headers => ARRAY['{}', '{}']::jsonb[]);
SELECT pgq_send_batch('b', ARRAY[['a'], ['b']]);
SELECT pgq_send_batch('b', ARRAY['a'], partition => 3);
SELECT pgq_send_batch('b', ARRAY['a'], headers => ARRAY['{"n": 2}']::jsonb[]);
-- a failing batch sends nothing
CREATE FUNCTION readable(t text) RETURNS bigint LANGUAGE sql AS
$$ SELECT count(*) FROM pgq_topics, generate_series(0, partitions - 1) p,
          LATERAL pgq_fetch(t, p, 0, 100000) f WHERE pgq_topics.topic = t $$;
SELECT readable('b') AS readable_before;
SELECT pgq_send_batch('b', ARRAY['ok', 'ok', repeat('x', 2000000)]);
SELECT pgq_send_batch('b', ARRAY['ok', 'ok', 'ok'], ARRAY['k1', 'k2', 'k3'], headers => ARRAY['{}', '{}', '{"bad": 1}']::jsonb[]);
SELECT readable('b') AS readable_after;

-- read-only transactions cannot send
BEGIN READ ONLY;
SELECT pgq_send('s', 'x');
ROLLBACK;

SELECT pgq_drop_topic('s');
SELECT pgq_drop_topic('b');
DROP FUNCTION readable(text);

-- in the select list: one row per call, for every row of the outer query
SELECT pgq_create_topic('sel', 1);
SELECT pgq_send('sel', v) FROM (VALUES ('a'), ('b'), ('c')) t(v);
SELECT (pgq_send('sel', 'd')).msg_offset;
SELECT msg_offset, convert_from(value, 'UTF8') FROM pgq_fetch('sel', 0, 0);
SELECT pgq_drop_topic('sel');
