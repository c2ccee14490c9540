//! Quick checks of the sea-orm store on every backend; the full contract is the
//! conformance suite's.

use tandem_storage::testkit::TestDatabase;
use time::{Duration, OffsetDateTime};

use crate::{
    Error, NewUser, OrgId, Paging, Role, SessionStore, SqlSessionStore, UserFilter, UserId,
    UserUpdate,
};

const MAIN_ORG: OrgId = OrgId(1);

fn person(login: &str, org_id: OrgId, role: Role) -> NewUser {
    NewUser {
        login: login.to_owned(),
        email: format!("{login}@example.com"),
        name: format!("{login} Name"),
        password_hash: "hash".to_owned(),
        salt: "salt".to_owned(),
        is_admin: false,
        is_service_account: false,
        is_disabled: false,
        org_id,
        role,
    }
}

fn service_account(login: &str, org_id: OrgId) -> NewUser {
    NewUser {
        email: login.to_owned(),
        password_hash: String::new(),
        salt: String::new(),
        is_service_account: true,
        ..person(login, org_id, Role::Viewer)
    }
}

#[track_caller]
fn assert_conflict<T: std::fmt::Debug>(result: crate::Result<T>, expected: &str) {
    match result {
        Err(Error::Conflict(message)) => assert_eq!(message, expected),
        other => panic!("expected a conflict {expected:?}, got {other:?}"),
    }
}

#[track_caller]
fn assert_not_found<T: std::fmt::Debug>(result: crate::Result<T>, expected: &str) {
    match result {
        Err(Error::NotFound(message)) => assert_eq!(message, expected),
        other => panic!("expected not found {expected:?}, got {other:?}"),
    }
}

async fn store(test: &TestDatabase) -> SqlSessionStore {
    SqlSessionStore::new(test.connect_migrated().await)
}

tandem_storage::backend_tests!(
    users_are_unique_by_login_and_email_in_any_case,
    |test: TestDatabase| async move {
        let store = store(&test).await;
        let alice = store
            .create_user(NewUser {
                login: "Alice".to_owned(),
                email: "Alice@Example.com".to_owned(),
                ..person("alice", MAIN_ORG, Role::Editor)
            })
            .await
            .expect("create alice");
        assert_eq!(
            (alice.login.as_str(), alice.email.as_str()),
            ("alice", "alice@example.com")
        );
        assert_eq!(alice.uid.len(), 14);
        assert!(
            alice
                .uid
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
        assert_eq!(alice.last_seen_at, OffsetDateTime::UNIX_EPOCH);
        assert_eq!(alice.org_id, MAIN_ORG);
        assert_eq!(
            store.org_role(MAIN_ORG, alice.id).await.unwrap(),
            Some(Role::Editor)
        );

        let taken = "User with email 'alice@example.com' or username 'alice' already exists";
        assert_conflict(
            store
                .create_user(person("ALICE", MAIN_ORG, Role::Viewer))
                .await,
            taken,
        );
        let same_email = NewUser {
            email: "ALICE@example.com".to_owned(),
            ..person("alice2", MAIN_ORG, Role::Viewer)
        };
        assert_conflict(
            store.create_user(same_email).await,
            "User with email 'alice@example.com' or username 'alice2' already exists",
        );
        // A login that is another user's email would make a login-or-email lookup ambiguous.
        let crossed = NewUser {
            login: "alice@example.com".to_owned(),
            ..person("carol", MAIN_ORG, Role::Viewer)
        };
        assert!(matches!(
            store.create_user(crossed).await,
            Err(Error::Conflict(_))
        ));
        assert_not_found(
            store
                .create_user(person("bob", OrgId(999), Role::Viewer))
                .await,
            "org not found",
        );

        for key in ["alice", "ALICE", "Alice@example.COM"] {
            let found = store.find_user(key).await.unwrap();
            assert_eq!(found.as_ref().map(|user| user.id), Some(alice.id), "{key}");
        }
        assert_eq!(store.find_user("").await.unwrap(), None);
        let (user, hash, salt) = store
            .credentials("alice")
            .await
            .unwrap()
            .expect("credentials");
        assert_eq!(
            (user.id, hash.as_str(), salt.as_str()),
            (alice.id, "hash", "salt")
        );

        let bob = store
            .create_user(person("bob", MAIN_ORG, Role::Viewer))
            .await
            .unwrap();
        assert_conflict(
            store
                .update_user(
                    bob.id,
                    UserUpdate {
                        login: Some("ALICE".to_owned()),
                        ..UserUpdate::default()
                    },
                )
                .await,
            "User with email 'bob@example.com' or username 'alice' already exists",
        );
        let renamed = store
            .update_user(
                bob.id,
                UserUpdate {
                    login: Some("Robert".to_owned()),
                    email: Some("Robert@Example.com".to_owned()),
                    name: Some("Robert".to_owned()),
                },
            )
            .await
            .unwrap();
        assert_eq!(
            (
                renamed.login.as_str(),
                renamed.email.as_str(),
                renamed.name.as_str()
            ),
            ("robert", "robert@example.com", "Robert")
        );
        // Keeping one's own login is no conflict.
        store
            .update_user(
                bob.id,
                UserUpdate {
                    login: Some("robert".to_owned()),
                    ..UserUpdate::default()
                },
            )
            .await
            .expect("own login");
        assert_not_found(
            store.update_user(UserId(999), UserUpdate::default()).await,
            "user not found",
        );
    }
);

tandem_storage::backend_tests!(
    rotation_is_a_compare_and_swap,
    |test: TestDatabase| async move {
        let store = store(&test).await;
        let user = store
            .create_user(person("alice", MAIN_ORG, Role::Viewer))
            .await
            .unwrap();
        let now = OffsetDateTime::now_utc();
        let session = store
            .create_session(user.id, "h1", "agent", "10.0.0.1", now)
            .await
            .unwrap();
        let stored = store
            .find_session("h1")
            .await
            .unwrap()
            .expect("by current hash");
        assert_eq!(
            (stored.auth_token.as_str(), stored.prev_auth_token.as_str()),
            ("h1", "")
        );
        assert_eq!(stored.session, session);
        assert_eq!(
            store.find_session("").await.unwrap().map(|s| s.session.id),
            None
        );

        let later = now + Duration::seconds(10);
        assert!(
            store
                .rotate_session(session.id, "h1", "h2", later)
                .await
                .unwrap()
        );
        // Another instance rotating from the same token lost the race.
        assert!(
            !store
                .rotate_session(session.id, "h1", "h3", later)
                .await
                .unwrap()
        );
        let by_old = store
            .find_session("h1")
            .await
            .unwrap()
            .expect("by previous hash");
        assert_eq!(by_old.session.id, session.id);
        assert_eq!(
            (by_old.auth_token.as_str(), by_old.prev_auth_token.as_str()),
            ("h2", "h1")
        );
        assert!(by_old.session.rotated_at > session.rotated_at);
        assert_eq!(
            by_old.session.seen_at, by_old.session.rotated_at,
            "a rotation is a use"
        );
        let by_new = store
            .find_session("h2")
            .await
            .unwrap()
            .expect("by current hash");
        assert_eq!(by_new.session.id, session.id);
        assert_eq!(
            store
                .find_session("h3")
                .await
                .unwrap()
                .map(|s| s.session.id),
            None
        );

        assert!(
            store
                .rotate_session(session.id, "h2", "h3", later)
                .await
                .unwrap()
        );
        assert_eq!(
            store
                .find_session("h1")
                .await
                .unwrap()
                .map(|s| s.session.id),
            None
        );
        let stored = store
            .find_session("h2")
            .await
            .unwrap()
            .expect("by previous hash");
        assert_eq!(
            (stored.auth_token.as_str(), stored.prev_auth_token.as_str()),
            ("h3", "h2")
        );

        // Touching only moves forward.
        store.touch_session(session.id, later).await.unwrap();
        store.touch_session(session.id, now).await.unwrap();
        let seen = store
            .find_session("h3")
            .await
            .unwrap()
            .expect("session")
            .session
            .seen_at;
        assert_eq!(seen.unix_timestamp(), later.unix_timestamp());
        assert_not_found(
            store.touch_session(crate::TokenId(999), now).await,
            "session not found",
        );
    }
);

tandem_storage::backend_tests!(
    a_new_password_ends_every_other_session,
    |test: TestDatabase| async move {
        let store = store(&test).await;
        let user = store
            .create_user(person("alice", MAIN_ORG, Role::Viewer))
            .await
            .unwrap();
        let other = store
            .create_user(person("bob", MAIN_ORG, Role::Viewer))
            .await
            .unwrap();
        let now = OffsetDateTime::now_utc();
        let mut sessions = Vec::new();
        for (i, hash) in ["a", "b", "c"].into_iter().enumerate() {
            let at = now + Duration::seconds(i as i64);
            sessions.push(
                store
                    .create_session(user.id, hash, "ua", "ip", at)
                    .await
                    .unwrap(),
            );
        }
        let bobs = store
            .create_session(other.id, "d", "ua", "ip", now)
            .await
            .unwrap();
        let ids =
            |sessions: Vec<crate::Session>| sessions.into_iter().map(|s| s.id).collect::<Vec<_>>();
        assert_eq!(
            ids(store.user_sessions(user.id).await.unwrap()),
            vec![sessions[2].id, sessions[1].id, sessions[0].id],
            "newest first"
        );

        store
            .set_password(user.id, "new", "pepper", Some(sessions[1].id))
            .await
            .unwrap();
        assert_eq!(
            ids(store.user_sessions(user.id).await.unwrap()),
            vec![sessions[1].id]
        );
        let (_, hash, salt) = store
            .credentials("alice")
            .await
            .unwrap()
            .expect("credentials");
        assert_eq!((hash.as_str(), salt.as_str()), ("new", "pepper"));
        assert_eq!(
            ids(store.user_sessions(other.id).await.unwrap()),
            vec![bobs.id]
        );

        store.set_disabled(user.id, true).await.unwrap();
        assert!(store.user_sessions(user.id).await.unwrap().is_empty());
        assert!(
            store
                .get_user(user.id)
                .await
                .unwrap()
                .expect("user")
                .is_disabled
        );
        assert_not_found(
            store.set_password(UserId(999), "x", "y", None).await,
            "user not found",
        );

        assert!(store.revoke_session(other.id, bobs.id).await.unwrap());
        assert!(!store.revoke_session(other.id, bobs.id).await.unwrap());
    }
);

tandem_storage::backend_tests!(
    deleting_a_user_deletes_what_hangs_off_it,
    |test: TestDatabase| async move {
        let store = store(&test).await;
        let user = store
            .create_user(person("alice", MAIN_ORG, Role::Admin))
            .await
            .unwrap();
        let keeper = store
            .create_user(person("bob", MAIN_ORG, Role::Viewer))
            .await
            .unwrap();
        let org = store.create_org("Second", Some(user.id)).await.unwrap();
        assert_eq!(
            store.org_role(org.id, user.id).await.unwrap(),
            Some(Role::Admin)
        );
        let team = store.create_team(MAIN_ORG, "Ops", "").await.unwrap();
        store
            .add_team_member(MAIN_ORG, team.id, user.id)
            .await
            .unwrap();
        store
            .add_team_member(MAIN_ORG, team.id, keeper.id)
            .await
            .unwrap();
        store
            .create_session(user.id, "s1", "ua", "ip", OffsetDateTime::now_utc())
            .await
            .unwrap();
        let sa = store
            .create_user(service_account("sa-1", MAIN_ORG))
            .await
            .unwrap();
        store
            .create_api_key(MAIN_ORG, sa.id, "key", "kh", None)
            .await
            .unwrap();

        store.delete_user(user.id).await.unwrap();
        assert_eq!(store.get_user(user.id).await.unwrap(), None);
        assert_eq!(store.org_role(MAIN_ORG, user.id).await.unwrap(), None);
        assert_eq!(store.org_role(org.id, user.id).await.unwrap(), None);
        assert!(store.user_orgs(user.id).await.unwrap().is_empty());
        let members = store.team_members(MAIN_ORG, team.id).await.unwrap();
        assert_eq!(
            members.iter().map(|u| u.id).collect::<Vec<_>>(),
            vec![keeper.id]
        );
        let team = store
            .get_team(MAIN_ORG, team.id)
            .await
            .unwrap()
            .expect("team");
        assert_eq!(team.member_count, 1);
        assert!(store.find_session("s1").await.unwrap().is_none());
        assert_not_found(store.delete_user(user.id).await, "user not found");

        store.delete_user(sa.id).await.unwrap();
        assert!(store.api_key_by_hash("kh").await.unwrap().is_none());
    }
);

tandem_storage::backend_tests!(
    searches_page_with_a_total,
    |test: TestDatabase| async move {
        let store = store(&test).await;
        let other = store.create_org("Other", None).await.unwrap();
        for login in ["erin", "dave", "carol", "bob", "alice"] {
            store
                .create_user(person(login, MAIN_ORG, Role::Viewer))
                .await
                .unwrap();
        }
        let zed = store
            .create_user(person("zed_1", other.id, Role::Editor))
            .await
            .unwrap();
        store
            .create_user(service_account("sa-bot", MAIN_ORG))
            .await
            .unwrap();

        let people = |query: Option<&str>, org_id: Option<OrgId>| UserFilter {
            query: query.map(str::to_owned),
            org_id,
            service_accounts: false,
        };
        let page = store
            .search_users(people(None, None), Paging::new(2, 2))
            .await
            .unwrap();
        assert_eq!(page.total, 6);
        let logins: Vec<_> = page.items.iter().map(|u| u.login.as_str()).collect();
        assert_eq!(logins, ["carol", "dave"]);
        let page = store
            .search_users(people(None, Some(MAIN_ORG)), Paging::new(3, 2))
            .await
            .unwrap();
        assert_eq!(page.total, 5);
        assert_eq!(
            page.items
                .iter()
                .map(|u| u.login.as_str())
                .collect::<Vec<_>>(),
            ["erin"]
        );
        // Case-insensitive on the name; `_` is a character, not a wildcard.
        let page = store
            .search_users(people(Some("DAVE n"), None), Paging::new(1, 10))
            .await
            .unwrap();
        assert_eq!((page.total, page.items[0].login.as_str()), (1, "dave"));
        let page = store
            .search_users(people(Some("_"), None), Paging::new(1, 10))
            .await
            .unwrap();
        assert_eq!(
            page.items.iter().map(|u| u.id).collect::<Vec<_>>(),
            vec![zed.id]
        );
        let bots = UserFilter {
            service_accounts: true,
            ..UserFilter::default()
        };
        let page = store.search_users(bots, Paging::new(1, 10)).await.unwrap();
        assert_eq!(
            page.items
                .iter()
                .map(|u| u.login.as_str())
                .collect::<Vec<_>>(),
            ["sa-bot"]
        );

        let members = store
            .org_users(MAIN_ORG, "", Paging::new(1, 2))
            .await
            .unwrap();
        assert_eq!(members.total, 6, "five people and the service account");
        assert_eq!(members.items[0].user.login, "alice");
        assert_eq!(members.items[0].role, Role::Viewer);
        let members = store
            .org_users(other.id, "ZED", Paging::new(1, 10))
            .await
            .unwrap();
        assert_eq!((members.total, members.items[0].role), (1, Role::Editor));

        let orgs = store.search_orgs("", Paging::new(1, 1)).await.unwrap();
        assert_eq!((orgs.total, orgs.items[0].name.as_str()), (2, "Main Org."));
        let orgs = store.search_orgs("oth", Paging::new(1, 10)).await.unwrap();
        assert_eq!(
            orgs.items.iter().map(|o| o.id).collect::<Vec<_>>(),
            vec![other.id]
        );

        let ops = store
            .create_team(MAIN_ORG, "Ops", "ops@example.com")
            .await
            .unwrap();
        store.create_team(MAIN_ORG, "Dev", "").await.unwrap();
        store
            .create_team(other.id, "Ops", "")
            .await
            .expect("team names are unique per org");
        assert_conflict(
            store.create_team(MAIN_ORG, "Ops", "").await,
            "Team name taken",
        );
        let alice = store.find_user("alice").await.unwrap().expect("alice");
        store
            .add_team_member(MAIN_ORG, ops.id, alice.id)
            .await
            .unwrap();
        assert_conflict(
            store.add_team_member(MAIN_ORG, ops.id, alice.id).await,
            "User is already added to this team",
        );
        assert_not_found(
            store.add_team_member(MAIN_ORG, ops.id, zed.id).await,
            "user is not a member of the org",
        );
        let teams = store
            .search_teams(MAIN_ORG, "", Paging::new(1, 10))
            .await
            .unwrap();
        let summary: Vec<_> = teams
            .items
            .iter()
            .map(|t| (t.name.as_str(), t.member_count))
            .collect();
        assert_eq!((teams.total, summary), (2, vec![("Dev", 0), ("Ops", 1)]));
        let teams = store
            .search_teams(MAIN_ORG, "op", Paging::new(1, 10))
            .await
            .unwrap();
        assert_eq!(
            teams.items.iter().map(|t| t.id).collect::<Vec<_>>(),
            vec![ops.id]
        );
    }
);

tandem_storage::backend_tests!(
    leaving_or_deleting_an_org_moves_its_members,
    |test: TestDatabase| async move {
        let store = store(&test).await;
        let second = store.create_org("Second", None).await.unwrap();
        let third = store.create_org("Third", None).await.unwrap();
        assert_conflict(
            store.create_org("Second", None).await,
            "Organization name taken",
        );
        assert_conflict(
            store.rename_org(third.id, "Second").await,
            "Organization name taken",
        );
        let alice = store
            .create_user(person("alice", second.id, Role::Viewer))
            .await
            .unwrap();
        let bob = store
            .create_user(person("bob", second.id, Role::Viewer))
            .await
            .unwrap();
        store
            .add_org_user(third.id, alice.id, Role::Editor)
            .await
            .unwrap();
        store
            .add_org_user(MAIN_ORG, alice.id, Role::Viewer)
            .await
            .unwrap();
        assert_conflict(
            store.add_org_user(MAIN_ORG, alice.id, Role::Viewer).await,
            "User is already member of this organization",
        );
        let team = store.create_team(second.id, "Team", "").await.unwrap();
        store
            .add_team_member(second.id, team.id, bob.id)
            .await
            .unwrap();

        store.remove_org_user(second.id, alice.id).await.unwrap();
        let alice_now = store.get_user(alice.id).await.unwrap().expect("alice");
        assert_eq!(
            alice_now.org_id, MAIN_ORG,
            "the remaining org with the lowest id"
        );
        assert_not_found(
            store.remove_org_user(second.id, alice.id).await,
            "user is not a member of the org",
        );
        assert_not_found(
            store.set_current_org(alice.id, second.id).await,
            "user is not a member of the org",
        );
        store.set_current_org(alice.id, third.id).await.unwrap();
        let orgs = store.user_orgs(alice.id).await.unwrap();
        let orgs: Vec<_> = orgs
            .iter()
            .map(|(org, role)| (org.name.as_str(), *role))
            .collect();
        assert_eq!(orgs, [("Main Org.", Role::Viewer), ("Third", Role::Editor)]);

        store.delete_org(second.id).await.unwrap();
        assert_eq!(store.get_org(second.id).await.unwrap(), None);
        assert_eq!(store.get_team(second.id, team.id).await.unwrap(), None);
        // Bob had no other org: his current org stays, with no role in it.
        let bob_now = store.get_user(bob.id).await.unwrap().expect("bob");
        assert_eq!(
            (
                bob_now.org_id,
                store.org_role(second.id, bob.id).await.unwrap()
            ),
            (second.id, None)
        );
        // Joining an org from nowhere makes it current.
        store
            .add_org_user(third.id, bob.id, Role::Viewer)
            .await
            .unwrap();
        assert_eq!(
            store.get_user(bob.id).await.unwrap().expect("bob").org_id,
            third.id
        );

        store.delete_org(third.id).await.unwrap();
        assert_eq!(
            store
                .get_user(alice.id)
                .await
                .unwrap()
                .expect("alice")
                .org_id,
            MAIN_ORG
        );
        assert_not_found(store.delete_org(third.id).await, "org not found");
    }
);

tandem_storage::backend_tests!(keys_and_login_attempts, |test: TestDatabase| async move {
    let store = store(&test).await;
    let sa = store
        .create_user(service_account("sa-1", MAIN_ORG))
        .await
        .unwrap();
    let alice = store
        .create_user(person("alice", MAIN_ORG, Role::Viewer))
        .await
        .unwrap();
    let expires = OffsetDateTime::now_utc() + Duration::days(1);
    let key = store
        .create_api_key(MAIN_ORG, sa.id, "k", "kh1", Some(expires))
        .await
        .unwrap();
    assert_eq!(
        key.expires.map(|t| t.unix_timestamp()),
        Some(expires.unix_timestamp())
    );
    assert_conflict(
        store
            .create_api_key(MAIN_ORG, sa.id, "k", "kh2", None)
            .await,
        "service account token with given name already exists in the organization",
    );
    assert_not_found(
        store
            .create_api_key(MAIN_ORG, alice.id, "k", "kh3", None)
            .await,
        "service account not found",
    );
    assert_eq!(
        store.api_key_by_hash("kh1").await.unwrap(),
        Some(key.clone())
    );
    let used = OffsetDateTime::now_utc();
    store.touch_api_key(key.id, used).await.unwrap();
    let touched = store.api_keys(sa.id).await.unwrap();
    assert_eq!(
        touched[0].last_used_at.map(|t| t.unix_timestamp()),
        Some(used.unix_timestamp())
    );
    assert_not_found(
        store.delete_api_key(alice.id, key.id).await,
        "api key not found",
    );
    store.delete_api_key(sa.id, key.id).await.unwrap();
    assert!(store.api_keys(sa.id).await.unwrap().is_empty());

    let now = OffsetDateTime::now_utc();
    for minutes in [1, 2, 30] {
        store
            .record_failed_login("Alice", "10.0.0.1", now - Duration::minutes(minutes))
            .await
            .unwrap();
    }
    store
        .record_failed_login("bob", "10.0.0.1", now)
        .await
        .unwrap();
    let since = now - Duration::minutes(5);
    assert_eq!(store.failed_logins_since("ALICE", since).await.unwrap(), 2);
    assert_eq!(
        store
            .delete_login_attempts_before(now - Duration::minutes(10))
            .await
            .unwrap(),
        1
    );
    store.clear_failed_logins("alice").await.unwrap();
    assert_eq!(store.failed_logins_since("alice", since).await.unwrap(), 0);
    assert_eq!(store.failed_logins_since("bob", since).await.unwrap(), 1);
    let long = "x".repeat(300);
    store
        .record_failed_login(&long, "ip", now)
        .await
        .expect("an over-long login is cut");
    assert_eq!(store.failed_logins_since(&long, since).await.unwrap(), 1);
});

tandem_storage::backend_tests!(
    racing_creates_of_one_login_give_one_user_and_conflicts,
    |test: TestDatabase| async move {
        // Separate pools stand for separate instances; each passes the check before the
        // insert, so only the unique index can settle the race.
        let mut tasks = Vec::new();
        for i in 0..6 {
            let store = store(&test).await;
            tasks.push(tokio::spawn(async move {
                let user = NewUser {
                    email: format!("racer{i}@example.com"),
                    ..person("racer", MAIN_ORG, Role::Viewer)
                };
                store.create_user(user).await
            }));
        }
        let (mut created, mut conflicts) = (0, 0);
        for task in tasks {
            match task.await.expect("task") {
                Ok(_) => created += 1,
                Err(Error::Conflict(_)) => conflicts += 1,
                Err(err) => panic!("unexpected error: {err}"),
            }
        }
        assert_eq!((created, conflicts), (1, 5));
    }
);

tandem_storage::backend_tests!(
    a_violated_unique_index_is_a_conflict,
    |test: TestDatabase| async move {
        let db = test.connect_migrated().await;
        let insert = || {
            db.transaction(|tx| async move {
                crate::sql::insert_org_user(&*tx, MAIN_ORG, UserId(42), Role::Viewer, 0).await
            })
        };
        insert().await.expect("first membership");
        assert_conflict(
            insert().await,
            "User is already member of this organization",
        );
    }
);

tandem_storage::backend_tests!(
    concurrent_lookups_each_find_their_own_session,
    |test| async move {
        let store = store(&test).await;
        let now = OffsetDateTime::now_utc();
        let mut expected = Vec::new();
        for i in 0..40 {
            let user = store
                .create_user(person(&format!("user{i}"), MAIN_ORG, Role::Editor))
                .await
                .expect("user");
            let session = store
                .create_session(user.id, &format!("first{i}"), "ua", "ip", now)
                .await
                .expect("session");
            // Half of the sessions rotate: both their hashes must still find them.
            if i % 2 == 0 {
                assert!(
                    store
                        .rotate_session(
                            session.id,
                            &format!("first{i}"),
                            &format!("second{i}"),
                            now
                        )
                        .await
                        .expect("rotation")
                );
                expected.push((format!("second{i}"), Some((session.id, user.id))));
            }
            expected.push((format!("first{i}"), Some((session.id, user.id))));
            expected.push((format!("unknown{i}"), None));
        }

        // Far more lookups at once than one batch or the batches in flight hold, so the
        // queue fills and batches mix current, previous and unknown hashes.
        let mut lookups = Vec::new();
        for round in 0..4 {
            for (hash, want) in expected.clone() {
                let store = store.clone();
                lookups.push(tokio::spawn(async move {
                    let found = store.find_session_with_user(&hash).await.expect("lookup");
                    let got = found.map(|(stored, user, role)| {
                        assert_eq!(role, Some(Role::Editor), "{hash}");
                        assert_eq!(stored.session.user_id, user.id, "{hash}");
                        (stored.session.id, user.id)
                    });
                    assert_eq!(got, want, "{hash} in round {round}");
                }));
            }
        }
        for lookup in lookups {
            lookup.await.expect("a lookup task");
        }
    }
);
