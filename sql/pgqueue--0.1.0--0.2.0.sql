/* pgqueue--0.1.0--0.2.0.sql: update script.
 *
 * 0.2.0 changes no table: the catalog and the segment tables of 0.1.0 are
 * read as they are.  The views' bodies qualify every operator
 * (OPERATOR(pg_catalog.=)), so that an operator created in a schema on the
 * search_path cannot capture them; CREATE OR REPLACE VIEW keeps their
 * columns, rights and dependent objects.
 */

\echo Use "ALTER EXTENSION pgqueue UPDATE TO '0.2.0'" to load this file. \quit

CREATE OR REPLACE VIEW pgq_topic_grants AS
    SELECT t.name AS topic,
           CASE WHEN g.grantee::pg_catalog.oid OPERATOR(pg_catalog.=) 0 THEN 'public'
                ELSE g.grantee::pg_catalog.text END AS grantee,
           g.privilege
      FROM pgqueue.topic_grant g
      JOIN pgqueue.topic t ON t.topic_id OPERATOR(pg_catalog.=) g.topic_id;

CREATE OR REPLACE VIEW pgq_members AS
    SELECT m.group_id, m.member_id, t.name AS topic, m.partitions, m.lease_expires_at
      FROM pgqueue.members_info() m
      JOIN pgqueue.topic t ON t.topic_id OPERATOR(pg_catalog.=) m.topic_id;

CREATE OR REPLACE VIEW pgq_groups AS
    WITH ids AS (SELECT o.group_id FROM pgqueue.consumer_group o
                 UNION SELECT o.group_id FROM pgqueue.group_offset o
                        JOIN pgqueue.topic t ON t.topic_id OPERATOR(pg_catalog.=) o.topic_id
                 UNION SELECT m.group_id FROM pgqueue.members_info() m)
    SELECT i.group_id, pgqueue.group_effective_config(coalesce(g.config, '{}')) AS config,
           (SELECT pg_catalog.count(DISTINCT m.member_id) FROM pgqueue.members_info() m
             WHERE m.group_id OPERATOR(pg_catalog.=) i.group_id)::pg_catalog.int4 AS members
      FROM ids i
      LEFT JOIN pgqueue.consumer_group g ON g.group_id OPERATOR(pg_catalog.=) i.group_id;

CREATE OR REPLACE VIEW pgq_consumer_lag AS
    WITH consumed AS (SELECT o.group_id, o.topic_id FROM pgqueue.group_offset o
                      UNION SELECT m.group_id, m.topic_id FROM pgqueue.members_info() m)
    SELECT c.group_id, p.topic, p.partition, o.committed_offset, p.high_watermark,
           p.high_watermark OPERATOR(pg_catalog.-)
               coalesce(o.committed_offset, p.log_start_offset) AS lag,
           (SELECT m.member_id FROM pgqueue.members_info() m
             WHERE m.group_id OPERATOR(pg_catalog.=) c.group_id
               AND m.topic_id OPERATOR(pg_catalog.=) c.topic_id
               AND p.partition OPERATOR(pg_catalog.=) ANY (m.partitions)) AS owner
      FROM consumed c
      JOIN pgqueue.topic t ON t.topic_id OPERATOR(pg_catalog.=) c.topic_id
      JOIN pgq_partitions p ON p.topic OPERATOR(pg_catalog.=) t.name
      LEFT JOIN pgqueue.group_offset o
             ON o.group_id OPERATOR(pg_catalog.=) c.group_id
            AND o.topic_id OPERATOR(pg_catalog.=) c.topic_id
            AND o.partition OPERATOR(pg_catalog.=) p.partition;

