//! The headline figures: one figure ([`Kpi`]) and its change against the comparison period
//! ([`ChangeBadge`]), the totals of the range ([`TotalsPanel`]), visitors now ([`NowKpi`],
//! [`NowPanel`]) and the goals ([`GoalsPanel`]).
//!
//! Contract: components only lay out (see [the panels](super)); uniques, visitors now and
//! conversion come from the server, never from a sum of windows.

use leptos::prelude::*;
use pulseboard_model::proto::{Count, Status, Summary};

use crate::{chart, definitions, figures, format, state::use_app_state};

/// One headline figure.
#[component]
pub fn Kpi(
    /// What the figure is.
    #[prop(into)]
    label: String,
    /// `data-testid` of the value element.
    testid: &'static str,
    /// The figure; `None` while unknown (shown as a dash, without `data-value`).
    #[prop(into)]
    value: Signal<Option<u64>>,
    /// Show it compact (`12.3k`) rather than exact (`12,345`).
    #[prop(optional)]
    big: bool,
    /// A note under the figure.
    #[prop(optional)]
    note: &'static str,
    /// What the figure means (on hover; see [`crate::definitions`]).
    #[prop(optional)]
    definition: &'static str,
) -> impl IntoView {
    let text = move || match value.get() {
        Some(v) if big || v >= 1_000_000 => format::compact(v),
        Some(v) => format::grouped(v),
        None => "—".to_owned(),
    };
    view! {
        <div class="kpi" title=(!definition.is_empty()).then_some(definition)>
            <div class="kpi-label">{label}</div>
            <div
                class="kpi-value"
                data-testid=testid
                data-value=move || value.get().map(|v| v.to_string())
                title=move || value.get().map(format::grouped)
            >
                {text}
            </div>
            {(!note.is_empty()).then(|| view! { <div class="kpi-note">{note}</div> })}
        </div>
    }
}

/// The percent change against the comparison period, when one is chosen and known.
#[component]
pub fn ChangeBadge(
    /// `data-testid` of the badge.
    testid: &'static str,
    /// The change in percent (`None` while unknown, or when the earlier period had none).
    #[prop(into)]
    pct: Signal<Option<f64>>,
) -> impl IntoView {
    let app = use_app_state();
    let shown = move || {
        app.compare.get().is_some()
            && app
                .summary
                .with(|s| s.as_ref().is_some_and(|s| s.compare.is_some()))
    };
    let text = move || {
        let vs = app.compare.get().map(|c| c.label()).unwrap_or_default();
        match pct.get() {
            Some(p) => format!("{} vs {vs} ago", format::percent_change(p)),
            None => format!("— vs {vs} ago"),
        }
    };
    let class = move || match pct.get() {
        Some(p) if p > 0.0 => "change up",
        Some(p) if p < 0.0 => "change down",
        _ => "change flat",
    };
    view! {
        <Show when=shown>
            <div class=class data-testid=testid data-value=move || pct.get().map(|p| p.to_string())>{text}</div>
        </Show>
    }
}

/// One percent change of the summary's comparison (`None` without one).
pub fn change_of(
    app: crate::state::AppState,
    f: fn(&pulseboard_model::proto::Change) -> Option<f64>,
) -> Signal<Option<f64>> {
    Signal::derive(move || {
        app.summary.with(|s| {
            s.as_ref()
                .and_then(|s| s.compare.as_ref())
                .and_then(|c| f(&c.change))
        })
    })
}

/// Totals for the range: events, unique visitors and sessions, late and dead-lettered.
#[component]
pub fn TotalsPanel() -> impl IntoView {
    let app = use_app_state();
    let summary = move |f: fn(&Summary) -> u64| {
        Signal::derive(move || app.summary.with(|s| s.as_ref().map(f)))
    };
    let status = move |f: fn(&Status) -> u64| {
        Signal::derive(move || app.stream.with(|s| s.status.as_ref().map(f)))
    };
    let spark = move || {
        let (from, to) = app.bounds.get();
        let values: Vec<u64> = app
            .stream
            .with(|s| s.range(from, to).map(|w| w.figures.events).collect());
        let pts = chart::spark_points(&values, 200.0, 40.0);
        (chart::area_path(&pts, 40.0), chart::line_path(&pts))
    };
    let change = move |f| change_of(app, f);
    view! {
        <div class="totals">
            <div class="kpi kpi-main" title=definitions::RANGE_EVENTS>
                <div class="kpi-label">{move || format!("Events · last {}", app.range.get().label())}</div>
                <div
                    class="kpi-value"
                    data-testid="total-events"
                    data-value=move || app.total_events.get().to_string()
                    data-from=move || app.bounds.get().0.to_string()
                    data-to=move || app.bounds.get().1.to_string()
                    title=move || format::grouped(app.total_events.get())
                >
                    {move || {
                        let n = app.total_events.get();
                        if n >= 1_000_000 { format::compact(n) } else { format::grouped(n) }
                    }}
                </div>
                <svg class="spark" viewBox="0 0 200 40" preserveAspectRatio="none" aria-hidden="true">
                    <path class="spark-area" d=move || spark().0/>
                    <path class="spark-line" d=move || spark().1/>
                </svg>
                <ChangeBadge testid="change-events" pct=change(|c| c.events_pct)/>
            </div>
            <div class="kpi-with-change">
                <Kpi label="Unique visitors" testid="unique-visitors" value=summary(|s| s.figures.unique_visitors) definition=definitions::UNIQUE_VISITORS/>
                <ChangeBadge testid="change-visitors" pct=change(|c| c.unique_visitors_pct)/>
            </div>
            <div class="kpi-with-change">
                <Kpi label="Unique sessions" testid="unique-sessions" value=summary(|s| s.figures.unique_sessions) definition=definitions::UNIQUE_SESSIONS/>
                <ChangeBadge testid="change-sessions" pct=change(|c| c.unique_sessions_pct)/>
            </div>
            <NowKpi/>
            <Kpi label="Late events" testid="late-events" value=status(|s| s.late_events_total) note="since start, all traffic" definition=definitions::LATE_EVENTS/>
            <Kpi label="Dead-lettered" testid="dead-letters" value=status(|s| s.dead_letters_total) note="since start, all traffic" definition=definitions::DEAD_LETTERS/>
        </div>
    }
}

/// The headline "visitors now", with its definition on hover.
#[component]
pub fn NowKpi(
    /// `data-testid` of the value (`visitors-now`, the headline's).
    #[prop(default = "visitors-now")]
    testid: &'static str,
    /// Show it compact (`12.3k`) rather than exact (`12,345`), as the kiosk does.
    #[prop(optional)]
    big: bool,
) -> impl IntoView {
    let app = use_app_state();
    let value = move || app.now.with(|n| n.as_ref().map(|n| n.visitors));
    let span = move || {
        app.now
            .with(|n| n.as_ref().map(|n| format::span(n.span_ms)))
            .unwrap_or_else(|| "5 min".into())
    };
    let definition = move || {
        app.now
            .with(|n| n.as_ref().map(|n| n.definition.clone()))
            .unwrap_or_default()
    };
    view! {
        <div class="kpi kpi-now" title=definition>
            <div class="kpi-label">
                <span class="live-dot" aria-hidden="true"></span>
                {move || format!("Visitors now · {}", span())}
            </div>
            <div
                class="kpi-value"
                data-testid=testid
                data-value=move || value().map(|v| v.to_string())
            >
                {move || match value() {
                    Some(v) if big || v >= 1_000_000 => format::compact(v),
                    Some(v) => format::grouped(v),
                    None => "—".into(),
                }}
            </div>
            <div class="kpi-note">"hover for the definition"</div>
        </div>
    }
}

/// Visitors now with the pages they are on and where they came from; empty once they left.
#[component]
pub fn NowPanel(
    /// Rows of each list.
    #[prop(default = 8)]
    rows: usize,
) -> impl IntoView {
    let app = use_app_state();
    let list = move |pages: bool| {
        app.now.with(|n| {
            n.as_ref()
                .map(|n| {
                    let l = if pages { &n.pages } else { &n.sources };
                    l.iter().take(rows).cloned().collect::<Vec<Count>>()
                })
                .unwrap_or_default()
        })
    };
    let rows_of = move |pages: bool| {
        let items = list(pages);
        let max = items.first().map(|c| c.count).unwrap_or(0);
        if items.is_empty() {
            return view! { <li class="empty">"Nobody right now"</li> }.into_any();
        }
        items
            .into_iter()
            .map(|c| {
                view! {
                    <li class="row" data-key=c.key.clone() data-count=c.count.to_string()>
                        <span class="row-bar" style:width=format!("{:.1}%", format::share(c.count, max))></span>
                        <span class="row-key" title=c.key.clone()>{format::ellipsize(&c.key, 48)}</span>
                        <span class="row-count">{format::compact(c.count)}</span>
                    </li>
                }
            })
            .collect_view()
            .into_any()
    };
    view! {
        <div class="now-panel">
            <NowKpi testid="now-visitors"/>
            <div class="now-lists">
                <div>
                    <h3 class="sub-title">"Active pages"</h3>
                    <ol class="toplist now-pages" data-testid="now-pages">{move || rows_of(true)}</ol>
                </div>
                <div>
                    <h3 class="sub-title">"Sources"</h3>
                    <ol class="toplist now-sources" data-testid="now-sources">{move || rows_of(false)}</ol>
                </div>
            </div>
        </div>
    }
}

/// The goals over the range: completions, converting visitors, conversion rate.
#[component]
pub fn GoalsPanel() -> impl IntoView {
    let app = use_app_state();
    let rows = Memo::new(move |_| {
        let (from, to) = app.bounds.get();
        let info = app
            .info
            .with(|i| i.as_ref().map(|i| i.goals.clone()).unwrap_or_default());
        app.summary.with(|sum| {
            app.stream
                .with(|s| figures::goal_rows(&info, s.range(from, to), sum.as_ref()))
        })
    });
    move || {
        let rows = rows.get();
        if rows.is_empty() {
            return view! {
                <p class="empty" data-testid="goals-empty">"No goals: start the server with --goal signup (an event type) or --goal NAME=url:/path*."</p>
            }
            .into_any();
        }
        view! {
            <table class="goals" data-testid="goals">
                <thead>
                    <tr>
                        <th>"Goal"</th>
                        <th class="num">"Completions"</th>
                        <th class="num" title="Distinct visitors who completed it (HyperLogLog)">"Converting"</th>
                        <th class="num" title="Converting visitors ÷ unique visitors of the range, both HyperLogLog">"Rate"</th>
                    </tr>
                </thead>
                <tbody>
                    {rows
                        .into_iter()
                        .map(|r| {
                            view! {
                                <tr
                                    data-goal=r.name.clone()
                                    data-completions=r.completions.to_string()
                                    data-converting=r.converting.map(|c| c.to_string())
                                    data-rate=r.rate.map(|x| x.to_string())
                                >
                                    <td title=r.rule.clone()>{r.name.clone()}</td>
                                    <td class="num">{format::grouped(r.completions)}</td>
                                    <td class="num">{r.converting.map(format::grouped).unwrap_or_else(|| "—".into())}</td>
                                    <td class="num rate">{r.rate.map(format::percent).unwrap_or_else(|| "—".into())}</td>
                                </tr>
                            }
                        })
                        .collect_view()}
                </tbody>
            </table>
        }
        .into_any()
    }
}
