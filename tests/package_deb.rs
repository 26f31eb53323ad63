//! The Debian package: `scripts/package.sh` builds it (from the debug build
//! here), `lintian` reports no error, `dpkg -i` installs it on this machine and
//! it holds what an admin expects (user, paths and modes, the conffile, man
//! pages, units systemd-analyze accepts, `check-config` reading the default
//! path), and `dpkg --purge` takes it away again.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn mode(path: &str) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .permissions()
        .mode()
        & 0o7777
}

fn purge() {
    let _ = Command::new("dpkg")
        .args(["--purge", "mailwarden"])
        .output();
}

#[test]
fn the_deb_installs_what_an_admin_expects() {
    if !common::require("dpkg-deb", "dpkg")
        || !common::require("lintian", "lintian")
        || !common::require("systemd-analyze", "systemd")
        || !common::require_cargo_tool("deb", "cargo-deb")
    {
        return;
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let (ok, out) = run(Command::new("bash")
        .arg(format!("{root}/scripts/package.sh"))
        .env("PROFILE", "dev"));
    assert!(ok, "{out}");
    let deb = out.lines().last().unwrap_or("").trim().to_owned();
    assert!(
        deb.ends_with(".deb") && Path::new(root).join(&deb).exists(),
        "{out}"
    );
    let deb = Path::new(root).join(deb);

    let (ok, lint) = run(Command::new("lintian")
        .args(["--fail-on", "error", "--tag-display-limit", "0"])
        .arg(&deb));
    assert!(ok && !lint.lines().any(|l| l.starts_with("E:")), "{lint}");
    if !lint.trim().is_empty() {
        eprintln!("lintian (no errors):\n{lint}");
    }

    purge();
    let (ok, out) = run(Command::new("dpkg").arg("-i").arg(&deb));
    assert!(ok, "{out}");
    let installed = std::panic::catch_unwind(|| {
        // The user and its directories.
        let (ok, user) = run(Command::new("getent").args(["passwd", "mailwarden"]));
        assert!(ok && user.contains("/usr/sbin/nologin"), "{user}");
        let state = std::fs::metadata("/var/lib/mailwarden").expect("/var/lib/mailwarden");
        assert_eq!(mode("/var/lib/mailwarden"), 0o750);
        let (_, uid) = run(Command::new("id").args(["-u", "mailwarden"]));
        assert_eq!(state.uid().to_string(), uid.trim());
        // Binary, conffile, man pages, completions, units, docs.
        assert_eq!(mode("/usr/bin/mailwarden"), 0o755);
        assert_eq!(mode("/etc/mailwarden/mailwarden.toml"), 0o644);
        let (_, conffiles) =
            run(Command::new("dpkg-query").args(["-W", "-f=${Conffiles}", "mailwarden"]));
        assert!(
            conffiles.contains("/etc/mailwarden/mailwarden.toml"),
            "{conffiles}"
        );
        for path in [
            "/usr/share/man/man8/mailwarden.8.gz",
            "/usr/share/man/man5/mailwarden.toml.5.gz",
            "/usr/share/bash-completion/completions/mailwarden",
            "/usr/lib/sysusers.d/mailwarden.conf",
            "/usr/lib/tmpfiles.d/mailwarden.conf",
            "/usr/share/doc/mailwarden/copyright",
            "/usr/share/doc/mailwarden/examples/mailwarden.toml",
            "/usr/share/doc/mailwarden/contrib/prometheus/alerts.yml",
        ] {
            assert!(Path::new(path).exists(), "{path} missing");
        }
        // check-config without -c reads the packaged file.
        let (ok, out) = run(Command::new("/usr/bin/mailwarden")
            .arg("check-config")
            .env_remove("MAILWARDEN_CONFIG"));
        assert!(
            ok && out.starts_with("/etc/mailwarden/mailwarden.toml (from the default path): OK"),
            "{out}"
        );
        let (ok, out) = run(Command::new("systemd-analyze").args([
            "verify",
            "/lib/systemd/system/mailwarden.service",
            "/lib/systemd/system/mailwarden-reports.service",
            "/lib/systemd/system/mailwarden-reports.timer",
        ]));
        assert!(ok, "{out}");
    });
    purge();
    if let Err(e) = installed {
        std::panic::resume_unwind(e);
    }
    assert!(!Path::new("/etc/mailwarden/mailwarden.toml").exists());
    assert!(!Path::new("/usr/bin/mailwarden").exists());
}
