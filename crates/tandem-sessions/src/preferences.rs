//! Preferences of orgs, teams and users: theme, home dashboard, time zone, first day of
//! the week, language; Grafana's `preferences`, shared by every instance.
//!
//! What a user sees is the org's preferences, overridden field by field by those of each
//! of their teams (in id order), overridden by their own ([`Preferences::merged`]).

use serde_json::{Value, json};
use tandem_storage::input::check_bounded_text;

use crate::{Error, OrgId, Result, TeamId, UserId};

/// The themes Grafana 12 accepts (`""` is the default).
pub const THEMES: &[&str] = &["", "light", "dark", "system"];
/// The longest time zone name stored.
pub const MAX_TIMEZONE_LEN: usize = 50;
/// The longest week start stored (`"saturday"`…).
pub const MAX_WEEK_START_LEN: usize = 10;
/// The longest language tag or query-history tab stored.
pub const MAX_LANGUAGE_LEN: usize = 50;

/// Whose preferences.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreferenceOwner {
    /// The org's own (the defaults of its members).
    Org(OrgId),
    /// A team's, in its org.
    Team(OrgId, TeamId),
    /// A user's, in one org.
    User(OrgId, UserId),
}

impl PreferenceOwner {
    /// The org, user and team ids of the stored row (0 where it has none).
    pub fn key(self) -> (i64, i64, i64) {
        match self {
            PreferenceOwner::Org(org) => (org.0, 0, 0),
            PreferenceOwner::Team(org, team) => (org.0, 0, team.0),
            PreferenceOwner::User(org, user) => (org.0, user.0, 0),
        }
    }
}

/// One owner's preferences; an empty text (or a home dashboard id of 0) is "not set".
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Preferences {
    /// `""`, `light`, `dark` or `system`.
    pub theme: String,
    /// Grafana's id of the home dashboard; 0 for none.
    pub home_dashboard_id: i64,
    /// An IANA zone, `utc`, `browser` or `""`.
    pub timezone: String,
    /// `saturday`, `sunday`, `monday` or `""`.
    pub week_start: String,
    /// A language tag such as `en-US`, or `""`.
    pub language: String,
    /// Explore's query history tab.
    pub query_history_home_tab: String,
}

/// A change to some fields of an owner's preferences; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PreferencesPatch {
    /// See [`Preferences::theme`].
    pub theme: Option<String>,
    /// See [`Preferences::home_dashboard_id`].
    pub home_dashboard_id: Option<i64>,
    /// See [`Preferences::timezone`].
    pub timezone: Option<String>,
    /// See [`Preferences::week_start`].
    pub week_start: Option<String>,
    /// See [`Preferences::language`].
    pub language: Option<String>,
    /// See [`Preferences::query_history_home_tab`].
    pub query_history_home_tab: Option<String>,
}

impl Preferences {
    /// Refuses a theme Grafana does not know (`Invalid theme`, Grafana's words) and text
    /// that breaks the input policy.
    pub fn check(&self) -> Result<()> {
        check_theme(&self.theme)?;
        check_fields(
            &self.timezone,
            &self.week_start,
            &self.language,
            &self.query_history_home_tab,
        )
    }

    /// `layers` from the lowest (the org's) to the highest (the user's): each set field
    /// overrides the ones below it.
    pub fn merged<'a>(layers: impl IntoIterator<Item = &'a Preferences>) -> Preferences {
        let mut merged = Preferences::default();
        for layer in layers {
            let text = |into: &mut String, from: &String| {
                if !from.is_empty() {
                    into.clone_from(from);
                }
            };
            text(&mut merged.theme, &layer.theme);
            text(&mut merged.timezone, &layer.timezone);
            text(&mut merged.week_start, &layer.week_start);
            text(&mut merged.language, &layer.language);
            text(
                &mut merged.query_history_home_tab,
                &layer.query_history_home_tab,
            );
            if layer.home_dashboard_id != 0 {
                merged.home_dashboard_id = layer.home_dashboard_id;
            }
        }
        merged
    }

    /// Applies `patch`.
    pub fn patched(mut self, patch: &PreferencesPatch) -> Preferences {
        let set = |into: &mut String, from: &Option<String>| {
            if let Some(value) = from {
                into.clone_from(value);
            }
        };
        set(&mut self.theme, &patch.theme);
        set(&mut self.timezone, &patch.timezone);
        set(&mut self.week_start, &patch.week_start);
        set(&mut self.language, &patch.language);
        set(
            &mut self.query_history_home_tab,
            &patch.query_history_home_tab,
        );
        if let Some(id) = patch.home_dashboard_id {
            self.home_dashboard_id = id;
        }
        self
    }

    /// The JSON column: the fields Grafana keeps in `json_data`.
    pub(crate) fn json_data(&self) -> String {
        json!({
            "language": self.language,
            "queryHistory": {"homeTab": self.query_history_home_tab},
        })
        .to_string()
    }

    /// The fields of the JSON column; an unreadable one counts as empty.
    pub(crate) fn read_json_data(&mut self, text: &str) {
        let value: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        let field =
            |value: Option<&Value>| value.and_then(Value::as_str).unwrap_or_default().to_owned();
        self.language = field(value.get("language"));
        self.query_history_home_tab = field(
            value
                .get("queryHistory")
                .and_then(|history| history.get("homeTab")),
        );
    }
}

impl PreferencesPatch {
    /// The checks of [`Preferences::check`] on the fields being set.
    pub fn check(&self) -> Result<()> {
        if let Some(theme) = &self.theme {
            check_theme(theme)?;
        }
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        check_fields(
            &text(&self.timezone),
            &text(&self.week_start),
            &text(&self.language),
            &text(&self.query_history_home_tab),
        )
    }
}

/// Persistence of preferences; every write is one transaction.
#[async_trait::async_trait]
pub trait PreferenceStore: Send + Sync {
    /// The stored preferences of `owner` (all fields unset when it has none).
    async fn get(&self, owner: PreferenceOwner) -> Result<Preferences>;
    /// The org's, then each of `teams` in order, then the user's, in one read.
    async fn layers(&self, org: OrgId, user: UserId, teams: &[TeamId]) -> Result<Vec<Preferences>>;
    /// Replaces every field of `owner`'s preferences (Grafana's PUT).
    async fn put(&self, owner: PreferenceOwner, preferences: Preferences) -> Result<()>;
    /// Changes the fields `patch` sets and keeps the others, so concurrent patches of
    /// different fields both hold (Grafana's PATCH).
    async fn patch(&self, owner: PreferenceOwner, patch: PreferencesPatch) -> Result<()>;
}

fn check_theme(theme: &str) -> Result<()> {
    if THEMES.contains(&theme) {
        Ok(())
    } else {
        Err(Error::InvalidInput("Invalid theme".to_owned()))
    }
}

fn check_fields(timezone: &str, week_start: &str, language: &str, home_tab: &str) -> Result<()> {
    let input = |err| Error::Storage(tandem_storage::Error::Input(err));
    check_bounded_text("timezone", timezone, MAX_TIMEZONE_LEN).map_err(input)?;
    check_bounded_text("weekStart", week_start, MAX_WEEK_START_LEN).map_err(input)?;
    check_bounded_text("language", language, MAX_LANGUAGE_LEN).map_err(input)?;
    check_bounded_text("queryHistory.homeTab", home_tab, MAX_LANGUAGE_LEN).map_err(input)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_overrides_teams_which_override_the_org_field_by_field() {
        let org = Preferences {
            theme: "light".into(),
            timezone: "utc".into(),
            home_dashboard_id: 1,
            ..Preferences::default()
        };
        let team = Preferences {
            timezone: "Europe/Paris".into(),
            home_dashboard_id: 2,
            ..Preferences::default()
        };
        let user = Preferences {
            theme: "dark".into(),
            ..Preferences::default()
        };
        let merged = Preferences::merged([&org, &team, &user]);
        assert_eq!(merged.theme, "dark");
        assert_eq!(merged.timezone, "Europe/Paris");
        assert_eq!(merged.home_dashboard_id, 2);
    }

    #[test]
    fn unknown_themes_and_over_long_text_are_refused() {
        let bad_theme = PreferencesPatch {
            theme: Some("neon".into()),
            ..PreferencesPatch::default()
        };
        assert!(matches!(bad_theme.check(), Err(Error::InvalidInput(m)) if m == "Invalid theme"));
        let long = Preferences {
            timezone: "x".repeat(MAX_TIMEZONE_LEN + 1),
            ..Preferences::default()
        };
        assert!(long.check().is_err());
        let nul = PreferencesPatch {
            language: Some("en\0".into()),
            ..PreferencesPatch::default()
        };
        assert!(nul.check().is_err());
    }
}
