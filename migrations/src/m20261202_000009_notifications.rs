//! Notifications: contact points, the notification policy tree, mute timings, templates,
//! and the dispatcher's shared state (alert groups and the notification log).
//!
//! - `alert_contact_point`: one row per integration (Grafana's "embedded contact point");
//!   integrations with the same `name` form one receiver. `settings` is JSON without
//!   secrets; `secure_settings` is one sealed blob (`tandem_storage::secrets`).
//! - `alert_notification_config`: one row per org holding the policy tree as JSON; the row
//!   exists once the org's defaults (tree and default contact point) were created.
//! - `alert_mute_timing`, `alert_notification_template`: one row per name and org.
//! - `alert_notification_group`: one row per alert group being notified, keyed by a hash of
//!   (org, route, receiver, group labels): the flush sequence, the next due time (database
//!   clock) and what the last flush said was firing, so every instance computes the same
//!   schedule and a fail-over keeps it.
//! - `alert_notification_log`: one row per flush and integration, keyed by `flush_key`
//!   (unique): the rendered payload, the claim (holder, fencing token, lease expiry by the
//!   database's clock) and the outcome.
//!
//! Times are `BIGINT` milliseconds since the epoch.

use crate::ddl::{bytewise, document, index, unique};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, big_pk_auto, boolean, integer, string_len, text,
};

#[derive(DeriveMigrationName)]
pub(crate) struct Migration;

// The trait's signature elides the manager's lifetime, so the impl must too.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let exact = |name: &'static str, len: u32| bytewise(string_len(name, len), backend);
        let document = |name: &'static str| document(name, backend);

        manager
            .create_table(
                Table::create()
                    .table("alert_contact_point")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(big_integer("org_id"))
                    .col(exact("uid", 40))
                    .col(exact("name", 190))
                    .col(string_len("kind", 32))
                    .col(document("settings"))
                    .col(text("secure_settings"))
                    .col(boolean("disable_resolve_message"))
                    .col(string_len("provenance", 32))
                    .col(big_integer("version"))
                    .col(big_integer("updated"))
                    .to_owned(),
            )
            .await?;
        unique(
            manager,
            "uq_alert_contact_point_org_uid",
            "alert_contact_point",
            &["org_id", "uid"],
        )
        .await?;
        index(
            manager,
            "ix_alert_contact_point_org_name",
            "alert_contact_point",
            &["org_id", "name"],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table("alert_notification_config")
                    .if_not_exists()
                    .col(big_integer("org_id").primary_key())
                    .col(document("policy"))
                    .col(string_len("provenance", 32))
                    .col(big_integer("version"))
                    .col(big_integer("updated"))
                    .to_owned(),
            )
            .await?;

        for table in ["alert_mute_timing", "alert_notification_template"] {
            manager
                .create_table(
                    Table::create()
                        .table(table)
                        .if_not_exists()
                        .col(big_integer("org_id"))
                        .col(exact("name", 190))
                        .col(document("body"))
                        .col(string_len("provenance", 32))
                        .col(big_integer("version"))
                        .col(big_integer("updated"))
                        .primary_key(Index::create().col("org_id").col("name"))
                        .to_owned(),
                )
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table("alert_notification_group")
                    .if_not_exists()
                    .col(string_len("group_id", 64).primary_key())
                    .col(big_integer("org_id"))
                    .col(exact("receiver", 190))
                    .col(text("group_key"))
                    .col(big_integer("epoch"))
                    .col(big_integer("seq"))
                    .col(big_integer("next_due"))
                    .col(big_integer("last_sent_at"))
                    .col(document("sent_firing"))
                    .col(big_integer("created_at"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("alert_notification_log")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(string_len("flush_key", 64))
                    .col(big_integer("org_id"))
                    .col(string_len("group_id", 64))
                    .col(big_integer("seq"))
                    .col(exact("integration_uid", 40))
                    .col(exact("receiver", 190))
                    .col(document("payload"))
                    .col(string_len("status", 16))
                    .col(string_len("holder", 190))
                    .col(big_integer("token"))
                    .col(big_integer("expires_at"))
                    .col(integer("attempts"))
                    .col(big_integer("created_at"))
                    .col(big_integer_null("sent_at"))
                    .col(text("last_error"))
                    .to_owned(),
            )
            .await?;
        unique(
            manager,
            "uq_alert_notification_log_key",
            "alert_notification_log",
            &["flush_key"],
        )
        .await?;
        index(
            manager,
            "ix_alert_notification_log_status",
            "alert_notification_log",
            &["status", "expires_at"],
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "alert_notification_log",
            "alert_notification_group",
            "alert_notification_template",
            "alert_mute_timing",
            "alert_notification_config",
            "alert_contact_point",
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
