//! Semantic checks and resolution of parsed documents into a DesiredState.
//! STUB: to be implemented.

use super::{DesiredState, Diagnostic, SourceFile};

/// Parses and validates every file; returns the desired state, or every
/// diagnostic found (sorted by file, line, column).
pub fn load(files: &[SourceFile]) -> Result<DesiredState, Vec<Diagnostic>> {
    let _ = files;
    todo!()
}
