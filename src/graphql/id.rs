//! Opaque global IDs (`node(id:)` resolves any of them): base64url of `Kind:number`.
//! Clients must not parse them; we only promise they are stable.

use async_graphql::ID;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    Organization,
    Agent,
    Queue,
    Conversation,
    AuditEntry,
    Session,
}

impl NodeKind {
    const ALL: [NodeKind; 6] = [
        NodeKind::Organization,
        NodeKind::Agent,
        NodeKind::Queue,
        NodeKind::Conversation,
        NodeKind::AuditEntry,
        NodeKind::Session,
    ];

    fn name(self) -> &'static str {
        match self {
            NodeKind::Organization => "Organization",
            NodeKind::Agent => "Agent",
            NodeKind::Queue => "Queue",
            NodeKind::Conversation => "Conversation",
            NodeKind::AuditEntry => "AuditEntry",
            NodeKind::Session => "Session",
        }
    }
}

/// No row has this number (database ids start at 1): stands for "an id that matches nothing".
pub const NO_ROW: i64 = 0;

pub fn encode(kind: NodeKind, id: i64) -> ID {
    // `Kind:number` written on the stack, then encoded into one allocation: a page makes an
    // ID for each of its nodes and their queues. 40 bytes hold the longest kind and any i64.
    let mut raw = [0u8; 40];
    let name = kind.name().as_bytes();
    let mut number = itoa::Buffer::new();
    let number = number.format(id).as_bytes();
    let written = name.len() + 1 + number.len();
    raw[..name.len()].copy_from_slice(name);
    raw[name.len()] = b':';
    raw[name.len() + 1..written].copy_from_slice(number);
    ID(URL_SAFE_NO_PAD.encode(&raw[..written]))
}

/// The kind and number of a global ID, or None when it is not one of ours. Only the ID
/// `encode` gives is accepted: "Agent:+7" or "Agent:007" would name agent 7 too, and one
/// record with several IDs breaks clients that cache by ID.
pub fn decode(id: &ID) -> Option<(NodeKind, i64)> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(id.as_str()).ok()?).ok()?;
    let (name, number) = raw.split_once(':')?;
    let kind = NodeKind::ALL.into_iter().find(|kind| kind.name() == name)?;
    let number = number.parse().ok().filter(|n| *n > 0)?;
    (encode(kind, number) == *id).then_some((kind, number))
}

/// The number of an ID of the given kind; None for malformed IDs and IDs of other kinds,
/// which callers treat exactly like IDs that do not exist.
pub fn decode_as(id: &ID, expected: NodeKind) -> Option<i64> {
    decode(id).filter(|(kind, _)| *kind == expected).map(|(_, number)| number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_foreign_shapes() {
        let id = encode(NodeKind::Agent, 42);
        assert_eq!(decode(&id), Some((NodeKind::Agent, 42)));
        assert_eq!(decode_as(&id, NodeKind::Organization), None);
        assert_eq!(decode(&ID("not-base64!".into())), None);
        assert_eq!(decode(&ID(URL_SAFE_NO_PAD.encode("Agent:-1"))), None);
        assert_eq!(decode(&ID(URL_SAFE_NO_PAD.encode("Robot:1"))), None);
        for other_spelling in ["Agent:+42", "Agent:042", "Agent: 42"] {
            assert_eq!(decode(&ID(URL_SAFE_NO_PAD.encode(other_spelling))), None, "{other_spelling}");
        }
    }
}
