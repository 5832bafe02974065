"""Peer of the Pulseboard benchmark: the same job in Quix Streams.

Job: tumbling 10 s windows by event time (the `ts` field), per window the number of
events, the counts by `type` and the unique visitors (an exact set). Like Pulseboard's
dashboard, the windows are global (over all visitors), so the stream is re-keyed to one
key with `group_by` (Quix windows are per message key otherwise), with the same 5 s of
allowed lateness as Pulseboard's default.

The flags are those of the other peers (bench/src/peers/mod.rs, bench/peers/README.md):
--brokers B --topic T --output-topic O --group G --state-dir DIR --events N.

Throughput (N > 0): it reads T with a fresh consumer group from the beginning, writes the
closed windows to O, stops once N messages went through the window step, and prints one
JSON line:
    {"peer": "quix", "events": n, "first_ms": t0, "last_ms": t1, "seconds": s, "eps": x}
measured from the first message read to the n-th message windowed (group join and
start-up excluded; first_ms/last_ms are epoch ms, so the bench can tell the start-up).

Latency (N = 0): it runs until SIGTERM and writes every window update to O as JSON
{"start", "end", "events", "by_type", "unique_visitors"} (`.current()` windows, which take
no collectors: unique visitors are then a set in the window state, not a collected list).
Run by the benchmark (bench/, `cargo xtask bench`).
"""

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime

from quixstreams import Application
from quixstreams.dataframe.windows.aggregations import Aggregator, Collect, Count

WINDOW_MS = 10_000
GRACE_MS = 5_000


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--brokers", required=True, help="bootstrap servers, HOST:PORT")
    p.add_argument("--topic", required=True)
    p.add_argument("--output-topic", required=True, help="where the windows go")
    p.add_argument("--group", required=True, help="a fresh consumer group")
    p.add_argument(
        "--events", type=int, required=True, help="messages to process; 0: run until SIGTERM"
    )
    p.add_argument("--state-dir", default=None, help="Quix state dir (default: a temp dir)")
    return p.parse_args()


def event_time(value, _headers, timestamp, _timestamp_type) -> int:
    """Event time from `ts` (RFC 3339 or epoch ms); the Kafka timestamp if absent."""
    ts = value.get("ts") if isinstance(value, dict) else None
    if isinstance(ts, str):
        return int(datetime.fromisoformat(ts).timestamp() * 1000)
    if isinstance(ts, (int, float)):
        return int(ts)
    return timestamp


class CountByType(Aggregator):
    """Counts by the `type` field: a small dict per window."""

    def initialize(self) -> dict:
        return {}

    def agg(self, old: dict, new, timestamp: int) -> dict:
        kind = new.get("type", "")
        old[kind] = old.get(kind, 0) + 1
        return old

    def result(self, value: dict) -> dict:
        return value


class UniqueSet(Aggregator):
    """Unique values of a column as a set in the window state (for `.current()` windows)."""

    def initialize(self) -> list:
        return []

    def agg(self, old: list, new, timestamp: int) -> list:
        value = new.get(self.column)
        if value is not None and value not in old:
            old.append(value)
        return old

    def result(self, value: list) -> int:
        return len(value)


class UniqueCount(Collect):
    """Unique values of a column: items are appended to the window, the set is built at close."""

    def result(self, items) -> int:
        return len(set(items))


class Progress:
    """Counts messages at the window step and stops the app at the target."""

    def __init__(self, app: Application, target: int):
        self.app = app
        self.target = target
        self.seen = 0
        self.first = None
        self.first_ms = None
        self.last = None
        self.last_ms = None

    def on_read(self, _value) -> None:
        if self.first is None:
            self.first = time.perf_counter()
            self.first_ms = int(time.time() * 1000)

    def on_window_input(self, _value) -> None:
        self.seen += 1
        if self.seen == self.target:
            self.last = time.perf_counter()
            self.last_ms = int(time.time() * 1000)
            self.app.stop()


def build(app: Application, topic_name: str, output: str, progress: Progress) -> None:
    topic = app.topic(topic_name, value_deserializer="json", timestamp_extractor=event_time)
    sdf = app.dataframe(topic)
    sdf = sdf.update(progress.on_read)
    sdf = sdf.group_by(lambda _value: "all", name="all")
    sdf = sdf.update(progress.on_window_input)
    window = sdf.tumbling_window(duration_ms=WINDOW_MS, grace_ms=GRACE_MS)
    if progress.target > 0:
        sdf = window.agg(
            events=Count(), by_type=CountByType(), unique_visitors=UniqueCount("visitor")
        ).final()
    else:
        sdf = window.agg(
            events=Count(), by_type=CountByType(), unique_visitors=UniqueSet("visitor")
        ).current()
    sdf.to_topic(app.topic(output, value_serializer="json"))


def main() -> int:
    args = parse_args()
    state_dir = args.state_dir or tempfile.mkdtemp(prefix="pulseboard-quix-")
    app = Application(
        broker_address=args.brokers,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        state_dir=state_dir,
        loglevel="WARNING",
    )
    progress = Progress(app, args.events)
    build(app, args.topic, args.output_topic, progress)
    app.run()
    if args.events == 0:
        return 0
    if progress.first is None or progress.last is None:
        print(
            json.dumps({"error": f"stopped after {progress.seen} of {args.events} messages"}),
            flush=True,
        )
        return 1
    seconds = progress.last - progress.first
    result = {
        "peer": "quix",
        "events": progress.seen,
        "first_ms": progress.first_ms,
        "last_ms": progress.last_ms,
        "seconds": seconds,
        "eps": progress.seen / seconds,
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
