//! The storage conformance suite on [`okerr::MemoryStorage`], directly and through
//! `Arc<dyn Storage>`.

okerr::storage_conformance!(async { Some(okerr::MemoryStorage::new()) });

/// The same checks through the `Arc<T>` forwarding impl and dynamic dispatch.
mod through_arc {
    okerr::storage_conformance!(async {
        Some(std::sync::Arc::new(okerr::MemoryStorage::new()) as std::sync::Arc<dyn okerr::Storage>)
    });
}

#[test]
fn checks_are_listed() {
    let checks = okerr::conformance::CHECKS;
    let mut unique = checks.to_vec();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), checks.len(), "no check is listed twice");
    assert!(checks.contains(&"concurrent_commits_no_lost_update"));
}
