"""A grafana-backup 1.4.x round trip between two Tandem clusters of two instances each.

Usage: grafana_backup.py SRC_A SRC_B DST_A DST_B ADMIN_PASSWORD GRAFANA_BACKUP_BIN WORKDIR

Seeds nested folders with permissions, dashboards with versions, a team with a member and
users through SRC_A; runs `grafana-backup save` against SRC_B (the other instance of the
same database); runs `grafana-backup restore` of that archive against the empty DST_A; then
compares what SRC_B and DST_B answer: folders with their parents and own permissions (users
and teams named by login and name), dashboards in their folders with their titles, teams,
their members, and users. Exits non-zero on any difference.

grafana-backup restores folder permissions and team members with the source's numeric user
and team ids, and creates users in the order its archive's files come out of the file
system, so on any server the ids line up only by chance (one CI run restored carol under
bob's id). As an operator restoring permissions with this tool must, the destination gets
the source's users and team first, under the source's ids (the seed places them above
any id a start can use up; the destination creates and deletes until each id matches);
grafana-backup's own creation of them is then refused as a duplicate, and everything else
is restored by the tool.
"""

import glob
import os
import subprocess
import sys

import admin_api  # scripts/interop/admin_api.py, beside this script

SRC_A, SRC_B, DST_A, DST_B, PASSWORD, BACKUP_BIN, WORKDIR = sys.argv[1:8]
AUTH = admin_api.basic(PASSWORD)


def call(base, method, path, body=None, expect=200):
    return admin_api.call(base, AUTH, method, path, body, expect)


LOGINS = ["bob", "carol"]
# Where the seeded ids start: above any id a cluster's start can have used up (a lost race
# to create the admin uses a PostgreSQL sequence value), so the destination can match them.
FIRST_USER_ID, FIRST_TEAM_ID = 10, 5


def placed(create, delete, what, at_least=None, exactly=None):
    """Creates `what` until its id is at least / exactly the one asked for, deleting the
    ones below (each attempt takes the next id of the sequence)."""
    for _ in range(50):
        made = create()
        if exactly is not None and made > exactly:
            sys.exit(f"{what} got id {made}, past {exactly}: the destination cannot line up")
        if made >= (exactly if exactly is not None else at_least):
            return made
        delete(made)
    sys.exit(f"{what}: no fitting id in 50 attempts")


def user_placed(base, login, **where):
    return placed(
        lambda: call(base, "POST", "/api/admin/users", {
            "login": login, "email": f"{login}@example.com", "password": f"{login}-password-1",
        })["id"],
        lambda made: call(base, "DELETE", f"/api/admin/users/{made}"),
        f"user {login}", **where)


def team_placed(base, name, **where):
    return placed(
        lambda: call(base, "POST", "/api/teams", {"name": name})["teamId"],
        lambda made: call(base, "DELETE", f"/api/teams/{made}"),
        f"team {name}", **where)


def prepare_destination(base, users, team):
    """The source's users and team under the source's ids (see above)."""
    for login in LOGINS:
        user_placed(base, login, exactly=users[login])
    team_placed(base, "ops", exactly=team)


def seed(base):
    users = {}
    at_least = FIRST_USER_ID
    for login in LOGINS:
        users[login] = user_placed(base, login, at_least=at_least)
        at_least = users[login] + 1
    team = team_placed(base, "ops", at_least=FIRST_TEAM_ID)
    call(base, "POST", f"/api/teams/{team}/members", {"userId": users["bob"]})
    call(base, "POST", "/api/folders", {"uid": "top", "title": "Top"})
    call(base, "POST", "/api/folders", {"uid": "sub", "title": "Sub", "parentUid": "top"})
    call(base, "POST", "/api/folders", {"uid": "deep", "title": "Deep", "parentUid": "sub"})
    call(base, "POST", "/api/folders", {"uid": "other", "title": "Other"})
    call(base, "POST", "/api/folders/top/permissions", {"items": [
        {"teamId": team, "permission": 2},
        {"userId": users["carol"], "permission": 4},
        {"role": "Viewer", "permission": 1},
    ]})
    call(base, "POST", "/api/folders/other/permissions", {"items": [
        {"userId": users["bob"], "permission": 1},
    ]})
    for uid, title, folder in [("d1", "In Sub", "sub"), ("d2", "At the root", ""),
                               ("d3", "Deep down", "deep")]:
        saved = call(base, "POST", "/api/dashboards/db", {
            "dashboard": {"uid": uid, "title": title, "panels": []}, "folderUid": folder,
        })
        for version in range(2, 4):
            saved = call(base, "POST", "/api/dashboards/db", {
                "dashboard": {"uid": uid, "title": title, "version": saved["version"],
                              "panels": [{"id": version, "type": "text"}]},
                "folderUid": folder,
            })
    return users, team


def backup(base, *args):
    env = dict(os.environ, GRAFANA_URL=base, GRAFANA_HEADERS=f"Authorization:{AUTH}",
               GRAFANA_ADMIN_ACCOUNT="admin", GRAFANA_ADMIN_PASSWORD=PASSWORD,
               BACKUP_DIR=os.path.join(WORKDIR, "backup"), DEBUG="false")
    done = subprocess.run([BACKUP_BIN, *args], env=env, cwd=WORKDIR, capture_output=True,
                          text=True, timeout=300)
    log = os.path.join(WORKDIR, f"grafana-backup-{args[0]}.log")
    with open(log, "w") as out:
        out.write(done.stdout + done.stderr)
    if done.returncode != 0:
        sys.exit(f"grafana-backup {' '.join(args)} exited {done.returncode}; see {log}:\n"
                 + (done.stdout + done.stderr)[-3000:])


def picture(base):
    """What the comparison looks at, with ids replaced by names."""
    logins = {u["id"]: u["login"] for u in call(base, "GET", "/api/users")}
    teams = call(base, "GET", "/api/teams/search")["teams"]
    team_names = {t["id"]: t["name"] for t in teams}
    folders = {}
    for hit in call(base, "GET", "/api/search?type=dash-folder"):
        folder = call(base, "GET", f"/api/folders/{hit['uid']}")
        own = sorted(
            (f"user:{logins.get(i['userId'], i['userId'])}" if i["userId"] else
             f"team:{team_names.get(i['teamId'], i['teamId'])}" if i["teamId"] else
             f"role:{i.get('role')}", i["permission"])
            for i in call(base, "GET", f"/api/folders/{hit['uid']}/permissions")
            if not i["inherited"] and i["userId"] != 1  # the admin who made them
        )
        folders[hit["uid"]] = (folder["title"], folder.get("parentUid"), own)
    dashboards = {}
    for hit in call(base, "GET", "/api/search?type=dash-db"):
        found = call(base, "GET", f"/api/dashboards/uid/{hit['uid']}")
        dashboards[hit["uid"]] = (found["dashboard"]["title"], found["meta"]["folderUid"],
                                  found["dashboard"].get("panels"))
    members = {
        t["name"]: sorted(m["login"] for m in call(base, "GET", f"/api/teams/{t['id']}/members")
                          if m["login"] != "admin")
        for t in teams
    }
    return {
        "folders": folders,
        "dashboards": dashboards,
        "teams": sorted(team_names.values()),
        "members": members,
        "users": sorted(logins.values()),
    }


def main():
    users, team = seed(SRC_A)
    source = picture(SRC_B)
    assert source["folders"]["deep"][1] == "sub", source["folders"]
    assert len(source["dashboards"]) == 3, source["dashboards"]
    backup(SRC_B, "save")
    archives = glob.glob(os.path.join(WORKDIR, "backup", "*.tar.gz"))
    if len(archives) != 1:
        sys.exit(f"expected one archive, found {archives}")
    print(f"grafana-backup: saved {os.path.basename(archives[0])} through the second instance")
    prepare_destination(DST_A, users, team)
    ids = lambda base: sorted((u["login"], u["id"]) for u in call(base, "GET", "/api/users"))
    teams = lambda base: sorted((t["name"], t["id"]) for t in call(base, "GET", "/api/teams/search")["teams"])
    if (ids(SRC_B), teams(SRC_B)) != (ids(DST_B), teams(DST_B)):
        sys.exit(f"the destination's ids do not line up: {ids(SRC_B)} {teams(SRC_B)} "
                 f"against {ids(DST_B)} {teams(DST_B)}")
    backup(DST_A, "restore", archives[0])
    restored = picture(DST_B)
    failed = False
    for part in source:
        if source[part] != restored[part]:
            failed = True
            print(f"grafana-backup: {part} differ after the round trip:\n"
                  f"  source:   {source[part]}\n  restored: {restored[part]}", file=sys.stderr)
    if failed:
        sys.exit(1)
    print(f"grafana-backup: restored through another cluster and compared: "
          f"{len(source['folders'])} folders with parents and permissions, "
          f"{len(source['dashboards'])} dashboards, {len(source['teams'])} team, "
          f"{len(source['users'])} users")


if __name__ == "__main__":
    main()
