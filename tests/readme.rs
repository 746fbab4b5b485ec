//! The README's "Use from Rust tests" example is tests/readme_snippet.rs, word for
//! word: pasted into a project's tests/, it is a test that runs (`cargo test` runs
//! this copy).

fn rust_block_after(text: &str, marker: &str) -> String {
    let start = text
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} not found"));
    let rest = &text[start..];
    let open = rest
        .find("```rust\n")
        .or_else(|| rest.find("```\n"))
        .expect("a code block");
    let body = &rest[open..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("```").expect("the block ends")].to_owned()
}

#[test]
fn the_readme_example_is_a_test_that_runs() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let snippet = std::fs::read_to_string(format!("{root}/tests/readme_snippet.rs")).unwrap();
    let from_readme = rust_block_after(&readme, "## Use from Rust tests");
    assert!(from_readme.contains("Server::builder()"));
    assert!(from_readme.contains("#[tokio::test]"), "a test, not a main");
    assert_eq!(from_readme, snippet);
}

/// The long flags `hookscope ARGS --help` lists.
fn flags_in_help(args: &[&str]) -> std::collections::BTreeSet<String> {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_hookscope"))
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    help.lines()
        .filter_map(|line| {
            let line = line.trim_start();
            let line = line.strip_prefix("-p, ").unwrap_or(line);
            let flag: String = line
                .strip_prefix("--")?
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            (flag != "help" && flag != "version").then(|| format!("--{flag}"))
        })
        .collect()
}

/// The flags in the first column of the README table that follows `heading`.
fn flags_in_table(readme: &str, heading: &str) -> std::collections::BTreeSet<String> {
    let start = readme
        .find(heading)
        .unwrap_or_else(|| panic!("{heading} not found"));
    readme[start..]
        .lines()
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .filter_map(|line| {
            let first = line.split('|').nth(1)?.trim();
            if !first.starts_with("`-") {
                return None;
            }
            let flag = first.split("--").nth(1)?;
            let name: String = flag
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            Some(format!("--{name}"))
        })
        .collect()
}

#[test]
fn every_flag_in_help_is_in_the_readme_and_every_flag_there_exists() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    for (command, heading) in [
        ("listen", "## `hookscope listen` flags"),
        ("send", "## Testing your own receiver"),
    ] {
        let help = flags_in_help(&[command]);
        let table = flags_in_table(&readme, heading);
        assert!(help.len() > 5, "{command}: {help:?}");
        assert_eq!(
            help, table,
            "{command}: --help and the README's table differ"
        );
    }
    // The smaller commands have no table: each of their flags is named in the README.
    for command in ["cert", "replay", "validate", "export", "inspect", "import"] {
        for flag in flags_in_help(&[command]) {
            assert!(
                readme.contains(&flag),
                "hookscope {command} {flag} is not in the README"
            );
        }
    }
}

#[test]
fn every_curl_that_posts_an_alert_says_it_is_json() {
    // `curl -d` sends a form content type, which hookscope warns about (Panther always
    // sends application/json): the README's own examples must not trigger it.
    let readme = include_str!("../README.md");
    let posting: Vec<&str> = readme
        .lines()
        .filter(|line| line.contains("curl ") && line.contains(" -d "))
        .collect();
    assert!(!posting.is_empty());
    for line in posting {
        assert!(
            line.to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{line}"
        );
    }
}

#[test]
fn the_quick_start_says_how_long_the_first_build_takes_and_how_to_install() {
    let readme = include_str!("../README.md");
    let quick_start = &readme[readme.find("## Quick start").unwrap()..];
    let quick_start = &quick_start[..quick_start[3..].find("\n## ").unwrap()];
    assert!(
        quick_start.contains("cargo install --path ."),
        "{quick_start}"
    );
    assert!(
        quick_start.contains(" s on a fresh clone on 2 cores"),
        "a measured figure: {quick_start}"
    );
}
