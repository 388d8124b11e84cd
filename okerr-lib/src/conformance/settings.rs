//! Server-wide settings.

use crate::storage::Storage;

/// Server-wide settings: absent until put, then the last value put.
pub async fn settings_roundtrip(storage: &dyn Storage) {
    assert_eq!(storage.setting("admin_token").await.expect("read"), None);
    storage
        .put_setting("admin_token", "one")
        .await
        .expect("put");
    storage
        .put_setting("admin_token", "two")
        .await
        .expect("replace");
    storage.put_setting("other", "x").await.expect("put other");
    assert_eq!(
        storage.setting("admin_token").await.expect("read"),
        Some("two".to_owned())
    );
    assert_eq!(
        storage.setting("other").await.expect("read"),
        Some("x".to_owned())
    );
}

/// `put_setting_if_absent`: of 16 concurrent tries on one key exactly one wins and its
/// value stays; a key set by `put_setting` is never taken.
pub async fn put_setting_if_absent_is_won_once(storage: &std::sync::Arc<dyn Storage>) {
    let tries = (0..16).map(|i| {
        let storage = storage.clone();
        tokio::spawn(async move {
            let won = storage
                .put_setting_if_absent("daily", &format!("node {i}"))
                .await
                .expect("put_setting_if_absent()");
            (i, won)
        })
    });
    let mut winners = Vec::new();
    for t in tries {
        let (i, won) = t.await.expect("a task");
        if won {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one winner: {winners:?}");
    assert_eq!(
        storage.setting("daily").await.expect("read"),
        Some(format!("node {}", winners[0])),
        "the winner's value stays"
    );
    storage.put_setting("taken", "x").await.expect("put");
    assert!(
        !storage
            .put_setting_if_absent("taken", "y")
            .await
            .expect("put_setting_if_absent()")
    );
    assert_eq!(
        storage.setting("taken").await.expect("read"),
        Some("x".to_owned())
    );
}
