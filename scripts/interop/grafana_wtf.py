"""grafana-wtf 0.25.x against a two-instance Tandem cluster, its cache off.

Usage: grafana_wtf.py URL_A URL_B ADMIN_PASSWORD GRAFANA_WTF_BIN WORKDIR

Seeds through A a dashboard whose query holds a rare word, saved three times with
messages; then runs `grafana-wtf info`, `find <word>` and `log <uid>` against B and
compares each with what the cluster's own API answers: the statistics and counts of
`info` with /api/admin/stats and the search, `find` with the dashboard that holds the
word (and only it), `log` with /api/dashboards/uid/:uid/versions. Exits non-zero on any
difference.
"""

import json
import os
import subprocess
import sys
import urllib.parse

import admin_api  # scripts/interop/admin_api.py, beside this script

URL_A, URL_B, PASSWORD, WTF_BIN, WORKDIR = sys.argv[1:6]
AUTH = admin_api.basic(PASSWORD)
WORD = "wtfneedle42"


def call(base, method, path, body=None, expect=200):
    return admin_api.call(base, AUTH, method, path, body, expect)


def wtf(*args):
    parts = urllib.parse.urlsplit(URL_B)
    url = f"{parts.scheme}://admin:{urllib.parse.quote(PASSWORD, safe='')}@{parts.netloc}"
    # Its own cache directory, and a TTL of 0: every answer comes from the server.
    env = dict(os.environ, GRAFANA_URL=url, HOME=WORKDIR, XDG_CACHE_HOME=WORKDIR)
    done = subprocess.run([WTF_BIN, "--cache-ttl=0", "--drop-cache", "--format=json", *args],
                          env=env, cwd=WORKDIR, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        sys.exit(f"grafana-wtf {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def check(what, found, expected):
    if found != expected:
        sys.exit(f"grafana-wtf {what}: {found!r}, the API says {expected!r}")
    print(f"ok   grafana-wtf {what}: {found!r}")


def main():
    call(URL_A, "POST", "/api/folders", {"uid": "wtf", "title": "WTF"})
    version = None
    for n, message in enumerate(["first", "second", "third"]):
        dashboard = {"uid": "wtf-board", "title": "Needle board", "panels": [
            {"id": 1, "type": "timeseries", "title": f"panel {n}",
             "targets": [{"refId": "A", "expr": f"rate({WORD}_total[5m])"}]}]}
        if version is not None:
            dashboard["version"] = version
        version = call(URL_A, "POST", "/api/dashboards/db", {
            "dashboard": dashboard, "folderUid": "wtf", "message": message})["version"]
    call(URL_A, "POST", "/api/dashboards/db", {
        "dashboard": {"uid": "wtf-plain", "title": "Plain board", "panels": []}})

    info = wtf("info")
    stats = call(URL_B, "GET", "/api/admin/stats")
    for key in ["dashboards", "folders", "users", "orgs", "admins", "editors", "viewers"]:
        check(f"info statistics.{key}", info["statistics"][key], stats[key])
    dashboards = call(URL_B, "GET", "/api/search?type=dash-db&limit=5000")
    # grafana-wtf counts the folders `/api/folders` lists: those at the root, as Grafana
    # lists them with nested folders.
    folders = call(URL_B, "GET", "/api/folders")
    check("info summary.dashboards", info["summary"]["dashboards"], len(dashboards))
    check("info summary.folders", info["summary"]["folders"], len(folders))
    teams = call(URL_B, "GET", "/api/teams/search")["totalCount"]
    check("info summary.teams", info["summary"]["teams"], teams)

    found = wtf("find", WORD)
    uids = sorted(d["UID"] for d in found["dashboards"])
    check(f"find {WORD}", uids, ["wtf-board"])
    check("find folder", [d["Folder"] for d in found["dashboards"]], ["WTF"])

    log = wtf("log", "wtf-board")
    versions = call(URL_B, "GET", "/api/dashboards/uid/wtf-board/versions")["versions"]
    check("log versions", sorted((e["version"], e["message"]) for e in log),
          sorted((v["version"], v["message"]) for v in versions))
    check("log folder", {e["folder"] for e in log}, {"WTF"})


if __name__ == "__main__":
    main()
