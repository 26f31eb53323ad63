//! The docker-compose stack (docker-compose.yml, images from scripts/images.sh)
//! under a private project name, its SMTP and DNS ports chosen at run time. Its
//! compose network's addresses are fixed (172.28.0.0/24), so one stack runs at a
//! time: `up` takes a lock that the stack holds until it is dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use super::{free_port, wait_for};

static ONE_STACK: Mutex<()> = Mutex::new(());
static IMAGES: OnceLock<Result<(), String>> = OnceLock::new();

pub struct Stack {
    pub project: String,
    pub smtp_port: u16,
    pub dns_port: u16,
    files: Vec<String>,
    root: PathBuf,
    _one: MutexGuard<'static, ()>,
}

/// True when docker and docker-compose are here and the engine answers; under
/// CI a missing one fails the test.
pub fn available() -> bool {
    if !super::require("docker", "docker.io") || !super::require("docker-compose", "docker-compose")
    {
        return false;
    }
    let engine = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        engine,
        "the Docker Engine does not answer (docker version); start it"
    );
    true
}

/// Builds the images once per test binary, mailwarden's from this test build's
/// binary (scripts/images.sh with BIN=).
fn images(root: &Path) {
    let built = IMAGES.get_or_init(|| {
        let out = Command::new(root.join("scripts/images.sh"))
            .env("BIN", env!("CARGO_BIN_EXE_mailwarden"))
            .current_dir(root)
            .output()
            .map_err(|e| format!("scripts/images.sh: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "scripts/images.sh failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(e) = built {
        panic!("{e}");
    }
}

impl Stack {
    /// `docker-compose -p PROJECT -f FILE... up -d` plus `extra` (e.g. `--scale
    /// mailwarden=2`), after taking down what a crashed earlier run left; waits
    /// until every container is healthy.
    pub fn up(project: &str, files: &[&str], extra: &[&str]) -> Stack {
        let one = ONE_STACK.lock().unwrap_or_else(|e| e.into_inner());
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        images(&root);
        let stack = Stack {
            project: project.to_owned(),
            smtp_port: free_port(),
            dns_port: free_port(),
            files: files.iter().map(|f| (*f).to_owned()).collect(),
            root,
            _one: one,
        };
        stack.down();
        let mut args = vec!["up", "-d"];
        args.extend_from_slice(extra);
        let out = stack.compose(&args);
        assert!(
            out.status.success(),
            "docker-compose up: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        stack.wait_healthy(Duration::from_secs(180));
        stack
    }

    /// Runs docker-compose with this stack's project, files and ports.
    pub fn compose(&self, args: &[&str]) -> Output {
        self.command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run docker-compose")
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new("docker-compose");
        cmd.current_dir(&self.root)
            .env("SMTP_PORT", self.smtp_port.to_string())
            .env("DNS_PORT", self.dns_port.to_string())
            .args(["-p", &self.project]);
        for f in &self.files {
            cmd.args(["-f", f]);
        }
        cmd
    }

    /// `docker-compose exec -T SERVICE sh -c SCRIPT` with `stdin`; its stdout.
    pub fn exec(&self, service: &str, script: &str, stdin: &[u8]) -> String {
        use std::io::Write;
        let mut child = self
            .command()
            .args(["exec", "-T", service, "sh", "-c", script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker-compose exec");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin)
            .expect("write to docker-compose exec");
        let out = child.wait_with_output().expect("docker-compose exec");
        assert!(
            out.status.success(),
            "{service}: {script}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The ids of a service's containers (all of them when `service` is empty).
    pub fn containers(&self, service: &str) -> Vec<String> {
        let mut args = vec!["ps", "-q"];
        if !service.is_empty() {
            args.push(service);
        }
        String::from_utf8_lossy(&self.compose(&args).stdout)
            .lines()
            .map(str::to_owned)
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// Waits until every container with a health check reports healthy, the
    /// others run, and one-shot ones (keys) have finished well.
    pub fn wait_healthy(&self, limit: Duration) {
        let ok = wait_for(limit, || {
            let ids = self.containers("");
            let states: Vec<String> = ids
                .iter()
                .map(|id| {
                    docker(&[
                        "inspect",
                        "-f",
                        "{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.ExitCode}}{{end}}",
                        id,
                    ])
                })
                .collect();
            (!states.is_empty()
                && states
                    .iter()
                    .all(|s| s == "running/healthy" || s == "running/0" || s == "exited/0"))
            .then_some(())
        });
        if ok.is_none() {
            panic!("the stack is not healthy after {limit:?}:\n{}", self.logs());
        }
    }

    /// The last lines of every container's log.
    pub fn logs(&self) -> String {
        let out = self.compose(&["logs", "--no-color", "--tail", "40"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The whole log of one container.
    pub fn container_log(&self, id: &str) -> String {
        let out = Command::new("docker")
            .args(["logs", id])
            .output()
            .expect("docker logs");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// The compose network's name.
    pub fn network(&self) -> String {
        format!("{}_mail", self.project)
    }

    /// Every message in the mailbox container's Maildir whose text holds `needle`.
    pub fn delivered(&self, needle: &str) -> Vec<Vec<u8>> {
        let listing = self.exec(
            "mailbox",
            "for f in /var/mail/vhosts/inbox/new/* /var/mail/vhosts/inbox/cur/*; do \
             [ -f \"$f\" ] && echo \"$f\"; done; true",
            b"",
        );
        listing
            .lines()
            .map(|f| {
                self.exec("mailbox", &format!("cat '{f}'"), b"")
                    .into_bytes()
            })
            .filter(|m| String::from_utf8_lossy(m).contains(needle))
            .collect()
    }

    /// Waits (up to `limit`) for the message holding `needle` in the mailbox.
    pub fn wait_delivered(&self, needle: &str, limit: Duration) -> Vec<u8> {
        wait_for(limit, || self.delivered(needle).into_iter().next()).unwrap_or_else(|| {
            panic!(
                "{needle} was not delivered within {limit:?}:\n{}",
                self.logs()
            )
        })
    }

    fn down(&self) {
        let _ = self.compose(&["down", "-v", "--remove-orphans", "-t", "2"]);
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- the stack's logs ---\n{}", self.logs());
        }
        self.down();
    }
}

/// `docker ARGS`'s trimmed stdout (empty when it fails).
pub fn docker(args: &[&str]) -> String {
    Command::new("docker")
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}
