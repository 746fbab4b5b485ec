//! Fault scripts: `503*3,200@2s,drop` parsed into [`Script`], and which step answers the n-th request.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use http::StatusCode;
use thiserror::Error;

/// What one step of a script does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Answer with this status.
    Status(StatusCode),
    /// Close the connection without any answer, as a crashed receiver would.
    Drop,
    /// Abort the TCP connection so the client sees a reset.
    Reset,
    /// Never answer, until the client gives up or hookscope shuts down.
    Hang,
    /// Send the request on to `--forward` and pass the upstream's answer back; with
    /// `instead` (`forward>503`, `forward>drop`), the upstream gets the request but
    /// the sender is told this: a lost acknowledgement, so it retries.
    Forward {
        /// What the sender gets instead of the upstream's answer.
        instead: Option<Instead>,
    },
}

/// What the sender is told after a forward whose answer is lost (`forward>STEP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instead {
    /// An answer with this status.
    Status(StatusCode),
    /// The connection closed without an answer.
    Drop,
    /// A TCP reset.
    Reset,
    /// No answer at all.
    Hang,
}

impl From<Instead> for Step {
    fn from(instead: Instead) -> Step {
        match instead {
            Instead::Status(status) => Step::Status(status),
            Instead::Drop => Step::Drop,
            Instead::Reset => Step::Reset,
            Instead::Hang => Step::Hang,
        }
    }
}

/// A step other than `forward`: a status code, `drop`, `reset` or `hang`.
fn plain_step(word: &str) -> Option<Instead> {
    match word {
        "drop" => Some(Instead::Drop),
        "reset" => Some(Instead::Reset),
        "hang" => Some(Instead::Hang),
        code => code
            .parse::<u16>()
            .ok()
            .filter(|code| (100..=599).contains(code))
            .and_then(|code| StatusCode::from_u16(code).ok())
            .map(Instead::Status),
    }
}

/// One comma-separated item: a step, how many times, and an optional delay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The step.
    pub step: Step,
    /// How many requests in a row it answers (at least 1).
    pub times: u32,
    /// Wait before the step is carried out (overrides `--delay`).
    pub delay: Option<Duration>,
}

/// A sequence of answers; the last item repeats forever.
///
/// ```
/// use hookscope::{Script, Step};
/// let script: Script = "503*2,drop,200@1s".parse().unwrap();
/// assert_eq!(script.step_at(1).0, Step::Status(http::StatusCode::SERVICE_UNAVAILABLE));
/// assert_eq!(script.step_at(2).0, Step::Drop);
/// assert_eq!(script.step_at(99).1, Some(std::time::Duration::from_secs(1)));
/// assert!("503*x".parse::<Script>().unwrap_err().to_string().contains("position 5"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    items: Vec<Item>,
    text: String,
}

/// A script that does not parse, with the position (1-based character) of the mistake.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid {what} {text:?} at position {position}: {message}")]
pub struct ScriptError {
    /// What was being read: `script` or `route`.
    pub what: &'static str,
    /// The whole script as given.
    pub text: String,
    /// 1-based character position of the mistake.
    pub position: usize,
    /// What was expected there.
    pub message: String,
}

impl Script {
    /// The step (and its delay) that answers the request at `position` (0-based).
    pub fn step_at(&self, position: u64) -> (Step, Option<Duration>) {
        let mut remaining = position;
        for item in &self.items {
            if remaining < u64::from(item.times) {
                return (item.step, item.delay);
            }
            remaining -= u64::from(item.times);
        }
        let last = self
            .items
            .last()
            .expect("a parsed script has at least one item");
        (last.step, last.delay)
    }

    /// The items, in order.
    pub fn items(&self) -> &[Item] {
        &self.items
    }

    /// The script as it was written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The 1-based character position of the first `forward` step, if there is one.
    pub fn forward_position(&self) -> Option<usize> {
        let mut offset = 0;
        for raw in self.text.split(',') {
            let leading = raw.len() - raw.trim_start().len();
            if raw.trim_start().starts_with("forward") {
                return Some(self.text[..offset + leading].chars().count() + 1);
            }
            offset += raw.len() + 1;
        }
        None
    }
}

impl fmt::Display for Script {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Script {
    type Err = ScriptError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = |offset: usize, message: &str| ScriptError {
            what: "script",
            text: text.into(),
            position: text[..offset.min(text.len())].chars().count() + 1,
            message: message.into(),
        };
        let mut items = Vec::new();
        let mut offset = 0;
        for raw in text.split(',') {
            let leading = raw.len() - raw.trim_start().len();
            let item = raw.trim();
            let start = offset + leading;
            offset += raw.len() + 1;
            if item.is_empty() {
                return Err(error(
                    start,
                    "expected an item (a status code, drop, reset, hang or forward)",
                ));
            }
            let (head, delay) = match item.split_once('@') {
                Some((head, delay)) => {
                    let at = start + head.len() + 1;
                    let delay = humantime::parse_duration(delay)
                        .map_err(|_| error(at, "expected a delay after '@', e.g. 2s or 250ms"))?;
                    (head, Some(delay))
                }
                None => (item, None),
            };
            let (word, times) = match head.split_once('*') {
                Some((word, times)) => {
                    let at = start + word.len() + 1;
                    let times = times
                        .parse::<u32>()
                        .ok()
                        .filter(|&n| n >= 1)
                        .ok_or_else(|| {
                            error(at, "expected a repeat count of 1 or more after '*'")
                        })?;
                    (word, times)
                }
                None => (head, 1),
            };
            let step = match word.strip_prefix("forward") {
                Some("") => Step::Forward { instead: None },
                Some(rest) if rest.starts_with('>') => Step::Forward {
                    instead: Some(plain_step(&rest[1..]).ok_or_else(|| {
                        error(
                            start + "forward>".len(),
                            "expected what the sender is told after 'forward>': \
                             a status code (100-599), drop, reset or hang",
                        )
                    })?),
                },
                _ => plain_step(word).map(Step::from).ok_or_else(|| {
                    error(
                        start,
                        "expected a status code (100-599), drop, reset, hang or forward",
                    )
                })?,
            };
            items.push(Item { step, times, delay });
        }
        Ok(Script {
            items,
            text: text.trim().to_owned(),
        })
    }
}

/// A path prefix with its own script (`--route /flaky=500*2,200`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Path prefix, matched segment by segment (`/ok` matches `/ok` and `/ok/x`, not `/okay`).
    pub prefix: String,
    /// The script for requests under it.
    pub script: Script,
}

impl Route {
    /// Whether this route covers the path.
    pub fn matches(&self, path: &str) -> bool {
        let prefix = self.prefix.trim_end_matches('/');
        match path.strip_prefix(prefix) {
            Some(rest) => rest.is_empty() || rest.starts_with('/') || prefix.is_empty(),
            None => false,
        }
    }
}

impl FromStr for Route {
    type Err = ScriptError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (prefix, spec) = text.split_once('=').ok_or_else(|| ScriptError {
            what: "route",
            text: text.into(),
            position: text.chars().count() + 1,
            message: "expected PATH=SCRIPT, e.g. /flaky=500*2,200".into(),
        })?;
        if !prefix.starts_with('/') {
            return Err(ScriptError {
                what: "route",
                text: text.into(),
                position: 1,
                message: "the path must start with '/'".into(),
            });
        }
        let script = spec.parse::<Script>().map_err(|mut error| {
            error.what = "route";
            error.position += prefix.chars().count() + 1;
            error.text = text.into();
            error
        })?;
        Ok(Route {
            prefix: prefix.into(),
            script,
        })
    }
}

/// The route whose prefix is the longest that matches the path.
pub fn route_for<'a>(routes: &'a [Route], path: &str) -> Option<(usize, &'a Route)> {
    routes
        .iter()
        .enumerate()
        .filter(|(_, route)| route.matches(path))
        .max_by_key(|(_, route)| route.prefix.trim_end_matches('/').len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(text: &str) -> Script {
        text.parse().unwrap()
    }

    fn status(code: u16) -> Step {
        Step::Status(StatusCode::from_u16(code).unwrap())
    }

    #[test]
    fn steps_follow_the_script_and_the_last_repeats() {
        let s = script("503*3,200");
        let steps: Vec<_> = (0..6).map(|n| s.step_at(n).0).collect();
        assert_eq!(
            steps,
            [
                status(503),
                status(503),
                status(503),
                status(200),
                status(200),
                status(200)
            ]
        );
    }

    #[test]
    fn faults_and_delays_parse() {
        let s = script("drop, reset*2 ,hang@1s,200@250ms");
        assert_eq!(s.step_at(0), (Step::Drop, None));
        assert_eq!(s.step_at(2), (Step::Reset, None));
        assert_eq!(s.step_at(3), (Step::Hang, Some(Duration::from_secs(1))));
        assert_eq!(
            s.step_at(99),
            (status(200), Some(Duration::from_millis(250)))
        );
        assert_eq!(
            script("500*2@1s").step_at(1),
            (status(500), Some(Duration::from_secs(1)))
        );
    }

    #[test]
    fn forward_steps_parse_with_what_the_sender_is_told_instead() {
        let s = script("503*2,forward,forward>503,forward>drop@1s");
        assert_eq!(s.step_at(1), (status(503), None));
        assert_eq!(s.step_at(2), (Step::Forward { instead: None }, None));
        assert_eq!(
            s.step_at(3).0,
            Step::Forward {
                instead: Some(Instead::Status(StatusCode::SERVICE_UNAVAILABLE))
            }
        );
        assert_eq!(
            s.step_at(4),
            (
                Step::Forward {
                    instead: Some(Instead::Drop)
                },
                Some(Duration::from_secs(1))
            )
        );
        assert_eq!(s.forward_position(), Some(7));
        assert_eq!(script("200, forward").forward_position(), Some(6));
        assert_eq!(script("200").forward_position(), None);
        let error = "200,forward>oops".parse::<Script>().unwrap_err();
        assert_eq!(error.position, 13);
        assert!(error.message.contains("after 'forward>'"), "{error}");
        assert_eq!("forwards".parse::<Script>().unwrap_err().position, 1);
    }

    #[test]
    fn mistakes_name_their_position() {
        let error = "503*x,200".parse::<Script>().unwrap_err();
        assert_eq!(error.position, 5);
        assert!(
            error
                .to_string()
                .contains("at position 5: expected a repeat count"),
            "{error}"
        );
        assert_eq!("200,,503".parse::<Script>().unwrap_err().position, 5);
        assert_eq!("200,99".parse::<Script>().unwrap_err().position, 5);
        assert_eq!("200, nope".parse::<Script>().unwrap_err().position, 6);
        assert_eq!("200@soon".parse::<Script>().unwrap_err().position, 5);
        assert_eq!("".parse::<Script>().unwrap_err().position, 1);
        assert_eq!("503*0".parse::<Script>().unwrap_err().position, 5);
        assert_eq!("é,x".parse::<Script>().unwrap_err().position, 1);
    }

    #[test]
    fn routes_match_by_whole_segments_and_the_longest_wins() {
        let routes: Vec<Route> = ["/ok=200", "/flaky=500*2,200", "/flaky/deeper=503"]
            .iter()
            .map(|r| r.parse().unwrap())
            .collect();
        let pick = |path| route_for(&routes, path).map(|(_, r)| r.prefix.as_str());
        assert_eq!(pick("/ok"), Some("/ok"));
        assert_eq!(pick("/ok/sub"), Some("/ok"));
        assert_eq!(pick("/okay"), None);
        assert_eq!(pick("/flaky/deeper/x"), Some("/flaky/deeper"));
        assert_eq!(pick("/flaky/other"), Some("/flaky"));
        assert_eq!(pick("/"), None);
        let root: Route = "/=418".parse().unwrap();
        assert!(root.matches("/anything"));
    }

    #[test]
    fn bad_routes_say_why() {
        assert!(
            "/x".parse::<Route>()
                .unwrap_err()
                .message
                .contains("PATH=SCRIPT")
        );
        assert!(
            "x=200"
                .parse::<Route>()
                .unwrap_err()
                .message
                .contains("start with '/'")
        );
        assert_eq!("/x=200*z".parse::<Route>().unwrap_err().position, 8);
    }
}
