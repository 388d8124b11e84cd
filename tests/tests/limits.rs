//! `okerr serve` against slow clients (issue 13): the real binary started under a soft
//! open-files limit of 1,024 (`prlimit --nofile=1024:`), 2,000 stalled connections (half a
//! request head; a `Content-Length` larger than the body sent), a well-behaved client whose
//! updates all succeed while they are open, and every stalled connection closed by the
//! server within its timeout. And SIGTERM: the process exits within its grace period
//! whatever its clients do.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use okerr_tests::{Server, poll};

/// Stalled connections of each kind.
const STALLED_EACH: usize = 1_000;
/// The header, body and idle timeouts the server is given, in seconds: long enough that
/// the 2,000 connections are all open before the first times out on a loaded machine.
const TIMEOUT_SECS: u64 = 8;
/// The server's open descriptors while the good client is served: above its starting
/// soft limit of 1,024.
const HELD_AT_LEAST: usize = 1_100;
/// Threads that open the stalled connections.
const OPENERS: usize = 8;
/// How late past its timeout a close may be seen: a debug build on a busy 2-core machine.
const MARGIN: Duration = Duration::from_secs(3);

/// A connection the test left hanging, and what the server did with it.
struct Stalled {
    stream: TcpStream,
    /// When the test sent its last byte.
    sent_at: Instant,
    /// When the server's close was seen, and what it answered before it.
    closed: Option<(Instant, Vec<u8>)>,
    answer: Vec<u8>,
}

impl Stalled {
    fn open(addr: SocketAddr, bytes: &[u8]) -> Stalled {
        let mut stream = TcpStream::connect(addr).expect("connect a stalled client");
        stream.write_all(bytes).expect("send half a request");
        stream.set_nonblocking(true).expect("non-blocking");
        Stalled {
            stream,
            sent_at: Instant::now(),
            closed: None,
            answer: Vec::new(),
        }
    }

    /// Reads what is there; true once the server closed the connection.
    fn poll_closed(&mut self) -> bool {
        if self.closed.is_some() {
            return true;
        }
        let mut buf = [0u8; 1024];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.answer.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // A reset is a close too.
                Err(_) => break,
            }
        }
        self.closed = Some((Instant::now(), std::mem::take(&mut self.answer)));
        true
    }
}

const HALF_HEAD: &[u8] = b"POST /update HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: applica";
const SHORT_BODY: &[u8] = b"POST /update HTTP/1.1\r\nHost: 127.0.0.1\r\n\
    Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 400\r\n\r\n\
    textid=x&name=stalled&status=O";

/// The soft and hard open-files limits of process `pid`, from `/proc/PID/limits`.
fn nofile_limits(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("/proc limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    let numbers: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    (numbers[0], numbers[1])
}

/// How many descriptors process `pid` has open.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// A connection handed to the watcher: when the test sent its last byte, and the task that
/// reads until the server closes it.
struct Watched {
    sent_at: Instant,
    closed: tokio::task::JoinHandle<(Instant, Vec<u8>)>,
}

/// Reads `stream` until the server closes it (a reset is a close too): when that was seen,
/// and what the server answered before. Runs on the watcher's own runtime, so a close is
/// timed when it happens, not when the test gets round to look (a loaded machine can take
/// longer to open the connections and serve the good client than the timeout itself).
fn watch(watcher: &tokio::runtime::Handle, stream: TcpStream, sent_at: Instant) -> Watched {
    let closed = watcher.spawn(async move {
        use tokio::io::AsyncReadExt;
        let mut stream = tokio::net::TcpStream::from_std(stream).expect("watch the connection");
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        while let Ok(n @ 1..) = stream.read(&mut buf).await {
            answer.extend_from_slice(&buf[..n]);
        }
        (Instant::now(), answer)
    });
    Watched { sent_at, closed }
}

#[test]
fn stalled_clients_are_closed_in_time_and_a_good_client_is_served_meanwhile() {
    // The test holds 2,000 sockets itself.
    let own = rlimit::increase_nofile_limit(u64::MAX).expect("raise the test's fd limit");
    assert!(
        own > 2 * STALLED_EACH as u64 + 100,
        "the hard open-files limit ({own}) is too low for this test"
    );
    let watcher = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_io()
        .enable_time()
        .build()
        .expect("the watcher runtime");
    let timeout = TIMEOUT_SECS.to_string();
    let server = Server::start_under(
        &["prlimit", "--nofile=1024:", "--"],
        &[
            "--header-timeout",
            &timeout,
            "--body-timeout",
            &timeout,
            "--idle-timeout",
            &timeout,
        ],
    );
    let (soft, hard) = nofile_limits(server.pid());
    assert_eq!(
        soft, hard,
        "the server did not raise its soft open-files limit (started at 1024)"
    );
    assert!(soft > 1024, "hard limit {hard}: nothing to raise");
    assert!(
        server.stderr().contains(&format!(
            "open files limit (soft, raised to the hard limit) limit={hard}"
        )),
        "the raised limit is not logged:\n{}",
        server.stderr()
    );

    let addr = server.addr();
    // A kept-alive connection that got its answer and sends nothing more: idle.
    let mut idle = TcpStream::connect(addr).expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("send");
    let mut got = Vec::new();
    while !got.ends_with(b"OK\n") {
        let mut buf = [0u8; 512];
        let n = idle.read(&mut buf).expect("the answer");
        assert!(n > 0, "closed before the answer: {got:?}");
        got.extend_from_slice(&buf[..n]);
    }
    idle.set_nonblocking(true).expect("non-blocking");
    let idle = watch(watcher.handle(), idle, Instant::now());
    // Opened from 8 threads: a connect whose SYN is dropped waits 1 s for its resend,
    // which must not hold the others up.
    let opening = Instant::now();
    let stalled: Vec<Watched> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..OPENERS)
            .map(|_| {
                let watcher = watcher.handle();
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    for _ in 0..STALLED_EACH / OPENERS {
                        for bytes in [HALF_HEAD, SHORT_BODY] {
                            let stalled = Stalled::open(addr, bytes);
                            mine.push(watch(watcher, stalled.stream, stalled.sent_at));
                        }
                    }
                    mine
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().expect("an opener thread"))
            .collect()
    });
    let opened_in = opening.elapsed();
    // The kernel completes the connections before the server accepts them (they wait in
    // its listen queue): the good client starts once the server holds them, well before
    // the first times out.
    let held_before = poll(
        "the server to accept the stalled connections",
        Duration::from_secs(TIMEOUT_SECS / 2),
        Duration::from_millis(10),
        || {
            let held = open_fds(server.pid());
            (held > HELD_AT_LEAST).then_some(held)
        },
    );

    // The good client: 20 updates, each on a new connection (as okerrupdate does).
    let textid = server.textid().to_owned();
    for n in 0..20 {
        let http = okerr_tests::Http::new(&server.url());
        let details = format!("good {n}");
        let reply = http.update(&[
            ("textid", &textid),
            ("name", "good:client"),
            ("status", "OK"),
            ("details", &details),
        ]);
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (200, "OK"),
            "update {n} of the good client"
        );
    }
    let served = Instant::now();
    let held_after = open_fds(server.pid());
    // Still more than its starting soft limit allowed once they were served: the good
    // client did not wait for the stalled connections to go.
    let held = held_before;
    assert!(
        held_after > HELD_AT_LEAST,
        "the server held {held_before} descriptors when the good updates began, but only \
         {held_after} once they were served: the good client was not served while more \
         than {HELD_AT_LEAST} stalled connections were open"
    );
    let open_meanwhile = stalled.iter().filter(|s| !s.closed.is_finished()).count();
    println!(
        "{open_meanwhile} stalled connections still open after the good updates \
         (opening took {opened_in:?}, the good client {:?})",
        served - opening - opened_in
    );

    let timeout = Duration::from_secs(TIMEOUT_SECS);
    poll(
        "the server to close every stalled connection",
        timeout + MARGIN + Duration::from_secs(2),
        Duration::from_millis(20),
        || {
            (idle.closed.is_finished() && stalled.iter().all(|s| s.closed.is_finished()))
                .then_some(())
        },
    );
    let closed = |w: Watched| {
        let (at, answer) = watcher.block_on(w.closed).expect("a watcher task");
        (at - w.sent_at, answer)
    };
    let (idle_for, after_idle) = closed(idle);
    assert!(
        idle_for >= timeout - Duration::from_millis(200) && idle_for <= timeout + MARGIN,
        "the idle connection closed {idle_for:?} after its answer (idle timeout {timeout:?})"
    );
    assert!(after_idle.is_empty(), "{after_idle:?}");
    println!("the idle keep-alive connection closed {idle_for:?} after its answer");
    let mut earliest = Duration::MAX;
    let mut latest = Duration::ZERO;
    for (i, s) in stalled.into_iter().enumerate() {
        let (after, answer) = closed(s);
        earliest = earliest.min(after);
        latest = latest.max(after);
        assert!(
            after <= timeout + MARGIN,
            "stalled connection {i} closed {after:?} after its last byte (timeout {timeout:?})"
        );
        assert!(
            after >= timeout - Duration::from_millis(200),
            "stalled connection {i} closed after {after:?}, before its timeout"
        );
        let answer = String::from_utf8_lossy(&answer);
        if i % 2 == 0 {
            assert!(answer.is_empty(), "a half head got an answer: {answer:?}");
        } else {
            assert!(
                answer.starts_with("HTTP/1.1 408 Request Timeout\r\n")
                    && answer.ends_with("Request body not sent in time\n"),
                "a short body: {answer:?}"
            );
        }
    }
    println!(
        "2,000 stalled connections (opened in {opened_in:?}) closed {earliest:?}–{latest:?} \
         after their last byte; 20 good updates served in {:?} while the server held {held} \
         descriptors",
        served - opening - opened_in
    );
    let reply = server.http().get("healthz", &[]);
    assert_eq!((reply.status, reply.body.as_str()), (200, "OK\n"));
}

#[test]
fn sigterm_exits_within_the_grace_period_whatever_the_clients_do() {
    let grace = Duration::from_secs(2);
    let mut server = Server::start(&[
        "--shutdown-grace",
        "2",
        "--header-timeout",
        "60",
        "--body-timeout",
        "60",
        "--idle-timeout",
        "60",
    ]);
    let addr = server.addr();
    // Half a head, a body that never ends, and a kept-alive connection between requests.
    let mut half_head = Stalled::open(addr, HALF_HEAD);
    let mut short_body = Stalled::open(addr, SHORT_BODY);
    let mut idle = TcpStream::connect(addr).expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("send");
    let mut answer = [0u8; 512];
    let n = idle.read(&mut answer).expect("an answer");
    assert!(answer[..n].starts_with(b"HTTP/1.1 200 OK"));
    idle.set_nonblocking(true).expect("non-blocking");
    // The stalled body is being read by /update before the signal.
    poll(
        "the server to take the stalled connections",
        Duration::from_secs(5),
        Duration::from_millis(10),
        || (!half_head.poll_closed() && !short_body.poll_closed()).then_some(()),
    );

    let (status, took) = server.stop_within(grace + MARGIN);
    println!("exited ({status}) {took:?} after SIGTERM, grace {grace:?}");
    assert!(half_head.poll_closed() && short_body.poll_closed());
    let mut idle_closed = false;
    match idle.read(&mut answer) {
        Ok(0) => idle_closed = true,
        Err(e) if e.kind() != ErrorKind::WouldBlock => idle_closed = true,
        _ => {}
    }
    assert!(idle_closed, "the idle connection is still open");
    let log = server.stderr();
    assert!(
        log.contains("grace period over: closing the connections left"),
        "the stalled body should have kept a connection until the grace period: {log}"
    );
}
