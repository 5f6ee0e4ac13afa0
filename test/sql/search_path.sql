-- The functions are safe against search_path tricks: an attacker's
-- operators, functions and tables that shadow pg_catalog's are never used.
SELECT pgq_create_topic('sp', 2);
CREATE SCHEMA evil;
CREATE TABLE evil.topic (topic_id int, name text, partitions int, config jsonb, owner oid);
CREATE FUNCTION evil.texteq_evil(text, text) RETURNS boolean
    LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'evil operator called'; END $$;
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.texteq_evil);
CREATE FUNCTION evil.int4eq_evil(int, int) RETURNS boolean
    LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'evil operator called'; END $$;
CREATE OPERATOR evil.= (LEFTARG = int, RIGHTARG = int, FUNCTION = evil.int4eq_evil);
CREATE FUNCTION evil.nextval(regclass) RETURNS bigint
    LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'evil nextval called'; END $$;
CREATE DOMAIN evil.jsonb AS integer;
CREATE DOMAIN evil.bigint AS integer;
SET search_path = evil, public, pg_catalog;
SELECT pgq_create_topic('sp2');
SELECT * FROM pgq_send('sp', 'x', 'k');
SELECT msg_offset FROM pgq_fetch('sp', pgq_partition_for_key('k', 2), 0);
SELECT pgq_alter_topic('sp', '{"retention.ms": 1}');
SELECT pgq_add_partitions('sp', 3);
SELECT topic, partitions FROM pgq_topics ORDER BY topic;
SELECT partition, high_watermark FROM pgq_partitions WHERE topic OPERATOR(pg_catalog.=) 'sp' ORDER BY partition;
-- segment tables created under the trap use pg_catalog's types
SELECT a.attname, a.atttypid::pg_catalog.regtype
  FROM pgqueue.segment s JOIN pgqueue.topic t ON t.topic_id OPERATOR(pg_catalog.=) s.topic_id
       JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) s.relid
 WHERE t.name OPERATOR(pg_catalog.=) 'sp2' AND a.attnum OPERATOR(pg_catalog.>) 0
 ORDER BY a.attnum;
SELECT pgq_drop_topic('sp');
SELECT pgq_drop_topic('sp2');
RESET search_path;
DROP SCHEMA evil CASCADE;
