#!/usr/bin/env bash
# Measures the foundation numbers recorded in docs/BENCHMARKS.md, with the release build:
#   1. time from process start to a healthy /api/health on a fresh SQLite file (10 runs);
#   2. idle resident memory of one instance, 5 s after it became healthy;
#   3. 5 instances cold-starting together on a fresh PostgreSQL database: time until all
#      five answer /api/health with 200.
# Usage: scripts/bench-foundation.sh [postgres-admin-url]
set -euo pipefail
cd "$(dirname "$0")/.."
PG_URL=${1:-postgres://postgres@127.0.0.1:5432/test}
BIN=target/release/tandem-server
cargo build --release -p tandem-server >/dev/null 2>&1
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

now_ms() { date +%s%3N; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_healthy() { # port
    until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/api/health")" = 200 ]; do sleep 0.005; done
}

echo "== start to healthy on SQLite (fresh file each run)"
times=()
for run in $(seq 1 10); do
    port=$(free_port)
    start=$(now_ms)
    GF_SERVER_HTTP_ADDR=127.0.0.1 GF_SERVER_HTTP_PORT=$port GF_PATHS_DATA="$WORK/sqlite-$run" "$BIN" >/dev/null 2>&1 &
    pid=$!
    wait_healthy "$port"
    times+=($(( $(now_ms) - start )))
    if [ "$run" = 10 ]; then
        sleep 5
        echo "== idle resident memory after 5 s: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"
    fi
    kill -TERM "$pid"; wait "$pid" || true
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
echo "runs (ms): ${times[*]}"
echo "median (ms): $(echo "$sorted" | sed -n 5p) .. $(echo "$sorted" | sed -n 6p); max: $(echo "$sorted" | tail -1)"

echo "== 5 instances cold-starting together on an empty PostgreSQL database"
db="tandem_bench_$$"
psql "$PG_URL" -qc "CREATE DATABASE $db"
url="${PG_URL%/*}/$db"
ports=()
for i in 1 2 3 4 5; do ports+=("$(free_port)"); done
start=$(now_ms)
for i in 1 2 3 4 5; do
    port=${ports[$((i - 1))]}
    GF_SERVER_HTTP_ADDR=127.0.0.1 GF_SERVER_HTTP_PORT=$port GF_DATABASE_TYPE=postgres GF_DATABASE_URL="$url" \
        GF_CLUSTER_INSTANCE_ID="bench-$i" "$BIN" >/dev/null 2>&1 &
done
for port in "${ports[@]}"; do wait_healthy "$port"; done
echo "all 5 healthy after (ms): $(( $(now_ms) - start ))"
echo "peers seen by instance 1: $(curl -s "http://127.0.0.1:${ports[0]}/api/cluster" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["peers"]))')"
kill -TERM $(jobs -p); wait || true
psql "$PG_URL" -qc "DROP DATABASE $db WITH (FORCE)"
