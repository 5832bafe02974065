//! The pages: the app root that picks a page from the URL, the dashboard (`/`), the kiosk
//! wall display (`/kiosk`) and the embeds (`/embed/<panel>`).
//!
//! Contract: [`App`] reads the route once, provides the shared [`AppState`] and starts the
//! feeds that fill it; the pages only arrange chrome and panels. The `data-testid` hooks listed in
//! the crate docs stay as they are.

use leptos::prelude::*;

use pulseboard_model::proto::Compare;

use crate::{
    chrome::{
        AlertBanner, Brand, Card, ComparePicker, ConnectionDot, ConnectionState, FilterBar,
        LastUpdate, RangePicker, StatusStrip,
    },
    definitions, feeds, figures, format,
    panels::{
        change_of, ChangeBadge, EventsChart, Kpi, ListKind, NowKpi, PanelBody, TopList, TotalsPanel,
    },
    route::{filter_of, query_param, route, search_with_filter, Panel, Range, Route},
    state::{use_app_state, AppState, ConnState},
    zone,
};

/// The app: picks the page from the URL, sets up the shared state and the feeds that fill it.
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
    let compare = query_param(&search, "compare").and_then(|c| Compare::from_label(&c));
    let app = AppState::new(range, token, filter_of(&search), compare);
    provide_context(app);
    feeds::use_clock(app);
    feeds::use_socket(
        app,
        match page {
            Route::Dashboard => 0,
            _ => feeds::DISPLAY_EVERY_MS,
        },
    );
    feeds::use_history(app);
    feeds::use_summary(app);
    feeds::use_now(app);
    feeds::use_segments_info(app);
    feeds::use_filter_history(app);
    feeds::use_compare(app);
    feeds::use_annotations(app);
    use_ready_marker(Signal::derive(move || {
        app.stream.with(|s| s.last_seq.is_some())
    }));

    match page {
        Route::Kiosk => view! { <Kiosk/> }.into_any(),
        Route::Embed(panel) => view! { <Embed panel=panel/> }.into_any(),
        _ => view! { <Dashboard/> }.into_any(),
    }
}

/// Sets `data-ready="1"` on `<body>` once `ready` is true, after the browser has laid out
/// what that render produced.
fn use_ready_marker(ready: Signal<bool>) {
    Effect::new(move |done: Option<bool>| {
        if done == Some(true) {
            return true;
        }
        if !ready.get() {
            return false;
        }
        request_animation_frame(|| {
            if let Some(body) = document().body() {
                let _ = body.set_attribute("data-ready", "1");
            }
        });
        true
    });
}

/// The dashboard's cards under the totals, in order: panel, extra classes (grid spans),
/// rows of a top list.
const DASHBOARD_CARDS: [(Panel, &str, usize); 9] = [
    (Panel::Events, "span-all chart-card", 10),
    (Panel::Now, "", 6),
    (Panel::Goals, "", 10),
    (Panel::Pages, "tall", 15),
    (Panel::Referrers, "", 10),
    (Panel::Countries, "", 10),
    (Panel::Devices, "", 10),
    (Panel::Types, "", 10),
    (Panel::Status, "span-all", 10),
];

/// The interactive dashboard at `/`.
#[component]
pub fn Dashboard() -> impl IntoView {
    let app = use_app_state();
    let range_label = move || app.range.get().label();
    view! {
        <div class="dash">
            <header class="topbar">
                <Brand/>
                <RangePicker/>
                <ComparePicker/>
                <div class="conn">
                    <ConnectionState/>
                    <LastUpdate/>
                </div>
            </header>
            <AlertBanner/>
            <StatusStrip/>
            <FilterBar interactive=true/>
            <main class="grid">
                <section class="card span-all">
                    <TotalsPanel/>
                </section>
                {DASHBOARD_CARDS
                    .into_iter()
                    .map(|(panel, class, rows)| {
                        view! {
                            <Card title=panel.title() class=class>
                                <PanelBody panel=panel rows=rows/>
                            </Card>
                        }
                    })
                    .collect_view()}
            </main>
            <footer class="foot">
                <span>"Range: last " {range_label} " · times in your time zone"</span>
                <span class="links">
                    <a href=move || format!("/kiosk{}", search_with_filter("", app.filter.get().as_ref()))>"Wall display"</a>
                    " · embed: "
                    {move || {
                        // The embeds (and the wall display) of the segment shown.
                        let q = search_with_filter("", app.filter.get().as_ref());
                        Panel::ALL
                            .into_iter()
                            .map(|p| {
                                view! { <a class="embed-link" href=format!("/embed/{}{q}", p.name())>{p.name()}</a> }
                            })
                            .collect_view()
                    }}
                </span>
            </footer>
        </div>
    }
}

/// The wall display at `/kiosk`: dark, full screen, large type, no controls, fixed 15 min.
#[component]
pub fn Kiosk() -> impl IntoView {
    let app = use_app_state();
    let stale = Memo::new(move |_| {
        figures::is_stale(
            app.conn.get() == ConnState::Live,
            app.clock.get(),
            app.last_message.get(),
            app.opened,
            10_000.0,
        )
    });
    let stale_text = move || match app.last_message.get() {
        Some(at) => format!("STALE — last update {}", format::ago(app.clock.get() - at)),
        None => "STALE — no update yet".to_owned(),
    };
    let status = move || app.stream.with(|s| s.status.clone());
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
    let clock = move || zone::time_of_day(app.clock.get() as i64, false);
    // The first goal's conversion rate over the range (from the summary).
    let goal = move || {
        app.summary.with(|s| {
            s.as_ref()
                .and_then(|s| s.figures.goals.first())
                .map(|g| (g.name.clone(), format::percent(g.conversion_rate)))
        })
    };
    let change = move |f| change_of(app, f);
    view! {
        <div class="kiosk" data-testid="kiosk" class:is-stale=move || stale.get()>
            <Show when=move || stale.get()>
                <div class="stale-banner" data-testid="stale" role="alert">{stale_text}</div>
            </Show>
            <AlertBanner/>
            <header class="k-head">
                <Brand/>
                <FilterBar/>
                <div class="k-meta">
                    <ConnectionState/>
                    <LastUpdate/>
                    <span class="k-clock">{clock}</span>
                </div>
            </header>
            <section class="k-kpis">
                <div class="kpi-with-change">
                    <Kpi label="Events · 15 min" testid="total-events" value=Signal::derive(move || Some(app.total_events.get())) big=true definition=definitions::RANGE_EVENTS/>
                    <ChangeBadge testid="change-events" pct=change(|c| c.events_pct)/>
                </div>
                <div class="kpi-with-change">
                    <Kpi label="Unique visitors" testid="unique-visitors" value=Signal::derive(move || app.summary.with(|s| s.as_ref().map(|s| s.figures.unique_visitors))) big=true definition=definitions::UNIQUE_VISITORS/>
                    <ChangeBadge testid="change-visitors" pct=change(|c| c.unique_visitors_pct)/>
                </div>
                <NowKpi big=true/>
                <div class="kpi" data-testid="kiosk-goal" title=definitions::CONVERSION>
                    <div class="kpi-label">{move || goal().map(|(n, _)| format!("Conversion · {n}")).unwrap_or_else(|| "Conversion".into())}</div>
                    <div class="kpi-value">{move || goal().map(|(_, r)| r).unwrap_or_else(|| "—".into())}</div>
                </div>
                <div class="kpi kpi-ops" title=definitions::THROUGHPUT>
                    <div class="kpi-label">"Events / s"</div>
                    <div class="kpi-value">{rate}</div>
                </div>
                <div class="kpi kpi-ops" title=definitions::LAG>
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
    view! {
        <div class=format!("embed embed-{}", panel.name()) data-testid=format!("embed-{}", panel.name())>
            <div class="embed-head">
                <span class="embed-title">{panel.title()}</span>
                <FilterBar/>
                <ConnectionDot/>
            </div>
            <div class="embed-body"><PanelBody panel=panel max_bars=180/></div>
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
