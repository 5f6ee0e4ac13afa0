#!/usr/bin/env bash
# bench/failover.sh: how long an automatic failover takes under
# pg_auto_failover, measured by test/t/070_auto_failover.pl: a monitor, a
# primary and two standbys (number_sync_standbys = 1) on this machine, an
# idempotent SQL producer, a python3-confluent-kafka producer through
# pgqueue-kafka (acks=all, idempotence) and a committing consumer under
# load; the primary's pg_autoctl and postmaster are killed with kill -9.
# Each run reports, from the kill: the monitor showing the new primary, and
# the first acknowledged send on it from each producer.  Not part of CI.
#
#   bench/failover.sh [--no-build] [--runs N]      (default 3 runs)
#
# The timings depend on the monitor's timeouts, which the test shortens
# (docs/durability.md lists them); the results go to
# bench/results/failover-<time>/failover.md.  About 1 minute a run.
source "$(dirname "$0")/../scripts/lib.sh"

BUILD=1 RUNS=3
while [ $# -gt 0 ]; do
	case $1 in
	--no-build) BUILD=0 ;;
	--runs) RUNS=$2; shift ;;
	-h | --help) sed -n '2,/^source/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done

need_root
install_packages
if [ "$BUILD" = 1 ]; then build_and_install; else set_paths; fi

OUT="$ROOT/bench/results/failover-$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
copy="$RUN_DIR/failover-bench"
rm -rf "$copy"
mkdir -p "$copy"
rsync -a --exclude tmp --exclude .git "$ROOT"/ "$copy"/
chown -R postgres: "$copy"

# the line the test prints, e.g. "kill -9 of the primary -> monitor elects
# node2: 11.1 s; first acknowledged send on it: SQL 9.3 s, Kafka (through
# pgqueue-kafka) 11.6 s"
: >"$OUT/timings.tsv"
for r in $(seq "$RUNS"); do
	say "run $r of $RUNS"
	if ! runuser -u postgres -- make -C "$copy" -s with_llvm=no prove_installcheck \
		PROVE_TESTS=test/t/070_auto_failover.pl >"$OUT/run-$r.log" 2>&1; then
		echo "run $r failed, see $OUT/run-$r.log" >&2
		continue
	fi
	cp "$copy"/tmp_check/log/regress_log_070_auto_failover "$OUT/regress_log-$r"
	grep -o 'monitor elects [a-z0-9]*: [0-9.]* s; first acknowledged send on it: SQL [0-9.]* s, Kafka [^0-9]*[0-9.]* s' \
		"$OUT/regress_log-$r" |
		sed -E 's/monitor elects [a-z0-9]*: ([0-9.]+) s; .*SQL ([0-9.]+) s, Kafka [^0-9]*([0-9.]+) s/\1\t\2\t\3/' |
		tee -a "$OUT/timings.tsv"
done

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) print "–"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
col() { cut -f"$1" "$OUT/timings.tsv" | median; }
range() { cut -f"$1" "$OUT/timings.tsv" | sort -g | sed -n '1p;$p' | paste -sd'-'; }
{
	echo "# Failover under pg_auto_failover, $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo
	echo "- command: \`bench/failover.sh --runs $RUNS\`; pgqueue commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
	echo "- runs that completed: $(wc -l <"$OUT/timings.tsv") of $RUNS"
	echo
	echo "| seconds from kill -9 of the primary to | median | range |"
	echo "|---|---|---|"
	echo "| the monitor showing the new primary | $(col 1) | $(range 1) |"
	echo "| the SQL producer's first acknowledged send on it | $(col 2) | $(range 2) |"
	echo "| the Kafka producer's first acknowledged send through pgqueue-kafka | $(col 3) | $(range 3) |"
} >"$OUT/failover.md"
cat "$OUT/failover.md"
