//! The admin endpoint from a test: an `[admin]` section with a token file, GET
//! requests, and `/metrics` parsed.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use super::free_port;

pub const TOKEN: &str = "test-token-0123456789abcdef";

/// `[admin]` on a fresh port with a token file in `dir`.
pub fn section(dir: &Path) -> (u16, String) {
    let port = free_port();
    let tokens = dir.join("admin-tokens");
    std::fs::write(&tokens, format!("# test\n{TOKEN}\n")).unwrap();
    std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o600)).unwrap();
    (
        port,
        format!(
            "[admin]\nlisten = \"inet:127.0.0.1:{port}\"\ntoken_file = \"{}\"\n",
            tokens.display()
        ),
    )
}

/// (status, body) of a GET with an optional bearer token.
pub fn get(port: u16, path: &str, token: Option<&str>) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to admin");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Prometheus text format → `name{labels}` → value (comments skipped).
pub fn parse_metrics(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.to_owned(), value.parse().ok()?))
        })
        .collect()
}
