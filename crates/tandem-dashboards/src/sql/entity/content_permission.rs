use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "content_permission")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub org_id: i64,
    /// `folder` or `dashboard`.
    pub kind: String,
    pub uid: String,
    /// 0 unless the item names a user.
    pub user_id: i64,
    /// 0 unless the item names a team.
    pub team_id: i64,
    /// `''` unless the item names a basic role.
    pub role: String,
    /// Grafana's level: 1, 2 or 4.
    pub permission: i64,
    pub created: i64,
    pub updated: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
