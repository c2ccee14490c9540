//! The conformance suite of [`DashboardStore`].
//!
//! Each function takes two or more handles on one shared store, standing for instances of a
//! cluster: it writes through one handle and reads through another, and panics when the
//! implementation breaks a promise of the trait's documentation. Each function works in an
//! org of its own (ids from 9001 up), so they can run one after another on one store;
//! [`all`] runs them all. `SqlDashboardStore` runs the suite on SQLite, PostgreSQL and
//! MySQL; another implementation shows it is a drop-in replacement by passing it too.
//!
//! The functions go through [`Dashboards`] with a [`RecordingEvents`] sink per handle, so
//! they also check that every committed change is announced exactly once.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::{
    CreateFolder, DashboardAction, DashboardEvent, DashboardEvents, DashboardProvider,
    DashboardSettings, DashboardStore, DashboardUid, Dashboards, Error, FolderId, FolderRef,
    FolderUid, HitKind, OrgId, ProvisionDashboard, ProvisionOutcome, ProvisionReport, Provisioner,
    SaveDashboard, SearchHit, SearchQuery, SourceCheck, TagCount, UpdateFolder, UserId, Version,
    VersionQuery, provider_uid,
};

/// An events sink that remembers what it heard.
#[derive(Debug, Default)]
pub struct RecordingEvents {
    events: Mutex<Vec<DashboardEvent>>,
}

impl RecordingEvents {
    /// Everything heard so far, and forgets it.
    pub fn take(&self) -> Vec<DashboardEvent> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl DashboardEvents for RecordingEvents {
    fn publish(&self, event: DashboardEvent) {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event);
    }
}

/// One "instance": the service over one handle, with its own recorded events.
#[derive(Clone)]
struct Instance {
    dashboards: Dashboards,
    events: Arc<RecordingEvents>,
}

fn instances(stores: &[Arc<dyn DashboardStore>]) -> Vec<Instance> {
    assert!(
        stores.len() >= 2,
        "the suite needs two handles on one store"
    );
    stores
        .iter()
        .map(|store| {
            let events = Arc::new(RecordingEvents::default());
            Instance {
                dashboards: Dashboards::new(
                    store.clone(),
                    events.clone(),
                    DashboardSettings::default(),
                ),
                events,
            }
        })
        .collect()
}

/// Everything every instance heard, and forgets it.
fn heard(instances: &[Instance]) -> Vec<DashboardEvent> {
    instances.iter().flat_map(|i| i.events.take()).collect()
}

/// Runs every function of the suite, one after another, on the same handles. Retention
/// trims every dashboard of the store, so it runs last.
pub async fn all(stores: Vec<Arc<dyn DashboardStore>>) {
    save_and_get(stores.clone()).await;
    invalid_inputs_write_nothing(stores.clone()).await;
    concurrent_saves(stores.clone()).await;
    concurrent_overwrites(stores.clone()).await;
    versions_and_restore(stores.clone()).await;
    folders(stores.clone()).await;
    folder_delete_cascades(stores.clone()).await;
    search(stores.clone()).await;
    tags_and_stars(stores.clone()).await;
    orgs_are_separate(stores.clone()).await;
    provisioning(stores.clone()).await;
    provisioning_after_a_stall(stores.clone()).await;
    retention(stores).await;
}

fn board(title: &str, uid: Option<&str>, version: i64) -> Value {
    let mut value = json!({
        "title": title,
        "version": version,
        "panels": [{"type": "graph", "title": "requests"}],
        "schemaVersion": 39,
        "someFieldTandemDoesNotKnow": {"kept": true},
    });
    if let Some(uid) = uid {
        value["uid"] = Value::from(uid);
    }
    value
}

fn save_cmd(org: OrgId, dashboard: Value, folder: FolderRef, overwrite: bool) -> SaveDashboard {
    SaveDashboard {
        org_id: org,
        dashboard,
        folder,
        overwrite,
        message: String::new(),
        user_id: UserId(7),
    }
}

async fn version_numbers(d: &Dashboards, org: OrgId, uid: &DashboardUid) -> Vec<i64> {
    d.versions(org, uid, VersionQuery::default())
        .await
        .expect("list versions")
        .versions
        .iter()
        .map(|v| v.version.0)
        .collect()
}

fn uid(text: &str) -> DashboardUid {
    DashboardUid::from(text)
}

/// Saves create (version 1, a generated uid, one version row) and update (the next
/// version); the stored JSON carries the stored id, uid, title and version and keeps
/// unknown fields; a stale version is refused unless overwriting; the JSON's id finds the
/// dashboard when it has no uid; the folder is named by uid or id; what one instance saves
/// the other reads.
pub async fn save_and_get(stores: Vec<Arc<dyn DashboardStore>>) {
    let inst = instances(&stores);
    let (a, b) = (&inst[0].dashboards, &inst[1].dashboards);
    let org = OrgId(9001);

    let created = a
        .save(save_cmd(
            org,
            board("  Service Overview ", None, 0),
            FolderRef::Root,
            false,
        ))
        .await
        .expect("create");
    assert_eq!(created.version, Version(1));
    assert_eq!(created.title, "Service Overview", "the title is trimmed");
    assert_eq!(created.slug, "service-overview");
    assert_eq!(
        created.uid.as_str().len(),
        14,
        "a generated uid: {}",
        created.uid
    );
    assert!(DashboardUid::parse(created.uid.as_str()).is_ok());
    assert_eq!(created.folder, None);
    assert_eq!(created.created_by, UserId(7));
    assert_eq!(created.provisioning, None);
    assert!(created.can_save());
    for (key, expected) in [
        ("id", json!(created.id.0)),
        ("uid", json!(created.uid.as_str())),
        ("title", json!("Service Overview")),
        ("version", json!(1)),
        ("someFieldTandemDoesNotKnow", json!({"kept": true})),
    ] {
        assert_eq!(created.data[key], expected, "stored JSON field {key}");
    }

    let read = b
        .get(org, &created.uid)
        .await
        .expect("read on the other instance");
    assert_eq!(read.data, created.data);
    assert_eq!(read.id, created.id);
    assert_eq!(
        b.get_by_id(org, created.id).await.expect("by id").uid,
        created.uid
    );
    assert_eq!(version_numbers(b, org, &created.uid).await, [1]);

    // Clients post back what they read.
    let mut next = read.data.clone();
    next["title"] = json!("Service Overview v2");
    let updated = b
        .save(save_cmd(org, next.clone(), FolderRef::Root, false))
        .await
        .expect("update with the stored version");
    assert_eq!(updated.version, Version(2));
    assert_eq!(updated.id, created.id);
    assert_eq!(updated.data["version"], json!(2));
    assert_eq!(updated.created_by, UserId(7));

    let stale = a
        .save(save_cmd(org, next.clone(), FolderRef::Root, false))
        .await;
    assert!(
        matches!(stale, Err(Error::VersionMismatch)),
        "stale save: {stale:?}"
    );
    assert_eq!(
        a.get(org, &created.uid).await.expect("get").version,
        Version(2)
    );
    let forced = a
        .save(save_cmd(org, next.clone(), FolderRef::Root, true))
        .await
        .expect("overwrite");
    assert_eq!(
        forced.version,
        Version(3),
        "overwrite still moves the version by one"
    );
    assert_eq!(version_numbers(a, org, &created.uid).await, [3, 2, 1]);

    // By id alone.
    let by_id = a
        .save(save_cmd(
            org,
            json!({"id": created.id.0, "title": "By id", "version": 3}),
            FolderRef::Root,
            false,
        ))
        .await
        .expect("update by id");
    assert_eq!(
        (by_id.uid.clone(), by_id.version),
        (created.uid.clone(), Version(4))
    );

    // An explicit uid that does not exist yet creates the dashboard, whatever its version.
    let explicit = a
        .save(save_cmd(
            org,
            board("Explicit", Some("explicit-uid_1"), 17),
            FolderRef::Root,
            false,
        ))
        .await
        .expect("create with a uid");
    assert_eq!(
        (explicit.uid.as_str(), explicit.version),
        ("explicit-uid_1", Version(1))
    );
    // A uid and an id naming different dashboards.
    let clash = a
        .save(save_cmd(
            org,
            json!({"id": created.id.0, "uid": "explicit-uid_1", "title": "x", "version": 1}),
            FolderRef::Root,
            true,
        ))
        .await;
    assert!(matches!(clash, Err(Error::DashboardUidTaken)), "{clash:?}");

    // Folders by uid and by id, and back to the root.
    let folder = a
        .create_folder(CreateFolder {
            org_id: org,
            uid: Some(FolderUid::from("save-folder")),
            title: "Save folder".to_owned(),
            parent_uid: None,
            user_id: UserId(7),
        })
        .await
        .expect("create folder");
    let moved = b
        .save(save_cmd(
            org,
            board("Explicit", Some("explicit-uid_1"), 1),
            FolderRef::Uid(folder.uid.clone()),
            false,
        ))
        .await
        .expect("move by folder uid");
    let summary = moved.folder.clone().expect("in a folder");
    assert_eq!(
        (summary.id, summary.uid.as_str(), summary.title.as_str()),
        (folder.id, "save-folder", "Save folder")
    );
    let by_folder_id = b
        .save(save_cmd(
            org,
            board("Explicit", Some("explicit-uid_1"), 2),
            FolderRef::from_request(None, Some(folder.id.0)),
            false,
        ))
        .await
        .expect("by folder id");
    assert_eq!(by_folder_id.folder.map(|f| f.uid), Some(folder.uid.clone()));
    let root = b
        .save(save_cmd(
            org,
            board("Explicit", Some("explicit-uid_1"), 3),
            FolderRef::from_request(Some(""), Some(0)),
            false,
        ))
        .await
        .expect("back to the root");
    assert_eq!(root.folder, None);
    assert_eq!(
        a.get(org, &uid("explicit-uid_1"))
            .await
            .expect("get")
            .folder,
        None
    );

    // Same title in the same folder is allowed (Grafana 11.3 and later).
    a.save(save_cmd(
        org,
        board("By id", None, 0),
        FolderRef::Root,
        false,
    ))
    .await
    .expect("a second dashboard with the same title");

    // Deleting removes it everywhere.
    let gone = b.delete(org, &created.uid).await.expect("delete");
    assert_eq!(
        (gone.id, gone.title.as_str(), gone.version),
        (created.id, "By id", Version(4))
    );
    assert!(matches!(
        a.get(org, &created.uid).await,
        Err(Error::DashboardNotFound)
    ));
    assert!(matches!(
        a.get_by_id(org, created.id).await,
        Err(Error::DashboardNotFound)
    ));
    assert!(matches!(
        a.versions(org, &created.uid, VersionQuery::default()).await,
        Err(Error::DashboardNotFound)
    ));
    assert!(matches!(
        b.delete(org, &created.uid).await,
        Err(Error::DashboardNotFound)
    ));
    heard(&inst);
}

/// Whether an error is the one a case expects.
type IsExpected = fn(&Error) -> bool;

/// Each invalid save is refused with its own error and writes nothing: no dashboard, no
/// version, no tag, no event.
pub async fn invalid_inputs_write_nothing(stores: Vec<Arc<dyn DashboardStore>>) {
    let inst = instances(&stores);
    let a = &inst[0].dashboards;
    let org = OrgId(9002);
    let existing = a
        .save(save_cmd(
            org,
            board("Existing", Some("existing"), 0),
            FolderRef::Root,
            false,
        ))
        .await
        .expect("create");
    heard(&inst);

    let long_title = "x".repeat(5001);
    let long_uid = "u".repeat(41);
    let mut long_message = save_cmd(org, board("Fine", None, 0), FolderRef::Root, false);
    long_message.message = "m".repeat(501);
    let mut tagged = board("   ", None, 0);
    tagged["tags"] = json!(["never-stored"]);
    let cases: Vec<(&str, SaveDashboard, IsExpected)> = vec![
        (
            "empty title",
            save_cmd(org, tagged, FolderRef::Root, false),
            |e| matches!(e, Error::EmptyTitle),
        ),
        (
            "missing title",
            save_cmd(org, json!({"panels": []}), FolderRef::Root, false),
            |e| matches!(e, Error::EmptyTitle),
        ),
        (
            "over-long title",
            save_cmd(org, board(&long_title, None, 0), FolderRef::Root, false),
            |e| matches!(e, Error::TitleTooLong),
        ),
        (
            "bad uid",
            save_cmd(
                org,
                board("Fine", Some("no spaces/slashes"), 0),
                FolderRef::Root,
                false,
            ),
            |e| matches!(e, Error::InvalidUid),
        ),
        (
            "over-long uid",
            save_cmd(
                org,
                board("Fine", Some(&long_uid), 0),
                FolderRef::Root,
                false,
            ),
            |e| matches!(e, Error::UidTooLong),
        ),
        ("over-long message", long_message, |e| {
            matches!(e, Error::MessageTooLong)
        }),
        (
            "unknown folder uid",
            save_cmd(
                org,
                board("Fine", None, 0),
                FolderRef::Uid(FolderUid::from("nope")),
                false,
            ),
            |e| matches!(e, Error::FolderNotFound),
        ),
        (
            "unknown folder id",
            save_cmd(
                org,
                board("Fine", None, 0),
                FolderRef::Id(FolderId(987_654_321)),
                false,
            ),
            |e| matches!(e, Error::FolderNotFound),
        ),
        (
            "unknown id",
            save_cmd(
                org,
                json!({"id": 987_654_321, "title": "Fine"}),
                FolderRef::Root,
                true,
            ),
            |e| matches!(e, Error::DashboardNotFound),
        ),
        (
            "not an object",
            save_cmd(org, json!(["title"]), FolderRef::Root, false),
            |e| matches!(e, Error::InvalidDashboard(_)),
        ),
        (
            "empty title on update",
            save_cmd(org, board("", Some("existing"), 1), FolderRef::Root, true),
            |e| matches!(e, Error::EmptyTitle),
        ),
        (
            "unknown folder on update",
            save_cmd(
                org,
                board("Changed", Some("existing"), 1),
                FolderRef::Uid(FolderUid::from("nope")),
                true,
            ),
            |e| matches!(e, Error::FolderNotFound),
        ),
    ];
    for (what, cmd, expected) in cases {
        let result = a.save(cmd).await;
        match &result {
            Err(err) if expected(err) => {}
            other => panic!("{what}: unexpected {other:?}"),
        }
    }
    let hits = a.search(SearchQuery::new(org)).await.expect("search");
    assert_eq!(
        hits.iter().map(|h| h.uid.as_str()).collect::<Vec<_>>(),
        ["existing"],
        "nothing but the existing dashboard"
    );
    let after = a.get(org, &existing.uid).await.expect("get");
    assert_eq!(after.version, Version(1));
    assert_eq!(after.title, "Existing");
    assert_eq!(version_numbers(a, org, &existing.uid).await, [1]);
    assert_eq!(a.tags(org).await.expect("tags"), []);
    assert_eq!(heard(&inst), [], "no event for a refused save");
}

/// 30 saves of the same version at once, through both handles: exactly one wins, 29 get
/// `VersionMismatch`, the version moves by one, one version row and one event are added.
pub async fn concurrent_saves(stores: Vec<Arc<dyn DashboardStore>>) {
    let inst = instances(&stores);
    let org = OrgId(9003);
    let first = inst[0]
        .dashboards
        .save(save_cmd(
            org,
            board("Contended", Some("contended"), 0),
            FolderRef::Root,
            false,
        ))
        .await
        .expect("create");
    heard(&inst);
    let mut tasks = JoinSet::new();
    for n in 0..30 {
        let d = inst[n % inst.len()].dashboards.clone();
        let mut data = first.data.clone();
        data["title"] = json!(format!("Contended by {n}"));
        tasks.spawn(async move { d.save(save_cmd(org, data, FolderRef::Root, false)).await });
    }
    let (mut won, mut lost) = (Vec::new(), 0);
    while let Some(result) = tasks.join_next().await {
        match result.expect("task") {
            Ok(dashboard) => won.push(dashboard),
            Err(Error::VersionMismatch) => lost += 1,
            Err(other) => panic!("a concurrent save failed otherwise: {other:?}"),
        }
    }
    assert_eq!(
        (won.len(), lost),
        (1, 29),
        "exactly one of 30 concurrent saves wins"
    );
    assert_eq!(won[0].version, Version(2));
    let stored = inst[1].dashboards.get(org, &first.uid).await.expect("get");
    assert_eq!((stored.version, &stored.title), (Version(2), &won[0].title));
    assert_eq!(
        version_numbers(&inst[1].dashboards, org, &first.uid).await,
        [2, 1]
    );
    let events = heard(&inst);
    assert_eq!(
        events,
        [DashboardEvent {
            org,
            uid: first.uid.clone(),
            action: DashboardAction::Saved,
            version: Version(2)
        }],
        "one event for the one change"
    );
}

/// 24 overwriting saves at once all succeed, each with its own version, each with one
/// version row and one event.
pub async fn concurrent_overwrites(stores: Vec<Arc<dyn DashboardStore>>) {
    let inst = instances(&stores);
    let org = OrgId(9004);
    let first = inst[0]
        .dashboards
        .save(save_cmd(
            org,
            board("Overwritten", Some("overwritten"), 0),
            FolderRef::Root,
            false,
        ))
        .await
        .expect("create");
    heard(&inst);
    let mut tasks = JoinSet::new();
    for n in 0..24 {
        let d = inst[n % inst.len()].dashboards.clone();
        let data = board(&format!("Overwritten by {n}"), Some("overwritten"), 1);
        tasks.spawn(async move { d.save(save_cmd(org, data, FolderRef::Root, true)).await });
    }
    let mut versions = BTreeSet::new();
    while let Some(result) = tasks.join_next().await {
        let saved = result.expect("task").expect("an overwrite always succeeds");
        assert!(
            versions.insert(saved.version.0),
            "version {} given twice",
            saved.version
        );
    }
    assert_eq!(versions, (2..=25).collect::<BTreeSet<_>>());
    assert_eq!(
        inst[1]
            .dashboards
            .get(org, &first.uid)
            .await
            .expect("get")
            .version,
        Version(25)
    );
    let rows = version_numbers(&inst[1].dashboards, org, &first.uid).await;
    assert_eq!(
        rows,
        (1..=25).rev().collect::<Vec<_>>(),
        "one version row per save"
    );
    let mut heard_versions: Vec<i64> = heard(&inst).iter().map(|e| e.version.0).collect();
    heard_versions.sort_unstable();
    assert_eq!(
        heard_versions,
        (2..=25).collect::<Vec<_>>(),
        "one event per save"
    );
}

/// Versions list newest first, in pages by continue token or offset; one version reads
/// back with its JSON; a restore saves the old JSON as the next version.
pub async fn versions_and_restore(stores: Vec<Arc<dyn DashboardStore>>) {
    let inst = instances(&stores);
    let (a, b) = (&inst[0].dashboards, &inst[1].dashboards);
    let org = OrgId(9005);
    let mut current = a
        .save(save_cmd(
            org,
            board("Version 1", Some("versioned"), 0),
            FolderRef::Root,
            false,
        ))
        .await
        .expect("create");
    for n in 2..=5 {
        let mut cmd = save_cmd(
            org,
            board(
                &format!("Version {n}"),
                Some("versioned"),
                current.version.0,
            ),
            FolderRef::Root,
            false,
        );
        cmd.message = format!("change {n}");
        current = a.save(cmd).await.expect("save");
    }
    let first_page = b
        .versions(
            org,
            &current.uid,
            VersionQuery {
                limit: 2,
                ..VersionQuery::default()
            },
        )
        .await
        .expect("page 1");
    assert_eq!(
        first_page
            .versions
            .iter()
            .map(|v| v.version.0)
            .collect::<Vec<_>>(),
        [5, 4]
    );
    assert_eq!(first_page.versions[0].message, "change 5");
    assert_eq!(first_page.versions[0].parent_version, Version(4));
    assert_eq!(first_page.versions[0].dashboard_id, current.id);
    assert_eq!(first_page.versions[0].dashboard_uid, current.uid);
    assert_eq!(first_page.versions[0].created_by, UserId(7));
    let token = first_page.continue_token.clone().expect("more to come");
    let second_page = b
        .versions(
            org,
            &current.uid,
            VersionQuery {
                limit: 2,
                start: 0,
                continue_token: Some(token),
            },
        )
        .await
        .expect("page 2");
    assert_eq!(
        second_page
            .versions
            .iter()
            .map(|v| v.version.0)
            .collect::<Vec<_>>(),
        [3, 2]
    );
    let token = second_page.continue_token.clone().expect("one more");
    let last_page = b
        .versions(
            org,
            &current.uid,
            VersionQuery {
                limit: 2,
                start: 0,
                continue_token: Some(token),
            },
        )
        .await
        .expect("page 3");
    assert_eq!(
        last_page
            .versions
            .iter()
            .map(|v| v.version.0)
            .collect::<Vec<_>>(),
        [1]
    );
    assert_eq!(last_page.continue_token, None);
    assert_eq!(last_page.versions[0].parent_version, Version(0));
    let by_offset = b
        .versions(
            org,
            &current.uid,
            VersionQuery {
                limit: 2,
                start: 3,
                continue_token: None,
            },
        )
        .await
        .expect("by offset");
    assert_eq!(
        by_offset
            .versions
            .iter()
            .map(|v| v.version.0)
            .collect::<Vec<_>>(),
        [2, 1]
    );
    let by_id = b
        .versions_by_id(org, current.id, VersionQuery::default())
        .await
        .expect("by dashboard id");
    assert_eq!(by_id.versions.len(), 5);

    let two = b
        .version(org, &current.uid, Version(2))
        .await
        .expect("version 2");
    assert_eq!(two.data["title"], json!("Version 2"));
    assert_eq!(two.info.version, Version(2));
    assert!(matches!(
        b.version(org, &current.uid, Version(99)).await,
        Err(Error::VersionNotFound)
    ));
    assert!(matches!(
        b.version(org, &uid("no-such-dashboard"), Version(1)).await,
        Err(Error::DashboardNotFound)
    ));
    heard(&inst);

    let restored = b
        .restore(org, &current.uid, Version(2), UserId(8))
        .await
        .expect("restore");
    assert_eq!(restored.version, Version(6));
    assert_eq!(restored.title, "Version 2");
    assert_eq!(restored.updated_by, UserId(8));
    let newest = a
        .versions(
            org,
            &current.uid,
            VersionQuery {
                limit: 1,
                ..VersionQuery::default()
            },
        )
        .await
        .expect("versions")
        .versions
        .remove(0);
    assert_eq!(newest.version, Version(6));
    assert_eq!(newest.restored_from, Some(Version(2)));
    assert_eq!(newest.message, "Restored from version 2");
    assert!(matches!(
        a.restore(org, &current.uid, Version(99), UserId(8)).await,
        Err(Error::VersionNotFound)
    ));
    assert_eq!(
        heard(&inst),
        [DashboardEvent {
            org,
            uid: current.uid.clone(),
            action: DashboardAction::Saved,
            version: Version(6)
        }]
    );
}

/// Folders are created with a given or generated uid, read by uid and id, listed by
/// title, nested under existing parents only, renamed by compare-and-swap on their version.
pub async fn folders(stores: Vec<Arc<dyn DashboardStore>>) {
    let inst = instances(&stores);
    let (a, b) = (&inst[0].dashboards, &inst[1].dashboards);
    let org = OrgId(9006);
    let create = |uid: Option<&str>, title: &str, parent: Option<&str>| CreateFolder {
        org_id: org,
        uid: uid.map(FolderUid::from),
        title: title.to_owned(),
        parent_uid: parent.map(FolderUid::from),
        user_id: UserId(7),
    };
    let ops = a
        .create_folder(create(Some("ops"), "Ops", None))
        .await
        .expect("create");
    assert_eq!(
        (ops.uid.as_str(), ops.title.as_str(), ops.version),
        ("ops", "Ops", Version(1))
    );
    assert_eq!(ops.parent_uid, None);
    let generated = a
        .create_folder(create(None, "  apps ", None))
        .await
        .expect("generated uid");
    assert_eq!(generated.uid.as_str().len(), 14);
    assert_eq!(generated.title, "apps");
    assert!(matches!(
        b.create_folder(create(Some("ops"), "Other", None)).await,
        Err(Error::FolderUidTaken)
    ));
    a.save(save_cmd(
        org,
        board("Not a folder", Some("dash-uid"), 0),
        FolderRef::Root,
        false,
    ))
    .await
    .expect("dashboard");
    assert!(
        matches!(
            b.create_folder(create(Some("dash-uid"), "Clash", None))
                .await,
            Err(Error::FolderUidTaken)
        ),
        "a dashboard's uid is taken too"
    );
    assert!(
        matches!(
            a.save(save_cmd(
                org,
                board("Clash", Some("ops"), 0),
                FolderRef::Root,
                false
            ))
            .await,
            Err(Error::DashboardUidTaken)
        ),
        "and a folder's uid for a dashboard"
    );
    assert!(
        matches!(
            a.create_folder(create(None, "  ", None)).await,
            Err(Error::EmptyFolderTitle)
        ),
        "empty title"
    );
    for (what, bad) in [("too long", create(None, &"t".repeat(5001), None))] {
        assert!(
            matches!(a.create_folder(bad).await, Err(Error::InvalidFolderTitle)),
            "{what} title"
        );
    }
    assert!(matches!(
        a.create_folder(create(Some("bad uid!"), "Bad", None)).await,
        Err(Error::InvalidUid)
    ));
    assert!(matches!(
        a.create_folder(create(None, "Orphan", Some("no-such-parent")))
            .await,
        Err(Error::FolderNotFound)
    ));

    let child = b
        .create_folder(create(Some("ops-child"), "Child", Some("ops")))
        .await
        .expect("child");
    assert_eq!(child.parent_uid, Some(FolderUid::from("ops")));
    let level3 = b
        .create_folder(create(Some("ops-l3"), "L3", Some("ops-child")))
        .await
        .expect("level 3");
    b.create_folder(create(Some("ops-l4"), "L4", Some(level3.uid.as_str())))
        .await
        .expect("level 4");
    assert!(matches!(
        b.create_folder(create(Some("ops-l5"), "L5", Some("ops-l4")))
            .await,
        Err(Error::FolderTooDeep(4))
    ));

    assert_eq!(b.folder(org, &ops.uid).await.expect("by uid"), ops);
    assert_eq!(b.folder_by_id(org, ops.id).await.expect("by id"), ops);
    assert!(matches!(
        b.folder(org, &FolderUid::from("none")).await,
        Err(Error::FolderNotFound)
    ));
    let root: Vec<String> = b
        .folders(org, None)
        .await
        .expect("list")
        .into_iter()
        .map(|f| f.title)
        .collect();
    assert_eq!(
        root,
        ["apps", "Ops"],
        "root folders by title, case-insensitively"
    );
    let children: Vec<String> = b
        .folders(org, Some(&ops.uid))
        .await
        .expect("list children")
        .into_iter()
        .map(|f| f.uid.into_string())
        .collect();
    assert_eq!(children, ["ops-child"]);

    let update = |title: &str, version: Option<i64>, overwrite: bool| UpdateFolder {
        org_id: org,
        uid: ops.uid.clone(),
        title: Some(title.to_owned()),
        version: version.map(Version),
        overwrite,
        user_id: UserId(8),
    };
    let renamed = a
        .update_folder(update("Operations", Some(1), false))
        .await
        .expect("rename");
    assert_eq!(
        (renamed.title.as_str(), renamed.version, renamed.updated_by),
        ("Operations", Version(2), UserId(8))
    );
    assert!(matches!(
        b.update_folder(update("Stale", Some(1), false)).await,
        Err(Error::FolderVersionMismatch)
    ));
    assert!(matches!(
        b.update_folder(update("No version", None, false)).await,
        Err(Error::FolderVersionMismatch)
    ));
    let forced = b
        .update_folder(update("Forced", Some(1), true))
        .await
        .expect("overwrite");
    assert_eq!(forced.version, Version(3));
    assert_eq!(a.folder(org, &ops.uid).await.expect("get").title, "Forced");
    assert!(matches!(
        b.update_folder(update(" ", Some(3), false)).await,
        Err(Error::EmptyFolderTitle)
    ));
    let mut missing = update("x", Some(1), true);
    missing.uid = FolderUid::from("none");
    assert!(matches!(
        b.update_folder(missing).await,
        Err(Error::FolderNotFound)
    ));
    heard(&inst);
}

/// Deleting a folder deletes its subfolders and every dashboard in them with their
/// versions, tags and stars, and announces one deletion per dashboard.
pub async fn folder_delete_cascades(stores: Vec<Arc<dyn DashboardStore>>) {
    let inst = instances(&stores);
    let (a, b) = (&inst[0].dashboards, &inst[1].dashboards);
    let org = OrgId(9007);
    let create = |uid: &str, parent: Option<&str>| CreateFolder {
        org_id: org,
        uid: Some(FolderUid::from(uid)),
        title: uid.to_owned(),
        parent_uid: parent.map(FolderUid::from),
        user_id: UserId(7),
    };
    a.create_folder(create("top", None)).await.expect("top");
    a.create_folder(create("sub", Some("top")))
        .await
        .expect("sub");
    a.create_folder(create("kept", None)).await.expect("kept");
    let mut tagged = board("In top", Some("in-top"), 0);
    tagged["tags"] = json!(["cascade"]);
    a.save(save_cmd(
        org,
        tagged,
        FolderRef::Uid(FolderUid::from("top")),
        false,
    ))
    .await
    .expect("in top");
    a.save(save_cmd(
        org,
        board("In top", Some("in-top"), 1),
        FolderRef::Uid(FolderUid::from("top")),
        false,
    ))
    .await
    .expect("second version");
    a.save(save_cmd(
        org,
        board("In sub", Some("in-sub"), 0),
        FolderRef::Uid(FolderUid::from("sub")),
        false,
    ))
    .await
    .expect("in sub");
    a.save(save_cmd(
        org,
        board("Elsewhere", Some("elsewhere"), 0),
        FolderRef::Uid(FolderUid::from("kept")),
        false,
    ))
    .await
    .expect("elsewhere");
    a.star(UserId(7), org, &uid("in-sub")).await.expect("star");
    heard(&inst);

    let deleted = b
        .delete_folder(org, &FolderUid::from("top"))
        .await
        .expect("delete folder");
    assert_eq!(deleted.folder.uid.as_str(), "top");
    assert_eq!(deleted.subfolders, [FolderUid::from("sub")]);
    let mut gone: Vec<(String, i64)> = deleted
        .dashboards
        .iter()
        .map(|d| (d.uid.as_str().to_owned(), d.version.0))
        .collect();
    gone.sort();
    assert_eq!(gone, [("in-sub".to_owned(), 1), ("in-top".to_owned(), 2)]);
    for uid_text in ["in-top", "in-sub"] {
        assert!(matches!(
            a.get(org, &uid(uid_text)).await,
            Err(Error::DashboardNotFound)
        ));
        assert!(matches!(
            a.version(org, &uid(uid_text), Version(1)).await,
            Err(Error::DashboardNotFound)
        ));
    }
    for folder in ["top", "sub"] {
        assert!(matches!(
            a.folder(org, &FolderUid::from(folder)).await,
            Err(Error::FolderNotFound)
        ));
    }
    a.folder(org, &FolderUid::from("kept"))
        .await
        .expect("an unrelated folder stays");
    a.get(org, &uid("elsewhere"))
        .await
        .expect("an unrelated dashboard stays");
    assert_eq!(
        a.tags(org).await.expect("tags"),
        [],
        "the tags went with their dashboards"
    );
    assert_eq!(
        a.starred(UserId(7), org).await.expect("stars"),
        [],
        "and the stars"
    );
    let mut events = heard(&inst);
    events.sort_by(|x, y| x.uid.cmp(&y.uid));
    assert_eq!(
        events,
        [
            DashboardEvent {
                org,
                uid: uid("in-sub"),
                action: DashboardAction::Deleted,
                version: Version(1)
            },
            DashboardEvent {
                org,
                uid: uid("in-top"),
                action: DashboardAction::Deleted,
                version: Version(2)
            },
        ],
        "one deletion per dashboard"
    );
    assert!(matches!(
        b.delete_folder(org, &FolderUid::from("top")).await,
        Err(Error::FolderNotFound)
    ));
    assert_eq!(heard(&inst), []);
}

/// Search: a case-insensitive title substring (`%` and `_` are literal), tags all
/// required, the type, folders (`general` for the root), uids and stars filter; folders
/// come first, then dashboards, each by title case-insensitively; pages count from 1 and
/// past the last one are empty.
pub async fn search(stores: Vec<Arc<dyn DashboardStore>>) {
    let inst = instances(&stores);
    let (a, b) = (&inst[0].dashboards, &inst[1].dashboards);
    let org = OrgId(9008);
    let user = UserId(42);
    for (uid, title) in [("f-beta", "beta folder"), ("f-alpha", "Alpha Folder")] {
        a.create_folder(CreateFolder {
            org_id: org,
            uid: Some(FolderUid::from(uid)),
            title: title.to_owned(),
            parent_uid: None,
            user_id: UserId(7),
        })
        .await
        .expect("folder");
    }
    a.create_folder(CreateFolder {
        org_id: org,
        uid: Some(FolderUid::from("f-nested")),
        title: "Nested folder".to_owned(),
        parent_uid: Some(FolderUid::from("f-alpha")),
        user_id: UserId(7),
    })
    .await
    .expect("nested folder");
    let boards: [(&str, &str, &[&str], Option<&str>); 7] = [
        ("d-cpu", "CPU usage", &["prod", "linux"], Some("f-alpha")),
        ("d-cpu-temp", "cpu Temperature", &["prod"], Some("f-beta")),
        ("d-mem", "Memory", &["linux"], None),
        ("d-done", "100% done_ here", &[], None),
        ("d-plain", "1000 done here", &[], None),
        ("d-elan", "Élan Vital", &["fr"], None),
        ("d-nested", "Deep", &[], Some("f-nested")),
    ];
    for (uid_text, title, tags, folder) in boards {
        let mut data = board(title, Some(uid_text), 0);
        data["tags"] = json!(tags);
        let folder = folder.map_or(FolderRef::Root, |f| FolderRef::Uid(FolderUid::from(f)));
        a.save(save_cmd(org, data, folder, false))
            .await
            .expect("save");
    }
    a.star(user, org, &uid("d-mem")).await.expect("star");
    a.star(user, org, &uid("d-cpu")).await.expect("star");
    a.star(UserId(43), org, &uid("d-done"))
        .await
        .expect("someone else's star");

    let run = |query: SearchQuery| async move { b.search(query).await.expect("search") };
    let uids = |hits: &[SearchHit]| hits.iter().map(|h| h.uid.clone()).collect::<Vec<_>>();
    let q = |f: &dyn Fn(&mut SearchQuery)| {
        let mut query = SearchQuery::new(org);
        query.user_id = Some(user);
        f(&mut query);
        query
    };

    let everything = run(q(&|_| {})).await;
    assert_eq!(
        uids(&everything),
        [
            "f-alpha",
            "f-beta",
            "f-nested",
            "d-done",
            "d-plain",
            "d-cpu-temp",
            "d-cpu",
            "d-nested",
            "d-mem",
            "d-elan"
        ],
        "folders first, then by title case-insensitively"
    );
    let cpu = everything
        .iter()
        .find(|h| h.uid == "d-cpu")
        .expect("cpu hit");
    assert_eq!(cpu.kind, HitKind::Dashboard);
    assert_eq!(cpu.title, "CPU usage");
    assert_eq!(cpu.slug, "cpu-usage");
    assert_eq!(cpu.tags, ["linux", "prod"]);
    assert!(cpu.is_starred);
    let folder = cpu.folder.clone().expect("in a folder");
    assert_eq!(
        (folder.uid.as_str(), folder.title.as_str()),
        ("f-alpha", "Alpha Folder")
    );
    let mem = everything
        .iter()
        .find(|h| h.uid == "d-mem")
        .expect("mem hit");
    assert_eq!(mem.folder, None, "no folder at the root");
    let done = everything
        .iter()
        .find(|h| h.uid == "d-done")
        .expect("done hit");
    assert!(!done.is_starred, "another user's star");
    let alpha = &everything[0];
    assert_eq!(
        (alpha.kind, alpha.slug.as_str(), alpha.folder.clone()),
        (HitKind::Folder, "alpha-folder", None)
    );
    let nested = everything
        .iter()
        .find(|h| h.uid == "f-nested")
        .expect("nested folder hit");
    assert_eq!(
        nested.folder.as_ref().map(|f| f.uid.as_str()),
        Some("f-alpha")
    );

    for (query, expected) in [
        ("cpu", vec!["d-cpu-temp", "d-cpu"]),
        ("CPU", vec!["d-cpu-temp", "d-cpu"]),
        ("Cpu U", vec!["d-cpu"]),
        ("FOLDER", vec!["f-alpha", "f-beta", "f-nested"]),
        ("%", vec!["d-done"]),
        ("0% d", vec!["d-done"]),
        ("_", vec!["d-done"]),
        ("élan", vec!["d-elan"]),
        ("ÉLAN", vec!["d-elan"]),
        ("elan", vec![]),
        ("no such title", vec![]),
    ] {
        let hits = run(q(&|s| s.query = Some(query.to_owned()))).await;
        assert_eq!(uids(&hits), expected, "query {query:?}");
    }
    for (tags, expected) in [
        (vec!["prod"], vec!["d-cpu-temp", "d-cpu"]),
        (vec!["prod", "linux"], vec!["d-cpu"]),
        (vec!["linux", "fr"], vec![]),
        (vec!["Prod"], vec![]),
    ] {
        let hits = run(q(&|s| {
            s.tags = tags.iter().map(|t| t.to_string()).collect()
        }))
        .await;
        assert_eq!(uids(&hits), expected, "tags {tags:?}");
    }
    let folders_only = run(q(&|s| s.kind = Some(HitKind::Folder))).await;
    assert_eq!(uids(&folders_only), ["f-alpha", "f-beta", "f-nested"]);
    let dashboards_only = run(q(&|s| {
        s.kind = Some(HitKind::Dashboard);
        s.query = Some("e".to_owned());
    }))
    .await;
    assert_eq!(
        uids(&dashboards_only),
        [
            "d-done",
            "d-plain",
            "d-cpu-temp",
            "d-cpu",
            "d-nested",
            "d-mem"
        ]
    );
    let in_folders = run(q(&|s| {
        s.folder_uids = vec!["f-alpha".to_owned(), "f-beta".to_owned()]
    }))
    .await;
    assert_eq!(
        uids(&in_folders),
        ["f-nested", "d-cpu-temp", "d-cpu"],
        "what is directly in them"
    );
    let at_root = run(q(&|s| s.folder_uids = vec!["general".to_owned()])).await;
    assert_eq!(
        uids(&at_root),
        ["f-alpha", "f-beta", "d-done", "d-plain", "d-mem", "d-elan"]
    );
    let by_uid = run(q(&|s| {
        s.uids = vec![
            "d-mem".to_owned(),
            "f-beta".to_owned(),
            "unknown".to_owned(),
        ]
    }))
    .await;
    assert_eq!(uids(&by_uid), ["f-beta", "d-mem"]);
    let starred = run(q(&|s| s.starred = true)).await;
    assert_eq!(uids(&starred), ["d-cpu", "d-mem"]);
    let combined = run(q(&|s| {
        s.starred = true;
        s.tags = vec!["linux".to_owned()];
        s.query = Some("mem".to_owned());
    }))
    .await;
    assert_eq!(uids(&combined), ["d-mem"]);
    let mut anonymous = SearchQuery::new(org);
    anonymous.starred = true;
    assert_eq!(run(anonymous).await, [], "nobody's stars");

    // Pages cut across the folders and the dashboards.
    let all_uids = uids(&everything);
    let mut paged = Vec::new();
    for page in 1..=4 {
        let hits = run(q(&|s| {
            s.limit = Some(3);
            s.page = Some(page);
        }))
        .await;
        assert_eq!(hits.len(), if page < 4 { 3 } else { 1 }, "page {page}");
        paged.extend(uids(&hits));
    }
    assert_eq!(
        paged, all_uids,
        "pages in order, nothing twice, nothing missing"
    );
    let past_end = run(q(&|s| {
        s.limit = Some(3);
        s.page = Some(5);
    }))
    .await;
    assert_eq!(past_end, [], "past the last page");
    let far_past_end = run(q(&|s| {
        s.limit = Some(5000);
        s.page = Some(1000);
    }))
    .await;
    assert_eq!(far_past_end, []);
    let limit_zero = run(q(&|s| s.limit = Some(0))).await;
    assert_eq!(
        limit_zero.len(),
        everything.len(),
        "limit 0 means the default"
    );
    assert_eq!(
        SearchQuery {
            limit: Some(100_000),
            ..SearchQuery::new(org)
        }
        .effective_limit(),
        5000
    );
    assert_eq!(
        run(SearchQuery::new(OrgId(9099))).await,
        [],
        "another org sees nothing"
    );
    heard(&inst);
}

/// Tags are counted per org; stars are per user, idempotent, and go with their dashboard.
pub async fn tags_and_stars(stores: Vec<Arc<dyn DashboardStore>>) {
    let inst = instances(&stores);
    let (a, b) = (&inst[0].dashboards, &inst[1].dashboards);
    let org = OrgId(9009);
    for (uid_text, tags) in [
        ("t1", json!(["a", "b", "a", "", 3])),
        ("t2", json!(["b"])),
        ("t3", json!([])),
    ] {
        let mut data = board(uid_text, Some(uid_text), 0);
        data["tags"] = tags;
        a.save(save_cmd(org, data, FolderRef::Root, false))
            .await
            .expect("save");
    }
    let expected = [
        TagCount {
            term: "a".to_owned(),
            count: 1,
        },
        TagCount {
            term: "b".to_owned(),
            count: 2,
        },
    ];
    assert_eq!(b.tags(org).await.expect("tags"), expected);
    assert_eq!(b.get(org, &uid("t1")).await.expect("get").tags, ["a", "b"]);
    // Saving again replaces the tags.
    let mut data = board("t2", Some("t2"), 1);
    data["tags"] = json!(["c"]);
    a.save(save_cmd(org, data, FolderRef::Root, false))
        .await
        .expect("retag");
    assert_eq!(
        b.tags(org).await.expect("tags"),
        [
            TagCount {
                term: "a".to_owned(),
                count: 1
            },
            TagCount {
                term: "b".to_owned(),
                count: 1
            },
            TagCount {
                term: "c".to_owned(),
                count: 1
            }
        ]
    );

    let (me, you) = (UserId(100), UserId(101));
    assert!(!b.is_starred(me, org, &uid("t1")).await.expect("is starred"));
    a.star(me, org, &uid("t1")).await.expect("star");
    a.star(me, org, &uid("t1"))
        .await
        .expect("starring twice is fine");
    b.star(me, org, &uid("t3")).await.expect("star");
    b.star(you, org, &uid("t2")).await.expect("star");
    assert!(b.is_starred(me, org, &uid("t1")).await.expect("is starred"));
    assert!(
        !b.is_starred(you, org, &uid("t1"))
            .await
            .expect("is starred")
    );
    assert_eq!(
        b.starred(me, org).await.expect("starred"),
        [uid("t1"), uid("t3")]
    );
    assert_eq!(
        b.starred(me, OrgId(9098)).await.expect("starred elsewhere"),
        []
    );
    assert!(b.unstar(me, org, &uid("t1")).await.expect("unstar"));
    assert!(!b.unstar(me, org, &uid("t1")).await.expect("unstar twice"));
    assert!(matches!(
        a.star(me, org, &uid("none")).await,
        Err(Error::DashboardNotFound)
    ));
    assert!(matches!(
        a.unstar(me, org, &uid("none")).await,
        Err(Error::DashboardNotFound)
    ));
    assert!(
        !a.is_starred(me, org, &uid("none"))
            .await
            .expect("is starred")
    );
    a.delete(org, &uid("t3")).await.expect("delete");
    assert_eq!(b.starred(me, org).await.expect("starred"), []);
    heard(&inst);
}

/// A uid lives in its org: the same uid in two orgs is two dashboards, and one org never
/// reads, updates or deletes another's.
pub async fn orgs_are_separate(stores: Vec<Arc<dyn DashboardStore>>) {
    let inst = instances(&stores);
    let a = &inst[0].dashboards;
    let (one, two) = (OrgId(9010), OrgId(9011));
    let first = a
        .save(save_cmd(
            one,
            board("Org one", Some("shared-uid"), 0),
            FolderRef::Root,
            false,
        ))
        .await
        .expect("org one");
    let second = a
        .save(save_cmd(
            two,
            board("Org two", Some("shared-uid"), 0),
            FolderRef::Root,
            false,
        ))
        .await
        .expect("org two");
    assert_ne!(first.id, second.id);
    assert_eq!(a.get(one, &first.uid).await.expect("get").title, "Org one");
    assert!(matches!(
        a.get_by_id(two, first.id).await,
        Err(Error::DashboardNotFound)
    ));
    assert!(matches!(
        a.save(save_cmd(
            two,
            json!({"id": first.id.0, "title": "steal"}),
            FolderRef::Root,
            true
        ))
        .await,
        Err(Error::DashboardNotFound)
    ));
    a.delete(two, &second.uid).await.expect("delete in org two");
    assert_eq!(
        a.get(one, &first.uid).await.expect("still there").version,
        Version(1)
    );
    heard(&inst);
}

/// Retention keeps the newest versions of every dashboard and deletes the rest.
pub async fn retention(stores: Vec<Arc<dyn DashboardStore>>) {
    let inst = instances(&stores);
    let (a, b) = (&inst[0].dashboards, &inst[1].dashboards);
    let org = OrgId(9012);
    let mut current = a
        .save(save_cmd(
            org,
            board("Kept", Some("kept"), 0),
            FolderRef::Root,
            false,
        ))
        .await
        .expect("create");
    for _ in 0..29 {
        current = a
            .save(save_cmd(
                org,
                board("Kept", Some("kept"), current.version.0),
                FolderRef::Root,
                false,
            ))
            .await
            .expect("save");
    }
    let small = a
        .save(save_cmd(
            org,
            board("Small", Some("small"), 0),
            FolderRef::Root,
            false,
        ))
        .await
        .expect("create");
    assert_eq!(current.version, Version(30));
    let deleted = b.trim_versions().await.expect("trim");
    assert!(
        deleted >= 10,
        "at least this dashboard's 10 oldest versions: {deleted}"
    );
    assert_eq!(
        version_numbers(a, org, &current.uid).await,
        (11..=30).rev().collect::<Vec<_>>()
    );
    assert_eq!(version_numbers(a, org, &small.uid).await, [1]);
    assert_eq!(
        b.trim_versions().await.expect("trim again"),
        0,
        "nothing left to trim"
    );
    let deleted = b.store().trim_versions(3).await.expect("keep 3");
    assert!(deleted >= 17);
    assert_eq!(version_numbers(a, org, &current.uid).await, [30, 29, 28]);
    assert_eq!(
        b.store().trim_versions(0).await.map(|_| ()).ok(),
        Some(()),
        "0 keeps one"
    );
    assert_eq!(version_numbers(a, org, &current.uid).await, [30]);
    assert_eq!(
        a.get(org, &current.uid).await.expect("get").version,
        Version(30)
    );
    heard(&inst);
}

// ---- provisioning

/// A directory of dashboard files for one test, removed when dropped.
struct Files {
    root: PathBuf,
}

impl Files {
    fn new(name: &str) -> Files {
        let salt: u64 = rand::random();
        let root = std::env::temp_dir().join(format!("tandem-provisioning-{name}-{salt:016x}"));
        std::fs::create_dir_all(&root).expect("create the files directory");
        Files { root }
    }

    fn dir(&self, sub: &str) -> PathBuf {
        let dir = self.root.join(sub);
        std::fs::create_dir_all(&dir).expect("create a directory");
        dir
    }

    fn write(&self, relative: &str, value: &Value) {
        let path = self.root.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create the parent directory");
        }
        std::fs::write(&path, serde_json::to_vec_pretty(value).expect("json"))
            .expect("write a file");
    }

    fn remove(&self, relative: &str) {
        std::fs::remove_file(self.root.join(relative)).expect("remove a file");
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn provider(name: &str, org: OrgId, path: &Path) -> DashboardProvider {
    DashboardProvider {
        name: name.to_owned(),
        org_id: org,
        folder: String::new(),
        folder_uid: None,
        disable_deletion: false,
        allow_ui_updates: false,
        update_interval: Duration::from_secs(10),
        path: path.to_path_buf(),
        folders_from_files_structure: false,
    }
}

fn sum(a: ProvisionReport, b: ProvisionReport) -> ProvisionReport {
    ProvisionReport {
        created: a.created + b.created,
        updated: a.updated + b.updated,
        unchanged: a.unchanged + b.unchanged,
        deleted: a.deleted + b.deleted,
        failed: a.failed + b.failed,
        stale: a.stale + b.stale,
    }
}

/// Two provisioners run at once, as two instances would.
async fn both(provisioners: &[Provisioner; 2]) -> ProvisionReport {
    let (x, y) = tokio::join!(provisioners[0].run_once(), provisioners[1].run_once());
    sum(
        x.expect("provision on instance 1"),
        y.expect("provision on instance 2"),
    )
}

fn saved_versions(events: &[DashboardEvent], action: DashboardAction) -> Vec<(String, i64)> {
    let mut seen: Vec<(String, i64)> = events
        .iter()
        .filter(|e| e.action == action)
        .map(|e| (e.uid.as_str().to_owned(), e.version.0))
        .collect();
    seen.sort();
    seen
}

/// File provisioning from two instances at once over the same files: one dashboard and
/// one version per file, exactly one new version per file change, nothing on a run without
/// change, deletion when a file disappears (unless `disableDeletion`), folders created
/// once, and provisioned dashboards refusing API saves and deletes unless
/// `allowUiUpdates`.
pub async fn provisioning(stores: Vec<Arc<dyn DashboardStore>>) {
    let inst = instances(&stores);
    let org = OrgId(9013);
    let files = Files::new("conformance");
    let main_dir = files.dir("main");
    let kept_dir = files.dir("kept");
    let tree_dir = files.dir("tree");
    files.write("main/cpu.json", &json!({"uid": "prov-cpu", "title": "Provisioned CPU", "tags": ["prov"], "version": 7, "id": 123}));
    files.write(
        "main/nested/mem.json",
        &json!({"title": "Provisioned memory"}),
    );
    files.write("main/broken.json", &json!(["not", "a", "dashboard"]));
    files.write("main/notes.txt", &json!({"title": "ignored"}));
    files.write(
        "kept/kept.json",
        &json!({"uid": "prov-kept", "title": "Kept"}),
    );
    files.write(
        "tree/team-a/a.json",
        &json!({"uid": "prov-tree-a", "title": "Tree A"}),
    );
    files.write(
        "tree/top.json",
        &json!({"uid": "prov-tree-top", "title": "Tree top"}),
    );

    let mut main = provider("main", org, &main_dir);
    main.folder = "Provisioned".to_owned();
    let mut kept = provider("kept", org, &kept_dir);
    kept.disable_deletion = true;
    kept.allow_ui_updates = true;
    kept.folder_uid = Some(FolderUid::from("prov-kept-folder"));
    kept.folder = "Kept folder".to_owned();
    let mut tree = provider("tree", org, &tree_dir);
    tree.folders_from_files_structure = true;
    let missing = provider("missing", org, &files.root.join("does-not-exist"));
    let providers = vec![main, kept, tree, missing];
    let provisioners = [
        Provisioner::new(inst[0].dashboards.clone(), providers.clone()),
        Provisioner::new(inst[1].dashboards.clone(), providers),
    ];
    let d = &inst[0].dashboards;
    let mem_uid = provider_uid("main", "nested/mem.json");

    // First run on two instances at once: each file becomes one dashboard, once.
    let report = both(&provisioners).await;
    assert_eq!(report.created, 5, "{report:?}");
    assert_eq!(report.updated, 0, "{report:?}");
    assert_eq!(
        report.unchanged, 5,
        "the instance that lost each race found it done: {report:?}"
    );
    assert_eq!(
        report.failed, 4,
        "the broken file and the missing directory, on each instance: {report:?}"
    );
    let events = heard(&inst);
    assert_eq!(
        saved_versions(&events, DashboardAction::Saved),
        [
            (mem_uid.as_str().to_owned(), 1),
            ("prov-cpu".to_owned(), 1),
            ("prov-kept".to_owned(), 1),
            ("prov-tree-a".to_owned(), 1),
            ("prov-tree-top".to_owned(), 1),
        ],
        "one event per created dashboard"
    );
    let cpu = d.get(org, &uid("prov-cpu")).await.expect("provisioned");
    assert_eq!(cpu.version, Version(1));
    assert_eq!(
        cpu.data["id"],
        json!(cpu.id.0),
        "the file's id means nothing here"
    );
    assert_eq!(cpu.created_by, UserId::SYSTEM);
    assert_eq!(cpu.tags, ["prov"]);
    let provisioning = cpu.provisioning.clone().expect("marked as provisioned");
    assert_eq!(provisioning.provider, "main");
    assert_eq!(
        provisioning.external_id,
        main_dir.join("cpu.json").to_string_lossy()
    );
    assert!(!cpu.can_save());
    let folder = cpu.folder.clone().expect("in the provider's folder");
    assert_eq!(folder.title, "Provisioned");
    let same_title: Vec<_> = d
        .folders(org, None)
        .await
        .expect("folders")
        .into_iter()
        .filter(|f| f.title == "Provisioned")
        .collect();
    assert_eq!(same_title.len(), 1, "both instances use one folder");
    assert_eq!(
        d.get(org, &mem_uid).await.expect("derived uid").title,
        "Provisioned memory"
    );
    let kept_board = d.get(org, &uid("prov-kept")).await.expect("kept");
    assert_eq!(
        kept_board.folder.map(|f| (f.uid, f.title)),
        Some((
            FolderUid::from("prov-kept-folder"),
            "Kept folder".to_owned()
        ))
    );
    assert_eq!(
        d.get(org, &uid("prov-tree-a"))
            .await
            .expect("tree a")
            .folder
            .map(|f| f.title),
        Some("team-a".to_owned())
    );
    assert_eq!(
        d.get(org, &uid("prov-tree-top"))
            .await
            .expect("tree top")
            .folder,
        None
    );

    // A run without change writes nothing.
    let report = both(&provisioners).await;
    assert_eq!(
        (
            report.created,
            report.updated,
            report.deleted,
            report.unchanged
        ),
        (0, 0, 0, 10),
        "{report:?}"
    );
    assert_eq!(heard(&inst), []);
    assert_eq!(version_numbers(d, org, &uid("prov-cpu")).await, [1]);

    // The API may not save or delete what a file provisions, unless the provider allows it.
    let refused = d
        .save(save_cmd(org, cpu.data.clone(), FolderRef::Root, true))
        .await;
    assert!(
        matches!(refused, Err(Error::ProvisionedDashboard)),
        "{refused:?}"
    );
    assert!(matches!(
        d.delete(org, &cpu.uid).await,
        Err(Error::ProvisionedDashboardDelete)
    ));
    let kept_board = d.get(org, &uid("prov-kept")).await.expect("kept");
    assert!(kept_board.can_save());
    let mut edited = kept_board.data.clone();
    edited["title"] = json!("Kept, edited in the UI");
    let edited = d
        .save(save_cmd(
            org,
            edited,
            FolderRef::Uid(FolderUid::from("prov-kept-folder")),
            false,
        ))
        .await
        .expect("allowUiUpdates lets the UI save");
    assert_eq!(edited.version, Version(2));
    heard(&inst);
    // The file did not change, so the UI's edit stays.
    let report = both(&provisioners).await;
    assert_eq!((report.created, report.updated), (0, 0), "{report:?}");
    assert_eq!(
        d.get(org, &uid("prov-kept")).await.expect("kept").title,
        "Kept, edited in the UI"
    );

    // A changed file: exactly one new version, whichever instance writes it.
    files.write(
        "main/cpu.json",
        &json!({"uid": "prov-cpu", "title": "Provisioned CPU v2", "tags": ["prov", "v2"]}),
    );
    let report = both(&provisioners).await;
    assert_eq!(
        (report.created, report.updated, report.deleted),
        (0, 1, 0),
        "{report:?}"
    );
    assert_eq!(version_numbers(d, org, &uid("prov-cpu")).await, [2, 1]);
    let cpu = d.get(org, &uid("prov-cpu")).await.expect("updated");
    assert_eq!(
        (cpu.title.as_str(), cpu.tags.clone()),
        (
            "Provisioned CPU v2",
            vec!["prov".to_owned(), "v2".to_owned()]
        )
    );
    assert_eq!(
        saved_versions(&heard(&inst), DashboardAction::Saved),
        [("prov-cpu".to_owned(), 2)]
    );
    for round in 0..3 {
        let report = both(&provisioners).await;
        assert_eq!(
            (report.created, report.updated, report.deleted),
            (0, 0, 0),
            "round {round}: no flip-flop"
        );
    }
    assert_eq!(version_numbers(d, org, &uid("prov-cpu")).await, [2, 1]);
    assert_eq!(heard(&inst), []);

    // Removed files: deleted once, or only forgotten with disableDeletion.
    files.remove("main/cpu.json");
    files.remove("kept/kept.json");
    let report = both(&provisioners).await;
    assert_eq!(report.deleted, 1, "{report:?}");
    assert!(matches!(
        d.get(org, &uid("prov-cpu")).await,
        Err(Error::DashboardNotFound)
    ));
    let kept_board = d
        .get(org, &uid("prov-kept"))
        .await
        .expect("disableDeletion keeps it");
    assert_eq!(kept_board.provisioning, None, "no longer provisioned");
    d.delete(org, &kept_board.uid)
        .await
        .expect("and now deletable");
    let events = heard(&inst);
    assert_eq!(
        saved_versions(&events, DashboardAction::Deleted),
        [("prov-cpu".to_owned(), 2), ("prov-kept".to_owned(), 2)],
        "one deletion event each (the second from the API)"
    );
    let report = both(&provisioners).await;
    assert_eq!(
        (report.created, report.updated, report.deleted),
        (0, 0, 0),
        "{report:?}"
    );
    drop(files);
}

/// A provisioner that read a file and then stalled: by the time its write holds the lock,
/// another instance has written what the file holds now. The store asks the source under
/// the lock, so the stale read writes nothing (no version of old content after the new
/// one), and a removal whose file came back removes nothing.
pub async fn provisioning_after_a_stall(stores: Vec<Arc<dyn DashboardStore>>) {
    let (a, b) = (&stores[0], &stores[1]);
    let org = OrgId(9014);
    let x = uid("stall-x");
    let read = |title: &str, file_still_holds_it: bool| ProvisionDashboard {
        org_id: org,
        provider: "stall".to_owned(),
        external_id: "/stall/x.json".to_owned(),
        checksum: format!("sum-of-{title}"),
        dashboard: json!({"uid": "stall-x", "title": title}),
        folder_uid: None,
        allow_ui_updates: false,
        still_current: SourceCheck::new(move || file_still_holds_it),
    };
    let outcome = a.provision_dashboard(read("Old", true)).await.expect("old");
    assert!(
        matches!(outcome, ProvisionOutcome::Created(_)),
        "{outcome:?}"
    );
    let outcome = b.provision_dashboard(read("New", true)).await.expect("new");
    assert!(
        matches!(&outcome, ProvisionOutcome::Updated(d) if d.version == Version(2)),
        "{outcome:?}"
    );
    // The stalled instance's write of what it read before the change.
    let outcome = a
        .provision_dashboard(read("Old", false))
        .await
        .expect("stale");
    assert_eq!(outcome, ProvisionOutcome::Stale);
    let now = b.get_dashboard(org, &x).await.expect("get").expect("there");
    assert_eq!((now.title.as_str(), now.version), ("New", Version(2)));
    let versions: Vec<i64> = a
        .list_versions(org, &x, VersionQuery::default())
        .await
        .expect("versions")
        .versions
        .iter()
        .map(|v| v.version.0)
        .collect();
    assert_eq!(versions, [2, 1], "no version of the stale read");
    // A file that really changed back is written (the check holds): version 3.
    let outcome = a
        .provision_dashboard(read("Old", true))
        .await
        .expect("back");
    assert!(
        matches!(&outcome, ProvisionOutcome::Updated(d) if d.version == Version(3)),
        "{outcome:?}"
    );
    // Removing the record of a file that reappeared before the lock: nothing removed.
    let removed = b
        .remove_provisioned(
            org,
            "stall",
            "/stall/x.json",
            true,
            SourceCheck::new(|| false),
        )
        .await
        .expect("remove, file back");
    assert_eq!(removed, None);
    assert!(a.get_dashboard(org, &x).await.expect("get").is_some());
    assert_eq!(
        a.provisioned_dashboards(org, "stall")
            .await
            .expect("records")
            .len(),
        1,
        "the record stays"
    );
    let removed = b
        .remove_provisioned(org, "stall", "/stall/x.json", true, SourceCheck::always())
        .await
        .expect("remove, file gone");
    assert_eq!(removed.map(|d| d.uid), Some(x.clone()));
    assert!(a.get_dashboard(org, &x).await.expect("get").is_none());
}
