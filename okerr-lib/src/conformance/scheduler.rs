//! The scheduler's side of storage: claiming due indicators, leases, the next deadline.

use crate::indicator::Status;
use crate::storage::Storage;

use super::*;

/// `claim_due` returns only indicators with `due_at <= now` (inclusive), earliest first,
/// at most `limit`, unchanged; leased ones are skipped until `lease_until` has passed;
/// disabled, problem and dead indicators (no `due_at`) are never claimed.
pub async fn claim_due_in_order_with_lease(storage: &dyn Storage) {
    empty_store(storage).await;
    let p = new_project(storage, "p1").await;
    let mut stored = std::collections::BTreeMap::new();
    for (n, secs) in [("a", 30), ("b", 10), ("c", 20), ("d", 100), ("h", 15)] {
        let ind = write(
            storage,
            &commit(due_indicator(&p, n, at(secs))),
            &format!("insert {n}"),
        )
        .await;
        stored.insert(n, ind);
    }
    let mut e = due_indicator(&p, "e", at(5));
    e.disabled = true;
    let mut f = due_indicator(&p, "f", at(5));
    f.problem = true;
    let mut g = due_indicator(&p, "g", at(5));
    g.status = Status::Err;
    g.dead = true;
    for ind in [e, f, g] {
        write(storage, &commit(ind), "insert an indicator without due_at").await;
    }

    assert!(
        claim(storage, at(9), at(100), 10).await.is_empty(),
        "nothing is due before the earliest due_at; disabled, problem and dead never are"
    );
    assert_eq!(
        claim(storage, at(25), at(85), 1).await,
        vec![stored["b"].clone()],
        "claim_due(limit 1) gives the earliest due indicator, as stored"
    );
    assert_eq!(
        names(&claim(storage, at(25), at(85), 10).await),
        vec!["h", "c"],
        "claim_due gives the due indicators earliest first, skipping the leased one"
    );
    assert!(
        claim(storage, at(25), at(85), 10).await.is_empty(),
        "a second claim at the same time finds every due indicator leased"
    );
    assert_eq!(
        claim(storage, at(30), at(95), 10).await,
        vec![stored["a"].clone()],
        "an indicator due at exactly now is claimed; leased ones are not"
    );
    for (n, ind) in &stored {
        assert_eq!(
            get(storage, &p, n).await.as_ref(),
            Some(ind),
            "a claim changes nothing of the indicator, not even its version"
        );
    }
    assert!(
        claim(storage, at(84), at(200), 10).await.is_empty(),
        "leased indicators are not claimed before the lease ends"
    );
    assert_eq!(
        sorted_names(&claim(storage, at(86), at(200), 10).await),
        vec!["b", "c", "h"],
        "after the lease end the indicators are claimed again"
    );
    // Their order here is not checked: "earliest" could mean by due_at or by the
    // deadline after a lease, and the contract does not say which.
    let all = claim(storage, at(10_000), at(10_060), 100).await;
    assert_eq!(
        sorted_names(&all),
        vec!["a", "b", "c", "d", "h"],
        "disabled, problem and dead indicators are never claimed"
    );
}

/// Committing a claimed indicator ends its lease: its new `due_at` is its deadline (it is
/// claimed again from then, even before the lease would have ended), and no `due_at`
/// (dead) means it is never claimed again.
pub async fn commit_ends_lease(storage: &dyn Storage) {
    empty_store(storage).await;
    let p = new_project(storage, "p1").await;
    for n in ["a", "b"] {
        write(storage, &commit(due_indicator(&p, n, at(10))), "insert").await;
    }
    let claimed = claim(storage, at(10), at(70), 10).await;
    assert_eq!(sorted_names(&claimed), vec!["a", "b"]);
    let find = |n: &str| {
        claimed
            .iter()
            .find(|i| i.name.as_str() == n)
            .cloned()
            .expect("claimed")
    };

    let mut a = find("a");
    a.updated = at(12);
    a.expected = Some(at(30));
    a.scheduled = Some(at(30));
    let a2 = write(storage, &commit(a), "commit of a claimed indicator").await;
    assert_eq!(a2.version, 2);
    assert_eq!(
        deadline(storage).await,
        Some(at(30)),
        "after the commit, a's deadline is its new due_at, not the lease end"
    );
    assert!(
        claim(storage, at(29), at(100), 10).await.is_empty(),
        "not claimed before its new due_at"
    );
    assert_eq!(
        claim(storage, at(30), at(90), 10).await,
        vec![a2],
        "claimed at its new due_at, before the old lease (until 70) would have ended"
    );

    let mut b = find("b");
    b.status = Status::Err;
    b.dead = true;
    write(
        storage,
        &commit(b),
        "commit making a claimed indicator dead",
    )
    .await;
    assert_eq!(
        names(&claim(storage, at(10_000), at(10_060), 10).await),
        vec!["a"],
        "an indicator committed without due_at is never claimed again, lease or not"
    );
    assert_eq!(deadline(storage).await, Some(at(10_060)));
}

/// `next_deadline` is `None` with nothing waiting, else the earliest of: due indicators'
/// `due_at`, leased indicators' lease end, undelivered notifications' release (or lease)
/// time. Delivered notifications and indicators without `due_at` do not count.
pub async fn next_deadline_covers_indicators_and_outbox(storage: &dyn Storage) {
    empty_store(storage).await;
    assert_eq!(
        deadline(storage).await,
        None,
        "an empty store has no deadline"
    );
    let p = new_project(storage, "p1").await;
    assert_eq!(
        deadline(storage).await,
        None,
        "a project alone has no deadline"
    );

    let a = write(
        storage,
        &commit(due_indicator(&p, "a", at(100))),
        "insert a",
    )
    .await;
    let b = write(storage, &commit(due_indicator(&p, "b", at(50))), "insert b").await;
    let mut c = due_indicator(&p, "c", at(10));
    c.disabled = true;
    write(storage, &commit(c), "insert disabled c").await;
    assert_eq!(
        deadline(storage).await,
        Some(at(50)),
        "the earliest due_at (a disabled indicator has none)"
    );

    let mut x = due_indicator(&p, "x", at(5));
    x.disabled = true;
    let mut cx = commit(x);
    cx.notifications = vec![alert(&p, "x", at(0), at(40), None, "held until 40")];
    write(storage, &cx, "insert x with a notification").await;
    assert_eq!(
        deadline(storage).await,
        Some(at(40)),
        "a notification released earlier than every due_at"
    );
    let notes = claim_notes(storage, at(40), at(45), 10).await;
    assert_eq!(notes.len(), 1);
    assert_eq!(
        deadline(storage).await,
        Some(at(45)),
        "a leased notification counts by its lease end"
    );
    storage
        .mark_delivered(&[notes[0].id], at(41))
        .await
        .expect("mark_delivered()");
    assert_eq!(
        deadline(storage).await,
        Some(at(50)),
        "a delivered notification does not count"
    );

    assert_eq!(claim(storage, at(50), at(70), 10).await, vec![b.clone()]);
    assert_eq!(
        deadline(storage).await,
        Some(at(70)),
        "a leased indicator counts by its lease end"
    );
    let mut b2 = b.clone();
    b2.expected = Some(at(200));
    b2.scheduled = Some(at(200));
    write(storage, &commit(b2), "update b").await;
    assert_eq!(
        deadline(storage).await,
        Some(at(100)),
        "after b's commit: a's due_at"
    );
    storage
        .delete_indicator(p.id, &a.name)
        .await
        .expect("delete_indicator()");
    assert_eq!(
        deadline(storage).await,
        Some(at(200)),
        "a deleted indicator does not count"
    );
    storage
        .delete_indicator(p.id, &b.name)
        .await
        .expect("delete_indicator()");
    assert_eq!(
        deadline(storage).await,
        None,
        "nothing waits: c is disabled, x is disabled, the notification is delivered"
    );
}
