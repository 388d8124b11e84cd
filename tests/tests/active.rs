//! End to end with the binary: active checks. An `httpstatus` indicator made over the API
//! (`api/create`, `api/setarg checkmethod=httpstatus`) against an HTTP server of the test
//! on 127.0.0.1 is checked at once and turns OK; when the server stops answering 200 it
//! turns ERR at its next check. A `tcpport` indicator made with `okerr indicator active`
//! is checked by the running server too. The policy's period is 2 s (a quick indicator:
//! no retry), so the waits are bounded by a few seconds.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::time::Duration;

use okerr_tests::Server;

/// An HTTP/1.1 server on 127.0.0.1 answering every request with the status in `code`;
/// counts the requests.
struct Peer {
    port: u16,
    code: Arc<AtomicU16>,
    requests: Arc<AtomicUsize>,
}

impl Peer {
    fn start() -> Peer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let code = Arc::new(AtomicU16::new(200));
        let requests = Arc::new(AtomicUsize::new(0));
        let (c, r) = (code.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    line.clear();
                }
                r.fetch_add(1, Ordering::SeqCst);
                let status = c.load(Ordering::SeqCst);
                let reply = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
                );
                let _ = stream.write_all(reply.as_bytes());
            }
        });
        Peer {
            port,
            code,
            requests,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }
}

fn wait_for(
    server: &Server,
    t: &str,
    name: &str,
    what: &str,
    test: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    okerr_tests::poll(
        what,
        Duration::from_secs(20),
        Duration::from_millis(20),
        || {
            let ind = server.indicator(t, name)?;
            test(&ind).then_some(ind)
        },
    )
}

#[test]
fn an_httpstatus_indicator_turns_ok_then_err_when_the_site_fails() {
    let peer = Peer::start();
    let mut server = Server::start(&[]);
    let t = server.textid().to_owned();
    let t = t.as_str();
    server.admin_ok(&["policy", "set", t, "Default", "--period", "2s"]);
    let key = server.api_key().to_owned();
    let http = server.http();
    let reply = http.post_form(&format!("api/create/{t}/site"), &[], &[("X-API-KEY", &key)]);
    assert_eq!(reply.status, 200, "{reply:?}");
    let url = peer.url();
    let reply = http.post_form(
        &format!("api/setarg/{t}/site"),
        &[
            ("checkmethod", "httpstatus"),
            ("url", url.as_str()),
            ("maintenance", "0"),
        ],
        &[("X-API-KEY", &key)],
    );
    assert_eq!(reply.status, 200, "{reply:?}");
    let site = wait_for(&server, t, "site", "the first check", |i| {
        i["details"] == "Got status code 200 OK as expected"
    });
    assert_eq!(site["status"], "OK");
    assert_eq!(site["checkmethod"], "httpstatus");
    assert_eq!(site["args"]["url"], url.as_str());

    peer.code.store(503, Ordering::SeqCst);
    let site = wait_for(&server, t, "site", "the site's failure", |i| {
        i["status"] == "ERR"
    });
    assert_eq!(
        site["details"],
        "Bad status code 503 Service Unavailable (not 200) "
    );

    // The CLI makes one too; the running server checks it.
    let made = server.admin_ok(&[
        "indicator",
        "active",
        t,
        "port",
        "tcpport",
        "host=127.0.0.1",
        &format!("port={}", peer.port),
    ]);
    assert_eq!(made, "port\n");
    let port = wait_for(&server, t, "port", "the port check", |i| {
        !i["details"].as_str().unwrap_or_default().is_empty()
    });
    assert_eq!(port["status"], "OK");
    assert_eq!(
        port["details"],
        format!("Connected to 127.0.0.1:{}", peer.port).as_str()
    );
    assert!(peer.requests.load(Ordering::SeqCst) >= 2);
    // A method line of /update never makes one (an update needs only the textid).
    let reply = http.update(&[
        ("textid", t),
        ("name", "other"),
        ("status", "OK"),
        ("method", "httpstatus|url=http://127.0.0.1:1/"),
    ]);
    assert_eq!(reply.body, "Method 'httpstatus' is disabled", "{reply:?}");
    assert!(server.stop().success());
}
