//! Tests of annotations (`store::annotations`).

use crate::store::Store;

#[test]
fn annotations_are_listed_by_time_and_deleted_by_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), 10_000).expect("open");
    let a = store.add_annotation(5_000, "deploy v2", 1).expect("add");
    let b = store.add_annotation(1_000, "campaign", 2).expect("add");
    assert_ne!(a.id, b.id);
    let all = store.annotations_in(0, 10_000, 10).expect("list");
    assert_eq!(all, vec![b.clone(), a.clone()]);
    assert_eq!(
        store.annotations_in(0, 10_000, 1).expect("list"),
        vec![a.clone()]
    );
    assert!(store.delete_annotation(b.id).expect("delete"));
    assert!(!store.delete_annotation(b.id).expect("delete"));
    assert_eq!(store.annotation_count(), 1);
}
