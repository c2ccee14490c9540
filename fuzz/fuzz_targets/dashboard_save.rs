//! Dashboard saves as `POST /api/dashboards/db` takes them: the body is read into the
//! save endpoint's shape (a copy of `tandem-http/src/routes/content/dashboards.rs`'
//! `SaveBody`, private to the HTTP crate) and saved through `SqlDashboardStore` on a
//! SQLite file, so the save's own checks (its private `Prepared::new`: title, message,
//! uid, id, version, tags), the library panel connections and the version row all run
//! as they do for a client. One database serves the whole run; it lives in a fresh
//! directory under `$TMPDIR`.
//!
//! Asserts: no panic; a save that succeeds can be read back by its uid, with its version,
//! title, slug and tags.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use serde_json::Value;
use tandem_dashboards::{
    CreateFolder, DashboardStore, FolderRef, FolderUid, OrgId, SaveDashboard, SqlDashboardStore,
    UserId, slugify,
};
use tandem_storage::{Database, DatabaseSettings, MigrationOptions};
use tokio::runtime::Runtime;

/// `SaveBody` of the save endpoint, field for field.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SaveBody {
    dashboard: Value,
    #[serde(default)]
    folder_uid: Option<String>,
    #[serde(default)]
    folder_id: Option<i64>,
    #[serde(default)]
    overwrite: bool,
    #[serde(default)]
    message: Option<String>,
}

struct Fixture {
    runtime: Runtime,
    store: SqlDashboardStore,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|err| panic!("a runtime: {err}"));
        let dir =
            std::env::temp_dir().join(format!("tandem-fuzz-dashboard-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = runtime.block_on(async {
            let mut settings = DatabaseSettings::sqlite(PathBuf::from(&dir).join("tandem.db"));
            settings.max_open_conn = 2;
            let database = Database::connect(&settings)
                .await
                .unwrap_or_else(|err| panic!("open {}: {err}", dir.display()));
            database
                .migrate(MigrationOptions {
                    locking: true,
                    lock_timeout: None,
                })
                .await
                .unwrap_or_else(|err| panic!("migrate: {err}"));
            let store = SqlDashboardStore::new(database);
            // A folder the corpus names by uid (and by id 1, its first id).
            store
                .create_folder(CreateFolder {
                    org_id: OrgId(1),
                    uid: Some(FolderUid::from("fuzz-folder")),
                    title: "Fuzz".to_owned(),
                    parent_uid: None,
                    user_id: UserId(1),
                })
                .await
                .unwrap_or_else(|err| panic!("create a folder: {err}"));
            store
        });
        Fixture { runtime, store }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(body) = serde_json::from_slice::<SaveBody>(data) else {
        return;
    };
    // The handler refuses anything else before it saves.
    if !body.dashboard.is_object() {
        return;
    }
    let fixture = fixture();
    let save = SaveDashboard {
        org_id: OrgId(1),
        dashboard: body.dashboard,
        folder: FolderRef::from_request(body.folder_uid.as_deref(), body.folder_id),
        overwrite: body.overwrite,
        message: body.message.unwrap_or_default(),
        user_id: UserId(1),
    };
    fixture.runtime.block_on(async {
        let Ok(saved) = fixture.store.save_dashboard(save).await else {
            return;
        };
        assert_eq!(saved.slug, slugify(&saved.title));
        let read = fixture
            .store
            .get_dashboard(OrgId(1), &saved.uid)
            .await
            .unwrap_or_else(|err| panic!("read {}: {err}", saved.uid))
            .unwrap_or_else(|| panic!("{} was saved but is not found", saved.uid));
        assert_eq!(read.version, saved.version);
        assert_eq!(read.title, saved.title);
        assert_eq!(read.tags, saved.tags);
        assert_eq!(read.data.get("version"), saved.data.get("version"));
    });
});
