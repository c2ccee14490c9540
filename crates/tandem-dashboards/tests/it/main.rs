mod conformance;
mod provisioning;
