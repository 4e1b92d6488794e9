//! Gate evaluation.
//! STUB: to be implemented.
