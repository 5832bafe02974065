//! Alerts: rules from a small TOML file (`--alerts`), evaluated every `--alerts-interval`;
//! a firing rule shows a banner on every screen (the status carries it), is listed in
//! `GET /api/v1/alerts` with its history, and notifies a webhook.
//!
//! Contract:
//! - The file is read again every interval; new content replaces the rules (a rule that
//!   keeps its name and definition keeps its state). Content that does not parse, or a file
//!   that cannot be read, keeps the last good rules and reports the error in
//!   `GET /api/v1/alerts` and the log ([`telemetry::alert_rules_failed`]).
//! - The figures are the running server's: events from the store and the hub (history
//!   included), dead letters and lag from the status.
//! - Each transition goes to the history (the last [`eval::HISTORY`]), the log and `/metrics`,
//!   and to the rule's webhook (queued, retried, in no one's way: see `webhook`).
//!
//! # Layout
//! - this module: the [`Alerts`] state `GET /api/v1/alerts` reads, and the task ([`run`])
//!   that reloads and evaluates the rules every interval.
//! - `rules`: the file, parsed and validated ([`parse_rules`]).
//! - `eval`: the rules evaluated over the figures, with suppression ([`Evaluator`]).
//! - `webhook`: the queue of notifications, their delivery and retries.
//! - `demo`: the built-in rules of embedded mode ([`demo_rules`]).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pulseboard_model::proto::{AlertNotice, AlertsResponse};
use tokio_util::sync::CancellationToken;

use crate::hub::Hub;
use crate::progress::Progress;
use crate::store::Store;
use crate::telemetry;

mod demo;
mod eval;
mod rules;
mod webhook;

pub use demo::demo_rules;
pub use eval::{Evaluator, Inputs, Transition};
pub use rules::{parse_rules, RulesError};

use webhook::{WebhookCounters, Webhooks};

/// Where the rules come from.
#[derive(Debug, Clone)]
pub enum RuleSource {
    /// No rules.
    None,
    /// The `--alerts` file, read again every interval.
    File(PathBuf),
    /// Rules given as text (the built-in demo rules).
    Builtin(String),
}

/// Tuning of the alerts task.
#[derive(Debug, Clone)]
pub struct AlertsConfig {
    pub source: RuleSource,
    pub interval: Duration,
    pub window_ms: i64,
    /// First retry delay of a webhook (doubling).
    pub backoff: Duration,
}

#[derive(Debug)]
struct Shared {
    evaluator: Evaluator,
    source: String,
    loaded_at: Option<i64>,
    error: Option<String>,
    evaluated_at: Option<i64>,
    /// The file content last seen (to notice a change).
    seen: Option<String>,
}

/// The alerts state shared with the API. Cheap to clone.
#[derive(Clone)]
pub struct Alerts {
    shared: Arc<Mutex<Shared>>,
    webhook: Arc<WebhookCounters>,
}

impl Alerts {
    /// No rules yet, for windows of `window_ms`.
    pub fn new(window_ms: i64, now_ms: i64) -> Self {
        Alerts {
            shared: Arc::new(Mutex::new(Shared {
                evaluator: Evaluator::new(window_ms, now_ms),
                source: String::new(),
                loaded_at: None,
                error: None,
                evaluated_at: None,
                seen: None,
            })),
            webhook: Arc::new(WebhookCounters::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        // The evaluator is updated field by field; a panic mid-evaluation leaves a state that
        // the next evaluation corrects.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The body of `GET /api/v1/alerts`.
    pub fn view(&self) -> AlertsResponse {
        let g = self.lock();
        AlertsResponse {
            source: g.source.clone(),
            loaded_at: g.loaded_at,
            error: g.error.clone(),
            evaluated_at: g.evaluated_at,
            rules: g.evaluator.rule_views(),
            firing: g.evaluator.firing(),
            history: g.evaluator.history(),
            webhook: self.webhook.stats(),
        }
    }

    /// Load the rules from `source` when its content changed; a refused content keeps the
    /// last good rules and records the error.
    pub fn reload(&self, source: &RuleSource, window_ms: i64, now_ms: i64) {
        let (label, text) = match source {
            RuleSource::None => return,
            RuleSource::Builtin(t) => ("built-in demo rules".to_owned(), Ok(t.clone())),
            RuleSource::File(p) => (
                p.display().to_string(),
                std::fs::read_to_string(p).map_err(|e| RulesError::Read {
                    path: p.display().to_string(),
                    reason: e.to_string(),
                }),
            ),
        };
        let mut g = self.lock();
        g.source = label.clone();
        let text = match text {
            Ok(t) => t,
            Err(e) => {
                if g.error.as_deref() != Some(&e.to_string()) {
                    telemetry::alert_rules_failed(&label, &e);
                }
                g.error = Some(e.to_string());
                g.seen = None;
                return;
            }
        };
        if g.seen.as_deref() == Some(text.as_str()) {
            return;
        }
        g.seen = Some(text.clone());
        match parse_rules(&text, window_ms) {
            Ok(rules) => {
                telemetry::alert_rules_loaded(&label, rules.len());
                g.evaluator.set_rules(rules);
                g.loaded_at = Some(now_ms);
                g.error = None;
            }
            Err(e) => {
                telemetry::alert_rules_failed(&label, &e);
                g.error = Some(e.to_string());
            }
        }
    }

    /// Evaluate at `now_ms`; returns the transitions and the firing notices.
    pub fn evaluate(
        &self,
        now_ms: i64,
        inputs: &dyn Inputs,
    ) -> (Vec<Transition>, Vec<AlertNotice>) {
        let mut g = self.lock();
        let t = g.evaluator.evaluate(now_ms, inputs);
        g.evaluated_at = Some(now_ms);
        (t, g.evaluator.firing())
    }
}

/// The figures of a running server: the store and hub (history included) and the status.
struct LiveInputs {
    store: Store,
    hub: Arc<Hub>,
    window_ms: i64,
    dead_letters_total: u64,
    lag: Option<i64>,
}

impl Inputs for LiveInputs {
    fn events(&self, from: i64, to: i64, site: Option<&str>) -> Result<u64, String> {
        let view = crate::query::segments::View {
            site: site.map(str::to_owned),
            ..crate::query::segments::View::WHOLE
        };
        crate::query::history::read(
            (&self.store, &self.hub),
            self.window_ms,
            (from, to),
            &view,
            |_| pulseboard_model::proto::WindowState::Final,
        )
        .map(|items| items.iter().map(|i| i.part.agg.events).sum())
        .map_err(|e| e.to_string())
    }

    fn dead_letters_total(&self) -> u64 {
        self.dead_letters_total
    }

    fn lag(&self) -> Option<i64> {
        self.lag
    }
}

/// Evaluate the rules every interval until `shutdown`, and deliver webhooks.
pub async fn run(
    alerts: Alerts,
    cfg: AlertsConfig,
    store: Store,
    hub: Arc<Hub>,
    progress: Arc<Progress>,
    shutdown: CancellationToken,
) {
    if matches!(cfg.source, RuleSource::None) {
        shutdown.cancelled().await;
        return;
    }
    let webhooks = Webhooks::start(alerts.webhook.clone(), cfg.backoff, shutdown.child_token());
    let mut tick = tokio::time::interval(cfg.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let now = crate::now_ms();
        let status = progress.status();
        let lag = status
            .partitions
            .iter()
            .map(|p| p.lag)
            .try_fold(0i64, |acc, l| l.map(|l| acc + l));
        let inputs = LiveInputs {
            store: store.clone(),
            hub: hub.clone(),
            window_ms: cfg.window_ms,
            dead_letters_total: status.dead_letters_total,
            lag: if status.partitions.is_empty() {
                None
            } else {
                lag
            },
        };
        let (a, source, window_ms) = (alerts.clone(), cfg.source.clone(), cfg.window_ms);
        let evaluated = tokio::task::spawn_blocking(move || {
            a.reload(&source, window_ms, now);
            a.evaluate(now, &inputs)
        })
        .await;
        let (transitions, firing) = match evaluated {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "alert evaluation failed; the next one tries again");
                continue;
            }
        };
        if transitions.is_empty() {
            continue;
        }
        progress.set_alerts(firing);
        hub.publish_status();
        for t in transitions {
            if t.firing {
                telemetry::alert_fired(&t.rule, &t.message);
            } else {
                telemetry::alert_resolved(&t.rule);
            }
            webhooks.notify(&t);
        }
    }
    webhooks.stop().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Events per 10 s window by start, a dead letters total and a lag.
    #[derive(Default)]
    pub(super) struct Fake {
        pub(super) windows: BTreeMap<i64, u64>,
        /// The same of each site.
        pub(super) sites: BTreeMap<String, BTreeMap<i64, u64>>,
        pub(super) dead: u64,
        pub(super) lag: Option<i64>,
    }

    impl Inputs for Fake {
        fn events(&self, from: i64, to: i64, site: Option<&str>) -> Result<u64, String> {
            let windows = match site {
                None => &self.windows,
                Some(s) => match self.sites.get(s) {
                    Some(w) => w,
                    None => return Ok(0),
                },
            };
            Ok(windows.range(from..to).map(|(_, n)| n).sum())
        }
        fn dead_letters_total(&self) -> u64 {
            self.dead
        }
        fn lag(&self) -> Option<i64> {
            self.lag
        }
    }

    pub(super) const T0: i64 = 1_800_000_000_000;

    #[test]
    fn a_reload_keeps_the_state_of_unchanged_rules_and_a_broken_file_keeps_the_last_good() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("alerts.toml");
        let rule = "[[rule]]\nname='spike'\nkind='events_above'\nthreshold=1\nover='10s'\n";
        std::fs::write(&path, rule).expect("write");
        let a = Alerts::new(10_000, T0);
        let src = RuleSource::File(path.clone());
        a.reload(&src, 10_000, T0);
        let mut f = Fake::default();
        f.windows.insert(T0 + 10_000, 5);
        assert_eq!(a.evaluate(T0 + 25_000, &f).0.len(), 1);
        // Another rule added: the firing one keeps firing, without a second notification.
        std::fs::write(
            &path,
            format!("{rule}[[rule]]\nname='lag'\nkind='lag'\nthreshold=9\n"),
        )
        .expect("write");
        a.reload(&src, 10_000, T0 + 26_000);
        assert!(a.evaluate(T0 + 27_000, &f).0.is_empty());
        let v = a.view();
        assert_eq!(v.rules.len(), 2);
        assert_eq!(v.rules[0].state, "firing");
        // Broken: the error is shown, the rules stay.
        std::fs::write(&path, "[[rule]\nname=").expect("write");
        a.reload(&src, 10_000, T0 + 28_000);
        let v = a.view();
        assert!(
            v.error.as_deref().is_some_and(|e| e.contains("TOML")),
            "{v:?}"
        );
        assert_eq!(v.rules.len(), 2);
        // Gone: the same.
        std::fs::remove_file(&path).expect("rm");
        a.reload(&src, 10_000, T0 + 29_000);
        assert!(a.view().error.is_some_and(|e| e.contains("cannot read")));
        assert_eq!(a.view().rules.len(), 2);
        // Fixed: loaded again, the error is gone.
        std::fs::write(&path, rule).expect("write");
        a.reload(&src, 10_000, T0 + 30_000);
        let v = a.view();
        assert_eq!((v.error, v.rules.len()), (None, 1));
    }
}
