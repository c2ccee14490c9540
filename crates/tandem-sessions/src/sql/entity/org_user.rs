use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "org_user")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub org_id: i64,
    pub user_id: i64,
    /// Grafana's spelling: `Viewer`, `Editor` or `Admin`.
    pub role: String,
    pub created: i64,
    pub updated: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "crate::sql::entity::org::Entity",
        from = "Column::OrgId",
        to = "crate::sql::entity::org::Column::Id"
    )]
    Org,
    #[sea_orm(
        belongs_to = "crate::sql::entity::user::Entity",
        from = "Column::UserId",
        to = "crate::sql::entity::user::Column::Id"
    )]
    User,
}

impl Related<crate::sql::entity::org::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Org.def()
    }
}

impl Related<crate::sql::entity::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
