//! hookscope against the real code on the other side of a webhook:
//! - `send FILE` against Panther's own sender (its `Notification` struct and
//!   `outputs/post.go`, compiled with Debian's Go and json-iterator): the same bytes
//!   on the wire, head and body;
//! - Standard Webhooks signatures against Svix's Python library (v1, `svix-*` and
//!   `webhook-*` headers) and against `cryptography` (v1a, ed25519), both ways;
//! - HAR both ways: a form that chrome-har (npm) writes as `postData.params` is
//!   replayed with its body, and the inspector's export read by haralyzer (PyPI)
//!   keeps each header line and the answer's headers;
//! - `probe --format junit` read by junitparser (PyPI), as a CI system would.
//!
//! Needs Debian's `golang-go` and `golang-github-json-iterator-go-dev`, and a Python
//! with `tests/interop/requirements.txt` in `target/interop-venv` (or
//! `HOOKSCOPE_INTEROP_PYTHON`), and `npm ci --prefix tests/browser` for chrome-har;
//! `.ci/run` installs them. Without them the tests are
//! reported `ignored` with what is missing, except under CI=true, where that is a
//! failure (as tests/team.rs does).

mod common;

use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Hookscope, alert, client, run};
use libtest_mimic::{Arguments, Failed, Trial};

/// Where the interop tools are, or why they are not.
struct Tools {
    go_sender: Result<PathBuf, String>,
    python: Result<PathBuf, String>,
    chrome_har: Result<PathBuf, String>,
}

type Test = fn(&Path) -> Result<(), Failed>;

fn main() -> std::process::ExitCode {
    let arguments = Arguments::from_args();
    let in_ci = std::env::var("CI").is_ok_and(|ci| ci == "true");
    let tools = Tools {
        go_sender: build_go_sender(),
        python: interop_python(),
        chrome_har: chrome_har_script(),
    };
    let trial = |name: &'static str, tool: &Result<PathBuf, String>, test: Test| {
        let tool = tool.clone();
        let skipped = tool.is_err() && !in_ci;
        if let (true, Err(missing)) = (skipped, &tool) {
            println!("{name} is ignored: {missing}");
        }
        Trial::test(name, move || test(&tool.map_err(Failed::from)?)).with_ignored_flag(skipped)
    };
    let trials = vec![
        trial(
            "send_file_puts_on_the_wire_what_panthers_go_sender_does",
            &tools.go_sender,
            send_file_puts_on_the_wire_what_panthers_go_sender_does,
        ),
        trial(
            "svix_signatures_verify_and_svix_verifies_hookscopes",
            &tools.python,
            svix_signatures_verify_and_svix_verifies_hookscopes,
        ),
        trial(
            "ed25519_v1a_signatures_verify_both_ways_with_cryptography",
            &tools.python,
            ed25519_v1a_signatures_verify_both_ways_with_cryptography,
        ),
        trial(
            "a_form_chrome_har_writes_as_params_is_replayed_with_its_body",
            &tools.chrome_har,
            a_form_chrome_har_writes_as_params_is_replayed_with_its_body,
        ),
        trial(
            "the_har_export_keeps_header_lines_and_the_answers_headers_for_haralyzer",
            &tools.python,
            the_har_export_keeps_header_lines_and_the_answers_headers_for_haralyzer,
        ),
        trial(
            "probes_junit_scorecard_is_read_by_junitparser",
            &tools.python,
            probes_junit_scorecard_is_read_by_junitparser,
        ),
    ];
    libtest_mimic::run(&arguments, trials).exit_code()
}

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// A fresh folder for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hookscope-interop-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch folder");
    dir
}

/// Compiles Panther's sender (GOPATH mode: Debian's Go libraries, no network).
fn build_go_sender() -> Result<PathBuf, String> {
    const MISSING: &str = "it needs Go and json-iterator (apt-get install golang-go golang-github-json-iterator-go-dev)";
    let gopath = Path::new("/usr/share/gocode");
    if !gopath.join("src/github.com/json-iterator/go").is_dir() {
        return Err(MISSING.into());
    }
    let dir = scratch("go");
    let out = dir.join("panther_sender");
    let built = Command::new("go")
        .args(["build", "-o"])
        .arg(&out)
        .arg(interop_dir().join("panther_sender.go"))
        .env("GO111MODULE", "off")
        .env("GOPATH", gopath)
        .env("GOCACHE", dir.join("cache"))
        .env("GOFLAGS", "")
        .output()
        .map_err(|_| MISSING.to_owned())?;
    if !built.status.success() {
        return Err(format!(
            "go build failed: {}",
            String::from_utf8_lossy(&built.stderr)
        ));
    }
    Ok(out)
}

/// The Python that has the libraries of requirements.txt.
fn interop_python() -> Result<PathBuf, String> {
    let python = std::env::var_os("HOOKSCOPE_INTEROP_PYTHON").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/interop-venv/bin/python"),
        PathBuf::from,
    );
    let usable = Command::new(&python)
        .args(["-c", "import svix, cryptography"])
        .output()
        .is_ok_and(|out| out.status.success());
    if usable {
        Ok(python)
    } else {
        Err(format!(
            "it needs {} with svix and cryptography (python3 -m venv target/interop-venv && target/interop-venv/bin/pip install -r tests/interop/requirements.txt)",
            python.display()
        ))
    }
}

/// The script that runs chrome-har, when node and chrome-har are installed.
fn chrome_har_script() -> Result<PathBuf, String> {
    let browser = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let has_node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success());
    if has_node && browser.join("node_modules/chrome-har").is_dir() {
        Ok(browser.join("chrome_har.mjs"))
    } else {
        Err("it needs node and chrome-har (npm ci --prefix tests/browser)".into())
    }
}

/// Accepts one connection on `listener`, reads one request (its head, then
/// Content-Length bytes), answers 200 and returns the request's bytes as they came.
fn capture_one(listener: &TcpListener) -> std::io::Result<Vec<u8>> {
    let (mut stream, _) = listener.accept()?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = Vec::new();
    let mut length = 0;
    loop {
        let mut line = Vec::new();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        request.extend_from_slice(&line);
        let text = String::from_utf8_lossy(&line).to_ascii_lowercase();
        if let Some(value) = text.strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        }
        if line == b"\r\n" {
            break;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    request.extend_from_slice(&body);
    stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")?;
    Ok(request)
}

/// What `client` (a command sending one request to `url`) puts on the wire.
fn wire_bytes_of(
    listener: &TcpListener,
    client: impl FnOnce() -> std::process::Output,
) -> Result<Vec<u8>, Failed> {
    std::thread::scope(|scope| {
        let capture = scope.spawn(|| capture_one(listener));
        let out = client();
        if !out.status.success() {
            return Err(format!(
                "the sender failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        capture
            .join()
            .map_err(|_| Failed::from("the capture panicked"))?
            .map_err(|error| format!("nothing captured: {error}").into())
    })
}

/// Alerts whose encoding differs between a naive encoder and Go's: numbers as Go
/// writes a float64, `createdAt` re-written by `time.Time`, the characters jsoniter
/// escapes, nulls Panther replaces. One key per object level: Go writes a map's keys
/// in random order.
const GO_ENCODED_ALERTS: [(&str, &str); 2] = [
    (
        "numbers-and-times",
        r#"{"id":"AWS.Login","createdAt":"2026-11-27T08:12:30.120000000Z","severity":"HIGH",
"type":"RULE","link":"https://acme.runpanther.net/alerts/1","title":"New Alert: <b>&</b>",
"name":"Login","alertId":"a1","alertContext":{"n":[1.0,12345678901234567890,-0.0,1.5e-7,0.1,
1e21,123.456,-17,0,5e-324,0.000001,9007199254740993,{"deep":[1.50,"\u2028 😀 \u0001"]}]},
"description":"d","runbook":"r","tags":["a"],"version":"v1"}"#,
    ),
    (
        "offsets-nulls-and-extras",
        r#"{"id":"x","createdAt":"2026-11-27T10:12:30.5+02:00","severity":"LOW","type":"RULE",
"link":"l","title":"t","name":null,"alertId":null,"alertContext":null,"description":null,
"runbook":null,"tags":null,"version":null,"extra":{"kept":false}}"#,
    ),
];

fn send_file_puts_on_the_wire_what_panthers_go_sender_does(go: &Path) -> Result<(), Failed> {
    let dir = scratch("send");
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}/panther", listener.local_addr()?);
    for (name, alert) in GO_ENCODED_ALERTS {
        let file = dir.join(format!("{name}.json"));
        std::fs::write(&file, alert)?;
        let file = file.to_str().ok_or("a UTF-8 path")?;
        let from_go = wire_bytes_of(&listener, || {
            Command::new(go)
                .args([file, &url])
                .output()
                .expect("the Go sender runs")
        })?;
        let from_hookscope = wire_bytes_of(&listener, || {
            run(
                &[
                    "send",
                    "--to",
                    &url,
                    "--no-validate",
                    "--retries",
                    "0",
                    file,
                ],
                b"",
            )
        })?;
        let (go_text, ours) = (
            String::from_utf8_lossy(&from_go),
            String::from_utf8_lossy(&from_hookscope),
        );
        if from_go != from_hookscope {
            return Err(format!(
                "{name}: Panther's Go sender wrote\n{go_text}\nhookscope wrote\n{ours}"
            )
            .into());
        }
        for expected in [
            "\r\nUser-Agent: Go-http-client/1.1\r\n",
            "\r\nContent-Type: application/json\r\n",
        ] {
            if !ours.contains(expected) {
                return Err(format!("{name}: no {expected:?} in\n{ours}").into());
            }
        }
    }
    Ok(())
}

/// Runs the Python helper with these arguments and returns its stdout.
fn python_helper(python: &Path, args: &[&str]) -> Result<String, Failed> {
    let out = Command::new(python)
        .arg(interop_dir().join("standard_webhooks.py"))
        .args(args)
        .output()?;
    if !out.status.success() {
        return Err(format!("{args:?}: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// POSTs `body` to `url` with the JSON object `headers` as its headers; the status.
fn post_with(url: &str, headers: &str, body: &str) -> Result<u16, Failed> {
    let headers: serde_json::Map<String, serde_json::Value> = serde_json::from_str(headers)?;
    let mut request = client()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(name, value.as_str().unwrap_or_default());
    }
    Ok(request.send()?.status().as_u16())
}

fn now() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.as_secs().to_string())
        .unwrap_or_default()
}

/// A request signed by `helper_args` (the helper's sign command) is accepted by
/// hookscope verifying with `key`, and the same headers over other bytes are refused.
fn signed_by_the_library_is_accepted(
    python: &Path,
    key: &str,
    helper_args: &[&str],
) -> Result<(), Failed> {
    let dir = scratch(helper_args[0]);
    let body = alert("interop-1");
    let file = dir.join("alert.json");
    std::fs::write(&file, &body)?;
    let mut args = helper_args.to_vec();
    let timestamp = now();
    let file = file.to_str().ok_or("a UTF-8 path")?;
    args.extend(["msg_interop1", &timestamp, file]);
    let headers = python_helper(python, &args)?;
    let verify = format!("standard-webhooks:{key}");
    let hookscope = Hookscope::start(&["--verify", &verify, "--require-signature"]);
    let url = hookscope.url("/panther");
    let signed = post_with(&url, &headers, &body)?;
    let tampered = post_with(&url, &headers, &body.replace("interop-1", "interop-2"))?;
    let out = hookscope.stop().stdout_text();
    if signed != 200 || tampered != 401 {
        return Err(format!(
            "signed {signed}, tampered {tampered} (expected 200, 401) with {headers}\n{out}"
        )
        .into());
    }
    if !out.contains(r#""signature":{"scheme":"standard-webhooks","result":"valid"}"#) {
        return Err(format!("no valid signature shown:\n{out}").into());
    }
    Ok(())
}

/// `hookscope send --sign` to the library's own verifier: what it prints, and
/// whether send reported the delivery done.
fn library_verifies_hookscopes(
    python: &Path,
    mode: &str,
    key: &str,
    sign: &str,
) -> Result<(String, bool), Failed> {
    let mut receiver = Command::new(python)
        .arg(interop_dir().join("standard_webhooks.py"))
        .args(["receive", mode, key])
        .stdout(Stdio::piped())
        .spawn()?;
    let mut lines = BufReader::new(receiver.stdout.take().ok_or("stdout")?).lines();
    let port = lines.next().ok_or("the receiver printed no port")??;
    let sign = format!("standard-webhooks:{sign}");
    let url = format!("http://127.0.0.1:{port}/hook");
    let sent = run(
        &[
            "send",
            "--to",
            &url,
            "--test",
            "--retries",
            "0",
            "--sign",
            &sign,
        ],
        b"",
    );
    let verdict = lines.next().ok_or("the receiver printed no verdict")??;
    let _ = receiver.wait();
    Ok((verdict, sent.status.success()))
}

fn svix_signatures_verify_and_svix_verifies_hookscopes(python: &Path) -> Result<(), Failed> {
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    // Signed by Svix's library: svix-id, svix-timestamp, svix-signature.
    signed_by_the_library_is_accepted(python, SECRET, &["sign-svix", SECRET])?;
    let (verdict, delivered) = library_verifies_hookscopes(python, "svix", SECRET, SECRET)?;
    if verdict != "verified webhook-id,webhook-signature,webhook-timestamp" || !delivered {
        return Err(format!("Svix's Webhook.verify said: {verdict}").into());
    }
    Ok(())
}

fn ed25519_v1a_signatures_verify_both_ways_with_cryptography(python: &Path) -> Result<(), Failed> {
    let pair: serde_json::Value = serde_json::from_str(&python_helper(python, &["keypair"])?)?;
    let (secret, public) = (
        pair["secret"].as_str().ok_or("a secret key")?,
        pair["public"].as_str().ok_or("a public key")?,
    );
    signed_by_the_library_is_accepted(python, public, &["sign-v1a", secret])?;
    let (verdict, delivered) = library_verifies_hookscopes(python, "v1a", public, secret)?;
    if verdict != "verified webhook-id,webhook-signature,webhook-timestamp" || !delivered {
        return Err(format!("cryptography's Ed25519PublicKey.verify said: {verdict}").into());
    }
    // Another pair's public key refuses what this pair signed.
    let other: serde_json::Value = serde_json::from_str(&python_helper(python, &["keypair"])?)?;
    let other_public = other["public"].as_str().ok_or("a public key")?;
    let (verdict, delivered) = library_verifies_hookscopes(python, "v1a", other_public, secret)?;
    if !verdict.starts_with("refused InvalidSignature") || delivered {
        return Err(format!("a signature by another key was not refused: {verdict}").into());
    }
    Ok(())
}

/// chrome-har's HAR of one POST (its DevTools events made by tests/browser/chrome_har.mjs).
fn chrome_har(script: &Path, url: &str, content_type: &str, body: &str) -> Result<String, Failed> {
    let out = Command::new("node")
        .arg(script)
        .args([url, content_type, body])
        .output()?;
    if !out.status.success() {
        return Err(format!("chrome-har: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(String::from_utf8(out.stdout)?)
}

fn a_form_chrome_har_writes_as_params_is_replayed_with_its_body(
    script: &Path,
) -> Result<(), Failed> {
    const FORM: &str = "a=1&b=hello+world&c=%26x";
    let dir = scratch("chrome-har");
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}/form", listener.local_addr()?);
    let har = chrome_har(script, &url, "application/x-www-form-urlencoded", FORM)?;
    if har.contains("\"text\"") || !har.contains("\"params\"") {
        return Err(format!("chrome-har no longer writes a form as params alone: {har}").into());
    }
    let file = dir.join("form.har");
    std::fs::write(&file, &har)?;
    let file = file.to_str().ok_or("a UTF-8 path")?;
    let replayed = String::from_utf8(wire_bytes_of(&listener, || {
        run(&["replay", file, "--to", &url], b"")
    })?)?;
    let (head, body) = replayed.split_once("\r\n\r\n").ok_or("a request head")?;
    let head = head.to_ascii_lowercase();
    if body != FORM
        || !head.contains("\r\ncontent-type: application/x-www-form-urlencoded\r\n")
        || !head.contains("\r\nx-seen: chrome-har\r\n")
    {
        return Err(format!("the replay sent\n{replayed}").into());
    }
    // A replay sends what was received, and its own mark: no Accept of the client's.
    if head.contains("\r\naccept:") || !head.contains("\r\nx-hookscope-replay:") {
        return Err(format!("the replay added or lost a header:\n{replayed}").into());
    }
    // chrome-har writes a JSON body as params too, and those cannot give its bytes back.
    let json_har = chrome_har(
        script,
        &url,
        "application/json",
        r#"{"alertId":"a","tags":["x"]}"#,
    )?;
    let json_file = dir.join("json.har");
    std::fs::write(&json_file, json_har)?;
    let refused = run(
        &[
            "replay",
            json_file.to_str().ok_or("a UTF-8 path")?,
            "--to",
            &url,
        ],
        b"",
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    if refused.status.code() != Some(2) || !stderr.contains("cannot be rebuilt") {
        return Err(format!("a JSON body given as params: {:?} {stderr}", refused.status).into());
    }
    Ok(())
}

fn the_har_export_keeps_header_lines_and_the_answers_headers_for_haralyzer(
    python: &Path,
) -> Result<(), Failed> {
    let hookscope = Hookscope::start(&["--header", "X-Answered-By: hookscope", "--status", "202"]);
    let answer = client()
        .post(hookscope.url("/panther"))
        .header("content-type", "application/json")
        .header("x-seen", "one")
        .header("x-seen", "two, three")
        .body(alert("har-1"))
        .send()?;
    if answer.status().as_u16() != 202 {
        return Err(format!("posted: {}", answer.status()).into());
    }
    let har = client()
        .get(hookscope.api("/api/export.har"))
        .send()?
        .text()?;
    let dir = scratch("har-export");
    let file = dir.join("export.har");
    std::fs::write(&file, &har)?;
    let read = python_helper(
        python,
        &["har-headers", file.to_str().ok_or("a UTF-8 path")?],
    )?;
    let entries: Vec<serde_json::Value> = serde_json::from_str(&read)?;
    let [entry] = entries.as_slice() else {
        return Err(format!("haralyzer read {} entries: {read}", entries.len()).into());
    };
    let lines = |side: &str, name: &str| -> Vec<String> {
        entry[side]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|pair| {
                pair[0]
                    .as_str()
                    .is_some_and(|given| given.eq_ignore_ascii_case(name))
            })
            .filter_map(|pair| pair[1].as_str().map(str::to_owned))
            .collect()
    };
    if lines("request", "x-seen") != ["one", "two, three"] {
        return Err(format!("the request's header lines were not kept apart: {read}").into());
    }
    if lines("response", "x-answered-by") != ["hookscope"]
        || lines("response", "content-type").is_empty()
        || entry["status"] != 202
    {
        return Err(format!("the answer's headers are missing: {read}").into());
    }
    Ok(())
}

fn probes_junit_scorecard_is_read_by_junitparser(python: &Path) -> Result<(), Failed> {
    // A receiver that refuses every alert: one check fails, one passes, one is skipped.
    let refusing =
        Hookscope::start(&["--status", "503", "--body", "down <for> maintenance & more"]);
    let url = refusing.url("/panther");
    let out = run(
        &[
            "probe",
            &url,
            "--format",
            "junit",
            "--only",
            "alert-types",
            "--only",
            "certificate",
            "--only",
            "keep-alive",
        ],
        b"",
    );
    if out.status.code() != Some(1) {
        return Err(format!(
            "probe exited {:?}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let dir = scratch("junit");
    let file = dir.join("probe.xml");
    std::fs::write(&file, &out.stdout)?;
    let read = python_helper(python, &["junit", file.to_str().ok_or("a UTF-8 path")?])?;
    let summary: serde_json::Value = serde_json::from_str(&read)?;
    let expected = serde_json::json!({
        "tests": 3, "failures": 1, "skipped": 1, "errors": 0,
        "cases": [
            ["alert-types", "failure", "hookscope.probe.panther"],
            ["certificate", "skipped", "hookscope.probe.panther"],
            ["keep-alive", "passed", "hookscope.probe.panther"],
        ],
    });
    if summary != expected {
        return Err(format!(
            "junitparser read {read}\nfrom {}",
            String::from_utf8_lossy(&out.stdout)
        )
        .into());
    }
    Ok(())
}
