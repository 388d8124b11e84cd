//! The update protocol: finding the server (director or direct), sending an update,
//! retries with backoff, timeouts.

use std::time::{Duration, Instant};

use url::Url;

use crate::update::Update;

/// How failed requests are repeated: connection errors, timeouts and the answers 429,
/// 500, 502, 503 and 504 are retried, with a delay that starts at `first_delay` and
/// doubles up to `max_delay`, at most `retries` times and never past `budget` since the
/// first attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Retries after the first attempt (so `retries + 1` attempts at most).
    pub retries: u32,
    /// The delay before the first retry.
    pub first_delay: Duration,
    /// The longest delay between two attempts.
    pub max_delay: Duration,
    /// No retry starts later than this after the first attempt.
    pub budget: Duration,
}

impl Default for Retry {
    /// 5 retries, 1 s doubling to 16 s, within 60 s: about what okerrupdate does
    /// (6 attempts over 60 s).
    fn default() -> Retry {
        Retry {
            retries: 5,
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(16),
            budget: Duration::from_secs(60),
        }
    }
}

impl Retry {
    /// No retries: one attempt.
    pub fn none() -> Retry {
        Retry {
            retries: 0,
            ..Retry::default()
        }
    }

    /// The delay before retry number `n` (0-based).
    pub fn delay(&self, n: u32) -> Duration {
        let factor = 2u32.saturating_pow(n);
        self.first_delay.saturating_mul(factor).min(self.max_delay)
    }
}

/// Where and as whom updates are sent.
#[derive(Debug, Clone)]
pub struct Config {
    /// The project's TextID.
    pub textid: String,
    /// The project secret (`secret=` when empty); an [`Update`] may carry its own.
    pub secret: String,
    /// The server (`direct`) or the director to ask for it.
    pub url: Url,
    /// `true`: `url` is the server, updates go to `{url}/update`. `false` (the real
    /// clients' default): ask `GET /api/director/{textid}` on `url`'s host first.
    pub direct: bool,
    /// How failed requests are repeated.
    pub retry: Retry,
    /// The time limit of one request (connect, send, answer).
    pub timeout: Duration,
}

impl Config {
    /// Director mode, no secret, [`Retry::default`], 5 s per request.
    pub fn new(textid: impl Into<String>, url: Url) -> Config {
        Config {
            textid: textid.into(),
            secret: String::new(),
            url,
            direct: false,
            retry: Retry::default(),
            timeout: Duration::from_secs(5),
        }
    }
}

/// Why an update did not go through.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered, and not 200: the update was refused. `body` is its reason.
    #[error("refused by {url}: {status} {reason}: {body}", reason = reason(*.status))]
    Refused {
        /// Where the update went.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The server's answer (its reason), trailing whitespace removed.
        body: String,
    },
    /// The server kept failing (5xx or 429) until the retries ran out.
    #[error(
        "{url} kept failing: {status} {reason} after {attempts} attempt(s): {body}",
        reason = reason(*.status)
    )]
    ServerError {
        /// Where the request went.
        url: String,
        /// The last HTTP status.
        status: u16,
        /// The last answer.
        body: String,
        /// How many attempts were made.
        attempts: u32,
    },
    /// No answer (connection refused, timeout, TLS) until the retries ran out.
    #[error("cannot reach {url} ({attempts} attempt(s)): {}", chain(source))]
    Unreachable {
        /// Where the request went.
        url: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The director did not name a server for the textid.
    #[error("the director {url} gave no server for textid {textid:?}: {status} {reason} {body:?}", reason = reason(*.status))]
    Director {
        /// The director request.
        url: String,
        /// The textid asked for.
        textid: String,
        /// Its HTTP status.
        status: u16,
        /// Its answer.
        body: String,
    },
    /// A URL that cannot be used (from the configuration or the director).
    #[error("bad URL {url:?}: {source}")]
    BadUrl {
        /// The text that is not a usable URL.
        url: String,
        /// Why.
        #[source]
        source: url::ParseError,
    },
    /// The HTTP client could not be made.
    #[error("cannot make the HTTP client: {0}")]
    Build(#[source] reqwest::Error),
}

fn reason(status: u16) -> &'static str {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

/// An error and its sources, `: `-joined (reqwest's own message is short).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = s.source();
    }
    out
}

/// What the server said when it accepted an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Where the update went (`…/update`).
    pub url: Url,
    /// Always 200.
    pub status: u16,
    /// The answer (conventionally `OK`).
    pub body: String,
}

impl Accepted {
    /// okerrclient's success line: `okerr updated (200 OK) NAME@TEXTID = STATUS`, the
    /// status previewed as the Python clients do (CR/LF as spaces, over 40 characters
    /// cut to 38 and `..`).
    pub fn line(&self, update: &Update, textid: &str) -> String {
        format!(
            "okerr updated ({} {}) {}@{} = {}",
            self.status,
            reason(self.status),
            crate::update::clean_name(&update.name),
            textid,
            preview(&update.status)
        )
    }
}

fn preview(status: &str) -> String {
    let flat: String = status
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect();
    if flat.chars().count() > 40 {
        let cut: String = flat.chars().take(38).collect();
        format!("{cut}..")
    } else {
        flat
    }
}

/// Sends updates to one project. Cheap to clone; clones share connections.
#[derive(Debug, Clone)]
pub struct Client {
    config: Config,
    http: reqwest::Client,
}

/// The answer to one request: status and body.
struct Answer {
    status: u16,
    body: String,
}

impl Client {
    /// A client for `config`. TLS (for `https://` URLs) uses rustls with the `ring`
    /// provider and the system's certificates.
    ///
    /// # Errors
    /// [`Error::Build`] when the HTTP client cannot be made (e.g. no system certificates
    /// can be loaded).
    pub fn new(config: Config) -> Result<Client, Error> {
        // The process-wide provider; an error means one is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .user_agent(concat!("okerr-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(Error::Build)?;
        Ok(Client { config, http })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// `GET {url}/api/director/{textid}` (the path of `url` is dropped, as the real
    /// clients do): the server's base URL.
    pub fn director_url(&self) -> Result<Url, Error> {
        let path = format!("/api/director/{}", self.config.textid);
        self.config
            .url
            .join(&path)
            .map_err(|source| Error::BadUrl { url: path, source })
    }

    /// The base URL updates go to: `url` in direct mode, else the director's answer.
    ///
    /// # Errors
    /// [`Error::Director`] when the director answers anything but 200 with a URL,
    /// [`Error::BadUrl`] for an answer that is no URL, and the transport errors.
    pub async fn server_url(&self) -> Result<Url, Error> {
        if self.config.direct {
            return Ok(self.config.url.clone());
        }
        let url = self.director_url()?;
        let answer = self
            .with_retries(&url, || self.http.get(url.clone()))
            .await?;
        let text = answer.body.trim_end();
        if answer.status != 200 || text.is_empty() {
            return Err(Error::Director {
                url: url.to_string(),
                textid: self.config.textid.clone(),
                status: answer.status,
                body: text.to_owned(),
            });
        }
        Url::parse(text).map_err(|source| Error::BadUrl {
            url: text.to_owned(),
            source,
        })
    }

    /// `{base}/update`, the base URL's path kept (a `/` added when missing).
    pub fn update_url(base: &Url) -> Result<Url, Error> {
        let mut s = base.as_str().to_owned();
        if !s.ends_with('/') {
            s.push('/');
        }
        s.push_str("update");
        Url::parse(&s).map_err(|source| Error::BadUrl { url: s, source })
    }

    /// Sends one update: finds the server (see [`Client::server_url`]) and posts it.
    ///
    /// # Errors
    /// [`Error::Refused`] when the server answers other than 200 (its reason in `body`),
    /// [`Error::ServerError`] / [`Error::Unreachable`] when the retries run out, and the
    /// errors of [`Client::server_url`].
    pub async fn send(&self, update: &Update) -> Result<Accepted, Error> {
        let base = self.server_url().await?;
        self.send_to(&base, update).await
    }

    /// Sends several updates, asking the director once.
    ///
    /// # Errors
    /// As [`Client::send`]; the results are per update, the director's error for all.
    pub async fn send_all(
        &self,
        updates: &[Update],
    ) -> Result<Vec<Result<Accepted, Error>>, Error> {
        let base = self.server_url().await?;
        let mut out = Vec::with_capacity(updates.len());
        for u in updates {
            out.push(self.send_to(&base, u).await);
        }
        Ok(out)
    }

    /// Posts one update to `{base}/update` (no director).
    ///
    /// # Errors
    /// As [`Client::send`].
    pub async fn send_to(&self, base: &Url, update: &Update) -> Result<Accepted, Error> {
        let url = Client::update_url(base)?;
        let body = update.body(&self.config.textid, &self.config.secret);
        let answer = self
            .with_retries(&url, || {
                self.http
                    .post(url.clone())
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .body(body.clone())
            })
            .await?;
        if answer.status == 200 {
            Ok(Accepted {
                url,
                status: answer.status,
                body: answer.body,
            })
        } else {
            Err(Error::Refused {
                url: url.to_string(),
                status: answer.status,
                body: answer.body.trim_end().to_owned(),
            })
        }
    }

    /// Runs the request until it gets an answer that is not retryable, within the
    /// retry policy.
    async fn with_retries(
        &self,
        url: &Url,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Answer, Error> {
        let retry = self.config.retry;
        let start = Instant::now();
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let result = match request().send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    match resp.text().await {
                        Ok(body) => Ok(Answer { status, body }),
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            };
            let retryable = match &result {
                Ok(a) => matches!(a.status, 429 | 500 | 502 | 503 | 504),
                Err(_) => true,
            };
            let delay = retry.delay(attempts - 1);
            let out_of_time = start.elapsed().saturating_add(delay) > retry.budget;
            if !retryable || attempts > retry.retries || out_of_time {
                return match result {
                    Ok(a) if retryable => Err(Error::ServerError {
                        url: url.to_string(),
                        status: a.status,
                        body: a.body.trim_end().to_owned(),
                        attempts,
                    }),
                    Ok(a) => Ok(a),
                    Err(source) => Err(Error::Unreachable {
                        url: url.to_string(),
                        attempts,
                        source,
                    }),
                };
            }
            tokio::time::sleep(delay).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let r = Retry::default();
        let delays: Vec<u64> = (0..7).map(|n| r.delay(n).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 16, 16]);
        assert_eq!(Retry::none().retries, 0);
        assert_eq!(r.delay(u32::MAX), r.max_delay);
    }

    #[test]
    fn urls_as_the_python_clients_make_them() {
        let url = |s: &str| Url::parse(s).expect("a URL");
        // direct: the path is kept, `/` added
        let u = Client::update_url(&url("http://h:8000/some/prefix")).expect("url");
        assert_eq!(u.as_str(), "http://h:8000/some/prefix/update");
        let u = Client::update_url(&url("http://h/")).expect("url");
        assert_eq!(u.as_str(), "http://h/update");
        // director: the path is dropped
        let c = Client::new(Config::new("mytextid", url("http://h:8765/some/prefix/")))
            .expect("client");
        assert_eq!(
            c.director_url().expect("url").as_str(),
            "http://h:8765/api/director/mytextid"
        );
    }

    #[test]
    fn the_success_line_previews_the_status() {
        let a = Accepted {
            url: Url::parse("http://h/update").expect("a URL"),
            status: 200,
            body: "OK".into(),
        };
        let u = Update::new("test:hb", "OK");
        assert_eq!(a.line(&u, "t"), "okerr updated (200 OK) test:hb@t = OK");
        let long = "x\n".repeat(30);
        let line = a.line(&Update::new("n", long), "t");
        assert_eq!(
            line,
            format!("okerr updated (200 OK) n@t = {}..", "x ".repeat(19))
        );
    }
}
