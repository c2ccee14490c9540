//! The sea-orm model of the `data_source` table; private to the sea-orm store, whose public
//! types are the plain ones of `crate::types`.

// sea-orm's derive macros generate `pub` items (Entity, Column, ActiveModel); the module
// itself is private, so none of them leaks out of the crate.
#![allow(unreachable_pub)]

pub(crate) mod data_source {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "data_source")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub org_id: i64,
        pub uid: String,
        pub name: String,
        #[sea_orm(column_name = "type")]
        pub kind: String,
        pub access: String,
        pub url: String,
        pub user: String,
        pub database: String,
        pub basic_auth: bool,
        pub basic_auth_user: String,
        pub with_credentials: bool,
        pub is_default: bool,
        /// The org id while this is the org's default, NULL otherwise (unique).
        pub default_org_id: Option<i64>,
        pub json_data: String,
        /// The sealed JSON object of the secrets (`tandem_storage::Sealer`).
        pub secure_json_data: String,
        /// A JSON array of the names of the non-empty secrets.
        pub secure_json_fields: String,
        pub read_only: bool,
        pub provisioned_checksum: Option<String>,
        pub version: i64,
        pub created: i64,
        pub updated: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
