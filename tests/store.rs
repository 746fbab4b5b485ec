//! `listen --store FILE`: what hookscope saw and decided survives a restart, a
//! SIGKILL included; files that are not a store, or not this build's, stop start-up.

mod common;

use std::path::PathBuf;

use common::{Hookscope, alert, post_json, run};

fn store_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hookscope-store-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("hookscope.db")
}

fn start(store: &std::path::Path, extra: &[&str]) -> Hookscope {
    let mut args = vec!["--store", store.to_str().unwrap()];
    args.extend_from_slice(extra);
    if !extra.contains(&"--format") {
        args.extend(["--format", "json"]);
    }
    Hookscope::start(&args)
}

/// The record lines a store holds, by id, read as they are on disk: a row per
/// written batch says which lines file, where the batch starts and, packed (24
/// bytes a line, little-endian), each line's id, offset and length.
fn stored_lines(store: &std::path::Path) -> Vec<(i64, String)> {
    let connection = rusqlite::Connection::open(store).unwrap();
    let mut statement = connection
        .prepare("SELECT segment, start, entries FROM batches")
        .unwrap();
    let batches: Vec<(u32, usize, Vec<u8>)> = statement
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let number = |bytes: &[u8]| u64::from_le_bytes(bytes.try_into().unwrap());
    let mut lines: Vec<(i64, String)> = batches
        .into_iter()
        .flat_map(|(segment, start, entries)| {
            let file = std::fs::read(lines_file(store, segment)).unwrap();
            entries
                .chunks_exact(24)
                .map(|entry| {
                    let id = i64::try_from(number(&entry[..8])).unwrap();
                    let at = start + usize::try_from(number(&entry[8..16])).unwrap();
                    let length = usize::try_from(number(&entry[16..])).unwrap();
                    assert_eq!(
                        file[at + length],
                        b'\n',
                        "line {id} ends where the store says"
                    );
                    (
                        id,
                        String::from_utf8(file[at..at + length].to_vec()).unwrap(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    lines.sort();
    lines
}

/// The store's lines file number `segment`.
fn lines_file(store: &std::path::Path, segment: u32) -> PathBuf {
    let mut name = store.file_name().unwrap().to_owned();
    name.push(format!("-lines-{segment:06}.jsonl"));
    store.with_file_name(name)
}

/// The alert ids of the exchanges a store holds.
fn stored_alert_ids(store: &std::path::Path) -> Vec<String> {
    stored_lines(store)
        .iter()
        .map(|(_, line)| {
            let line: serde_json::Value = serde_json::from_str(line).unwrap();
            line["body"]["alertId"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

/// `hookscope import FILE --store STORE`.
fn import(file: &std::path::Path, store: &std::path::Path) -> std::process::Output {
    run(
        &[
            "import",
            file.to_str().unwrap(),
            "--store",
            store.to_str().unwrap(),
        ],
        b"",
    )
}

/// What `listen --store STORE` says when it stops at start-up, as it must (exit 2).
fn refused_at_start_up(store: &std::path::Path) -> String {
    let output = run(
        &[
            "listen",
            "--port",
            "0",
            "--no-admin",
            "--store",
            store.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(output.status.code(), Some(2));
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn kill_hard(hookscope: Hookscope) {
    // SIGKILL: nothing is flushed on the way out.
    unsafe { libc::kill(hookscope.pid() as i32, libc::SIGKILL) };
    let _ = hookscope.stop();
}

#[test]
fn a_restart_continues_attempt_numbers_script_positions_and_ids() {
    let store = store_path("restart");
    let script = ["--script", "503*2,200"];
    let first = start(&store, &script);
    let retried = alert("restart-me");
    assert_eq!(post_json(&first.url("/"), &retried).unwrap().status(), 503);
    kill_hard(first);

    let second = start(&store, &script);
    // Attempt 2 of the same alert gets the script's second step, then the third.
    assert_eq!(post_json(&second.url("/"), &retried).unwrap().status(), 503);
    assert_eq!(post_json(&second.url("/"), &retried).unwrap().status(), 200);
    // The alerts view shows one delivery across the restart.
    let (status, alerts) = common::get_json(&second.api("/api/alerts"));
    assert_eq!(status, 200);
    let deliveries = alerts.as_array().unwrap();
    assert_eq!(deliveries.len(), 1, "{alerts}");
    assert_eq!(
        deliveries[0]["state"], "delivered after 3 attempts",
        "{alerts}"
    );
    let numbers: Vec<u64> = deliveries[0]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|attempt| attempt["number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 2, 3]);
    let stopped = second.stop();
    assert!(
        stopped.stderr.contains("store: 1 exchanges since "),
        "{}",
        stopped.stderr
    );
    let lines = stopped.json_lines();
    let seen: Vec<(u64, u64)> = lines
        .iter()
        .map(|line| {
            (
                line["id"].as_u64().unwrap(),
                line["attempt"]["number"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(seen, [(2, 2), (3, 3)], "ids and attempts go on");
    assert!(
        stopped.stderr.contains("delivered after retries: 1"),
        "{}",
        stopped.stderr
    );
}

#[test]
fn a_global_script_resumes_where_it_was() {
    let store = store_path("global");
    let script = ["--script", "500,502,200", "--script-scope", "global"];
    let first = start(&store, &script);
    assert_eq!(
        post_json(&first.url("/"), &alert("a")).unwrap().status(),
        500
    );
    kill_hard(first);
    let second = start(&store, &script);
    assert_eq!(
        post_json(&second.url("/"), &alert("b")).unwrap().status(),
        502
    );
    assert_eq!(
        post_json(&second.url("/"), &alert("c")).unwrap().status(),
        200
    );
}

#[test]
fn every_acknowledged_exchange_is_stored_when_hookscope_is_killed_under_load() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    let store = store_path("sigkill");
    let hookscope = start(&store, &["--format", "quiet"]);
    let url = hookscope.url("/");
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let senders: Vec<_> = (0..4)
        .map(|sender| {
            let (url, acknowledged, count) =
                (url.clone(), Arc::clone(&acknowledged), Arc::clone(&count));
            std::thread::spawn(move || {
                // Until hookscope is gone (bounded: at most 2,000 each).
                for n in 0..2000 {
                    let id = format!("load-{sender}-{n}");
                    match post_json(&url, &alert(&id)) {
                        Ok(answer) if answer.status() == 200 => {
                            acknowledged.lock().unwrap().push(id);
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(_) => {}
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    // Killed in the middle of the load, once a few hundred were acknowledged.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while count.load(Ordering::Relaxed) < 300 && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
    kill_hard(hookscope);
    for sender in senders {
        sender.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 300, "{}", acknowledged.len());
    let stored: std::collections::HashSet<String> = stored_alert_ids(&store).into_iter().collect();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !stored.contains(*id))
        .collect();
    assert!(lost.is_empty(), "acknowledged but not stored: {lost:?}");
}

#[test]
fn files_that_are_not_this_builds_store_stop_start_up_naming_it() {
    let dir = store_path("faults");
    let dir = dir.parent().unwrap();
    let refused = |store: &std::path::Path, says: &str| {
        let stderr = refused_at_start_up(store);
        assert!(stderr.contains(says), "{stderr}");
    };

    let missing = dir.join("no/such/folder/hookscope.db");
    refused(&missing, "does not exist");

    let text = dir.join("notes.txt");
    std::fs::write(
        &text,
        "these are notes, not a database, and long enough to look like a header",
    )
    .unwrap();
    refused(&text, "is not a hookscope store (not an SQLite database)");

    let other = dir.join("other.db");
    {
        let connection = rusqlite::Connection::open(&other).unwrap();
        connection
            .execute_batch("CREATE TABLE notes (text TEXT);")
            .unwrap();
    }
    refused(&other, "SQLite database of something else");

    let newer = dir.join("newer.db");
    {
        let store = start(&newer, &["--format", "quiet"]);
        store.stop();
        let connection = rusqlite::Connection::open(&newer).unwrap();
        connection
            .execute_batch("PRAGMA user_version = 99;")
            .unwrap();
    }
    refused(&newer, "schema version 99, newer than this hookscope's");

    let shared = dir.join("shared.db");
    let first = start(&shared, &["--format", "quiet"]);
    refused(&shared, "is in use by another process");
    assert_eq!(
        post_json(&first.url("/"), &alert("still"))
            .unwrap()
            .status(),
        200
    );
}

#[test]
fn the_api_pages_and_searches_beyond_the_in_memory_window() {
    let store = store_path("paging");
    let first = start(&store, &["--keep", "5", "--format", "quiet"]);
    for n in 1..=20 {
        let body = common::alert_with(&[
            ("alertId", &format!("page-{n}")),
            ("title", &format!("title {n}")),
        ]);
        assert_eq!(post_json(&first.url("/"), &body).unwrap().status(), 200);
    }
    let ids = |url: &str| -> (Vec<u64>, Option<String>) {
        let answer = common::client().get(url).send().unwrap();
        assert_eq!(answer.status(), 200);
        let next = answer
            .headers()
            .get("x-hookscope-next")
            .map(|value| value.to_str().unwrap().to_owned());
        let list: Vec<serde_json::Value> = answer.json().unwrap();
        (
            list.iter()
                .map(|line| line["id"].as_u64().unwrap())
                .collect(),
            next,
        )
    };
    // Everything, newest first, though the history keeps 5.
    let (all, _) = ids(&first.api("/api/requests?limit=50"));
    assert_eq!(all, (1..=20).rev().collect::<Vec<u64>>());
    // Pages of 8 with the cursor.
    let (page, next) = ids(&first.api("/api/requests?limit=8"));
    assert_eq!(page, (13..=20).rev().collect::<Vec<u64>>());
    let (page, next) = ids(&first.api(&format!("/api/requests?limit=8&before={}", next.unwrap())));
    assert_eq!(page, (5..=12).rev().collect::<Vec<u64>>());
    let (page, next) = ids(&first.api(&format!("/api/requests?limit=8&before={}", next.unwrap())));
    assert_eq!(page, [4, 3, 2, 1]);
    assert_eq!(next, None, "the last page");
    // Found by text, far outside the window.
    let (found, _) = ids(&first.api("/api/requests?q=title%203%22"));
    assert_eq!(found, [3]);
    // One of them, as the inspector opens it.
    let (status, one) = common::get_json(&first.api("/api/requests/3"));
    assert_eq!((status, one["id"].as_u64()), (200, Some(3)));
    assert_eq!(one["body"]["alertId"], "page-3");
    assert_eq!(common::get_json(&first.api("/api/requests/99")).0, 404);
    // The HAR export holds them all, oldest first.
    let (status, har) = common::get_json(&first.api("/api/export.har"));
    assert_eq!(status, 200);
    let entries = har["log"]["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 20);
    let text = |n: usize| {
        entries[n]["request"]["postData"]["text"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(text(0).contains("page-1\""), "{}", text(0));
    assert!(text(19).contains("page-20\""), "{}", text(19));
    let (_, narrowed) = common::get_json(&first.api("/api/export.har?q=title%207%22"));
    assert_eq!(narrowed["log"]["entries"].as_array().unwrap().len(), 1);
    // Compared: one from the store (#2), one from the history (#20).
    let (status, compared) = common::get_json(&first.api("/api/compare/2/20"));
    assert_eq!(status, 200);
    let at: Vec<&str> = compared["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|change| change["at"].as_str().unwrap())
        .collect();
    assert!(
        at.contains(&"/alertId") && at.contains(&"/title"),
        "{compared}"
    );
    // Replayed from the store, to another hookscope.
    let target = Hookscope::start(&["--format", "json", "--status", "202"]);
    let answer = common::client()
        .post(first.api("/api/requests/2/replay"))
        .json(&serde_json::json!({"to": target.url}))
        .send()
        .unwrap();
    assert_eq!(answer.status(), 200);
    let replayed: serde_json::Value = answer.json().unwrap();
    assert_eq!(replayed["status"], 202);
    let arrived = target.stop().json_lines();
    assert_eq!(arrived[0]["body"]["alertId"], "page-2");
    kill_hard(first);
    // After a restart, the history is there again.
    let second = start(&store, &["--keep", "5", "--format", "quiet"]);
    let (all, _) = ids(&second.api("/api/requests?limit=50"));
    assert_eq!(all.len(), 20);
}

#[test]
fn a_store_deleted_while_running_turns_answers_into_503_and_hookscope_goes_on() {
    deleted_while_running("deleted", &["", "-wal", "-shm"]);
}

#[test]
fn a_lines_file_deleted_while_running_turns_answers_into_503_too() {
    deleted_while_running("lines-deleted", &["-lines-000001.jsonl"]);
}

/// Deletes the store's files ending in `suffixes` after a first alert, and checks
/// that nothing is acknowledged afterwards while hookscope goes on answering.
fn deleted_while_running(name: &str, suffixes: &[&str]) {
    let store = store_path(name);
    let hookscope = start(&store, &["--format", "quiet"]);
    assert_eq!(
        post_json(&hookscope.url("/"), &alert("before"))
            .unwrap()
            .status(),
        200
    );
    for suffix in suffixes {
        std::fs::remove_file(format!("{}{suffix}", store.display())).unwrap_or_else(|error| {
            assert!(
                matches!(*suffix, "-wal" | "-shm"),
                "{suffix} exists: {error}"
            );
        });
    }
    let answer = post_json(&hookscope.url("/"), &alert("after")).unwrap();
    assert_eq!(answer.status(), 503, "never a 2XX that is not stored");
    assert_eq!(answer.headers()["retry-after"], "5");
    let reason = answer.text().unwrap();
    assert!(reason.contains("deleted or replaced"), "{reason}");
    // Still serving: the admin API and further requests get answers.
    assert_eq!(common::get_json(&hookscope.api("/api/stats")).0, 200);
    assert_eq!(
        post_json(&hookscope.url("/"), &alert("later"))
            .unwrap()
            .status(),
        503
    );
}

/// The ids `/api/requests` lists once `done` holds of them (within 10 s).
fn listed_when(hookscope: &Hookscope, done: impl Fn(&[u64]) -> bool) -> Vec<u64> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, list) = common::get_json(&hookscope.api("/api/requests?limit=1000"));
        let ids: Vec<u64> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|line| line["id"].as_u64().unwrap())
            .collect();
        if done(&ids) || std::time::Instant::now() > deadline {
            return ids;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn retention_deletes_the_oldest_beyond_the_row_limit_and_the_age_limit() {
    let store = store_path("retention");
    let rows = start(
        &store,
        &["--keep", "1", "--store-max-rows", "10", "--format", "quiet"],
    );
    for n in 0..25 {
        assert_eq!(
            post_json(&rows.url("/"), &alert(&format!("r{n}")))
                .unwrap()
                .status(),
            200
        );
    }
    let kept = listed_when(&rows, |ids| ids.len() <= 10);
    assert_eq!(kept, (16..=25).rev().collect::<Vec<u64>>());
    drop(rows);

    let store = store_path("age");
    let aged = start(
        &store,
        &[
            "--keep",
            "1",
            "--store-max-age",
            "300ms",
            "--format",
            "quiet",
        ],
    );
    for n in 0..5 {
        assert_eq!(
            post_json(&aged.url("/"), &alert(&format!("a{n}")))
                .unwrap()
                .status(),
            200
        );
    }
    // Only the in-memory window's one is left once the stored ones are old enough.
    let kept = listed_when(&aged, |ids| ids.len() <= 1);
    assert_eq!(kept, [5]);
    // And the alerts' delivery states (walked a part at a time, within a minute).
    let deliveries = || -> i64 {
        rusqlite::Connection::open_with_flags(&store, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap()
            .query_row("SELECT count(*) FROM deliveries", [], |row| row.get(0))
            .unwrap()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(70);
    while deliveries() > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(deliveries(), 0);

    let output = run(&["listen", "--store-max-rows", "5"], b"");
    assert_eq!(
        output.status.code(),
        Some(2),
        "a retention flag without --store"
    );
}

#[test]
fn retention_deletes_lines_files_once_nothing_in_them_is_kept() {
    let store = store_path("lines-retention");
    let hookscope = start(
        &store,
        &["--keep", "1", "--store-max-rows", "10", "--format", "quiet"],
    );
    // A little over one lines file (64 MiB) of 64 KB alerts.
    let padding = "x".repeat(64 * 1024);
    let big = |n: usize| {
        let mut alert: serde_json::Value =
            serde_json::from_str(&alert(&format!("big{n}"))).unwrap();
        alert["alertContext"]["padding"] = padding.clone().into();
        alert.to_string()
    };
    let mut posted = 0;
    while !lines_file(&store, 2).exists() || posted < 1030 {
        assert_eq!(
            post_json(&hookscope.url("/"), &big(posted))
                .unwrap()
                .status(),
            200
        );
        posted += 1;
        assert!(posted < 2000, "a second lines file begins after 64 MiB");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while lines_file(&store, 1).exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        !lines_file(&store, 1).exists(),
        "the first file held only trimmed lines"
    );
    let kept = listed_when(&hookscope, |ids| ids.len() <= 10);
    let newest = u64::try_from(posted).unwrap();
    assert_eq!(kept, (newest - 9..=newest).rev().collect::<Vec<u64>>());
    let on_disk = std::fs::metadata(lines_file(&store, 2)).unwrap().len();
    assert!(
        on_disk < 64 * 1024 * 1024,
        "{on_disk} bytes in the second file"
    );
}

#[test]
fn a_version_1_store_is_brought_up_to_date_and_keeps_its_exchanges() {
    // A line as this build writes it, put where version 1 kept it: in the row.
    let made_now = store_path("version-1-source");
    let hookscope = start(&made_now, &["--format", "quiet"]);
    assert_eq!(
        post_json(&hookscope.url("/"), &alert("old"))
            .unwrap()
            .status(),
        200
    );
    drop(hookscope);
    let (_, line) = stored_lines(&made_now).remove(0);
    let store = store_path("version-1");
    {
        let connection = rusqlite::Connection::open(&store).unwrap();
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 CREATE TABLE exchanges (id INTEGER PRIMARY KEY, received_at TEXT NOT NULL, line TEXT NOT NULL);
                 CREATE TABLE deliveries (route TEXT NOT NULL, resent INTEGER NOT NULL, key TEXT NOT NULL,
                     attempts INTEGER NOT NULL, last_at_us INTEGER NOT NULL, acked INTEGER NOT NULL,
                     upstream_acked INTEGER NOT NULL, PRIMARY KEY (route, resent, key));
                 CREATE TABLE script_positions (route INTEGER NOT NULL PRIMARY KEY, position INTEGER NOT NULL);
                 PRAGMA application_id = 1751872355; PRAGMA user_version = 1;",
            )
            .unwrap();
        connection
            .execute(
                "INSERT INTO exchanges VALUES (1, '2026-12-01T10:00:00+00:00', ?1)",
                [&line],
            )
            .unwrap();
        // Its first attempt was refused a moment ago.
        let now_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros();
        connection
            .execute(
                "INSERT INTO deliveries VALUES ('', 0, 'old', 1, ?1, 0, 0)",
                [i64::try_from(now_us).unwrap()],
            )
            .unwrap();
    }
    let hookscope = start(&store, &["--keep", "1", "--format", "quiet"]);
    let again = post_json(&hookscope.url("/"), &alert("old")).unwrap();
    assert_eq!(again.status(), 200);
    // The delivery of version 1 goes on: the same alert is its second attempt.
    let (_, newest) = common::get_json(&hookscope.api("/api/requests/2"));
    assert_eq!(newest["attempt"]["number"], 2, "{newest}");
    // The line kept in the row is read as it was, beyond the in-memory window.
    assert_eq!(listed_when(&hookscope, |ids| ids.len() == 2), [2, 1]);
    let (status, old) = common::get_json(&hookscope.api("/api/requests/1"));
    assert_eq!(status, 200);
    assert_eq!(old["body"]["alertId"], "old");
    drop(hookscope);
    let version: i64 = rusqlite::Connection::open(&store)
        .unwrap()
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, 2);
    assert_eq!(stored_alert_ids(&store), ["old", "old"]);
}

#[test]
fn with_record_and_store_one_writer_feeds_both_line_for_line() {
    let store = store_path("with-record");
    let record = store.with_file_name("record.jsonl");
    let rotated = store.with_file_name("record.jsonl.1");
    let mut hookscope = start(
        &store,
        &[
            "--record",
            record.to_str().unwrap(),
            "--script",
            "500,200",
            "--script-scope",
            "global",
            "--format",
            "quiet",
        ],
    );
    let post = |hookscope: &Hookscope, id: &str| {
        post_json(&hookscope.url("/"), &alert(id))
            .unwrap()
            .status()
            .as_u16()
    };
    let sighup = |hookscope: &mut Hookscope| {
        // SAFETY: a signal to our own child.
        unsafe { libc::kill(hookscope.pid() as libc::pid_t, libc::SIGHUP) };
        assert!(hookscope.wait_for_stderr("record file reopened").is_some());
    };
    assert_eq!(post(&hookscope, "a"), 500);
    assert_eq!(post(&hookscope, "a"), 200);
    assert_eq!(post(&hookscope, "b"), 200);
    // A rotation, as logrotate does it.
    std::fs::rename(&record, &rotated).unwrap();
    sighup(&mut hookscope);
    assert_eq!(post(&hookscope, "c"), 200);
    // A record file that cannot be written any more: nothing is acknowledged.
    std::fs::remove_file(&record).unwrap();
    assert_eq!(post(&hookscope, "d"), 503);
    sighup(&mut hookscope);
    // A head hyper refuses is kept too, before the next acknowledged alert.
    let refused =
        common::send_raw_and_close(hookscope.port, b"POST / HTTP/1.1\r\nBad Header: x\r\n\r\n");
    assert!(String::from_utf8_lossy(&refused.unwrap()).starts_with("HTTP/1.1 400"));
    // hyper answers it before hookscope captures it: wait for the capture, so that
    // its id and its place in the queue come before the next alert's.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while common::get_json(&hookscope.api("/api/stats")).1["by_status"]["400"] != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the refused head is captured"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(post(&hookscope, "e"), 200);
    kill_hard(hookscope);

    let read = |path: &std::path::Path| -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let stored = stored_lines(&store);
    let stored_ids: Vec<i64> = stored.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        stored_ids,
        [1, 2, 3, 4, 6, 7],
        "all but the one not recorded"
    );
    let by_id = |id: i64| stored.iter().find(|(own, _)| *own == id).unwrap().1.clone();
    assert_eq!(
        read(&rotated),
        [by_id(1), by_id(2), by_id(3)],
        "byte for byte"
    );
    assert!(by_id(6).contains(r#""status":400"#), "{}", by_id(6));
    assert_eq!(read(&record), [by_id(6), by_id(7)]);
    let _ = std::fs::remove_file(rotated);
}

#[test]
fn inspect_serves_a_store_read_only_without_a_webhook_listener() {
    use std::io::BufRead as _;
    let store = store_path("inspect");
    let source = start(&store, &["--format", "quiet"]);
    for n in 1..=3 {
        assert_eq!(
            post_json(&source.url("/"), &alert(&format!("i{n}")))
                .unwrap()
                .status(),
            200
        );
    }
    // Beside the running hookscope that writes it.
    let mut inspector = std::process::Command::new(env!("CARGO_BIN_EXE_hookscope"))
        .args(["inspect", store.to_str().unwrap(), "--admin", "127.0.0.1:0"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(inspector.stderr.take().unwrap());
    let mut said = Vec::new();
    let mut url = None;
    for line in stderr.lines().take(5) {
        let line = line.unwrap();
        if let Some(found) = line.split("inspector on ").nth(1) {
            url = Some(found.trim().to_owned());
            said.push(line);
            break;
        }
        said.push(line);
    }
    let url = url.unwrap_or_else(|| panic!("no inspector line: {said:?}"));
    assert!(
        said[0].contains(": 3 exchanges since ") && said[0].contains("(read-only)"),
        "{said:?}"
    );
    let (status, list) = common::get_json(&format!("{url}/api/requests"));
    assert_eq!(status, 200);
    let ids: Vec<u64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [3, 2, 1]);
    let page = common::get_text(&format!("{url}/"));
    assert!(
        page.contains("<html") || page.contains("<!doctype"),
        "the inspector page"
    );
    unsafe { libc::kill(inspector.id() as i32, libc::SIGTERM) };
    let status = common::wait_with_timeout(&mut inspector, std::time::Duration::from_secs(10));
    assert!(status.success());

    let output = run(&["inspect", "/no/such/store.db"], b"");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("there is no such file"));
    let output = run(
        &["inspect", store.to_str().unwrap(), "--admin", "0.0.0.0:0"],
        b"",
    );
    assert_eq!(output.status.code(), Some(2), "loopback only");
}

#[test]
fn import_adds_a_record_renumbered_and_names_the_lines_it_skips() {
    let dir = store_path("import");
    let dir = dir.parent().unwrap();
    let record = dir.join("alerts.jsonl");
    let source = Hookscope::start(&["--record", record.to_str().unwrap(), "--format", "quiet"]);
    for n in 1..=3 {
        let body = alert(&format!("imported-{n}"));
        assert_eq!(post_json(&source.url("/"), &body).unwrap().status(), 200);
    }
    source.stop();
    let lines = std::fs::read_to_string(&record).unwrap();
    let originals: Vec<&str> = lines.lines().collect();
    assert_eq!(originals.len(), 3);
    // A line that is not a record line in the middle, and a cut last line.
    let damaged = format!(
        "{}\nnot json\n{}\n{}\n{}",
        originals[0],
        originals[1],
        originals[2],
        &originals[2][..40]
    );
    std::fs::write(&record, damaged).unwrap();
    let store = dir.join("imported.db");
    let output = import(&record, &store);
    let said = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(said.contains("alerts.jsonl:2: not a record line"), "{said}");
    assert!(said.contains("alerts.jsonl:5: not a record line"), "{said}");
    assert!(
        said.contains("imported 3 exchange(s)") && said.contains("as ids 1–3"),
        "{said}"
    );
    // Again: the same lines after the first ones, renumbered.
    let said = String::from_utf8_lossy(&import(&record, &store).stderr).into_owned();
    assert!(said.contains("as ids 4–6"), "{said}");
    let stored = stored_lines(&store);
    assert_eq!(stored.len(), 6);
    // Byte for byte the record line, but for the id.
    let original_id = |line: &str| {
        serde_json::from_str::<serde_json::Value>(line).unwrap()["id"]
            .as_u64()
            .unwrap()
    };
    let expected = originals[1].replacen(
        &format!("\"id\":{}", original_id(originals[1])),
        "\"id\":5",
        1,
    );
    assert_eq!(stored[4].1, expected);
    // A store a running hookscope has open is refused.
    let running = start(&store, &["--format", "quiet"]);
    let output = import(&record, &store);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("in use"));
    drop(running);
}

#[test]
fn import_reads_a_har_file_whole_or_not_at_all() {
    let dir = store_path("import-har");
    let dir = dir.parent().unwrap();
    let source = Hookscope::start(&[
        "--script",
        "200,503,200",
        "--script-scope",
        "global",
        "--format",
        "quiet",
    ]);
    for n in 1..=3 {
        post_json(&source.url("/hook"), &alert(&format!("har-{n}"))).unwrap();
    }
    let har = common::get_text(&source.api("/api/export.har"));
    let file = dir.join("export.har");
    std::fs::write(&file, &har).unwrap();
    let store = dir.join("from-har.db");
    let output = import(&file, &store);
    let said = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(0), "{said}");
    assert!(
        said.contains("imported 3 exchange(s)") && said.contains("as ids 1–3"),
        "{said}"
    );
    let lines: Vec<serde_json::Value> = stored_lines(&store)
        .iter()
        .map(|(_, line)| serde_json::from_str(line).unwrap())
        .collect();
    let seen: Vec<(String, u64, String)> = lines
        .iter()
        .map(|line| {
            (
                line["body"]["alertId"].as_str().unwrap().to_owned(),
                line["status"].as_u64().unwrap(),
                line["path"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("har-1".to_owned(), 200, "/hook".to_owned()),
            ("har-2".to_owned(), 503, "/hook".to_owned()),
            ("har-3".to_owned(), 200, "/hook".to_owned()),
        ]
    );
    // An entry without a request: nothing is imported.
    let broken = dir.join("broken.har");
    std::fs::write(
        &broken,
        r#"{"log":{"entries":[{"request":{"method":"POST","url":"http://x/a"}},{"response":{}}]}}"#,
    )
    .unwrap();
    let empty = dir.join("untouched.db");
    let output = import(&broken, &empty);
    let said = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(2), "{said}");
    assert!(
        said.contains("entry 2: no request") && said.contains("nothing imported"),
        "{said}"
    );
    assert!(stored_lines(&empty).is_empty());
}

/// A small tmpfs, unmounted on drop: a disk that fills up, or a read-only one.
struct SmallDisk(PathBuf);

impl SmallDisk {
    /// Mounts one (root only). Without the right to mount, the test says so on stderr
    /// and is not run (a CI without CAP_SYS_ADMIN must not fail for it).
    fn mount(name: &str, size: &str) -> Option<SmallDisk> {
        let dir =
            std::env::temp_dir().join(format!("hookscope-disk-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|status| status.success());
        if !mounted {
            eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
            return None;
        }
        Some(SmallDisk(dir))
    }

    fn read_only(&self) {
        let remounted = std::process::Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(remounted.success());
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn a_full_disk_turns_answers_into_503_and_nothing_acknowledged_is_lost() {
    let Some(disk) = SmallDisk::mount("full", "1m") else {
        return;
    };
    let store = disk.0.join("hookscope.db");
    let hookscope = start(&store, &["--format", "quiet", "--max-body", "256KiB"]);
    let padding = "x".repeat(60 * 1024);
    let mut acknowledged = Vec::new();
    let mut refused = None;
    for n in 0..100 {
        let id = format!("full-{n}");
        let body = common::alert_with(&[("alertId", &id), ("description", &padding)]);
        let answer = post_json(&hookscope.url("/"), &body).unwrap();
        match answer.status().as_u16() {
            200 => acknowledged.push(id),
            503 => {
                assert_eq!(answer.headers()["retry-after"], "5");
                refused = Some(answer.text().unwrap());
                break;
            }
            other => panic!("answered {other}"),
        }
    }
    let refused = refused.expect("a 1 MiB disk fills up within 100 alerts of 60 KiB");
    assert!(refused.contains("full"), "{refused}");
    assert!(!acknowledged.is_empty());
    assert_eq!(
        common::get_json(&hookscope.api("/api/stats")).0,
        200,
        "still serving"
    );
    kill_hard(hookscope);
    let stored = stored_alert_ids(&store);
    for id in &acknowledged {
        assert!(
            stored.contains(id),
            "{id} was acknowledged but is not stored"
        );
    }

    // The same store on a disk mounted read-only: refused at start-up, naming it.
    disk.read_only();
    let said = refused_at_start_up(&store);
    assert!(
        said.contains("Read-only file system") && said.contains("hookscope.db"),
        "{said}"
    );
}
