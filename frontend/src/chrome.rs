//! The chrome around the panels: cards, the brand with its demo badge, the range picker,
//! the connection state, the last-update line, the status strip and the segment bar.
//!
//! Contract: components only lay out; they read the shared
//! [`AppState`](crate::state::AppState) from context, take figures from `figures` and text
//! from `format` and `zone`. The `data-testid` hooks listed in the crate docs stay as they
//! are.

use leptos::prelude::*;

use pulseboard_model::agg::OTHER_SITES;
use pulseboard_model::proto::{Compare, SiteFigures};

use crate::{
    figures, format,
    route::Range,
    state::{set_filter, set_site, use_app_state},
    zone,
};

/// Puts `name=value` (or nothing) in the address bar without reloading, so the view can be
/// bookmarked or pinned on a wall display.
fn set_url_param(name: &str, value: Option<&str>) {
    let location = window().location();
    let search = location.search().unwrap_or_default();
    let path = location.pathname().unwrap_or_default();
    let next = format!(
        "{path}{}",
        crate::feeds::urls::with_query_param(&search, name, value)
    );
    if let Ok(history) = window().history() {
        let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&next));
    }
}

/// A titled card of the dashboard grid.
#[component]
pub fn Card(
    /// Heading.
    title: &'static str,
    /// Extra classes (grid spans).
    #[prop(optional)]
    class: &'static str,
    /// Content.
    children: Children,
) -> impl IntoView {
    view! {
        <section class=format!("card {class}")>
            <h2 class="card-title">{title}</h2>
            {children()}
        </section>
    }
}

/// Logo, name and the demo badge.
#[component]
pub fn Brand() -> impl IntoView {
    let app = use_app_state();
    let demo = move || {
        app.stream
            .with(|s| s.status.as_ref().is_some_and(|st| st.demo))
    };
    view! {
        <div class="brand">
            <svg class="logo" viewBox="0 0 24 24" aria-hidden="true">
                <path d="M2 13h4l3-8 4 14 3-9 2 3h4" fill="none" stroke="currentColor" stroke-width="2.4" stroke-linecap="round" stroke-linejoin="round"/>
            </svg>
            <h1>"Pulseboard"</h1>
            <Show when=demo>
                <span class="badge demo" data-testid="demo-badge" title="The server is running on its built-in traffic generator">"demo data"</span>
            </Show>
        </div>
    }
}

/// The range buttons (5m / 15m / 1h / 24h / 7d / 30d); on a share link's page, only those
/// within the link's range (the server refuses the others).
#[component]
pub fn RangePicker() -> impl IntoView {
    let app = use_app_state();
    let longest = app.session.with_untracked(|s| {
        s.as_ref()
            .and_then(|s| s.link.as_ref())
            .and_then(|l| l.pinned_range())
    });
    view! {
        <div class="ranges" role="group" aria-label="Time range">
            {Range::ALL
                .into_iter()
                .filter(|r| longest.is_none_or(|l| r.ms() <= l.ms()))
                .map(|r| {
                    let active = move || app.range.get() == r;
                    view! {
                        <button
                            type="button"
                            data-testid=format!("range-{}", r.label())
                            class:active=active
                            aria-pressed=move || if active() { "true" } else { "false" }
                            on:click=move |_| {
                                app.range.set(r);
                                set_url_param("range", Some(r.label()));
                            }
                        >
                            {r.label()}
                        </button>
                    }
                })
                .collect_view()}
        </div>
    }
}

/// The site shown: a switcher between every site the range's summary lists and "All
/// sites" (`interactive`), or on a wall display or an embed the site it is pinned to. It
/// says when sites beyond `--max-sites` are counted together under "(other sites)", and
/// when the site shown may be among them.
#[component]
pub fn SiteSwitcher(
    /// A select to switch with; else only the pinned site is named.
    #[prop(optional)]
    interactive: bool,
) -> impl IntoView {
    let app = use_app_state();
    // The sites of the last summary (kept while the next one loads).
    let known = RwSignal::new(Vec::<SiteFigures>::new());
    Effect::new(move |_| {
        if let Some(s) = app.summary.get() {
            known.set(s.sites.clone());
        }
    });
    let note = move || {
        app.summary.with(|s| {
            s.as_ref()
                .and_then(|s| s.site.as_ref())
                .filter(|n| !n.complete)
                .map(|n| {
                    format!(
                        "Some windows had more sites than --max-sites: up to {} events of {} may be counted under “(other sites)”.",
                        n.missing_at_most, n.site
                    )
                })
        })
    };
    move || {
        let sites = known.get();
        let current = app.site.get();
        if sites.is_empty() && current.is_none() {
            return ().into_any();
        }
        if !interactive {
            return match current {
                Some(site) => view! {
                    <span class="site-chip" data-testid="site-pinned"><span class="filter-label">"Site"</span><b>{site}</b></span>
                }
                .into_any(),
                None => ().into_any(),
            };
        }
        let overflow = sites
            .iter()
            .find(|s| s.site == OTHER_SITES)
            .map(|s| s.events);
        let mut names: Vec<String> = sites.iter().map(|s| s.site.clone()).collect();
        if let Some(c) = current.clone().filter(|c| !names.contains(c)) {
            names.push(c);
        }
        let events = move |name: &str| {
            sites
                .iter()
                .find(|s| s.site == name)
                .map_or(0, |s| s.events)
        };
        view! {
            <div class="site-bar" data-testid="site-bar">
                <label class="filter-label" for="site-switcher">"Site"</label>
                <select
                    id="site-switcher"
                    data-testid="site-switcher"
                    on:change=move |e| {
                        let v = event_target_value(&e);
                        set_site(app, (!v.is_empty()).then_some(v));
                    }
                >
                    <option value="" selected=current.is_none()>"All sites"</option>
                    {names
                        .into_iter()
                        .map(|name| {
                            let label = format!("{name} ({})", format::grouped(events(&name)));
                            let selected = current.as_deref() == Some(name.as_str());
                            view! { <option value=name selected=selected>{label}</option> }
                        })
                        .collect_view()}
                </select>
                {overflow.map(|n| view! {
                    <span class="segment-note" data-testid="other-sites-note" role="note">
                        {format!("{} events of sites beyond --max-sites are counted together under “(other sites)”.", format::grouped(n))}
                    </span>
                })}
                {move || note().map(|n| view! { <span class="segment-note" data-testid="site-note" role="note">{n}</span> })}
            </div>
        }
        .into_any()
    }
}

/// Compare with one day or one week earlier (or not): the events chart overlays the
/// earlier period and the totals show the change. The choice goes into the URL
/// (`?compare=1d|7d`), so a kiosk or an embed can be pinned to it.
#[component]
pub fn ComparePicker() -> impl IntoView {
    let app = use_app_state();
    let choices: [(Option<Compare>, &'static str, &'static str); 3] = [
        (None, "off", "no comparison"),
        (Some(Compare::Day), "1d", "vs 1 day ago"),
        (Some(Compare::Week), "7d", "vs 1 week ago"),
    ];
    view! {
        <div class="ranges compare" role="group" aria-label="Compare with">
            <span class="compare-label">"compare"</span>
            {choices
                .into_iter()
                .map(|(c, id, title)| {
                    let active = move || app.compare.get() == c;
                    view! {
                        <button
                            type="button"
                            data-testid=format!("compare-{id}")
                            title=title
                            class:active=active
                            aria-pressed=move || if active() { "true" } else { "false" }
                            on:click=move |_| {
                                app.compare.set(c);
                                set_url_param("compare", c.map(|c| c.label()));
                            }
                        >
                            {id}
                        </button>
                    }
                })
                .collect_view()}
        </div>
    }
}

/// The banner of the alert rules firing now (from the status, pushed over the socket).
#[component]
pub fn AlertBanner() -> impl IntoView {
    let app = use_app_state();
    let alerts = Memo::new(move |_| {
        app.stream.with(|s| {
            s.status
                .as_ref()
                .map(|st| st.alerts.clone())
                .unwrap_or_default()
        })
    });
    view! {
        <Show when=move || alerts.with(|a| !a.is_empty())>
            <div class="alert-banner" data-testid="alert-banner" role="alert">
                {move || {
                    alerts
                        .get()
                        .into_iter()
                        .map(|a| {
                            let since = format!("since {}", zone::time_of_day(a.since, false));
                            view! {
                                <div class="alert-item" data-testid="alert" data-rule=a.rule.clone() data-kind=a.kind.clone()>
                                    <span class="alert-icon" aria-hidden="true">"▲"</span>
                                    <strong class="alert-rule">{a.rule.clone()}</strong>
                                    <span class="alert-message">{a.message.clone()}</span>
                                    <span class="alert-since">{since}</span>
                                </div>
                            }
                        })
                        .collect_view()
                }}
            </div>
        </Show>
    }
}

/// The socket state: exactly `connecting`, `live` or `reconnecting`.
#[component]
pub fn ConnectionState() -> impl IntoView {
    let app = use_app_state();
    let state = move || app.conn.get().as_str();
    view! {
        <span class=move || format!("conn-state {}", state()) data-testid="connection-state" role="status">
            {state}
        </span>
    }
}

/// A small dot for the socket state (embeds), with the state as its tooltip.
#[component]
pub fn ConnectionDot() -> impl IntoView {
    let app = use_app_state();
    let state = move || app.conn.get().as_str();
    view! { <span class=move || format!("conn-dot {}", state()) title=state aria-label=state></span> }
}

/// "updated N s ago", ticking every second.
#[component]
pub fn LastUpdate() -> impl IntoView {
    let app = use_app_state();
    let text = move || match app.last_message.get() {
        Some(at) => format!("updated {}", format::ago(app.clock.get() - at)),
        None => "waiting for data".to_owned(),
    };
    view! { <span class="last-update" data-testid="last-update">{text}</span> }
}

/// Broker, lag, watermark and throughput under the dashboard header.
#[component]
pub fn StatusStrip() -> impl IntoView {
    let app = use_app_state();
    let status = Memo::new(move |_| app.stream.with(|s| s.status.clone()));
    let broker = move || match status.get() {
        Some(s) => figures::broker_health(&s),
        None => ("", "—".to_owned()),
    };
    let lag = move || {
        status
            .get()
            .and_then(|s| figures::total_lag(&s))
            .map(|l| format::grouped(l as u64))
            .unwrap_or_else(|| "—".into())
    };
    let watermark = move || {
        status
            .get()
            .and_then(|s| s.watermark)
            .map(|w| zone::time_of_day(w, true))
            .unwrap_or_else(|| "—".into())
    };
    let rate = move || {
        status
            .get()
            .map(|s| format::rate(s.events_per_sec))
            .unwrap_or_else(|| "—".into())
    };
    view! {
        <div class="strip">
            <div class="fact">
                <span class="fact-label">"Broker"</span>
                <span class=move || format!("fact-value broker {}", broker().0) data-testid="broker">{move || broker().1}</span>
            </div>
            <div class="fact" title=crate::definitions::LAG>
                <span class="fact-label">"Lag"</span>
                <span class="fact-value" data-testid="lag">{lag}</span>
            </div>
            <div class="fact" title=crate::definitions::WATERMARK>
                <span class="fact-label">"Watermark"</span>
                <span class="fact-value" data-testid="watermark">{watermark}</span>
            </div>
            <div class="fact" title=crate::definitions::THROUGHPUT>
                <span class="fact-label">"Throughput"</span>
                <span class="fact-value" data-testid="events-per-sec">{rate}</span>
            </div>
        </div>
    }
}

/// The page's segment: what it is, a button back to all traffic, and a warning when its
/// figures miss events of the value (it fell into a window's "other" bucket). Without a
/// segment, on the dashboard, a hint that rows can be clicked.
#[component]
pub fn FilterBar(
    /// Show the hint when there is no segment, and the button to leave it.
    #[prop(optional)]
    interactive: bool,
) -> impl IntoView {
    let app = use_app_state();
    let note = move || {
        app.summary.with(|s| {
            s.as_ref()
                .and_then(|s| s.segment.as_ref())
                .and_then(figures::segment_note)
        })
    };
    move || {
        match app.filter.get() {
        None if interactive => view! {
            <div class="filter-bar hint" data-testid="filter-hint">
                "Click a country, device, event type or referrer to see only that segment."
            </div>
        }
        .into_any(),
        None => ().into_any(),
        Some(f) => view! {
            <div class="filter-bar" data-testid="filter-bar" data-filter=f.to_string()>
                <span class="filter-chip">
                    <span class="filter-label">"Segment"</span>
                    <b>{figures::filter_label(&f)}</b>
                    {interactive.then(|| view! {
                        <button type="button" class="filter-clear" data-testid="filter-clear" title="Show all traffic" on:click=move |_| set_filter(app, None)>"✕"</button>
                    })}
                </span>
                {move || note().map(|n| view! { <span class="segment-note" data-testid="segment-note" role="note">{n}</span> })}
            </div>
        }
        .into_any(),
    }
    }
}
