-- Headers that round-trip Kafka's: the list form [[key, value], ...] next
-- to the object form, the canonical form stored, and the conversions to and
-- from Kafka's encoding (see docs/headers.md).
SELECT pgq_create_topic('hdr', 1);
CREATE FUNCTION sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS
$$ BEGIN EXECUTE q; RETURN 'ok'; EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE || ': ' || SQLERRM; END $$;

-- the object form is stored as it is (jsonb orders its keys: shorter first)
SELECT msg_offset FROM pgq_send('hdr', 'o', headers => '{"trace": "abc", "n": "1"}');
-- a list: order kept, repeated keys, null values, bytes that are not UTF-8
SELECT msg_offset FROM pgq_send('hdr', 'l', headers =>
  '[["z", "1"], ["a", "2"], ["a", "3"], ["nul", null], ["bin", {"base64": "AP8="}], ["utf8", {"base64": "w6k="}], ["empty", ""]]');
-- a list that the object form denotes is stored as the object
SELECT msg_offset FROM pgq_send('hdr', 'l2', headers => '[["n", "1"], ["trace", "abc"]]');
SELECT msg_offset FROM pgq_send('hdr', 'l1', headers => '[["only", {"base64": "aGk="}]]');
-- the empty list is the empty object
SELECT msg_offset FROM pgq_send('hdr', 'l0', headers => '[]');
-- ... but not when the order differs from jsonb's, or a value is null or binary
SELECT msg_offset FROM pgq_send('hdr', 'l3', headers => '[["trace", "abc"], ["n", "1"]]');
SELECT msg_offset FROM pgq_send('hdr', 'l4', headers => '[["k", null]]');
SELECT msg_offset FROM pgq_send('hdr', 'l5', headers => '[["k", {"base64": "AA=="}]]');
-- batches take both forms, element by element
SELECT msg_offset FROM pgq_send_batch('hdr', ARRAY['b1', 'b2', 'b3'],
  headers => ARRAY['{"a": "1"}', '[["a", "1"], ["a", "2"]]', NULL]::jsonb[]);
SELECT msg_offset, convert_from(value, 'UTF8') AS value, headers FROM pgq_fetch('hdr', 0, 0);

-- pgq_poll returns the same
SELECT msg_offset, headers FROM pgq_poll('hdr-g', 'hdr', 100) WHERE msg_offset IN (1, 5, 6);
SELECT pgq_leave('hdr-g');

-- pgq_headers_list: either form as rows in order, values as bytes
SELECT * FROM pgq_headers_list('{"trace": "abc", "n": "1"}') WITH ORDINALITY;
SELECT h.* FROM pgq_fetch('hdr', 0, 1, 1) f, LATERAL pgq_headers_list(f.headers) WITH ORDINALITY h;
SELECT * FROM pgq_headers_list('[]');

-- Kafka's encoding: count, then key and value per header (zigzag varints)
SELECT pgq_headers_to_kafka('{"trace": "abc", "n": "1"}');
SELECT pgq_headers_to_kafka('[["k", null], ["k", {"base64": "AP8="}]]');
SELECT pgq_headers_to_kafka('{}'), pgq_headers_to_kafka('[]');
-- a value of 200 bytes: its length takes two varint bytes
SELECT length(pgq_headers_to_kafka(jsonb_build_array(jsonb_build_array('k', repeat('x', 200))))) AS encoded_length,
       substr(pgq_headers_to_kafka(jsonb_build_array(jsonb_build_array('k', repeat('x', 200)))), 1, 5) AS head;
SELECT pgq_headers_from_kafka('\x040262023102610232');
SELECT pgq_headers_from_kafka('\x0602610232026101026e040000');
SELECT pgq_headers_from_kafka('\x00');
SELECT pgq_headers_from_kafka(pgq_headers_to_kafka(jsonb_build_array(jsonb_build_array('k', repeat('x', 200))))) ->> 'k' = repeat('x', 200) AS long_value;
-- every stored form maps to Kafka and back to itself
SELECT msg_offset, pgq_headers_from_kafka(pgq_headers_to_kafka(headers)) = headers AS round_trip
  FROM pgq_fetch('hdr', 0, 0) WHERE headers IS NOT NULL;

-- bad input: specific SQLSTATEs, nothing sent
SELECT sqlstate_of($$SELECT pgq_send('hdr', 'x', headers => '"h"')$$);
SELECT sqlstate_of($$SELECT pgq_send('hdr', 'x', headers => '1')$$);
SELECT sqlstate_of($$SELECT pgq_send('hdr', 'x', headers => '[1]')$$);
SELECT sqlstate_of($$SELECT pgq_send('hdr', 'x', headers => '[["k"]]')$$);
SELECT sqlstate_of($$SELECT pgq_send('hdr', 'x', headers => '[["k", "v", "w"]]')$$);
SELECT sqlstate_of($$SELECT pgq_send('hdr', 'x', headers => '[{"k": "v"}]')$$);
SELECT sqlstate_of($$SELECT pgq_send('hdr', 'x', headers => '[[1, "v"]]')$$);
SELECT sqlstate_of($$SELECT pgq_send('hdr', 'x', headers => '[[null, "v"]]')$$);
SELECT sqlstate_of($$SELECT pgq_send('hdr', 'x', headers => '[["k", 1]]')$$);
SELECT sqlstate_of($$SELECT pgq_send('hdr', 'x', headers => '[["k", ["v"]]]')$$);
SELECT sqlstate_of($$SELECT pgq_send('hdr', 'x', headers => '[["k", {"hex": "00"}]]')$$);
SELECT sqlstate_of($$SELECT pgq_send('hdr', 'x', headers => '[["k", {"base64": "AA==", "x": 1}]]')$$);
SELECT sqlstate_of($$SELECT pgq_send('hdr', 'x', headers => '[["k", {"base64": 1}]]')$$);
SELECT sqlstate_of($$SELECT pgq_send('hdr', 'x', headers => '[["k", {"base64": "!!!"}]]')$$);
SELECT sqlstate_of($$SELECT pgq_send('hdr', 'x', headers => '{"k": null}')$$);
SELECT sqlstate_of($$SELECT pgq_send_batch('hdr', ARRAY['x', 'y'], headers => ARRAY['[]', '[["k", 2]]']::jsonb[])$$);
SELECT sqlstate_of($$SELECT pgq_headers_to_kafka('[["k", 2]]')$$);
SELECT sqlstate_of($$SELECT pgq_headers_list('"x"')$$);
SELECT sqlstate_of($$SELECT pgq_headers_from_kafka('')$$);
SELECT sqlstate_of($$SELECT pgq_headers_from_kafka('\x01')$$);
SELECT sqlstate_of($$SELECT pgq_headers_from_kafka('\x0201')$$);
SELECT sqlstate_of($$SELECT pgq_headers_from_kafka('\x020461')$$);
SELECT sqlstate_of($$SELECT pgq_headers_from_kafka('\x0202610461')$$);
SELECT sqlstate_of($$SELECT pgq_headers_from_kafka('\x020261030000')$$);
SELECT sqlstate_of($$SELECT pgq_headers_from_kafka('\x00ff')$$);
SELECT sqlstate_of($$SELECT pgq_headers_from_kafka('\xffffffffff01')$$);
SELECT sqlstate_of($$SELECT pgq_headers_from_kafka('\x0202ff01')$$);
SELECT sqlstate_of($$SELECT pgq_headers_from_kafka('\x02020001')$$);
SELECT high_watermark FROM pgq_partitions WHERE topic = 'hdr';

-- max.message.bytes counts the headers as stored
SELECT pgq_alter_topic('hdr', '{"max.message.bytes": 40}');
SELECT sqlstate_of($$SELECT pgq_send('hdr', 'x', headers => '[["k", {"base64": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]]')$$);

DROP FUNCTION sqlstate_of(text);
SELECT pgq_drop_topic('hdr');
