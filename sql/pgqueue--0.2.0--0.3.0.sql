/* pgqueue--0.2.0--0.3.0.sql: update script.
 *
 * Every change of 0.3.0 to the SQL objects, in the order of the install
 * script (pgqueue--0.3.0.sql), which has the same objects.
 */

\echo Use "ALTER EXTENSION pgqueue UPDATE TO '0.3.0'" to load this file. \quit

/*
 * Consuming in a group: pgq_commit and pgq_leave return what they
 * committed (a return type cannot be changed in place); pgq_assignment.
 */
DROP FUNCTION pgq_commit(text, text);
DROP FUNCTION pgq_commit(text, text, integer, bigint, text);
DROP FUNCTION pgq_leave(text, text);

CREATE FUNCTION pgq_commit(group_id text, member_id text DEFAULT NULL)
RETURNS TABLE(topic text, partition integer, msg_offset bigint)
LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_commit';
COMMENT ON FUNCTION pgq_commit(text, text) IS
'commits the member''s positions (what its polls returned) as the group''s committed offsets, and returns them';

CREATE FUNCTION pgq_commit(group_id text, topic text, partition integer, msg_offset bigint,
                           member_id text DEFAULT NULL)
RETURNS TABLE(topic text, partition integer, msg_offset bigint)
LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_commit_offset';
COMMENT ON FUNCTION pgq_commit(text, text, integer, bigint, text) IS
'commits one offset (the next record to process) of a partition the member owns, and returns it';

CREATE FUNCTION pgq_leave(group_id text, member_id text DEFAULT NULL)
RETURNS TABLE(topic text, partition integer, msg_offset bigint)
LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_leave';
COMMENT ON FUNCTION pgq_leave(text, text) IS
'leaves the group (with auto-commit, committing the member''s positions first, which it returns): the member''s partitions are handed over at once';

CREATE FUNCTION pgq_assignment(group_id text, topic text, member_id text DEFAULT NULL)
RETURNS TABLE(partitions integer[], generation bigint)
LANGUAGE c AS 'MODULE_PATHNAME', 'pgq_assignment';
COMMENT ON FUNCTION pgq_assignment(text, text, text) IS
'the partitions the member owns in the topic now, and the generation of the group''s assignment, which changes whenever the assignment does';
