//! Event-time tumbling windows and the per-partition window state machine.
//!
//! Contract:
//! - Windows are `[start, start + width)` with `start` aligned to the Unix
//!   epoch ([`window_start`]), also for negative timestamps.
//! - A partition's watermark is `max_event_ts - lateness_ms`. A window is
//!   *closed* once `start + width <= watermark`; a closed window never changes
//!   again: events for it are rejected as [`Late`].
//! - [`PartitionWindows`] does no I/O; the caller persists what
//!   [`PartitionWindows::take_dirty`] returns. Behaviour is a pure function of
//!   the event sequence (and of the state given to
//!   [`PartitionWindows::restore`]).
//! - Across partitions, [`global_watermark`] is the min over the active partitions'
//!   watermarks (an active partition without an event yet holds everything back), or the
//!   max over all of them when none is active. Windows are final up to the highest global
//!   watermark seen so far ([`final_up_to`]): a partition waking up may pull the global
//!   watermark back, but a final window never goes back to live. A window is `final` once
//!   closed under that, `revised` if written to after that, `live` before
//!   ([`window_state`]). [`is_closed`] is the one closing rule for all of these.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::agg::{AggSpec, Aggregate};
use crate::event::Event;
use crate::proto::WindowState;

/// Start of the window of width `width_ms` containing `ts`:
/// `ts - ts.rem_euclid(width_ms)`, i.e. aligned to the Unix epoch.
///
/// Non-positive widths are treated as 1 ms; results that would underflow
/// `i64` saturate to `i64::MIN`.
pub fn window_start(ts: i64, width_ms: i64) -> i64 {
    let w = width_ms.max(1);
    ts.saturating_sub(ts.rem_euclid(w))
}

/// True once the window `[start, start + width_ms)` is closed under `watermark`: its end
/// is at or below the watermark. Non-positive widths are treated as 1 ms; an end that
/// would overflow `i64` saturates.
pub fn is_closed(start: i64, width_ms: i64, watermark: i64) -> bool {
    start.saturating_add(width_ms.max(1)) <= watermark
}

/// The global event-time watermark over partitions given as `(active, watermark)`, where
/// `active` means assigned and not idle (a message within the idle timeout):
///
/// - the min over the active partitions' watermarks; an active partition with no event
///   yet (`None`) holds everything back (`None`);
/// - when no partition is active, the max over every watermark given (an all-idle stream
///   still finalises what it has);
/// - `None` when there is nothing to go by.
pub fn global_watermark(partitions: impl IntoIterator<Item = (bool, Option<i64>)>) -> Option<i64> {
    let mut any_active = false;
    let mut active_min: Option<i64> = None;
    let mut all_max: Option<i64> = None;
    for (active, watermark) in partitions {
        if active {
            any_active = true;
            let w = watermark?;
            active_min = Some(active_min.map_or(w, |m| m.min(w)));
        }
        all_max = all_max.max(watermark);
    }
    if any_active {
        active_min
    } else {
        all_max
    }
}

/// How far windows are final, given how far they were (`previous`, `None` before any
/// watermark) and the current [`global_watermark`]: the highest global watermark seen so
/// far, so a final window never goes back to live when a partition that wakes up pulls
/// the global watermark back.
pub fn final_up_to(previous: Option<i64>, global_watermark: Option<i64>) -> Option<i64> {
    previous.max(global_watermark)
}

/// The state of the window `[start, start + width_ms)` when windows are final up to
/// `final_up_to` (see [`final_up_to`]): `final` once it is closed under it
/// ([`is_closed`]), `revised` instead when it was written to after it had been reported
/// final (`is_revised`), `live` until then.
pub fn window_state(
    start: i64,
    width_ms: i64,
    final_up_to: Option<i64>,
    is_revised: bool,
) -> WindowState {
    match final_up_to {
        Some(w) if is_closed(start, width_ms, w) => {
            if is_revised {
                WindowState::Revised
            } else {
                WindowState::Final
            }
        }
        _ => WindowState::Live,
    }
}

/// Window geometry for a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowConfig {
    /// Window width in ms (> 0).
    pub width_ms: i64,
    /// How far behind the newest event time an event may be and still count.
    pub lateness_ms: i64,
}

impl WindowConfig {
    /// True once the window starting at `start` is closed under `watermark`.
    fn closed(&self, start: i64, watermark: i64) -> bool {
        is_closed(start, self.width_ms, watermark)
    }
}

/// An event rejected because its window had already closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Late {
    /// Start of the (closed) window the event belongs to.
    pub window_start: i64,
    /// The watermark at the time of the event.
    pub watermark: i64,
}

/// Open windows of one partition plus its event-time progress.
#[derive(Debug, Clone)]
pub struct PartitionWindows {
    cfg: WindowConfig,
    /// The goals and segments each window counts.
    spec: Arc<AggSpec>,
    max_event_ts: Option<i64>,
    windows: BTreeMap<i64, Aggregate>,
    dirty: BTreeSet<i64>,
}

impl PartitionWindows {
    /// Empty state: no events seen, no watermark.
    pub fn new(cfg: WindowConfig) -> Self {
        PartitionWindows {
            cfg,
            spec: Arc::new(AggSpec::NONE),
            max_event_ts: None,
            windows: BTreeMap::new(),
            dirty: BTreeSet::new(),
        }
    }

    /// Rebuilds state after a restart. Windows in `open` that are already
    /// closed under the restored watermark are dropped; the rest start clean
    /// (not dirty).
    pub fn restore(
        cfg: WindowConfig,
        max_event_ts: Option<i64>,
        open: Vec<(i64, Aggregate)>,
    ) -> Self {
        let mut pw = PartitionWindows::new(cfg);
        pw.max_event_ts = max_event_ts;
        let wm = pw.watermark();
        for (start, agg) in open {
            if wm.is_some_and(|wm| cfg.closed(start, wm)) {
                continue;
            }
            match pw.windows.get_mut(&start) {
                Some(existing) => existing.merge(&agg),
                None => {
                    pw.windows.insert(start, agg);
                }
            }
        }
        pw
    }

    /// Counts the goals and segments of `spec` in every window from now on.
    pub fn with_spec(mut self, spec: Arc<AggSpec>) -> Self {
        self.spec = spec;
        self
    }

    /// The configuration in use.
    pub fn config(&self) -> WindowConfig {
        self.cfg
    }

    /// The goals and segments counted.
    pub fn spec(&self) -> &Arc<AggSpec> {
        &self.spec
    }

    /// Largest event time accepted so far.
    pub fn max_event_ts(&self) -> Option<i64> {
        self.max_event_ts
    }

    /// `max_event_ts - lateness_ms`, once any event has been seen.
    pub fn watermark(&self) -> Option<i64> {
        self.max_event_ts
            .map(|m| m.saturating_sub(self.cfg.lateness_ms))
    }

    /// Adds `ev` to its window and returns the window start, or rejects it as
    /// [`Late`] when that window is already closed under the watermark as it
    /// was *before* this event.
    pub fn on_event(&mut self, ev: &Event) -> Result<i64, Late> {
        let start = window_start(ev.ts, self.cfg.width_ms);
        if let Some(wm) = self.watermark() {
            if self.cfg.closed(start, wm) {
                return Err(Late {
                    window_start: start,
                    watermark: wm,
                });
            }
        }
        self.windows
            .entry(start)
            .or_default()
            .add_with(ev, &self.spec);
        self.dirty.insert(start);
        self.max_event_ts = Some(self.max_event_ts.map_or(ev.ts, |m| m.max(ev.ts)));
        Ok(start)
    }

    /// The windows changed since the last call, oldest first (closed ones moved out,
    /// open ones cloned); clears the dirty set, then evicts every closed window from
    /// memory.
    pub fn take_dirty(&mut self) -> Vec<(i64, Aggregate)> {
        let dirty = std::mem::take(&mut self.dirty);
        let wm = self.watermark();
        let cfg = self.cfg;
        let out = dirty
            .into_iter()
            .filter_map(|s| {
                if wm.is_some_and(|wm| cfg.closed(s, wm)) {
                    // Leaving memory anyway: no copy.
                    self.windows.remove(&s).map(|a| (s, a))
                } else {
                    self.windows.get(&s).map(|a| (s, a.clone()))
                }
            })
            .collect();
        if let Some(wm) = wm {
            let cfg = self.cfg;
            self.windows.retain(|&s, _| !cfg.closed(s, wm));
        }
        out
    }

    /// The oldest window when the watermark has closed it, taken out of memory, with
    /// whether it changed since the last [`Self::take_dirty`] (a clean one was written whole
    /// then). `None` while the oldest window is open. A caller that pops every closed window
    /// as events come holds open windows only, however far a backlog runs ahead.
    pub fn pop_closed(&mut self) -> Option<(i64, Aggregate, bool)> {
        let wm = self.watermark()?;
        let (&start, _) = self.windows.first_key_value()?;
        if !self.cfg.closed(start, wm) {
            return None;
        }
        let agg = self.windows.remove(&start)?;
        Some((start, agg, self.dirty.remove(&start)))
    }

    /// Windows currently held in memory, oldest first.
    pub fn open_windows(&self) -> impl Iterator<Item = (i64, &Aggregate)> {
        self.windows.iter().map(|(&s, a)| (s, a))
    }

    /// True when some window changed since the last [`Self::take_dirty`].
    pub fn is_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// How many windows changed since the last [`Self::take_dirty`].
    pub fn dirty_len(&self) -> usize {
        self.dirty.len()
    }
}

#[cfg(test)]
mod tests;
