//! Scenarios: each is a folder under `tests/scenarios/` holding the mailwarden.toml
//! it runs with, the messages it sends (`NAME.eml`) and, for each message, what must
//! happen to it (`NAME.expect`). A test starts the scenario's stack and plays its
//! messages in order, so it reads like the transcript of a session.
//!
//! The config may use placeholders filled in at run time: `{{LISTEN}}` (the milter
//! address), `{{DNS}}` (knot), `{{CLAMD}}` (clamd over TCP), `{{DIR}}` (the temp dir)
//! and `{{PORT}}` (a free port). An unknown placeholder fails the test.
//!
//! A `.expect` file has one expectation per line (`#` starts a comment):
//!
//! - `from ADDRESS` — the MAIL FROM (default `alice@sender.test`)
//! - `client NAME` — who connects: `inside` (127.0.0.1, the default), `outside`
//!   (192.0.2.10, mail.sender.test) or `ADDR NAME [LOGIN]`
//! - `reply CODE` and `reply-has TEXT` — Postfix's final reply to the client
//! - `header NAME: VALUE`, `header-has NAME: TEXT`, `no-header NAME`, `has TEXT`
//!   — the message as delivered to the sink (found by its Message-ID)
//! - `decision-has TEXT` — mailwarden's decision log line for the message

use std::path::{Path, PathBuf};

use super::clamd::Clamd;
use super::knot::Knot;
use super::mailwarden::Mailwarden;
use super::postfix::Postfix;
use super::smtp::{Outcome, Peer};
use super::{fixture, free_port, require, shared_tempdir};

pub struct Scenario {
    pub name: String,
    pub dir: PathBuf,
}

/// What a scenario's stack runs beside mailwarden and Postfix.
#[derive(Default, Clone, Copy)]
pub struct Components {
    pub knot: bool,
    pub clamd: bool,
}

pub struct Stack {
    /// The placeholder values the config was filled with.
    pub vars: Vec<(&'static str, String)>,
    pub dir: tempfile::TempDir,
    pub knot: Option<Knot>,
    pub clamd: Option<Clamd>,
    pub mw: Mailwarden,
    pub postfix: Postfix,
    scenario: PathBuf,
}

impl Scenario {
    pub fn new(name: &str) -> Scenario {
        let dir = fixture(&format!("scenarios/{name}"));
        assert!(dir.is_dir(), "no scenario folder {}", dir.display());
        Scenario {
            name: name.to_owned(),
            dir,
        }
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// The scenario's `mailwarden.toml` with its placeholders filled in from `vars`.
    pub fn config(&self, vars: &[(&str, String)]) -> String {
        self.config_file("mailwarden.toml", vars)
    }

    /// Another config file of the scenario (one a reload switches to), filled in.
    pub fn config_file(&self, file: &str, vars: &[(&str, String)]) -> String {
        let path = self.path(file);
        let mut text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for (name, value) in vars {
            text = text.replace(&format!("{{{{{name}}}}}"), value);
        }
        if let Some(at) = text.find("{{") {
            panic!(
                "{}: placeholder {} has no value here",
                path.display(),
                &text[at..text[at..].find("}}").map_or(text.len(), |e| at + e + 2)]
            );
        }
        text
    }

    /// Starts knot and clamd when asked, then mailwarden on the scenario's config and
    /// a private Postfix using it; `None` (outside CI) when a component is missing.
    pub fn start(&self, with: Components) -> Option<Stack> {
        self.start_prepared(with, |_| Vec::new())
    }

    /// Like [`Scenario::start`], calling `prepare` with the temp dir before anything
    /// starts (to make the keys its config names, say); the zones it returns (name,
    /// zone file text) are served by knot beside the fixture zones.
    pub fn start_prepared(
        &self,
        with: Components,
        prepare: impl FnOnce(&Path) -> Vec<(String, String)>,
    ) -> Option<Stack> {
        let mut needed = vec![("postfix", "postfix"), ("smtp-sink", "postfix")];
        if with.knot {
            needed.extend([("knotd", "knot"), ("kdig", "knot-dnsutils")]);
        }
        if with.clamd {
            needed.push(("clamd", "clamav-daemon"));
        }
        if !needed.iter().all(|(p, pkg)| require(p, pkg)) {
            return None;
        }
        let dir = shared_tempdir(&format!("mw-{}", self.name));
        let zones = prepare(dir.path());
        let knot = with.knot.then(|| Knot::start_with(dir.path(), &zones));
        let clamd = with.clamd.then(|| Clamd::start(dir.path(), "30M"));
        let port = free_port();
        let mut vars = vec![
            ("LISTEN", format!("inet:127.0.0.1:{port}")),
            ("DIR", dir.path().display().to_string()),
            ("PORT", free_port().to_string()),
        ];
        if let Some(k) = &knot {
            vars.push(("DNS", k.address()));
        }
        if let Some(c) = &clamd {
            vars.push(("CLAMD", c.tcp()));
        }
        let mw = Mailwarden::start_with_config(dir.path(), port, &self.config(&vars));
        let postfix = Postfix::start(dir.path(), &mw.addr(), "tempfail");
        Some(Stack {
            vars,
            dir,
            knot,
            clamd,
            mw,
            postfix,
            scenario: self.dir.clone(),
        })
    }
}

/// The client Postfix sees, as an `.expect` file names it.
fn peer(spec: &str) -> Option<Peer<'_>> {
    match spec {
        "inside" => None,
        "outside" => Some(Peer {
            addr: "192.0.2.10",
            name: "mail.sender.test",
            helo: "mail.sender.test",
            login: None,
        }),
        other => {
            let mut words = other.split_whitespace();
            let addr = words.next().expect("client ADDR NAME [LOGIN]");
            let name = words.next().expect("client ADDR NAME [LOGIN]");
            Some(Peer {
                addr,
                name,
                helo: name,
                login: words.next(),
            })
        }
    }
}

fn message_id(message: &[u8]) -> String {
    let text = String::from_utf8_lossy(message);
    text.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("Message-ID")
                .then(|| value.trim().to_owned())
        })
        .expect("a scenario message has a Message-ID")
}

impl Stack {
    /// Sends `NAME.eml` as its `NAME.expect` says and checks every expectation.
    /// Returns Postfix's answer for anything the test checks beyond the file.
    pub fn play(&self, name: &str) -> Outcome {
        let read =
            |file: &Path| std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let message = read(&self.scenario.join(format!("{name}.eml")));
        let expect_file = self.scenario.join(format!("{name}.expect"));
        let expect = String::from_utf8(read(&expect_file)).unwrap();
        let lines: Vec<(&str, &str)> = expect
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(|l| l.split_once(' ').unwrap_or((l, "")))
            .collect();
        let value = |key: &str| lines.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        let from = value("from").unwrap_or("alice@sender.test");
        let outcome = match value("client").and_then(peer) {
            None => self.postfix.send_as_from(from, &message),
            Some(p) => self.postfix.send_as(p, from, &message),
        };
        let context = || format!("{name}: {outcome:?}\n{}", self.mw.log());
        let mut delivered = None;
        for (key, arg) in &lines {
            match *key {
                "from" | "client" => {}
                "reply" => assert_eq!(
                    outcome.last.code.to_string(),
                    *arg,
                    "reply code; {}",
                    context()
                ),
                "reply-has" => assert!(
                    outcome.last.text.contains(arg),
                    "reply should contain {arg:?}; {}",
                    context()
                ),
                "decision-has" => {
                    let queue_id = outcome
                        .queue_id()
                        .unwrap_or_else(|| panic!("{}", context()));
                    let line = self.mw.decision_line(&queue_id);
                    assert!(line.contains(arg), "{name}: {arg:?} not in {line}");
                }
                "header" | "header-has" | "no-header" | "has" => {
                    let d = delivered.get_or_insert_with(|| {
                        assert!(outcome.accepted(), "{}", context());
                        self.postfix.wait_delivered(&message_id(&message))
                    });
                    let raw = String::from_utf8_lossy(&d.raw).into_owned();
                    match *key {
                        "has" => assert!(raw.contains(arg), "{name}: {arg:?} not in\n{raw}"),
                        "no-header" => {
                            assert_eq!(d.header(arg), None, "{name}: {arg} in\n{raw}")
                        }
                        _ => {
                            let (header, want) = arg.split_once(": ").expect("NAME: VALUE");
                            let got = d.header(header);
                            let ok = match *key {
                                "header" => got.as_deref() == Some(want),
                                _ => got.as_deref().is_some_and(|g| g.contains(want)),
                            };
                            assert!(ok, "{name}: {header} is {got:?}, want {want:?}\n{raw}");
                        }
                    }
                }
                other => panic!("{}: unknown expectation {other:?}", expect_file.display()),
            }
        }
        outcome
    }
}
