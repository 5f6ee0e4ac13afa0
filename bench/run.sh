#!/usr/bin/env bash
# bench/run.sh: the benchmark suite.  pgqueue against a plain table (the
# physical limit of a log in a heap) and PgQ, on one throw-away server, in
# the same run.  Not part of the tests or of CI.
#
#   bench/run.sh [--quick] [--runs N] [--held-xmin] [--only LIST] [--systems LIST] [--no-build] [--port P]
#                [--gw-records N] [--gw-seconds S]
#   bench/run.sh --report DIR     # rewrite DIR/results.md from DIR/results.tsv
#
# Duration on the project's 2-core VM (the suite prints its progress with
# the elapsed time, and its estimate at the start):
#   default (3 runs, medians) .......... about 30 min
#   --quick (1 run, short durations) ... about 4 min (a smoke test, not numbers)
#   --held-xmin adds 3 x 10 min plus the last cycles (about 33 min);
#               with --quick 3 x 1 min (about 4 min)
#   --runs N scales the non-held part linearly (about 10 min per run).
#   The gateway's workloads (gwprod, gwdrain, gwe2e; in the default set)
#   take about 3.5 min per run: --only gwprod,gwdrain,gwe2e --runs 3 about 11 min.
#
# Options:
#   --quick         1 run; 3 s pgbench runs, 100,000-message drains, 1-minute held snapshot
#   --runs N        N runs of every measurement, the table shows medians (default 3)
#   --held-xmin     also run the held-snapshot workload (see below)
#   --held-minutes M  how long the snapshot is held per system (default 10, --quick 1)
#   --only LIST     only these workloads, comma-separated:
#                   p1,p1off,p1idem,p2,c1,p2py,c1py,e2e,partitions,members,topics,
#                   gwprod,gwdrain,gwe2e,held
#   --systems LIST  only these systems, comma-separated: pgqueue,plain,pgq
#                   (ratios need pgqueue and plain; held compares each
#                   system with itself)
#   --no-build      use the pgqueue already installed (default: build and
#                   install it first, like the other scripts)
#   --port P        port of the throw-away server (default 5455)
#   --gw-records N  records per gwprod / gwdrain measurement (default 500,000, --quick 100,000)
#   --gw-seconds S  duration of gwe2e's 1000 records/s (default 30, --quick 5)
#
# Everything goes to bench/results/<timestamp>/: results.md (the table, also
# printed at the end), results.tsv (every measurement), held.svg (the
# held-snapshot cycles, drawn by bench/plot_held.py), raw/ (every pgbench
# and psql log, the generated pgbench scripts, the server, pgqd and gateway
# logs, every kafka_bench output), kafka_bench (the gateway workloads' client,
# built for the run).
#
# The server: tmp/bench_suite (start_server from scripts/lib.sh: a fresh
# initdb, Unix socket only), stock settings (fsync and synchronous_commit
# on) except shared_buffers = 1GB, max_wal_size = 8GB, checkpoint_timeout =
# 30min, so that one run's data fits in memory and no timed checkpoint
# falls in a measurement; a CHECKPOINT precedes every measurement.  The
# data directory is deleted at the end.  Autovacuum and pgqueue's
# background worker run as by default.
#
# A message is a 16-byte text key and a 100-byte value.  Systems:
#   pgqueue  topics made with pgq_create_topic; keyed sends (murmur2 of the key).
#   plain    a table per topic: (partition int, msg_offset bigint default
#            nextval(seq), key text, value bytea, ts timestamptz default now(),
#            primary key (partition, msg_offset)), fed by plain INSERT and read
#            by a range SELECT above a cursor row plus an UPDATE of that row
#            per batch.  With several partitions the partition is
#            hashtext(key) mod n.
#   pgq      PgQ 3 from Debian (postgresql-15-pgq3); a queue per topic,
#            pgq.insert_event(queue, ev_type => key, ev_data => value).  The
#            ticker is pgqd (Debian package pgqd), started against the bench
#            server for the whole run with its default 1 s ticker period.
#            Drains need 1000-event batches, which PgQ cuts only at ticks:
#            its pre-load inserts 1000 events per transaction and calls
#            pgq.ticker(queue) after each (the queue's ticker_max_count is
#            1000, so pgqd does not cut batches in between).  Skipped, and
#            said so, if the packages cannot be installed.
#
# Workloads (pgbench in its default simple query mode; 1 partition unless said):
#   P1     one message per autocommit transaction, pgbench -T 15 (--quick 3),
#          -c 1 and -c 4 -j 2, synchronous_commit = on.  Key and value from
#          pgbench \set random(): pgq_send('p1', lpad(:v::text,100,'v'),
#          lpad(:k::text,16,'0')); the plain table and PgQ insert the same.
#   P1off  the same with synchronous_commit = off (PGOPTIONS of the clients).
#   P1idem pgqueue only: P1 with idempotence against P1 without, in
#          alternating slices of a third of -T each (3 pairs per run),
#          -c 1 and -c 4, and -c 4 -M prepared (both sides parse their
#          statement once: named arguments cost the parser about 11,000
#          instructions each): each client is a producer of its own
#          (pgq_init_producer before each measurement) and sends its
#          sequences 0, 1, 2, ... (pgbench -D seq=0, \set seq :seq + 1):
#            SELECT pgq_send('p1', value, key, producer_id => BASE + :client_id,
#                            producer_epoch => 0, sequence => :seq);
#   P2     1000 messages per transaction, -c 1 and -c 2: pgq_send_batch with
#          arrays built by array_agg over generate_series (value
#          repeat('v',100), key lpad((random()*1e15)::bigint::text,16,'0'));
#          plain: one INSERT ... SELECT FROM unnest(the same arrays);
#          PgQ: SELECT count(pgq.insert_event(...)) FROM unnest(the same arrays).
#   C1     pre-load 1,000,000 messages (100,000 with --quick; pgq_send_batch
#          of 10,000 per transaction, plain INSERT of 10,000, PgQ 1000 +
#          tick), CHECKPOINT, then one consumer drains them, one pgbench
#          client (-t = the number of batches), each transaction:
#            pgqueue  BEGIN; SELECT count(*) FROM pgq_poll('g','c1',1000,0,'m1');
#                     SELECT pgq_commit('g','m1'); COMMIT   (enable.auto.commit false)
#            plain    BEGIN; SELECT count, max offset, sum of key and value
#                     lengths of the 1000 rows above the cursor; UPDATE the
#                     cursor row; COMMIT
#            pgq      BEGIN; next_batch; count(*) of get_batch_events;
#                     finish_batch; COMMIT
#          messages/s = messages / (transactions / pgbench tps); lag 0 is checked after.
#   P2py   pgqueue and plain: P2 through a client driver, bench/driver.py
#          (psycopg 3 from Debian's python3-psycopg, installed if missing;
#          default settings), one connection, for -T's time: 1000 records
#          per transaction, 100-byte values and 16-digit keys made by the
#          client and sent as parameters (bytes -> bytea[], str -> text[]):
#            pgqueue  SELECT count(*) FROM pgq_send_batch(%s, %s::bytea[], %s::text[])
#            plain    INSERT INTO plain_p2py (partition, key, value)
#                     SELECT 0, k, v FROM unnest(%s::bytea[], %s::text[]) AS u(v, k)
#   C1py   pgqueue and plain: C1 through bench/driver.py: the same pre-load,
#          then one connection drains it, 1000 per batch, one transaction per
#          batch, the same five columns of every row fetched into Python
#          objects (pgq_poll's topic and headers left out):
#            pgqueue  SELECT partition, msg_offset, key, value, "timestamp"
#                     FROM pgq_poll(g, 'c1py', 1000, 0, 'm1');
#                     SELECT * FROM pgq_commit(g, 'm1'); COMMIT
#            plain    SELECT partition, msg_offset, key, value, ts of the 1000
#                     rows above the cursor; UPDATE the cursor row; COMMIT
#          messages/s from the first poll to the last commit.
#   E2E    pgqueue only, bench/e2e_latency.sh's method on this server:
#          pgbench -R 1000 -c 2 sends for 10 s (--quick 3) to a 1-partition
#          topic, one consumer long-polls pgq_fetch(timeout_ms => 1000) and
#          takes clock_timestamp() - "timestamp" per record; then the CPU
#          ticks of 20 sessions waiting 5 s (--quick 2) on an idle topic.
#   partitions  pgqueue and plain: P1 -c 4 -j 2 into 1 (= the P1 c=4
#          measurement), 16 and 256 partitions; pgqueue: a C1-style drain
#          (1 member, polls of 1000) of 1,000,000 messages spread by key over
#          1, 16 and 256 partitions, timed from the start of pgbench until
#          the group's committed offsets cover every message (checked every
#          50 ms); and the same 1,000,000 all sent to partition 0 of a
#          256-partition topic (the other 255 not involved).
#   members  pgqueue: 1, 4 and 16 members of one group (each its own
#          session: pgbench -c M, member 'm' || :client_id) draining
#          1,000,000 messages of a 16-partition topic, total messages/s,
#          timed the same way (1 member = the 16-partition drain above).
#   topics  all three: P1 -c 4 -j 2 spread at random over 100 topics (100
#          pgqueue topics, 100 plain tables, 100 PgQ queues).
#   held   (--held-xmin) per system, with a session holding a snapshot (an
#          idle REPEATABLE READ transaction that has run one SELECT) for 10
#          minutes (--quick 1): cycles of P2 -c 1 for 5 s (--quick 2) into
#          one topic, a pre-load of 1,000,000 messages (--quick 100,000; not
#          timed) into another and a C1 drain of it by the same consumer
#          (group, cursor row, PgQ consumer) all along, until the time is
#          up; throughput of the last cycle / the first one.  The systems
#          take turns, each with its own held snapshot.
#   gwprod, gwdrain, gwe2e  the Kafka gateway (gateway/pgqueue-kafka, as make
#          builds it, started on 127.0.0.1 and a free port for the run, its
#          log in raw/gateway.log) against SQL in the same run, the order
#          alternating by run.  The clients are bench/kafka_bench.c, built
#          here against Debian's librdkafka (librdkafka-dev) and libpq.
#   gwprod  500,000 records (16-digit key, 100-byte value) into a topic of 1
#          and of 4 partitions: a librdkafka producer with its defaults
#          (linger.ms 5, batch.size 1 MB, batch.num.messages 10000, acks=all)
#          producing as fast as it can, timed from the first produce to the
#          last delivery report (one record sent and flushed before, so that
#          metadata and connections are not timed), against the same
#          records over SQL: pgq_send_batch calls of librdkafka's average
#          batch size (from its statistics, measured in the same run; SQL
#          goes second in odd runs, first in even runs with the previous
#          run's size), from one libpq connection as from one producer
#          (with 4 partitions its batches go to them in turn), autocommit,
#          binary bytea[] parameters, the gateway's own statement less
#          headers, timestamps and producer id:
#            SELECT min(msg_offset) FROM pgq_send_batch($1, $2::bytea[], $3::bytea[], $4::int)
#   gwdrain  a 1-partition backlog of 500,000 records (C1's pre-load, then
#          read once by pgq_fetch so that hint bits are set for both), read
#          by a librdkafka consumer assigned partition 0 from the beginning
#          (no group, nothing committed, enable.partition.eof; timed from
#          its first record to the end of the partition), drained by C1's
#          pgbench consumer (pgq_poll of 1000 + pgq_commit per transaction,
#          counted on the server: the target's comparison), and drained by
#          the same polls from a libpq client that receives every row
#          (kafka_bench sqldrain: partition, msg_offset, key, value,
#          timestamp, headers in binary format; a second group).
#   gwe2e  a librdkafka producer (linger.ms=0, acks=all; and again with
#          max.in.flight=1 as well) sends 1000 records/s
#          for 30 s (--quick 5) to a 1-partition topic, its send time
#          (CLOCK_MONOTONIC) in the value; a librdkafka consumer in the same
#          process (fetch.wait.max.ms default, 500: a long poll) takes now -
#          sent per record: p50, p90, p99, p99.9, max; and the producer's
#          share, produce call to delivery report (read at the producer's
#          next poll, once a millisecond).  Compared with the E2E workload of
#          the same run (run for it if not asked for).
#
# Targets, as ratios pgqueue / plain of the same run: P1 >= 0.95,
# P1off >= 0.85, P2 >= 0.90, C1 >= 0.85, P2py >= 0.90, C1py >= 0.90; held snapshot: end >= 0.8 x start;
# drains: no cost from partitions or members not involved.  The gateway, as
# ratios gateway / SQL: gwprod >= 0.8, gwdrain >= 0.8; gwe2e p99 < 5 ms.
source "$(dirname "$0")/../scripts/lib.sh"

BENCH_DIR="$ROOT/bench"
CMDLINE="bench/run.sh${*:+ $*}"
QUICK=0 RUNS= HELD=0 HELD_MIN= ONLY= ONLY_SYSTEMS= BUILD=1 PORT=5455 REPORT_ONLY= GW_N_OPT= GW_E2E_T_OPT=
while [ $# -gt 0 ]; do
	case $1 in
	--quick) QUICK=1 ;;
	--runs) RUNS=$2; shift ;;
	--held-xmin) HELD=1 ;;
	--held-minutes) HELD_MIN=$2; shift ;;
	--only) ONLY=$2; shift ;;
	--systems) ONLY_SYSTEMS=${2//,/ }; shift ;;
	--no-build) BUILD=0 ;;
	--port) PORT=$2; shift ;;
	--gw-records) GW_N_OPT=$2; shift ;;
	--gw-seconds) GW_E2E_T_OPT=$2; shift ;;
	--report) REPORT_ONLY=$2; shift ;;
	-h | --help) sed -n '2,/^source/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done

if [ "$QUICK" = 1 ]; then
	: "${RUNS:=1}" "${HELD_MIN:=1}"
	T_P=3 MSGS=100000 E2E_T=3 E2E_IDLE=2 HELD_P2_T=2 GW_N=100000 GW_E2E_T=5
else
	: "${RUNS:=3}" "${HELD_MIN:=10}"
	T_P=15 MSGS=1000000 E2E_T=10 E2E_IDLE=5 HELD_P2_T=5 GW_N=500000 GW_E2E_T=30
fi
GW_N=${GW_N_OPT:-$GW_N} GW_E2E_T=${GW_E2E_T_OPT:-$GW_E2E_T}
ALL_WORKLOADS="p1 p1off p1idem p2 c1 p2py c1py e2e partitions members topics gwprod gwdrain gwe2e"
if [ -n "$ONLY" ]; then WORKLOADS=${ONLY//,/ }; else WORKLOADS=$ALL_WORKLOADS; fi
if [ "$HELD" = 1 ] && [[ " $WORKLOADS " != *" held "* ]]; then WORKLOADS="$WORKLOADS held"; fi
for w in $WORKLOADS; do
	case " $ALL_WORKLOADS held " in *" $w "*) ;; *) echo "unknown workload: $w" >&2; exit 2 ;; esac
done
want() { [[ " $WORKLOADS " == *" $1 "* ]]; }
want_gateway() { want gwprod || want gwdrain || want gwe2e; }

q() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.6f\", $* }"; }
# The CPU time the hypervisor gave to other guests (/proc/stat's steal, in
# ticks of 10 ms summed over the cores).  On a shared VM it decides the
# latency tails: a process woken on a core that the host has taken away
# waits for it.  steal_pct TICKS0 T0: the steal since then, in % of the
# cores' time (100 ticks a second per core).
steal_ticks() { awk '/^cpu / { print $9 }' /proc/stat; }
steal_pct() { calc "($(steal_ticks) - $1) / ($(now) - $2) / $(nproc)"; }
# per_run W S: "p99 (steal %)" of each run of workload W, system S
per_run() {
	awk -F'\t' -v w="$2" -v s="$3" '$1 == w && $3 == s && $2 == "p99" { p[$4] = $5 }
		$1 == w && $3 == s && $2 == "steal" { st[$4] = $5 }
		END { for (r = 1; r in p; r++) printf "%s%s (%s)", (r > 1 ? ", " : ""), (p[r] == "NA" ? "NA" : sprintf("%.2f ms", p[r])), (r in st ? sprintf("%.1f %%", st[r]) : "?") }' "$1"
}
fmt_int() { printf '%.0f' "$1" | sed ':a;s/\B[0-9]\{3\}\>/,&/;ta'; }

# ---------------------------------------------------------------- the report
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print a[(NR + 1) / 2]; else printf "%.6f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
# med TSV WORKLOAD CONFIG SYSTEM: median of the runs' values
med() { awk -F'\t' -v w="$2" -v c="$3" -v s="$4" '$1 == w && $2 == c && $3 == s && $5 != "NA" { print $5 }' "$1" | median; }
ms() { if [ -n "$1" ]; then printf '%.2f ms' "$1"; else echo "–"; fi; }
pct() { if [ -n "$1" ]; then printf '%.1f %%' "$1"; else echo "–"; fi; }
isnum() { [[ $1 =~ ^[0-9]+(\.[0-9]+)?$ ]]; }
rate() { if isnum "$1"; then fmt_int "$1"; elif [ -n "$1" ]; then echo "$1"; else echo "–"; fi; }
ratio() { if isnum "$1" && isnum "$2" && awk "BEGIN { exit !($2 > 0) }"; then calc "$1 / $2" | xargs printf '%.2f'; else echo "–"; fi; }
meets() { # RATIO TARGET
	if [ "$1" = "–" ]; then echo "–"; elif awk "BEGIN { exit !($1 >= $2) }"; then echo "yes"; else echo "**no**"; fi
}

# held_med TSV p2|c1 SYSTEM head|tail CYCLES: median of the first / last k cycles
held_med() {
	local k=$(($5 / 2))
	if [ "$k" -gt 3 ]; then k=3; fi
	if [ "$k" -lt 1 ]; then k=1; fi
	awk -F'\t' -v m="$2" -v s="$3" '$1 == "held" && $2 == m && $3 == s { print $4 "\t" $5 }' "$1" |
		sort -n | "$4" -n "$k" | cut -f2 | { grep -v NA || true; } | median
}

write_report() {
	local dir=$1 tsv="$1/results.tsv" md="$1/results.md"
	{
		cat "$dir/meta.md"
		echo
		if grep -qE '^(p1|p1off|p2|c1|p2py|c1py)	' "$tsv"; then
			echo "### Throughput, messages/s (median of the runs)"
			echo
			echo "| workload | clients | pgqueue | plain table | PgQ | pgqueue / plain | target | met | pgqueue / PgQ |"
			echo "|---|---|---|---|---|---|---|---|---|"
			local w c t name a b g r
			for row in "p1 c1 0.95 P1" "p1 c4 0.95 P1" "p1off c1 0.85 P1off" "p1off c4 0.85 P1off" \
				"p2 c1 0.90 P2" "p2 c2 0.90 P2" "c1 drain 0.85 C1" \
				"p2py c1 0.90 P2py" "c1py drain 0.90 C1py"; do
				set -- $row
				w=$1 c=$2 t=$3 name=$4
				grep -q "^$w	$c	" "$tsv" || continue
				a=$(med "$tsv" "$w" "$c" pgqueue) b=$(med "$tsv" "$w" "$c" plain) g=$(med "$tsv" "$w" "$c" pgq)
				r=$(ratio "$a" "$b")
				echo "| $name | ${c/c/} | $(rate "$a") | $(rate "$b") | $(rate "$g") | $r | ≥ $t | $(meets "$r" "$t") | $(ratio "$a" "$g") |" |
					sed 's/| drain |/| 1 consumer |/'
			done
			echo
			if grep -qE '^(p2py|c1py)	' "$tsv"; then
				echo "P2py and C1py: the same workloads through psycopg (bench/driver.py), the client sending the records as parameters and reading the same five columns of every record; PgQ not measured."
				echo
			fi
		fi
		if grep -q '^p1idem	' "$tsv"; then
			local a b r c
			echo "### Idempotent producer, messages/s (median of the runs)"
			echo
			echo "| workload | clients | idempotent | not idempotent | each pair's idempotent / not | their median | target | met |"
			echo "|---|---|---|---|---|---|---|---|"
			for c in c1 c4 c4p; do
				grep -q "^p1idem	$c	" "$tsv" || continue
				a=$(med "$tsv" p1idem "$c" idempotent) b=$(med "$tsv" p1idem "$c" pgqueue)
				# the pairs of slices ran back to back: the ratio within each pair
				local runs
				runs=$(awk -F'\t' -v c="$c" '$1 == "p1idem" && $2 == c && $5 != "NA" { v[$4, $3] = $5; n[$4] }
					END { for (k in n) if ((k, "pgqueue") in v && v[k, "pgqueue"] > 0) printf "%.2f\n", v[k, "idempotent"] / v[k, "pgqueue"] }' "$tsv" | sort -n)
				r=$(echo "$runs" | median | xargs printf '%.2f')
				echo "| P1 | ${c/c/} | $(rate "$a") | $(rate "$b") | $(echo $runs | tr ' ' '/') | $r | ≥ 0.90 | $(meets "$r" 0.90) |" |
					sed 's/| 4p |/| 4, prepared |/'
			done
			echo
		fi
		if grep -qE '^(partitions|members|topics)	' "$tsv"; then
			echo "### Scale, messages/s (median of the runs)"
			echo
			echo "| workload | pgqueue | plain table | PgQ | pgqueue / plain | pgqueue vs its 1-partition / 1-member / 1-topic case |"
			echo "|---|---|---|---|---|---|"
			local base
			base=$(med "$tsv" partitions p1-1 pgqueue)
			for n in 1 16 256; do
				grep -q "^partitions	p1-$n	" "$tsv" || continue
				a=$(med "$tsv" partitions "p1-$n" pgqueue) b=$(med "$tsv" partitions "p1-$n" plain)
				echo "| P1 c=4, $n partition(s)$([ $n = 1 ] && echo ' (= P1 c=4)') | $(rate "$a") | $(rate "$b") | n/a | $(ratio "$a" "$b") | $(ratio "$a" "$base") |"
			done
			base=$(med "$tsv" partitions drain-1 pgqueue)
			for n in 1 16 256; do
				grep -q "^partitions	drain-$n	" "$tsv" || continue
				a=$(med "$tsv" partitions "drain-$n" pgqueue)
				echo "| drain, 1 member, $n partition(s) | $(rate "$a") | n/a | n/a | – | $(ratio "$a" "$base") |"
			done
			if grep -q "^partitions	drain-256-in-1	" "$tsv"; then
				a=$(med "$tsv" partitions drain-256-in-1 pgqueue)
				echo "| drain, 1 member, 256 partitions, every message in 1 of them | $(rate "$a") | n/a | n/a | – | $(ratio "$a" "$base") |"
			fi
			base=$(med "$tsv" members m1 pgqueue)
			for n in 1 4 16; do
				grep -q "^members	m$n	" "$tsv" || continue
				a=$(med "$tsv" members "m$n" pgqueue)
				echo "| drain, 16 partitions, $n member(s) in one group$([ $n = 1 ] && echo ' (= 16-partition drain)') | $(rate "$a") | n/a | n/a | – | $(ratio "$a" "$base") |"
			done
			if grep -q "^topics	" "$tsv"; then
				a=$(med "$tsv" topics p1-100 pgqueue) b=$(med "$tsv" topics p1-100 plain) g=$(med "$tsv" topics p1-100 pgq)
				echo "| P1 c=4 over 100 topics | $(rate "$a") | $(rate "$b") | $(rate "$g") | $(ratio "$a" "$b") | $(ratio "$a" "$(med "$tsv" p1 c4 pgqueue)") |"
			fi
			echo
			echo "n/a: the plain table has no consumer groups and PgQ no partitions or groups (cooperative consumers are a separate package), so those drains are pgqueue's alone; the last column compares pgqueue with itself."
			echo
		fi
		if grep -q "^e2e	" "$tsv"; then
			echo "### E2E: send-to-receive latency, pgqueue (median of the runs)"
			echo
			echo "| records | p50 | p90 | p99 | p99.9 | max | idle waiters' CPU | target p99 |"
			echo "|---|---|---|---|---|---|---|---|"
			local secs p99
			secs=$(awk -F'\t' '$1 == "e2e" && $2 == "idle_ticks" { sub(/ticks\//, "", $6); sub(/s$/, "", $6); print $6; exit }' "$tsv")
			p99=$(med "$tsv" e2e p99 pgqueue)
			echo "| $(rate "$(med "$tsv" e2e records pgqueue)") | $(ms "$(med "$tsv" e2e p50 pgqueue)") | $(ms "$(med "$tsv" e2e p90 pgqueue)") | $(ms "$p99") | $(ms "$(med "$tsv" e2e p99.9 pgqueue)") | $(ms "$(med "$tsv" e2e max pgqueue)") | $(rate "$(med "$tsv" e2e idle_ticks pgqueue)") ticks / 20 backends / ${secs:-?} s (1 tick = 10 ms) | ≤ 2 ms: $(if [ -z "$p99" ]; then echo –; elif awk "BEGIN { exit !($p99 <= 2) }"; then echo yes; else echo "**no**"; fi) |"
			echo
		fi
		if grep -q "^held	" "$tsv"; then
			echo "### Held snapshot: throughput at the end / at the start, messages/s"
			echo
			echo "| system | snapshot held | cycles | P2 c=1 start | P2 end | end / start | C1 start | C1 end | end / start | target |"
			echo "|---|---|---|---|---|---|---|---|---|---|"
			local s label last p2s p2e c1s c1e held
			for s in pgqueue plain pgq; do
				grep -q "^held	p2	$s	" "$tsv" || continue
				case $s in pgqueue) label=pgqueue ;; plain) label="plain table" ;; pgq) label=PgQ ;; esac
				last=$(awk -F'\t' -v s="$s" '$1 == "held" && $2 == "p2" && $3 == s { n = $4 } END { print n }' "$tsv")
				# start / end: medians of the first and of the last k cycles, k = min(3, cycles / 2)
				p2s=$(held_med "$tsv" p2 "$s" head "$last") p2e=$(held_med "$tsv" p2 "$s" tail "$last")
				c1s=$(held_med "$tsv" c1 "$s" head "$last") c1e=$(held_med "$tsv" c1 "$s" tail "$last")
				held=$(awk -F'\t' -v s="$s" '$1 == "held" && $2 == "held_s" && $3 == s { print $5 }' "$tsv")
				echo "| $label | $(printf '%.1f' "$(calc "${held:-0} / 60")") min | $last | $(rate "$p2s") | $(rate "$p2e") | $(ratio "$p2e" "$p2s") | $(rate "$c1s") | $(rate "$c1e") | $(ratio "$c1e" "$c1s") | ≥ 0.8 |"
			done
			echo
			echo "Start and end: medians of the first and of the last 3 cycles (fewer when there are under 6). Every cycle's numbers are in results.tsv (workload held, run = cycle) and raw/held-*."
			echo
			if command -v python3 >/dev/null && python3 "$BENCH_DIR/plot_held.py" "$dir" >/dev/null; then
				echo "Every cycle relative to the system's start: held.svg (bench/plot_held.py)."
				echo
			fi
		fi
		if grep -qE '^(gwprod|gwdrain)	' "$tsv"; then
			echo "### Through the Kafka gateway vs SQL, messages/s (median of the runs)"
			echo
			echo "| workload | Kafka client through pgqueue-kafka | SQL | gateway / SQL | target | met |"
			echo "|---|---|---|---|---|---|"
			local row w c name a b r bt
			for row in "gwprod p1 produce,_1_partition" "gwprod p4 produce,_4_partitions" "gwdrain drain drain,_1_partition"; do
				set -- $row
				w=$1 c=$2 name=${3//_/ }
				grep -q "^$w	$c	" "$tsv" || continue
				a=$(med "$tsv" "$w" "$c" gateway) b=$(med "$tsv" "$w" "$c" sql)
				r=$(ratio "$a" "$b")
				bt=$(med "$tsv" "$w" "$c-batch" gateway)
				if [ -n "$bt" ]; then name="$name (librdkafka's batches: $(rate "$bt") records)"; fi
				echo "| $name | $(rate "$a") | $(rate "$b") | $r | ≥ 0.80 | $(meets "$r" 0.80) |"
				if grep -q "^$w	$c	sqlrows	" "$tsv"; then
					b=$(med "$tsv" "$w" "$c" sqlrows)
					r=$(ratio "$a" "$b")
					echo "| $name, against a libpq consumer that receives the rows | $(rate "$a") | $(rate "$b") | $r | – | – |"
				fi
			done
			echo
			echo "Produce: librdkafka's defaults (linger.ms, batch.size, acks=all), N records as fast as it can, timed from the first produce to the last delivery report; SQL: the same records in pgq_send_batch calls of librdkafka's average batch size from one libpq connection (as from one producer; with 4 partitions to each in turn), binary parameters (bench/kafka_bench.c). Drain: a librdkafka consumer reading the partition from the beginning to its end (enable.partition.eof) against C1's pgbench drain (pgq_poll of 1000 + pgq_commit per transaction, the rows counted on the server: the target's comparison) of the same backlog, and against the same polls from a libpq client receiving every column in binary format (bench/kafka_bench.c sqldrain)."
			echo
		fi
		if grep -q "^gwe2e	" "$tsv"; then
			echo "### E2E through the Kafka gateway at 1000 records/s (median of the runs)"
			echo
			echo "| path | records | p50 | p90 | p99 | p99.9 | max | steal | target p99 |"
			echo "|---|---|---|---|---|---|---|---|---|"
			local p99 sys label
			for sys in gateway inflight1; do
				grep -q "^gwe2e	p99	$sys	" "$tsv" || continue
				label="librdkafka producer (linger.ms=0$(if [ "$sys" = inflight1 ]; then echo ', max.in.flight=1'; fi)) → pgqueue-kafka → librdkafka consumer"
				p99=$(med "$tsv" gwe2e p99 "$sys")
				echo "| $label | $(rate "$(med "$tsv" gwe2e records "$sys")") | $(ms "$(med "$tsv" gwe2e p50 "$sys")") | $(ms "$(med "$tsv" gwe2e p90 "$sys")") | $(ms "$p99") | $(ms "$(med "$tsv" gwe2e p99.9 "$sys")") | $(ms "$(med "$tsv" gwe2e max "$sys")") | $(pct "$(med "$tsv" gwe2e steal "$sys")") | < 5 ms: $(if [ -z "$p99" ]; then echo –; elif awk "BEGIN { exit !($p99 < 5) }"; then echo yes; else echo "**no**"; fi) |"
			done
			if grep -q "^e2e	p99	pgqueue	" "$tsv"; then
				p99=$(med "$tsv" e2e p99 pgqueue)
				echo "| SQL: pgbench pgq_send → pgq_fetch long poll (the E2E workload) | $(rate "$(med "$tsv" e2e records pgqueue)") | $(ms "$(med "$tsv" e2e p50 pgqueue)") | $(ms "$(med "$tsv" e2e p90 pgqueue)") | $(ms "$p99") | $(ms "$(med "$tsv" e2e p99.9 pgqueue)") | $(ms "$(med "$tsv" e2e max pgqueue)") | $(pct "$(med "$tsv" e2e steal pgqueue)") | ≤ 2 ms: $(if [ -z "$p99" ]; then echo –; elif awk "BEGIN { exit !($p99 <= 2) }"; then echo yes; else echo "**no**"; fi) |"
			fi
			echo
			echo "Gateway: from the produce call (send time in the value) to the consumer's poll returning the record, both in bench/kafka_bench.c; the producer's share (produce call to delivery report, acks=all: the commit) p50 $(ms "$(med "$tsv" gwe2e ack_p50 gateway)"), p99 $(ms "$(med "$tsv" gwe2e ack_p99 gateway)") (with max.in.flight=1: $(ms "$(med "$tsv" gwe2e ack_p50 inflight1)"), $(ms "$(med "$tsv" gwe2e ack_p99 inflight1)")). SQL: from the pgq_send call to the consumer's query producing the row, on the server's clock. Steal: the share of the cores' time the hypervisor gave to other guests during the run (/proc/stat); on a shared VM the tails follow it."
			echo
			echo "p99 per run (steal): gateway $(per_run "$tsv" gwe2e gateway); max.in.flight=1 $(per_run "$tsv" gwe2e inflight1); SQL $(per_run "$tsv" e2e pgqueue)."
			echo
		fi
		if grep -q "	NA	" "$tsv"; then
			echo "Failed measurements (NA, left out of the medians): $(awk -F'\t' '$5 == "NA" { printf "%s %s %s run %s; ", $1, $2, $3, $4 }' "$tsv")see raw/."
			echo
		fi
		if [ -f "$dir/duration.txt" ]; then cat "$dir/duration.txt"; fi
	} >"$md"
}

if [ -n "$REPORT_ONLY" ]; then
	write_report "$REPORT_ONLY"
	cat "$REPORT_ONLY/results.md"
	exit 0
fi

# ------------------------------------------------------------------ setting up
need_root
install_packages
if [ "$BUILD" = 1 ]; then build_and_install; else set_paths; fi

SYSTEMS="pgqueue plain pgq"
if [ -n "$ONLY_SYSTEMS" ]; then
	for s in $ONLY_SYSTEMS; do
		case " $SYSTEMS " in *" $s "*) ;; *) echo "unknown system: $s" >&2; exit 2 ;; esac
	done
	SYSTEMS=$ONLY_SYSTEMS
fi
PGQ_NOTE=""
if [[ " $SYSTEMS " != *" pgq "* ]]; then PGQ_NOTE="systems: $SYSTEMS (--systems)"; fi
pgq_installed() {
	local p
	for p in postgresql-15-pgq3 pgqd; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || return 1
	done
}
if [[ " $SYSTEMS " == *" pgq "* ]] && ! pgq_installed; then
	say "installing PgQ (postgresql-15-pgq3, pgqd)"
	# no service of the package is started: policy-rc.d, or none to start
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15-pgq3 pgqd >/dev/null 2>&1 ||
		{ apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15-pgq3 pgqd >/dev/null 2>&1; } || true
fi
if { want p2py || want c1py; } && ! /usr/bin/python3 -c 'import psycopg' 2>/dev/null; then
	say "installing psycopg (python3-psycopg)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-psycopg >/dev/null 2>&1 ||
		{ apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-psycopg >/dev/null; }
fi
if [[ " $SYSTEMS " == *" pgq "* ]] && ! pgq_installed; then
	SYSTEMS=$(echo " $SYSTEMS " | sed "s/ pgq / /; s/^ //; s/ $//")
	PGQ_NOTE="PgQ could not be installed (apt-get install postgresql-15-pgq3 pgqd failed): its column is empty."
	echo "$PGQ_NOTE" >&2
fi

STAMP=$(date -u +%Y%m%d-%H%M%S)
OUT="$BENCH_DIR/results/$STAMP"
mkdir -p "$OUT/raw" "$OUT/scripts"
TSV="$OUT/results.tsv"
: >"$TSV"
START=$(now)
elapsed() { awk -v s="$START" -v n="$(now)" 'BEGIN { t = n - s; printf "%02d:%02d", t / 60, t % 60 }'; }
progress() { printf '[%s] %s\n' "$(elapsed)" "$*"; }

# estimate (seconds), from the rates measured on the 2-core VM
est=$(awk -v runs="$RUNS" -v t="$T_P" -v m="$MSGS" -v e="$E2E_T" -v i="$E2E_IDLE" -v wl=" $WORKLOADS " -v gw="$GW_N" -v ge="$GW_E2E_T" \
	-v hm="$HELD_MIN" -v pgq="$([[ " $SYSTEMS " == *" pgq "* ]] && echo 1 || echo 0)" -v sys="$SYSTEMS" 'BEGIN {
	ns = split(sys, a, " "); s = 20
	if (wl ~ / p1 /) s += runs * ns * 2 * (t + 2)
	if (wl ~ / p1off /) s += runs * ns * 2 * (t + 2)
	if (wl ~ / p1idem /) s += runs * 18 * ((t + 2) / 3 + 2)
	if (wl ~ / p2 /) s += runs * ns * 2 * (t + 3)
	if (wl ~ / c1 /) s += runs * (m / 60000 + m / 45000 + pgq * m / 16000 + 8)
	if (wl ~ / p2py /) s += runs * 2 * (t + 3)
	if (wl ~ / c1py /) s += runs * (m / 60000 + m / 45000 + 2 * m / 40000 + 8)
	if (wl ~ / e2e /) s += runs * (e + i + 6)
	if (wl ~ / partitions /) s += runs * (4 * (t + 3) + 4 * (m / 50000 + 5))
	if (wl ~ / members /) s += runs * 2 * (m / 50000 + 5)
	if (wl ~ / topics /) s += runs * ns * (t + 6)
	if (wl ~ / gwprod /) s += runs * 2 * (gw / 120000 + gw / 160000 + 8)
	if (wl ~ / gwdrain /) s += runs * (gw / 60000 + gw / 80000 + gw / 200000 + gw / 300000 + 10)
	if (wl ~ / gwe2e /) s += runs * 2 * (ge + 8) + (wl ~ / e2e / ? 0 : runs * (e + i + 6))
	if (wl ~ / held /) s += ns * (hm * 60 + 20 + m / 40000) + pgq * m / 16000
	printf "%d", s }')

say "bench suite: $WORKLOADS; systems: $SYSTEMS; $RUNS run(s); estimated $((est / 60 + 1)) min"
echo "results: $OUT"

export PGHOST="$RUN_DIR/bench_suite" PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres
SERVER_DIR="$RUN_DIR/bench_suite"
PGQD_PID=
GW_PID=
BG_PIDS=()
cleanup() {
	local p
	for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	if [ -n "$GW_PID" ]; then kill -TERM "$GW_PID" 2>/dev/null && wait "$GW_PID" 2>/dev/null || true; fi
	if [ -n "$PGQD_PID" ]; then kill "$PGQD_PID" 2>/dev/null || true; fi
	if [ -d "$SERVER_DIR" ]; then
		cp "$SERVER_DIR/server.log" "$OUT/raw/server.log" 2>/dev/null || true
		cp "$SERVER_DIR/pgqd.log" "$OUT/raw/pgqd.log" 2>/dev/null || true
		stop_server bench_suite
		rm -rf "$SERVER_DIR/data"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "starting the server (tmp/bench_suite, port $PORT)"
# another make install during the run would mix two builds (backends load
# the new library against the old one's shared memory): checked at the end
SO_PATH="$($PG_CONFIG --pkglibdir)/pgqueue.so"
SO_STAT=$(stat -c '%i %Y' "$SO_PATH")
start_server bench_suite "$PORT" "shared_buffers = 1GB" "max_wal_size = 8GB" "checkpoint_timeout = 30min"
q -c "CREATE EXTENSION pgqueue" -c "CREATE TABLE plain_cursor (consumer text PRIMARY KEY, partition int, pos bigint)"
if [[ " $SYSTEMS " == *" pgq "* ]]; then
	q -c "CREATE EXTENSION pgq"
	cat >"$SERVER_DIR/pgqd.ini" <<INI
[pgqd]
logfile = $SERVER_DIR/pgqd.log
pidfile = $SERVER_DIR/pgqd.pid
base_connstr = host=$SERVER_DIR port=$PORT user=postgres
initial_database = postgres
database_list = postgres
syslog = 0
ticker_period = 1
INI
	pgqd -d "$SERVER_DIR/pgqd.ini" >/dev/null 2>&1
	for _ in $(seq 50); do [ -s "$SERVER_DIR/pgqd.pid" ] && break; sleep 0.1; done
	PGQD_PID=$(cat "$SERVER_DIR/pgqd.pid")
	cp "$SERVER_DIR/pgqd.ini" "$OUT/raw/pgqd.ini"
fi

{
	echo "# pgqueue benchmark suite, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "- command: \`$CMDLINE\`; pgqueue commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet HEAD -- src sql 2>/dev/null || echo ' (src/ or sql/ modified)')"
	echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(free -g | awk '/Mem:/ { print $2 }') GiB"
	echo "- server: $(q -c 'SELECT version()' | sed 's/ on .*//'), one throw-away cluster, Unix socket; fsync and synchronous_commit on, shared_buffers 1GB, max_wal_size 8GB, checkpoint_timeout 30min; CHECKPOINT before each measurement"
	if [[ " $SYSTEMS " == *" pgq "* ]]; then
		echo "- PgQ $(q -c 'SELECT pgq.version()') (Debian postgresql-15-pgq3), ticker: pgqd $(dpkg-query -W -f='${Version}' pgqd) running against the server (ticker_period 1 s); drain batches of 1000 events cut by pgq.ticker() in the pre-load"
	else
		echo "- $PGQ_NOTE"
	fi
	echo "- runs: $RUNS (medians); pgbench -T $T_P; drains of $(fmt_int "$MSGS") messages; 1 partition unless said; a message = 16-byte text key + 100-byte value"
} >"$OUT/meta.md"

# ------------------------------------------------------------- the gateway
# pgqueue-kafka as built by make (not the ASan build), on 127.0.0.1 and a
# free port, logging into raw/; the clients are bench/kafka_bench.c, built
# here against Debian's librdkafka and libpq.  Stopped with SIGTERM at the end.
GW_BIN="$ROOT/gateway/pgqueue-kafka"
KB="$OUT/kafka_bench"
if want_gateway && [[ " $SYSTEMS " != *" pgqueue "* ]]; then
	echo "gwprod, gwdrain, gwe2e need the system pgqueue: skipped" >&2
	WORKLOADS=$(echo " $WORKLOADS " | sed 's/ gwprod / /; s/ gwdrain / /; s/ gwe2e / /')
fi
if want_gateway; then
	if [ ! -x "$GW_BIN" ]; then
		echo "$GW_BIN is missing: run make (or bench/run.sh without --no-build)" >&2
		exit 1
	fi
	cc -O2 -Wall -Wextra -Wno-unused-parameter -I"$($PG_CONFIG --includedir)" -o "$KB" \
		"$BENCH_DIR/kafka_bench.c" -lrdkafka -lpq -lpthread
	GW_PORT=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	GW_BROKERS="127.0.0.1:$GW_PORT"
	GW_CONNINFO="host=$PGHOST port=$PGPORT user=postgres dbname=postgres"
	say "starting the gateway ($GW_BIN, $GW_BROKERS)"
	"$GW_BIN" --listen "$GW_BROKERS" --conninfo "$GW_CONNINFO" >"$OUT/raw/gateway.log" 2>&1 &
	GW_PID=$!
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$GW_PORT") 2>/dev/null; then break; fi
		sleep 0.1
	done
	if ! kill -0 "$GW_PID" 2>/dev/null; then
		echo "the gateway did not start, see $OUT/raw/gateway.log:" >&2
		tail -5 "$OUT/raw/gateway.log" >&2
		exit 1
	fi
	{
		echo "- gateway: pgqueue-kafka (gateway/, default options: pools of 4 connections) on $GW_BROKERS, Unix socket to the server; clients: bench/kafka_bench.c on librdkafka $(dpkg-query -W -f='${Version}' librdkafka-dev 2>/dev/null || echo '?'); $(fmt_int "$GW_N") records per produce and drain measurement, E2E for $GW_E2E_T s"
	} >>"$OUT/meta.md"
fi

# ---------------------------------------------------------- per-system pieces
# the partition of the plain table for key expression $1 over $2 partitions
partexpr() { if [ "$2" = 1 ]; then echo 0; else echo "(hashtext($1) & 2147483647) % $2"; fi; }

# reset SYS NAME PARTITIONS [TOPICS]: a fresh, empty topic / table / queue
# (TOPICS > 0: NAME1..NAMEn)
reset() {
	local sys=$1 name=$2 parts=$3 n=${4:-0} names i f="$OUT/scripts/reset.sql"
	if [ "$n" -gt 0 ]; then names=$(for i in $(seq "$n"); do echo "$name$i"; done); else names=$name; fi
	echo "SET client_min_messages = warning;" >"$f"
	for t in $names; do
		case $sys in
		pgqueue) echo "SELECT pgq_drop_topic('$t', true); SELECT pgq_create_topic('$t', $parts);" ;;
		plain) echo "DROP TABLE IF EXISTS plain_$t; DROP SEQUENCE IF EXISTS plain_${t}_seq; CREATE SEQUENCE plain_${t}_seq;
CREATE TABLE plain_$t (partition int, msg_offset bigint DEFAULT nextval('plain_${t}_seq'), key text, value bytea,
                       ts timestamptz DEFAULT now(), PRIMARY KEY (partition, msg_offset));" ;;
		pgq) echo "SELECT pgq.drop_queue(queue_name, true) FROM pgq.queue WHERE queue_name = '$t'; SELECT pgq.create_queue('$t');" ;;
		esac
	done >>"$f"
	q -f "$f" >/dev/null
}

# p1_script SYS NAME PARTITIONS [TOPICS]: one message per transaction
p1_script() {
	local sys=$1 name=$2 parts=$3 n=${4:-0} topic table key f
	f="$OUT/scripts/p1-$sys-$name-$parts.sql"
	topic="'$name'" table="plain_$name" key="lpad(:k::text, 16, '0')"
	if [ "$n" -gt 0 ]; then topic="'$name' || :t" table="plain_$name:t"; fi
	{
		echo '\set k random(0, 999999999999999)'
		echo '\set v random(0, 999999999999999)'
		if [ "$n" -gt 0 ]; then echo "\\set t random(1, $n)"; fi
		case $sys in
		pgqueue) echo "SELECT pgq_send($topic, lpad(:v::text, 100, 'v'), $key);" ;;
		plain) echo "INSERT INTO $table (partition, key, value) VALUES ($(partexpr "$key" "$parts"), $key, convert_to(lpad(:v::text, 100, 'v'), 'UTF8'));" ;;
		pgq) echo "SELECT pgq.insert_event($topic, $key, lpad(:v::text, 100, 'v'));" ;;
		esac
	} >"$f"
	echo "$f"
}

# batch_script SYS NAME ROWS PARTITIONS [tick]: ROWS messages in one transaction
batch_script() {
	local sys=$1 name=$2 rows=$3 parts=$4 tick=${5:-} part=${6:-} vals keys f
	f="$OUT/scripts/batch-$sys-$name-$rows-$parts$tick${part:+-p$part}.sql"
	vals="(SELECT array_agg(repeat('v', 100)) FROM generate_series(1, $rows))"
	keys="(SELECT array_agg(lpad((random() * 1e15)::bigint::text, 16, '0')) FROM generate_series(1, $rows))"
	case $sys in
	pgqueue) echo "SELECT count(*) FROM pgq_send_batch('$name', $vals, $keys${part:+, $part});" ;;
	plain) echo "INSERT INTO plain_$name (partition, key, value) SELECT $(partexpr k "$parts"), k, convert_to(v, 'UTF8') FROM unnest($vals, $keys) AS u(v, k);" ;;
	pgq) echo "SELECT count(pgq.insert_event('$name', k, v)) FROM unnest($vals, $keys) AS u(v, k);"
		if [ -n "$tick" ]; then echo "SELECT pgq.ticker('$name');"; fi ;;
	esac >"$f"
	echo "$f"
}

# consumer_setup SYS NAME CONSUMER: a group / cursor row / PgQ consumer
# reading NAME from its start (before the pre-load: PgQ sees only later events)
consumer_setup() {
	local sys=$1 name=$2 c=$3
	case $sys in
	pgqueue) q -c "SELECT pgq_alter_group('$c', '{\"enable.auto.commit\": false, \"auto.offset.reset\": \"earliest\"}')" ;;
	plain) q -c "INSERT INTO plain_cursor VALUES ('$c', 0, 0) ON CONFLICT (consumer) DO UPDATE SET pos = 0" ;;
	pgq) q -c "SELECT pgq.set_queue_config('$name', 'ticker_max_count', '1000')" -c "SELECT pgq.register_consumer('$name', '$c')" ;;
	esac >/dev/null
}

# drain_script SYS NAME CONSUMER [MEMBER-EXPR]: one batch of up to 1000 and its commit
drain_script() {
	local sys=$1 name=$2 c=$3 member=${4:-"'m1'"} f
	f="$OUT/scripts/drain-$sys-$name-$c.sql"
	case $sys in
	pgqueue) cat <<SQL ;;
BEGIN;
SELECT count(*) FROM pgq_poll('$c', '$name', 1000, 0, $member);
SELECT pgq_commit('$c', $member);
COMMIT;
SQL
	plain) cat <<SQL ;;
BEGIN;
SELECT count(*) AS n, coalesce(max(msg_offset) + 1, -1) AS next, sum(octet_length(key) + octet_length(value)) AS bytes
  FROM (SELECT msg_offset, key, value FROM plain_$name
         WHERE partition = 0 AND msg_offset >= (SELECT pos FROM plain_cursor WHERE consumer = '$c')
         ORDER BY msg_offset LIMIT 1000) s \gset
UPDATE plain_cursor SET pos = greatest(pos, :next) WHERE consumer = '$c';
COMMIT;
SQL
	pgq) cat <<SQL ;;
BEGIN;
SELECT coalesce(pgq.next_batch('$name', '$c'), 0) AS bid \gset
\if :bid > 0
SELECT count(*) FROM pgq.get_batch_events(:bid);
SELECT pgq.finish_batch(:bid);
\endif
COMMIT;
SQL
	esac >"$f"
	echo "$f"
}

# backlog SYS NAME CONSUMER: messages not yet consumed
backlog() {
	local sys=$1 name=$2 c=$3
	case $sys in
	pgqueue) q -c "SELECT coalesce(sum(lag), -1) FROM pgq_consumer_lag WHERE group_id = '$c' AND topic = '$name'" ;;
	plain) q -c "SELECT count(*) FROM plain_$name WHERE partition = 0 AND msg_offset >= (SELECT pos FROM plain_cursor WHERE consumer = '$c')" ;;
	pgq) q -c "SELECT pending_events FROM pgq.get_consumer_info('$name', '$c')" ;;
	esac
}

# batches SYS NAME CONSUMER MESSAGES: transactions a 1-partition drain takes
batches() {
	case $1 in
	pgq) q -c "SELECT count(*) FROM pgq.tick t JOIN pgq.queue q ON q.queue_id = t.tick_queue
	            WHERE q.queue_name = '$2' AND t.tick_id > (SELECT last_tick FROM pgq.get_consumer_info('$2', '$3'))" ;;
	*) echo $(($4 / 1000)) ;;
	esac
}

# pgb LOG ARGS...: pgbench -n ARGS, output in LOG; prints the tps, or fails
pgb() {
	local log=$1
	shift
	echo "# ${PGOPTIONS:+PGOPTIONS='$PGOPTIONS' }pgbench -n $*" >"$log"
	if ! pgbench -n "$@" >>"$log" 2>&1; then
		echo "pgbench failed, see $log:" >&2
		tail -3 "$log" >&2
		return 1
	fi
	if ! grep -q '^number of failed transactions: 0 ' "$log" && grep -q '^number of failed transactions' "$log"; then
		echo "pgbench reported failed transactions, see $log" >&2
		return 1
	fi
	sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$log"
}

# record WORKLOAD CONFIG SYSTEM RUN VALUE UNIT
record() {
	printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$TSV"
	local v=$5
	if [ "$v" != NA ] && [ "$6" = msg/s ]; then v=$(fmt_int "$v"); fi
	progress "  $1 $2 $3 run $4: $v $6"
}

checkpoint() { q -c CHECKPOINT; }

# systems in turn, starting one further each run (so none always goes first)
rotated() {
	local -a s=($SYSTEMS)
	local i n=${#s[@]}
	for ((i = 0; i < n; i++)); do echo "${s[(i + $1 - 1) % n]}"; done
}

# ------------------------------------------------------------------ workloads
# producer WORKLOAD CONFIG SYS RUN SCRIPT MSGS-PER-TX PGBENCH-ARGS...
producer() {
	local w=$1 c=$2 sys=$3 r=$4 script=$5 per=$6 tps
	shift 6
	checkpoint
	if tps=$(pgb "$OUT/raw/$w-$c-$sys-r$r.log" -f "$script" "$@"); then
		record "$w" "$c" "$sys" "$r" "$(calc "$tps * $per")" msg/s
	else
		record "$w" "$c" "$sys" "$r" NA msg/s
	fi
}

run_p1() { # WORKLOAD RUN (p1 or p1off)
	local w=$1 r=$2 sys
	for sys in $(rotated "$r"); do
		for c in 1 4; do
			reset "$sys" p1 1
			local args=(-T "$T_P" -c "$c" -j "$((c > 1 ? 2 : 1))")
			if [ "$w" = p1off ]; then
				PGOPTIONS="-c synchronous_commit=off" producer "$w" "c$c" "$sys" "$r" "$(p1_script "$sys" p1 1)" 1 "${args[@]}"
			else
				producer "$w" "c$c" "$sys" "$r" "$(p1_script "$sys" p1 1)" 1 "${args[@]}"
			fi
		done
	done
}

# p1idem_script BASE: P1's pgqueue script as an idempotent producer: client
# i is producer BASE + i, counting its sequences from -D seq=0
p1idem_script() {
	local f="$OUT/scripts/p1idem-$1.sql"
	{
		echo '\set k random(0, 999999999999999)'
		echo '\set v random(0, 999999999999999)'
		echo "SELECT pgq_send('p1', lpad(:v::text, 100, 'v'), lpad(:k::text, 16, '0'), producer_id => $1 + :client_id, producer_epoch => 0, sequence => :seq);"
		echo '\set seq :seq + 1'
	} >"$f"
	echo "$f"
}

# P1 with and without idempotence (systems "idempotent" and "pgqueue"): 1
# and 4 clients sending plain SQL (pgbench's simple protocol, as P1), and 4
# clients with prepared statements ("c4p": parsed once, as drivers and the
# Kafka gateway run them).  Each side's -T is cut into 3 slices, and the
# two sides' slices alternate (the order alternating by run), each slice a
# measurement of its own ("run.slice" in results.tsv): the disk's commit
# latency, which P1 waits on, drifts by as much as twice within minutes,
# and a pair of slices next to each other meets the same disk.
run_p1idem() {
	local r=$1 mode cfg c base slice
	local slice_t=$(((T_P + 2) / 3))
	for cfg in 1 4 4p; do
		for slice in 1 2 3; do
		for mode in $(if (((r + slice) % 2)); then echo pgqueue idempotent; else echo idempotent pgqueue; fi); do
			c=${cfg%p}
			reset pgqueue p1 1
			local args=(-T "$slice_t" -c "$c" -j "$((c > 1 ? 2 : 1))")
			[ "$cfg" = "$c" ] || args+=(-M prepared)
			if [ "$mode" = idempotent ]; then
				base=$(q -c "SELECT min(id) FROM (SELECT (pgq_init_producer()).producer_id AS id FROM generate_series(1, $c)) p")
				producer p1idem "c$cfg" idempotent "$r.$slice" "$(p1idem_script "$base")" 1 "${args[@]}" -D seq=0
			else
				producer p1idem "c$cfg" pgqueue "$r.$slice" "$(p1_script pgqueue p1 1)" 1 "${args[@]}"
			fi
		done
		done
	done
}

run_p2() {
	local r=$1 sys c
	for sys in $(rotated "$r"); do
		for c in 1 2; do
			reset "$sys" p2 1
			producer p2 "c$c" "$sys" "$r" "$(batch_script "$sys" p2 1000 1)" 1000 -T "$T_P" -c "$c" -j "$c"
		done
	done
}

# preload SYS NAME MESSAGES PARTITIONS LOG [PARTITION]: not timed (pgqueue:
# all into PARTITION if given, else by key)
preload() {
	local sys=$1 name=$2 n=$3 parts=$4 log=$5 part=${6:-} script tx
	if [ "$sys" = pgq ]; then
		script=$(batch_script pgq "$name" 1000 1 tick) tx=$((n / 1000))
	else
		script=$(batch_script "$sys" "$name" 10000 "$parts" "" "$part") tx=$((n / 10000))
	fi
	pgb "$log" -t "$tx" -f "$script" >/dev/null || return 1
	# statistics, as autovacuum would have them by then: without them the
	# plain table's range SELECT is planned as a scan and sort of the table
	q -c "ANALYZE"
}

# c1_drain SYS NAME CONSUMER MESSAGES LOG: one client drains a 1-partition
# backlog; prints messages/s
c1_drain() {
	local sys=$1 name=$2 c=$3 n=$4 log=$5 tx tps left
	tx=$(batches "$sys" "$name" "$c" "$n")
	tps=$(pgb "$log" -t "$tx" -f "$(drain_script "$sys" "$name" "$c")") || return 1
	left=$(backlog "$sys" "$name" "$c")
	echo "backlog after the drain: $left" >>"$log"
	if [ "$left" != 0 ]; then echo "$sys: $left messages left after the drain, see $log" >&2; fi
	calc "($n - ($left > 0 ? $left : 0)) * $tps / $tx"
}

run_c1() {
	local r=$1 sys v
	for sys in $(rotated "$r"); do
		progress "  c1 $sys run $r: pre-loading $(fmt_int "$MSGS") messages"
		reset "$sys" c1 1
		consumer_setup "$sys" c1 "g$r"
		if preload "$sys" c1 "$MSGS" 1 "$OUT/raw/c1-preload-$sys-r$r.log" && checkpoint &&
			v=$(c1_drain "$sys" c1 "g$r" "$MSGS" "$OUT/raw/c1-drain-$sys-r$r.log"); then
			record c1 drain "$sys" "$r" "$v" msg/s
		else
			record c1 drain "$sys" "$r" NA msg/s
		fi
	done
}

# logged LOG NAME PROGRAM ARGS...: runs a client program, its command line
# and output in LOG; fails, saying so, if it does
logged() {
	local log=$1 name=$2
	shift 2
	echo "# $name ${*:2}" >"$log"
	if ! "$@" >>"$log" 2>&1; then
		echo "$name failed, see $log:" >&2
		tail -3 "$log" >&2
		return 1
	fi
}

# driver LOG ARGS...: bench/driver.py ARGS, output in LOG; prints the messages/s, or fails
driver() {
	logged "$1" bench/driver.py "$BENCH_DIR/driver.py" "${@:2}" || return 1
	sed -n 's/^messages .* rate \([0-9.]*\)$/\1/p' "$1"
}

# P2 and C1 through psycopg: pgqueue and the plain table (no PgQ)
run_p2py() {
	local r=$1 sys v
	for sys in $(rotated "$r"); do
		[ "$sys" = pgq ] && continue
		reset "$sys" p2py 1
		checkpoint
		if v=$(driver "$OUT/raw/p2py-c1-$sys-r$r.log" p2 --system "$sys" --name p2py --seconds "$T_P"); then
			record p2py c1 "$sys" "$r" "$v" msg/s
		else
			record p2py c1 "$sys" "$r" NA msg/s
		fi
	done
}

run_c1py() {
	local r=$1 sys v left
	for sys in $(rotated "$r"); do
		[ "$sys" = pgq ] && continue
		progress "  c1py $sys run $r: pre-loading $(fmt_int "$MSGS") messages"
		reset "$sys" c1py 1
		consumer_setup "$sys" c1py "py$r"
		if preload "$sys" c1py "$MSGS" 1 "$OUT/raw/c1py-preload-$sys-r$r.log" && checkpoint &&
			v=$(driver "$OUT/raw/c1py-drain-$sys-r$r.log" c1 --system "$sys" --name c1py --group "py$r" --messages "$MSGS"); then
			left=$(backlog "$sys" c1py "py$r")
			echo "backlog after the drain: $left" >>"$OUT/raw/c1py-drain-$sys-r$r.log"
			if [ "$left" = 0 ]; then
				record c1py drain "$sys" "$r" "$v" msg/s
			else
				echo "$sys: $left messages left after the drain, see $OUT/raw/c1py-drain-$sys-r$r.log" >&2
				record c1py drain "$sys" "$r" NA msg/s
			fi
		else
			record c1py drain "$sys" "$r" NA msg/s
		fi
	done
}

run_e2e() {
	local r=$1 log="$OUT/raw/e2e-r$r.log" send="$OUT/scripts/e2e-send.sql" line
	progress "  e2e pgqueue run $r: 1000 records/s for $E2E_T s"
	q -c "SELECT pgq_drop_topic('lat', true)" -c "SELECT pgq_create_topic('lat', 1)" \
		-c "SELECT pgq_drop_topic('idle', true)" -c "SELECT pgq_create_topic('idle', 1)" >/dev/null
	echo "SELECT pgq_send('lat', 'payload');" >"$send"
	checkpoint
	local steal0 t0
	steal0=$(steal_ticks) t0=$(now)
	q >"$log.consumer" 2>&1 <<SQL &
CREATE TEMP TABLE lat (ms float8);
DO \$\$
DECLARE
    next bigint := 0;
    r record;
    stop_at timestamptz := clock_timestamp() + interval '$((E2E_T + 2)) s';
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
SELECT count(*),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY ms), percentile_cont(0.9) WITHIN GROUP (ORDER BY ms),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY ms), percentile_cont(0.999) WITHIN GROUP (ORDER BY ms), max(ms)
  FROM lat;
SQL
	local consumer=$!
	BG_PIDS+=("$consumer")
	sleep 1
	pgb "$log" -c 2 -j 2 -R 1000 -T "$E2E_T" -f "$send" >/dev/null || true
	wait "$consumer" || true
	record e2e steal pgqueue "$r" "$(steal_pct "$steal0" "$t0")" %
	cat "$log.consumer" >>"$log"
	line=$(tail -1 "$log.consumer")
	if [[ $line =~ ^[0-9]+\|[0-9.]+\| ]]; then
		IFS='|' read -r n p50 p90 p99 p999 max <<<"$line"
		record e2e records pgqueue "$r" "$n" records
		record e2e p50 pgqueue "$r" "$p50" ms
		record e2e p90 pgqueue "$r" "$p90" ms
		record e2e p99 pgqueue "$r" "$p99" ms
		record e2e p99.9 pgqueue "$r" "$p999" ms
		record e2e max pgqueue "$r" "$max" ms
	else
		record e2e p99 pgqueue "$r" NA ms
	fi

	progress "  e2e pgqueue run $r: 20 sessions waiting $E2E_IDLE s on an idle topic"
	local -a waiters=()
	for _ in $(seq 20); do
		q -c "SELECT count(*) FROM pgq_fetch('idle', 0, 0, 10, $(((E2E_IDLE + 1) * 1000)))" >/dev/null &
		waiters+=($!)
	done
	BG_PIDS+=("${waiters[@]}")
	sleep 0.5
	local pids before after
	pids=$(q -c "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity WHERE wait_event_type = 'Extension' AND backend_type = 'client backend'")
	ticks() { local t=0 p; for p in $pids; do set -- $(cut -d' ' -f14,15 "/proc/$p/stat"); t=$((t + $1 + $2)); done; echo $t; }
	before=$(ticks)
	sleep "$E2E_IDLE"
	after=$(ticks)
	echo "waiting backends: $(echo $pids | wc -w); CPU ticks in $E2E_IDLE s: $((after - before))" >>"$log"
	wait "${waiters[@]}" || true
	record e2e idle_ticks pgqueue "$r" "$((after - before))" "ticks/${E2E_IDLE}s"
}

# watch_drain LOG GROUP TOPIC MEMBERS MESSAGES: pgbench -c MEMBERS polls
# until the group's committed offsets cover MESSAGES; prints messages/s
watch_drain() {
	local log=$1 g=$2 t=$3 m=$4 n=$5 script pid t0 t1 done_ deadline
	script=$(drain_script pgqueue "$t" "$g" "'m' || :client_id")
	echo "# pgbench -n -c $m -j $((m > 1 ? 2 : 1)) -T 900 -f $script, stopped when the group has committed $n messages" >"$log"
	t0=$(now)
	deadline=$(calc "$t0 + 600")
	pgbench -n -c "$m" -j "$((m > 1 ? 2 : 1))" -T 900 -f "$script" >>"$log" 2>&1 &
	pid=$!
	BG_PIDS+=("$pid")
	while :; do
		sleep 0.05
		done_=$(q -c "SELECT coalesce(sum(o.committed_offset), 0) FROM pgqueue.group_offset o
		               JOIN pgqueue.topic t USING (topic_id) WHERE o.group_id = '$g' AND t.name = '$t'")
		if [ "$done_" -ge "$n" ]; then t1=$(now); break; fi
		if ! kill -0 "$pid" 2>/dev/null || awk "BEGIN { exit !($(now) > $deadline) }"; then
			echo "drain of $t by $g did not finish ($done_ of $n), see $log" >&2
			kill "$pid" 2>/dev/null || true
			wait "$pid" 2>/dev/null || true
			return 1
		fi
	done
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	echo "drained $n messages in $(calc "$t1 - $t0") s" >>"$log"
	calc "$n / ($t1 - $t0)"
}

# scale_drain WORKLOAD CONFIG RUN TOPIC PARTITIONS MEMBERS
scale_drain() {
	local w=$1 c=$2 r=$3 t=$4 parts=$5 m=$6 part=${7:-} v
	progress "  $w $c pgqueue run $r: pre-loading $(fmt_int "$MSGS") messages into ${part:+partition $part of }$parts partition(s)"
	reset pgqueue "$t" "$parts"
	consumer_setup pgqueue "$t" "g$r-$c"
	if preload pgqueue "$t" "$MSGS" "$parts" "$OUT/raw/$w-$c-preload-r$r.log" "$part" && checkpoint &&
		v=$(watch_drain "$OUT/raw/$w-$c-pgqueue-r$r.log" "g$r-$c" "$t" "$m" "$MSGS"); then
		record "$w" "$c" pgqueue "$r" "$v" msg/s
	else
		record "$w" "$c" pgqueue "$r" NA msg/s
	fi
}

run_partitions() {
	local r=$1 sys n
	# 1 partition: the P1 c=4 measurement itself
	if want p1; then
		awk -F'\t' -v r="$r" 'BEGIN { OFS = "\t" } $1 == "p1" && $2 == "c4" && $3 != "pgq" && $4 == r { $1 = "partitions"; $2 = "p1-1"; print }' "$TSV" >"$TSV.tmp"
		cat "$TSV.tmp" >>"$TSV"
		rm -f "$TSV.tmp"
		set -- 16 256
	else
		set -- 1 16 256
	fi
	for n in "$@"; do
		for sys in $(rotated "$r"); do
			[ "$sys" = pgq ] && continue
			reset "$sys" "s$n" "$n"
			producer partitions "p1-$n" "$sys" "$r" "$(p1_script "$sys" "s$n" "$n")" 1 -T "$T_P" -c 4 -j 2
		done
	done
	for n in 1 16 256; do
		scale_drain partitions "drain-$n" "$r" "d$n" "$n" 1
	done
	# the partitions not involved: every message in partition 0 of 256
	scale_drain partitions drain-256-in-1 "$r" d256e 256 1 0
}

run_members() {
	local r=$1 m
	if want partitions; then
		awk -F'\t' -v r="$r" 'BEGIN { OFS = "\t" } $1 == "partitions" && $2 == "drain-16" && $4 == r { $1 = "members"; $2 = "m1"; print }' "$TSV" >"$TSV.tmp"
		cat "$TSV.tmp" >>"$TSV"
		rm -f "$TSV.tmp"
		set -- 4 16
	else
		set -- 1 4 16
	fi
	for m in "$@"; do
		scale_drain members "m$m" "$r" m16 16 "$m"
	done
}

run_topics() {
	local r=$1 sys
	for sys in $(rotated "$r"); do
		reset "$sys" tp 1 100
		producer topics p1-100 "$sys" "$r" "$(p1_script "$sys" tp 1 100)" 1 -T "$T_P" -c 4 -j 2
	done
}

# held SYS: cycles of P2 and C1 while another session holds a snapshot
run_held() {
	local sys=$1 fifo="$OUT/raw/held-$sys.fifo" hlog="$OUT/raw/held-$sys-holder.log" holder fd cycle=0 t0 held v
	local slog="$OUT/raw/held-$sys-state.log"
	reset "$sys" hx_p2 1
	reset "$sys" hx_c1 1
	consumer_setup "$sys" hx_c1 hx
	checkpoint
	mkfifo "$fifo"
	PGAPPNAME=bench_xmin_holder q <"$fifo" >"$hlog" 2>&1 &
	holder=$!
	BG_PIDS+=("$holder")
	exec {fd}>"$fifo"
	echo "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM pg_class;" >&$fd
	for _ in $(seq 100); do
		[ "$(q -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'bench_xmin_holder' AND backend_xmin IS NOT NULL AND state = 'idle in transaction'")" = 1 ] && break
		sleep 0.1
	done
	t0=$(now)
	progress "  held $sys: snapshot taken ($(q -c "SELECT backend_xmin FROM pg_stat_activity WHERE application_name = 'bench_xmin_holder'")), cycles for $HELD_MIN min"
	while :; do
		cycle=$((cycle + 1))
		if v=$(pgb "$OUT/raw/held-p2-$sys-c$cycle.log" -T "$HELD_P2_T" -c 1 -j 1 -f "$(batch_script "$sys" hx_p2 1000 1)"); then
			record held p2 "$sys" "$cycle" "$(calc "$v * 1000")" msg/s
		else
			record held p2 "$sys" "$cycle" NA msg/s
		fi
		if preload "$sys" hx_c1 "$MSGS" 1 "$OUT/raw/held-preload-$sys-c$cycle.log" &&
			v=$(c1_drain "$sys" hx_c1 hx "$MSGS" "$OUT/raw/held-c1-$sys-c$cycle.log"); then
			record held c1 "$sys" "$cycle" "$v" msg/s
		else
			record held c1 "$sys" "$cycle" NA msg/s
		fi
		{
			printf 'cycle %s, %s s: ' "$cycle" "$(calc "$(now) - $t0")"
			case $sys in
			pgqueue) q -c "SELECT 'group_offset ' || pg_relation_size('pgqueue.group_offset') || ' bytes, index ' || pg_relation_size('pgqueue.group_offset_pkey') || ' bytes'" ;;
			plain) q -c "SELECT 'plain_cursor ' || pg_relation_size('plain_cursor') || ' bytes, index ' || pg_relation_size('plain_cursor_pkey') || ' bytes'" ;;
			pgq) q -c "SELECT 'subscription ' || pg_relation_size('pgq.subscription') || ' bytes, tick ' || pg_relation_size('pgq.tick') || ' bytes'" ;;
			esac
		} >>"$slog"
		if awk "BEGIN { exit !($(now) - $t0 >= $HELD_MIN * 60) }"; then break; fi
	done
	held=$(calc "$(now) - $t0")
	echo "COMMIT;" >&$fd
	exec {fd}>&-
	wait "$holder" || true
	rm -f "$fifo"
	record held held_s "$sys" 0 "$held" s
}

# ------------------------------------------------------- through the gateway
# kb LOG MODE ARGS...: bench/kafka_bench MODE ARGS, output in LOG; prints
# its result line's key=value pairs, or fails
kb() {
	logged "$1" kafka_bench "$KB" "${@:2}" || return 1
	sed -n 's/^result //p' "$1"
}
# field KEY PAIRS: the value of KEY in kafka_bench's key=value pairs
field() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"; }

# Produce: a librdkafka producer through the gateway against the same
# records sent by pgq_send_batch over SQL, in batches of the size librdkafka
# sent (its statistics), from one connection as from one producer.  Odd runs: gateway first (its batch size is what the SQL
# side then uses); even runs: SQL first, with the previous run's batch size.
declare -A GW_BATCH=()
run_gwprod() {
	local r=$1 parts side v
	for parts in 1 4; do
		for side in $(if ((r % 2)); then echo gateway sql; else echo sql gateway; fi); do
			reset pgqueue "gw${side}$parts" "$parts"
			checkpoint
			if [ "$side" = gateway ]; then
				if v=$(kb "$OUT/raw/gwprod-p$parts-gateway-r$r.log" produce --brokers "$GW_BROKERS" --topic "gwgateway$parts" --records "$GW_N"); then
					GW_BATCH[$parts]=$(printf '%.0f' "$(field batch_avg "$v")")
					record gwprod "p$parts" gateway "$r" "$(field rate "$v")" msg/s
					record gwprod "p$parts-batch" gateway "$r" "$(field batch_avg "$v")" records
				else
					record gwprod "p$parts" gateway "$r" NA msg/s
				fi
			elif [ -z "${GW_BATCH[$parts]:-}" ]; then
				record gwprod "p$parts" sql "$r" NA msg/s
			elif v=$(kb "$OUT/raw/gwprod-p$parts-sql-r$r.log" sqlproduce --conninfo "$GW_CONNINFO" --topic "gwsql$parts" \
				--records "$GW_N" --batch "${GW_BATCH[$parts]}" --partitions "$parts"); then
				record gwprod "p$parts" sql "$r" "$(field rate "$v")" msg/s
			else
				record gwprod "p$parts" sql "$r" NA msg/s
			fi
		done
	done
}

# Drain: one backlog of GW_N records in 1 partition, read to its end by a
# librdkafka consumer through the gateway (no group, nothing committed),
# drained by C1's pgbench consumer (pgq_poll of 1000 + pgq_commit per
# transaction; system "sql") and by the same from a libpq client that
# receives every row ("sqlrows"), in alternating order
run_gwdrain() {
	local r=$1 side v
	progress "  gwdrain run $r: pre-loading $(fmt_int "$GW_N") messages"
	reset pgqueue gwd 1
	consumer_setup pgqueue gwd "gwd$r"
	if ! preload pgqueue gwd "$GW_N" 1 "$OUT/raw/gwdrain-preload-r$r.log"; then
		record gwdrain drain gateway "$r" NA msg/s
		record gwdrain drain sql "$r" NA msg/s
		return
	fi
	# one read first, so that the first side measured does not set the new
	# rows' hint bits for the second
	q -c "SELECT count(*) FROM pgq_fetch('gwd', 0, 0, $GW_N)" >>"$OUT/raw/gwdrain-preload-r$r.log"
	consumer_setup pgqueue gwd "gwdr$r"
	for side in $(if ((r % 2)); then echo gateway sql sqlrows; else echo sqlrows sql gateway; fi); do
		checkpoint
		case $side in
		gateway) v=$(kb "$OUT/raw/gwdrain-gateway-r$r.log" drain --brokers "$GW_BROKERS" --topic gwd --records "$GW_N") &&
			v=$(field rate "$v") ;;
		sql) v=$(c1_drain pgqueue gwd "gwd$r" "$GW_N" "$OUT/raw/gwdrain-sql-r$r.log") ;;
		sqlrows) v=$(kb "$OUT/raw/gwdrain-sqlrows-r$r.log" sqldrain --conninfo "$GW_CONNINFO" --topic gwd --group "gwdr$r" --records "$GW_N") &&
			v=$(field rate "$v") ;;
		esac || v=NA
		record gwdrain drain "$side" "$r" "$v" msg/s
	done
}

# E2E through the gateway: kafka_bench e2e at 1000 records/s for GW_E2E_T
# s; the SQL E2E is the e2e workload of the same run (run here when it was
# not asked for), in alternating order
# Two producers: librdkafka's defaults but linger.ms=0 (system "gateway"),
# and the same with max.in.flight=1 ("inflight1"), which lets records that
# arrive while a request is answered go together in the next one.
run_gwe2e_gateway() {
	local r=$1 v k sys steal0 t0 ok
	for sys in gateway inflight1; do
		progress "  gwe2e $sys run $r: 1000 records/s for $GW_E2E_T s"
		reset pgqueue gwlat 1
		checkpoint
		steal0=$(steal_ticks) t0=$(now)
		ok=0
		v=$(kb "$OUT/raw/gwe2e-$sys-r$r.log" e2e --brokers "$GW_BROKERS" --topic gwlat --rate 1000 --seconds "$GW_E2E_T" \
			$(if [ "$sys" = inflight1 ]; then echo --max-in-flight 1; fi)) || ok=1
		record gwe2e steal "$sys" "$r" "$(steal_pct "$steal0" "$t0")" %
		if [ $ok = 0 ]; then
			record gwe2e records "$sys" "$r" "$(field records "$v")" records
			for k in p50 p90 p99 p99.9 max ack_p50 ack_p99; do record gwe2e "$k" "$sys" "$r" "$(field "$k" "$v")" ms; done
		else
			record gwe2e p99 "$sys" "$r" NA ms
		fi
	done
}

run_gwe2e() {
	local r=$1
	if want e2e; then run_gwe2e_gateway "$r"; return; fi
	if ((r % 2)); then run_gwe2e_gateway "$r"; run_e2e "$r"; else run_e2e "$r"; run_gwe2e_gateway "$r"; fi
}

# ------------------------------------------------------------------------ run
for r in $(seq "$RUNS"); do
	say "run $r of $RUNS"
	if want p1; then progress "P1: 1 message per transaction, -T $T_P"; run_p1 p1 "$r"; fi
	if want p1off; then progress "P1off: the same, synchronous_commit = off"; run_p1 p1off "$r"; fi
	if want p1idem; then progress "P1idem: P1 with idempotence and without (pgqueue), -T $T_P"; run_p1idem "$r"; fi
	if want p2; then progress "P2: 1000 messages per transaction, -T $T_P"; run_p2 "$r"; fi
	if want c1; then progress "C1: drain $(fmt_int "$MSGS") messages, 1 consumer, 1000 per batch"; run_c1 "$r"; fi
	if want p2py; then progress "P2py: P2 through psycopg, -T $T_P"; run_p2py "$r"; fi
	if want c1py; then progress "C1py: C1 through psycopg, $(fmt_int "$MSGS") messages"; run_c1py "$r"; fi
	if want e2e; then progress "E2E: send-to-receive latency (pgqueue)"; run_e2e "$r"; fi
	if want partitions; then progress "scale: 1, 16, 256 partitions"; run_partitions "$r"; fi
	if want members; then progress "scale: 1, 4, 16 members draining 16 partitions"; run_members "$r"; fi
	if want topics; then progress "scale: P1 c=4 over 100 topics"; run_topics "$r"; fi
	if want gwprod; then progress "gwprod: produce through the gateway vs pgq_send_batch, $(fmt_int "$GW_N") records"; run_gwprod "$r"; fi
	if want gwdrain; then progress "gwdrain: drain through the gateway vs pgq_poll, $(fmt_int "$GW_N") records"; run_gwdrain "$r"; fi
	if want gwe2e; then progress "gwe2e: E2E latency through the gateway at 1000 records/s"; run_gwe2e "$r"; fi
done
if want held; then
	say "held snapshot: $HELD_MIN min per system"
	for sys in $SYSTEMS; do run_held "$sys"; done
fi

END=$(now)
if [ "$(stat -c '%i %Y' "$SO_PATH")" != "$SO_STAT" ]; then
	msg="**Warning: $SO_PATH was replaced during the run (at $(date -u -r "$SO_PATH" '+%H:%M:%S UTC'), a make install): the measurements after that mixed two builds of pgqueue; run again.**"
	printf '\n%s\n' "$msg" >>"$OUT/meta.md"
	echo "$msg" >&2
fi
printf 'Total duration of the run: %s min (estimated %s min).\n' \
	"$(printf '%.1f' "$(calc "($END - $START) / 60")")" "$((est / 60 + 1))" >"$OUT/duration.txt"
cp "$SERVER_DIR/server.log" "$OUT/raw/server.log" 2>/dev/null || true
write_report "$OUT"
say "results: $OUT/results.md"
cat "$OUT/results.md"
