//! The one integration test binary. Each module is one area; `support/`
//! holds the harness (temporary registries, the real MLflow server, a
//! fault-injecting proxy).

mod support;

mod access;
mod approvals;
mod cli;
mod cli_edges;
mod cli_mlflow;
mod combos;
mod conformance;
mod converge;
mod copy;
mod corpus;
mod docs;
mod events;
mod examples;
mod faults;
mod flows;
mod gates;
mod holds;
mod install;
mod leader;
mod logged_metrics;
mod manifest_paths;
mod manifests;
mod mlflow;
mod mlflow_webhooks;
mod operator;
mod pass;
mod plan_says;
mod prompts;
mod prune;
mod registry_facts;
mod request_floor;
mod saved_plan;
mod schema;
mod secrets;
mod servers;
mod serving;
mod targeted;
mod tidy;
mod watch;
