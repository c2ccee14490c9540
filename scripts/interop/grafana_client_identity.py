#!/usr/bin/env python3
"""Interoperability check: the real `grafana-client` (5.x, from PyPI) against two Tandem
instances, A and B, that share one database.

Users, orgs, memberships, teams, service accounts and their tokens are created through one
instance and read, changed or used through the other, so every check also checks that the
instances agree. Prints one line per check and `N passed, 0 failed` at the end; stops at the
first failure, prints it with `N passed, 1 failed` and exits 1.

Usage: grafana_client_identity.py URL_A URL_B ADMIN_PASSWORD
(run by scripts/interop/run.sh, which starts the instances).
"""

import secrets
import sys

from checks import check, done, raises
from grafana_client import GrafanaApi, TokenAuth
from grafana_client.client import GrafanaClientError, GrafanaUnauthorizedError
from verlib2 import Version


def main():
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    url_a, url_b, admin_password = sys.argv[1:]
    suffix = secrets.token_hex(4)
    login = f"interop-{suffix}"
    email = f"{login}@example.org"
    password = "first-" + secrets.token_hex(8)
    new_password = "second-" + secrets.token_hex(8)
    org_name = f"Interop Org {suffix}"
    team_name = f"interop-team-{suffix}"
    sa_name = f"interop-sa-{suffix}"

    a = GrafanaApi.from_url(url_a, credential=("admin", admin_password))
    b = GrafanaApi.from_url(url_b, credential=("admin", admin_password))
    ids = {}

    # Health and version: the client reads both from /api/frontend/settings' buildInfo.
    def health(api, name):
        def run():
            info = api.health.check()
            assert isinstance(info, dict), f"{name}: buildInfo is not an object: {info!r}"
            assert info.get("version"), f"{name}: buildInfo has no version: {info!r}"
            return f"version {info['version']}"

        return run

    check("health.check() on A", health(a, "A"))
    check("health.check() on B", health(b, "B"))

    def version():
        va, vb = a.version, b.version
        assert va == vb, f"A reports {va}, B reports {vb}"
        assert a.get_version() >= Version("9.0.0"), f"version {va} is too old for the client's modern paths"
        return f"version {va}"

    check("version is read and the same on A and B", version)

    # Users.
    def create_user():
        created = a.admin.create_user({"name": "Interop User", "email": email, "login": login, "password": password})
        assert isinstance(created.get("id"), int) and created["id"] > 0, f"no id in {created!r}"
        ids["user"] = created["id"]
        return f"id {created['id']}"

    check("admin.create_user on A", create_user)

    def find_user_b():
        by_login = b.users.find_user(login)
        assert by_login["id"] == ids["user"], f"find_user({login!r}) on B gave {by_login!r}"
        assert by_login["email"] == email and by_login["login"] == login, f"wrong profile {by_login!r}"
        by_email = b.users.find_user(email)
        assert by_email["id"] == ids["user"], f"find_user({email!r}) on B gave {by_email!r}"
        got = b.users.get_user(ids["user"])
        assert got["login"] == login, f"get_user on B gave {got!r}"

    check("users.find_user by login and email, users.get_user on B", find_user_b)

    def search_users_b():
        everyone = b.users.search_users()  # no page: the client pages until an empty page
        logins = [u.get("login") for u in everyone]
        assert login in logins and "admin" in logins, f"search_users() on B gave {logins!r}"
        assert len(logins) == len(set(logins)), f"search_users() repeated users: {logins!r}"
        matching = b.users.search_users(query=login)
        assert [u.get("login") for u in matching] == [login], f"search_users(query) on B gave {matching!r}"
        one_page = b.users.search_users(page=1, perpage=1)
        assert len(one_page) == 1, f"search_users(page=1, perpage=1) gave {len(one_page)} users"
        return f"{len(everyone)} users"

    check("users.search_users() on B terminates and lists the user", search_users_b)

    def duplicate_user():
        exc = raises(
            GrafanaClientError,
            lambda: a.admin.create_user({"name": "Again", "email": email, "login": login, "password": password}),
            status=412,
        )
        return exc.message

    check("duplicate admin.create_user on A raises GrafanaClientError 412", duplicate_user)

    # Orgs and memberships.
    def create_org():
        created = b.organization.create_organization({"name": org_name})
        assert isinstance(created.get("orgId"), int), f"no orgId in {created!r}"
        ids["org"] = created["orgId"]
        return f"id {created['orgId']}"

    check("organization.create_organization on B", create_org)

    def list_org_a():
        orgs = a.organizations.list_organization()
        by_name = {o["name"]: o["id"] for o in orgs}
        assert by_name.get(org_name) == ids["org"], f"list_organization on A gave {orgs!r}"
        found = a.organization.find_organization(org_name)
        assert found["id"] == ids["org"] and found["name"] == org_name, f"find_organization on A gave {found!r}"

    check("organizations.list_organization and find_organization on A", list_org_a)

    def role_in_org(api, want):
        members = api.organizations.organization_user_list(ids["org"])
        mine = [m for m in members if m.get("login") == login]
        assert len(mine) == 1, f"user not listed once in the org: {members!r}"
        assert mine[0]["role"] == want, f"role is {mine[0]['role']!r}, expected {want!r}"
        assert mine[0]["userId"] == ids["user"], f"wrong userId in {mine[0]!r}"

    def add_to_org():
        a.organizations.organization_user_add(ids["org"], {"loginOrEmail": login, "role": "Viewer"})
        role_in_org(b, "Viewer")

    check("organizations.organization_user_add on A, seen as Viewer on B", add_to_org)

    def change_role():
        b.organizations.organization_user_update(ids["org"], ids["user"], "Editor")
        role_in_org(a, "Editor")
        orgs = b.users.get_user_organisations(ids["user"])
        roles = {o["name"]: o["role"] for o in orgs}
        assert roles.get(org_name) == "Editor", f"get_user_organisations on B gave {orgs!r}"

    check("organizations.organization_user_update on B, Editor on A and in users.get_user_organisations", change_role)

    def duplicate_member():
        exc = raises(
            GrafanaClientError,
            lambda: b.organizations.organization_user_add(ids["org"], {"loginOrEmail": login, "role": "Viewer"}),
            status=409,
        )
        return exc.message

    check("adding the member again on B raises GrafanaClientError 409", duplicate_member)

    # Teams (in the admin's current org, Main Org., where the new user is a Viewer).
    def create_team():
        created = a.teams.add_team({"name": team_name, "email": f"{team_name}@example.org"})
        assert isinstance(created.get("teamId"), int), f"no teamId in {created!r}"
        ids["team"] = created["teamId"]
        return f"id {created['teamId']}"

    check("teams.add_team on A", create_team)

    def search_team_b():
        found = b.teams.search_teams(query=team_name)  # no page: pages until a short page
        assert [t["id"] for t in found] == [ids["team"]], f"search_teams on B gave {found!r}"
        by_name = b.teams.get_team_by_name(team_name)
        assert [t["id"] for t in by_name] == [ids["team"]], f"get_team_by_name on B gave {by_name!r}"
        team = b.teams.get_team(ids["team"])
        assert team["name"] == team_name, f"get_team on B gave {team!r}"

    check("teams.search_teams, get_team_by_name and get_team on B", search_team_b)

    def add_member():
        # As in Grafana, the person who created the team (admin) is its first member.
        before = [m.get("login") for m in b.teams.get_team_members(ids["team"])]
        assert before == ["admin"], f"get_team_members on B before adding gave {before!r}"
        b.teams.add_team_member(ids["team"], ids["user"])
        members = a.teams.get_team_members(ids["team"])
        logins = sorted(m.get("login") for m in members)
        assert logins == sorted(["admin", login]), f"get_team_members on A gave {members!r}"
        mine = [m for m in members if m.get("login") == login][0]
        assert mine.get("userId") == ids["user"], f"wrong userId in {mine!r}"
        team = a.teams.get_team(ids["team"])
        assert team.get("memberCount") == 2, f"memberCount on A is {team.get('memberCount')!r}"

    check("teams.add_team_member on B, listed with the creator by get_team_members on A", add_member)

    # Service accounts and their tokens.
    def create_sa():
        created = b.serviceaccount.create({"name": sa_name, "role": "Viewer"})
        assert isinstance(created.get("id"), int), f"no id in {created!r}"
        assert created.get("role") == "Viewer", f"role is {created.get('role')!r}"
        ids["sa"] = created["id"]
        return f"id {created['id']}, login {created.get('login')}"

    check("serviceaccount.create on B", create_sa)

    def find_sa_a():
        found = a.serviceaccount.search_one(sa_name)
        assert found["id"] == ids["sa"], f"search_one on A gave {found!r}"
        got = a.serviceaccount.get(ids["sa"])
        assert got["name"] == sa_name, f"get on A gave {got!r}"

    check("serviceaccount.search_one and get on A", find_sa_a)

    def create_token():
        created = a.serviceaccount.create_token(ids["sa"], {"name": "interop-token"})
        assert created.get("key", "").startswith("glsa_"), f"no glsa_ key in {created!r}"
        ids["token"], ids["key"] = created["id"], created["key"]
        tokens = b.serviceaccount.get_tokens(ids["sa"])
        assert [t["id"] for t in tokens] == [ids["token"]], f"get_tokens on B gave {tokens!r}"
        return f"token id {created['id']}"

    check("serviceaccount.create_token on A, listed by get_tokens on B", create_token)

    def use_token():
        seen = []
        for label, api in (
            ("string credential on B", GrafanaApi.from_url(url_b, credential=ids["key"])),
            ("TokenAuth on A", GrafanaApi.from_url(url_a, credential=TokenAuth(ids["key"]))),
        ):
            org = api.organization.get_current_organization()
            assert org.get("id") == 1, f"{label}: get_current_organization gave {org!r}"
            seen.append(org.get("name"))
        return f"org {seen[0]!r}"

    check("the token acts as the service account: organization.get_current_organization", use_token)

    def token_is_viewer():
        sa_client = GrafanaApi.from_url(url_b, credential=ids["key"])
        exc = raises(GrafanaClientError, lambda: sa_client.teams.add_team({"name": f"{team_name}-sa"}), status=403)
        return exc.message

    check("the Viewer token may not create a team (GrafanaClientError 403)", token_is_viewer)

    # The user's own client.
    def user_client():
        me = GrafanaApi.from_url(url_a, credential=(login, password))
        who = me.user.get_actual_user()
        assert who["id"] == ids["user"] and who["login"] == login, f"get_actual_user on A gave {who!r}"
        orgs = {o["name"]: o["role"] for o in me.user.get_actual_user_organisations()}
        assert orgs.get(org_name) == "Editor", f"get_actual_user_organisations gave {orgs!r}"
        me.user.change_actual_user_password(password, new_password)

    check("the user's client on A: get_actual_user, change_actual_user_password", user_client)

    def new_password_works():
        me = GrafanaApi.from_url(url_b, credential=(login, new_password))
        who = me.user.get_actual_user()
        assert who["login"] == login, f"get_actual_user on B gave {who!r}"
        old = GrafanaApi.from_url(url_b, credential=(login, password))
        raises(GrafanaUnauthorizedError, old.user.get_actual_user)

    check("on B the new password logs in and the old one raises GrafanaUnauthorizedError", new_password_works)

    # Deletions, each seen by the other instance.
    def delete_token():
        b.serviceaccount.delete_token(ids["sa"], ids["token"])
        for url in (url_a, url_b):
            stale = GrafanaApi.from_url(url, credential=ids["key"])
            raises(GrafanaUnauthorizedError, stale.organization.get_current_organization)
        tokens = a.serviceaccount.get_tokens(ids["sa"])
        assert tokens == [], f"get_tokens on A after the delete gave {tokens!r}"

    check("serviceaccount.delete_token on B: the key raises GrafanaUnauthorizedError on A and B", delete_token)

    def delete_sa():
        a.serviceaccount.delete(ids["sa"])
        raises(GrafanaClientError, lambda: b.serviceaccount.get(ids["sa"]), status=404)

    check("serviceaccount.delete on A, gone on B (404)", delete_sa)

    def delete_team():
        b.teams.delete_team(ids["team"])
        raises(GrafanaClientError, lambda: a.teams.get_team(ids["team"]), status=404)
        assert a.teams.search_teams(query=team_name) == [], "search_teams on A still finds the team"

    check("teams.delete_team on B, gone on A (404)", delete_team)

    def delete_user():
        a.admin.delete_user(ids["user"])
        raises(GrafanaClientError, lambda: b.users.find_user(login), status=404)
        gone = GrafanaApi.from_url(url_b, credential=(login, new_password))
        raises(GrafanaUnauthorizedError, gone.user.get_actual_user)

    check("admin.delete_user on A, gone on B (404, and its login fails)", delete_user)

    def delete_org():
        b.organizations.delete_organization(ids["org"])
        names = [o["name"] for o in a.organizations.list_organization()]
        assert org_name not in names, f"list_organization on A still lists it: {names!r}"
        raises(GrafanaClientError, lambda: a.organization.find_organization(org_name), status=404)

    check("organizations.delete_organization on B, gone on A", delete_org)

    done()


if __name__ == "__main__":
    main()
