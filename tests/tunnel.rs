//! hookscope behind a real reverse proxy, as it runs behind a tunnel: nginx
//! (`proxy_pass`, request buffering off, so chunked bodies stream through) in
//! front, hookscope forwarding to the developer's app behind it.
//! `.ci/run` installs nginx (and runs with CI=true, where a missing nginx is a
//! failure); elsewhere the test says loudly that it skipped.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::app::{App, Reply};
use common::{Hookscope, closed_port, payload};

/// nginx in the foreground, one process, everything under a temporary directory.
struct Nginx {
    child: Child,
    port: u16,
    dir: PathBuf,
}

/// The nginx binary, if there is one.
fn nginx_binary() -> Option<&'static str> {
    let found = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|path| Path::new(path).exists());
    if found.is_none() {
        let message = "the tunnel test needs nginx (apt-get install nginx-light)";
        assert!(
            std::env::var("CI").map_or(true, |ci| ci != "true"),
            "{message}"
        );
        eprintln!("SKIPPED: {message}");
    }
    found
}

impl Nginx {
    fn start(binary: &str, upstream_port: u16) -> Nginx {
        let dir = std::env::temp_dir().join(format!("hookscope-nginx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let port = closed_port();
        let d = dir.display();
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\nerror_log stderr warn;\npid {d}/nginx.pid;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
               server {{\n    listen 127.0.0.1:{port};\n    location / {{\n\
                 proxy_pass http://127.0.0.1:{upstream_port};\n      proxy_http_version 1.1;\n\
                 proxy_request_buffering off;\n      proxy_set_header Host $host;\n\
                 proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
                 proxy_set_header X-Forwarded-Proto https;\n    }}\n  }}\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let child = Command::new(binary)
            .args(["-e", "stderr", "-p"])
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("nginx starts");
        let nginx = Nginx { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nginx did not listen on {port}");
            std::thread::yield_now();
        }
        nginx
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn behind_nginx_chunked_alerts_are_validated_forwarded_and_recorded() {
    let Some(nginx_binary) = nginx_binary() else {
        return;
    };
    let app = App::start(|_| Reply::new(200, "app ok"));
    let record =
        std::env::temp_dir().join(format!("hookscope-tunnel-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&record);
    let hookscope = Hookscope::start(&[
        "--forward",
        &app.url(),
        "--record",
        record.to_str().unwrap(),
        "--format",
        "pretty",
        "--color",
        "never",
    ]);
    let hookscope_port: u16 = hookscope
        .url("")
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let nginx = Nginx::start(nginx_binary, hookscope_port);

    // A chunked upload through the tunnel stand-in, claiming an origin; far
    // bigger than nginx's body buffer, so that nginx streams it on chunked too.
    let mut alert: serde_json::Value =
        serde_json::from_slice(&payload("valid/panther-docs-ipmonitoring.json")).unwrap();
    alert["alertContext"] = serde_json::json!({ "padding": "x".repeat(600_000) });
    let alert = serde_json::to_vec(&alert).unwrap();
    let mut request = b"POST /panther HTTP/1.1\r\nHost: abc.tunnel.example\r\n\
        Content-Type: application/json\r\nX-Forwarded-For: 203.0.113.9\r\n\
        Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        .to_vec();
    for chunk in alert.chunks(64 * 1024) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let mut stream = TcpStream::connect(("127.0.0.1", nginx.port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(&request).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.ends_with("app ok"),
        "the app's answer came back: {answer}"
    );

    let seen = app.wait_for(1).remove(0);
    assert_eq!(seen.body, alert, "the app got the body whole");
    assert_eq!(
        seen.header("x-forwarded-for"),
        Some("203.0.113.9, 127.0.0.1, 127.0.0.1")
    );
    assert_eq!(seen.header("x-forwarded-proto"), Some("https"));
    assert_eq!(seen.header("x-forwarded-host"), Some("abc.tunnel.example"));

    let stopped = hookscope.stop();
    let shown = stopped.stdout_text();
    let first_line = shown.lines().next().unwrap_or_default();
    assert!(
        first_line.contains("from 127.0.0.1:")
            && first_line.contains("(forwarded for 203.0.113.9, claimed)"),
        "{first_line}"
    );
    assert!(
        shown.contains("✔ valid Panther alert"),
        "a valid alert, read whole"
    );
    assert!(
        shown.contains(&format!("→ {}/", app.url())) && shown.contains(" 200 OK in "),
        "{shown}"
    );
    assert!(
        shown.contains("transfer-encoding: chunked"),
        "nginx streamed it chunked: {shown}"
    );

    let text = std::fs::read_to_string(&record).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1);
    let line = &lines[0];
    assert_eq!(line["body_state"], "complete");
    assert_eq!(line["body_size"], alert.len());
    assert_eq!(line["verdict"]["valid"], true);
    assert_eq!(line["claimed_origin"], "203.0.113.9");
    assert_eq!(line["upstream"]["status"], 200);
    assert_eq!(line["status"], 200);
    let _ = std::fs::remove_file(&record);
}
