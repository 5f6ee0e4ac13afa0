#!/usr/bin/env bash
# scripts/cluster.sh: a pg_auto_failover formation on this machine with
# pgqueue-kafka in front, to try automatic failover by hand
# (docs/durability.md, "Try failover by hand").
#
#   scripts/cluster.sh [start]      a monitor, node1 (primary), node2 and
#                                   node3 (standbys, number_sync_standbys = 1),
#                                   a topic "demo" and the gateway; prints how
#                                   to connect
#   scripts/cluster.sh state        the formation's state and its primary
#   scripts/cluster.sh kill-primary kill -9 the primary's pg_autoctl and
#                                   postmaster, follow the election, time it
#   scripts/cluster.sh revive       start the pg_autoctl of every node that is
#                                   down again (a killed primary rejoins as a
#                                   standby)
#   scripts/cluster.sh stop         stop the gateway, the nodes and the monitor
#   scripts/cluster.sh clean        stop, then remove the directory
#
# Options (before or after the command):
#   --dir DIR         where everything lives (default: $RUN_DIR/cluster,
#                     i.e. tmp/cluster in the project)
#   --port-base N     the monitor on N, node1..node3 on N+1..N+3 (default 5490)
#   --kafka-port N    the gateway on 127.0.0.1:N (default 9093)
#   --timeout S       how long start, kill-primary and revive wait (default 120)
#   --no-install      do not install missing Debian packages
#   --no-build        use the pgqueue installed for $PG_CONFIG (or pg_config
#                     in PATH) instead of building and installing this tree
#
# As root (like demo.sh) it installs what is missing, builds and installs
# pgqueue into the system PostgreSQL, and runs every server as the postgres
# OS user.  As another user (the TAP test runs it as postgres) it installs
# and builds nothing and runs the servers as that user.  Everything listens
# on 127.0.0.1 and a Unix socket in the directory.  The monitor's timeouts
# are the short ones of test/t/AutoFailoverTap.pm, so that an election
# takes seconds; docs/durability.md lists them.
#
# Every process started carries PGQUEUE_CLUSTER=DIR in its environment:
# stop finds whatever is left of a formation by it, whatever was killed
# and however pg_autoctl renamed its processes.
source "$(dirname "$0")/lib.sh"

COMMAND=start
DIR=
DIR_GIVEN=0
PORT_BASE=5490
KAFKA_PORT=9093
TIMEOUT=120
INSTALL=1
BUILD=1

usage() {
	sed -n '2,/^$/s/^# \{0,1\}//p' "$0" >&2
	exit 2
}

die() {
	echo "cluster.sh: $*" >&2
	exit 1
}

while [ $# -gt 0 ]; do
	case $1 in
	start | state | kill-primary | revive | stop | clean) COMMAND=$1 ;;
	--dir) DIR=${2:?--dir needs a directory}; DIR_GIVEN=1; shift ;;
	--port-base) PORT_BASE=${2:?--port-base needs a port}; shift ;;
	--kafka-port) KAFKA_PORT=${2:?--kafka-port needs a port}; shift ;;
	--timeout) TIMEOUT=${2:?--timeout needs seconds}; shift ;;
	--no-install) INSTALL=0 ;;
	--no-build) BUILD=0 ;;
	-h | --help) usage ;;
	*) echo "cluster.sh: unknown argument: $1" >&2; usage ;;
	esac
	shift
done

# --- who runs the servers, and where ---------------------------------------

if [ "$(id -u)" = 0 ]; then
	SERVER_USER=postgres
else
	SERVER_USER=$(id -un)
	INSTALL=0
	BUILD=0
fi

# The directory: tmp/cluster of the project when the server user can reach
# it (lib.sh's set_paths), else under /tmp.
if [ -z "$DIR" ]; then
	if [ "$(id -u)" = 0 ]; then
		set_paths
	elif [ -w "$ROOT" ]; then
		RUN_DIR="$ROOT/tmp"
	else
		RUN_DIR="/tmp/pgqueue-$(echo "$ROOT" | md5sum | cut -c1-8)"
	fi
	DIR="$RUN_DIR/cluster"
fi
mkdir -p "$(dirname "$DIR")"
DIR=$(cd "$(dirname "$DIR")" && pwd)/$(basename "$DIR")
NODES="node1 node2 node3"

# Run a command as the server user, with pg_autoctl's configuration, state
# and pid files kept in the formation's directory (pg_autoctl keeps them
# under the XDG directories) and the formation's mark; libpq's environment
# of the caller is not passed on, but PGHOST is the formation's socket
# directory ("pg_autoctl create monitor" has no --pghost and takes PGHOST).
as_server() {
	local env=(env -u PGHOSTADDR -u PGPORT -u PGUSER -u PGDATABASE -u PGDATA -u PGSERVICE
		"PGHOST=$DIR" "XDG_CONFIG_HOME=$DIR/config" "XDG_DATA_HOME=$DIR/share"
		"XDG_RUNTIME_DIR=$DIR/run" "PGQUEUE_CLUSTER=$DIR")
	if [ "$(id -u)" = 0 ]; then
		runuser -u "$SERVER_USER" -- "${env[@]}" "$@"
	else
		"${env[@]}" "$@"
	fi
}

# The settings of a formation started earlier (start writes them).
load_env() {
	[ -f "$DIR/cluster.env" ] || return 1
	# shellcheck source=/dev/null
	source "$DIR/cluster.env"
}

port_of() {	# port_of monitor|node1|node2|node3
	case $1 in
	monitor) echo "$PORT_BASE" ;;
	node1) echo $((PORT_BASE + 1)) ;;
	node2) echo $((PORT_BASE + 2)) ;;
	node3) echo $((PORT_BASE + 3)) ;;
	esac
}

# psql on a member, through the Unix socket: psql_on NAME DBNAME ARGS...
psql_on() {
	local name=$1 db=$2
	shift 2
	as_server "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$DIR" -p "$(port_of "$name")" \
		-U "$SERVER_USER" -d "$db" "$@"
}

monitor_uri() {
	echo "postgres://autoctl_node@127.0.0.1:$PORT_BASE/pg_auto_failover?sslmode=disable"
}

# What clients use: every node, and libpq picks the one that takes writes.
conninfo() {
	echo "host=127.0.0.1,127.0.0.1,127.0.0.1 port=$(port_of node1),$(port_of node2),$(port_of node3)" \
		"user=$SERVER_USER dbname=postgres target_session_attrs=read-write connect_timeout=2"
}

# The formation as the monitor sees it: "node1:reported/assigned ..."; empty
# when the monitor does not answer.
states() {
	psql_on monitor pg_auto_failover -c "SELECT string_agg(nodename || ':' || reportedstate
	    || '/' || goalstate, ' ' ORDER BY nodeid) FROM pgautofailover.node" 2>/dev/null || true
}

# The node reported and assigned primary, if any.
primary() {
	local s
	for s in $(states); do
		case $s in
		*:primary/primary) echo "${s%%:*}"; return ;;
		esac
	done
}

# wait_for SECONDS COMMAND...: until the command succeeds; 1 if it never did.
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.2
	done
}

# is_state "node1:primary/primary node2:..." true when the monitor says so
# (the order of the words does not matter).
is_state() {
	local have want
	have=" $(states) "
	for want in $1; do
		case $have in
		*" $want "*) ;;
		*) return 1 ;;
		esac
	done
}

whole() {
	local p
	p=$(primary)
	[ -n "$p" ] || return 1
	local want="$p:primary/primary" n
	for n in $NODES; do
		[ "$n" = "$p" ] || want="$want $n:secondary/secondary"
	done
	is_state "$want"
}

# --- processes ---------------------------------------------------------------

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }

# The pid of a member's pg_autoctl run (its process group), if it runs.
run_pid() {
	local pid
	pid=$(cat "$DIR/$1.pid" 2>/dev/null) || return 1
	alive "$pid" && echo "$pid"
}

postmaster_pid() {
	local pid
	pid=$(head -n 1 "$DIR/$1/postmaster.pid" 2>/dev/null) || return 1
	alive "$pid" && echo "$pid"
}

# Start "pg_autoctl run" for a member in the background, in a session (and
# process group) of its own: kill-primary kills the whole group at once.
autoctl_run() {
	local name=$1
	as_server_bg "$DIR/$name.log" pg_autoctl run --pgdata "$DIR/$name"
	echo "$BG_PID" >"$DIR/$name.pid"
}

# as_server_bg LOG COMMAND...: start it detached (its own session, no
# terminal, output to LOG); sets BG_PID, the session's leader.
as_server_bg() {
	local log=$1
	shift
	if [ "$(id -u)" = 0 ]; then
		touch "$log"
		chown "$SERVER_USER": "$log"
	fi
	setsid bash -c "$(declare -f as_server); DIR=\$1 SERVER_USER=\$2; shift 2; as_server \"\$@\"" \
		cluster "$DIR" "$SERVER_USER" "$@" </dev/null >>"$log" 2>&1 &
	BG_PID=$!
}

# Every process of the formation still running (by its mark).
formation_pids() {
	local p
	for p in /proc/[0-9]*; do
		[ "${p#/proc/}" = $$ ] && continue
		{ tr '\0' '\n' <"$p/environ"; } 2>/dev/null | grep -qxF "PGQUEUE_CLUSTER=$DIR" && echo "${p#/proc/}"
	done
	return 0
}

# Kill a member as a machine loss would: SIGKILL to its pg_autoctl's
# process group and to its postmaster at once.  (Killing only the
# postmaster is a crash that pg_autoctl repairs by restarting Postgres in
# place: no election.)
kill_member() {
	local name=$1 pid pm
	pid=$(run_pid "$name") || pid=
	pm=$(postmaster_pid "$name") || pm=
	[ -n "$pid" ] && kill -KILL -- "-$pid" 2>/dev/null
	[ -n "$pm" ] && kill -KILL "$pm" 2>/dev/null
	rm -f "$DIR/$name.pid"
	return 0
}

# --- commands ----------------------------------------------------------------

check_programs() {
	command -v pg_autoctl >/dev/null ||
		die "pg_autoctl is not installed (Debian: postgresql-15-auto-failover)"
	[ -e "$($PG_CONFIG --sharedir)/extension/pgautofailover.control" ] ||
		die "the pgautofailover extension is not installed in $($PG_CONFIG --sharedir)"
	[ -e "$($PG_CONFIG --sharedir)/extension/pgqueue.control" ] ||
		die "pgqueue is not installed in $($PG_CONFIG --sharedir) (run as root, or make install)"
	[ -x "$PGBIN/pgqueue-kafka" ] || die "$PGBIN/pgqueue-kafka is not installed"
	command -v kcat >/dev/null || die "kcat is not installed"
}

port_free() {	# nothing accepts connections on 127.0.0.1:PORT
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# An initdb'd data directory with what every node needs in
# postgresql.auto.conf, which is read after pg_autoctl's own settings (and
# pg_basebackup carries it to the standbys).
init_datadir() {
	local name=$1
	shift
	as_server "$PGBIN/initdb" -D "$DIR/$name" -A trust -N -U "$SERVER_USER" >"$DIR/$name.create.log" 2>&1 ||
		die "initdb failed: $(cat "$DIR/$name.create.log")"
	{
		echo "unix_socket_directories = '$DIR'"
		echo "shared_buffers = '16MB'"
		echo "checkpoint_completion_target = 0"
		for line in "$@"; do echo "$line"; done
	} >>"$DIR/$name/postgresql.auto.conf"
}

autoctl() {	# autoctl LOGNAME SECONDS ARGS...: pg_autoctl ARGS, to its end
	local log="$DIR/$1.log" seconds=$2
	shift 2
	as_server timeout "$seconds" pg_autoctl "$@" >>"$log" 2>&1 ||
		die "pg_autoctl $1 failed; $log:
$(tail -n 30 "$log")"
}

# The monitor's timeouts, cut from the production defaults as in
# test/t/AutoFailoverTap.pm (docs/durability.md explains them).
MONITOR_SETTINGS=(
	'pgautofailover.health_check_period = 1000'
	'pgautofailover.health_check_timeout = 1000'
	'pgautofailover.health_check_max_retries = 1'
	'pgautofailover.health_check_retry_delay = 500'
	'pgautofailover.node_considered_unhealthy_timeout = 3000'
	'pgautofailover.primary_demote_timeout = 5000'
	'pgautofailover.startup_grace_period = 1000')

create_node() {
	local name=$1
	autoctl "$name.create" 120 create postgres --pgdata "$DIR/$name" \
		--pgport "$(port_of "$name")" --pghost "$DIR" --pgctl "$PGBIN/pg_ctl" \
		--listen 127.0.0.1 --hostname 127.0.0.1 --name "$name" --dbname postgres \
		--username "$SERVER_USER" --auth trust --no-ssl --monitor "$(monitor_uri)"
	# a primary cut off from the monitor and the standbys demotes itself
	# after 3 s, below the monitor's primary_demote_timeout
	autoctl "$name.create" 30 config set --pgdata "$DIR/$name" timeout.network_partition_timeout 3
	autoctl_run "$name"
}

start_gateway() {
	as_server_bg "$DIR/gateway.log" "$PGBIN/pgqueue-kafka" --listen "127.0.0.1:$KAFKA_PORT" \
		--conninfo "$(conninfo) application_name=pgqueue-kafka"
	echo "$BG_PID" >"$DIR/gateway.pid"
	wait_for 20 gateway_serves ||
		die "the gateway did not answer on 127.0.0.1:$KAFKA_PORT; $DIR/gateway.log:
$(tail -n 20 "$DIR/gateway.log")"
}

cmd_start() {
	[ "$(id -u)" = 0 ] || echo "not root: using the installed pgqueue, servers run as $SERVER_USER"
	[ $INSTALL = 1 ] && install_packages
	if [ $BUILD = 1 ]; then
		build_and_install
	fi
	PGBIN=$($PG_CONFIG --bindir)
	check_programs
	if [ -d "$DIR" ]; then
		say "removing the formation in $DIR"
		cmd_stop >/dev/null
		rm -rf "$DIR"
	fi
	local p
	for p in "$PORT_BASE" $((PORT_BASE + 1)) $((PORT_BASE + 2)) $((PORT_BASE + 3)) "$KAFKA_PORT"; do
		port_free "$p" || die "127.0.0.1:$p is taken (choose others with --port-base / --kafka-port)"
	done
	mkdir -p "$DIR/config" "$DIR/share" "$DIR/run"
	[ "$(id -u)" = 0 ] && chown -R "$SERVER_USER": "$DIR"
	cat >"$DIR/cluster.env" <<ENV
PGBIN='$PGBIN'
PORT_BASE=$PORT_BASE
KAFKA_PORT=$KAFKA_PORT
SERVER_USER=$SERVER_USER
ENV
	local t0=$SECONDS deadline=$((SECONDS + TIMEOUT))
	left() { local l=$((deadline - SECONDS)); [ $l -gt 0 ] && echo $l || echo 1; }
	late() {
		die "the formation did not come up within $TIMEOUT s: $(states)
logs: $DIR/*.log; stop it with: $0 stop --dir $DIR"
	}

	say "a pg_auto_failover monitor on 127.0.0.1:$PORT_BASE ($DIR)"
	init_datadir monitor "${MONITOR_SETTINGS[@]}"
	autoctl monitor.create "$(left)" create monitor --pgdata "$DIR/monitor" --pgport "$PORT_BASE" \
		--pgctl "$PGBIN/pg_ctl" --hostname 127.0.0.1 --listen 127.0.0.1 --auth trust --no-ssl
	autoctl_run monitor
	wait_for "$(left)" psql_on monitor pg_auto_failover -c 'SELECT 1' >/dev/null 2>&1 || late

	say "node1, the first primary, on 127.0.0.1:$(port_of node1), with pgqueue and a topic \"demo\""
	init_datadir node1 "shared_preload_libraries = 'pgqueue'"
	create_node node1
	wait_for "$(left)" is_state node1:single/single || late
	wait_for "$(left)" psql_on node1 postgres -c 'SELECT 1' >/dev/null 2>&1 || late
	psql_on node1 postgres -c 'CREATE EXTENSION pgqueue' \
		-c "SELECT pgq_create_topic('demo', 3)" -c 'CHECKPOINT' >/dev/null

	say "node2 and node3, standbys cloned from node1, on 127.0.0.1:$(port_of node2) and :$(port_of node3)"
	create_node node2
	create_node node3
	wait_for "$(left)" is_state "node1:primary/primary node2:secondary/secondary node3:secondary/secondary" || late

	say "number_sync_standbys = 1: a commit waits for one of the two standbys (min.insync.replicas = 2)"
	autoctl formation "$(left)" set formation number-sync-standbys 1 --monitor "$(monitor_uri)"
	wait_for "$(left)" whole || late
	wait_for "$(left)" sync_standbys_set || late

	say "pgqueue-kafka on 127.0.0.1:$KAFKA_PORT, in front of every node"
	start_gateway
	say "the formation is up ($((SECONDS - t0)) s)"
	show_state
	cat <<MSG

Connect with psql (libpq finds the primary among the three nodes):
    psql '$(conninfo)'
    =# SELECT * FROM pgq_send('demo', 'hello from psql');
Kafka clients connect to the gateway, which follows the primary too:
    echo 'hello from kcat' | kcat -b 127.0.0.1:$KAFKA_PORT -P -t demo -X acks=all
    kcat -b 127.0.0.1:$KAFKA_PORT -C -t demo -o beginning -e
Kill the primary (kill -9 of its pg_autoctl and postmaster) and time the election:
    $0 kill-primary$(dir_opt)
The formation, and which node is primary:
    $0 state$(dir_opt)
Bring the killed node back (it rejoins as a standby):
    $0 revive$(dir_opt)
Stop everything (clean also removes $DIR):
    $0 stop$(dir_opt)
MSG
}

# The option a later command needs to find this formation again (its
# ports are in its cluster.env).
dir_opt() {
	[ "$DIR_GIVEN" = 1 ] && printf ' --dir %s' "$DIR"
	return 0
}

# The primary has taken number_sync_standbys = 1 into account.
sync_standbys_set() {
	local p
	p=$(primary)
	[ -n "$p" ] && psql_on "$p" postgres -c 'SHOW synchronous_standby_names' 2>/dev/null | grep -q '^ANY 1 '
}

show_state() {
	as_server pg_autoctl show state --pgdata "$DIR/monitor" 2>&1 || true
	local p
	p=$(primary)
	echo
	if [ -n "$p" ]; then
		echo "primary: $p (127.0.0.1:$(port_of "$p"))"
	else
		echo "primary: none (an election may be under way)"
	fi
	if alive "$(cat "$DIR/gateway.pid" 2>/dev/null)"; then
		echo "gateway: pgqueue-kafka on 127.0.0.1:$KAFKA_PORT"
	else
		echo "gateway: not running"
	fi
}

need_formation() {
	load_env || die "no formation in $DIR (start one with: $0 start$(dir_opt))"
	run_pid monitor >/dev/null ||
		die "the formation in $DIR is stopped (start a new one with: $0 start$(dir_opt))"
}

cmd_state() {
	need_formation
	show_state
}

# A write through the multi-host conninfo, as any client would send it.
write_through_conninfo() {
	as_server timeout 10 "$PGBIN/psql" -X -q -At -v ON_ERROR_STOP=1 "$(conninfo)" \
		-c "SELECT pgq_send('demo', 'written after kill-primary')" >/dev/null 2>&1
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

since() {	# since T0_MS: seconds since then, one decimal
	local ms=$(($(now_ms) - $1))
	echo "$((ms / 1000)).$((ms % 1000 / 100))"
}

# The gateway answers Metadata for topic demo with its partitions.
gateway_serves() {
	timeout 5 kcat -b "127.0.0.1:$KAFKA_PORT" -L -m 3 -t demo 2>/dev/null |
		grep -q 'topic "demo" with 3 partitions'
}

new_primary() {
	local p
	p=$(primary)
	[ -n "$p" ] && [ "$p" != "$1" ]
}

cmd_kill_primary() {
	need_formation
	local old t0 elected=
	old=$(primary)
	[ -n "$old" ] || die "no primary right now: $(states)"
	local n down=
	for n in $NODES; do
		run_pid "$n" >/dev/null || down="$down $n"
	done
	if [ -n "$down" ]; then
		# Kafka's clean election: the monitor promotes only with every
		# standby of the quorum reporting (docs/durability.md)
		echo "warning:$down down too: the monitor elects no standby that might lack" \
			"acknowledged commits; expect no election (run revive first)"
	fi
	say "kill -9 of $old's pg_autoctl and postmaster (127.0.0.1:$(port_of "$old"))"
	t0=$(now_ms)
	kill_member "$old"
	local deadline=$((SECONDS + TIMEOUT))
	while [ $SECONDS -lt $deadline ]; do
		if [ -z "$elected" ] && new_primary "$old"; then
			elected=$(now_ms)
			echo "the monitor elected $(primary) after $(since "$t0") s"
		fi
		if [ -n "$elected" ] && write_through_conninfo; then
			echo "first write accepted through the multi-host conninfo after $(since "$t0") s"
			# the gateway reconnects on its own schedule (backing off up
			# to 5 s); until then it answers LEADER_NOT_AVAILABLE
			wait_for $((deadline - SECONDS)) gateway_serves ||
				die "the gateway does not serve topic demo; $DIR/gateway.log:
$(tail -n 20 "$DIR/gateway.log")"
			echo "the gateway serves topic demo from the new primary after $(since "$t0") s"
			echo
			show_state
			cat <<MSG

$old is down; the gateway and psql reconnect to the new primary by
themselves. Bring $old back as a standby (pg_rewind) with:
    $0 revive$(dir_opt)
MSG
			return 0
		fi
		sleep 0.2
	done
	[ -z "$down" ] || echo "no election while$down is down: bring it back with $0 revive$(dir_opt)" >&2
	die "no new primary took a write within $TIMEOUT s: $(states)"
}

cmd_revive() {
	need_formation
	local n started=
	for n in $NODES; do
		if ! run_pid "$n" >/dev/null; then
			# a postmaster left without its pg_autoctl: pg_autoctl starts its own
			kill_member "$n"
			autoctl_run "$n"
			started="$started $n"
		fi
	done
	if [ -z "$started" ]; then
		echo "every node's pg_autoctl runs"
	else
		say "started pg_autoctl for$started; waiting for one primary and two secondaries"
		wait_for "$TIMEOUT" whole || die "the formation is not whole after $TIMEOUT s: $(states)"
	fi
	show_state
}

# Stop every member: "pg_autoctl stop" (a fast shutdown) for each at once,
# at most 20 s, then SIGKILL for whatever of the formation is left.
cmd_stop() {
	if ! load_env; then
		echo "nothing to stop in $DIR"
		return 0
	fi
	local gw n pid pids running=
	gw=$(cat "$DIR/gateway.pid" 2>/dev/null) || gw=
	if alive "$gw"; then
		kill -TERM "$gw"
		wait_for 10 eval '! alive '"$gw" || kill -KILL "$gw" 2>/dev/null || true
		echo "stopped the gateway"
	fi
	rm -f "$DIR/gateway.pid"
	for n in $NODES monitor; do
		if pid=$(run_pid "$n"); then
			running="$running $n"
			as_server timeout 10 pg_autoctl stop --pgdata "$DIR/$n" >/dev/null 2>&1 &
		fi
	done
	wait
	for n in $running; do
		pid=$(run_pid "$n") && { wait_for 20 eval '! alive '"$pid" || true; }
		echo "stopped $n"
	done
	for n in $NODES monitor; do
		kill_member "$n"
	done
	pids=$(formation_pids)
	if [ -n "$pids" ]; then
		# shellcheck disable=SC2086
		kill -KILL $pids 2>/dev/null || true
		sleep 0.5
	fi
	echo "the formation in $DIR is stopped"
}

cmd_clean() {
	cmd_stop
	rm -rf "$DIR"
	echo "removed $DIR"
}

case $COMMAND in
start) cmd_start ;;
state) cmd_state ;;
kill-primary) cmd_kill_primary ;;
revive) cmd_revive ;;
stop) cmd_stop ;;
clean) cmd_clean ;;
esac
