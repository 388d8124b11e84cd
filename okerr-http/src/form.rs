//! okerr's form fields from an `application/x-www-form-urlencoded` or `multipart/form-data`
//! body: every field a string, the last of repeated names wins (as Django's `POST.get`).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header;

use crate::Error;

/// The fields of a form; a body-less request (a GET) has none.
#[derive(Debug, Default)]
pub(crate) struct Fields(pub(crate) HashMap<String, String>);

impl Fields {
    pub(crate) fn take(&mut self, name: &str) -> Option<String> {
        self.0.remove(name)
    }
}

impl<S: Send + Sync> FromRequest<S> for Fields {
    /// A body that cannot be read, with axum's status and text
    /// ([`crate::ErrorKind::Body`], `Multipart` or `FormField`).
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        let multipart = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("multipart/form-data"));
        let mut fields = HashMap::new();
        if multipart {
            let mut form = Multipart::from_request(req, state).await?;
            while let Some(field) = form.next_field().await? {
                let name = field.name().unwrap_or_default().to_owned();
                let value = field.text().await?;
                fields.insert(name, value);
            }
        } else {
            let body = Bytes::from_request(req, state).await?;
            fields.extend(url::form_urlencoded::parse(&body).into_owned());
        }
        Ok(Fields(fields))
    }
}
