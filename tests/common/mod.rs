//! Helpers that make each test read like a user's session: start the real binary
//! on a free port, talk to it over real sockets, stop it like a user would.
#![allow(dead_code)]

pub mod app;

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_hookscope");
const START_TIMEOUT: Duration = Duration::from_secs(10);

pub fn payload(name: &str) -> Vec<u8> {
    std::fs::read(payload_path(name)).expect("test payload exists")
}

/// Panther's documented alert with this `alertId`: the alert most tests post.
pub fn alert(alert_id: &str) -> String {
    alert_with(&[("alertId", alert_id)])
}

/// Panther's documented alert (valid/panther-docs-ipmonitoring.json) with these
/// top-level fields set to these strings, as a sender would post it.
pub fn alert_with(fields: &[(&str, &str)]) -> String {
    let mut alert: serde_json::Value =
        serde_json::from_slice(&payload("valid/panther-docs-ipmonitoring.json")).unwrap();
    for (name, value) in fields {
        alert[*name] = (*value).into();
    }
    alert.to_string()
}

pub fn payload_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/payloads")
        .join(name)
}

/// A running `hookscope listen`.
pub struct Hookscope {
    child: Child,
    pub url: String,
    pub port: u16,
    /// The admin API's base URL, unless started with --no-admin.
    pub admin: Option<String>,
    stdout: Arc<Mutex<Vec<u8>>>,
    /// Reads stdout until the process closes it; joined on stop, so that nothing
    /// written just before the exit is missed.
    stdout_reader: Option<thread::JoinHandle<()>>,
    stderr_lines: Receiver<String>,
    stderr_seen: Vec<String>,
    /// Set for a hookscope whose stdout is not read until `release_stdout`.
    stdout_gate: Option<mpsc::Sender<()>>,
}

/// What a stopped hookscope left behind.
pub struct Stopped {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Stopped {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// The `--format json` lines, parsed.
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        self.stdout_text()
            .lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| panic!("bad line {line:?}: {e}"))
            })
            .collect()
    }
}

impl Hookscope {
    /// Starts `hookscope listen --port 0 ARGS...` (ARGS may name a port of their own;
    /// the admin API on a free port unless ARGS say otherwise) and waits for its
    /// `listening on` line.
    pub fn start(args: &[&str]) -> Hookscope {
        Hookscope::launch(args, false)
    }

    /// Like `start`, but nobody reads its stdout until `release_stdout`: a consumer
    /// that stalls (a paused pager, a stuck pipe).
    pub fn start_with_stalled_stdout(args: &[&str]) -> Hookscope {
        Hookscope::launch(args, true)
    }

    /// Starts reading the stdout of `start_with_stalled_stdout`.
    pub fn release_stdout(&mut self) {
        if let Some(gate) = self.stdout_gate.take() {
            let _ = gate.send(());
        }
    }

    fn launch(args: &[&str], stalled: bool) -> Hookscope {
        let admin_given = args
            .iter()
            .any(|arg| *arg == "--admin" || *arg == "--no-admin");
        let admin_args: &[&str] = if admin_given {
            &[]
        } else {
            &["--admin", "127.0.0.1:0"]
        };
        let port_args: &[&str] = if args.contains(&"--port") {
            &[]
        } else {
            &["--port", "0"]
        };
        let mut child = Command::new(BIN)
            .arg("listen")
            .args(port_args)
            .args(admin_args)
            .args(args)
            .env_remove("NO_COLOR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("hookscope starts");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let mut pipe = child.stdout.take().unwrap();
        let sink = Arc::clone(&stdout);
        let (gate, opened) = mpsc::channel::<()>();
        let stdout_reader = thread::spawn(move || {
            if stalled {
                let _ = opened.recv();
            }
            let mut buffer = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buffer[..n]);
            }
        });
        let (lines, stderr_lines) = mpsc::channel();
        let pipe = child.stderr.take().unwrap();
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let mut hookscope = Hookscope {
            child,
            url: String::new(),
            port: 0,
            admin: None,
            stdout,
            stdout_reader: Some(stdout_reader),
            stderr_lines,
            stderr_seen: Vec::new(),
            stdout_gate: stalled.then_some(gate),
        };
        let line = hookscope
            .wait_for_stderr("listening on ")
            .unwrap_or_else(|| panic!("no listening line; stderr: {:?}", hookscope.stderr_seen));
        let url = line
            .split("listening on ")
            .nth(1)
            .unwrap()
            .trim()
            .to_owned();
        hookscope.port = url.rsplit(':').next().unwrap().parse().unwrap();
        hookscope.url = url;
        if !args.contains(&"--no-admin") {
            let line = hookscope
                .wait_for_stderr("inspector on ")
                .unwrap_or_else(|| {
                    panic!("no inspector line; stderr: {:?}", hookscope.stderr_seen)
                });
            hookscope.admin = Some(
                line.split("inspector on ")
                    .nth(1)
                    .unwrap()
                    .trim()
                    .to_owned(),
            );
        }
        hookscope
    }

    pub fn wait_for_stderr(&mut self, needle: &str) -> Option<String> {
        loop {
            match self.stderr_lines.recv_timeout(START_TIMEOUT) {
                Ok(line) => {
                    self.stderr_seen.push(line.clone());
                    if line.contains(needle) {
                        return Some(line);
                    }
                }
                Err(_) => return None,
            }
        }
    }

    /// A stderr line with `needle`, among those seen already or the next ones.
    pub fn stderr_line(&mut self, needle: &str) -> Option<String> {
        let seen = self.stderr_seen.iter().find(|line| line.contains(needle));
        match seen {
            Some(line) => Some(line.clone()),
            None => self.wait_for_stderr(needle),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    /// URL of an admin API path.
    pub fn api(&self, path: &str) -> String {
        format!(
            "{}{}",
            self.admin.as_deref().expect("admin API running"),
            path
        )
    }

    /// Forgets the history (DELETE /api/requests).
    pub fn store_clear(&self) {
        let response = client().delete(self.api("/api/requests")).send().unwrap();
        assert_eq!(response.status(), 200);
    }

    /// The process id, to signal it.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM, as a service manager would, and waits for the exit.
    pub fn stop(mut self) -> Stopped {
        self.release_stdout();
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: sending a signal to our own child process.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let status = wait_with_timeout(&mut self.child, Duration::from_secs(15));
        if let Some(reader) = self.stdout_reader.take() {
            let _ = reader.join();
        }
        let mut stderr = self.stderr_seen.join("\n");
        while let Ok(line) = self.stderr_lines.recv_timeout(Duration::from_secs(2)) {
            stderr.push('\n');
            stderr.push_str(&line);
        }
        let stdout = self.stdout.lock().unwrap().clone();
        Stopped {
            status,
            stdout,
            stderr,
        }
    }
}

impl Drop for Hookscope {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The admin API's stats once `done` says they are complete (within 10 s): exchanges
/// are published when their connection ends, which can be after the client has its answer.
pub fn stats_when(
    hookscope: &Hookscope,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, stats) = get_json(&hookscope.api("/api/stats"));
        if done(&stats) || std::time::Instant::now() > deadline {
            return stats;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

pub fn wait_with_timeout(child: &mut Child, timeout: Duration) -> ExitStatus {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("child can be waited on") {
            return status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("hookscope did not exit within {timeout:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Runs hookscope to completion (at most 60 s) with the given args and stdin.
pub fn run(args: &[&str], stdin: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hookscope runs");
    let _ = child.stdin.take().unwrap().write_all(stdin);
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stdout.read_to_end(&mut bytes);
        bytes
    });
    let err = thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stderr.read_to_end(&mut bytes);
        bytes
    });
    let status = wait_with_timeout(&mut child, Duration::from_secs(60));
    std::process::Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// A loopback port that nothing listens on.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// POSTs `body` as `application/json`, as a webhook sender does.
pub fn post_json(url: &str, body: &str) -> reqwest::Result<reqwest::blocking::Response> {
    client()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
}

/// One shared HTTP client (a blocking client starts a thread of its own, so one per request is slow).
pub fn client() -> reqwest::blocking::Client {
    static CLIENT: std::sync::OnceLock<reqwest::blocking::Client> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap()
        })
        .clone()
}

/// A minimal HTTP/1.1 client on one kept-alive TCP connection, for tests that
/// need to control connections exactly (how many, and what is on each).
pub struct RawConnection {
    stream: std::net::TcpStream,
    reader: BufReader<std::net::TcpStream>,
}

impl RawConnection {
    pub fn connect(port: u16) -> std::io::Result<RawConnection> {
        let stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        stream.set_nodelay(true)?;
        let reader = BufReader::new(stream.try_clone()?);
        Ok(RawConnection { stream, reader })
    }

    /// POSTs a body and reads the answer: its status and body.
    pub fn post(&mut self, path: &str, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        use std::io::Write;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        self.stream.write_all(&request)?;
        self.read_answer()
    }

    pub fn read_answer(&mut self) -> std::io::Result<(u16, Vec<u8>)> {
        let broken =
            |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| broken(&line))?;
        let mut length = 0usize;
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().map_err(|_| broken(header))?;
                }
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body)?;
        Ok((status, body))
    }

    pub fn stream(&mut self) -> &mut std::net::TcpStream {
        &mut self.stream
    }
}

/// A memory figure of a process from /proc/PID/status, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    try_status_kib(pid, field).unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

/// A memory figure of a process, or `None` once it has ended.
pub fn try_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Resident memory of a process now, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// The peak resident memory of a process so far (VmHWM), in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM:")
}

/// A small seeded generator, so that a failing random test can be replayed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Fails if uncoloured output holds a character that a terminal would act on:
/// C0/C1 controls (ESC included), DEL, or a bidi override. Newline and tab are
/// kept in multi-line text bodies on purpose: they lay text out, they cannot
/// move the cursor anywhere else or start a sequence.
pub fn assert_terminal_safe(stdout: &str) {
    for (index, c) in stdout.char_indices() {
        let unsafe_char = (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        assert!(!unsafe_char, "raw {c:?} at {index} in stdout: {stdout}");
    }
}

/// RFC 8259 JSON text: UTF-8, and the grammar (a lone surrogate escape is grammatical).
pub fn is_json_text(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok()
        && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok()
}

/// GETs a URL: the status and the body parsed as JSON.
pub fn get_json(url: &str) -> (u16, serde_json::Value) {
    let response = client().get(url).send().unwrap();
    let status = response.status().as_u16();
    (
        status,
        serde_json::from_slice(&response.bytes().unwrap()).unwrap(),
    )
}

/// GETs a URL: the body as text, exactly as sent.
pub fn get_text(url: &str) -> String {
    client().get(url).send().unwrap().text().unwrap()
}

/// Sends a whole request on a fresh connection and reads until the server closes
/// it (at most 10 s). The sending side stays open: a half-close races with the
/// answer (the server may take the early EOF as the client leaving).
pub fn send_raw(port: u16, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    exchange_raw(port, bytes, false)
}

/// Sends bytes on a fresh connection, closes the sending side, and reads
/// whatever comes back until the server closes (at most 10 s).
pub fn send_raw_and_close(port: u16, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    exchange_raw(port, bytes, true)
}

fn exchange_raw(port: u16, bytes: &[u8], half_close: bool) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let _ = stream.write_all(bytes);
    if half_close {
        let _ = stream.shutdown(std::net::Shutdown::Write);
    }
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    Ok(answer)
}

/// Throws generated inputs at a port from `workers` threads, each input on a
/// fresh connection (`input` gets the worker's generator, seeded from `seed`,
/// and the case number); fails, naming the seed, if any input got a 5xx answer.
pub fn assert_never_5xx<F>(port: u16, seed: u64, workers: u64, cases: usize, input: F)
where
    F: Fn(&mut Rng, usize) -> Vec<u8> + Send + Sync + 'static,
{
    let input = Arc::new(input);
    let threads: Vec<_> = (0..workers)
        .map(|worker| {
            let input = Arc::clone(&input);
            thread::spawn(move || {
                let mut rng = Rng::new(seed.wrapping_add(worker));
                let mut server_errors = Vec::new();
                for case in 0..cases {
                    let bytes = input(&mut rng, case);
                    let Ok(answer) = send_raw_and_close(port, &bytes) else {
                        continue;
                    };
                    if answer.starts_with(b"HTTP/1.1 5") {
                        let answer = String::from_utf8_lossy(&answer).into_owned();
                        server_errors.push((worker, case, answer));
                    }
                }
                server_errors
            })
        })
        .collect();
    for thread in threads {
        let server_errors = thread.join().unwrap();
        assert!(
            server_errors.is_empty(),
            "seed {seed}: 5xx answers (worker, case, answer): {server_errors:?}"
        );
    }
}
