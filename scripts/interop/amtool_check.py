#!/usr/bin/env python3
"""Interoperability check: Alertmanager's own `amtool` (Debian's prometheus-alertmanager)
against two Tandem instances, A and B, that share one database, through
`--alertmanager.url=http://admin:<password>@<instance>/api/alertmanager/grafana`.

A rule that always fires is provisioned (with grafana-client); then `amtool alert query`
lists its alert on both instances, `amtool silence add` on A silences it, `amtool silence
query` on B finds the silence, `amtool alert query` hides the silenced alert (and shows it
suppressed with `--silenced`), `amtool silence expire` on B expires it, `amtool silence query
--expired` on A finds it expired and the alert is active again. `amtool alert add` on A
posts an alert that `amtool alert query` on B lists; posted again with a past end, it is
resolved on both. `amtool config show` and `amtool cluster show` read the status. Prints
one line per check and `N passed, 0 failed`; stops at the first failure with `N passed,
1 failed` and exits 1.

Usage: amtool_check.py URL_A URL_B ADMIN_PASSWORD
(run by scripts/interop/run.sh, which starts the instances).
"""

import json
import secrets
import subprocess
import sys
import time
from urllib.parse import urlsplit

from checks import check, done
from grafana_client import GrafanaApi


def amtool_url(url, password):
    parts = urlsplit(url)
    return f"{parts.scheme}://admin:{password}@{parts.netloc}/api/alertmanager/grafana"


def amtool(base, *args):
    """Runs amtool against base; its stdout, or an AssertionError with what it said."""
    command = ["amtool", f"--alertmanager.url={base}", "--timeout=20s", *args]
    done_ = subprocess.run(command, capture_output=True, text=True, timeout=60)
    shown = " ".join(args)
    assert done_.returncode == 0, f"amtool {shown} exited {done_.returncode}: {done_.stderr.strip()}"
    return done_.stdout


def amtool_json(base, *args):
    out = amtool(base, "-o", "json", *args)
    return json.loads(out) if out.strip() else []


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    url_a, url_b, password = sys.argv[1:]
    am_a, am_b = amtool_url(url_a, password), amtool_url(url_b, password)
    suffix = secrets.token_hex(4)
    alertname = f"amtool-interop-{suffix}"
    folder_uid = f"amtool-{suffix}"
    group = f"amtool-group-{suffix}"
    a = GrafanaApi.from_url(url_a, credential=("admin", password))
    state = {}

    def provision():
        a.folder.create_folder(f"amtool {suffix}", uid=folder_uid)
        created = a.alertingprovisioning.create_alertrule({
            "folderUID": folder_uid, "ruleGroup": group, "title": alertname, "condition": "A",
            "data": [{"refId": "A", "relativeTimeRange": {"from": 0, "to": 0},
                      "datasourceUid": "__expr__", "model": {"type": "math", "expression": "1"}}],
            "noDataState": "OK", "execErrState": "OK", "for": "0s",
            "labels": {"team": f"interop-{suffix}"}, "annotations": {"summary": "always firing"},
        })  # fmt: skip
        state["rule"] = created["uid"]
        body = dict(a.alertingprovisioning.get_rule_group(folder_uid, group), interval=10)
        a.alertingprovisioning.update_rule_group(folder_uid, group, body)
        return f"rule {alertname}, every 10 s"

    check("a rule that always fires, provisioned on A", provision)

    def alert_listed(base, *flags):
        return [
            alert for alert in amtool_json(base, "alert", "query", *flags, f"alertname={alertname}")
            if alert["labels"].get("alertname") == alertname
        ]

    def wait_firing():
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            alerts = alert_listed(am_b)
            if alerts:
                alert = alerts[0]
                assert alert["status"]["state"] == "active", alert
                assert alert["labels"]["team"] == f"interop-{suffix}", alert
                assert alert["receivers"] and alert["receivers"][0]["name"], alert
                assert len(alert_listed(am_a)) == 1
                return f"fingerprint {alert['fingerprint']}"
            time.sleep(1)
        raise AssertionError("the alert was not listed within 90 s")

    check("amtool alert query on B and A lists the firing alert", wait_firing)

    def add():
        out = amtool(am_a, "silence", "add", f"alertname={alertname}", f"team=~interop-{suffix[:4]}.*",
                     "--author=interop", "--comment=amtool interop", "--duration=1h")  # fmt: skip
        silence_id = out.strip()
        assert len(silence_id) == 36, out
        state["id"] = silence_id
        return silence_id

    check("amtool silence add on A", add)

    def query():
        silences = amtool_json(am_b, "silence", "query", f"alertname={alertname}")
        assert [s["id"] for s in silences] == [state["id"]], silences
        s = silences[0]
        assert s["status"]["state"] == "active", s
        assert s["createdBy"] == "interop" and s["comment"] == "amtool interop", s
        names = sorted((m["name"], m["value"], m["isRegex"]) for m in s["matchers"])
        assert names == [("alertname", alertname, False), ("team", f"interop-{suffix[:4]}.*", True)], names
        quiet = amtool(am_b, "silence", "query", "-q", f"alertname={alertname}").split()
        assert quiet == [state["id"]], quiet
        assert amtool_json(am_b, "silence", "query", "alertname=nothing-like-it") == []

    check("amtool silence query on B finds it", query)

    def silenced():
        assert alert_listed(am_b) == [], "a silenced alert is hidden by default"
        alerts = alert_listed(am_a, "--silenced")
        assert len(alerts) == 1, alerts
        status = alerts[0]["status"]
        assert status["state"] == "suppressed" and status["silencedBy"] == [state["id"]], status

    check("amtool alert query hides the silenced alert, --silenced shows it suppressed", silenced)

    def expire():
        amtool(am_b, "silence", "expire", state["id"])
        assert amtool_json(am_a, "silence", "query", f"alertname={alertname}") == []
        expired = amtool_json(am_a, "silence", "query", "--expired", f"alertname={alertname}")
        assert [s["id"] for s in expired] == [state["id"]], expired
        assert expired[0]["status"]["state"] == "expired", expired
        alerts = alert_listed(am_a)
        assert len(alerts) == 1 and alerts[0]["status"]["state"] == "active", alerts

    check("amtool silence expire on B; expired on A and the alert active again", expire)

    def expire_again():
        command = ["amtool", f"--alertmanager.url={am_a}", "silence", "expire", state["id"]]
        again = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert again.returncode != 0, "expiring an expired silence is an error"

    check("amtool silence expire of an expired silence fails", expire_again)

    posted = f"amtool-posted-{suffix}"

    def alert_add():
        amtool(am_a, "alert", "add", f"alertname={posted}", "severity=page",
               "--annotation=summary=posted by amtool", "--generator-url=http://amtool.example/")  # fmt: skip
        listed = [x for x in amtool_json(am_b, "alert", "query", f"alertname={posted}")]
        assert len(listed) == 1, listed
        alert = listed[0]
        assert alert["labels"]["severity"] == "page", alert
        assert alert["annotations"]["summary"] == "posted by amtool", alert
        assert alert["generatorURL"] == "http://amtool.example/", alert
        assert alert["status"]["state"] == "active", alert

    check("amtool alert add on A; amtool alert query on B lists it", alert_add)

    def alert_resolve():
        amtool(am_b, "alert", "add", f"alertname={posted}", "severity=page",
               "--end=2020-01-01T00:00:00Z", "--start=2019-12-31T00:00:00Z")  # fmt: skip
        assert amtool_json(am_a, "alert", "query", f"alertname={posted}") == []

    check("amtool alert add with a past --end resolves it on both", alert_resolve)

    def status():
        config = amtool(am_a, "config", "show")
        assert "grafana-default-email" in config, config
        cluster = amtool(am_b, "cluster", "show")
        assert "ready" in cluster, cluster

    check("amtool config show and cluster show", status)

    def cleanup():
        a.alertingprovisioning.delete_alertrule(state["rule"])

    check("the rule deleted", cleanup)
    done()


if __name__ == "__main__":
    main()
