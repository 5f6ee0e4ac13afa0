-- pgq_send_batch's per-record timestamps: stored as given (Kafka's
-- CreateTime), now() for a NULL element or a NULL array; one element per value.
SELECT pgq_create_topic('bts', 2);
SELECT partition, msg_offset FROM pgq_send_batch('bts', ARRAY['a', 'b', 'c', 'd'], partition => 0,
  timestamps => ARRAY['2020-01-01 00:00:00+00', NULL, '1999-12-31 23:59:59.999999+00', '2020-01-01 00:00:00+00']::timestamptz[]);
SELECT msg_offset, convert_from(value, 'UTF8') AS value,
       CASE WHEN "timestamp" < '2021-01-01' THEN "timestamp"::text ELSE 'recent' END AS "timestamp",
       "timestamp" BETWEEN now() - interval '1 minute' AND clock_timestamp() AS now_ish
  FROM pgq_fetch('bts', 0, 0);
-- a NULL array: the time of the call for every record
SELECT count(*) FROM pgq_send_batch('bts', ARRAY['e', 'f'], partition => 1, timestamps => NULL);
SELECT count(*) FILTER (WHERE "timestamp" BETWEEN now() - interval '1 minute' AND clock_timestamp()) AS now_ish
  FROM pgq_fetch('bts', 1, 0);
-- with keys and the jsonb overload too, records spread over partitions
CREATE TABLE sent AS
  SELECT u.k, s.partition, s.msg_offset
    FROM unnest(ARRAY['k1', 'k2', 'k3']) WITH ORDINALITY AS u(k, n)
    JOIN pgq_send_batch('bts', ARRAY['{"i":1}', '{"i":2}', '{"i":3}']::jsonb[], ARRAY['k1', 'k2', 'k3'],
                        timestamps => ARRAY['2001-01-01', '2002-01-01', '2003-01-01']::timestamptz[])
         WITH ORDINALITY AS s(partition, msg_offset, n) USING (n);
SELECT s.k, s.partition = pgq_partition_for_key(convert_to(s.k, 'UTF8'), 2) AS kafka_partition,
       convert_from(f.value, 'UTF8') AS value, f."timestamp"
  FROM sent s CROSS JOIN LATERAL pgq_fetch('bts', s.partition, s.msg_offset, 1) f
  ORDER BY s.k;
DROP TABLE sent;
-- pgq_offsets_for_time reads the stored timestamps
SELECT * FROM pgq_offsets_for_time('bts', '2010-01-01') ORDER BY partition;
-- bad input
SELECT pgq_send_batch('bts', ARRAY['a', 'b'], timestamps => ARRAY['2020-01-01']::timestamptz[]);
SELECT pgq_send_batch('bts', ARRAY['a'], timestamps => ARRAY[['2020-01-01']]::timestamptz[]);
SELECT pgq_send_batch('bts', ARRAY['a'], timestamps => ARRAY['2020-01-01', '2020-01-02']::timestamptz[]);
SELECT pgq_drop_topic('bts');
