#!/usr/bin/env bash
# Live numbers for docs/BENCHMARKS.md (examples/bench_live.rs): RSS per idle connection from
# 10 000 connections on one instance, cross-instance latency through Redis next to a raw
# Redis PUBLISH -> SUBSCRIBE round trip (and through PostgreSQL next to NOTIFY -> LISTEN),
# fan-out of one publication to 10 000 subscribers over 3 instances, and publications per
# second on one instance. Every server is a release tandem-server process on this machine.
# Usage: scripts/bench-live.sh [redis-url] [postgres-admin-url] [memory|latency|fanout|throughput ...]
set -euo pipefail
cd "$(dirname "$0")/.."
export TANDEM_TEST_REDIS_URL=${1:-${TANDEM_TEST_REDIS_URL:-redis://127.0.0.1:6379}}
export TANDEM_TEST_POSTGRES_URL=${2:-${TANDEM_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}}
# 10 000 connections: a descriptor each in the servers and in the load generator (the
# servers inherit this limit). Raised to the hard limit, which must allow them.
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 12000 ]; then
    echo "ulimit -n is $(ulimit -n): 10 000 connections need at least 12 000 descriptors" >&2
    exit 1
fi
cargo build -q --release -p tandem-server
cargo build -q --release --example bench_live

echo "== machine"
echo "date: $(date -u)"
echo "commit: $(git rev-parse --short HEAD)"
echo "nproc: $(nproc); $(lscpu | grep 'Model name' | sed 's/  */ /g')"
echo "redis: $(redis-cli -u "$TANDEM_TEST_REDIS_URL" INFO server | sed -n 's/^redis_version:/redis /p' | tr -d '\r')"
echo "PostgreSQL: $(psql "$TANDEM_TEST_POSTGRES_URL" -Atc 'SHOW server_version')"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
exec target/release/examples/bench_live "${@:3}"
