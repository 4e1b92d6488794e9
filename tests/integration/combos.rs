//! The combination table: every entry point × every gate situation (and a
//! hold, and a deny window) × with
//! and without `--prune`, on both registries, and a verification after the
//! move that passes (against the real scoring server) or fails (an
//! endpoint answering 500: exit 6, Production held at the failed version). One pass serves `apply`,
//! `apply --plan` and `watch --once`, and their targeted forms (`apply
//! --model`, `plan --model --out` then `apply --plan --model`), so each
//! cell checks the exit code, the registry's state and the number of
//! writes, and the writes of one situation must be the same whichever
//! entry point ran it.
//!
//! Each cell starts from a model modelsync made (version 1 in Production,
//! aliases `champion` and `old` on it), then the manifests register
//! version 2 and move Production and `champion` to it, and drop `old`.

use std::collections::BTreeMap;

use modelsync::registry::Registry;
use modelsync::registry::embedded::EmbeddedRegistry;
use modelsync::state::Stage;

use crate::support::backend::{Backend, Ctx, manifest};
use crate::support::cli::Run;
use crate::support::mlflow::server;
use crate::support::proxy::Proxy;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    Apply,
    ApplyPlan,
    WatchOnce,
    /// `apply --model NAME`.
    ApplyTargeted,
    /// `plan --model GLOB --out`, then `apply --plan --model GLOB`.
    ApplyPlanTargeted,
}

const ENTRIES: [Entry; 5] = [
    Entry::Apply,
    Entry::ApplyPlan,
    Entry::WatchOnce,
    Entry::ApplyTargeted,
    Entry::ApplyPlanTargeted,
];

impl Entry {
    /// Applies a saved plan.
    fn saved(self) -> bool {
        matches!(self, Entry::ApplyPlan | Entry::ApplyPlanTargeted)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Case {
    NoGate,
    PassingGate,
    BlockedGate,
    /// A person changed the model between the plan and the apply.
    MovedSincePlan,
    /// `champion` is held at version 1 (`modelsync rollback --to 1`): it
    /// stays there, the rest moves.
    Held,
    /// A deny window that is always open names Production (issue 19):
    /// blocked like a failing gate.
    DenyWindow,
    /// `verify:` on Production, an HTTP check of the scoring server's
    /// predictions: the move is verified (the tag says `verified`), exit 0.
    VerifyPass,
    /// `verify:` on Production against an endpoint answering 500: the
    /// verification fails (exit 6, the tag says `failed`) and
    /// `onFailure: hold` (the default) holds Production at version 2.
    VerifyFail,
}

const CASES: [Case; 8] = [
    Case::NoGate,
    Case::PassingGate,
    Case::BlockedGate,
    Case::MovedSincePlan,
    Case::Held,
    Case::DenyWindow,
    Case::VerifyPass,
    Case::VerifyFail,
];

impl Case {
    /// The verification's rounds are timed: how many writes it makes is
    /// not the same from run to run.
    fn verifies(self) -> bool {
        matches!(self, Case::VerifyPass | Case::VerifyFail)
    }
}

/// What a cell saw.
#[derive(Debug)]
struct Seen {
    code: i32,
    production: Vec<u64>,
    champion: Option<u64>,
    old: Option<u64>,
    writes: usize,
    /// The state of version 2's verification in Production, if recorded.
    verified: Option<String>,
    log: String,
}

struct Cell {
    c: Ctx,
    proxy: Option<Proxy>,
    run_id: String,
}

impl Cell {
    async fn new(backend: Backend, run_id: Option<&str>) -> Cell {
        let proxy = match backend {
            Backend::Mlflow => Some(Proxy::start(&server().url).await),
            Backend::Embedded => None,
        };
        let c = Ctx::new(backend, "combo");
        // One MLflow run serves every cell; each embedded registry file
        // holds its own copy of it.
        let run_id = match (run_id, &c.backend) {
            (Some(r), Backend::Mlflow) => r.to_string(),
            (r, _) => c.log(r, &[("accuracy", 0.95)]),
        };
        Cell { c, proxy, run_id }
    }

    fn run(&self, args: &[&str]) -> Run {
        let url = self
            .proxy
            .as_ref()
            .map_or_else(|| self.c.uri(), |p| p.url.clone());
        let mut all = vec!["--registry", url.as_str()];
        all.extend_from_slice(args);
        Run::from_command(&mut self.c.w.command(&all))
    }

    /// Writes so far: through the proxy (the lease's left out), or the
    /// embedded registry's applied actions counted from the output.
    fn writes_through_proxy(&self) -> usize {
        self.proxy
            .as_ref()
            .map_or(0, |p| p.writes_except_lease(&self.c.w.lease_name()))
    }

    fn versions(&self, two: bool) -> String {
        let (n, r) = (&self.c.name, &self.run_id);
        let mut v = format!("    one: {{source: \"s3://combo/{n}/1\", runId: \"{r}\"}}\n");
        if two {
            v.push_str(&format!(
                "    two: {{source: \"s3://combo/{n}/2\", runId: \"{r}\"}}\n"
            ));
        }
        v
    }

    fn start(&self) {
        let body = format!(
            "  versions:\n{}  stages:\n    Production: one\n  aliases:\n    champion: one\n    old: one\n",
            self.versions(false)
        );
        self.c
            .w
            .write("m/model.yaml", &manifest(&self.c.name, &body));
        let r = self.run(&["apply", "m"]);
        assert_eq!(r.code, 0, "set-up apply: {r:?}");
    }

    fn change(&self, case: Case) {
        let gate = match case {
            Case::PassingGate => {
                "  gates:\n    Production:\n      - metric: accuracy\n        atLeast: 0.9\n".into()
            }
            Case::BlockedGate => {
                "  gates:\n    Production:\n      - metric: accuracy\n        atLeast: 0.99\n"
                    .into()
            }
            Case::VerifyPass => verify(&crate::verify::predictions_check(), "timeout: 5m"),
            Case::VerifyFail => verify(
                &format!(
                    r#"http: {{url: "{}/invocations", method: POST, body: '{{"inputs": [[0.0]]}}'}}"#,
                    crate::support::scoring::failing()
                ),
                "timeout: 3s",
            ),
            Case::NoGate | Case::MovedSincePlan | Case::Held | Case::DenyWindow => String::new(),
        };
        if case == Case::DenyWindow {
            // Every minute for two minutes: open whenever it is asked.
            let window = "[[windows]]\nname = \"always\"\nkind = \"deny\"\n\
                          schedule = \"* * * * *\"\nduration = \"2m\"\ntargets = [\"Production\"]\n";
            self.c.w.write("m/modelsync.toml", window);
        }
        let body = format!(
            "  versions:\n{}  stages:\n    Production: two\n  aliases:\n    champion: two\n{gate}",
            self.versions(true)
        );
        self.c
            .w
            .write("m/model.yaml", &manifest(&self.c.name, &body));
    }

    /// A person tags the model by hand.
    async fn hand_change(&self) {
        match self.c.backend {
            Backend::Mlflow => server()
                .registry()
                .set_model_tag(&self.c.name, "owner", "someone")
                .await
                .expect("tag by hand"),
            Backend::Embedded => {
                let reg = EmbeddedRegistry::open(&self.c.w.registry_file(), true).expect("open");
                reg.set_model_tag(&self.c.name, "owner", "someone")
                    .await
                    .expect("tag by hand");
                reg.flush().await.expect("flush");
            }
        }
    }

    async fn cell(&self, entry: Entry, case: Case, prune: bool) -> Seen {
        self.start();
        if case == Case::Held {
            let args = ["rollback", &self.c.name, "--alias", "champion", "--to", "1"];
            let r = self.run(&[&args[..], &["--reason", "held", "--yes"]].concat());
            assert_eq!(r.code, 0, "hold: {r:?}");
        }
        let before = self.writes_through_proxy();
        self.change(case);
        let mut flags = vec![];
        if prune {
            flags.push("--prune");
        }
        // The model by name, and by a glob of its name.
        let name = self.c.name.as_str();
        let glob = format!("{}*", &name[..name.len() - 1]);
        let r = match entry {
            Entry::Apply | Entry::WatchOnce | Entry::ApplyTargeted => {
                if case == Case::MovedSincePlan {
                    self.hand_change().await;
                }
                let cmd: &[&str] = match entry {
                    Entry::Apply => &["apply", "m"],
                    Entry::ApplyTargeted => &["apply", "m", "--model", name],
                    _ => &["watch", "--once", "m"],
                };
                self.run(&[cmd, &flags].concat())
            }
            Entry::ApplyPlan | Entry::ApplyPlanTargeted => {
                let (plan, apply): (&[&str], &[&str]) = if entry == Entry::ApplyPlan {
                    (
                        &["plan", "m", "--out", "plan.json"],
                        &["apply", "--plan", "plan.json"],
                    )
                } else {
                    (
                        &["plan", "m", "--out", "plan.json", "--model", &glob],
                        &["apply", "--plan", "plan.json", "--model", &glob],
                    )
                };
                let p = self.run(&[plan, &flags].concat());
                assert_eq!(p.code, 0, "plan --out: {p:?}");
                if case == Case::MovedSincePlan {
                    self.hand_change().await;
                }
                self.run(apply)
            }
        };
        let model = self.c.model().await;
        let production = model
            .versions
            .values()
            .filter(|v| v.stage == Stage::Production)
            .map(|v| v.version)
            .collect();
        let writes = match self.c.backend {
            Backend::Mlflow => self.writes_through_proxy() - before,
            Backend::Embedded => applied(&r.stdout),
        };
        Seen {
            code: r.code,
            production,
            champion: model.aliases.get("champion").copied(),
            old: model.aliases.get("old").copied(),
            writes,
            verified: (model.versions.get(&2))
                .and_then(|v| modelsync::state::verification::of(v, "Production"))
                .map(|r| r.state.as_str().to_string()),
            log: format!("{r:?}"),
        }
    }
}

/// `verify:` on Production: one `check`, every second, `timeout`.
fn verify(check: &str, timeout: &str) -> String {
    format!(
        "  verify:\n    Production:\n      checks:\n        - {check}\n      every: 1s\n      {timeout}\n"
    )
}

/// `N` of `Apply complete: N applied, …`.
fn applied(stdout: &str) -> usize {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("Apply complete: "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Checks one cell against the table.
fn check(entry: Entry, case: Case, prune: bool, s: &Seen) {
    let at = format!("{entry:?} × {case:?} × prune={prune}\n{}", s.log);
    let stale = entry.saved() && case == Case::MovedSincePlan;
    let blocked = matches!(case, Case::BlockedGate | Case::DenyWindow);
    let code = match case {
        _ if stale => 4,
        _ if blocked => 5,
        Case::VerifyFail => 6,
        _ => 0,
    };
    assert_eq!(s.code, code, "exit code: {at}");
    let moved = !stale && !blocked;
    assert_eq!(
        s.production,
        vec![if moved { 2 } else { 1 }],
        "Production: {at}"
    );
    assert_eq!(
        s.champion,
        Some(if stale || case == Case::Held { 1 } else { 2 }),
        "champion: {at}"
    );
    let pruned = prune && !stale;
    assert_eq!(
        s.old,
        if pruned { None } else { Some(1) },
        "alias old: {at}"
    );
    let verified = match case {
        Case::VerifyPass => Some("verified"),
        Case::VerifyFail => Some("failed"),
        _ => None,
    };
    assert_eq!(s.verified.as_deref(), verified, "the verification: {at}");
    if stale {
        assert_eq!(s.writes, 0, "a stale plan writes nothing: {at}");
    } else {
        assert!(s.writes > 0, "writes: {at}");
    }
}

/// Runs every cell for `backend`, checks each, then that each situation
/// made the same number of writes from every entry point.
async fn table(backend: fn() -> Backend) {
    let first = Cell::new(backend(), None).await;
    let run_id = first.run_id.clone();
    let mut writes: BTreeMap<(Case, bool), Vec<(Entry, usize)>> = BTreeMap::new();
    for entry in ENTRIES {
        for case in CASES {
            for prune in [false, true] {
                let cell = Cell::new(backend(), Some(&run_id)).await;
                let seen = cell.cell(entry, case, prune).await;
                check(entry, case, prune, &seen);
                writes
                    .entry((case, prune))
                    .or_default()
                    .push((entry, seen.writes));
            }
        }
    }
    for ((case, prune), per_entry) in &writes {
        if case.verifies() {
            continue;
        }
        let counts: Vec<usize> = per_entry
            .iter()
            .filter(|(e, _)| !(e.saved() && *case == Case::MovedSincePlan))
            .map(|(_, n)| *n)
            .collect();
        assert!(
            counts.windows(2).all(|w| w[0] == w[1]),
            "{case:?} × prune={prune}: the entry points wrote differently: {per_entry:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_entry_point_gate_and_prune_combination_on_the_embedded_registry() {
    table(|| Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_entry_point_gate_and_prune_combination_on_mlflow() {
    table(|| Backend::Mlflow).await;
}
