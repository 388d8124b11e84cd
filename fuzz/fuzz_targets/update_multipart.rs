//! The same form fields sent to `/update` as `multipart/form-data` and as
//! `application/x-www-form-urlencoded` are the same update.
//!
//! Input: the boundary, then field names and values, all separated by NUL bytes
//! (`BOUNDARY\0textid\0p1\0name\0db\0status\0OK`); a name without a value has `""`.
//!
//! Properties: both encodings get the same status and text and leave the two stores
//! (each its own world) equal; each answer passes [`okerr_fuzz::Answer::check`].
#![no_main]

use libfuzzer_sys::fuzz_target;
use okerr_fuzz::run;

/// RFC 2046's characters of a boundary (without the space, which may not end one).
fn boundary_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "'()+_,-./:=?".contains(c)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.split('\0');
    let boundary = parts.next().unwrap_or_default();
    if boundary.is_empty() || boundary.len() > 70 || !boundary.chars().all(boundary_char) {
        return;
    }
    let mut fields: Vec<(&str, &str)> = Vec::new();
    while let Some(name) = parts.next() {
        fields.push((name, parts.next().unwrap_or_default()));
    }
    let delimiter = format!("\r\n--{boundary}");
    // A name is written in a quoted header parameter: no quote, backslash or control
    // character (browsers escape these; python-requests does not send such names). A value must
    // not contain the delimiter, which a real client avoids by choosing the boundary.
    let writable = fields.iter().all(|(name, value)| {
        !name.contains(|c: char| c == '"' || c == '\\' || c.is_control())
            && !format!("\r\n{value}\r\n").contains(&delimiter)
    });
    if !writable {
        return;
    }
    let mut multipart = String::new();
    for (name, value) in &fields {
        multipart.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    multipart.push_str(&format!("--{boundary}--\r\n"));
    let urlencoded = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&fields)
        .finish();
    // Quoted: a boundary may hold `,`, `:`, `=`… that a bare parameter value may not.
    let ct = format!("multipart/form-data; boundary=\"{boundary}\"");
    let a = run(async |world| {
        world
            .post("/update", Some(ct.as_bytes()), multipart.into_bytes())
            .await
    });
    let b = run(async |world| {
        world
            .post(
                "/update",
                Some(b"application/x-www-form-urlencoded"),
                urlencoded.into_bytes(),
            )
            .await
    });
    a.value.check();
    b.value.check();
    assert_eq!(
        (a.value.status, String::from_utf8_lossy(&a.value.body)),
        (b.value.status, String::from_utf8_lossy(&b.value.body)),
        "multipart and urlencoded answers differ"
    );
    assert!(
        a.after == b.after,
        "multipart and urlencoded stored different things"
    );
});
