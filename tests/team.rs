//! `listen --store postgres://...`: several hookscopes on one real PostgreSQL
//! (a throwaway cluster: `initdb` into a temporary folder, `pg_ctl start` on a free
//! port, as the `postgres` user when run as root). Attempts are numbered and scripts
//! walked across instances, each lists what all received, live feeds carry the
//! others' exchanges, and a database that stops, restarts or stalls costs 503s with
//! Retry-After, never an acknowledged alert.
//!
//! Needs Debian's `postgresql` (`.ci/run` installs it). Without it the tests are
//! reported `ignored` with what is missing, except under CI=true, where that is a
//! failure (libtest-mimic decides at run time, as tests/browser.rs does).

mod common;

use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Hookscope, alert, client, get_json, post_json, run};
use libtest_mimic::{Arguments, Failed, Trial};

/// The password of the throwaway clusters' `postgres` user: it must never be printed.
const PASSWORD: &str = "team-s3cret-pw";

fn main() -> std::process::ExitCode {
    let arguments = Arguments::from_args();
    let bin = postgres_bin();
    let in_ci = std::env::var("CI").is_ok_and(|ci| ci == "true");
    let skipped = bin.is_none() && !in_ci;
    if skipped {
        println!("the team tests are ignored: they need PostgreSQL (apt-get install postgresql)");
    }
    let tests: [(&str, TeamTest); 7] = [
        (
            "two_instances_number_one_alerts_attempts_and_list_all_three",
            two_instances_number_one_alerts_attempts_and_list_all_three,
        ),
        (
            "a_global_script_is_walked_once_across_instances",
            a_global_script_is_walked_once_across_instances,
        ),
        (
            "a_lost_acknowledgement_is_caught_across_instances",
            a_lost_acknowledgement_is_caught_across_instances,
        ),
        (
            "an_unreachable_or_refusing_database_stops_start_up_without_the_password",
            an_unreachable_or_refusing_database_stops_start_up_without_the_password,
        ),
        (
            "a_database_restart_loses_nothing_acknowledged_and_service_resumes",
            a_database_restart_loses_nothing_acknowledged_and_service_resumes,
        ),
        (
            "a_stalled_database_gets_503_within_the_store_timeout",
            a_stalled_database_gets_503_within_the_store_timeout,
        ),
        (
            "inspect_shows_what_every_instance_receives_live",
            inspect_shows_what_every_instance_receives_live,
        ),
    ];
    let trials = tests
        .into_iter()
        .map(|(name, test)| {
            let bin = bin.clone();
            Trial::test(name, move || match bin {
                Some(bin) => test(&bin),
                None => Err("PostgreSQL is not installed (apt-get install postgresql)".into()),
            })
            .with_ignored_flag(skipped)
        })
        .collect();
    libtest_mimic::run(&arguments, trials).exit_code()
}

/// One test, given where PostgreSQL's programs are.
type TeamTest = fn(&Path) -> Result<(), Failed>;

/// The newest installed PostgreSQL's programs (Debian keeps them out of PATH).
fn postgres_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop()
}

/// A throwaway PostgreSQL cluster on a free loopback port, password-protected
/// over TCP; stopped and deleted when dropped.
struct Cluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

impl Cluster {
    fn start(bin: &Path, name: &str) -> Cluster {
        let dir = std::env::temp_dir().join(format!("hookscope-pg-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pw"), PASSWORD).unwrap();
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .unwrap();
            assert!(status.success());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = Cluster {
            bin: bin.to_owned(),
            dir,
            port,
        };
        let data = cluster.dir.join("data");
        let pwfile = cluster.dir.join("pw");
        cluster.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                &format!("--pwfile={}", pwfile.display()),
            ],
        );
        cluster.pg_ctl("start");
        cluster
    }

    /// Runs one of PostgreSQL's programs; panics with its output if it fails.
    fn run(&self, program: &str, args: &[&str]) -> String {
        let output = self
            .command(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|error| panic!("{program}: {error}"));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "{program} {args:?} failed: {text}");
        text
    }

    fn pg_ctl(&self, action: &str) {
        let data = self.dir.join("data");
        let log = self.dir.join("log");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.display()
        );
        let mut args = vec![
            "-D",
            data.to_str().unwrap(),
            "-l",
            log.to_str().unwrap(),
            "-o",
            &options,
            "-w",
        ];
        if action == "stop" {
            args.extend(["-m", "fast"]);
        }
        args.push(action);
        self.run("pg_ctl", &args);
    }

    /// A new database in this cluster, and its URL (with the password).
    fn database(&self, name: &str) -> String {
        self.sql("postgres", &format!("CREATE DATABASE {name}"));
        format!(
            "postgres://postgres:{PASSWORD}@127.0.0.1:{}/{name}",
            self.port
        )
    }

    /// Runs SQL with psql over the cluster's socket; its output, unaligned.
    fn sql(&self, database: &str, sql: &str) -> String {
        let port = self.port.to_string();
        let socket = self.dir.to_str().unwrap().to_owned();
        self.run(
            "psql",
            &[
                "-h", &socket, "-p", &port, "-U", "postgres", "-d", database, "-At", "-c", sql,
            ],
        )
    }

    /// One of PostgreSQL's programs, to run as `postgres` when this is root (it
    /// refuses to run as root).
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if is_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&path);
            command
        } else {
            Command::new(&path)
        }
    }

    /// A psql session left open, to hold locks.
    fn session(&self, database: &str) -> std::process::Child {
        let port = self.port.to_string();
        let socket = self.dir.to_str().unwrap().to_owned();
        self.command("psql")
            .args([
                "-h", &socket, "-p", &port, "-U", "postgres", "-d", database, "-At",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = self
            .command("pg_ctl")
            .args(["-D", data.to_str().unwrap(), "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `hookscope listen --store URL ARGS...`, printing JSON lines.
fn instance(url: &str, extra: &[&str]) -> Hookscope {
    let mut args = vec!["--store", url, "--format", "json"];
    args.extend_from_slice(extra);
    Hookscope::start(&args)
}

/// The exchanges an instance's `/api/requests` lists once there are `count`
/// (within 10 s), newest first.
fn listed(hookscope: &Hookscope, count: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, list) = get_json(&hookscope.api("/api/requests"));
        assert_eq!(status, 200, "{list}");
        let list = list.as_array().cloned().unwrap_or_default();
        if list.len() >= count || Instant::now() > deadline {
            return list;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Each listed exchange's attempt number and answer status, oldest first.
fn attempts_and_statuses(list: &[serde_json::Value]) -> Vec<(u64, u64)> {
    let mut seen: Vec<(u64, u64, u64)> = list
        .iter()
        .map(|exchange| {
            (
                exchange["id"].as_u64().unwrap(),
                exchange["attempt"]["number"].as_u64().unwrap_or(0),
                exchange["status"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    seen.sort_unstable();
    seen.into_iter()
        .map(|(_, number, status)| (number, status))
        .collect()
}

/// Reads a live feed (`/api/events`) on a thread: each `data:` line that holds an
/// exchange, as it comes.
fn live_feed(url: &str) -> mpsc::Receiver<String> {
    let response = reqwest::blocking::Client::builder()
        .timeout(None)
        .build()
        .unwrap()
        .get(url)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let (lines, feed) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(response).lines() {
            let Ok(line) = line else { break };
            if let Some(data) = line.strip_prefix("data:") {
                if lines.send(data.trim().to_owned()).is_err() {
                    break;
                }
            }
        }
    });
    feed
}

/// The first feed line that mentions `needle`, and how long it took to come.
fn wait_in_feed(feed: &mpsc::Receiver<String>, needle: &str) -> Option<Duration> {
    let started = Instant::now();
    while let Ok(line) =
        feed.recv_timeout(Duration::from_secs(10).saturating_sub(started.elapsed()))
    {
        if line.contains(needle) {
            return Some(started.elapsed());
        }
    }
    None
}

fn two_instances_number_one_alerts_attempts_and_list_all_three(bin: &Path) -> Result<(), Failed> {
    let cluster = Cluster::start(bin, "alternate");
    let url = cluster.database("alternate");
    let first = instance(&url, &["--script", "500,500,200"]);
    let second = instance(&url, &["--script", "500,500,200"]);
    let body = alert("team-alert-1");
    // The second instance's live feed, open before the first instance's attempt 3.
    let feed = live_feed(&second.api("/api/events"));
    let statuses: Vec<u16> = [&first, &second, &first]
        .iter()
        .map(|hookscope| {
            post_json(&hookscope.url("/panther"), &body)
                .unwrap()
                .status()
                .as_u16()
        })
        .collect();
    assert_eq!(
        statuses,
        [500, 500, 200],
        "the script walked across both instances"
    );
    let came = wait_in_feed(&feed, "\"number\":3")
        .ok_or("the first instance's attempt 3 never reached the second's live feed")?;
    assert!(came < Duration::from_secs(1), "the live feed took {came:?}");
    for hookscope in [&first, &second] {
        let list = listed(hookscope, 3);
        assert_eq!(
            attempts_and_statuses(&list),
            [(1, 500), (2, 500), (3, 200)],
            "each instance lists all three attempts: {list:?}"
        );
        let (_, alerts) = get_json(&hookscope.api("/api/alerts"));
        let deliveries = alerts.as_array().ok_or("alerts is a list")?;
        assert_eq!(deliveries.len(), 1, "{alerts}");
        assert_eq!(
            deliveries[0]["state"], "delivered after 3 attempts",
            "{alerts}"
        );
    }
    // Acknowledged: the same alert again is a new delivery, from the script's start.
    let again = post_json(&second.url("/panther"), &body).unwrap().status();
    assert_eq!(again, 500);
    let list = listed(&first, 4);
    assert_eq!(attempts_and_statuses(&list)[3], (1, 500), "{list:?}");
    Ok(())
}

fn a_lost_acknowledgement_is_caught_across_instances(bin: &Path) -> Result<(), Failed> {
    let cluster = Cluster::start(bin, "lostack");
    let url = cluster.database("lostack");
    // A real receiver: a plain hookscope answering 200.
    let app = Hookscope::start(&["--no-admin", "--format", "quiet"]);
    let forward = app.url("/hooks");
    let script = "forward>503,forward";
    let first = instance(&url, &["--forward", &forward, "--script", script]);
    let second = instance(&url, &["--forward", &forward, "--script", script]);
    let body = alert("team-lost-ack");
    let told = post_json(&first.url("/"), &body).unwrap().status();
    assert_eq!(
        told, 503,
        "the first attempt reached the app, the sender was told 503"
    );
    let retried = post_json(&second.url("/"), &body).unwrap().status();
    assert_eq!(retried, 200);
    let list = listed(&second, 2);
    let newest = &list[0];
    assert_eq!(newest["attempt"]["number"], 2, "{newest}");
    assert_eq!(
        newest["attempt"]["duplicate_upstream"], true,
        "the second instance saw that the app had acknowledged this alert on the first: {newest}"
    );
    Ok(())
}

fn an_unreachable_or_refusing_database_stops_start_up_without_the_password(
    bin: &Path,
) -> Result<(), Failed> {
    let cluster = Cluster::start(bin, "refusals");
    let good = cluster.database("refusals");
    let closed = common::closed_port();
    let cases = [
        (
            format!("postgres://postgres:{PASSWORD}@127.0.0.1:{closed}/refusals"),
            "cannot use the --store",
        ),
        (
            good.replace(PASSWORD, &format!("{PASSWORD}-wrong")),
            "password authentication failed",
        ),
        (
            format!("postgres://postgres:{PASSWORD}@127.0.0.1:notaport/x"),
            "--store",
        ),
    ];
    for (url, says) in cases {
        let output = run(&["listen", "--port", "0", "--store", &url], b"");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(says), "expected {says:?}: {stderr}");
        assert!(
            !stderr.contains(PASSWORD),
            "the password was printed: {stderr}"
        );
    }
    // A teammate's inspector on a database nobody has listened on yet.
    let empty = cluster.database("nothing_yet");
    let output = run(&["inspect", &empty, "--admin", "127.0.0.1:0"], b"");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("no hookscope tables"), "{stderr}");
    assert!(!stderr.contains(PASSWORD), "{stderr}");
    Ok(())
}

/// Posts `body`; its status and Retry-After, or `None` for a connection error.
fn post_status(url: &str, body: &str) -> Option<(u16, Option<String>)> {
    let response = client()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .ok()?;
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    Some((response.status().as_u16(), retry_after))
}

fn a_database_restart_loses_nothing_acknowledged_and_service_resumes(
    bin: &Path,
) -> Result<(), Failed> {
    let cluster = Cluster::start(bin, "restart");
    let url = cluster.database("restart");
    let record = cluster.dir.join("record.jsonl");
    let hookscope = instance(
        &url,
        &[
            "--store-timeout",
            "2s",
            "--record",
            record.to_str().unwrap(),
        ],
    );
    let target = hookscope.url("/panther");
    let mut acknowledged = Vec::new();
    let mut send = |n: usize| {
        let id = format!("restart-{n}");
        let answer = post_status(&target, &alert(&id));
        if matches!(answer, Some((200, _))) {
            acknowledged.push(id);
        }
        answer
    };
    for n in 0..20 {
        assert_eq!(send(n).map(|(status, _)| status), Some(200));
    }
    cluster.pg_ctl("stop");
    for n in 20..25 {
        let started = Instant::now();
        let answer = send(n);
        assert_eq!(
            answer,
            Some((503, Some("5".to_owned()))),
            "while the database is down: 503 with Retry-After"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
    cluster.pg_ctl("start");
    // Service resumes by itself: no restart of hookscope.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut n = 25;
    loop {
        let answer = send(n);
        n += 1;
        if matches!(answer, Some((200, _))) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {answer:?} 30 s after the restart"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for m in n..n + 20 {
        assert_eq!(send(m).map(|(status, _)| status), Some(200));
    }
    let stored = cluster.sql("restart", "SELECT line FROM hookscope.exchanges");
    let missing: Vec<&String> = acknowledged
        .iter()
        .filter(|id| {
            // The body is in the line as JSON, or as a JSON string: the id then
            // ends with a quote, or an escaped one.
            !stored.contains(&format!("{id}\"")) && !stored.contains(&format!("{id}\\\""))
        })
        .collect();
    assert!(acknowledged.len() >= 41, "{}", acknowledged.len());
    assert!(
        missing.is_empty(),
        "acknowledged but not stored: {missing:?}"
    );
    // --record beside a shared store: its own writer, every acknowledged alert there too.
    let recorded = std::fs::read_to_string(&record).unwrap();
    let unrecorded: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !recorded.contains(&format!("{id}\"")))
        .collect();
    assert!(
        unrecorded.is_empty(),
        "acknowledged but not recorded: {unrecorded:?}"
    );
    Ok(())
}

fn a_stalled_database_gets_503_within_the_store_timeout(bin: &Path) -> Result<(), Failed> {
    let cluster = Cluster::start(bin, "stall");
    let url = cluster.database("stall");
    let hookscope = instance(&url, &["--store-timeout", "1s"]);
    let target = hookscope.url("/panther");
    assert_eq!(
        post_status(&target, &alert("before")).map(|a| a.0),
        Some(200)
    );
    // Another session holds the deliveries table: every decision waits behind it.
    let mut session = cluster.session("stall");
    let mut input = session.stdin.take().unwrap();
    let mut output = BufReader::new(session.stdout.take().unwrap());
    writeln!(
        input,
        "BEGIN; LOCK TABLE hookscope.deliveries IN ACCESS EXCLUSIVE MODE; SELECT 'locked';"
    )
    .unwrap();
    let mut line = String::new();
    while !line.contains("locked") {
        line.clear();
        assert!(output.read_line(&mut line).unwrap() > 0, "psql ended");
    }
    let started = Instant::now();
    let answer = post_status(&target, &alert("stalled"));
    let took = started.elapsed();
    assert_eq!(answer, Some((503, Some("5".to_owned()))));
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(4),
        "answered after {took:?} with a 1 s store timeout"
    );
    writeln!(input, "COMMIT;").unwrap();
    drop(input);
    let _ = session.wait();
    assert_eq!(
        post_status(&target, &alert("after")).map(|a| a.0),
        Some(200)
    );
    Ok(())
}

fn inspect_shows_what_every_instance_receives_live(bin: &Path) -> Result<(), Failed> {
    let cluster = Cluster::start(bin, "inspect");
    let url = cluster.database("inspect");
    let hookscope = instance(&url, &[]);
    assert_eq!(
        post_status(&hookscope.url("/p"), &alert("seen-before")).map(|a| a.0),
        Some(200)
    );
    let mut inspector = Running(
        Command::new(env!("CARGO_BIN_EXE_hookscope"))
            .args(["inspect", &url, "--admin", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stderr = BufReader::new(inspector.0.stderr.take().unwrap());
    let mut said = String::new();
    let mut line = String::new();
    let admin = loop {
        line.clear();
        if stderr.read_line(&mut line).unwrap() == 0 {
            return Err(format!("inspect ended: {said}").into());
        }
        said.push_str(&line);
        if let Some(url) = line.split("inspector on ").nth(1) {
            break url.trim().to_owned();
        }
    };
    assert!(!said.contains(PASSWORD), "{said}");
    assert!(said.contains("1 exchanges"), "{said}");
    let feed = live_feed(&format!("{admin}/api/events"));
    assert_eq!(
        post_status(&hookscope.url("/p"), &alert("seen-live")).map(|a| a.0),
        Some(200)
    );
    let came = wait_in_feed(&feed, "seen-live");
    let (_, list) = get_json(&format!("{admin}/api/requests"));
    drop(inspector);
    came.ok_or("the inspector's live feed never got the exchange")?;
    let list = list.as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 2, "{list:?}");
    Ok(())
}

/// A child process killed (and waited for) when dropped.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn a_global_script_is_walked_once_across_instances(bin: &Path) -> Result<(), Failed> {
    let cluster = Cluster::start(bin, "global");
    let url = cluster.database("global");
    let args = ["--script", "500,503,200", "--script-scope", "global"];
    let first = instance(&url, &args);
    let second = instance(&url, &args);
    // Different alerts, one script: each request takes the next step, whichever
    // instance it reaches.
    let statuses: Vec<u16> = [&second, &first, &second, &first]
        .iter()
        .enumerate()
        .map(|(n, hookscope)| {
            let body = alert(&format!("global-{n}"));
            post_json(&hookscope.url("/"), &body)
                .unwrap()
                .status()
                .as_u16()
        })
        .collect();
    assert_eq!(statuses, [500, 503, 200, 200]);
    Ok(())
}
