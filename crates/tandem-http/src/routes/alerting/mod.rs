//! Grafana-managed alerting: the provisioning API, the Ruler API and the Prometheus-style
//! read API, all answered from the shared database, the same on every instance.

pub(crate) mod notifications;
pub(crate) mod prometheus;
pub(crate) mod provisioning;
pub(crate) mod ruler;
