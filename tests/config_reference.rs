//! `config/userhook.yaml` is the configuration reference the README points to: it must be
//! valid and mention every key the config schema has, so it cannot fall behind the code.

use std::collections::BTreeSet;

const REFERENCE: &str = include_str!("../config/userhook.yaml");

/// Key paths of a JSON document; list elements are merged under `[]`.
fn paths(v: &serde_json::Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.insert(p.clone());
                paths(v, &p, out);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                paths(item, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn reference_config_mentions_every_key() {
    let written: serde_json::Value =
        serde_saphyr::from_str(REFERENCE).expect("reference parses as YAML");
    let file = userhook::snapshot::Snapshot::from_text(REFERENCE, None)
        .expect("reference compiles")
        .file;
    let full = serde_json::to_value(&file).expect("serialise");

    let mut have = BTreeSet::new();
    paths(&written, "", &mut have);
    let mut schema = BTreeSet::new();
    paths(&full, "", &mut schema);
    // Free-form maps: their keys are the operator's, not the schema's.
    let free_form = [
        "routes[].fields.",
        "routes[].when.",
        "webhooks[].headers.",
        "webhooks[].when.",
    ];
    let missing: Vec<&String> = schema
        .iter()
        .filter(|p| !free_form.iter().any(|f| p.starts_with(f)))
        .filter(|p| !have.contains(*p))
        .collect();
    assert!(
        missing.is_empty(),
        "config/userhook.yaml does not document: {missing:?}"
    );
}
