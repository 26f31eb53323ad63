//! The files an admin installs are checked like code: every shipped config passes
//! `check-config`, a typo'd key in one is refused, the docker-compose file validates
//! with docker-compose itself, and the systemd unit keeps its promises.

mod common;

use std::path::Path;
use std::process::Command;

fn root(rel: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn check_config(path: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mailwarden"))
        .args(["check-config", "-c"])
        .arg(path)
        .output()
        .expect("run check-config")
}

#[test]
fn every_shipped_config_passes_check_config_and_a_typo_is_refused() {
    let mut checked = 0;
    for entry in std::fs::read_dir(root("conf")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let out = check_config(&path);
            assert!(
                out.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(String::from_utf8_lossy(&out.stdout).contains(": OK"));

            let dir = tempfile::tempdir().unwrap();
            let typo = dir.path().join("typo.toml");
            let text = std::fs::read_to_string(&path).unwrap().replacen(
                "[server]\n",
                "[server]\nlisten_adress = []\n",
                1,
            );
            std::fs::write(&typo, text).unwrap();
            let out = check_config(&typo);
            assert!(!out.status.success());
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains("typo.toml:") && stderr.contains("listen_adress"),
                "{stderr}"
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 1,
        "conf/ holds the sample config (the stack's are checked by docker_stack.rs)"
    );
}

#[test]
fn docker_compose_files_are_valid() {
    if !common::require("docker-compose", "docker-compose") {
        return;
    }
    for files in [
        &["docker-compose.yml"][..],
        &["docker-compose.yml", "docker-compose.fleet.yml"],
    ] {
        let mut cmd = Command::new("docker-compose");
        cmd.current_dir(root(""));
        for f in files {
            cmd.args(["-f", f]);
        }
        let out = cmd
            .args(["config", "-q"])
            .output()
            .expect("run docker-compose");
        assert!(
            out.status.success(),
            "{files:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Postfix's milter address is the one the stack's mailwarden listens on.
    let postfix = std::fs::read_to_string(root("docker/postfix/entrypoint.sh")).unwrap();
    for config in [
        "docker/stack/mailwarden.toml",
        "docker/stack/mailwarden-fleet.toml",
    ] {
        let ours = std::fs::read_to_string(root(config)).unwrap();
        assert!(
            postfix.contains("${MILTER:-mailwarden:8891}") && ours.contains("inet:0.0.0.0:8891"),
            "{config}"
        );
    }
}

#[test]
fn systemd_unit_is_hardened_and_its_commands_work() {
    let unit = std::fs::read_to_string(root("systemd/mailwarden.service")).unwrap();
    for directive in [
        "Type=notify",
        "User=mailwarden",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "RuntimeDirectory=mailwarden",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=\n",
    ] {
        assert!(unit.contains(directive), "missing {directive:?}");
    }
    // systemd must wait longer than the drain, or it kills sessions mid-message.
    let stop = unit
        .lines()
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .unwrap();
    let stop = mailwarden::config::parse_duration(stop).unwrap();
    assert!(stop > mailwarden::config::built_in().server.shutdown_timeout);
    // The commands it runs are ones the binary accepts.
    for line in unit.lines().filter(|l| l.starts_with("ExecStart")) {
        let args: Vec<&str> = line
            .split_once('=')
            .unwrap()
            .1
            .split_whitespace()
            .skip(1)
            .collect();
        assert_eq!(
            args[1..],
            ["-c", "/etc/mailwarden/mailwarden.toml"],
            "{line}"
        );
        let out = Command::new(env!("CARGO_BIN_EXE_mailwarden"))
            .arg(args[0])
            .arg("--help")
            .output()
            .unwrap();
        assert!(out.status.success(), "{line}");
    }
}

#[test]
fn reports_units_send_daily_into_the_store_the_daemon_writes() {
    let daemon = std::fs::read_to_string(root("systemd/mailwarden.service")).unwrap();
    let service = std::fs::read_to_string(root("systemd/mailwarden-reports.service")).unwrap();
    let timer = std::fs::read_to_string(root("systemd/mailwarden-reports.timer")).unwrap();
    // Both may write the default store, /var/lib/mailwarden/reports.db, under
    // ProtectSystem=strict.
    let store = mailwarden::config::parse_str("[reports]\n", None)
        .unwrap()
        .reports
        .unwrap()
        .store;
    assert!(store.starts_with("/var/lib/mailwarden"));
    for unit in [&daemon, &service] {
        assert!(
            unit.contains("StateDirectory=mailwarden\n") && unit.contains("ProtectSystem=strict")
        );
    }
    for directive in ["Type=oneshot", "User=mailwarden", "NoNewPrivileges=yes"] {
        assert!(service.contains(directive), "missing {directive:?}");
    }
    for directive in ["OnCalendar=", "Persistent=true", "WantedBy=timers.target"] {
        assert!(timer.contains(directive), "missing {directive:?}");
    }
    let exec = service
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap();
    let args: Vec<&str> = exec.split_whitespace().skip(1).collect();
    assert_eq!(
        args,
        ["reports", "send", "-c", "/etc/mailwarden/mailwarden.toml"]
    );
    let out = Command::new(env!("CARGO_BIN_EXE_mailwarden"))
        .args(["reports", "send", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
}

/// contrib/prometheus/alerts.yml passes `promtool check rules` (Prometheus's
/// own checker), and the Grafana dashboard is JSON with panels that query.
#[test]
fn prometheus_rules_and_grafana_dashboard() {
    if !common::require("promtool", "prometheus") {
        return;
    }
    let rules = root("contrib/prometheus/alerts.yml");
    let out = std::process::Command::new("promtool")
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .expect("promtool");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(said.contains("SUCCESS: 7 rules found"), "{said}");
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root("contrib/grafana/mailwarden.json")).unwrap(),
    )
    .expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 8);
    for p in panels {
        let expr = p["targets"][0]["expr"].as_str().unwrap_or("");
        assert!(expr.contains("mailwarden_"), "{p}");
    }
}
