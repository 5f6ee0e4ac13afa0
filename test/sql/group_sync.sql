-- Group membership without records (pgq_sync_member): a member that joins,
-- renews and gives up partitions without polling shares one balance with
-- pgq_poll members, never owning a partition another member owns; the
-- generation changes with the assignment; partitions taken from it stay
-- its own until it says it gave them up; its own session timeout.
\pset null '<null>'
SELECT pgq_create_topic('gs', 4);
SELECT count(*) FROM generate_series(0, 3) p, generate_series(1, 3) i,
       LATERAL pgq_send('gs', 'p' || p || '-' || i, partition => p);

-- no partition ever has two owners (checked after every step below)
CREATE FUNCTION shared_partitions(g text) RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM (SELECT p FROM pgq_members, unnest(partitions) p
                           WHERE group_id = g GROUP BY p HAVING count(*) > 1) s $$;
CREATE TEMP TABLE gen (name text PRIMARY KEY, generation bigint);

-- a Kafka-style member joins (an eager client lists nothing held): it gets all
INSERT INTO gen SELECT 'k1 joined', generation
  FROM pgq_sync_member('gsync', 'gs', 'k1', '{}', 60000);
SELECT partitions FROM pgq_sync_member('gsync', 'gs', 'k1', '{}');
-- nothing changed: the same generation, also when it gives up everything and
-- takes it back in one call
SELECT generation = (SELECT generation FROM gen WHERE name = 'k1 joined') AS same
  FROM pgq_sync_member('gsync', 'gs', 'k1');
SELECT generation = (SELECT generation FROM gen WHERE name = 'k1 joined') AS same
  FROM pgq_sync_member('gsync', 'gs', 'k1', '{}');
SELECT generation = (SELECT generation FROM gen WHERE name = 'k1 joined') AS same
  FROM pgq_sync_member('gsync', 'gs', 'k1', '{0,1,2,3}');

-- a polling member joins: it reads nothing while k1 holds every partition
SELECT count(*) FROM pgq_poll('gsync', 'gs', 100, 0, 'p1');
SELECT member_id, partitions FROM pgq_members WHERE group_id = 'gsync' ORDER BY 1;
SELECT shared_partitions('gsync');
-- k1's next sync: its target is its share, with a new generation; it still
-- owns (holds) the other two until it gives them up, so p1 still waits
INSERT INTO gen SELECT 'p1 joined', generation FROM pgq_sync_member('gsync', 'gs', 'k1');
SELECT partitions, generation > (SELECT generation FROM gen WHERE name = 'k1 joined') AS new_generation
  FROM pgq_sync_member('gsync', 'gs', 'k1');
SELECT count(*) FROM pgq_poll('gsync', 'gs', 100, 0, 'p1');
SELECT member_id, partitions FROM pgq_members WHERE group_id = 'gsync' ORDER BY 1;
SELECT shared_partitions('gsync');
-- it may still commit what it holds beyond its target (before revoking it)
SELECT * FROM pgq_commit('gsync', 'gs', 3, 2, 'k1');
-- a cooperative client lists what it kept: the rest is released at once,
-- and the generation changes
SELECT partitions, generation > (SELECT generation FROM gen WHERE name = 'p1 joined') AS new_generation
  FROM pgq_sync_member('gsync', 'gs', 'k1', '{0,1}');
SELECT member_id, partitions FROM pgq_members WHERE group_id = 'gsync' ORDER BY 1;
-- the polling member takes them at its next poll, from the committed offsets
SELECT partition, msg_offset FROM pgq_poll('gsync', 'gs', 100, 0, 'p1') ORDER BY 1, 2;
SELECT member_id, partitions FROM pgq_members WHERE group_id = 'gsync' ORDER BY 1;
SELECT shared_partitions('gsync');
-- a partition the member does not own in its list changes nothing
SELECT partitions FROM pgq_sync_member('gsync', 'gs', 'k1', '{0,1,2}');
SELECT shared_partitions('gsync');

-- when the polling member leaves, the syncing one claims its partitions
SELECT count(*) FROM pgq_leave('gsync', 'p1');
SELECT partitions FROM pgq_sync_member('gsync', 'gs', 'k1');

-- a partition given up in a transaction that committed its offset is
-- released only when the transaction ends (the next owner must see the commit)
SELECT partitions FROM pgq_sync_member('gsync', 'gs', 'k2', '{}');
SELECT partitions FROM pgq_sync_member('gsync', 'gs', 'k1');
BEGIN;
SELECT * FROM pgq_commit('gsync', 'gs', 2, 1, 'k1', metadata => 'before revoke');
SELECT partitions FROM pgq_sync_member('gsync', 'gs', 'k1', '{0,1,3}');
SELECT member_id, partitions FROM pgq_members WHERE group_id = 'gsync' ORDER BY 1;
COMMIT;
SELECT member_id, partitions FROM pgq_members WHERE group_id = 'gsync' ORDER BY 1;
SELECT partitions FROM pgq_sync_member('gsync', 'gs', 'k1', '{0,1}');
SELECT partitions FROM pgq_sync_member('gsync', 'gs', 'k2', '{}');
SELECT shared_partitions('gsync');
SELECT partitions FROM pgq_assignment('gsync', 'gs', 'k2');
SELECT count(*) FROM pgq_leave('gsync', 'k1');
SELECT count(*) FROM pgq_leave('gsync', 'k2');

-- a member's own session timeout: its lease, renewed by its heartbeats too
SELECT partitions FROM pgq_sync_member('gshort', 'gs', 'brief', NULL, 300);
SELECT lease_expires_at < now() + interval '10 seconds' AS own_timeout
  FROM pgq_members WHERE member_id = 'brief';
SELECT pgq_heartbeat('gshort', 'brief');
SELECT lease_expires_at < clock_timestamp() + interval '10 seconds' AS own_timeout
  FROM pgq_members WHERE member_id = 'brief';
-- a sync without a timeout keeps the member's own
SELECT partitions FROM pgq_sync_member('gshort', 'gs', 'brief');
SELECT lease_expires_at < clock_timestamp() + interval '10 seconds' AS own_timeout
  FROM pgq_members WHERE member_id = 'brief';
-- silent past it, it loses its partitions to the next member that syncs
SELECT pg_sleep(0.5);
SELECT count(*) FROM pgq_members WHERE member_id = 'brief';
SELECT partitions FROM pgq_sync_member('gshort', 'gs', 'patient');
SELECT member_id, partitions FROM pgq_members WHERE group_id = 'gshort';
SELECT pgq_assignment('gshort', 'gs', 'brief');
SELECT count(*) FROM pgq_leave('gshort', 'patient');

-- a session member (no member_id)
SELECT partitions FROM pgq_sync_member('gsession', 'gs');
SELECT count(*) FROM pgq_members WHERE group_id = 'gsession' AND member_id LIKE 'session-%';
SELECT count(*) FROM pgq_leave('gsession');

-- bad input
SELECT pgq_sync_member(NULL, 'gs', 'k');
SELECT pgq_sync_member('g', NULL, 'k');
SELECT pgq_sync_member('g', 'nosuch', 'k');
SELECT pgq_sync_member('g', 'gs', '');
SELECT pgq_sync_member('g', 'gs', 'k', '{4}');
SELECT pgq_sync_member('g', 'gs', 'k', '{-1}');
SELECT pgq_sync_member('g', 'gs', 'k', '{0,NULL}');
SELECT pgq_sync_member('g', 'gs', 'k', NULL, 99);
BEGIN READ ONLY;
SELECT pgq_sync_member('g', 'gs', 'k');
ROLLBACK;
SELECT count(*) FROM pgq_members WHERE group_id = 'g';
-- the right to consume the topic
CREATE ROLE sync_nobody;
CREATE ROLE sync_consumer;
SELECT pgq_grant('gs', 'sync_consumer', 'consume');
SET ROLE sync_nobody;
SELECT pgq_sync_member('gpriv', 'gs', 'x');
RESET ROLE;
SET ROLE sync_consumer;
SELECT partitions FROM pgq_sync_member('gpriv', 'gs', 'x');
SELECT count(*) FROM pgq_leave('gpriv', 'x');
RESET ROLE;
SELECT pgq_drop_topic('gs');
DROP ROLE sync_nobody;
DROP ROLE sync_consumer;
