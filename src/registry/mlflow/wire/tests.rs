//! Unit tests for the JSON mapping.
