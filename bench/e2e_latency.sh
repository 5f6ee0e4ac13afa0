#!/usr/bin/env bash
# bench/e2e_latency.sh: send-to-receive latency of a long-polling consumer,
# and the CPU that idle waiting consumers burn.  Not part of the tests.
#
# Method: a throw-away server (tmp/bench, default settings: fsync and
# synchronous_commit on).  pgbench sends records at a fixed rate (-R, one
# record per transaction, autocommit) to a 1-partition topic; one consumer
# session loops over pgq_fetch(..., timeout_ms => 1000) from its last offset
# + 1 and, for every record, takes clock_timestamp() - "timestamp": the time
# from the pgq_send call (before its commit) to the moment the consumer's
# query produced the row, both on the server's clock.  Then 20 sessions wait
# in pgq_fetch on an idle topic for 5 s and their CPU ticks are read from
# /proc.  Usage: bench/e2e_latency.sh [rate] [seconds]   (defaults 1000 10)
source "$(dirname "$0")/../scripts/lib.sh"
need_root
install_packages
build_and_install

RATE=${1:-1000}
SECONDS_RUN=${2:-10}
PORT=5466
start_server bench $PORT
trap 'stop_server bench' EXIT
export PGHOST="$RUN_DIR/bench" PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

q -c "CREATE EXTENSION pgqueue" -c "SELECT pgq_create_topic('lat', 1)" -c "SELECT pgq_create_topic('idle', 1)" >/dev/null
echo "SELECT pgq_send('lat', 'payload');" > "$RUN_DIR/bench/send.sql"

# the consumer: one session, one transaction of long polls
q >"$RUN_DIR/bench/latency.txt" <<SQL &
CREATE TEMP TABLE lat (ms float8);
DO \$\$
DECLARE
    next bigint := 0;
    r record;
    stop_at timestamptz := clock_timestamp() + interval '$((SECONDS_RUN + 2)) s';
BEGIN
    WHILE clock_timestamp() < stop_at LOOP
        FOR r IN SELECT msg_offset,
                        extract(epoch FROM clock_timestamp() - "timestamp") * 1000 AS ms
                   FROM pgq_fetch('lat', 0, next, 1000, 1000)
        LOOP
            INSERT INTO lat VALUES (r.ms);
            next := r.msg_offset + 1;
        END LOOP;
    END LOOP;
END \$\$;
SELECT format('records %s  p50 %s ms  p90 %s ms  p99 %s ms  p99.9 %s ms  max %s ms', count(*),
              round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 3),
              round(percentile_cont(0.9) WITHIN GROUP (ORDER BY ms)::numeric, 3),
              round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 3),
              round(percentile_cont(0.999) WITHIN GROUP (ORDER BY ms)::numeric, 3),
              round(max(ms)::numeric, 3))
  FROM lat;
SQL
consumer=$!
sleep 1
say "producing $RATE records/s for $SECONDS_RUN s with pgbench -R"
pgbench -n -c 2 -j 2 -R "$RATE" -T "$SECONDS_RUN" -f "$RUN_DIR/bench/send.sql" 2>&1 | grep -E "tps|latency average"
wait $consumer
say "send-commit-to-receive latency"
cat "$RUN_DIR/bench/latency.txt"

say "CPU of 20 consumers waiting 5 s on an idle topic"
for i in $(seq 20); do q -c "SELECT count(*) FROM pgq_fetch('idle', 0, 0, 10, 6000)" >/dev/null & done
sleep 0.5
pids=$(q -c "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity WHERE wait_event_type = 'Extension' AND backend_type = 'client backend'")
ticks() { local t=0; for p in $pids; do set -- $(cut -d' ' -f14,15 /proc/$p/stat); t=$((t + $1 + $2)); done; echo $t; }
before=$(ticks); sleep 5; after=$(ticks)
echo "waiting backends: $(echo $pids | wc -w); CPU ticks used by all of them in 5 s: $((after - before)) (1 tick = 10 ms)"
wait
