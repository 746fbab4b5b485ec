use std::time::Duration;

use hookscope::Server;

#[tokio::test]
async fn a_sender_retries_until_acknowledged() {
    // A sink on 127.0.0.1, on a free port: fails twice, then acknowledges.
    let sink = Server::builder().script("500*2,200").spawn().await.unwrap();

    // The code under test: a sender that retries until it gets a 2XX.
    let client = reqwest::Client::new();
    let alert = hookscope::Alert::test_alert(chrono::Utc::now());
    let mut statuses = Vec::new();
    while statuses.last() != Some(&200) {
        let response = client.post(sink.url()).json(&alert).send().await.unwrap();
        statuses.push(response.status().as_u16());
    }

    // What the sender saw, and what arrived.
    assert_eq!(statuses, [500, 500, 200]);
    let received = sink.wait_for(3, Duration::from_secs(1)).await.unwrap();
    let attempts: Vec<u32> = received
        .iter()
        .map(|x| x.attempt.as_ref().unwrap().number)
        .collect();
    assert_eq!(attempts, [1, 2, 3]);
    assert!(
        received
            .iter()
            .all(|x| x.verdict.as_ref().unwrap().is_valid())
    );
    assert_eq!(received[0].alert().unwrap().id, "Test.Alert");

    // Turn the healthy sink into a failing one mid-test.
    sink.update_behaviour(|behaviour| behaviour.script = "503".parse().ok())
        .unwrap();
    let response = client.post(sink.url()).json(&alert).send().await.unwrap();
    assert_eq!(response.status(), 503);
} // dropping the handle stops the server
