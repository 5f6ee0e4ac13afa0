# scripts/lib.sh: shared by demo.sh and test.sh.  Sourced, not run.
#
# Installs what is missing (Debian packages), builds and installs pgqueue,
# and starts throw-away PostgreSQL servers owned by the postgres OS user,
# with data under tmp/ in the project and a Unix socket only.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PG_CONFIG=${PG_CONFIG:-pg_config}
# the extension and its tests
PACKAGES="postgresql-15 postgresql-server-dev-15 postgresql-15-pgtap libipc-run-perl
          libtap-parser-sourcehandler-pgtap-perl make gcc libpq-dev rsync
          python3-psycopg nodejs prometheus-postgres-exporter pgbouncer"
# the gateway (libevent, the codecs, OpenSSL for SASL and TLS) and the Kafka
# clients its tests run: kcat, librdkafka (and its mock cluster),
# python3-confluent-kafka, python3-kafka; kafkajs comes from npm
PACKAGES="$PACKAGES libevent-dev zlib1g-dev libsnappy-dev liblz4-dev libzstd-dev
          libssl-dev openssl kcat librdkafka-dev python3-confluent-kafka python3-kafka"
# automatic failover (070_auto_failover.pl): pg_auto_failover's pg_autoctl
# and its monitor extension, for the system PostgreSQL 15 the tests run on
PACKAGES="$PACKAGES postgresql-15-auto-failover"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

need_root() {
	if [ "$(id -u)" != 0 ]; then
		echo "run this as root (it installs packages and runs servers as the postgres user)" >&2
		exit 1
	fi
}

install_packages() {
	local missing=()
	for p in $PACKAGES; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		say "installing ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		without_service_starts apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
		case " ${missing[*]} " in
		*" prometheus-postgres-exporter "*) service_disable prometheus-postgres-exporter ;;
		esac
		case " ${missing[*]} " in
		*" pgbouncer "*) service_disable pgbouncer ;;
		esac
	fi
	install_node_modules
}

# Runs a command (a package install) with the packages' services kept from
# starting, as Debian's policy-rc.d allows (deb-systemd-invoke and
# invoke-rc.d both obey it), unless the machine has a policy of its own.
without_service_starts() {
	local policy=/usr/sbin/policy-rc.d rc=0
	if [ -e "$policy" ]; then
		"$@"
		return
	fi
	printf '#!/bin/sh\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	"$@" || rc=$?
	rm -f "$policy"
	return $rc
}

# service_disable NAME: stop a packaged service and keep it from starting
# at boot, with or without systemd.  prometheus-postgres-exporter's package
# enables one that listens on every address (:9187), pgbouncer's one on
# localhost:6432; the tests run their own (test/t/036_exporter.pl,
# test/t/044_examples.pl).
service_disable() {
	local name=$1
	if [ -d /run/systemd/system ]; then
		systemctl disable --now "$name.service" >/dev/null 2>&1 || true
	elif [ -x "/etc/init.d/$name" ]; then
		"/etc/init.d/$name" stop >/dev/null 2>&1 || true
		update-rc.d "$name" disable >/dev/null 2>&1 || true
	fi
}

# node_modules: node-postgres for the driver test (test/t/033_drivers.pl)
# and kafkajs for the gateway's (test/t/059_gateway_kafkajs.pl), at the
# versions package-lock.json pins; the TAP tests' copy of the tree takes it
# along.  A node_modules without one of them (made before it was added) is
# brought up to date.  NodeSource's nodejs brings npm, Debian's has it in a
# package of its own.
install_node_modules() {
	[ -d "$ROOT/node_modules/pg" ] && [ -d "$ROOT/node_modules/kafkajs" ] && return
	if ! command -v npm >/dev/null; then
		say "installing npm"
		apt-get install -y -qq --no-install-recommends npm >/dev/null
	fi
	say "installing node modules (npm ci)"
	(cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error)
}

build_and_install() {
	say "building and installing pgqueue"
	# with_llvm=no: no JIT bitcode, so clang is not needed
	make -C "$ROOT" -s with_llvm=no PG_CONFIG="$PG_CONFIG"
	make -C "$ROOT" -s with_llvm=no PG_CONFIG="$PG_CONFIG" install >/dev/null
	set_paths
}

# Sets PGBIN and RUN_DIR; called once the packages are there.  Servers live
# in tmp/ of the project when the postgres user can reach it, else (a
# checkout under a private home directory) in /tmp.
set_paths() {
	PGBIN=$($PG_CONFIG --bindir)
	if runuser -u postgres -- test -x "$ROOT" 2>/dev/null; then
		RUN_DIR="$ROOT/tmp"
	else
		RUN_DIR="/tmp/pgqueue-$(echo "$ROOT" | md5sum | cut -c1-8)"
	fi
}

# start_server NAME PORT [extra postgresql.conf lines...]: a fresh cluster in tmp/NAME
start_server() {
	local name=$1 port=$2
	shift 2
	local dir="$RUN_DIR/$name"
	stop_server "$name"
	rm -rf "$dir"
	mkdir -p "$dir"
	chown postgres: "$RUN_DIR" "$dir"
	runuser -u postgres -- "$PGBIN/initdb" -D "$dir/data" -A trust -U postgres >/dev/null
	cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$dir'
port = $port
shared_preload_libraries = 'pgqueue'
max_prepared_transactions = 10
CONF
	for line in "$@"; do echo "$line" >>"$dir/data/postgresql.conf"; done
	runuser -u postgres -- "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null
}

stop_server() {
	local dir="$RUN_DIR/$1"
	if [ -f "$dir/data/postmaster.pid" ]; then
		runuser -u postgres -- "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
	fi
}

# The last commit of release 0.1.0, whose library and SQL the upgrade test
# (test/t/023_upgrade.pl) installs before updating to the current version.
OLD_RELEASE=0.1.0
OLD_RELEASE_COMMIT=5142dd4

# build_old_release DIR: a copy of this machine's PostgreSQL installation
# under DIR (Debian's layout; PostgreSQL finds its files relative to its
# binaries) with pgqueue $OLD_RELEASE built from git history and installed
# into it.  Prints the installation's path (for PostgreSQL::Test::Cluster's
# install_path).
build_old_release() {
	local dir=$1
	local bindir libdir sharedir incdir
	bindir=$($PG_CONFIG --bindir)
	libdir=$(dirname "$bindir")
	sharedir=$($PG_CONFIG --sharedir)
	incdir=$($PG_CONFIG --includedir)
	rm -rf "$dir"
	mkdir -p "$dir/usr/lib/postgresql" "$dir/usr/share/postgresql" "$dir/usr/include" "$dir/src"
	cp -a "$libdir" "$dir/usr/lib/postgresql/"
	cp -a "$sharedir" "$dir/usr/share/postgresql/"
	cp -a "$incdir" "$dir/usr/include/"
	ln -s /usr/lib/x86_64-linux-gnu "$dir/usr/lib/x86_64-linux-gnu"
	git -C "$ROOT" archive "$OLD_RELEASE_COMMIT" | tar -x -C "$dir/src"
	local old_pg_config
	old_pg_config="$dir/usr/lib/postgresql/$(basename "$libdir")/bin/pg_config"
	make -C "$dir/src" -s with_llvm=no PG_CONFIG="$old_pg_config" >/dev/null
	make -C "$dir/src" -s with_llvm=no PG_CONFIG="$old_pg_config" install >/dev/null
	dirname "$(dirname "$old_pg_config")"
}
