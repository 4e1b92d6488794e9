//! The resolver's table of cases.

use super::*;

fn links(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(l, t)| (l.to_string(), t.to_string()))
        .collect()
}

#[test]
fn normalize_removes_dots_and_empty_components() {
    for (path, want) in [
        ("a/b", "a/b"),
        ("./a//b/", "a/b"),
        ("a/./b/../c", "a/c"),
        ("a/..", ""),
        (".", ""),
        ("", ""),
        ("../a", "../a"),
        ("a/../../b", "../b"),
        ("../../a/..", "../.."),
        ("/a/../..", "/"),
        ("/proc/self/../self/environ", "/proc/self/environ"),
        ("/", "/"),
    ] {
        assert_eq!(normalize(path), want, "{path:?}");
    }
}

/// Every way a path can be written, with the root and manifest it is
/// written in: where it leads, or why it is refused.
#[test]
fn named_paths_stay_inside_the_root() {
    let ok = |s: &str| Ok(s.to_string());
    let outside = |r: &str| Err(Escape::Outside { root: r.into() });
    let absolute = |r: &str| Err(Escape::Absolute { root: r.into() });
    let cases: &[(&str, &str, &str, Result<String, Escape>)] = &[
        // root, manifest, named, result
        ("m", "m/a.yaml", "t.txt", ok("m/t.txt")),
        ("m", "m/a.yaml", "./tpl/../t.txt", ok("m/t.txt")),
        ("m", "m/sub/a.yaml", "../t.txt", ok("m/t.txt")),
        (
            "m/",
            "./m/sub/a.yaml",
            "../shared/t.txt",
            ok("m/shared/t.txt"),
        ),
        ("m", "m/a.yaml", "../outside.txt", outside("m")),
        ("m", "m/sub/a.yaml", "../../m/t.txt", ok("m/t.txt")),
        ("m", "m/sub/a.yaml", "../../n/t.txt", outside("m")),
        ("m", "m/a.yaml", "tpl/../../m/t.txt", ok("m/t.txt")),
        ("m", "m/a.yaml", "/etc/passwd", absolute("m")),
        ("m", "m/a.yaml", "/proc/self/environ", absolute("m")),
        ("m", "m/a.yaml", "//etc/passwd", absolute("m")),
        ("m", "m/a.yaml", "..", outside("m")),
        ("m", "m/a.yaml", "  ", Err(Escape::Empty)),
        // The current folder as root (`validate .`, git's repository root).
        ("", "a.yaml", "t.txt", ok("t.txt")),
        (".", "sub/a.yaml", "../t.txt", ok("t.txt")),
        ("", "a.yaml", "../t.txt", outside("")),
        ("", "a.yaml", "/t.txt", absolute("")),
        // A root above the working directory, and an absolute one.
        ("../m", "../m/a.yaml", "t.txt", ok("../m/t.txt")),
        ("../m", "../m/a.yaml", "../m2/t.txt", outside("../m")),
        ("/srv/m", "/srv/m/a.yaml", "x/t.txt", ok("/srv/m/x/t.txt")),
        ("/srv/m", "/srv/m/a.yaml", "../m2/t.txt", outside("/srv/m")),
        (
            "/srv/m",
            "/srv/m/a.yaml",
            "../../../../etc/passwd",
            outside("/srv/m"),
        ),
        // A root that is a prefix of another folder's name is not its parent.
        ("m", "m/a.yaml", "../mm/t.txt", outside("m")),
    ];
    for (root, manifest, path, want) in cases {
        assert_eq!(
            &named(root, manifest, path),
            want,
            "{path:?} in {manifest} under {root:?}"
        );
    }
}

#[test]
fn the_root_of_a_manifest_is_the_outermost_path_holding_it() {
    let roots = vec!["m".to_string(), "m/sub".to_string(), "/abs/x".to_string()];
    assert_eq!(root_of(&roots, "m/sub/a.yaml"), "m");
    assert_eq!(root_of(&roots, "m/a.yaml"), "m");
    assert_eq!(root_of(&roots, "/abs/x/deep/a.yaml"), "/abs/x");
    // A file given directly (its folder is no root): its own folder.
    assert_eq!(root_of(&roots, "other/a.yaml"), "other");
    assert_eq!(root_of(&[], "a.yaml"), "");
    assert_eq!(root_of(&[".".to_string()], "sub/a.yaml"), "");
}

/// Links followed component by component below the root: inside, they
/// resolve; absolute or leading out, they are refused; a loop ends.
#[test]
fn links_resolve_inside_the_root_only() {
    let table = links(&[
        ("m/t.txt", "real/t.txt"),
        ("m/dir", "real"),
        ("m/chain", "t.txt"),
        ("m/up", "../outside.txt"),
        ("m/deep/up", "../../etc"),
        ("m/abs", "/etc/passwd"),
        ("m/environ", "/proc/self/environ"),
        ("m/a", "b"),
        ("m/b", "a"),
        ("m/real/back", "../dir/x.txt"),
        // A link above the root is the operator's, never looked at.
        ("m", "/anywhere"),
    ]);
    let mut lookup = |p: &str| table.get(p).cloned();
    let mut follow_ = |p: &str| follow("m", p, &mut lookup);
    assert_eq!(follow_("m/plain.txt"), Ok("m/plain.txt".into()));
    assert_eq!(follow_("m/t.txt"), Ok("m/real/t.txt".into()));
    assert_eq!(follow_("m/dir/x.txt"), Ok("m/real/x.txt".into()));
    assert_eq!(follow_("m/chain"), Ok("m/real/t.txt".into()));
    assert_eq!(follow_("m/real/back"), Ok("m/real/x.txt".into()));
    assert_eq!(
        follow_("m/up"),
        Err(Escape::LinkOutside {
            link: "m/up".into(),
            target: "../outside.txt".into(),
            root: "m".into()
        })
    );
    assert!(matches!(
        follow_("m/deep/up/passwd"),
        Err(Escape::LinkOutside { link, .. }) if link == "m/deep/up"
    ));
    assert!(matches!(
        follow_("m/abs"),
        Err(Escape::LinkAbsolute { target, .. }) if target == "/etc/passwd"
    ));
    assert!(matches!(
        follow_("m/environ"),
        Err(Escape::LinkAbsolute { target, .. }) if target == "/proc/self/environ"
    ));
    assert!(matches!(follow_("m/a"), Err(Escape::TooManyLinks { .. })));
    assert_eq!(follow_("m/../x"), Err(Escape::Outside { root: "m".into() }));
}

#[test]
fn a_snapshot_has_only_its_files() {
    let snap = Snapshot {
        name: "commit abc under m".into(),
        files: BTreeMap::from([("m/real/t.txt".to_string(), "Hi".to_string())]),
        links: links(&[("m/t.txt", "real/t.txt"), ("m/out", "../../etc/passwd")]),
    };
    assert_eq!(snap.read("m", "m/real/t.txt"), Ok("Hi".into()));
    assert_eq!(snap.read("m", "m/t.txt"), Ok("Hi".into()));
    assert_eq!(
        snap.read("m", "m/gone.txt"),
        Err("not in commit abc under m".into())
    );
    assert!(
        snap.read("m", "m/out")
            .unwrap_err()
            .contains("leads outside the manifests root m"),
    );
    assert_eq!(
        crate::manifest::validate::LoadOptions::default().tree,
        Tree::Snapshot(Snapshot {
            name: "an empty set of files".into(),
            ..Snapshot::default()
        }),
        "by default nothing can be read"
    );
}

#[test]
fn refusals_say_why() {
    let e = named("m", "m/a.yaml", "/etc/passwd").unwrap_err();
    assert_eq!(
        e.to_string(),
        "an absolute path; a manifest may only read files inside its manifests root m, named relative to the manifest"
    );
    let e = named("", "a.yaml", "../x").unwrap_err();
    assert_eq!(
        e.to_string(),
        "leads outside the manifests root .; a manifest may only read files inside it"
    );
}
