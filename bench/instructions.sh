#!/usr/bin/env bash
# bench/instructions.sh: CPU instructions per message of the psycopg
# workloads (bench/driver.py), pgqueue against the plain table, counted by
# callgrind in the server backend that serves the driver.  Instruction
# counts do not depend on what else the machine runs, so unlike the timed
# suite this can be run on a shared, noisy machine and compared across
# commits.  Not part of the tests or of CI.
#
#   bench/instructions.sh [--no-build] [--port P] [--batches N] [--annotate]
#
# A throw-away server (tmp/bench_instr, a fresh initdb, Unix socket only,
# stock settings but fsync = off) runs under valgrind --tool=callgrind; the
# backends it forks stay under callgrind, and each writes its counts when it
# exits.  For each system the driver runs twice, each time in a new backend:
#   P2py: 10 warm-up batches of 1000 records (psycopg prepares the statement
#         after 5); then again, followed by N measured batches (default 20);
#   C1py: after a pre-load of (N + 10) x 1000 messages by pgbench (as
#         bench/run.sh does, not counted), 5 warm-up polls and commits; then
#         again, followed by N measured ones;
# instructions per message = (the second backend's total - the first's) /
# (N x 1000): connecting, warming up and exiting cancel out.  The client's
# own instructions are not counted, nor those of the WAL writer or of other
# processes.
#
# --annotate also prints each dump's top functions, inclusive
# (callgrind_annotate --inclusive=yes), to see where the instructions go.
# Output: bench/results/instr-<time>/ (instructions.md, the dumps).
# About 5 minutes (everything runs about 50 times slower under callgrind).
source "$(dirname "$0")/../scripts/lib.sh"

BUILD=1 PORT=5456 N=20 ANNOTATE=0
while [ $# -gt 0 ]; do
	case $1 in
	--no-build) BUILD=0 ;;
	--port) PORT=$2; shift ;;
	--batches) N=$2; shift ;;
	--annotate) ANNOTATE=1 ;;
	-h | --help) sed -n '2,/^source/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done

need_root
install_packages
for p in valgrind python3-psycopg; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$p" >/dev/null
done
if [ "$BUILD" = 1 ]; then build_and_install; else set_paths; fi

OUT="$ROOT/bench/results/instr-$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
chown postgres: "$OUT"
NAME=bench_instr
DIR="$RUN_DIR/$NAME"
export PGHOST=$DIR PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres
q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

# the cluster as start_server makes it, then its postmaster under callgrind
start_server "$NAME" "$PORT" "fsync = off"
stop_server "$NAME"
VG_PID=
cleanup() {
	if [ -n "$VG_PID" ]; then
		runuser -u postgres -- "$PGBIN/pg_ctl" -D "$DIR/data" -m fast -w -t 120 stop >/dev/null 2>&1 || kill "$VG_PID" 2>/dev/null || true
		wait "$VG_PID" 2>/dev/null || true
	fi
	rm -rf "$DIR/data"
	rm -f "$OUT"/callgrind.*	# the other processes' counts
}
trap cleanup EXIT
say "starting the server under callgrind ($DIR, port $PORT)"
runuser -u postgres -- valgrind --tool=callgrind --quiet --callgrind-out-file="$OUT/callgrind.%p" \
	"$PGBIN/postgres" -D "$DIR/data" >"$OUT/server.log" 2>&1 &
VG_PID=$!
for _ in $(seq 300); do
	"$PGBIN/pg_isready" -q && break
	sleep 0.5
done
q -c "CREATE EXTENSION pgqueue" -c "CREATE TABLE plain_cursor (consumer text PRIMARY KEY, partition int, pos bigint)"

reset() { # SYS NAME
	case $1 in
	pgqueue) q -c "SELECT pgq_drop_topic('$2', true)" -c "SELECT pgq_create_topic('$2', 1)" >/dev/null ;;
	plain) q -c "DROP TABLE IF EXISTS plain_$2; DROP SEQUENCE IF EXISTS plain_$2_seq; CREATE SEQUENCE plain_$2_seq;
CREATE TABLE plain_$2 (partition int, msg_offset bigint DEFAULT nextval('plain_$2_seq'), key text, value bytea,
                       ts timestamptz DEFAULT now(), PRIMARY KEY (partition, msg_offset))" ;;
	esac
}

# backend_total SYS WORKLOAD TAG DRIVER-ARGS...: runs the driver and prints
# the instructions of the backend that served it (its callgrind dump, written
# when it exits at the driver's disconnection)
backend_total() {
	local sys=$1 w=$2 tag=$3 pidfile="$OUT/$2-$1-$3.pid" pid f
	shift 3
	"$ROOT/bench/driver.py" "$w" --system "$sys" "$@" --before "echo \$BACKEND_PID >$pidfile" \
		>"$OUT/$w-$sys-$tag.driver" || return 1
	pid=$(cat "$pidfile")
	while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
	f="$OUT/$w-$sys-$tag.callgrind"
	mv "$OUT/callgrind.$pid" "$f"
	awk '/^(summary|totals):/ { print $2; exit }' "$f"
}

# measure SYS WORKLOAD DRIVER-ARGS... (the driver's args for the base run, then
# --measured and the args added for the full run): prints instructions per
# message, the difference of the two runs' backends over the N x 1000
# messages the full run measured more
measure() {
	local sys=$1 w=$2 base=() full=() a b
	shift 2
	while [ "$1" != --measured ]; do base+=("$1"); shift; done
	shift
	full=("$@")
	a=$(backend_total "$sys" "$w" base "${base[@]}") || return 1
	b=$(backend_total "$sys" "$w" full "${full[@]}") || return 1
	if [ "$ANNOTATE" = 1 ]; then
		callgrind_annotate --inclusive=yes --threshold=99 "$OUT/$w-$sys-full.callgrind" 2>/dev/null | sed -n '1,80p' >"$OUT/$w-$sys-full.annotate"
	fi
	awk -v a="$a" -v b="$b" -v n="$((N * 1000))" 'BEGIN { print (b - a) / n }'
}

declare -A IPM
for sys in pgqueue plain; do
	say "P2py, $sys: $N measured batches of 1000"
	reset "$sys" p2
	IPM[p2-$sys]=$(measure "$sys" p2 --name p2 --warmup 10 --seconds 0 \
		--measured --name p2 --warmup 10 --batches "$N")
	echo "${IPM[p2-$sys]} instructions per message"
done
for sys in pgqueue plain; do
	say "C1py, $sys: pre-load, then $N measured polls of 1000"
	reset "$sys" c1
	total=$(((N + 10) * 1000))	# 5 warm-up polls in each run
	case $sys in
	pgqueue)
		q -c "SELECT pgq_alter_group('gi', '{\"enable.auto.commit\": false, \"auto.offset.reset\": \"earliest\"}')" >/dev/null
		echo "SELECT count(*) FROM pgq_send_batch('c1', (SELECT array_agg(repeat('v', 100)) FROM generate_series(1, 10000)), (SELECT array_agg(lpad((random() * 1e15)::bigint::text, 16, '0')) FROM generate_series(1, 10000)));" >"$OUT/preload-$sys.sql" ;;
	plain)
		q -c "INSERT INTO plain_cursor VALUES ('gi', 0, 0) ON CONFLICT (consumer) DO UPDATE SET pos = 0" >/dev/null
		echo "INSERT INTO plain_c1 (partition, key, value) SELECT 0, k, convert_to(v, 'UTF8') FROM unnest((SELECT array_agg(repeat('v', 100)) FROM generate_series(1, 10000)), (SELECT array_agg(lpad((random() * 1e15)::bigint::text, 16, '0')) FROM generate_series(1, 10000))) AS u(v, k);" >"$OUT/preload-$sys.sql" ;;
	esac
	pgbench -n -t "$((total / 10000))" -f "$OUT/preload-$sys.sql" >"$OUT/preload-$sys.log" 2>&1
	q -c "ANALYZE" -c "CHECKPOINT"
	IPM[c1-$sys]=$(measure "$sys" c1 --name c1 --group gi --messages 5000 --warmup 5 \
		--measured --name c1 --group gi --messages "$((total - 5000))" --warmup 5)
	echo "${IPM[c1-$sys]} instructions per message"
done

{
	echo "# Instructions per message, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "pgqueue commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- src sql 2>/dev/null || echo ' (src/ or sql/ modified)'); $N measured batches of 1000 per workload; the backend serving bench/driver.py, counted by callgrind."
	echo
	echo "| workload | pgqueue | plain table | pgqueue / plain |"
	echo "|---|---|---|---|"
	for w in p2 c1; do
		printf '| %spy | %.0f | %.0f | %.2f |\n' "${w^^}" "${IPM[$w-pgqueue]}" "${IPM[$w-plain]}" \
			"$(awk "BEGIN { print ${IPM[$w-pgqueue]} / ${IPM[$w-plain]} }")"
	done
	echo
	echo "Lower is better; by instructions, the throughput ratio pgqueue / plain would be about plain / pgqueue (the last column's inverse), the client's and the WAL's costs aside."
} >"$OUT/instructions.md"
say "results: $OUT/instructions.md"
cat "$OUT/instructions.md"
