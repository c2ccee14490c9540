use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub uid: String,
    /// Lower-case.
    #[sea_orm(unique)]
    pub login: String,
    /// Lower-case.
    #[sea_orm(unique)]
    pub email: String,
    pub name: String,
    pub password: String,
    pub salt: String,
    /// The current org.
    pub org_id: i64,
    pub is_admin: bool,
    pub is_disabled: bool,
    pub is_service_account: bool,
    /// 0 when never seen.
    pub last_seen_at: i64,
    pub created: i64,
    pub updated: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "crate::sql::entity::org_user::Entity")]
    OrgUser,
    #[sea_orm(has_many = "crate::sql::entity::team_member::Entity")]
    TeamMember,
}

impl Related<crate::sql::entity::org_user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::OrgUser.def()
    }
}

impl Related<crate::sql::entity::team_member::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::TeamMember.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
