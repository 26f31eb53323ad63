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

/// What [`DnsFilter`] does to a question a rule matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drop {
    /// Never answer: the resolver times out.
    Silent,
    /// Answer SERVFAIL.
    ServFail,
}

/// Sits in front of a real knot and passes every question through, over UDP and
/// TCP, except the (name, type) pairs it was told to drop or fail: test suites
/// whose DNS data says "this query times out" need a server that does so for one
/// name while knot answers the rest. `qtype` 0 matches every type.
pub struct DnsFilter {
    pub port: u16,
}

type Rules = std::sync::Arc<Vec<(String, u16, Drop)>>;

impl DnsFilter {
    pub fn start(upstream: std::net::SocketAddr, rules: Vec<(String, u16, Drop)>) -> DnsFilter {
        let rules: Rules = std::sync::Arc::new(
            rules
                .into_iter()
                .map(|(n, t, d)| (n.trim_end_matches('.').to_ascii_lowercase(), t, d))
                .collect(),
        );
        // One port for both: a UDP port whose TCP twin is free.
        let (socket, tcp, port) = (0..50)
            .find_map(|_| {
                let socket = UdpSocket::bind("127.0.0.1:0").ok()?;
                let port = socket.local_addr().ok()?.port();
                let tcp = std::net::TcpListener::bind(("127.0.0.1", port)).ok()?;
                Some((socket, tcp, port))
            })
            .expect("a free UDP and TCP port");
        let udp_rules = rules.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok((n, peer)) = socket.recv_from(&mut buf) {
                let query = buf[..n].to_vec();
                let (socket, rules) = (socket.try_clone().expect("clone"), udp_rules.clone());
                std::thread::spawn(move || {
                    if let Some(reply) = answer(&query, &rules, |q| forward_udp(upstream, q)) {
                        let _ = socket.send_to(&reply, peer);
                    }
                });
            }
        });
        std::thread::spawn(move || {
            for stream in tcp.incoming().flatten() {
                let rules = rules.clone();
                std::thread::spawn(move || serve_tcp(stream, upstream, &rules));
            }
        });
        DnsFilter { port }
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// The question's name (lower case, no final dot) and type.
fn question(query: &[u8]) -> Option<(String, u16)> {
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*query.get(i)?);
        i += 1;
        if len == 0 {
            break;
        }
        let label = query.get(i..i + len)?;
        labels.push(
            label
                .iter()
                .map(|b| char::from(b.to_ascii_lowercase()))
                .collect::<String>(),
        );
        i += len;
    }
    let qtype = u16::from_be_bytes([*query.get(i)?, *query.get(i + 1)?]);
    Some((labels.join("."), qtype))
}

fn answer(
    query: &[u8],
    rules: &Rules,
    forward: impl Fn(&[u8]) -> Option<Vec<u8>>,
) -> Option<Vec<u8>> {
    let (name, qtype) = question(query)?;
    let rule = rules
        .iter()
        .find(|(n, t, _)| *n == name && (*t == 0 || *t == qtype));
    match rule {
        Some((_, _, Drop::Silent)) => None,
        Some((_, _, Drop::ServFail)) => {
            let mut reply = query.to_vec();
            reply[2] = 0x80 | (query[2] & 0x79);
            reply[3] = 0x82;
            reply[6..12].fill(0);
            Some(reply)
        }
        None => forward(query),
    }
}

fn forward_udp(upstream: std::net::SocketAddr, query: &[u8]) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").ok()?;
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(3)))
        .ok()?;
    socket.send_to(query, upstream).ok()?;
    let mut buf = vec![0u8; 65535];
    let n = socket.recv(&mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

fn serve_tcp(mut stream: std::net::TcpStream, upstream: std::net::SocketAddr, rules: &Rules) {
    use std::io::{Read, Write};
    let mut len = [0u8; 2];
    while stream.read_exact(&mut len).is_ok() {
        let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if stream.read_exact(&mut query).is_err() {
            return;
        }
        let forward = |q: &[u8]| -> Option<Vec<u8>> {
            let mut up = std::net::TcpStream::connect(upstream).ok()?;
            up.write_all(&(q.len() as u16).to_be_bytes()).ok()?;
            up.write_all(q).ok()?;
            let mut len = [0u8; 2];
            up.read_exact(&mut len).ok()?;
            let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
            up.read_exact(&mut reply).ok()?;
            Some(reply)
        };
        match answer(&query, rules, forward) {
            Some(reply) => {
                let _ = stream.write_all(&(reply.len() as u16).to_be_bytes());
                let _ = stream.write_all(&reply);
            }
            None => std::thread::sleep(std::time::Duration::from_secs(5)),
        }
    }
}
