//! The pipeline status panel ([`StatusPanel`]): broker, watermark, throughput, lag, totals,
//! dead letters by reason, and each partition's offsets, lag, watermark and reader.
//!
//! Contract: everything comes from the status the server pushes over the socket.

use leptos::prelude::*;

use crate::{definitions, figures, format, state::use_app_state, zone};

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
            // The demo sends malformed events on purpose, to show the dead letters: there
            // they are information, not faults.
            let chip = if s.demo { "chip info" } else { "chip" };
            let chip_title = if s.demo {
                "The demo sends some malformed events on purpose: they go to the dead letters with this reason"
            } else {
                "Messages that could not be counted, by reason (GET /api/v1/dead-letters lists them)"
            };
            let reasons = s
                .dead_letters_by_reason
                .iter()
                .map(|(r, n)| view! { <span class=chip title=chip_title>{r.clone()} " " <b>{format::grouped(*n)}</b></span> })
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
                        <div title=definitions::WATERMARK><dt>"Watermark"</dt><dd>{s.watermark.map(|w| zone::time_of_day(w, true)).unwrap_or_else(|| "—".into())}</dd></div>
                        <div title=definitions::THROUGHPUT><dt>"Throughput"</dt><dd>{format::rate(s.events_per_sec)}</dd></div>
                        <div title=definitions::LAG><dt>"Lag"</dt><dd>{lag}</dd></div>
                        <div title=definitions::EVENTS_TOTAL><dt>"Events since start"</dt><dd data-testid="status-events" data-value=s.events_total.to_string()>{format::grouped(s.events_total)}</dd></div>
                        <div title=definitions::LATE_EVENTS><dt>"Late"</dt><dd data-testid="status-late" data-value=s.late_events_total.to_string()>{format::grouped(s.late_events_total)}</dd></div>
                        <div title=definitions::DEAD_LETTERS><dt>"Dead-lettered"</dt><dd data-testid="status-dead" data-value=s.dead_letters_total.to_string()>{format::grouped(s.dead_letters_total)}</dd></div>
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
