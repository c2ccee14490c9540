#!/usr/bin/env python3
"""Interoperability check: the real `grafana-client` (5.x, from PyPI) against two Tandem
instances, A and B, that share one database, for data sources and queries.

A Prometheus data source pointing at a real Prometheus (which scrapes itself) is created on
one instance, read by uid, name and id on the other, health-checked, queried through
`/api/ds/query` with grafana-client's own query builder, updated, and deleted, each step
through the instance that did not make the previous change.

Usage: grafana_client_datasources.py URL_A URL_B ADMIN_PASSWORD PROMETHEUS_URL
(run by scripts/interop/run.sh, which starts the instances and the Prometheus).
"""

import secrets
import sys
import time

from checks import check, done, missing, raises
from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError

# The keys of GET /api/datasources/uid/:uid (COMPAT.md §6).
DETAIL_KEYS = (
    "id", "uid", "orgId", "name", "type", "typeLogoUrl", "access", "url", "user", "database",
    "basicAuth", "basicAuthUser", "withCredentials", "isDefault", "jsonData", "secureJsonFields",
    "version", "readOnly",
)  # fmt: skip


def main():
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    url_a, url_b, admin_password, prometheus_url = sys.argv[1:]
    suffix = secrets.token_hex(4)
    name = f"Interop Prometheus {suffix}"
    uid = f"interop-ds-{suffix}"
    secret = f"header-secret-{suffix}"
    a = GrafanaApi.from_url(url_a, credential=("admin", admin_password))
    b = GrafanaApi.from_url(url_b, credential=("admin", admin_password))
    ids = {}

    def create():
        created = a.datasource.create_datasource(
            {
                "name": name,
                "uid": uid,
                "type": "prometheus",
                "access": "proxy",
                "url": prometheus_url,
                "jsonData": {"httpMethod": "POST", "httpHeaderName1": "X-Interop"},
                "secureJsonData": {"httpHeaderValue1": secret},
            }
        )
        assert created.get("message") == "Datasource added", f"create gave {created!r}"
        assert created.get("name") == name and isinstance(created.get("id"), int), f"create gave {created!r}"
        assert secret not in repr(created), "the secret came back"
        ids["ds"] = created["id"]
        return f"id {created['id']}"

    check("datasource.create_datasource on A", create)

    def read_on_b():
        by_uid = b.datasource.get_datasource_by_uid(uid)
        absent = missing(by_uid, DETAIL_KEYS)
        assert not absent, f"the data source lacks {absent}: {by_uid!r}"
        assert by_uid["secureJsonFields"] == {"httpHeaderValue1": True}, by_uid["secureJsonFields"]
        assert secret not in repr(by_uid), "the secret came back"
        by_name = b.datasource.get_datasource_by_name(name)
        by_id = b.datasource.get_datasource_by_id(ids["ds"])
        assert by_name["uid"] == uid and by_id["uid"] == uid, f"{by_name!r} {by_id!r}"
        id_of = b.datasource.get_datasource_id_by_name(name)
        assert id_of == {"id": ids["ds"]}, f"get_datasource_id_by_name gave {id_of!r}"
        listed = {ds["uid"]: ds for ds in b.datasource.list_datasources()}
        assert uid in listed and listed[uid]["typeName"] == "Prometheus", f"list gave {listed!r}"
        return f"version {by_uid['version']}"

    check("get_datasource_by_uid/_by_name/_by_id, get_datasource_id_by_name, list_datasources on B", read_on_b)

    def health_on_b():
        answer = b.datasource.health(uid)
        assert answer == {"status": "OK", "message": "Successfully queried the Prometheus API."}, answer
        return answer["message"]

    check("datasource.health on B", health_on_b)

    def query_on_a():
        # grafana-client asks for the last 5 minutes at its default 30 s step, and the step
        # grid is aligned down, so the first sample shows at the next 30 s boundary: wait
        # for more than one step.
        deadline = time.monotonic() + 75
        while True:
            answer = a.datasource.smartquery(b.datasource.get_datasource_by_uid(uid), 'up{job="prometheus"}')
            frames = answer["results"]["test"].get("frames", [])
            if frames or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert answer["results"]["test"]["status"] == 200, answer
        assert frames, f"no frame in {answer!r}"
        fields = frames[0]["schema"]["fields"]
        assert [f["type"] for f in fields] == ["time", "number"], fields
        assert fields[1]["labels"].get("job") == "prometheus", fields[1]
        values = frames[0]["data"]["values"][1]
        assert values and all(v == 1 for v in values), values
        return f"{len(values)} points of up == 1"

    check("datasource.smartquery (POST /api/ds/query) on A", query_on_a)

    def failing_query():
        request = {
            "from": "now-5m",
            "to": "now",
            "queries": [
                {"refId": "A", "datasource": {"uid": uid}, "expr": "sum(", "range": True},
                {"refId": "B", "datasource": {"uid": uid}, "expr": "1+1", "instant": True, "range": False},
            ],
        }
        exc = raises(GrafanaClientError, lambda: b.client.POST("/ds/query", json=request), status=400)
        results = exc.response["results"]
        assert "error" in results["A"] and results["B"]["status"] == 200, results
        return results["A"]["error"][:60]

    check("a query with bad PromQL fails alone (400 with every result) on B", failing_query)

    def update_on_b():
        current = b.datasource.get_datasource_by_uid(uid)
        current["jsonData"]["timeInterval"] = "30s"
        updated = b.datasource.update_datasource_by_uid(uid, current)
        assert updated.get("message") == "Datasource updated", f"update gave {updated!r}"
        assert updated["datasource"]["version"] == current["version"] + 1, updated
        stale = dict(current, version=current["version"])
        raises(GrafanaClientError, lambda: a.datasource.update_datasource(ids["ds"], stale), status=409)
        seen = a.datasource.get_datasource_by_uid(uid)
        assert seen["jsonData"]["timeInterval"] == "30s", seen["jsonData"]
        assert seen["secureJsonFields"] == {"httpHeaderValue1": True}, "the secret is kept"
        return f"version {seen['version']}; a stale version gets 409"

    check("datasource.update_datasource_by_uid on B, stale update_datasource on A", update_on_b)

    def delete_on_a():
        answer = a.datasource.delete_datasource_by_uid(uid)
        assert answer.get("message") == "Data source deleted", answer
        raises(GrafanaClientError, lambda: b.datasource.get_datasource_by_uid(uid), status=404)

    check("datasource.delete_datasource_by_uid on A, gone on B (404)", delete_on_a)
    done()


if __name__ == "__main__":
    main()
