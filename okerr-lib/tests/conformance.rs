//! The storage conformance suite on [`okerr::MemoryStorage`], directly and through
//! `Arc<dyn Storage>`.

okerr::storage_conformance!(async { Some(okerr::MemoryStorage::new()) });

/// The same checks through the `Arc<T>` forwarding impl and dynamic dispatch.
mod through_arc {
    okerr::storage_conformance!(async {
        Some(std::sync::Arc::new(okerr::MemoryStorage::new()) as std::sync::Arc<dyn okerr::Storage>)
    });
}

/// Every check written in `src/conformance/` that the macro can run (a `pub async fn`
/// taking only the storage) is in [`okerr::conformance::CHECKS`], so no backend's suite
/// silently leaves one out; the two that need the backend's own help are the exceptions.
#[test]
fn every_written_check_is_run_by_the_macro() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/conformance");
    let mut written = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("src/conformance") {
        let path = entry.expect("an entry").path();
        let text = std::fs::read_to_string(&path).expect("a source file");
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("pub async fn ") else {
                continue;
            };
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            written.push(name);
        }
    }
    let needs_the_backend = ["unreadable_notifications_are_parked", "restart_keeps_state"];
    let mut missing: Vec<&str> = written
        .iter()
        .map(String::as_str)
        .filter(|n| !okerr::conformance::CHECKS.contains(n) && !needs_the_backend.contains(n))
        .collect();
    missing.sort_unstable();
    assert_eq!(missing, Vec::<&str>::new(), "checks the macro does not run");
    assert_eq!(
        written.len(),
        okerr::conformance::CHECKS.len() + needs_the_backend.len(),
        "every listed check is written once in src/conformance/"
    );
}
