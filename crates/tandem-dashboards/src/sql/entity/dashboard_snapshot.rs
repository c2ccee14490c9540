use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "dashboard_snapshot")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub org_id: i64,
    pub name: String,
    pub snapshot_key: String,
    pub delete_key: String,
    pub user_id: i64,
    pub external: bool,
    pub external_url: String,
    /// The dashboard JSON, as text.
    pub dashboard: String,
    /// Milliseconds since the epoch; 0 never.
    pub expires: i64,
    pub created: i64,
    pub updated: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
