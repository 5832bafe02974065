//! Segments, goals and visitors now over a range: the `filter` parameter, filtered windows
//! and summaries. Their routes (`GET /api/v1/now`, `GET /api/v1/segments`) are
//! `api::segments`.
//!
//! Contract:
//! - `filter=DIMENSION:VALUE` (`country:DE`, `device:mobile`, `type:signup`,
//!   `referrer:news.ycombinator.com`, or `DIMENSION:(other)` for the "other" bucket) is read
//!   by [`SegmentsState::filter`] for the dimensions of `--segment-dimensions`; anything
//!   else is a `400` naming `filter` and saying which dimensions there are.
//! - A filtered view of a window merges, in partition order, the sub-aggregate of the
//!   value from each partition's row ([`merged`]; rows read from the store decode that one
//!   dimension's table), and carries a [`SegmentNote`]: whether the figures hold every
//!   event of the value, or are a lower bound because some windows kept it in their "other"
//!   bucket (see `pulseboard_model::agg::segment`). A summary adds the coverage of its
//!   windows up.
//! - Figures list the configured goals, in their order (`--goal`).
//! - Visitors now at an instant is the merge of the windows overlapping
//!   `[at - --now-window, at]` (`pulseboard_model::now`), read through [`merged`] like every
//!   range; [`SegmentsState::info`] says what a filter may name, N, the goals, and what
//!   visitors now means.

use std::collections::BTreeMap;
use std::sync::Arc;

use pulseboard_model::agg::prop::PropKey;
use pulseboard_model::agg::site::site_hash;
use pulseboard_model::agg::{
    AggSpec, Aggregate, Coverage, Dimension, Filter, Goal, Keep, OTHER_SITES,
};
use pulseboard_model::event::MAX_FIELD_BYTES;
use pulseboard_model::now::definition;
use pulseboard_model::proto::{
    Figures, GoalInfo, SegmentNote, SegmentsInfo, SiteFigures, SiteNote, WindowState, WindowView,
};

use super::properties::TablePart;
use crate::config::Config;
use crate::hub::Hub;
use crate::input::{bad, BadInput};
use crate::store::{Store, StoreError};

/// What the segment, goal and visitors-now routes need (taken from the app's state).
#[derive(Clone, Debug)]
pub struct SegmentsState {
    /// What every window counts: the segment dimensions and N, and the goals.
    pub spec: Arc<AggSpec>,
    /// `--now-window`, ms.
    pub now_span_ms: i64,
    /// `--window`, ms.
    pub window_ms: i64,
}

impl SegmentsState {
    /// The state of a run.
    pub fn from_config(config: &Config) -> Self {
        SegmentsState {
            spec: Arc::new(config.aggregate.spec()),
            now_span_ms: config.aggregate.now_window_ms(),
            window_ms: config.windows.config().width_ms,
        }
    }

    /// The goals counted, in their order.
    pub fn goals(&self) -> &[Goal] {
        &self.spec.goals
    }

    /// The custom properties kept, in their order.
    pub fn properties(&self) -> impl Iterator<Item = PropKey> + '_ {
        self.spec
            .segments
            .dimensions
            .iter()
            .filter_map(|d| d.prop())
    }

    /// The properties a `property` parameter asks for: all when not given (or empty), a
    /// `400` naming `property` when it is not a key of `--property`.
    pub fn property(&self, raw: Option<&str>) -> Result<Vec<PropKey>, BadInput> {
        let all: Vec<PropKey> = self.properties().collect();
        match raw {
            None | Some("") => Ok(all),
            Some(k) => match all.iter().find(|p| p.as_str() == k) {
                Some(p) => Ok(vec![*p]),
                None => {
                    let names: Vec<&str> = all.iter().map(|p| p.as_str()).collect();
                    let kept = if names.is_empty() {
                        "none (this server runs without --property)".to_owned()
                    } else {
                        names.join(", ")
                    };
                    Err(bad(
                        "property",
                        format!("property={k:?} is not kept; the properties kept are {kept}"),
                    ))
                }
            },
        }
    }

    /// The filter of a `filter` parameter: `None` when not given (or empty), a `400` naming
    /// `filter` when it is not `DIMENSION:VALUE` of a segmented dimension.
    pub fn filter(&self, raw: Option<&str>) -> Result<Option<Filter>, BadInput> {
        let raw = match raw {
            None | Some("") => return Ok(None),
            Some(r) => r,
        };
        let dims = &self.spec.segments.dimensions;
        let names = if dims.is_empty() {
            "none (this server runs with --segment-dimensions none)".to_owned()
        } else {
            dims.iter().map(|d| d.name()).collect::<Vec<_>>().join(", ")
        };
        let f = Filter::parse(raw).map_err(|e| {
            bad(
                "filter",
                format!("filter={raw:?}: {e}; the segmented dimensions are {names}"),
            )
        })?;
        if !dims.contains(&f.dimension) {
            return Err(bad(
                "filter",
                format!(
                    "filter={raw:?}: {} is not segmented on this server (--segment-dimensions); the segmented dimensions are {names}",
                    f.dimension
                ),
            ));
        }
        Ok(Some(f))
    }

    /// The view of a `site` and a `filter` parameter (see [`Self::filter`]): a site is any
    /// name (an empty one: all sites) up to the longest field an event may carry; `(other
    /// sites)` shows the sites beyond `--max-sites`.
    pub fn view(&self, site: Option<&str>, filter: Option<&str>) -> Result<View, BadInput> {
        let site = match site {
            None | Some("") => None,
            Some(s) if s.len() > MAX_FIELD_BYTES => {
                return Err(bad(
                    "site",
                    format!("site is {} bytes, at most {MAX_FIELD_BYTES}", s.len()),
                ))
            }
            Some(s) => Some(s.to_owned()),
        };
        Ok(View {
            site,
            filter: self.filter(filter)?,
            ..View::WHOLE
        })
    }

    /// What [`SegmentsInfo`] says.
    pub fn info(&self) -> SegmentsInfo {
        SegmentsInfo {
            dimensions: self
                .spec
                .segments
                .dimensions
                .iter()
                .map(|d| d.name().to_owned())
                .collect(),
            top_n: self.spec.segments.top_n as u32,
            goals: self
                .goals()
                .iter()
                .map(|g| GoalInfo {
                    name: g.name.clone(),
                    rule: g.rule(),
                })
                .collect(),
            properties: self.properties().map(|k| k.as_str().to_owned()).collect(),
            now_window_ms: self.now_span_ms,
            now_definition: definition(self.now_span_ms, self.window_ms),
        }
    }
}

/// What a view shows: one site's traffic or every site's, and of it one segment or all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct View {
    /// One site (`site=`), or every event.
    pub site: Option<String>,
    /// One segment (`filter=`), or all of it.
    pub filter: Option<Filter>,
    /// Each site's figures come along (of the whole site, whatever the filter).
    pub list_sites: bool,
    /// The table of this dimension comes along (a property's, or a segment's for an
    /// export; without a filter: see [`super::properties`]).
    pub table: Option<Dimension>,
}

impl View {
    /// Every event.
    pub const WHOLE: View = View {
        site: None,
        filter: None,
        list_sites: false,
        table: None,
    };

    /// A view of one segment of every site.
    pub fn of_filter(filter: Option<Filter>) -> View {
        View {
            filter,
            ..View::WHOLE
        }
    }

    /// What of a stored row the view reads (see [`Keep`]): never more than its figures, one
    /// segment table (of the site, or of the whole traffic) and the sites' figures.
    pub fn keep(&self) -> Keep {
        // A table is read as a filter of its dimension would be.
        let dim = match (&self.filter, self.table) {
            (Some(f), _) => Some(f.dimension),
            (None, t) => t,
        };
        match (&self.site, dim, self.list_sites) {
            (None, None, false) => Keep::Figures,
            (None, Some(d), false) => Keep::Dimension(d),
            (None, None, true) | (Some(_), None, true) => Keep::Sites,
            (None, Some(d), true) => Keep::DimensionAndSites(d),
            (Some(s), d, false) => Keep::Site(site_hash(s), d),
            (Some(_), Some(d), true) => Keep::SiteDimension(d),
        }
    }
}

impl std::fmt::Display for View {
    /// As query parameters: `site=shop.example&filter=country:DE` (empty: every event).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let site = self.site.as_ref().map(|s| format!("site={s}"));
        let filter = self.filter.as_ref().map(|x| format!("filter={x}"));
        let parts: Vec<String> = site.into_iter().chain(filter).collect();
        f.write_str(&parts.join("&"))
    }
}

/// One window of a view: its figures, with a filter what they cover of the value, and with
/// a site how many events of sites beyond `--max-sites` it could be missing.
#[derive(Debug, Default)]
pub struct Part {
    pub agg: Aggregate,
    pub coverage: Option<Coverage>,
    /// With a site: the events of "other sites" in the rows where the site has none of its
    /// own (its events there, if any, are among them).
    pub site_missing_at_most: u64,
    /// When the view lists them: each site's figures (`(other sites)` too).
    pub sites: BTreeMap<String, Aggregate>,
    /// When the view asks for one: the table of its dimension.
    pub table: Option<TablePart>,
}

impl Part {
    /// Adds another part (windows of a range, partitions of a window).
    pub fn merge(&mut self, other: &Part) {
        self.site_missing_at_most = self
            .site_missing_at_most
            .saturating_add(other.site_missing_at_most);
        for (name, a) in &other.sites {
            self.sites.entry(name.clone()).or_default().merge_figures(a);
        }
        self.agg.merge_figures(&other.agg);
        if let Some(p) = &other.table {
            self.table.get_or_insert_with(TablePart::default).merge(p);
        }
        match (&mut self.coverage, &other.coverage) {
            (Some(mine), Some(c)) => mine.merge(c),
            (None, Some(c)) => self.coverage = Some(*c),
            _ => {}
        }
    }

    /// The note of `filter` with this part's coverage.
    pub fn note(&self, filter: Option<&Filter>) -> Option<SegmentNote> {
        filter
            .zip(self.coverage.as_ref())
            .map(|(f, c)| SegmentNote::new(f, c))
    }

    /// The note of `view`'s site, if it shows one.
    pub fn site_note(&self, view: &View) -> Option<SiteNote> {
        view.site.as_ref().map(|s| SiteNote {
            site: s.clone(),
            complete: self.site_missing_at_most == 0,
            missing_at_most: self.site_missing_at_most,
        })
    }
}

/// Folds one partition's row of a window into a [`Part`]: its figures, or those of the
/// view's site; with a filter the figures of the value's sub-aggregate and what they cover.
pub fn fold(view: &View) -> impl Fn(&mut Part, &Aggregate) + '_ {
    move |part, row| {
        if view.list_sites {
            list_sites(part, row);
        }
        let row = match &view.site {
            None => row,
            Some(site) => match row.site(site) {
                Some(r) => r,
                None => {
                    let missing = row.sites.overflow().map_or(0, |o| o.events);
                    part.site_missing_at_most = part.site_missing_at_most.saturating_add(missing);
                    if view.filter.is_some() {
                        part.coverage.get_or_insert_with(Coverage::default);
                    }
                    return;
                }
            },
        };
        if let (Some(d), None) = (view.table, &view.filter) {
            let p = part.table.get_or_insert_with(TablePart::default);
            if let (Some(t), Some(counts)) = (row.segments.table(d), row.counts_by(d)) {
                p.add(t, counts);
            }
        }
        match &view.filter {
            None => part.agg.merge_figures(row),
            Some(f) => row.fold_segment(
                f,
                &mut part.agg,
                part.coverage.get_or_insert_with(Coverage::default),
            ),
        }
    }
}

/// Adds the figures of each site of `row` to `part`'s list.
fn list_sites(part: &mut Part, row: &Aggregate) {
    let mut add = |name: &str, a: &Aggregate| match part.sites.get_mut(name) {
        Some(mine) => mine.merge_figures(a),
        None => {
            part.sites.insert(name.to_owned(), a.figures_only());
        }
    };
    match row.sites.sole() {
        Some(s) => add(s, row),
        None => {
            for (name, a) in row.sites.table() {
                add(name, a);
            }
            if let Some(o) = row.sites.overflow() {
                add(OTHER_SITES, o);
            }
        }
    }
}

/// The sites of `part`'s list with their figures: most events first (then by name), "other
/// sites" last.
pub fn site_figures(part: &Part) -> Vec<SiteFigures> {
    let mut v: Vec<SiteFigures> = part
        .sites
        .iter()
        .filter(|(name, _)| name.as_str() != OTHER_SITES)
        .map(|(name, a)| SiteFigures::of(name, a))
        .collect();
    v.sort_by(|a, b| b.events.cmp(&a.events).then_with(|| a.site.cmp(&b.site)));
    v.extend(
        part.sites
            .get(OTHER_SITES)
            .map(|a| SiteFigures::of(OTHER_SITES, a)),
    );
    v
}

/// Windows with start in `[from, to)`, merged across partitions (see [`Hub::merged_range`]),
/// as `view` shows them.
pub fn merged(
    hub: &Hub,
    store: &Store,
    from: i64,
    to: i64,
    view: &View,
) -> Result<BTreeMap<i64, Part>, StoreError> {
    hub.merged_range_with(store, from, to, view.keep(), fold(view))
}

/// The view of one window.
pub fn window_view(
    start: i64,
    width: i64,
    state: WindowState,
    part: &Part,
    view: &View,
    top: usize,
    goals: &[Goal],
) -> WindowView {
    WindowView {
        start,
        end: start + width,
        state,
        resolution: Default::default(),
        figures: Figures::with_goals(&part.agg, top, goals),
        segment: part.note(view.filter.as_ref()),
        site: part.site_note(view),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pulseboard_model::agg::{Dimension, SegmentSpec};

    fn state(dims: Vec<Dimension>) -> SegmentsState {
        SegmentsState {
            spec: Arc::new(AggSpec {
                max_sites: 0,
                segments: SegmentSpec {
                    dimensions: dims,
                    top_n: 10,
                },
                goals: vec![Goal::parse("signup").expect("goal")],
            }),
            now_span_ms: 300_000,
            window_ms: 10_000,
        }
    }

    fn bad(st: &SegmentsState, raw: &str) -> String {
        match st.filter(Some(raw)) {
            Err(BadInput { parameter, message }) => {
                assert_eq!(parameter, "filter");
                message
            }
            other => panic!("{raw}: {other:?}"),
        }
    }

    #[test]
    fn a_view_reads_no_more_of_a_row_than_it_shows() {
        let de = Filter::parse("country:DE").ok();
        let site = Some("shop.example".to_owned());
        let view = |site: &Option<String>, filter: &Option<Filter>, list_sites| View {
            site: site.clone(),
            filter: filter.clone(),
            list_sites,
            table: None,
        };
        let country = pulseboard_model::agg::Dimension::Country;
        assert_eq!(view(&None, &None, false).keep(), Keep::Figures);
        assert_eq!(view(&None, &de, false).keep(), Keep::Dimension(country));
        assert_eq!(view(&None, &None, true).keep(), Keep::Sites);
        assert_eq!(view(&site, &None, true).keep(), Keep::Sites);
        assert_eq!(
            view(&None, &de, true).keep(),
            Keep::DimensionAndSites(country)
        );
        assert_eq!(view(&site, &de, true).keep(), Keep::SiteDimension(country));
        let shop = site_hash("shop.example");
        assert_eq!(
            view(&site, &de, false).keep(),
            Keep::Site(shop, Some(country))
        );
        assert_eq!(view(&site, &None, false).keep(), Keep::Site(shop, None));
        // A property's table is read as a filter of it would be.
        let plan = pulseboard_model::agg::prop::PropKey::register("plan").expect("plan");
        let with = |site: &Option<String>| View {
            site: site.clone(),
            table: Some(Dimension::Prop(plan)),
            ..View::WHOLE
        };
        assert_eq!(with(&None).keep(), Keep::Dimension(Dimension::Prop(plan)));
        assert_eq!(
            with(&site).keep(),
            Keep::Site(shop, Some(Dimension::Prop(plan)))
        );
    }

    #[test]
    fn filters_name_a_segmented_dimension_or_get_a_400_saying_which_there_are() {
        let st = state(vec![Dimension::Country, Dimension::Type]);
        assert_eq!(st.filter(None).ok(), Some(None));
        assert_eq!(st.filter(Some("")).ok(), Some(None));
        let f = st
            .filter(Some("country:DE"))
            .ok()
            .flatten()
            .expect("filter");
        assert_eq!(f.to_string(), "country:DE");
        let m = bad(&st, "device:mobile");
        assert!(
            m.contains("not segmented") && m.contains("country, type"),
            "{m}"
        );
        let m = bad(&st, "DE");
        assert!(m.contains("DIMENSION:VALUE"), "{m}");
        let m = bad(&st, "city:Berlin");
        assert!(m.contains("not a dimension"), "{m}");
        let m = bad(&state(vec![]), "country:DE");
        assert!(m.contains("--segment-dimensions none"), "{m}");
        let info = st.info();
        assert_eq!(info.dimensions, vec!["country", "type"]);
        assert_eq!(info.goals[0].rule, "type:signup");
        assert!(info.now_definition.contains("5m"));
    }
}
