//! Option negotiation: from what the MTA offers (protocol 2 to 6) and what the
//! filter needs, choose the version, the actions and the protocol bits, and the macro
//! lists to ask for. Every event costs the MTA work, so we take only what the checks
//! use: no DATA, EOH or UNKNOWN events, no reply at any step before end-of-message,
//! and exactly the macros we read.

use super::error::ProtocolError;
use super::flags::{Actions, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, Protocol, Stage};
use super::needs::{BodyNeed, Needs};
use super::response::Response;

/// The macros we ask for at each stage: the ones we read, nothing else. A list we
/// send replaces the admin's `milter_*_macros` for that stage, so a shortened
/// main.cf cannot break the sign-or-verify decision, and a long one costs nothing.
///
/// Postfix sends a stage's macros before every event of that stage, one packet
/// per header for the EOH list and per body chunk for the end-of-message list,
/// and looks each name up every time; an empty list would fall back to main.cf's,
/// so the stages we need nothing from get a single space, a list of no names.
pub const MACRO_LISTS: [(Stage, &str); 7] = [
    // Local submission is told apart by {daemon_port} 0 (direction.rs).
    (Stage::Connect, "{daemon_port}"),
    (Stage::Helo, " "),
    // SASL login: outbound, and the auth_user rule condition.
    (Stage::Mail, "{auth_authen}"),
    (Stage::Rcpt, " "),
    (Stage::Data, " "),
    (Stage::Eoh, " "),
    // The queue id, for the decision line and the trace header.
    (Stage::Eom, "i"),
];

/// The outcome of negotiation, which the session obeys for the rest of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    pub version: u32,
    pub actions: Actions,
    pub protocol: Protocol,
    /// Actions the filter may use that this MTA does not allow. A decision that
    /// needs one is refused by the session (tempfail), never half-applied.
    pub missing: Actions,
}

impl Negotiated {
    /// True when we promised not to reply at the step that `nr_bit` stands for.
    #[cfg(test)]
    pub fn no_reply(&self, nr_bit: Protocol) -> bool {
        self.protocol.contains(nr_bit)
    }

    /// True when header values arrive with their leading whitespace intact.
    pub fn headers_exact(&self) -> bool {
        self.protocol.contains(Protocol::HEADER_LEADING_SPACE)
    }
}

pub fn negotiate(
    offered_version: u32,
    offered_actions: u32,
    offered_protocol: u32,
    needs: &Needs,
) -> Result<(Negotiated, Response), ProtocolError> {
    if offered_version < MIN_PROTOCOL_VERSION {
        return Err(ProtocolError::Negotiation(format!(
            "the MTA speaks milter protocol {offered_version}, we need {MIN_PROTOCOL_VERSION} or later"
        )));
    }
    let version = offered_version.min(PROTOCOL_VERSION);
    let offered_actions = match offered_actions {
        0 => Actions::V1_DEFAULT,
        bits => Actions(bits),
    };
    let offered = match offered_protocol {
        0 => Protocol::V1_DEFAULT,
        bits => Protocol(bits),
    };

    // Old MTAs offer fewer actions. Take what they allow: most messages need none
    // of the rest, and one that does is tempfailed by the session.
    let missing = needs.actions.difference(offered_actions);
    let mut actions = needs.actions.difference(missing);
    let use_symlists = version >= 6 && offered_actions.contains(Actions::SET_SYMBOL_LIST);
    if use_symlists {
        actions = actions.union(Actions::SET_SYMBOL_LIST);
    }

    // We decide only at end-of-message, so no earlier step ever needs a reply, and
    // DATA, end-of-headers and unknown commands tell us nothing we use. Their
    // no-reply bits stay too, for an MTA that offers those but not the others.
    let mut want = Protocol::NO_UNKNOWN
        .union(Protocol::NO_DATA)
        .union(Protocol::NO_EOH)
        .union(Protocol::NR_CONNECT)
        .union(Protocol::NR_HELO)
        .union(Protocol::NR_MAIL)
        .union(Protocol::NR_RCPT)
        .union(Protocol::NR_DATA)
        .union(Protocol::NR_EOH)
        .union(Protocol::NR_UNKNOWN)
        .union(Protocol::HEADER_LEADING_SPACE);
    want = if needs.headers {
        want.union(Protocol::NR_HEADER)
    } else {
        want.union(Protocol::NO_HEADERS)
    };
    want = match needs.body {
        BodyNeed::Nothing => want.union(Protocol::NO_BODY),
        BodyNeed::Whole => want.union(Protocol::NR_BODY),
        // Answering each chunk is the price of being able to say "skip the rest".
        BodyNeed::Prefix(_) => want.union(Protocol::SKIP),
    };
    let protocol = want.intersection(offered);

    let macros = if use_symlists {
        MACRO_LISTS
            .iter()
            .map(|(s, names)| (*s, (*names).to_owned()))
            .collect()
    } else {
        Vec::new()
    };
    let reply = Response::OptNeg {
        version,
        actions: actions.0,
        protocol: protocol.0,
        macros,
    };
    Ok((
        Negotiated {
            version,
            actions,
            protocol,
            missing,
        },
        reply,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs(body: BodyNeed) -> Needs {
        Needs {
            actions: Actions::ADD_HEADERS,
            headers: true,
            body,
        }
    }

    #[test]
    fn an_mta_without_no_data_still_gets_no_reply_there() {
        let offered = 0x1f_ffff & !(Protocol::NO_DATA.0 | Protocol::NO_EOH.0);
        let (n, _) = negotiate(6, 0x1ff, offered, &needs(BodyNeed::Whole)).unwrap();
        for bit in [Protocol::NR_DATA, Protocol::NR_EOH] {
            assert!(n.protocol.contains(bit), "{bit:?}");
        }
        assert!(!n.protocol.contains(Protocol::NO_DATA));
    }

    #[test]
    fn postfix_v6_gets_no_reply_everywhere_and_macro_lists() {
        let (n, reply) = negotiate(6, 0x1ff, 0x1f_ffff, &needs(BodyNeed::Whole)).unwrap();
        assert_eq!(n.version, 6);
        assert_eq!(
            n.actions,
            Actions::ADD_HEADERS.union(Actions::SET_SYMBOL_LIST)
        );
        for bit in [
            Protocol::NR_CONNECT,
            Protocol::NR_HELO,
            Protocol::NR_MAIL,
            Protocol::NR_RCPT,
            Protocol::NO_DATA,
            Protocol::NR_HEADER,
            Protocol::NO_EOH,
            Protocol::NR_BODY,
            Protocol::HEADER_LEADING_SPACE,
            Protocol::NO_UNKNOWN,
        ] {
            assert!(n.protocol.contains(bit), "{bit:?}");
        }
        assert!(!n.protocol.contains(Protocol::NO_CONNECT));
        assert!(!n.protocol.contains(Protocol::NO_BODY));
        let Response::OptNeg { macros, .. } = reply else {
            panic!()
        };
        assert_eq!(macros.len(), 7);
        assert!(
            macros
                .iter()
                .any(|(s, m)| *s == Stage::Mail && m.contains("{auth_authen}"))
        );
    }

    #[test]
    fn prefix_body_uses_skip_not_no_reply() {
        let (n, _) = negotiate(6, 0x1ff, 0x1f_ffff, &needs(BodyNeed::Prefix(1000))).unwrap();
        assert!(n.protocol.contains(Protocol::SKIP));
        assert!(!n.protocol.contains(Protocol::NR_BODY));
        let (n, _) = negotiate(6, 0x1ff, 0x1f_ffff, &needs(BodyNeed::Nothing)).unwrap();
        assert!(n.protocol.contains(Protocol::NO_BODY));
    }

    #[test]
    fn old_mtas_get_what_they_can_give() {
        // Protocol 2: Sendmail 8.13 era, actions and steps of the v1 set.
        let (n, reply) = negotiate(2, 0x0f, 0x7f, &needs(BodyNeed::Whole)).unwrap();
        assert_eq!(n.version, 2);
        assert!(!n.no_reply(Protocol::NR_MAIL));
        assert!(!n.headers_exact());
        assert!(
            !n.protocol.contains(Protocol::NR_HEADER),
            "v2 offers no NR bits"
        );
        let Response::OptNeg {
            macros, actions, ..
        } = reply
        else {
            panic!()
        };
        assert!(macros.is_empty());
        assert_eq!(actions, 0x1);
        // All-zero fields mean the v1 sets.
        let (n, _) = negotiate(2, 0, 0, &needs(BodyNeed::Whole)).unwrap();
        assert_eq!(n.actions, Actions::ADD_HEADERS);
        for v in 3..=5 {
            assert_eq!(
                negotiate(v, 0x1ff, 0x3ff, &needs(BodyNeed::Whole))
                    .unwrap()
                    .0
                    .version,
                v
            );
        }
        assert_eq!(
            negotiate(7, 0x1ff, 0x1f_ffff, &needs(BodyNeed::Whole))
                .unwrap()
                .0
                .version,
            6
        );
    }

    #[test]
    fn refusals_say_why() {
        let err = negotiate(1, 0x1ff, 0x7f, &needs(BodyNeed::Whole)).unwrap_err();
        assert!(err.to_string().contains("protocol 1"), "{err}");
    }

    #[test]
    fn actions_the_mta_does_not_offer_are_left_out_and_named() {
        let quarantine = Needs {
            actions: Actions::QUARANTINE.union(Actions::ADD_HEADERS),
            headers: true,
            body: BodyNeed::Whole,
        };
        let (n, _) = negotiate(6, 0x1, 0x1f_ffff, &quarantine).unwrap();
        assert_eq!(n.actions, Actions::ADD_HEADERS);
        assert_eq!(n.missing, Actions::QUARANTINE);
    }
}
