//! `examples/kubernetes/`: the manifests parse; each Deployment runs two
//! replicas whose `args` the daemon's own parser accepts as a `watch` with
//! `--leader-election` (a URI it can use) and a non-loopback `--listen`;
//! the probes hit `/healthz` and `/readyz` on the listen port; the Service
//! and ServiceMonitor reach that port and `/metrics`; every secret comes
//! from the Secret, and no secret sits in `args`.

use std::path::Path;

use clap::Parser;
use serde_json::Value;

const DIR: &str = "examples/kubernetes";

fn load(file: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DIR).join(file);
    let text = std::fs::read_to_string(&path).expect("read the example");
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// A probe or Service port: a number, or the container port of that name.
fn port_number(port: &Value, container: &Value) -> u64 {
    if let Some(n) = port.as_u64() {
        return n;
    }
    let name = port.as_str().expect("a port name or number");
    container["ports"]
        .as_array()
        .expect("container ports")
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["containerPort"].as_u64())
        .unwrap_or_else(|| panic!("no container port named {name}"))
}

fn check_deployment(file: &str, engine: &str) -> (u64, Vec<String>) {
    let d = load(file);
    assert_eq!(d["kind"], "Deployment", "{file}");
    assert_eq!(d["spec"]["replicas"], 2, "{file}: two replicas");
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<String> = c["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("string args").to_string())
        .collect();
    let mut argv = vec!["modelsync".to_string()];
    argv.extend(args.iter().cloned());
    let cli = modelsync::cli::Cli::try_parse_from(&argv)
        .unwrap_or_else(|e| panic!("{file}: the daemon rejects its args: {e}"));
    let modelsync::cli::Command::Watch(w) = cli.command else {
        panic!("{file}: not a watch");
    };
    let uri = w.leader_election.clone().expect("--leader-election");
    assert!(uri.starts_with(engine), "{file}: {uri}");
    let backend =
        modelsync::election::uri::parse(&uri, None).unwrap_or_else(|e| panic!("{file}: {e}"));
    if let modelsync::election::Backend::Postgres { password, .. } = backend {
        assert!(password.is_none(), "{file}: a password in args");
    }
    assert!(
        !w.listen.ip().is_loopback(),
        "{file}: probes cannot reach loopback"
    );
    let listen = u64::from(w.listen.port());
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let get = &c[probe]["httpGet"];
        assert_eq!(get["path"], path, "{file}: {probe}");
        assert_eq!(port_number(&get["port"], c), listen, "{file}: {probe} port");
    }
    let mut secrets = Vec::new();
    for e in c["env"].as_array().expect("env") {
        if let Some(r) = e["valueFrom"].get("secretKeyRef") {
            assert_eq!(r["name"], "modelsync", "{file}");
            secrets.push(r["key"].as_str().expect("key").to_string());
        } else {
            let name = e["name"].as_str().unwrap_or_default();
            assert!(
                !name.contains("TOKEN") && !name.contains("PASSWORD"),
                "{file}: {name} must come from the Secret"
            );
        }
    }
    (listen, secrets)
}

#[test]
fn kubernetes_examples_match_the_daemons_flags() {
    let (pg_port, pg_secrets) = check_deployment("deployment-postgresql.yaml", "postgresql://");
    let (etcd_port, etcd_secrets) = check_deployment("deployment-etcd.yaml", "etcd://");
    assert!(
        pg_secrets.contains(&"postgres-password".to_string()),
        "PGPASSWORD from the Secret"
    );
    let secret = load("secret.example.yaml");
    assert_eq!(secret["kind"], "Secret");
    for key in pg_secrets.iter().chain(&etcd_secrets) {
        assert!(
            secret["stringData"].get(key).is_some(),
            "the Secret has no {key}"
        );
    }

    let svc = load("service.yaml");
    let d = load("deployment-postgresql.yaml");
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    let labels = &d["spec"]["template"]["metadata"]["labels"];
    for (k, v) in svc["spec"]["selector"].as_object().expect("selector") {
        assert_eq!(&labels[k], v, "the Service selects the pods");
    }
    let sp = &svc["spec"]["ports"][0];
    assert_eq!(port_number(&sp["targetPort"], c), pg_port);
    assert_eq!(pg_port, etcd_port);

    let sm = load("servicemonitor.yaml");
    assert_eq!(sm["kind"], "ServiceMonitor");
    for (k, v) in sm["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("matchLabels")
    {
        assert_eq!(
            &svc["metadata"]["labels"][k], v,
            "the ServiceMonitor selects the Service"
        );
    }
    let ep = &sm["spec"]["endpoints"][0];
    assert_eq!(ep["port"], sp["name"]);
    assert_eq!(ep["path"], "/metrics");
}
