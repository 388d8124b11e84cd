//! `tcpport`: a TCP connection, and optionally a substring of what the server says first.

use std::io;
use std::net::SocketAddr;

use okerr::ActiveArgs;
use okerr::pyfmt::str_repr;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::resolve::TargetError;
use crate::{CheckResult, Inner};

/// An OS error as Python shows it: `[Errno 111] Connection refused`.
pub(crate) fn py_oserror(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => {
            let text = e.to_string();
            let text = text
                .strip_suffix(&format!(" (os error {n})"))
                .unwrap_or(&text)
                .to_owned();
            format!("[Errno {n}] {text}")
        }
        None if e.kind() == io::ErrorKind::TimedOut => "timed out".to_owned(),
        None => e.to_string(),
    }
}

/// OK `"Connected to {ip}:{port}"`, or with `substr` the first (up to 100) characters of
/// the banner when its first 1024 bytes hold it. As okerr, only the host's first address
/// is tried.
pub(crate) async fn tcpport(i: &Inner, args: &ActiveArgs) -> CheckResult {
    let host = args.get("host");
    let Ok(port) = args.get("port").parse::<u16>() else {
        return CheckResult::problem(format!("Bad port '{}'", args.get("port")));
    };
    let substr = args.get("substr");
    let ip = match i.resolver.allowed(host).await {
        Ok(ips) => ips[0],
        Err(TargetError::Resolve(e)) => {
            return CheckResult::err(format!("Can not resolve {host}: {e}"));
        }
        Err(TargetError::Refused(e)) => return CheckResult::err(e.to_string()),
    };
    let timeout = i.config.tcp_timeout;
    let shown = ip.to_string();
    let fail = |e: io::Error| {
        let text = py_oserror(&e);
        match e.kind() {
            io::ErrorKind::ConnectionRefused => {
                format!("Connection refused to {shown}:{port}: {text}")
            }
            io::ErrorKind::TimedOut => format!("Timeout on {shown}:{port}: {text}"),
            _ => format!("socket.error on {shown}:{port}: {text}"),
        }
    };
    let timed_out = || io::Error::new(io::ErrorKind::TimedOut, "timed out");
    let mut stream =
        match tokio::time::timeout(timeout, TcpStream::connect(SocketAddr::new(ip, port))).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return CheckResult::err(fail(e)),
            Err(_) => return CheckResult::err(fail(timed_out())),
        };
    if substr.is_empty() {
        return CheckResult::ok(format!("Connected to {shown}:{port}"));
    }
    let mut buf = vec![0u8; 1024];
    let n = match tokio::time::timeout(timeout, stream.read(&mut buf)).await {
        Ok(Ok(n)) => n,
        Ok(Err(e)) => return CheckResult::err(fail(e)),
        Err(_) => return CheckResult::err(fail(timed_out())),
    };
    // Python's decode('utf-8', errors='ignore'): invalid bytes are dropped.
    let data: String = String::from_utf8_lossy(&buf[..n])
        .chars()
        .filter(|c| *c != char::REPLACEMENT_CHARACTER)
        .collect();
    if !data.contains(substr) {
        return CheckResult::err(format!(
            "Connected, but no '{substr}' in {}",
            str_repr(&data)
        ));
    }
    CheckResult::ok(data.chars().take(100).collect::<String>())
}
