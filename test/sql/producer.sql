-- Idempotent producers: pgq_init_producer, and sends with producer_id,
-- producer_epoch and sequence (src/producer.c, docs/producers.md).
SELECT pgq_create_topic('idem', 3);

-- a new producer id each call without a transactional id, epoch 0
SELECT producer_id AS p1, producer_epoch FROM pgq_init_producer() \gset
SELECT producer_id = :p1 + 1 AS next_id, producer_epoch FROM pgq_init_producer();

-- sequences run 0, 1, 2, ... per (producer, partition); a retry of a
-- sequence appended before appends nothing and returns the first offsets
SELECT * FROM pgq_send('idem', 'a', partition => 0, producer_id => :p1, producer_epoch => 0, sequence => 0);
SELECT * FROM pgq_send('idem', 'a', partition => 0, producer_id => :p1, producer_epoch => 0, sequence => 0);
SELECT * FROM pgq_send('idem', 'b', partition => 0, producer_id => :p1, producer_epoch => 0, sequence => 1);
-- a batch consumes one sequence per record, at consecutive offsets
SELECT * FROM pgq_send_batch('idem', ARRAY['c', 'd', 'e'], partition => 0,
                             producer_id => :p1, producer_epoch => 0, sequence => 2);
SELECT * FROM pgq_send_batch('idem', ARRAY['c', 'd', 'e'], partition => 0,
                             producer_id => :p1, producer_epoch => 0, sequence => 2);
SELECT msg_offset, convert_from(value, 'UTF8') AS value FROM pgq_fetch('idem', 0, 0);

-- a gap, and a retry that is not the batch sent before: out of order (PQ001)
\set VERBOSITY sqlstate
SELECT * FROM pgq_send('idem', 'g', partition => 0, producer_id => :p1, producer_epoch => 0, sequence => 9);
SELECT * FROM pgq_send_batch('idem', ARRAY['d', 'e', 'f'], partition => 0,
                             producer_id => :p1, producer_epoch => 0, sequence => 3);
\set VERBOSITY default
SELECT * FROM pgq_send('idem', 'g', partition => 0, producer_id => :p1, producer_epoch => 0, sequence => 9);

-- older than the last 5 batches: a duplicate whose offsets are not kept (PQ002)
SELECT count(*) FROM generate_series(5, 10) s,
       LATERAL pgq_send('idem', 'r' || s, partition => 0, producer_id => :p1, producer_epoch => 0, sequence => s);
SELECT * FROM pgq_send('idem', 'a', partition => 0, producer_id => :p1, producer_epoch => 0, sequence => 0);
-- (the last 5 still answer)
SELECT * FROM pgq_send('idem', 'r6', partition => 0, producer_id => :p1, producer_epoch => 0, sequence => 6);

-- a rolled-back send was never appended: its retry appends
BEGIN;
SELECT * FROM pgq_send('idem', 'h', partition => 0, producer_id => :p1, producer_epoch => 0, sequence => 11);
ROLLBACK;
SELECT * FROM pgq_send('idem', 'i', partition => 0, producer_id => :p1, producer_epoch => 0, sequence => 12);
SELECT * FROM pgq_send('idem', 'h', partition => 0, producer_id => :p1, producer_epoch => 0, sequence => 11);
-- several sends of one producer in one transaction follow each other
BEGIN;
SELECT * FROM pgq_send('idem', 'j', partition => 0, producer_id => :p1, producer_epoch => 0, sequence => 12);
SELECT * FROM pgq_send('idem', 'k', partition => 0, producer_id => :p1, producer_epoch => 0, sequence => 13);
SELECT * FROM pgq_send('idem', 'k', partition => 0, producer_id => :p1, producer_epoch => 0, sequence => 13);
COMMIT;

-- each partition has its own sequences; the first send to one has sequence 0
SELECT * FROM pgq_send('idem', 'x', partition => 1, producer_id => :p1, producer_epoch => 0, sequence => 0);
SELECT * FROM pgq_send('idem', 'x', partition => 2, producer_id => :p1, producer_epoch => 0, sequence => 3);

-- without key or partition, a producer's records go to one partition,
-- fixed by its id, so that a retry lands where the first attempt did
SELECT producer_id AS p2 FROM pgq_init_producer() \gset
SELECT partition = :p2 % 3 AS fixed_partition, msg_offset
  FROM pgq_send('idem', 'y', producer_id => :p2, producer_epoch => 0, sequence => 0);
SELECT partition = :p2 % 3 AS fixed_partition, msg_offset
  FROM pgq_send('idem', 'y', producer_id => :p2, producer_epoch => 0, sequence => 0);
-- a keyed batch whose keys go to different partitions is refused
SELECT * FROM pgq_send_batch('idem', ARRAY['1', '2', '3', '4'], ARRAY['k1', 'k2', 'k3', 'k4'],
                             producer_id => :p2, producer_epoch => 0, sequence => 1);

-- transactional ids: the same producer id, the next epoch, which fences
-- the earlier ones (PQ003); a new epoch starts its sequences at 0
SELECT producer_id AS t, producer_epoch FROM pgq_init_producer('txn-1') \gset
SELECT :t <> :p2 AS new_id, :producer_epoch AS epoch;
SELECT * FROM pgq_send('idem', 't0', partition => 1, producer_id => :t, producer_epoch => 0, sequence => 0);
SELECT producer_id = :t AS same_id, producer_epoch FROM pgq_init_producer('txn-1');
SELECT * FROM pgq_send('idem', 't1', partition => 1, producer_id => :t, producer_epoch => 0, sequence => 1);
SELECT * FROM pgq_send('idem', 't1', partition => 2, producer_id => :t, producer_epoch => 0, sequence => 0);
SELECT * FROM pgq_send('idem', 't1', partition => 1, producer_id => :t, producer_epoch => 1, sequence => 1);
SELECT * FROM pgq_send('idem', 't1', partition => 1, producer_id => :t, producer_epoch => 1, sequence => 0);
SELECT * FROM pgq_send('idem', 't1', partition => 1, producer_id => :t, producer_epoch => 2, sequence => 0);
-- an epoch raised in a savepoint that rolls back fences nothing
BEGIN;
SAVEPOINT raise;
SELECT producer_epoch FROM pgq_init_producer('txn-1');
ROLLBACK TO SAVEPOINT raise;
COMMIT;
SELECT * FROM pgq_send('idem', 't2', partition => 1, producer_id => :t, producer_epoch => 1, sequence => 1);
-- and one raised in a transaction cannot be prepared
BEGIN;
SELECT producer_epoch FROM pgq_init_producer('txn-1');
PREPARE TRANSACTION 'raise';
-- past epoch 32767 (Kafka's are 16-bit) the id gets a new producer id, and
-- the old one is fenced whole
UPDATE pgqueue.producer SET producer_epoch = 32766 WHERE transactional_id = 'txn-1';
SELECT producer_id = :t AS same_id, producer_epoch FROM pgq_init_producer('txn-1');
SELECT * FROM pgq_send('idem', 'w', partition => 2, producer_id => :t, producer_epoch => 32767, sequence => 0);
SELECT producer_id = :t AS same_id, producer_epoch FROM pgq_init_producer('txn-1');
SELECT * FROM pgq_send('idem', 'w', partition => 2, producer_id => :t, producer_epoch => 32767, sequence => 1);
SELECT transactional_id, producer_id = :t AS same_id, producer_epoch FROM pgqueue.producer;

-- only roles with the rights of a transactional id's first user may fence
-- its producers; a role dropped leaves its ids to anyone
CREATE ROLE idem_other;
SET ROLE idem_other;
SELECT * FROM pgq_init_producer('txn-1');
SELECT producer_epoch FROM pgq_init_producer('other-tx');
RESET ROLE;
SELECT transactional_id, owner FROM pgqueue.producer WHERE transactional_id = 'other-tx';
DROP ROLE idem_other;
SELECT producer_epoch FROM pgq_init_producer('other-tx');

-- unknown producer ids (PQ004), and bad arguments
SELECT * FROM pgq_send('idem', 'u', producer_id => 1000000, producer_epoch => 0, sequence => 0);
SELECT * FROM pgq_send('idem', 'u', producer_id => :p1, producer_epoch => 0);
SELECT * FROM pgq_send('idem', 'u', producer_id => :p1, producer_epoch => 0, sequence => -1);
SELECT * FROM pgq_init_producer('');

-- sends without producer arguments are as before: no producer columns
SELECT * FROM pgq_send('idem', 'plain', partition => 0);
SELECT s.relid AS seg FROM pgqueue.segment s JOIN pgqueue.topic t USING (topic_id)
 WHERE t.name = 'idem' AND s.partition = 0 \gset
SELECT count(*) FILTER (WHERE producer_id IS NULL) AS plain,
       count(*) FILTER (WHERE producer_id IS NOT NULL) AS idempotent
  FROM :seg;

SELECT pgq_drop_topic('idem');
