//! Alerting: rules with a version row per change, alert instances (Grafana's
//! `alert_instance`), one status row per rule, and the shard leases of sharded evaluation.
//!
//! - `alert_rule`: one row per rule; `uid` is unique per org and `title` unique per org and
//!   folder (byte-wise, as Grafana compares them). `data`, `labels` and `annotations` are JSON.
//!   Durations are milliseconds.
//! - `alert_rule_version`: the whole rule as JSON after each change, `(org_id, rule_uid,
//!   version)` unique, so of two writers of one version exactly one commits.
//! - `alert_instance`: one row per alert instance, keyed by rule and labels hash; `last_slot`
//!   is the evaluation slot that wrote it, compared in every update so that an older
//!   evaluation never overwrites a newer one.
//! - `alert_rule_status`: the health of a rule's last recorded evaluation.
//! - `alert_shard`: one row per shard of the rules in sharded mode: a lease (holder, fencing
//!   token, expiry) and `claimed_until`, the slot time up to which its holder may evaluate.
//!
//! Times are `BIGINT` milliseconds since the epoch.

use crate::ddl::{bytewise, document, index, unique};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, big_integer_null, big_pk_auto, boolean, integer, integer_null, string_len, text,
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
                    .table("alert_rule")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(big_integer("org_id"))
                    .col(exact("uid", 40))
                    .col(exact("title", 190))
                    .col(exact("folder_uid", 40))
                    .col(exact("rule_group", 190))
                    .col(integer("rule_group_idx"))
                    .col(string_len("condition_ref", 190))
                    .col(document("data"))
                    .col(big_integer("interval_seconds"))
                    .col(big_integer("version"))
                    .col(string_len("no_data_state", 16))
                    .col(string_len("exec_err_state", 16))
                    .col(big_integer("for_ms"))
                    .col(big_integer("keep_firing_for_ms"))
                    .col(integer_null("missing_series_evals"))
                    .col(document("labels"))
                    .col(document("annotations"))
                    .col(boolean("is_paused"))
                    .col(string_len("provenance", 32))
                    .col(big_integer("updated"))
                    .to_owned(),
            )
            .await?;
        unique(
            manager,
            "uq_alert_rule_org_uid",
            "alert_rule",
            &["org_id", "uid"],
        )
        .await?;
        unique(
            manager,
            "uq_alert_rule_org_folder_title",
            "alert_rule",
            &["org_id", "folder_uid", "title"],
        )
        .await?;
        index(
            manager,
            "ix_alert_rule_org_folder_group",
            "alert_rule",
            &["org_id", "folder_uid", "rule_group"],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table("alert_rule_version")
                    .if_not_exists()
                    .col(big_pk_auto("id"))
                    .col(big_integer("org_id"))
                    .col(exact("rule_uid", 40))
                    .col(big_integer("version"))
                    .col(document("rule"))
                    .col(big_integer("created"))
                    .to_owned(),
            )
            .await?;
        unique(
            manager,
            "uq_alert_rule_version",
            "alert_rule_version",
            &["org_id", "rule_uid", "version"],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table("alert_instance")
                    .if_not_exists()
                    .col(big_integer("org_id"))
                    .col(exact("rule_uid", 40))
                    .col(string_len("labels_hash", 64))
                    .col(document("labels"))
                    .col(string_len("state", 16))
                    .col(string_len("reason", 64))
                    .col(big_integer("started_at"))
                    .col(big_integer("ends_at"))
                    .col(big_integer("last_slot"))
                    .col(big_integer("last_eval_at"))
                    .col(document("eval_values"))
                    .col(document("annotations"))
                    .col(text("error"))
                    .col(big_integer_null("resolved_at"))
                    .col(big_integer_null("last_sent_at"))
                    .col(integer("missing_evals"))
                    .col(big_integer("written_at"))
                    .primary_key(
                        Index::create()
                            .col("org_id")
                            .col("rule_uid")
                            .col("labels_hash"),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "ix_alert_instance_state",
            "alert_instance",
            &["org_id", "state"],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table("alert_rule_status")
                    .if_not_exists()
                    .col(big_integer("org_id"))
                    .col(exact("rule_uid", 40))
                    .col(big_integer("last_slot"))
                    .col(big_integer("duration_ms"))
                    .col(string_len("health", 16))
                    .col(text("last_error"))
                    .col(big_integer("written_at"))
                    .primary_key(Index::create().col("org_id").col("rule_uid"))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("alert_shard")
                    .if_not_exists()
                    .col(integer("shard").primary_key())
                    .col(string_len("holder", 190))
                    .col(big_integer("token"))
                    .col(big_integer("expires_at"))
                    .col(big_integer("claimed_until"))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "alert_shard",
            "alert_rule_status",
            "alert_instance",
            "alert_rule_version",
            "alert_rule",
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
