use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "folder")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub org_id: i64,
    pub uid: String,
    pub title: String,
    /// `title` lower-cased by Tandem, compared byte-wise.
    pub title_lower: String,
    pub parent_uid: Option<String>,
    pub version: i64,
    pub created: i64,
    pub updated: i64,
    pub created_by: i64,
    pub updated_by: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
