//! Custom properties: the keys of an event's `props` that `--property KEY` names, each a
//! segment dimension of its own (`prop.KEY`, see [`super::segment`]).
//!
//! Contract:
//! - A property key is 1 to [`MAX_PROP_KEY_BYTES`] bytes of ASCII letters, digits, `_`, `-`
//!   and `.` ([`PropKey::register`] says what is wrong with any other); at most
//!   [`MAX_PROPERTIES`] are kept.
//! - A [`PropKey`] is a name interned once for the process (so a [`super::Dimension`] stays
//!   `Copy`): keys come from the configuration and from stored rows (themselves written
//!   under a configuration), never from a request: [`PropKey::known`] only finds keys
//!   registered before, so a filter naming another key is refused without interning it.
//!   At most [`MAX_INTERNED_KEYS`] keys are ever interned.
//! - A value is what [`prop_value`] makes of a JSON value: a string as it is, a number or a
//!   boolean as its JSON text; `null` is no value; an object or an array, a string with a
//!   control character or an empty one is rejected ([`PropRejected`]); a value longer than
//!   [`MAX_PROP_VALUE_BYTES`] is cut at the last character boundary before it (and says
//!   so). A rejected value never rejects its event.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Most property keys a server keeps (`--property`).
pub const MAX_PROPERTIES: usize = 20;
/// Longest property key in bytes.
pub const MAX_PROP_KEY_BYTES: usize = 64;
/// Longest property value in bytes: longer ones are cut.
pub const MAX_PROP_VALUE_BYTES: usize = 256;
/// Most keys interned in a process's life.
pub const MAX_INTERNED_KEYS: usize = 4096;

/// The prefix of a property's dimension name: `prop.plan`.
pub const PROP_PREFIX: &str = "prop.";

/// A property key, interned as its dimension's name (`prop.plan`): cheap to copy and
/// compare.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PropKey(&'static str);

static INTERNED: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());

/// A property key that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PropKeyError {
    #[error("a property key is empty")]
    Empty,
    #[error("property key {0:?} is longer than {MAX_PROP_KEY_BYTES} bytes")]
    TooLong(String),
    #[error("property key {0:?} has a character other than letters, digits, '_', '-' and '.'")]
    Character(String),
    #[error("more than {MAX_INTERNED_KEYS} property keys in one process")]
    TooMany,
}

impl PropKey {
    /// The key `name`, checked and interned.
    pub fn register(name: &str) -> Result<PropKey, PropKeyError> {
        check_key(name)?;
        let full = format!("{PROP_PREFIX}{name}");
        let mut set = INTERNED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = set.get(full.as_str()) {
            return Ok(PropKey(k));
        }
        if set.len() >= MAX_INTERNED_KEYS {
            return Err(PropKeyError::TooMany);
        }
        let k: &'static str = Box::leak(full.into_boxed_str());
        set.insert(k);
        Ok(PropKey(k))
    }

    /// The key `name` if it was registered before (never interns).
    pub fn known(name: &str) -> Option<PropKey> {
        let full = format!("{PROP_PREFIX}{name}");
        let set = INTERNED.lock().unwrap_or_else(|p| p.into_inner());
        set.get(full.as_str()).map(|k| PropKey(k))
    }

    /// The key: `plan`.
    pub fn as_str(self) -> &'static str {
        &self.0[PROP_PREFIX.len()..]
    }

    /// Its dimension's name: `prop.plan`.
    pub fn dimension_name(self) -> &'static str {
        self.0
    }
}

impl fmt::Debug for PropKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PropKey({:?})", self.as_str())
    }
}

impl fmt::Display for PropKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Checks a property key (see the module docs).
pub fn check_key(name: &str) -> Result<(), PropKeyError> {
    if name.is_empty() {
        return Err(PropKeyError::Empty);
    }
    if name.len() > MAX_PROP_KEY_BYTES {
        return Err(PropKeyError::TooLong(name.chars().take(80).collect()));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err(PropKeyError::Character(name.to_owned()));
    }
    Ok(())
}

/// Why a property's value was not kept as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PropRejected {
    /// `props` is not an object: every property of the event is dropped.
    NotObject,
    /// An object, an array, an empty string or one with a control character: dropped.
    BadValue,
    /// Longer than [`MAX_PROP_VALUE_BYTES`]: kept, cut.
    Cut,
}

impl PropRejected {
    /// Every reason.
    pub const ALL: [PropRejected; 3] = [
        PropRejected::NotObject,
        PropRejected::BadValue,
        PropRejected::Cut,
    ];

    /// Its name in metrics and the status: `not_object`, `bad_value`, `cut`.
    pub fn as_str(self) -> &'static str {
        match self {
            PropRejected::NotObject => "not_object",
            PropRejected::BadValue => "bad_value",
            PropRejected::Cut => "cut",
        }
    }
}

/// How many properties were not kept as sent, by reason (shared by the decoders that count
/// into it and whoever reports them).
#[derive(Debug, Default)]
pub struct PropRejections([AtomicU64; 3]);

impl PropRejections {
    /// Counts one.
    pub fn add(&self, r: PropRejected) {
        self.0[r as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The counts, by reason.
    pub fn counts(&self) -> [(PropRejected, u64); 3] {
        PropRejected::ALL.map(|r| (r, self.0[r as usize].load(Ordering::Relaxed)))
    }
}

/// The value a property keeps of `v` (see the module docs): `Ok(None)` for `null`.
pub fn prop_value(v: &serde_json::Value) -> Result<Option<(String, bool)>, PropRejected> {
    use serde_json::Value;
    let text = match v {
        Value::Null => return Ok(None),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(_) | Value::Object(_) => return Err(PropRejected::BadValue),
    };
    if text.is_empty() || text.chars().any(char::is_control) {
        return Err(PropRejected::BadValue);
    }
    Ok(Some(cut(text)))
}

/// `s` cut to at most [`MAX_PROP_VALUE_BYTES`] at a character boundary; true when cut.
fn cut(mut s: String) -> (String, bool) {
    if s.len() <= MAX_PROP_VALUE_BYTES {
        return (s, false);
    }
    let mut end = MAX_PROP_VALUE_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    (s, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_checked_and_interned_once() {
        let a = PropKey::register("plan").expect("plan");
        let b = PropKey::register("plan").expect("again");
        assert!(std::ptr::eq(a.as_str(), b.as_str()), "one copy");
        assert_eq!(PropKey::known("plan"), Some(a));
        assert_eq!(PropKey::known("never-registered-key"), None);
        assert_eq!(PropKey::register(""), Err(PropKeyError::Empty));
        assert!(matches!(
            PropKey::register(&"k".repeat(65)),
            Err(PropKeyError::TooLong(_))
        ));
        for bad in ["a:b", "a b", "é", "a/b"] {
            assert_eq!(
                PropKey::register(bad),
                Err(PropKeyError::Character(bad.into())),
                "{bad}"
            );
        }
        assert!(PropKey::register("utm_source.v-2").is_ok());
    }

    #[test]
    fn values_are_strings_numbers_or_booleans_and_capped() {
        let ok = |v| prop_value(&v);
        assert_eq!(ok(json!("pro")), Ok(Some(("pro".into(), false))));
        assert_eq!(ok(json!(3)), Ok(Some(("3".into(), false))));
        assert_eq!(ok(json!(2.5)), Ok(Some(("2.5".into(), false))));
        assert_eq!(ok(json!(true)), Ok(Some(("true".into(), false))));
        assert_eq!(ok(json!(null)), Ok(None));
        for bad in [json!(""), json!("a\nb"), json!([1]), json!({"a": 1})] {
            assert_eq!(ok(bad.clone()), Err(PropRejected::BadValue), "{bad}");
        }
        let long = "é".repeat(200); // 400 bytes
        let (s, cut) = prop_value(&json!(long)).expect("ok").expect("some");
        assert!(cut);
        assert_eq!(s.len(), 256);
        assert_eq!(s, "é".repeat(128));
    }

    /// Events with a plan (most), some without; visitors repeat.
    fn events() -> Vec<crate::event::Event> {
        let mut rng = fastrand::Rng::with_seed(7);
        (0..3_000)
            .map(|i| {
                let mut e = crate::agg::tests::ev(
                    "pageview",
                    &format!("v{}", rng.u32(0..400)),
                    None,
                    "/",
                    None,
                );
                e.ts += i;
                let plan = ["free", "pro", "team", "enterprise"][rng.usize(0..4)];
                if rng.u8(0..10) > 0 {
                    e.props.push(("plan".into(), plan.into()));
                }
                if rng.u8(0..2) == 0 {
                    e.props
                        .push(("ab".into(), format!("variant-{}", rng.u32(0..30))));
                }
                e
            })
            .collect()
    }

    fn prop_spec(top_n: usize) -> crate::agg::AggSpec {
        let plan = Dimension::Prop(PropKey::register("plan").expect("plan"));
        let ab = Dimension::Prop(PropKey::register("ab").expect("ab"));
        crate::agg::AggSpec {
            segments: crate::agg::SegmentSpec {
                dimensions: vec![Dimension::Country, plan, ab],
                top_n,
            },
            ..Default::default()
        }
    }

    use crate::agg::{Aggregate, Coverage, Dimension, Filter};

    #[test]
    fn a_property_is_a_segment_with_its_own_counts_and_survives_merge_and_storage() {
        let events = events();
        let spec = prop_spec(3);
        let mut one = Aggregate::new();
        for e in &events {
            one.add_with(e, &spec);
        }
        let plan = Dimension::from_name("prop.plan").expect("registered");
        let t = one.segments.table(plan).expect("plan's table");
        for v in ["free", "pro", "team", "enterprise"] {
            let want = events.iter().filter(|e| e.prop("plan") == Some(v)).count() as u64;
            assert_eq!(t.counts().get(v), want, "{v}: the window's count is exact");
        }
        let with_plan = events.iter().filter(|e| e.prop("plan").is_some()).count() as u64;
        let in_table: u64 = t.values().map(|(_, a)| a.events).sum::<u64>() + t.other().events;
        assert_eq!(
            in_table, with_plan,
            "values and other hold every event with a plan"
        );
        assert_eq!(t.values().count(), 3, "top_n values");
        // 30 A/B variants: most in other, and a filter on one says whether it is whole.
        let ab = one
            .segments
            .table(Dimension::from_name("prop.ab").expect("ab"))
            .expect("ab");
        assert!(ab.other().events > 0);
        for v in 0..30 {
            let f = Filter::parse(&format!("prop.ab:variant-{v}")).expect("filter");
            let mut into = Aggregate::new();
            let mut cov = Coverage::default();
            one.fold_segment(&f, &mut into, &mut cov);
            let want = events
                .iter()
                .filter(|e| e.prop("ab") == Some(&format!("variant-{v}")))
                .count() as u64;
            assert_eq!(
                cov.of_at_least, want,
                "variant-{v}: the true count is known"
            );
            assert_eq!(cov.complete(), into.events == want, "variant-{v}");
        }
        // Storage keeps every table, the counts included, and a reader of one table only.
        let back = Aggregate::from_bytes(&one.to_bytes()).expect("decodes");
        assert_eq!(back, one);
        let only =
            Aggregate::decode(&one.to_bytes(), crate::agg::Keep::Dimension(plan)).expect("one");
        assert_eq!(only.segments.table(plan), one.segments.table(plan));
        assert!(only.segments.table(Dimension::Country).is_none());
        // A split merges to the one pass while no more than N values meet (3 plans of 4
        // cannot: the counts and totals still must).
        let (a, b) = events.split_at(1_234);
        let mut left = Aggregate::new();
        let mut right = Aggregate::new();
        a.iter().for_each(|e| left.add_with(e, &spec));
        b.iter().for_each(|e| right.add_with(e, &spec));
        left.merge(&right);
        let m = left.segments.table(plan).expect("merged");
        assert_eq!(m.counts(), t.counts());
        let merged: u64 = m.values().map(|(_, a)| a.events).sum::<u64>() + m.other().events;
        assert_eq!(merged, with_plan);
    }

    #[test]
    fn a_filter_names_a_registered_property_only() {
        PropKey::register("plan").expect("plan");
        let f = Filter::parse("prop.plan:pro").expect("a property filter");
        assert_eq!(f.to_string(), "prop.plan:pro");
        assert!(matches!(
            Filter::parse("prop.not-configured-anywhere:x"),
            Err(crate::agg::FilterError::Dimension(_))
        ));
        assert_eq!(
            PropKey::known("not-configured-anywhere"),
            None,
            "not interned by a filter"
        );
    }
}
