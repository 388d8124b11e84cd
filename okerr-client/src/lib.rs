//! A client for okerr servers: push the status of an indicator (a dead man's switch)
//! as the real Python clients `okerrupdate` and `okerrclient` do, with the same form
//! fields, the same director lookup, retries with backoff and a time limit per request.
//!
//! - [`Update`]: one status update, and its form ([`Update::body`]);
//! - [`Client`] with [`Config`] and [`Retry`]: sends updates (director or direct mode);
//! - [`script`]: the okerrclient `-s` script language, evaluated to updates without any
//!   network; [`probes`]: what its local probes (`PROC`, `DF`, `LOADAVG`, `UPTIME`) read.
//!
//! ```no_run
//! use okerr_client::{Client, Config, Update};
//!
//! # async fn push() -> Result<(), okerr_client::Error> {
//! let url = url::Url::parse("http://127.0.0.1:8080/").expect("a URL");
//! let mut config = Config::new("ph5ux533ea", url);
//! config.direct = true;
//! let client = Client::new(config)?;
//! let mut update = Update::new("test:apache2", "OK");
//! update.details = Some("running".into());
//! let accepted = client.send(&update).await?;
//! println!("{}", accepted.line(&update, "ph5ux533ea"));
//! # Ok(())
//! # }
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

mod client;
pub mod probes;
pub mod script;
mod update;

pub use client::{Accepted, Client, Config, Error, Retry};
pub use update::{Update, clean_name, encode_form};
pub use url::Url;
