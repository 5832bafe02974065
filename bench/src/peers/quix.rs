//! The Python peer: Quix Streams (`bench/peer_quix.py`, pinned in bench/requirements.txt).
//!
//! Contract: it runs in the venv given by `PULSEBOARD_PEER_PYTHON` (made by `cargo xtask
//! bench`); unset, it is skipped with a note. It takes the peers' flags; on `bench` it
//! processes the first `--quix-events` messages, since at a few thousand events/s the whole
//! topic would take many minutes.

use super::{Launch, Peer};

/// Its job, beside Pulseboard's in the table.
const JOB: &str = "the same windows (10 s tumbling, 5 s grace) over all partitions: events, \
counts by type, distinct visitors (exact, a set per window); lenient JSON decoding, no dead \
letters; group_by one key (a repartition topic), RocksDB state, at-least-once commits, \
closed windows (.final()) to an output topic; one Python process; only the first \
--quix-events messages of the topic (its share is in the results)";
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
        job: JOB,
        jvm_flags: None,
    }
}
