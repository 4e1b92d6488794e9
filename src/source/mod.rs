//! Sources. STUB
