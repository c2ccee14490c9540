#!/usr/bin/env bash
# Notifications side by side: a 3-node Alertmanager cluster (Debian's prometheus-alertmanager,
# gossiping on loopback) and 3 release tandem-server processes on one fresh PostgreSQL
# database, the same alerts posted through Alertmanager's v2 API to every node (as a
# Prometheus server posts them), the same recording webhook receiver. Scenarios, each on a
# fresh cluster:
#   steady-100, steady-1000  N groups fire at once; every group should be notified once;
#   kill                     the receiver answers 500 until the sender is SIGKILLed 0.2 s
#                            after the flush became due; then 200;
#   stall                    the same with SIGSTOP for 10 s instead (then SIGCONT);
#   stall-1s                 Alertmanager only: stall with --cluster.peer-timeout=1s.
# Prints, per system and scenario: groups delivered, duplicate deliveries, fail-over latency
# (fault to first accepted delivery, worst group) and due-to-delivery p50/p99 (due = the
# alert's first post returned + group_wait, the earliest its group can be due). Every scenario then waits QUIET seconds for late duplicates
# (Alertmanager's third node sends 2 x peer_timeout after the first).
# Usage: scripts/bench-notify-ha.sh [postgres-admin-url] [quiet-seconds]
# BENCH_SYSTEMS=alertmanager or BENCH_SYSTEMS=tandem runs one side only.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_URL=${1:-postgres://postgres@127.0.0.1:5432/test}
QUIET=${2:-35}
AM=$(command -v prometheus-alertmanager || command -v alertmanager || true)
[ -n "$AM" ] || { echo "install Debian's prometheus-alertmanager" >&2; exit 1; }
[ "${BENCH_SYSTEMS:-both}" = alertmanager ] || cargo build -q --release -p tandem-server

echo "== machine"
echo "date: $(date -u)"
echo "commit: $(git rev-parse --short HEAD)"
echo "nproc: $(nproc); $(lscpu | grep 'Model name' | sed 's/  */ /g')"
echo "PostgreSQL: $(psql "$PG_URL" -Atc 'SHOW server_version')"
echo "Alertmanager: $("$AM" --version 2>&1 | head -1)"
echo
exec python3 - "$PG_URL" "$QUIET" "$AM" <<'PY'
import base64, json, os, signal, socket, subprocess, sys, tempfile, threading, time, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

pg_url, quiet, am_bin = sys.argv[1], int(sys.argv[2]), sys.argv[3]
GROUP_WAIT = 1.0
auth = "Basic " + base64.b64encode(b"admin:admin").decode()


class Receiver:
    """Records every webhook request; answers 500 while `failing`."""

    def __init__(self):
        self.lock = threading.Lock()
        self.log = []  # (time, group key, status, answered)
        self.failing = False
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                code = 500 if receiver.failing else 200
                with receiver.lock:
                    receiver.log.append((time.time(), body.get("groupKey", ""), body.get("status", ""), code))
                self.send_response(code)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            # 1 000 groups flush at once: a listen backlog of 5 would drop connections.
            request_queue_size = 4096
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reset(self):
        with self.lock:
            self.log.clear()
        self.failing = False

    def accepted(self):
        with self.lock:
            return [e for e in self.log if e[3] == 200 and e[2] == "firing"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(method, url, body=None, timeout=120):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Authorization": auth, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.status, resp.read()


def wait(what, check, deadline=90):
    until = time.time() + deadline
    while not check():
        if time.time() > until:
            raise SystemExit(f"timed out: {what}")
        time.sleep(0.05)


class AlertmanagerCluster:
    name = "Alertmanager 0.25, 3 nodes"

    def __init__(self, receiver, peer_timeout="15s"):
        self.tmp = tempfile.mkdtemp(prefix="bench-am-")
        config = f"{self.tmp}/am.yml"
        with open(config, "w") as f:
            f.write(f"""route:
  receiver: hook
  group_by: [alertname]
  group_wait: 1s
  group_interval: 5m
  repeat_interval: 4h
receivers:
- name: hook
  webhook_configs:
  - url: {receiver.url}
    send_resolved: true
""")
        ports = [(free_port(), free_port()) for _ in range(3)]
        self.procs, self.urls = [], []
        for i, (web, gossip) in enumerate(ports):
            peers = [f"--cluster.peer=127.0.0.1:{g}" for j, (_, g) in enumerate(ports) if j != i]
            log = open(f"{self.tmp}/am{i}.log", "w")
            self.procs.append(subprocess.Popen(
                [am_bin, f"--config.file={config}", f"--storage.path={self.tmp}/data{i}",
                 f"--web.listen-address=127.0.0.1:{web}", f"--cluster.listen-address=127.0.0.1:{gossip}",
                 f"--cluster.advertise-address=127.0.0.1:{gossip}", f"--cluster.peer-timeout={peer_timeout}",
                 *peers], stdout=log, stderr=subprocess.STDOUT))
            self.urls.append(f"http://127.0.0.1:{web}")
        def settled():
            try:
                return all(len(json.loads(request("GET", u + "/api/v2/status", timeout=2)[1])["cluster"].get("peers") or []) == 3
                           for u in self.urls)
            except Exception:
                return False
        wait("the Alertmanager cluster to form", settled, 60)
        # The gossip settles before notifications go out (Alertmanager waits for it).
        time.sleep(8)
        self.post_base = [u + "/api/v2/alerts" for u in self.urls]

    def sender(self, receiver):
        """The node that sends first: position 0, the lowest peer name."""
        names = [json.loads(request("GET", u + "/api/v2/status")[1])["cluster"]["name"] for u in self.urls]
        return names.index(min(names))

    def stop(self):
        for p in self.procs:
            try:
                p.send_signal(signal.SIGCONT)
                p.kill()
            except ProcessLookupError:
                pass
            p.wait()
        subprocess.run(["rm", "-rf", self.tmp])


class TandemCluster:
    name = "Tandem, 3 instances on PostgreSQL"

    def __init__(self, receiver, env_extra=None):
        self.tmp = tempfile.mkdtemp(prefix="bench-tandem-")
        self.db = f"tandem_bench_notify_{os.getpid()}_{int(time.time() * 1000) % 100000}"
        self.db_url = pg_url.rsplit("/", 1)[0] + "/" + self.db
        subprocess.run(["psql", pg_url, "-qAtX", "-c", f'CREATE DATABASE "{self.db}"'], check=True)
        self.procs, self.urls = [], []
        for i in range(3):
            port = free_port()
            env = dict(os.environ, GF_DATABASE_TYPE="postgres", GF_DATABASE_URL=self.db_url,
                       GF_SERVER_HTTP_ADDR="127.0.0.1", GF_SERVER_HTTP_PORT=str(port), GF_LOG_FORMAT="json",
                       GF_LOG_LEVEL="warn", GF_CLUSTER_INSTANCE_ID=f"t{i}", GF_PATHS_DATA=f"{self.tmp}/t{i}",
                       **(env_extra or {}))
            log = open(f"{self.tmp}/t{i}.log", "w")
            self.procs.append(subprocess.Popen(["target/release/tandem-server"], env=env, stdout=log,
                                               stderr=subprocess.STDOUT))
            self.urls.append(f"http://127.0.0.1:{port}")
        def healthy():
            try:
                return all(request("GET", u + "/api/health", timeout=2)[0] == 200 for u in self.urls)
            except Exception:
                return False
        wait("the Tandem instances", healthy, 90)
        u = self.urls[0]
        request("POST", u + "/api/v1/provisioning/contact-points",
                {"name": "hook", "type": "webhook", "settings": {"url": receiver.url}})
        request("PUT", u + "/api/v1/provisioning/policies",
                {"receiver": "hook", "group_by": ["alertname"], "group_wait": "1s",
                 "group_interval": "5m", "repeat_interval": "4h"})
        self.post_base = [u + "/api/alertmanager/grafana/api/v2/alerts" for u in self.urls]

    def sender(self, receiver):
        """The instance holding the pending claims (read from the notification log)."""
        out = subprocess.run(["psql", self.db_url, "-qAtX", "-c",
                              "SELECT holder FROM alert_notification_log WHERE status = 'pending'"],
                             check=True, capture_output=True, text=True).stdout.split()
        holders = [h.split("/")[0] for h in out]
        return max(range(3), key=lambda i: holders.count(f"t{i}"))

    def stop(self):
        for p in self.procs:
            try:
                p.send_signal(signal.SIGCONT)
                p.kill()
            except ProcessLookupError:
                pass
            p.wait()
        subprocess.run(["psql", pg_url, "-qAtX", "-c", f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)'],
                       capture_output=True)
        subprocess.run(["rm", "-rf", self.tmp])


def alerts(prefix, n):
    return [{"labels": {"alertname": f"{prefix}{i:04}", "team": "bench"},
             "annotations": {"summary": f"group {i}"}} for i in range(n)]


def post_everywhere(cluster, batch):
    """Posts the batch to every node, as a Prometheus server listing all three does, in
    Prometheus' largest batches (256); when each alert's first post returned, by alertname
    (its group cannot be due before that plus group_wait)."""
    first = {}
    for url in cluster.post_base:
        for k in range(0, len(batch), 256):
            request("POST", url, batch[k:k + 256])
            returned = time.time()
            for a in batch[k:k + 256]:
                first.setdefault(a["labels"]["alertname"], returned)
    return first


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] if values else float("nan")


def summary(receiver, groups, fault_at=None, posted_at=None):
    accepted = receiver.accepted()
    first, names = {}, {}
    for t, key, _, _ in accepted:
        first.setdefault(key, t)
        # Both systems' group keys end with the group labels: {alertname="Steady0042"}.
        names.setdefault(key, key.rsplit('alertname="', 1)[-1].split('"', 1)[0])
    row = {"delivered": len(first), "of": groups, "duplicates": len(accepted) - len(first)}
    if fault_at is not None and first:
        row["failover_s"] = max(first.values()) - fault_at
    if posted_at is not None and first:
        lat = [max(0.0, t - posted_at[names[k]] - GROUP_WAIT) * 1000 for k, t in first.items()]
        row["p50_ms"], row["p99_ms"] = percentile(lat, 50), percentile(lat, 99)
    return row


def steady(cluster, receiver, n):
    posted = post_everywhere(cluster, alerts("Steady", n))
    wait(f"{n} groups", lambda: len({k for _, k, _, _ in receiver.accepted()}) >= n, 120)
    time.sleep(quiet)
    return summary(receiver, n, posted_at=posted)


def fault(cluster, receiver, kind, groups=10):
    receiver.failing = True
    post_everywhere(cluster, alerts(kind.capitalize(), groups))
    # The sender is retrying against the failing receiver.
    wait("a first attempt", lambda: len(receiver.log) > 0, 60)
    time.sleep(0.2)
    victim = cluster.sender(receiver)
    proc = cluster.procs[victim]
    proc.send_signal(signal.SIGKILL if kind == "kill" else signal.SIGSTOP)
    at = time.time()
    receiver.failing = False
    if kind != "kill":
        def resume():
            time.sleep(10)
            proc.send_signal(signal.SIGCONT)
        threading.Thread(target=resume, daemon=True).start()
    try:
        wait("delivery after the fault", lambda: len({k for _, k, _, _ in receiver.accepted()}) >= groups, 90)
    except SystemExit as err:
        print(f"    {err}")
    time.sleep(max(quiet, 12))
    return summary(receiver, groups, fault_at=at)


def show(system, scenario, row):
    parts = [f"delivered {row['delivered']}/{row['of']}", f"duplicates {row['duplicates']}"]
    if "failover_s" in row:
        parts.append(f"fail-over {row['failover_s']:.1f} s")
    if "p50_ms" in row:
        parts.append(f"due->delivery p50 {row['p50_ms']:.0f} ms, p99 {row['p99_ms']:.0f} ms")
    print(f"{system:<36} {scenario:<12} " + ", ".join(parts), flush=True)


receiver = Receiver()
scenarios = [("steady-100", lambda c: steady(c, receiver, 100)),
             ("steady-1000", lambda c: steady(c, receiver, 1000)),
             ("kill", lambda c: fault(c, receiver, "kill")),
             ("stall", lambda c: fault(c, receiver, "stall"))]
only = os.environ.get("BENCH_SYSTEMS", "both")
systems = [(AlertmanagerCluster, {})] if only != "tandem" else []
systems += [(TandemCluster, {})] if only != "alertmanager" else []
for make, kwargs in systems:
    for scenario, run in scenarios:
        receiver.reset()
        cluster = make(receiver, **kwargs)
        try:
            show(cluster.name, scenario, run(cluster))
        finally:
            cluster.stop()
if only != "tandem":
    receiver.reset()
    cluster = AlertmanagerCluster(receiver, peer_timeout="1s")
    try:
        show(cluster.name + ", peer timeout 1s", "stall-1s", fault(cluster, receiver, "stall"))
    finally:
        cluster.stop()
PY
