//! The one integration test binary. Each module is one area; `support/`
//! holds the harness (temporary registries, the real MLflow server).

mod support;

mod cli;
mod conformance;
mod corpus;
mod watch;
