//! Shared set-up for okerr-lib's integration tests.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::Arc;

use okerr::testing::{ManualClock, RecordingNotifier};
use okerr::{
    Engine, Indicator, IndicatorName, LogLine, MemoryStorage, NewProject, OutboxEntry, Project,
    Storage, TextId, UpdateRequest,
};

/// A project `p1` (alias `p1-alias`) on a memory store, with an engine on a manual clock.
pub struct World {
    pub storage: Arc<MemoryStorage>,
    pub clock: ManualClock,
    pub notifier: RecordingNotifier,
    pub engine: Engine,
    pub project: Project,
}

impl World {
    pub async fn new() -> World {
        World::with(|_| {}).await
    }

    /// A world whose project is changed by `edit` before it is stored.
    pub async fn with(edit: impl FnOnce(&mut NewProject)) -> World {
        let storage = Arc::new(MemoryStorage::new());
        let clock = ManualClock::at_epoch();
        let notifier = RecordingNotifier::new();
        let mut new = NewProject::new("test project", TextId::parse("p1").unwrap())
            .with_member(okerr::Email::parse("ops@example.com").unwrap());
        new.aliases.push(TextId::parse("p1-alias").unwrap());
        edit(&mut new);
        let project = storage.create_project(new).await.unwrap();
        let engine = Engine::new(
            storage.clone(),
            Arc::new(notifier.clone()),
            Arc::new(clock.clone()),
        );
        World {
            storage,
            clock,
            notifier,
            engine,
            project,
        }
    }

    pub async fn indicator(&self, name: &str) -> Option<Indicator> {
        let name = IndicatorName::parse(name).unwrap();
        self.storage
            .indicator(self.project.id, &name)
            .await
            .unwrap()
    }

    pub async fn log(&self, name: &str) -> Vec<String> {
        let name = IndicatorName::parse(name).unwrap();
        let lines: Vec<LogLine> = self
            .storage
            .log(self.project.id, &name, 1000)
            .await
            .unwrap();
        lines.into_iter().map(|l| l.message).collect()
    }

    pub async fn outbox(&self) -> Vec<OutboxEntry> {
        self.storage.outbox(self.project.id).await.unwrap()
    }

    pub async fn push(&self, name: &str, status: &str) -> Indicator {
        self.engine
            .update(UpdateRequest::new("p1", name, status))
            .await
            .unwrap();
        self.indicator(name).await.unwrap()
    }
}

/// An update from 1.2.3.4 over HTTP.
pub fn req(name: &str, status: &str) -> UpdateRequest {
    UpdateRequest {
        ip: Some("1.2.3.4".parse().unwrap()),
        ..UpdateRequest::new("p1", name, status)
    }
}
