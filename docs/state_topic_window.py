#!/usr/bin/env python3
"""Reference decoder of a window record's value of Pulseboard's state topic (window
format 2), to show that another system can read it: the header's figures, and the
figures of the row behind it (row format 6, or 5 of earlier releases: events and top
lists; the HyperLogLog sketches are skipped, they are Pulseboard's mergeable state).

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


class Bits:
    """An LSB-first bitstream from the reader's position (see model/src/agg/hll/rice.rs)."""

    def __init__(self, r):
        self.r = r
        self.pos = 0  # bits read of the bytes from r.i

    def bit(self):
        i = self.r.i + (self.pos >> 3)
        if i >= len(self.r.b):
            raise ValueError("truncated")
        v = (self.r.b[i] >> (self.pos & 7)) & 1
        self.pos += 1
        return v

    def bits(self, n):
        v = 0
        for j in range(n):
            v |= self.bit() << j
        return v

    def rice(self, k, most):
        """A Rice-coded value of at most `most` (its unary run is not read past it)."""
        q = 0
        while self.bit():
            q += 1
            if q << k > most:
                raise ValueError("Rice code out of range")
        v = (q << k) | self.bits(k)
        if v > most:
            raise ValueError("Rice code out of range")
        return v

    def end(self):
        """Skips to the byte boundary that ends the stream."""
        self.r.i += (self.pos + 7) >> 3


def skip_sketch(r, reference=None):
    """Skips one HyperLogLog sketch (its own form, or written against `reference`: the
    sparse count of the sketch it is written against). Returns its sparse count (None when
    dense), which the sketches written against it need."""
    tag = r.byte()
    p, form, bit7 = tag & 0x1F, (tag >> 5) & 3, tag & 0x80
    low = (1 << (25 - p)) - 1  # a rank is written only where these index bits are 0
    if form == 0 and bit7:  # sparse, Rice-coded: index steps, ranks where they count
        n, k = r.var(), r.byte()
        bits, idx = Bits(r), 0
        for j in range(n):
            step = bits.rice(k, (1 << 25) - 1 - idx)
            idx = step if j == 0 else idx + step
            if idx & low == 0:
                bits.bits(6)
        bits.end()
        return n
    if form == 0:
        return 0
    if form == 1 and bit7:  # sparse, by index (earlier releases)
        idx, n = 0, r.var()
        for j in range(n):
            step = r.var()
            idx = step if j == 0 else idx + step
            if idx & low == 0:
                r.byte()
        return n
    if form == 1:  # sparse, whole entries (earlier releases)
        n = r.var()
        for _ in range(n):
            r.var()
        return n
    if form == 2:  # dense: a byte a register, or packed 6 bits each (earlier releases)
        r.take((1 << p) if bit7 else 3 * (1 << (p - 2)))
        return None
    if reference is None:
        raise ValueError("a relative sketch without a sparse reference")
    n = r.var()
    if bit7:  # positions in the reference's list (or those not in the sketch), Rice-coded
        flags, k = r.byte(), r.byte()
        listed = reference - n if flags & 1 else n
        bits, nxt = Bits(r), 0
        for _ in range(listed):
            nxt += bits.rice(k, reference - 1 - nxt) + 1
        bits.end()
        for _ in range(r.var()):  # own ranks: ordinal step, rank byte
            r.var()
            r.byte()
        return n
    for _ in range(n):  # earlier releases: positions, a rank byte where flagged
        if r.var() & 1:
            r.byte()
    return n


TOP_LISTS = ["by_type", "urls", "referrers", "countries", "devices", "sources"]


def dictionary(r, version):
    """The row's keys: whole (format 5), or sorted and front-coded (format 6)."""
    if version == 5:
        return [r.string() for _ in range(r.var())]
    keys, before = [], b""
    for _ in range(r.var()):
        shared = r.var()
        if shared > len(before):
            raise ValueError("a key shares more than the key before")
        key = before[:shared] + r.take(r.var())
        if keys and key <= before:
            raise ValueError("keys not ascending")
        keys.append(key.decode("utf-8"))
        before = key
    return keys


def top_list(r, keys, version):
    """A top list, ranked: count descending, then key."""
    total, error, n = r.var(), r.var(), r.var()
    entries, count, key_id = [], None, None
    for _ in range(n):
        if version == 5:  # ranked: key id, step down from the count before
            key = keys[r.var()]
            step = r.var()
            count = step if count is None else count - step
            entries.append([key, count])
        else:  # by key: key id step (the first whole), count
            step = r.var()
            if key_id is not None and step == 0:
                raise ValueError("a key id step of zero")
            key_id = step if key_id is None else key_id + step
            entries.append([keys[key_id], r.var()])
    entries.sort(key=lambda e: (-e[1], e[0].encode("utf-8")))
    return {"total": total, "error": error, "top": entries}


def row_figures(row):
    r = Reader(row)
    version = r.byte()
    if version not in (5, 6):
        raise ValueError("not a row of format 5 or 6")
    keys = dictionary(r, version)
    out = {"events": r.var()}
    for name in TOP_LISTS:
        out[name] = top_list(r, keys, version)
    visitors = skip_sketch(r)
    skip_sketch(r)  # sessions
    goals = {}
    for _ in range(r.var()):
        name = keys[r.var()]
        goals[name] = r.var()
        skip_sketch(r, visitors)  # converting visitors, against the window's
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
