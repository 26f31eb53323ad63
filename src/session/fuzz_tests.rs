//! Property tests of everything that reads bytes from the MTA: framing, command
//! decoding and the session state machine must return errors, never panic, on any
//! input. `PROPTEST_CASES=1000000 cargo test --release fuzz_` runs them for minutes.
//! Inputs that ever broke them are kept below as named regression tests.

use bytes::{BufMut, BytesMut};
use proptest::prelude::*;

use super::drive::drive;
use crate::milter::codec::decode_packet;
use crate::milter::command::Command;

/// A packet with a plausible command byte and an arbitrary payload.
fn packet() -> impl Strategy<Value = Vec<u8>> {
    let code = prop::sample::select(b"OCHMRTLNBEAQKUDZ".to_vec());
    (code, prop::collection::vec(any::<u8>(), 0..40)).prop_map(|(code, payload)| {
        let mut out = BytesMut::new();
        out.put_u32(payload.len() as u32 + 1);
        out.put_u8(code);
        out.put_slice(&payload);
        out.to_vec()
    })
}

/// A valid negotiation followed by plausible packets, to get past the first step.
fn session_stream() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(packet(), 0..30).prop_map(|packets| {
        let mut out = BytesMut::new();
        Command::OptNeg {
            version: 6,
            actions: 0x1ff,
            protocol: 0x1f_ffff,
        }
        .encode(&mut out);
        for p in packets {
            out.put_slice(&p);
        }
        out.to_vec()
    })
}

proptest! {
    #[test]
    fn fuzz_random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        drive(&bytes);
    }

    #[test]
    fn fuzz_plausible_sessions_never_panic(bytes in session_stream()) {
        drive(&bytes);
    }

    #[test]
    fn fuzz_commands_round_trip(bytes in session_stream()) {
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(packet)) = decode_packet(&mut buf, 4096) {
            if let Ok(command) = Command::decode(packet) {
                let mut again = BytesMut::new();
                command.encode(&mut again);
                let re = decode_packet(&mut again, 4096).unwrap().unwrap();
                prop_assert_eq!(Command::decode(re).unwrap(), command);
            }
        }
    }
}

#[test]
fn a_postfix_like_stream_is_accepted_to_the_end() {
    let mut out = BytesMut::new();
    for command in [
        Command::OptNeg {
            version: 6,
            actions: 0x1ff,
            protocol: 0x1f_ffff,
        },
        Command::Connect {
            hostname: "h".into(),
            address: crate::milter::command::ClientAddress::Unknown,
        },
        Command::Mail {
            sender: "<>".into(),
            params: vec![],
        },
        Command::Rcpt {
            recipient: "<a@b>".into(),
            params: vec![],
        },
        Command::Body(bytes::Bytes::from_static(b"x")),
        Command::EndOfMessage(bytes::Bytes::new()),
        Command::Abort,
        Command::Quit,
    ] {
        command.encode(&mut out);
    }
    assert_eq!(drive(&out), 7, "every command up to QUIT was accepted");
}
