#!/usr/bin/env python3
"""The cluster example through its nginx, with the real `grafana-client` (5.x, from PyPI):
a login as a browser makes it, then a dashboard saved through nginx and read back as many
times as it takes for every instance to have served it (nginx's access log says which
instance answered each read), then updated and read back from every instance again.

Prints one line per check and `N passed, 0 failed` at the end; stops at the first failure,
prints it with `N passed, 1 failed` and exits 1.

Usage: through_nginx.py URL ADMIN_PASSWORD NGINX_ACCESS_LOG INSTANCES
(run by scripts/cluster/check.sh, which starts the cluster with scripts/cluster.sh).
"""

import json
import os
import re
import secrets
import sys
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))

from checks import check, done  # noqa: E402
from grafana_client import GrafanaApi  # noqa: E402


def post_login(url, password):
    """`POST /login` as Grafana's login page sends it; the session cookie it sets."""
    body = json.dumps({"user": "admin", "password": password}).encode()
    request = urllib.request.Request(url + "/login", data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        answer = json.loads(response.read())
        cookies = [h.split(";", 1)[0] for h in response.headers.get_all("Set-Cookie") or []]
    assert answer == {"message": "Logged in", "redirectUrl": "/"}, f"POST /login answered {answer!r}"
    session = [c for c in cookies if c.startswith("grafana_session=")]
    assert session, f"no grafana_session cookie in {cookies!r}"
    return session[0]


def get_with_cookie(url, path, cookie):
    request = urllib.request.Request(url + path)
    request.add_header("Cookie", cookie)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def upstreams_of(access_log, request_line):
    """The instances (`upstream=` of the log) that answered `request_line` with 200."""
    served = []
    pattern = re.compile(r'"(?P<request>[^"]*)" (?P<status>\d{3}) .* upstream=(?P<upstream>\S+)')
    with open(access_log, errors="replace") as log:
        for line in log:
            match = pattern.search(line)
            if match and match["request"].startswith(request_line + " ") and match["status"] == "200":
                served.append(match["upstream"])
    return served


def main():
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    url, password, access_log, instances = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    api = GrafanaApi.from_url(url, credential=("admin", password))
    suffix = secrets.token_hex(4)
    uid = f"nginx-{suffix}"
    title = f"Through nginx {suffix}"
    reads = 3 * instances

    def version():
        # grafana-client 5 reads the build info of /api/frontend/settings here.
        build = api.health.check()
        assert build.get("version") == "12.1.0", f"the health check answered {build!r}"
        return f"version {build['version']}"

    check("grafana-client's health check through nginx", version)

    def login():
        cookie = post_login(url, password)
        for _ in range(instances):
            user = get_with_cookie(url, "/api/user", cookie)
            assert user.get("login") == "admin", f"/api/user with the session answered {user!r}"
        return f"{instances} reads of /api/user with one session cookie"

    check("POST /login through nginx gives a session every instance accepts", login)

    saved = {}

    def save():
        answer = api.dashboard.update_dashboard({"dashboard": {"uid": uid, "title": title}, "overwrite": False})
        assert answer.get("status") == "success" and answer.get("uid") == uid, f"the save answered {answer!r}"
        saved["version"] = answer["version"]
        return f"version {answer['version']}"

    check("grafana-client saves a dashboard through nginx", save)

    def read_back(expected_version):
        def run():
            for _ in range(reads):
                got = api.dashboard.get_dashboard(uid)
                dashboard = got.get("dashboard", {})
                assert dashboard.get("title") == title, f"read back {got!r}"
                assert dashboard.get("version") == expected_version, f"version {dashboard.get('version')}, expected {expected_version}"
            served = upstreams_of(access_log, f"GET /api/dashboards/uid/{uid}")
            assert len(served) >= reads, f"the access log shows {len(served)} reads of {reads}"
            last = set(served[-reads:])
            assert len(last) == instances, f"the last {reads} reads were served by {sorted(last)}, not {instances} instances"
            return f"{reads} reads served by {', '.join(sorted(last))}"

        return run

    check("every instance serves the saved dashboard", read_back(1))

    def update():
        answer = api.dashboard.update_dashboard({"dashboard": {"uid": uid, "title": title, "version": saved["version"]}})
        assert answer.get("version") == saved["version"] + 1, f"the update answered {answer!r}"
        return f"version {answer['version']}"

    check("grafana-client updates it through nginx with its version", update)
    check("every instance serves the new version at once", read_back(2))

    def delete():
        api.dashboard.delete_dashboard(uid)
        return None

    check("grafana-client deletes it through nginx", delete)
    done()


if __name__ == "__main__":
    main()
