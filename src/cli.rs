//! CLI. STUB
