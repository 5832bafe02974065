//! Components: the dashboard, the kiosk wall display and the embeddable panels.
//!
//! Contract: components only lay out numbers; they read the shared [`Live`] state from
//! context and take every figure from `figures`, every scale and path from `chart` and
//! every text from `format`. Side effects live in the `use_*` hooks of `live`.
//!
//! Stable hooks for browser tests (keep them): `total-events` and `unique-visitors` (with
//! `data-value` = the raw integer), `connection-state` (text `connecting`|`live`|
//! `reconnecting`), `last-update`, `events-chart` (the `<svg>`, bars are
//! `rect[data-testid=bar][data-start][data-events][data-state]`), `top-pages`, `kiosk`,
//! `stale`, `embed-<panel>`, `range-5m`…`range-24h`, `demo-badge`; and
//! `<body data-ready="1">` once the first snapshot is applied and drawn.

use leptos::prelude::*;
use pulseboard_model::proto::{Count, Status, WindowState};

use crate::{
    chart::{self, Bar, Rect},
    figures, format,
    live::{self, use_live, ConnState, Live},
    route::{query_param, route, Panel, Range, Route},
};

/// Width of the chart's SVG coordinate system (it is stretched to its box).
const CHART_W: f64 = 1000.0;
/// Height of the chart's SVG coordinate system.
const CHART_H: f64 = 300.0;

// ---------------------------------------------------------------------------------------
// Time of day in the viewer's zone
// ---------------------------------------------------------------------------------------

/// `ms` as a local time of day (`14:05` or `14:05:30`), in the viewer's locale.
fn local_time(ms: i64, seconds: bool) -> String {
    #[cfg(target_arch = "wasm32")]
    {
        use wasm_bindgen::JsValue;
        fn formatter(seconds: bool) -> js_sys::Intl::DateTimeFormat {
            let opts = js_sys::Object::new();
            let set = |k: &str, v: &str| {
                let _ = js_sys::Reflect::set(&opts, &JsValue::from_str(k), &JsValue::from_str(v));
            };
            set("hour", "2-digit");
            set("minute", "2-digit");
            if seconds {
                set("second", "2-digit");
            }
            js_sys::Intl::DateTimeFormat::new(&js_sys::Array::new(), &opts)
        }
        thread_local! {
            static HM: js_sys::Function = formatter(false).format();
            static HMS: js_sys::Function = formatter(true).format();
        }
        let date = js_sys::Date::new(&JsValue::from_f64(ms as f64));
        let f = |f: &js_sys::Function| {
            f.call1(&JsValue::NULL, &date)
                .ok()
                .and_then(|v| v.as_string())
                .unwrap_or_default()
        };
        if seconds {
            HMS.with(f)
        } else {
            HM.with(f)
        }
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let s = ms.rem_euclid(86_400_000) / 1000;
        if seconds {
            format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
        } else {
            format!("{:02}:{:02}", s / 3600, s / 60 % 60)
        }
    }
}

/// Local time minus UTC, ms.
fn tz_offset_ms() -> i64 {
    #[cfg(target_arch = "wasm32")]
    {
        -(js_sys::Date::new_0().get_timezone_offset() * 60_000.0) as i64
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0
    }
}

fn span_label(ms: i64) -> String {
    match ms {
        m if m % 3_600_000 == 0 => format!("{} h", m / 3_600_000),
        m if m % 60_000 == 0 => format!("{} min", m / 60_000),
        m => format!("{} s", m / 1000),
    }
}

// ---------------------------------------------------------------------------------------
// Root
// ---------------------------------------------------------------------------------------

/// The app: picks the page from the URL, sets up the shared live state and its hooks.
#[component]
pub fn App() -> impl IntoView {
    let location = window().location();
    let path = location.pathname().unwrap_or_default();
    let search = location.search().unwrap_or_default();
    let page = route(&path, &search);

    let body_class = match &page {
        Route::Dashboard => "page-dashboard",
        Route::Kiosk => "page-kiosk",
        Route::Embed(_) | Route::UnknownEmbed(_) => "page-embed",
    };
    if let Some(body) = document().body() {
        body.set_class_name(body_class);
    }

    if let Route::UnknownEmbed(name) = page {
        return view! { <UnknownEmbed name=name/> }.into_any();
    }

    let token = query_param(&search, "token").filter(|t| !t.is_empty());
    let range = match page {
        Route::Kiosk => Range::M15,
        _ => query_param(&search, "range")
            .and_then(|r| Range::from_label(&r))
            .unwrap_or_default(),
    };
    let live = Live::new(range, token);
    provide_context(live);
    live::use_clock(live);
    live::use_socket(live);
    live::use_history(live);
    live::use_summary(live);
    live::use_ready_marker(Signal::derive(move || {
        live.state.with(|s| s.last_seq.is_some())
    }));

    match page {
        Route::Kiosk => view! { <Kiosk/> }.into_any(),
        Route::Embed(panel) => view! { <Embed panel=panel/> }.into_any(),
        _ => view! { <Dashboard/> }.into_any(),
    }
}

// ---------------------------------------------------------------------------------------
// Pages
// ---------------------------------------------------------------------------------------

/// The interactive dashboard at `/`.
#[component]
pub fn Dashboard() -> impl IntoView {
    let live = use_live();
    let range_label = move || live.range.get().label();
    view! {
        <div class="dash">
            <header class="topbar">
                <Brand/>
                <RangePicker/>
                <div class="conn">
                    <ConnectionState/>
                    <LastUpdate/>
                </div>
            </header>
            <StatusStrip/>
            <main class="grid">
                <section class="card span-all">
                    <TotalsPanel/>
                </section>
                <Card title="Events per window" class="span-all chart-card">
                    <EventsChart max_bars=360/>
                </Card>
                <Card title="Top pages" class="tall">
                    <TopList kind=ListKind::Pages rows=15/>
                </Card>
                <Card title="Referrers">
                    <TopList kind=ListKind::Referrers rows=10/>
                </Card>
                <Card title="Countries">
                    <TopList kind=ListKind::Countries rows=10/>
                </Card>
                <Card title="Devices">
                    <TopList kind=ListKind::Devices rows=10/>
                </Card>
                <Card title="Event types">
                    <TopList kind=ListKind::Types rows=10/>
                </Card>
                <Card title="Pipeline" class="span-all">
                    <StatusPanel/>
                </Card>
            </main>
            <footer class="foot">
                <span>"Range: last " {range_label} " · times in your time zone"</span>
                <span class="links">
                    <a href="/kiosk">"Wall display"</a>
                    " · embed: "
                    {Panel::ALL
                        .into_iter()
                        .map(|p| {
                            view! { <a class="embed-link" href=format!("/embed/{}", p.name())>{p.name()}</a> }
                        })
                        .collect_view()}
                </span>
            </footer>
        </div>
    }
}

/// The wall display at `/kiosk`: dark, full screen, large type, no controls, fixed 15 min.
#[component]
pub fn Kiosk() -> impl IntoView {
    let live = use_live();
    let stale = Memo::new(move |_| {
        figures::is_stale(
            live.conn.get() == ConnState::Live,
            live.clock.get(),
            live.last_message.get(),
            live.opened,
            10_000.0,
        )
    });
    let stale_text = move || match live.last_message.get() {
        Some(at) => format!("STALE — last update {}", format::ago(live.clock.get() - at)),
        None => "STALE — no update yet".to_owned(),
    };
    let status = move || live.state.with(|s| s.status.clone());
    let rate = move || {
        status()
            .map(|s| format::rate(s.events_per_sec))
            .unwrap_or_else(|| "—".into())
    };
    let lag = move || {
        status()
            .and_then(|s| figures::total_lag(&s))
            .map(|l| format::compact(l as u64))
            .unwrap_or_else(|| "—".into())
    };
    let clock = move || local_time(live.clock.get() as i64, false);
    view! {
        <div class="kiosk" data-testid="kiosk" class:is-stale=move || stale.get()>
            <Show when=move || stale.get()>
                <div class="stale-banner" data-testid="stale" role="alert">{stale_text}</div>
            </Show>
            <header class="k-head">
                <Brand/>
                <div class="k-meta">
                    <ConnectionState/>
                    <LastUpdate/>
                    <span class="k-clock">{clock}</span>
                </div>
            </header>
            <section class="k-kpis">
                <Kpi label="Events · 15 min" testid="total-events" value=Signal::derive(move || Some(live.total_events.get())) big=true/>
                <Kpi label="Unique visitors" testid="unique-visitors" value=Signal::derive(move || live.summary.with(|s| s.as_ref().map(|s| s.unique_visitors))) big=true/>
                <div class="kpi">
                    <div class="kpi-label">"Events / s"</div>
                    <div class="kpi-value">{rate}</div>
                </div>
                <div class="kpi">
                    <div class="kpi-label">"Lag"</div>
                    <div class="kpi-value">{lag}</div>
                </div>
            </section>
            <section class="k-chart">
                <EventsChart max_bars=90/>
            </section>
            <section class="k-lists">
                <div class="k-list">
                    <h2>"Top pages"</h2>
                    <TopList kind=ListKind::Pages rows=6/>
                </div>
                <div class="k-list">
                    <h2>"Referrers"</h2>
                    <TopList kind=ListKind::Referrers rows=6/>
                </div>
                <div class="k-list">
                    <h2>"Countries"</h2>
                    <TopList kind=ListKind::Countries rows=6/>
                </div>
            </section>
        </div>
    }
}

/// One panel alone, filling its iframe (`/embed/<panel>`).
#[component]
pub fn Embed(
    /// The panel to show.
    panel: Panel,
) -> impl IntoView {
    let body = match panel {
        Panel::Events => view! { <EventsChart max_bars=180/> }.into_any(),
        Panel::Totals => view! { <TotalsPanel/> }.into_any(),
        Panel::Pages => view! { <TopList kind=ListKind::Pages rows=10/> }.into_any(),
        Panel::Referrers => view! { <TopList kind=ListKind::Referrers rows=10/> }.into_any(),
        Panel::Countries => view! { <TopList kind=ListKind::Countries rows=10/> }.into_any(),
        Panel::Devices => view! { <TopList kind=ListKind::Devices rows=10/> }.into_any(),
        Panel::Types => view! { <TopList kind=ListKind::Types rows=10/> }.into_any(),
        Panel::Status => view! { <StatusPanel/> }.into_any(),
    };
    view! {
        <div class=format!("embed embed-{}", panel.name()) data-testid=format!("embed-{}", panel.name())>
            <div class="embed-head">
                <span class="embed-title">{panel.title()}</span>
                <ConnectionDot/>
            </div>
            <div class="embed-body">{body}</div>
        </div>
    }
}

/// `/embed/<name>` for a name that is not a panel: says which names exist.
#[component]
pub fn UnknownEmbed(
    /// The name that was asked for.
    name: String,
) -> impl IntoView {
    let valid = Panel::ALL.map(Panel::name).join(", ");
    view! {
        <div class="embed embed-unknown" data-testid="embed-unknown">
            <p>
                {if name.is_empty() { "No panel named.".to_owned() } else { format!("Unknown panel \"{name}\".") }}
                " Valid panels: " {valid} "."
            </p>
        </div>
    }
}

// ---------------------------------------------------------------------------------------
// Chrome
// ---------------------------------------------------------------------------------------

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
    let live = use_live();
    let demo = move || {
        live.state
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

/// The range buttons (5m / 15m / 1h / 24h).
#[component]
pub fn RangePicker() -> impl IntoView {
    let live = use_live();
    view! {
        <div class="ranges" role="group" aria-label="Time range">
            {Range::ALL
                .into_iter()
                .map(|r| {
                    let active = move || live.range.get() == r;
                    view! {
                        <button
                            type="button"
                            data-testid=format!("range-{}", r.label())
                            class:active=active
                            aria-pressed=move || if active() { "true" } else { "false" }
                            on:click=move |_| live.range.set(r)
                        >
                            {r.label()}
                        </button>
                    }
                })
                .collect_view()}
        </div>
    }
}

/// The socket state: exactly `connecting`, `live` or `reconnecting`.
#[component]
pub fn ConnectionState() -> impl IntoView {
    let live = use_live();
    let state = move || live.conn.get().as_str();
    view! {
        <span class=move || format!("conn-state {}", state()) data-testid="connection-state" role="status">
            {state}
        </span>
    }
}

/// A small dot for the socket state (embeds), with the state as its tooltip.
#[component]
pub fn ConnectionDot() -> impl IntoView {
    let live = use_live();
    let state = move || live.conn.get().as_str();
    view! { <span class=move || format!("conn-dot {}", state()) title=state aria-label=state></span> }
}

/// "updated N s ago", ticking every second.
#[component]
pub fn LastUpdate() -> impl IntoView {
    let live = use_live();
    let text = move || match live.last_message.get() {
        Some(at) => format!("updated {}", format::ago(live.clock.get() - at)),
        None => "waiting for data".to_owned(),
    };
    view! { <span class="last-update" data-testid="last-update">{text}</span> }
}

/// Broker, lag, watermark and throughput under the dashboard header.
#[component]
pub fn StatusStrip() -> impl IntoView {
    let live = use_live();
    let status = Memo::new(move |_| live.state.with(|s| s.status.clone()));
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
            .map(|w| local_time(w, true))
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
            <div class="fact">
                <span class="fact-label">"Lag"</span>
                <span class="fact-value" data-testid="lag">{lag}</span>
            </div>
            <div class="fact">
                <span class="fact-label">"Watermark"</span>
                <span class="fact-value" data-testid="watermark">{watermark}</span>
            </div>
            <div class="fact">
                <span class="fact-label">"Throughput"</span>
                <span class="fact-value" data-testid="events-per-sec">{rate}</span>
            </div>
        </div>
    }
}

// ---------------------------------------------------------------------------------------
// Panels
// ---------------------------------------------------------------------------------------

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

/// Totals for the range: events, unique visitors and sessions, late and dead-lettered.
#[component]
pub fn TotalsPanel() -> impl IntoView {
    let live = use_live();
    let summary = move |f: fn(&pulseboard_model::proto::Summary) -> u64| {
        Signal::derive(move || live.summary.with(|s| s.as_ref().map(f)))
    };
    let status = move |f: fn(&Status) -> u64| {
        Signal::derive(move || live.state.with(|s| s.status.as_ref().map(f)))
    };
    let spark = move || {
        let (from, to) = live.bounds.get();
        let values: Vec<u64> = live
            .state
            .with(|s| s.range(from, to).map(|w| w.events).collect());
        let pts = chart::spark_points(&values, 200.0, 40.0);
        (chart::area_path(&pts, 40.0), chart::line_path(&pts))
    };
    view! {
        <div class="totals">
            <div class="kpi kpi-main">
                <div class="kpi-label">{move || format!("Events · last {}", live.range.get().label())}</div>
                <div
                    class="kpi-value"
                    data-testid="total-events"
                    data-value=move || live.total_events.get().to_string()
                    title=move || format::grouped(live.total_events.get())
                >
                    {move || {
                        let n = live.total_events.get();
                        if n >= 1_000_000 { format::compact(n) } else { format::grouped(n) }
                    }}
                </div>
                <svg class="spark" viewBox="0 0 200 40" preserveAspectRatio="none" aria-hidden="true">
                    <path class="spark-area" d=move || spark().0/>
                    <path class="spark-line" d=move || spark().1/>
                </svg>
            </div>
            <Kpi label="Unique visitors" testid="unique-visitors" value=summary(|s| s.unique_visitors)/>
            <Kpi label="Unique sessions" testid="unique-sessions" value=summary(|s| s.unique_sessions)/>
            <Kpi label="Late events" testid="late-events" value=status(|s| s.late_events_total) note="since start"/>
            <Kpi label="Dead-lettered" testid="dead-letters" value=status(|s| s.dead_letters_total) note="since start"/>
        </div>
    }
}

/// The chart's layout for one render: bars with their rectangles, and both axes.
#[derive(Debug, Clone, PartialEq)]
struct ChartModel {
    bars: Vec<(Bar, Rect)>,
    /// `(label, y in SVG units)`.
    y_ticks: Vec<(String, f64)>,
    /// `(label, x in SVG units)`.
    x_ticks: Vec<(String, f64)>,
    /// Width of one bar, ms.
    bucket_ms: i64,
    window_ms: i64,
}

/// Events per window over the range, as SVG bars colored by window state; the current
/// window grows live. Long ranges merge windows so at most `max_bars` bars are drawn.
#[component]
pub fn EventsChart(
    /// Most bars to draw; windows are merged into wider bars above it.
    #[prop(default = 360)]
    max_bars: usize,
) -> impl IntoView {
    let live = use_live();
    let tz = tz_offset_ms();
    let model = Memo::new(move |_| {
        let (from, to) = live.bounds.get();
        live.state.with(|s| {
            let window_ms = if s.window_ms > 0 { s.window_ms } else { 10_000 };
            let factor = chart::bucket_factor(to - from, window_ms, max_bars);
            let bucket_ms = window_ms * factor;
            let bars = chart::bucket(&figures::bars(s.range(from, to)), bucket_ms);
            let max = bars.iter().map(|b| b.events).max().unwrap_or(0);
            let ticks = chart::nice_ticks(max as f64, 4);
            let y_max = ticks.last().copied().unwrap_or(1.0);
            let rects = chart::bar_rects(&bars, from, to, y_max, CHART_W, CHART_H);
            let ys = chart::Linear::new((0.0, y_max), (CHART_H, 0.0));
            let xs = chart::Linear::new((from as f64, to as f64), (0.0, CHART_W));
            ChartModel {
                bars: bars.into_iter().zip(rects).collect(),
                y_ticks: ticks
                    .iter()
                    .skip(1)
                    .map(|t| (format::compact(*t as u64), ys.map(*t)))
                    .collect(),
                // A label at the very right edge would stick out of the card.
                x_ticks: chart::time_ticks(from, to, 6, tz)
                    .into_iter()
                    .map(|t| (local_time(t, false), xs.map(t as f64)))
                    .filter(|(_, x)| *x <= CHART_W * 0.96)
                    .collect(),
                bucket_ms,
                window_ms,
            }
        })
    });
    let pct = |v: f64, of: f64| format!("{:.3}%", v / of * 100.0);
    let bars = move || {
        model.with(|m| {
            m.bars
                .iter()
                .map(|(b, r)| {
                    let state = state_name(b.state);
                    let tip = format!(
                        "<title>{}–{} · {} events · {}</title>",
                        local_time(b.start, true),
                        local_time(b.end, true),
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
                    let d = chart::line_path(&[(0.0, *y), (CHART_W, *y)]);
                    view! { <path class="gridline" d=d vector-effect="non-scaling-stroke"></path> }
                })
                .collect_view()
        })
    };
    let y_labels = move || {
        model.with(|m| {
            m.y_ticks
                .iter()
                .map(|(label, y)| view! { <span class="y-label" style:top=pct(*y, CHART_H)>{label.clone()}</span> })
                .collect_view()
        })
    };
    let x_labels = move || {
        model.with(|m| {
            m.x_ticks
                .iter()
                .map(|(label, x)| view! { <span class="x-label" style:left=pct(*x, CHART_W)>{label.clone()}</span> })
                .collect_view()
        })
    };
    let legend_note = move || {
        model.with(|m| {
            (m.bucket_ms != m.window_ms).then(|| format!("one bar = {}", span_label(m.bucket_ms)))
        })
    };
    let empty = move || model.with(|m| m.bars.is_empty());
    view! {
        <div class="chart">
            <div class="chart-plot">
                <svg
                    class="chart-svg"
                    data-testid="events-chart"
                    viewBox=format!("0 0 {CHART_W} {CHART_H}")
                    preserveAspectRatio="none"
                    role="img"
                    aria-label="Events per window"
                >
                    {grid}
                    <path class="axis" d=chart::line_path(&[(0.0, CHART_H), (CHART_W, CHART_H)]) vector-effect="non-scaling-stroke"></path>
                    {bars}
                </svg>
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
                <span class="legend-note">{legend_note}</span>
            </div>
        </div>
    }
}

fn state_name(s: WindowState) -> &'static str {
    match s {
        WindowState::Live => "live",
        WindowState::Final => "final",
        WindowState::Revised => "revised",
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
    let live = use_live();
    let items = Memo::new(move |_| {
        let (from, to) = live.bounds.get();
        if kind == ListKind::Types {
            return live
                .state
                .with(|s| figures::type_counts(s.range(from, to), rows));
        }
        let from_summary = live.summary.with(|s| {
            s.as_ref().map(|s| {
                let list = match kind {
                    ListKind::Pages => &s.top_urls,
                    ListKind::Referrers => &s.top_referrers,
                    ListKind::Countries => &s.countries,
                    _ => &s.devices,
                };
                list.iter().take(rows).cloned().collect::<Vec<Count>>()
            })
        });
        from_summary.unwrap_or_else(|| {
            live.state.with(|s| {
                figures::merge_counts(
                    s.range(from, to).map(|w| match kind {
                        ListKind::Pages => w.top_urls.as_slice(),
                        ListKind::Referrers => w.top_referrers.as_slice(),
                        ListKind::Countries => w.countries.as_slice(),
                        _ => w.devices.as_slice(),
                    }),
                    rows,
                )
            })
        })
    });
    let rows_view = move || {
        items.with(|items| {
            let max = items.first().map(|c| c.count).unwrap_or(0);
            if items.is_empty() {
                return view! { <li class="empty">"No data yet"</li> }.into_any();
            }
            items
                .iter()
                .map(|c| {
                    let label = display_key(kind, &c.key);
                    view! {
                        <li class="row" data-key=c.key.clone() data-count=c.count.to_string()>
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
    let live = use_live();
    let status = Memo::new(move |_| live.state.with(|s| s.status.clone()));
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
                            <td class="num">{p.watermark.map(|w| local_time(w, true)).unwrap_or_else(|| "—".into())}</td>
                            <td class="num">{format::grouped(p.events)}</td>
                            <td class="num">{format::grouped(p.dead_letters)}</td>
                            <td>{if p.idle { "idle" } else { "active" }}</td>
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
                        <div><dt>"Watermark"</dt><dd>{s.watermark.map(|w| local_time(w, true)).unwrap_or_else(|| "—".into())}</dd></div>
                        <div><dt>"Throughput"</dt><dd>{format::rate(s.events_per_sec)}</dd></div>
                        <div><dt>"Lag"</dt><dd>{lag}</dd></div>
                        <div><dt>"Events"</dt><dd>{format::grouped(s.events_total)}</dd></div>
                        <div><dt>"Late"</dt><dd>{format::grouped(s.late_events_total)}</dd></div>
                        <div><dt>"Dead-lettered"</dt><dd>{format::grouped(s.dead_letters_total)}</dd></div>
                        <div><dt>"Window"</dt><dd>{span_label(s.window_ms)}</dd></div>
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
    fn span_labels_use_the_largest_whole_unit() {
        assert_eq!(span_label(10_000), "10 s");
        assert_eq!(span_label(300_000), "5 min");
        assert_eq!(span_label(7_200_000), "2 h");
    }

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
