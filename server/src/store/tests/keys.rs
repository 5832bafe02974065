//! Tests of the key encodings (`store::keys`).

use crate::store::keys::{decode_partition_key, partition_key, window_key};

#[test]
fn keys_sort_like_numbers() {
    let mut ks: Vec<Vec<u8>> = [-20_000i64, -10_000, 0, 10_000, i64::MAX / 2]
        .iter()
        .map(|s| window_key(*s, "clicks", 3))
        .collect();
    let sorted = ks.clone();
    ks.sort();
    assert_eq!(ks, sorted);
    assert_eq!(
        decode_partition_key(&partition_key("clicks", -1)),
        Some(("clicks".into(), -1))
    );
}
