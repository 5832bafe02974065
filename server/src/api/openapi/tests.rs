//! The OpenAPI description held to the router: every route described, every error with the
//! error body, the state topic's records and the parameters' formats as they are.

use std::collections::BTreeSet;

use serde_json::Value;

use super::*;
use crate::api::ROUTES;

fn described(spec: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if ["get", "post", "put", "delete", "patch", "options", "head"]
                .contains(&method.as_str())
            {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

/// The paths given to `.route(` in the router's source, so that a route added there
/// without being listed in [`ROUTES`] (and so described) fails this test.
fn routed_paths() -> BTreeSet<String> {
    let src = include_str!("../mod.rs");
    let router = &src[src.find("pub fn router(").expect("router")..];
    let router = &router[..router.find("\n}\n").expect("end of router")];
    router
        .split(".route(")
        .skip(1)
        .map(|rest| {
            let rest = rest.trim_start();
            let lit = rest.strip_prefix('"').expect("a path literal");
            lit[..lit.find('"').expect("end of literal")].to_owned()
        })
        .collect()
}

#[test]
fn description_is_openapi_3_1_and_covers_every_route() {
    for token in [false, true] {
        let spec: Value = serde_json::from_str(spec_json(token)).expect("valid JSON");
        let version = spec["openapi"].as_str().expect("openapi");
        assert!(version.starts_with("3.1."), "{version}");
        let listed: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
            .collect();
        assert_eq!(described(&spec), listed, "described vs ROUTES");
    }
    let listed: BTreeSet<String> = ROUTES.iter().map(|(_, p)| (*p).to_owned()).collect();
    assert_eq!(routed_paths(), listed, "router vs ROUTES");
}

#[test]
fn the_state_topic_records_are_described_with_the_fields_they_carry() {
    use crate::store::record::{self, Key};
    let spec: Value = serde_json::from_str(spec_json(false)).expect("valid JSON");
    let schemas = &spec["components"]["schemas"];
    // Every property a real record has is in its schema (or in `v`).
    let props = |name: &str| -> BTreeSet<String> {
        let mut out: BTreeSet<String> = schemas[name]["properties"]
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        for all in schemas[name]["allOf"].as_array().into_iter().flatten() {
            out.extend(
                all["properties"]
                    .as_object()
                    .into_iter()
                    .flat_map(|o| o.keys().cloned()),
            );
        }
        out
    };
    let keys_of = |bytes: &[u8]| -> BTreeSet<String> {
        let v: Value = serde_json::from_slice(bytes).expect("json");
        v.as_object().expect("object").keys().cloned().collect()
    };
    let window = record::window_value(&Default::default(), 10_000, 1, false);
    let mut want = props("StateTopicWindowFields");
    want.insert("v".into());
    assert_eq!(keys_of(&window), want, "window value");
    for name in [
        "StateTopicKey",
        "StateTopicWindow",
        "StateTopicProgress",
        "StateTopicDeadLetter",
        "StateTopicInstance",
    ] {
        let all = schemas[name]["allOf"].as_array().expect("allOf");
        assert_eq!(all[0]["required"][0], "v", "{name}");
        let target = all[1]["$ref"].as_str().expect("ref");
        let target = target.trim_start_matches("#/components/schemas/");
        assert!(schemas[target].is_object(), "{name} refers to {target}");
    }
    let progress = props("StateTopicProgressFields");
    for field in ["seq", "next_offset", "owner", "at_ms"] {
        assert!(
            progress.contains(field)
                || schemas["PartitionCheckpoint"]["properties"][field].is_object(),
            "progress field {field}"
        );
    }
    let key = String::from_utf8(
        Key::Window {
            topic: "t".into(),
            partition: 0,
            start: 0,
        }
        .encode(),
    )
    .expect("utf8");
    assert!(
        schemas["StateTopicKeyFields"]
            .to_string()
            .contains("window"),
        "{key}"
    );
}

#[test]
fn every_error_is_documented_with_the_error_body() {
    let spec: Value = serde_json::from_str(spec_json(true)).expect("valid JSON");
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            let protected = crate::api::is_protected(path);
            let responses = op["responses"].as_object().expect("responses");
            assert_eq!(
                responses.contains_key("401"),
                protected,
                "{method} {path}: 401 documented exactly where the token guards"
            );
            assert_eq!(
                op.get("security").is_some(),
                protected,
                "{method} {path}: security where the token guards"
            );
            let has_query = op["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["in"] == "query"));
            if has_query {
                assert!(responses.contains_key("400"), "{method} {path}: 400");
            }
            for (code, resp) in responses {
                if code.starts_with('4') || code.starts_with('5') {
                    let schema = &resp["content"]["application/json"]["schema"]["$ref"];
                    match (path.as_str(), code.as_str()) {
                        ("/metrics", "500") => continue, // no body
                        ("/readyz", "503") => continue,  // a `Readiness` that says why
                        _ => {}
                    }
                    assert_eq!(
                        schema, "#/components/schemas/ApiError",
                        "{method} {path} {code}"
                    );
                }
            }
        }
    }
    let plain: Value = serde_json::from_str(spec_json(false)).expect("valid JSON");
    assert!(plain["components"]["securitySchemes"].is_null());
}

#[test]
fn parameters_carry_their_formats_and_bounds() {
    let spec: Value = serde_json::from_str(spec_json(false)).expect("valid JSON");
    let params = |path: &str| -> Vec<Value> {
        spec["paths"][path]["get"]["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let find = |path: &str, name: &str| -> Value {
        params(path)
            .into_iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{path} has no {name}"))
    };
    assert_eq!(find("/api/v1/windows", "limit")["schema"]["maximum"], 10000);
    assert_eq!(
        find("/api/v1/dead-letters", "limit")["schema"]["maximum"],
        1000
    );
    assert_eq!(find("/api/v1/summary", "top")["schema"]["minimum"], 1);
    assert_eq!(
        find("/api/v1/summary", "range")["schema"]["pattern"],
        DURATION_PATTERN
    );
    let from = find("/api/v1/windows", "from");
    let instant = from["schema"].to_string();
    assert!(instant.contains("Instant"), "{instant}");
    let one_of = spec["components"]["schemas"]["Instant"]["oneOf"].to_string();
    assert!(
        one_of.contains("date-time") && one_of.contains("int64"),
        "{one_of}"
    );
}
