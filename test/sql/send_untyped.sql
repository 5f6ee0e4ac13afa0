-- Untyped keys and values (literals here; what drivers send as parameters of
-- OID 0, see test/t/033_drivers.pl) resolve to pgq_payload and pgq_payloads
-- without casts; typed ones of every kind reach the same functions through
-- implicit casts.  Each stores the bytes meant.
SELECT pgq_create_topic('u', 4);
-- what a statement sent goes into sent, stored() reads it back (a statement
-- does not see the records it sends)
CREATE TEMP TABLE sent (n serial, partition integer, msg_offset bigint);
CREATE FUNCTION stored(OUT key bytea, OUT value bytea) RETURNS SETOF record
LANGUAGE sql AS $$
    WITH d AS (DELETE FROM sent RETURNING *)
    SELECT f.key, f.value FROM d, LATERAL pgq_fetch('u', d.partition, d.msg_offset, 1) f ORDER BY d.n
$$;

-- pgq_send: an untyped literal is text, even when it reads like bytea
INSERT INTO sent (partition, msg_offset) SELECT * FROM pgq_send('u', '\x41', '\x42');
SELECT key, value FROM stored();
INSERT INTO sent (partition, msg_offset) SELECT * FROM pgq_send('u', 'é');
SELECT value FROM stored();
-- typed arguments: text, varchar and json as their UTF-8 bytes, bytea as it is,
-- jsonb as its text form
INSERT INTO sent (partition, msg_offset) SELECT * FROM pgq_send('u', 'é'::text);
SELECT value FROM stored();
INSERT INTO sent (partition, msg_offset) SELECT * FROM pgq_send('u', 'é'::varchar);
SELECT value FROM stored();
INSERT INTO sent (partition, msg_offset) SELECT * FROM pgq_send('u', '{"b":1,  "a":2}'::json);
SELECT value FROM stored();
INSERT INTO sent (partition, msg_offset) SELECT * FROM pgq_send('u', '{"b":1,  "a":2}'::jsonb);
SELECT value FROM stored();
INSERT INTO sent (partition, msg_offset) SELECT * FROM pgq_send('u', '\x41ff'::bytea);
SELECT value FROM stored();
INSERT INTO sent (partition, msg_offset) SELECT * FROM pgq_send('u', 'v', 'k'::varchar);
SELECT key FROM stored();
INSERT INTO sent (partition, msg_offset) SELECT * FROM pgq_send('u', '{}'::jsonb, '\xff'::bytea);
SELECT key FROM stored();
-- a text key and the same bytes as bytea land on the same partition
SELECT (SELECT partition FROM pgq_send('u', 'v', 'clé'))
     = (SELECT partition FROM pgq_send('u', 'v', convert_to('clé', 'UTF8'))) AS same_partition;

-- pgq_send_batch: in an untyped array literal, an element written without
-- quotes that reads \x<hex> is bytes (node-postgres writes a Buffer so);
-- every other element is text, and NULL without quotes is null
INSERT INTO sent (partition, msg_offset) SELECT * FROM pgq_send_batch('u', '{\\x41ff, "\\x41", \\\\x41, x\,y , "NULL", NULL, "", \\x}');
SELECT value FROM stored();
INSERT INTO sent (partition, msg_offset) SELECT * FROM pgq_send_batch('u', '{"v1","v2"}', '{\\xff00,"\\xff00"}');
SELECT key, value FROM stored();
-- typed arrays
INSERT INTO sent (partition, msg_offset) SELECT * FROM pgq_send_batch('u', ARRAY['\x41', 'é']);
SELECT value FROM stored();
INSERT INTO sent (partition, msg_offset) SELECT * FROM pgq_send_batch('u', ARRAY['é']::varchar[]);
SELECT value FROM stored();
INSERT INTO sent (partition, msg_offset) SELECT * FROM pgq_send_batch('u', ARRAY['{"b":1,  "a":2}']::json[]);
SELECT value FROM stored();
INSERT INTO sent (partition, msg_offset) SELECT * FROM pgq_send_batch('u', ARRAY['{"b":1,  "a":2}']::jsonb[]);
SELECT value FROM stored();
INSERT INTO sent (partition, msg_offset) SELECT * FROM pgq_send_batch('u', ARRAY['\xff']::bytea[], ARRAY['k']);
SELECT key, value FROM stored();
INSERT INTO sent (partition, msg_offset) SELECT * FROM pgq_send_batch('u', ARRAY['{}']::jsonb[], ARRAY['\xff']::bytea[]);
SELECT key FROM stored();
SELECT count(*) FROM pgq_send_batch('u', '{}');
-- text keys and the same bytes land on the same partitions
SELECT array_agg(p.partition ORDER BY n) = (SELECT array_agg(q.partition ORDER BY n)
         FROM pgq_send_batch('u', '{1,2,3}', ARRAY['a', 'b', 'c']::bytea[]) WITH ORDINALITY q(partition, msg_offset, n))
       AS same_partitions
  FROM pgq_send_batch('u', '{1,2,3}', '{a,b,c}') WITH ORDINALITY p(partition, msg_offset, n);

-- malformed batches
SELECT pgq_send_batch('u', 'a,b');
SELECT pgq_send_batch('u', '{a');
SELECT pgq_send_batch('u', '{"a}');
SELECT pgq_send_batch('u', '{a,}');
SELECT pgq_send_batch('u', '{{a}}');
SELECT pgq_send_batch('u', '{a b"c"}');
SELECT pgq_send_batch('u', '{a} x');
SELECT pgq_send_batch('u', '{\\x4}');
SELECT pgq_send_batch('u', '{\\xzz}');

-- the types' text output (for display) reads back as the same bytes
SELECT 'é'::pgq_payload, '\x41'::pgq_payload, '\xff00'::bytea::pgq_payload;
SELECT '{\\xff, "\\x41", é, NULL, "a\"b"}'::pgq_payloads;
SELECT '{\\xff, "\\x41", é, NULL, "a\"b"}'::pgq_payloads::text::pgq_payloads;
SELECT ARRAY['x', NULL]::pgq_payloads, ARRAY['\x00ff']::bytea[]::pgq_payloads;

DROP FUNCTION stored();
SELECT pgq_drop_topic('u');
