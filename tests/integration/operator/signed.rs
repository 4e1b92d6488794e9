//! Signed commits.
