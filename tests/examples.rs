//! The shipped examples never rot: every config under `examples/` and `config/`, and the config
//! embedded in the Kubernetes ConfigMap, passes `userhook check` (the real binary); the
//! Dockerfile keeps the rules that matter (multi-stage, pinned images, `--locked`, non-root);
//! and the manifests agree with each other and with the embedded config (probes on the admin
//! port, the Service on the proxy port, mounts backed by volumes, no `subPath`, every `${VAR}`
//! provided by the Secret). Schema validation and hadolint run in `.ci/lint-deploy`.

use std::path::{Path, PathBuf};

use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Values for every `${VAR}` the examples reference (none has a default).
const ENV: [(&str, &str); 10] = [
    ("WECOM_KEY", "test-wecom-key"),
    ("WECOM_SECURITY_KEY", "test-wecom-security-key"),
    (
        "SLACK_WEBHOOK_PATH",
        "T0A1B2C3D/B0E4F5G6H/abcd1234efgh5678ijkl9012",
    ),
    ("DINGTALK_TOKEN", "test-dingtalk-token"),
    (
        "SIGNING_SECRET",
        "whsec_dGVzdC1zaWduaW5nLXNlY3JldC0xMjM0NTY3OA==",
    ),
    ("PROVISIONER_TOKEN", "test-provisioner-token"),
    ("USERHOOK_ADMIN_TOKEN", "test-admin-token-0123456789abcdef"),
    ("USERHOOK_DEMO_IAM", "http://127.0.0.1:1"),
    ("USERHOOK_DEMO_RECEIVER", "http://127.0.0.1:2"),
    ("USERHOOK_DEMO_SPOOL", "/tmp/userhook-demo-spool"),
];

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            yaml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
}

fn check(path: &Path) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_userhook"))
        .arg("check")
        .arg(path)
        .envs(ENV)
        .env_remove("RUST_LOG")
        .output()
        .expect("run userhook check");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{} fails `userhook check`:\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    for (_, value) in ENV.iter().filter(|(k, _)| !k.starts_with("USERHOOK_DEMO")) {
        // A Slack path's key is its last segment (the T.../B... ids are not secret).
        let secret = value.rsplit('/').next().unwrap_or(value);
        assert!(
            !stdout.contains(secret),
            "{}: the summary shows a secret",
            path.display()
        );
    }
}

fn manifest(name: &str) -> Value {
    let path = Path::new(ROOT).join("examples/kubernetes").join(name);
    let text = std::fs::read_to_string(&path).expect("read manifest");
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn embedded_config() -> String {
    manifest("configmap.yaml")["data"]["userhook.yaml"]
        .as_str()
        .expect("the ConfigMap holds data.userhook.yaml")
        .to_owned()
}

#[test]
fn every_example_config_passes_check() {
    let mut files = Vec::new();
    yaml_files(&Path::new(ROOT).join("examples"), &mut files);
    yaml_files(&Path::new(ROOT).join("config"), &mut files);
    let kubernetes = Path::new(ROOT).join("examples/kubernetes");
    files.retain(|f| !f.starts_with(&kubernetes));
    files.sort();
    let names: Vec<String> = files
        .iter()
        .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    for expected in [
        "keycloak-wecom.yaml",
        "scim-slack.yaml",
        "dce-dingtalk.yaml",
        "generic-signed-json.yaml",
        "userhook.yaml",
        "demo.yaml",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing: {names:?}"
        );
    }
    for f in &files {
        check(f);
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("configmap-userhook.yaml");
    std::fs::write(&path, embedded_config()).expect("write");
    check(&path);
}

/// The Dockerfile's instructions, continuation lines joined.
fn dockerfile() -> Vec<String> {
    let text = std::fs::read_to_string(Path::new(ROOT).join("Dockerfile")).expect("Dockerfile");
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => current.push_str(part),
            None => {
                current.push_str(line);
                out.push(std::mem::take(&mut current));
            }
        }
    }
    out
}

#[test]
fn dockerfile_is_multi_stage_pinned_locked_and_non_root() {
    let lines = dockerfile();
    let froms: Vec<&String> = lines.iter().filter(|l| l.starts_with("FROM ")).collect();
    assert!(froms.len() >= 2, "multi-stage build expected: {froms:?}");
    for from in &froms {
        let image = from.split_whitespace().nth(1).unwrap_or("");
        let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or("");
        assert!(
            !tag.is_empty() && !tag.contains("latest") && !tag.contains('/'),
            "unpinned base image: {from}"
        );
    }
    assert!(froms[0].starts_with("FROM rust:"), "builder: {}", froms[0]);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("RUN ") && l.contains("cargo build --release --locked")),
        "the build must use --release --locked"
    );
    // The last USER of the final stage is not root.
    let last_from = lines
        .iter()
        .rposition(|l| l.starts_with("FROM "))
        .unwrap_or(0);
    let user = lines[last_from..]
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the final stage sets USER");
    let uid = user.split(':').next().unwrap_or("");
    assert!(
        !matches!(uid, "" | "0" | "root"),
        "runs as root: USER {user}"
    );
    let expose = lines
        .iter()
        .find(|l| l.starts_with("EXPOSE "))
        .expect("EXPOSE");
    assert!(
        expose.contains("8080") && expose.contains("9090"),
        "{expose}"
    );
}

fn port_of(addr: &str) -> u64 {
    addr.rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {addr}"))
}

/// The `containerPort` a probe or Service names (by name or number).
fn container_port(container: &Value, port: &Value) -> u64 {
    if let Some(n) = port.as_u64() {
        return n;
    }
    let name = port.as_str().expect("port name or number");
    container["ports"]
        .as_array()
        .and_then(|ports| ports.iter().find(|p| p["name"] == name))
        .and_then(|p| p["containerPort"].as_u64())
        .unwrap_or_else(|| panic!("no container port named {name}"))
}

#[test]
fn manifests_agree_with_each_other_and_the_config() {
    let config: Value = serde_saphyr::from_str(&embedded_config()).expect("embedded YAML");
    let proxy_port = port_of(config["listen"].as_str().expect("listen"));
    let admin = config["admin"]["listen"].as_str().expect("admin.listen");
    assert!(
        admin.starts_with("0.0.0.0:"),
        "kubelet probes the pod IP: admin must not be localhost-only ({admin})"
    );
    let admin_port = port_of(admin);

    let configmap = manifest("configmap.yaml");
    let secret = manifest("secret.yaml");
    let service = manifest("service.yaml");
    let deployment = manifest("deployment.yaml");
    let policy = manifest("networkpolicy.yaml");
    for (m, api, kind) in [
        (&configmap, "v1", "ConfigMap"),
        (&secret, "v1", "Secret"),
        (&service, "v1", "Service"),
        (&deployment, "apps/v1", "Deployment"),
        (&policy, "networking.k8s.io/v1", "NetworkPolicy"),
    ] {
        assert_eq!(m["apiVersion"], api);
        assert_eq!(m["kind"], kind);
        assert!(m["metadata"]["name"].is_string());
    }

    let pod = &deployment["spec"]["template"];
    let labels = &pod["metadata"]["labels"];
    for (k, v) in deployment["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("selector")
    {
        assert_eq!(&labels[k], v, "the selector matches the pod's labels");
    }
    for (k, v) in service["spec"]["selector"].as_object().expect("selector") {
        assert_eq!(&labels[k], v, "the Service selects the pod");
    }
    let containers = pod["spec"]["containers"].as_array().expect("containers");
    assert!(containers.len() >= 2, "userhook beside the IAM");
    let uh = containers
        .iter()
        .find(|c| c["name"] == "userhook")
        .expect("a userhook container");
    let image = uh["image"].as_str().unwrap_or("");
    assert!(
        image.contains(':') && !image.ends_with(":latest"),
        "{image}"
    );
    for c in containers {
        let image = c["image"].as_str().unwrap_or("");
        assert!(
            !image.ends_with(":latest") && image.contains(':'),
            "{image}"
        );
    }

    // Off loopback the admin API needs its token, from the Secret like every other secret.
    assert_eq!(
        config["admin"]["token"], "${USERHOOK_ADMIN_TOKEN}",
        "a non-loopback admin port needs admin.token from the environment"
    );
    // The NetworkPolicy selects this pod, admits the proxy port from anywhere and the admin
    // port only from a namespace selector, and never admits the IAM's own ports.
    for (k, v) in policy["spec"]["podSelector"]["matchLabels"]
        .as_object()
        .expect("podSelector")
    {
        assert_eq!(&labels[k], v, "the NetworkPolicy selects the pod");
    }
    assert_eq!(
        policy["spec"]["policyTypes"],
        serde_json::json!(["Ingress"])
    );
    let rules = policy["spec"]["ingress"].as_array().expect("ingress rules");
    let admitted = |port: u64| -> Vec<&Value> {
        rules
            .iter()
            .filter(|r| {
                r["ports"]
                    .as_array()
                    .is_some_and(|ps| ps.iter().any(|p| p["port"].as_u64() == Some(port)))
            })
            .collect()
    };
    let proxy_rules = admitted(proxy_port);
    assert_eq!(proxy_rules.len(), 1, "one rule for the proxy port");
    assert!(
        proxy_rules[0].get("from").is_none(),
        "clients come from anywhere"
    );
    let admin_rules = admitted(admin_port);
    assert_eq!(admin_rules.len(), 1, "one rule for the admin port");
    let from = admin_rules[0]["from"]
        .as_array()
        .expect("admin port restricted by `from`");
    assert!(!from.is_empty() && from.iter().all(|f| f.get("namespaceSelector").is_some()));
    for kc in ["kc-http", "kc-management"] {
        let port = containers
            .iter()
            .filter_map(|c| c["ports"].as_array())
            .flatten()
            .find(|p| p["name"] == kc)
            .and_then(|p| p["containerPort"].as_u64())
            .expect("Keycloak port");
        assert!(
            admitted(port).is_empty(),
            "{kc} ({port}) must not be admitted"
        );
    }

    // Probes hit the admin port; the Service hits the proxy port.
    for probe in ["livenessProbe", "readinessProbe"] {
        let get = &uh[probe]["httpGet"];
        assert_eq!(container_port(uh, &get["port"]), admin_port, "{probe}");
    }
    assert_eq!(uh["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(uh["readinessProbe"]["httpGet"]["path"], "/readyz");
    let svc_port = &service["spec"]["ports"][0]["targetPort"];
    assert_eq!(container_port(uh, svc_port), proxy_port);

    // Every mount has a volume; the config is a directory mount (no subPath) holding the file
    // the args name; the spool directory is on a volume (the root filesystem is read-only).
    let volumes = pod["spec"]["volumes"].as_array().expect("volumes");
    let mounts = uh["volumeMounts"].as_array().expect("volumeMounts");
    for m in mounts {
        assert!(
            volumes.iter().any(|v| v["name"] == m["name"]),
            "mount {} has no volume",
            m["name"]
        );
        assert!(
            m.get("subPath").is_none(),
            "subPath mounts never update: {m}"
        );
    }
    let config_volume = volumes
        .iter()
        .find(|v| v["configMap"]["name"] == configmap["metadata"]["name"])
        .expect("a volume from the ConfigMap");
    let config_mount = mounts
        .iter()
        .find(|m| m["name"] == config_volume["name"])
        .expect("the ConfigMap is mounted");
    let args: Vec<&str> = uh["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let config_arg = args
        .windows(2)
        .find(|w| w[0] == "--config")
        .map(|w| w[1])
        .expect("--config");
    let mount_path = config_mount["mountPath"].as_str().expect("mountPath");
    assert_eq!(config_arg, format!("{mount_path}/userhook.yaml"));
    let spool = config["delivery"]["spool_dir"].as_str().expect("spool_dir");
    assert!(
        mounts
            .iter()
            .filter_map(|m| m["mountPath"].as_str())
            .any(|p| spool.starts_with(p)),
        "the spool {spool} is not on a volume"
    );

    // Hardening.
    let sc = &uh["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert!(uh["resources"]["requests"]["cpu"].is_string());
    assert!(uh["resources"]["requests"]["memory"].is_string());

    // Every ${VAR} of the embedded config is a key of the Secret the container reads.
    let secret_name = &secret["metadata"]["name"];
    assert!(uh["envFrom"]
        .as_array()
        .expect("envFrom")
        .iter()
        .any(|e| &e["secretRef"]["name"] == secret_name));
    let text = embedded_config();
    let mut rest = text.as_str();
    let mut vars = Vec::new();
    while let Some(i) = rest.find("${") {
        let after = &rest[i + 2..];
        let end = after.find(['}', ':']).expect("closed ${VAR}");
        vars.push(after[..end].to_owned());
        rest = &after[end..];
    }
    assert!(!vars.is_empty());
    for var in vars {
        assert!(
            secret["stringData"].get(&var).is_some(),
            "${{{var}}} is not in the Secret"
        );
    }
    // Grace: Kubernetes waits longer than userhook drains.
    let grace = pod["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("terminationGracePeriodSeconds");
    let drain = config["timeouts"]["shutdown_grace"]
        .as_str()
        .and_then(|s| s.strip_suffix('s'))
        .and_then(|s| s.parse::<u64>().ok())
        .expect("shutdown_grace in seconds");
    assert!(grace > drain, "{grace}s <= {drain}s");
}
