#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster on a free loopback port and prints the `export
# TEST_DATABASE_URL=…` line for it; `scripts/pg-throwaway.sh stop DIR` stops and removes it.
# Installs Debian's postgresql when initdb is missing. Used by .ci/run; handy locally too:
#   eval "$(scripts/pg-throwaway.sh)"; cargo test --workspace
# PG_THROWAWAY_OPTS, when set, is appended to the server options (e.g.
# "-c shared_preload_libraries=pg_stat_statements", as bench/roundtrips.py does).
set -euo pipefail

if [ "${1:-}" = "stop" ]; then
  dir=$2
  bin=$(cat "$dir/bin")
  runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
  exit 0
fi

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "installing Debian's postgresql" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql >&2
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi

dir=$(mktemp -d /tmp/tessera-pg.XXXXXX)
echo "$bin" > "$dir/bin"
chmod 755 "$dir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
if [ "$(id -u)" = 0 ]; then
  chown postgres "$dir"
  run() { runuser -u postgres -- "$@"; }
else
  run() { "$@"; }
fi
run "$bin/initdb" -D "$dir/data" -A trust -U tessera --no-sync -E UTF8 >"$dir/initdb.log" 2>&1
run "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c max_connections=300${PG_THROWAWAY_OPTS:+ $PG_THROWAWAY_OPTS}" start >&2
echo "export TEST_DATABASE_URL=postgres://tessera@127.0.0.1:$port/postgres"
echo "export PG_THROWAWAY_DIR=$dir"
