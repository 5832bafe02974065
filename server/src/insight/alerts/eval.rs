//! Evaluating alert rules: the [`Evaluator`] holds the rules in force, each rule's state
//! and the history of transitions; the figures come from [`Inputs`].
//!
//! Contract:
//! - [`Evaluator::evaluate`] is pure: the clock and the figures ([`Inputs`]) are
//!   parameters. Spans end at the start of the current window (the last complete one by
//!   the clock). `events_above`/`events_below`: events in the span against the threshold.
//!   `drop`/`spike`: percent change against the same span `vs` earlier (history), only
//!   when that span counted at least `min_baseline`. `dead_letters`: dead letters counted
//!   during the span (from samples of the status total). `lag`: the summed lag now. A rule
//!   needing a span is `pending` until the server has run for that span.
//! - Suppression: a rule fires as soon as its condition holds, and resolves only once the
//!   condition has been false for `suppress`, so a wall display does not flap.
//! - Each transition goes to the history (the last [`HISTORY`]); the caller takes it to
//!   the log, `/metrics` and the webhook.

use std::collections::{HashMap, VecDeque};

use pulseboard_model::proto::{AlertHistoryEntry, AlertNotice, AlertRuleView, WebhookPayload};
use pulseboard_model::rollup::{bucket_start, percent_change};

use super::rules::{Kind, Rule};

/// Transitions kept for `GET /api/v1/alerts`.
pub const HISTORY: usize = 200;

/// The figures rules are evaluated on.
pub trait Inputs {
    /// Events in the windows (and history buckets) whose start lies in `[from, to)`, of
    /// `site` when given.
    fn events(&self, from: i64, to: i64, site: Option<&str>) -> Result<u64, String>;
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
    let text = message_of(rule, value);
    match &rule.site {
        Some(site) => format!("{site}: {text}"),
        None => text,
    }
}

fn message_of(rule: &Rule, value: f64) -> String {
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
pub struct Evaluator {
    window_ms: i64,
    started: i64,
    rules: Vec<Rule>,
    states: HashMap<String, RuleState>,
    history: VecDeque<AlertHistoryEntry>,
    /// `(time, dead letters total)` samples, oldest first, for `dead_letters` spans.
    dead: VecDeque<(i64, u64)>,
}

impl Evaluator {
    /// An evaluator without rules, for windows of `window_ms`, started at `now_ms`.
    pub fn new(window_ms: i64, now_ms: i64) -> Self {
        Evaluator {
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
            let site = rule.site.as_deref();
            let grace =
                rule.kind.needs_span() && now - self.started < rule.over_ms + self.window_ms;
            let measured: Result<Option<(f64, bool)>, String> = if grace {
                Ok(None)
            } else {
                match rule.kind {
                    Kind::EventsAbove | Kind::EventsBelow => {
                        inputs.events(end - rule.over_ms, end, site).map(|n| {
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
                        let now_n = inputs.events(end - rule.over_ms, end, site);
                        let before =
                            inputs.events(end - rule.over_ms - rule.vs_ms, end - rule.vs_ms, site);
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

#[cfg(test)]
mod tests {
    use super::super::rules::parse_rules;
    use super::super::tests::{Fake, T0};
    use super::*;

    fn evaluator(text: &str) -> Evaluator {
        let mut e = Evaluator::new(10_000, T0);
        e.set_rules(parse_rules(text, 10_000).expect("rules"));
        e
    }

    #[test]
    fn events_above_fires_at_once_and_resolves_only_after_the_suppression_interval() {
        let mut e = evaluator(
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
    fn a_rule_of_a_site_counts_that_sites_events_only() {
        let mut e = evaluator(
            "[[rule]]\nname='shop busy'\nkind='events_above'\nthreshold=100\nover='20s'\nsite='shop.example'",
        );
        let mut f = Fake::default();
        // 500 events in all, 60 of them the shop's: quiet for the shop.
        f.windows.insert(T0 + 10_000, 500);
        f.sites
            .entry("shop.example".into())
            .or_default()
            .insert(T0 + 10_000, 60);
        assert!(e.evaluate(T0 + 35_000, &f).is_empty());
        assert_eq!(e.rule_views()[0].state, "ok");
        f.sites
            .entry("shop.example".into())
            .or_default()
            .insert(T0 + 20_000, 60);
        // The same span, [T0+10 s, T0+30 s), now holds 120 of the shop's.
        let t = e.evaluate(T0 + 38_000, &f);
        assert_eq!(t.len(), 1);
        assert!(t[0].firing && t[0].value == 120.0, "{t:?}");
        assert!(
            e.firing()[0]
                .message
                .starts_with("shop.example: 120 events"),
            "{:?}",
            e.firing()
        );
        // Only rules on events name a site.
        let lag = parse_rules(
            "[[rule]]\nname='l'\nkind='lag'\nthreshold=1\nsite='x'",
            10_000,
        );
        assert!(lag.is_err_and(|e| e.to_string().contains("site")));
    }

    #[test]
    fn drop_compares_with_a_week_earlier_and_needs_a_baseline() {
        let mut e = evaluator(
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
        let mut s = evaluator("[[rule]]\nname='s'\nkind='spike'\nthreshold=100\nover='20s'");
        f.windows.insert(T0 + 10_000, 1000);
        let t = s.evaluate(T0 + 35_000, &f);
        assert!(t[0].firing && t[0].value > 100.0);
    }

    #[test]
    fn dead_letters_count_within_the_span_and_lag_is_instant() {
        let mut e = evaluator(
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
}
