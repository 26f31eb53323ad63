//! The man pages against the code: every configuration key the parser accepts
//! is in mailwarden.toml(5), and every key the page names is one the parser
//! accepts. The parser's own keys are found by asking it: an unknown key `zzz`
//! in a table is refused with the list of the keys it expected there, and a key
//! is a table when `key = { zzz = 1 }` gets such an answer too.

use std::collections::BTreeSet;

/// The keys the parser expected where `toml` put `zzz`, if it said so.
fn expected(toml: &str) -> Option<Vec<String>> {
    let errors = mailwarden::config::parse_str(toml, None).err()?;
    let text = errors.to_string();
    let at = text.find("unknown field `zzz`, expected ")?;
    let rest = text[at..].lines().next()?.split_once("expected ")?.1;
    Some(
        rest.split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect(),
    )
}

/// Every key under `path`, where `wrap(inner)` is TOML putting `inner` there.
fn walk(path: &str, wrap: &dyn Fn(&str) -> String, out: &mut BTreeSet<String>) {
    for key in expected(&wrap("zzz = 1")).unwrap_or_default() {
        let full = format!("{path}.{key}");
        // Conditions and actions are the rules' vocabulary, not keys.
        if path == "rules[]" && (key == "when" || key == "then") {
            out.insert(full);
            continue;
        }
        let table = |inner: &str| wrap(&format!("{key} = {{ {inner} }}"));
        let array = |inner: &str| wrap(&format!("{key} = [{{ {inner} }}]"));
        if expected(&table("zzz = 1")).is_some() {
            walk(&full, &table, out);
        } else if expected(&array("zzz = 1")).is_some() {
            walk(&format!("{full}[]"), &array, out);
        } else {
            out.insert(full);
        }
    }
}

fn code_keys() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let sections = expected("zzz = 1").expect("the top level names its sections");
    assert!(sections.len() > 10, "{sections:?}");
    for section in sections {
        let table = |inner: &str| format!("{section} = {{ {inner} }}");
        let array = |inner: &str| format!("{section} = [{{ {inner} }}]");
        if expected(&table("zzz = 1")).is_some() {
            walk(&section, &table, &mut out);
        } else {
            walk(&format!("{section}[]"), &array, &mut out);
        }
    }
    out
}

/// The keys mailwarden.toml(5) describes: each `.B key` after a `.TP`.
fn page_keys() -> BTreeSet<String> {
    let page = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/man/mailwarden.toml.5"
    ))
    .expect("man/mailwarden.toml.5");
    let lines: Vec<&str> = page.lines().collect();
    lines
        .windows(2)
        .filter(|w| w[0] == ".TP")
        .filter_map(|w| w[1].strip_prefix(".B "))
        .filter(|k| {
            k.contains('.')
                && k.chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c == '.' || c == '[' || c == ']')
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_config_key_is_in_the_man_page_and_back() {
    let code = code_keys();
    let page = page_keys();
    assert!(code.len() > 100, "{} keys found in the parser", code.len());
    let missing: Vec<_> = code.difference(&page).collect();
    let unknown: Vec<_> = page.difference(&code).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "keys the parser accepts that mailwarden.toml(5) lacks: {missing:?}\n\
         keys mailwarden.toml(5) names that the parser refuses: {unknown:?}"
    );
}

/// Every command of the CLI has its section in mailwarden(8).
#[test]
fn every_command_is_in_mailwarden_8() {
    let page = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/man/mailwarden.8"))
        .expect("man/mailwarden.8");
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_mailwarden"))
        .arg("--help")
        .output()
        .expect("mailwarden --help");
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let commands: Vec<&str> = help
        .split("Commands:")
        .nth(1)
        .expect("a command list")
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .take_while(|c| !c.starts_with("Options"))
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() >= 5, "{commands:?}");
    for c in commands {
        let heading = format!(".B {}", c.replace('-', "\\-"));
        assert!(page.contains(&heading), "mailwarden(8) has no {heading}");
    }
}

/// The conditions mailwarden.toml(5) lists under rules[].when are those the
/// parser knows (its error for an unknown one lists them).
#[test]
fn the_man_page_lists_every_condition() {
    let errors = mailwarden::config::parse_str(
        "[[rules]]\nname = \"x\"\nwhen = { zzz = 1 }\nthen = { action = \"accept\" }\n",
        None,
    )
    .expect_err("an unknown condition is refused")
    .to_string();
    let known: BTreeSet<String> = errors
        .split_once("known: ")
        .expect("the error lists the known conditions")
        .1
        .lines()
        .next()
        .unwrap_or("")
        .split(", ")
        .map(str::to_owned)
        .filter(|c| c != "any" && c != "not")
        .collect();
    let page = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/man/mailwarden.toml.5"
    ))
    .unwrap();
    let entry = page
        .split(".B rules[].when\n")
        .nth(1)
        .and_then(|rest| rest.split(".TP").next())
        .expect("a rules[].when entry");
    let listed: BTreeSet<String> = entry
        .split_once("combine):")
        .expect("the entry's list")
        .1
        .split(|c: char| c == ',' || c.is_whitespace() || c == '.')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect();
    assert_eq!(known, listed);
}
