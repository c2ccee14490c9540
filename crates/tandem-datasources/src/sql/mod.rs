//! The sea-orm [`DataSourceStore`], over the table of the data sources migration.
//!
//! Every write is one transaction ([`Database::transaction`], retried on busy and deadlock
//! errors); a closure may run more than once, so each reads the clock itself and touches
//! nothing but the database. The row being changed is read `FOR UPDATE` (SQLite's write
//! transaction already excludes other writers), so concurrent updates of one data source
//! queue on its row and each sees the version the previous one wrote; the `UPDATE … WHERE
//! version = ?` that follows is the compare-and-swap itself.
//!
//! "At most one default per org" is the unique index on `default_org_id`: a write that
//! makes a row the default first clears the flag of the others, then sets its own. Two
//! transactions doing so at once meet on the index; the loser runs again from the start and
//! then clears the winner's flag, so the default moves and is never doubled. Creations of
//! one name or uid meet on their unique indexes the same way, and the rerun reports the
//! conflict.

mod entity;

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use tandem_storage::{Database, Sealer, Secret, now_ms};

use crate::sql::entity::data_source;
use crate::{
    DataSource, DataSourceId, DataSourceKey, DataSourceStore, DataSourceType, DataSourceUid, Error,
    NewDataSource, OrgId, ProvisionDataSource, ProvisionOutcome, Result, SecureJsonData,
    UpdateDataSource, ValidSpec, Version, validate_uid,
};

/// How many times a write that lost a race on a unique index runs again.
const UNIQUE_RETRIES: u32 = 5;
/// The purpose data source secrets are sealed for (see `tandem_storage::secrets`).
pub const SEALER_PURPOSE: &str = "datasources";

/// [`DataSourceStore`] over sea-orm: SQLite, PostgreSQL or MySQL/MariaDB, migrated by
/// `tandem-migrations`. Secrets are sealed with the [`Sealer`] it is given, so every
/// instance must be given one made from the same `[security] secret_key`.
#[derive(Clone, Debug)]
pub struct SqlDataSourceStore {
    db: Database,
    sealer: Sealer,
}

impl SqlDataSourceStore {
    /// A store in `db` (whose schema must be migrated) sealing secrets with a key derived
    /// from `secret_key` for data sources.
    pub fn new(db: Database, secret_key: &str) -> SqlDataSourceStore {
        SqlDataSourceStore {
            db,
            sealer: Sealer::new(secret_key, SEALER_PURPOSE),
        }
    }

    /// Runs a write transaction, and runs it again from the start when it lost a race on a
    /// unique index: the next run sees the row the winner committed and decides again.
    async fn write<T, F, Fut>(&self, mut f: F) -> Result<T>
    where
        F: FnMut(tandem_storage::Tx) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut attempt = 0;
        loop {
            match self.db.transaction(&mut f).await {
                Err(err) if err.is_unique_violation() && attempt < UNIQUE_RETRIES => {
                    attempt += 1;
                    tracing::debug!(
                        attempt,
                        "data source write lost a race on a unique key, retrying"
                    );
                }
                other => return other,
            }
        }
    }

    fn seal(&self, secrets: &SecureJsonData) -> String {
        let plain: BTreeMap<&str, &str> = secrets
            .0
            .iter()
            .map(|(key, value)| (key.as_str(), value.expose()))
            .collect();
        let json = serde_json::to_vec(&plain).unwrap_or_default();
        self.sealer.seal(&json)
    }

    fn open(&self, sealed: &str) -> Result<SecureJsonData> {
        let bytes = self.sealer.open(sealed)?;
        let plain: BTreeMap<String, String> =
            serde_json::from_slice(&bytes).map_err(|_| tandem_storage::SealError::Malformed)?;
        Ok(SecureJsonData(
            plain
                .into_iter()
                .map(|(key, value)| (key, Secret::new(value)))
                .collect(),
        ))
    }

    /// Whether the row's secrets already have every value of `secrets`.
    fn holds_secrets(&self, row: &data_source::Model, secrets: &SecureJsonData) -> Result<bool> {
        if secrets.is_empty() {
            return Ok(true);
        }
        let stored = self.open(&row.secure_json_data)?;
        Ok(secrets
            .0
            .iter()
            .all(|(key, value)| stored.0.get(key).is_some_and(|s| s == value)))
    }

    /// Creates a row from a valid spec inside a transaction; `NameTaken`/`UidTaken` when
    /// another row of the org has either.
    async fn insert(
        &self,
        conn: &impl ConnectionTrait,
        org: OrgId,
        uid: &DataSourceUid,
        spec: &ValidSpec,
        read_only: bool,
        checksum: Option<&str>,
    ) -> Result<DataSource> {
        if find(
            conn,
            org,
            &DataSourceKey::Name(spec.spec.name.clone()),
            false,
        )
        .await?
        .is_some()
        {
            return Err(Error::NameTaken);
        }
        if find(conn, org, &DataSourceKey::Uid(uid.clone()), false)
            .await?
            .is_some()
        {
            return Err(Error::UidTaken);
        }
        if spec.spec.is_default {
            clear_default(conn, org, None).await?;
        }
        let now = now_ms();
        let row = data_source::ActiveModel {
            id: ActiveValue::NotSet,
            org_id: ActiveValue::Set(org.0),
            uid: ActiveValue::Set(uid.as_str().to_owned()),
            version: ActiveValue::Set(1),
            read_only: ActiveValue::Set(read_only),
            provisioned_checksum: ActiveValue::Set(checksum.map(str::to_owned)),
            created: ActiveValue::Set(now),
            updated: ActiveValue::Set(now),
            ..self.settings(org, spec, &spec.spec.secure_json_data)
        }
        .insert(conn)
        .await?;
        to_data_source(row)
    }

    /// Replaces the settings of `current` (read `FOR UPDATE`) with `spec`, merging secrets,
    /// as the next version; a compare-and-swap on `current.version`.
    async fn replace(
        &self,
        conn: &impl ConnectionTrait,
        current: &data_source::Model,
        spec: &ValidSpec,
        read_only: bool,
        checksum: Option<&str>,
    ) -> Result<DataSource> {
        let org = OrgId(current.org_id);
        if spec.spec.name != current.name
            && let Some(other) = find(
                conn,
                org,
                &DataSourceKey::Name(spec.spec.name.clone()),
                false,
            )
            .await?
            && other.id != current.id
        {
            return Err(Error::NameTaken);
        }
        let secrets = self
            .open(&current.secure_json_data)?
            .merged_with(&spec.spec.secure_json_data);
        if spec.spec.is_default {
            clear_default(conn, org, Some(current.id)).await?;
        }
        let version = current.version.saturating_add(1);
        let settings = self.settings(org, spec, &secrets);
        let mut update = data_source::Entity::update_many();
        for (column, value) in [
            (data_source::Column::Name, settings.name),
            (data_source::Column::Kind, settings.kind),
            (data_source::Column::Access, settings.access),
            (data_source::Column::Url, settings.url),
            (data_source::Column::User, settings.user),
            (data_source::Column::Database, settings.database),
            (data_source::Column::BasicAuthUser, settings.basic_auth_user),
            (data_source::Column::JsonData, settings.json_data),
            (
                data_source::Column::SecureJsonData,
                settings.secure_json_data,
            ),
            (
                data_source::Column::SecureJsonFields,
                settings.secure_json_fields,
            ),
        ] {
            if let ActiveValue::Set(value) = value {
                update = update.col_expr(column, Expr::value(value));
            }
        }
        let result = update
            .col_expr(
                data_source::Column::BasicAuth,
                Expr::value(spec.spec.basic_auth),
            )
            .col_expr(
                data_source::Column::WithCredentials,
                Expr::value(spec.spec.with_credentials),
            )
            .col_expr(
                data_source::Column::IsDefault,
                Expr::value(spec.spec.is_default),
            )
            .col_expr(
                data_source::Column::DefaultOrgId,
                Expr::value(spec.spec.is_default.then_some(org.0)),
            )
            .col_expr(data_source::Column::ReadOnly, Expr::value(read_only))
            .col_expr(
                data_source::Column::ProvisionedChecksum,
                Expr::value(checksum.map(str::to_owned)),
            )
            .col_expr(data_source::Column::Version, Expr::value(version))
            .col_expr(data_source::Column::Updated, Expr::value(now_ms()))
            .filter(data_source::Column::Id.eq(current.id))
            .filter(data_source::Column::Version.eq(current.version))
            .exec(conn)
            .await?;
        if result.rows_affected != 1 {
            // Someone else updated between our read and our write.
            return Err(Error::VersionMismatch);
        }
        let row = find(
            conn,
            org,
            &DataSourceKey::Id(DataSourceId(current.id)),
            false,
        )
        .await?
        .ok_or(Error::NotFound)?;
        to_data_source(row)
    }

    /// The columns a spec sets (everything but ids, version, times and provisioning).
    fn settings(
        &self,
        org: OrgId,
        spec: &ValidSpec,
        secrets: &SecureJsonData,
    ) -> data_source::ActiveModel {
        let fields: Vec<String> = secrets.fields().into_iter().collect();
        data_source::ActiveModel {
            name: ActiveValue::Set(spec.spec.name.clone()),
            kind: ActiveValue::Set(spec.kind.as_str().to_owned()),
            access: ActiveValue::Set(spec.spec.access.clone()),
            url: ActiveValue::Set(spec.spec.url.clone()),
            user: ActiveValue::Set(spec.spec.user.clone()),
            database: ActiveValue::Set(spec.spec.database.clone()),
            basic_auth: ActiveValue::Set(spec.spec.basic_auth),
            basic_auth_user: ActiveValue::Set(spec.spec.basic_auth_user.clone()),
            with_credentials: ActiveValue::Set(spec.spec.with_credentials),
            is_default: ActiveValue::Set(spec.spec.is_default),
            default_org_id: ActiveValue::Set(spec.spec.is_default.then_some(org.0)),
            json_data: ActiveValue::Set(
                serde_json::Value::Object(spec.json_data.clone()).to_string(),
            ),
            secure_json_data: ActiveValue::Set(self.seal(secrets)),
            secure_json_fields: ActiveValue::Set(
                serde_json::to_string(&fields).unwrap_or_else(|_| "[]".to_owned()),
            ),
            ..Default::default()
        }
    }
}

#[async_trait::async_trait]
impl DataSourceStore for SqlDataSourceStore {
    async fn create(&self, new: NewDataSource) -> Result<DataSource> {
        let spec = new.spec.validate()?;
        let uid = match new.uid {
            Some(uid) if !uid.as_str().is_empty() => {
                validate_uid(uid.as_str())?;
                uid
            }
            _ => DataSourceUid::generate(),
        };
        let (spec, uid) = (&spec, &uid);
        self.write(|tx| async move { self.insert(&*tx, new.org_id, uid, spec, false, None).await })
            .await
    }

    async fn get(&self, org: OrgId, key: &DataSourceKey) -> Result<Option<DataSource>> {
        let row = self
            .db
            .read(|conn| async move { find(&conn, org, key, false).await })
            .await?;
        row.map(to_data_source).transpose()
    }

    async fn get_with_secrets(
        &self,
        org: OrgId,
        key: &DataSourceKey,
    ) -> Result<Option<(DataSource, SecureJsonData)>> {
        let row = self
            .db
            .read(|conn| async move { find(&conn, org, key, false).await })
            .await?;
        match row {
            Some(row) => {
                let secrets = self.open(&row.secure_json_data)?;
                Ok(Some((to_data_source(row)?, secrets)))
            }
            None => Ok(None),
        }
    }

    async fn list(&self, org: OrgId) -> Result<Vec<DataSource>> {
        let rows = self
            .db
            .read(|conn| async move {
                data_source::Entity::find()
                    .filter(data_source::Column::OrgId.eq(org.0))
                    .order_by_asc(data_source::Column::Name)
                    .all(&conn)
                    .await
            })
            .await?;
        rows.into_iter().map(to_data_source).collect()
    }

    async fn update(
        &self,
        org: OrgId,
        key: &DataSourceKey,
        update: UpdateDataSource,
    ) -> Result<DataSource> {
        let spec = update.spec.validate()?;
        let (spec, version) = (&spec, update.version);
        self.write(|tx| async move {
            let current = find(&*tx, org, key, true).await?.ok_or(Error::NotFound)?;
            if current.read_only {
                return Err(Error::ReadOnly);
            }
            // Grafana lets a version newer than the stored one through (provisioning files
            // carry versions of their own); only an older one is stale. 0 means "unknown".
            if let Some(Version(v)) = version
                && v != 0
                && v < current.version
            {
                return Err(Error::VersionMismatch);
            }
            // An editable provisioned data source keeps its checksum, so the provisioner
            // leaves the edit alone until the file itself changes.
            let checksum = current.provisioned_checksum.clone();
            self.replace(&*tx, &current, spec, false, checksum.as_deref())
                .await
        })
        .await
    }

    async fn delete(&self, org: OrgId, key: &DataSourceKey) -> Result<DataSource> {
        self.write(|tx| async move {
            let current = find(&*tx, org, key, true).await?.ok_or(Error::NotFound)?;
            if current.read_only {
                return Err(Error::ReadOnly);
            }
            delete_row(&*tx, current).await
        })
        .await
    }

    async fn provision(&self, provision: ProvisionDataSource) -> Result<ProvisionOutcome> {
        let spec = provision.spec.validate()?;
        if let Some(uid) = &provision.uid {
            validate_uid(uid.as_str())?;
        }
        let (spec, provision) = (&spec, &provision);
        let mut attempt = 0;
        loop {
            let outcome = self.provision_once(spec, provision).await;
            match outcome {
                // Another instance created the entry between our read and our insert (a
                // READ COMMITTED statement sees its commit): run again, and see its row.
                Err(Error::NameTaken | Error::UidTaken) if attempt < UNIQUE_RETRIES => {
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn delete_provisioned(&self, org: OrgId, name: &str) -> Result<Option<DataSource>> {
        self.write(|tx| async move {
            match find(&*tx, org, &DataSourceKey::Name(name.to_owned()), true).await? {
                Some(row) => Ok(Some(delete_row(&*tx, row).await?)),
                None => Ok(None),
            }
        })
        .await
    }
}

impl SqlDataSourceStore {
    async fn provision_once(
        &self,
        spec: &ValidSpec,
        provision: &ProvisionDataSource,
    ) -> Result<ProvisionOutcome> {
        self.write(|tx| async move {
            let org = provision.org_id;
            let by_name = find(
                &*tx,
                org,
                &DataSourceKey::Name(spec.spec.name.clone()),
                true,
            )
            .await?;
            let existing = match (by_name, &provision.uid) {
                (Some(row), _) => Some(row),
                (None, Some(uid)) if !uid.as_str().is_empty() => {
                    find(&*tx, org, &DataSourceKey::Uid(uid.clone()), true).await?
                }
                (None, _) => None,
            };
            let read_only = !provision.editable;
            let checksum = Some(provision.checksum.as_str());
            match existing {
                Some(row)
                    if row.provisioned_checksum.as_deref() == checksum
                        && self.holds_secrets(&row, &spec.spec.secure_json_data)? =>
                {
                    Ok(ProvisionOutcome::Unchanged)
                }
                Some(row) => Ok(ProvisionOutcome::Updated(
                    self.replace(&*tx, &row, spec, read_only, checksum).await?,
                )),
                None => {
                    let uid = provision
                        .uid
                        .clone()
                        .filter(|uid| !uid.as_str().is_empty())
                        .unwrap_or_else(|| provisioned_uid(org, &spec.spec.name));
                    Ok(ProvisionOutcome::Created(
                        self.insert(&*tx, org, &uid, spec, read_only, checksum)
                            .await?,
                    ))
                }
            }
        })
        .await
    }
}

/// The uid of a provisioned data source whose entry has none: derived from its org and
/// name, so every instance provisioning the same file picks the same one.
fn provisioned_uid(org: OrgId, name: &str) -> DataSourceUid {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{}\0{name}", org.0).as_bytes());
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    DataSourceUid::from(format!("P{hex}"))
}

async fn find(
    conn: &impl ConnectionTrait,
    org: OrgId,
    key: &DataSourceKey,
    for_update: bool,
) -> Result<Option<data_source::Model>, sea_orm::DbErr> {
    let mut select = data_source::Entity::find().filter(data_source::Column::OrgId.eq(org.0));
    select = match key {
        DataSourceKey::Id(id) => select.filter(data_source::Column::Id.eq(id.0)),
        DataSourceKey::Uid(uid) => select.filter(data_source::Column::Uid.eq(uid.as_str())),
        DataSourceKey::Name(name) => select.filter(data_source::Column::Name.eq(name.as_str())),
    };
    if for_update {
        select = select.lock_exclusive();
    }
    tandem_storage::first_row(select, conn).await
}

/// Clears the default flag of the org's data sources other than `except`.
async fn clear_default(
    conn: &impl ConnectionTrait,
    org: OrgId,
    except: Option<i64>,
) -> Result<(), sea_orm::DbErr> {
    let mut update = data_source::Entity::update_many()
        .col_expr(data_source::Column::IsDefault, Expr::value(false))
        .col_expr(data_source::Column::DefaultOrgId, Expr::value(None::<i64>))
        .filter(data_source::Column::OrgId.eq(org.0))
        .filter(data_source::Column::DefaultOrgId.is_not_null());
    if let Some(id) = except {
        update = update.filter(data_source::Column::Id.ne(id));
    }
    update.exec(conn).await?;
    Ok(())
}

async fn delete_row(conn: &impl ConnectionTrait, row: data_source::Model) -> Result<DataSource> {
    data_source::Entity::delete_many()
        .filter(data_source::Column::Id.eq(row.id))
        .exec(conn)
        .await?;
    to_data_source(row)
}

fn to_data_source(row: data_source::Model) -> Result<DataSource> {
    let kind = DataSourceType::parse(&row.kind)?;
    let json_data = match serde_json::from_str(&row.json_data) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let secure_json_fields: BTreeSet<String> =
        serde_json::from_str(&row.secure_json_fields).unwrap_or_default();
    Ok(DataSource {
        id: DataSourceId(row.id),
        uid: DataSourceUid::from(row.uid),
        org_id: OrgId(row.org_id),
        name: row.name,
        kind,
        type_name: kind.type_name(),
        access: row.access,
        url: row.url,
        user: row.user,
        database: row.database,
        basic_auth: row.basic_auth,
        basic_auth_user: row.basic_auth_user,
        with_credentials: row.with_credentials,
        is_default: row.is_default,
        json_data,
        secure_json_fields,
        version: Version(row.version),
        read_only: row.read_only,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provisioned_uids_are_stable_and_valid() {
        let uid = provisioned_uid(OrgId(1), "Prometheus");
        assert_eq!(uid, provisioned_uid(OrgId(1), "Prometheus"));
        assert_ne!(uid, provisioned_uid(OrgId(2), "Prometheus"));
        assert!(DataSourceUid::parse(uid.as_str()).is_ok());
    }
}
