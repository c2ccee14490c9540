use crate::{
    DataSource, DataSourceKey, DataSourceSpec, DataSourceUid, NewDataSource, OrgId, Result,
    SecureJsonData, UpdateDataSource,
};

/// A data source from a provisioning file, to create or update when its entry changed.
#[derive(Clone, Debug, PartialEq)]
pub struct ProvisionDataSource {
    /// The org it goes to.
    pub org_id: OrgId,
    /// The uid the file gives, if any (generated otherwise).
    pub uid: Option<DataSourceUid>,
    /// The settings from the file.
    pub spec: DataSourceSpec,
    /// `editable`: whether the API may change it afterwards (`readOnly` is its negation).
    pub editable: bool,
    /// The SHA-256 (hex) of the entry as read from the file, after variable expansion,
    /// without secret values: the store compares those with the sealed ones itself.
    pub checksum: String,
}

/// What provisioning one entry did.
#[derive(Clone, Debug, PartialEq)]
pub enum ProvisionOutcome {
    /// No data source of that name (or uid) existed: it was created.
    Created(DataSource),
    /// The entry changed since it was last provisioned (or the data source was created
    /// through the API): it was updated to the file's settings.
    Updated(DataSource),
    /// The recorded checksum matches: nothing was written.
    Unchanged,
}

/// Persistence of data sources and their sealed secrets.
///
/// Every write is one transaction and returns after its commit. Everything is scoped by
/// org: an id, uid or name of another org is not found. Names and uids are unique per org
/// ([`Error::NameTaken`](crate::Error::NameTaken), [`Error::UidTaken`](crate::Error::UidTaken)),
/// and at most one data source per org is the default: making one the default clears the
/// flag of the previous one in the same transaction, so concurrent writers never leave two.
/// Writes validate their spec with [`DataSourceSpec::validate`] and write nothing when it
/// fails. Secrets are sealed at rest and only [`DataSourceStore::get_with_secrets`] returns
/// them.
///
/// [`SqlDataSourceStore`](crate::SqlDataSourceStore) implements it over sea-orm;
/// `testkit::conformance` is the suite any implementation must pass.
#[async_trait::async_trait]
pub trait DataSourceStore: Send + Sync {
    /// Creates a data source with version 1; a missing uid is generated.
    async fn create(&self, new: NewDataSource) -> Result<DataSource>;
    /// The data source named by `key` in the org.
    async fn get(&self, org: OrgId, key: &DataSourceKey) -> Result<Option<DataSource>>;
    /// The data source with its opened secrets, for building a query client.
    async fn get_with_secrets(
        &self,
        org: OrgId,
        key: &DataSourceKey,
    ) -> Result<Option<(DataSource, SecureJsonData)>>;
    /// The org's data sources, by name.
    async fn list(&self, org: OrgId) -> Result<Vec<DataSource>>;
    /// Replaces the settings of the data source named by `key` and stores the next version.
    /// A compare-and-swap: of two updates carrying the same version exactly one succeeds,
    /// the other fails with `VersionMismatch`. `NotFound`; `ReadOnly` for a data source
    /// provisioned without `editable`.
    async fn update(
        &self,
        org: OrgId,
        key: &DataSourceKey,
        update: UpdateDataSource,
    ) -> Result<DataSource>;
    /// Deletes the data source and returns it. `NotFound`; `ReadOnly` as for updates.
    async fn delete(&self, org: OrgId, key: &DataSourceKey) -> Result<DataSource>;

    /// Provisions one entry of a provisioning file in one transaction: creates the data
    /// source, updates it (read-only or not) when the recorded checksum differs or a secret
    /// of the entry differs from the stored one, or does nothing. Several instances provisioning the same entry at once make one row and one
    /// version.
    async fn provision(&self, provision: ProvisionDataSource) -> Result<ProvisionOutcome>;
    /// Deletes a data source by name for a file's `deleteDatasources`, read-only or not;
    /// `None` when there was none (another instance deleted it first).
    async fn delete_provisioned(&self, org: OrgId, name: &str) -> Result<Option<DataSource>>;
}
