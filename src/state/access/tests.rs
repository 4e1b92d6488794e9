use super::*;

fn access(api: PermissionApi, default: Option<Level>) -> LiveAccess {
    LiveAccess {
        api,
        me: "msync".into(),
        me_admin: false,
        me_workspace_admin: false,
        my_roles: BTreeSet::from(["deployers".to_string()]),
        default_permission: default,
        users: BTreeMap::new(),
        roles: BTreeSet::new(),
        models: BTreeMap::new(),
        wildcard: Grants::new(),
    }
}

fn user(n: &str) -> Principal {
    Principal::User(n.into())
}

fn role(n: &str) -> Principal {
    Principal::Role(n.into())
}

#[test]
fn levels_spell_and_order_as_mlflow() {
    for l in Level::DECLARABLE {
        assert_eq!(Level::parse(l.as_str()), Some(l));
    }
    assert_eq!(
        Level::parse("read"),
        None,
        "MLflow's spelling is upper case"
    );
    assert_eq!(Level::Read.max(Level::Edit), Level::Edit);
    assert_eq!(
        Level::Deny.max(Level::Read),
        Level::Read,
        "DENY never wins a max"
    );
    assert!(Level::Edit.can_update() && !Level::Use.can_update());
    assert!(Level::Manage.can_manage() && !Level::Edit.can_manage());
}

#[test]
fn principals_round_trip_as_map_keys() {
    let grants = Grants::from([(user("alice"), Level::Read), (role("ml"), Level::Edit)]);
    let json = serde_json::to_string(&grants).expect("serializes");
    assert_eq!(json, r#"{"user:alice":"READ","role:ml":"EDIT"}"#);
    let back: Grants = serde_json::from_str(&json).expect("parses");
    assert_eq!(back, grants);
    assert!(serde_json::from_str::<Grants>(r#"{"alice":"READ"}"#).is_err());
    assert_eq!(user("alice").to_string(), "user alice");
}

#[test]
fn rbac_a_deny_wins_and_grants_never_fall_below_the_default() {
    let mut a = access(PermissionApi::Grants, Some(Level::Read));
    let grants = Grants::from([(user("msync"), Level::Manage)]);
    assert_eq!(a.my_level(&grants), Some(Level::Manage));
    let denied = Grants::from([
        (user("msync"), Level::Manage),
        (role("deployers"), Level::Deny),
    ]);
    assert_eq!(a.my_level(&denied), Some(Level::Deny));
    a.default_permission = Some(Level::Edit);
    let read = Grants::from([(user("msync"), Level::Read)]);
    assert_eq!(
        a.my_level(&read),
        Some(Level::Edit),
        "floored at the default"
    );
    assert_eq!(a.my_level(&Grants::new()), Some(Level::Edit));
    a.wildcard.insert(role("deployers"), Level::Deny);
    assert_eq!(
        a.my_level(&Grants::new()),
        Some(Level::Deny),
        "a * DENY too"
    );
    a.default_permission = None;
    a.wildcard.clear();
    assert_eq!(a.my_level(&Grants::new()), None, "the default is unknown");
}

#[test]
fn per_resource_a_direct_grant_is_not_raised_to_the_default() {
    let a = access(PermissionApi::PerResource, Some(Level::Edit));
    let read = Grants::from([(user("msync"), Level::Read)]);
    assert_eq!(a.my_level(&read), Some(Level::Read));
    let both = Grants::from([
        (user("msync"), Level::Read),
        (role("deployers"), Level::Manage),
    ]);
    assert_eq!(a.my_level(&both), Some(Level::Manage));
    assert_eq!(a.my_level(&Grants::new()), Some(Level::Edit), "the default");
}

#[test]
fn an_admin_passes_every_check() {
    let mut a = access(PermissionApi::Grants, Some(Level::Read));
    a.me_admin = true;
    let denied = Grants::from([(user("msync"), Level::Deny)]);
    assert_eq!(a.my_level(&denied), Some(Level::Manage));
}
