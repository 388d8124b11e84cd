//! okerr's method lines, `codename|arg=value|…` (`CheckMethod::parse_line`).
//!
//! Input: the line.
//!
//! Properties: a method that parses is written back as a line from its arguments
//! (`args()`, the form okerr shows) and that line parses to the same arguments, up to
//! okerr's normalization of a value set (one pass of `\r\n` → `\n`, as Python's
//! `str.replace`, so `\r\r\n` becomes `\r\n` and only the next set makes it `\n`;
//! then blanks stripped); its JSON
//! (how the stores keep it) reads back to the same arguments; every argument reported as
//! applied is one the method has.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use okerr::CheckMethod;

/// The method as a line: its codename and every argument that is set.
fn line(method: &CheckMethod) -> String {
    let mut out = method.codename().to_owned();
    for (name, value) in method.args() {
        if !value.is_empty() {
            out.push_str(&format!("|{name}={value}"));
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (method, applied) = match CheckMethod::parse_line(text) {
        Ok(parsed) => parsed,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return;
        }
    };
    let args = method.args();
    for (name, _) in &applied {
        assert!(
            args.contains_key(name.as_str()),
            "applied {name}, not an argument"
        );
    }
    let written = line(&method);
    let (again, _) = CheckMethod::parse_line(&written)
        .unwrap_or_else(|e| panic!("{written:?} (written from {text:?}) does not parse: {e}"));
    assert_eq!(again.codename(), method.codename());
    let normalized: BTreeMap<&str, String> = args
        .iter()
        .map(|(k, v)| {
            let v = v.replace("\r\n", "\n");
            (*k, v.trim_matches(['\r', '\n', '\t', ' ']).to_owned())
        })
        .collect();
    assert_eq!(again.args(), normalized, "{text:?} written as {written:?}");
    let json = serde_json::to_string(&method).expect("a method serializes");
    let back: CheckMethod = serde_json::from_str(&json)
        .unwrap_or_else(|e| panic!("{json} (from {text:?}) does not read back: {e}"));
    assert_eq!(back.args(), args, "JSON {json} of {text:?}");
});
