#!/usr/bin/env python3
"""Reference decoder of a window record's value of Pulseboard's state topic (window
format 2), to show that another system can read it: the header's figures, and the
figures of the row behind it (events and top lists; the HyperLogLog sketches are
skipped, they are Pulseboard's mergeable state).

Usage: state_topic_window.py FILE...   each FILE holds one record value; prints one JSON
object per file. The layout is in docs/scale-out.md and server/src/store/record/window.rs.
A row compressed with zstd (led by 0x81) is decompressed with the `zstandard` module, the
`compression.zstd` module (Python 3.14) or the `zstd` command, whichever is there; without
any, the row's figures are left out ("row": "zstd").
"""

import json
import shutil
import subprocess
import sys


class Reader:
    def __init__(self, data):
        self.b = data
        self.i = 0

    def byte(self):
        if self.i >= len(self.b):
            raise ValueError("truncated")
        v = self.b[self.i]
        self.i += 1
        return v

    def var(self):
        v, shift = 0, 0
        while True:
            byte = self.byte()
            v |= (byte & 0x7F) << shift
            if byte & 0x80 == 0:
                return v
            shift += 7
            if shift > 63:
                raise ValueError("varint too long")

    def take(self, n):
        if self.i + n > len(self.b):
            raise ValueError("truncated")
        out = self.b[self.i : self.i + n]
        self.i += n
        return out

    def string(self):
        return self.take(self.var()).decode("utf-8")


def header(r):
    if r.byte() != 2:
        raise ValueError("not a window value of format 2")
    zz = r.var()
    end = (zz >> 1) ^ -(zz & 1)
    out = {"end": end, "seq": r.var()}
    flags = r.byte()
    out["revised"] = bool(flags & 1)
    out["events"] = r.var()
    out["unique_visitors"] = r.var()
    out["unique_sessions"] = r.var()
    by_type = {}
    for _ in range(r.var()):
        name = r.string()
        by_type[name] = r.var()
    out["by_type"] = by_type
    return out


def skip_sketch(r):
    """Skips one HyperLogLog sketch (its own form, or written against the window's)."""
    tag = r.byte()
    p, form, bit7 = tag & 0x1F, (tag >> 5) & 3, tag & 0x80
    if form == 0:
        return
    if form == 1 and bit7:  # sparse, by index: a rank only where the low index bits are 0
        idx = 0
        for n in range(r.var()):
            step = r.var()
            idx = step if n == 0 else idx + step
            if idx & ((1 << (25 - p)) - 1) == 0:
                r.byte()
        return
    if form == 1:  # sparse, whole entries (earlier releases)
        for _ in range(r.var()):
            r.var()
        return
    if form == 2:  # dense: a byte a register, or packed 6 bits each (earlier releases)
        r.take((1 << p) if bit7 else 3 * (1 << (p - 2)))
        return
    # form 3: positions in the window's list, with a rank byte where flagged
    for _ in range(r.var()):
        if r.var() & 1:
            r.byte()


TOP_LISTS = ["by_type", "urls", "referrers", "countries", "devices", "sources"]


def row_figures(row):
    r = Reader(row)
    if r.byte() != 5:
        raise ValueError("not a row of format 5")
    keys = [r.string() for _ in range(r.var())]
    out = {"events": r.var()}
    for name in TOP_LISTS:
        total, error, n = r.var(), r.var(), r.var()
        entries, count = [], None
        for _ in range(n):
            key = keys[r.var()]
            step = r.var()
            count = step if count is None else count - step
            entries.append([key, count])
        out[name] = {"total": total, "error": error, "top": entries}
    skip_sketch(r)  # visitors
    skip_sketch(r)  # sessions
    goals = {}
    for _ in range(r.var()):
        name = keys[r.var()]
        goals[name] = r.var()
        skip_sketch(r)
    out["goal_completions"] = goals
    return out


def unzstd(frame):
    try:
        import zstandard  # type: ignore

        return zstandard.ZstdDecompressor().decompress(frame, max_output_size=32 << 20)
    except ImportError:
        pass
    try:
        from compression import zstd  # type: ignore

        return zstd.decompress(frame)
    except ImportError:
        pass
    if shutil.which("zstd"):
        done = subprocess.run(["zstd", "-d", "-c"], input=frame, capture_output=True, check=True)
        return done.stdout
    return None


def decode(value):
    r = Reader(value)
    out = header(r)
    row = value[r.i :]
    if row[:1] == b"\x81":
        row = unzstd(row[1:])
        if row is None:
            out["row"] = "zstd"
            return out
    out["row"] = row_figures(row)
    return out


if __name__ == "__main__":
    for path in sys.argv[1:]:
        with open(path, "rb") as f:
            print(json.dumps(decode(f.read()), sort_keys=True))
