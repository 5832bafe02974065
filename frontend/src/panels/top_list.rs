//! The top lists ([`TopList`]): pages, referrers, countries, devices and event types, a
//! proportional bar behind each row; a row of a dimension the server segments sets the
//! page's segment when clicked.
//!
//! Contract: the lists come from the range's summary, and until it arrives from a merge of
//! the windows' lists; event types are always summed over the windows (see `figures`).

use leptos::prelude::*;
use pulseboard_model::agg::Dimension;
use pulseboard_model::proto::Count;

use crate::{
    figures, format,
    state::{set_filter, use_app_state},
};

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
    // Rows filter by their value when the server segments this list's dimension (not on a
    // share link's page: the link is pinned to its segment).
    let dim = Memo::new(move |_| {
        kind.dimension().filter(|d| {
            !app.is_link()
                && app.info.with(|i| {
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
