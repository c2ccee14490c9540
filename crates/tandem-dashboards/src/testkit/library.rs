//! The conformance suite of [`LibraryElementStore`], with the connections the dashboard
//! saves of the same store record.
//!
//! Each function takes two or more handles on one shared store (standing for instances),
//! writes through one and reads through another, and works in an org of its own (ids
//! from 9101 up). [`all`] runs them all.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::{
    CreateFolder, DashboardStore, DashboardUid, Error, FolderRef, FolderUid, LibraryElementPatch,
    LibraryElementStore, LibraryKind, LibrarySearch, LibrarySort, NewLibraryElement, OrgId,
    SaveDashboard, UserId, Version,
};

/// What the suite needs of a store: dashboards and library elements in one.
pub trait LibraryStores: DashboardStore + LibraryElementStore + 'static {}

impl<S: DashboardStore + LibraryElementStore + 'static> LibraryStores for S {}

/// Runs every case.
pub async fn all<S: LibraryStores>(stores: Vec<Arc<S>>) {
    create_and_read(stores.clone()).await;
    bad_input_writes_nothing(stores.clone()).await;
    search(stores.clone()).await;
    patch(stores.clone()).await;
    connections(stores.clone()).await;
    folder_deletion(stores.clone()).await;
    racing_patches(stores.clone()).await;
    racing_delete_and_connect(stores).await;
}

fn new_element(
    org: OrgId,
    folder: Option<&str>,
    name: &str,
    uid: Option<&str>,
) -> NewLibraryElement {
    NewLibraryElement {
        org_id: org,
        folder_uid: folder.map(FolderUid::from),
        uid: uid.map(str::to_owned),
        name: name.to_owned(),
        kind: LibraryKind::Panel,
        model: json!({"type": "timeseries", "title": name, "description": format!("about {name}")}),
        user_id: UserId(7),
    }
}

fn query(org: OrgId) -> LibrarySearch {
    LibrarySearch {
        org_id: org,
        search: String::new(),
        kind: None,
        types: Vec::new(),
        exclude_uid: None,
        folders: None,
        viewable: None,
        general_viewable: true,
        sort: LibrarySort::AlphaAsc,
        page: 1,
        per_page: 0,
    }
}

async fn folder<S: LibraryStores>(store: &S, org: OrgId, uid: &str) {
    store
        .create_folder(CreateFolder {
            org_id: org,
            uid: Some(FolderUid::from(uid)),
            title: format!("Folder {uid}"),
            parent_uid: None,
            user_id: UserId(7),
        })
        .await
        .expect("create a folder");
}

/// A dashboard whose panels (one in a row) use the library panels `uids`.
fn board_using(uid: &str, version: i64, uids: &[&str]) -> Value {
    let mut panels: Vec<Value> = Vec::new();
    let mut row: Vec<Value> = Vec::new();
    for (i, lib) in uids.iter().enumerate() {
        let panel = json!({"id": i + 1, "libraryPanel": {"uid": lib, "name": lib}});
        if i % 2 == 1 {
            row.push(panel);
        } else {
            panels.push(panel);
        }
    }
    panels.push(json!({"id": 100, "type": "row", "collapsed": true, "panels": row}));
    json!({"uid": uid, "title": format!("Board {uid}"), "version": version, "panels": panels})
}

async fn save<S: LibraryStores>(store: &S, org: OrgId, dashboard: Value) -> crate::Dashboard {
    store
        .save_dashboard(SaveDashboard {
            org_id: org,
            dashboard,
            folder: FolderRef::Root,
            overwrite: true,
            message: String::new(),
            user_id: UserId(8),
        })
        .await
        .expect("save a dashboard")
}

async fn total<S: LibraryStores>(store: &S, org: OrgId) -> u64 {
    store
        .search_library_elements(query(org))
        .await
        .expect("search")
        .total_count
}

/// An element made on one instance reads the same on the other, by uid and by name, with
/// its type and description from the model; a uid is unique in the org and a name in its
/// folder; another org does not see it.
pub async fn create_and_read<S: LibraryStores>(stores: Vec<Arc<S>>) {
    let (a, b) = (&stores[0], &stores[1]);
    let org = OrgId(9101);
    folder(a.as_ref(), org, "lib-f").await;
    let made = a
        .create_library_element(new_element(org, Some("lib-f"), "CPU", Some("lib-cpu")))
        .await
        .expect("create");
    assert_eq!(made.uid, "lib-cpu");
    assert_eq!(made.version, 1);
    assert_eq!(made.kind_type, "timeseries");
    assert_eq!(made.description, "about CPU");
    assert_eq!(made.connected_dashboards, 0);
    assert_eq!(made.created_by, UserId(7));
    assert_eq!(made.folder.as_ref().map(|f| f.uid.as_str()), Some("lib-f"));
    let read = b
        .library_element(org, "lib-cpu")
        .await
        .expect("read")
        .expect("found on the other instance");
    assert_eq!(read, made);
    assert_eq!(read.model["title"], "CPU");
    let generated = a
        .create_library_element(new_element(org, None, "CPU", None))
        .await
        .expect("the same name in another folder");
    assert!(generated.folder.is_none());
    assert_eq!(generated.uid.len(), 14, "a generated uid");
    let named = b.library_elements_named(org, "CPU").await.expect("by name");
    assert_eq!(named.len(), 2);
    for taken in [
        new_element(org, Some("lib-f"), "CPU", None),
        new_element(org, None, "Other", Some("lib-cpu")),
    ] {
        assert!(
            matches!(
                b.create_library_element(taken).await,
                Err(Error::LibraryElementExists)
            ),
            "a taken name or uid"
        );
    }
    assert_eq!(
        b.library_element(OrgId(9199), "lib-cpu").await.unwrap(),
        None
    );
    assert_eq!(total(b.as_ref(), org).await, 2);
}

/// What a refused input must fail with.
type Expected = fn(&Error) -> bool;

/// Refused input is an error naming the fault, and nothing is written.
pub async fn bad_input_writes_nothing<S: LibraryStores>(stores: Vec<Arc<S>>) {
    let (a, b) = (&stores[0], &stores[1]);
    let org = OrgId(9102);
    let long = "x".repeat(151);
    let mut not_object = new_element(org, None, "N", None);
    not_object.model = json!([1]);
    let mut bad_type = new_element(org, None, "N", None);
    bad_type.model = json!({"type": 5});
    let mut long_type = new_element(org, None, "N", None);
    long_type.model = json!({"type": "t".repeat(41)});
    let cases: Vec<(NewLibraryElement, Expected)> = vec![
        (new_element(org, None, "  ", None), |e| {
            matches!(e, Error::InvalidInput(_))
        }),
        (new_element(org, None, &long, None), |e| {
            matches!(e, Error::InvalidInput(_))
        }),
        (new_element(org, None, "N\0", None), |e| {
            matches!(e, Error::InvalidInput(_))
        }),
        (not_object, |e| matches!(e, Error::InvalidInput(_))),
        (bad_type, |e| matches!(e, Error::InvalidInput(_))),
        (long_type, |e| matches!(e, Error::InvalidInput(_))),
        (new_element(org, Some("missing"), "N", None), |e| {
            matches!(e, Error::FolderNotFound)
        }),
        (new_element(org, None, "N", Some("bad uid")), |e| {
            matches!(e, Error::InvalidUid)
        }),
        (new_element(org, None, "N", Some(&"u".repeat(41))), |e| {
            matches!(e, Error::UidTooLong)
        }),
    ];
    for (new, expected) in cases {
        let name = new.name.clone();
        match a.create_library_element(new).await {
            Err(err) if expected(&err) => {}
            other => panic!("creating {name:?}: {other:?}"),
        }
    }
    assert_eq!(total(b.as_ref(), org).await, 0, "nothing was written");
    assert!(LibraryKind::from_code(3).is_err());
}

/// Search: text in the name or description in any case, folders (General included),
/// kind, types, an excluded uid, order, pages and the folders the caller may view.
pub async fn search<S: LibraryStores>(stores: Vec<Arc<S>>) {
    let (a, b) = (&stores[0], &stores[1]);
    let org = OrgId(9103);
    folder(a.as_ref(), org, "s-one").await;
    folder(a.as_ref(), org, "s-two").await;
    for (folder, name, uid) in [
        (None, "alpha", "s-a"),
        (Some("s-one"), "Bravo", "s-b"),
        (Some("s-two"), "charlie", "s-c"),
        (Some("s-one"), "delta", "s-d"),
    ] {
        a.create_library_element(new_element(org, folder, name, Some(uid)))
            .await
            .expect("create");
    }
    let mut text = new_element(org, None, "echo", Some("s-e"));
    text.model = json!({"type": "text", "description": "Notes"});
    a.create_library_element(text).await.expect("create");
    let names = |page: crate::LibraryPage| -> Vec<String> {
        page.elements.into_iter().map(|e| e.name).collect()
    };
    let run = |q: LibrarySearch| async move { b.search_library_elements(q).await.expect("search") };

    let page = run(query(org)).await;
    assert_eq!(page.total_count, 5);
    assert_eq!(names(page), ["alpha", "Bravo", "charlie", "delta", "echo"]);
    let mut q = query(org);
    q.sort = LibrarySort::AlphaDesc;
    q.per_page = 2;
    q.page = 2;
    let page = run(q).await;
    assert_eq!(page.total_count, 5, "the count is of every page");
    assert_eq!(names(page), ["charlie", "Bravo"]);
    let mut q = query(org);
    q.search = "NOTES".to_owned();
    assert_eq!(names(run(q).await), ["echo"], "the description is searched");
    let mut q = query(org);
    q.search = "BRA".to_owned();
    assert_eq!(names(run(q).await), ["Bravo"]);
    let mut q = query(org);
    q.folders = Some(vec![None, Some(FolderUid::from("s-two"))]);
    assert_eq!(names(run(q).await), ["alpha", "charlie", "echo"]);
    let mut q = query(org);
    q.types = vec!["text".to_owned()];
    assert_eq!(names(run(q).await), ["echo"]);
    let mut q = query(org);
    q.exclude_uid = Some("s-a".to_owned());
    q.kind = Some(LibraryKind::Panel);
    assert_eq!(run(q).await.total_count, 4);
    let mut q = query(org);
    q.kind = Some(LibraryKind::Variable);
    assert_eq!(run(q).await.total_count, 0);
    let mut q = query(org);
    q.viewable = Some(vec![FolderUid::from("s-one")]);
    q.general_viewable = false;
    let page = run(q).await;
    assert_eq!(
        page.total_count, 2,
        "only what the caller may view is counted"
    );
    assert_eq!(names(page), ["Bravo", "delta"]);
    let mut q = query(org);
    q.page = u64::MAX;
    q.per_page = 5000;
    assert!(run(q).await.elements.is_empty(), "a page far past the end");
    let mut q = query(org);
    q.search = "x".repeat(1001);
    assert!(matches!(
        b.search_library_elements(q).await,
        Err(Error::InvalidInput(_))
    ));
}

fn patch_of(org: OrgId, uid: &str, version: i64) -> LibraryElementPatch {
    LibraryElementPatch {
        org_id: org,
        uid: uid.to_owned(),
        version,
        kind: LibraryKind::Panel,
        new_uid: None,
        name: None,
        model: None,
        folder_uid: None,
        user_id: UserId(9),
    }
}

/// A patch is a compare-and-swap on the version; what it does not name stays.
pub async fn patch<S: LibraryStores>(stores: Vec<Arc<S>>) {
    let (a, b) = (&stores[0], &stores[1]);
    let org = OrgId(9104);
    folder(a.as_ref(), org, "p-f").await;
    a.create_library_element(new_element(org, None, "one", Some("p-1")))
        .await
        .expect("create");
    a.create_library_element(new_element(org, Some("p-f"), "two", Some("p-2")))
        .await
        .expect("create");
    let mut change = patch_of(org, "p-1", 1);
    change.model = Some(json!({"type": "stat", "libraryPanel": {"uid": "p-1"}}));
    change.folder_uid = Some(Some(FolderUid::from("p-f")));
    change.name = Some(String::new());
    let changed = b.patch_library_element(change).await.expect("patch");
    assert_eq!(changed.version, 2);
    assert_eq!(changed.name, "one", "an empty name keeps the name");
    assert_eq!(changed.kind_type, "stat");
    assert_eq!(changed.description, "about one", "kept from before");
    assert_eq!(changed.updated_by, UserId(9));
    assert_eq!(changed.created_by, UserId(7));
    assert_eq!(changed.folder.as_ref().map(|f| f.uid.as_str()), Some("p-f"));
    assert_eq!(
        a.library_element(org, "p-1").await.unwrap(),
        Some(changed.clone())
    );
    assert!(matches!(
        a.patch_library_element(patch_of(org, "p-1", 1)).await,
        Err(Error::LibraryElementVersionMismatch)
    ));
    let mut rename = patch_of(org, "p-1", 2);
    rename.name = Some("two".to_owned());
    assert!(
        matches!(
            a.patch_library_element(rename).await,
            Err(Error::LibraryElementExists)
        ),
        "the name is taken in the folder"
    );
    let mut moved = patch_of(org, "p-1", 2);
    moved.new_uid = Some("p-2".to_owned());
    assert!(matches!(
        a.patch_library_element(moved).await,
        Err(Error::LibraryElementExists)
    ));
    let mut moved = patch_of(org, "p-1", 2);
    moved.new_uid = Some("p-3".to_owned());
    moved.folder_uid = Some(None);
    let moved = a
        .patch_library_element(moved)
        .await
        .expect("new uid, to General");
    assert_eq!(moved.uid, "p-3");
    assert_eq!(moved.model["libraryPanel"]["uid"], "p-3");
    assert!(moved.folder.is_none());
    assert_eq!(b.library_element(org, "p-1").await.unwrap(), None);
    let mut missing = patch_of(org, "p-3", 3);
    missing.folder_uid = Some(Some(FolderUid::from("nope")));
    assert!(matches!(
        a.patch_library_element(missing).await,
        Err(Error::FolderNotFound)
    ));
    assert!(matches!(
        a.patch_library_element(patch_of(org, "p-9", 1)).await,
        Err(Error::LibraryElementNotFound)
    ));
    assert!(matches!(
        a.patch_library_element(patch_of(OrgId(9198), "p-3", 3))
            .await,
        Err(Error::LibraryElementNotFound)
    ));
    assert_eq!(
        b.library_element(org, "p-3")
            .await
            .unwrap()
            .unwrap()
            .version,
        3
    );
}

fn connected_uids(connections: &[crate::LibraryConnection]) -> Vec<String> {
    connections
        .iter()
        .map(|c| c.dashboard_uid.as_str().to_owned())
        .collect()
}

/// Every dashboard write (save, restore, provisioning, deletion) keeps the connections in
/// step with the panels, in rows too; a connected element cannot be deleted.
pub async fn connections<S: LibraryStores>(stores: Vec<Arc<S>>) {
    let (a, b) = (&stores[0], &stores[1]);
    let org = OrgId(9105);
    for uid in ["c-1", "c-2"] {
        a.create_library_element(new_element(org, None, uid, Some(uid)))
            .await
            .expect("create");
    }
    // The second panel sits in a row; an unknown uid connects nothing and fails nothing.
    let first = save(
        b.as_ref(),
        org,
        board_using("c-dash", 0, &["c-1", "c-2", "c-unknown"]),
    )
    .await;
    let links = a
        .library_connections(org, "c-2")
        .await
        .expect("connections");
    assert_eq!(
        connected_uids(&links),
        ["c-dash"],
        "a panel in a row connects"
    );
    assert_eq!(links[0].dashboard_id, first.id);
    assert_eq!(links[0].created_by, UserId(8));
    assert_eq!(
        a.library_element(org, "c-1")
            .await
            .unwrap()
            .unwrap()
            .connected_dashboards,
        1
    );
    save(b.as_ref(), org, board_using("c-other", 0, &["c-1"])).await;
    assert_eq!(
        connected_uids(&a.library_connections(org, "c-1").await.unwrap()),
        ["c-dash", "c-other"]
    );
    assert!(matches!(
        a.delete_library_element(org, "c-2").await,
        Err(Error::LibraryElementHasConnections)
    ));
    // Saving without the panel replaces the connections.
    save(b.as_ref(), org, board_using("c-dash", 1, &["c-1"])).await;
    assert!(a.library_connections(org, "c-2").await.unwrap().is_empty());
    // Restoring the first version connects its panels again.
    b.restore_version(org, &DashboardUid::from("c-dash"), Version(1), UserId(8))
        .await
        .expect("restore");
    assert_eq!(
        connected_uids(&a.library_connections(org, "c-2").await.unwrap()),
        ["c-dash"]
    );
    save(b.as_ref(), org, board_using("c-dash", 3, &[])).await;
    let id = a
        .delete_library_element(org, "c-2")
        .await
        .expect("delete, unused now");
    assert!(id > 0);
    assert_eq!(b.library_element(org, "c-2").await.unwrap(), None);
    assert!(matches!(
        b.delete_library_element(org, "c-2").await,
        Err(Error::LibraryElementNotFound)
    ));
    assert!(matches!(
        b.library_connections(org, "c-2").await,
        Err(Error::LibraryElementNotFound)
    ));
    // Deleting a dashboard deletes its connections.
    b.delete_dashboard(org, &DashboardUid::from("c-other"))
        .await
        .expect("delete");
    assert!(a.library_connections(org, "c-1").await.unwrap().is_empty());
    // Provisioning connects too.
    let provisioned = a
        .provision_dashboard(crate::ProvisionDashboard {
            org_id: org,
            provider: "p".to_owned(),
            external_id: "/p.json".to_owned(),
            checksum: "1".to_owned(),
            dashboard: board_using("c-prov", 0, &["c-1"]),
            folder_uid: None,
            allow_ui_updates: false,
            still_current: crate::SourceCheck::always(),
        })
        .await
        .expect("provision");
    assert!(matches!(provisioned, crate::ProvisionOutcome::Created(_)));
    assert_eq!(
        connected_uids(&b.library_connections(org, "c-1").await.unwrap()),
        ["c-prov"]
    );
}

/// A folder whose elements a dashboard uses is not deleted (nothing is); one whose
/// elements nothing uses goes with them.
pub async fn folder_deletion<S: LibraryStores>(stores: Vec<Arc<S>>) {
    let (a, b) = (&stores[0], &stores[1]);
    let org = OrgId(9106);
    folder(a.as_ref(), org, "fd").await;
    a.create_library_element(new_element(org, Some("fd"), "used", Some("fd-1")))
        .await
        .expect("create");
    save(b.as_ref(), org, board_using("fd-dash", 0, &["fd-1"])).await;
    assert!(matches!(
        b.delete_folder(org, &FolderUid::from("fd")).await,
        Err(Error::FolderHasConnectedLibraryElements)
    ));
    assert!(
        a.get_folder(org, &FolderUid::from("fd"))
            .await
            .unwrap()
            .is_some()
    );
    assert!(a.library_element(org, "fd-1").await.unwrap().is_some());
    save(b.as_ref(), org, board_using("fd-dash", 1, &[])).await;
    b.delete_folder(org, &FolderUid::from("fd"))
        .await
        .expect("delete the folder");
    assert_eq!(a.library_element(org, "fd-1").await.unwrap(), None);
}

/// Of many patches of one version through two instances at once exactly one wins.
pub async fn racing_patches<S: LibraryStores>(stores: Vec<Arc<S>>) {
    let org = OrgId(9107);
    stores[0]
        .create_library_element(new_element(org, None, "raced", Some("r-1")))
        .await
        .expect("create");
    let mut set = JoinSet::new();
    for i in 0..8 {
        let store = stores[i % stores.len()].clone();
        set.spawn(async move {
            let mut change = patch_of(org, "r-1", 1);
            change.model = Some(json!({"type": format!("t{i}")}));
            store.patch_library_element(change).await
        });
    }
    let mut won = 0;
    while let Some(result) = set.join_next().await {
        match result.expect("task") {
            Ok(_) => won += 1,
            Err(Error::LibraryElementVersionMismatch) => {}
            Err(other) => panic!("a racing patch failed otherwise: {other:?}"),
        }
    }
    assert_eq!(won, 1, "exactly one patch of version 1 wins");
    let stored = stores[1]
        .library_element(org, "r-1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.version, 2);
}

/// A deletion racing a dashboard save that connects the element: either the deletion
/// wins and the save connects nothing, or the save wins and the deletion is refused.
/// (The SQL store's own test also counts connection rows whose element is gone.)
pub async fn racing_delete_and_connect<S: LibraryStores>(stores: Vec<Arc<S>>) {
    let org = OrgId(9108);
    for round in 0..12 {
        let uid = format!("rd-{round}");
        stores[0]
            .create_library_element(new_element(org, None, &uid, Some(&uid)))
            .await
            .expect("create");
        let (deleter, saver) = (stores[0].clone(), stores[1].clone());
        let deleting = {
            let uid = uid.clone();
            tokio::spawn(async move { deleter.delete_library_element(org, &uid).await })
        };
        let saving = {
            let uid = uid.clone();
            tokio::spawn(async move {
                saver
                    .save_dashboard(SaveDashboard {
                        org_id: org,
                        dashboard: board_using(&format!("rd-dash-{round}"), 0, &[uid.as_str()]),
                        folder: FolderRef::Root,
                        overwrite: true,
                        message: String::new(),
                        user_id: UserId(8),
                    })
                    .await
            })
        };
        let deleted = deleting.await.expect("task");
        saving.await.expect("task").expect("the save never fails");
        let element = stores[1].library_element(org, &uid).await.unwrap();
        match deleted {
            Ok(_) => assert_eq!(element, None, "round {round}: deleted"),
            Err(Error::LibraryElementHasConnections) => {
                let element = element.expect("kept");
                assert_eq!(element.connected_dashboards, 1, "round {round}");
            }
            Err(other) => panic!("round {round}: the deletion failed otherwise: {other:?}"),
        }
    }
}
