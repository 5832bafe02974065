//! What changed, as the socket sends it: a window or the status as the fields that differ
//! from the version the client holds.
//!
//! Contract:
//! - A change is a shallow JSON merge patch (RFC 7386 on the object's top-level fields): a
//!   field present replaces the client's, `null` removes it, an absent field is unchanged.
//!   Nested objects and lists (a top list, the partitions of the status) are replaced whole
//!   when anything in them changed, so a patch never needs an order or an index.
//! - A window's change always carries its `start` (which window it is). A window the
//!   client may not hold is sent whole: every field, which is also a valid patch.
//! - Patches compose: [`compose`] of the changes of messages `a` then `b` is one patch that
//!   takes a client from before `a` to after `b`, so a socket paced to a display's refresh
//!   rate sends one message for many.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use super::{Status, WindowView};

/// A JSON object: a whole window or status, or the fields of one that changed.
pub type Fields = Map<String, Value>;

/// `value` as a JSON object (empty if it does not serialise to one, which the types here
/// always do).
pub fn fields<T: Serialize>(value: &T) -> Fields {
    match serde_json::to_value(value) {
        Ok(Value::Object(m)) => m,
        _ => Fields::new(),
    }
}

/// The fields of `new` that differ from `old`, `null` for a field `old` has and `new`
/// lacks, and the fields named in `always`; `None` when nothing differs.
pub fn diff(old: &Fields, new: &Fields, always: &[&str]) -> Option<Fields> {
    let mut out = Fields::new();
    for (k, v) in new {
        if old.get(k) != Some(v) {
            out.insert(k.clone(), v.clone());
        }
    }
    for k in old.keys() {
        if !new.contains_key(k) {
            out.insert(k.clone(), Value::Null);
        }
    }
    if out.is_empty() {
        return None;
    }
    for k in always {
        if let Some(v) = new.get(*k) {
            out.insert((*k).to_owned(), v.clone());
        }
    }
    Some(out)
}

/// Apply `patch` to `target`: present fields replace, `null` removes.
pub fn apply(target: &mut Fields, patch: &Fields) {
    for (k, v) in patch {
        if v.is_null() {
            target.remove(k);
        } else {
            target.insert(k.clone(), v.clone());
        }
    }
}

/// One patch for `first` then `then`: the later value of every field wins (a `null` too).
pub fn compose(first: &mut Fields, then: &Fields) {
    for (k, v) in then {
        first.insert(k.clone(), v.clone());
    }
}

/// A window's change from `old` (what the client holds; `None`: it may hold nothing, so
/// the window goes whole) to `new`; `None` when nothing changed.
pub fn window_change(old: Option<&Fields>, new: &Fields) -> Option<Fields> {
    match old {
        Some(old) => diff(old, new, &["start"]),
        None => Some(new.clone()),
    }
}

/// The window a change makes of `held` (`None`: the change must be a whole window).
pub fn apply_window(
    held: Option<&WindowView>,
    change: &Fields,
) -> Result<WindowView, serde_json::Error> {
    patched(held, change)
}

/// The status a change makes of `held` (`None`: the change must be a whole status).
pub fn apply_status(held: Option<&Status>, change: &Fields) -> Result<Status, serde_json::Error> {
    patched(held, change)
}

fn patched<T: Serialize + DeserializeOwned>(
    held: Option<&T>,
    change: &Fields,
) -> Result<T, serde_json::Error> {
    let mut base = held.map(fields).unwrap_or_default();
    apply(&mut base, change);
    serde_json::from_value(Value::Object(base))
}

/// The `start` a window's change names.
pub fn window_start(change: &Fields) -> Option<i64> {
    change.get("start").and_then(Value::as_i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Count, Figures, WindowState};
    use serde_json::json;

    fn view(events: u64, urls: &[(&str, u64)]) -> WindowView {
        WindowView {
            site: None,
            start: 10_000,
            end: 20_000,
            state: WindowState::Live,
            resolution: Default::default(),
            figures: Figures {
                events,
                top_urls: urls
                    .iter()
                    .map(|(k, c)| Count {
                        key: (*k).into(),
                        count: *c,
                    })
                    .collect(),
                ..Figures::default()
            },
            segment: None,
        }
    }

    #[test]
    fn a_change_carries_what_differs_and_the_start_and_rebuilds_the_window() {
        let old = view(3, &[("/a", 2), ("/b", 1)]);
        let new = view(4, &[("/a", 2), ("/b", 2)]);
        let change = window_change(Some(&fields(&old)), &fields(&new)).expect("changed");
        let keys: Vec<&str> = change.keys().map(String::as_str).collect();
        assert_eq!(keys, vec!["events", "start", "top_urls"]);
        assert_eq!(apply_window(Some(&old), &change).expect("window"), new);
        assert_eq!(window_change(Some(&fields(&new)), &fields(&new)), None);
        // A window the client may not hold goes whole, and is one.
        let whole = window_change(None, &fields(&new)).expect("whole");
        assert_eq!(apply_window(None, &whole).expect("window"), new);
        // A change alone is not a window.
        assert!(apply_window(None, &change).is_err());
    }

    #[test]
    fn a_removed_field_is_null_and_composed_patches_equal_their_sequence() {
        let a = fields(&json!({"x": 1, "y": {"k": 1}, "z": 3}));
        let b = fields(&json!({"x": 2, "y": {"k": 1}}));
        let c = fields(&json!({"x": 2, "y": {"k": 2}, "w": 1}));
        let ab = diff(&a, &b, &[]).expect("diff");
        assert_eq!(Value::Object(ab.clone()), json!({"x": 2, "z": null}));
        let bc = diff(&b, &c, &[]).expect("diff");
        let mut steps = a.clone();
        apply(&mut steps, &ab);
        assert_eq!(steps, b);
        apply(&mut steps, &bc);
        assert_eq!(steps, c);
        let mut both = ab.clone();
        compose(&mut both, &bc);
        let mut once = a.clone();
        apply(&mut once, &both);
        assert_eq!(once, c, "one composed patch takes a to c");
        // From any state between the two: the same end.
        let mut from_b = b.clone();
        apply(&mut from_b, &both);
        assert_eq!(from_b, c);
    }
}
