//! A private knot authoritative DNS server on a loopback port, serving the zone
//! files in `tests/fixtures/auth/zones`. Stopping it (or pointing mailwarden at a
//! dead port) gives the DNS-failure cases.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{fixture, free_port, wait_for};

pub struct Knot {
    dir: PathBuf,
    pub port: u16,
    child: Option<Child>,
    /// A zone whose SOA answers once the server is ready.
    probe: String,
}

impl Knot {
    /// Starts knotd with every zone of the fixture set.
    pub fn start(dir: &Path) -> Knot {
        Self::start_with(dir, &[])
    }

    /// Starts knotd with the fixture zones plus `extra` (zone name, zone file text).
    pub fn start_with(dir: &Path, extra: &[(String, String)]) -> Knot {
        let mut zones = extra.to_vec();
        for entry in std::fs::read_dir(fixture("fixtures/auth/zones")).expect("zone fixtures") {
            let path = entry.expect("zone entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".zone"))
                .expect("zone file name")
                .to_owned();
            zones.push((name, std::fs::read_to_string(&path).expect("read zone")));
        }
        Self::start_zones(dir, &zones)
    }

    /// Starts knotd serving these (zone name, zone file text) pairs; `.` is allowed.
    pub fn start_zones(dir: &Path, zones: &[(String, String)]) -> Knot {
        let dir = dir.join("knot");
        let zone_dir = dir.join("zones");
        std::fs::create_dir_all(&zone_dir).expect("create knot dirs");
        std::fs::create_dir_all(dir.join("db")).expect("create knot db dir");
        let mut names = Vec::new();
        for (name, text) in zones {
            let file = if name == "." { "root" } else { name.as_str() };
            std::fs::write(zone_dir.join(format!("{file}.zone")), text).expect("write zone");
            names.push(name.clone());
        }
        let mut knot = Knot {
            dir,
            port: free_port(),
            child: None,
            probe: names.first().cloned().expect("at least one zone"),
        };
        let zone_list: String = names
            .iter()
            .map(|n| {
                let file = if n == "." { "root" } else { n.as_str() };
                format!("  - domain: {n}\n    file: \"{file}.zone\"\n")
            })
            .collect();
        let conf = format!(
            "server:\n  rundir: \"{d}\"\n  user: root:root\n  listen: 127.0.0.1@{port}\n\
             log:\n  - target: {d}/knot.log\n    any: info\n\
             database:\n  storage: \"{d}/db\"\n\
             template:\n  - id: default\n    storage: \"{d}/zones\"\n    zonefile-load: whole\n    journal-content: none\n\
             zone:\n{zone_list}",
            d = knot.dir.display(),
            port = knot.port
        );
        std::fs::write(knot.dir.join("knot.conf"), conf).expect("write knot.conf");
        knot.run();
        knot
    }

    fn run(&mut self) {
        let child = Command::new("knotd")
            .arg("-c")
            .arg(self.dir.join("knot.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start knotd");
        self.child = Some(child);
        // Ready when it answers for its first zone's SOA.
        let ready = wait_for(Duration::from_secs(10), || {
            let out = Command::new("kdig")
                .arg("@127.0.0.1")
                .arg("-p")
                .arg(self.port.to_string())
                .arg("+short")
                .arg("+time=1")
                .arg("SOA")
                .arg(&self.probe)
                .output()
                .ok()?;
            (!out.stdout.is_empty()).then_some(())
        });
        assert!(
            ready.is_some(),
            "knotd did not answer; log:\n{}",
            self.log()
        );
    }

    pub fn log(&self) -> String {
        super::read_text(&self.dir.join("knot.log"))
    }

    /// `ip:port` for `[dns] nameservers`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, after `stop`.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }
}

impl Drop for Knot {
    fn drop(&mut self) {
        self.stop();
    }
}
