//! The profile files: they load, mean what they meant as Rust consts, paste into a config
//! unchanged, and can never extract a credential.

use serde_json::{json, Value};

use super::*;
use crate::detect::{RouteTable, Rule, RuleOrigin};

fn profile(name: &str) -> &'static Profile {
    match find(name) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

/// The rule of `profile` with this action and method, as a config entry under its base path.
fn spec(profile_name: &str, action: &str, method: &str) -> Value {
    let p = profile(profile_name);
    let found = p
        .specs_under(&p.base_path)
        .find(|r| r.action.0 == [action] && r.method == method)
        .unwrap_or_else(|| panic!("{profile_name}: no {action} {method} rule"));
    serde_json::to_value(found).expect("serialise")
}

#[test]
fn every_file_loads_under_its_name() {
    let all = match all() {
        Ok(all) => all,
        Err(e) => panic!("{e}"),
    };
    let names_loaded: Vec<&str> = all.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names_loaded,
        [
            "generic",
            "keycloak",
            "scim",
            "dce",
            "keystone",
            "better-auth",
            "fastapi-users",
            "gitea",
            "casdoor",
            "zitadel"
        ]
    );
    assert_eq!(
        names(),
        "generic, keycloak, scim, dce, keystone, better-auth, fastapi-users, gitea, casdoor, zitadel"
    );
    for p in all {
        assert!(!p.about.trim().is_empty(), "{}", p.name);
        assert!(!p.routes.is_empty(), "{}", p.name);
    }
    assert_eq!(profile("scim").base_path, "/scim/v2");
    assert_eq!(profile("dce").base_path, "/apis/ghippo.io/v1alpha1");
    assert_eq!(profile("keycloak").base_path, "");
    assert_eq!(
        find("okta").unwrap_err().to_string(),
        "unknown profile `okta`; known: generic, keycloak, scim, dce, keystone, better-auth, \
         fastapi-users, gitea, casdoor, zitadel"
    );
}

#[test]
fn a_broken_file_is_an_error_not_a_panic() {
    const GOOD: &str = "name: good\nbase_path: ''\nabout: x\nroutes:\n  - {action: created, method: POST, path: /u}\n";
    let loaded = load(&[
        ("good", GOOD),
        ("typo", "name: typo\nbase_path: ''\nabout: x\nroutes:\n  - {action: created, method: POST, path: /u, nte: x}\n"),
        ("renamed", "name: other\nbase_path: v1\nabout: x\nroutes: []\n"),
        ("yaml", "name: yaml\nroutes: [\n"),
        ("missing", "name: missing\nroutes: []\n"),
    ]);
    assert!(find_in(&loaded, "good").is_ok());
    let err = |name| find_in(&loaded, name).expect_err(name).to_string();
    let typo = err("typo");
    assert!(
        typo.starts_with("built-in profile `typo` cannot be loaded (a bug in this build of userhook; please report it): src/detect/profiles/typo.yaml: routes[0].nte: unknown field `nte`"),
        "{typo}"
    );
    let renamed = err("renamed");
    assert!(
        renamed.contains("name: `other` is not the file's name; base_path: `v1` must be"),
        "{renamed}"
    );
    assert!(err("yaml").contains("invalid YAML"), "{}", err("yaml"));
    assert!(
        err("missing").contains("missing field `base_path`"),
        "{}",
        err("missing")
    );
}

#[test]
fn profiles_never_extract_credentials() {
    // A profile file naming a credential parses (it is valid config syntax) but never compiles
    // as a profile rule; the same rule written by an operator does.
    let text = "name: leaky\nbase_path: ''\nabout: x\nroutes:\n  - action: created\n    method: POST\n    path: /u\n    fields:\n      Password: request.body.password\n      Token: [response.body.access_token]\n";
    let loaded = load(&[("leaky", text)]);
    let leaky = find_in(&loaded, "leaky").expect("parses");
    let spec = &leaky.routes[0];
    let errors = Rule::compile(
        spec,
        "profiles[0] (leaky rule 0)",
        RuleOrigin::Profile("leaky"),
    )
    .expect_err("a profile rule may not extract credentials");
    let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 2, "{shown:?}");
    for (field, source) in [
        ("Password", "request.body.password"),
        ("Token", "response.body.access_token"),
    ] {
        let want = format!("profiles[0] (leaky rule 0).fields.{field}: `{source}` is a credential; built-in profiles never extract credentials");
        assert!(shown.contains(&want), "{want} not in {shown:?}");
    }
    assert!(Rule::compile(spec, "routes[0]", RuleOrigin::Operator).is_ok());
}

#[test]
fn distinctive_rules_exactly() {
    assert_eq!(
        spec("keycloak", "created", "POST"),
        json!({
            "action": "created", "method": "POST", "path": "/admin/realms/{realm}/users",
            "status": [201], "when": {},
            "fields": {
                "ID": ["response.header.location | last_segment"],
                "Email": ["request.body.email | lower"],
                "Name": ["request.body.username | lower"],
                "FirstName": ["request.body.firstName"],
                "LastName": ["request.body.lastName"],
                "Enabled": ["request.body.enabled"],
            },
            "note": "Keycloak answers 201 with an empty body: the id is only in `Location`. Keycloak stores usernames and emails lower-case.",
        })
    );
    let login_failed = spec("keycloak", "login_failed", "POST");
    assert_eq!(
        login_failed["path"],
        "/realms/{realm}/protocol/openid-connect/token"
    );
    assert_eq!(login_failed["status"], json!([400, 401]));
    assert_eq!(
        login_failed["when"],
        json!({"request.form.grant_type": ["password"]})
    );
    assert_eq!(
        spec("scim", "updated", "PATCH")["fields"]["Enabled"],
        json!([
            "response.body.active",
            "request.body.Operations.path=active.value | lower",
            "request.body.Operations.0.value.active"
        ])
    );
    assert_eq!(
        spec("scim", "remember", "GET")["fields"]["Enabled"],
        json!(["response.body.active"])
    );
    assert_eq!(spec("scim", "created", "POST")["path"], "/scim/v2/Users");
    // The aliased field maps: PATCH repeats PUT; the merged maps hold every user field.
    let (put, patch) = (
        spec("generic", "updated", "PUT"),
        spec("generic", "updated", "PATCH"),
    );
    assert_eq!(put["fields"], patch["fields"]);
    assert_eq!(
        put["fields"]["ID"],
        json!(["path.id", "response.body.id", "response.body.ID"])
    );
    assert_eq!(put["fields"].as_object().map(|f| f.len()), Some(7));
    assert_eq!(put["status"], Value::Null);
    let dce_logout = spec("dce", "logout", "DELETE");
    assert_eq!(dce_logout["path"], "/apis/ghippo.io/v1alpha1/logout");
    assert_eq!(dce_logout["fields"]["ID"], json!(["request.jwt.sub"]));
    assert_eq!(
        spec("dce", "updated", "PUT")["fields"]["CreatedAt"],
        json!(["response.body.createdAt"])
    );
}

/// What the comment at the top of every file promises: the `routes:` list, base path put in
/// front of each `path:`, is a valid `routes:` of a config and means the same rules.
#[test]
fn each_file_pastes_into_a_config() {
    for (name, text) in FILES {
        let p = profile(name);
        let at = text
            .find("\nroutes:\n")
            .unwrap_or_else(|| panic!("{name}: no `routes:`"))
            + 1;
        let pasted: Vec<String> = text[at..]
            .lines()
            .map(|line| match line.split_once("path: ") {
                Some((indent, path)) if matches!(indent.trim(), "" | "-") => {
                    format!("{indent}path: {}", join_base(&p.base_path, path))
                }
                _ => line.to_owned(),
            })
            .collect();
        let config = format!("upstream: http://127.0.0.1:1\n{}\n", pasted.join("\n"));
        let file = match crate::config::parse_str(&config) {
            Ok(file) => file,
            Err(e) => panic!("{name} pasted into a config:\n{e}\n{config}"),
        };
        let table = match RouteTable::compile(&file.routes, &[]) {
            Ok(t) => t,
            Err(e) => panic!("{name}: {e:?}"),
        };
        assert_eq!(table.len(), p.routes.len(), "{name}");
        assert!(table
            .rules()
            .iter()
            .all(|r| r.origin == RuleOrigin::Operator));
        let as_operator: Vec<Value> = file.routes.iter().map(|r| json!(r)).collect();
        let as_profile: Vec<Value> = p.specs_under(&p.base_path).map(|r| json!(r)).collect();
        assert_eq!(as_operator, as_profile, "{name}");
    }
}

#[test]
fn files_read_nothing_from_the_environment() {
    // A config would substitute `${VAR}`; a profile never reads the environment, so neither
    // may a file that is meant to be pasted into one.
    for (name, text) in FILES {
        assert!(!text.contains("${"), "{name}");
    }
}
