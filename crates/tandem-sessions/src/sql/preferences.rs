//! The sea-orm [`PreferenceStore`], over the `preferences` table.
//!
//! A row is created by the first write of its owner; two instances creating it at once
//! meet on the unique `(org_id, user_id, team_id)` index and the loser runs again, now
//! updating the winner's row. A patch reads the row locked (by primary key, once found:
//! a locking read of a missing key would lock an index gap on MySQL/MariaDB), so two
//! patches of different fields both hold.

use sea_orm::sea_query::ExprTrait;
use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use tandem_storage::{Database, now_ms};

use crate::preferences::{PreferenceOwner, PreferenceStore, Preferences, PreferencesPatch};
use crate::sql::entity::preferences;
use crate::{Error, OrgId, Result, TeamId, UserId};

/// How many times a write that lost the race to create a row runs again.
const UNIQUE_RETRIES: u32 = 3;

/// [`PreferenceStore`] over sea-orm: SQLite, PostgreSQL or MySQL/MariaDB, migrated by
/// `tandem-migrations`.
#[derive(Clone, Debug)]
pub struct SqlPreferenceStore {
    db: Database,
}

impl SqlPreferenceStore {
    /// A store in `db`, whose schema must be migrated.
    pub fn new(db: Database) -> SqlPreferenceStore {
        SqlPreferenceStore { db }
    }

    /// Writes `change(current)` as `owner`'s preferences in one transaction.
    async fn write(
        &self,
        owner: PreferenceOwner,
        change: impl Fn(Preferences) -> Preferences + Send + Sync,
    ) -> Result<()> {
        let change = &change;
        let mut attempt = 0;
        loop {
            let result = self
                .db
                .transaction(|tx| async move {
                    let current = row_of(&*tx, owner, true).await?;
                    let now = now_ms();
                    match current {
                        Some(row) => {
                            let next = change(to_preferences(&row));
                            let version = row.version + 1;
                            let mut active: preferences::ActiveModel = row.into();
                            fill(&mut active, &next);
                            active.version = ActiveValue::Set(version);
                            active.updated = ActiveValue::Set(now);
                            active.update(&*tx).await?;
                        }
                        None => {
                            let next = change(Preferences::default());
                            let (org_id, user_id, team_id) = owner.key();
                            let mut active = preferences::ActiveModel {
                                id: ActiveValue::NotSet,
                                org_id: ActiveValue::Set(org_id),
                                user_id: ActiveValue::Set(user_id),
                                team_id: ActiveValue::Set(team_id),
                                version: ActiveValue::Set(1),
                                created: ActiveValue::Set(now),
                                updated: ActiveValue::Set(now),
                                ..Default::default()
                            };
                            fill(&mut active, &next);
                            active.insert(&*tx).await?;
                        }
                    }
                    Ok::<(), Error>(())
                })
                .await;
            match result {
                Err(err) if err.is_unique_violation() && attempt < UNIQUE_RETRIES => attempt += 1,
                other => return other,
            }
        }
    }
}

#[async_trait::async_trait]
impl PreferenceStore for SqlPreferenceStore {
    async fn get(&self, owner: PreferenceOwner) -> Result<Preferences> {
        let row = self
            .db
            .read(|conn| async move { row_of(&conn, owner, false).await })
            .await?;
        Ok(row.as_ref().map(to_preferences).unwrap_or_default())
    }

    async fn layers(&self, org: OrgId, user: UserId, teams: &[TeamId]) -> Result<Vec<Preferences>> {
        let team_ids: Vec<i64> = teams.iter().map(|team| team.0).collect();
        let team_ids = &team_ids;
        let rows = self
            .db
            .read(|conn| async move {
                preferences::Entity::find()
                    .filter(preferences::Column::OrgId.eq(org.0))
                    .filter(
                        // The org's row, the user's row, and the rows of their teams.
                        sea_orm::Condition::any()
                            .add(
                                preferences::Column::UserId
                                    .eq(0)
                                    .and(preferences::Column::TeamId.eq(0)),
                            )
                            .add(
                                preferences::Column::UserId
                                    .eq(user.0)
                                    .and(preferences::Column::TeamId.eq(0)),
                            )
                            .add(
                                preferences::Column::UserId
                                    .eq(0)
                                    .and(preferences::Column::TeamId.is_in(team_ids.clone())),
                            ),
                    )
                    .order_by_asc(preferences::Column::Id)
                    .all(&conn)
                    .await
            })
            .await?;
        let find = |user_id: i64, team_id: i64| {
            rows.iter()
                .find(|row| row.user_id == user_id && row.team_id == team_id)
                .map(to_preferences)
                .unwrap_or_default()
        };
        let mut layers = vec![find(0, 0)];
        layers.extend(team_ids.iter().map(|&team| find(0, team)));
        layers.push(find(user.0, 0));
        Ok(layers)
    }

    async fn put(&self, owner: PreferenceOwner, preferences: Preferences) -> Result<()> {
        preferences.check()?;
        self.write(owner, |_| preferences.clone()).await
    }

    async fn patch(&self, owner: PreferenceOwner, patch: PreferencesPatch) -> Result<()> {
        patch.check()?;
        self.write(owner, |current| current.patched(&patch)).await
    }
}

/// `owner`'s row; with `for_update`, locked by primary key once a plain read found it.
async fn row_of(
    conn: &impl ConnectionTrait,
    owner: PreferenceOwner,
    for_update: bool,
) -> Result<Option<preferences::Model>, sea_orm::DbErr> {
    let (org_id, user_id, team_id) = owner.key();
    let found = preferences::Entity::find()
        .filter(preferences::Column::OrgId.eq(org_id))
        .filter(preferences::Column::UserId.eq(user_id))
        .filter(preferences::Column::TeamId.eq(team_id))
        .one(conn)
        .await?;
    match found {
        Some(row) if for_update => {
            preferences::Entity::find()
                .filter(preferences::Column::Id.eq(row.id))
                .lock_exclusive()
                .one(conn)
                .await
        }
        other => Ok(other),
    }
}

fn to_preferences(row: &preferences::Model) -> Preferences {
    let mut preferences = Preferences {
        theme: row.theme.clone(),
        home_dashboard_id: row.home_dashboard_id,
        timezone: row.timezone.clone(),
        week_start: row.week_start.clone(),
        ..Preferences::default()
    };
    preferences.read_json_data(&row.json_data);
    preferences
}

fn fill(active: &mut preferences::ActiveModel, preferences: &Preferences) {
    active.theme = ActiveValue::Set(preferences.theme.clone());
    active.home_dashboard_id = ActiveValue::Set(preferences.home_dashboard_id);
    active.timezone = ActiveValue::Set(preferences.timezone.clone());
    active.week_start = ActiveValue::Set(preferences.week_start.clone());
    active.json_data = ActiveValue::Set(preferences.json_data());
}
