//! One root zone for knot, built from a suite's DNS data: owner names and TXT
//! strings escaped byte for byte (suites put spaces, colons, NULs and non-ASCII in
//! them on purpose), TXT values over 255 bytes split into strings.

use std::fmt::Write as _;

#[derive(Default)]
pub struct Zone {
    lines: Vec<String>,
}

impl Zone {
    /// A record whose data is already in zone-file form (`A 192.0.2.1`).
    pub fn add(&mut self, owner: &str, kind: &str, data: &str) {
        self.lines
            .push(format!("{} 300 IN {kind} {data}", owner_name(owner)));
    }

    /// A TXT record of these strings (one record; each string at most 255 bytes).
    pub fn txt_strings(&mut self, owner: &str, strings: &[&[u8]]) {
        let mut data = String::new();
        for s in strings {
            data.push_str(&quoted(s));
            data.push(' ');
        }
        if strings.is_empty() {
            data.push_str("\"\"");
        }
        self.add(owner, "TXT", data.trim_end());
    }

    /// A TXT record holding `value`, split into 255-byte strings.
    pub fn txt(&mut self, owner: &str, value: &[u8]) {
        let chunks: Vec<&[u8]> = if value.is_empty() {
            vec![b""]
        } else {
            value.chunks(255).collect()
        };
        self.txt_strings(owner, &chunks);
    }

    /// The zone file for `.`.
    pub fn root(&self) -> String {
        let mut text = String::from(
            "$ORIGIN .\n$TTL 300\n. SOA ns.harness.test. hostmaster.harness.test. 1 3600 600 86400 300\n\
             . NS ns.harness.test.\nns.harness.test. A 127.0.0.1\n",
        );
        for line in &self.lines {
            text.push_str(line);
            text.push('\n');
        }
        text
    }
}

/// An absolute owner name with every byte outside letters, digits, '-' and '_'
/// escaped as \DDD.
pub fn owner_name(name: &str) -> String {
    let name = name.strip_suffix('.').unwrap_or(name);
    let mut out = String::new();
    for label in name.split('.') {
        for b in label.bytes() {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'*' {
                out.push(char::from(b));
            } else {
                let _ = write!(out, "\\{b:03}");
            }
        }
        out.push('.');
    }
    out
}

fn quoted(s: &[u8]) -> String {
    let mut out = String::from("\"");
    for &b in s {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\{b:03}");
            }
        }
    }
    out.push('"');
    out
}
