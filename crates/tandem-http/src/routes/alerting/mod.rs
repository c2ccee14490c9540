//! Grafana-managed alerting: the provisioning API, the Ruler API, the Prometheus-style
//! read API and Alertmanager's v2 API, all answered from the shared database, the same on
//! every instance.

pub(crate) mod alertmanager;
pub(crate) mod notifications;
pub(crate) mod prometheus;
pub(crate) mod provisioning;
pub(crate) mod ruler;
