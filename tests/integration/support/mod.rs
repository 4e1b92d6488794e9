//! Test harness shared by the integration tests.
#![allow(dead_code)]

pub mod mlflow;
pub mod proxy;
