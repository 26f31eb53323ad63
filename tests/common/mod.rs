//! The integration harness: real components started in a temp dir on loopback ports
//! chosen at run time. Later issues add knot and clamd beside Postfix here.
//!
//! A missing component fails the test under `CI=true`; elsewhere the test prints a
//! loud SKIPPED line and returns (run `scripts/test.sh`, which installs everything).

#![allow(dead_code)]

pub mod admin;
pub mod clamd;
pub mod compose;
pub mod dkimpy;
pub mod dns_fault;
pub mod knot;
pub mod mailwarden;
pub mod parsedmarc;
pub mod postfix;
pub mod redis;
pub mod scenario;
pub mod smtp;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// True when `program` is on this machine. Under CI a missing one is a failure.
pub fn require(program: &str, package: &str) -> bool {
    let found = which(program).is_some();
    if !found {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{program} is missing (apt package {package}); CI=true never skips a test");
        }
        // Straight to stderr, past the test harness's capture, so a skip is never silent.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: {program} is not installed (apt package {package}); run scripts/test.sh"
        );
    }
    found
}

/// Like `require`, for a cargo subcommand (`cargo deb`) installed with
/// `cargo install CRATE`.
pub fn require_cargo_tool(subcommand: &str, krate: &str) -> bool {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let found = std::process::Command::new(cargo)
        .args([subcommand, "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "cargo {subcommand} is missing (cargo install {krate}); CI=true never skips a test"
            );
        }
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: cargo {subcommand} is not installed (cargo install {krate}); run scripts/test.sh"
        );
    }
    found
}

pub fn which(program: &str) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&paths)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// A temp dir with mailwarden (on its defaults plus `server_keys`) and a private
/// Postfix using it as smtpd and non-smtpd milter with `milter_default_action =
/// tempfail`; `None` (outside CI) when Postfix is not installed.
pub fn postfix_stack(
    prefix: &str,
    server_keys: &str,
) -> Option<(tempfile::TempDir, mailwarden::Mailwarden, postfix::Postfix)> {
    if !require("postfix", "postfix") || !require("smtp-sink", "postfix") {
        return None;
    }
    let dir = shared_tempdir(prefix);
    let mw = mailwarden::Mailwarden::start(dir.path(), server_keys, "");
    let postfix = postfix::Postfix::start(dir.path(), &mw.addr(), "tempfail");
    Some((dir, mw, postfix))
}

/// Like [`postfix_stack`], plus a knot server with the auth fixture zones that
/// mailwarden uses for DNS. `inbound` is the body of mailwarden's `[inbound]`
/// section after `authserv_id = "mx.harness.test"`.
pub fn auth_stack(
    prefix: &str,
    inbound: &str,
) -> Option<(
    tempfile::TempDir,
    knot::Knot,
    mailwarden::Mailwarden,
    postfix::Postfix,
)> {
    if !require("postfix", "postfix")
        || !require("smtp-sink", "postfix")
        || !require("knotd", "knot")
        || !require("kdig", "knot-dnsutils")
    {
        return None;
    }
    let dir = shared_tempdir(prefix);
    let knot = knot::Knot::start(dir.path());
    let extra = format!(
        "[dns]\nnameservers = [\"{}\"]\ntimeout = \"1s\"\nattempts = 1\n\n\
         [inbound]\nauthserv_id = \"mx.harness.test\"\n{inbound}\n",
        knot.address()
    );
    let mw = mailwarden::Mailwarden::start(dir.path(), "", &extra);
    let postfix = postfix::Postfix::start(dir.path(), &mw.addr(), "tempfail");
    Some((dir, knot, mw, postfix))
}

/// Parses an Authentication-Results header with Python's `authres` (an RFC 8601
/// parser we did not write) and returns (authserv-id, [(method, result, ptype.prop
/// = value...)]).
pub fn authres_parse(header_value: &str) -> serde_json::Value {
    let script = r#"
import authres, json, sys
h = sys.stdin.read().replace(chr(13), "").replace(chr(10), "")
r = authres.AuthenticationResultsHeader.parse("Authentication-Results: " + h)
print(json.dumps({"authserv_id": r.authserv_id, "results": [
    {"method": x.method, "result": x.result,
     "props": {p.type + "." + p.name: p.value for p in x.properties}}
    for x in r.results]}))
"#;
    python_json("authres", script, &[], header_value.as_bytes())
}

/// Runs a Python `script` (with `args` after it) on `stdin` and parses what it
/// prints as JSON: how the tests ask tools we did not write (authres, dkimpy,
/// parsedmarc, Python's email package). A failing script fails the test, with
/// its error and its input.
pub fn python_json(tool: &str, script: &str, args: &[&str], stdin: &[u8]) -> serde_json::Value {
    use std::io::Write;
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write to python3");
    let out = child.wait_with_output().expect("python3");
    assert!(
        out.status.success(),
        "{tool} failed: {}\ninput: {}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&stdin[..stdin.len().min(4000)])
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{tool} JSON: {e}"))
}

/// Runs `mailwarden scan --json -c CONFIG` on `message` as if `ip` (saying `helo`)
/// sent it with MAIL FROM `from`, and returns the parsed JSON.
pub fn scan_json(
    config: &Path,
    ip: &str,
    helo: &str,
    from: &str,
    message: &Path,
) -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mailwarden"))
        .args(["scan", "--json", "-c"])
        .arg(config)
        .args([
            "--ip",
            ip,
            "--helo",
            helo,
            "--from",
            from,
            "--rcpt",
            "bob@dest.test",
        ])
        .arg(message)
        .output()
        .expect("run mailwarden scan");
    assert!(
        out.status.success(),
        "scan of {} failed: {}",
        message.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("scan prints JSON")
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// A temp dir that the unprivileged Postfix daemons can traverse.
pub fn shared_tempdir(prefix: &str) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("create a temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod temp dir");
    dir
}

/// Polls `check` until it returns `Some` or `limit` passes.
pub fn wait_for<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return Some(v);
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// True once something accepts TCP connections on the loopback `port`.
pub fn wait_listening(port: u16, limit: Duration) -> bool {
    wait_for(limit, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    })
    .is_some()
}

/// Reads a file as (lossy) text, or empty when it is not there yet.
pub fn read_text(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// The path of a fixture file beside the tests.
pub fn fixture(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(relative)
}
