//! Where the daemon listens: `inet:HOST:PORT` and `unix:PATH`, Postfix's own syntax.
//! A stale socket file left by a crashed daemon is replaced; one that a running
//! process still answers on is never stolen.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use thiserror::Error;
use tokio::net::{TcpListener, UnixListener, UnixStream};

use super::stream::Stream;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListenAddr {
    Inet(SocketAddr),
    Unix(PathBuf),
}

impl FromStr for ListenAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(rest) = s.strip_prefix("inet:") {
            parse_inet(rest).map(ListenAddr::Inet)
        } else if let Some(path) = s.strip_prefix("unix:") {
            let path = PathBuf::from(path);
            if path.is_absolute() {
                Ok(ListenAddr::Unix(path))
            } else {
                Err(format!(
                    "unix socket path {:?} must be absolute",
                    path.display().to_string()
                ))
            }
        } else {
            Err(format!(
                "{s:?} must start with \"inet:\" (inet:127.0.0.1:8891) or \"unix:\" (unix:/run/mailwarden/milter.sock)"
            ))
        }
    }
}

/// `HOST:PORT` where HOST is an IPv4 address, `[IPv6]`, a bare IPv6 address, or
/// `localhost`.
fn parse_inet(rest: &str) -> Result<SocketAddr, String> {
    let bad = || {
        format!(
            "\"inet:{rest}\" is not of the form inet:ADDRESS:PORT (e.g. inet:127.0.0.1:8891 or inet:[::1]:8891)"
        )
    };
    let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host.parse().map_err(|_| bad())?
    };
    Ok(SocketAddr::new(ip, port))
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Inet(addr) => write!(f, "inet:{addr}"),
            ListenAddr::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

#[derive(Debug, Error)]
pub enum BindError {
    #[error("cannot listen on {addr}: {source}")]
    Io { addr: ListenAddr, source: io::Error },
    #[error("cannot listen on {0}: another process is accepting connections on that socket")]
    InUse(ListenAddr),
    #[error("cannot listen on {0}: the path exists and is not a socket")]
    NotASocket(ListenAddr),
}

pub enum Listener {
    Tcp(TcpListener),
    Unix {
        listener: UnixListener,
        path: PathBuf,
    },
}

impl Listener {
    pub async fn bind(addr: &ListenAddr, socket_mode: u32) -> Result<Listener, BindError> {
        let io_err = |source| BindError::Io {
            addr: addr.clone(),
            source,
        };
        match addr {
            ListenAddr::Inet(sa) => Ok(Listener::Tcp(TcpListener::bind(sa).await.map_err(io_err)?)),
            ListenAddr::Unix(path) => {
                remove_stale_socket(addr, path).await?;
                // Bound under a temporary name, given its mode, then renamed into
                // place: no client can reach the socket before it has its mode.
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
                let temp = path.with_file_name(format!(
                    ".{}.{}.binding",
                    name.unwrap_or_default(),
                    std::process::id()
                ));
                let _ = std::fs::remove_file(&temp);
                let listener = UnixListener::bind(&temp).map_err(io_err)?;
                let placed =
                    std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(socket_mode))
                        .and_then(|()| std::fs::rename(&temp, path));
                if let Err(e) = placed {
                    let _ = std::fs::remove_file(&temp);
                    return Err(io_err(e));
                }
                Ok(Listener::Unix {
                    listener,
                    path: path.clone(),
                })
            }
        }
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> ListenAddr {
        match self {
            Listener::Tcp(l) => match l.local_addr() {
                Ok(sa) => ListenAddr::Inet(sa),
                Err(_) => ListenAddr::Inet(SocketAddr::from(([0, 0, 0, 0], 0))),
            },
            Listener::Unix { path, .. } => ListenAddr::Unix(path.clone()),
        }
    }

    /// The next connection and a name for its peer, for logs.
    pub async fn accept(&self) -> io::Result<(Stream, String)> {
        match self {
            Listener::Tcp(l) => {
                let (stream, peer) = l.accept().await?;
                // Several small responses per step must not wait for delayed ACKs.
                stream.set_nodelay(true)?;
                Ok((Stream::Tcp(stream), peer.to_string()))
            }
            Listener::Unix { listener, path } => {
                let (stream, _) = listener.accept().await?;
                Ok((Stream::Unix(stream), format!("unix:{}", path.display())))
            }
        }
    }

    /// Removes our socket file on the way out so the next start finds no stale one.
    pub fn cleanup(&self) {
        if let Listener::Unix { path, .. } = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

async fn remove_stale_socket(addr: &ListenAddr, path: &Path) -> Result<(), BindError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(BindError::Io {
                addr: addr.clone(),
                source,
            });
        }
    };
    if !meta.file_type().is_socket() {
        return Err(BindError::NotASocket(addr.clone()));
    }
    match UnixStream::connect(path).await {
        Ok(_) => Err(BindError::InUse(addr.clone())),
        Err(_) => std::fs::remove_file(path).map_err(|source| BindError::Io {
            addr: addr.clone(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_postfix_syntax() {
        assert_eq!(
            "inet:127.0.0.1:8891".parse::<ListenAddr>().unwrap(),
            ListenAddr::Inet("127.0.0.1:8891".parse().unwrap())
        );
        assert_eq!(
            "inet:[::1]:8891".parse::<ListenAddr>().unwrap(),
            ListenAddr::Inet("[::1]:8891".parse().unwrap())
        );
        assert_eq!(
            "inet:localhost:25".parse::<ListenAddr>().unwrap(),
            ListenAddr::Inet("127.0.0.1:25".parse().unwrap())
        );
        assert_eq!(
            "unix:/run/m.sock".parse::<ListenAddr>().unwrap(),
            ListenAddr::Unix("/run/m.sock".into())
        );
        for bad in [
            "127.0.0.1:8891",
            "inet:127.0.0.1",
            "inet:host.example:1",
            "inet:1.2.3.4:99999",
            "unix:rel.sock",
        ] {
            assert!(bad.parse::<ListenAddr>().is_err(), "{bad}");
        }
        assert_eq!(
            "inet:[::1]:8891".parse::<ListenAddr>().unwrap().to_string(),
            "inet:[::1]:8891"
        );
    }

    #[tokio::test]
    async fn stale_socket_is_replaced_and_live_one_is_not_stolen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.sock");
        let addr = ListenAddr::Unix(path.clone());
        let live = Listener::bind(&addr, 0o660).await.unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o660);
        assert!(matches!(
            Listener::bind(&addr, 0o660).await,
            Err(BindError::InUse(_))
        ));
        drop(live); // the file stays behind, as after a crash
        assert!(path.exists());
        let again = Listener::bind(&addr, 0o600).await.unwrap();
        again.cleanup();
        assert!(!path.exists());
        std::fs::write(&path, b"not a socket").unwrap();
        assert!(matches!(
            Listener::bind(&addr, 0o660).await,
            Err(BindError::NotASocket(_))
        ));
    }
}
