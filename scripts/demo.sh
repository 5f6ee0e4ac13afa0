#!/usr/bin/env bash
# scripts/demo.sh: set everything up on a fresh Debian 12 machine and run a
# visible demo on a throw-away local server (left running afterwards).
source "$(dirname "$0")/lib.sh"
need_root
install_packages
build_and_install

PORT=5488
KAFKA_PORT=9092
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

say "Kafka clients: pgqueue-kafka speaks Kafka's protocol on 127.0.0.1:$KAFKA_PORT"
# a gateway left by an earlier demo goes first
if [ -f "$RUN_DIR/demo-gateway.pid" ]; then
	kill "$(cat "$RUN_DIR/demo-gateway.pid")" 2>/dev/null || true
	sleep 1
fi
"$PGBIN/pgqueue-kafka" --listen "127.0.0.1:$KAFKA_PORT" \
	--conninfo "host=$PGHOST port=$PORT user=postgres dbname=postgres" \
	>"$RUN_DIR/demo-gateway.log" 2>&1 &
echo $! >"$RUN_DIR/demo-gateway.pid"
for _ in $(seq 50); do
	kcat -b "127.0.0.1:$KAFKA_PORT" -L -m 1 >/dev/null 2>&1 && break
	sleep 0.2
done
KCAT=(kcat -b "127.0.0.1:$KAFKA_PORT" -m 10)
echo "\$ kcat -L   # the topics, with the gateway as the leader of every partition"
"${KCAT[@]}" -L -t orders

echo "\$ kcat -P   # produce two keyed records; murmur2_random is pgq_send's partitioner"
printf 'customer-42:{"id":2}\ncustomer-7:{"id":3}\n' |
	"${KCAT[@]}" -P -t orders -K: -X topic.partitioner=murmur2_random -X acks=all
psql -c "SELECT f.partition, f.msg_offset, convert_from(f.key, 'UTF8') AS key, convert_from(f.value, 'UTF8') AS value
           FROM generate_series(0, 2) p, LATERAL pgq_fetch('orders', p, 0) f
          WHERE convert_from(f.key, 'UTF8') IN ('customer-42', 'customer-7')"

echo "\$ kcat -C -o beginning -e   # consume every partition to its end, gaps and all"
"${KCAT[@]}" -C -t orders -o beginning -e -q -f 'partition %p offset %o key %k: %s\n'

echo "\$ kcat -G kafka-billing orders   # a Kafka consumer group, seen by pgq_consumer_lag"
timeout 20 "${KCAT[@]}" -G kafka-billing -e -q -X auto.offset.reset=earliest \
	-f '%p/%o ' orders || true
echo
psql -c "SELECT group_id, topic, partition, committed_offset, lag FROM pgq_consumer_lag
          WHERE group_id = 'kafka-billing' ORDER BY partition"

cat <<MSG

The demo server and its Kafka gateway are still running. Connect with:
    psql -h $PGHOST -p $PORT -U postgres postgres
    kcat -b 127.0.0.1:$KAFKA_PORT -L
Stop them with:
    kill \$(cat $RUN_DIR/demo-gateway.pid)
    runuser -u postgres -- $PGBIN/pg_ctl -D $RUN_DIR/demo/data stop
MSG
