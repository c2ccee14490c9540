#!/usr/bin/env bash
# Alerting numbers for docs/BENCHMARKS.md:
#  1. rule evaluations per CPU-second, testdata predictable_pulse -> reduce -> threshold, through
#     the real query path, state machine and change detection (the bench_evaluations example);
#  2. RULES rules (default 10 000) at a 10 s interval in sharded mode over 3 release
#     tandem-server processes on one fresh PostgreSQL database: CPU per instance, row writes
#     per second in steady state against evaluations per second, and how long after a SIGKILL
#     the survivors are back at the full evaluation rate.
# Usage: scripts/bench-alerting.sh [postgres-admin-url] [rules] [steady-seconds]
# With BENCH_SHARDED_ONLY=1 only part 2 runs (the example's release build is skipped).
set -euo pipefail
cd "$(dirname "$0")/.."
PG_URL=${1:-postgres://postgres@127.0.0.1:5432/test}
RULES=${2:-10000}
STEADY=${3:-60}
cargo build -q --release -p tandem-server
if [ "${BENCH_SHARDED_ONLY:-0}" != 1 ]; then
    cargo build -q --release -p tandem-alerting --example bench_evaluations
fi

echo "== machine"
echo "date: $(date -u)"
echo "commit: $(git rev-parse --short HEAD)"
echo "nproc: $(nproc); $(lscpu | grep 'Model name' | sed 's/  */ /g')"
echo "PostgreSQL: $(psql "$PG_URL" -Atc 'SHOW server_version')"
echo
if [ "${BENCH_SHARDED_ONLY:-0}" != 1 ]; then
    echo "== evaluations per CPU-second (one process, SQLite for the data source lookups)"
    target/release/examples/bench_evaluations 1000 20
    echo
fi
echo "== $RULES rules at 10 s, sharded over 3 instances on PostgreSQL"
exec python3 - "$PG_URL" "$RULES" "$STEADY" <<'PY'
import json, os, signal, subprocess, sys, tempfile, time, urllib.request, base64

pg_url, rules, steady = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
db = f"tandem_bench_alerting_{os.getpid()}"
db_url = pg_url.rsplit("/", 1)[0] + "/" + db
tmp = tempfile.mkdtemp()
procs = []
auth = "Basic " + base64.b64encode(b"admin:admin").decode()

def psql(sql, url=pg_url):
    return subprocess.run(["psql", url, "-qAtX", "-c", sql], check=True, capture_output=True, text=True).stdout.strip()

def request(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Authorization": auth, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return resp.status, resp.read()

def port_of(log):
    for line in open(log, errors="replace"):
        try:
            fields = json.loads(line).get("fields", {})
        except ValueError:
            continue
        if fields.get("message") == "HTTP server listening":
            return int(fields["address"].rsplit(":", 1)[1])
    return None

def cpu(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

def evaluations(url):
    _, body = request("GET", url + "/metrics")
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith("grafana_alerting_rule_evaluations_total"):
            total += float(line.rsplit(" ", 1)[1])
    return total

def row_writes():
    """Rows inserted, updated or deleted so far, by table."""
    out = psql("SELECT relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables", db_url)
    return {name: int(n) for name, n in (line.split("|") for line in out.splitlines() if line)}

try:
    psql(f'CREATE DATABASE "{db}"')
    for name in ("b0", "b1", "b2"):
        log = f"{tmp}/{name}.log"
        env = dict(os.environ, GF_DATABASE_TYPE="postgres", GF_DATABASE_URL=db_url, GF_SERVER_HTTP_ADDR="127.0.0.1",
                   GF_SERVER_HTTP_PORT="0", GF_LOG_FORMAT="json", GF_CLUSTER_INSTANCE_ID=name,
                   GF_CLUSTER_ALERTING_EVALUATION="sharded", GF_PATHS_DATA=f"{tmp}/{name}")
        procs.append((name, subprocess.Popen(["target/release/tandem-server"], env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT), log))
    urls = []
    for name, proc, log in procs:
        deadline = time.time() + 60
        while (port := port_of(log)) is None:
            assert time.time() < deadline, f"{name} did not start"
            time.sleep(0.1)
        urls.append(f"http://127.0.0.1:{port}")
    time.sleep(1)
    request("POST", urls[0] + "/api/folders", {"uid": "bench", "title": "Bench"})
    group_size = 1000
    for g in range(0, rules, group_size):
        items = [{"grafana_alert": {"title": f"Rule {i}", "condition": "A", "data": [
            {"refId": "A", "relativeTimeRange": {"from": 0, "to": 0}, "datasourceUid": "__expr__",
             "model": {"type": "math", "expression": "1 > 0"}}]}, "for": "0s"} for i in range(g, min(g + group_size, rules))]
        request("POST", urls[0] + "/api/ruler/grafana/api/v1/rules/bench", {"name": f"g{g // group_size}", "interval": "10s", "rules": items})
    print(f"created {rules} rules in {(rules + group_size - 1) // group_size} groups; warming up 30 s (every rule fires once, then stays Alerting)")
    time.sleep(30)
    cpu0 = [cpu(p.pid) for _, p, _ in procs]
    ev0 = [evaluations(u) for u in urls]
    w0, t0 = row_writes(), time.time()
    time.sleep(steady)
    elapsed = time.time() - t0
    cpu1 = [cpu(p.pid) for _, p, _ in procs]
    ev1 = [evaluations(u) for u in urls]
    w1 = row_writes()
    by_table = {t: n - w0.get(t, 0) for t, n in w1.items() if n - w0.get(t, 0) > 0}
    w0, w1 = sum(w0.values()), sum(w1.values())
    evals = sum(ev1) - sum(ev0)
    print(f"steady state over {elapsed:.0f} s: {evals / elapsed:.0f} evaluations/s "
          f"(per instance {', '.join(f'{(b - a) / elapsed:.0f}' for a, b in zip(ev0, ev1))})")
    for (name, _, _), a, b in zip(procs, cpu0, cpu1):
        print(f"  {name}: CPU {100 * (b - a) / elapsed:.1f} % of one core")
    print(f"  database row writes: {(w1 - w0) / elapsed:.2f}/s = {100 * (w1 - w0) / max(evals, 1):.3f} % of evaluations "
          f"({', '.join(f'{t} {n / elapsed:.2f}/s' for t, n in sorted(by_table.items(), key=lambda kv: -kv[1]))})")
    rate = evals / elapsed
    victim = max(range(3), key=lambda i: ev1[i] - ev0[i])
    name, proc, _ = procs[victim]
    survivors = [u for i, u in enumerate(urls) if i != victim]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed = time.time()
    samples = []
    while time.time() - killed < 30:
        samples.append((time.time(), sum(evaluations(u) for u in survivors)))
        time.sleep(0.25)
        window = [s for s in samples if s[0] >= samples[-1][0] - 2.0]
        if len(window) > 2 and samples[-1][0] - killed > 2:
            recent = (window[-1][1] - window[0][1]) / (window[-1][0] - window[0][0])
            if recent >= 0.95 * rate:
                print(f"SIGKILL of {name}: the survivors evaluate at the full rate ({recent:.0f}/s) "
                      f"{window[0][0] - killed:.1f} s after the kill (the 2 s window starting then)")
                break
    else:
        print("the survivors did not reach the full rate within 30 s")
finally:
    for _, proc, _ in procs:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)
    subprocess.run(["psql", pg_url, "-qX", "-c", f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'], capture_output=True)
PY
