//! The manifests as the daemon's last full pass loaded them, kept for the
//! passes of the same identity (revision, or digest of a folder's files)
//! and load options: a webhook's targeted pass, or a resync of an
//! unchanged revision, does not parse and validate every manifest again.
//! Loading is a function of the files, the options and the process's
//! environment (the secrets refused by the leak check), so the same
//! identity and options load the same state.

use std::sync::Arc;

use crate::manifest::DesiredState;
use crate::manifest::SourceFile;
use crate::manifest::validate::LoadOptions;
use crate::reconcile::{Input, Outcome};

/// The identity and options the last full pass loaded for, and what it
/// loaded (`None` while a full pass holds it).
pub(super) struct Loaded {
    id: String,
    options: LoadOptions,
    desired: Option<Arc<DesiredState>>,
}

/// The pass's input: the kept state when it was loaded for the same
/// identity and options, else the files to load. A full pass takes the
/// kept state (and hands it back through [`kept`]); a targeted one
/// borrows it.
pub(super) fn input(
    slot: &mut Option<Loaded>,
    id: &str,
    options: LoadOptions,
    files: Vec<SourceFile>,
    targeted: bool,
) -> Input {
    let hit = slot
        .as_mut()
        .filter(|l| l.id == id && l.options == options && l.desired.is_some());
    match (hit, targeted) {
        (Some(l), true) => {
            let desired = Arc::clone(l.desired.as_ref().expect("checked"));
            return Input::Loaded { files, desired };
        }
        (Some(l), false) => {
            let desired = l.desired.take().expect("checked");
            return Input::Loaded { files, desired };
        }
        (None, true) => {}
        (None, false) => {
            *slot = Some(Loaded {
                id: id.to_string(),
                options: options.clone(),
                desired: None,
            });
        }
    }
    Input::Manifests {
        files,
        options: Box::new(options),
    }
}

/// After a full pass of `id`: keeps what it loaded (taken from `out`,
/// whose other readers are done with it).
pub(super) fn kept(slot: &mut Option<Loaded>, id: &str, out: &mut Outcome) {
    let Some(l) = slot.as_mut().filter(|l| l.id == id) else {
        return;
    };
    let whole = out.desired.take_if(|d| d.targets.is_none());
    l.desired = whole.map(Arc::new);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(protect: &[&str]) -> LoadOptions {
        LoadOptions {
            protect: protect.iter().map(|p| p.to_string()).collect(),
            ..LoadOptions::default()
        }
    }

    fn loaded(input: &Input) -> Option<&Arc<DesiredState>> {
        match input {
            Input::Loaded { desired, .. } => Some(desired),
            _ => None,
        }
    }

    /// A full pass of `id` that loaded a state with this digest.
    fn full_pass(slot: &mut Option<Loaded>, id: &str, opts: LoadOptions, digest: &str) -> bool {
        let input = input(slot, id, opts, Vec::new(), false);
        let hit = loaded(&input).is_some();
        let mut out = Outcome {
            desired: Some(match input {
                Input::Loaded { desired, .. } => Arc::unwrap_or_clone(desired),
                _ => DesiredState {
                    digest: digest.to_string(),
                    ..DesiredState::default()
                },
            }),
            ..Outcome::default()
        };
        kept(slot, id, &mut out);
        hit
    }

    #[test]
    fn a_pass_reuses_the_last_full_load_only_for_the_same_identity_and_options() {
        let mut slot = None;
        // Nothing kept yet: loaded from the files.
        assert!(!full_pass(&mut slot, "r1", options(&[]), "d1"));
        // Same identity and options: a targeted pass borrows it, and so
        // does the next one; a full pass takes it and hands it back.
        for _ in 0..2 {
            let i = input(&mut slot, "r1", options(&[]), Vec::new(), true);
            assert_eq!(loaded(&i).map(|d| d.digest.as_str()), Some("d1"));
        }
        assert!(full_pass(&mut slot, "r1", options(&[]), "-"));
        let i = input(&mut slot, "r1", options(&[]), Vec::new(), true);
        assert_eq!(loaded(&i).map(|d| d.digest.as_str()), Some("d1"));
        drop(i);
        // Other options (a modelsync.toml edit) or another identity: loaded
        // again, and that load is what is kept next.
        let i = input(&mut slot, "r1", options(&["Production"]), Vec::new(), true);
        assert!(loaded(&i).is_none());
        let i = input(&mut slot, "r2", options(&[]), Vec::new(), true);
        assert!(loaded(&i).is_none());
        assert!(!full_pass(&mut slot, "r2", options(&[]), "d2"));
        let i = input(&mut slot, "r2", options(&[]), Vec::new(), true);
        assert_eq!(loaded(&i).map(|d| d.digest.as_str()), Some("d2"));
        // A full pass whose load failed keeps nothing.
        let _ = input(&mut slot, "r3", options(&[]), Vec::new(), false);
        kept(&mut slot, "r3", &mut Outcome::default());
        let i = input(&mut slot, "r3", options(&[]), Vec::new(), true);
        assert!(loaded(&i).is_none());
    }
}
