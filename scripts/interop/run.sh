#!/usr/bin/env bash
# Interoperability check with the real Python `grafana-client` (5.x, from PyPI): builds the
# debug `tandem-server`, starts two instances (A and B) sharing a fresh PostgreSQL database,
# and runs scripts/interop/grafana_client_identity.py, then
# scripts/interop/grafana_client_dashboards.py, grafana_client_alerting.py and (with a private
# Prometheus) grafana_client_datasources.py, against both from a throwaway virtualenv
# (all must pass), and scripts/interop/amtool_check.py with Alertmanager's own `amtool`
# (Debian's prometheus-alertmanager) against Alertmanager's v2 API of both; then a
# grafana-backup 1.4.x save and restore between two more two-instance clusters
# (scripts/interop/grafana_backup.py) and grafana-wtf 0.25.x on the first of them
# (scripts/interop/grafana_wtf.py). Then, for
# Grafana Live, a pair of instances per HA engine (Redis at $TANDEM_TEST_REDIS_URL, default
# redis://127.0.0.1:6379, and PostgreSQL's own) runs scripts/interop/live_sdks.py with
# centrifuge-python and the centrifuge npm SDK (scripts/interop/node, installed with
# `npm ci`). Everything it made (servers, database, virtualenv, Live's Redis keys) is
# removed on exit; any failure, including a server that does not exit 0 on SIGTERM, makes it
# exit non-zero. Last, schemathesis (PyPI) runs over the OpenAPI document of a further
# instance (/api/openapi.json): no generated request may be answered 5xx.
# PostgreSQL admin URL: $TANDEM_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/test).
set -euo pipefail
cd "$(dirname "$0")/../.."

PG_URL=${TANDEM_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
BIN=target/debug/tandem-server
HEALTH_WAIT_SECONDS=60

step() { printf 'interop: %s\n' "$*"; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tandem-interop.XXXXXX")
db="tandem_interop_$(date +%s)_$$_$RANDOM"
db_created=0
# Databases of further clusters (the grafana-backup round trip), dropped on exit.
extra_dbs=()
names=()
pids=()

prometheus_pid=""
live_prefix=""
live_redis_url=""

cleanup() {
    local status=$? failed=0 i pid rc
    trap - EXIT INT TERM
    if [ -n "$prometheus_pid" ]; then
        kill "$prometheus_pid" 2>/dev/null || true
        wait "$prometheus_pid" 2>/dev/null || true
    fi
    for i in "${!pids[@]}"; do
        pid=${pids[$i]}
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            rc=0
            wait "$pid" || rc=$?
            if [ "$rc" -eq 0 ]; then
                step "server ${names[$i]} stopped on SIGTERM with status 0"
            else
                step "server ${names[$i]} exited with status $rc on SIGTERM (expected 0)" >&2
                failed=1
            fi
        else
            rc=0
            wait "$pid" 2>/dev/null || rc=$?
            step "server ${names[$i]} had already exited with status $rc before SIGTERM" >&2
            failed=1
        fi
    done
    if [ "$failed" -ne 0 ] || [ "$status" -ne 0 ]; then
        for i in "${!names[@]}"; do
            if [ -s "$tmp/server-${names[$i]}.log" ]; then
                echo "---- last lines of server ${names[$i]}'s log" >&2
                tail -n 40 "$tmp/server-${names[$i]}.log" | sed 's/\x1b\[[0-9;]*m//g' >&2
            fi
        done
    fi
    if [ "$db_created" -eq 1 ]; then
        if psql "$PG_URL" -qX -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null; then
            step "dropped database $db"
        else
            step "could not drop database $db" >&2
            failed=1
        fi
    fi
    for extra in "${extra_dbs[@]}"; do
        if psql "$PG_URL" -qX -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS \"$extra\" WITH (FORCE)" >/dev/null; then
            step "dropped database $extra"
        else
            step "could not drop database $extra" >&2
            failed=1
        fi
    done
    if [ -n "$live_prefix" ]; then
        redis-cli -u "$live_redis_url" --scan --pattern "$live_prefix.*" 2>/dev/null |
            xargs -r redis-cli -u "$live_redis_url" del >/dev/null 2>&1 || true
    fi
    rm -rf "$tmp"
    step "removed $tmp (virtualenv and logs)"
    if [ "$status" -eq 0 ] && [ "$failed" -ne 0 ]; then status=1; fi
    if [ "$status" -eq 0 ]; then step "passed"; else step "FAILED (status $status)" >&2; fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The port a server logged in its "HTTP server listening" line (JSON log format), or nothing
# yet. Servers bind port 0, so no other process can take their port before they do.
logged_port() {
    python3 - "$1" <<'PY'
import json, sys
for line in open(sys.argv[1], errors="replace"):
    try:
        fields = json.loads(line).get("fields", {})
    except ValueError:
        continue
    if fields.get("message") == "HTTP server listening":
        print(fields["address"].rsplit(":", 1)[1])
        break
PY
}

# A private Prometheus that scrapes itself every second, for the data source checks. Its
# port is picked free and the start retried on another if something took it meanwhile.
prometheus_url=""
# The checks query `up`; wait (bounded) until Prometheus answers it from a stored sample.
wait_for_first_scrape() {
    local i
    for i in $(seq 1 60); do
        if curl -s -m 2 "$prometheus_url/api/v1/query?query=up" | grep -q '"value"'; then
            step "Prometheus has its first scrape after ${i} poll(s)"
            return 0
        fi
        sleep 0.5
    done
    step "Prometheus stored no sample of up within 30 s" >&2
    exit 1
}
start_prometheus() {
    local attempt port pid
    command -v prometheus >/dev/null || { step "prometheus is not installed (Debian's prometheus package)" >&2; exit 1; }
    mkdir -p "$tmp/prometheus"
    for attempt in 1 2 3 4 5; do
        port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        printf 'global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: ["127.0.0.1:%s"]\n' "$port" >"$tmp/prometheus/prometheus.yml"
        prometheus --config.file="$tmp/prometheus/prometheus.yml" --storage.tsdb.path="$tmp/prometheus/data" \
            --web.listen-address="127.0.0.1:$port" --log.level=warn >"$tmp/prometheus.log" 2>&1 &
        pid=$!
        for _ in $(seq 1 100); do
            if ! kill -0 "$pid" 2>/dev/null; then break; fi
            if [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$port/-/ready")" = 200 ]; then
                prometheus_pid=$pid
                prometheus_url="http://127.0.0.1:$port"
                step "started Prometheus (pid $pid) at $prometheus_url"
                wait_for_first_scrape
                return 0
            fi
            sleep 0.2
        done
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        step "Prometheus did not start on port $port (attempt $attempt); trying another" >&2
    done
    step "could not start Prometheus" >&2
    exit 1
}

step "building the debug server (cargo build -p tandem-server)"
cargo build -q -p tandem-server

step "creating a virtualenv in $tmp/venv and installing grafana-client>=5,<6"
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q --disable-pip-version-check 'grafana-client>=5,<6'
step "installed $("$tmp/venv/bin/python" -m pip show grafana-client | sed -n 's/^Version: /grafana-client /p')"

step "creating database $db"
psql "$PG_URL" -qX -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$db\"" >/dev/null
db_created=1
db_url="${PG_URL%/*}/$db"

admin_password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')

# Starts server $1 on the database with the extra environment "${@:2}" (VAR=value ...).
start_server() {
    local name=$1
    shift
    env GF_DATABASE_TYPE=postgres GF_DATABASE_URL="$db_url" \
        GF_SERVER_HTTP_ADDR=127.0.0.1 GF_SERVER_HTTP_PORT=0 GF_LOG_FORMAT=json \
        GF_CLUSTER_INSTANCE_ID="$name" GF_SECURITY_ADMIN_PASSWORD="$admin_password" \
        GF_PATHS_DATA="$tmp/data-$name" "$@" \
        "$BIN" >"$tmp/server-$name.log" 2>&1 &
    pids+=($!)
    names+=("$name")
    step "started server $name (pid $!)"
}

# Waits until the servers of indexes "$@" answer 200 on /api/health; their base URLs go
# into urls[] in that order.
wait_healthy() {
    local i log port deadline=$((SECONDS + HEALTH_WAIT_SECONDS))
    urls=()
    for i in "$@"; do
        log="$tmp/server-${names[$i]}.log"
        until port=$(logged_port "$log") && [ -n "$port" ] &&
            [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$port/api/health")" = 200 ]; do
            if ! kill -0 "${pids[$i]}" 2>/dev/null; then
                step "server ${names[$i]} exited before answering /api/health" >&2
                exit 1
            fi
            if [ "$SECONDS" -ge "$deadline" ]; then
                step "server ${names[$i]} did not answer 200 on /api/health within ${HEALTH_WAIT_SECONDS}s" >&2
                exit 1
            fi
            sleep 0.2
        done
        urls+=("http://127.0.0.1:$port")
        step "server ${names[$i]} answers 200 on http://127.0.0.1:$port/api/health"
    done
}

start_server a
start_server b
wait_healthy 0 1

step "running grafana_client_identity.py against A and B"
"$tmp/venv/bin/python" scripts/interop/grafana_client_identity.py "${urls[0]}" "${urls[1]}" "$admin_password"

step "running grafana_client_dashboards.py against A and B"
"$tmp/venv/bin/python" scripts/interop/grafana_client_dashboards.py "${urls[0]}" "${urls[1]}" "$admin_password"

step "running grafana_client_alerting.py against A and B"
"$tmp/venv/bin/python" scripts/interop/grafana_client_alerting.py "${urls[0]}" "${urls[1]}" "$admin_password"

command -v amtool >/dev/null || { step "amtool is not installed (Debian's prometheus-alertmanager package)" >&2; exit 1; }
step "running amtool_check.py ($(amtool --version 2>&1 | head -1)) against A and B"
"$tmp/venv/bin/python" scripts/interop/amtool_check.py "${urls[0]}" "${urls[1]}" "$admin_password"

start_prometheus
step "running grafana_client_datasources.py against A and B, with the Prometheus at $prometheus_url"
"$tmp/venv/bin/python" scripts/interop/grafana_client_datasources.py "${urls[0]}" "${urls[1]}" "$admin_password" "$prometheus_url"

# grafana-backup 1.4.x: seed one two-instance cluster, save through its other instance,
# restore into a second, empty two-instance cluster (its own database), compare.
step "installing grafana-backup 1.4.x into the virtualenv"
"$tmp/venv/bin/python" -m pip install -q --disable-pip-version-check 'grafana-backup>=1.4,<1.5'
step "installed $("$tmp/venv/bin/python" -m pip show grafana-backup | sed -n 's/^Version: /grafana-backup /p')"
main_db_url=$db_url
backup_urls=()
for cluster in src dst; do
    extra="${db}_backup_$cluster"
    psql "$PG_URL" -qX -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$extra\"" >/dev/null
    extra_dbs+=("$extra")
    db_url="${PG_URL%/*}/$extra"
    first=${#names[@]}
    start_server "backup-$cluster-a"
    start_server "backup-$cluster-b"
    wait_healthy "$first" "$((first + 1))"
    backup_urls+=("${urls[@]}")
done
db_url=$main_db_url
mkdir -p "$tmp/grafana-backup"
step "running grafana_backup.py: save from the first cluster, restore into the second, compare"
"$tmp/venv/bin/python" scripts/interop/grafana_backup.py "${backup_urls[@]}" "$admin_password" \
    "$tmp/venv/bin/grafana-backup" "$tmp/grafana-backup"
# grafana-wtf 0.25.x on the seeded first cluster: info, find and log, its cache off.
step "installing grafana-wtf 0.25.x into the virtualenv"
"$tmp/venv/bin/python" -m pip install -q --disable-pip-version-check 'grafana-wtf>=0.25,<0.26'
step "installed $("$tmp/venv/bin/python" -m pip show grafana-wtf | sed -n 's/^Version: /grafana-wtf /p')"
mkdir -p "$tmp/grafana-wtf"
step "running grafana_wtf.py against the first cluster"
"$tmp/venv/bin/python" scripts/interop/grafana_wtf.py "${backup_urls[0]}" "${backup_urls[1]}" "$admin_password" \
    "$tmp/venv/bin/grafana-wtf" "$tmp/grafana-wtf"

# Grafana Live with the real Centrifuge SDKs: a pair of instances per HA engine (Redis, and
# PostgreSQL's own over the same database), each pair under a Redis prefix / notification
# channel of this run's own.
step "installing centrifuge-python into the virtualenv and the centrifuge npm package into scripts/interop/node"
"$tmp/venv/bin/python" -m pip install -q --disable-pip-version-check 'centrifuge-python>=0.7,<0.8'
step "installed $("$tmp/venv/bin/python" -m pip show centrifuge-python | sed -n 's/^Version: /centrifuge-python /p')"
command -v node >/dev/null || { step "node is not installed (Debian's nodejs package)" >&2; exit 1; }
npm ci --prefix scripts/interop/node --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null
step "installed centrifuge $(node -p 'require("./scripts/interop/node/node_modules/centrifuge/package.json").version') on node $(node --version)"
live_redis_url=${TANDEM_TEST_REDIS_URL:-redis://127.0.0.1:6379}
live_prefix="tandem_interop_$(date +%s)_$$"
for engine in redis postgres; do
    first=${#names[@]}
    for side in a b; do
        start_server "live-$engine-$side" GF_LIVE_HA_ENGINE="$engine" \
            GF_LIVE_HA_ENGINE_ADDRESS="$live_redis_url" GF_LIVE_HA_PREFIX="$live_prefix"
    done
    wait_healthy "$first" "$((first + 1))"
    step "running live_sdks.py (centrifuge-python and centrifuge-js) against live-$engine-a and live-$engine-b"
    "$tmp/venv/bin/python" scripts/interop/live_sdks.py "${urls[0]}" "${urls[1]}" "$admin_password" "$engine"
done

# schemathesis 4.x (PyPI) over the OpenAPI document the server publishes: every operation of
# /api/openapi.json with its examples, then generated valid and invalid input (20 cases per
# operation, a fixed seed, so a failure reproduces), as the admin, against a fresh instance
# on the database every check above used: no answer may be a 5xx or a dropped connection.
# A virtualenv of its own: grafana-client's HTTP stack (urllib3-future) replaces the urllib3
# that schemathesis' requests needs.
step "creating a virtualenv in $tmp/st-venv and installing schemathesis 4.x"
python3 -m venv "$tmp/st-venv"
"$tmp/st-venv/bin/python" -m pip install -q --disable-pip-version-check 'schemathesis>=4,<5'
step "installed $("$tmp/st-venv/bin/python" -m pip show schemathesis | sed -n 's/^Version: /schemathesis /p')"
first=${#names[@]}
start_server openapi
wait_healthy "$first"
step "running schemathesis over ${urls[0]}/api/openapi.json"
"$tmp/st-venv/bin/st" run "${urls[0]}/api/openapi.json" --checks not_a_server_error \
    --auth "admin:$admin_password" --max-examples 20 --seed 1 --workers 2 \
    --request-timeout 30 --warnings off --report junit --report-dir "$tmp/schemathesis" \
    >"$tmp/schemathesis.log" 2>&1 || {
    tail -n 60 "$tmp/schemathesis.log" >&2
    step "schemathesis found answers that are 5xx or no answer at all" >&2
    exit 1
}
grep -E 'generated|No issues found' "$tmp/schemathesis.log" | sed 's/^/interop: schemathesis: /'
