//! Fuzz the decoder: no input may panic it, and every event it accepts survives a round
//! trip through the canonical JSON and folds into an aggregate.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pulseboard_model::agg::Aggregate;
use pulseboard_model::decode::Decoder;
use pulseboard_model::mapping::{FieldMapping, MapRule, Schema};

fuzz_target!(|data: &[u8]| {
    let canonical = Decoder::new(FieldMapping::new(Schema::Canonical, &[]));
    if let Ok(ev) = canonical.decode(data, Some(1_764_000_000_000)) {
        let again = canonical
            .decode(ev.to_json().as_bytes(), None)
            .expect("an accepted event re-encodes to an accepted event");
        assert_eq!(again, ev);
        let mut agg = Aggregate::new();
        agg.add(&ev);
        let back = Aggregate::from_bytes(&agg.to_bytes()).expect("aggregate round trip");
        assert_eq!(back, agg);
    }
    let segment = Decoder::new(FieldMapping::new(Schema::Segment, &[]));
    let _ = segment.decode(data, None);
    let rules: Vec<MapRule> = ["url=/properties/path", "visitor=/anonymousId"]
        .iter()
        .filter_map(|r| r.parse().ok())
        .collect();
    let mapped = Decoder::new(FieldMapping::new(Schema::Canonical, &rules));
    let _ = mapped.decode(data, Some(0));
});
