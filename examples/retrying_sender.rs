//! A webhook sender under test, checked against a scripted hookscope sink.
//!
//! `deliver` is the kind of code you would test: it POSTs an alert and retries
//! with backoff until it gets a 2XX. The sink fails twice, then accepts; the
//! test checks that the sender made exactly three attempts, in order, with the
//! same alert, and backed off between them.
//!
//! Run it with `cargo run --example retrying_sender`.

use std::time::Duration;

use hookscope::{Alert, Server};

/// The sender under test.
async fn deliver(
    client: &reqwest::Client,
    url: &str,
    alert: &Alert,
    max_attempts: u32,
) -> Result<u32, String> {
    let mut backoff = Duration::from_millis(20);
    for attempt in 1..=max_attempts {
        match client.post(url).json(alert).send().await {
            Ok(response) if response.status().is_success() => return Ok(attempt),
            Ok(_) | Err(_) if attempt < max_attempts => {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
            Ok(response) => return Err(format!("gave up: last status {}", response.status())),
            Err(error) => return Err(format!("gave up: {error}")),
        }
    }
    Err("no attempts allowed".into())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sink = Server::builder().script("500*2,200").spawn().await?;
    let client = reqwest::Client::new();
    let alert = Alert::test_alert(chrono::Utc::now());

    let attempts = deliver(&client, &sink.url(), &alert, 5).await?;
    assert_eq!(attempts, 3, "the sender should stop at the first 2XX");

    let received = sink.wait_for(3, Duration::from_secs(2)).await?;
    let seen: Vec<(u32, Option<u16>)> = received
        .iter()
        .map(|x| {
            (
                x.attempt.as_ref().map_or(0, |a| a.number),
                x.reply.outcome.status(),
            )
        })
        .collect();
    assert_eq!(seen, [(1, Some(500)), (2, Some(500)), (3, Some(200))]);
    for exchange in &received {
        assert!(
            exchange.verdict.as_ref().is_some_and(|v| v.is_valid()),
            "every attempt carries a valid alert"
        );
        assert_eq!(
            exchange.alert().as_ref(),
            Some(&alert),
            "every attempt carries the same alert"
        );
    }
    let gaps: Vec<Duration> = received
        .iter()
        .filter_map(|x| x.attempt.as_ref()?.gap)
        .collect();
    assert!(gaps[1] > gaps[0], "the sender backs off: {gaps:?}");

    println!("ok: {attempts} attempts, answers {seen:?}, gaps {gaps:?}");
    Ok(())
}
