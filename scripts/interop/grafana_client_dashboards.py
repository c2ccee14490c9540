#!/usr/bin/env python3
"""Interoperability check: the real `grafana-client` (5.x, from PyPI) against two Tandem
instances, A and B, that share one database, for folders, dashboards, versions and search.

A folder is made on one instance, a dashboard is saved into it on the other, read back,
updated, saved stale, searched for, listed by version and deleted, each step through the
instance that did not make the previous change, so every check also checks that the
instances agree. Prints one line per check and `N passed, 0 failed` at the end; stops at the
first failure, prints it with `N passed, 1 failed` and exits 1.

Usage: grafana_client_dashboards.py URL_A URL_B ADMIN_PASSWORD
(run by scripts/interop/run.sh, which starts the instances).
"""

import secrets
import sys

from checks import check, done, missing, raises
from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError


# Every key of `meta` in GET /api/dashboards/uid/:uid (COMPAT.md §1).
META_KEYS = (
    "type", "canSave", "canEdit", "canAdmin", "canStar", "canDelete", "slug", "url", "expires",
    "created", "updated", "createdBy", "updatedBy", "version", "hasAcl", "isFolder", "folderId",
    "folderUid", "folderTitle", "folderUrl", "provisioned", "provisionedExternalId",
)  # fmt: skip
HIT_KEYS = ("id", "uid", "title", "uri", "url", "slug", "type", "tags", "isStarred", "sortMeta")
FOLDER_HIT_KEYS = ("folderId", "folderUid", "folderTitle", "folderUrl")
VERSION_KEYS = (
    "id", "dashboardId", "uid", "parentVersion", "restoredFrom", "version", "created", "createdBy", "message",
)  # fmt: skip


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    url_a, url_b, admin_password = sys.argv[1:]
    suffix = secrets.token_hex(4)
    folder_title = f"Interop Folder {suffix}"
    folder_uid = f"interop-f-{suffix}"
    title = f"Interop Dashboard {suffix}"
    uid = f"interop-d-{suffix}"
    root_title = f"Interop Root {suffix}"
    root_uid = f"interop-r-{suffix}"
    team_tag = f"team-{suffix}"
    env_tag = f"env-{suffix}"
    extra = {"kept": True, "note": f"unknown field {suffix}"}

    a = GrafanaApi.from_url(url_a, credential=("admin", admin_password))
    b = GrafanaApi.from_url(url_b, credential=("admin", admin_password))
    ids = {}

    # Folder.
    def create_folder():
        created = a.folder.create_folder(folder_title, uid=folder_uid)
        assert created.get("uid") == folder_uid, f"create_folder on A gave {created!r}"
        assert created.get("title") == folder_title, f"wrong title in {created!r}"
        assert isinstance(created.get("id"), int) and created["id"] > 0, f"no id in {created!r}"
        url = created.get("url", "")
        assert url.startswith(f"/dashboards/f/{folder_uid}/"), f"url is {url!r}"
        ids["folder"] = created["id"]
        return f"id {created['id']}, url {url}"

    check("folder.create_folder on A", create_folder)

    def folder_on_b():
        got = b.folder.get_folder(folder_uid)
        assert got.get("id") == ids["folder"] and got.get("title") == folder_title, f"get_folder on B gave {got!r}"
        listed = {f.get("uid"): f.get("title") for f in b.folder.get_all_folders()}
        assert listed.get(folder_uid) == folder_title, f"get_all_folders on B gave {listed!r}"

    check("folder.get_folder and get_all_folders on B", folder_on_b)

    # Save into the folder on B, read on A.
    def save_new():
        dashboard = {
            "uid": uid,
            "title": title,
            "tags": [team_tag, env_tag],
            "panels": [],
            "schemaVersion": 41,
            "interopExtra": extra,
        }
        saved = b.dashboard.update_dashboard({"dashboard": dashboard, "folderUid": folder_uid, "overwrite": False})
        absent = missing(saved, ("status", "id", "uid", "url", "version", "slug", "folderUid"))
        assert not absent, f"the save answer lacks {absent}: {saved!r}"
        assert saved["status"] == "success", f"status is {saved['status']!r}"
        assert saved["uid"] == uid and saved["version"] == 1, f"save on B gave {saved!r}"
        assert saved["folderUid"] == folder_uid, f"folderUid is {saved['folderUid']!r}"
        assert isinstance(saved["id"], int) and saved["id"] > 0, f"bad id in {saved!r}"
        ids["dashboard"], ids["url"], ids["slug"] = saved["id"], saved["url"], saved["slug"]
        return f"id {saved['id']}, version 1, url {saved['url']}"

    check("dashboard.update_dashboard on B into the folder (tags, unknown field, overwrite False)", save_new)

    def read_on_a():
        got = a.dashboard.get_dashboard(uid)
        dashboard, meta = got.get("dashboard"), got.get("meta")
        assert isinstance(dashboard, dict) and isinstance(meta, dict), f"get_dashboard on A gave {got!r}"
        absent = missing(meta, META_KEYS)
        assert not absent, f"meta lacks {absent}: {meta!r}"
        assert meta["type"] == "db" and meta["isFolder"] is False, f"meta type/isFolder: {meta!r}"
        assert meta["version"] == 1, f"meta.version is {meta['version']!r}"
        assert meta["folderUid"] == folder_uid and meta["folderTitle"] == folder_title, f"meta folder: {meta!r}"
        assert meta["folderId"] == ids["folder"], f"meta.folderId is {meta['folderId']!r}, folder id {ids['folder']}"
        assert meta["url"] == ids["url"] and meta["slug"] == ids["slug"], f"meta url/slug: {meta!r}"
        assert meta["provisioned"] is False, f"meta.provisioned is {meta['provisioned']!r}"
        assert meta["createdBy"] == "admin" and meta["updatedBy"] == "admin", f"meta created/updatedBy: {meta!r}"
        assert dashboard.get("id") == ids["dashboard"], f"dashboard.id is {dashboard.get('id')!r}"
        assert dashboard.get("version") == 1, f"dashboard.version is {dashboard.get('version')!r}"
        assert dashboard.get("uid") == uid and dashboard.get("title") == title, f"dashboard: {dashboard!r}"
        assert dashboard.get("tags") == [team_tag, env_tag], f"dashboard.tags is {dashboard.get('tags')!r}"
        assert dashboard.get("interopExtra") == extra, f"unknown field lost: {dashboard!r}"
        ids["v1"] = dashboard
        return f"{len(META_KEYS)} meta keys"

    check("dashboard.get_dashboard on A: every meta key, dashboard.id/version, unknown field kept", read_on_a)

    # Update with the right version on A, then a stale save on B.
    def update_on_a():
        dashboard = dict(ids["v1"], description=f"updated {suffix}")  # posts back what it read
        saved = a.dashboard.update_dashboard(
            {"dashboard": dashboard, "folderUid": folder_uid, "overwrite": False, "message": f"second {suffix}"}
        )
        assert saved.get("status") == "success" and saved.get("version") == 2, f"update on A gave {saved!r}"
        assert saved.get("id") == ids["dashboard"] and saved.get("uid") == uid, f"update on A gave {saved!r}"
        got = b.dashboard.get_dashboard(uid)
        assert got["dashboard"].get("version") == 2, f"dashboard.version on B is {got['dashboard'].get('version')!r}"
        assert got["meta"].get("version") == 2, f"meta.version on B is {got['meta'].get('version')!r}"
        assert got["dashboard"].get("description") == f"updated {suffix}", f"change lost: {got['dashboard']!r}"
        assert got["dashboard"].get("interopExtra") == extra, f"unknown field lost: {got['dashboard']!r}"
        assert got["meta"].get("folderUid") == folder_uid, f"folder lost: {got['meta']!r}"

    check("dashboard.update_dashboard on A with version 1 makes version 2, seen on B", update_on_a)

    def stale_on_b():
        stale = dict(ids["v1"], description=f"stale {suffix}")  # still version 1
        exc = raises(
            GrafanaClientError,
            lambda: b.dashboard.update_dashboard({"dashboard": stale, "folderUid": folder_uid, "overwrite": False}),
            status=412,
        )
        body = exc.response
        assert isinstance(body, dict) and body.get("status") == "version-mismatch", f"412 body is {body!r}"
        got = a.dashboard.get_dashboard(uid)
        assert got["dashboard"].get("version") == 2, f"after the stale save A has {got['dashboard']!r}"
        assert got["dashboard"].get("description") == f"updated {suffix}", "the stale save changed the dashboard"
        return f"{exc.status_code} {body.get('status')}: {body.get('message')}"

    check("a stale save (version 1) on B raises GrafanaClientError 412 version-mismatch", stale_on_b)

    # A dashboard at the root, for search.
    def save_root():
        dashboard = {"uid": root_uid, "title": root_title, "tags": [team_tag], "panels": []}
        saved = a.dashboard.update_dashboard({"dashboard": dashboard, "overwrite": False})
        assert saved.get("status") == "success" and saved.get("version") == 1, f"save on A gave {saved!r}"
        got = b.dashboard.get_dashboard(root_uid)
        meta = got["meta"]
        absent = missing(meta, META_KEYS)
        assert not absent, f"meta lacks {absent}: {meta!r}"
        assert meta["folderTitle"] == "General", f"meta.folderTitle at the root is {meta['folderTitle']!r}"
        assert not meta["folderUid"], f"meta.folderUid at the root is {meta['folderUid']!r}"

    check("dashboard.update_dashboard at the root on A, meta.folderTitle 'General' on B", save_root)

    # Search on A.
    def search_by_query():
        hits = a.search.search_dashboards(query=title.upper())
        assert [h.get("uid") for h in hits] == [uid], f"search_dashboards(query={title.upper()!r}) gave {hits!r}"
        hit = hits[0]
        absent = missing(hit, HIT_KEYS + FOLDER_HIT_KEYS)
        assert not absent, f"the hit lacks {absent}: {hit!r}"
        assert hit["type"] == "dash-db" and hit["id"] == ids["dashboard"], f"hit: {hit!r}"
        assert hit["folderUid"] == folder_uid and hit["folderTitle"] == folder_title, f"hit folder: {hit!r}"
        assert hit["folderId"] == ids["folder"], f"hit.folderId is {hit['folderId']!r}"
        assert sorted(hit["tags"]) == sorted([team_tag, env_tag]), f"hit.tags is {hit['tags']!r}"
        assert hit["url"] == ids["url"], f"hit.url is {hit['url']!r}, the save said {ids['url']!r}"

    check("search.search_dashboards(query, other case) on A: the dashboard with folderUid/folderTitle", search_by_query)

    def search_by_tag():
        both = a.search.search_dashboards(tag=[team_tag, env_tag])
        assert [h.get("uid") for h in both] == [uid], f"search_dashboards(tag=[team, env]) gave {both!r}"
        assert both[0].get("folderUid") == folder_uid, f"hit: {both[0]!r}"
        team = a.search.search_dashboards(tag=team_tag)
        assert [h.get("uid") for h in team] == [uid, root_uid], f"search_dashboards(tag=team) gave {team!r}"

    check("search.search_dashboards(tag) on A: tags ANDed, titles in order", search_by_tag)

    def root_hits():
        hits = a.search.search_dashboards(query=suffix.upper())
        got = [(h.get("type"), h.get("uid")) for h in hits]
        want = [("dash-folder", folder_uid), ("dash-db", uid), ("dash-db", root_uid)]
        assert got == want, f"search_dashboards(query={suffix.upper()!r}) gave {got!r}, expected {want!r}"
        for hit in hits:
            absent = missing(hit, HIT_KEYS)
            assert not absent, f"the hit lacks {absent}: {hit!r}"
        at_root = [hits[0], hits[2]]
        for hit in at_root:
            present = [key for key in hit if key.startswith("folder")]
            assert not present, f"root item {hit['uid']} has {present}: {hit!r}"
        assert hits[1].get("folderUid") == folder_uid, f"folder item lost its folderUid: {hits[1]!r}"

    check("search.search_dashboards on A: folder first, root items have no folder* keys", root_hits)

    def tags_on_b():
        terms = {t.get("term"): t.get("count") for t in b.dashboard.get_dashboards_tags()}
        assert terms.get(team_tag) == 2 and terms.get(env_tag) == 1, f"get_dashboards_tags on B gave {terms!r}"

    check("dashboard.get_dashboards_tags on B counts the tags", tags_on_b)

    # Versions.
    def versions_by_uid():
        answer = b.dashboard_versions.get_dashboard_versions_by_uid(uid)
        assert isinstance(answer, dict) and isinstance(answer.get("versions"), list), f"versions gave {answer!r}"
        assert "continueToken" in answer, f"no continueToken in {answer!r}"
        versions = answer["versions"]
        assert [v.get("version") for v in versions] == [2, 1], f"versions, newest first: {versions!r}"
        for v in versions:
            absent = missing(v, VERSION_KEYS)
            assert not absent, f"the version lacks {absent}: {v!r}"
            assert v["dashboardId"] == ids["dashboard"] and v["uid"] == uid, f"version: {v!r}"
        assert versions[0]["message"] == f"second {suffix}", f"versions[0].message is {versions[0]['message']!r}"
        assert versions[0]["parentVersion"] == 1, f"versions[0].parentVersion is {versions[0]['parentVersion']!r}"
        assert versions[0]["createdBy"] == "admin", f"versions[0].createdBy is {versions[0]['createdBy']!r}"
        return "versions 2, 1"

    check("dashboard_versions.get_dashboard_versions_by_uid on B: 2 versions, newest first", versions_by_uid)

    def versions_by_id():
        versions = a.dashboard_versions.get_dashboard_versions_by_id(ids["dashboard"])
        assert isinstance(versions, list), f"get_dashboard_versions_by_id on A gave {versions!r}"
        assert [v.get("version") for v in versions] == [2, 1], f"versions by id: {versions!r}"
        assert all(v.get("dashboardId") == ids["dashboard"] for v in versions), f"dashboardId: {versions!r}"
        one = a.dashboard_versions.get_dashboard_version_by_uid(uid, 1)
        data = one.get("data")
        assert one.get("version") == 1 and isinstance(data, dict), f"get_dashboard_version_by_uid(1) gave {one!r}"
        assert data.get("title") == title and "description" not in data, f"version 1's data: {data!r}"
        assert data.get("interopExtra") == extra, f"version 1 lost the unknown field: {data!r}"

    check("get_dashboard_versions_by_id (plain list) and get_dashboard_version_by_uid on A", versions_by_id)

    # Deletions, each seen by the other instance.
    def delete_on_b():
        answer = b.dashboard.delete_dashboard(uid)
        assert answer.get("title") == title and answer.get("uid") == uid, f"delete_dashboard on B gave {answer!r}"
        assert answer.get("message") == f"Dashboard {title} deleted", f"message is {answer.get('message')!r}"
        exc = raises(GrafanaClientError, lambda: a.dashboard.get_dashboard(uid), status=404)
        assert isinstance(exc.response, dict) and exc.response.get("message") == "Dashboard not found", (
            f"404 body is {exc.response!r}"
        )
        left = [h.get("uid") for h in a.search.search_dashboards(query=suffix)]
        assert left == [folder_uid, root_uid], f"search on A after the delete gave {left!r}"
        return exc.message

    check("dashboard.delete_dashboard on B, get_dashboard on A raises GrafanaClientError 404", delete_on_b)

    def delete_root():
        a.dashboard.delete_dashboard(root_uid)
        raises(GrafanaClientError, lambda: b.dashboard.get_dashboard(root_uid), status=404)

    check("dashboard.delete_dashboard at the root on A, gone on B (404)", delete_root)

    def delete_folder():
        answer = b.folder.delete_folder(folder_uid)
        assert isinstance(answer, dict) and answer.get("message") == "Folder deleted", f"delete_folder gave {answer!r}"
        raises(GrafanaClientError, lambda: a.folder.get_folder(folder_uid), status=404)
        assert a.search.search_dashboards(query=suffix) == [], "search on A still finds something"

    check("folder.delete_folder on B, get_folder on A raises GrafanaClientError 404", delete_folder)

    done()


if __name__ == "__main__":
    main()
