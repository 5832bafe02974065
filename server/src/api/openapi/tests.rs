//! The OpenAPI description held to the router: every route described, every error with the
//! error body, the state topic's records and the parameters' formats as they are.

use std::collections::BTreeSet;

use serde_json::{json, Value};

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
    {
        let spec: Value = serde_json::from_str(spec_json()).expect("valid JSON");
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

/// Whether `value` is what `schema` describes (`$ref`s resolved in `schemas`): types, enums,
/// bounds, required properties, maps, items, `allOf` and `oneOf`; and strictly, that every
/// property of an object is described by its schema. What does not fit is pushed to
/// `errors` with its path.
fn conforms(schemas: &Value, schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    let known = check(schemas, schema, value, path, errors);
    if let Some(obj) = value.as_object() {
        for key in obj.keys() {
            if !known.contains(key) {
                errors.push(format!("{path}.{key}: not in the schema"));
            }
        }
    }
}

/// Checks `value` against `schema` (its properties strictly, itself not) and returns the
/// properties of `value` the schema describes.
fn check(
    schemas: &Value,
    schema: &Value,
    value: &Value,
    path: &str,
    errors: &mut Vec<String>,
) -> BTreeSet<String> {
    let schema = resolve(schemas, schema);
    let mut known = BTreeSet::new();
    for part in schema["allOf"].as_array().into_iter().flatten() {
        known.extend(check(schemas, part, value, path, errors));
    }
    if let Some(branches) = schema["oneOf"].as_array() {
        let fitting: Vec<BTreeSet<String>> = branches
            .iter()
            .filter_map(|b| {
                let mut e = Vec::new();
                let k = check(schemas, b, value, path, &mut e);
                e.is_empty().then_some(k)
            })
            .collect();
        match &fitting[..] {
            [one] => known.extend(one.iter().cloned()),
            _ => errors.push(format!(
                "{path}: fits {} of the oneOf branches, not one",
                fitting.len()
            )),
        }
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let is = |t: &str| match t {
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "null" => value.is_null(),
        _ => false,
    };
    if !types.is_empty() && !types.iter().any(|t| is(t)) {
        errors.push(format!("{path}: {value} is not {types:?}"));
        return known;
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(value) {
            errors.push(format!("{path}: {value} is not one of {allowed:?}"));
        }
    }
    if let Some(n) = value.as_f64() {
        if schema["minimum"].as_f64().is_some_and(|m| n < m) {
            errors.push(format!("{path}: {n} is below its minimum"));
        }
        if schema["maximum"].as_f64().is_some_and(|m| n > m) {
            errors.push(format!("{path}: {n} is above its maximum"));
        }
    }
    if let Some(obj) = value.as_object() {
        for req in schema["required"].as_array().into_iter().flatten() {
            if let Some(name) = req.as_str() {
                if !obj.contains_key(name) {
                    errors.push(format!("{path}.{name}: required, missing"));
                }
            }
        }
        for (key, v) in obj {
            let inner = format!("{path}.{key}");
            if let Some(ps) = schema["properties"].get(key) {
                conforms(schemas, ps, v, &inner, errors);
                known.insert(key.clone());
            } else if schema["additionalProperties"].is_object() {
                conforms(schemas, &schema["additionalProperties"], v, &inner, errors);
                known.insert(key.clone());
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), value.as_array()) {
        for (n, v) in arr.iter().enumerate() {
            conforms(schemas, items, v, &format!("{path}[{n}]"), errors);
        }
    }
    known
}

fn resolve<'a>(schemas: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => resolve(
            schemas,
            &schemas[r.trim_start_matches("#/components/schemas/")],
        ),
        None => schema,
    }
}

#[test]
fn every_state_topic_record_matches_its_schema_field_by_field() {
    use crate::store::record::{self, Key};
    use crate::store::{DeadLetterRecord, OwnerRecord, PartitionCheckpoint, PartitionWrite};
    let spec: Value = serde_json::from_str(spec_json()).expect("valid JSON");
    let schemas = &spec["components"]["schemas"];
    let check = |schema: &str, bytes: &[u8]| -> Vec<String> {
        let value: Value = serde_json::from_slice(bytes).expect("a JSON record");
        let mut errors = Vec::new();
        conforms(
            schemas,
            &json!({ "$ref": format!("#/components/schemas/{schema}") }),
            &value,
            schema,
            &mut errors,
        );
        errors
    };
    let mut agg = pulseboard_model::agg::Aggregate::new();
    agg.events = 3;
    agg.by_type.add("pageview", 3);
    let full = PartitionWrite {
        topic: "clicks".into(),
        partition: 2,
        checkpoint: PartitionCheckpoint {
            next_offset: 99,
            max_event_ts: Some(25_000),
            events: 3,
            dead_letters: [("not_json".to_owned(), 1)].into(),
            seq: 3,
            ..Default::default()
        },
        rows: vec![crate::store::row::Row::new(0, agg)],
        revised: vec![0],
        undelivered: vec![DeadLetterRecord {
            topic: "clicks".into(),
            partition: 2,
            offset: 5,
            reason: "not_json".into(),
            error: "too large".into(),
            at_ms: 1,
            value_bytes: 9,
            value_head: b"x".to_vec(),
        }],
        owner: Some(OwnerRecord {
            id: "i1".into(),
            url: "http://127.0.0.1:8080".into(),
            high_watermark: Some(120),
            last_read_ms: None,
            at_ms: 11,
        }),
    };
    let records = record::records_of(&full, 10_000, 4);
    let [(_, wk, Some(wv)), (_, dk, Some(dv)), (_, pk, Some(pv))] = &records[..] else {
        panic!(
            "a window, a dead letter, a progress record: {}",
            records.len()
        );
    };
    // A window value is binary: its header's fields are what `StateTopicWindowFields`
    // describes, and `StateTopicWindow` says it is bytes.
    let header = record::Window::decode(wv).expect("a window value").value;
    let header = serde_json::to_vec(&header).expect("json");
    assert_eq!(wv[0], record::WINDOW_FORMAT);
    assert_eq!(schemas["StateTopicWindow"]["type"], "string");
    assert_eq!(
        schemas["StateTopicWindow"]["contentMediaType"],
        "application/octet-stream"
    );
    let instance = Key::Instance { id: "i1".into() }.encode();
    let instance_value = record::instance_value(&record::InstanceValue {
        url: "http://x".into(),
        started_ms: 1,
    });
    for (schema, bytes) in [
        ("StateTopicKey", wk),
        ("StateTopicKey", dk),
        ("StateTopicKey", pk),
        ("StateTopicKey", &instance),
        ("StateTopicWindowFields", &header),
        ("StateTopicDeadLetter", dv),
        ("StateTopicProgress", pv),
        ("StateTopicInstance", &instance_value),
    ] {
        let errors = check(schema, bytes);
        assert!(
            errors.is_empty(),
            "{schema} {}: {errors:?}",
            String::from_utf8_lossy(bytes)
        );
    }
    // The check itself can fail: an undescribed field, a wrong type, a missing field.
    for (schema, bad) in [
        (
            "StateTopicKey",
            r#"{"v":1,"kind":"window","topic":"t","partition":0,"start":0,"x":1}"#,
        ),
        (
            "StateTopicKey",
            r#"{"v":1,"kind":"window","topic":"t","partition":"0","start":0}"#,
        ),
        ("StateTopicKey", r#"{"v":2,"kind":"instance","id":"a"}"#),
        ("StateTopicInstance", r#"{"v":1,"url":"http://x"}"#),
        (
            "StateTopicProgress",
            &String::from_utf8_lossy(pv).replace(r#""at_ms":11"#, r#""at_ms":"11""#),
        ),
    ] {
        assert!(
            !check(schema, bad.as_bytes()).is_empty(),
            "{schema} takes {bad}"
        );
    }
}

#[test]
fn every_error_is_documented_with_the_error_body() {
    let spec: Value = serde_json::from_str(spec_json()).expect("valid JSON");
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            let m =
                axum::http::Method::from_bytes(method.to_uppercase().as_bytes()).expect("a method");
            let protected =
                crate::api::auth::rights::need(&m, path) != crate::api::auth::rights::Need::Open;
            let responses = op["responses"].as_object().expect("responses");
            for code in ["401", "403"] {
                assert!(
                    !protected || responses.contains_key(code),
                    "{method} {path}: {code} documented where a credential is needed"
                );
            }
            assert_eq!(
                op.get("security").is_some(),
                protected,
                "{method} {path}: security where a credential is needed"
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
                        ("/metrics", "500") => continue,        // no body
                        ("/readyz", "503") => continue,         // a `Readiness` that says why
                        ("/s/{id}", "404" | "410") => continue, // a page for people
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
}

#[test]
fn parameters_carry_their_formats_and_bounds() {
    let spec: Value = serde_json::from_str(spec_json()).expect("valid JSON");
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
