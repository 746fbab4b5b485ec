//! The layering rules of docs/ARCHITECTURE.md, checked over the source: no import
//! cycle among the library's top-level modules, and the modules that may print,
//! hold sockets or spawn the server are the ones the document names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The binary's own files: everything else under src/ is the library.
const BINARY: [&str; 4] = ["main.rs", "cli.rs", "commands.rs", "diagnostics.rs"];

/// Every library source file with the top-level module it belongs to.
fn library_files() -> Vec<(String, PathBuf)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut pending = vec![src.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let relative = path.strip_prefix(&src).unwrap();
                let top = relative.components().next().unwrap();
                let top = top.as_os_str().to_str().unwrap().trim_end_matches(".rs");
                let name = relative.to_str().unwrap();
                if top != "lib" && !BINARY.contains(&name) {
                    files.push((top.to_owned(), path));
                }
            }
        }
    }
    files.sort();
    files
}

/// The code of a file without comments and its `#[cfg(test)]` module (tests may
/// reach anywhere).
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let text = match text.find("#[cfg(test)]\nmod tests") {
        Some(end) => &text[..end],
        None => &text[..],
    };
    text.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The items lib.rs re-exports at the crate root, each with the top-level module it
/// comes from (`Alert` -> `alert`), read from its `pub use module::{...};` lines.
fn reexports() -> BTreeMap<String, String> {
    let lib =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    let mut found = BTreeMap::new();
    for statement in lib.split(';') {
        let Some(rest) = statement.trim().strip_prefix("pub use ") else {
            continue;
        };
        let Some((module, items)) = rest.split_once("::") else {
            continue;
        };
        let items = items.trim().trim_start_matches('{').trim_end_matches('}');
        for item in items.split(',') {
            let item = item.trim().rsplit("::").next().unwrap_or_default();
            if item.starts_with(|c: char| c.is_uppercase()) {
                found.insert(item.to_owned(), module.trim().to_owned());
            }
        }
    }
    found
}

/// Top-level module -> the top-level modules its code names as `crate::x` (or as a
/// re-exported `crate::Item`).
fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let reexports = reexports();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, path) in library_files() {
        let code = code(&path);
        let used = graph.entry(module.clone()).or_default();
        for (index, _) in code.match_indices("crate::") {
            let name: String = code[index + "crate::".len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            // A capitalised name is an item lib.rs re-exports (`crate::Alert`): it
            // belongs to the module it comes from.
            let name = match reexports.get(&name) {
                Some(home) => home.clone(),
                None => name,
            };
            if name != module && !name.is_empty() && name.chars().all(|c| !c.is_uppercase()) {
                used.insert(name);
            }
        }
    }
    graph
}

#[test]
fn the_library_modules_form_no_cycle() {
    let graph = dependencies();
    // Depth-first search; a module met again while still on the path closes a cycle.
    fn visit<'a>(
        module: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) {
        if let Some(start) = path.iter().position(|on_path| *on_path == module) {
            panic!(
                "import cycle: {} -> {module}\nall dependencies: {graph:#?}",
                path[start..].join(" -> ")
            );
        }
        if !done.insert(module) {
            return;
        }
        path.push(module);
        for next in graph.get(module).into_iter().flatten() {
            visit(next, graph, path, done);
        }
        path.pop();
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        visit(module, &graph, &mut Vec::new(), &mut done);
    }
    // The layers the document draws, bottom up: each may use only those below it.
    let expected = [
        ("values", vec![]),
        ("escape", vec![]),
        ("alert", vec!["values"]),
        ("respond", vec!["alert", "signature", "values"]),
        ("panther", vec!["alert"]),
        ("signature", vec![]),
        ("schemas", vec!["alert", "values"]),
        ("capture", vec!["alert", "escape", "signature"]),
        ("outgoing", vec!["values"]),
        ("send", vec!["capture", "outgoing", "values"]),
        ("forward", vec!["capture", "outgoing", "values"]),
        (
            "probe",
            vec![
                "escape",
                "outgoing",
                "output",
                "panther",
                "send",
                "signature",
                "values",
            ],
        ),
        ("shared", vec!["capture", "respond"]),
        ("output", vec!["capture", "escape", "shared"]),
        (
            "admin",
            vec![
                "alert", "capture", "forward", "outgoing", "respond", "send", "shared", "values",
            ],
        ),
        (
            "server",
            vec![
                "admin",
                "alert",
                "capture",
                "forward",
                "outgoing",
                "respond",
                "schemas",
                "shared",
                "signature",
                "values",
            ],
        ),
    ];
    for (module, allowed) in expected {
        let used = &graph[module];
        let beyond: Vec<&String> = used
            .iter()
            .filter(|name| !allowed.contains(&name.as_str()))
            .collect();
        assert!(
            beyond.is_empty(),
            "{module} uses {beyond:?}, beyond its layer {allowed:?}"
        );
    }
}

/// The library files whose code contains `needle`, by top-level module.
fn modules_containing(needle: &str) -> BTreeSet<String> {
    library_files()
        .into_iter()
        .filter(|(_, path)| code(path).contains(needle))
        .map(|(module, _)| module)
        .collect()
}

#[test]
fn only_output_prints_and_only_server_and_admin_hold_sockets() {
    for printing in [
        "println!",
        "eprintln!",
        "print!(",
        "io::stdout",
        "io::stderr",
    ] {
        let found = modules_containing(printing);
        assert!(
            found.iter().all(|module| module == "output"),
            "{printing} in {found:?}: the library prints only through output, when the binary asks"
        );
    }
    let sockets = modules_containing("TcpListener");
    assert_eq!(
        sockets,
        BTreeSet::from(["admin".to_owned(), "server".to_owned()])
    );
}

#[test]
fn server_tls_and_the_outgoing_client_each_have_one_home() {
    // The server's TLS (certificates, the acceptor) has one home; clients' trust is
    // the outgoing side's (forward, send).
    for needle in ["rustls::ServerConfig", "TlsAcceptor", "server_config("] {
        let found = modules_containing(needle);
        assert!(
            found.iter().all(|module| module == "server"),
            "{needle} in {found:?}: server TLS is set up in server only"
        );
    }
    // Clients' trust, the HTTP client and the hop-by-hop list have one home too: the
    // outgoing side, which forward, send, replay and the inspector's send share.
    for needle in [
        "rustls::ClientConfig",
        "hyper_util::client",
        "HOP_BY_HOP: [",
        "fn read_capped",
    ] {
        let found = modules_containing(needle);
        assert_eq!(
            found,
            BTreeSet::from(["outgoing".to_owned()]),
            "{needle}: the outgoing side is its one home"
        );
    }
    // `crate::Alert` in capture is a use of alert: the layer check sees it.
    assert_eq!(reexports().get("Alert").map(String::as_str), Some("alert"));
    assert!(dependencies()["capture"].contains("alert"));
}
