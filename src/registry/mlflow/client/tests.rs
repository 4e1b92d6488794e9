//! Unit tests for error classification.
