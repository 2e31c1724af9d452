#!/bin/sh
# Runs a command against a PostgreSQL of its own: initdb into a new folder under /tmp,
# a server that listens only on a Unix socket in that folder (no TCP port, no system-wide
# service involved), one database "sealmail", SEALMAIL_PG_CONNINFO exported for the
# command, and everything stopped and removed when the command ends, whatever its result.
#   tests/tools/pg_harness.sh COMMAND [ARGS...]   -> the command's exit status
# The binaries come from Debian's postgresql package (SEALMAIL_PG_BINDIR to override).
# PostgreSQL refuses to run as root: under root the server runs as the postgres user.
set -eu

bindir=${SEALMAIL_PG_BINDIR:-/usr/lib/postgresql/15/bin}
if [ ! -x "$bindir/initdb" ]; then
	echo "pg_harness: no $bindir/initdb (apt-get install postgresql)" >&2
	exit 77
fi
dir=$(mktemp -d /tmp/sealmail-pg-XXXXXX)
as=""
if [ "$(id -u)" = 0 ]; then
	chown postgres: "$dir"
	as="runuser -u postgres --"
fi

stop() {
	$as "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
	rm -rf "$dir"
}
trap stop EXIT
trap 'exit 130' INT TERM

$as "$bindir/initdb" -D "$dir/data" -U sealmail -A trust -E UTF8 --locale=C.UTF-8 \
	--no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
# listen_addresses '' : the Unix socket in $dir only.
$as "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -s \
	-o "-k $dir -c listen_addresses='' -c max_connections=200" start ||
	{ cat "$dir/server.log" >&2; exit 1; }
$as "$bindir/createdb" -h "$dir" -U sealmail sealmail

SEALMAIL_PG_CONNINFO="host=$dir user=sealmail dbname=sealmail"
export SEALMAIL_PG_CONNINFO
set +e
"$@"
rc=$?
set -e
exit $rc
