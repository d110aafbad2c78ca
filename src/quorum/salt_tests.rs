//! The salt of a commitment (`salt`): secret per node (its reveal key), stable per instance.

use super::*;

#[test]
fn the_salt_is_secret_per_node_and_stable_per_instance() {
    let a = salt(b"k1", "t", Attempt::FIRST);
    assert_eq!(a, salt(b"k1", "t", Attempt::FIRST));
    assert_ne!(a, salt(b"k2", "t", Attempt::FIRST));
    assert_ne!(a, salt(b"k1", "t", Attempt::new(2).unwrap()));
    assert_ne!(a, salt(b"k1", "u", Attempt::FIRST));
}
