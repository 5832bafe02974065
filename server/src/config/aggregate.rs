//! What each window counts beyond the basics: segment dimensions and their top N, goals;
//! and how far back "visitors now" reaches.

use pulseboard_model::agg::prop::{PropKey, MAX_PROPERTIES};
use pulseboard_model::agg::segment::{DEFAULT_SEGMENT_TOP, MAX_SEGMENT_TOP};
use pulseboard_model::agg::{
    check_goals, AggSpec, Dimension, Goal, SegmentSpec, DEFAULT_MAX_SITES, MAX_SITES,
};

use super::windows::WindowArgs;
use std::time::Duration;

use clap::Args;

use super::{duration, invalid, millis, ConfigError};

/// What each window counts beyond the basics (segments, goals), and "visitors now".
#[derive(Debug, Clone, Args)]
pub struct AggregateArgs {
    /// Dimensions whose values get per-window sub-aggregates, so that every view can be
    /// filtered by one (`filter=country:DE`): country, device, type, referrer (the
    /// referrer's domain), comma-separated; `none` for no segments.
    #[arg(
        long,
        env = "PULSEBOARD_SEGMENT_DIMENSIONS",
        value_delimiter = ',',
        default_value = "country,device,type,referrer",
        value_parser = segment_dimension
    )]
    pub segment_dimensions: Vec<Option<Dimension>>,
    /// Values per window and dimension with a sub-aggregate of their own (the first ones
    /// seen); the others share the window's "other" bucket. 1 to 100.
    #[arg(long, env = "PULSEBOARD_SEGMENT_TOP", default_value_t = DEFAULT_SEGMENT_TOP)]
    pub segment_top: usize,
    /// A goal (repeatable; `;`-separated in the variable): `signup` (an event type),
    /// `NAME=TYPE`, or `NAME=type:TYPE,url:/path*` (a URL goal without `type:` counts page
    /// views). Embedded mode without any: `signup` and `pricing=url:/pricing`.
    #[arg(long = "goal", env = "PULSEBOARD_GOALS", value_delimiter = ';', value_parser = goal)]
    pub goals: Vec<Goal>,
    /// Sites per window with figures of their own (events carry a `site`; each site's are
    /// exactly what a Pulseboard that only saw it would show). Beyond it a site's events
    /// count under "(other sites)", and the dashboard says so. 1 to 200. Costs nothing while
    /// the traffic is of one site; with several, about a window's bytes per site.
    #[arg(long, env = "PULSEBOARD_MAX_SITES", default_value_t = DEFAULT_MAX_SITES)]
    pub max_sites: usize,
    /// A custom property kept per window (repeatable; `,`-separated in the variable): the
    /// key of the events' `props` object (`props.plan`), whose top values get counts,
    /// unique visitors and a filter (`filter=prop.plan:pro`) as a segment dimension's do,
    /// with `--segment-top` values each. Up to 20. Embedded mode without any: `plan`. Each
    /// costs about a segment dimension's memory and disk per window (see docs/properties.md).
    #[arg(long = "property", env = "PULSEBOARD_PROPERTIES", value_delimiter = ',', value_parser = property)]
    pub properties: Vec<PropKey>,
    /// How far back "visitors now" reaches from wall-clock now (one window to 1 h).
    #[arg(long, env = "PULSEBOARD_NOW_WINDOW", default_value = "5m", value_parser = duration)]
    pub now_window: Duration,
}

/// A `--segment-dimensions` entry: a dimension's name, or `none`.
fn segment_dimension(s: &str) -> Result<Option<Dimension>, String> {
    match s.trim() {
        "none" => Ok(None),
        name => Dimension::ALL
            .into_iter()
            .find(|d| d.name() == name)
            .map(Some)
            .ok_or_else(|| {
                format!("{name:?} is not a dimension: use country, device, type, referrer or none")
            }),
    }
}

/// A `--property`.
fn property(s: &str) -> Result<PropKey, String> {
    PropKey::register(s.trim()).map_err(|e| e.to_string())
}

/// A `--goal`.
fn goal(s: &str) -> Result<Goal, String> {
    Goal::parse(s).map_err(|e| e.to_string())
}

impl AggregateArgs {
    /// The goals of embedded mode when none are given.
    pub const DEMO_GOALS: [&'static str; 2] = ["signup", "pricing=url:/pricing"];
    /// The properties of embedded mode when none are given (the demo's traffic has them).
    pub const DEMO_PROPERTIES: [&'static str; 1] = ["plan"];

    pub fn validate(&mut self, windows: &WindowArgs, embedded: bool) -> Result<(), ConfigError> {
        let names: Vec<&str> = self
            .segment_dimensions
            .iter()
            .map(|d| d.map_or("none", Dimension::name))
            .collect();
        if self.segment_dimensions.contains(&None) && self.segment_dimensions.len() > 1 {
            return Err(invalid(
                "segment-dimensions",
                names.join(","),
                "`none` stands alone",
            ));
        }
        let mut seen = Vec::new();
        for d in self.segment_dimensions.iter().flatten() {
            if seen.contains(d) {
                return Err(invalid(
                    "segment-dimensions",
                    names.join(","),
                    format!("{d} is given twice"),
                ));
            }
            seen.push(*d);
        }
        if !(1..=MAX_SEGMENT_TOP).contains(&self.segment_top) {
            return Err(invalid(
                "segment-top",
                self.segment_top,
                format!("must be between 1 and {MAX_SEGMENT_TOP}"),
            ));
        }
        if !(1..=MAX_SITES).contains(&self.max_sites) {
            return Err(invalid(
                "max-sites",
                self.max_sites,
                format!("must be between 1 and {MAX_SITES}"),
            ));
        }
        if embedded && self.goals.is_empty() {
            self.goals = Self::DEMO_GOALS
                .iter()
                .filter_map(|g| Goal::parse(g).ok())
                .collect();
        }
        check_goals(&self.goals).map_err(|e| invalid("goal", &e.spec, e.reason))?;
        if embedded && self.properties.is_empty() {
            self.properties = Self::DEMO_PROPERTIES
                .iter()
                .filter_map(|k| PropKey::register(k).ok())
                .collect();
        }
        let keys: Vec<&str> = self.properties.iter().map(|k| k.as_str()).collect();
        if self.properties.len() > MAX_PROPERTIES {
            return Err(invalid(
                "property",
                keys.join(","),
                format!("at most {MAX_PROPERTIES} properties"),
            ));
        }
        if let Some(k) = keys
            .iter()
            .enumerate()
            .find(|(i, k)| keys[..*i].contains(k))
        {
            return Err(invalid("property", k.1, "given twice"));
        }
        if self.now_window < windows.width || self.now_window > Duration::from_secs(3600) {
            return Err(invalid(
                "now-window",
                format!("{:?}", self.now_window),
                format!(
                    "must be between one window (--window {:?}) and 1h",
                    windows.width
                ),
            ));
        }
        Ok(())
    }

    /// The dimensions with sub-aggregates: the segments', then the properties'.
    pub fn dimensions(&self) -> Vec<Dimension> {
        let props = self.properties.iter().map(|&k| Dimension::Prop(k));
        self.segment_dimensions
            .iter()
            .flatten()
            .copied()
            .chain(props)
            .collect()
    }

    /// The property keys, in their order (what the decoder keeps of `props`).
    pub fn property_keys(&self) -> Vec<String> {
        self.properties
            .iter()
            .map(|k| k.as_str().to_owned())
            .collect()
    }

    /// What every window counts: these segments and goals.
    pub fn spec(&self) -> AggSpec {
        AggSpec {
            max_sites: self.max_sites,
            segments: SegmentSpec {
                dimensions: self.dimensions(),
                top_n: self.segment_top,
            },
            goals: self.goals.clone(),
        }
    }

    pub fn now_window_ms(&self) -> i64 {
        millis(self.now_window)
    }
}
