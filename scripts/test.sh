#!/usr/bin/env bash
# scripts/test.sh: run every test on throw-away servers (what CI runs).
#   pg_regress (make installcheck: regression and isolation specs),
#   pgTAP (pg_prove), the stress tests (senders and readers; group members),
#   and the TAP tests
#   (PostgreSQL::Test::Cluster: crash, restart, several servers), and the
#   demo (scripts/demo.sh, the README's first command) with its output
#   checked.
# Ends with one line "tests: N passed, M failed" (suites) and exits non-zero
# if any suite failed.
source "$(dirname "$0")/lib.sh"
need_root
install_packages
build_and_install

PORT=5477
passed=0
failed=0
failures=()
suite() {	# suite NAME COMMAND...
	local name=$1
	shift
	say "$name"
	if "$@"; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		failures+=("$name")
	fi
}

say "starting a throw-away server in $RUN_DIR/test"
start_server test $PORT "fsync = off" "log_min_messages = warning"
trap 'stop_server test' EXIT
export PGHOST="$RUN_DIR/test" PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres

regress() {
	make -C "$ROOT" -s with_llvm=no installcheck || {
		cat "$ROOT"/test/regression.diffs "$ROOT"/test/isolation/regression.diffs 2>/dev/null | head -300
		return 1
	}
}

pgtap() {
	psql -X -q -c "DROP DATABASE IF EXISTS pgtap_regression" -c "CREATE DATABASE pgtap_regression"
	psql -X -q -d pgtap_regression -c "CREATE EXTENSION pgtap" -c "CREATE EXTENSION pgqueue"
	pg_prove -d pgtap_regression "$ROOT"/test/pgtap/*.sql
}

stress() {
	make -C "$ROOT" -s with_llvm=no test/stress/stress
	psql -X -q -c "DROP DATABASE IF EXISTS stress" -c "CREATE DATABASE stress"
	psql -X -q -d stress -c "CREATE EXTENSION pgqueue"
	PGDATABASE=stress "$ROOT/test/stress/stress" -p 4 -r 2 -P 4 -s "${STRESS_SECONDS:-15}"
}

group_stress() {
	make -C "$ROOT" -s with_llvm=no test/stress/group_stress
	PGDATABASE=stress "$ROOT/test/stress/group_stress" -s "${GROUP_STRESS_SECONDS:-12}"
}

tap() {
	# the upgrade test starts from the library and SQL of the last release
	PGQ_OLD_INSTALL=$(build_old_release "$RUN_DIR/pgqueue-$OLD_RELEASE") || return 1
	export PGQ_OLD_INSTALL

	# PostgreSQL::Test::Cluster runs initdb as the calling user: run as
	# postgres over a copy of the tree that user owns.
	local copy="$RUN_DIR/tap"
	rm -rf "$copy"
	mkdir -p "$copy"
	rsync -a --exclude tmp --exclude .git "$ROOT"/ "$copy"/
	chown -R postgres: "$copy"
	runuser -u postgres -- make -C "$copy" -s with_llvm=no prove_installcheck PROVE_FLAGS="--timer" || {
		tail -n 60 "$copy"/tmp_check/log/regress_log_* 2>/dev/null
		return 1
	}
}

# The README's first command: it must run and show what it says it shows.
demo() {
	local out="$RUN_DIR/demo-output.txt" rc=0 missing=()
	"$ROOT/scripts/demo.sh" >"$out" 2>&1 || rc=$?
	if [ -f "$RUN_DIR/demo-gateway.pid" ]; then
		kill "$(cat "$RUN_DIR/demo-gateway.pid")" 2>/dev/null || true
		rm -f "$RUN_DIR/demo-gateway.pid"
	fi
	stop_server demo
	# what each part prints when it works: the records read back by SQL
	# past the gap, the long poll, kcat's produce, consume (offset 7 is
	# the gap) and group, and the group's lag
	local expect=(
		'after the gap'
		'woken'
		'customer-42 | {"id":2}'
		'partition 0 offset 8 key : after the gap'
		'kafka-billing | orders |         0 |'
		'The demo server and its Kafka gateway are still running'
	)
	for e in "${expect[@]}"; do grep -qF -- "$e" "$out" || missing+=("$e"); done
	# keyless records go round-robin from wherever the counter stands
	grep -qE '^partition 0 offset 6 key : [abc]$' "$out" || missing+=('a keyless record at offset 6 of partition 0')
	if grep -q 'partition 0 offset 7 ' "$out"; then missing+=('no record at the gap (offset 7)'); fi
	if [ "$(grep -cE '^ kafka-billing \| orders \| +[0-2] \| +[0-9]+ \| +0$' "$out")" != 3 ]; then
		missing+=('kafka-billing at lag 0 on the three partitions')
	fi
	if [ "$rc" -ne 0 ] || [ ${#missing[@]} -gt 0 ]; then
		tail -n 60 "$out"
		echo "demo: exit status $rc; missing from its output:"
		printf '  %s\n' "${missing[@]}"
		return 1
	fi
	echo "demo: ran, and its output shows every part"
}

suite "pg_regress: regression and isolation tests" regress
suite "pgTAP" pgtap
suite "stress: concurrent senders and tailing readers" stress
suite "stress: group members joining, leaving, killed and restarted" group_stress
suite "TAP: crash, restart and multi-server tests" tap
suite "demo: scripts/demo.sh" demo

say "summary"
for f in "${failures[@]}"; do echo "FAILED: $f"; done
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
