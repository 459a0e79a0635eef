//! The socket.io v5 packets Plume's engine reads from a client (inside an
//! engine.io v4 message) and the ones it writes.
//!
//! A packet is `<type>[<attachments>-][<namespace>,][<ack id>][<JSON>]`:
//! type `0` connect, `1` disconnect, `2` event, `3` ack, `4` connect
//! error, `5` binary event, `6` binary ack.

use serde_json::Value;

/// The namespace Feathers serves; a packet without one is for it.
pub(super) const MAIN_NAMESPACE: &str = "/";

/// A packet from a client, borrowing from its text.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Packet<'a> {
    /// Connect to `namespace`, with the `auth` payload's JSON (empty when
    /// none was sent).
    Connect { namespace: &'a str, auth: &'a str },
    /// Leave `namespace`.
    Disconnect { namespace: &'a str },
    /// An event: `["<name>", ...args]`, with an ack id when the client
    /// waits for an answer.
    Event {
        namespace: &'a str,
        ack: Option<u64>,
        json: &'a str,
    },
    /// An event whose binary attachments follow in as many binary
    /// messages.
    BinaryEvent {
        namespace: &'a str,
        ack: Option<u64>,
        attachments: usize,
    },
    /// An ack (plain or binary; Plume never asks a client for one) with
    /// the number of binary attachments that follow it.
    Ack { attachments: usize },
}

/// Reads a packet; `None` for text that is not one.
pub(super) fn parse(text: &str) -> Option<Packet<'_>> {
    let mut chars = text.char_indices();
    let (_, kind) = chars.next()?;
    let mut rest = &text[kind.len_utf8()..];
    let attachments = if matches!(kind, '5' | '6') {
        let (count, after) = rest.split_once('-')?;
        if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        rest = after;
        count.parse::<usize>().ok()?
    } else {
        0
    };
    let namespace = if rest.starts_with('/') {
        let (namespace, after) = rest.split_once(',').unwrap_or((rest, ""));
        rest = after;
        namespace
    } else {
        MAIN_NAMESPACE
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let ack = if digits > 0 && matches!(kind, '2' | '3' | '5' | '6') {
        let id = rest[..digits].parse::<u64>().ok()?;
        rest = &rest[digits..];
        Some(id)
    } else {
        None
    };
    Some(match kind {
        '0' => Packet::Connect {
            namespace,
            auth: rest,
        },
        '1' => Packet::Disconnect { namespace },
        '2' => Packet::Event {
            namespace,
            ack,
            json: rest,
        },
        '5' => Packet::BinaryEvent {
            namespace,
            ack,
            attachments,
        },
        '3' | '6' => Packet::Ack { attachments },
        _ => return None,
    })
}

/// The engine.io open packet of a WebSocket session: no upgrades (it is
/// already on the best transport) and the heartbeat's timing.
pub(super) fn open(sid: &str, ping_interval_ms: u64, ping_timeout_ms: u64, max: usize) -> String {
    let open = serde_json::json!({
        "sid": sid,
        "upgrades": [],
        "pingInterval": ping_interval_ms,
        "pingTimeout": ping_timeout_ms,
        "maxPayload": max,
    });
    format!("0{open}")
}

/// The connect answer of the main namespace, inside an engine.io message.
pub(super) fn connected(sid: &str) -> String {
    format!("40{}", serde_json::json!({ "sid": sid }))
}

/// A refused connect, with the reason's text.
pub(super) fn connect_error(namespace: &str, message: &str) -> String {
    let data = serde_json::json!({ "message": message });
    if namespace == MAIN_NAMESPACE {
        format!("44{data}")
    } else {
        format!("44{namespace},{data}")
    }
}

/// The server's disconnect of the main namespace.
pub(super) const DISCONNECT: &str = "41";

/// An ack of `id` carrying `args`, inside an engine.io message.
pub(super) fn ack(id: u64, args: &Value) -> String {
    let mut text = format!("43{id}");
    text.push_str(&args.to_string());
    text
}

/// Writes the engine.io message of the event `name` with `data` to `out`.
pub(super) fn write_event(out: &mut Vec<u8>, name: &str, data: &Value) {
    out.extend_from_slice(b"42[");
    // Writing JSON values to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, name);
    out.push(b',');
    let _ = serde_json::to_writer(&mut *out, data);
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn packets_are_read_with_their_parts() {
        assert_eq!(
            parse("0"),
            Some(Packet::Connect {
                namespace: "/",
                auth: ""
            })
        );
        assert_eq!(
            parse("0/admin,{\"token\":1}"),
            Some(Packet::Connect {
                namespace: "/admin",
                auth: "{\"token\":1}"
            })
        );
        assert_eq!(
            parse("2[\"find\",\"x\"]"),
            Some(Packet::Event {
                namespace: "/",
                ack: None,
                json: "[\"find\",\"x\"]"
            })
        );
        assert_eq!(
            parse("212[\"get\"]"),
            Some(Packet::Event {
                namespace: "/",
                ack: Some(12),
                json: "[\"get\"]"
            })
        );
        assert_eq!(
            parse("51-/admin,3[\"x\",{\"_placeholder\":true,\"num\":0}]"),
            Some(Packet::BinaryEvent {
                namespace: "/admin",
                ack: Some(3),
                attachments: 1
            })
        );
        assert_eq!(parse("1"), Some(Packet::Disconnect { namespace: "/" }));
        assert_eq!(
            parse("1/admin"),
            Some(Packet::Disconnect {
                namespace: "/admin"
            })
        );
        assert_eq!(parse("62-1[]"), Some(Packet::Ack { attachments: 2 }));
    }

    #[test]
    fn what_is_not_a_packet_is_none() {
        for text in [
            "",
            "9",
            "x",
            "5[]",
            "5x-[]",
            "5-[]",
            "2999999999999999999999[]",
            "é",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
    }

    #[test]
    fn packets_are_written_as_clients_read_them() {
        assert_eq!(connected("abc"), "40{\"sid\":\"abc\"}");
        assert_eq!(
            connect_error("/", "No \"x\""),
            "44{\"message\":\"No \\\"x\\\"\"}"
        );
        assert_eq!(
            connect_error("/admin", "Invalid namespace"),
            "44/admin,{\"message\":\"Invalid namespace\"}"
        );
        assert_eq!(ack(7, &json!([null, {"id": 1}])), "437[null,{\"id\":1}]");
        let mut out = Vec::new();
        write_event(&mut out, "messages created", &json!({"text": "hi"}));
        assert_eq!(out, b"42[\"messages created\",{\"text\":\"hi\"}]");
        let open: Value = serde_json::from_str(&open("s", 25000, 20000, 10)[1..]).unwrap();
        assert_eq!(open["upgrades"], json!([]));
        assert_eq!(open["pingInterval"], json!(25000));
    }
}
