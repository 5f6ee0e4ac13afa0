-- Kafka's murmur2: the published test vectors of Kafka's UtilsTest, and the
-- default partitioner's (hash & 0x7fffffff) % partitions.
SELECT k, pgq_murmur2(convert_to(k, 'UTF8')) AS hash, expected,
       pgq_murmur2(convert_to(k, 'UTF8')) = expected AS ok
  FROM (VALUES ('21', -973932308),
               ('foobar', -790332482),
               ('a-little-bit-long-string', -985981536),
               ('a-little-bit-longer-string', -1486304829),
               ('lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971),
               ('abc', 479470107),
               ('', 275646681)) v(k, expected);
-- toPositive(-790332482) % 50 = 16, as Kafka's client computes for "foobar"
SELECT pgq_partition_for_key('foobar', 50);
SELECT pgq_partition_for_key('\x'::bytea, 7);
SELECT pgq_partition_for_key('x', 0);
