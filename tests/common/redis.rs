//! Private redis-server instances on loopback ports chosen at run time: one
//! server, or a Redis Cluster of masters made with `redis-cli --cluster create`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, wait_for};

pub struct Redis {
    pub port: u16,
    dir: PathBuf,
    cluster: bool,
    password: Option<String>,
    /// `appendonly yes`: what it holds survives a restart.
    persistent: bool,
    /// TLS only (`rediss://`): the server's certificate, key and CA files.
    tls: Option<[PathBuf; 3]>,
    child: Option<Child>,
}

impl Redis {
    pub fn start(dir: &Path) -> Redis {
        Self::start_node(dir, false, None)
    }

    /// One server that keeps its data across a restart (append-only file), as a
    /// fleet's Redis holding report rows must.
    pub fn start_persistent(dir: &Path) -> Redis {
        let mut r = Self::start_node(dir, false, None);
        r.stop();
        r.persistent = true;
        r.run();
        r
    }

    /// One server that wants this password (`requirepass`).
    pub fn start_with_password(dir: &Path, password: &str) -> Redis {
        Self::start_node(dir, false, Some(password.to_owned()))
    }

    /// One server that speaks TLS only, with this certificate and key (PEM);
    /// `ca` is what redis-cli trusts.
    pub fn start_tls(dir: &Path, cert: &Path, key: &Path, ca: &Path) -> Redis {
        let tls = [cert.to_owned(), key.to_owned(), ca.to_owned()];
        Self::start_with(dir, false, None, Some(tls))
    }

    fn start_node(dir: &Path, cluster: bool, password: Option<String>) -> Redis {
        Self::start_with(dir, cluster, password, None)
    }

    fn start_with(
        dir: &Path,
        cluster: bool,
        password: Option<String>,
        tls: Option<[PathBuf; 3]>,
    ) -> Redis {
        let port = free_port();
        let dir = dir.join(format!("redis-{port}"));
        std::fs::create_dir_all(&dir).expect("redis dir");
        let mut r = Redis {
            port,
            dir,
            cluster,
            password,
            persistent: false,
            tls,
            child: None,
        };
        r.run();
        r
    }

    fn run(&mut self) {
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--protected-mode", "no"])
            .args(["--appendonly", if self.persistent { "yes" } else { "no" }])
            .args(["--enable-debug-command", "local"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(self.dir.join("redis.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(p) = &self.password {
            cmd.args(["--requirepass", p]);
        }
        if let Some([cert, key, ca]) = &self.tls {
            cmd.args(["--port", "0", "--tls-port", &self.port.to_string()])
                .arg("--tls-cert-file")
                .arg(cert)
                .arg("--tls-key-file")
                .arg(key)
                .arg("--tls-ca-cert-file")
                .arg(ca)
                .args(["--tls-auth-clients", "no"]);
        }
        if self.cluster {
            cmd.args(["--cluster-enabled", "yes", "--cluster-config-file"])
                .arg(self.dir.join("nodes.conf"));
        }
        self.child = Some(cmd.spawn().expect("start redis-server"));
        let up = wait_for(Duration::from_secs(10), || {
            (self.cli(&["PING"]).trim() == "PONG").then_some(())
        });
        assert!(
            up.is_some(),
            "redis-server on {} did not answer: {}",
            self.port,
            std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
        );
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// `redis-cli -p PORT ARGS...`, its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-p", &self.port.to_string()]);
        if let Some(p) = &self.password {
            cmd.args(["-a", p, "--no-auth-warning"]);
        }
        if let Some([_, _, ca]) = &self.tls {
            cmd.arg("--tls").arg("--cacert").arg(ca);
        }
        let out = cmd.args(args).output().expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }

    /// A Redis Cluster of `n` masters (no replicas), each on its own port.
    pub fn start_cluster(dir: &Path, n: usize) -> Vec<Redis> {
        let nodes: Vec<Redis> = (0..n).map(|_| Self::start_node(dir, true, None)).collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|r| format!("127.0.0.1:{}", r.port))
            .collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create");
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let ok = wait_for(Duration::from_secs(15), || {
            nodes
                .iter()
                .all(|r| r.cli(&["CLUSTER", "INFO"]).contains("cluster_state:ok"))
                .then_some(())
        });
        assert!(ok.is_some(), "the cluster did not become ok");
        nodes
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}
