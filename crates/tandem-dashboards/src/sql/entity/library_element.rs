use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "library_element")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub org_id: i64,
    /// `""` for General.
    pub folder_uid: String,
    pub uid: String,
    pub name: String,
    pub kind: i32,
    #[sea_orm(column_name = "type")]
    pub kind_type: String,
    pub description: String,
    /// The model JSON, as text.
    pub model: String,
    pub version: i64,
    pub created: i64,
    pub created_by: i64,
    pub updated: i64,
    pub updated_by: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
