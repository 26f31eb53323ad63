//! A name server that misbehaves on purpose, for fault injection (correct answers
//! always come from the real knot in `knot.rs`): it never answers, answers every
//! query SERVFAIL, or answers with the truncation bit set and no TCP service
//! behind it, so the resolver's retry over TCP is refused.

use std::net::UdpSocket;

#[derive(Clone, Copy, Debug)]
pub enum DnsFault {
    Silent,
    ServFail,
    Truncated,
}

pub struct BrokenDns {
    pub port: u16,
    _thread: std::thread::JoinHandle<()>,
}

impl BrokenDns {
    pub fn start(fault: DnsFault) -> BrokenDns {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let port = socket.local_addr().expect("addr").port();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok((n, peer)) = socket.recv_from(&mut buf) {
                if n < 12 {
                    continue;
                }
                let mut reply = buf[..n].to_vec();
                // QR = 1, keep the opcode and RD; RA = 1.
                reply[2] = 0x80 | (buf[2] & 0x79);
                match fault {
                    DnsFault::Silent => continue,
                    DnsFault::ServFail => reply[3] = 0x82,
                    DnsFault::Truncated => {
                        reply[2] |= 0x02;
                        reply[3] = 0x80;
                    }
                }
                // No answer records: the question goes back as it came.
                reply[6..12].fill(0);
                let _ = socket.send_to(&reply, peer);
            }
        });
        BrokenDns {
            port,
            _thread: thread,
        }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}
