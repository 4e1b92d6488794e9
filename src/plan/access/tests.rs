//! The permissions planner over plain data: policies parsed from YAML, the
//! registry's grants written out by hand.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::manifest::{SourceFile, load};
use crate::state::LiveModel;
use crate::state::access::ModelAccess;
use crate::state::capabilities::{MlflowVersion, PermissionApi};

const ME: &str = "msync";

fn policy(models: &str) -> DesiredState {
    let text = format!(
        "apiVersion: modelsync/v1\nkind: AccessPolicy\nmetadata: {{name: prod}}\nspec:\n  models:\n{models}"
    );
    load(&[SourceFile {
        path: "p.yaml".into(),
        contents: text.into_bytes(),
    }])
    .unwrap_or_else(|d| panic!("{d:?}"))
}

fn user(n: &str) -> Principal {
    Principal::User(n.into())
}

fn role(n: &str) -> Principal {
    Principal::Role(n.into())
}

/// RBAC server, default READ; users msync (non-admin), alice, bob, carol;
/// role ml; model `fraud` with msync MANAGE.
fn access() -> LiveAccess {
    let users = [
        (ME, false),
        ("alice", false),
        ("bob", false),
        ("carol", false),
    ];
    LiveAccess {
        api: PermissionApi::Grants,
        me: ME.into(),
        me_admin: false,
        me_workspace_admin: false,
        my_roles: BTreeSet::new(),
        default_permission: Some(Level::Read),
        users: users.iter().map(|(u, a)| (u.to_string(), *a)).collect(),
        roles: BTreeSet::from(["ml".to_string()]),
        models: BTreeMap::from([(
            "fraud".to_string(),
            ModelAccess {
                grants: Grants::from([(user(ME), Level::Manage)]),
                record: None,
            },
        )]),
        wildcard: Grants::new(),
    }
}

fn live(access: LiveAccess) -> LiveState {
    LiveState {
        access: Some(access),
        ..LiveState::default()
    }
}

fn grants_of<'a>(access: &'a mut LiveAccess, model: &str) -> &'a mut Grants {
    &mut access.models.entry(model.into()).or_default().grants
}

fn one(plans: Vec<AccessPlan>) -> AccessPlan {
    assert_eq!(plans.len(), 1, "{plans:#?}");
    plans.into_iter().next().expect("one")
}

fn lines(p: &AccessPlan) -> Vec<String> {
    p.actions
        .iter()
        .map(crate::plan::describe::access_action)
        .collect()
}

#[test]
fn a_new_policy_grants_and_records_then_is_a_no_op() {
    let d = policy("    - name: fraud\n      grants:\n        - {user: alice, permission: READ}\n");
    let p = one(plan_access(&d, &live(access())));
    assert_eq!(
        lines(&p),
        [
            "grant user alice READ (policy prod)",
            "ownership record: none -> user alice READ"
        ]
    );
    let mut a = access();
    grants_of(&mut a, "fraud").insert(user("alice"), Level::Read);
    a.models.get_mut("fraud").expect("fraud").record = Some(
        Record {
            grants: Grants::from([(user("alice"), Level::Read)]),
            policies: BTreeSet::from(["prod".to_string()]),
            ..Record::default()
        }
        .render(),
    );
    assert!(plan_access(&d, &live(a)).is_empty(), "converged");
}

#[test]
fn a_declared_grant_replaces_the_live_one_whoever_made_it() {
    let d = policy("    - name: fraud\n      grants:\n        - {user: alice, permission: READ}\n");
    let mut a = access();
    grants_of(&mut a, "fraud").insert(user("alice"), Level::Edit);
    let p = one(plan_access(&d, &live(a)));
    assert_eq!(lines(&p)[0], "user alice: EDIT -> READ (policy prod)");
}

#[test]
fn only_grants_modelsync_made_are_taken_back() {
    let d = policy("    - name: fraud\n      grants: []\n");
    let mut a = access();
    let g = grants_of(&mut a, "fraud");
    g.insert(user("alice"), Level::Read);
    g.insert(user("carol"), Level::Read);
    let record = Record {
        grants: Grants::from([(user("alice"), Level::Read), (user(ME), Level::Manage)]),
        ..Record::default()
    };
    a.models.get_mut("fraud").expect("fraud").record = Some(record.render());
    let p = one(plan_access(&d, &live(a)));
    assert_eq!(
        lines(&p),
        [
            "revoke user alice READ (granted by modelsync, no longer declared)",
            "ownership record: user alice READ, user msync MANAGE -> none"
        ],
        "carol's grant was made by hand; modelsync's own is never taken back"
    );
}

#[test]
fn a_dropped_policy_still_takes_back_what_modelsync_made() {
    let recorded = |policy: &str| {
        let mut a = access();
        grants_of(&mut a, "fraud").insert(user("alice"), Level::Read);
        let record = Record {
            grants: Grants::from([(user("alice"), Level::Read)]),
            policies: BTreeSet::from([policy.to_string()]),
            ..Record::default()
        };
        a.models.get_mut("fraud").expect("fraud").record = Some(record.render());
        live(a)
    };
    let revoke = "revoke user alice READ (granted by modelsync, no longer declared)";
    // The model is declared: no policy names it any more.
    let mut declared = DesiredState::default();
    declared
        .models
        .insert("fraud".into(), crate::plan::tests::M::new("fraud").0);
    let p = one(plan_access(&declared, &recorded("gone")));
    assert_eq!(lines(&p)[0], revoke);
    // A policy of these manifests dropped the model.
    let other = policy(
        "    - name: churn
",
    );
    let plans = plan_access(&other, &recorded("prod"));
    assert_eq!(
        lines(plans.iter().find(|p| p.model == "fraud").expect("fraud"))[0],
        revoke
    );
    // Another repository's policy made it: left alone.
    let plans = plan_access(&other, &recorded("theirs"));
    assert!(plans.iter().all(|p| p.model != "fraud"), "{plans:?}");
}

#[test]
fn a_policy_that_downgrades_modelsync_itself_is_refused() {
    let d = policy("    - name: fraud\n      grants:\n        - {user: msync, permission: READ}\n");
    let p = one(plan_access(&d, &live(access())));
    assert!(p.actions.is_empty());
    assert!(
        p.errors[0].contains("would lock modelsync's principal msync out")
            && p.errors[0].contains("gives user msync READ")
            && p.errors[0].contains("needs MANAGE"),
        "{:?}",
        p.errors
    );
    let mut admin = access();
    admin.me_admin = true;
    let p = one(plan_access(&d, &live(admin)));
    assert!(
        !p.errors.is_empty(),
        "refused for an admin too: it would be locked out once it is not one"
    );
}

#[test]
fn a_deny_on_a_role_modelsync_holds_locks_it_out() {
    let d = policy("    - name: fraud\n      grants:\n        - {role: ml, permission: DENY}\n");
    let mut a = access();
    a.my_roles.insert("ml".into());
    a.me_workspace_admin = true;
    let p = one(plan_access(&d, &live(a)));
    assert!(p.actions.is_empty());
    assert!(p.errors[0].contains("gives role ml DENY"), "{:?}", p.errors);
}

#[test]
fn without_manage_modelsync_says_which_permission_it_lacks() {
    let d = policy("    - name: fraud\n      grants:\n        - {user: alice, permission: READ}\n");
    let mut a = access();
    grants_of(&mut a, "fraud").insert(user(ME), Level::Edit);
    a.api = PermissionApi::PerResource;
    let p = one(plan_access(&d, &live(a)));
    assert!(p.actions.is_empty());
    let e = &p.errors[0];
    assert!(
        e.contains("holds EDIT") && e.contains("needs MANAGE"),
        "{e}"
    );
    assert!(e.contains("registered-models/permissions/create"), "{e}");
}

#[test]
fn removing_the_last_manage_holder_is_refused() {
    let d = policy("    - name: fraud\n      grants:\n        - {user: alice, permission: READ}\n");
    let mut a = access();
    a.me_admin = true;
    let g = grants_of(&mut a, "fraud");
    g.clear();
    g.insert(user("alice"), Level::Manage);
    let p = one(plan_access(&d, &live(a)));
    assert!(p.actions.is_empty());
    assert!(
        p.errors[0].contains("last MANAGE holder (user alice)"),
        "{:?}",
        p.errors
    );
}

#[test]
fn grants_to_roles_need_an_admin() {
    let d = policy("    - name: fraud\n      grants:\n        - {role: ml, permission: READ}\n");
    let p = one(plan_access(&d, &live(access())));
    assert!(p.errors[0].contains("admin"), "{:?}", p.errors);
    let mut a = access();
    a.me_workspace_admin = true;
    let p = one(plan_access(&d, &live(a)));
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(lines(&p)[0], "grant role ml READ (policy prod)");
}

#[test]
fn users_and_roles_the_server_lacks_are_errors() {
    let d = policy(
        "    - name: fraud\n      grants:\n        - {user: zed, permission: READ}\n        - {role: ops, permission: READ}\n",
    );
    let mut a = access();
    a.me_admin = true;
    let p = one(plan_access(&d, &live(a)));
    let all = p.errors.join("\n");
    assert!(all.contains("user zed does not exist"), "{all}");
    assert!(all.contains("role ops does not exist"), "{all}");
}

#[test]
fn a_protected_model_warns_about_everyone_else_who_can_move_it() {
    let d = policy(
        "    - name: fraud\n      protect: true\n      grants:\n        - {user: alice, permission: READ}\n",
    );
    let mut a = access();
    grants_of(&mut a, "fraud").insert(user("bob"), Level::Edit);
    a.wildcard.insert(role("ml"), Level::Manage);
    a.default_permission = Some(Level::Edit);
    let p = one(plan_access(&d, &live(a)));
    let all = p.warnings.join("\n");
    assert!(
        all.contains("user bob can move its stages and aliases: it holds EDIT"),
        "{all}"
    );
    assert!(
        all.contains("role ml can move") && all.contains("on every model"),
        "{all}"
    );
    assert!(all.contains("default permission is EDIT"), "{all}");
    assert!(
        !all.contains("user msync"),
        "modelsync itself is not a hole: {all}"
    );
    let unprotected =
        policy("    - name: fraud\n      grants:\n        - {user: alice, permission: READ}\n");
    let mut b = access();
    grants_of(&mut b, "fraud").insert(user("bob"), Level::Edit);
    assert!(one(plan_access(&unprotected, &live(b))).warnings.is_empty());
}

#[test]
fn a_protected_model_takes_no_grant_above_read_from_any_policy() {
    let d = policy(
        "    - name: fraud\n      protect: true\n    - name: \"fr*\"\n      grants:\n        - {user: bob, permission: EDIT}\n",
    );
    let p = one(plan_access(&d, &live(access())));
    assert!(p.actions.is_empty());
    assert!(
        p.errors[0].contains("gives user bob EDIT"),
        "{:?}",
        p.errors
    );
}

#[test]
fn two_policies_that_disagree_on_a_grant_are_refused() {
    let d = policy(
        "    - name: fraud\n      grants:\n        - {user: alice, permission: READ}\n    - name: \"f*\"\n      grants:\n        - {user: alice, permission: EDIT}\n",
    );
    let p = one(plan_access(&d, &live(access())));
    assert!(
        p.errors[0].contains("user alice is given READ"),
        "{:?}",
        p.errors
    );
}

#[test]
fn globs_cover_every_matching_model_and_a_missing_name_is_a_warning() {
    let d = policy(
        "    - name: \"fraud-*\"\n      grants:\n        - {user: alice, permission: READ}\n    - name: churn\n",
    );
    let mut a = access();
    for m in ["fraud-a", "fraud-b", "other"] {
        grants_of(&mut a, m).insert(user(ME), Level::Manage);
    }
    let plans = plan_access(&d, &live(a));
    let names: Vec<&str> = plans.iter().map(|p| p.model.as_str()).collect();
    assert_eq!(names, ["churn", "fraud-a", "fraud-b"]);
    assert!(plans[0].actions.is_empty());
    assert!(
        plans[0].warnings[0].contains("does not have"),
        "{:?}",
        plans[0]
    );
}

#[test]
fn a_model_the_plan_creates_is_granted_on_as_its_creator() {
    let mut d =
        policy("    - name: fresh\n      grants:\n        - {user: alice, permission: READ}\n");
    let m = crate::plan::tests::M::new("fresh");
    d.models.insert("fresh".into(), m.0);
    let p = one(plan_access(&d, &live(access())));
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    assert_eq!(lines(&p)[0], "grant user alice READ (policy prod)");
    let l = LiveState {
        models: BTreeMap::from([("fresh".into(), LiveModel::default())]),
        ..live(access())
    };
    assert!(
        plan_access(&d, &l).is_empty() || one(plan_access(&d, &l)).model == "fresh",
        "a declared model that exists is read from the registry's grants"
    );
}

#[test]
fn the_embedded_registry_and_deny_before_rbac_are_diagnostics() {
    let d = policy("    - name: fraud\n      grants:\n        - {user: alice, permission: DENY}\n");
    let embedded = missing(&d, &crate::state::capabilities::Capabilities::embedded());
    assert!(
        embedded[0]
            .message
            .contains("the embedded registry has no permissions")
    );
    assert_eq!(embedded[0].origin.to_string(), "p.yaml:3:18");
    let old = missing(&d, &MlflowVersion(3, 12, 0).capabilities());
    assert!(
        old[0]
            .message
            .contains("DENY, which MLflow 3.12.0 does not have"),
        "{old:?}"
    );
    assert_eq!(old[0].origin.line, 8);
    assert!(missing(&d, &MlflowVersion(3, 17, 2).capabilities()).is_empty());
}

#[test]
fn the_plan_shows_permission_changes_in_every_rendering() {
    let d = policy(
        "    - name: fraud\n      protect: true\n      grants:\n        - {user: alice, permission: READ}\n",
    );
    let mut a = access();
    grants_of(&mut a, "fraud").insert(user("alice"), Level::Edit);
    grants_of(&mut a, "fraud").insert(user("bob"), Level::Manage);
    let plan = crate::plan::Plan {
        access: plan_access(&d, &live(a)),
        ..crate::plan::Plan::empty()
    };
    insta::assert_snapshot!(crate::plan::render::text(&plan, false), @r"
    access fraud
      ~ user alice: EDIT -> READ (policy prod)
      ~ ownership record: none -> user alice READ
      warning: protected, but user bob can move its stages and aliases: it holds MANAGE, granted outside this policy

    Plan: 0 to register, 0 to move, 0 to archive, 0 to delete, 1 other change, 1 permission change.
    ");
    let md = crate::plan::render::markdown(&plan);
    assert!(md.contains("| access `fraud` | 2 | 0 |"), "{md}");
    assert!(md.contains("### access `fraud`"), "{md}");
    assert!(
        md.contains("- user alice: EDIT -&gt; READ (policy prod)"),
        "{md}"
    );
    assert!(
        md.contains(":warning: **warning:** protected, but user bob"),
        "{md}"
    );
    let json = crate::plan::render::json(&plan);
    assert!(json.contains(r#""action": "grant_permission""#), "{json}");
    assert!(json.contains(r#""principal": "user:alice""#), "{json}");
    assert!(json.contains(r#""before": "EDIT""#), "{json}");
    assert_eq!(plan.warnings().len(), 1);
    assert!(plan.warnings()[0].starts_with("access fraud: protected, but user bob"));
}
