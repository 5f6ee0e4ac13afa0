-- The SQL surface of SPEC.md: functions with their signatures, the views
-- with their columns, the comments, and the internal schema closed to PUBLIC.
BEGIN;
SELECT plan(66);

SELECT has_function('pgq_create_topic', ARRAY['text', 'integer', 'jsonb', 'boolean']);
SELECT has_function('pgq_drop_topic', ARRAY['text', 'boolean']);
SELECT has_function('pgq_add_partitions', ARRAY['text', 'integer']);
SELECT has_function('pgq_alter_topic', ARRAY['text', 'jsonb']);
SELECT has_type('pgq_payload');
SELECT has_type('pgq_payloads');
SELECT has_function('pgq_send', ARRAY['text', 'pgq_payload', 'pgq_payload', 'integer', 'jsonb',
                                       'timestamp with time zone', 'bigint', 'integer', 'integer']);
SELECT has_function('pgq_send', ARRAY['text', 'jsonb', 'pgq_payload', 'integer', 'jsonb',
                                       'timestamp with time zone', 'bigint', 'integer', 'integer']);
SELECT has_function('pgq_send_batch', ARRAY['text', 'pgq_payloads', 'pgq_payloads', 'integer', 'jsonb[]',
                                             'timestamp with time zone[]', 'bigint', 'integer', 'integer']);
SELECT has_function('pgq_send_batch', ARRAY['text', 'jsonb[]', 'pgq_payloads', 'integer', 'jsonb[]',
                                             'timestamp with time zone[]', 'bigint', 'integer', 'integer']);
SELECT has_function('pgq_init_producer', ARRAY['text']);
SELECT is(pg_get_function_result('pgq_init_producer(text)'::regprocedure),
          'TABLE(producer_id bigint, producer_epoch integer)', 'pgq_init_producer returns (producer_id, producer_epoch)');
SELECT has_function('pgq_fetch', ARRAY['text', 'integer', 'bigint', 'integer', 'integer']);
SELECT has_function('pgq_offsets_for_time', ARRAY['text', 'timestamp with time zone']);
SELECT has_function('pgq_grant', ARRAY['text', 'text', 'text']);
SELECT has_function('pgq_revoke', ARRAY['text', 'text', 'text']);
SELECT has_function('pgq_murmur2', ARRAY['bytea']);

SELECT has_function('pgq_poll', ARRAY['text', 'text', 'integer', 'integer', 'text']);
SELECT has_function('pgq_commit', ARRAY['text', 'text']);
SELECT has_function('pgq_commit', ARRAY['text', 'text', 'integer', 'bigint', 'text', 'text']);
SELECT has_function('pgq_committed_offsets', ARRAY['text', 'text', 'integer[]']);
SELECT has_function('pgq_sync_member', ARRAY['text', 'text', 'text', 'integer[]', 'integer']);
SELECT has_function('pgq_heartbeat', ARRAY['text', 'text']);
SELECT has_function('pgq_leave', ARRAY['text', 'text']);
SELECT has_function('pgq_assignment', ARRAY['text', 'text', 'text']);
SELECT has_function('pgq_join', ARRAY['text', 'text']);
SELECT function_returns('pgq_commit', ARRAY['text', 'text'], 'setof record');
SELECT function_returns('pgq_leave', ARRAY['text', 'text'], 'setof record');
SELECT has_function('pgq_seek', ARRAY['text', 'text', 'integer', 'bigint', 'text']);
SELECT has_function('pgq_seek', ARRAY['text', 'text', 'text', 'text']);
SELECT has_function('pgq_seek', ARRAY['text', 'text', 'timestamp with time zone', 'text']);
SELECT has_function('pgq_reset_offsets', ARRAY['text', 'text', 'text']);
SELECT has_function('pgq_reset_offsets', ARRAY['text', 'text', 'integer', 'bigint']);
SELECT has_function('pgq_reset_offsets', ARRAY['text', 'text', 'timestamp with time zone']);
SELECT has_function('pgq_alter_group', ARRAY['text', 'jsonb']);
SELECT has_function('pgq_drop_group', ARRAY['text', 'boolean']);
SELECT columns_are('pgq_members', ARRAY['group_id', 'member_id', 'topic', 'partitions', 'lease_expires_at']);
SELECT columns_are('pgq_groups', ARRAY['group_id', 'config', 'members']);
SELECT columns_are('pgq_consumer_lag', ARRAY['group_id', 'topic', 'partition', 'committed_offset',
                                             'high_watermark', 'lag', 'owner', 'metadata']);
SELECT is(pg_get_function_result('pgq_poll(text, text, integer, integer, text)'::regprocedure),
          'TABLE(topic text, partition integer, msg_offset bigint, key bytea, value bytea, headers jsonb, "timestamp" timestamp with time zone)',
          'pgq_poll returns the record columns');
SELECT columns_are('pgq_topics', ARRAY['topic', 'partitions', 'config', 'created_at']);
SELECT columns_are('pgq_partitions', ARRAY['topic', 'partition', 'log_start_offset', 'high_watermark',
                                           'last_stable_offset', 'messages', 'bytes']);
SELECT col_type_is('pgq_partitions', 'high_watermark', 'bigint');

-- the output columns of pgq_send and pgq_fetch
SELECT is(pg_get_function_result('pgq_send(text, pgq_payload, pgq_payload, integer, jsonb, timestamptz, bigint, integer, integer)'::regprocedure),
          'TABLE(partition integer, msg_offset bigint)', 'pgq_send returns (partition, msg_offset)');
SELECT is(pg_get_function_result('pgq_fetch(text, integer, bigint, integer, integer)'::regprocedure),
          'TABLE(topic text, partition integer, msg_offset bigint, key bytea, value bytea, headers jsonb, "timestamp" timestamp with time zone)',
          'pgq_fetch returns the record columns');
SELECT is(pg_get_function_arguments('pgq_fetch(text, integer, bigint, integer, integer)'::regprocedure),
          'topic text, partition integer, msg_offset bigint, max_records integer DEFAULT 100, timeout_ms integer DEFAULT 0',
          'pgq_fetch takes the arguments of the spec');

-- no overload ambiguity: the calls of the spec resolve
SELECT lives_ok($$SELECT pgq_create_topic('api_t')$$, 'create with defaults');
SELECT lives_ok($$SELECT * FROM pgq_send('api_t', '{"id":1}')$$, 'send an untyped literal');
SELECT lives_ok($$SELECT * FROM pgq_send('api_t', 'v', 'k')$$, 'send with an untyped key');
SELECT lives_ok($$SELECT * FROM pgq_send('api_t', 'v', partition => 0)$$, 'send with a named partition');
SELECT lives_ok($$SELECT * FROM pgq_send('api_t', '{"a":1}'::jsonb, 'k')$$, 'send jsonb with a text key');
SELECT lives_ok($$SELECT * FROM pgq_send_batch('api_t', ARRAY['a', 'b'])$$, 'send a text[] batch');
SELECT lives_ok($$SELECT * FROM pgq_send_batch('api_t', '{a,b}', '{k,l}')$$, 'send an untyped batch');
SELECT lives_ok($$SELECT * FROM pgq_send('api_t', 'v'::varchar, 'k'::varchar)$$, 'send varchar');
SELECT lives_ok($$SELECT * FROM pgq_send('api_t', '{"a":1}'::json, '\x01'::bytea)$$, 'send json with a bytea key');

-- pgq_send_batch with each kind of values and keys (cast to pgq_payloads,
-- or jsonb[] values)
SELECT is((SELECT count(*) FROM pgq_send_batch('api_t', ARRAY['\x01'::bytea], ARRAY['\x02'::bytea])),
          1::bigint, 'batch of bytea values and bytea keys');
SELECT is((SELECT count(*) FROM pgq_send_batch('api_t', ARRAY['v'::text], ARRAY['k'::text])),
          1::bigint, 'batch of text values and text keys');
SELECT is((SELECT count(*) FROM pgq_send_batch('api_t', ARRAY['{"a":1}'::jsonb], ARRAY['k'::text])),
          1::bigint, 'batch of jsonb values and text keys');
SELECT is((SELECT count(*) FROM pgq_send_batch('api_t', ARRAY['\x01'::bytea], ARRAY['k'::text])),
          1::bigint, 'batch of bytea values and text keys');
SELECT is((SELECT count(*) FROM pgq_send_batch('api_t', ARRAY['v'::text], ARRAY['\x02'::bytea])),
          1::bigint, 'batch of text values and bytea keys');

-- an untyped NULL for keys is not ambiguous (keys are pgq_payloads in both
-- overloads); a cast still works
SELECT lives_ok($$SELECT * FROM pgq_send_batch('api_t', ARRAY['x'], NULL)$$,
                'an untyped NULL keys array resolves');
SELECT lives_ok($$SELECT * FROM pgq_send_batch('api_t', ARRAY['x'], NULL::text[])$$,
                'a NULL keys array cast to text[] too');

-- every function has a comment
SELECT is((SELECT count(*) FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
            WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pgqueue') AND d.deptype = 'e'
              AND obj_description(p.oid, 'pg_proc') IS NULL), 0::bigint, 'every function has a comment');

-- the internal schema and segment tables are closed to PUBLIC
SELECT ok(NOT has_schema_privilege('public', 'pgqueue', 'USAGE'), 'PUBLIC has no usage on schema pgqueue');
SELECT ok(NOT EXISTS (SELECT 1 FROM pgqueue.segment s WHERE has_table_privilege('public', s.relid, 'INSERT')),
          'PUBLIC cannot write segment tables');
SELECT ok(NOT has_function_privilege('public', 'pgq_create_topic(text, integer, jsonb, boolean)', 'EXECUTE'),
          'creating topics needs a grant');

SELECT * FROM finish();
ROLLBACK;
