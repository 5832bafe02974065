//! The panels: headline figures, the totals, visitors now, the goals, the events chart, the
//! top lists and the pipeline status. Each can stand alone (the embeds show one each).
//! Every panel shows the page's segment when it has one; the rows of the country, device,
//! type and referrer lists set it when clicked (when the server segments that dimension).
//!
//! Contract: components only lay out; they read the shared
//! [`AppState`](crate::state::AppState) from context and take every figure from `figures`,
//! the chart's whole layout from [`chart::events_layout`] and every text from `format` and
//! `zone`. The `data-testid` hooks listed in the crate docs stay as they are.

use leptos::prelude::*;
use pulseboard_model::agg::Dimension;
use pulseboard_model::proto::{Count, Status, Summary};

use crate::{
    chart::{self, EVENTS_H, EVENTS_W},
    figures, format,
    route::Panel,
    state::{set_filter, use_app_state},
    zone,
};

/// One headline figure.
#[component]
pub fn Kpi(
    /// What the figure is.
    label: &'static str,
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
) -> impl IntoView {
    let text = move || match value.get() {
        Some(v) if big || v >= 1_000_000 => format::compact(v),
        Some(v) => format::grouped(v),
        None => "—".to_owned(),
    };
    view! {
        <div class="kpi">
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
            <div class="kpi kpi-main">
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
                <Kpi label="Unique visitors" testid="unique-visitors" value=summary(|s| s.figures.unique_visitors)/>
                <ChangeBadge testid="change-visitors" pct=change(|c| c.unique_visitors_pct)/>
            </div>
            <div class="kpi-with-change">
                <Kpi label="Unique sessions" testid="unique-sessions" value=summary(|s| s.figures.unique_sessions)/>
                <ChangeBadge testid="change-sessions" pct=change(|c| c.unique_sessions_pct)/>
            </div>
            <NowKpi/>
            <Kpi label="Late events" testid="late-events" value=status(|s| s.late_events_total) note="since start, all traffic"/>
            <Kpi label="Dead-lettered" testid="dead-letters" value=status(|s| s.dead_letters_total) note="since start, all traffic"/>
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

/// Events per window over the range, as SVG bars colored by window state; the current
/// window grows live. Long ranges merge windows so at most `max_bars` bars are drawn.
#[component]
pub fn EventsChart(
    /// Most bars to draw; windows are merged into wider bars above it.
    #[prop(default = 360)]
    max_bars: usize,
) -> impl IntoView {
    let app = use_app_state();
    let tz = zone::offset_ms();
    let model = Memo::new(move |_| {
        let bounds = app.bounds.get();
        let earlier = app.earlier.with(|e| figures::bars(e.iter()));
        let marks: Vec<i64> = app.annotations.with(|a| a.iter().map(|a| a.ts).collect());
        app.stream.with(|s| {
            let windows = figures::bars(s.range(bounds.0, bounds.1));
            chart::events_layout_with(
                &windows,
                bounds,
                s.window_ms,
                max_bars,
                tz,
                &earlier,
                &marks,
            )
        })
    });
    let compare_path = move || model.with(|m| chart::line_path(&m.compare));
    let compare_label = move || {
        app.compare.get().map(|c| {
            format!(
                "{} earlier",
                if c.label() == "1d" { "1 day" } else { "1 week" }
            )
        })
    };
    let markers = move || {
        let notes = app.annotations.get();
        model.with(|m| {
            m.markers
                .iter()
                .filter_map(|(t, x)| {
                    let a = notes.iter().find(|a| a.ts == *t)?;
                    let tip = format!("{} · {}", zone::time_of_day(a.ts, true), a.text);
                    let flip = *x > EVENTS_W * 0.8;
                    Some(view! {
                        <div
                            class="annotation"
                            class:flip=flip
                            data-testid="annotation"
                            data-ts=a.ts.to_string()
                            data-id=a.id.to_string()
                            style:left=format!("{:.3}%", x / EVENTS_W * 100.0)
                            title=tip
                        >
                            <span class="annotation-label">{a.text.clone()}</span>
                        </div>
                    })
                })
                .collect_view()
        })
    };
    let pct = |v: f64, of: f64| format!("{:.3}%", v / of * 100.0);
    let bars = move || {
        model.with(|m| {
            m.bars
                .iter()
                .map(|(b, r)| {
                    let state = b.state.as_str();
                    let tip = format!(
                        "<title>{}–{} · {} events · {}</title>",
                        zone::time_of_day(b.start, true),
                        zone::time_of_day(b.end, true),
                        format::grouped(b.events),
                        state
                    );
                    view! {
                        <rect
                            data-testid="bar"
                            data-start=b.start.to_string()
                            data-events=b.events.to_string()
                            data-state=state
                            class=format!("bar {state}")
                            x=format!("{:.2}", r.x)
                            y=format!("{:.2}", r.y)
                            width=format!("{:.2}", r.w)
                            height=format!("{:.2}", r.h)
                            inner_html=tip
                        ></rect>
                    }
                })
                .collect_view()
        })
    };
    let grid = move || {
        model.with(|m| {
            m.y_ticks
                .iter()
                .map(|(_, y)| {
                    let d = chart::line_path(&[(0.0, *y), (EVENTS_W, *y)]);
                    view! { <path class="gridline" d=d vector-effect="non-scaling-stroke"></path> }
                })
                .collect_view()
        })
    };
    let y_labels = move || {
        model.with(|m| {
            m.y_ticks
                .iter()
                .map(|(count, y)| view! { <span class="y-label" style:top=pct(*y, EVENTS_H)>{format::compact(*count)}</span> })
                .collect_view()
        })
    };
    let x_labels = move || {
        model.with(|m| {
            m.x_ticks
                .iter()
                .map(|(t, x)| view! { <span class="x-label" style:left=pct(*x, EVENTS_W)>{zone::time_of_day(*t, false)}</span> })
                .collect_view()
        })
    };
    let legend_note = move || {
        model.with(|m| {
            (m.bucket_ms != m.window_ms).then(|| format!("one bar = {}", format::span(m.bucket_ms)))
        })
    };
    let empty = move || model.with(|m| m.bars.is_empty());
    view! {
        <div class="chart">
            <div class="chart-plot">
                <svg
                    class="chart-svg"
                    data-testid="events-chart"
                    viewBox=format!("0 0 {EVENTS_W} {EVENTS_H}")
                    preserveAspectRatio="none"
                    role="img"
                    aria-label="Events per window"
                >
                    {grid}
                    <path class="axis" d=chart::line_path(&[(0.0, EVENTS_H), (EVENTS_W, EVENTS_H)]) vector-effect="non-scaling-stroke"></path>
                    {bars}
                    <Show when=move || model.with(|m| !m.compare.is_empty())>
                        <path
                            class="compare-line"
                            data-testid="compare-line"
                            d=compare_path
                            vector-effect="non-scaling-stroke"
                        ></path>
                    </Show>
                </svg>
                {markers}
                {y_labels}
                <Show when=empty>
                    <div class="chart-empty">"Waiting for events…"</div>
                </Show>
            </div>
            <div class="x-axis">{x_labels}</div>
            <div class="legend">
                <span class="key final">"final"</span>
                <span class="key live">"live"</span>
                <span class="key revised">"revised"</span>
                {move || compare_label().map(|l| view! { <span class="key compare">{l}</span> })}
                <span class="legend-note">{legend_note}</span>
            </div>
        </div>
    }
}

/// One panel's content: what a dashboard card holds and what an embed shows alone.
#[component]
pub fn PanelBody(
    /// Which panel.
    panel: Panel,
    /// Rows of a top list.
    #[prop(default = 10)]
    rows: usize,
    /// Most bars of the events chart.
    #[prop(default = 360)]
    max_bars: usize,
) -> impl IntoView {
    let list = |kind| view! { <TopList kind=kind rows=rows/> }.into_any();
    match panel {
        Panel::Events => view! { <EventsChart max_bars=max_bars/> }.into_any(),
        Panel::Totals => view! { <TotalsPanel/> }.into_any(),
        Panel::Now => view! { <NowPanel rows=rows/> }.into_any(),
        Panel::Goals => view! { <GoalsPanel/> }.into_any(),
        Panel::Pages => list(ListKind::Pages),
        Panel::Referrers => list(ListKind::Referrers),
        Panel::Countries => list(ListKind::Countries),
        Panel::Devices => list(ListKind::Devices),
        Panel::Types => list(ListKind::Types),
        Panel::Status => view! { <StatusPanel/> }.into_any(),
    }
}

/// Which top list a [`TopList`] shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// Page views by URL.
    Pages,
    /// Events by referrer.
    Referrers,
    /// Events by country.
    Countries,
    /// Events by device.
    Devices,
    /// Events by type.
    Types,
}

impl ListKind {
    /// The segment dimension its rows filter by, if any.
    pub fn dimension(self) -> Option<Dimension> {
        match self {
            ListKind::Pages => None,
            ListKind::Referrers => Some(Dimension::Referrer),
            ListKind::Countries => Some(Dimension::Country),
            ListKind::Devices => Some(Dimension::Device),
            ListKind::Types => Some(Dimension::Type),
        }
    }

    fn testid(self) -> &'static str {
        match self {
            ListKind::Pages => "top-pages",
            ListKind::Referrers => "top-referrers",
            ListKind::Countries => "top-countries",
            ListKind::Devices => "top-devices",
            ListKind::Types => "event-types",
        }
    }
}

/// A ranked list with a proportional bar behind each row.
#[component]
pub fn TopList(
    /// Which list.
    kind: ListKind,
    /// How many rows at most.
    #[prop(default = 10)]
    rows: usize,
) -> impl IntoView {
    let app = use_app_state();
    let items = Memo::new(move |_| {
        let (from, to) = app.bounds.get();
        if kind == ListKind::Types {
            return app
                .stream
                .with(|s| figures::type_counts(s.range(from, to), rows));
        }
        let from_summary = app.summary.with(|s| {
            s.as_ref().map(|s| {
                let f = &s.figures;
                let list = match kind {
                    ListKind::Pages => &f.top_urls,
                    ListKind::Referrers => &f.top_referrers,
                    ListKind::Countries => &f.countries,
                    _ => &f.devices,
                };
                list.iter().take(rows).cloned().collect::<Vec<Count>>()
            })
        });
        from_summary.unwrap_or_else(|| {
            app.stream.with(|s| {
                figures::merge_counts(
                    s.range(from, to).map(|w| match kind {
                        ListKind::Pages => w.figures.top_urls.as_slice(),
                        ListKind::Referrers => w.figures.top_referrers.as_slice(),
                        ListKind::Countries => w.figures.countries.as_slice(),
                        _ => w.figures.devices.as_slice(),
                    }),
                    rows,
                )
            })
        })
    });
    // Rows filter by their value when the server segments this list's dimension.
    let dim = Memo::new(move |_| {
        kind.dimension().filter(|d| {
            app.info.with(|i| {
                i.as_ref()
                    .is_some_and(|i| i.dimensions.iter().any(|n| n == d.name()))
            })
        })
    });
    let rows_view = move || {
        let dim = dim.get();
        let current = app.filter.get();
        items.with(|items| {
            let max = items.first().map(|c| c.count).unwrap_or(0);
            if items.is_empty() {
                return view! { <li class="empty">"No data yet"</li> }.into_any();
            }
            items
                .iter()
                .map(|c| {
                    let label = display_key(kind, &c.key);
                    let target = dim.and_then(|d| figures::filter_for(d, &c.key));
                    let active = dim.is_some_and(|d| figures::is_filtered(current.as_ref(), d, &c.key));
                    let clickable = target.is_some();
                    let title = target.as_ref().map(|f| {
                        if active {
                            "Showing this segment: click to show all traffic".to_owned()
                        } else {
                            format!("Show only {}", figures::filter_label(f))
                        }
                    });
                    let on_click = move |_| {
                        if let Some(f) = target.clone() {
                            set_filter(app, if active { None } else { Some(f) });
                        }
                    };
                    view! {
                        <li
                            class="row"
                            class:clickable=clickable
                            class:active=active
                            role=clickable.then_some("button")
                            title=title
                            on:click=on_click
                            data-key=c.key.clone()
                            data-count=c.count.to_string()
                        >
                            <span class="row-bar" style:width=format!("{:.1}%", format::share(c.count, max))></span>
                            <span class="row-key" title=c.key.clone()>{label}</span>
                            <span class="row-count" title=format::grouped(c.count)>{format::compact(c.count)}</span>
                        </li>
                    }
                })
                .collect_view()
                .into_any()
        })
    };
    view! { <ol class=format!("toplist {}", kind.testid()) data-testid=kind.testid()>{rows_view}</ol> }
}

fn display_key(kind: ListKind, key: &str) -> String {
    match kind {
        ListKind::Referrers if key.is_empty() => "(direct)".to_owned(),
        ListKind::Referrers => {
            let k = key
                .trim_start_matches("https://")
                .trim_start_matches("http://");
            format::ellipsize(k.trim_end_matches('/'), 48)
        }
        _ if key.is_empty() => "(none)".to_owned(),
        _ => format::ellipsize(key, 60),
    }
}

/// The pipeline: broker, watermark, throughput, per-partition offsets and lag, dead letters.
#[component]
pub fn StatusPanel() -> impl IntoView {
    let app = use_app_state();
    let status = Memo::new(move |_| app.stream.with(|s| s.status.clone()));
    move || match status.get() {
        None => view! { <p class="empty">"Waiting for the server…"</p> }.into_any(),
        Some(s) => {
            let lag = figures::total_lag(&s)
                .map(|l| format::grouped(l as u64))
                .unwrap_or_else(|| "—".into());
            let reasons = s
                .dead_letters_by_reason
                .iter()
                .map(|(r, n)| view! { <span class="chip">{r.clone()} " " <b>{format::grouped(*n)}</b></span> })
                .collect_view();
            let parts = s
                .partitions
                .iter()
                .map(|p| {
                    let opt = |v: Option<i64>| v.map(|v| format::grouped(v.max(0) as u64)).unwrap_or_else(|| "—".into());
                    view! {
                        <tr class:idle=p.idle>
                            <td>{format!("{}/{}", p.topic, p.partition)}</td>
                            <td class="num">{format::grouped(p.next_offset.max(0) as u64)}</td>
                            <td class="num">{opt(p.high_watermark)}</td>
                            <td class="num">{opt(p.lag)}</td>
                            <td class="num">{p.watermark.map(|w| zone::time_of_day(w, true)).unwrap_or_else(|| "—".into())}</td>
                            <td class="num">{format::grouped(p.events)}</td>
                            <td class="num">{format::grouped(p.dead_letters)}</td>
                            <td>{if p.idle { "idle" } else { "active" }}</td>
                            {
                                let (label, url) = figures::owner_label(p);
                                match url {
                                    Some(u) => view! { <td class="owner"><a href=u target="_top">{label}</a></td> }.into_any(),
                                    None => view! { <td class="owner">{label}</td> }.into_any(),
                                }
                            }
                        </tr>
                    }
                })
                .collect_view();
            view! {
                <div class="status">
                    <dl class="facts">
                        {
                            let (class, text) = figures::broker_health(&s);
                            view! { <div><dt>"Broker"</dt><dd class=class>{text}</dd></div> }
                        }
                        <div><dt>"Watermark"</dt><dd>{s.watermark.map(|w| zone::time_of_day(w, true)).unwrap_or_else(|| "—".into())}</dd></div>
                        <div><dt>"Throughput"</dt><dd>{format::rate(s.events_per_sec)}</dd></div>
                        <div><dt>"Lag"</dt><dd>{lag}</dd></div>
                        <div><dt>"Events"</dt><dd>{format::grouped(s.events_total)}</dd></div>
                        <div><dt>"Late"</dt><dd>{format::grouped(s.late_events_total)}</dd></div>
                        <div><dt>"Dead-lettered"</dt><dd>{format::grouped(s.dead_letters_total)}</dd></div>
                        <div><dt>"Window"</dt><dd>{format::span(s.window_ms)}</dd></div>
                        {figures::instances_line(&s).map(|line| view! { <div><dt>"Instances"</dt><dd class="instances">{line}</dd></div> })}
                    </dl>
                    <div class="reasons">{reasons}</div>
                    <div class="table-wrap">
                        <table class="partitions">
                            <thead>
                                <tr>
                                    <th>"Partition"</th>
                                    <th class="num">"Next offset"</th>
                                    <th class="num">"High wm"</th>
                                    <th class="num">"Lag"</th>
                                    <th class="num">"Watermark"</th>
                                    <th class="num">"Events"</th>
                                    <th class="num">"Dead"</th>
                                    <th>""</th>
                                    <th>"Read by"</th>
                                </tr>
                            </thead>
                            <tbody>{parts}</tbody>
                        </table>
                    </div>
                </div>
            }
            .into_any()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_shown_readably() {
        assert_eq!(display_key(ListKind::Referrers, ""), "(direct)");
        assert_eq!(
            display_key(ListKind::Referrers, "https://news.example/"),
            "news.example"
        );
        assert_eq!(display_key(ListKind::Countries, "DE"), "DE");
        assert_eq!(display_key(ListKind::Pages, "/pricing"), "/pricing");
    }
}
