use std::path::Path;
use std::time::Duration;

use super::*;
use crate::net::ListenAddr;

fn errors(source: &str) -> Vec<String> {
    match parse_str(source, Some(Path::new("/etc/mw.toml"))) {
        Ok(_) => panic!("expected errors for:\n{source}"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

/// Every error starts with one of `expected`, and there are no others.
fn assert_exactly(errs: &[String], expected: &[&str]) {
    for want in expected {
        assert!(
            errs.iter().any(|e| e.starts_with(want)),
            "missing {want:?} in\n{}",
            errs.join("\n")
        );
    }
    assert_eq!(errs.len(), expected.len(), "{}", errs.join("\n"));
}

#[test]
fn built_in_defaults() {
    let c = built_in();
    assert_eq!(c.source, None);
    assert_eq!(
        c.server.listen,
        vec!["inet:127.0.0.1:8891".parse::<ListenAddr>().unwrap()]
    );
    assert_eq!(c.server.socket_mode, 0o660);
    assert_eq!(c.server.max_sessions, 2000);
    assert_eq!(c.server.eom_timeout, Duration::from_secs(250));
    assert!(
        c.server.eom_timeout < Duration::from_secs(300),
        "below Postfix's content timeout"
    );
    assert_eq!(c.log.format, LogFormat::Text);
    assert!(c.dns.nameservers.is_empty());
    assert_eq!(c.inbound.on_dns_error, OnDnsError::Tempfail);
    assert_eq!(c.inbound.authserv_id, host_name());
    assert!(c.inbound.dmarc_enforce && c.inbound.skip_authenticated);
}

#[test]
fn shipped_sample_config_parses_and_documents_the_defaults() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/mailwarden.toml");
    let sample = load_file(&path).unwrap_or_else(|e| panic!("{e}"));
    let defaults = built_in();
    assert_eq!(sample.server, defaults.server);
    assert_eq!(sample.log, defaults.log);
    assert_eq!(sample.dns, defaults.dns);
    // The packaged file sets nothing: the authserv-id is the host name.
    assert_eq!(sample.inbound.authserv_id, defaults.inbound.authserv_id);

    // Uncommenting every key must give the same values: the comments tell the truth.
    let text = std::fs::read_to_string(&path).unwrap();
    let uncommented: String = text
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest)
                if rest.split_once(" = ").is_some_and(|(k, _)| {
                    k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                }) =>
            {
                rest
            }
            // A commented-out optional section: its keys follow it.
            Some(rest)
                if rest.starts_with('[')
                    && rest.ends_with(']')
                    && rest[1..rest.len() - 1]
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b == b'_') =>
            {
                rest
            }
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let all = parse_str(&uncommented, None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(all.server, defaults.server);
    assert_eq!(all.log, defaults.log);
    assert_eq!(all.dns.timeout, defaults.dns.timeout);
    assert_eq!(all.dns.attempts, defaults.dns.attempts);
    assert_eq!(
        all.inbound.trusted_networks,
        defaults.inbound.trusted_networks
    );
    let only_clamd = parse_str("[antivirus]\nclamd = \"tcp:127.0.0.1:3310\"\n", None)
        .unwrap()
        .antivirus;
    assert!(only_clamd.is_some());
    assert_eq!(all.antivirus, only_clamd);
}

#[test]
fn a_bogus_key_is_refused_in_every_table() {
    for table in [
        "",
        "[server]\n",
        "[log]\n",
        "[dns]\n",
        "[inbound]\n",
        "[signing]\n",
        "[[signing.keys]]\ndomain = \"a.test\"\nselector = \"s\"\nkey_file = \"k\"\n",
        "[antivirus]\nclamd = \"tcp:127.0.0.1:3310\"\n",
    ] {
        let source = format!("{table}bogus_key = 1\n");
        let errs = errors(&source);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(errs[0].contains("unknown field `bogus_key`"), "{}", errs[0]);
        let line = table.lines().count() + 1;
        assert!(
            errs[0].starts_with(&format!("/etc/mw.toml:{line}:")),
            "{}",
            errs[0]
        );
    }
}

#[test]
fn every_bad_value_is_reported_with_file_line_and_key() {
    let source = r#"
[server]
listen = ["inet:127.0.0.1:8891", "tcp:1.2.3.4:5"]
socket_mode = "rw-rw----"
max_sessions = 0
eom_timeout = "300"
progress_interval = "5m"
max_packet_size = "1KiB"

[log]
format = "xml"

[dns]
nameservers = ["127.0.0.1"]
timeout = "0s"

[inbound]
authserv_id = "mx example"
trusted_networks = ["10.0.0.0/33", "192.0.2.1"]
on_dns_error = "ignore"
"#;
    let errs = errors(source);
    let expected = [
        "/etc/mw.toml:3:34: server.listen: \"tcp:1.2.3.4:5\" must start with",
        "/etc/mw.toml:4:15: server.socket_mode:",
        "/etc/mw.toml:6:15: server.eom_timeout: \"300\" needs a unit",
        "/etc/mw.toml:7:21: server.progress_interval: must be shorter than server.eom_timeout",
        "/etc/mw.toml:5:16: server.max_sessions: 0 is out of range",
        "/etc/mw.toml:8:19: server.max_packet_size: must be at least",
        "/etc/mw.toml:11:10: log.format: \"xml\" is not a log format",
        "/etc/mw.toml:14:16: dns.nameservers: \"127.0.0.1\" is not IP:PORT",
        "/etc/mw.toml:15:11: dns.timeout: must be longer than zero",
        "/etc/mw.toml:18:15: inbound.authserv_id:",
        "/etc/mw.toml:19:21: inbound.trusted_networks: \"10.0.0.0/33\"",
        "/etc/mw.toml:20:16: inbound.on_dns_error:",
    ];
    assert_exactly(&errs, &expected);
}

#[test]
fn signing_keys_are_checked_with_their_index() {
    let source = r#"
[signing]
on_error = "drop"

[[signing.keys]]
domain = "example.com"
selector = "s2026"
key_file = "keys/example.pem"

[[signing.keys]]
domain = "bad domain"
selector = "s 1"
key_file = "k.pem"
algorithm = "rsa-sha1"
headers = ["Subject"]
expire = "5m"
canonicalization = "loose/relaxed"

[[signing.keys]]
selector = "x"
"#;
    let errs = errors(source);
    let expected = [
        "/etc/mw.toml:3:12: signing.on_error: \"drop\" is not an action",
        "/etc/mw.toml:11:10: signing.keys[1].domain: \"bad domain\" is not a domain name",
        "/etc/mw.toml:12:12: signing.keys[1].selector: \"s 1\" is not a selector",
        "/etc/mw.toml:14:13: signing.keys[1].algorithm: \"rsa-sha1\" is not a signing algorithm",
        "/etc/mw.toml:15:11: signing.keys[1].headers: must include From",
        "/etc/mw.toml:16:10: signing.keys[1].expire: must be at least 1h",
        "/etc/mw.toml:17:20: signing.keys[1].canonicalization: \"loose/relaxed\"",
        "/etc/mw.toml:19:1: signing.keys[2].domain: is required",
        "/etc/mw.toml:19:1: signing.keys[2].key_file: is required",
    ];
    assert_exactly(&errs, &expected);

    let c = parse_str(
        "[[signing.keys]]\ndomain = \"Example.COM\"\nselector = \"s1\"\nkey_file = \"k.pem\"\nexpire = \"7d\"\nsubdomains = true\n",
        Some(Path::new("/etc/mailwarden/mw.toml")),
    )
    .unwrap();
    let k = &c.signing.keys[0];
    assert_eq!(k.domain, "example.com");
    assert_eq!(
        k.key_file,
        Path::new("/etc/mailwarden/k.pem"),
        "relative to the config file"
    );
    assert_eq!(k.expire, Some(Duration::from_secs(7 * 86_400)));
    assert!(k.subdomains && k.headers.iter().any(|h| h == "From"));
    assert_eq!(c.signing.on_error, OnSignError::Accept);
}

#[test]
fn syntax_and_type_errors_have_positions() {
    let errs = errors("[server]\nlisten = \"inet:127.0.0.1:1\"\n");
    assert!(errs[0].starts_with("/etc/mw.toml:2:10:"), "{errs:?}");
    let errs = errors("[server\n");
    assert!(errs[0].starts_with("/etc/mw.toml:1:"), "{errs:?}");
}

#[test]
fn missing_file_is_named() {
    let err = load_file(Path::new("/nonexistent/mw.toml"))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("/nonexistent/mw.toml: cannot read the file:"),
        "{err}"
    );
}

#[test]
fn values_take_effect() {
    let c = parse_str(
        r#"
[server]
listen = ["unix:/run/mailwarden/milter.sock", "inet:[::1]:9000"]
socket_mode = "0600"
max_message_size = "10MiB"
[log]
format = "json"
[dns]
nameservers = ["127.0.0.1:5353"]
[inbound]
trusted_networks = ["192.0.2.0/24", "2001:db8::1"]
"#,
        None,
    )
    .unwrap();
    assert_eq!(c.server.listen.len(), 2);
    assert_eq!(c.server.socket_mode, 0o600);
    assert_eq!(c.server.session_settings().max_body, 10 << 20);
    assert_eq!(c.log.format, LogFormat::Json);
    assert_eq!(c.dns.nameservers[0].port(), 5353);
    assert_eq!(c.inbound.trusted_networks[1].prefix_len(), 128);
}

#[test]
fn antivirus_defaults_and_errors() {
    let c = parse_str(
        "[antivirus]\nclamd = \"unix:/run/clamav/clamd.ctl\"\n",
        None,
    )
    .unwrap();
    let av = c.antivirus.unwrap();
    assert_eq!(av.clamd, ClamdAddr::Unix("/run/clamav/clamd.ctl".into()));
    assert_eq!(
        (av.on_infected, av.on_error, av.on_oversize, av.mode),
        (
            OnInfected::Reject,
            OnScanError::Tempfail,
            OnOversize::Tempfail,
            ScanMode::Message
        )
    );
    assert_eq!(av.max_size, 25 << 20);
    assert_eq!(av.max_concurrent_scans, 10);
    assert!(av.scan_timeout < c.server.eom_timeout && av.header);
    assert!(built_in().antivirus.is_none());

    let source = r#"
[server]
max_message_size = "10MiB"

[antivirus]
on_infected = "delete"
on_error = "ignore"
on_oversize = "skip"
max_size = "20MiB"
max_concurrent_scans = 0
scan_timeout = "300s"
scan = "parts"
"#;
    assert_exactly(
        &errors(source),
        &[
            "/etc/mw.toml:5:1: antivirus.clamd: is required",
            "/etc/mw.toml:6:15: antivirus.on_infected: \"delete\" is not an action",
            "/etc/mw.toml:7:12: antivirus.on_error: \"ignore\" is not an action",
            "/etc/mw.toml:8:15: antivirus.on_oversize: \"skip\" is not an action",
            "/etc/mw.toml:9:12: antivirus.max_size: is larger than server.max_message_size",
            "/etc/mw.toml:10:24: antivirus.max_concurrent_scans: 0 is out of range",
            "/etc/mw.toml:11:16: antivirus.scan_timeout: must be shorter than server.eom_timeout",
            "/etc/mw.toml:12:8: antivirus.scan: \"parts\" is not a scan mode",
        ],
    );
}

#[test]
fn rule_errors_name_the_rule_and_the_field() {
    let source = r#"
[policy]
mode = "dry"

[[rules]]
name = "bad-regex"
when = { subject = { regex = "(unclosed" } }
then = { action = "reject" }

[[rules]]
name = "unknown-condition"
when = { sender_domian = "x.example" }
then = { action = "log" }

[[rules]]
name = "missing-field"
when = {}
then = [{ action = "add_header", name = "X-A" }, { action = "explode" }]

[[rules]]
name = "missing-list"
when = { sender_domain = { file = "/nonexistent/list.txt" } }
then = { action = "reject", code = 451 }

[[rules]]
name = "later"
when = { rate_limit = "per-user", spf = "maybe" }
then = { action = "accept" }

[[rules]]
name = "later"
when = {}
then = [{ action = "accept" }, { action = "discard" }]
"#;
    let errs = errors(source);
    let expected = [
        "/etc/mw.toml:3:8: policy.mode: \"dry\" is not a mode",
        "/etc/mw.toml:7:10: rules[0] (bad-regex).when.subject: bad regular expression",
        "/etc/mw.toml:12:10: rules[1] (unknown-condition).when.sender_domian: unknown condition",
        "/etc/mw.toml:18:8: rules[2] (missing-field).then[0].value: is required for add_header",
        "/etc/mw.toml:18:8: rules[2] (missing-field).then[1].action: unknown action \"explode\"",
        "/etc/mw.toml:22:10: rules[3] (missing-list).when.sender_domain: cannot read list file /nonexistent/list.txt",
        "/etc/mw.toml:23:29: rules[3] (missing-list).then.code: must be a 5xx code for reject",
        "/etc/mw.toml:27:10: rules[4] (later).when.rate_limit: \"per-user\" is not a [[rate_limits]] name (none are defined)",
        "/etc/mw.toml:27:35: rules[4] (later).when.spf: \"maybe\" is not one of",
        "/etc/mw.toml:31:8: rules[5].name: \"later\" is used by an earlier rule",
        "/etc/mw.toml:30:1: rules[5] (later).then: has more than one final action",
    ];
    assert_exactly(&errs, &expected);
}

#[test]
fn reject_text_with_enhanced_code_and_several_lines() {
    let c = parse_str(
        "[[rules]]\nname = \"r\"\nwhen = {}\nthen = { action = \"reject\", code = 554, text = [\"5.7.0 first line\", \"second line\"] }\n",
        None,
    )
    .unwrap();
    let crate::config::Action::Reject(reply) = &c.rules[0].then[0] else {
        panic!("{:?}", c.rules[0].then)
    };
    assert_eq!(reply.code(), 554);
    assert_eq!(reply.status().to_string(), "5.7.0");
    assert_eq!(reply.lines(), ["first line", "second line"]);
    assert!(c.rules[0].stop, "a final action stops by default");
}

/// Defect 9 of the hardening review: line breaks were accepted in rule names and
/// header names, which end up in log lines and in headers we write.
#[test]
fn control_characters_in_names_are_refused() {
    for (toml, key) in [
        (
            "[[rules]]\nname = \"a\\nb\"\nwhen = {}\nthen = { action = \"log\" }\n",
            "rules[0].name",
        ),
        (
            "[[rules]]\nname = \"tab\\there\"\nwhen = {}\nthen = { action = \"log\" }\n",
            "rules[0].name",
        ),
        (
            "[[rules]]\nname = \"h\"\nwhen = {}\nthen = { action = \"add_header\", name = \"X-A\\nB\", value = \"v\" }\n",
            "then.name",
        ),
        (
            "[[rules]]\nname = \"h\"\nwhen = { header = { name = \"X-A\\r\\nB\", glob = \"*\" } }\nthen = { action = \"log\" }\n",
            "when.header",
        ),
        (
            "[[rules]]\nname = \"h\"\nwhen = {}\nthen = { action = \"set_header\", name = \"X-A\", value = \"v\\r\\nBcc: x@y\" }\n",
            "then.value",
        ),
        (
            "[[signing.keys]]\ndomain = \"a.test\"\nselector = \"s\"\nkey_file = \"k\"\nheaders = [\"From\", \"X-A\\nB\"]\n",
            "signing.keys[0].headers",
        ),
    ] {
        let err = match parse_str(toml, None) {
            Ok(_) => panic!("accepted: {toml}"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains(key), "{toml}: {err}");
    }
}
