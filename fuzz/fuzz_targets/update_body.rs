//! `POST /update` with any body under any `Content-Type` (urlencoded, multipart, none,
//! garbage), through the server's router over a memory store.
//!
//! Input: the `Content-Type` header, a line end, then the body (no line end: no header).
//!
//! Properties: never a panic nor a 5xx; `OK` exactly for 200; a refused update (any
//! non-200) leaves the store as it was.
#![no_main]

use libfuzzer_sys::fuzz_target;
use okerr_fuzz::run;

fuzz_target!(|data: &[u8]| {
    let (content_type, body) = match data.iter().position(|b| *b == b'\n') {
        Some(i) => (Some(&data[..i]), &data[i + 1..]),
        None => (None, data),
    };
    // A value no client could send as a header is not this target's business.
    if content_type.is_some_and(|ct| axum::http::HeaderValue::from_bytes(ct).is_err()) {
        return;
    }
    let done = run(async |world| world.post("/update", content_type, body.to_vec()).await);
    let answer = done.value;
    answer.check();
    assert!(
        answer.status.is_success() || !done.changed,
        "a refused update ({} {:?}) changed the store",
        answer.status,
        String::from_utf8_lossy(&answer.body)
    );
});
