//! `Engine::edit_project`: the one way front ends change a stored project.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Barrier};

use common::{World, req};
use okerr::{EditError, Email, Member, Project, Secret, Storage, TextId};

fn member(email: &str) -> Member {
    Member {
        email: Email::parse(email).unwrap(),
        alerts: true,
        summary: false,
    }
}

/// Two edits read the same version; one saves first, the other meets a conflict and is
/// applied again to a fresh copy, which holds the first edit: both are kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicting_edit_is_redone_on_a_fresh_copy() {
    let w = World::new().await;
    let id = w.project.id;
    let version = w.storage.project(id).await.unwrap().unwrap().version;
    // Both first runs wait for each other: they edit the same version.
    let both_read = Arc::new(Barrier::new(2));
    let runs = Arc::new(AtomicU32::new(0));
    let edits = ["a@example.com", "b@example.com"].map(|email| {
        let (engine, both_read, runs) = (w.engine.clone(), both_read.clone(), runs.clone());
        tokio::spawn(async move {
            let mut first = true;
            engine
                .edit_project(id, move |p: &mut Project| {
                    runs.fetch_add(1, Ordering::SeqCst);
                    if std::mem::take(&mut first) {
                        both_read.wait();
                    }
                    let seen = p.members.len();
                    p.members.push(member(email));
                    Ok::<_, std::convert::Infallible>(seen)
                })
                .await
                .unwrap()
        })
    });
    let mut seen = Vec::new();
    for edit in edits {
        seen.push(edit.await.unwrap());
    }
    seen.sort_unstable();
    // The project has one member (ops@) to begin with; the redone edit saw the other's.
    assert_eq!(
        seen,
        [1, 2],
        "the second save was redone on the first's result"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 3, "one conflict, one retry");
    let stored = w.storage.project(id).await.unwrap().unwrap();
    let emails: Vec<&str> = stored.members.iter().map(|m| m.email.as_str()).collect();
    assert!(emails.contains(&"a@example.com") && emails.contains(&"b@example.com"));
    assert_eq!(stored.version, version + 2);
}

/// An edit that fails saves nothing and its error comes back as it was.
#[tokio::test]
async fn the_edits_error_changes_nothing() {
    let w = World::new().await;
    w.push("srv", "OK").await;
    let before = w.storage.snapshot();
    let mut runs = 0;
    let result = w
        .engine
        .edit_project(w.project.id, |p: &mut Project| {
            runs += 1;
            p.limited = true;
            p.members.clear();
            Err::<(), _>("not allowed")
        })
        .await;
    assert!(
        matches!(result, Err(EditError::Edit("not allowed"))),
        "{result:?}"
    );
    assert_eq!(runs, 1);
    assert_eq!(w.storage.snapshot(), before);
}

/// A textid another project has is refused at once (no retry: the version did not move),
/// and nothing is saved.
#[tokio::test]
async fn a_taken_textid_is_a_conflict_without_retries() {
    let w = World::new().await;
    w.storage
        .create_project(okerr::NewProject::new(
            "other",
            TextId::parse("q1").unwrap(),
        ))
        .await
        .unwrap();
    let before = w.storage.snapshot();
    let mut runs = 0;
    let result = w
        .engine
        .edit_project(w.project.id, |p: &mut Project| {
            runs += 1;
            p.aliases.push(TextId::parse("q1").unwrap());
            Ok::<_, std::convert::Infallible>(())
        })
        .await;
    assert!(
        matches!(&result, Err(EditError::Storage(e)) if e.is_conflict()),
        "{result:?}"
    );
    assert_eq!(runs, 1);
    assert_eq!(w.storage.snapshot(), before);
}

/// The engine decides the next update on the edited project, not on its cached copy:
/// a secret set by an edit is asked for at once, and taken.
#[tokio::test]
async fn the_next_update_sees_the_edit() {
    let w = World::new().await;
    w.push("srv", "OK").await;
    w.engine
        .edit_project(w.project.id, |p: &mut Project| {
            let mut policy = p.policy_or_default("Default");
            policy.secret = Some(Secret::parse("s3").unwrap());
            p.put_policy(policy);
            Ok::<_, std::convert::Infallible>(())
        })
        .await
        .unwrap();
    let e = w.engine.update(req("srv", "ERR")).await.unwrap_err();
    assert_eq!(e.to_string(), "Require secret");
    let mut with_secret = req("srv", "ERR");
    with_secret.secret = Some("s3".into());
    w.engine.update(with_secret).await.unwrap();
    assert_eq!(w.indicator("srv").await.unwrap().status, okerr::Status::Err);
}

/// An unknown project is `NotFound` and the edit never runs.
#[tokio::test]
async fn an_unknown_project_is_not_found() {
    let w = World::new().await;
    let other = okerr::ProjectId(w.project.id.0 + 100);
    let result = w
        .engine
        .edit_project(other, |_: &mut Project| -> Result<(), ()> {
            panic!("the edit runs on no project")
        })
        .await;
    assert!(matches!(result, Err(EditError::NotFound(id)) if id == other));
}

/// ARCHITECTURE.md's invariant "only the engine writes projects": no crate's `src/` calls
/// `save_project` but okerr-lib (the engine, the storage contract and its proof) and the
/// storages that implement it (okerr-sql, the backends). Tests may arrange state with it.
#[test]
fn only_the_engine_saves_projects() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let implementers = [
        "okerr-lib",
        "okerr-sql",
        "okerr-backend-sqlite",
        "okerr-backend-postgres",
    ];
    let mut crates = Vec::new();
    for entry in std::fs::read_dir(&root).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name == "examples" {
            for example in std::fs::read_dir(&path).unwrap() {
                crates.push(example.unwrap().path());
            }
        } else if path.join("Cargo.toml").is_file()
            && !implementers.contains(&name.as_str())
            && name != "vendor"
        {
            crates.push(path);
        }
    }
    assert!(
        crates.iter().any(|c| c.ends_with("okerr-http")),
        "{crates:?}"
    );
    let mut callers = Vec::new();
    let mut scanned = 0;
    let mut dirs: Vec<_> = crates.iter().map(|c| c.join("src")).collect();
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                scanned += 1;
                let text = std::fs::read_to_string(&path).unwrap();
                if text.contains("save_project(") {
                    callers.push(path.display().to_string());
                }
            }
        }
    }
    assert!(
        scanned > 20,
        "the front ends' sources were read ({scanned} files)"
    );
    assert_eq!(
        callers,
        Vec::<String>::new(),
        "save_project outside the engine"
    );
}
