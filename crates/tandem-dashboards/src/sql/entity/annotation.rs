use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "annotation")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub org_id: i64,
    /// 0: not on a dashboard.
    pub dashboard_id: i64,
    pub panel_id: i64,
    pub user_id: i64,
    /// Non-zero for an alert state change.
    pub alert_id: i64,
    pub prev_state: String,
    pub new_state: String,
    pub text: String,
    /// JSON.
    pub data: String,
    pub epoch: i64,
    pub epoch_end: i64,
    pub version: i64,
    pub created: i64,
    pub updated: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
