//! Numeric constants of milter protocol version 6: action bits the milter may ask
//! for, protocol bits that switch steps off or promise no reply, and the macro stage
//! indices used in option negotiation. Values are from Sendmail's `mfdef.h`/`mfapi.h`.

/// The newest protocol version we speak.
pub const PROTOCOL_VERSION: u32 = 6;
/// The oldest MTA protocol version we accept (libmilter refuses older ones too).
pub const MIN_PROTOCOL_VERSION: u32 = 2;

/// A set of `SMFIF_*` action bits: what the milter may do at end-of-message.
#[derive(Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Actions(pub u32);

impl Actions {
    pub const ADD_HEADERS: Actions = Actions(0x1);
    pub const CHANGE_BODY: Actions = Actions(0x2);
    pub const ADD_RCPT: Actions = Actions(0x4);
    pub const DELETE_RCPT: Actions = Actions(0x8);
    pub const CHANGE_HEADERS: Actions = Actions(0x10);
    pub const QUARANTINE: Actions = Actions(0x20);
    pub const CHANGE_FROM: Actions = Actions(0x40);
    pub const ADD_RCPT_PARAMS: Actions = Actions(0x80);
    pub const SET_SYMBOL_LIST: Actions = Actions(0x100);
    /// What libmilter assumes when an MTA sends an all-zero action field (protocol v1).
    pub const V1_DEFAULT: Actions = Actions(0x0F);

    pub const fn empty() -> Self {
        Actions(0)
    }
    pub const fn union(self, other: Actions) -> Self {
        Actions(self.0 | other.0)
    }
    pub const fn contains(self, other: Actions) -> bool {
        self.0 & other.0 == other.0
    }
    pub const fn difference(self, other: Actions) -> Self {
        Actions(self.0 & !other.0)
    }
}

impl std::fmt::Debug for Actions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Actions({:#x})", self.0)
    }
}

/// A set of `SMFIP_*` protocol bits: steps switched off, steps answered without a
/// reply, and optional features.
#[derive(Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Protocol(pub u32);

impl Protocol {
    pub const NO_CONNECT: Protocol = Protocol(0x1);
    pub const NO_HELO: Protocol = Protocol(0x2);
    pub const NO_MAIL: Protocol = Protocol(0x4);
    pub const NO_RCPT: Protocol = Protocol(0x8);
    pub const NO_BODY: Protocol = Protocol(0x10);
    pub const NO_HEADERS: Protocol = Protocol(0x20);
    pub const NO_EOH: Protocol = Protocol(0x40);
    pub const NR_HEADER: Protocol = Protocol(0x80);
    pub const NO_UNKNOWN: Protocol = Protocol(0x100);
    pub const NO_DATA: Protocol = Protocol(0x200);
    pub const SKIP: Protocol = Protocol(0x400);
    pub const RCPT_REJECTED: Protocol = Protocol(0x800);
    pub const NR_CONNECT: Protocol = Protocol(0x1000);
    pub const NR_HELO: Protocol = Protocol(0x2000);
    pub const NR_MAIL: Protocol = Protocol(0x4000);
    pub const NR_RCPT: Protocol = Protocol(0x8000);
    pub const NR_DATA: Protocol = Protocol(0x10000);
    pub const NR_UNKNOWN: Protocol = Protocol(0x20000);
    pub const NR_EOH: Protocol = Protocol(0x40000);
    pub const NR_BODY: Protocol = Protocol(0x80000);
    pub const HEADER_LEADING_SPACE: Protocol = Protocol(0x100000);
    /// What libmilter assumes when an MTA sends an all-zero protocol field (v1).
    pub const V1_DEFAULT: Protocol = Protocol(0x3F);
    /// Everything Postfix 3.x offers at protocol version 6.
    pub const POSTFIX_V6: Protocol = Protocol(0x1F_FFFF);

    pub const fn empty() -> Self {
        Protocol(0)
    }
    pub const fn union(self, other: Protocol) -> Self {
        Protocol(self.0 | other.0)
    }
    pub const fn contains(self, other: Protocol) -> bool {
        self.0 & other.0 == other.0
    }
    pub const fn intersection(self, other: Protocol) -> Self {
        Protocol(self.0 & other.0)
    }
}

impl std::fmt::Debug for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Protocol({:#x})", self.0)
    }
}

/// The stages at which an MTA sends macros. The numbering is the `SMFIM_*` index used
/// in the option-negotiation macro lists; note that EOM (5) comes before EOH (6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    Connect,
    Helo,
    Mail,
    Rcpt,
    Data,
    Eom,
    Eoh,
    Unknown,
}

impl Stage {
    /// Every stage, in the order an SMTP transaction reaches them.
    pub const ALL: [Stage; 8] = [
        Stage::Connect,
        Stage::Helo,
        Stage::Mail,
        Stage::Rcpt,
        Stage::Data,
        Stage::Eoh,
        Stage::Eom,
        Stage::Unknown,
    ];

    /// The `SMFIM_*` index, or `None` for a stage that has no list of its own.
    pub const fn symlist_index(self) -> Option<u32> {
        match self {
            Stage::Connect => Some(0),
            Stage::Helo => Some(1),
            Stage::Mail => Some(2),
            Stage::Rcpt => Some(3),
            Stage::Data => Some(4),
            Stage::Eom => Some(5),
            Stage::Eoh => Some(6),
            Stage::Unknown => None,
        }
    }

    pub const fn from_symlist_index(index: u32) -> Option<Stage> {
        Some(match index {
            0 => Stage::Connect,
            1 => Stage::Helo,
            2 => Stage::Mail,
            3 => Stage::Rcpt,
            4 => Stage::Data,
            5 => Stage::Eom,
            6 => Stage::Eoh,
            _ => return None,
        })
    }

    /// The stage a macro packet's command letter belongs to. Postfix labels the copies
    /// it sends before each header (`L`) and body chunk (`B`) with those letters while
    /// carrying the end-of-header and end-of-message lists.
    pub const fn from_command_letter(letter: u8) -> Option<Stage> {
        Some(match letter {
            b'C' => Stage::Connect,
            b'H' => Stage::Helo,
            b'M' => Stage::Mail,
            b'R' => Stage::Rcpt,
            b'T' => Stage::Data,
            b'N' | b'L' => Stage::Eoh,
            b'E' | b'B' => Stage::Eom,
            b'U' => Stage::Unknown,
            _ => return None,
        })
    }

    /// Position in [`Stage::ALL`], used to clear the stages after this one.
    pub const fn order(self) -> usize {
        match self {
            Stage::Connect => 0,
            Stage::Helo => 1,
            Stage::Mail => 2,
            Stage::Rcpt => 3,
            Stage::Data => 4,
            Stage::Eoh => 5,
            Stage::Eom => 6,
            Stage::Unknown => 7,
        }
    }
}
