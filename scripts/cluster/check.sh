#!/usr/bin/env bash
# The cluster example end to end, as `.ci/run` runs it: brings the cluster up with
# `scripts/cluster.sh up` (three tandem-server instances on one fresh PostgreSQL database
# with the Redis Live engine, behind a private nginx) in a run directory of its own, then,
# all through nginx:
#   1. the real Python grafana-client: scripts/interop/grafana_client_dashboards.py, and
#      scripts/cluster/through_nginx.py (a login; a dashboard saved, then read back until
#      nginx's access log shows that every instance served it);
#   2. the real Centrifuge SDKs through nginx's WebSocket proxy:
#      scripts/interop/live_sdks.py (centrifuge-python and the centrifuge npm SDK), on Redis;
#   3. headless Chromium (Debian's, /usr/bin/chromium) driven by Playwright's playwright-core
#      (scripts/cluster/browser/front_door.mjs, installed with `npm ci`): /login, log in as
#      the admin, see / list the three instances, SIGKILL one, see it leave the page;
#   4. requests through nginx keep being answered with one instance dead;
# then `scripts/cluster.sh down`, and checks that the database, Live's Redis keys and the
# run directory are gone. Any failure fails; everything it started is removed on exit,
# whatever happened; the whole check is bounded by CHECK_SECONDS (default 420).
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ -z "${TANDEM_CLUSTER_CHECK_BOUNDED:-}" ]; then
    # The bound: SIGTERM at the limit (the trap below still takes everything down), SIGKILL
    # 60 s later.
    export TANDEM_CLUSTER_CHECK_BOUNDED=1
    exec timeout -k 60 "${CHECK_SECONDS:-420}" "$0" "$@"
fi

INSTANCES=3
# The Python checks import scripts/interop/checks.py; leave no bytecode in the tree.
export PYTHONDONTWRITEBYTECODE=1
step() { printf 'cluster check: %s\n' "$*"; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tandem-cluster-check.XXXXXX")
export TANDEM_CLUSTER_DIR="$tmp/run"
started=$SECONDS
went_down=0

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    if [ "$went_down" -eq 0 ] && [ -e "$TANDEM_CLUSTER_DIR/cluster.env" ]; then
        if [ "$status" -ne 0 ]; then
            for log in "$TANDEM_CLUSTER_DIR"/logs/*.log "$TANDEM_CLUSTER_DIR/nginx/logs/error.log"; do
                [ -s "$log" ] || continue
                echo "---- last lines of $log" >&2
                tail -n 30 "$log" | sed 's/\x1b\[[0-9;]*m//g' >&2
            done
        fi
        timeout 120 scripts/cluster.sh down || { step "scripts/cluster.sh down failed" >&2; status=1; }
    fi
    rm -rf "$tmp"
    if [ "$status" -eq 0 ]; then
        step "passed in $((SECONDS - started)) s"
    else
        step "FAILED (status $status) after $((SECONDS - started)) s" >&2
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "scripts/cluster.sh up"
scripts/cluster.sh up
# shellcheck disable=SC1091
. "$TANDEM_CLUSTER_DIR/cluster.env"
# Set by cluster.env; declared here for the reader (and shellcheck).
url=${url:?} db=${db:?} live_prefix=${live_prefix:?} pg_url=${pg_url:?} redis_url=${redis_url:?}
password=$(cat "$TANDEM_CLUSTER_DIR/admin-password")
access_log="$TANDEM_CLUSTER_DIR/nginx/logs/access.log"
scripts/cluster.sh status

step "creating a virtualenv and installing grafana-client>=5,<6 and centrifuge-python>=0.7,<0.8"
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q --disable-pip-version-check 'grafana-client>=5,<6' 'centrifuge-python>=0.7,<0.8'
py="$tmp/venv/bin/python"

step "grafana_client_dashboards.py through nginx"
"$py" scripts/interop/grafana_client_dashboards.py "$url" "$url" "$password"
step "through_nginx.py: a login, and a dashboard every instance serves"
"$py" scripts/cluster/through_nginx.py "$url" "$password" "$access_log" "$INSTANCES"

step "live_sdks.py (centrifuge-python and centrifuge-js) through nginx's WebSocket proxy"
npm ci --prefix scripts/interop/node --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null
"$py" scripts/interop/live_sdks.py "$url" "$url" "$password" redis
upgrades=$(grep -c '"GET /api/live/ws HTTP/1.1" 101 ' "$access_log" || true)
[ "$upgrades" -ge 2 ] || { step "nginx's access log shows $upgrades WebSocket upgrades (101), expected at least 2" >&2; exit 1; }
step "nginx upgraded $upgrades WebSocket connections"

chromium=${CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || { step "no Chromium at $chromium (Debian's chromium package)" >&2; exit 1; }
step "front_door.mjs: $("$chromium" --version 2>/dev/null | head -1) through nginx, with playwright-core"
npm ci --prefix scripts/cluster/browser --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null
CHROMIUM=$chromium node scripts/cluster/browser/front_door.mjs "$url" "$password" "$INSTANCES" "${pid_2:?}" tandem-2

step "nginx keeps answering with tandem-2 dead"
for i in $(seq 1 12); do
    code=$(curl -s -o /dev/null -m 5 -w '%{http_code}' -u "admin:$password" "$url/api/search?query=x" || true)
    [ "$code" = 200 ] || { step "request $i through nginx answered $code" >&2; exit 1; }
done
step "12 of 12 requests answered 200"

step "scripts/cluster.sh down"
scripts/cluster.sh down
went_down=1
for pid in "${pid_1:?}" "${pid_2:?}" "${pid_3:?}" "${nginx_pid:?}"; do
    if kill -0 "$pid" 2>/dev/null; then step "pid $pid still runs after down" >&2; exit 1; fi
done
if psql "$pg_url" -qAtX -c "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
    step "database $db is still there after down" >&2
    exit 1
fi
left=$(redis-cli -u "$redis_url" --scan --pattern "$live_prefix.*" | wc -l)
[ "$left" -eq 0 ] || { step "$left Live key(s) under $live_prefix are still in Redis after down" >&2; exit 1; }
[ ! -e "$TANDEM_CLUSTER_DIR" ] || { step "$TANDEM_CLUSTER_DIR is still there after down" >&2; exit 1; }
step "down left no database, no Live key and no run directory"
