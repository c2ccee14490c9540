#!/usr/bin/env bash
# Dashboard search latency and save throughput on SQLite, PostgreSQL and MariaDB through one
# in-process Tandem instance each (examples/bench_dashboards.rs), then `pgbench -N` on the
# same PostgreSQL server for context; prints the machine, each run's tables and a summary.
# Needs psql, pgbench (Debian package postgresql-client) and the two servers.
# Usage: scripts/bench-dashboards.sh [postgres-admin-url] [mysql-admin-url] [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
PG_URL=${1:-postgres://postgres@127.0.0.1:5432/test}
MYSQL_URL=${2:-mysql://root@127.0.0.1:3306/test}
SECONDS_EACH=${3:-10}
BIN=target/release/examples/bench_dashboards
cargo build --release --example bench_dashboards >/dev/null 2>&1
pgdb="tandem_bench_pgbench_$$"
out=$(mktemp -d)
cleanup() {
    psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $pgdb WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$out"
}
trap cleanup EXIT

echo "== machine"
echo "date: $(date -u)"
echo "commit: $(git rev-parse --short HEAD)"
echo "nproc: $(nproc); $(lscpu | grep 'Model name' | sed 's/  */ /g')"
echo "RAM: $(free -h | awk '/^Mem:/ {print $2}')"
echo "PostgreSQL: $(psql "$PG_URL" -Atc 'SHOW server_version'); autovacuum $(psql "$PG_URL" -Atc 'SHOW autovacuum')"
mysql_host=${MYSQL_URL#mysql://}; mysql_host=${mysql_host%%/*}
mysql_user=${mysql_host%@*}; mysql_addr=${mysql_host#*@}
echo "MariaDB: $(mysql -h "${mysql_addr%:*}" -P "${mysql_addr#*:}" -u "$mysql_user" -N -e 'SELECT VERSION()')"

for target in sqlite "$PG_URL" "$MYSQL_URL"; do
    name=${target%%:*}
    echo
    echo "== $name ($(uptime | sed 's/.*load average/load average/'))"
    "$BIN" "$target" "$SECONDS_EACH" 2>"$out/$name.err" | tee "$out/$name.out" \
        || { cat "$out/$name.err" >&2; exit 1; }
    echo "(after: $(uptime | sed 's/.*load average/load average/'))"
done

echo
echo "== pgbench -N -c 16 -j 2 -T $SECONDS_EACH on a scale-10 database ($(uptime | sed 's/.*load average/load average/'))"
psql "$PG_URL" -qc "CREATE DATABASE $pgdb"
pgbench -q -i -s 10 "${PG_URL%/*}/$pgdb" >/dev/null 2>&1
tps=$(pgbench -N -c 16 -j 2 -T "$SECONDS_EACH" "${PG_URL%/*}/$pgdb" 2>/dev/null | awk '/^tps/ {print $3; exit}')
echo "pgbench -N: $tps tps"

echo
echo "== summary"
for name in sqlite postgres mysql; do
    slow=$(grep -F '**no**' "$out/$name.out" | cut -d'|' -f2 | sed 's/^ *`//; s/` *$//' | paste -sd';' - || true)
    echo "$name search kinds over p99 20 ms: ${slow:-none}"
    grep -E '^\| (POST|Dashboards|raw)' "$out/$name.out" | awk -F'|' -v n="$name" '{printf "%s %-26s %8s saves/s  ratio to raw %s\n", n, $2, $3, $7}'
done
pg_http=$(grep -E '^\| POST' "$out/postgres.out" | awk -F'|' '{print $3}' | tr -d ' ')
echo "postgres pgbench -N: $tps tps; HTTP saves / pgbench -N: $(python3 -c "print(round($pg_http / $tps, 3))")"
