//! Integration tests of `tandem-http`: the API of in-process instances sharing one
//! database, on every configured backend.

mod admin_stats;
mod alerting;
mod alertmanager;
mod annotations;
mod api;
mod cluster;
mod common;
mod content_races;
mod csrf;
mod dashboards;
mod datasources;
mod folders;
mod health;
mod hostile;
mod input_policy;
mod library_elements;
mod live;
mod notifications;
mod orgs_teams;
mod permissions;
mod preferences;
mod role_table;
mod sessions;
mod snapshots;
mod state_history;
mod team_admins;
mod users;
mod web;
