-- Topics: create, drop, add partitions, alter config; the pgq_topics view.
SELECT pgq_create_topic('orders', 3);
SELECT pgq_create_topic('events');                      -- one partition by default
SELECT pgq_create_topic('with.config_and-dashes', 2, '{"retention.ms": 1000, "max.message.bytes": 10}');
SELECT topic, partitions, config FROM pgq_topics ORDER BY topic;

-- if_not_exists
SELECT pgq_create_topic('orders', 5, if_not_exists => true);
SELECT partitions FROM pgq_topics WHERE topic = 'orders';
SELECT pgq_create_topic('orders');

-- Kafka's name rule: 1-249 of [A-Za-z0-9._-], not "." or ".."
SELECT pgq_create_topic(repeat('a', 249));
SELECT pgq_drop_topic(repeat('a', 249));
SELECT pgq_create_topic(repeat('a', 250));
SELECT pgq_create_topic('');
SELECT pgq_create_topic('has space');
SELECT pgq_create_topic('semi;colon');
SELECT pgq_create_topic('x''); DROP TABLE pgqueue.topic; --');
SELECT pgq_create_topic('.');
SELECT pgq_create_topic('..');
SELECT pgq_create_topic('ünicode');
SELECT pgq_create_topic(NULL);
SELECT pgq_create_topic('t', 0);
SELECT pgq_create_topic('t', -1);
SELECT pgq_create_topic('t', NULL);
SELECT pgq_create_topic('t', 100000000);
SELECT count(*) AS topics_after_bad_creates FROM pgq_topics;

-- config: known keys, types and ranges
SELECT pgq_create_topic('t', 1, '{"no.such.key": 1}');
SELECT pgq_create_topic('t', 1, '{"retention.ms": "1000"}');
SELECT pgq_create_topic('t', 1, '{"retention.ms": 1.5}');
SELECT pgq_create_topic('t', 1, '{"retention.ms": -2}');
SELECT pgq_create_topic('t', 1, '{"retention.bytes": true}');
SELECT pgq_create_topic('t', 1, '{"max.message.bytes": 0}');
SELECT pgq_create_topic('t', 1, '{"cleanup.policy": "compact"}');
SELECT pgq_create_topic('t', 1, '{"cleanup.policy": "shred"}');
SELECT pgq_create_topic('t', 1, '{"cleanup.policy": 1}');
SELECT pgq_create_topic('t', 1, '[1, 2]');
SELECT pgq_create_topic('t', 1, '"retention.ms"');
SELECT pgq_create_topic('t', 1, NULL);
SELECT pgq_create_topic('t', 1, '{"retention.ms": -1, "retention.bytes": 1048576, "cleanup.policy": "delete"}');
SELECT config FROM pgq_topics WHERE topic = 't';

-- alter: set keys; a JSON null removes a key (back to the default)
SELECT pgq_alter_topic('t', '{"retention.ms": 5000, "max.message.bytes": 100}');
SELECT config FROM pgq_topics WHERE topic = 't';
SELECT pgq_alter_topic('t', '{"retention.ms": null}');
SELECT config FROM pgq_topics WHERE topic = 't';
SELECT config FROM pgqueue.topic WHERE name = 't';         -- only overrides are stored
SELECT pgq_alter_topic('t', '{"retention.ms": "x"}');
SELECT pgq_alter_topic('t', '{"bogus": 1}');
SELECT pgq_alter_topic('nope', '{}');
SELECT pgq_alter_topic('t', NULL);
SELECT config FROM pgq_topics WHERE topic = 't';

-- add partitions: a new total, only growing
SELECT pgq_add_partitions('t', 4);
SELECT partitions FROM pgq_topics WHERE topic = 't';
SELECT partition, log_start_offset, high_watermark, last_stable_offset, messages
  FROM pgq_partitions WHERE topic = 't' ORDER BY partition;
SELECT pgq_add_partitions('t', 4);
SELECT pgq_add_partitions('t', 2);
SELECT pgq_add_partitions('t', 0);
SELECT pgq_add_partitions('nope', 2);
SELECT pgq_add_partitions('t', NULL);

-- a rolled-back create, add or drop changes nothing
BEGIN;
SELECT pgq_create_topic('rolled_back', 2);
SELECT pgq_add_partitions('t', 8);
SELECT pgq_drop_topic('events');
ROLLBACK;
SELECT topic, partitions FROM pgq_topics ORDER BY topic;
SELECT count(*) AS segments_of_rolled_back_topic
  FROM pg_class WHERE relnamespace = 'pgqueue'::regnamespace AND relkind = 'r'
   AND relname LIKE 't%\_p%\_s%' AND oid NOT IN (SELECT relid FROM pgqueue.segment);

-- a topic created and used inside a subtransaction that rolls back
BEGIN;
SAVEPOINT s;
SELECT pgq_create_topic('sub', 1);
SELECT * FROM pgq_send('sub', 'x');
ROLLBACK TO SAVEPOINT s;
SELECT pgq_create_topic('sub', 2);
SELECT * FROM pgq_send('sub', 'y', partition => 1);
COMMIT;
SELECT topic, partitions FROM pgq_topics WHERE topic = 'sub';
SELECT msg_offset, convert_from(value, 'UTF8') FROM pgq_fetch('sub', 1, 0);

-- topic changes cannot be prepared
BEGIN;
SELECT pgq_create_topic('prepared_topic');
PREPARE TRANSACTION 'p1';
SELECT count(*) FROM pgq_topics WHERE topic = 'prepared_topic';

-- drop removes the data and the segment tables
SELECT * FROM pgq_send('orders', 'x', partition => 0);
SELECT count(*) AS segments FROM pgqueue.segment s JOIN pgqueue.topic t USING (topic_id) WHERE t.name = 'orders';
SELECT pgq_drop_topic('orders');
SELECT count(*) FROM pgq_topics WHERE topic = 'orders';
SELECT count(*) AS orphan_segment_tables
  FROM pg_class WHERE relnamespace = 'pgqueue'::regnamespace AND relkind = 'r'
   AND relname LIKE 't%\_p%\_s%' AND oid NOT IN (SELECT relid FROM pgqueue.segment);
SELECT pgq_drop_topic('orders');
SELECT pgq_drop_topic('orders', if_exists => true);
SELECT pgq_drop_topic(NULL);
SELECT pgq_fetch('orders', 0, 0);
-- the name can be used again, for a new, empty log
SELECT pgq_create_topic('orders', 1);
SELECT * FROM pgq_send('orders', 'fresh');
SELECT pgq_drop_topic('orders');

SELECT pgq_drop_topic('events');
SELECT pgq_drop_topic('with.config_and-dashes');
SELECT pgq_drop_topic('t');
SELECT pgq_drop_topic('sub');
SELECT count(*) FROM pgq_topics;
SELECT count(*) FROM pgqueue.partition;
SELECT count(*) FROM pgqueue.segment;
