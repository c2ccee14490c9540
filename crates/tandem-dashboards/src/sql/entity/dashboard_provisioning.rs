use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "dashboard_provisioning")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub org_id: i64,
    pub dashboard_id: i64,
    /// The provider's name.
    pub name: String,
    /// The file's path.
    pub external_id: String,
    /// SHA-256 of the file's content, hex.
    pub check_sum: String,
    pub allow_ui_updates: bool,
    pub updated: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
