//! One SMTP connection: the state machine around `smtp-proto`'s parsers.

use std::fmt::Write as _;
use std::net::SocketAddr;

use okerr::{Engine, RefusedUpdate, UpdateError};
use smtp_proto::Request;
use smtp_proto::request::receiver::{DataReceiver, RequestReceiver};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::{Instant, timeout, timeout_at};

use crate::SmtpConfig;
use crate::parse::{message_text, parse_updates};

/// The longest reply text sent; okerr's reasons are far shorter.
const MAX_REPLY_TEXT: usize = 450;

/// One reply: code and text (the text starts with the enhanced status code), and for a
/// multi-line reply the lines before it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reply {
    code: u16,
    before: Vec<String>,
    text: String,
}

impl Reply {
    fn new(code: u16, text: impl Into<String>) -> Reply {
        Reply {
            code,
            before: Vec::new(),
            text: text.into(),
        }
    }

    /// Appends the reply to `out`: each text on one line, at most [`MAX_REPLY_TEXT`]
    /// characters, control characters as spaces.
    fn write(&self, out: &mut Vec<u8>) {
        let mut reply = String::new();
        let lines = self.before.iter().map(|l| (l, '-'));
        for (text, sep) in lines.chain([(&self.text, ' ')]) {
            let _ = write!(reply, "{}{sep}", self.code);
            for c in text.chars().take(MAX_REPLY_TEXT) {
                reply.push(if c.is_control() { ' ' } else { c });
            }
            reply.push_str("\r\n");
        }
        out.extend_from_slice(reply.as_bytes());
    }
}

/// What the client sends next.
#[derive(Debug)]
enum State {
    Command,
    Data(Box<Data>),
}

/// A message being received.
struct Data {
    receiver: DataReceiver,
    body: Vec<u8>,
    /// How much of `body` was checked for long lines.
    checked: usize,
    /// The length of the current line so far.
    line: usize,
    /// Set when the message is refused whatever it says; the rest is discarded.
    refused: Option<Reply>,
}

impl std::fmt::Debug for Data {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Data")
            .field("len", &self.body.len())
            .field("refused", &self.refused)
            .finish_non_exhaustive()
    }
}

impl Data {
    fn new() -> Data {
        // smtp-proto's receiver sees a `.` as the start of a line only after a CRLF it
        // has seen: give it the CRLF that ended the DATA command, so that an empty
        // message (`.` at once) ends and a leading `..` is unstuffed.
        let mut receiver = DataReceiver::new();
        receiver.ingest(&mut b"\r\n".iter(), &mut Vec::new());
        Data {
            receiver,
            body: Vec::new(),
            checked: 0,
            line: 0,
            refused: None,
        }
    }

    /// Checks the bytes added since the last call against the size and line limits.
    fn check(&mut self, config: &SmtpConfig) {
        let start = self.checked.min(self.body.len());
        for chunk in self.body[start..].split_inclusive(|b| *b == b'\n') {
            self.line += chunk.len();
            if self.line > config.max_line_length && self.refused.is_none() {
                self.refused = Some(Reply::new(
                    500,
                    format!(
                        "5.5.6 Line too long (at most {} bytes); message refused",
                        config.max_line_length
                    ),
                ));
            }
            if chunk.ends_with(b"\n") {
                self.line = 0;
            }
        }
        if self.body.len() > config.max_message_size && self.refused.is_none() {
            self.refused = Some(too_big(config));
        }
        if self.refused.is_some() {
            self.body.clear();
        }
        self.checked = self.body.len();
    }
}

fn too_big(config: &SmtpConfig) -> Reply {
    Reply::new(
        552,
        format!(
            "5.3.4 Message too big (at most {} bytes)",
            config.max_message_size
        ),
    )
}

/// A connection's state.
struct Session<'a> {
    engine: &'a Engine,
    config: &'a SmtpConfig,
    peer: SocketAddr,
    state: State,
    helo: bool,
    from: Option<String>,
    /// The project: the local part of the first accepted recipient.
    textid: Option<String>,
    recipients: usize,
    errors: usize,
    closing: bool,
}

/// Serves one connection until QUIT, EOF, an error, a timeout or shutdown.
pub(crate) async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    peer: SocketAddr,
    engine: &Engine,
    config: &SmtpConfig,
    mut stopped: watch::Receiver<bool>,
) {
    tracing::debug!(%peer, "smtp: connected");
    let session_end = Instant::now() + config.session_timeout;
    let mut s = Session {
        engine,
        config,
        peer,
        state: State::Command,
        helo: false,
        from: None,
        textid: None,
        recipients: 0,
        errors: 0,
        closing: false,
    };
    let mut receiver = RequestReceiver::default();
    let mut out = Vec::new();
    Reply::new(220, format!("{} okerr ESMTP ready", config.hostname)).write(&mut out);
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if !out.is_empty() {
            let written = timeout_at(session_end, stream.write_all(&out)).await;
            if !matches!(written, Ok(Ok(()))) {
                tracing::debug!(%peer, "smtp: cannot write a reply");
                return;
            }
            out.clear();
        }
        if s.closing {
            break;
        }
        let deadline = session_end.min(Instant::now() + config.idle_timeout);
        let n = tokio::select! {
            read = timeout_at(deadline, stream.read(&mut buf)) => match read {
                Ok(Ok(0)) => break,
                Ok(Ok(n)) => n,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "smtp: read failed");
                    break;
                }
                Err(_) => {
                    tracing::info!(%peer, "smtp: connection timed out");
                    Reply::new(421, format!("4.4.2 {} timeout, closing", config.hostname))
                        .write(&mut out);
                    s.closing = true;
                    continue;
                }
            },
            _ = stopped.wait_for(|stop| *stop) => {
                Reply::new(421, format!("4.3.2 {} shutting down", config.hostname))
                    .write(&mut out);
                s.closing = true;
                continue;
            }
        };
        let mut bytes = buf.get(..n).unwrap_or_default().iter();
        while !bytes.as_slice().is_empty() && !s.closing {
            match &mut s.state {
                State::Command => {
                    let request = match receiver.ingest(&mut bytes) {
                        Ok(request) => Ok(request.into_owned()),
                        Err(smtp_proto::Error::NeedsMoreData { .. }) => break,
                        Err(e) => Err(e),
                    };
                    let reply = match request {
                        Ok(request) => s.command(request).await,
                        Err(e) => s.bad_command(&e),
                    };
                    reply.write(&mut out);
                }
                State::Data(data) => {
                    let done = data.receiver.ingest(&mut bytes, &mut data.body);
                    data.check(config);
                    if !done {
                        break;
                    }
                    let State::Data(data) = std::mem::replace(&mut s.state, State::Command) else {
                        break;
                    };
                    s.message(*data).await.write(&mut out);
                }
            }
        }
    }
    let _ = timeout(config.idle_timeout, stream.shutdown()).await;
    tracing::debug!(%peer, "smtp: disconnected");
}

/// Answers a connection over the limit with 421 and closes it.
pub(crate) async fn refuse_busy<S: AsyncWrite + Unpin>(
    mut stream: S,
    peer: SocketAddr,
    config: &SmtpConfig,
) {
    tracing::warn!(%peer, "smtp: too many connections, refused");
    let mut out = Vec::new();
    Reply::new(
        421,
        format!(
            "4.3.2 {} too many connections, try again later",
            config.hostname
        ),
    )
    .write(&mut out);
    let _ = timeout(config.idle_timeout, async {
        let _ = stream.write_all(&out).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

impl Session<'_> {
    fn reset(&mut self) {
        self.from = None;
        self.textid = None;
        self.recipients = 0;
    }

    async fn command(&mut self, request: Request<String>) -> Reply {
        let host = &self.config.hostname;
        match request {
            Request::Ehlo { .. } | Request::Lhlo { .. } => {
                self.reset();
                self.helo = true;
                Reply {
                    code: 250,
                    before: vec![
                        format!("{host} okerr"),
                        format!("SIZE {}", self.config.max_message_size),
                        "8BITMIME".to_owned(),
                        "PIPELINING".to_owned(),
                    ],
                    text: "ENHANCEDSTATUSCODES".to_owned(),
                }
            }
            Request::Helo { .. } => {
                self.reset();
                self.helo = true;
                Reply::new(250, format!("{host} okerr"))
            }
            Request::Mail { from } => {
                if !self.helo {
                    return Reply::new(503, "5.5.1 Say EHLO first");
                }
                if self.from.is_some() {
                    return Reply::new(503, "5.5.1 Nested MAIL command");
                }
                if from.size > self.config.max_message_size {
                    return too_big(self.config);
                }
                self.from = Some(from.address);
                Reply::new(250, "2.1.0 OK")
            }
            Request::Rcpt { to } => self.recipient(&to.address).await,
            Request::Data => {
                if self.from.is_none() {
                    return Reply::new(503, "5.5.1 Need MAIL before DATA");
                }
                if self.textid.is_none() {
                    return Reply::new(554, "5.5.1 No valid recipients");
                }
                self.state = State::Data(Box::new(Data::new()));
                Reply::new(354, "End data with <CR><LF>.<CR><LF>")
            }
            Request::Rset => {
                self.reset();
                Reply::new(250, "2.0.0 OK")
            }
            Request::Noop { .. } => Reply::new(250, "2.0.0 OK"),
            Request::Quit => {
                self.closing = true;
                Reply::new(221, format!("2.0.0 {host} closing"))
            }
            Request::Vrfy { .. } => Reply::new(252, "2.5.0 Cannot VRFY; send some mail"),
            Request::Help { .. } => Reply::new(
                214,
                "2.0.0 Send mail to TEXTID@... with lines like '%%% name.status = OK'",
            ),
            other => self.error(Reply::new(
                502,
                format!("5.5.1 {} not implemented", other.name()),
            )),
        }
    }

    async fn recipient(&mut self, address: &str) -> Reply {
        if self.from.is_none() {
            return Reply::new(503, "5.5.1 Need MAIL before RCPT");
        }
        if self.recipients >= self.config.max_recipients {
            return Reply::new(452, "4.5.3 Too many recipients");
        }
        let local = address.rsplit_once('@').map_or(address, |(local, _)| local);
        if local.is_empty() {
            return Reply::new(501, "5.1.3 The recipient must be TEXTID@...");
        }
        match &self.textid {
            Some(textid) if textid == local => {}
            Some(textid) => {
                // One project per message: the relay delivers this one in another message.
                return Reply::new(
                    452,
                    format!(
                        "4.5.3 This message goes to project {textid}; send it to {local} separately"
                    ),
                );
            }
            None => match self.engine.storage().project_by_textid(local).await {
                Ok(Some(_)) => self.textid = Some(local.to_owned()),
                Ok(None) => {
                    return Reply::new(
                        550,
                        format!("5.1.1 {}", UpdateError::NoSuchProject(local.to_owned())),
                    );
                }
                Err(e) => {
                    tracing::error!(peer = %self.peer, error = %e, "smtp: storage failed");
                    return Reply::new(451, "4.3.0 Storage failed, try again later");
                }
            },
        }
        self.recipients += 1;
        Reply::new(250, "2.1.5 OK")
    }

    /// Counts a refused command: past [`SmtpConfig::max_errors`] the session is closed with
    /// 421 instead of `reply`, whatever the command was (unknown, not implemented, bad).
    fn error(&mut self, reply: Reply) -> Reply {
        self.errors += 1;
        if self.errors > self.config.max_errors {
            self.closing = true;
            return Reply::new(421, "4.7.0 Too many errors, closing");
        }
        reply
    }

    fn bad_command(&mut self, e: &smtp_proto::Error) -> Reply {
        let reply = Self::bad_command_reply(e);
        self.error(reply)
    }

    fn bad_command_reply(e: &smtp_proto::Error) -> Reply {
        use smtp_proto::Error as E;
        match e {
            E::UnknownCommand => Reply::new(500, "5.5.1 Unknown command"),
            E::InvalidSenderAddress => Reply::new(501, "5.1.7 Bad sender address"),
            E::InvalidRecipientAddress => Reply::new(501, "5.1.3 Bad recipient address"),
            E::SyntaxError { syntax } => Reply::new(501, format!("5.5.4 Syntax: {syntax}")),
            E::InvalidParameter { param } => {
                Reply::new(501, format!("5.5.4 Invalid parameter {param}"))
            }
            E::UnsupportedParameter { param } => {
                Reply::new(504, format!("5.5.4 Unsupported parameter {param}"))
            }
            E::ResponseTooLong => Reply::new(500, "5.5.6 Line too long"),
            _ => Reply::new(500, "5.5.2 Syntax error"),
        }
    }

    /// The end of a message: its updates applied all or none, and the reply.
    async fn message(&mut self, data: Data) -> Reply {
        let textid = self.textid.clone().unwrap_or_default();
        let peer = self.peer;
        self.reset();
        let reply = match data.refused {
            Some(reply) => reply,
            None => self.apply(&textid, &data.body).await,
        };
        if reply.code < 400 {
            tracing::info!(%peer, rcpt = %textid, reply = %reply.text, "smtp: message applied");
        } else {
            tracing::warn!(%peer, rcpt = %textid, code = reply.code, reply = %reply.text, "smtp: message refused");
        }
        reply
    }

    async fn apply(&self, textid: &str, body: &[u8]) -> Reply {
        let text = message_text(body);
        let mut updates = match parse_updates(textid, &text) {
            Ok(updates) => updates,
            Err(e) => return Reply::new(550, format!("5.6.0 {e}")),
        };
        if updates.len() > self.config.max_updates {
            return Reply::new(
                550,
                format!(
                    "5.7.0 Too many indicators in one message ({}, at most {})",
                    updates.len(),
                    self.config.max_updates
                ),
            );
        }
        let names: Vec<String> = updates.iter().map(|u| u.name.clone()).collect();
        for update in &mut updates {
            update.ip = Some(self.peer.ip());
        }
        match self.engine.update_all(updates).await {
            Ok(outcomes) => Reply::new(
                250,
                format!("2.0.0 OK ({} indicators updated)", outcomes.len()),
            ),
            Err(RefusedUpdate {
                index,
                applied,
                error,
            }) => {
                let name = names.get(index).map_or("", String::as_str);
                let stored = match applied {
                    0 => "no update of this message was applied".to_owned(),
                    n => format!("the first {n} updates of this message were applied"),
                };
                if let UpdateError::Storage(e) = &error
                    && applied == 0
                {
                    tracing::error!(peer = %self.peer, error = %e, "smtp: storage failed");
                    return Reply::new(
                        451,
                        format!("4.3.0 Storage failed at indicator '{name}', try again later"),
                    );
                }
                let enhanced = match error {
                    // Some updates are stored: a retry by the relay would repeat them.
                    UpdateError::Storage(_) => "5.3.0",
                    UpdateError::NoSuchProject(_) => "5.1.1",
                    UpdateError::SourceNotAllowed(_)
                    | UpdateError::IpNotAllowed(_)
                    | UpdateError::RequireSecret
                    | UpdateError::BadSecret
                    | UpdateError::AutocreateSecret { .. } => "5.7.1",
                    _ => "5.6.0",
                };
                Reply::new(
                    550,
                    format!("{enhanced} {error} (indicator '{name}'; {stored})"),
                )
            }
        }
    }
}
