//! The decision of what to answer: a pure function of the request, the script
//! state and a random source, so it is tested without sockets.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use super::script::{Instead, Script, Step, route_for};
use super::{Behaviour, ScriptScope};
use crate::alert::Verdict;

/// What to do with one request: answer it here, or forward it first.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Answer here, as the answer says.
    Answer(Answer),
    /// After `delay`, send the request on to `--forward`; the sender gets the
    /// upstream's answer, or `instead` whatever the upstream said. What the sender is
    /// told instead is an [`Answer`]: a forward cannot hold another forward.
    Forward {
        /// Wait before forwarding.
        delay: Duration,
        /// What the sender gets instead of the upstream's answer (a lost acknowledgement).
        instead: Option<Answer>,
    },
}

/// An answer hookscope gives itself.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Answer with this status, headers and body, after waiting `delay`.
    Respond {
        /// Status to send.
        status: StatusCode,
        /// Headers to add.
        headers: HeaderMap,
        /// Body to send.
        body: Bytes,
        /// Wait before answering.
        delay: Duration,
    },
    /// After `delay`, close the connection without answering.
    Drop {
        /// Wait before closing.
        delay: Duration,
    },
    /// After `delay`, abort the connection with a TCP reset.
    Reset {
        /// Wait before resetting.
        delay: Duration,
    },
    /// Never answer.
    Hang,
}

/// The facts about a request that the decision depends on.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    /// Request method.
    pub method: &'a Method,
    /// Request path.
    pub path: &'a str,
    /// The schema check, for POSTs.
    pub verdict: Option<&'a Verdict>,
    /// Which attempt of its alert this is (1 for the first delivery).
    pub attempt: u32,
    /// The signature check (`--verify`), if there is one.
    pub signature: Option<&'a crate::signature::SignatureVerdict>,
    /// What answer templates can use (only built when there are templates).
    pub context: Option<&'a super::RequestContext<'a>>,
}

/// Positions of the globally-scoped scripts (per route; `None` is `--script`).
#[derive(Debug, Default)]
pub struct ScriptState {
    global: HashMap<Option<usize>, u64>,
}

impl ScriptState {
    /// The positions, by route index (`-1` for `--script`), as a store keeps them.
    pub fn positions(&self) -> Vec<(i64, u64)> {
        self.global
            .iter()
            .map(|(route, position)| {
                let route = route.map_or(-1, |index| i64::try_from(index).unwrap_or(i64::MAX));
                (route, *position)
            })
            .collect()
    }

    /// Positions as a store kept them: a global script goes on where it was.
    pub fn restore(&mut self, positions: impl IntoIterator<Item = (i64, u64)>) {
        for (route, position) in positions {
            let route = usize::try_from(route).ok();
            self.global.insert(route, position);
        }
    }
}

/// The global script a request on `path` steps through, as a store keys it (the
/// route's index, `-1` for `--script`); `None` when scripts are per alert or none applies.
pub fn global_script_route(behaviour: &Behaviour, path: &str) -> Option<i64> {
    if behaviour.scope != ScriptScope::Global {
        return None;
    }
    match route_for(&behaviour.routes, path) {
        Some((index, _)) => Some(i64::try_from(index).unwrap_or(i64::MAX)),
        None => behaviour.script.as_ref().map(|_| -1),
    }
}

/// Chooses what to do with one request.
pub fn decide(
    behaviour: &Behaviour,
    request: &RequestFacts<'_>,
    state: &mut ScriptState,
    rng: &mut fastrand::Rng,
) -> Action {
    // A 2XX to CONNECT would tell the client a tunnel is open; there is none.
    if *request.method == Method::CONNECT {
        let mut headers = behaviour.header_map();
        headers.insert(
            http::header::ALLOW,
            HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS"),
        );
        return Action::Answer(Answer::Respond {
            status: StatusCode::METHOD_NOT_ALLOWED,
            headers,
            body: Bytes::from_static(b"hookscope is not a proxy: CONNECT is not served"),
            delay: Duration::ZERO,
        });
    }
    let refuse_signature = behaviour.require_signature || behaviour.strict;
    if let Some(signature) = request
        .signature
        .filter(|s| refuse_signature && !s.is_valid())
    {
        let mut headers = behaviour.header_map();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        return Action::Answer(Answer::Respond {
            status: StatusCode::UNAUTHORIZED,
            headers,
            body: Bytes::from(format!("{}\n", signature.describe())),
            delay: behaviour.delay,
        });
    }
    if behaviour.strict && *request.method == Method::POST {
        if let Some(verdict) = request.verdict.filter(|verdict| !verdict.is_valid()) {
            return Action::Answer(problems_answer(behaviour, verdict));
        }
    }
    // Drawn for every request, so that a seed replays the same choices.
    if behaviour.fail_rate > 0.0 && rng.f64() < behaviour.fail_rate {
        return Action::Answer(status_answer(
            behaviour,
            behaviour.fail_status,
            behaviour.delay,
            request,
        ));
    }
    let (route, script): (Option<usize>, Option<&Script>) =
        match route_for(&behaviour.routes, request.path) {
            Some((index, route)) => (Some(index), Some(&route.script)),
            None => (None, behaviour.script.as_ref()),
        };
    let Some(script) = script else {
        if behaviour.forward.is_some() {
            return Action::Forward {
                delay: behaviour.delay,
                instead: None,
            };
        }
        return Action::Answer(status_answer(
            behaviour,
            behaviour.status,
            behaviour.delay,
            request,
        ));
    };
    let position = match behaviour.scope {
        ScriptScope::PerAlert => u64::from(request.attempt.saturating_sub(1)),
        ScriptScope::Global => {
            let next = state.global.entry(route).or_default();
            *next += 1;
            *next - 1
        }
    };
    let (step, item_delay) = script.step_at(position);
    let delay = item_delay.unwrap_or(behaviour.delay);
    match step {
        Step::Status(status) => Action::Answer(status_answer(behaviour, status, delay, request)),
        Step::Drop => Action::Answer(Answer::Drop { delay }),
        Step::Reset => Action::Answer(Answer::Reset { delay }),
        Step::Hang => Action::Answer(Answer::Hang),
        Step::Forward { instead } => Action::Forward {
            delay,
            instead: instead.map(|instead| told(behaviour, instead, request)),
        },
    }
}

/// What the sender is told after a forward whose answer is lost: at once, since
/// the step's delay was spent before forwarding.
fn told(behaviour: &Behaviour, instead: Instead, request: &RequestFacts<'_>) -> Answer {
    let delay = Duration::ZERO;
    match instead {
        Instead::Status(status) => status_answer(behaviour, status, delay, request),
        Instead::Drop => Answer::Drop { delay },
        Instead::Reset => Answer::Reset { delay },
        Instead::Hang => Answer::Hang,
    }
}

/// An answer made from a status: the configured body (or the default for the
/// status; rendered when it is a template), sent as JSON when it is JSON and no
/// header says otherwise.
fn status_answer(
    behaviour: &Behaviour,
    status: StatusCode,
    delay: Duration,
    request: &RequestFacts<'_>,
) -> Answer {
    let templates = behaviour.templates.as_ref().zip(request.context);
    let body = match templates {
        Some((templates, context)) if templates.has_body() => templates.render_body(context),
        _ => behaviour.body_for(status),
    };
    let mut headers = behaviour.header_map();
    if let Some((templates, context)) = templates {
        templates.render_headers(&behaviour.headers, context, &mut headers);
    }
    let is_json =
        behaviour.body.is_some() && serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_ok();
    if is_json && !headers.contains_key(CONTENT_TYPE) {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    Answer::Respond {
        status,
        headers,
        body,
        delay,
    }
}

fn problems_answer(behaviour: &Behaviour, verdict: &Verdict) -> Answer {
    let body = serde_json::json!({ "problems": verdict.problems });
    let mut headers = behaviour.header_map();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Answer::Respond {
        status: StatusCode::BAD_REQUEST,
        headers,
        body: Bytes::from(body.to_string()),
        delay: behaviour.delay,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::validate;
    use crate::respond::Route;

    fn behaviour(script: Option<&str>) -> Behaviour {
        Behaviour {
            script: script.map(|s| s.parse().unwrap()),
            ..Behaviour::default()
        }
    }

    fn facts<'a>(path: &'a str, attempt: u32, verdict: Option<&'a Verdict>) -> RequestFacts<'a> {
        RequestFacts {
            method: &Method::POST,
            path,
            verdict,
            attempt,
            signature: None,
            context: None,
        }
    }

    fn status_of(action: Action) -> String {
        match action {
            Action::Answer(answer) => answer_of(answer),
            Action::Forward { instead: None, .. } => "forward".into(),
            Action::Forward {
                instead: Some(instead),
                ..
            } => format!("forward>{}", answer_of(instead)),
        }
    }

    fn answer_of(answer: Answer) -> String {
        match answer {
            Answer::Respond { status, .. } => status.as_u16().to_string(),
            Answer::Drop { .. } => "drop".into(),
            Answer::Reset { .. } => "reset".into(),
            Answer::Hang => "hang".into(),
        }
    }

    fn run(behaviour: &Behaviour, requests: &[(&str, u32)]) -> Vec<String> {
        let mut state = ScriptState::default();
        let mut rng = fastrand::Rng::with_seed(1);
        requests
            .iter()
            .map(|(path, attempt)| {
                status_of(decide(
                    behaviour,
                    &facts(path, *attempt, None),
                    &mut state,
                    &mut rng,
                ))
            })
            .collect()
    }

    #[test]
    fn only_a_global_script_that_applies_names_its_route() {
        let mut global = behaviour(Some("500,200"));
        assert_eq!(
            global_script_route(&global, "/any"),
            None,
            "per alert by default"
        );
        global.scope = ScriptScope::Global;
        assert_eq!(global_script_route(&global, "/any"), Some(-1));
        global.routes = vec!["/slow=503".parse().unwrap()];
        assert_eq!(global_script_route(&global, "/slow/x"), Some(0));
        global.script = None;
        assert_eq!(global_script_route(&global, "/other"), None);
    }

    #[test]
    fn connect_is_refused_whatever_the_script_says() {
        let request = RequestFacts {
            method: &Method::CONNECT,
            ..facts("/", 1, None)
        };
        let action = decide(
            &behaviour(Some("200")),
            &request,
            &mut ScriptState::default(),
            &mut fastrand::Rng::with_seed(0),
        );
        assert_eq!(status_of(action), "405");
    }

    #[test]
    fn default_behaviour_acknowledges_like_panthers_example() {
        let action = decide(
            &Behaviour::default(),
            &facts("/", 1, None),
            &mut ScriptState::default(),
            &mut fastrand::Rng::with_seed(0),
        );
        let Action::Answer(Answer::Respond {
            status,
            body,
            delay,
            ..
        }) = action
        else {
            panic!("expected an answer")
        };
        assert_eq!(
            (status, body, delay),
            (StatusCode::OK, Bytes::from("success"), Duration::ZERO)
        );
    }

    #[test]
    fn per_alert_scripts_follow_each_alerts_attempt_number() {
        let b = behaviour(Some("503*3,200"));
        // Two alerts interleaved: each one's attempts see 503, 503, 503, 200.
        let answers = run(
            &b,
            &[
                ("/", 1),
                ("/", 1),
                ("/", 2),
                ("/", 2),
                ("/", 3),
                ("/", 3),
                ("/", 4),
                ("/", 4),
            ],
        );
        assert_eq!(
            answers,
            ["503", "503", "503", "503", "503", "503", "200", "200"]
        );
    }

    #[test]
    fn global_scope_shares_one_sequence() {
        let b = Behaviour {
            scope: ScriptScope::Global,
            ..behaviour(Some("503,drop,reset,hang,200"))
        };
        let answers = run(&b, &[("/", 1); 6]);
        assert_eq!(answers, ["503", "drop", "reset", "hang", "200", "200"]);
    }

    #[test]
    fn routes_pick_their_own_script_and_fall_back_to_the_script() {
        let b = Behaviour {
            routes: vec![
                "/ok=200".parse::<Route>().unwrap(),
                "/down=503".parse().unwrap(),
            ],
            ..behaviour(Some("418"))
        };
        let answers = run(&b, &[("/ok/x", 1), ("/down", 1), ("/other", 1)]);
        assert_eq!(answers, ["200", "503", "418"]);
    }

    #[test]
    fn scripted_bodies_and_delays() {
        let b = Behaviour {
            delay: Duration::from_millis(5),
            ..behaviour(Some("503,200@2s"))
        };
        let mut state = ScriptState::default();
        let mut rng = fastrand::Rng::with_seed(1);
        let Action::Answer(Answer::Respond { body, delay, .. }) =
            decide(&b, &facts("/", 1, None), &mut state, &mut rng)
        else {
            panic!()
        };
        assert_eq!(
            (body, delay),
            (Bytes::from("Service Unavailable"), Duration::from_millis(5))
        );
        let Action::Answer(Answer::Respond { body, delay, .. }) =
            decide(&b, &facts("/", 2, None), &mut state, &mut rng)
        else {
            panic!()
        };
        assert_eq!(
            (body, delay),
            (Bytes::from("success"), Duration::from_secs(2))
        );
    }

    #[test]
    fn fail_rate_is_reproducible_with_a_seed_and_roughly_right() {
        let b = Behaviour {
            fail_rate: 0.2,
            fail_status: StatusCode::BAD_GATEWAY,
            ..Behaviour::default()
        };
        let sample = |seed| {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut state = ScriptState::default();
            (0..1000)
                .map(|_| status_of(decide(&b, &facts("/", 1, None), &mut state, &mut rng)))
                .collect::<Vec<_>>()
        };
        assert_eq!(sample(7), sample(7));
        assert_ne!(sample(7), sample(8));
        let failures = sample(7).iter().filter(|s| *s == "502").count();
        assert!(
            (150..250).contains(&failures),
            "{failures} failures in 1000"
        );
    }

    #[test]
    fn strict_answers_invalid_alerts_400_with_the_problems() {
        let b = Behaviour {
            strict: true,
            ..behaviour(Some("503"))
        };
        let verdict = validate(br#"{"id": 5}"#);
        let mut state = ScriptState::default();
        let mut rng = fastrand::Rng::with_seed(1);
        let Action::Answer(Answer::Respond {
            status,
            body,
            headers,
            ..
        }) = decide(&b, &facts("/", 1, Some(&verdict)), &mut state, &mut rng)
        else {
            panic!()
        };
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(headers[CONTENT_TYPE], "application/json");
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["problems"][0]["pointer"], "/id");
        assert!(body["problems"][0]["expected"].is_string());
        assert!(body["problems"][0]["found"].is_string());
        // A valid alert follows the script.
        let valid = Verdict::default();
        assert_eq!(
            status_of(decide(
                &b,
                &facts("/", 1, Some(&valid)),
                &mut state,
                &mut rng
            )),
            "503"
        );
        // Without --strict the verdict never changes the answer.
        let lenient = behaviour(None);
        assert_eq!(
            status_of(decide(
                &lenient,
                &facts("/", 1, Some(&verdict)),
                &mut state,
                &mut rng
            )),
            "200"
        );
    }

    #[test]
    fn forwarding_is_the_default_step_and_faults_decide_before_it() {
        let upstream: url::Url = "http://127.0.0.1:3000".parse().unwrap();
        let forwarding = |script: Option<&str>| Behaviour {
            forward: Some(upstream.clone()),
            ..behaviour(script)
        };
        assert_eq!(
            run(&forwarding(None), &[("/", 1), ("/", 2)]),
            ["forward"; 2]
        );
        assert_eq!(
            run(
                &forwarding(Some("503*2,forward")),
                &[("/", 1), ("/", 2), ("/", 3), ("/", 4)]
            ),
            ["503", "503", "forward", "forward"]
        );
        assert_eq!(
            run(
                &forwarding(Some("forward>503,forward>drop,forward")),
                &[("/", 1), ("/", 2), ("/", 3)]
            ),
            ["forward>503", "forward>drop", "forward"]
        );
        let strict = Behaviour {
            strict: true,
            ..forwarding(None)
        };
        let verdict = validate(br#"{"id": 5}"#);
        let action = decide(
            &strict,
            &facts("/", 1, Some(&verdict)),
            &mut ScriptState::default(),
            &mut fastrand::Rng::with_seed(1),
        );
        assert_eq!(
            status_of(action),
            "400",
            "--strict answers before forwarding"
        );
    }
}
