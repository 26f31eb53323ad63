//! One connection-oriented stream type for both ends of the protocol: the daemon's
//! accepted connections and the MTA-side client's, over TCP or a UNIX socket.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

use super::listen::ListenAddr;

pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    /// Connects to a milter address. TCP gets `TCP_NODELAY`: a step's small
    /// packets must not wait for delayed ACKs.
    pub async fn connect(addr: &ListenAddr) -> io::Result<Stream> {
        match addr {
            ListenAddr::Inet(sa) => {
                let s = TcpStream::connect(sa).await?;
                s.set_nodelay(true)?;
                Ok(Stream::Tcp(s))
            }
            ListenAddr::Unix(path) => Ok(Stream::Unix(UnixStream::connect(path).await?)),
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => {
                let before = buf.filled().len();
                let polled = Pin::new(&mut *s).poll_read(cx, buf);
                if buf.filled().len() > before {
                    quick_ack(s);
                }
                polled
            }
            Stream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

/// Acknowledges what we just read at once instead of up to 40 ms later. Postfix
/// writes each milter event (and the macros before it) with its own write() and
/// does not set TCP_NODELAY, and we send nothing back until end-of-message: with
/// delayed ACKs, Nagle's algorithm on Postfix's side then holds every second small
/// packet until our ACK timer fires, tens of milliseconds per message. Linux
/// leaves quick-ACK mode on its own, so it is set again after every read.
#[cfg(target_os = "linux")]
fn quick_ack(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    let one: libc::c_int = 1;
    // SAFETY: a valid socket descriptor, a c_int option value and its size.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_QUICKACK,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn quick_ack(_: &TcpStream) {}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
