-- Per-topic rights: produce, consume, admin; who may create topics.
CREATE ROLE pgq_owner LOGIN;
CREATE ROLE pgq_producer LOGIN;
CREATE ROLE pgq_consumer LOGIN;
CREATE ROLE pgq_nobody LOGIN;
CREATE ROLE pgq_group NOLOGIN;
CREATE ROLE pgq_member LOGIN IN ROLE pgq_group;

-- creating topics needs EXECUTE on pgq_create_topic (revoked from PUBLIC)
SET ROLE pgq_owner;
SELECT pgq_create_topic('secure');
RESET ROLE;
GRANT EXECUTE ON FUNCTION pgq_create_topic(text, integer, jsonb, boolean) TO pgq_owner;
SET ROLE pgq_owner;
SELECT pgq_create_topic('secure', 2);
-- the owner may do everything
SELECT * FROM pgq_send('secure', 'by owner', partition => 0);
SELECT count(*) FROM pgq_fetch('secure', 0, 0);
SELECT pgq_grant('secure', 'pgq_producer', 'produce');
SELECT pgq_grant('secure', 'pgq_consumer', 'consume');
SELECT pgq_grant('secure', 'pgq_group', 'consume');
RESET ROLE;
SELECT * FROM pgq_topic_grants ORDER BY grantee, privilege;

-- without rights: permission denied, and nothing changes
SET ROLE pgq_nobody;
SELECT pgq_send('secure', 'x');
SELECT pgq_send_batch('secure', ARRAY['x']);
SELECT pgq_fetch('secure', 0, 0);
SELECT pgq_offsets_for_time('secure', now());
SELECT pgq_alter_topic('secure', '{"retention.ms": 1}');
SELECT pgq_add_partitions('secure', 3);
SELECT pgq_drop_topic('secure');
SELECT pgq_grant('secure', 'pgq_nobody', 'all');
SELECT * FROM pgqueue.topic;
SELECT * FROM pgqueue.segment;
-- the views are readable by everyone
SELECT topic, partitions FROM pgq_topics WHERE topic = 'secure';
SELECT partition, high_watermark FROM pgq_partitions WHERE topic = 'secure' ORDER BY partition;
RESET ROLE;

-- produce only
SET ROLE pgq_producer;
SELECT * FROM pgq_send('secure', 'by producer', partition => 0);
SELECT pgq_fetch('secure', 0, 0);
SELECT pgq_drop_topic('secure');
RESET ROLE;

-- consume only, directly or through a role's membership
SET ROLE pgq_consumer;
SELECT msg_offset, convert_from(value, 'UTF8') FROM pgq_fetch('secure', 0, 0);
SELECT pgq_send('secure', 'x');
RESET ROLE;
SET ROLE pgq_member;
SELECT count(*) FROM pgq_fetch('secure', 0, 0);
SELECT pgq_send('secure', 'x');
RESET ROLE;

-- a member of a group can only be kept alive or made to leave by a role
-- that may consume its topics
SET ROLE pgq_consumer;
SELECT count(*) FROM pgq_poll('secure_g', 'secure', 10, 0, 'victim');
RESET ROLE;
SET ROLE pgq_nobody;
SELECT pgq_heartbeat('secure_g', 'victim');
SELECT pgq_leave('secure_g', 'victim');
RESET ROLE;
SELECT member_id, partitions FROM pgq_members WHERE group_id = 'secure_g';
SET ROLE pgq_consumer;
SELECT pgq_heartbeat('secure_g', 'victim');
SELECT pgq_leave('secure_g', 'victim');
RESET ROLE;
SELECT count(*) FROM pgq_members WHERE group_id = 'secure_g';

-- revoke takes effect at once, also in a session that used the right
SET ROLE pgq_producer;
SELECT partition FROM pgq_send('secure', 'before revoke', partition => 1);
RESET ROLE;
SELECT pgq_revoke('secure', 'pgq_producer', 'produce');
SET ROLE pgq_producer;
SELECT pgq_send('secure', 'after revoke');
RESET ROLE;

-- admin right: may alter, grant and drop; public grants
SELECT pgq_grant('secure', 'pgq_nobody', 'admin');
SET ROLE pgq_nobody;
SELECT pgq_alter_topic('secure', '{"retention.ms": 1000}');
SELECT pgq_grant('secure', 'public', 'produce');
RESET ROLE;
SET ROLE pgq_consumer;
SELECT partition FROM pgq_send('secure', 'via public', partition => 1);
RESET ROLE;
SELECT pgq_revoke('secure', 'public', 'all');
SET ROLE pgq_consumer;
SELECT pgq_send('secure', 'x');
RESET ROLE;

-- bad grants
SELECT pgq_grant('secure', 'no_such_role', 'produce');
SELECT pgq_grant('secure', 'pgq_consumer', 'write');
SELECT pgq_grant('secure', NULL, 'produce');
SELECT pgq_grant('nope', 'pgq_consumer', 'produce');

SET ROLE pgq_nobody;
SELECT pgq_drop_topic('secure');
RESET ROLE;
SELECT count(*) FROM pgq_topic_grants;

REVOKE EXECUTE ON FUNCTION pgq_create_topic(text, integer, jsonb, boolean) FROM pgq_owner;
DROP ROLE pgq_owner, pgq_producer, pgq_consumer, pgq_nobody, pgq_member, pgq_group;
