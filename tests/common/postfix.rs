//! A private Postfix instance for one test: its own config directory, queue and
//! loopback SMTP port, `smtpd_milters` and `non_smtpd_milters` pointing at the milter
//! under test, and an `smtp-sink` that writes every delivered message to a file.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, read_text, smtp, wait_for, wait_listening};

pub struct Postfix {
    pub dir: PathBuf,
    pub conf: PathBuf,
    pub smtp_port: u16,
    sink_dir: PathBuf,
    sink: Option<Child>,
    started: bool,
}

/// One message as the sink received it.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub raw: Vec<u8>,
}

impl Delivered {
    /// The header block (before the first empty line), LF line ends.
    pub fn headers(&self) -> String {
        let text = String::from_utf8_lossy(&self.raw);
        text.split("\n\n").next().unwrap_or_default().to_owned()
    }

    /// The value of the first header named `name` (unfolded, trimmed).
    pub fn header(&self, name: &str) -> Option<String> {
        self.header_all(name).into_iter().next()
    }

    /// The values of every header named `name`, in order (unfolded, trimmed).
    pub fn header_all(&self, name: &str) -> Vec<String> {
        self.fields()
            .into_iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .collect()
    }

    /// Every header field as (name, unfolded value), top to bottom.
    pub fn fields(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for line in self.headers().lines() {
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = out.last_mut() {
                    value.push(' ');
                    value.push_str(line.trim());
                }
            } else if let Some((name, value)) = line.split_once(':') {
                out.push((name.to_owned(), value.trim().to_owned()));
            }
        }
        out
    }

    /// The body bytes exactly as stored (LF line ends, no dot-stuffing).
    pub fn body(&self) -> &[u8] {
        let at = self
            .raw
            .windows(2)
            .position(|w| w == b"\n\n")
            .map_or(self.raw.len(), |i| i + 2);
        &self.raw[at..]
    }
}

impl Postfix {
    /// Starts Postfix with `milter` (e.g. `inet:127.0.0.1:8891`) as its smtpd and
    /// non-smtpd milter and `milter_default_action = default_action`.
    pub fn start(dir: &Path, milter: &str, default_action: &str) -> Postfix {
        let dir = dir.join("postfix");
        let conf = dir.join("conf");
        let sink_dir = dir.join("sink");
        for d in [&conf, &dir.join("queue"), &dir.join("data"), &sink_dir] {
            std::fs::create_dir_all(d).expect("create postfix dirs");
        }
        chown_postfix(&dir.join("data"));
        chown_postfix(&sink_dir);
        let smtp_port = free_port();
        let sink_port = free_port();
        let main_cf = format!(
            "compatibility_level = 3.6
queue_directory = {dir}/queue
data_directory = {dir}/data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = mx.harness.test
mydestination =
mynetworks = 127.0.0.0/8 192.0.2.0/24 198.51.100.0/24 203.0.113.0/24
smtpd_authorized_xclient_hosts = 127.0.0.0/8
relayhost = [127.0.0.1]:{sink_port}
smtpd_milters = {milter}
non_smtpd_milters = {milter}
milter_default_action = {default_action}
maillog_file = {dir}/maillog
maillog_file_prefixes = {dir}
smtp_tls_security_level = none
smtpd_tls_security_level = none
alias_maps =
alias_database =
smtputf8_enable = yes
",
            dir = dir.display()
        );
        std::fs::write(conf.join("main.cf"), main_cf).expect("write main.cf");
        let proto =
            std::fs::read_to_string("/etc/postfix/master.cf.proto").expect("read master.cf.proto");
        std::fs::write(conf.join("master.cf"), master_cf(&proto, smtp_port))
            .expect("write master.cf");

        let sink = Command::new("smtp-sink")
            .arg("-u")
            .arg("postfix")
            .arg("-d")
            .arg(format!("{}/%M.", sink_dir.display()))
            .arg(format!("127.0.0.1:{sink_port}"))
            .arg("100")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start smtp-sink");
        let mut pf = Postfix {
            dir,
            conf,
            smtp_port,
            sink_dir,
            sink: Some(sink),
            started: false,
        };
        let out = Command::new("postfix")
            .arg("-c")
            .arg(&pf.conf)
            .arg("start")
            .output()
            .expect("run postfix start");
        assert!(
            out.status.success(),
            "postfix start failed: {}{}\nmaillog:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            pf.maillog()
        );
        pf.started = true;
        assert!(
            wait_listening(smtp_port, Duration::from_secs(15)),
            "postfix smtpd did not listen; maillog:\n{}",
            pf.maillog()
        );
        assert!(
            wait_listening(sink_port, Duration::from_secs(5)),
            "smtp-sink did not listen"
        );
        pf
    }

    pub fn maillog(&self) -> String {
        read_text(&self.dir.join("maillog"))
    }

    /// Sends `message` over SMTP from alice@sender.test to bob@dest.test.
    pub fn send(&self, message: &[u8]) -> smtp::Outcome {
        smtp::send(
            self.smtp_port,
            "alice@sender.test",
            &["bob@dest.test"],
            message,
        )
    }

    /// Sends `message` from the local client with this MAIL FROM to bob@dest.test.
    pub fn send_as_from(&self, from: &str, message: &[u8]) -> smtp::Outcome {
        smtp::send(self.smtp_port, from, &["bob@dest.test"], message)
    }

    /// Sends `message` as `peer` (see [`smtp::Peer`]) with this envelope.
    pub fn send_as(&self, peer: smtp::Peer<'_>, from: &str, message: &[u8]) -> smtp::Outcome {
        smtp::send_as(
            self.smtp_port,
            Some(peer),
            from,
            &["bob@dest.test"],
            message,
        )
    }

    /// The queue ids in Postfix's hold queue (where quarantined mail waits).
    pub fn held(&self) -> Vec<String> {
        let out = Command::new("postqueue")
            .arg("-c")
            .arg(&self.conf)
            .arg("-j")
            .output()
            .expect("run postqueue -j");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("\"queue_name\": \"hold\""))
            .filter_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).ok()?;
                v["queue_id"].as_str().map(str::to_owned)
            })
            .collect()
    }

    /// Asks Postfix to attempt delivery of everything queued, now.
    pub fn flush(&self) {
        let _ = Command::new("postqueue")
            .arg("-c")
            .arg(&self.conf)
            .arg("-f")
            .output();
    }

    /// Submits a message locally with Postfix's sendmail (the non_smtpd_milters path).
    pub fn sendmail(&self, from: &str, to: &str, message: &[u8]) {
        use std::io::Write;
        let mut child = Command::new("sendmail")
            .arg("-C")
            .arg(&self.conf)
            .arg("-f")
            .arg(from)
            .arg(to)
            .stdin(Stdio::piped())
            .spawn()
            .expect("run sendmail");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(message)
            .expect("write message");
        assert!(child.wait().expect("sendmail").success(), "sendmail failed");
    }

    /// Every message the sink has received so far, oldest first.
    pub fn delivered(&self) -> Vec<Delivered> {
        let mut files: Vec<_> = std::fs::read_dir(&self.sink_dir)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        files
            .iter()
            .filter_map(|p| std::fs::read(p).ok())
            .map(|raw| Delivered { raw })
            .collect()
    }

    /// The delivered messages whose Subject contains `needle`, oldest first,
    /// after asking Postfix to deliver what it holds.
    pub fn delivered_with_subject(&self, needle: &str) -> Vec<Delivered> {
        self.flush();
        self.delivered()
            .into_iter()
            .filter(|d| d.header("Subject").is_some_and(|v| v.contains(needle)))
            .collect()
    }

    /// Waits for the delivered message whose headers mention `needle` (e.g. a
    /// Message-ID), flushing the queue so Postfix does not wait for its next run.
    pub fn wait_delivered(&self, needle: &str) -> Delivered {
        let found = wait_for(Duration::from_secs(30), || {
            let hit = self
                .delivered()
                .into_iter()
                .find(|d| d.headers().contains(needle));
            if hit.is_none() {
                self.flush();
                std::thread::sleep(Duration::from_millis(200));
            }
            hit
        });
        found.unwrap_or_else(|| {
            panic!(
                "no delivery containing {needle:?}; maillog:\n{}",
                self.maillog()
            )
        })
    }
}

/// The stock master.cf with every service out of chroot and smtpd on our port.
fn master_cf(proto: &str, smtp_port: u16) -> String {
    let mut out = String::new();
    for line in proto.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let is_service = !line.starts_with(['#', ' ', '\t']) && fields.len() >= 8;
        if is_service {
            let mut fields = fields;
            fields[4] = "n";
            let port = format!("127.0.0.1:{smtp_port}");
            if fields[0] == "smtp" && fields[1] == "inet" {
                fields[0] = &port;
                out.push_str(&fields.join(" "));
            } else {
                out.push_str(&fields.join(" "));
            }
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

fn chown_postfix(path: &Path) {
    let status = Command::new("chown")
        .arg("postfix")
        .arg(path)
        .status()
        .expect("chown");
    assert!(status.success(), "chown postfix {}", path.display());
}

impl Drop for Postfix {
    fn drop(&mut self) {
        if self.started {
            let _ = Command::new("postfix")
                .arg("-c")
                .arg(&self.conf)
                .arg("stop")
                .output();
        }
        if let Some(mut sink) = self.sink.take() {
            let _ = sink.kill();
            let _ = sink.wait();
        }
    }
}
