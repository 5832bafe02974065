//! The panels: headline figures, the totals, visitors now, the goals, the events chart, the
//! top lists and the pipeline status. Each can stand alone (the embeds show one each):
//! [`PanelBody`] picks one by name. Every panel shows the page's segment when it has one;
//! the rows of the country, device, type and referrer lists set it when clicked (when the
//! server segments that dimension).
//!
//! Contract: components only lay out; they read the shared
//! [`AppState`](crate::state::AppState) from context and take every figure from `figures`,
//! the chart's whole layout from [`chart::events_layout`](crate::chart::events_layout) and
//! every text from `format` and `zone`. The `data-testid` hooks listed in the crate docs
//! stay as they are.
//!
//! - [`totals`] — headline figures: the totals with their changes, visitors now, goals.
//! - [`events_chart`] — the events chart.
//! - [`top_list`] — the ranked lists (pages, referrers, countries, devices, types).
//! - [`properties`] — a custom property's top values.
//! - [`status`] — the pipeline status.
//! - [`share`] — not a panel of its own but the dashboard's Share button and dialog, for
//!   admins: make a share link of the view, copy it, revoke links.

pub mod events_chart;
pub mod properties;
pub mod share;
pub mod status;
pub mod top_list;
pub mod totals;

pub use events_chart::EventsChart;
pub use properties::PropertiesPanel;
pub use share::ShareButton;
pub use status::StatusPanel;
pub use top_list::{ListKind, TopList};
pub use totals::{change_of, ChangeBadge, GoalsPanel, Kpi, NowKpi, NowPanel, TotalsPanel};

use leptos::prelude::*;

use crate::route::Panel;

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
        Panel::Properties => view! { <PropertiesPanel rows=rows/> }.into_any(),
        Panel::Status => view! { <StatusPanel/> }.into_any(),
    }
}
