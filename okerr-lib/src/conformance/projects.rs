//! Projects: creation, reading by id and textid, saving with a version check.

use url::Url;

use crate::Interval;
use crate::project::{Member, NewProject, Policy, ProjectId};
use crate::storage::{Storage, StorageError};

use super::*;

/// A project reads back as created, by id and by each of its textids; `save_project`
/// replaces every field (name, textids, members, policies, limits); a removed alias is
/// released; unknown textids and ids give `None`; `projects()` lists by id.
pub async fn project_roundtrip(storage: &dyn Storage) {
    empty_store(storage).await;
    let mut new = NewProject::new("Project P", textid("p1"));
    new.aliases = vec![textid("p1-alias")];
    new.members = vec![Member {
        email: email("alice@example.com"),
        alerts: true,
        summary: true,
    }];
    new.max_indicators = Some(10);
    let p = storage
        .create_project(new.clone())
        .await
        .expect("create_project");
    assert_eq!(
        p,
        new.clone().with_id(p.id),
        "create_project returns the project as given, with its id"
    );
    assert_eq!(
        project_of(storage, p.id).await,
        Some(p.clone()),
        "project(id) after create_project"
    );
    for t in ["p1", "p1-alias"] {
        assert_eq!(
            by_textid(storage, t).await,
            Some(p.clone()),
            "project_by_textid({t:?}) after create_project"
        );
    }
    let q = new_project(storage, "q1").await;
    assert_ne!(p.id, q.id, "each project gets its own id");
    assert_eq!(
        all_projects(storage).await,
        by_id(vec![p.clone(), q.clone()]),
        "projects() lists every project, by id"
    );

    let mut changed = p.clone();
    changed.name = "Renamed ü".into();
    changed.aliases.push(textid("p1-second"));
    changed.members[0].alerts = false;
    changed.members.push(Member {
        email: email("bob@example.org"),
        alerts: true,
        summary: false,
    });
    let mut daily = Policy::daily();
    daily.period = Interval::parse("2h").expect("a valid interval");
    daily.url_statuschange = Some(Url::parse("http://127.0.0.1:8080/hook").expect("url"));
    changed.put_policy(daily);
    changed.put_policy(full_policy());
    changed.max_indicators = None;
    changed.limited = true;
    storage
        .save_project(&changed)
        .await
        .expect("save_project of a stored project");
    let changed = saved(&changed);
    assert_eq!(
        project_of(storage, p.id).await,
        Some(changed.clone()),
        "project(id) after save_project: every field replaced, policies and members in order"
    );
    for t in ["p1", "p1-alias", "p1-second"] {
        assert_eq!(
            by_textid(storage, t).await,
            Some(changed.clone()),
            "project_by_textid({t:?}) after save_project added an alias"
        );
    }
    assert_eq!(
        all_projects(storage).await,
        by_id(vec![changed.clone(), q.clone()]),
        "projects() after save_project"
    );

    let mut fewer = changed.clone();
    fewer.aliases.retain(|t| t.as_str() != "p1-alias");
    storage
        .save_project(&fewer)
        .await
        .expect("save_project removing an alias");
    let fewer = saved(&fewer);
    assert_eq!(
        by_textid(storage, "p1-alias").await,
        None,
        "an alias removed by save_project no longer finds the project"
    );
    assert_eq!(by_textid(storage, "p1-second").await, Some(fewer.clone()));
    let mut q2 = q.clone();
    q2.aliases.push(textid("p1-alias"));
    storage
        .save_project(&q2)
        .await
        .expect("a removed alias is free for another project");
    assert_eq!(by_textid(storage, "p1-alias").await, Some(saved(&q2)));

    assert_eq!(
        by_textid(storage, "nope").await,
        None,
        "unknown textid gives None"
    );
    let unknown = ProjectId(p.id.0.max(q.id.0) + 1000);
    assert_eq!(
        project_of(storage, unknown).await,
        None,
        "unknown id gives None"
    );
}

/// A textid (main or alias) belongs to one project: `create_project` and `save_project`
/// taking another project's textid fail with `Conflict` and change nothing; a project's
/// own textids are no conflict; `save_project` of an unknown id fails with `NotFound`.
pub async fn textid_conflicts(storage: &dyn Storage) {
    empty_store(storage).await;
    let mut new = NewProject::new("p", textid("p1"));
    new.aliases = vec![textid("p1-alias")];
    let p = storage.create_project(new).await.expect("create_project");

    let cases: [(&str, &str, &[&str]); 4] = [
        ("a main textid that is another's main textid", "p1", &[]),
        ("a main textid that is another's alias", "p1-alias", &[]),
        ("an alias that is another's main textid", "q1", &["p1"]),
        ("an alias that is another's alias", "q1", &["p1-alias"]),
    ];
    for (what, main, aliases) in cases {
        let mut n = NewProject::new("q", textid(main));
        n.aliases = aliases.iter().map(|a| textid(a)).collect();
        assert_conflict(
            storage.create_project(n).await,
            &format!("create_project with {what}"),
        );
        assert_eq!(
            all_projects(storage).await,
            vec![p.clone()],
            "a refused create_project ({what}) stores nothing"
        );
        assert_eq!(
            by_textid(storage, "q1").await,
            None,
            "a refused create_project ({what}) claims no textid"
        );
    }

    let q = new_project(storage, "q1").await;
    let mut steal_main = q.clone();
    steal_main.aliases.push(textid("p1"));
    let mut steal_alias = q.clone();
    steal_alias.aliases.push(textid("p1-alias"));
    steal_alias.name = "changed".into();
    let mut take_as_main = q.clone();
    take_as_main.textid = textid("p1-alias");
    for (what, bad) in [
        ("an alias that is another's main textid", steal_main),
        ("an alias that is another's alias", steal_alias),
        ("a main textid that is another's alias", take_as_main),
    ] {
        assert_conflict(
            storage.save_project(&bad).await,
            &format!("save_project with {what}"),
        );
        assert_eq!(
            project_of(storage, q.id).await,
            Some(q.clone()),
            "a refused save_project ({what}) changes nothing"
        );
        for (t, owner) in [("p1", &p), ("p1-alias", &p), ("q1", &q)] {
            assert_eq!(
                by_textid(storage, t).await.as_ref(),
                Some(owner),
                "a refused save_project ({what}) moves no textid ({t})"
            );
        }
    }

    storage
        .save_project(&q)
        .await
        .expect("save_project of a project unchanged: its own textids are no conflict");
    let q = saved(&q);
    let mut swapped = q.clone();
    swapped.textid = textid("q1-new");
    swapped.aliases = vec![textid("q1")];
    storage
        .save_project(&swapped)
        .await
        .expect("save_project moving its main textid to an alias is no conflict");
    let swapped = saved(&swapped);
    for t in ["q1", "q1-new"] {
        assert_eq!(
            by_textid(storage, t).await,
            Some(swapped.clone()),
            "project_by_textid({t:?}) after the main textid became an alias"
        );
    }

    let ghost =
        NewProject::new("ghost", textid("ghost")).with_id(ProjectId(p.id.0.max(q.id.0) + 1000));
    match storage.save_project(&ghost).await {
        Err(StorageError::NotFound { .. }) => {}
        other => panic!("save_project of an unknown id: expected Err(NotFound), got {other:?}"),
    }
    assert_eq!(
        all_projects(storage).await,
        by_id(vec![p.clone(), swapped.clone()]),
        "a save_project of an unknown id creates nothing"
    );
    assert_eq!(by_textid(storage, "ghost").await, None);
}

/// Two edits of one project never undo each other: `save_project` of a copy read before
/// the last save fails with `Conflict` and writes nothing; the version moves on by one per
/// save, and a fresh read saves.
pub async fn save_project_refuses_a_stale_copy(storage: &dyn Storage) {
    empty_store(storage).await;
    let p = new_project(storage, "p1").await;
    assert_eq!(p.version, 0, "a new project is at version 0");
    let (mut first, mut second) = (p.clone(), p.clone());
    first.name = "first edit".into();
    second.limited = true;
    storage.save_project(&first).await.expect("the first edit");
    assert_conflict(
        storage.save_project(&second).await,
        "save_project of a copy read before the first edit",
    );
    assert_eq!(
        project_of(storage, p.id).await,
        Some(saved(&first)),
        "the refused edit wrote nothing"
    );
    let mut again = project_of(storage, p.id).await.expect("stored");
    again.limited = true;
    storage
        .save_project(&again)
        .await
        .expect("the edit redone on a fresh read");
    let stored = project_of(storage, p.id).await.expect("stored");
    assert_eq!(
        (stored.version, stored.name.as_str(), stored.limited),
        (2, "first edit", true)
    );
    assert_eq!(by_textid(storage, "p1").await, Some(stored));
}
