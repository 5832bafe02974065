//! What the segment sub-aggregates add to a window, in memory (heap bytes, counted by a
//! global allocator) and encoded (storage bytes): at the demo's cardinalities, at its
//! traffic spike, and in the worst case, which stays bounded however many events come.
//!
//! `cargo test -p pulseboard-model --release --test segment_memory -- --nocapture` prints
//! the table docs/segments.md quotes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Mutex;

use pulseboard_model::agg::{AggSpec, Aggregate, Dimension, Goal, SegmentSpec};
use pulseboard_model::event::Event;
use pulseboard_model::gen::{GenConfig, Generator};

/// Counts the bytes allocated and not yet freed.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::SeqCst);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::SeqCst);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The tests of this file measure one at a time (the counter is global).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn spec(dims: bool, goals: &[&str], top_n: usize) -> AggSpec {
    AggSpec {
        max_sites: 0,
        segments: SegmentSpec {
            dimensions: if dims {
                Dimension::ALL.to_vec()
            } else {
                Vec::new()
            },
            top_n,
        },
        goals: goals
            .iter()
            .map(|g| Goal::parse(g).expect("goal"))
            .collect(),
    }
}

/// Heap bytes and encoded bytes of `partitions` aggregates, event `i` of `n` (made by
/// `make`, not kept) going to partition `i % partitions`.
fn measure(
    partitions: usize,
    n: usize,
    make: &dyn Fn(usize) -> Event,
    spec: &AggSpec,
) -> (usize, usize) {
    let mut aggs: Vec<Aggregate> = Vec::with_capacity(partitions);
    let before = LIVE.load(Ordering::SeqCst);
    aggs.extend((0..partitions).map(|_| Aggregate::new()));
    for i in 0..n {
        aggs[i % partitions].add_with(&make(i), spec);
    }
    let heap = (LIVE.load(Ordering::SeqCst) - before) as usize
        + partitions * std::mem::size_of::<Aggregate>();
    let encoded = aggs.iter().map(|a| a.to_bytes().len()).sum();
    (heap, encoded)
}

type Sizes = ((usize, usize), (usize, usize));

/// Without segments (same goals), and what the segments add: (heap, encoded) each.
fn added(
    partitions: usize,
    n: usize,
    make: &dyn Fn(usize) -> Event,
    goals: &[&str],
    top_n: usize,
) -> Sizes {
    let base = measure(partitions, n, make, &spec(false, goals, top_n));
    let with = measure(partitions, n, make, &spec(true, goals, top_n));
    (base, (with.0 - base.0, with.1 - base.1))
}

/// `rate` events a second for one 10 s window of the demo (at its spike's peak: 5×).
fn demo_window(seed: u64, rate: usize, spike: bool) -> Vec<Event> {
    let cfg = if spike {
        GenConfig::demo()
    } else {
        GenConfig::default()
    };
    let mut g = Generator::new(seed, cfg);
    let t0 = 1_800_000_000_000;
    g.rate_factor(t0); // a spike's schedule counts from here
    let at = if spike { t0 + 120_000 } else { t0 };
    let n = rate * 10 * if spike { 5 } else { 1 };
    (0..n)
        .map(|i| g.next_event(at + (i * 10_000 / n) as i64))
        .collect()
}

fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Event `i` of the worst case: visitor, session, URL and referrer all distinct (keys
/// `key_len` bytes long), and 11 values per dimension (N + 1: the "other" bucket is used)
/// drawn independently, so that every sub-aggregate fills its lists of URLs and referrers
/// and, from 600 events each, turns its sketches dense. Every other event is a page view
/// (which URL goals count).
fn worst(i: usize, key_len: usize) -> Event {
    let pad = |mut s: String| {
        while s.len() < key_len {
            s.push('x');
        }
        s
    };
    let h = |k: u64| mix(i as u64 ^ (k << 56)) % 11;
    Event {
        props: Vec::new(),
        site: None,
        ts: 1_800_000_000_000,
        kind: if i % 2 == 0 {
            "pageview".to_owned()
        } else {
            format!("t{}", h(1))
        },
        visitor: format!("v{i}"),
        session: Some(format!("s{i}")),
        url: pad(format!("/u{i}/")),
        referrer: Some(pad(format!("https://r{}.example/{i}/", h(2)))),
        country: Some(format!("C{}", h(3))),
        device: Some(format!("d{}", h(4))),
    }
}

fn kib(b: usize) -> String {
    format!("{:.1} KiB", b as f64 / 1024.0)
}

#[test]
fn segment_memory_per_window_is_measured_and_bounded() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let demo_goals = ["signup", "pricing=url:/pricing"];
    println!(
        "| case | events | without segments: heap / encoded | added by segments: heap / encoded |"
    );
    println!("|---|---|---|---|");
    let row = |name: &str, events: usize, base: (usize, usize), add: (usize, usize)| {
        println!(
            "| {name} | {events} | {} / {} | {} / {} |",
            kib(base.0),
            kib(base.1),
            kib(add.0),
            kib(add.1)
        );
    };

    // The demo at 200 events/s: one window is 4 partitions × 500 events.
    let window = demo_window(7, 200, false);
    let ((base, add), n) = (
        added(4, window.len(), &|i| window[i].clone(), &demo_goals, 10),
        window.len(),
    );
    row(
        "demo, 200 ev/s, one 10 s window (4 partitions)",
        n,
        base,
        add,
    );
    assert!(add.0 < 4 * 1024 * 1024, "demo: {add:?}");
    // At the spike's peak (5×).
    let window = demo_window(7, 200, true);
    let (base, add) = added(4, window.len(), &|i| window[i].clone(), &demo_goals, 10);
    row(
        "demo spike peak, 1,000 ev/s (4 partitions)",
        window.len(),
        base,
        add,
    );

    // Worst case, one partition's window: every field distinct, 40-byte keys.
    let (base, add) = added(1, 14_000, &|i| worst(i, 40), &demo_goals, 10);
    row(
        "worst case, 40-byte keys, 2 goals (one partition)",
        14_000,
        base,
        add,
    );
    // Bounded: twice the events hold no more (the sketches and lists are full already).
    let (base2, add2) = added(1, 28_000, &|i| worst(i, 40), &demo_goals, 10);
    row(
        "worst case, 40-byte keys, 2 goals, twice the events",
        28_000,
        base2,
        add2,
    );
    assert!(
        (add2.0 as f64) < add.0 as f64 * 1.05,
        "memory grows with the events: {add:?} → {add2:?}"
    );
    // The bound: 4 dimensions × (N + 1) sub-aggregates, each at most 2 dense HLLs
    // (3 KiB at p = 12) + one per goal, and 6 top lists of 64 keys (key + ~64 bytes of map
    // entry).
    let bound = |goals: usize, key: usize| 4 * 11 * ((2 + goals) * 3_072 + 6 * 64 * (key + 64));
    assert!(add.0 <= bound(2, 40), "{} > {}", add.0, bound(2, 40));
    // The very worst: 2 KiB keys (the longest field accepted), 16 goals every page view
    // completes.
    let all_goals: Vec<String> = (0..16).map(|i| format!("g{i}=url:*")).collect();
    let all_goals: Vec<&str> = all_goals.iter().map(String::as_str).collect();
    let (base, add) = added(1, 14_000, &|i| worst(i, 2048), &all_goals, 10);
    row(
        "worst case, 2 KiB keys, 16 goals (one partition)",
        14_000,
        base,
        add,
    );
    assert!(add.0 <= bound(16, 2048), "{} > {}", add.0, bound(16, 2048));
}

/// What one partition's 10 s window of a realistic site (3,000 pages, 60 countries, 40
/// referrers, 200,000 visitors; 1,000 events/s over 4 partitions: 2,500 events) takes
/// whole in memory (an open window), as the figures the hub and the global view keep of a
/// closed one, and encoded (before compression).
#[test]
fn a_realistic_window_whole_as_figures_and_encoded() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let cfg = GenConfig {
        pages: 3_000,
        countries: 60,
        referrers: 40,
        visitors: 200_000,
        ..GenConfig::default()
    };
    let mut g = Generator::new(11, cfg);
    let events: Vec<Event> = (0..2_500)
        .map(|i| g.next_event(1_800_000_000_000 + i * 4))
        .collect();
    let spec = spec(true, &["signup", "pricing=url:/pricing"], 10);
    let before = LIVE.load(Ordering::SeqCst);
    let mut whole = Aggregate::new();
    for e in &events {
        whole.add_with(e, &spec);
    }
    let whole_heap = (LIVE.load(Ordering::SeqCst) - before) as usize;
    let before = LIVE.load(Ordering::SeqCst);
    let figures = whole.figures_only();
    let figures_heap = (LIVE.load(Ordering::SeqCst) - before) as usize;
    let encoded = whole.to_bytes().len();
    println!(
        "realistic window, one partition, 2,500 events: whole {}, figures {}, encoded {}",
        kib(whole_heap),
        kib(figures_heap),
        kib(encoded)
    );
    assert_eq!(figures.events, 2_500);
    // The figures are a fraction of the whole: what holding closed windows this way saves.
    assert!(
        figures_heap * 3 < whole_heap,
        "{figures_heap} of {whole_heap}"
    );
}
