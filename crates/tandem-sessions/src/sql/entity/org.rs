use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "org")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub name: String,
    pub created: i64,
    pub updated: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "crate::sql::entity::org_user::Entity")]
    OrgUser,
}

impl Related<crate::sql::entity::org_user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::OrgUser.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
