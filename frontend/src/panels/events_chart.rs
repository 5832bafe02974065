//! The events chart panel ([`EventsChart`]): bars per window coloured by window state, the
//! count and time axes, the comparison period's line, annotation markers and the legend.
//!
//! Contract: draws only what [`chart::events_layout_with`] lays out; times on the viewer's
//! clock (`zone`).

use leptos::prelude::*;
use pulseboard_model::proto::WindowState;

use crate::{
    chart::{self, EVENTS_H, EVENTS_W},
    figures, format,
    state::use_app_state,
    zone,
};

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
                .map(|(t, x)| {
                    // A week: weekdays; a month: dates; shorter: times of day.
                    let label = if m.x_step >= chart::DAY_MS {
                        zone::calendar_day(*t, zone::offset_ms(), m.x_step == chart::DAY_MS)
                    } else {
                        zone::time_of_day(*t, false)
                    };
                    view! { <span class="x-label" style:left=pct(*x, EVENTS_W)>{label}</span> }
                })
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
                <span
                    class="key revised"
                    data-testid="legend-revised"
                    title="Outlined: a window that counted late events after it was shown final (its count is exact; the late share is in the status's revised events)"
                >
                    {move || {
                        let n = model.with(|m| m.bars.iter().filter(|(b, _)| b.state == WindowState::Revised).count());
                        if n == 0 { "revised".to_owned() } else { format!("revised · {n}") }
                    }}
                </span>
                {move || compare_label().map(|l| view! { <span class="key compare">{l}</span> })}
                <span class="legend-note">{legend_note}</span>
            </div>
        </div>
    }
}
