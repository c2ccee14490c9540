#!/usr/bin/env bash
# The cluster example (examples/cluster/) in one command:
#
#   scripts/cluster.sh up [--port PORT] [--release]   start it and print its URL
#   scripts/cluster.sh status                         say what runs and whether it is healthy
#   scripts/cluster.sh down                           stop it and remove what it made
#
# `up` builds tandem-server (debug, or --release), creates a fresh PostgreSQL database,
# starts three instances on it (free ports, loopback, the Redis Live engine under a prefix
# of the cluster's own, examples/cluster/tandem.ini) and a private nginx (Debian's, installed
# with apt-get when missing and run as root) on PORT or a free port, from
# examples/cluster/nginx.conf.in, with its prefix, pid file and logs in the run directory; it
# never touches the system's nginx. It waits (bounded) until every instance and nginx answer
# /api/health and the cluster lists its three instances, then prints the URL and the admin's
# password. `down` stops the instances (SIGTERM, SIGKILL after 35 s) and nginx, drops the
# database and Live's Redis keys, and removes the run directory. A failed `up` does the
# same before it exits non-zero.
#
# Environment: TANDEM_CLUSTER_DIR (run directory, default target/cluster),
# TANDEM_CLUSTER_POSTGRES_URL (an admin URL, default postgres://postgres@127.0.0.1:5432/postgres),
# TANDEM_CLUSTER_REDIS_URL (default redis://127.0.0.1:6379),
# TANDEM_CLUSTER_ADMIN_PASSWORD (default: random).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
RUN=${TANDEM_CLUSTER_DIR:-$repo/target/cluster}
PG_URL=${TANDEM_CLUSTER_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}
REDIS_URL=${TANDEM_CLUSTER_REDIS_URL:-redis://127.0.0.1:6379}
INSTANCES=3
HEALTH_WAIT_SECONDS=90
STOP_WAIT_SECONDS=35
STATE=$RUN/cluster.env

say() { printf 'cluster: %s\n' "$*"; }
fail() { say "$*" >&2; exit 1; }

usage() {
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# Appends `name=value` to the state file, which `down` and `status` source.
remember() {
    printf '%s=%q\n' "$1" "$2" >>"$STATE"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The port an instance logged in its "HTTP server listening" line, or nothing yet.
logged_port() {
    python3 - "$1" <<'PY'
import json, sys
try:
    lines = open(sys.argv[1], errors="replace")
except OSError:
    sys.exit(0)
for line in lines:
    try:
        fields = json.loads(line).get("fields", {})
    except ValueError:
        continue
    if fields.get("message") == "HTTP server listening":
        print(fields["address"].rsplit(":", 1)[1])
        break
PY
}

http_status() {
    curl -s -o /dev/null -m 3 -w '%{http_code}' "$@" || true
}

# Whether pid $1 is alive and runs program $2 (a pid reused by another program is not ours).
runs() {
    [ -n "$1" ] && kill -0 "$1" 2>/dev/null && [ "$(ps -o comm= -p "$1" 2>/dev/null)" = "$2" ]
}

nginx_binary() {
    command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true
}

# The instances' peer count through nginx, as /api/cluster answers the admin.
peer_count() {
    curl -s -m 3 -u "admin:$(cat "$RUN/admin-password")" "$1/api/cluster" |
        python3 -c 'import json, sys; print(len(json.load(sys.stdin)["peers"]))' 2>/dev/null || echo 0
}

# The exit of `up`: a failure takes down what it started.
up_exit() {
    local status=$?
    trap - EXIT
    if [ "$status" -ne 0 ]; then
        say "up failed; taking down what it started" >&2
        cmd_down || true
    fi
    exit "$status"
}

cmd_up() {
    local port="" profile=debug
    while [ $# -gt 0 ]; do
        case $1 in
            --port) [ $# -ge 2 ] || usage; port=$2; shift 2 ;;
            --release) profile=release; shift ;;
            *) usage ;;
        esac
    done
    if [ -e "$STATE" ]; then
        fail "a cluster is already up or was left behind in $RUN: run scripts/cluster.sh down first"
    fi
    for tool in psql redis-cli curl python3 cargo; do
        command -v "$tool" >/dev/null || fail "$tool is needed and not installed"
    done
    local nginx
    nginx=$(nginx_binary)
    if [ -z "$nginx" ]; then
        [ "$(id -u)" -eq 0 ] || fail "nginx is not installed: apt-get install nginx (as root), then run this again"
        say "installing Debian's nginx (apt-get install nginx)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx >/dev/null
        nginx=$(nginx_binary)
        [ -n "$nginx" ] || fail "nginx is still missing after apt-get install nginx"
    fi
    pg_isready -d "$PG_URL" -t 5 >/dev/null 2>&1 || fail "PostgreSQL does not answer at $PG_URL"
    [ "$(redis-cli -u "$REDIS_URL" ping 2>/dev/null)" = PONG ] || fail "Redis does not answer at $REDIS_URL"

    say "building tandem-server ($profile)"
    local build=(cargo build -q -p tandem-server --manifest-path "$repo/Cargo.toml")
    [ "$profile" = release ] && build+=(--release)
    "${build[@]}"
    local bin
    bin="$(cd "$repo" && cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/$profile/tandem-server"
    [ -x "$bin" ] || fail "no binary at $bin after the build"

    mkdir -p "$RUN/logs" "$RUN/nginx/logs" "$RUN/nginx/tmp"
    chmod 700 "$RUN"
    : >"$STATE"
    # From here on a failure takes down whatever was started.
    trap up_exit EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    local suffix db prefix
    suffix="$(date +%s)_$$"
    db="tandem_cluster_$suffix"
    prefix="tandem_cluster_$suffix"
    remember db "$db"
    remember pg_url "$PG_URL"
    remember redis_url "$REDIS_URL"
    remember live_prefix "$prefix"
    psql "$PG_URL" -qX -v ON_ERROR_STOP=1 -c "CREATE DATABASE \"$db\"" >/dev/null
    remember db_created 1
    say "created database $db"

    if [ -z "$port" ]; then port=$(free_port); fi
    local url="http://127.0.0.1:$port"
    remember url "$url"
    local password=${TANDEM_CLUSTER_ADMIN_PASSWORD:-}
    if [ -z "$password" ]; then
        password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(12))')
    fi
    (umask 077 && printf '%s' "$password" >"$RUN/admin-password" &&
        python3 -c 'import secrets; print(secrets.token_urlsafe(32), end="")' >"$RUN/secret-key")

    local i name pids=() ports=()
    for i in $(seq 1 "$INSTANCES"); do
        name="tandem-$i"
        mkdir -p "$RUN/data-$name"
        (cd "$RUN" && exec setsid env \
            GF_CLUSTER_INSTANCE_ID="$name" \
            GF_DATABASE_URL="${PG_URL%/*}/$db" \
            GF_LIVE_HA_ENGINE_ADDRESS="$REDIS_URL" \
            GF_LIVE_HA_PREFIX="$prefix" \
            GF_SERVER_ROOT_URL="$url/" \
            GF_SECURITY_ADMIN_PASSWORD__FILE="$RUN/admin-password" \
            GF_SECURITY_SECRET_KEY__FILE="$RUN/secret-key" \
            GF_PATHS_DATA="$RUN/data-$name" \
            GF_PATHS_PROVISIONING="$RUN/provisioning" \
            "$bin" --config "$repo/examples/cluster/tandem.ini" \
            </dev/null >"$RUN/logs/$name.log" 2>&1) &
        pids+=($!)
        remember "pid_$i" "$!"
        say "started $name (pid $!)"
    done

    local deadline=$((SECONDS + HEALTH_WAIT_SECONDS)) p
    for i in $(seq 1 "$INSTANCES"); do
        name="tandem-$i"
        until p=$(logged_port "$RUN/logs/$name.log") && [ -n "$p" ] &&
            [ "$(http_status "http://127.0.0.1:$p/api/health")" = 200 ]; do
            runs "${pids[$((i - 1))]}" tandem-server || {
                tail -n 20 "$RUN/logs/$name.log" >&2
                fail "$name exited before answering /api/health"
            }
            [ "$SECONDS" -lt "$deadline" ] || fail "$name did not answer 200 on /api/health within ${HEALTH_WAIT_SECONDS}s"
            sleep 0.2
        done
        ports+=("$p")
        remember "port_$i" "$p"
        say "$name answers on http://127.0.0.1:$p"
    done

    local upstreams="" user_line=""
    for p in "${ports[@]}"; do
        upstreams+="        server 127.0.0.1:$p max_fails=1 fail_timeout=2s;"$'\n'
    done
    # Run as root, nginx's workers would switch to another user that cannot enter the run
    # directory; they stay the current user instead.
    if [ "$(id -u)" -eq 0 ]; then user_line="user $(id -un) $(id -gn);"; fi
    UPSTREAMS=$upstreams PREFIX="$RUN/nginx" LISTEN="127.0.0.1:$port" USER_LINE=$user_line python3 - \
        "$repo/examples/cluster/nginx.conf.in" "$RUN/nginx/nginx.conf" <<'PY'
import os, sys
text = open(sys.argv[1]).read()
for key, env in (("@UPSTREAMS@\n", "UPSTREAMS"), ("@PREFIX@", "PREFIX"), ("@LISTEN@", "LISTEN"), ("@USER@", "USER_LINE")):
    text = text.replace(key, os.environ[env])
import re
assert not re.search(r"@[A-Z_]+@", text), "a placeholder is left"
open(sys.argv[2], "w").write(text)
PY
    local nginx_args=(-p "$RUN/nginx/" -c "$RUN/nginx/nginx.conf" -e "$RUN/nginx/logs/error.log")
    "$nginx" -q -t "${nginx_args[@]}" || fail "nginx refused the configuration $RUN/nginx/nginx.conf"
    "$nginx" "${nginx_args[@]}" || {
        tail -n 5 "$RUN/nginx/logs/error.log" >&2
        fail "nginx did not start on 127.0.0.1:$port (in use? give another with --port)"
    }
    remember nginx_started 1
    local nginx_pid=""
    for _ in $(seq 1 50); do
        nginx_pid=$(cat "$RUN/nginx/nginx.pid" 2>/dev/null || true)
        [ -n "$nginx_pid" ] && break
        sleep 0.1
    done
    [ -n "$nginx_pid" ] || fail "nginx wrote no pid file"
    remember nginx_pid "$nginx_pid"
    say "started nginx (pid $nginx_pid) on $url"

    deadline=$((SECONDS + 30))
    until [ "$(http_status "$url/api/health")" = 200 ] && [ "$(peer_count "$url")" = "$INSTANCES" ]; do
        [ "$SECONDS" -lt "$deadline" ] || fail "$url did not answer /api/health with $INSTANCES instances in the cluster within 30s"
        sleep 0.5
    done
    remember up 1
    trap - EXIT INT TERM
    say "up: $url/ (user admin, password $password), $INSTANCES instances behind nginx"
    say "logs in $RUN/logs and $RUN/nginx/logs; stop with: scripts/cluster.sh down"
}

# Stops pid $1 (program $2) with SIGTERM, then SIGKILL after STOP_WAIT_SECONDS; says how it went.
stop() {
    local pid=$1 program=$2 what=$3 deadline
    if ! runs "$pid" "$program"; then
        say "$what (pid $pid) had already exited"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + STOP_WAIT_SECONDS))
    while runs "$pid" "$program"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            say "$what (pid $pid) did not stop within ${STOP_WAIT_SECONDS}s of SIGTERM; SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
            return 1
        fi
        sleep 0.1
    done
    say "stopped $what (pid $pid)"
}

cmd_down() {
    if [ ! -e "$STATE" ]; then
        say "nothing to take down in $RUN"
        return 0
    fi
    local failed=0 i pid_var db="" db_created="" live_prefix="" redis_url="" pg_url="" nginx_pid=""
    # shellcheck disable=SC1090
    . "$STATE"
    if [ -z "$nginx_pid" ] && [ -s "$RUN/nginx/nginx.pid" ]; then nginx_pid=$(cat "$RUN/nginx/nginx.pid"); fi
    if [ -n "$nginx_pid" ]; then stop "$nginx_pid" nginx nginx || failed=1; fi
    for i in $(seq 1 "$INSTANCES"); do
        pid_var="pid_$i"
        if [ -n "${!pid_var:-}" ]; then stop "${!pid_var}" tandem-server "tandem-$i" || failed=1; fi
    done
    if [ "$db_created" = 1 ]; then
        if psql "$pg_url" -qX -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null; then
            say "dropped database $db"
        else
            say "could not drop database $db" >&2
            failed=1
        fi
    fi
    if [ -n "$live_prefix" ]; then
        local keys
        keys=$(redis-cli -u "$redis_url" --scan --pattern "$live_prefix.*" 2>/dev/null | wc -l)
        redis-cli -u "$redis_url" --scan --pattern "$live_prefix.*" 2>/dev/null |
            xargs -r redis-cli -u "$redis_url" del >/dev/null 2>&1 || failed=1
        say "deleted $keys Live key(s) under $live_prefix in Redis"
    fi
    rm -rf "$RUN"
    say "removed $RUN"
    return "$failed"
}

cmd_status() {
    if [ ! -e "$STATE" ]; then
        say "not up (no $STATE)"
        return 3
    fi
    local bad=0 i pid_var port_var url="" nginx_pid="" up=""
    # shellcheck disable=SC1090
    . "$STATE"
    [ "$up" = 1 ] || { say "left behind by an unfinished up: run scripts/cluster.sh down"; bad=1; }
    for i in $(seq 1 "$INSTANCES"); do
        pid_var="pid_$i" port_var="port_$i"
        if runs "${!pid_var:-}" tandem-server; then
            say "tandem-$i: pid ${!pid_var}, http://127.0.0.1:${!port_var:-?}, /api/health $(http_status "http://127.0.0.1:${!port_var:-0}/api/health")"
        else
            say "tandem-$i: not running"
            bad=1
        fi
    done
    if runs "$nginx_pid" nginx; then
        say "nginx: pid $nginx_pid, $url/api/health $(http_status "$url/api/health"), $(peer_count "$url") instance(s) in the cluster view"
    else
        say "nginx: not running"
        bad=1
    fi
    say "URL: $url/"
    return "$bad"
}

[ $# -ge 1 ] || usage
command=$1
shift
case $command in
    up) cmd_up "$@" ;;
    down) [ $# -eq 0 ] || usage; cmd_down ;;
    status) [ $# -eq 0 ] || usage; cmd_status ;;
    *) usage ;;
esac
