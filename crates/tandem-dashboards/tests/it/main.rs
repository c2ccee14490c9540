mod conformance;
mod library;
mod provisioning;
