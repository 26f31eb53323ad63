//! `[log] syslog = true`: the daemon's lines reach a real rsyslogd (started
//! here on a private socket) with the mail facility and a severity per level,
//! tagged mailwarden[PID], with no timestamp of ours inside the message.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::mailwarden::Mailwarden;
use common::{free_port, require, shared_tempdir, wait_for};

#[test]
fn lines_reach_rsyslog_with_facility_and_severity() {
    if !require("rsyslogd", "rsyslog") {
        return;
    }
    let dir = shared_tempdir("mw-syslog");
    let d = dir.path();
    let socket = d.join("log.sock");
    let maillog = d.join("mail.log");
    std::fs::write(
        d.join("rsyslog.conf"),
        format!(
            "global(workDirectory=\"{dir}\")\n\
             module(load=\"imuxsock\" SysSock.Use=\"off\")\n\
             input(type=\"imuxsock\" Socket=\"{socket}\")\n\
             template(name=\"raw\" type=\"string\" string=\"%syslogfacility-text%.%syslogseverity-text% %syslogtag%%msg%\\n\")\n\
             mail.* action(type=\"omfile\" file=\"{maillog}\" template=\"raw\")\n",
            dir = d.display(),
            socket = socket.display(),
            maillog = maillog.display()
        ),
    )
    .unwrap();
    let mut rsyslog = Command::new("rsyslogd")
        .args(["-n", "-f"])
        .arg(d.join("rsyslog.conf"))
        .arg("-i")
        .arg(d.join("rsyslog.pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("rsyslogd");
    assert!(wait_for(Duration::from_secs(10), || socket.exists().then_some(())).is_some());
    let port = free_port();
    let mw = Mailwarden::start_with_config(
        d,
        port,
        &format!(
            "[server]\nlisten = [\"inet:127.0.0.1:{port}\"]\n\n\
             [log]\nsyslog = true\nfacility = \"mail\"\nsyslog_socket = \"{}\"\n",
            socket.display()
        ),
    );
    // Protocol garbage: one WARN line.
    let mut garbage = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    garbage.write_all(&[0xff, 0xff, 0xff, 0xff, b'x']).unwrap();
    drop(garbage);
    let pid = mw.pid();
    let read = || std::fs::read_to_string(&maillog).unwrap_or_default();
    let seen = wait_for(Duration::from_secs(10), || {
        let log = read();
        (log.contains("mail.info") && log.contains("mail.warning")).then_some(log)
    });
    let _ = rsyslog.kill();
    let _ = rsyslog.wait();
    let log = seen.unwrap_or_else(|| panic!("{}\nstderr: {}", read(), mw.log()));
    let starting = log
        .lines()
        .find(|l| l.contains("mailwarden starting"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        starting.starts_with(&format!("mail.info mailwarden[{pid}]: ")),
        "{starting}"
    );
    // The syslog daemon stamps the time: none of ours in the message.
    assert!(!starting.contains("Z "), "{starting}");
    assert!(
        log.lines()
            .any(|l| l.starts_with(&format!("mail.warning mailwarden[{pid}]: "))),
        "{log}"
    );
    assert!(
        mw.log().trim().is_empty(),
        "nothing on standard error: {}",
        mw.log()
    );
}
