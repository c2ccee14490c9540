#!/usr/bin/env python3
"""Interoperability check: the real `grafana-client` (5.x, from PyPI) against two Tandem
instances, A and B, that share one database, for the alerting provisioning API.

A rule is created on one instance and read, updated (with and without provenance) and
deleted through the other; its rule group is read and replaced. Prints one line per check
and `N passed, 0 failed` at the end; stops at the first failure, prints it with
`N passed, 1 failed` and exits 1.

Usage: grafana_client_alerting.py URL_A URL_B ADMIN_PASSWORD
(run by scripts/interop/run.sh, which starts the instances).
"""

import secrets
import sys

from checks import check, done, raises
from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError


# Every key of ProvisionedAlertRule that Grafana 12 always writes.
RULE_KEYS = (
    "id", "uid", "orgID", "folderUID", "ruleGroup", "title", "condition", "data", "updated",
    "noDataState", "execErrState", "for", "isPaused",
)  # fmt: skip


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    url_a, url_b, admin_password = sys.argv[1:]
    suffix = secrets.token_hex(4)
    folder_uid = f"interop-alerts-{suffix}"
    group = f"interop-group-{suffix}"
    a = GrafanaApi.from_url(url_a, credential=("admin", admin_password))
    b = GrafanaApi.from_url(url_b, credential=("admin", admin_password))
    a.folder.create_folder(f"Interop Alerts {suffix}", uid=folder_uid)
    rule = {
        "folderUID": folder_uid,
        "ruleGroup": group,
        "title": f"Interop rule {suffix}",
        "condition": "B",
        "data": [
            {"refId": "A", "relativeTimeRange": {"from": 600, "to": 0}, "datasourceUid": "__expr__",
             "model": {"type": "math", "expression": "1"}},
            {"refId": "B", "relativeTimeRange": {"from": 0, "to": 0}, "datasourceUid": "__expr__",
             "model": {"type": "math", "expression": "$A > 0"}},
        ],
        "noDataState": "NoData",
        "execErrState": "Error",
        "for": "5m",
        "labels": {"team": "interop"},
        "annotations": {"summary": "interop {{ $values.B.Value }}"},
    }  # fmt: skip
    state = {}

    def create():
        created = a.alertingprovisioning.create_alertrule(rule)
        missing = [key for key in RULE_KEYS if key not in created]
        assert not missing, f"created rule lacks {missing}: {created!r}"
        assert created["provenance"] == "api", created
        state["uid"] = created["uid"]
        return f"uid {created['uid']}"

    check("alertingprovisioning.create_alertrule on A", create)

    def get_on_b():
        got = b.alertingprovisioning.get_alertrule(state["uid"])
        assert got["title"] == rule["title"] and got["for"] == "5m", got
        assert got["labels"] == {"team": "interop"}, got
        listed = [r["uid"] for r in b.alertingprovisioning.get_alertrules_all()]
        assert state["uid"] in listed, listed

    check("alertingprovisioning.get_alertrule and get_alertrules_all on B", get_on_b)

    def update_on_b():
        changed = dict(rule, title=f"Interop rule {suffix} v2")
        updated = b.alertingprovisioning.update_alertrule(state["uid"], changed)
        assert updated["title"].endswith("v2") and updated["provenance"] == "api", updated

    check("alertingprovisioning.update_alertrule on B", update_on_b)

    def update_without_provenance_refused():
        # Grafana refuses to move a rule from provenance 'api' to none.
        exc = raises(GrafanaClientError, lambda: a.alertingprovisioning.update_alertrule(state["uid"], rule, disable_provenance=True))
        return f"{exc.status_code}: {exc.message}"

    check("update_alertrule with disable_provenance on an api rule is refused", update_without_provenance_refused)

    def create_without_provenance():
        plain = dict(rule, title=f"Interop plain {suffix}")
        created = a.alertingprovisioning.create_alertrule(plain, disable_provenance=True)
        assert created.get("provenance", "") == "", created
        changed = dict(plain, title=f"Interop plain {suffix} v2")
        updated = b.alertingprovisioning.update_alertrule(created["uid"], changed, disable_provenance=True)
        assert updated.get("provenance", "") == "" and updated["title"].endswith("v2"), updated
        state["plain"] = created["uid"]

    check("create_alertrule and update_alertrule with disable_provenance", create_without_provenance)

    def get_group():
        got = b.alertingprovisioning.get_rule_group(folder_uid, group)
        assert got["title"] == group and got["folderUid"] == folder_uid, got
        assert got["interval"] == 60, got
        assert sorted(r["uid"] for r in got["rules"]) == sorted([state["uid"], state["plain"]]), got
        state["group"] = got
        return f"{len(got['rules'])} rules, interval {got['interval']}s"

    check("alertingprovisioning.get_rule_group on B", get_group)

    def put_group():
        body = dict(state["group"], interval=120)
        a.alertingprovisioning.update_rule_group(folder_uid, group, body)
        got = b.alertingprovisioning.get_rule_group(folder_uid, group)
        assert got["interval"] == 120 and len(got["rules"]) == 2, got

    check("alertingprovisioning.update_rule_group on A, read on B", put_group)

    def delete_on_b():
        b.alertingprovisioning.delete_alertrule(state["uid"])
        raises(GrafanaClientError, lambda: a.alertingprovisioning.get_alertrule(state["uid"]), status=404)
        b.alertingprovisioning.delete_alertrule(state["plain"])

    check("alertingprovisioning.delete_alertrule on B, then 404 on A", delete_on_b)

    done()


if __name__ == "__main__":
    main()
