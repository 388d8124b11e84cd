//! The one error of okerr-http ([`Error`]): every refusal and failure of `/update`, the
//! API and the pages, mapped to its status in one place ([`ErrorKind::status`]) and
//! answered in one place (its `IntoResponse`); and the layer that logs a 500's cause once.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use okerr::{ActionError, MethodError, StorageError, UpdateError};

use crate::text;

/// The body of an answer for `/update` and the API: plain text, okerr's words.
#[derive(Debug, Clone, Copy, Default)]
pub struct Text;

/// The body of an answer for a web page: an HTML page with the message.
#[derive(Debug, Clone, Copy, Default)]
pub struct Page;

/// A refused or failed request, with the body its answer has: [`Text`] (the default:
/// `/update` and the API) or [`Page`] (the web pages). Its `IntoResponse` is the only place
/// where okerr-http turns an error into a status ([`ErrorKind::status`]) and a body:
///
/// | What | Status | Body |
/// |------|--------|------|
/// | [`UpdateError::NoSuchProject`] | 404 | okerr's text |
/// | any other [`UpdateError`] | 400 | okerr's text |
/// | [`ActionError`]: no such project, indicator, policy or method | 404 | its text (API: and `\n`) |
/// | any other [`ActionError`]: a bad argument, a name taken, a limit | 400 | its text (API: and `\n`) |
/// | [`ErrorKind::NotFound`]: an unknown textid, name, argument or path | 404 | the message |
/// | [`ErrorKind::NotDirected`]: the director's unknown textid | 404 | empty |
/// | [`ErrorKind::Forbidden`]: `X-API-KEY`, session, CSRF token | 403 | the message |
/// | [`ErrorKind::BadRequest`] | 400 | the message |
/// | [`ErrorKind::SignIn`] | 303 | none; `Location: /login?next=…` |
/// | a form body that cannot be read ([`ErrorKind::Body`], …) | axum's (413, 400, …) | axum's text |
/// | the database failed (a [`StorageError::Backend`], also in an update or an action) | 503 | [`UNAVAILABLE`]; `Retry-After` |
/// | [`ErrorKind::Unavailable`]: the database did not answer in time, not ready | 503 | the message; `Retry-After` |
/// | [`ErrorKind::BodyTimeout`]: the body was not sent in time | 408 | `Request body not sent in time`; `Connection: close` |
/// | any other storage failure, [`ErrorKind::Internal`] | 500 | `Internal error` |
///
/// A [`Text`] body is `text/plain; charset=utf-8`, a [`Page`] body the HTML error page;
/// the sign-in redirect, the director's empty 404 and axum's form texts are the same for
/// both. A 500 keeps its cause in the response's extensions ([`InternalError`]), where the
/// router logs it once.
///
/// An `Error<Text>` becomes an `Error<Page>` ([`From`]) as [`ErrorKind::Api`]: a page
/// opened with `X-API-KEY` is refused in the API's words, as plain text.
pub struct Error<B = Text> {
    kind: ErrorKind,
    body: PhantomData<fn() -> B>,
}

/// What went wrong: the refusals and failures okerr-http answers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// An update refused, or failed in storage.
    #[error(transparent)]
    Update(UpdateError),
    /// An action (API or page) refused, or failed in storage.
    #[error(transparent)]
    Action(ActionError),
    /// Storage failed.
    #[error("storage failed")]
    Storage(#[source] StorageError),
    /// Something else failed inside this server (a body that cannot be serialized, a
    /// router served without peer addresses).
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// An unknown textid, indicator, argument or path (okerr's `Http404`, also for some
    /// bad values), with the text to answer.
    #[error("{0}")]
    NotFound(String),
    /// The director knows no project of this textid: an empty 404, as okerr's.
    #[error("no project of this textid")]
    NotDirected,
    /// An `X-API-KEY` missing or wrong, a page not for this viewer, a CSRF token wrong.
    #[error("{0}")]
    Forbidden(String),
    /// A request that cannot be used.
    #[error("{0}")]
    BadRequest(String),
    /// A page needs a session: sign in, then come back to this path.
    #[error("sign in to open {0}")]
    SignIn(String),
    /// A form body that could not be read (too large, not UTF-8, …).
    #[error(transparent)]
    Body(BytesRejection),
    /// A `multipart/form-data` body without a usable boundary.
    #[error(transparent)]
    Multipart(MultipartRejection),
    /// A field of a `multipart/form-data` body that could not be read.
    #[error("bad form field")]
    FormField(#[source] MultipartError),
    /// An error of the API met on a page (a page opened with `X-API-KEY`): answered as the
    /// API answers it, in plain text.
    #[error(transparent)]
    Api(Box<ErrorKind>),
    /// The database did not answer in time (an outage, a full disk), or the server is not
    /// ready: a 503 with `Retry-After`, and the text to answer.
    #[error("{0}")]
    Unavailable(String),
    /// The request body was not sent within the server's body timeout: a 408, and the
    /// connection is closed.
    #[error("Request body not sent in time\n")]
    BodyTimeout,
}

/// The text of a 503 for a failed database: the clients print it and retry.
pub const UNAVAILABLE: &str =
    "Service temporarily unavailable: the database failed. Retry later.\n";

/// The `Retry-After` of a 503, in seconds. okerr's clients (urllib3) honour it.
pub const RETRY_AFTER_SECS: u64 = 5;

/// Whether `e` is a failure of the database itself (not a missing or conflicting row).
fn backend_failed(e: &StorageError) -> bool {
    matches!(e, StorageError::Backend { .. })
}

impl ErrorKind {
    /// The status of the answer: okerr-http's one mapping of errors to statuses.
    pub fn status(&self) -> StatusCode {
        match self {
            ErrorKind::Update(UpdateError::Storage(e))
            | ErrorKind::Action(ActionError::Storage(e))
            | ErrorKind::Storage(e)
                if backend_failed(e) =>
            {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ErrorKind::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorKind::Update(e) => match e {
                UpdateError::NoSuchProject(_) => StatusCode::NOT_FOUND,
                UpdateError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
                _ => StatusCode::BAD_REQUEST,
            },
            ErrorKind::Action(e) => match e {
                ActionError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
                ActionError::Method(MethodError::BadArgument { .. })
                | ActionError::FieldTooLong { .. }
                | ActionError::TooManyActions(_) => StatusCode::BAD_REQUEST,
                ActionError::NoSuchProject(_)
                | ActionError::NoSuchIndicator { .. }
                | ActionError::NoSuchPolicy(_)
                | ActionError::Method(_) => StatusCode::NOT_FOUND,
                _ => StatusCode::BAD_REQUEST,
            },
            ErrorKind::Storage(_) | ErrorKind::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::NotFound(_) | ErrorKind::NotDirected => StatusCode::NOT_FOUND,
            ErrorKind::Forbidden(_) => StatusCode::FORBIDDEN,
            ErrorKind::BadRequest(_) => StatusCode::BAD_REQUEST,
            ErrorKind::SignIn(_) => StatusCode::SEE_OTHER,
            ErrorKind::Body(e) => e.status(),
            ErrorKind::Multipart(e) => e.status(),
            ErrorKind::FormField(e) => match e.status() {
                s if s.is_client_error() => s,
                _ => StatusCode::BAD_REQUEST,
            },
            ErrorKind::Api(kind) => kind.status(),
        }
    }

    /// Whether this is a failure of the server (a 500, or a 503 when the database itself
    /// failed) rather than a refusal: its cause is logged.
    pub fn is_internal(&self) -> bool {
        match self {
            ErrorKind::Update(UpdateError::Storage(_))
            | ErrorKind::Action(ActionError::Storage(_))
            | ErrorKind::Storage(_)
            | ErrorKind::Internal(_) => true,
            ErrorKind::Api(kind) => kind.is_internal(),
            _ => false,
        }
    }

    /// The text of the answer; `page` drops the API's final `\n` of an action's refusal.
    fn message(&self, page: bool) -> Cow<'_, str> {
        if self.status() == StatusCode::SERVICE_UNAVAILABLE && self.is_internal() {
            return Cow::Borrowed(if page {
                UNAVAILABLE.trim_end()
            } else {
                UNAVAILABLE
            });
        }
        if self.is_internal() {
            return Cow::Borrowed("Internal error");
        }
        match self {
            ErrorKind::Action(e) if !page => Cow::Owned(format!("{e}\n")),
            ErrorKind::NotFound(m)
            | ErrorKind::Forbidden(m)
            | ErrorKind::BadRequest(m)
            | ErrorKind::Unavailable(m) => Cow::Borrowed(m),
            ErrorKind::Body(e) => Cow::Owned(e.body_text()),
            ErrorKind::Multipart(e) => Cow::Owned(e.body_text()),
            ErrorKind::FormField(e) => Cow::Owned(format!("Bad form: {}", e.body_text())),
            ErrorKind::Api(kind) => kind.message(false),
            other => Cow::Owned(other.to_string()),
        }
    }

    /// The answer with `status`, as an HTML page when `page` (for the kinds a page shows).
    fn respond(&self, status: StatusCode, page: bool) -> Response {
        match self {
            ErrorKind::SignIn(next) => {
                let next: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
                let location = HeaderValue::try_from(format!("/login?next={next}"))
                    .unwrap_or(HeaderValue::from_static("/login"));
                (status, [(header::LOCATION, location)]).into_response()
            }
            ErrorKind::NotDirected => status.into_response(),
            // axum's words for what it could not read, on a page too.
            ErrorKind::Body(_) | ErrorKind::Multipart(_) | ErrorKind::FormField(_) => {
                text(status, self.message(false))
            }
            ErrorKind::Api(kind) => kind.respond(status, false),
            ErrorKind::BodyTimeout => {
                let mut response = text(status, self.message(false));
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                response
            }
            _ => {
                let mut response = if page {
                    crate::web::error_page(status, &self.message(true))
                } else {
                    text(status, self.message(false))
                };
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
                }
                response
            }
        }
    }

    /// The cause of a 500, for the log.
    fn into_internal(self) -> Option<InternalError> {
        let error: Arc<dyn std::error::Error + Send + Sync> = match self {
            ErrorKind::Update(UpdateError::Storage(e))
            | ErrorKind::Action(ActionError::Storage(e))
            | ErrorKind::Storage(e) => Arc::new(e),
            ErrorKind::Internal(e) => Arc::from(e),
            ErrorKind::Api(kind) => return kind.into_internal(),
            _ => return None,
        };
        Some(InternalError(error))
    }
}

impl<B> Error<B> {
    /// An error of this kind.
    pub fn new(kind: ErrorKind) -> Self {
        Error {
            kind,
            body: PhantomData,
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The status of the answer.
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// Something that failed inside this server: a 500, and `error` in the log.
    pub fn internal(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error::new(ErrorKind::Internal(error.into()))
    }

    /// A 404 with `message`.
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::NotFound(message.into()))
    }

    /// A 403 with `message`.
    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Forbidden(message.into()))
    }

    /// A 400 with `message`.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::BadRequest(message.into()))
    }

    /// Sign in first, then come back to `next`.
    pub(crate) fn sign_in(next: impl Into<String>) -> Self {
        Error::new(ErrorKind::SignIn(next.into()))
    }

    fn respond(self, page: bool) -> Response {
        let status = self.kind.status();
        let mut response = self.kind.respond(status, page);
        if let Some(cause) = self.kind.into_internal() {
            response.extensions_mut().insert(cause);
        }
        response
    }
}

impl<B> fmt::Debug for Error<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("body", &std::any::type_name::<B>())
            .finish()
    }
}

impl<B> fmt::Display for Error<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.kind, f)
    }
}

impl<B> std::error::Error for Error<B> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.kind)
    }
}

impl IntoResponse for Error<Text> {
    fn into_response(self) -> Response {
        self.respond(false)
    }
}

impl IntoResponse for Error<Page> {
    fn into_response(self) -> Response {
        self.respond(true)
    }
}

impl From<Error<Text>> for Error<Page> {
    /// The API's error met on a page: answered in the API's words ([`ErrorKind::Api`]).
    fn from(e: Error<Text>) -> Self {
        Error::new(ErrorKind::Api(Box::new(e.kind)))
    }
}

macro_rules! from {
    ($($source:ty => $kind:ident),* $(,)?) => {$(
        impl<B> From<$source> for Error<B> {
            fn from(e: $source) -> Self {
                Error::new(ErrorKind::$kind(e))
            }
        }
    )*};
}

from! {
    UpdateError => Update,
    ActionError => Action,
    StorageError => Storage,
    BytesRejection => Body,
    MultipartRejection => Multipart,
    MultipartError => FormField,
}

/// The cause of a 500 answer, kept in the response's extensions. The router logs it once,
/// in the request's span (which carries the `x-request-id`); a layer around the router
/// can read it too.
#[derive(Debug, Clone)]
pub struct InternalError(Arc<dyn std::error::Error + Send + Sync>);

impl InternalError {
    /// The error.
    pub fn error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        &*self.0
    }
}

impl fmt::Display for InternalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Logs the cause of a 500 answer ([`InternalError`]), once: the handlers do not.
pub(crate) fn log_internal_error(response: Response) -> Response {
    if let Some(cause) = response.extensions().get::<InternalError>() {
        let error = cause.error();
        tracing::error!(%error, source = ?error.source(), "request failed");
    }
    response
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;

    use super::*;

    fn backend() -> StorageError {
        StorageError::Backend {
            backend: "test",
            source: "disk on fire".into(),
        }
    }

    async fn answer<B>(e: Error<B>) -> (u16, Option<String>, String, Option<String>)
    where
        Error<B>: IntoResponse,
    {
        answer_response(e.into_response()).await
    }

    async fn answer_response(response: Response) -> (u16, Option<String>, String, Option<String>) {
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or_default().to_owned());
        let cause = response
            .extensions()
            .get::<InternalError>()
            .map(ToString::to_string);
        let body = to_bytes(response.into_body(), usize::MAX)
            .await
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        (status, content_type, body, cause)
    }

    const PLAIN: Option<&str> = Some("text/plain; charset=utf-8");

    #[tokio::test]
    async fn update_refusals_are_okerrs_text() {
        let (status, ct, body, cause) =
            answer(Error::<Text>::from(UpdateError::MissingField("status"))).await;
        assert_eq!(
            (status, body.as_str()),
            (400, "Required field 'status' missing")
        );
        assert_eq!((ct.as_deref(), cause), (PLAIN, None));
        let e = Error::<Text>::from(UpdateError::NoSuchProject("abc".into()));
        let (status, _, body, _) = answer(e).await;
        assert_eq!(
            (status, body.as_str()),
            (404, "No such project. (textid: 'abc')")
        );
    }

    fn conflict() -> StorageError {
        StorageError::conflict("indicator", "srv")
    }

    #[tokio::test]
    async fn a_failed_database_is_a_503_with_retry_after_and_its_cause_in_the_extensions() {
        let kinds: Vec<Error> = vec![
            backend().into(),
            UpdateError::Storage(backend()).into(),
            ActionError::Storage(backend()).into(),
        ];
        for e in kinds {
            assert!(e.kind().is_internal());
            let response = e.into_response();
            assert_eq!(
                response.headers().get(header::RETRY_AFTER),
                Some(&HeaderValue::from(RETRY_AFTER_SECS))
            );
            let (status, ct, body, cause) = answer_response(response).await;
            assert_eq!((status, body.as_str()), (503, UNAVAILABLE));
            assert_eq!(ct.as_deref(), PLAIN);
            assert_eq!(cause.as_deref(), Some("test storage failed"));
        }
        let (status, ct, body, cause) = answer(Error::<Page>::from(backend())).await;
        assert_eq!(status, 503);
        assert!(ct.is_some_and(|ct| ct.starts_with("text/html")));
        assert!(body.contains("Service temporarily unavailable"), "{body}");
        assert_eq!(cause.as_deref(), Some("test storage failed"));
    }

    #[tokio::test]
    async fn another_storage_failure_is_a_500_with_its_cause_in_the_extensions() {
        let kinds: Vec<Error> = vec![
            conflict().into(),
            UpdateError::Storage(conflict()).into(),
            Error::internal("a bug"),
        ];
        for e in kinds {
            assert!(e.kind().is_internal());
            let (status, ct, body, cause) = answer(e).await;
            assert_eq!((status, body.as_str()), (500, "Internal error"));
            assert_eq!(ct.as_deref(), PLAIN);
            assert!(cause.is_some());
        }
        let (status, _, body, _) = answer(Error::<Page>::from(conflict())).await;
        assert_eq!(status, 500);
        assert!(body.contains("Internal error"), "{body}");
    }

    #[tokio::test]
    async fn timeouts_answer_503_and_408() {
        let e = Error::<Text>::new(ErrorKind::Unavailable("Not ready\n".into()));
        let response = e.into_response();
        assert!(response.headers().contains_key(header::RETRY_AFTER));
        let (status, _, body, cause) = answer_response(response).await;
        assert_eq!((status, body.as_str(), cause), (503, "Not ready\n", None));
        let response = Error::<Text>::new(ErrorKind::BodyTimeout).into_response();
        assert_eq!(
            response.headers().get(header::CONNECTION),
            Some(&HeaderValue::from_static("close"))
        );
        let (status, _, body, _) = answer_response(response).await;
        assert_eq!(
            (status, body.as_str()),
            (408, "Request body not sent in time\n")
        );
    }

    #[tokio::test]
    async fn action_refusals_end_with_a_newline_in_the_api_only() {
        let missing = || ActionError::NoSuchPolicy("Nope".into());
        let (status, _, body, _) = answer(Error::<Text>::from(missing())).await;
        assert_eq!((status, body.as_str()), (404, "No such policy\n"));
        let (status, _, body, _) = answer(Error::<Page>::from(missing())).await;
        assert_eq!(status, 404);
        assert!(body.contains(">No such policy</p>"), "{body}");
        let bad = MethodError::BadArgument {
            text: "bad maxlim".into(),
        };
        assert_eq!(
            Error::<Text>::from(ActionError::Method(bad)).status(),
            StatusCode::BAD_REQUEST
        );
        let unknown = MethodError::Unknown {
            codename: "x".into(),
        };
        assert_eq!(
            Error::<Text>::from(ActionError::Method(unknown)).status(),
            StatusCode::NOT_FOUND
        );
        let taken = ActionError::AlreadyExists("srv".into());
        assert_eq!(Error::<Text>::from(taken).status(), StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn an_api_error_on_a_page_is_the_apis_text() {
        let e: Error<Page> = Error::<Text>::forbidden("Forbidden: bad X-API-KEY\n").into();
        let (status, ct, body, _) = answer(e).await;
        assert_eq!((status, body.as_str()), (403, "Forbidden: bad X-API-KEY\n"));
        assert_eq!(ct.as_deref(), PLAIN);
        let e: Error<Page> = Error::<Text>::from(backend()).into();
        let (status, ct, body, cause) = answer(e).await;
        assert_eq!((status, body.as_str()), (503, UNAVAILABLE));
        assert_eq!(ct.as_deref(), PLAIN);
        assert!(cause.is_some());
    }

    #[tokio::test]
    async fn sign_in_redirects_with_the_path_to_come_back_to() {
        let response = Error::<Page>::sign_in("/p/p1?tag=a b").into_response();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            response.headers().get(header::LOCATION),
            Some(&HeaderValue::from_static(
                "/login?next=%2Fp%2Fp1%3Ftag%3Da+b"
            ))
        );
    }

    #[tokio::test]
    async fn the_director_answers_an_empty_404() {
        let (status, ct, body, _) = answer(Error::<Text>::new(ErrorKind::NotDirected)).await;
        assert_eq!((status, ct, body.as_str()), (404, None, ""));
    }
}
