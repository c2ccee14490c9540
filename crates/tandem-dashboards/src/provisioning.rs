//! Dashboards from files, as Grafana's `provisioning/dashboards/*.yaml` describes them.
//!
//! A provider names a directory; every `*.json` file under it is a dashboard. Each run
//! compares each file's SHA-256 with the one recorded when it was last provisioned and
//! writes only when they differ, in one transaction that locks the dashboard row first
//! ([`DashboardStore::provision_dashboard`]): several instances running the same providers
//! at once produce exactly one version per file change and never undo each other. A file
//! without a uid gets one derived from the provider's name and the file's path
//! ([`provider_uid`]), so every instance picks the same. A file that disappears takes its
//! dashboard with it, unless the provider says `disableDeletion`.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::{
    CreateFolder, DashboardUid, Dashboards, Error, FolderUid, OrgId, ProvisionDashboard,
    ProvisionOutcome, Result, SourceCheck, UserId, validate_uid,
};

/// Grafana's default `updateIntervalSeconds`.
const DEFAULT_UPDATE_INTERVAL: Duration = Duration::from_secs(10);
/// How deep a provider's directory tree is walked; deeper trees (or symlink loops) stop.
const MAX_WALK_DEPTH: usize = 32;

/// The dashboard providers of Grafana's provisioning files (`apiVersion: 1`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProvisioningConfig {
    /// The providers, in file order.
    pub providers: Vec<DashboardProvider>,
}

/// One dashboard provider (`providers[]` in a provisioning file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DashboardProvider {
    /// `name`: identifies the provider's dashboards across runs; required and unique.
    pub name: String,
    /// `orgId` (default 1).
    pub org_id: OrgId,
    /// `folder`: the title of the folder its dashboards go to; empty is the root.
    pub folder: String,
    /// `folderUid`: the uid of that folder.
    pub folder_uid: Option<FolderUid>,
    /// `disableDeletion`: keep a dashboard whose file disappeared (it stops being
    /// provisioned).
    pub disable_deletion: bool,
    /// `allowUiUpdates`: let the UI and the API save its dashboards.
    pub allow_ui_updates: bool,
    /// `updateIntervalSeconds` (default 10).
    pub update_interval: Duration,
    /// `options.path`: the directory of dashboard files (or one file).
    pub path: PathBuf,
    /// `options.foldersFromFilesStructure`: each file goes to a folder named after the
    /// directory it is in (files at the top go to the root).
    pub folders_from_files_structure: bool,
}

impl ProvisioningConfig {
    /// Parses one provisioning file. `$VAR`, `${VAR}` in string values are replaced by
    /// `lookup(VAR)` (empty when `None`), `$$` by `$`, as Grafana does; this crate never
    /// reads the environment itself, so pass e.g. `|name| std::env::var(name).ok()`.
    pub fn from_yaml(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let invalid = |message: String| Error::InvalidProvisioningConfig(message);
        let mut document: Value =
            serde_saphyr::from_str(text).map_err(|err| invalid(err.to_string()))?;
        interpolate(&mut document, &lookup);
        let Value::Object(root) = document else {
            if document.is_null() {
                return Ok(ProvisioningConfig::default());
            }
            return Err(invalid(
                "expected a mapping with apiVersion and providers".to_owned(),
            ));
        };
        match root.get("apiVersion") {
            Some(version) if int(version) == Some(1) => {}
            Some(version) => {
                return Err(invalid(format!(
                    "unsupported apiVersion {version}, expected 1"
                )));
            }
            None => return Err(invalid("apiVersion is missing, expected 1".to_owned())),
        }
        let providers = match root.get("providers") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items.iter().map(provider).collect::<Result<Vec<_>>>()?,
            Some(_) => return Err(invalid("providers must be a list".to_owned())),
        };
        Ok(ProvisioningConfig { providers })
    }

    /// Reads every `*.yaml` and `*.yml` file of `dir`, in name order; a missing directory
    /// has no providers. Provider names must be unique across the files.
    pub fn load_dir(dir: &Path, lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(ProvisioningConfig::default());
            }
            Err(source) => return Err(io_error(dir, source)),
        };
        let mut files = Vec::new();
        for entry in entries {
            let path = entry.map_err(|source| io_error(dir, source))?.path();
            let yaml = path
                .extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml");
            if yaml && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        let mut config = ProvisioningConfig::default();
        let mut names = HashSet::new();
        for file in files {
            let text = std::fs::read_to_string(&file).map_err(|source| io_error(&file, source))?;
            let parsed =
                ProvisioningConfig::from_yaml(&text, &lookup).map_err(|err| match err {
                    Error::InvalidProvisioningConfig(message) => {
                        Error::InvalidProvisioningConfig(format!("{}: {message}", file.display()))
                    }
                    other => other,
                })?;
            for provider in parsed.providers {
                if !names.insert(provider.name.clone()) {
                    return Err(Error::InvalidProvisioningConfig(format!(
                        "{}: provider name {:?} is used more than once",
                        file.display(),
                        provider.name
                    )));
                }
                config.providers.push(provider);
            }
        }
        Ok(config)
    }

    /// The shortest `updateIntervalSeconds` of the providers (10 s when there are none):
    /// a good interval for [`Provisioner::run`].
    pub fn update_interval(&self) -> Duration {
        self.providers
            .iter()
            .map(|p| p.update_interval)
            .min()
            .unwrap_or(DEFAULT_UPDATE_INTERVAL)
    }
}

/// The uid of a provisioned dashboard whose file has none: derived from the provider's
/// name and the file's path relative to the provider's directory, so that every instance
/// provisioning the same file picks the same dashboard.
pub fn provider_uid(provider: &str, relative_path: &str) -> DashboardUid {
    DashboardUid::from(format!(
        "p{}",
        &hex_sha256(format!("{provider}\0{relative_path}").as_bytes())[..24]
    ))
}

/// What one provisioning run did, summed over the providers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProvisionReport {
    /// Dashboards created from new files.
    pub created: u64,
    /// Dashboards given a new version because their file changed.
    pub updated: u64,
    /// Files whose dashboard was already up to date.
    pub unchanged: u64,
    /// Dashboards deleted because their file disappeared.
    pub deleted: u64,
    /// Files or providers that could not be provisioned (logged as warnings).
    pub failed: u64,
    /// Files that changed again between this run's read and its write, so nothing was
    /// written for them (another instance, or the next run, writes what they hold now).
    pub stale: u64,
}

/// Runs dashboard providers against the dashboards store; see the module documentation.
#[derive(Clone, Debug)]
pub struct Provisioner {
    dashboards: Dashboards,
    providers: Vec<DashboardProvider>,
}

impl Provisioner {
    /// A provisioner of `providers` into `dashboards` (whose events sink hears of every
    /// dashboard it creates, updates or deletes).
    pub fn new(dashboards: Dashboards, providers: Vec<DashboardProvider>) -> Provisioner {
        Provisioner {
            dashboards,
            providers,
        }
    }

    /// The providers.
    pub fn providers(&self) -> &[DashboardProvider] {
        &self.providers
    }

    /// Provisions every provider once. A file that cannot be read or saved (bad JSON, an
    /// empty title, a missing `folderUid` …) counts as failed and is logged; the run goes
    /// on. A database failure ends the run with the error.
    pub async fn run_once(&self) -> Result<ProvisionReport> {
        let mut report = ProvisionReport::default();
        // A uid claimed by two files would make them overwrite each other on every run;
        // the first file in provider and path order keeps it, on every instance alike.
        let mut claimed = HashSet::new();
        for provider in &self.providers {
            self.run_provider(provider, &mut claimed, &mut report)
                .await?;
        }
        Ok(report)
    }

    /// Runs [`Provisioner::run_once`] and logs what it did; a failure is logged, not
    /// returned, for the next run to try again.
    pub async fn run_logged(&self) {
        match self.run_once().await {
            Ok(report) if report.created + report.updated + report.deleted > 0 => {
                tracing::info!(?report, "provisioned dashboards");
            }
            Ok(report) => tracing::debug!(?report, "dashboard provisioning found no change"),
            Err(err) => tracing::warn!(error = %err, "dashboard provisioning failed"),
        }
    }

    /// Runs [`Provisioner::run_logged`] now and then every `interval`, until `cancel` fires.
    pub async fn run(&self, interval: Duration, cancel: CancellationToken) {
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                () = self.run_logged() => {}
            }
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(interval) => {}
            }
        }
    }

    async fn run_provider(
        &self,
        provider: &DashboardProvider,
        claimed: &mut HashSet<(OrgId, String)>,
        report: &mut ProvisionReport,
    ) -> Result<()> {
        let root = provider.path.clone();
        let files = match tokio::task::spawn_blocking(move || read_files(&root)).await {
            Ok(Ok(files)) => files,
            Ok(Err(err)) => {
                // Nothing is deleted when the directory cannot be read: an unmounted volume
                // must not wipe the provider's dashboards.
                tracing::warn!(provider = %provider.name, error = %err, "cannot read dashboard files");
                report.failed += 1;
                return Ok(());
            }
            Err(err) => {
                tracing::warn!(provider = %provider.name, error = %err, "reading dashboard files panicked");
                report.failed += 1;
                return Ok(());
            }
        };
        let store = self.dashboards.store();
        let default_folder = match self.provider_folder(provider).await {
            Ok(folder) => folder,
            Err(Error::Storage(err)) => return Err(Error::Storage(err)),
            Err(err) => {
                tracing::warn!(provider = %provider.name, error = %err, "cannot create the provider's folder");
                report.failed += 1;
                return Ok(());
            }
        };
        for file in &files {
            tracing::debug!(provider = %provider.name, file = %file.path.display(), checksum = %file.checksum, "read a dashboard file");
        }
        let mut present = HashSet::new();
        for file in files {
            let external_id = file.path.to_string_lossy().into_owned();
            present.insert(external_id.clone());
            let outcome = async {
                let Value::Object(mut dashboard) =
                    serde_json::from_slice::<Value>(&file.content)
                        .map_err(|err| Error::InvalidDashboard(err.to_string()))?
                else {
                    return Err(Error::InvalidDashboard(
                        "the file does not hold a JSON object".to_owned(),
                    ));
                };
                let uid = match dashboard.get("uid").and_then(Value::as_str).map(str::trim) {
                    Some(uid) if !uid.is_empty() => {
                        validate_uid(uid)?;
                        uid.to_owned()
                    }
                    _ => provider_uid(&provider.name, &file.relative).into_string(),
                };
                if !claimed.insert((provider.org_id, uid.clone())) {
                    return Err(Error::InvalidDashboard(format!(
                        "uid {uid} is already used by another provisioned file"
                    )));
                }
                dashboard.insert("uid".to_owned(), Value::from(uid));
                let folder_uid = if provider.folders_from_files_structure {
                    match file.relative_dir() {
                        Some(dir) => Some(self.files_folder(provider, dir).await?),
                        None => None,
                    }
                } else {
                    default_folder.clone()
                };
                let checksum = file.checksum.clone();
                store
                    .provision_dashboard(ProvisionDashboard {
                        org_id: provider.org_id,
                        provider: provider.name.clone(),
                        external_id: external_id.clone(),
                        still_current: still_holds(file.path.clone(), checksum.clone()),
                        checksum,
                        dashboard: Value::Object(dashboard),
                        folder_uid,
                        allow_ui_updates: provider.allow_ui_updates,
                    })
                    .await
            }
            .await;
            match outcome {
                Ok(ProvisionOutcome::Created(dashboard)) => {
                    tracing::debug!(provider = %provider.name, file = %external_id, uid = %dashboard.uid, "provisioned a new dashboard");
                    self.dashboards.saved(&dashboard);
                    report.created += 1;
                }
                Ok(ProvisionOutcome::Updated(dashboard)) => {
                    tracing::debug!(provider = %provider.name, file = %external_id, uid = %dashboard.uid, version = %dashboard.version, "provisioned a changed dashboard");
                    self.dashboards.saved(&dashboard);
                    report.updated += 1;
                }
                Ok(ProvisionOutcome::Unchanged) => report.unchanged += 1,
                Ok(ProvisionOutcome::Stale) => {
                    tracing::debug!(provider = %provider.name, file = %external_id, "the file changed after it was read: left to the next run");
                    report.stale += 1;
                }
                Err(Error::Storage(err)) => return Err(Error::Storage(err)),
                Err(err) => {
                    tracing::warn!(provider = %provider.name, file = %external_id, error = %err, "cannot provision dashboard");
                    report.failed += 1;
                }
            }
        }
        for record in store
            .provisioned_dashboards(provider.org_id, &provider.name)
            .await?
        {
            let external_id = &record.provisioning.external_id;
            if present.contains(external_id) {
                continue;
            }
            let removed = store
                .remove_provisioned(
                    provider.org_id,
                    &provider.name,
                    external_id,
                    !provider.disable_deletion,
                    still_gone(PathBuf::from(external_id)),
                )
                .await?;
            if let Some(deleted) = removed {
                tracing::debug!(provider = %provider.name, file = %external_id, uid = %deleted.uid, "deleted the dashboard of a removed file");
                self.dashboards.deleted(provider.org_id, &deleted);
                report.deleted += 1;
            }
        }
        Ok(())
    }

    /// The folder `folder`/`folderUid` name, created when missing; `None` for the root.
    async fn provider_folder(&self, provider: &DashboardProvider) -> Result<Option<FolderUid>> {
        let title = provider.folder.trim();
        match &provider.folder_uid {
            Some(uid) => {
                let title = if title.is_empty() {
                    uid.as_str()
                } else {
                    title
                };
                Ok(Some(
                    self.ensure_folder(provider.org_id, uid.clone(), title, false)
                        .await?,
                ))
            }
            None if title.is_empty() => Ok(None),
            None => {
                let uid = folder_uid_for(&provider.name, title);
                Ok(Some(
                    self.ensure_folder(provider.org_id, uid, title, true)
                        .await?,
                ))
            }
        }
    }

    /// The folder of a subdirectory, for `foldersFromFilesStructure`.
    async fn files_folder(&self, provider: &DashboardProvider, dir: &str) -> Result<FolderUid> {
        let title = dir.rsplit('/').next().unwrap_or(dir);
        let uid = folder_uid_for(&provider.name, dir);
        self.ensure_folder(provider.org_id, uid, title, true).await
    }

    /// The folder with `uid`, created with `title` when missing. When `by_title`, a root
    /// folder already titled `title` is used instead (Grafana finds provider folders by
    /// title); otherwise the uid is derived, so that racing instances create the same one.
    async fn ensure_folder(
        &self,
        org: OrgId,
        uid: FolderUid,
        title: &str,
        by_title: bool,
    ) -> Result<FolderUid> {
        let store = self.dashboards.store();
        if store.get_folder(org, &uid).await?.is_some() {
            return Ok(uid);
        }
        if by_title
            && let Some(existing) = store
                .list_folders(org, None)
                .await?
                .into_iter()
                .find(|folder| folder.title == title)
        {
            return Ok(existing.uid);
        }
        match store
            .create_folder(CreateFolder {
                org_id: org,
                uid: Some(uid.clone()),
                title: title.to_owned(),
                parent_uid: None,
                user_id: UserId::SYSTEM,
            })
            .await
        {
            Ok(folder) => Ok(folder.uid),
            // Another instance created it first.
            Err(Error::FolderUidTaken) if store.get_folder(org, &uid).await?.is_some() => Ok(uid),
            Err(err) => Err(err),
        }
    }
}

fn folder_uid_for(provider: &str, title_or_dir: &str) -> FolderUid {
    FolderUid::from(format!(
        "f{}",
        &hex_sha256(format!("{provider}\0folder\0{title_or_dir}").as_bytes())[..24]
    ))
}

/// A dashboard file under a provider's path.
struct DashboardFile {
    /// The path as the provider spells it joined with the file's relative path.
    path: PathBuf,
    /// The path relative to the provider's path, with `/` separators.
    relative: String,
    content: Vec<u8>,
    /// The SHA-256 of `content`, hex.
    checksum: String,
}

impl DashboardFile {
    /// The directory part of [`DashboardFile::relative`]; `None` at the top.
    fn relative_dir(&self) -> Option<&str> {
        self.relative.rsplit_once('/').map(|(dir, _)| dir)
    }
}

/// Whether the file at `path` still holds the content whose SHA-256 is `checksum`; asked
/// by the store under its lock, so it reads the file again (a few kilobytes, once per
/// changed file).
fn still_holds(path: PathBuf, checksum: String) -> SourceCheck {
    SourceCheck::new(move || std::fs::read(&path).is_ok_and(|now| hex_sha256(&now) == checksum))
}

/// Whether no dashboard file is at `path` any more.
fn still_gone(path: PathBuf) -> SourceCheck {
    SourceCheck::new(move || !std::fs::metadata(&path).is_ok_and(|m| m.is_file()))
}

/// Every `*.json` file under `root` (or `root` itself when it is a file), by path.
fn read_files(root: &Path) -> Result<Vec<DashboardFile>> {
    let metadata = std::fs::metadata(root).map_err(|source| io_error(root, source))?;
    let mut found = BTreeMap::new();
    if metadata.is_file() {
        let name = root
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        found.insert(name, root.to_path_buf());
    } else {
        walk(root, "", 0, &mut found)?;
    }
    let mut files = Vec::with_capacity(found.len());
    for (relative, path) in found {
        let content = std::fs::read(&path).map_err(|source| io_error(&path, source))?;
        files.push(DashboardFile {
            path,
            relative,
            checksum: hex_sha256(&content),
            content,
        });
    }
    Ok(files)
}

fn walk(
    dir: &Path,
    prefix: &str,
    depth: usize,
    found: &mut BTreeMap<String, PathBuf>,
) -> Result<()> {
    if depth > MAX_WALK_DEPTH {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).map_err(|source| io_error(dir, source))? {
        let entry = entry.map_err(|source| io_error(dir, source))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let relative = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        // Follows symbolic links, as Grafana does for provisioning paths.
        let Ok(metadata) = std::fs::metadata(&path) else {
            continue;
        };
        if metadata.is_dir() {
            walk(&path, &relative, depth + 1, found)?;
        } else if metadata.is_file() && name.ends_with(".json") {
            found.insert(relative, path);
        }
    }
    Ok(())
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

// ---- configuration parsing

fn provider(value: &Value) -> Result<DashboardProvider> {
    let invalid = |message: String| Error::InvalidProvisioningConfig(message);
    let Value::Object(map) = value else {
        return Err(invalid("a provider must be a mapping".to_owned()));
    };
    let name = text(map.get("name")).unwrap_or_default();
    if name.trim().is_empty() {
        return Err(invalid("a provider needs a name".to_owned()));
    }
    let field = |key: &str| map.get(key).filter(|v| !v.is_null());
    let kind = text(field("type")).unwrap_or_else(|| "file".to_owned());
    if kind != "file" {
        return Err(invalid(format!(
            "provider {name:?}: type {kind:?} is not supported, only file"
        )));
    }
    let org_id = match field("orgId") {
        None => 1,
        Some(v) => int(v).filter(|id| *id > 0).ok_or_else(|| {
            invalid(format!(
                "provider {name:?}: orgId must be a positive number"
            ))
        })?,
    };
    let flag = |key: &str| -> Result<bool> {
        match field(key) {
            None => Ok(false),
            Some(v) => boolean(v)
                .ok_or_else(|| invalid(format!("provider {name:?}: {key} must be true or false"))),
        }
    };
    let update_interval = match field("updateIntervalSeconds") {
        None => DEFAULT_UPDATE_INTERVAL,
        Some(v) => {
            let seconds = int(v).filter(|s| *s >= 0).ok_or_else(|| {
                invalid(format!(
                    "provider {name:?}: updateIntervalSeconds must be a number of seconds"
                ))
            })?;
            // Grafana treats 0 (and less than the minimum) as its default.
            if seconds == 0 {
                DEFAULT_UPDATE_INTERVAL
            } else {
                Duration::from_secs(seconds.unsigned_abs())
            }
        }
    };
    let options = match field("options") {
        Some(Value::Object(options)) => options.clone(),
        None => serde_json::Map::new(),
        Some(_) => {
            return Err(invalid(format!(
                "provider {name:?}: options must be a mapping"
            )));
        }
    };
    let path = text(options.get("path")).unwrap_or_default();
    if path.trim().is_empty() {
        return Err(invalid(format!(
            "provider {name:?}: options.path is required"
        )));
    }
    let folders_from_files_structure = match options
        .get("foldersFromFilesStructure")
        .filter(|v| !v.is_null())
    {
        None => false,
        Some(v) => boolean(v).ok_or_else(|| {
            invalid(format!(
                "provider {name:?}: foldersFromFilesStructure must be true or false"
            ))
        })?,
    };
    let folder = text(field("folder")).unwrap_or_default();
    let folder_uid = match text(field("folderUid")).filter(|uid| !uid.trim().is_empty()) {
        Some(uid) => Some(FolderUid::parse(uid.trim())?),
        None => None,
    };
    if folders_from_files_structure && (!folder.is_empty() || folder_uid.is_some()) {
        return Err(invalid(format!(
            "provider {name:?}: folder and folderUid cannot be used with foldersFromFilesStructure"
        )));
    }
    let disable_deletion = flag("disableDeletion")?;
    let allow_ui_updates = flag("allowUiUpdates")?;
    Ok(DashboardProvider {
        name,
        org_id: OrgId(org_id),
        folder,
        folder_uid,
        disable_deletion,
        allow_ui_updates,
        update_interval,
        path: PathBuf::from(path),
        folders_from_files_structure,
    })
}

/// A string, or a number or boolean written as text.
fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A whole number, also as text (after interpolation, `orgId: $ORG` is text).
fn int(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A boolean, also as text.
fn boolean(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Replaces environment references in every string of `value`.
fn interpolate(value: &mut Value, lookup: &impl Fn(&str) -> Option<String>) {
    match value {
        Value::String(s) if s.contains('$') => *s = expand(s, lookup),
        Value::Array(items) => items.iter_mut().for_each(|v| interpolate(v, lookup)),
        Value::Object(map) => map.values_mut().for_each(|v| interpolate(v, lookup)),
        _ => {}
    }
}

/// `$NAME` and `${NAME}` become `lookup(NAME)` (empty when unset), `$$` becomes `$`; a `$`
/// followed by anything else stays.
fn expand(text: &str, lookup: &impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(braced) = after.strip_prefix('{')
            && let Some(end) = braced.find('}')
        {
            out.push_str(&lookup(&braced[..end]).unwrap_or_default());
            rest = &braced[end + 1..];
        } else {
            let len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if len == 0 {
                out.push('$');
            } else {
                out.push_str(&lookup(&after[..len]).unwrap_or_default());
            }
            rest = &after[len..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "ORG" => Some("2".to_owned()),
            "DIR" => Some("/var/lib/dashboards".to_owned()),
            _ => None,
        }
    }

    #[test]
    fn grafana_keys_and_defaults_are_read() {
        let config = ProvisioningConfig::from_yaml(
            r#"
apiVersion: 1
providers:
  - name: default
    options:
      path: /etc/dashboards
  - name: team
    orgId: $ORG
    folder: Team ${ORG}
    folderUid: team-folder
    type: file
    disableDeletion: true
    allowUiUpdates: "true"
    updateIntervalSeconds: 30
    options:
      path: ${DIR}/team
"#,
            env,
        )
        .expect("valid");
        assert_eq!(config.providers.len(), 2);
        let first = &config.providers[0];
        assert_eq!(first.org_id, OrgId(1));
        assert_eq!(first.folder, "");
        assert_eq!(first.folder_uid, None);
        assert!(!first.disable_deletion && !first.allow_ui_updates);
        assert_eq!(first.update_interval, Duration::from_secs(10));
        let team = &config.providers[1];
        assert_eq!(team.org_id, OrgId(2));
        assert_eq!(team.folder, "Team 2");
        assert_eq!(team.folder_uid, Some(FolderUid::from("team-folder")));
        assert!(team.disable_deletion && team.allow_ui_updates);
        assert_eq!(team.update_interval, Duration::from_secs(30));
        assert_eq!(team.path, PathBuf::from("/var/lib/dashboards/team"));
        assert_eq!(config.update_interval(), Duration::from_secs(10));
    }

    #[test]
    fn broken_configurations_are_refused() {
        for yaml in [
            "providers: []",
            "apiVersion: 2\nproviders: []",
            "apiVersion: 1\nproviders:\n  - options: {path: /x}",
            "apiVersion: 1\nproviders:\n  - name: a",
            "apiVersion: 1\nproviders:\n  - name: a\n    type: grpc\n    options: {path: /x}",
            "apiVersion: 1\nproviders:\n  - name: a\n    orgId: zero\n    options: {path: /x}",
            "apiVersion: 1\nproviders: [\n",
        ] {
            assert!(
                matches!(
                    ProvisioningConfig::from_yaml(yaml, env),
                    Err(Error::InvalidProvisioningConfig(_))
                ),
                "{yaml:?} is refused"
            );
        }
    }

    #[test]
    fn references_expand_like_grafana() {
        assert_eq!(
            expand("a $ORG b ${DIR} c", &env),
            "a 2 b /var/lib/dashboards c"
        );
        assert_eq!(expand("cost $$5 and $", &env), "cost $5 and $");
        assert_eq!(expand("$UNSET-x", &env), "-x");
    }

    #[test]
    fn derived_uids_are_stable_and_valid() {
        let uid = provider_uid("default", "team/cpu.json");
        assert_eq!(uid, provider_uid("default", "team/cpu.json"));
        assert_ne!(uid, provider_uid("other", "team/cpu.json"));
        assert!(DashboardUid::parse(uid.as_str()).is_ok());
    }
}
