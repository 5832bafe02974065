//! The Python peer: Quix Streams (`bench/peer_quix.py`, pinned in bench/requirements.txt).
//!
//! Contract: it runs in the venv given by `PULSEBOARD_PEER_PYTHON` (made by `cargo xtask
//! bench`); unset, it is skipped with a note. It takes the peers' flags; on `bench` it
//! processes the first `--quix-events` messages, since at a few thousand events/s the whole
//! topic would take many minutes.

use super::{Launch, Peer};
use crate::{workspace_root, Plan};

pub fn peer(plan: &Plan) -> Peer {
    let root = workspace_root();
    let reqs = std::fs::read_to_string(root.join("bench/requirements.txt")).unwrap_or_default();
    let pin = reqs
        .lines()
        .find(|l| l.trim_start().starts_with("quixstreams"))
        .map_or("quixstreams (unpinned?)", str::trim);
    let launch = match &plan.peer_python {
        Some(python) => Ok(Launch {
            program: python.clone(),
            args: vec![root.join("bench/peer_quix.py").into()],
            env: Vec::new(),
        }),
        None => Err("PULSEBOARD_PEER_PYTHON is not set (`cargo xtask bench` sets it)".to_owned()),
    };
    Peer {
        key: "quix",
        version: format!("{pin} (bench/peer_quix.py, one process)"),
        launch,
        events: plan.quix_events.min(plan.events),
        min_eps: 1_000,
        remark: "latency mode emits every window update (`.current()`); throughput mode \
                 emits closed windows (`.final()`)",
    }
}
