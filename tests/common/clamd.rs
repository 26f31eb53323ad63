//! A private clamd on a loopback TCP port and a unix socket, with a signature
//! database written by docker/clamd/test-signatures.sh (freshclam cannot download
//! here): an MD5
//! signature for the EICAR test file (`Win.Test.EICAR_HDB-1`) and a body pattern for
//! the EICAR string anywhere (`Win.Test.EICAR_NDB-1`). Also a fake clamd that
//! accepts connections and never answers.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, read_text, wait_for};

/// The EICAR anti-virus test file (68 bytes), assembled so that this source file is
/// not itself flagged by a scanner.
pub fn eicar() -> Vec<u8> {
    [
        "X5O!P%@AP[4\\PZX54(P^)7CC)7}$",
        "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*",
    ]
    .concat()
    .into_bytes()
}

pub struct Clamd {
    dir: PathBuf,
    pub port: u16,
    pub socket: PathBuf,
    child: Option<Child>,
}

impl Clamd {
    /// Starts clamd and waits (up to 60 s: loading signatures takes a few seconds)
    /// until it answers PING on both listeners. `stream_max` is clamd's
    /// `StreamMaxLength`.
    pub fn start(dir: &Path, stream_max: &str) -> Clamd {
        let dir = dir.join("clamd");
        let db = dir.join("db");
        std::fs::create_dir_all(&db).expect("create clamd dirs");
        // The same two signatures the clamd image and the perf scripts use.
        let written = Command::new(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("docker/clamd/test-signatures.sh"),
        )
        .arg(&db)
        .status()
        .expect("run docker/clamd/test-signatures.sh");
        assert!(written.success(), "test-signatures.sh failed");
        let mut clamd = Clamd {
            port: free_port(),
            socket: dir.join("clamd.sock"),
            dir,
            child: None,
        };
        let conf = format!(
            "DatabaseDirectory {db}\nTCPSocket {port}\nTCPAddr 127.0.0.1\nLocalSocket {sock}\n\
             Foreground yes\nLogFile {dir}/clamd.log\nLogTime yes\nUser root\n\
             StreamMaxLength {stream_max}\nMaxThreads 8\nPidFile {dir}/clamd.pid\n",
            db = db.display(),
            port = clamd.port,
            sock = clamd.socket.display(),
            dir = clamd.dir.display(),
        );
        std::fs::write(clamd.dir.join("clamd.conf"), conf).expect("write clamd.conf");
        clamd.run();
        clamd
    }

    fn run(&mut self) {
        let child = Command::new("clamd")
            .arg("-c")
            .arg(self.dir.join("clamd.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start clamd");
        self.child = Some(child);
        let ready = wait_for(Duration::from_secs(60), || {
            (ping_tcp(self.port) && ping_unix(&self.socket)).then_some(())
        });
        assert!(
            ready.is_some(),
            "clamd did not answer; log:\n{}",
            self.log()
        );
    }

    pub fn log(&self) -> String {
        read_text(&self.dir.join("clamd.log"))
    }

    /// `tcp:127.0.0.1:PORT` for `[antivirus] clamd`.
    pub fn tcp(&self) -> String {
        format!("tcp:127.0.0.1:{}", self.port)
    }

    pub fn unix(&self) -> String {
        format!("unix:{}", self.socket.display())
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.socket);
    }

    /// Starts it again on the same port and socket, after `stop`.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }
}

impl Drop for Clamd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn ping_tcp(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port))
        .ok()
        .is_some_and(ping)
}

fn ping_unix(path: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(path)
        .ok()
        .is_some_and(ping)
}

fn ping<S: std::io::Read + std::io::Write>(mut s: S) -> bool {
    let mut reply = Vec::new();
    s.write_all(b"zPING\0").is_ok() && s.read_to_end(&mut reply).is_ok() && reply == b"PONG\0"
}

/// How a broken clamd misbehaves (fault injection; the real clamd is `Clamd`).
#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// Takes the connection and the data, never answers: a hung scanner.
    Silent,
    /// Answers with bytes that are no clamd reply.
    Garbage,
    /// Resets the connection after the first bytes.
    Reset,
}

/// A "clamd" that accepts every connection and then misbehaves as `fault` says.
/// Lives as long as the returned value.
pub struct SilentClamd {
    pub port: u16,
    _listener: std::thread::JoinHandle<()>,
}

impl SilentClamd {
    pub fn start() -> SilentClamd {
        Self::with(Fault::Silent)
    }

    pub fn with(fault: Fault) -> SilentClamd {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let handle = std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                std::thread::spawn(move || {
                    let mut conn = conn;
                    let mut sink = [0u8; 65536];
                    match fault {
                        Fault::Silent => {
                            while matches!(conn.read(&mut sink), Ok(n) if n > 0) {}
                            // Keep the connection open after the client is done.
                            std::thread::sleep(Duration::from_secs(600));
                        }
                        Fault::Garbage => {
                            let _ = conn.read(&mut sink);
                            let _ = conn.write_all(b"\x00\xffNOT A CLAMD REPLY \x1b[31m\n");
                        }
                        Fault::Reset => {
                            let _ = conn.read(&mut sink);
                            // SO_LINGER 0: close sends RST instead of FIN.
                            let _ = socket_linger_zero(&conn);
                        }
                    }
                });
            }
        });
        SilentClamd {
            port,
            _listener: handle,
        }
    }
}

fn socket_linger_zero(conn: &std::net::TcpStream) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and a correctly sized linger struct.
    let r = unsafe {
        libc::setsockopt(
            conn.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}
