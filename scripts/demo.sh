#!/usr/bin/env bash
# scripts/demo.sh: set everything up on a fresh Debian 12 machine and run a
# visible demo on a throw-away local server (left running afterwards).
source "$(dirname "$0")/lib.sh"
need_root
install_packages
build_and_install

PORT=5488
say "starting a throw-away server in $RUN_DIR/demo (socket only, port $PORT)"
start_server demo $PORT
export PGHOST="$RUN_DIR/demo" PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres
psql() { command psql -X -q -v ON_ERROR_STOP=1 "$@"; }

psql -c "CREATE EXTENSION pgqueue"

say "a topic with 3 partitions"
psql -c "SELECT pgq_create_topic('orders', 3)" -c "SELECT * FROM pgq_topics"

say "three producer sessions send at once: keyed records land on murmur2(key) % 3"
for s in 1 2 3; do
	psql -c "SELECT s.partition, s.msg_offset, 'session $s' AS producer, k AS key
	           FROM generate_series(1, 4) i,
	                LATERAL (SELECT 'customer-' || (i % 3) AS k) kk,
	                LATERAL pgq_send('orders', json_build_object('session', $s, 'n', i)::text, k) s" &
done
wait

say "keyless records go round-robin; a transaction that rolls back leaves a gap"
psql -c "SELECT * FROM pgq_send_batch('orders', ARRAY['a', 'b', 'c'])"
psql -c "BEGIN" -c "SELECT * FROM pgq_send('orders', 'never seen', partition => 0)" -c "ROLLBACK"
psql -c "SELECT * FROM pgq_send('orders', 'after the gap', partition => 0)"

say "read every partition back by offset"
for p in 0 1 2; do
	psql -c "SELECT partition, msg_offset, convert_from(key, 'UTF8') AS key,
	                convert_from(value, 'UTF8') AS value, timestamp
	           FROM pgq_fetch('orders', $p, 0)"
done

say "the partitions view"
psql -c "SELECT * FROM pgq_partitions"

say "a consumer group: two members share the partitions (one session plays both)"
psql -c "SELECT 'worker-1' AS member, partition, msg_offset, convert_from(value, 'UTF8') AS value
           FROM pgq_poll('billing', 'orders', 100, 0, 'worker-1')" \
     -c "SELECT count(*) AS worker_2_joins FROM pgq_poll('billing', 'orders', 100, 0, 'worker-2')" \
     -c "SELECT count(*) AS worker_1_commits_and_hands_over FROM pgq_poll('billing', 'orders', 100, 0, 'worker-1')" \
     -c "SELECT * FROM pgq_send('orders', 'late order', 'customer-2')" \
     -c "SELECT 'worker-2' AS member, partition, msg_offset, convert_from(value, 'UTF8') AS value
           FROM pgq_poll('billing', 'orders', 100, 0, 'worker-2')" \
     -c "SELECT group_id, member_id, topic, partitions FROM pgq_members ORDER BY member_id" \
     -c "SELECT pgq_commit('billing', 'worker-2')" \
     -c "SELECT * FROM pgq_consumer_lag ORDER BY partition"

say "a long poll: worker-1 waits up to 5 s and is woken by a commit 1 s later"
(sleep 1; psql -c "SELECT pgq_send('orders', 'woken', partition => 0)" >/dev/null) &
psql -c "\\timing on" -c "SELECT partition, msg_offset, convert_from(value, 'UTF8') AS value
           FROM pgq_poll('billing', 'orders', 100, 5000, 'worker-1')"
wait

cat <<MSG

The demo server is still running. Connect with:
    psql -h $PGHOST -p $PORT -U postgres postgres
Stop it with:
    runuser -u postgres -- $PGBIN/pg_ctl -D $RUN_DIR/demo/data stop
MSG
