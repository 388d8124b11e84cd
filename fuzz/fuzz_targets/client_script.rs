//! The okerrclient script language (`okerr_client::script`): parse, run against fixed
//! probes, and encode the updates as the client sends them.
//!
//! Input: the instructions, one a line (the words after `-s`).
//!
//! Properties: a script that parses runs the same way twice (same updates, output and
//! errors); each update's body decodes back to exactly its form fields, in order; the
//! names sent are cleaned (`< > % \ @` and `//` gone, no leading `/`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use okerr_client::script::{Fixed, Script};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(script) = Script::parse(text.lines()) else {
        return;
    };
    let probes = Fixed::default();
    let first = script.evaluate(Some("fuzzhost"), &probes);
    let second = script.evaluate(Some("fuzzhost"), &probes);
    assert_eq!(first, second, "the same script ran differently");
    let Ok(evaluation) = first else {
        return;
    };
    for update in &evaluation.updates {
        let form = update.form("p1", "s3cret");
        let body = update.body("p1", "s3cret");
        let decoded: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
        let expected: Vec<(String, String)> = form
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        assert_eq!(decoded, expected, "{body:?}");
        let name = &form[1].1;
        assert!(!name.contains(['<', '>', '%', '\\', '@']), "{name:?}");
        assert!(!name.contains("//") && !name.starts_with('/'), "{name:?}");
    }
});
