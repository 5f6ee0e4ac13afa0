-- The per-session topic cache keeps nothing for topics that do not exist:
-- looking up 100 missing names (erroring and missing_ok lookups) leaves no
-- 'pgqueue topic' memory context behind.
SELECT pgq_create_topic('cache_t');
SELECT count(*) FROM pgq_send('cache_t', 'v');          -- cache one real topic
SELECT count(*) AS contexts_before FROM pg_backend_memory_contexts WHERE name = 'pgqueue topic' \gset
SET client_min_messages = warning;
DO $$
BEGIN
	FOR i IN 1..50 LOOP
		BEGIN
			PERFORM * FROM pgq_fetch('nosuch' || i, 0, 0);
		EXCEPTION WHEN undefined_object THEN
			NULL;
		END;
		PERFORM pgq_drop_topic('nosuch.either' || i, if_exists => true);
	END LOOP;
END $$;
RESET client_min_messages;
SELECT count(*) - :contexts_before AS contexts_added
  FROM pg_backend_memory_contexts WHERE name = 'pgqueue topic';
-- a topic dropped after it was cached is forgotten too, and one created
-- again under the same name is found
SELECT pgq_drop_topic('cache_t');
SELECT * FROM pgq_fetch('cache_t', 0, 0);
SELECT count(*) AS contexts_after_drop
  FROM pg_backend_memory_contexts WHERE name = 'pgqueue topic';
SELECT pgq_create_topic('cache_t');
SELECT msg_offset FROM pgq_send('cache_t', 'again');
SELECT pgq_drop_topic('cache_t');
