//! The README's shell examples still run as written: every `sh` block is run line
//! by line in a scratch folder, with the real binary first on PATH. A line that
//! starts a receiver is started (on free ports, the only change: `--port 0
//! --admin 127.0.0.1:0`); the lines after it in the block talk to it, with its
//! ports put where the README says 8081 and 9081, and a second receiver standing
//! in for "your receiver" on 3000. Lines that build, benchmark or reach other
//! machines are listed as skipped, so that a new kind of line is noticed. A block
//! that talks to a hookscope without starting one gets a plain `hookscope`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::Hookscope;

/// Lines that are not run, by what they contain, and why.
const SKIPPED: [(&str, &str); 10] = [
    ("cargo ", "builds and tests: what this test is part of"),
    (
        "--state ",
        "needs a receiver with a state endpoint: tests/probe.rs probes such receivers",
    ),
    (
        "--profile standard-webhooks",
        "needs a receiver that checks signatures: tests/probe.rs runs one",
    ),
    (
        "createuser ",
        "needs a PostgreSQL server: tests/team.rs runs a real one",
    ),
    (
        "postgres://",
        "needs a PostgreSQL server: tests/team.rs runs a real one",
    ),
    ("bench/team.sh", "the benchmark runs for minutes"),
    ("bench/run.sh", "the benchmark runs for minutes"),
    ("bench/instructions.py", "the benchmark runs under valgrind"),
    ("bench/forward.sh", "the benchmark runs for minutes"),
    ("git worktree", "builds another commit"),
];

/// The `sh` blocks of the README, each as its lines (continuations joined, comments cut).
fn shell_blocks(readme: &str) -> Vec<Vec<String>> {
    let mut blocks = Vec::new();
    let mut rest = readme;
    while let Some(start) = rest.find("```sh\n") {
        let body = &rest[start + "```sh\n".len()..];
        let end = body.find("```").expect("the block ends");
        let mut lines = Vec::new();
        let mut pending = String::new();
        for line in body[..end].lines() {
            let line = line.trim();
            if let Some(joined) = line.strip_suffix('\\') {
                pending.push_str(joined);
                continue;
            }
            pending.push_str(line);
            let command = match pending.find("  #") {
                Some(comment) => pending[..comment].trim().to_owned(),
                None => pending.trim().to_owned(),
            };
            if !command.is_empty() {
                lines.push(command);
            }
            pending.clear();
        }
        blocks.push(lines);
        rest = &body[end..];
    }
    blocks
}

/// A receiver started from a README line.
struct Started {
    child: Child,
    port: String,
    admin: String,
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn shell(line: &str, dir: &Path) -> Command {
    let bin = PathBuf::from(common::BIN);
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = Command::new("bash");
    command
        .args(["-c", &format!("set -o pipefail; {line}")])
        .current_dir(dir)
        .env("PATH", path)
        .env("PANTHER_TOKEN", "t0ken-from-the-environment")
        .env("TOKEN", "t0ken-from-the-environment")
        .env("NO_COLOR", "1");
    command
}

fn start(line: &str, dir: &Path) -> Started {
    let mut child = shell(&format!("exec {line} --port 0 --admin 127.0.0.1:0"), dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, received) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let (mut port, mut admin) = (None, None);
    while port.is_none() || admin.is_none() {
        let seen = received
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("`{line}` did not start"));
        let after_colon = |text: &str| text.rsplit(':').next().unwrap().to_owned();
        if let Some(url) = seen.strip_prefix("hookscope: listening on ") {
            port = Some(after_colon(url));
        }
        if let Some(url) = seen.strip_prefix("hookscope: inspector on ") {
            admin = Some(after_colon(url));
        }
    }
    Started {
        child,
        port: port.unwrap(),
        admin: admin.unwrap(),
    }
}

/// Whether a line starts a receiver (`hookscope` with listen's flags, or `hookscope listen`).
fn starts_a_receiver(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("hookscope ") else {
        return false;
    };
    rest.starts_with("listen") || rest.starts_with("--")
}

#[test]
fn every_shell_example_in_the_readme_runs() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let dir = std::env::temp_dir().join(format!("hookscope-readme-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("tests/payloads/valid")).unwrap();
    let alert = common::payload("valid/panther-docs-ipmonitoring.json");
    std::fs::write(dir.join("alert.json"), &alert).unwrap();
    std::fs::write(
        dir.join("tests/payloads/valid/panther-docs-ipmonitoring.json"),
        &alert,
    )
    .unwrap();
    // "Your receiver" in the examples, on 3000.
    let yours = Hookscope::start(&["--format", "quiet"]);

    let (mut ran, mut skipped) = (0, Vec::new());
    for block in shell_blocks(&readme) {
        let mut receiver: Option<Started> = None;
        for line in block {
            if let Some((_, why)) = SKIPPED.iter().find(|(part, _)| line.contains(part)) {
                skipped.push(format!("{line}  ({why})"));
                continue;
            }
            if line.contains("hooks.example.com") {
                skipped.push(format!("{line}  (another machine)"));
                continue;
            }
            if starts_a_receiver(&line) {
                drop(receiver.take()); // the one before stops, as Ctrl-C would
                receiver = Some(start(&line, &dir));
                ran += 1;
                continue;
            }
            if receiver.is_none() && (line.contains("8081") || line.contains("9081")) {
                // A block that talks to a running hookscope without starting one.
                receiver = Some(start("hookscope", &dir));
            }
            let (port, admin) = receiver
                .as_ref()
                .map(|started| (started.port.clone(), started.admin.clone()))
                .unwrap_or_default();
            let mut command = line
                .replace("8081", &port)
                .replace("9081", &admin)
                .replace("3000", &yours.port.to_string());
            if command.starts_with("curl -N") {
                // An event stream never ends by itself: read it for a moment.
                command = command.replace("curl -N", "curl -N --max-time 1");
            }
            let output = shell(&command, &dir).stdin(Stdio::null()).output().unwrap();
            let streamed = command.contains("--max-time 1") && output.status.code() == Some(28);
            assert!(
                output.status.success() || streamed,
                "README line `{line}` (run as `{command}`) failed: {}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            ran += 1;
        }
    }
    assert!(ran >= 15, "only {ran} lines ran; skipped: {skipped:#?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_quick_start_lines_outside_blocks_run_too() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let hookscope = Hookscope::start(&["--format", "quiet"]);
    for quoted in [
        "`hookscope send --to http://127.0.0.1:8081 --test`",
        "`curl -H 'content-type: application/json' -d @tests/payloads/valid/panther-docs-ipmonitoring.json localhost:8081`",
    ] {
        assert!(
            readme.contains(quoted),
            "the README no longer says {quoted}"
        );
        let line = quoted
            .trim_matches('`')
            .replace("8081", &hookscope.port.to_string());
        let output = shell(&line, Path::new(root))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "`{line}`: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert_eq!(hookscope.stop().stderr.matches("summary:").count(), 1);
}
