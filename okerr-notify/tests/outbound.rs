//! Webhooks reach only the operator's outbound networks (here set to `public`, the setting of a server for strangers):
//! a loopback webhook is refused, by its literal IP and by a name that resolves to it,
//! and delivers once the setting allows 127.0.0.0/8.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Hooks, webhook_endpoint};
use okerr::testing::ManualClock;
use okerr::{
    Engine, Interval, MemoryStorage, NewProject, OutboundNetworks, Project, Storage, TextId,
    UpdateRequest,
};
use okerr_notify::{Dispatcher, WebhookNotifier};
use url::Url;

struct World {
    storage: Arc<MemoryStorage>,
    project: Project,
    engine: Engine,
}

async fn world(url: Url, networks: OutboundNetworks) -> World {
    let storage = Arc::new(MemoryStorage::new());
    let mut new = NewProject::new("hooks", TextId::parse("p1").unwrap());
    new.policies[0].period = Interval::from_secs(3600);
    new.policies[0].url_statuschange = Some(url);
    let project = storage.create_project(new).await.unwrap();
    let webhook = WebhookNotifier::new(Duration::from_secs(3), networks).unwrap();
    let engine = Engine::new(
        storage.clone(),
        Arc::new(Dispatcher::new(None, webhook)),
        Arc::new(ManualClock::at_epoch()),
    );
    for status in ["OK", "ERR"] {
        let req = UpdateRequest::new("p1", "srv", status);
        engine.update(req).await.unwrap();
    }
    World {
        storage,
        project,
        engine,
    }
}

/// Ticks once; returns (delivered, failed) and the webhook's last error.
async fn deliver(w: &World) -> ((usize, usize), Option<String>) {
    let r = w.engine.tick().await.unwrap();
    let outbox = w.storage.outbox(w.project.id).await.unwrap();
    let error = outbox.iter().find_map(|e| e.last_error.clone());
    ((r.delivered, r.failed), error)
}

#[tokio::test]
async fn a_loopback_webhook_is_refused_by_default_with_the_reason() {
    let hooks = Hooks::default();
    let url = webhook_endpoint(hooks.clone()).await;
    let w = world(url.clone(), OutboundNetworks::public()).await;
    let (counts, error) = deliver(&w).await;
    assert_eq!(counts, (0, 1));
    let error = error.unwrap();
    assert!(
        error.contains(&format!(
            "webhook {url} refused: 127.0.0.1 (127.0.0.1) is outside the networks this server may reach (outbound_networks: public)"
        )),
        "{error}"
    );
    assert!(hooks.data().is_empty(), "nothing reached the endpoint");
}

#[tokio::test]
async fn a_name_that_resolves_to_loopback_is_refused_when_connecting() {
    let hooks = Hooks::default();
    let url = webhook_endpoint(hooks.clone()).await;
    let port = url.port().unwrap();
    let by_name = Url::parse(&format!("http://localhost:{port}/hook")).unwrap();
    let w = world(by_name, OutboundNetworks::public()).await;
    let (counts, error) = deliver(&w).await;
    assert_eq!(counts, (0, 1));
    let error = error.unwrap();
    assert!(error.contains("refused: localhost ("), "{error}");
    assert!(error.contains("is outside the networks"), "{error}");
    assert!(hooks.data().is_empty(), "nothing reached the endpoint");
}

#[tokio::test]
async fn an_allowed_network_delivers() {
    let hooks = Hooks::default();
    let url = webhook_endpoint(hooks.clone()).await;
    let port = url.port().unwrap();
    let allowed = OutboundNetworks(vec!["127.0.0.0/8".parse().unwrap()]);
    let w = world(url, allowed.clone()).await;
    assert_eq!(deliver(&w).await.0, (1, 0));
    assert_eq!(hooks.data().len(), 1);
    // By name too: the resolver keeps the allowed addresses of localhost.
    let by_name = Url::parse(&format!("http://localhost:{port}/hook")).unwrap();
    let w = world(by_name, allowed).await;
    assert_eq!(deliver(&w).await.0, (1, 0));
    assert_eq!(hooks.data().len(), 2);
}
