-- pgq_fetch flushes the WAL before serving records (so a served record is
-- durable even with synchronous_commit = off).  It must also work when the
-- WAL insert position sits just past a page header (the previous record
-- ended exactly on a page boundary): flushing past the end of the WAL
-- generated so far would be an error.
SELECT pgq_create_topic('flush', 1);
SELECT * FROM pgq_send('flush', 'hello');
DO $$
DECLARE
    pos bigint;
    room bigint;
    n int;
BEGIN
    FOR i IN 1..20 LOOP
        pos := pg_current_wal_insert_lsn() - '0/0'::pg_lsn;
        IF pos % 8192 = 24 THEN
            SELECT count(*) INTO n FROM pgq_fetch('flush', 0, 0, 10);
            RAISE NOTICE 'fetched % record(s) at a page boundary', n;
            RETURN;
        END IF;
        room := 8192 - pos % 8192;
        -- a logical message record of exactly the room left on the page
        -- (24 bytes of record header, 5 of data header, 24 of message
        -- header, 2 of prefix)
        PERFORM pg_logical_emit_message(false, 'p',
                    repeat('x', (CASE WHEN room > 300 THEN room - 55 ELSE 500 END)::int));
    END LOOP;
    RAISE EXCEPTION 'did not reach a page boundary';
END $$;
SET synchronous_commit = off;
SELECT * FROM pgq_send('flush', 'async');
SELECT pg_current_wal_flush_lsn() >= pg_current_wal_insert_lsn() - 24 AS flushed_after_fetch
  FROM (SELECT count(*) FROM pgq_fetch('flush', 0, 0)) f;
RESET synchronous_commit;
SELECT pgq_drop_topic('flush');
