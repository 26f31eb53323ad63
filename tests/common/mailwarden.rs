//! The mailwarden binary under test, started with a config file written into the
//! test's temp dir; its log is captured in a file the test can read.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, read_text, wait_for, wait_listening};

pub struct Mailwarden {
    child: Option<Child>,
    pub port: u16,
    pub config_path: PathBuf,
    pub log_path: PathBuf,
    /// Extra environment for the daemon (e.g. libfaketime's, to pin its clock).
    env: Vec<(String, String)>,
}

impl Mailwarden {
    /// Starts `mailwarden serve -c DIR/mailwarden.toml` listening on a fresh port.
    /// `extra` is appended to the config (other sections, or more [server] keys).
    pub fn start(dir: &Path, server_keys: &str, extra: &str) -> Mailwarden {
        Self::start_on(dir, free_port(), server_keys, extra)
    }

    /// Like [`Mailwarden::start`], on a port chosen beforehand (so Postfix can be
    /// started first and its SMTP port written into mailwarden's config).
    pub fn start_on(dir: &Path, port: u16, server_keys: &str, extra: &str) -> Mailwarden {
        Self::start_with_config(dir, port, &Self::config(port, server_keys, extra))
    }

    /// Starts mailwarden on a whole config (a scenario's), which listens on `port`.
    pub fn start_with_config(dir: &Path, port: u16, config: &str) -> Mailwarden {
        Self::start_with_env(dir, port, config, Vec::new())
    }

    /// Like [`Mailwarden::start_with_config`], with extra environment variables.
    pub fn start_with_env(
        dir: &Path,
        port: u16,
        config: &str,
        env: Vec<(String, String)>,
    ) -> Mailwarden {
        let config_path = dir.join("mailwarden.toml");
        std::fs::write(&config_path, config).expect("write config");
        let log_path = dir.join("mailwarden.log");
        let mut mw = Mailwarden {
            child: None,
            port,
            config_path,
            log_path,
            env,
        };
        mw.spawn();
        mw
    }

    /// The test config. `extra` may bring its own `[inbound]` section (it then
    /// replaces the default one, which only sets `authserv_id = "mx.harness.test"`).
    pub fn config(port: u16, server_keys: &str, extra: &str) -> String {
        let inbound = if extra.contains("[inbound]") {
            ""
        } else {
            "[inbound]\nauthserv_id = \"mx.harness.test\"\n"
        };
        format!(
            "[server]\nlisten = [\"inet:127.0.0.1:{port}\"]\n{server_keys}\n\n{inbound}\n{extra}\n"
        )
    }

    fn spawn(&mut self) {
        let log = File::create(&self.log_path).expect("create log");
        let child = Command::new(env!("CARGO_BIN_EXE_mailwarden"))
            .arg("serve")
            .arg("-c")
            .arg(&self.config_path)
            .env_remove("RUST_LOG")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("start mailwarden");
        self.child = Some(child);
        let port = self.port;
        assert!(
            wait_listening(port, Duration::from_secs(10)),
            "mailwarden did not listen on {port}; log:\n{}",
            self.log()
        );
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn addr(&self) -> String {
        format!("inet:127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        read_text(&self.log_path)
    }

    /// Waits until the log contains `needle` `count` times. The daemon writes its log
    /// in batches a few milliseconds after each event: wait before looking for a line.
    pub fn wait_for_log(&self, needle: &str, count: usize, limit: Duration) -> bool {
        wait_for(limit, || {
            (self.log().matches(needle).count() >= count).then_some(())
        })
        .is_some()
    }

    /// Waits for the decision log line of `queue_id` and returns it.
    pub fn decision_line(&self, queue_id: &str) -> String {
        let needle = format!("queue_id=\"{queue_id}\"");
        let line = wait_for(Duration::from_secs(5), || {
            self.log()
                .lines()
                .find(|l| l.contains(&needle) && l.contains("message decided"))
                .map(str::to_owned)
        });
        line.unwrap_or_else(|| panic!("no decision logged for {queue_id}:\n{}", self.log()))
    }

    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Sends SIGTERM and waits for the process to exit; returns its exit status.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let exited = wait_for(Duration::from_secs(40), || child.try_wait().ok().flatten());
        if exited.is_none() {
            let _ = child.kill();
        }
        exited
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }
}

impl Drop for Mailwarden {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
