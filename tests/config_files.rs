//! Every configuration we ship or test with (`conf/*.toml`, every `.toml` of a
//! scenario) goes through the real parser, and an
//! unknown key is refused in every table of it: each section, each entry of an array
//! of tables (`[[rules]]`, `[[signing.keys]]`, `[[rate_limit]]`), and each table
//! inside those. The error names the file and the line the key is on.

use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

const BOGUS: &str = "mailwarden_bogus_key";

fn root(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// `conf/*.toml` and every scenario's `mailwarden.toml`.
fn config_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(root("conf")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            files.push(path);
        }
    }
    for entry in std::fs::read_dir(root("tests/scenarios")).unwrap() {
        for config in std::fs::read_dir(entry.unwrap().path()).unwrap() {
            let path = config.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// A scenario config with its run-time placeholders filled with values that parse.
fn text_of(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = text.clone();
    for (name, value) in [
        ("LISTEN", "inet:127.0.0.1:1"),
        ("DNS", "127.0.0.1:53"),
        ("CLAMD", "tcp:127.0.0.1:3310"),
        ("DIR", "/nonexistent"),
        ("RELAY", "127.0.0.1:25"),
        ("PORT", "1"),
    ] {
        out = out.replace(&format!("{{{{{name}}}}}"), value);
    }
    assert!(
        !out.contains("{{"),
        "{}: unknown placeholder",
        path.display()
    );
    out
}

/// Where each table of the document starts in `text`, as the place to write an
/// extra key: after the `{` of an inline table, on the line after a `[header]`, at
/// the top for the root. Tables made implicitly by dotted keys have no place.
fn table_places(text: &str) -> Vec<(String, usize, bool)> {
    fn walk(
        text: &str,
        name: String,
        value: &Spanned<DeValue<'_>>,
        out: &mut Vec<(String, usize, bool)>,
    ) {
        match value.get_ref() {
            DeValue::Table(table) => {
                let start = value.span().start;
                match text.as_bytes().get(start) {
                    Some(b'{') => out.push((name.clone(), start + 1, true)),
                    Some(b'[') => {
                        let eol = text[start..]
                            .find('\n')
                            .map_or(text.len(), |i| start + i + 1);
                        out.push((name.clone(), eol, false));
                    }
                    _ => {}
                }
                for (key, v) in table {
                    walk(text, format!("{name}.{}", key.get_ref()), v, out);
                }
            }
            DeValue::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    walk(text, format!("{name}[{i}]"), v, out);
                }
            }
            _ => {}
        }
    }
    let root = DeTable::parse(text).unwrap();
    let mut out = vec![("(top level)".to_owned(), 0, false)];
    for (key, v) in root.get_ref() {
        walk(text, key.get_ref().to_string(), v, &mut out);
    }
    out
}

#[test]
fn every_config_parses_and_refuses_an_unknown_key_in_every_table() {
    let files = config_files();
    assert!(
        files.len() >= 3,
        "conf/ and tests/scenarios hold configs: {files:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for path in files {
        let text = text_of(&path);
        if let Err(e) = mailwarden::config::parse_str(&text, Some(&path)) {
            panic!("{}: {e}", path.display());
        }
        for (table, at, inline) in table_places(&text) {
            let insert = if inline {
                let empty = text[at..].trim_start().starts_with('}');
                format!(" {BOGUS} = 1{}", if empty { " " } else { ", " })
            } else {
                format!("{BOGUS} = 1\n")
            };
            let mut changed = text.clone();
            changed.insert_str(at, &insert);
            let line = changed[..at].matches('\n').count() + 1;
            let file = dir.path().join("bogus.toml");
            std::fs::write(&file, &changed).unwrap();
            let err = match mailwarden::config::parse_str(&changed, Some(&file)) {
                Ok(_) => panic!(
                    "{}: an unknown key in table {table} was accepted",
                    path.display()
                ),
                Err(e) => e.to_string(),
            };
            let place = format!("{}:{line}:", file.display());
            assert!(
                err.contains(&place) && err.contains(BOGUS),
                "{}: table {table}: the error should name {place} and {BOGUS}: {err}",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} tables checked");
}

/// `check-config | head`: output to a pipe whose reader is gone ends the
/// command quietly (SIGPIPE), never with a panic from println!.
#[test]
fn check_config_into_a_closed_pipe_does_not_panic() {
    let config = root("conf/mailwarden.toml");
    let script = format!(
        "(sleep 0.5; '{}' check-config -c '{}') | true",
        env!("CARGO_BIN_EXE_mailwarden"),
        config.display()
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .expect("sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stderr.contains("Broken pipe"), "{stderr}");
}

/// With no -c, `MAILWARDEN_CONFIG` names the file, and check-config says so.
#[test]
fn mailwarden_config_names_the_file_without_c() {
    let config = root("conf/mailwarden.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailwarden"))
        .arg("check-config")
        .env("MAILWARDEN_CONFIG", &config)
        .output()
        .expect("mailwarden");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with(&format!(
            "{} (from MAILWARDEN_CONFIG): OK",
            config.display()
        )),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
