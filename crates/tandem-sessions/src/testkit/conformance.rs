//! The conformance suite of [`SessionStore`].
//!
//! Each function takes two or more handles on one shared store, standing for instances of a
//! cluster: it writes through one handle and reads through another, and panics when the
//! implementation breaks a promise of the trait's documentation.
//! The functions use names of their own, so they can run one after another on one store;
//! [`all`] runs them all.
//! `SqlSessionStore` runs the suite on SQLite, PostgreSQL and MySQL; another implementation
//! shows it is a drop-in replacement by passing it too.
//!
//! Times go through the store at millisecond precision, as the SQL schema keeps them, and
//! the suite expects them back exactly.

use std::fmt;
use std::sync::Arc;

use time::{Duration, OffsetDateTime};
use tokio::sync::Barrier;

use crate::{
    Error, NewUser, Org, OrgId, OrgUser, Page, Paging, Result, Role, Session, SessionStore, Team,
    TeamId, TokenId, User, UserFilter, UserId, UserUpdate, hash_session_token,
};

/// Runs every function of the suite, one after another, on the same handles.
pub async fn all(stores: Vec<Arc<dyn SessionStore>>) {
    orgs(stores.clone()).await;
    users(stores.clone()).await;
    user_search(stores.clone()).await;
    membership(stores.clone()).await;
    teams(stores.clone()).await;
    api_keys(stores.clone()).await;
    sessions(stores.clone()).await;
    concurrent_rotation(stores.clone()).await;
    login_attempts(stores.clone()).await;
    last_org_admin(stores.clone()).await;
    last_admin(stores).await;
}

/// An org never loses its last Admin: demoting or removing it is refused, and two Admins
/// demoting (or removing) each other at the same moment through two handles leave exactly
/// one Admin.
pub async fn last_org_admin(stores: Vec<Arc<dyn SessionStore>>) {
    let (a, b) = two(&stores);
    let first = a
        .create_user(person("org-admin-first", OrgId(1), Role::Viewer))
        .await
        .expect("create_user");
    let second = a
        .create_user(person("org-admin-second", OrgId(1), Role::Viewer))
        .await
        .expect("create_user");
    let org = a
        .create_org("Last Admin Org", Some(first.id))
        .await
        .expect("create_org")
        .id;
    let refused = b.set_org_role(org, first.id, Role::Editor).await;
    assert!(
        matches!(refused, Err(Error::InvalidInput(_))),
        "demoting the last org Admin is refused: {refused:?}"
    );
    let refused = b.remove_org_user(org, first.id).await;
    assert!(
        matches!(refused, Err(Error::InvalidInput(_))),
        "removing the last org Admin is refused: {refused:?}"
    );
    assert_eq!(
        a.org_role(org, first.id).await.expect("org_role"),
        Some(Role::Admin)
    );
    b.set_org_role(org, first.id, Role::Admin)
        .await
        .expect("an Admin may stay Admin");

    a.add_org_user(org, second.id, Role::Admin)
        .await
        .expect("add_org_user");
    for round in 0..5 {
        let (x, y) = if round % 2 == 0 {
            tokio::join!(
                a.set_org_role(org, first.id, Role::Viewer),
                b.set_org_role(org, second.id, Role::Editor)
            )
        } else {
            tokio::join!(
                a.remove_org_user(org, first.id),
                b.remove_org_user(org, second.id)
            )
        };
        assert!(
            x.is_ok() != y.is_ok(),
            "round {round}: exactly one of two simultaneous changes wins: {x:?} {y:?}"
        );
        let mut admins = 0;
        for id in [first.id, second.id] {
            admins +=
                usize::from(a.org_role(org, id).await.expect("org_role") == Some(Role::Admin));
        }
        assert_eq!(admins, 1, "round {round}: one Admin left");
        // Back to two Admins for the next round.
        for id in [first.id, second.id] {
            match a.org_role(org, id).await.expect("org_role") {
                Some(Role::Admin) => {}
                Some(_) => a.set_org_role(org, id, Role::Admin).await.expect("promote"),
                None => a.add_org_user(org, id, Role::Admin).await.expect("re-add"),
            }
        }
    }
    a.delete_org(org).await.expect("delete_org");
}

/// The last server admin cannot be demoted, and two admins demoting each other at the same
/// moment through two handles leave exactly one admin. Demotes every other admin of the
/// store first, so it runs last in [`all`].
pub async fn last_admin(stores: Vec<Arc<dyn SessionStore>>) {
    let (a, b) = two(&stores);
    let mut first = person("last-admin-first", OrgId(1), Role::Viewer);
    first.is_admin = true;
    let first = a.create_user(first).await.expect("create_user");
    let mut paging = Paging::new(1, 500);
    loop {
        let page = a
            .search_users(filter(None, None, false), paging)
            .await
            .expect("search_users");
        for user in page
            .items
            .iter()
            .filter(|user| user.is_admin && user.id != first.id)
        {
            a.set_server_admin(user.id, false)
                .await
                .expect("demote another admin");
        }
        if (page.items.len() as u64) < paging.per_page {
            break;
        }
        paging.page += 1;
    }
    let refused = b.set_server_admin(first.id, false).await;
    assert!(
        matches!(refused, Err(Error::InvalidInput(_))),
        "demoting the last server admin is refused: {refused:?}"
    );
    assert!(
        a.get_user(first.id)
            .await
            .expect("get_user")
            .expect("user")
            .is_admin,
        "still an admin"
    );
    a.set_server_admin(first.id, true)
        .await
        .expect("promoting an admin again is fine");

    let mut second = person("last-admin-second", OrgId(1), Role::Viewer);
    second.is_admin = true;
    let second = b.create_user(second).await.expect("create_user");
    for round in 0..5 {
        let (x, y) = tokio::join!(
            a.set_server_admin(first.id, false),
            b.set_server_admin(second.id, false)
        );
        assert!(
            x.is_ok() != y.is_ok(),
            "round {round}: exactly one of two simultaneous demotions wins: {x:?} {y:?}"
        );
        let mut still = 0;
        for id in [first.id, second.id] {
            still += usize::from(
                a.get_user(id)
                    .await
                    .expect("get_user")
                    .expect("user")
                    .is_admin,
            );
        }
        assert_eq!(still, 1, "round {round}: one admin is left");
        a.set_server_admin(first.id, true).await.expect("promote");
        b.set_server_admin(second.id, true).await.expect("promote");
    }
    a.delete_user(second.id).await.expect("delete_user");
}

/// Org 1, "Main Org.", exists from the start. Orgs are created (with an optional admin),
/// read by id and by name, searched case-insensitively by name with paging, renamed, and
/// deleted with their memberships, teams and keys. A taken name is a conflict; an unknown
/// id is not found.
pub async fn orgs(stores: Vec<Arc<dyn SessionStore>>) {
    let (a, b) = two(&stores);
    for store in &stores {
        let main = store
            .get_org(OrgId(1))
            .await
            .expect("get_org")
            .expect("org 1 exists in a new store");
        assert_eq!(main.name, "Main Org.", "org 1 is Grafana's \"Main Org.\"");
        let by_name = store
            .get_org_by_name("Main Org.")
            .await
            .expect("get_org_by_name");
        assert_eq!(
            by_name.map(|org| org.id),
            Some(OrgId(1)),
            "\"Main Org.\" is found by name"
        );
    }
    assert_conflict(
        a.create_org("Main Org.", None).await,
        "creating a second \"Main Org.\"",
    );

    let alpha = a.create_org("orgs-alpha", None).await.expect("create_org");
    assert_eq!(alpha.name, "orgs-alpha", "create_org returns the org");
    assert_ne!(alpha.id, OrgId(1), "a new org gets an id of its own");
    assert_eq!(
        b.get_org(alpha.id).await.expect("get_org"),
        Some(alpha.clone()),
        "another instance reads the org by id as it was created"
    );
    assert_eq!(
        b.get_org_by_name("orgs-alpha")
            .await
            .expect("get_org_by_name"),
        Some(alpha.clone()),
        "another instance reads the org by name as it was created"
    );
    assert_eq!(
        b.get_org(UNKNOWN_ORG).await.expect("get_org"),
        None,
        "an unknown org id"
    );
    assert_eq!(
        b.get_org_by_name("orgs-missing")
            .await
            .expect("get_org_by_name"),
        None,
        "an unknown org name"
    );
    assert_conflict(
        b.create_org("orgs-alpha", None).await,
        "creating an org with a taken name through another instance",
    );

    let owner = a
        .create_user(person("orgs-owner", OrgId(1), Role::Viewer))
        .await
        .expect("create_user");
    let owned = b
        .create_org("orgs-owned", Some(owner.id))
        .await
        .expect("create_org with an admin");
    assert_eq!(
        a.org_role(owned.id, owner.id).await.expect("org_role"),
        Some(Role::Admin),
        "the admin given to create_org is an Admin of the new org"
    );
    assert_not_found(
        a.create_org("orgs-orphan", Some(UNKNOWN_USER)).await,
        "create_org with an unknown admin",
    );
    assert_eq!(
        b.get_org_by_name("orgs-orphan")
            .await
            .expect("get_org_by_name"),
        None,
        "a failed create_org leaves no org behind"
    );

    b.rename_org(alpha.id, "orgs-renamed")
        .await
        .expect("rename_org");
    let renamed = a
        .get_org(alpha.id)
        .await
        .expect("get_org")
        .expect("the renamed org");
    assert_eq!(
        renamed.name, "orgs-renamed",
        "another instance sees the new name"
    );
    assert_eq!(
        a.get_org_by_name("orgs-alpha")
            .await
            .expect("get_org_by_name"),
        None,
        "the old name no longer finds the renamed org"
    );
    assert_eq!(
        a.get_org_by_name("orgs-renamed")
            .await
            .expect("get_org_by_name")
            .map(|org| org.id),
        Some(alpha.id),
        "the new name finds the renamed org"
    );
    assert_conflict(
        a.rename_org(alpha.id, "orgs-owned").await,
        "renaming an org to a taken name",
    );
    assert_eq!(
        b.get_org(alpha.id)
            .await
            .expect("get_org")
            .map(|org| org.name),
        Some("orgs-renamed".to_owned()),
        "a refused rename changes nothing"
    );
    a.rename_org(alpha.id, "orgs-renamed")
        .await
        .expect("renaming an org to its own name is no conflict");
    assert_not_found(
        a.rename_org(UNKNOWN_ORG, "orgs-ghost").await,
        "renaming an unknown org",
    );
    a.create_org("orgs-alpha", None)
        .await
        .expect("the old name of a renamed org can be taken again");

    let searched = [
        "orgs-search-c",
        "orgs-search-a",
        "orgs-search-e",
        "orgs-search-b",
        "orgs-search-d",
    ];
    for (i, name) in searched.into_iter().enumerate() {
        stores[i % stores.len()]
            .create_org(name, None)
            .await
            .expect("create_org");
    }
    let pages: [(u64, &[&str]); 4] = [
        (1, &["orgs-search-a", "orgs-search-b"]),
        (2, &["orgs-search-c", "orgs-search-d"]),
        (3, &["orgs-search-e"]),
        (4, &[]),
    ];
    for (page, expected) in pages {
        let found = b
            .search_orgs("ORGS-Search", Paging::new(page, 2))
            .await
            .expect("search_orgs");
        check_page(
            &found,
            5,
            expected,
            &format!("search_orgs(\"ORGS-Search\") page {page} of 2: case-insensitive, by name"),
        );
    }
    a.create_org("Orgs-Mixed-Case", None)
        .await
        .expect("create_org");
    let cases: [(&str, &[&str], &str); 3] = [
        (
            "search-C",
            &["orgs-search-c"],
            "a substring in another case",
        ),
        (
            "mixed-case",
            &["Orgs-Mixed-Case"],
            "a lower-case query for a name with capitals",
        ),
        ("orgs-no-such", &[], "no match"),
    ];
    for (query, expected, what) in cases {
        let found = a
            .search_orgs(query, Paging::new(1, 100))
            .await
            .expect("search_orgs");
        check_page(
            &found,
            expected.len() as u64,
            expected,
            &format!("search_orgs({query:?}): {what}"),
        );
    }
    let everything = a
        .search_orgs("", Paging::new(1, 5000))
        .await
        .expect("search_orgs");
    let names = keys(&everything.items);
    for name in ["Main Org.", "orgs-renamed", "orgs-owned", "orgs-search-a"] {
        assert!(
            names.contains(&name),
            "search_orgs(\"\") lists every org, but {name:?} is missing from {names:?}"
        );
    }
    assert_eq!(
        everything.total,
        everything.items.len() as u64,
        "search_orgs(\"\") counts every org it lists"
    );

    let doomed = a
        .create_org("orgs-doomed", Some(owner.id))
        .await
        .expect("create_org");
    let team = b
        .create_team(doomed.id, "orgs-doomed-team", "")
        .await
        .expect("create_team");
    b.add_team_member(doomed.id, team.id, owner.id)
        .await
        .expect("add_team_member");
    let account = a
        .create_user(service_account("orgs-doomed-sa", doomed.id, Role::Viewer))
        .await
        .expect("create_user");
    let key_hash = token("orgs-doomed-key");
    a.create_api_key(doomed.id, account.id, "orgs-doomed-key", &key_hash, None)
        .await
        .expect("create_api_key");
    b.delete_org(doomed.id).await.expect("delete_org");
    assert_eq!(
        a.get_org(doomed.id).await.expect("get_org"),
        None,
        "another instance no longer finds a deleted org by id"
    );
    assert_eq!(
        a.get_org_by_name("orgs-doomed")
            .await
            .expect("get_org_by_name"),
        None,
        "another instance no longer finds a deleted org by name"
    );
    assert_eq!(
        a.org_role(doomed.id, owner.id).await.expect("org_role"),
        None,
        "deleting an org ends its memberships"
    );
    let owner_orgs = a.user_orgs(owner.id).await.expect("user_orgs");
    assert!(
        owner_orgs.iter().all(|(org, _)| org.id != doomed.id),
        "user_orgs no longer lists a deleted org: {owner_orgs:?}"
    );
    assert_eq!(
        a.get_team(doomed.id, team.id).await.expect("get_team"),
        None,
        "deleting an org deletes its teams"
    );
    assert_eq!(
        a.api_key_by_hash(&key_hash).await.expect("api_key_by_hash"),
        None,
        "deleting an org deletes its service-account keys"
    );
    assert_eq!(
        a.get_user(account.id)
            .await
            .expect("get_user")
            .map(|user| user.id),
        None,
        "deleting an org deletes its service accounts, as Grafana does"
    );
    assert!(
        a.get_user(owner.id).await.expect("get_user").is_some(),
        "deleting an org keeps its people"
    );
    assert_not_found(b.delete_org(doomed.id).await, "deleting an org twice");
    b.create_org("orgs-doomed", None)
        .await
        .expect("the name of a deleted org can be taken again");
}

/// Users are created (login and email lower-cased, with their membership of their org),
/// found by login or email in any case, with their credentials; taken logins and emails are
/// conflicts in any case. Profile updates, passwords (ending sessions), disabling (ending
/// sessions), server admin, the current org and last-seen times change what every instance
/// reads; deleting a user takes its memberships, team memberships, sessions and keys along.
pub async fn users(stores: Vec<Arc<dyn SessionStore>>) {
    let (a, b) = two(&stores);
    let org = a.create_org("users-org", None).await.expect("create_org");
    let ada = a
        .create_user(NewUser {
            login: "Users-Ada".to_owned(),
            email: "Ada@Users.Example".to_owned(),
            name: "Ada Lovelace".to_owned(),
            password_hash: "users-hash-1".to_owned(),
            salt: "users-salt-1".to_owned(),
            is_admin: true,
            is_service_account: false,
            is_disabled: false,
            org_id: org.id,
            role: Role::Editor,
        })
        .await
        .expect("create_user");
    assert_eq!(
        (ada.login.as_str(), ada.email.as_str(), ada.name.as_str()),
        ("users-ada", "ada@users.example", "Ada Lovelace"),
        "login and email are stored lower-case, the name as given"
    );
    assert_eq!(
        (
            ada.org_id,
            ada.is_admin,
            ada.is_disabled,
            ada.is_service_account
        ),
        (org.id, true, false, false),
        "create_user keeps the org and the flags (org_id, is_admin, is_disabled, is_service_account)"
    );
    assert!(!ada.uid.is_empty(), "a user has a uid");
    assert_eq!(
        b.get_user(ada.id).await.expect("get_user"),
        Some(ada.clone()),
        "another instance reads the user as it was created"
    );
    assert_eq!(
        b.get_user(UNKNOWN_USER).await.expect("get_user"),
        None,
        "an unknown user id"
    );
    assert_eq!(
        b.org_role(org.id, ada.id).await.expect("org_role"),
        Some(Role::Editor),
        "create_user makes the user a member of its org with its role"
    );
    check_orgs(
        &b.user_orgs(ada.id).await.expect("user_orgs"),
        &[(org.id, Role::Editor)],
        "a new user belongs to its own org only",
    );

    for key in [
        "users-ada",
        "USERS-Ada",
        "ada@users.example",
        "ADA@users.EXAMPLE",
    ] {
        for store in &stores {
            let found = store.find_user(key).await.expect("find_user");
            assert_eq!(
                found.map(|user| user.id),
                Some(ada.id),
                "find_user({key:?}) finds the user by login or email, in any case"
            );
        }
        let (user, hash, salt) = b
            .credentials(key)
            .await
            .expect("credentials")
            .unwrap_or_else(|| panic!("credentials({key:?}) finds the user"));
        assert_eq!(
            (user.id, hash.as_str(), salt.as_str()),
            (ada.id, "users-hash-1", "users-salt-1"),
            "credentials({key:?}) returns the user with its password hash and salt"
        );
    }
    assert_eq!(
        a.find_user("users-nobody").await.expect("find_user"),
        None,
        "find_user of an unknown login"
    );
    assert!(
        a.credentials("users-nobody")
            .await
            .expect("credentials")
            .is_none(),
        "credentials of an unknown login"
    );

    assert_conflict(
        b.create_user(person("USERS-ADA", org.id, Role::Viewer))
            .await,
        "create_user with a login taken in another case",
    );
    assert_conflict(
        b.create_user(NewUser {
            email: "ada@USERS.example".to_owned(),
            ..person("users-ada2", org.id, Role::Viewer)
        })
        .await,
        "create_user with an email taken in another case",
    );
    assert_eq!(
        a.find_user("users-ada2").await.expect("find_user"),
        None,
        "a refused create_user leaves no user behind"
    );
    assert_not_found(
        a.create_user(person("users-orphan", UNKNOWN_ORG, Role::Viewer))
            .await,
        "create_user in an unknown org",
    );
    assert_eq!(
        a.find_user("users-orphan").await.expect("find_user"),
        None,
        "a failed create_user leaves no user behind"
    );
    let born_disabled = b
        .create_user(NewUser {
            is_disabled: true,
            ..person("users-born-disabled", org.id, Role::Viewer)
        })
        .await
        .expect("create_user");
    assert_eq!(
        a.get_user(born_disabled.id)
            .await
            .expect("get_user")
            .map(|user| user.is_disabled),
        Some(true),
        "a user created disabled is disabled"
    );

    // Profile updates.
    let grace = a
        .create_user(person("users-grace", org.id, Role::Viewer))
        .await
        .expect("create_user");
    assert_ne!(grace.uid, ada.uid, "every user has a uid of its own");
    let named = b
        .update_user(
            grace.id,
            UserUpdate {
                name: Some("Grace Hopper".to_owned()),
                ..UserUpdate::default()
            },
        )
        .await
        .expect("update_user");
    assert_eq!(
        (
            named.login.as_str(),
            named.email.as_str(),
            named.name.as_str()
        ),
        ("users-grace", "users-grace@example.test", "Grace Hopper"),
        "update_user changes only the fields it names"
    );
    assert_eq!(
        a.get_user(grace.id).await.expect("get_user"),
        Some(named.clone()),
        "another instance reads the user as update_user returned it"
    );
    let moved = a
        .update_user(
            grace.id,
            UserUpdate {
                login: Some("Users-Grace-H".to_owned()),
                email: Some("Grace@Users.Example".to_owned()),
                name: None,
            },
        )
        .await
        .expect("update_user");
    assert_eq!(
        (
            moved.login.as_str(),
            moved.email.as_str(),
            moved.name.as_str()
        ),
        ("users-grace-h", "grace@users.example", "Grace Hopper"),
        "update_user stores login and email lower-case"
    );
    assert_eq!(
        b.find_user("USERS-GRACE-H")
            .await
            .expect("find_user")
            .map(|user| user.id),
        Some(grace.id),
        "the new login finds the user"
    );
    assert_eq!(
        b.find_user("users-grace").await.expect("find_user"),
        None,
        "the old login no longer finds the user"
    );
    assert_conflict(
        b.update_user(
            grace.id,
            UserUpdate {
                login: Some("USERS-ADA".to_owned()),
                ..UserUpdate::default()
            },
        )
        .await,
        "update_user to a login taken in another case",
    );
    assert_conflict(
        b.update_user(
            grace.id,
            UserUpdate {
                email: Some("Ada@Users.Example".to_owned()),
                ..UserUpdate::default()
            },
        )
        .await,
        "update_user to an email taken in another case",
    );
    assert_eq!(
        a.get_user(grace.id).await.expect("get_user"),
        Some(moved.clone()),
        "a refused update_user changes nothing"
    );
    let same = a
        .update_user(
            grace.id,
            UserUpdate {
                login: Some("USERS-GRACE-H".to_owned()),
                email: Some("grace@users.example".to_owned()),
                name: None,
            },
        )
        .await
        .expect("update_user to the user's own login and email is no conflict");
    assert_eq!(
        (same.login.as_str(), same.email.as_str()),
        ("users-grace-h", "grace@users.example"),
        "update_user to the user's own login and email keeps them"
    );
    assert_not_found(
        a.update_user(
            UNKNOWN_USER,
            UserUpdate {
                name: Some("Nobody".to_owned()),
                ..UserUpdate::default()
            },
        )
        .await,
        "update_user of an unknown user",
    );

    // A new password ends every session but the one kept.
    let t0 = now();
    let password_hashes = ["users-pw-0", "users-pw-1", "users-pw-2"].map(token);
    let mut grace_sessions = Vec::new();
    for (i, hash) in password_hashes.iter().enumerate() {
        let session = stores[i % stores.len()]
            .create_session(
                grace.id,
                hash,
                "agent",
                "192.0.2.1",
                t0 + Duration::seconds(i as i64),
            )
            .await
            .expect("create_session");
        grace_sessions.push(session);
    }
    b.set_password(
        grace.id,
        "users-hash-2",
        "users-salt-2",
        Some(grace_sessions[1].id),
    )
    .await
    .expect("set_password");
    let (_, hash, salt) = a
        .credentials("users-grace-h")
        .await
        .expect("credentials")
        .expect("the user");
    assert_eq!(
        (hash.as_str(), salt.as_str()),
        ("users-hash-2", "users-salt-2"),
        "another instance reads the new password hash and salt"
    );
    assert_eq!(
        live(a, &password_hashes).await,
        [false, true, false],
        "set_password ends every session of the user but the one kept"
    );
    assert_eq!(
        session_ids(&a.user_sessions(grace.id).await.expect("user_sessions")),
        [grace_sessions[1].id],
        "user_sessions lists only the kept session after set_password"
    );
    a.set_password(grace.id, "users-hash-3", "users-salt-3", None)
        .await
        .expect("set_password");
    assert_eq!(
        live(b, &password_hashes).await,
        [false, false, false],
        "set_password without a session to keep ends them all"
    );
    assert_not_found(
        a.set_password(UNKNOWN_USER, "h", "s", None).await,
        "set_password of an unknown user",
    );

    // Disabling ends every session.
    let dora = a
        .create_user(person("users-dora", org.id, Role::Viewer))
        .await
        .expect("create_user");
    let dora_hashes = ["users-dora-0", "users-dora-1"].map(token);
    for hash in &dora_hashes {
        a.create_session(dora.id, hash, "agent", "192.0.2.2", t0)
            .await
            .expect("create_session");
    }
    b.set_disabled(dora.id, true).await.expect("set_disabled");
    assert_eq!(
        a.get_user(dora.id)
            .await
            .expect("get_user")
            .map(|user| user.is_disabled),
        Some(true),
        "another instance sees the user disabled"
    );
    assert_eq!(
        live(a, &dora_hashes).await,
        [false, false],
        "set_disabled(true) ends every session of the user"
    );
    assert!(
        a.user_sessions(dora.id)
            .await
            .expect("user_sessions")
            .is_empty(),
        "a disabled user has no sessions left"
    );
    b.set_disabled(dora.id, true)
        .await
        .expect("disabling a disabled user again is fine");
    a.set_disabled(dora.id, false)
        .await
        .expect("set_disabled(false)");
    assert_eq!(
        b.get_user(dora.id)
            .await
            .expect("get_user")
            .map(|user| user.is_disabled),
        Some(false),
        "set_disabled(false) enables the user again"
    );
    assert_not_found(
        a.set_disabled(UNKNOWN_USER, true).await,
        "set_disabled of an unknown user",
    );

    // Server admin; setting the value a user already has is no error.
    for is_admin in [true, true, false, false] {
        b.set_server_admin(grace.id, is_admin)
            .await
            .expect("set_server_admin");
        assert_eq!(
            a.get_user(grace.id)
                .await
                .expect("get_user")
                .map(|user| user.is_admin),
            Some(is_admin),
            "another instance sees set_server_admin({is_admin})"
        );
    }
    assert_not_found(
        a.set_server_admin(UNKNOWN_USER, true).await,
        "set_server_admin of an unknown user",
    );

    // The current org must be one the user belongs to.
    let other = a
        .create_org("users-other-org", None)
        .await
        .expect("create_org");
    assert_not_found(
        b.set_current_org(grace.id, other.id).await,
        "set_current_org to an org the user is not a member of",
    );
    assert_eq!(
        a.get_user(grace.id)
            .await
            .expect("get_user")
            .map(|user| user.org_id),
        Some(org.id),
        "a refused set_current_org keeps the current org"
    );
    a.add_org_user(other.id, grace.id, Role::Viewer)
        .await
        .expect("add_org_user");
    b.set_current_org(grace.id, other.id)
        .await
        .expect("set_current_org");
    assert_eq!(
        a.get_user(grace.id)
            .await
            .expect("get_user")
            .map(|user| user.org_id),
        Some(other.id),
        "another instance sees the new current org"
    );
    assert_not_found(
        a.set_current_org(grace.id, UNKNOWN_ORG).await,
        "set_current_org to an unknown org",
    );
    assert_not_found(
        a.set_current_org(UNKNOWN_USER, org.id).await,
        "set_current_org of an unknown user",
    );

    let seen = now() + Duration::seconds(90);
    b.touch_user(grace.id, seen).await.expect("touch_user");
    assert_eq!(
        a.get_user(grace.id)
            .await
            .expect("get_user")
            .map(|user| user.last_seen_at),
        Some(seen),
        "touch_user records when the user was last seen"
    );

    // Deleting a user takes everything of theirs along.
    let victim = a
        .create_user(person("users-victim", org.id, Role::Editor))
        .await
        .expect("create_user");
    a.add_org_user(other.id, victim.id, Role::Admin)
        .await
        .expect("add_org_user");
    let team = b
        .create_team(org.id, "users-team", "")
        .await
        .expect("create_team");
    for member in [victim.id, grace.id] {
        a.add_team_member(org.id, team.id, member)
            .await
            .expect("add_team_member");
    }
    let victim_hash = token("users-victim-session");
    a.create_session(victim.id, &victim_hash, "agent", "192.0.2.3", t0)
        .await
        .expect("create_session");
    let account = a
        .create_user(service_account("users-victim-sa", org.id, Role::Viewer))
        .await
        .expect("create_user");
    let key_hash = token("users-victim-key");
    b.create_api_key(org.id, account.id, "users-victim-key", &key_hash, None)
        .await
        .expect("create_api_key");
    b.delete_user(victim.id).await.expect("delete_user");
    b.delete_user(account.id)
        .await
        .expect("delete_user of a service account");
    assert_eq!(
        a.get_user(victim.id).await.expect("get_user"),
        None,
        "another instance no longer finds a deleted user by id"
    );
    assert_eq!(
        a.find_user("users-victim").await.expect("find_user"),
        None,
        "another instance no longer finds a deleted user by login"
    );
    for org_id in [org.id, other.id] {
        assert_eq!(
            a.org_role(org_id, victim.id).await.expect("org_role"),
            None,
            "deleting a user ends its memberships"
        );
    }
    assert!(
        a.user_orgs(victim.id).await.expect("user_orgs").is_empty(),
        "a deleted user belongs to no org"
    );
    check_keys(
        &a.team_members(org.id, team.id).await.expect("team_members"),
        &["users-grace-h"],
        "deleting a user ends its team memberships",
    );
    assert_eq!(
        a.get_team(org.id, team.id)
            .await
            .expect("get_team")
            .map(|team| team.member_count),
        Some(1),
        "a deleted user no longer counts as a team member"
    );
    assert!(
        a.find_session(&victim_hash)
            .await
            .expect("find_session")
            .is_none(),
        "deleting a user ends its sessions"
    );
    assert!(
        a.user_sessions(victim.id)
            .await
            .expect("user_sessions")
            .is_empty(),
        "a deleted user has no sessions"
    );
    assert_eq!(
        a.api_key_by_hash(&key_hash).await.expect("api_key_by_hash"),
        None,
        "deleting a service account deletes its keys"
    );
    assert!(
        a.api_keys(account.id).await.expect("api_keys").is_empty(),
        "a deleted service account has no keys"
    );
    assert_not_found(a.delete_user(victim.id).await, "deleting a user twice");
    a.create_user(person("users-victim", org.id, Role::Viewer))
        .await
        .expect("the login and email of a deleted user can be taken again");
}

/// `search_users` matches its query case-insensitively against login, email and name,
/// separates people from service accounts, filters by org, orders by login and pages.
pub async fn user_search(stores: Vec<Arc<dyn SessionStore>>) {
    let (a, b) = two(&stores);
    let main = OrgId(1);
    let org = a
        .create_org("usersearch-org", None)
        .await
        .expect("create_org");
    let users = [
        NewUser {
            name: "Carla Zqxname".to_owned(),
            ..person("usersearch-c", main, Role::Viewer)
        },
        person("usersearch-a", main, Role::Viewer),
        person("usersearch-e", org.id, Role::Viewer),
        NewUser {
            is_disabled: true,
            ..person("usersearch-d", main, Role::Viewer)
        },
        NewUser {
            email: "bert-zqxmail@example.test".to_owned(),
            ..person("usersearch-b", main, Role::Viewer)
        },
        service_account("usersearch-sa2", main, Role::Viewer),
        service_account("usersearch-sa1", org.id, Role::Viewer),
    ];
    let mut created = Vec::new();
    for (i, user) in users.into_iter().enumerate() {
        let user = stores[i % stores.len()]
            .create_user(user)
            .await
            .expect("create_user");
        created.push(user);
    }

    let people = [
        "usersearch-a",
        "usersearch-b",
        "usersearch-c",
        "usersearch-d",
        "usersearch-e",
    ];
    let cases: [(UserFilter, &[&str], &str); 8] = [
        (
            filter(Some("USERSEARCH"), None, false),
            &people,
            "people whose login contains the query in another case, disabled ones included",
        ),
        (
            filter(Some("ZQXMAIL"), None, false),
            &["usersearch-b"],
            "a match on the email alone",
        ),
        (
            filter(Some("zqxNAME"), None, false),
            &["usersearch-c"],
            "a match on the name alone",
        ),
        (
            filter(Some("usersearch"), None, true),
            &["usersearch-sa1", "usersearch-sa2"],
            "service accounts only",
        ),
        (
            filter(None, Some(org.id), false),
            &["usersearch-e"],
            "the people of an org",
        ),
        (
            filter(None, Some(org.id), true),
            &["usersearch-sa1"],
            "the service accounts of an org",
        ),
        (
            filter(Some("usersearch"), Some(main), false),
            &people[..4],
            "the people of org 1 matching the query",
        ),
        (
            filter(Some("usersearch-nobody"), None, false),
            &[],
            "no match",
        ),
    ];
    for (user_filter, expected, what) in cases {
        let found = b
            .search_users(user_filter.clone(), Paging::new(1, 100))
            .await
            .expect("search_users");
        check_page(
            &found,
            expected.len() as u64,
            expected,
            &format!("search_users({user_filter:?}): {what}"),
        );
    }

    let pages: [(u64, &[&str]); 4] = [
        (1, &people[0..2]),
        (2, &people[2..4]),
        (3, &people[4..]),
        (4, &[]),
    ];
    for (page, expected) in pages {
        let found = a
            .search_users(
                filter(Some("usersearch-"), None, false),
                Paging::new(page, 2),
            )
            .await
            .expect("search_users");
        check_page(
            &found,
            5,
            expected,
            &format!("search_users page {page} of 2, by login"),
        );
    }

    let anna = created
        .iter()
        .find(|user| user.login == "usersearch-a")
        .expect("usersearch-a was created");
    b.add_org_user(org.id, anna.id, Role::Editor)
        .await
        .expect("add_org_user");
    let found = a
        .search_users(filter(None, Some(org.id), false), Paging::new(1, 100))
        .await
        .expect("search_users");
    check_page(
        &found,
        2,
        &["usersearch-a", "usersearch-e"],
        "the org filter sees a member added through another instance",
    );

    let everyone = a
        .search_users(UserFilter::default(), Paging::new(1, 5000))
        .await
        .expect("search_users");
    assert!(
        everyone.items.iter().all(|user| !user.is_service_account),
        "search_users without a query returns people only when service_accounts is false"
    );
    let logins = keys(&everyone.items);
    for login in people {
        assert!(
            logins.contains(&login),
            "search_users without a query lists every person, but {login:?} is missing"
        );
    }
    assert_eq!(
        everyone.total,
        everyone.items.len() as u64,
        "search_users counts every person it lists"
    );
}

/// Org membership: added (a second time is a conflict), re-roled, removed (with the team
/// memberships in that org), read per user (`user_orgs`, by org name) and per org
/// (`org_users`, by login, with a query and paging).
pub async fn membership(stores: Vec<Arc<dyn SessionStore>>) {
    let (a, b) = two(&stores);
    let mut orgs = Vec::new();
    for name in ["membership-a", "membership-b", "membership-c"] {
        orgs.push(a.create_org(name, None).await.expect("create_org").id);
    }
    let user = a
        .create_user(person("membership-user", orgs[0], Role::Viewer))
        .await
        .expect("create_user");
    b.add_org_user(orgs[2], user.id, Role::Editor)
        .await
        .expect("add_org_user");
    a.add_org_user(orgs[1], user.id, Role::Admin)
        .await
        .expect("add_org_user");
    let expected = [
        (orgs[0], Role::Viewer),
        (orgs[1], Role::Admin),
        (orgs[2], Role::Editor),
    ];
    check_orgs(
        &b.user_orgs(user.id).await.expect("user_orgs"),
        &expected,
        "user_orgs lists every membership with its role, by org name",
    );
    for (org, role) in expected {
        assert_eq!(
            b.org_role(org, user.id).await.expect("org_role"),
            Some(role),
            "org_role reads the role given when the user joined"
        );
    }
    assert_conflict(
        b.add_org_user(orgs[1], user.id, Role::Viewer).await,
        "adding a member to an org twice",
    );
    assert_eq!(
        a.org_role(orgs[1], user.id).await.expect("org_role"),
        Some(Role::Admin),
        "a refused add_org_user keeps the role"
    );
    assert_not_found(
        a.add_org_user(UNKNOWN_ORG, user.id, Role::Viewer).await,
        "adding a user to an unknown org",
    );
    assert_not_found(
        a.add_org_user(orgs[0], UNKNOWN_USER, Role::Viewer).await,
        "adding an unknown user to an org",
    );

    // Editor, not Admin: the last Admin of an org could not be removed below (see
    // `last_org_admin`).
    a.set_org_role(orgs[2], user.id, Role::Editor)
        .await
        .expect("set_org_role");
    assert_eq!(
        b.org_role(orgs[2], user.id).await.expect("org_role"),
        Some(Role::Editor),
        "another instance reads the new role"
    );
    a.set_org_role(orgs[2], user.id, Role::Editor)
        .await
        .expect("setting the role a member already has is fine");
    let stranger = a
        .create_user(person("membership-stranger", orgs[0], Role::Viewer))
        .await
        .expect("create_user");
    assert_not_found(
        b.set_org_role(orgs[2], stranger.id, Role::Editor).await,
        "set_org_role of a user who is not a member",
    );
    assert_eq!(
        b.org_role(orgs[2], stranger.id).await.expect("org_role"),
        None,
        "a refused set_org_role makes nobody a member"
    );

    b.remove_org_user(orgs[2], user.id)
        .await
        .expect("remove_org_user");
    assert_eq!(
        a.org_role(orgs[2], user.id).await.expect("org_role"),
        None,
        "another instance sees the member removed"
    );
    check_orgs(
        &a.user_orgs(user.id).await.expect("user_orgs"),
        &expected[..2],
        "user_orgs no longer lists an org the user left",
    );
    assert_not_found(
        a.remove_org_user(orgs[2], user.id).await,
        "removing a user who is not a member",
    );

    // Leaving an org ends the team memberships in that org, and only there. The user is
    // the only Admin of orgs[1], and an org keeps at least one Admin, so another comes in.
    let other_admin = a
        .create_user(person("membership-other-admin", orgs[1], Role::Admin))
        .await
        .expect("create_user");
    assert_eq!(
        a.org_role(orgs[1], other_admin.id).await.expect("org_role"),
        Some(Role::Admin)
    );
    let kept_team = a
        .create_team(orgs[0], "membership-team", "")
        .await
        .expect("create_team");
    let left_team = a
        .create_team(orgs[1], "membership-team", "")
        .await
        .expect("create_team");
    a.add_team_member(orgs[0], kept_team.id, user.id)
        .await
        .expect("add_team_member");
    a.add_team_member(orgs[1], left_team.id, user.id)
        .await
        .expect("add_team_member");
    b.remove_org_user(orgs[1], user.id)
        .await
        .expect("remove_org_user");
    check_keys(
        &a.team_members(orgs[1], left_team.id)
            .await
            .expect("team_members"),
        &[],
        "remove_org_user ends the user's team memberships in that org",
    );
    assert_eq!(
        a.get_team(orgs[1], left_team.id)
            .await
            .expect("get_team")
            .map(|team| team.member_count),
        Some(0),
        "a removed member no longer counts in its former org's teams"
    );
    check_keys(
        &a.team_members(orgs[0], kept_team.id)
            .await
            .expect("team_members"),
        &["membership-user"],
        "remove_org_user keeps the user's team memberships in other orgs",
    );

    let listed = b
        .create_org("membership-listed", None)
        .await
        .expect("create_org")
        .id;
    let members = [
        ("membership-m-c", Role::Editor),
        ("membership-m-a", Role::Admin),
        ("membership-m-e", Role::Viewer),
        ("membership-m-b", Role::Viewer),
        ("membership-m-d", Role::Editor),
    ];
    for (i, (login, role)) in members.into_iter().enumerate() {
        let mut new = person(login, listed, role);
        if login == "membership-m-d" {
            new.name = "Dora Zqxmember".to_owned();
        }
        stores[i % stores.len()]
            .create_user(new)
            .await
            .expect("create_user");
    }
    let all_members = a
        .org_users(listed, "", Paging::new(1, 100))
        .await
        .expect("org_users");
    let mut expected_members = members;
    expected_members.sort();
    let found: Vec<(&str, Role, OrgId)> = all_members
        .items
        .iter()
        .map(|member| (member.user.login.as_str(), member.role, member.org_id))
        .collect();
    let expected_found: Vec<(&str, Role, OrgId)> = expected_members
        .iter()
        .map(|(login, role)| (*login, *role, listed))
        .collect();
    assert_eq!(
        found, expected_found,
        "org_users lists every member with its role, by login"
    );
    let pages: [(u64, &[&str]); 4] = [
        (1, &["membership-m-a", "membership-m-b"]),
        (2, &["membership-m-c", "membership-m-d"]),
        (3, &["membership-m-e"]),
        (4, &[]),
    ];
    for (page, expected) in pages {
        let found = b
            .org_users(listed, "", Paging::new(page, 2))
            .await
            .expect("org_users");
        check_page(&found, 5, expected, &format!("org_users page {page} of 2"));
    }
    let queries: [(&str, &[&str], &str); 4] = [
        ("M-C", &["membership-m-c"], "a login in another case"),
        ("zqxMEMBER", &["membership-m-d"], "a name in another case"),
        (
            "membership-m-e@example",
            &["membership-m-e"],
            "an email alone",
        ),
        ("membership-nobody", &[], "no match"),
    ];
    for (query, expected, what) in queries {
        let found = a
            .org_users(listed, query, Paging::new(1, 100))
            .await
            .expect("org_users");
        check_page(
            &found,
            expected.len() as u64,
            expected,
            &format!("org_users({query:?}): {what}"),
        );
    }
    let found = a
        .org_users(orgs[0], "membership-m-", Paging::new(1, 100))
        .await
        .expect("org_users");
    check_page(&found, 0, &[], "org_users lists only the org's own members");
}

/// Teams belong to one org: names are unique within it but not across orgs, a team is not
/// reachable through another org, members must belong to the org, and `member_count`
/// follows additions and removals. Teams are searched by name with paging, updated and
/// deleted.
pub async fn teams(stores: Vec<Arc<dyn SessionStore>>) {
    let (a, b) = two(&stores);
    let org = a.create_org("teams-org", None).await.expect("create_org");
    let other = a
        .create_org("teams-other-org", None)
        .await
        .expect("create_org");
    let red = a
        .create_team(org.id, "teams-red", "red@teams.test")
        .await
        .expect("create_team");
    assert_eq!(
        (
            red.org_id,
            red.name.as_str(),
            red.email.as_str(),
            red.member_count
        ),
        (org.id, "teams-red", "red@teams.test", 0),
        "create_team returns the team, without members"
    );
    assert!(!red.uid.is_empty(), "a team has a uid");
    assert_eq!(
        b.get_team(org.id, red.id).await.expect("get_team"),
        Some(red.clone()),
        "another instance reads the team as it was created"
    );
    assert_eq!(
        b.get_team(other.id, red.id).await.expect("get_team"),
        None,
        "a team is not found through another org"
    );
    assert_eq!(
        b.get_team(org.id, UNKNOWN_TEAM).await.expect("get_team"),
        None,
        "an unknown team id"
    );
    assert_conflict(
        b.create_team(org.id, "teams-red", "").await,
        "create_team with a name taken in the org",
    );
    let other_red = b
        .create_team(other.id, "teams-red", "")
        .await
        .expect("the same team name in another org is fine");
    assert_ne!(
        other_red.id, red.id,
        "a team in another org is another team"
    );
    assert_ne!(other_red.uid, red.uid, "every team has a uid of its own");
    assert_not_found(
        a.create_team(UNKNOWN_ORG, "teams-nowhere", "").await,
        "create_team in an unknown org",
    );

    let member_a = a
        .create_user(person("teams-member-a", org.id, Role::Viewer))
        .await
        .expect("create_user");
    let member_b = b
        .create_user(person("teams-member-b", org.id, Role::Editor))
        .await
        .expect("create_user");
    let outsider = a
        .create_user(person("teams-outsider", other.id, Role::Viewer))
        .await
        .expect("create_user");
    b.add_team_member(org.id, red.id, member_b.id)
        .await
        .expect("add_team_member");
    a.add_team_member(org.id, red.id, member_a.id)
        .await
        .expect("add_team_member");
    check_keys(
        &b.team_members(org.id, red.id).await.expect("team_members"),
        &["teams-member-a", "teams-member-b"],
        "team_members lists the members by login",
    );
    assert_eq!(
        b.get_team(org.id, red.id)
            .await
            .expect("get_team")
            .map(|team| team.member_count),
        Some(2),
        "member_count counts the members"
    );
    let blue = b
        .create_team(org.id, "teams-blue", "")
        .await
        .expect("create_team");
    a.add_team_member(org.id, blue.id, member_a.id)
        .await
        .expect("add_team_member");
    let teams_of_a = b.user_teams(org.id, member_a.id).await.expect("user_teams");
    assert_eq!(
        teams_of_a
            .iter()
            .map(|team| (team.name.as_str(), team.member_count))
            .collect::<Vec<_>>(),
        [("teams-blue", 1), ("teams-red", 2)],
        "user_teams lists the user's teams in the org by name, with their member counts"
    );
    assert_eq!(
        b.user_teams(other.id, member_a.id)
            .await
            .expect("user_teams")
            .len(),
        0,
        "user_teams of another org"
    );
    a.delete_team(org.id, blue.id).await.expect("delete_team");
    assert_eq!(
        a.user_teams(org.id, member_b.id)
            .await
            .expect("user_teams")
            .iter()
            .map(|team| team.id)
            .collect::<Vec<_>>(),
        [red.id],
        "user_teams after a team is deleted"
    );
    assert_conflict(
        a.add_team_member(org.id, red.id, member_a.id).await,
        "adding a team member twice",
    );
    let refused = b.add_team_member(org.id, red.id, outsider.id).await;
    assert!(
        matches!(refused, Err(Error::NotFound(_) | Error::InvalidInput(_))),
        "adding a user who is not a member of the team's org: expected Error::NotFound or \
         Error::InvalidInput, got {refused:?}"
    );
    assert_not_found(
        a.add_team_member(other.id, red.id, outsider.id).await,
        "adding a member to a team through another org",
    );
    assert_not_found(
        a.add_team_member(org.id, UNKNOWN_TEAM, member_a.id).await,
        "adding a member to an unknown team",
    );
    check_keys(
        &a.team_members(org.id, red.id).await.expect("team_members"),
        &["teams-member-a", "teams-member-b"],
        "refused additions change no team",
    );
    check_keys(
        &a.team_members(other.id, other_red.id)
            .await
            .expect("team_members"),
        &[],
        "refused additions change no team",
    );
    a.remove_team_member(org.id, red.id, member_a.id)
        .await
        .expect("remove_team_member");
    check_keys(
        &b.team_members(org.id, red.id).await.expect("team_members"),
        &["teams-member-b"],
        "another instance sees the member removed",
    );
    assert_eq!(
        b.get_team(org.id, red.id)
            .await
            .expect("get_team")
            .map(|team| team.member_count),
        Some(1),
        "member_count follows a removal"
    );
    assert_not_found(
        b.remove_team_member(org.id, red.id, member_a.id).await,
        "removing a user who is not a team member",
    );

    let green = a
        .create_team(org.id, "teams-green", "")
        .await
        .expect("create_team");
    b.update_team(org.id, red.id, "teams-blue", "blue@teams.test")
        .await
        .expect("update_team");
    let blue = a
        .get_team(org.id, red.id)
        .await
        .expect("get_team")
        .expect("the updated team");
    assert_eq!(
        (blue.name.as_str(), blue.email.as_str(), blue.member_count),
        ("teams-blue", "blue@teams.test", 1),
        "another instance reads the new name and email"
    );
    assert_conflict(
        a.update_team(org.id, red.id, "teams-green", "").await,
        "update_team to a name taken in the org",
    );
    assert_eq!(
        b.get_team(org.id, red.id).await.expect("get_team"),
        Some(blue.clone()),
        "a refused update_team changes nothing"
    );
    a.update_team(org.id, red.id, "teams-blue", "team@teams.test")
        .await
        .expect("update_team keeping the team's own name is no conflict");
    assert_not_found(
        a.update_team(other.id, red.id, "teams-hijacked", "").await,
        "update_team through another org",
    );
    assert_not_found(
        a.update_team(org.id, UNKNOWN_TEAM, "teams-ghost", "").await,
        "update_team of an unknown team",
    );

    let squads_org = a
        .create_org("teams-search-org", None)
        .await
        .expect("create_org");
    let squad_member = a
        .create_user(person("teams-squad-member", squads_org.id, Role::Viewer))
        .await
        .expect("create_user");
    for (i, name) in [
        "squad-c", "squad-a", "squad-e", "crew-x", "squad-b", "squad-d",
    ]
    .into_iter()
    .enumerate()
    {
        let team = stores[i % stores.len()]
            .create_team(squads_org.id, name, "")
            .await
            .expect("create_team");
        if name == "squad-a" {
            b.add_team_member(squads_org.id, team.id, squad_member.id)
                .await
                .expect("add_team_member");
        }
    }
    let pages: [(u64, &[&str]); 4] = [
        (1, &["squad-a", "squad-b"]),
        (2, &["squad-c", "squad-d"]),
        (3, &["squad-e"]),
        (4, &[]),
    ];
    for (page, expected) in pages {
        let found = a
            .search_teams(squads_org.id, "squad", Paging::new(page, 2))
            .await
            .expect("search_teams");
        check_page(
            &found,
            5,
            expected,
            &format!("search_teams page {page} of 2, by name"),
        );
    }
    let counted = b
        .search_teams(squads_org.id, "squad", Paging::new(1, 100))
        .await
        .expect("search_teams");
    let counts: Vec<(&str, u64)> = counted
        .items
        .iter()
        .map(|team| (team.name.as_str(), team.member_count))
        .collect();
    assert_eq!(
        counts,
        [
            ("squad-a", 1),
            ("squad-b", 0),
            ("squad-c", 0),
            ("squad-d", 0),
            ("squad-e", 0)
        ],
        "search_teams returns each team's member_count"
    );
    let queries: [(OrgId, &str, &[&str], &str); 3] = [
        (
            squads_org.id,
            "",
            &[
                "crew-x", "squad-a", "squad-b", "squad-c", "squad-d", "squad-e",
            ],
            "every team of the org",
        ),
        (squads_org.id, "ad-c", &["squad-c"], "a substring"),
        (org.id, "squad", &[], "another org's teams are not listed"),
    ];
    for (org_id, query, expected, what) in queries {
        let found = b
            .search_teams(org_id, query, Paging::new(1, 100))
            .await
            .expect("search_teams");
        check_page(
            &found,
            expected.len() as u64,
            expected,
            &format!("search_teams({query:?}): {what}"),
        );
    }

    b.delete_team(org.id, green.id).await.expect("delete_team");
    assert_eq!(
        a.get_team(org.id, green.id).await.expect("get_team"),
        None,
        "another instance no longer finds a deleted team"
    );
    let found = a
        .search_teams(org.id, "teams-green", Paging::new(1, 100))
        .await
        .expect("search_teams");
    check_page(
        &found,
        0,
        &[],
        "search_teams no longer lists a deleted team",
    );
    assert_not_found(
        b.delete_team(org.id, green.id).await,
        "deleting a team twice",
    );
    assert_not_found(
        a.delete_team(other.id, red.id).await,
        "delete_team through another org",
    );
    assert!(
        a.get_team(org.id, red.id)
            .await
            .expect("get_team")
            .is_some(),
        "a refused delete_team deletes nothing"
    );
    a.delete_team(org.id, red.id).await.expect("delete_team");
    let reborn = b
        .create_team(org.id, "teams-blue", "")
        .await
        .expect("the name of a deleted team can be taken again");
    assert_eq!(reborn.member_count, 0, "a new team starts without members");
}

/// Service-account keys: created with a name unique per service account, listed by id,
/// found by hash, touched when used, and deleted only by their own service account.
pub async fn api_keys(stores: Vec<Arc<dyn SessionStore>>) {
    let (a, b) = two(&stores);
    let org = a.create_org("keys-org", None).await.expect("create_org");
    let account = a
        .create_user(service_account("keys-account", org.id, Role::Editor))
        .await
        .expect("create_user");
    assert!(
        account.is_service_account,
        "create_user keeps the service-account flag"
    );
    let second = b
        .create_user(service_account("keys-second", org.id, Role::Viewer))
        .await
        .expect("create_user");

    let expires = now() + Duration::days(30);
    let ci_hash = token("keys-ci");
    let ci = a
        .create_api_key(org.id, account.id, "ci", &ci_hash, Some(expires))
        .await
        .expect("create_api_key");
    assert_eq!(
        (
            ci.org_id,
            ci.service_account_id,
            ci.name.as_str(),
            ci.expires,
            ci.last_used_at
        ),
        (org.id, account.id, "ci", Some(expires), None),
        "create_api_key returns the key (org, service account, name, expiry, never used)"
    );
    let deploy = b
        .create_api_key(org.id, account.id, "deploy", &token("keys-deploy"), None)
        .await
        .expect("create_api_key");
    assert_eq!(
        a.api_keys(account.id).await.expect("api_keys"),
        [ci.clone(), deploy.clone()],
        "api_keys lists the service account's keys by id, as they were created"
    );
    let duplicate_hash = token("keys-ci-duplicate");
    assert_conflict(
        a.create_api_key(org.id, account.id, "ci", &duplicate_hash, None)
            .await,
        "create_api_key with a name the service account already uses",
    );
    assert_eq!(
        b.api_key_by_hash(&duplicate_hash)
            .await
            .expect("api_key_by_hash"),
        None,
        "a refused key is not stored"
    );
    let second_ci = b
        .create_api_key(org.id, second.id, "ci", &token("keys-second-ci"), None)
        .await
        .expect("the same key name for another service account is fine");
    assert_eq!(
        a.api_keys(second.id).await.expect("api_keys"),
        [second_ci],
        "api_keys lists only the service account's own keys"
    );
    assert_not_found(
        a.create_api_key(org.id, UNKNOWN_USER, "ci", &token("keys-orphan"), None)
            .await,
        "create_api_key for an unknown service account",
    );

    assert_eq!(
        b.api_key_by_hash(&ci_hash).await.expect("api_key_by_hash"),
        Some(ci.clone()),
        "another instance finds the key by its hash"
    );
    assert_eq!(
        b.api_key_by_hash(&token("keys-unknown"))
            .await
            .expect("api_key_by_hash"),
        None,
        "an unknown hash finds no key"
    );
    let used = now() + Duration::seconds(5);
    b.touch_api_key(ci.id, used).await.expect("touch_api_key");
    assert_eq!(
        a.api_key_by_hash(&ci_hash)
            .await
            .expect("api_key_by_hash")
            .and_then(|key| key.last_used_at),
        Some(used),
        "touch_api_key records when the key was used"
    );

    assert_not_found(
        a.delete_api_key(second.id, ci.id).await,
        "deleting another service account's key",
    );
    assert!(
        b.api_key_by_hash(&ci_hash)
            .await
            .expect("api_key_by_hash")
            .is_some(),
        "a refused delete_api_key deletes nothing"
    );
    b.delete_api_key(account.id, ci.id)
        .await
        .expect("delete_api_key");
    assert_eq!(
        a.api_key_by_hash(&ci_hash).await.expect("api_key_by_hash"),
        None,
        "another instance no longer finds a deleted key"
    );
    assert_eq!(
        a.api_keys(account.id).await.expect("api_keys"),
        [deploy],
        "api_keys no longer lists a deleted key"
    );
    assert_not_found(
        a.delete_api_key(account.id, ci.id).await,
        "deleting a key twice",
    );
    assert_not_found(
        a.delete_api_key(account.id, UNKNOWN_KEY).await,
        "deleting an unknown key",
    );
}

/// Sessions are found by the hash of their current or previous token. Rotation is a
/// compare-and-swap on the current hash; touching records use; revocation (one session,
/// or all of a user's but one) is seen by every instance at once; `user_sessions` lists
/// newest first; expired sessions are deleted by age and by idleness.
pub async fn sessions(stores: Vec<Arc<dyn SessionStore>>) {
    let (a, b) = two(&stores);
    let user = a
        .create_user(person("sessions-user", OrgId(1), Role::Viewer))
        .await
        .expect("create_user");
    let other = a
        .create_user(person("sessions-other", OrgId(1), Role::Viewer))
        .await
        .expect("create_user");
    let t0 = now();
    let first = token("sessions-first");
    let session = a
        .create_session(
            user.id,
            &first,
            "Mozilla/5.0 (conformance)",
            "192.0.2.10",
            t0,
        )
        .await
        .expect("create_session");
    assert_eq!(
        (
            session.user_id,
            session.user_agent.as_str(),
            session.client_ip.as_str()
        ),
        (user.id, "Mozilla/5.0 (conformance)", "192.0.2.10"),
        "create_session returns the session (user, user agent, client address)"
    );
    assert_eq!(
        (session.created_at, session.seen_at, session.rotated_at),
        (t0, t0, t0),
        "a new session was created, seen and rotated at `now`"
    );
    let stored = b
        .find_session(&first)
        .await
        .expect("find_session")
        .expect("another instance finds the session by its token's hash");
    assert_eq!(
        stored.session, session,
        "another instance reads the session as it was created"
    );
    assert_eq!(
        (stored.auth_token.as_str(), stored.prev_auth_token.as_str()),
        (first.as_str(), ""),
        "a new session's hash is current and it has no previous one"
    );
    assert!(
        b.find_session(&token("sessions-unknown"))
            .await
            .expect("find_session")
            .is_none(),
        "an unknown hash finds no session"
    );
    let (joined, joined_user, joined_role) = b
        .find_session_with_user(&first)
        .await
        .expect("find_session_with_user")
        .expect("the session is found with its user");
    assert_eq!(
        (joined.session, joined.auth_token, joined.prev_auth_token),
        (
            stored.session.clone(),
            stored.auth_token.clone(),
            stored.prev_auth_token.clone()
        ),
        "find_session_with_user returns what find_session does"
    );
    assert_eq!(
        (joined_user, joined_role),
        (
            b.get_user(user.id)
                .await
                .expect("get_user")
                .expect("the user"),
            Some(Role::Viewer)
        ),
        "with the user and its role in its default org"
    );
    assert!(
        b.find_session_with_user(&token("sessions-unknown"))
            .await
            .expect("find_session_with_user")
            .is_none(),
        "an unknown hash finds nothing"
    );

    let t1 = t0 + Duration::seconds(30);
    b.touch_session(session.id, t1)
        .await
        .expect("touch_session");
    assert_eq!(
        a.find_session(&first)
            .await
            .expect("find_session")
            .map(|stored| stored.session.seen_at),
        Some(t1),
        "touch_session records when the session was used"
    );

    // Rotation is a compare-and-swap on the current hash.
    let t2 = t0 + Duration::minutes(10);
    let second = token("sessions-second");
    assert!(
        !a.rotate_session(session.id, &token("sessions-stale"), &second, t2)
            .await
            .expect("rotate_session"),
        "a rotation from a hash that is not current returns false"
    );
    assert_eq!(
        b.find_session(&first)
            .await
            .expect("find_session")
            .map(|stored| stored.auth_token),
        Some(first.clone()),
        "a refused rotation changes nothing"
    );
    assert!(
        b.find_session(&second)
            .await
            .expect("find_session")
            .is_none(),
        "a refused rotation stores no new hash"
    );
    assert!(
        b.rotate_session(session.id, &first, &second, t2)
            .await
            .expect("rotate_session"),
        "a rotation from the current hash returns true"
    );
    for hash in [&second, &first] {
        let stored = a
            .find_session(hash)
            .await
            .expect("find_session")
            .expect("after a rotation, both the new and the previous hash find the session");
        assert_eq!(stored.session.id, session.id, "the rotated session");
        assert_eq!(
            (stored.auth_token.as_str(), stored.prev_auth_token.as_str()),
            (second.as_str(), first.as_str()),
            "after a rotation the new hash is current and the old one previous"
        );
        // Identity skips touch_session after a rotation, so the rotation itself must count
        // as a use or an active session would expire as idle.
        assert_eq!(
            (
                stored.session.created_at,
                stored.session.rotated_at,
                stored.session.seen_at
            ),
            (t0, t2, t2),
            "a rotation keeps created_at and records rotated_at and seen_at"
        );
    }
    assert!(
        !a.rotate_session(session.id, &first, &token("sessions-late"), t2)
            .await
            .expect("rotate_session"),
        "a rotation from the previous hash returns false: another request rotated first"
    );
    let third = token("sessions-third");
    assert!(
        a.rotate_session(session.id, &second, &third, t2 + Duration::minutes(10))
            .await
            .expect("rotate_session"),
        "a second rotation from the new current hash"
    );
    assert!(
        b.find_session(&first)
            .await
            .expect("find_session")
            .is_none(),
        "a hash two rotations old finds nothing"
    );
    assert_eq!(
        b.find_session(&second)
            .await
            .expect("find_session")
            .map(|stored| (stored.auth_token, stored.prev_auth_token)),
        Some((third.clone(), second.clone())),
        "the hash of one rotation ago is the previous one"
    );

    // Revoking one session.
    let others = token("sessions-others");
    let other_session = b
        .create_session(other.id, &others, "agent", "192.0.2.11", t0)
        .await
        .expect("create_session");
    assert!(
        !a.revoke_session(user.id, other_session.id)
            .await
            .expect("revoke_session"),
        "revoking another user's session returns false"
    );
    assert!(
        b.find_session(&others)
            .await
            .expect("find_session")
            .is_some(),
        "revoking another user's session revokes nothing"
    );
    assert!(
        !a.revoke_session(user.id, UNKNOWN_TOKEN)
            .await
            .expect("revoke_session"),
        "revoking an unknown session returns false"
    );
    assert!(
        a.revoke_session(other.id, other_session.id)
            .await
            .expect("revoke_session"),
        "revoking one's own session returns true"
    );
    assert!(
        b.find_session(&others)
            .await
            .expect("find_session")
            .is_none(),
        "another instance no longer finds a revoked session"
    );
    assert!(
        b.user_sessions(other.id)
            .await
            .expect("user_sessions")
            .is_empty(),
        "user_sessions no longer lists a revoked session"
    );
    assert!(
        !b.revoke_session(other.id, other_session.id)
            .await
            .expect("revoke_session"),
        "revoking an ended session again returns false"
    );
    let revived = token("sessions-revived");
    let _ = a
        .rotate_session(other_session.id, &others, &revived, t2)
        .await
        .expect("rotate_session");
    assert!(
        b.find_session(&revived)
            .await
            .expect("find_session")
            .is_none(),
        "rotating a revoked session does not bring it back"
    );
    assert!(
        b.find_session(&third)
            .await
            .expect("find_session")
            .is_some(),
        "revoking one user's session keeps another user's"
    );

    // Listing and revoking all of a user's sessions.
    let many = a
        .create_user(person("sessions-many", OrgId(1), Role::Viewer))
        .await
        .expect("create_user");
    let many_hashes = ["sessions-many-0", "sessions-many-1", "sessions-many-2"].map(token);
    let mut created = Vec::new();
    for (i, hash) in many_hashes.iter().enumerate() {
        let session = stores[i % stores.len()]
            .create_session(
                many.id,
                hash,
                "agent",
                "198.51.100.7",
                t0 + Duration::seconds(i as i64),
            )
            .await
            .expect("create_session");
        created.push(session);
    }
    assert_eq!(
        b.user_sessions(many.id).await.expect("user_sessions"),
        [created[2].clone(), created[1].clone(), created[0].clone()],
        "user_sessions lists the user's sessions, newest first"
    );
    assert_eq!(
        b.revoke_user_sessions(many.id, Some(created[1].id))
            .await
            .expect("revoke_user_sessions"),
        2,
        "revoke_user_sessions counts the sessions it ended"
    );
    assert_eq!(
        live(a, &many_hashes).await,
        [false, true, false],
        "revoke_user_sessions ends every session of the user but the excepted one"
    );
    assert_eq!(
        session_ids(&a.user_sessions(many.id).await.expect("user_sessions")),
        [created[1].id],
        "user_sessions lists only the excepted session"
    );
    assert!(
        a.find_session(&third)
            .await
            .expect("find_session")
            .is_some(),
        "revoke_user_sessions keeps other users' sessions"
    );
    assert_eq!(
        a.revoke_user_sessions(many.id, None)
            .await
            .expect("revoke_user_sessions"),
        1,
        "revoke_user_sessions without an exception ends the rest"
    );
    assert_eq!(
        live(b, &many_hashes).await,
        [false, false, false],
        "no session of the user is left"
    );
    assert_eq!(
        a.revoke_user_sessions(many.id, None)
            .await
            .expect("revoke_user_sessions"),
        0,
        "ended sessions are not counted again"
    );

    // Expiry, with sessions of 2001: older than any other of the suite.
    let expiring = a
        .create_user(person("sessions-expiring", OrgId(1), Role::Viewer))
        .await
        .expect("create_user");
    let jan_2001 = unix(978_307_200);
    let created_before = jan_2001 + Duration::days(59);
    let seen_before = jan_2001 + Duration::days(243);
    let cases = [
        (
            "sessions-expired-old",
            jan_2001,
            jan_2001 + Duration::days(334),
            false,
            "a session created before created_before is deleted, though seen lately",
        ),
        (
            "sessions-expired-idle",
            jan_2001 + Duration::days(151),
            jan_2001 + Duration::days(151),
            false,
            "a session unused since before seen_before is deleted",
        ),
        (
            "sessions-expired-fresh",
            jan_2001 + Duration::days(151),
            jan_2001 + Duration::days(334),
            true,
            "a session created and used late enough is kept",
        ),
    ];
    for (label, created_at, seen_at, _, _) in cases {
        let session = a
            .create_session(
                expiring.id,
                &token(label),
                "agent",
                "192.0.2.12",
                created_at,
            )
            .await
            .expect("create_session");
        b.touch_session(session.id, seen_at)
            .await
            .expect("touch_session");
    }
    assert_eq!(
        b.delete_expired_sessions(created_before, seen_before)
            .await
            .expect("delete_expired_sessions"),
        2,
        "delete_expired_sessions counts the sessions it deleted"
    );
    for (label, _, _, kept, what) in cases {
        let found = a
            .find_session(&token(label))
            .await
            .expect("find_session")
            .is_some();
        assert_eq!(found, kept, "{what}");
    }
    assert_eq!(
        a.delete_expired_sessions(created_before, seen_before)
            .await
            .expect("delete_expired_sessions"),
        0,
        "nothing is left to delete"
    );
}

/// Many requests on several instances rotate the same session from the same current hash at
/// the same moment: exactly one wins, its hash becomes current, the losers' are not stored.
pub async fn concurrent_rotation(stores: Vec<Arc<dyn SessionStore>>) {
    let (a, b) = two(&stores);
    let user = a
        .create_user(person("rotation-user", OrgId(1), Role::Viewer))
        .await
        .expect("create_user");
    let current = token("rotation-current");
    let t0 = now();
    let id = a
        .create_session(user.id, &current, "agent", "192.0.2.20", t0)
        .await
        .expect("create_session")
        .id;
    let contenders = stores.len().max(8);
    let barrier = Arc::new(Barrier::new(contenders));
    let mut tasks = Vec::new();
    for (i, store) in stores.iter().cycle().take(contenders).enumerate() {
        let (store, barrier, current) = (store.clone(), barrier.clone(), current.clone());
        let new = token(&format!("rotation-new-{i}"));
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let won = store
                .rotate_session(id, &current, &new, t0 + Duration::minutes(10))
                .await
                .expect("rotate_session");
            (won, new)
        }));
    }
    let (mut winners, mut losers) = (Vec::new(), Vec::new());
    for task in tasks {
        let (won, new) = task.await.expect("a rotating task");
        if won {
            winners.push(new);
        } else {
            losers.push(new);
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one of {contenders} concurrent rotations from the same hash wins"
    );
    let stored = b
        .find_session(&winners[0])
        .await
        .expect("find_session")
        .expect("the winner's hash finds the session");
    assert_eq!(
        (stored.auth_token.as_str(), stored.prev_auth_token.as_str()),
        (winners[0].as_str(), current.as_str()),
        "the winner's hash is current and the hash rotated from is previous"
    );
    for lost in &losers {
        assert!(
            a.find_session(lost).await.expect("find_session").is_none(),
            "a losing rotation stores nothing"
        );
    }
    assert_eq!(
        a.find_session(&current)
            .await
            .expect("find_session")
            .map(|stored| stored.session.id),
        Some(id),
        "the hash rotated from still finds the session as the previous one"
    );
}

/// Failed logins are recorded and counted per login, case-insensitively, since a time;
/// cleared per login after a successful one; and deleted once old.
pub async fn login_attempts(stores: Vec<Arc<dyn SessionStore>>) {
    let (a, b) = two(&stores);
    let now = now();
    let attempts = [
        ("Attempts-Alice", 10),
        ("attempts-alice", 5),
        ("ATTEMPTS-ALICE", 1),
        ("attempts-bob", 1),
    ];
    for (i, (login, minutes_ago)) in attempts.into_iter().enumerate() {
        stores[i % stores.len()]
            .record_failed_login(login, "203.0.113.9", now - Duration::minutes(minutes_ago))
            .await
            .expect("record_failed_login");
    }
    let cases = [
        (
            "attempts-alice",
            now - Duration::minutes(30),
            3,
            "every attempt in the window, whatever the case it was recorded in",
        ),
        (
            "Attempts-ALICE",
            now - Duration::minutes(30),
            3,
            "counted in any case",
        ),
        (
            "attempts-alice",
            now - Duration::minutes(7),
            2,
            "only the attempts since the time given",
        ),
        ("attempts-alice", now, 0, "no attempt since now"),
        (
            "attempts-bob",
            now - Duration::minutes(30),
            1,
            "another login's attempts",
        ),
        (
            "attempts-nobody",
            now - Duration::minutes(30),
            0,
            "a login without attempts",
        ),
    ];
    for (login, since, expected, what) in cases {
        assert_eq!(
            b.failed_logins_since(login, since)
                .await
                .expect("failed_logins_since"),
            expected,
            "failed_logins_since({login:?}, {since}): {what}"
        );
    }
    b.clear_failed_logins("ATTEMPTS-alice")
        .await
        .expect("clear_failed_logins");
    for (login, expected, what) in [
        (
            "attempts-alice",
            0,
            "clear_failed_logins forgets the login's attempts, in any case",
        ),
        (
            "attempts-bob",
            1,
            "clear_failed_logins keeps other logins' attempts",
        ),
    ] {
        assert_eq!(
            a.failed_logins_since(login, now - Duration::minutes(30))
                .await
                .expect("failed_logins_since"),
            expected,
            "{what}"
        );
    }

    // Attempts of 2000: older than any other of the suite.
    let jan_2000 = unix(946_684_800);
    for at in [
        jan_2000,
        jan_2000 + Duration::days(1),
        jan_2000 + Duration::days(40),
    ] {
        a.record_failed_login("attempts-old", "203.0.113.10", at)
            .await
            .expect("record_failed_login");
    }
    let before = jan_2000 + Duration::days(20);
    assert_eq!(
        b.delete_login_attempts_before(before)
            .await
            .expect("delete_login_attempts_before"),
        2,
        "delete_login_attempts_before counts the attempts it deleted"
    );
    assert_eq!(
        a.failed_logins_since("attempts-old", jan_2000 - Duration::days(1))
            .await
            .expect("failed_logins_since"),
        1,
        "delete_login_attempts_before keeps newer attempts"
    );
    assert_eq!(
        b.failed_logins_since("attempts-bob", now - Duration::minutes(30))
            .await
            .expect("failed_logins_since"),
        1,
        "delete_login_attempts_before keeps recent attempts"
    );
    assert_eq!(
        a.delete_login_attempts_before(before)
            .await
            .expect("delete_login_attempts_before"),
        0,
        "nothing is left to delete"
    );
}

// Ids no store hands out during the suite.
const UNKNOWN_ORG: OrgId = OrgId(987_654_321);
const UNKNOWN_USER: UserId = UserId(987_654_321);
const UNKNOWN_TEAM: TeamId = TeamId(987_654_321);
const UNKNOWN_TOKEN: TokenId = TokenId(987_654_321);
const UNKNOWN_KEY: i64 = 987_654_321;

/// The first two handles, which every function writes and reads through.
fn two(stores: &[Arc<dyn SessionStore>]) -> (&dyn SessionStore, &dyn SessionStore) {
    assert!(
        stores.len() >= 2,
        "the suite needs at least two handles on one store"
    );
    (stores[0].as_ref(), stores[1].as_ref())
}

/// Now, at the millisecond precision a store keeps.
fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_millisecond(now.millisecond())
        .expect("a valid millisecond")
}

fn unix(seconds: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(seconds).expect("a valid time")
}

/// A person with email `<login>@example.test`, named after the login.
fn person(login: &str, org: OrgId, role: Role) -> NewUser {
    NewUser {
        login: login.to_owned(),
        email: format!("{login}@example.test"),
        name: login.to_owned(),
        password_hash: format!("{login}-hash"),
        salt: format!("{login}-salt"),
        is_admin: false,
        is_service_account: false,
        is_disabled: false,
        org_id: org,
        role,
    }
}

/// A service account: its email is its login and it has no password.
fn service_account(login: &str, org: OrgId, role: Role) -> NewUser {
    NewUser {
        email: login.to_owned(),
        password_hash: String::new(),
        salt: String::new(),
        is_service_account: true,
        ..person(login, org, role)
    }
}

fn filter(query: Option<&str>, org_id: Option<OrgId>, service_accounts: bool) -> UserFilter {
    UserFilter {
        query: query.map(str::to_owned),
        org_id,
        service_accounts,
    }
}

/// A hash shaped like the ones `Identity` stores, distinct per label.
fn token(label: &str) -> String {
    hash_session_token(label, "conformance")
}

/// Which of `hashes` still find a session.
async fn live(store: &dyn SessionStore, hashes: &[String]) -> Vec<bool> {
    let mut found = Vec::new();
    for hash in hashes {
        found.push(
            store
                .find_session(hash)
                .await
                .expect("find_session")
                .is_some(),
        );
    }
    found
}

fn session_ids(sessions: &[Session]) -> Vec<TokenId> {
    sessions.iter().map(|session| session.id).collect()
}

#[track_caller]
fn assert_conflict<T: fmt::Debug>(result: Result<T>, what: &str) {
    assert!(
        matches!(result, Err(Error::Conflict(_))),
        "{what}: expected Error::Conflict, got {result:?}"
    );
}

#[track_caller]
fn assert_not_found<T: fmt::Debug>(result: Result<T>, what: &str) {
    assert!(
        matches!(result, Err(Error::NotFound(_))),
        "{what}: expected Error::NotFound, got {result:?}"
    );
}

#[track_caller]
fn check_page<T: Key>(page: &Page<T>, total: u64, expected: &[&str], what: &str) {
    assert_eq!(
        (page.total, keys(&page.items)),
        (total, expected.to_vec()),
        "{what}: (total, items)"
    );
}

#[track_caller]
fn check_keys<T: Key>(items: &[T], expected: &[&str], what: &str) {
    assert_eq!(keys(items), expected, "{what}");
}

#[track_caller]
fn check_orgs(found: &[(Org, Role)], expected: &[(OrgId, Role)], what: &str) {
    let found: Vec<(OrgId, Role)> = found.iter().map(|(org, role)| (org.id, *role)).collect();
    assert_eq!(found, expected, "{what}");
}

fn keys<T: Key>(items: &[T]) -> Vec<&str> {
    items.iter().map(|item| item.key()).collect()
}

/// What a listing is compared by: names for orgs and teams, logins for users.
trait Key {
    fn key(&self) -> &str;
}

impl Key for Org {
    fn key(&self) -> &str {
        &self.name
    }
}

impl Key for User {
    fn key(&self) -> &str {
        &self.login
    }
}

impl Key for OrgUser {
    fn key(&self) -> &str {
        &self.user.login
    }
}

impl Key for Team {
    fn key(&self) -> &str {
        &self.name
    }
}
