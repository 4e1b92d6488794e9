//! Where the bytes behind every declared model's aliases are, read at the
//! end of a pass for the daemon's feeds (`GET /feeds/MODEL/ALIAS.json`),
//! so that serving a feed never asks the registry. A version's storage
//! location does not change, so what an earlier pass found is reused
//! (`Pass::locate`) and only new alias holders are located.

use crate::registry::{AnyRegistry, Registry};
use crate::state::LiveState;
use crate::state::artifacts::Locations;

use super::Outcome;

/// The locations of the versions behind the aliases of the models `out`
/// declares, as last read (`known` first, the registry for the rest). An
/// unreachable registry stops locating: what is missing stays missing.
pub async fn alias_holders(reg: &AnyRegistry, out: &Outcome, known: &Locations) -> Locations {
    let mut found = Locations::new();
    let (Some(desired), Some(live)) = (&out.desired, final_reading(out)) else {
        return found;
    };
    for name in desired.models.keys() {
        let Some(model) = live.models.get(name) else {
            continue;
        };
        for n in model.aliases.values() {
            let Some(v) = model.versions.get(n) else {
                continue;
            };
            let location = match known.get(name).and_then(|m| m.get(n)) {
                Some(Ok(l)) => Ok(l.clone()),
                _ => match reg.locate_version(name, v).await {
                    Ok(l) => Ok(l),
                    Err(e) if e.is_unreachable() => return found,
                    Err(e) => Err(e.to_string()),
                },
            };
            found.entry(name.clone()).or_default().insert(*n, location);
        }
    }
    found
}

/// The registry as the pass last read it (read back after applying).
fn final_reading(out: &Outcome) -> Option<&LiveState> {
    out.verified.as_ref().or(out.observed.as_ref())
}
