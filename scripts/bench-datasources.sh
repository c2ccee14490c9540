#!/usr/bin/env bash
# Throughput of one Prometheus range query (1 h at 15 s, 10 series) sent through Tandem's
# `POST /api/ds/query` (one release instance on SQLite, session cookie) next to the same
# query sent straight to Prometheus' `/api/v1/query_range`, in one run; prints both and the
# ratio. Then the latency of a testdata query (predictable_pulse over 1 h) through HTTP.
# Needs wrk, prometheus and promtool (Debian packages wrk and prometheus).
# Usage: scripts/bench-datasources.sh [seconds] [connections]
# With PERF_OUT=<file>, the tandem process is sampled by perf during its Prometheus run.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-15}
CONNECTIONS=${2:-8}
BIN=target/release/tandem-server
cargo build --release -p tandem-server >/dev/null 2>&1
work=$(mktemp -d "${TMPDIR:-/tmp}/tandem-bench-ds.XXXXXX")
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Ten series, one sample every 15 s for an hour, starting at T0.
T0=1700000040
python3 - "$T0" >"$work/data.om" <<'PY'
import sys
t0 = int(sys.argv[1])
print("# TYPE tandem_value gauge")
for k in range(241):
    for s in range(10):
        print(f'tandem_value{{series="s{s}"}} {k * (s + 1)} {t0 + 15 * k}')
print("# EOF")
PY
promtool tsdb create-blocks-from openmetrics "$work/data.om" "$work/tsdb" >/dev/null
printf 'global:\n  evaluation_interval: 1h\n' >"$work/prometheus.yml"
prom_port=$(free_port)
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/tsdb" \
    --storage.tsdb.retention.time=100y --web.listen-address="127.0.0.1:$prom_port" --log.level=warn \
    >"$work/prometheus.log" 2>&1 &
prom_pid=$!
pids+=($prom_pid)
until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$prom_port/-/ready")" = 200 ]; do sleep 0.1; done
prom="http://127.0.0.1:$prom_port"

GF_SERVER_HTTP_ADDR=127.0.0.1 GF_SERVER_HTTP_PORT=0 GF_LOG_FORMAT=json GF_LOG_LEVEL=info \
    GF_PATHS_DATA="$work/data" "$BIN" >"$work/tandem.log" 2>&1 &
tandem_pid=$!
pids+=($tandem_pid)
port=""
until [ -n "$port" ]; do
    sleep 0.05
    port=$(python3 -c '
import json, sys
for line in open(sys.argv[1], errors="replace"):
    try:
        fields = json.loads(line).get("fields", {})
    except ValueError:
        continue
    if fields.get("message") == "HTTP server listening":
        print(fields["address"].rsplit(":", 1)[1]); break' "$work/tandem.log")
done
tandem="http://127.0.0.1:$port"
until [ "$(curl -s -o /dev/null -w '%{http_code}' "$tandem/api/health")" = 200 ]; do sleep 0.05; done
token=$(curl -s -D - -o /dev/null -H 'content-type: application/json' \
    -d '{"user":"admin","password":"admin"}' "$tandem/login" \
    | sed -n 's/^[Ss]et-[Cc]ookie: grafana_session=\([0-9a-f]*\);.*/\1/p')
curl -sf -H "cookie: grafana_session=$token" -H 'content-type: application/json' "$tandem/api/datasources" \
    -d "{\"name\":\"Prom\",\"uid\":\"prom\",\"type\":\"prometheus\",\"url\":\"$prom\"}" >/dev/null
curl -sf -H "cookie: grafana_session=$token" -H 'content-type: application/json' "$tandem/api/datasources" \
    -d '{"name":"TestData","uid":"td","type":"grafana-testdata-datasource"}' >/dev/null

start=$T0; end=$((T0 + 3600))
ds_body="{\"from\":\"${start}000\",\"to\":\"${end}000\",\"queries\":[{\"refId\":\"A\",\"datasource\":{\"type\":\"prometheus\",\"uid\":\"prom\"},\"expr\":\"tandem_value\",\"range\":true,\"intervalMs\":15000,\"maxDataPoints\":1000}]}"
prom_body="query=tandem_value&start=$start&end=$end&step=15"
td_body="{\"from\":\"now-1h\",\"to\":\"now\",\"queries\":[{\"refId\":\"A\",\"datasource\":{\"uid\":\"td\"},\"scenarioId\":\"predictable_pulse\",\"pulseWave\":{\"timeStep\":60,\"onCount\":3,\"offCount\":2,\"onValue\":10,\"offValue\":1},\"intervalMs\":15000,\"maxDataPoints\":1000}]}"

# Both answers hold the same points.
tandem_points=$(curl -sf -H "cookie: grafana_session=$token" -H 'content-type: application/json' "$tandem/api/ds/query" -d "$ds_body" \
    | python3 -c 'import json,sys; r=json.load(sys.stdin)["results"]["A"]; print(sum(len(f["data"]["values"][1]) for f in r["frames"]))')
prom_points=$(curl -sf "$prom/api/v1/query_range" -d "$prom_body" \
    | python3 -c 'import json,sys; print(sum(len(s["values"]) for s in json.load(sys.stdin)["data"]["result"]))')
echo "points per answer: tandem $tandem_points, prometheus $prom_points"
[ "$tandem_points" = "$prom_points" ] || { echo "the answers differ" >&2; exit 1; }

post_lua() { # $1 body, $2 content type, $3 extra header line
    cat <<LUA
wrk.method = "POST"
wrk.body = [[$1]]
wrk.headers["Content-Type"] = "$2"
$3
LUA
}
post_lua "$prom_body" "application/x-www-form-urlencoded" "" >"$work/prom.lua"
post_lua "$ds_body" "application/json" "wrk.headers[\"Cookie\"] = \"grafana_session=$token\"" >"$work/ds.lua"
post_lua "$td_body" "application/json" "wrk.headers[\"Cookie\"] = \"grafana_session=$token\"" >"$work/td.lua"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # user + system, in clock ticks
run() { # $1 label, $2 script, $3 url
    local t0 p0 rps p50 p99 non2xx requests tandem_us prom_us
    t0=$(cpu_ticks "$tandem_pid"); p0=$(cpu_ticks "$prom_pid")
    wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_EACH}s" --latency -s "$2" "$3" >"$work/out"
    rps=$(awk '/Requests\/sec/ {print $2}' "$work/out")
    requests=$(awk '/requests in/ {print $1}' "$work/out")
    p50=$(awk '/ 50%/ {print $2}' "$work/out"); p99=$(awk '/ 99%/ {print $2}' "$work/out")
    non2xx=$(awk '/Non-2xx/ {print $5}' "$work/out")
    # CPU time per request of each process, which the sharing of two cores does not skew.
    tandem_us=$(( ($(cpu_ticks "$tandem_pid") - t0) * 1000000 / $(getconf CLK_TCK) / requests ))
    prom_us=$(( ($(cpu_ticks "$prom_pid") - p0) * 1000000 / $(getconf CLK_TCK) / requests ))
    echo "$1: $rps req/s, p50 $p50, p99 $p99, non-2xx ${non2xx:-0}; CPU per request: tandem ${tandem_us} µs, prometheus ${prom_us} µs" >&2
    echo "$rps"
}
echo "== ${SECONDS_EACH}s each, wrk -t1 -c$CONNECTIONS, $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"
direct=$(run "prometheus /api/v1/query_range" "$work/prom.lua" "$prom/api/v1/query_range")
# With PERF_OUT=<file>, `perf record -g` samples the tandem process for 8 s of its run.
if [ -n "${PERF_OUT:-}" ]; then
    (sleep 2; perf record -g -F 999 -p "$tandem_pid" -o "$PERF_OUT" -- sleep 8 >/dev/null 2>&1) &
fi
through=$(run "tandem /api/ds/query (prometheus)" "$work/ds.lua" "$tandem/api/ds/query")
echo "ratio tandem / prometheus: $(python3 -c "print(round($through / $direct, 2))")"
run "tandem /api/ds/query (testdata predictable_pulse, 1 h)" "$work/td.lua" "$tandem/api/ds/query" >/dev/null
