//! The messages the load tool sends: a corpus of `.eml` files split into header
//! fields and body, or one generated message of a given size, and a message put back
//! together as the milter side sees it.

use std::path::PathBuf;

use mailwarden::mta::SplitMessage;

use super::Args;

/// The message as header lines (CRLF) and body, as the milter side rebuilds it.
pub(crate) fn assemble(m: &SplitMessage) -> Vec<u8> {
    let mut out = Vec::with_capacity(m.body.len() + 4096);
    for (name, value) in &m.headers {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        for (i, line) in value.split(|&b| b == b'\n').enumerate() {
            if i > 0 {
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(line);
        }
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&m.body);
    out
}

/// The corpus files (`.eml`, or every file in a folder), split as the MTA sends them.
pub(crate) fn read_corpus(args: &Args) -> Result<Vec<SplitMessage>, String> {
    let mut files = Vec::new();
    for path in &args.corpus {
        if path.is_dir() {
            let entries =
                std::fs::read_dir(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let mut names: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            names.sort();
            files.extend(names);
        } else {
            files.push(path.clone());
        }
    }
    if files.is_empty() {
        return Ok(vec![SplitMessage::parse(&generated_message(args.size))]);
    }
    files
        .iter()
        .map(|f| {
            std::fs::read(f)
                .map(|raw| SplitMessage::parse(&raw))
                .map_err(|e| format!("{}: {e}", f.display()))
        })
        .collect()
}

/// A plain notification mail of about `size` bytes.
pub(crate) fn generated_message(size: usize) -> Vec<u8> {
    let mut m = b"From: Example App <noreply@load.test>\r\n\
To: rcpt@example.net\r\n\
Subject: Your weekly account summary\r\n\
Date: Tue, 24 Nov 2026 08:00:00 +0000\r\n\
Message-ID: <load-test-1@load.test>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: 8bit\r\n\r\n"
        .to_vec();
    let line =
        b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.\r\n";
    while m.len() + line.len() <= size {
        m.extend_from_slice(line);
    }
    m
}
