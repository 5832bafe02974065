//! Alert webhooks: each transition of a rule with a webhook is queued and POSTed by one
//! task, in order, with retries.
//!
//! Contract:
//! - A transition goes to its rule's webhook: queued (at most [`QUEUE`]; beyond, dropped
//!   and counted), POSTed by one task off every other path, retried with exponential
//!   backoff (1 s doubling, at most [`ATTEMPTS`] attempts of at most [`ATTEMPT_TIMEOUT`]
//!   each). A failing or slow webhook delays only later notifications.
//! - The body is the transition's [`WebhookPayload`] as JSON; the counters
//!   ([`WebhookCounters`]) are shown in `GET /api/v1/alerts`.
//! - On shutdown, what is still queued is not sent (a warning says how much).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use pulseboard_model::proto::{WebhookPayload, WebhookStats};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::eval::Transition;
use crate::telemetry;

/// Webhook notifications waiting at most.
pub const QUEUE: usize = 256;
/// Attempts per webhook notification.
pub const ATTEMPTS: u32 = 5;
/// Timeout of one webhook attempt.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// What became of the webhook notifications since start.
#[derive(Debug, Default)]
pub(super) struct WebhookCounters {
    queued: AtomicU64,
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

impl WebhookCounters {
    /// The counters as `GET /api/v1/alerts` shows them.
    pub(super) fn stats(&self) -> WebhookStats {
        WebhookStats {
            queued: self.queued.load(Ordering::Relaxed),
            sent: self.sent.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }
}

/// A webhook notification on its way.
struct Outgoing {
    url: String,
    payload: WebhookPayload,
}

/// The queue of notifications and the task that delivers them.
pub(super) struct Webhooks {
    tx: mpsc::Sender<Outgoing>,
    counters: Arc<WebhookCounters>,
    sender: JoinHandle<()>,
}

impl Webhooks {
    /// Start the delivery task: retries wait `base` doubling, `shutdown` ends them.
    pub(super) fn start(
        counters: Arc<WebhookCounters>,
        base: Duration,
        shutdown: CancellationToken,
    ) -> Self {
        let (tx, rx) = mpsc::channel::<Outgoing>(QUEUE);
        let sender = tokio::spawn(deliver(rx, counters.clone(), base, shutdown));
        Webhooks {
            tx,
            counters,
            sender,
        }
    }

    /// Queue the notification of `t` when its rule has a webhook; a full queue drops it.
    pub(super) fn notify(&self, t: &Transition) {
        let Some(url) = t.webhook.clone() else {
            return;
        };
        let out = Outgoing {
            url,
            payload: t.payload(),
        };
        match self.tx.try_send(out) {
            Ok(()) => {
                self.counters.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                telemetry::webhook_delivery(&t.rule, "dropped", 0);
            }
        }
    }

    /// Stop delivering; what is still queued is not sent.
    pub(super) async fn stop(self) {
        let Webhooks {
            tx,
            counters,
            sender,
        } = self;
        drop(tx);
        let left = counters.queued.load(Ordering::Relaxed);
        if left > 0 {
            tracing::warn!(
                left,
                "stopping with webhook notifications not yet delivered"
            );
        }
        sender.abort();
        let _ = sender.await;
    }
}

/// Delay before retry `attempt` (1 = after the first failure): `base` doubling, at most 30 s.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    base.saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(Duration::from_secs(30))
}

/// POST each notification in order, retrying with backoff; never blocks anyone else.
async fn deliver(
    mut rx: mpsc::Receiver<Outgoing>,
    counters: Arc<WebhookCounters>,
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

    #[test]
    fn backoff_doubles_from_the_base_and_is_bounded() {
        let b = Duration::from_secs(1);
        let d: Vec<u64> = (1..=7).map(|a| backoff(b, a).as_secs()).collect();
        assert_eq!(d, vec![1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(backoff(b, u32::MAX), Duration::from_secs(30));
    }
}
