//! Executor. STUB
