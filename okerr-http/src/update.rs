//! `POST /update`: okerr's push endpoint (spec §5), with okerr's texts; the status codes
//! are [`crate::Error`]'s.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use okerr::{Source, UpdateError, UpdateOutcome, UpdateRequest};

use crate::form::Fields;
use crate::{AppState, ClientIp, Error, ErrorKind, text};

pub(crate) async fn update(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    mut fields: Fields,
) -> Result<Response, Error> {
    let (textid, name, status) = required(&mut fields)?;
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
    let bound = state.config().storage_timeout;
    let Ok(answer) = tokio::time::timeout(bound, state.engine().update(req)).await else {
        // The update may still be committed; the client retries (okerr's are idempotent).
        tracing::warn!(%textid, %name, %ip, ?bound, "update not answered in time: 503");
        state.writes().record(false);
        return Err(Error::new(ErrorKind::Unavailable(format!(
            "Service temporarily unavailable: the database did not answer in {}s. Retry later.\n",
            bound.as_secs_f32()
        ))));
    };
    state
        .writes()
        .record(!matches!(answer, Err(UpdateError::Storage(_))));
    match answer {
        Ok(outcome) => {
            // Every accepted update is in the indicator's log already; the server's own log
            // has it only at debug level, so that it does not cost as much as the update.
            let ignored = matches!(outcome, UpdateOutcome::Ignored);
            tracing::debug!(%textid, %name, %ip, ignored, "update accepted");
            Ok(text(StatusCode::OK, "OK"))
        }
        Err(e) => {
            // A storage failure is logged with the answer (once, as every 500).
            if !matches!(e, UpdateError::Storage(_)) {
                tracing::info!(%textid, %name, %ip, reason = %e, "update refused");
            }
            Err(e.into())
        }
    }
}

/// The three fields okerr requires, checked in okerr's order.
fn required(fields: &mut Fields) -> Result<(String, String, String), UpdateError> {
    let mut take = |f| fields.take(f).ok_or(UpdateError::MissingField(f));
    Ok((take("textid")?, take("name")?, take("status")?))
}
