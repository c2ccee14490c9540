#!/usr/bin/env bash
# Throughput of authenticated `GET /api/user` (session cookie) through three release
# `tandem-server` instances sharing one PostgreSQL database, next to `pgbench -S` on the
# same PostgreSQL server in the same run; prints both and their ratio.
# Needs wrk and pgbench (Debian packages wrk and postgresql-client).
# Usage: scripts/bench-sessions.sh [postgres-admin-url] [seconds]
# With PERF_OUT=<file>, `perf record -a -g` samples the whole machine for 8 s of the tandem run.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_URL=${1:-postgres://postgres@127.0.0.1:5432/test}
SECONDS_EACH=${2:-20}
BIN=target/release/tandem-server
cargo build --release -p tandem-server >/dev/null 2>&1
db="tandem_bench_sessions_$$"
pgdb="tandem_bench_pgbench_$$"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
    psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $pgdb WITH (FORCE)" || true
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

psql "$PG_URL" -qc "CREATE DATABASE $db"
url="${PG_URL%/*}/$db"
ports=()
for i in 1 2 3; do
    port=$(free_port); ports+=("$port")
    GF_SERVER_HTTP_ADDR=127.0.0.1 GF_SERVER_HTTP_PORT=$port GF_DATABASE_TYPE=postgres GF_DATABASE_URL="$url" \
        GF_LOG_LEVEL=warn GF_DATABASE_MAX_OPEN_CONN=${MAX_OPEN_CONN:-0} GF_CLUSTER_INSTANCE_ID="bench-$i" "$BIN" >/dev/null 2>&1 &
    pids+=($!)
done
for port in "${ports[@]}"; do
    until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/api/health")" = 200 ]; do sleep 0.05; done
done
token=$(curl -s -D - -o /dev/null -H 'content-type: application/json' \
    -d '{"user":"admin","password":"admin"}' "http://127.0.0.1:${ports[0]}/login" \
    | sed -n 's/^[Ss]et-[Cc]ookie: grafana_session=\([0-9a-f]*\);.*/\1/p')
[ -n "$token" ] || { echo "login failed" >&2; exit 1; }
curl -sf -H "cookie: grafana_session=$token" "http://127.0.0.1:${ports[2]}/api/user" >/dev/null

echo "== tandem: GET /api/user with a session cookie, 3 instances, ${SECONDS_EACH}s, wrk -t1 -c16 per instance"
outputs=()
loaders=()
for port in "${ports[@]}"; do
    out=$(mktemp); outputs+=("$out")
    wrk -t1 -c16 -d"${SECONDS_EACH}s" --latency -H "Cookie: grafana_session=$token" "http://127.0.0.1:$port/api/user" >"$out" &
    loaders+=($!)
done
[ -n "${PERF_OUT:-}" ] && perf record -a -g -F 499 -o "$PERF_OUT" -- sleep 8 >/dev/null 2>&1
wait "${loaders[@]}"
total=0
for out in "${outputs[@]}"; do
    rps=$(awk '/Requests\/sec/ {print $2}' "$out")
    non2xx=$(awk '/Non-2xx/ {print $5}' "$out")
    echo "instance: ${rps} req/s, p50 $(awk '/ 50%/ {print $2}' "$out"), p99 $(awk '/ 99%/ {print $2}' "$out"), non-2xx: ${non2xx:-0}"
    total=$(python3 -c "print($total + $rps)")
done
echo "tandem total: $total req/s"
for pid in "${pids[@]}"; do kill -TERM "$pid"; done
wait "${pids[@]}" 2>/dev/null || true
pids=()

echo "== pgbench -S on the same server, ${SECONDS_EACH}s, 48 clients, 2 threads"
psql "$PG_URL" -qc "CREATE DATABASE $pgdb"
pgbench -q -i -s 10 "${PG_URL%/*}/$pgdb" >/dev/null 2>&1
tps=$(pgbench -S -c 48 -j 2 -T "$SECONDS_EACH" "${PG_URL%/*}/$pgdb" 2>/dev/null | awk '/^tps/ {print $3; exit}')
echo "pgbench -S: $tps tps"
echo "ratio tandem/pgbench: $(python3 -c "print(round($total / $tps, 3))")"
