//! The conformance suite of [`DataSourceStore`]: what every implementation must do,
//! concurrency included.
//!
//! [`all`] takes two or more handles on one store (for the SQL store, two pools on one
//! database, standing for two instances) and runs every case; each case works in an org of
//! its own, so the cases do not see each other's rows.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use serde_json::json;

use crate::{
    DataSourceKey, DataSourceSpec, DataSourceStore, DataSourceType, DataSourceUid, Error,
    NewDataSource, OrgId, ProvisionDataSource, ProvisionOutcome, SecureJsonData, UpdateDataSource,
    Version,
};

type Stores = [Arc<dyn DataSourceStore>];

/// Runs every case against `stores` (at least two handles on one store).
pub async fn all(stores: Vec<Arc<dyn DataSourceStore>>) {
    assert!(
        stores.len() >= 2,
        "the suite needs two handles on one store"
    );
    create_get_and_list(&stores).await;
    invalid_input_writes_nothing(&stores).await;
    names_and_uids_are_unique_per_org(&stores).await;
    updates_replace_settings_and_merge_secrets(&stores).await;
    stale_versions_are_refused(&stores).await;
    concurrent_updates_of_one_version_have_one_winner(&stores).await;
    the_default_moves_and_is_never_doubled(&stores).await;
    concurrent_defaults_leave_exactly_one(&stores).await;
    deletes_are_scoped_and_final(&stores).await;
    read_only_data_sources_refuse_the_api(&stores).await;
    provisioning_writes_only_changes(&stores).await;
    concurrent_provisioning_makes_one_row(&stores).await;
    secrets_stay_out_of_debug_output(&stores).await;
}

/// A fresh org id per case, far from the ones people use.
fn fresh_org() -> OrgId {
    static NEXT: AtomicI64 = AtomicI64::new(0);
    let salt = i64::from(rand::random::<u16>()) * 1_000;
    OrgId(1_000_000 + salt + NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A Prometheus spec named `name`.
pub fn prometheus(name: &str) -> DataSourceSpec {
    DataSourceSpec {
        name: name.to_owned(),
        kind: "prometheus".to_owned(),
        url: "http://localhost:9090".to_owned(),
        json_data: json!({"httpMethod": "POST"}),
        ..DataSourceSpec::default()
    }
}

fn new(org: OrgId, spec: DataSourceSpec) -> NewDataSource {
    NewDataSource {
        org_id: org,
        uid: None,
        spec,
    }
}

fn uid_key(uid: &DataSourceUid) -> DataSourceKey {
    DataSourceKey::Uid(uid.clone())
}

async fn create_get_and_list(stores: &Stores) {
    let (a, b) = (&stores[0], &stores[1]);
    let org = fresh_org();
    let created = a
        .create(NewDataSource {
            org_id: org,
            uid: Some(DataSourceUid::from("P1809F7CD0C75ACF3")),
            spec: DataSourceSpec {
                basic_auth: true,
                basic_auth_user: "grafana".to_owned(),
                is_default: true,
                secure_json_data: [("basicAuthPassword", "hunter2"), ("empty", "")]
                    .into_iter()
                    .collect(),
                ..prometheus(" Prometheus ")
            },
        })
        .await
        .expect("create");
    assert_eq!(created.name, "Prometheus", "the name is trimmed");
    assert_eq!(created.uid.as_str(), "P1809F7CD0C75ACF3");
    assert_eq!(created.org_id, org);
    assert_eq!(created.kind, DataSourceType::Prometheus);
    assert_eq!(created.type_name, "Prometheus");
    assert_eq!(created.access, "proxy");
    assert_eq!(created.version, Version(1));
    assert!(created.is_default && created.basic_auth && !created.read_only);
    assert_eq!(created.json_data.get("httpMethod"), Some(&json!("POST")));
    assert_eq!(
        created.secure_json_fields.iter().collect::<Vec<_>>(),
        ["basicAuthPassword"],
        "only secrets with a value count as set"
    );
    let wire = serde_json::to_value(&created).expect("serialise");
    assert_eq!(wire["secureJsonFields"], json!({"basicAuthPassword": true}));
    assert_eq!(wire["type"], json!("prometheus"));
    assert_eq!(wire["orgId"], json!(org.0));
    assert!(!wire.to_string().contains("hunter2"));

    // Another instance reads it by id, uid and name.
    for key in [
        DataSourceKey::Id(created.id),
        uid_key(&created.uid),
        DataSourceKey::Name("Prometheus".to_owned()),
    ] {
        assert_eq!(b.get(org, &key).await.expect("get"), Some(created.clone()));
    }
    assert_eq!(
        b.get(OrgId(org.0 + 500_000), &uid_key(&created.uid))
            .await
            .expect("get"),
        None,
        "another org does not see it"
    );
    let (with_secrets, secrets) = b
        .get_with_secrets(org, &uid_key(&created.uid))
        .await
        .expect("get with secrets")
        .expect("found");
    assert_eq!(with_secrets, created);
    assert_eq!(secrets.get("basicAuthPassword"), Some("hunter2"));

    let testdata = b
        .create(new(
            org,
            DataSourceSpec {
                name: "A testdata".to_owned(),
                kind: "testdata".to_owned(),
                ..DataSourceSpec::default()
            },
        ))
        .await
        .expect("create testdata");
    assert_eq!(
        testdata.kind,
        DataSourceType::TestData,
        "the old id is an alias"
    );
    assert!(
        DataSourceUid::parse(testdata.uid.as_str()).is_ok(),
        "a uid is generated"
    );
    let names: Vec<String> = a
        .list(org)
        .await
        .expect("list")
        .into_iter()
        .map(|ds| ds.name)
        .collect();
    assert_eq!(names, ["A testdata", "Prometheus"]);
}

async fn invalid_input_writes_nothing(stores: &Stores) {
    let store = &stores[0];
    let org = fresh_org();
    for (spec, uid) in [
        (prometheus(""), None),
        (
            DataSourceSpec {
                kind: "mysql".to_owned(),
                ..prometheus("x")
            },
            None,
        ),
        (
            DataSourceSpec {
                url: "not a url".to_owned(),
                ..prometheus("x")
            },
            None,
        ),
        (
            DataSourceSpec {
                name: "a\0b".to_owned(),
                ..prometheus("x")
            },
            None,
        ),
        (
            DataSourceSpec {
                json_data: json!("text"),
                ..prometheus("x")
            },
            None,
        ),
        (prometheus("x"), Some("bad/uid")),
        (prometheus("x"), Some("u".repeat(41).as_str())),
    ] {
        let result = store
            .create(NewDataSource {
                org_id: org,
                uid: uid.map(DataSourceUid::from),
                spec: spec.clone(),
            })
            .await;
        assert!(
            matches!(result, Err(ref err) if err.is_client_error()),
            "{spec:?} with uid {uid:?} is refused: {result:?}"
        );
    }
    assert!(store.list(org).await.expect("list").is_empty());
}

async fn names_and_uids_are_unique_per_org(stores: &Stores) {
    let (a, b) = (&stores[0], &stores[1]);
    let org = fresh_org();
    let first = a
        .create(NewDataSource {
            org_id: org,
            uid: Some(DataSourceUid::from("same-uid")),
            spec: prometheus("Same"),
        })
        .await
        .expect("create");
    assert!(matches!(
        b.create(new(org, prometheus("Same"))).await,
        Err(Error::NameTaken)
    ));
    assert!(matches!(
        b.create(NewDataSource {
            org_id: org,
            uid: Some(first.uid.clone()),
            spec: prometheus("Other"),
        })
        .await,
        Err(Error::UidTaken)
    ));
    let other = b
        .create(new(org, prometheus("Other")))
        .await
        .expect("create");
    assert!(matches!(
        a.update(
            org,
            &uid_key(&other.uid),
            UpdateDataSource {
                version: None,
                spec: prometheus("Same"),
            },
        )
        .await,
        Err(Error::NameTaken)
    ));
    // Another org may reuse both.
    let elsewhere = OrgId(org.0 + 500_000);
    b.create(NewDataSource {
        org_id: elsewhere,
        uid: Some(first.uid.clone()),
        spec: prometheus("Same"),
    })
    .await
    .expect("another org reuses the name and uid");

    // Racing creations of one name: exactly one wins.
    let racers = stores.iter().cycle().take(6).enumerate().map(|(i, store)| {
        let store = store.clone();
        async move {
            let mut spec = prometheus("Raced");
            spec.url = format!("http://racer-{i}:9090");
            store.create(new(org, spec)).await
        }
    });
    let results = futures_join_all(racers).await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(won, 1, "one creation of a name wins: {results:?}");
    assert!(
        results
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|err| matches!(err, Error::NameTaken)),
        "the others are told the name is taken: {results:?}"
    );
}

async fn updates_replace_settings_and_merge_secrets(stores: &Stores) {
    let (a, b) = (&stores[0], &stores[1]);
    let org = fresh_org();
    let created = a
        .create(new(
            org,
            DataSourceSpec {
                secure_json_data: [
                    ("basicAuthPassword", "old-password"),
                    ("httpHeaderValue1", "old-token"),
                    ("tlsClientKey", "key"),
                ]
                .into_iter()
                .collect(),
                ..prometheus("Prom")
            },
        ))
        .await
        .expect("create");
    let updated = b
        .update(
            org,
            &DataSourceKey::Id(created.id),
            UpdateDataSource {
                version: Some(created.version),
                spec: DataSourceSpec {
                    url: "https://prom.example:9443/".to_owned(),
                    json_data: json!({"httpMethod": "GET", "timeInterval": "30s"}),
                    secure_json_data: [("httpHeaderValue1", "new-token"), ("tlsClientKey", "")]
                        .into_iter()
                        .collect(),
                    ..prometheus("Prom renamed")
                },
            },
        )
        .await
        .expect("update");
    assert_eq!(updated.version, Version(2));
    assert_eq!(updated.name, "Prom renamed");
    assert_eq!(updated.url, "https://prom.example:9443/");
    assert_eq!(updated.uid, created.uid);
    assert_eq!(updated.json_data.get("httpMethod"), Some(&json!("GET")));
    assert_eq!(
        updated.secure_json_fields.iter().collect::<Vec<_>>(),
        ["basicAuthPassword", "httpHeaderValue1"],
        "an empty value clears a secret"
    );
    let (_, secrets) = a
        .get_with_secrets(org, &uid_key(&created.uid))
        .await
        .expect("get")
        .expect("found");
    assert_eq!(
        secrets.get("basicAuthPassword"),
        Some("old-password"),
        "kept"
    );
    assert_eq!(
        secrets.get("httpHeaderValue1"),
        Some("new-token"),
        "replaced"
    );
    assert_eq!(secrets.get("tlsClientKey"), None, "cleared");
    assert!(matches!(
        a.update(
            org,
            &DataSourceKey::Uid(DataSourceUid::from("missing")),
            UpdateDataSource {
                version: None,
                spec: prometheus("x")
            },
        )
        .await,
        Err(Error::NotFound)
    ));
    // An invalid update writes nothing.
    assert!(
        a.update(
            org,
            &uid_key(&created.uid),
            UpdateDataSource {
                version: None,
                spec: DataSourceSpec {
                    url: "::".to_owned(),
                    ..prometheus("Prom renamed")
                },
            },
        )
        .await
        .is_err()
    );
    assert_eq!(
        a.get(org, &uid_key(&created.uid)).await.expect("get"),
        Some(updated)
    );
}

async fn stale_versions_are_refused(stores: &Stores) {
    let (a, b) = (&stores[0], &stores[1]);
    let org = fresh_org();
    let created = a
        .create(new(org, prometheus("Prom")))
        .await
        .expect("create");
    let update = |version: Option<Version>, name: &str| UpdateDataSource {
        version,
        spec: prometheus(name),
    };
    let key = uid_key(&created.uid);
    b.update(org, &key, update(Some(Version(1)), "v2"))
        .await
        .expect("the current version updates");
    assert!(matches!(
        a.update(org, &key, update(Some(Version(1)), "stale")).await,
        Err(Error::VersionMismatch)
    ));
    let forced = a
        .update(org, &key, update(None, "forced"))
        .await
        .expect("no version updates whatever is stored");
    assert_eq!(forced.version, Version(3));
    let zero = a
        .update(org, &key, update(Some(Version(0)), "zero"))
        .await
        .expect("version 0 means unknown, as Grafana's clients send it");
    assert_eq!(zero.version, Version(4));
    assert_eq!(
        a.get(org, &key).await.expect("get").map(|ds| ds.name),
        Some("zero".to_owned())
    );
}

async fn concurrent_updates_of_one_version_have_one_winner(stores: &Stores) {
    let org = fresh_org();
    let created = stores[0]
        .create(new(org, prometheus("Contended")))
        .await
        .expect("create");
    for round in 0..3 {
        let current = stores[0]
            .get(org, &uid_key(&created.uid))
            .await
            .expect("get")
            .expect("found");
        let racers = stores.iter().cycle().take(4).enumerate().map(|(i, store)| {
            let (store, uid, version) = (store.clone(), created.uid.clone(), current.version);
            async move {
                let mut spec = prometheus("Contended");
                spec.url = format!("http://writer-{round}-{i}:9090");
                store
                    .update(
                        org,
                        &DataSourceKey::Uid(uid),
                        UpdateDataSource {
                            version: Some(version),
                            spec,
                        },
                    )
                    .await
            }
        });
        let results = futures_join_all(racers).await;
        let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "round {round}: one winner: {results:?}");
        assert!(
            results
                .iter()
                .filter_map(|r| r.as_ref().err())
                .all(|err| matches!(err, Error::VersionMismatch)),
            "round {round}: the losers are told the version is stale: {results:?}"
        );
        let stored = stores[1]
            .get(org, &uid_key(&created.uid))
            .await
            .expect("get")
            .expect("found");
        assert_eq!(stored.version, Version(current.version.0 + 1));
        assert_eq!(&stored, winners[0], "the winner's write is the stored one");
    }
}

async fn the_default_moves_and_is_never_doubled(stores: &Stores) {
    let (a, b) = (&stores[0], &stores[1]);
    let org = fresh_org();
    let spec = |name: &str, is_default: bool| DataSourceSpec {
        is_default,
        ..prometheus(name)
    };
    let first = a
        .create(new(org, spec("First", true)))
        .await
        .expect("create");
    let second = b
        .create(new(org, spec("Second", true)))
        .await
        .expect("create");
    let defaults = |list: Vec<crate::DataSource>| -> Vec<String> {
        list.into_iter()
            .filter(|ds| ds.is_default)
            .map(|ds| ds.name)
            .collect()
    };
    assert_eq!(defaults(a.list(org).await.expect("list")), ["Second"]);
    let first_now = a
        .get(org, &uid_key(&first.uid))
        .await
        .expect("get")
        .expect("found");
    assert!(!first_now.is_default);
    assert_eq!(
        first_now.version, first.version,
        "losing the flag is not an edit"
    );
    a.update(
        org,
        &uid_key(&first.uid),
        UpdateDataSource {
            version: None,
            spec: spec("First", true),
        },
    )
    .await
    .expect("update");
    assert_eq!(defaults(b.list(org).await.expect("list")), ["First"]);
    b.update(
        org,
        &uid_key(&first.uid),
        UpdateDataSource {
            version: None,
            spec: spec("First", false),
        },
    )
    .await
    .expect("update");
    assert!(defaults(a.list(org).await.expect("list")).is_empty());
    // Another org's default is its own.
    let elsewhere = OrgId(org.0 + 500_000);
    a.create(new(elsewhere, spec("Elsewhere", true)))
        .await
        .expect("create");
    b.update(
        org,
        &uid_key(&second.uid),
        UpdateDataSource {
            version: None,
            spec: spec("Second", true),
        },
    )
    .await
    .expect("update");
    assert_eq!(
        defaults(a.list(elsewhere).await.expect("list")),
        ["Elsewhere"]
    );
    assert_eq!(defaults(a.list(org).await.expect("list")), ["Second"]);
}

async fn concurrent_defaults_leave_exactly_one(stores: &Stores) {
    let org = fresh_org();
    let racers = stores.iter().cycle().take(6).enumerate().map(|(i, store)| {
        let store = store.clone();
        async move {
            store
                .create(new(
                    org,
                    DataSourceSpec {
                        is_default: true,
                        ..prometheus(&format!("Racer {i}"))
                    },
                ))
                .await
        }
    });
    for result in futures_join_all(racers).await {
        result.expect("every creation succeeds");
    }
    let list = stores[1].list(org).await.expect("list");
    assert_eq!(list.len(), 6);
    assert_eq!(list.iter().filter(|ds| ds.is_default).count(), 1);

    // Concurrent updates each making another one the default.
    let racers = list.iter().zip(stores.iter().cycle()).map(|(ds, store)| {
        let (store, uid, name) = (store.clone(), ds.uid.clone(), ds.name.clone());
        async move {
            store
                .update(
                    org,
                    &DataSourceKey::Uid(uid),
                    UpdateDataSource {
                        version: None,
                        spec: DataSourceSpec {
                            is_default: true,
                            ..prometheus(&name)
                        },
                    },
                )
                .await
        }
    });
    for result in futures_join_all(racers).await {
        result.expect("every update succeeds");
    }
    let list = stores[0].list(org).await.expect("list");
    assert_eq!(list.iter().filter(|ds| ds.is_default).count(), 1);
}

async fn deletes_are_scoped_and_final(stores: &Stores) {
    let (a, b) = (&stores[0], &stores[1]);
    let org = fresh_org();
    let created = a
        .create(new(org, prometheus("Doomed")))
        .await
        .expect("create");
    assert!(matches!(
        b.delete(OrgId(org.0 + 500_000), &uid_key(&created.uid))
            .await,
        Err(Error::NotFound)
    ));
    let deleted = b
        .delete(org, &DataSourceKey::Name("Doomed".to_owned()))
        .await
        .expect("delete");
    assert_eq!(deleted.uid, created.uid);
    assert_eq!(a.get(org, &uid_key(&created.uid)).await.expect("get"), None);
    assert!(matches!(
        a.delete(org, &uid_key(&created.uid)).await,
        Err(Error::NotFound)
    ));
    // The name is free again.
    a.create(new(org, prometheus("Doomed")))
        .await
        .expect("recreate");
}

fn provision(
    org: OrgId,
    spec: DataSourceSpec,
    editable: bool,
    checksum: &str,
) -> ProvisionDataSource {
    ProvisionDataSource {
        org_id: org,
        uid: None,
        spec,
        editable,
        checksum: checksum.to_owned(),
    }
}

async fn read_only_data_sources_refuse_the_api(stores: &Stores) {
    let (a, b) = (&stores[0], &stores[1]);
    let org = fresh_org();
    let ProvisionOutcome::Created(locked) = a
        .provision(provision(org, prometheus("Locked"), false, "c1"))
        .await
        .expect("provision")
    else {
        panic!("a new entry creates")
    };
    assert!(locked.read_only);
    let key = uid_key(&locked.uid);
    assert!(matches!(
        b.update(
            org,
            &key,
            UpdateDataSource {
                version: None,
                spec: prometheus("Locked")
            }
        )
        .await,
        Err(Error::ReadOnly)
    ));
    assert!(matches!(b.delete(org, &key).await, Err(Error::ReadOnly)));
    let ProvisionOutcome::Created(open) = a
        .provision(provision(org, prometheus("Editable"), true, "c2"))
        .await
        .expect("provision")
    else {
        panic!("a new entry creates")
    };
    assert!(!open.read_only);
    b.update(
        org,
        &uid_key(&open.uid),
        UpdateDataSource {
            version: None,
            spec: prometheus("Editable"),
        },
    )
    .await
    .expect("an editable provisioned data source takes API edits");
    assert_eq!(
        b.delete_provisioned(org, "Locked")
            .await
            .expect("delete")
            .map(|ds| ds.uid),
        Some(locked.uid.clone()),
        "deleteDatasources removes read-only ones"
    );
    assert_eq!(
        b.delete_provisioned(org, "Locked").await.expect("delete"),
        None
    );
}

async fn provisioning_writes_only_changes(stores: &Stores) {
    let (a, b) = (&stores[0], &stores[1]);
    let org = fresh_org();
    let outcome = a
        .provision(ProvisionDataSource {
            uid: Some(DataSourceUid::from("prov-uid")),
            ..provision(org, prometheus("Provisioned"), false, "one")
        })
        .await
        .expect("provision");
    assert!(matches!(outcome, ProvisionOutcome::Created(ref ds) if ds.uid.as_str() == "prov-uid"));
    assert_eq!(
        b.provision(provision(org, prometheus("Provisioned"), false, "one"))
            .await
            .expect("provision"),
        ProvisionOutcome::Unchanged
    );
    let changed = DataSourceSpec {
        url: "http://changed:9090".to_owned(),
        secure_json_data: [("basicAuthPassword", "from-file")].into_iter().collect(),
        ..prometheus("Provisioned")
    };
    let ProvisionOutcome::Updated(updated) = b
        .provision(provision(org, changed, true, "two"))
        .await
        .expect("provision")
    else {
        panic!("a changed entry updates")
    };
    assert_eq!(updated.version, Version(2));
    assert_eq!(updated.url, "http://changed:9090");
    assert!(!updated.read_only, "editable now");
    assert_eq!(updated.uid.as_str(), "prov-uid");
    // Same checksum, same secret: nothing to do; a changed secret value alone updates.
    let same_secret = DataSourceSpec {
        url: "http://changed:9090".to_owned(),
        secure_json_data: [("basicAuthPassword", "from-file")].into_iter().collect(),
        ..prometheus("Provisioned")
    };
    assert_eq!(
        a.provision(provision(org, same_secret.clone(), true, "two"))
            .await
            .expect("provision"),
        ProvisionOutcome::Unchanged
    );
    let rotated = DataSourceSpec {
        secure_json_data: [("basicAuthPassword", "rotated")].into_iter().collect(),
        ..same_secret
    };
    assert!(matches!(
        a.provision(provision(org, rotated, true, "two")).await.expect("provision"),
        ProvisionOutcome::Updated(ref ds) if ds.version == Version(3)
    ));
    // A data source first created through the API is taken over by the file.
    let api = a
        .create(new(org, prometheus("From API")))
        .await
        .expect("create");
    let ProvisionOutcome::Updated(taken) = a
        .provision(provision(org, prometheus("From API"), false, "three"))
        .await
        .expect("provision")
    else {
        panic!("an existing name updates")
    };
    assert_eq!(taken.uid, api.uid);
    assert!(taken.read_only);
}

async fn concurrent_provisioning_makes_one_row(stores: &Stores) {
    let org = fresh_org();
    let racers = stores.iter().cycle().take(6).map(|store| {
        let store = store.clone();
        async move {
            store
                .provision(provision(
                    org,
                    DataSourceSpec {
                        is_default: true,
                        ..prometheus("Shared file")
                    },
                    false,
                    "same-checksum",
                ))
                .await
        }
    });
    let results = futures_join_all(racers).await;
    let created = results
        .iter()
        .filter(|r| matches!(r, Ok(ProvisionOutcome::Created(_))))
        .count();
    let unchanged = results
        .iter()
        .filter(|r| matches!(r, Ok(ProvisionOutcome::Unchanged)))
        .count();
    assert_eq!((created, unchanged), (1, 5), "{results:?}");
    let list = stores[1].list(org).await.expect("list");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].version, Version(1));
}

async fn secrets_stay_out_of_debug_output(stores: &Stores) {
    let org = fresh_org();
    let secrets: SecureJsonData = [("basicAuthPassword", "hunter2-debug")]
        .into_iter()
        .collect();
    let spec = DataSourceSpec {
        secure_json_data: secrets,
        ..prometheus("Debugged")
    };
    assert!(!format!("{spec:?}").contains("hunter2-debug"));
    let created = stores[0].create(new(org, spec)).await.expect("create");
    let fetched = stores[1]
        .get_with_secrets(org, &uid_key(&created.uid))
        .await
        .expect("get");
    let debug = format!("{created:?} {fetched:?}");
    assert!(!debug.contains("hunter2-debug"), "{debug}");
    assert!(debug.contains("basicAuthPassword"));
}

/// Runs the futures concurrently on the runtime and collects their outputs in order.
async fn futures_join_all<F, T>(futures: impl IntoIterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        outputs.push(handle.await.expect("a racer panicked"));
    }
    outputs
}
