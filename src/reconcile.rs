//! Reconcile. STUB
