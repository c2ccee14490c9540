//! sea-orm models of the alerting tables; private to the sea-orm store, whose public types
//! are the plain ones of `crate::types`.

// sea-orm's derive macros generate `pub` items (Entity, Column, ActiveModel); the module
// itself is private, so none of them leaks out of the crate.
#![allow(unreachable_pub)]

pub(crate) mod alert_rule {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "alert_rule")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub org_id: i64,
        pub uid: String,
        pub title: String,
        pub folder_uid: String,
        pub rule_group: String,
        pub rule_group_idx: i32,
        pub condition_ref: String,
        pub data: String,
        pub interval_seconds: i64,
        pub version: i64,
        pub no_data_state: String,
        pub exec_err_state: String,
        pub for_ms: i64,
        pub keep_firing_for_ms: i64,
        pub missing_series_evals: Option<i32>,
        pub labels: String,
        pub annotations: String,
        pub is_paused: bool,
        pub provenance: String,
        pub updated: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod alert_rule_version {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "alert_rule_version")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub org_id: i64,
        pub rule_uid: String,
        pub version: i64,
        pub rule: String,
        pub created: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod alert_instance {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "alert_instance")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub org_id: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub rule_uid: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub labels_hash: String,
        pub labels: String,
        pub state: String,
        pub reason: String,
        pub started_at: i64,
        pub ends_at: i64,
        pub last_slot: i64,
        pub last_eval_at: i64,
        pub eval_values: String,
        pub annotations: String,
        pub error: String,
        pub resolved_at: Option<i64>,
        pub last_sent_at: Option<i64>,
        pub missing_evals: i32,
        pub written_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub(crate) mod alert_rule_status {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "alert_rule_status")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub org_id: i64,
        #[sea_orm(primary_key, auto_increment = false)]
        pub rule_uid: String,
        pub last_slot: i64,
        pub duration_ms: i64,
        pub health: String,
        pub last_error: String,
        pub written_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
