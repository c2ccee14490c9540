use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "library_element_connection")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub element_id: i64,
    /// 1: a dashboard.
    pub kind: i32,
    /// The dashboard's id.
    pub connection_id: i64,
    pub created: i64,
    pub created_by: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
