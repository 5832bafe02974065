//! Alerts: rules from a small TOML file (`--alerts`), evaluated every `--alerts-interval`;
//! a firing rule shows a banner on every screen (the status carries it), is listed in
//! `GET /api/v1/alerts` with its history, and notifies a webhook.
//!
//! Contract:
//! - The file ([`parse_rules`]) holds an optional `webhook = "https://..."` for every rule
//!   and `[[rule]]` tables: `name`, `kind` (`events_above`, `events_below`, `drop`,
//!   `spike`, `dead_letters`, `lag`), `threshold`, and optionally `over` (the span
//!   evaluated, default one window), `suppress` (default 5m), `vs` (`drop`/`spike`: how far
//!   back, default 7d), `min_baseline` (`drop`/`spike`: events the earlier span must have,
//!   default 100) and `webhook`. Unknown keys, duplicate names, bad durations or URLs are
//!   refused with the reason.
//! - The file is read again every interval; new content replaces the rules (a rule that
//!   keeps its name and definition keeps its state). Content that does not parse, or a file
//!   that cannot be read, keeps the last good rules and reports the error in
//!   `GET /api/v1/alerts` and the log ([`telemetry::alert_rules_failed`]).
//! - [`Engine::evaluate`] is pure: the clock and the figures ([`Inputs`]) are parameters.
//!   Spans end at the start of the current window (the last complete one by the clock).
//!   `events_above`/`events_below`: events in the span against the threshold.
//!   `drop`/`spike`: percent change against the same span `vs` earlier (history), only
//!   when that span counted at least `min_baseline`. `dead_letters`: dead letters counted
//!   during the span (from samples of the status total). `lag`: the summed lag now. A rule
//!   needing a span is `pending` until the server has run for that span.
//! - Suppression: a rule fires as soon as its condition holds, and resolves only once the
//!   condition has been false for `suppress`, so a wall display does not flap.
//! - Each transition goes to the history (the last [`HISTORY`]), the log and `/metrics`,
//!   and to the rule's webhook: queued (at most [`QUEUE`]; beyond, dropped and counted),
//!   POSTed by one task off every other path, retried with exponential backoff (1 s
//!   doubling, at most [`ATTEMPTS`] attempts of at most 5 s each). A failing or slow webhook
//!   delays only later notifications.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pulseboard_model::proto::{
    AlertHistoryEntry, AlertNotice, AlertRuleView, AlertsResponse, WebhookPayload, WebhookStats,
};
use pulseboard_model::rollup::{bucket_start, percent_change};
use pulseboard_model::time::parse_duration_ms;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::hub::Hub;
use crate::progress::Progress;
use crate::store::Store;
use crate::telemetry;

/// Transitions kept for `GET /api/v1/alerts`.
pub const HISTORY: usize = 200;
/// Webhook notifications waiting at most.
pub const QUEUE: usize = 256;
/// Attempts per webhook notification.
pub const ATTEMPTS: u32 = 5;
/// Timeout of one webhook attempt.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// Errors in a rules file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RulesError {
    #[error("the alert rules are not valid TOML: {0}")]
    Toml(String),
    #[error("alert rule {rule:?}: {reason}")]
    Rule { rule: String, reason: String },
    #[error("cannot read the alert rules file {path}: {reason}")]
    Read { path: String, reason: String },
}

/// What a rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    EventsAbove,
    EventsBelow,
    Drop,
    Spike,
    DeadLetters,
    Lag,
}

impl Kind {
    const ALL: [Kind; 6] = [
        Kind::EventsAbove,
        Kind::EventsBelow,
        Kind::Drop,
        Kind::Spike,
        Kind::DeadLetters,
        Kind::Lag,
    ];

    /// Its name in the file and the API.
    pub fn name(self) -> &'static str {
        match self {
            Kind::EventsAbove => "events_above",
            Kind::EventsBelow => "events_below",
            Kind::Drop => "drop",
            Kind::Spike => "spike",
            Kind::DeadLetters => "dead_letters",
            Kind::Lag => "lag",
        }
    }

    fn needs_span(self) -> bool {
        !matches!(self, Kind::Lag)
    }
}

/// One rule, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub name: String,
    pub kind: Kind,
    pub threshold: f64,
    pub over_ms: i64,
    pub suppress_ms: i64,
    pub vs_ms: i64,
    pub min_baseline: u64,
    pub webhook: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    webhook: Option<String>,
    #[serde(default, rename = "rule")]
    rules: Vec<RuleDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDoc {
    name: String,
    kind: String,
    threshold: f64,
    over: Option<String>,
    suppress: Option<String>,
    vs: Option<String>,
    min_baseline: Option<u64>,
    webhook: Option<String>,
}

/// Parse and validate a rules file for windows of `window_ms`.
pub fn parse_rules(text: &str, window_ms: i64) -> Result<Vec<Rule>, RulesError> {
    let doc: FileDoc = toml::from_str(text).map_err(|e| RulesError::Toml(e.to_string()))?;
    let mut out: Vec<Rule> = Vec::new();
    for r in doc.rules {
        let fail = |reason: String| RulesError::Rule {
            rule: r.name.clone(),
            reason,
        };
        if r.name.trim().is_empty() {
            return Err(fail("give it a name".into()));
        }
        if out.iter().any(|o| o.name == r.name) {
            return Err(fail("two rules have this name".into()));
        }
        let kind = Kind::ALL
            .into_iter()
            .find(|k| k.name() == r.kind)
            .ok_or_else(|| {
                fail(format!(
                    "kind {:?} is unknown: use one of {}",
                    r.kind,
                    Kind::ALL.map(Kind::name).join(", ")
                ))
            })?;
        if !r.threshold.is_finite() || r.threshold < 0.0 {
            return Err(fail(format!(
                "threshold {} must be a number of at least 0",
                r.threshold
            )));
        }
        let dur = |field: &str, v: &Option<String>, default: i64| -> Result<i64, RulesError> {
            match v {
                None => Ok(default),
                Some(s) => match parse_duration_ms(s) {
                    Ok(ms) if ms > 0 => Ok(ms),
                    _ => Err(fail(format!(
                        "{field} = {s:?} is not a duration such as 1m, 15m, 1h, 7d"
                    ))),
                },
            }
        };
        let over_ms = dur("over", &r.over, window_ms)?;
        if over_ms < window_ms {
            return Err(fail(format!(
                "over must be at least one window ({window_ms} ms)"
            )));
        }
        let suppress_ms = dur("suppress", &r.suppress, 5 * 60_000)?;
        let vs_ms = dur("vs", &r.vs, 7 * 86_400_000)?;
        let webhook = r.webhook.clone().or_else(|| doc.webhook.clone());
        if let Some(url) = &webhook {
            if !(url.starts_with("http://") || url.starts_with("https://"))
                || reqwest::Url::parse(url).is_err()
            {
                return Err(fail(format!(
                    "webhook {url:?} is not an http:// or https:// URL"
                )));
            }
        }
        out.push(Rule {
            name: r.name.clone(),
            kind,
            threshold: r.threshold,
            over_ms,
            suppress_ms,
            vs_ms,
            min_baseline: r.min_baseline.unwrap_or(100),
            webhook,
        });
    }
    Ok(out)
}

/// The built-in rules of embedded mode (the demo generator at `rate` events/s): a spike
/// (a minute with 1.5× the usual events), a drop of traffic, dead letters above 1 % and a
/// lag of more than ten seconds of traffic.
pub fn demo_rules(rate: u32, window_ms: i64) -> String {
    let per_min = f64::from(rate) * 60.0;
    let window_s = window_ms / 1000;
    format!(
        "# Built-in rules of embedded mode (the demo generator at {rate} events/s).\n\
         [[rule]]\nname = \"Traffic spike\"\nkind = \"events_above\"\nthreshold = {}\nover = \"1m\"\nsuppress = \"2m\"\n\n\
         [[rule]]\nname = \"Traffic drop\"\nkind = \"events_below\"\nthreshold = {}\nover = \"1m\"\nsuppress = \"2m\"\n\n\
         [[rule]]\nname = \"Dead letters above 1 %\"\nkind = \"dead_letters\"\nthreshold = {}\nover = \"5m\"\n\n\
         [[rule]]\nname = \"Consumer lag\"\nkind = \"lag\"\nthreshold = {}\nover = \"{window_s}s\"\n",
        (per_min * 1.5).round(),
        (per_min * 0.3).round(),
        (per_min * 5.0 * 0.01).round().max(1.0),
        f64::from(rate) * 10.0,
    )
}

/// The figures rules are evaluated on.
pub trait Inputs {
    /// Events in the windows (and history buckets) whose start lies in `[from, to)`.
    fn events(&self, from: i64, to: i64) -> Result<u64, String>;
    /// Dead letters counted so far (the status total).
    fn dead_letters_total(&self) -> u64;
    /// Summed lag of the partitions, when known.
    fn lag(&self) -> Option<i64>;
}

/// A rule's evaluation state.
#[derive(Debug, Clone, Default, PartialEq)]
struct RuleState {
    firing_since: Option<i64>,
    last_true: Option<i64>,
    value: Option<f64>,
    evaluated_at: Option<i64>,
    error: Option<String>,
    pending: bool,
}

/// A rule starting or stopping to fire.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub rule: String,
    pub kind: Kind,
    pub firing: bool,
    pub value: f64,
    pub threshold: f64,
    pub message: String,
    pub since: i64,
    pub at: i64,
    pub webhook: Option<String>,
}

impl Transition {
    /// What the webhook receives.
    pub fn payload(&self) -> WebhookPayload {
        WebhookPayload {
            version: 1,
            source: "pulseboard".into(),
            rule: self.rule.clone(),
            kind: self.kind.name().into(),
            state: if self.firing { "firing" } else { "resolved" }.into(),
            message: self.message.clone(),
            value: self.value,
            threshold: self.threshold,
            since: self.since,
            at: self.at,
        }
    }
}

/// A span for people: `10s`, `1m`, `15m`, `7d`.
fn span(ms: i64) -> String {
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms >= size && ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

fn message(rule: &Rule, value: f64) -> String {
    let over = span(rule.over_ms);
    match rule.kind {
        Kind::EventsAbove => format!(
            "{} events in the last {over}, above {}",
            value, rule.threshold
        ),
        Kind::EventsBelow => format!(
            "{} events in the last {over}, below {}",
            value, rule.threshold
        ),
        Kind::Drop => format!(
            "events in the last {over} {value:+.1} % against {} earlier (drop of {} % or more)",
            span(rule.vs_ms),
            rule.threshold
        ),
        Kind::Spike => format!(
            "events in the last {over} {value:+.1} % against {} earlier (spike of {} % or more)",
            span(rule.vs_ms),
            rule.threshold
        ),
        Kind::DeadLetters => format!(
            "{value} dead letters in the last {over}, above {}",
            rule.threshold
        ),
        Kind::Lag => format!("consumer lag {value} messages, above {}", rule.threshold),
    }
}

/// The rules and their state: pure, the clock is a parameter.
#[derive(Debug)]
pub struct Engine {
    window_ms: i64,
    started: i64,
    rules: Vec<Rule>,
    states: HashMap<String, RuleState>,
    history: VecDeque<AlertHistoryEntry>,
    /// `(time, dead letters total)` samples, oldest first, for `dead_letters` spans.
    dead: VecDeque<(i64, u64)>,
}

impl Engine {
    /// An engine without rules, for windows of `window_ms`, started at `now_ms`.
    pub fn new(window_ms: i64, now_ms: i64) -> Self {
        Engine {
            window_ms,
            started: now_ms,
            rules: Vec::new(),
            states: HashMap::new(),
            history: VecDeque::new(),
            dead: VecDeque::new(),
        }
    }

    /// Replace the rules; a rule with the same name and definition keeps its state.
    pub fn set_rules(&mut self, rules: Vec<Rule>) {
        let mut states = HashMap::new();
        for r in &rules {
            let same = self.rules.iter().any(|o| o == r);
            let st = match self.states.remove(&r.name) {
                Some(st) if same => st,
                _ => RuleState::default(),
            };
            states.insert(r.name.clone(), st);
        }
        self.states = states;
        self.rules = rules;
    }

    /// The rules in force.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Dead letters counted during `[now - over, now]`: the total now minus the latest
    /// sample at or before the span's start (or the oldest sample).
    fn dead_in(&self, now: i64, over: i64, total: u64) -> u64 {
        let base = self
            .dead
            .iter()
            .rev()
            .find(|(t, _)| *t <= now - over)
            .or(self.dead.front())
            .map_or(total, |(_, n)| *n);
        total.saturating_sub(base)
    }

    /// Evaluate every rule at `now`; returns the transitions (also kept in the history).
    pub fn evaluate(&mut self, now: i64, inputs: &dyn Inputs) -> Vec<Transition> {
        let dead_total = inputs.dead_letters_total();
        self.dead.push_back((now, dead_total));
        let longest = self.rules.iter().map(|r| r.over_ms).max().unwrap_or(0);
        while self
            .dead
            .get(1)
            .is_some_and(|(t, _)| *t <= now - longest - self.window_ms)
        {
            self.dead.pop_front();
        }
        let end = bucket_start(now, self.window_ms);
        let mut out = Vec::new();
        for rule in self.rules.clone() {
            let grace =
                rule.kind.needs_span() && now - self.started < rule.over_ms + self.window_ms;
            let measured: Result<Option<(f64, bool)>, String> = if grace {
                Ok(None)
            } else {
                match rule.kind {
                    Kind::EventsAbove | Kind::EventsBelow => {
                        inputs.events(end - rule.over_ms, end).map(|n| {
                            let v = n as f64;
                            let cond = if rule.kind == Kind::EventsAbove {
                                v > rule.threshold
                            } else {
                                v < rule.threshold
                            };
                            Some((v, cond))
                        })
                    }
                    Kind::Drop | Kind::Spike => {
                        let now_n = inputs.events(end - rule.over_ms, end);
                        let before =
                            inputs.events(end - rule.over_ms - rule.vs_ms, end - rule.vs_ms);
                        now_n.and_then(|n| {
                            before.map(|b| {
                                if b < rule.min_baseline {
                                    return None;
                                }
                                let pct = percent_change(n, b)?;
                                let cond = if rule.kind == Kind::Drop {
                                    pct <= -rule.threshold
                                } else {
                                    pct >= rule.threshold
                                };
                                Some((pct, cond))
                            })
                        })
                    }
                    Kind::DeadLetters => {
                        let v = self.dead_in(now, rule.over_ms, dead_total) as f64;
                        Ok(Some((v, v > rule.threshold)))
                    }
                    Kind::Lag => Ok(inputs.lag().map(|l| (l as f64, l as f64 > rule.threshold))),
                }
            };
            let st = self.states.entry(rule.name.clone()).or_default();
            st.evaluated_at = Some(now);
            let (value, cond) = match measured {
                Err(e) => {
                    st.error = Some(e);
                    continue;
                }
                Ok(None) => {
                    st.error = None;
                    st.pending = true;
                    continue;
                }
                Ok(Some(m)) => m,
            };
            st.error = None;
            st.pending = false;
            st.value = Some(value);
            let transition = if cond {
                st.last_true = Some(now);
                match st.firing_since {
                    Some(_) => None,
                    None => {
                        st.firing_since = Some(now);
                        Some((true, now))
                    }
                }
            } else {
                match st.firing_since {
                    Some(since) if now - st.last_true.unwrap_or(since) >= rule.suppress_ms => {
                        st.firing_since = None;
                        Some((false, since))
                    }
                    _ => None,
                }
            };
            if let Some((firing, since)) = transition {
                out.push(Transition {
                    rule: rule.name.clone(),
                    kind: rule.kind,
                    firing,
                    value,
                    threshold: rule.threshold,
                    message: message(&rule, value),
                    since,
                    at: now,
                    webhook: rule.webhook.clone(),
                });
            }
        }
        for t in &out {
            self.history.push_front(AlertHistoryEntry {
                rule: t.rule.clone(),
                kind: t.kind.name().into(),
                state: if t.firing { "firing" } else { "resolved" }.into(),
                at: t.at,
                value: t.value,
                threshold: t.threshold,
                message: t.message.clone(),
            });
        }
        self.history.truncate(HISTORY);
        out
    }

    /// The rules firing now, for the banner.
    pub fn firing(&self) -> Vec<AlertNotice> {
        self.rules
            .iter()
            .filter_map(|r| {
                let st = self.states.get(&r.name)?;
                let since = st.firing_since?;
                let value = st.value.unwrap_or_default();
                Some(AlertNotice {
                    rule: r.name.clone(),
                    kind: r.kind.name().into(),
                    message: message(r, value),
                    since,
                    value,
                    threshold: r.threshold,
                })
            })
            .collect()
    }

    /// Every rule with its state.
    pub fn rule_views(&self) -> Vec<AlertRuleView> {
        self.rules
            .iter()
            .map(|r| {
                let st = self.states.get(&r.name).cloned().unwrap_or_default();
                let state = if st.error.is_some() {
                    "error"
                } else if st.firing_since.is_some() {
                    "firing"
                } else if st.evaluated_at.is_none() || st.pending {
                    "pending"
                } else {
                    "ok"
                };
                AlertRuleView {
                    name: r.name.clone(),
                    kind: r.kind.name().into(),
                    threshold: r.threshold,
                    over_ms: r.over_ms,
                    suppress_ms: r.suppress_ms,
                    vs_ms: matches!(r.kind, Kind::Drop | Kind::Spike).then_some(r.vs_ms),
                    state: state.into(),
                    value: st.value,
                    since: st.firing_since,
                    error: st.error,
                    webhook: r.webhook.is_some(),
                }
            })
            .collect()
    }

    /// The transitions kept, newest first.
    pub fn history(&self) -> Vec<AlertHistoryEntry> {
        self.history.iter().cloned().collect()
    }
}

// ---------------------------------------------------------------------------------------
// Running: the file, the evaluation loop, the webhook
// ---------------------------------------------------------------------------------------

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
    engine: Engine,
    source: String,
    loaded_at: Option<i64>,
    error: Option<String>,
    evaluated_at: Option<i64>,
    /// The file content last seen (to notice a change).
    seen: Option<String>,
}

#[derive(Debug, Default)]
struct Counters {
    queued: AtomicU64,
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

/// The alerts state shared with the API. Cheap to clone.
#[derive(Clone)]
pub struct Alerts {
    shared: Arc<Mutex<Shared>>,
    webhook: Arc<Counters>,
}

impl Alerts {
    /// No rules yet, for windows of `window_ms`.
    pub fn new(window_ms: i64, now_ms: i64) -> Self {
        Alerts {
            shared: Arc::new(Mutex::new(Shared {
                engine: Engine::new(window_ms, now_ms),
                source: String::new(),
                loaded_at: None,
                error: None,
                evaluated_at: None,
                seen: None,
            })),
            webhook: Arc::new(Counters::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        // The engine is updated field by field; a panic mid-evaluation leaves a state that
        // the next evaluation corrects.
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The body of `GET /api/v1/alerts`.
    pub fn view(&self) -> AlertsResponse {
        let g = self.lock();
        let w = &self.webhook;
        AlertsResponse {
            source: g.source.clone(),
            loaded_at: g.loaded_at,
            error: g.error.clone(),
            evaluated_at: g.evaluated_at,
            rules: g.engine.rule_views(),
            firing: g.engine.firing(),
            history: g.engine.history(),
            webhook: WebhookStats {
                queued: w.queued.load(Ordering::Relaxed),
                sent: w.sent.load(Ordering::Relaxed),
                failed: w.failed.load(Ordering::Relaxed),
                dropped: w.dropped.load(Ordering::Relaxed),
            },
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
                g.engine.set_rules(rules);
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
        let t = g.engine.evaluate(now_ms, inputs);
        g.evaluated_at = Some(now_ms);
        (t, g.engine.firing())
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
    fn events(&self, from: i64, to: i64) -> Result<u64, String> {
        crate::query::history::read(
            (&self.store, &self.hub),
            self.window_ms,
            (from, to),
            None,
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

/// A webhook notification on its way.
struct Outgoing {
    url: String,
    payload: WebhookPayload,
}

/// Evaluate the rules every interval until `shutdown`, and deliver webhooks.
pub async fn run(
    alerts: Alerts,
    cfg: AlertsConfig,
    store: Store,
    hub: Arc<Hub>,
    live: Arc<Progress>,
    shutdown: CancellationToken,
) {
    if matches!(cfg.source, RuleSource::None) {
        shutdown.cancelled().await;
        return;
    }
    let (tx, rx) = mpsc::channel::<Outgoing>(QUEUE);
    let sender = tokio::spawn(deliver(
        rx,
        alerts.webhook.clone(),
        cfg.backoff,
        shutdown.child_token(),
    ));
    let mut tick = tokio::time::interval(cfg.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
        }
        let now = crate::now_ms();
        let status = live.status();
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
        live.set_alerts(firing);
        hub.publish_status();
        for t in transitions {
            if t.firing {
                telemetry::alert_fired(&t.rule, &t.message);
            } else {
                telemetry::alert_resolved(&t.rule);
            }
            if let Some(url) = t.webhook.clone() {
                let out = Outgoing {
                    url,
                    payload: t.payload(),
                };
                match tx.try_send(out) {
                    Ok(()) => {
                        alerts.webhook.queued.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        alerts.webhook.dropped.fetch_add(1, Ordering::Relaxed);
                        telemetry::webhook_delivery(&t.rule, "dropped", 0);
                    }
                }
            }
        }
    }
    drop(tx);
    let left = alerts.webhook.queued.load(Ordering::Relaxed);
    if left > 0 {
        tracing::warn!(
            left,
            "stopping with webhook notifications not yet delivered"
        );
    }
    sender.abort();
    let _ = sender.await;
}

/// Delay before retry `attempt` (1 = after the first failure): `base` doubling, at most 30 s.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    base.saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(Duration::from_secs(30))
}

/// POST each notification in order, retrying with backoff; never blocks anyone else.
async fn deliver(
    mut rx: mpsc::Receiver<Outgoing>,
    counters: Arc<Counters>,
    base: Duration,
    shutdown: CancellationToken,
) {
    let client = match reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        .connect_timeout(Duration::from_secs(3))
        .user_agent(concat!("pulseboard/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot create the webhook client; webhooks are off");
            return;
        }
    };
    while let Some(out) = rx.recv().await {
        let body = serde_json::to_vec(&out.payload).unwrap_or_default();
        let mut attempt = 0;
        let outcome = loop {
            attempt += 1;
            let sent = client
                .post(&out.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await;
            let error = match sent {
                Ok(r) if r.status().is_success() => break "sent",
                Ok(r) => format!("the webhook answered {}", r.status()),
                Err(e) => format!("{e}"),
            };
            telemetry::webhook_attempt_failed(&out.payload.rule, attempt, &error);
            if attempt >= ATTEMPTS {
                break "failed";
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff(base, attempt)) => {}
            }
        };
        counters.queued.fetch_sub(1, Ordering::Relaxed);
        match outcome {
            "sent" => counters.sent.fetch_add(1, Ordering::Relaxed),
            _ => counters.failed.fetch_add(1, Ordering::Relaxed),
        };
        telemetry::webhook_delivery(&out.payload.rule, outcome, attempt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Events per 10 s window by start, a dead letters total and a lag.
    #[derive(Default)]
    struct Fake {
        windows: BTreeMap<i64, u64>,
        dead: u64,
        lag: Option<i64>,
    }

    impl Inputs for Fake {
        fn events(&self, from: i64, to: i64) -> Result<u64, String> {
            Ok(self.windows.range(from..to).map(|(_, n)| n).sum())
        }
        fn dead_letters_total(&self) -> u64 {
            self.dead
        }
        fn lag(&self) -> Option<i64> {
            self.lag
        }
    }

    const T0: i64 = 1_800_000_000_000;

    fn engine(text: &str) -> Engine {
        let mut e = Engine::new(10_000, T0);
        e.set_rules(parse_rules(text, 10_000).expect("rules"));
        e
    }

    #[test]
    fn a_rules_file_is_validated_with_reasons() {
        let ok = parse_rules(
            r#"webhook = "https://hooks.example/p"
[[rule]]
name = "spike"
kind = "events_above"
threshold = 100
over = "1m"
[[rule]]
name = "week"
kind = "drop"
threshold = 50
webhook = "http://127.0.0.1:9/x"
"#,
            10_000,
        )
        .expect("valid");
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].over_ms, 60_000);
        assert_eq!(ok[0].suppress_ms, 300_000);
        assert_eq!(ok[0].webhook.as_deref(), Some("https://hooks.example/p"));
        assert_eq!(ok[1].over_ms, 10_000, "one window by default");
        assert_eq!(ok[1].vs_ms, 7 * 86_400_000);
        assert_eq!(ok[1].webhook.as_deref(), Some("http://127.0.0.1:9/x"));
        for (bad, says) in [
            ("[[rule]]\nname='a'\nkind='nope'\nthreshold=1", "unknown"),
            ("[[rule]]\nname='a'\nkind='lag'\nthreshold=-1", "at least 0"),
            ("[[rule]]\nname='a'\nkind='lag'\nthreshold=1\nover='soon'", "not a duration"),
            ("[[rule]]\nname='a'\nkind='lag'\nthreshold=1\nover='1s'", "at least one window"),
            ("[[rule]]\nname='a'\nkind='lag'\nthreshold=1\nwebhook='ftp://x'", "not an http"),
            ("[[rule]]\nname='a'\nkind='lag'\nthreshold=1\ncolour='red'", "unknown field"),
            ("[[rule]]\nname='a'\nkind='lag'\nthreshold=1\n[[rule]]\nname='a'\nkind='lag'\nthreshold=2", "two rules"),
            ("[[rule]\n", "TOML"),
        ] {
            let err = parse_rules(bad, 10_000).expect_err(bad).to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
        assert!(parse_rules(&demo_rules(200, 10_000), 10_000).is_ok());
    }

    #[test]
    fn events_above_fires_at_once_and_resolves_only_after_the_suppression_interval() {
        let mut e = engine(
            "[[rule]]\nname='spike'\nkind='events_above'\nthreshold=100\nover='20s'\nsuppress='1m'\nwebhook='http://127.0.0.1:1/'",
        );
        let mut f = Fake::default();
        // Not yet running for a whole span (and a window): pending, nothing fires.
        f.windows.insert(T0 + 10_000, 500);
        assert!(e.evaluate(T0 + 25_000, &f).is_empty());
        assert_eq!(e.rule_views()[0].state, "pending");
        // Spans end at the current window's start: [T0+10 s, T0+30 s) at T0+35 s.
        let t = e.evaluate(T0 + 35_000, &f);
        assert_eq!(t.len(), 1);
        assert!(t[0].firing && t[0].value == 500.0 && t[0].since == T0 + 35_000);
        assert_eq!(t[0].payload().state, "firing");
        assert_eq!(e.firing().len(), 1);
        // The spike is over: the condition is false, but the rule holds for a minute.
        for s in [45_000, 65_000, 84_000] {
            assert!(e.evaluate(T0 + s, &f).is_empty(), "{s}");
            assert_eq!(e.firing().len(), 1, "{s}");
        }
        // Flapping back within the interval keeps it firing without a new notification,
        // and moves the end of the quiet period.
        f.windows.insert(T0 + 80_000, 200);
        assert!(e.evaluate(T0 + 95_000, &f).is_empty());
        assert!(e.evaluate(T0 + 150_000, &f).is_empty());
        let t = e.evaluate(T0 + 155_000, &f);
        assert_eq!(t.len(), 1);
        assert!(!t[0].firing && t[0].since == T0 + 35_000 && t[0].at == T0 + 155_000);
        assert!(e.firing().is_empty());
        let h = e.history();
        assert_eq!(
            h.iter().map(|x| x.state.as_str()).collect::<Vec<_>>(),
            vec!["resolved", "firing"]
        );
    }

    #[test]
    fn drop_compares_with_a_week_earlier_and_needs_a_baseline() {
        let mut e = engine(
            "[[rule]]\nname='drop'\nkind='drop'\nthreshold=50\nover='20s'\nsuppress='10s'\nmin_baseline=100",
        );
        let week = 7 * 86_400_000;
        let mut f = Fake::default();
        f.windows.insert(T0 + 10_000 - week, 40);
        f.windows.insert(T0 + 20_000 - week, 40);
        f.windows.insert(T0 + 10_000, 10);
        f.windows.insert(T0 + 20_000, 10);
        // 80 a week ago: below the baseline, no verdict.
        assert!(e.evaluate(T0 + 35_000, &f).is_empty());
        assert_eq!(e.rule_views()[0].state, "pending");
        f.windows.insert(T0 + 10_000 - week, 140);
        let t = e.evaluate(T0 + 36_000, &f);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].value, -88.9, "20 against 180");
        assert!(t[0].message.contains("-88.9 %"), "{}", t[0].message);
        let mut s = engine("[[rule]]\nname='s'\nkind='spike'\nthreshold=100\nover='20s'");
        f.windows.insert(T0 + 10_000, 1000);
        let t = s.evaluate(T0 + 35_000, &f);
        assert!(t[0].firing && t[0].value > 100.0);
    }

    #[test]
    fn dead_letters_count_within_the_span_and_lag_is_instant() {
        let mut e = engine(
            "[[rule]]\nname='dl'\nkind='dead_letters'\nthreshold=5\nover='30s'\n[[rule]]\nname='lag'\nkind='lag'\nthreshold=1000",
        );
        let mut f = Fake {
            dead: 100,
            lag: Some(10),
            ..Fake::default()
        };
        for s in (0..40_000).step_by(5_000) {
            assert!(e.evaluate(T0 + s, &f).is_empty());
        }
        // 6 more dead letters within 30 s: fires; the 100 from before do not count.
        f.dead = 106;
        f.lag = Some(5_000);
        let t = e.evaluate(T0 + 45_000, &f);
        let names: Vec<&str> = t.iter().map(|t| t.rule.as_str()).collect();
        assert_eq!(names, vec!["dl", "lag"]);
        assert_eq!(t[0].value, 6.0);
        // Unknown lag: no verdict, the rule holds its state.
        f.lag = None;
        assert!(e.evaluate(T0 + 50_000, &f).is_empty());
    }

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

    #[test]
    fn backoff_doubles_from_the_base_and_is_bounded() {
        let b = Duration::from_secs(1);
        let d: Vec<u64> = (1..=7).map(|a| backoff(b, a).as_secs()).collect();
        assert_eq!(d, vec![1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(backoff(b, u32::MAX), Duration::from_secs(30));
    }
}
