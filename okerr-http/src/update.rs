//! `POST /update`: okerr's push endpoint (spec §5), with okerr's texts and status codes.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use okerr::{Source, UpdateError, UpdateOutcome, UpdateRequest};

use crate::form::Fields;
use crate::{AppState, ClientIp, internal, text};

pub(crate) async fn update(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    mut fields: Fields,
) -> Response {
    let (textid, name, status) = match required(&mut fields) {
        Ok(found) => found,
        Err(e) => return refusal(&e),
    };
    let req = UpdateRequest {
        secret: fields.take("secret"),
        details: fields.take("details"),
        method: fields.take("method"),
        policy: fields.take("policy"),
        tags: fields.take("tags"),
        desc: fields.take("desc"),
        error: fields.take("error"),
        keypath: fields.take("keypath"),
        origkeypath: fields.take("origkeypath"),
        source: Source::Http,
        ip: Some(ip),
        ..UpdateRequest::new(textid, name, status)
    };
    let (textid, name) = (req.textid.clone(), req.name.clone());
    match state.engine().update(req).await {
        Ok(outcome) => {
            let ignored = matches!(outcome, UpdateOutcome::Ignored);
            tracing::info!(%textid, %name, %ip, ignored, "update accepted");
            text(StatusCode::OK, "OK")
        }
        Err(UpdateError::Storage(e)) => internal(&e),
        Err(e) => {
            tracing::info!(%textid, %name, %ip, reason = %e, "update refused");
            refusal(&e)
        }
    }
}

/// The three fields okerr requires, checked in okerr's order.
fn required(fields: &mut Fields) -> Result<(String, String, String), UpdateError> {
    let mut take = |f| fields.take(f).ok_or(UpdateError::MissingField(f));
    Ok((take("textid")?, take("name")?, take("status")?))
}

fn refusal(e: &UpdateError) -> Response {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    text(status, e.to_string())
}
