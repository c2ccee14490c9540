use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "team_member")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The team's org, copied so that an org's memberships go in one statement.
    pub org_id: i64,
    pub team_id: i64,
    pub user_id: i64,
    pub created: i64,
    /// Grafana's team permission: 0 a member, 4 an Admin of the team.
    pub permission: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "crate::sql::entity::team::Entity",
        from = "Column::TeamId",
        to = "crate::sql::entity::team::Column::Id"
    )]
    Team,
    #[sea_orm(
        belongs_to = "crate::sql::entity::user::Entity",
        from = "Column::UserId",
        to = "crate::sql::entity::user::Column::Id"
    )]
    User,
}

impl Related<crate::sql::entity::team::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Team.def()
    }
}

impl Related<crate::sql::entity::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
