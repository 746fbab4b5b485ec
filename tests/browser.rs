//! The inspector page in a real browser: runs tests/browser/inspector.mjs
//! (Playwright driving Debian's headless Chromium) against the real binary.
//!
//! Needs /usr/bin/chromium and `npm ci --prefix tests/browser`; `.ci/run` installs
//! both. Elsewhere the test is reported `ignored` in cargo test's summary, with what
//! is missing, except under CI=true, where anything missing is a failure. (libtest
//! cannot decide at run time that a test is ignored; libtest-mimic, a harness that
//! behaves as libtest does, can.)

use std::path::Path;
use std::process::Command;

use libtest_mimic::{Arguments, Failed, Trial};

const NAME: &str = "the_inspector_works_in_headless_chromium";

fn main() -> std::process::ExitCode {
    let arguments = Arguments::from_args();
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let missing = missing(&chromium);
    let in_ci = std::env::var("CI").is_ok_and(|ci| ci == "true");
    let skipped = !missing.is_empty() && !in_ci;
    if skipped {
        println!(
            "{NAME} is ignored: the browser test needs {}",
            missing.join(", ")
        );
    }
    let trial = Trial::test(NAME, move || {
        if missing.is_empty() {
            inspector_in_chromium(&chromium)
        } else {
            Err(format!("the browser test needs: {}", missing.join(", ")).into())
        }
    })
    .with_ignored_flag(skipped);
    libtest_mimic::run(&arguments, vec![trial]).exit_code()
}

/// What the test needs and this machine lacks.
fn missing(chromium: &str) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let playwright = root.join("tests/browser/node_modules/playwright-core");
    [
        (!Path::new(chromium).exists()).then(|| format!("{chromium} (apt-get install chromium)")),
        (!playwright.exists())
            .then(|| "playwright-core (npm ci --prefix tests/browser)".to_owned()),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn inspector_in_chromium(chromium: &str) -> Result<(), Failed> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new("node")
        .arg("inspector.mjs")
        .current_dir(root.join("tests/browser"))
        .env("HOOKSCOPE_BIN", env!("CARGO_BIN_EXE_hookscope"))
        .env("HOOKSCOPE_SCREENSHOT", root.join("target/inspector.png"))
        .env("CHROMIUM", chromium)
        .output()
        .map_err(|error| format!("cannot run node: {error}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!("browser test failed:\n{stdout}\n{stderr}").into());
    }
    if !stdout.contains("inspector browser test: ok") {
        return Err(format!("the page never said it was done:\n{stdout}").into());
    }
    Ok(())
}
