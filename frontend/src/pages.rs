//! The pages: the app root that picks a page from the URL, the dashboard (`/`), the kiosk
//! wall display (`/kiosk`) and the embeds (`/embed/<panel>`); and the screens shown instead
//! of them when access is missing or has ended: the sign-in form and the end of a share
//! link.
//!
//! Contract: [`App`] reads the route once, provides the shared [`AppState`], asks who is
//! looking, and only then mounts the page with the feeds that fill it ([`Live`]); when the
//! gate closes ([`crate::access::Gate`]), the page and its feeds are dropped for a
//! full-page screen. The pages only arrange chrome and panels; a share link's page has no
//! controls its scope would refuse (longer ranges, comparison, segment browser, links to
//! other views). The `data-testid` hooks listed in the crate docs stay as they are.

use leptos::prelude::*;

use pulseboard_model::proto::Compare;

use crate::{
    access::{Ended, Gate},
    chrome::{
        AlertBanner, Brand, Card, ComparePicker, ConnectionDot, ConnectionState, FilterBar,
        LastUpdate, RangePicker, SiteSwitcher, StatusStrip,
    },
    definitions, feeds, figures, format,
    panels::{
        change_of, ChangeBadge, EventsChart, Kpi, ListKind, NowKpi, PanelBody, ShareButton,
        TopList, TotalsPanel,
    },
    route::{filter_of, query_param, route, search_with_filter, site_of, Panel, Range, Route},
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

    let range = match page {
        Route::Kiosk => Range::M15,
        _ => query_param(&search, "range")
            .and_then(|r| Range::from_label(&r))
            .unwrap_or_default(),
    };
    let compare = query_param(&search, "compare").and_then(|c| Compare::from_label(&c));
    let app = AppState::new(range, filter_of(&search), compare);
    app.site.set(site_of(&search));
    provide_context(app);
    feeds::use_session(app);
    let gate = Memo::new(move |_| app.gate.get());
    (move || match gate.get() {
        Gate::Checking => view! { <div class="access-checking" aria-busy="true"></div> }.into_any(),
        Gate::Open => view! { <Live page=page.clone()/> }.into_any(),
        Gate::SignIn => view! { <SignIn/> }.into_any(),
        Gate::Ended(reason) => view! { <AccessEnded reason=reason/> }.into_any(),
    })
    .into_any()
}

/// The query string of the view shown (its segment and its site), for the wall display
/// and the embeds of it (tracked).
fn view_query(app: AppState) -> String {
    let q = search_with_filter("", app.filter.get().as_ref());
    crate::route::search_with(&q, "site", app.site.get().as_deref())
}

/// The page and the feeds that fill it: mounted while the gate is open, dropped (timers
/// cleared, socket closed) when it closes.
#[component]
fn Live(
    /// The page to show.
    page: Route,
) -> impl IntoView {
    let app = use_app_state();
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
const DASHBOARD_CARDS: [(Panel, &str, usize); 10] = [
    (Panel::Events, "span-all chart-card", 10),
    (Panel::Now, "", 6),
    (Panel::Goals, "", 10),
    (Panel::Pages, "tall", 15),
    (Panel::Referrers, "", 10),
    (Panel::Countries, "", 10),
    (Panel::Devices, "", 10),
    (Panel::Types, "", 10),
    (Panel::Properties, "", 10),
    (Panel::Status, "span-all", 10),
];

/// The interactive dashboard at `/`.
#[component]
pub fn Dashboard() -> impl IntoView {
    let app = use_app_state();
    let range_label = move || app.range.get().label();
    // A share link's dashboard: only what its scope allows (its segment, its range or a
    // shorter one, no comparison).
    let link = app.is_link_untracked();
    let (can_sign_out, can_share) = app.session.with_untracked(|s| {
        s.as_ref()
            .map_or((false, false), |s| (s.can_sign_out(), s.can_share()))
    });
    view! {
        <div class="dash">
            <header class="topbar">
                <Brand/>
                <RangePicker/>
                {(!link).then(|| view! { <ComparePicker/> })}
                <div class="conn">
                    <ConnectionState/>
                    <LastUpdate/>
                    <a
                        class="sign-out export"
                        data-testid="download-csv"
                        title="The figures of this view and range as a CSV file (GET /api/v1/export)"
                        download=""
                        href=move || feeds::urls::with_view(feeds::urls::export_url(app.range.get()), &app.view_tracked())
                    >
                        "Download CSV"
                    </a>
                    {can_share.then(|| view! { <ShareButton/> })}
                    {can_sign_out.then(|| view! { <SignOut/> })}
                </div>
            </header>
            <AlertBanner/>
            <StatusStrip/>
            <SiteSwitcher interactive=!link/>
            <FilterBar interactive=!link/>
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
                {(!link).then(|| view! {
                    <span class="links">
                        <a href=move || format!("/kiosk{}", view_query(app))>"Wall display"</a>
                        " · embed: "
                        {move || {
                            // The embeds (and the wall display) of the segment shown.
                            let q = view_query(app);
                            Panel::ALL
                                .into_iter()
                                .map(|p| {
                                    view! { <a class="embed-link" href=format!("/embed/{}{q}", p.name())>{p.name()}</a> }
                                })
                                .collect_view()
                        }}
                    </span>
                })}
            </footer>
        </div>
    }
}

/// The wall display at `/kiosk`: dark, full screen, large type, no controls, fixed 15 min
/// (or the range of the share link it was opened with).
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
                <SiteSwitcher/>
                <FilterBar/>
                <div class="k-meta">
                    <ConnectionState/>
                    <LastUpdate/>
                    <span class="k-clock">{clock}</span>
                </div>
            </header>
            <section class="k-kpis">
                <div class="kpi-with-change">
                    <Kpi label=format!("Events · {}", format::span(app.range.get_untracked().ms())) testid="total-events" value=Signal::derive(move || Some(app.total_events.get())) big=true definition=definitions::RANGE_EVENTS/>
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
                <SiteSwitcher/>
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

/// "Sign out" (a signed-in cookie session): deletes the session and reloads.
#[component]
fn SignOut() -> impl IntoView {
    let app = use_app_state();
    view! {
        <button
            type="button"
            class="sign-out"
            data-testid="sign-out"
            title="Forget this browser's session"
            on:click=move |_| leptos::task::spawn_local(feeds::session::sign_out(app))
        >
            "Sign out"
        </button>
    }
}

/// The sign-in form, instead of the page, when the server wants a credential: an admin or
/// viewer token, posted in a JSON body (never put in a URL); the server answers with a
/// session cookie and the page reloads.
#[component]
pub fn SignIn() -> impl IntoView {
    let token = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let t = token.get_untracked();
        if t.trim().is_empty() {
            error.set(Some("Enter an access token.".to_owned()));
            return;
        }
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            if let Err(e) = feeds::session::sign_in(&t).await {
                error.set(Some(e));
                busy.set(false);
            }
        });
    };
    view! {
        <main class="access-screen sign-in" data-testid="sign-in">
            <form class="access-card" on:submit=submit>
                <AccessLogo/>
                <h1>"Sign in to Pulseboard"</h1>
                <p>"This dashboard needs an access token. Ask its owner for one, or for a share link."</p>
                <label for="pb-token">"Access token"</label>
                <input
                    id="pb-token"
                    name="token"
                    type="password"
                    autocomplete="current-password"
                    data-testid="sign-in-token"
                    prop:value=token
                    on:input=move |e| token.set(event_target_value(&e))
                />
                <button type="submit" data-testid="sign-in-submit" disabled=move || busy.get()>
                    {move || if busy.get() { "Signing in…" } else { "Sign in" }}
                </button>
                {move || error.get().map(|e| view! { <p class="access-error" data-testid="sign-in-error" role="alert">{e}</p> })}
            </form>
        </main>
    }
}

/// The screen of a share link whose access ended (revoked or expired), instead of the page:
/// large enough to read across a room, and saying what to do.
#[component]
pub fn AccessEnded(
    /// Why the link stopped working.
    reason: Ended,
) -> impl IntoView {
    let (title, why) = match reason {
        Ended::Revoked => (
            "This link was revoked",
            "Its owner withdrew it, so this screen no longer shows the dashboard.",
        ),
        Ended::Expired => (
            "This link has expired",
            "It was made to work for a limited time, and that time is over.",
        ),
    };
    view! {
        <main class="access-screen access-ended" data-testid="access-ended" data-reason=reason.as_str() role="alert">
            <div class="access-card">
                <AccessLogo/>
                <h1>{title}</h1>
                <p>{why}</p>
                <p class="access-ask">"Ask the dashboard's owner for a new link."</p>
            </div>
        </main>
    }
}

/// Pulseboard's mark, on the access screens.
#[component]
fn AccessLogo() -> impl IntoView {
    view! {
        <svg class="access-logo" viewBox="0 0 24 24" aria-hidden="true">
            <path d="M2 13h4l3-8 4 14 3-9 2 3h4" fill="none" stroke="currentColor" stroke-width="2.4" stroke-linecap="round" stroke-linejoin="round"/>
        </svg>
    }
}
