//! The session state machine driven straight from bytes, as the connection driver
//! drives it but without a socket: framing, command decoding, one session. The
//! property tests and the cargo-fuzz target both run it; neither may ever see it
//! panic, whatever the bytes.

use bytes::BytesMut;

use super::machine::{Session, Step};
use crate::milter::codec::decode_packet;
use crate::milter::command::Command;
use crate::milter::flags::Actions;
use crate::milter::{BodyNeed, Needs, SessionSettings};

const NEEDS: Needs = Needs {
    actions: Actions::ADD_HEADERS,
    headers: true,
    body: BodyNeed::Prefix(64),
};

/// Feeds a byte stream through framing, decoding and a session. Returns how many
/// commands were accepted before the first error.
pub fn drive(bytes: &[u8]) -> usize {
    let mut buf = BytesMut::from(bytes);
    let limits = SessionSettings {
        max_body: 128,
        max_headers: 16,
        max_header_bytes: 1024,
        ..Default::default()
    };
    let mut session = Session::new(1, NEEDS, &limits);
    let mut accepted = 0;
    loop {
        let packet = match decode_packet(&mut buf, 4096) {
            Ok(Some(p)) => p,
            Ok(None) | Err(_) => return accepted,
        };
        let Ok(command) = Command::decode(packet) else {
            return accepted;
        };
        match session.on_command(command) {
            Ok(Step::Close) | Err(_) => return accepted,
            Ok(_) => accepted += 1,
        }
    }
}
