use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_auth_token")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: i64,
    /// The hash of the current token.
    #[sea_orm(unique)]
    pub auth_token: String,
    /// The hash of the token before the last rotation; empty before the first.
    pub prev_auth_token: String,
    pub user_agent: String,
    pub client_ip: String,
    pub seen_at: i64,
    pub rotated_at: i64,
    pub created_at: i64,
    /// Grafana's soft revocation; Tandem revokes by deleting the row, so this stays empty.
    pub revoked_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
