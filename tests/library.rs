//! hookscope as an in-process test fixture, through its public API only.

use std::time::{Duration, Instant};

use hookscope::{Alert, Behaviour, Server, ServerError};

fn alert(alert_id: &str) -> Alert {
    let mut alert = Alert::test_alert(chrono::Utc::now());
    alert.alert_id = Some(alert_id.into());
    alert
}

#[tokio::test]
async fn two_sinks_run_side_by_side() {
    let ok = Server::builder().spawn().await.unwrap();
    let down = Server::builder()
        .status(503)
        .body("down")
        .spawn()
        .await
        .unwrap();
    assert_ne!(ok.url(), down.url());
    let client = reqwest::Client::new();
    let answer = client
        .post(ok.url())
        .json(&alert("a"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let answer = client
        .post(down.url())
        .json(&alert("a"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 503);
    assert_eq!(answer.text().await.unwrap(), "down");
    assert_eq!(ok.received().len(), 1);
    assert_eq!(down.received().len(), 1);
}

#[tokio::test]
async fn a_retrying_sender_makes_three_attempts_in_order() {
    let sink = Server::builder().script("500*2,200").spawn().await.unwrap();
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let status = client
            .post(sink.url())
            .json(&alert("retry-me"))
            .send()
            .await
            .unwrap()
            .status();
        statuses.push(status.as_u16());
        if status.is_success() {
            break;
        }
    }
    assert_eq!(statuses, [500, 500, 200]);
    let received = sink.wait_for(3, Duration::from_secs(2)).await.unwrap();
    let attempts: Vec<(u32, Option<u16>)> = received
        .iter()
        .map(|x| (x.attempt.as_ref().unwrap().number, x.reply.outcome.status()))
        .collect();
    assert_eq!(attempts, [(1, Some(500)), (2, Some(500)), (3, Some(200))]);
    assert!(
        received
            .iter()
            .all(|x| x.alert().unwrap().alert_id.as_deref() == Some("retry-me"))
    );
    assert_eq!(sink.stats().deliveries.delivered_after_retries, 1);
}

#[tokio::test]
async fn wait_for_returns_as_soon_as_the_last_request_arrives() {
    let sink = Server::builder().spawn().await.unwrap();
    let url = sink.url();
    let sender = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let client = reqwest::Client::new();
        for n in 0..2 {
            client
                .post(&url)
                .json(&alert(&n.to_string()))
                .send()
                .await
                .unwrap();
        }
        Instant::now()
    });
    let received = sink.wait_for(2, Duration::from_secs(10)).await.unwrap();
    let woke = Instant::now();
    let last_answered = sender.await.unwrap();
    assert_eq!(received.len(), 2);
    let lag = woke.saturating_duration_since(last_answered);
    assert!(
        lag < Duration::from_millis(50),
        "wait_for woke {lag:?} after the last answer"
    );

    let error = sink
        .wait_for(3, Duration::from_millis(100))
        .await
        .unwrap_err();
    assert_eq!((error.wanted, error.arrived), (3, 2));
}

#[tokio::test]
async fn behaviour_changes_mid_test() {
    let sink = Server::builder().spawn().await.unwrap();
    let client = reqwest::Client::new();
    let post = || client.post(sink.url()).json(&alert("x")).send();
    assert_eq!(post().await.unwrap().status(), 200);
    sink.set_behaviour(Behaviour {
        status: http::StatusCode::SERVICE_UNAVAILABLE,
        ..Behaviour::default()
    })
    .unwrap();
    assert_eq!(post().await.unwrap().status(), 503);
    sink.update_behaviour(|behaviour| behaviour.script = Some("drop".parse().unwrap()))
        .unwrap();
    assert!(post().await.unwrap_err().status().is_none());
    sink.update_behaviour(|behaviour| behaviour.script = None)
        .unwrap();
    assert_eq!(post().await.unwrap().status(), 503);
}

#[tokio::test]
async fn every_behaviour_change_recompiles_its_templates() {
    let sink = Server::builder()
        .body("attempt {{ attempt }}")
        .spawn()
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let answer = || async {
        let response = client
            .post(sink.url())
            .json(&alert("t"))
            .send()
            .await
            .unwrap();
        response.text().await.unwrap()
    };
    assert_eq!(answer().await, "attempt 1");
    // A plain body replaces the template: the old compiled one must not answer.
    sink.update_behaviour(|behaviour| behaviour.body = Some("plain".into()))
        .unwrap();
    assert_eq!(answer().await, "plain");
    // A template set at run time is rendered, not sent raw.
    sink.update_behaviour(|behaviour| behaviour.body = Some("id {{ alert_key }}".into()))
        .unwrap();
    assert_eq!(answer().await, "id t");
    // And one that does not parse is refused, the behaviour in force unchanged.
    let refused = sink.update_behaviour(|behaviour| behaviour.body = Some("{{ oops".into()));
    assert!(matches!(
        refused,
        Err(hookscope::ConfigError::Behaviour(
            hookscope::BehaviourError::Template(_)
        ))
    ));
    assert_eq!(answer().await, "id t");
}

#[tokio::test]
async fn a_forward_url_set_at_run_time_is_refused_without_a_forward_client() {
    let sink = Server::builder().spawn().await.unwrap();
    let refused = sink.update_behaviour(|behaviour| {
        behaviour.forward = Some("http://127.0.0.1:9/hook".parse().unwrap());
    });
    let error = refused.unwrap_err().to_string();
    assert!(error.contains("started without one"), "{error}");
    // Not a 502 by accident: the behaviour in force is unchanged.
    let answer = reqwest::Client::new()
        .post(sink.url())
        .json(&alert("f"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
}

#[tokio::test]
async fn dropping_the_handle_closes_the_port() {
    let sink = Server::builder().spawn().await.unwrap();
    let addr = sink.local_addr();
    assert!(tokio::net::TcpStream::connect(addr).await.is_ok());
    drop(sink);
    // The stop is handed to the server's task; give it a bounded number of turns.
    let mut refused = false;
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        refused,
        "{addr} still accepts connections after the handle was dropped"
    );
}

#[tokio::test]
async fn invalid_settings_are_reported_by_spawn() {
    for builder in [
        Server::builder().script("500*x"),
        Server::builder().status(42),
        Server::builder().header("no colon"),
        Server::builder().route("nopath=200"),
        Server::builder().fail_rate(1.5, 500),
    ] {
        match builder.spawn().await {
            Err(ServerError::Config(problem)) => assert!(!problem.to_string().is_empty()),
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => panic!("an invalid setting was accepted"),
        }
    }
    let error = Server::builder()
        .tls_files("/no/cert.pem", "/no/key.pem")
        .spawn()
        .await
        .err()
        .unwrap();
    assert!(error.to_string().contains("/no/cert.pem"), "{error}");
}

#[tokio::test]
async fn strict_required_headers_and_tls_from_the_builder() {
    let root = env!("CARGO_MANIFEST_DIR");
    let sink = Server::builder()
        .strict()
        .require_header("X-Token: t0ken")
        .tls_files(
            format!("{root}/certs/cert.pem"),
            format!("{root}/certs/key.pem"),
        )
        .spawn()
        .await
        .unwrap();
    assert!(sink.url().starts_with("https://"));
    let pem = std::fs::read(format!("{root}/certs/cert.pem")).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let url = sink.url().replace("127.0.0.1", "localhost");
    let unauthorized = client.post(&url).json(&alert("a")).send().await.unwrap();
    assert_eq!(unauthorized.status(), 401);
    let invalid = client
        .post(&url)
        .header("x-token", "t0ken")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status(), 400);
    let valid = client
        .post(&url)
        .header("x-token", "t0ken")
        .json(&alert("a"))
        .send()
        .await
        .unwrap();
    assert_eq!(valid.status(), 200);
    let received = sink.wait_for(3, Duration::from_secs(2)).await.unwrap();
    assert!(received[0].rejected.is_some());
    assert_eq!(
        received[2].header("x-token"),
        Some("<masked: 5 bytes, matches>")
    );
}

/// Large bodies on one kept-alive connection arrive in one piece once hyper's read
/// buffer has grown, and are then kept without a copy: each must still be the very
/// bytes sent, and the history must count the buffer that holds it.
#[tokio::test]
async fn large_alerts_on_one_connection_are_kept_whole_and_counted() {
    let sink = Server::builder().spawn().await.unwrap();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    let mut sent = Vec::new();
    for index in 0..20u8 {
        let mut alert = alert(&format!("large-{index}"));
        let filler = char::from(b'a' + index).to_string().repeat(60_000);
        alert.alert_context = serde_json::json!({ "filler": filler }).as_object().cloned();
        let body = serde_json::to_vec(&alert).unwrap();
        let answer = client
            .post(sink.url())
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        sent.push(body);
    }
    let received = sink.wait_for(20, Duration::from_secs(5)).await.unwrap();
    for (exchange, body) in received.iter().zip(&sent) {
        assert_eq!(&exchange.body[..], &body[..], "exchange #{}", exchange.id);
        assert!(exchange.verdict.as_ref().unwrap().is_valid());
    }
    let bodies: u64 = sent.iter().map(|body| body.len() as u64).sum();
    let stats = sink.stats();
    assert!(
        stats.kept_bytes >= bodies,
        "{} < {bodies}",
        stats.kept_bytes
    );
    let connections: std::collections::HashSet<_> = received.iter().map(|e| e.peer).collect();
    assert_eq!(connections.len(), 1, "one kept-alive connection");
}

#[tokio::test]
async fn the_forward_url_can_change_at_run_time() {
    let first = Server::builder().status(201).spawn().await.unwrap();
    let second = Server::builder().status(202).spawn().await.unwrap();
    let front = Server::builder()
        .forward(format!("{}/a", first.url()).as_str())
        .spawn()
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let post = || client.post(front.url()).json(&alert("moved")).send();
    assert_eq!(post().await.unwrap().status(), 201);
    let to_second = format!("{}/b", second.url()).parse().unwrap();
    front
        .update_behaviour(|behaviour| behaviour.forward = Some(to_second))
        .unwrap();
    assert_eq!(post().await.unwrap().status(), 202);
    let arrived = second.wait_for(1, Duration::from_secs(5)).await.unwrap();
    assert_eq!(arrived[0].path, "/b");
}
