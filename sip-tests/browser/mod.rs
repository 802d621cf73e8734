//! A small W3C WebDriver client (the handful of commands the dashboard test uses) over a plain HTTP/1.1
//! connection to Debian's `chromedriver`, driving headless `chromium`. Written here rather than taken as a
//! dependency: the protocol is a few JSON requests, and the crates for it bring a second HTTP and TLS stack.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
pub const ENTER: &str = "\u{E007}";
pub const ESCAPE: &str = "\u{E00C}";
pub const TAB: &str = "\u{E004}";

/// A chromedriver process and one browser session in it; both end on drop.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    profile: PathBuf,
}

/// Where Debian puts them (packages `chromium`, `chromium-driver`).
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

impl Browser {
    pub fn start() -> Browser {
        for tool in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing: install Debian's chromium and chromium-driver (bash sip-tests/run does)"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen on {port} within 20 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = std::env::temp_dir().join(format!("vocals-chromium-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        // Headless, as root in CI; no background traffic (the machine has no outside network).
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--window-size=1280,900",
            &format!("--user-data-dir={}", profile.display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let mut browser = Browser { driver, port, session: String::new(), profile };
        let v = browser.call("POST", "/session", Some(caps));
        browser.session = v["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {v}")).to_string();
        browser
    }

    /// One WebDriver command; its `value`. A WebDriver error panics with its message.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, v) = self.try_call(method, path, body);
        assert!(status < 300, "WebDriver {method} {path}: {status} {v}");
        v["value"].clone()
    }

    fn try_call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut conn = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        write!(
            conn,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
             Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        // chromedriver keeps the connection open whatever the request says: read the head, then exactly the
        // body its Content-Length announces (or the chunks).
        let mut raw = Vec::new();
        let mut buf = [0u8; 16384];
        let head_end = loop {
            if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let n = conn.read(&mut buf).unwrap();
            assert!(n > 0, "chromedriver closed the connection mid-answer");
            raw.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
        let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let length =
            head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse::<usize>().ok());
        let chunked = head.contains("transfer-encoding: chunked");
        loop {
            let have = raw.len() - head_end;
            let done = match length {
                Some(len) => have >= len,
                None if chunked => raw[head_end..].windows(5).any(|w| w == b"0\r\n\r\n"),
                None => false,
            };
            if done {
                break;
            }
            let n = conn.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            raw.extend_from_slice(&buf[..n]);
        }
        let rest = String::from_utf8_lossy(&raw[head_end..]).into_owned();
        let body = if chunked { unchunk(&rest) } else { rest };
        (status, serde_json::from_str(&body).unwrap_or(Value::Null))
    }

    fn s(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    pub fn goto(&self, url: &str) {
        self.call("POST", &self.s("/url"), Some(json!({"url": url})));
    }

    /// The first element matching a CSS selector, waiting up to 10 s for it.
    pub fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (status, v) =
                self.try_call("POST", &self.s("/element"), Some(json!({"using": "css selector", "value": css})));
            if status < 300 {
                return v["value"][ELEMENT].as_str().unwrap_or_else(|| panic!("find {css:?}: {v}")).to_string();
            }
            assert!(Instant::now() < deadline, "no element {css:?} within 10 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Clicks the element (waiting for it to be shown and enabled).
    pub fn click(&self, css: &str) {
        self.wait(
            &format!(
                "{{const e = document.querySelector({css:?}); return !!e && !e.disabled && e.offsetParent !== null}}"
            ),
            css,
        );
        // The page re-renders its tables every 2 s: an element found just before a refresh is stale by the
        // click. Found again, it is the refreshed one.
        for _ in 0..5 {
            let id = self.find(css);
            let (status, v) = self.try_call("POST", &self.s(&format!("/element/{id}/click")), Some(json!({})));
            if status < 300 {
                return;
            }
            assert!(v.to_string().contains("stale element"), "WebDriver click on {css}: {status} {v}");
        }
        panic!("{css} went stale five times in a row");
    }

    /// Replaces a field's text by typing, once the field can take it (shown and enabled, as [`Browser::click`]
    /// waits for: a dialog's field is disabled while what it offers loads).
    pub fn fill(&self, css: &str, text: &str) {
        self.wait(
            &format!(
                "{{const e = document.querySelector({css:?}); return !!e && !e.disabled && e.offsetParent !== null}}"
            ),
            css,
        );
        let id = self.find(css);
        self.call("POST", &self.s(&format!("/element/{id}/clear")), Some(json!({})));
        self.call("POST", &self.s(&format!("/element/{id}/value")), Some(json!({"text": text})));
    }

    /// Picks the option with this value in a `<select>`, by clicking it.
    pub fn select(&self, css: &str, value: &str) {
        // An <option> has no layout box of its own: WebDriver's click selects it all the same.
        let id = self.find(&format!("{css} option[value={value:?}]"));
        self.call("POST", &self.s(&format!("/element/{id}/click")), Some(json!({})));
        let chosen = self.js(&format!("return document.querySelector({css:?}).value"));
        assert_eq!(chosen, value, "{css} did not take {value:?}");
    }

    pub fn text(&self, css: &str) -> String {
        let id = self.find(css);
        self.call("GET", &self.s(&format!("/element/{id}/text")), None).as_str().unwrap_or_default().to_string()
    }

    /// Presses keys on whatever has the focus.
    pub fn keys(&self, keys: &str) {
        let mut actions = Vec::new();
        for k in keys.chars() {
            actions.push(json!({"type": "keyDown", "value": k.to_string()}));
            actions.push(json!({"type": "keyUp", "value": k.to_string()}));
        }
        self.call(
            "POST",
            &self.s("/actions"),
            Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})),
        );
    }

    /// Runs `body` (a function body: `return …`) in the page.
    pub fn js(&self, body: &str) -> Value {
        self.call("POST", &self.s("/execute/sync"), Some(json!({"script": body, "args": []})))
    }

    /// Waits up to 10 s for `body` (a function body) to return something truthy; panics naming `what`.
    pub fn wait(&self, body: &str, what: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let v = self.js(body);
            if !(v.is_null() || v == false || v == "" || v == 0) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "waited 10 s for {what}; the page says: {}",
                self.js("return document.body.innerText")
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for the element to contain `text`.
    pub fn wait_text(&self, css: &str, text: &str) {
        self.wait(
            &format!("{{const e = document.querySelector({css:?}); return !!e && e.textContent.includes({text:?})}}"),
            &format!("{css:?} to say {text:?}"),
        );
    }

    pub fn resize(&self, width: u32, height: u32) {
        self.call("POST", &self.s("/window/rect"), Some(json!({"width": width, "height": height})));
    }

    /// A PNG of the viewport, written to `path`.
    pub fn screenshot(&self, path: &Path) {
        let b64 = self.call("GET", &self.s("/screenshot"), None);
        let png = base64::engine::general_purpose::STANDARD.decode(b64.as_str().unwrap()).unwrap();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.try_call("DELETE", &format!("/session/{}", self.session), None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn unchunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || tail.len() < n {
            break;
        }
        out.push_str(&tail[..n]);
        rest = tail[n..].trim_start_matches("\r\n");
    }
    out
}
