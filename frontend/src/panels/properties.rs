//! The Properties panel ([`PropertiesPanel`]): pick a custom property (`--property`), see
//! its top values over the range with their events and visitors; a value's row shows only
//! that value's traffic when clicked (`filter=prop.KEY:VALUE`).
//!
//! Contract: the values come from the range's summary (`properties`, reloaded every 5 s and
//! when the range changes); the panel says when values were kept in "other" by some window
//! (their visitors are then a lower bound), when the page shows a segment (whose figures
//! keep no properties), and when the server keeps none.

use leptos::prelude::*;
use pulseboard_model::agg::Filter;
use pulseboard_model::proto::PropertyFigures;

use crate::format;
use crate::state::{set_filter, use_app_state};

/// The filter of value `value` of property `key`.
fn filter_of(key: &str, value: &str) -> Option<Filter> {
    Filter::parse_registering(&format!("prop.{key}:{value}")).ok()
}

/// What the panel says instead of values, if anything.
fn empty_text(keys: &[String], segment: bool, figures: Option<&PropertyFigures>) -> Option<String> {
    if keys.is_empty() {
        return Some("No property is kept: start the server with --property KEY".into());
    }
    if segment {
        return Some(
            "Properties are counted for all traffic: clear the segment to see them".into(),
        );
    }
    match figures {
        None => Some("Loading…".into()),
        Some(f) if f.values.is_empty() => {
            Some("No event carried this property in the range".into())
        }
        Some(_) => None,
    }
}

/// The Properties panel.
#[component]
pub fn PropertiesPanel(
    /// How many values at most.
    #[prop(default = 10)]
    rows: usize,
) -> impl IntoView {
    let app = use_app_state();
    let keys = Memo::new(move |_| {
        app.info
            .with(|i| i.as_ref().map(|i| i.properties.clone()).unwrap_or_default())
    });
    let chosen = RwSignal::new(None::<String>);
    let key = Memo::new(move |_| {
        let keys = keys.get();
        chosen
            .get()
            .filter(|k| keys.contains(k))
            .or_else(|| keys.first().cloned())
    });
    let figures = Memo::new(move |_| {
        let k = key.get()?;
        app.summary.with(|s| {
            s.as_ref()
                .and_then(|s| s.properties.iter().find(|p| p.key == k).cloned())
        })
    });
    let picker = move || {
        let keys = keys.get();
        (keys.len() > 1).then(|| {
            let current = key.get().unwrap_or_default();
            view! {
                <select
                    class="property-key"
                    data-testid="property-key"
                    aria-label="Property"
                    on:change=move |e| chosen.set(Some(event_target_value(&e)))
                >
                    {keys
                        .into_iter()
                        .map(|k| {
                            let selected = k == current;
                            view! { <option value=k.clone() selected=selected>{k.clone()}</option> }
                        })
                        .collect_view()}
                </select>
            }
        })
    };
    let body = move || {
        let segment = app.filter.with(Option::is_some);
        let text = keys.with(|k| figures.with(|f| empty_text(k, segment, f.as_ref())));
        if let Some(t) = text {
            return view! { <p class="empty" data-testid="property-empty">{t}</p> }.into_any();
        }
        let Some(f) = figures.get() else {
            return ().into_any();
        };
        let max = f.values.first().map_or(0, |v| v.events);
        let key = f.key.clone();
        let clickable = !app.is_link();
        let rows_view = f
            .values
            .iter()
            .take(rows)
            .map(|v| {
                let target = filter_of(&key, &v.value).filter(|_| clickable);
                let title = if v.complete {
                    format!("Show only {key} = {}", v.value)
                } else {
                    format!(
                        "Some windows kept {} in \"other\": its visitors are at least this many",
                        v.value
                    )
                };
                let on_click = move |_| {
                    if let Some(t) = target.clone() {
                        set_filter(app, Some(t));
                    }
                };
                let visitors = if v.complete {
                    format::compact(v.unique_visitors)
                } else {
                    format!("≥{}", format::compact(v.unique_visitors))
                };
                view! {
                    <li class="row clickable" role="button" title=title on:click=on_click
                        data-key=v.value.clone() data-count=v.events.to_string()
                        data-visitors=v.unique_visitors.to_string()>
                        <span class="row-bar" style:width=format!("{:.1}%", format::share(v.events, max))></span>
                        <span class="row-key">{format::ellipsize(&v.value, 48)}</span>
                        <span class="row-count" title="events">{format::compact(v.events)}</span>
                        <span class="row-count row-visitors" title="visitors">{visitors}</span>
                    </li>
                }
            })
            .collect_view();
        let other = (f.other_events > 0).then(|| {
            view! {
                <li class="row other" data-testid="property-other" data-count=f.other_events.to_string()>
                    <span class="row-key">"(other values)"</span>
                    <span class="row-count">{format::compact(f.other_events)}</span>
                    <span class="row-count row-visitors"></span>
                </li>
            }
        });
        let note = (!f.complete).then(|| {
            view! {
                <p class="note" data-testid="property-note">
                    "Some values fell into \"other\" in some windows (more than --segment-top values \
                     in a window): their visitors are a lower bound (≥)."
                </p>
            }
        });
        view! {
            <ol class="toplist properties" data-testid="property-values" data-key=key>
                <li class="row head"><span class="row-key">"Value"</span><span class="row-count">"Events"</span><span class="row-count row-visitors">"Visitors"</span></li>
                {rows_view}
                {other}
            </ol>
            {note}
        }
        .into_any()
    };
    view! {
        <div class="properties-panel" data-testid="properties">
            {picker}
            {body}
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulseboard_model::agg::Dimension;

    #[test]
    fn the_panel_says_why_it_shows_no_values() {
        let keys = vec!["plan".to_owned()];
        assert!(empty_text(&[], false, None).is_some_and(|t| t.contains("--property")));
        assert!(empty_text(&keys, true, None).is_some_and(|t| t.contains("segment")));
        assert_eq!(empty_text(&keys, false, None).as_deref(), Some("Loading…"));
        let f = PropertyFigures::default();
        assert!(empty_text(&keys, false, Some(&f)).is_some_and(|t| t.contains("No event")));
        let f = PropertyFigures {
            values: vec![Default::default()],
            ..f
        };
        assert_eq!(empty_text(&keys, false, Some(&f)), None);
        let t = filter_of("plan", "pro").expect("a filter");
        assert_eq!(t.to_string(), "prop.plan:pro");
        assert!(matches!(t.dimension, Dimension::Prop(_)));
    }
}
