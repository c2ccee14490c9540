use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "dashboard")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub org_id: i64,
    pub uid: String,
    /// `None` at the root.
    pub folder_uid: Option<String>,
    pub title: String,
    /// `title` lower-cased by Tandem, compared byte-wise.
    pub title_lower: String,
    pub slug: String,
    // The JSON of the current version is `dashboard_version.data` of (id, version).
    pub version: i64,
    pub created: i64,
    pub updated: i64,
    pub created_by: i64,
    pub updated_by: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
