//! The inspector page in a real browser: runs tests/browser/inspector.mjs
//! (Playwright driving Debian's headless Chromium) against the real binary.
//!
//! Needs /usr/bin/chromium and `npm ci --prefix tests/browser`; `.ci/run` installs
//! both. Elsewhere the test says loudly that it skipped, except under CI=true,
//! where anything missing is a failure.

use std::path::Path;
use std::process::Command;

#[test]
fn the_inspector_works_in_headless_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let playwright = root.join("tests/browser/node_modules/playwright-core");
    let missing: Vec<String> = [
        (!Path::new(&chromium).exists()).then(|| format!("{chromium} (apt-get install chromium)")),
        (!playwright.exists())
            .then(|| "playwright-core (npm ci --prefix tests/browser)".to_owned()),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !missing.is_empty() {
        let message = format!("browser test needs: {}", missing.join(", "));
        if std::env::var("CI").is_ok_and(|ci| ci == "true") {
            panic!("{message}");
        }
        eprintln!("SKIPPED the_inspector_works_in_headless_chromium: {message}");
        return;
    }
    let output = Command::new("node")
        .arg("inspector.mjs")
        .current_dir(root.join("tests/browser"))
        .env("HOOKSCOPE_BIN", env!("CARGO_BIN_EXE_hookscope"))
        .env("HOOKSCOPE_SCREENSHOT", root.join("target/inspector.png"))
        .env("CHROMIUM", &chromium)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "browser test failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("inspector browser test: ok"), "{stdout}");
}
