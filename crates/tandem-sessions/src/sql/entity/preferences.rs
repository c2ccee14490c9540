use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "preferences")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub org_id: i64,
    /// 0 for an org's or a team's row.
    pub user_id: i64,
    /// 0 for an org's or a user's row.
    pub team_id: i64,
    pub version: i64,
    pub home_dashboard_id: i64,
    pub timezone: String,
    pub week_start: String,
    pub theme: String,
    /// `{"language": …, "queryHistory": {"homeTab": …}}`.
    pub json_data: String,
    pub created: i64,
    pub updated: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
