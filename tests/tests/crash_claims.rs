//! `kill -9` during an expiry backlog on SQLite: after the restart every overdue indicator
//! turns ERR within about a second, not when the dead server's claims would have ended.
//!
//! 300 indicators of a policy with a 4 s period are pushed through `/update`; the server
//! is killed with SIGKILL; they turn overdue while it is dead; then 200 of them are left
//! claimed as a server killed between its claim and its commit leaves them (the claim is
//! taken with okerr's own SQLite storage on the file, with the server's 10 s lease). On
//! the restart the server takes its claims back: every indicator is ERR within
//! [`AT_MOST`], well inside the lease, so a server that waited for the lease fails.

use std::time::{Duration, Instant};

use chrono::TimeDelta;
use okerr::{Clock, EngineConfig, Status, Storage, SystemClock};
use okerr_backend_sqlite::SqliteStorage;
use okerr_tests::Server;

/// Indicators in the backlog.
const N: usize = 300;
/// Of them, claimed by the dead server.
const CLAIMED: u32 = 200;
/// The policy's period (patience 0): 300 updates through `/update` take about 1.5 s of a
/// debug build, and none may expire before the server is killed.
const PERIOD: TimeDelta = TimeDelta::seconds(4);
/// The bound of the issue: ERR within 1 s of the restart.
const AT_MOST: Duration = Duration::from_secs(1);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// How many of the project's indicators are ERR, read from the database file.
async fn errs(storage: &SqliteStorage, textid: &str) -> usize {
    let project = storage
        .project_by_textid(textid)
        .await
        .expect("read the project")
        .expect("the project");
    storage
        .indicators(project.id)
        .await
        .expect("read the indicators")
        .iter()
        .filter(|i| i.status == Status::Err)
        .count()
}

#[test]
fn sqlite_kill_9_during_an_expiry_backlog_expires_everything_at_restart() {
    let mut server = Server::start(&["--autocreate-burst", "0"]); // 300 new indicators at once
    let textid = server.textid().to_owned();
    server.admin_ok(&[
        "policy",
        "set",
        &textid,
        "Fast",
        "--period",
        "4",
        "--patience",
        "0",
    ]);
    // Real time, as the server reads it.
    let started = SystemClock.now();
    for i in 0..N {
        let name = format!("backlog:{i}");
        let reply = server.http().update(&[
            ("textid", textid.as_str()),
            ("name", name.as_str()),
            ("status", "OK"),
            ("policy", "Fast"),
        ]);
        assert_eq!((reply.status, reply.body.trim()), (200, "OK"), "{name}");
    }
    server.kill();
    let pushed = SystemClock.now();
    assert!(
        pushed < started + PERIOD,
        "the updates took longer than the period: {}",
        pushed - started
    );

    let rt = runtime();
    let storage = rt.block_on(async {
        let storage = SqliteStorage::connect(&server.database_url())
            .await
            .expect("open the database");
        assert_eq!(
            errs(&storage, &textid).await,
            0,
            "all OK before the deadline"
        );
        storage
    });
    // The backlog: every indicator overdue while the server is dead (the last one was
    // updated when the pushing ended).
    let overdue = pushed + PERIOD + TimeDelta::milliseconds(500) - SystemClock.now();
    std::thread::sleep(overdue.to_std().unwrap_or_default());
    let lease = EngineConfig::default().lease;
    let claimed_at = SystemClock.now();
    assert!(claimed_at > pushed + PERIOD);
    rt.block_on(async {
        let claimed = storage
            .claim_due(claimed_at, claimed_at + lease, CLAIMED)
            .await
            .expect("the dead server's claim");
        assert_eq!(claimed.len(), CLAIMED as usize);
        storage.close().await;
    });

    server.restart();
    let restarted = Instant::now();
    let storage = rt.block_on(async {
        SqliteStorage::connect(&server.database_url())
            .await
            .expect("open the database")
    });
    let mut seen = 0;
    while restarted.elapsed() < AT_MOST {
        seen = rt.block_on(errs(&storage, &textid));
        if seen == N {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = restarted.elapsed();
    println!("{seen} of {N} overdue indicators ERR {took:?} after the restart");
    assert_eq!(
        seen,
        N,
        "every overdue indicator is ERR within {AT_MOST:?} of the restart (the claims' \
         lease is {lease}); stderr:\n{}",
        server.stderr()
    );
    assert!(
        server.stderr().contains("took back the claims"),
        "the server says it took its claims back:\n{}",
        server.stderr()
    );
}
