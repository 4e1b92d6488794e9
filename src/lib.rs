//! modelsync: a declarative promotion controller for ML model registries.
//!
//! # Layout
//!
//! - [`manifest`]: YAML manifests -> validated [`manifest::DesiredState`] (pure).
//! - [`state`]: the live registry state as plain data, and the tag keys
//!   modelsync writes ([`state::tags`]).
//! - [`condition`]: the CEL conditions of `verify:` HTTP checks
//!   (compiled when validated, evaluated over an answer; pure).
//! - [`naming`]: MLflow's naming rules and limits, shared by `manifest`
//!   validation and the embedded registry (pure, imports nothing).
//! - [`plan`]: `plan(desired, live) -> Plan`, and its renderings (pure).
//! - [`registry`]: the [`registry::Registry`] trait, MLflow and embedded
//!   implementations (the only code that talks to a registry).
//! - [`apply`]: executes a plan through a registry (the only caller of the
//!   registry's write methods; the lease is taken by `reconcile`).
//! - [`probe`]: the HTTP requests of `verify:` checks (no credentials,
//!   no redirects, bounded answers).
//! - [`source`]: reads manifest files from folders and git branches.
//! - [`reconcile`]: the one pass: load -> validate -> observe -> plan ->
//!   lease -> apply -> verify, run by `plan`, `apply` and `watch` alike.
//! - [`secret`]: the one `Secret` type, and the process-wide set of secret
//!   values every published text is checked against.
//! - [`clock`]: the wall clock (leases, backoff) and the evaluation clock
//!   (`MODELSYNC_NOW`: gates, audit stamps).
//! - [`backoff`]: exponential backoff with jitter, for the daemon's and the
//!   MLflow client's retries (pure).
//! - [`uri`]: the pieces of a URL modelsync reads itself (userinfo,
//!   percent-escapes) and the forms URLs are shown in.
//! - [`term`]: a term's deadline arithmetic and guard (the applier lease,
//!   an elected leader's fence), pure.
//! - [`shutdown`]: SIGTERM/SIGINT handling shared by `apply` and `watch`.
//! - [`election`]: leader election among daemon replicas (etcd or
//!   PostgreSQL) and the fence an elected leader's writes are checked by.
//! - [`watch`]: the daemon loop, its sources' triggers and HTTP endpoints.
//! - [`logging`]: the subscriber, and the outcome reports on stderr.
//! - [`cli`]: command-line definitions, commands, and exit codes.
//! - [`outputs`]: `modelsync.toml`'s `[outputs]` and the marker comments
//!   that say which value of a promoted version a serving file holds (pure).
//!
//! Each module imports only from the layers below it
//! (`tests/integration/tidy.rs` holds the table; ARCHITECTURE.md explains
//! it).

pub mod apply;
pub mod backoff;
pub mod cli;
pub mod clock;
pub mod condition;
pub mod election;
pub mod logging;
pub mod manifest;
pub mod naming;
pub mod outputs;
pub mod plan;
pub mod probe;
pub mod reconcile;
pub mod registry;
pub mod secret;
pub mod shutdown;
pub mod source;
pub mod state;
pub mod term;
pub mod uri;
pub mod watch;
