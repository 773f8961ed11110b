//! The architecture as a table that the tests hold the code to: the layers
//! of `src/`, lowest first, and the layers each may import. A layer is a
//! module with everything inside it (`metadb/store` is
//! `src/metadb/store.rs` and `src/metadb/store/`); a file belongs to the
//! longest layer that holds it, and may import its own layer and those its
//! entry names, all of them lower in the table. So no import points up,
//! and siblings (the metadb's client, store and server; `cli` and the
//! operations) stay apart. Test code may import anything. `main.rs` is
//! above every layer.
//!
//! - `base`: leaves (times, names, counts, schedules, tokens, threads that
//!   tick); `http`: the transport of every server;
//! - `wire`: records as they travel (the original's records, the metadb
//!   API's bodies and paths, restore targets);
//! - `process`: child processes; `restic`: driving restic;
//! - `report`: why a job failed, what it achieved, who is told;
//! - `metadb/store` (SQL), `metadb/client` (HTTP and spool),
//!   `metadb/server` (routes, endpoints, auth), and `metadb`, the facade
//!   the commands use (embedded store or remote client);
//! - `handler`: what a handler makes of atoms, with hooks' substitutions;
//! - `config`: the validated configuration, sources and repositories;
//! - `init`: creating repositories, one host at a time;
//! - `backup`, `restore`, `maintenance`: the operations;
//! - `cli`: what was typed; `agent`: the daemon; `cmd`: the commands.

/// What a layer may import besides itself.
enum May {
    /// The layers named.
    Only(&'static [&'static str]),
    /// Every layer above in the table.
    Below,
}

/// The layers, lowest first.
const LAYERS: &[(&str, May)] = &[
    ("base", May::Only(&[])),
    ("http", May::Only(&["base"])),
    ("wire", May::Only(&["base"])),
    ("process", May::Only(&["base"])),
    ("restic", May::Only(&["base", "wire", "process"])),
    ("report", May::Only(&["base", "wire", "process", "restic"])),
    ("metadb/store", May::Only(&["base", "wire"])),
    ("metadb/client", May::Only(&["base", "wire"])),
    (
        "metadb/server",
        May::Only(&["base", "http", "wire", "report", "metadb/store"]),
    ),
    (
        "metadb",
        May::Only(&["base", "wire", "metadb/store", "metadb/client"]),
    ),
    (
        "handler",
        May::Only(&["base", "wire", "process", "restic", "report"]),
    ),
    (
        "config",
        May::Only(&[
            "base",
            "wire",
            "process",
            "restic",
            "report",
            "metadb",
            "metadb/client",
            "handler",
        ]),
    ),
    (
        "init",
        May::Only(&[
            "base", "wire", "process", "restic", "report", "metadb", "config",
        ]),
    ),
    (
        "backup",
        May::Only(&[
            "base", "wire", "process", "restic", "report", "metadb", "handler", "config", "init",
        ]),
    ),
    (
        "restore",
        May::Only(&[
            "base", "wire", "process", "restic", "report", "metadb", "handler", "config", "backup",
        ]),
    ),
    (
        "maintenance",
        May::Only(&[
            "base", "wire", "process", "restic", "report", "metadb", "handler", "config", "backup",
            "restore",
        ]),
    ),
    ("cli", May::Only(&["base", "wire"])),
    ("agent", May::Below),
    ("cmd", May::Below),
];

/// The index in [`LAYERS`] of the layer that holds `module` (a path of
/// `/`-separated segments), if any.
fn layer_of(module: &str) -> Option<usize> {
    let holds = |layer: &str| module == layer || module.starts_with(&format!("{layer}/"));
    (0..LAYERS.len())
        .filter(|&i| holds(LAYERS[i].0))
        .max_by_key(|&i| LAYERS[i].0.len())
}

/// Whether the layer at `from` may import the layer at `to`.
fn may_import(from: usize, to: usize) -> bool {
    from == to
        || match LAYERS[from].1 {
            May::Below => to < from,
            May::Only(names) => names.contains(&LAYERS[to].0),
        }
}

/// The module paths that the non-test `code` of `module` names through
/// `crate::` or `super::` (resolved from `module`), `/`-separated.
fn imports(module: &str, code: &str) -> Vec<String> {
    let code = code.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
    let code: String = code
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let parent: Vec<&str> = module.split('/').collect();
    let parent = &parent[..parent.len().saturating_sub(1)];
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    let mut at = 0;
    while at < code.len() {
        let rest = &code[at..];
        let starts_path = at == 0 || {
            let before = bytes[at - 1];
            !(before.is_ascii_alphanumeric() || before == b'_' || before == b':')
        };
        let root = if !starts_path {
            None
        } else if rest.starts_with("crate::") {
            Some((Vec::new(), "crate::".len()))
        } else if rest.starts_with("super::") {
            Some((parent.to_vec(), "super::".len()))
        } else {
            None
        };
        let Some((mut base, skip)) = root else {
            at += rest.chars().next().map_or(1, char::len_utf8);
            continue;
        };
        let mut tail = &rest[skip..];
        while let Some(after) = tail.strip_prefix("super::") {
            base.pop();
            tail = after;
        }
        let (paths, used) = tree(tail);
        for path in paths.iter().filter(|p| !p.is_empty()) {
            let full: Vec<&str> = base.iter().copied().chain(path.split('/')).collect();
            found.push(full.join("/"));
        }
        at += skip + used.max(1);
    }
    found
}

/// The paths of a use tree at the start of `text` (`a::b`, `a::{b, c::d}`,
/// `a::{self, b as c}`), `/`-separated, and how many bytes it took.
fn tree(text: &str) -> (Vec<String>, usize) {
    let ident = |t: &str| {
        t.find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(t.len())
    };
    let skip = |t: &str| {
        t.len()
            - t.trim_start_matches(|c: char| c.is_whitespace() || c == ',')
                .len()
    };
    let mut prefix = Vec::new();
    let mut at = 0;
    loop {
        if text[at..].starts_with('{') {
            at += 1;
            let mut paths = Vec::new();
            loop {
                at += skip(&text[at..]);
                if let Some(rest) = text[at..].strip_prefix("as ") {
                    at = text.len() - rest.len();
                    at += skip(&text[at..]);
                    at += ident(&text[at..]);
                    continue;
                }
                if at >= text.len() || text[at..].starts_with('}') {
                    return (paths, (at + 1).min(text.len()));
                }
                let (sub, took) = tree(&text[at..]);
                if took == 0 {
                    return (paths, at);
                }
                for path in sub {
                    let full: Vec<&str> = prefix
                        .iter()
                        .copied()
                        .chain((path != "self").then_some(path.as_str()))
                        .collect();
                    paths.push(full.join("/"));
                }
                at += took;
            }
        }
        let len = ident(&text[at..]);
        if len == 0 {
            return (vec![prefix.join("/")], at);
        }
        prefix.push(&text[at..at + len]);
        at += len;
        if text[at..].starts_with("::") {
            at += 2;
        } else {
            return (vec![prefix.join("/")], at);
        }
    }
}

/// Every import of `module`'s `code` that its layer may not make, as
/// `module -> path`.
fn violations(module: &str, code: &str) -> Vec<String> {
    let Some(from) = layer_of(module) else {
        return vec![format!("{module}: in no layer of the table")];
    };
    imports(module, code)
        .into_iter()
        .filter(|path| !layer_of(path).is_some_and(|to| may_import(from, to)))
        .map(|path| format!("{module} -> {path}"))
        .collect()
}

/// Every `.rs` file below `dir`, with its module path relative to `src/`.
fn sources(src: &std::path::Path, dir: &std::path::Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("src/ is readable")
        .map(|e| e.expect("src/ is readable").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            sources(src, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path.strip_prefix(src).expect("below src/");
            let module = relative.with_extension("").to_string_lossy().into_owned();
            let code = std::fs::read_to_string(&path).expect("a source file is UTF-8");
            out.push((module, code));
        }
    }
}

#[test]
fn no_import_points_up_or_across() {
    for (i, (name, may)) in LAYERS.iter().enumerate() {
        if let May::Only(names) = may {
            for lower in *names {
                let at = LAYERS.iter().position(|(n, _)| n == lower);
                assert!(
                    at.is_some_and(|at| at < i),
                    "{name} names {lower}, not a lower layer"
                );
            }
        }
    }
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &src, &mut files);
    let mut wrong = Vec::new();
    for (module, code) in &files {
        // The crate root is above every layer; a `tests` file is test code.
        if module == "main" || module.ends_with("/tests") || module == "layers" {
            continue;
        }
        wrong.extend(violations(module, code));
    }
    assert!(
        wrong.is_empty(),
        "imports against src/layers.rs:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn an_upward_or_sideways_import_is_caught_however_written() {
    let up = |module: &str, code: &str| violations(module, code);
    assert_eq!(
        up("base/time", "use crate::restore::plan;"),
        ["base/time -> restore/plan"]
    );
    assert_eq!(
        up("cli", "use crate::{base::count, cmd::{self, Exit}};"),
        ["cli -> cmd", "cli -> cmd/Exit"]
    );
    assert_eq!(
        up(
            "metadb/client/spool",
            "fn f() { crate::metadb::server::route::find(p) }"
        ),
        ["metadb/client/spool -> metadb/server/route/find"]
    );
    assert_eq!(
        up("metadb/store/copies", "use super::super::client::Remote;"),
        ["metadb/store/copies -> metadb/client/Remote"]
    );
    assert_eq!(
        up("newthing", "use crate::base::time;"),
        ["newthing: in no layer of the table"]
    );
    // Allowed: down, within the layer, comments and tests.
    assert!(up("restore", "use crate::{backup::copy::Reader, base::time};").is_empty());
    assert!(up(
        "metadb/store/copies",
        "use super::record;\n// crate::cmd::x"
    )
    .is_empty());
    assert!(up(
        "base/time",
        "#[cfg(test)]\nmod tests {\n use crate::cmd::Exit;\n}"
    )
    .is_empty());
}
