//! Test harness shared by the integration tests.
#![allow(dead_code)]

pub mod auth;
pub mod backend;
pub mod cli;
pub mod daemon;
pub mod embedded;
pub mod etcd;
pub mod git;
pub mod kserve;
pub mod mlflow;
pub mod pair;
pub mod proxy;
pub mod receiver;
pub mod scoring;
pub mod servers;
pub mod webhooks;
