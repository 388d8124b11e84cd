//! A real browser for the web pages: Debian's `chromium`, headless, steered through
//! `chromedriver` (WebDriver) with `fantoccini`.
//!
//! [`Browser::start`] reads `OKERR_TEST_CHROMEDRIVER` (and `OKERR_TEST_CHROMIUM`, default
//! `/usr/bin/chromium`), set by `ensure_browser` in `.ci/services.sh`. Without it the
//! browser tests print why they skip, unless `OKERR_REQUIRE_BROWSER=1`: then they fail.
//! Every browser starts with a fresh profile in a temporary directory.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use tempfile::TempDir;

/// How long the driver may take to listen, and a page to reach a state.
pub const BROWSER_TIMEOUT: Duration = Duration::from_secs(30);

/// Chromium's switches for a headless run as root on a machine without internet.
const CHROME_ARGS: [&str; 10] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
];

/// The chromedriver to use, from `OKERR_TEST_CHROMEDRIVER`. Without it, prints why the
/// test is skipped and returns `None`.
///
/// # Panics
/// When it is unset and `OKERR_REQUIRE_BROWSER=1`, or when it names no file.
pub fn chromedriver() -> Option<PathBuf> {
    let path = crate::from_env(
        "OKERR_TEST_CHROMEDRIVER",
        "OKERR_REQUIRE_BROWSER",
        "ensure_browser",
    )?;
    assert!(
        path.is_file(),
        "OKERR_TEST_CHROMEDRIVER={} is no file",
        path.display()
    );
    Some(path)
}

/// The directory for screenshots: `target/screenshots` (next to `target/debug`).
pub fn screenshot_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the path of the test executable");
    // target/debug/deps/browser-… → target
    let target = exe
        .ancestors()
        .nth(3)
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf);
    target.join("screenshots")
}

/// A headless chromium with its own chromedriver and profile; both end when dropped.
#[derive(Debug)]
pub struct Browser {
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    driver: Child,
    _profile: TempDir,
}

impl Browser {
    /// Starts chromedriver on a free port and a browser session in it; `None` (the test
    /// skips) without `OKERR_TEST_CHROMEDRIVER`.
    ///
    /// # Panics
    /// When the driver or the browser does not start.
    pub fn start() -> Option<Browser> {
        let driver_path = chromedriver()?;
        let chromium = std::env::var("OKERR_TEST_CHROMIUM")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "/usr/bin/chromium".to_owned());
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", driver_path.display()));
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        crate::poll(
            "chromedriver to listen",
            BROWSER_TIMEOUT,
            Duration::from_millis(50),
            || TcpStream::connect(addr).ok(),
        );
        let profile = tempfile::Builder::new()
            .prefix("okerr-chromium-")
            .tempdir()
            .expect("a profile directory");
        let mut args: Vec<String> = CHROME_ARGS.iter().map(|a| (*a).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".to_owned(),
            serde_json::json!({ "binary": chromium, "args": args }),
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = rt
            .block_on(
                ClientBuilder::new(connector)
                    .capabilities(caps)
                    .connect(&format!("http://{addr}")),
            )
            .unwrap_or_else(|e| panic!("no browser session from chromedriver at {addr}: {e}"));
        Some(Browser {
            rt,
            client: Some(client),
            driver,
            _profile: profile,
        })
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("a browser session")
    }

    /// Opens `url` and waits for the page to load.
    ///
    /// # Panics
    /// When the browser cannot.
    pub fn goto(&self, url: &str) {
        self.rt
            .block_on(self.client().goto(url))
            .unwrap_or_else(|e| panic!("goto {url}: {e}"));
    }

    /// The URL the browser shows.
    ///
    /// # Panics
    /// When the browser does not answer.
    pub fn url(&self) -> String {
        self.rt
            .block_on(self.client().current_url())
            .expect("the current URL")
            .to_string()
    }

    /// An attribute of the first element that matches `css`; `None` when there is no
    /// such element or attribute.
    pub fn attr(&self, css: &str, attr: &str) -> Option<String> {
        self.rt.block_on(async {
            let el = self.client().find(Locator::Css(css)).await.ok()?;
            el.attr(attr).await.ok().flatten()
        })
    }

    /// The visible text of the first element that matches `css`.
    ///
    /// # Panics
    /// When there is none.
    pub fn text(&self, css: &str) -> String {
        self.rt
            .block_on(async {
                let el = self.client().find(Locator::Css(css)).await?;
                el.text().await
            })
            .unwrap_or_else(|e| panic!("text of {css}: {e}"))
    }

    /// The computed value of a CSS property of the first element that matches `css`.
    ///
    /// # Panics
    /// When there is none.
    pub fn css_value(&self, css: &str, property: &str) -> String {
        self.rt
            .block_on(async {
                let el = self.client().find(Locator::Css(css)).await?;
                el.css_value(property).await
            })
            .unwrap_or_else(|e| panic!("{property} of {css}: {e}"))
    }

    /// Types `value` into the first element that matches `css`.
    ///
    /// # Panics
    /// When there is none.
    pub fn fill(&self, css: &str, value: &str) {
        self.rt
            .block_on(async {
                let el = self.client().find(Locator::Css(css)).await?;
                el.clear().await?;
                el.send_keys(value).await
            })
            .unwrap_or_else(|e| panic!("fill {css}: {e}"));
    }

    /// Clicks the first element that matches `css`.
    ///
    /// # Panics
    /// When there is none.
    pub fn click(&self, css: &str) {
        self.rt
            .block_on(async {
                let el = self.client().find(Locator::Css(css)).await?;
                el.click().await
            })
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Waits (at most [`BROWSER_TIMEOUT`]) until `f` finds what it wants in the page.
    ///
    /// # Panics
    /// On timeout, naming `what`.
    pub fn wait<T>(&self, what: &str, mut f: impl FnMut(&Browser) -> Option<T>) -> T {
        crate::poll(what, BROWSER_TIMEOUT, Duration::from_millis(50), || f(self))
    }

    /// Saves a PNG of the window as `target/screenshots/{name}.png`; returns its path.
    ///
    /// # Panics
    /// When the browser or the file system fails.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let png = self
            .rt
            .block_on(self.client().screenshot())
            .expect("a screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("the screenshot directory");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("the screenshot file");
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = self.rt.block_on(client.close());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
