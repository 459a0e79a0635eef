//! WebSocket frames (RFC 6455) as Plume's engine reads and writes them:
//! headers are parsed and formatted by tungstenite, and everything around
//! them (unmasking, reassembling fragments, the size limit) is kept small
//! enough that an idle socket holds no buffer at all.

use std::io::Cursor;

use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

use crate::transport::input::{InputPermit, SMALL_INPUT_BYTES};

/// The most room kept for received bytes that are not a whole frame yet,
/// once a larger message has been read out of it.
const KEPT_BYTES: usize = 8 * 1024;

/// The longest frame header there is (8 length bytes and a mask).
const MAX_HEADER_BYTES: usize = 14;

/// A whole message from the client, with the share of the input budget it
/// was read with when it is larger than `SMALL_INPUT_BYTES` (held until
/// it has been answered).
#[derive(Debug)]
pub(super) struct Read {
    pub(super) message: Message,
    pub(super) permit: Option<InputPermit>,
}

/// What a client sent.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Message {
    Text(String),
    Binary(Vec<u8>),
    /// A ping's payload, to be echoed in a pong.
    Ping(Vec<u8>),
    /// The client closes the connection.
    Close,
}

/// Why a connection must be closed while it is read; the close code sent.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Violation {
    /// Not a valid client frame (unmasked, reserved bits, bad opcode,
    /// a continuation out of place, a fragmented control frame).
    Protocol,
    /// A message larger than the limit.
    TooLarge,
    /// A text message that is not UTF-8.
    NotText,
}

impl Violation {
    /// The WebSocket close code for it.
    pub(super) fn code(&self) -> u16 {
        match self {
            Self::Protocol => 1002,
            Self::TooLarge => 1009,
            Self::NotText => 1007,
        }
    }
}

/// Reads client frames from the bytes the socket received and puts
/// fragments back together, refusing any message over `max_message`
/// bytes from its header, before its payload is buffered.
///
/// A message larger than `SMALL_INPUT_BYTES` is read only with a share of
/// the input budget (as a large REST body is): at its first frame header
/// the reader stops and [wants the budget](Self::wants_budget) until it
/// is [granted](Self::grant), so that large messages in flight are
/// bounded across all sockets and a socket that waits is not read.
#[derive(Debug)]
pub(super) struct Reader {
    max_message: usize,
    /// Received bytes not yet part of a whole frame.
    pending: Vec<u8>,
    /// A fragmented message so far: whether it is text, and its bytes.
    partial: Option<(bool, Vec<u8>)>,
    /// The budget the message being read holds.
    permit: Option<InputPermit>,
    /// The next frame makes the message large, and it holds no budget.
    wants_budget: bool,
}

impl Reader {
    pub(super) fn new(max_message: usize) -> Self {
        Self {
            max_message,
            pending: Vec::new(),
            partial: None,
            permit: None,
            wants_budget: false,
        }
    }

    /// True when reading stopped for a share of the budget.
    pub(super) fn wants_budget(&self) -> bool {
        self.wants_budget
    }

    /// True while a large message holds its share of the budget.
    pub(super) fn holds_budget(&self) -> bool {
        self.permit.is_some()
    }

    /// Gives the message being read its share of the budget and reads on
    /// through what was received meanwhile.
    pub(super) fn grant(&mut self, permit: InputPermit) -> Result<Vec<Read>, Violation> {
        self.permit = Some(permit);
        self.wants_budget = false;
        self.feed(&[])
    }

    /// Bytes received and not yet part of a whole frame.
    #[cfg(test)]
    pub(super) fn buffered(&self) -> usize {
        self.pending.len()
    }

    /// Takes `bytes` just read and gives every message they complete.
    pub(super) fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Read>, Violation> {
        self.pending.extend_from_slice(bytes);
        let mut messages = Vec::new();
        let mut at = 0;
        while let Some((message, used)) = self.next_frame(at)? {
            at += used;
            if let Some(message) = message {
                let permit = match message {
                    // A control frame can come in the middle of a large
                    // message, which keeps its budget.
                    Message::Ping(_) | Message::Close => None,
                    Message::Text(_) | Message::Binary(_) => self.permit.take(),
                };
                messages.push(Read { message, permit });
            }
        }
        self.pending.drain(..at);
        if self.pending.is_empty() {
            // An idle socket holds no buffer: the next read allocates anew.
            self.pending = Vec::new();
        } else if self.pending.capacity() > KEPT_BYTES && self.pending.len() <= KEPT_BYTES {
            // Nor the room a large message needed, for the start of the
            // next frame.
            self.pending.shrink_to(KEPT_BYTES);
        }
        Ok(messages)
    }

    /// The frame starting at `at` if it is whole: the message it
    /// completes (if any) and its length in bytes.
    fn next_frame(&mut self, at: usize) -> Result<Option<(Option<Message>, usize)>, Violation> {
        let mut cursor = Cursor::new(&self.pending[at..]);
        let (header, length) = match FrameHeader::parse(&mut cursor) {
            Ok(Some(parsed)) => parsed,
            Ok(None) => return Ok(None),
            Err(_) => return Err(Violation::Protocol),
        };
        if header.rsv1 || header.rsv2 || header.rsv3 {
            return Err(Violation::Protocol);
        }
        let Some(mask) = header.mask else {
            return Err(Violation::Protocol);
        };
        if matches!(header.opcode, OpCode::Control(_)) && length > 125 {
            return Err(Violation::Protocol);
        }
        let so_far = self.partial.as_ref().map_or(0, |(_, bytes)| bytes.len());
        let length = usize::try_from(length).map_err(|_| Violation::TooLarge)?;
        let total = length.saturating_add(so_far);
        if total > self.max_message {
            return Err(Violation::TooLarge);
        }
        if total > SMALL_INPUT_BYTES
            && self.permit.is_none()
            && matches!(header.opcode, OpCode::Data(_))
        {
            self.wants_budget = true;
            return Ok(None);
        }
        let start = usize::try_from(cursor.position()).map_err(|_| Violation::Protocol)?;
        let end = start.checked_add(length).ok_or(Violation::TooLarge)?;
        let frame = &self.pending[at..];
        if frame.len() < end {
            // Not reserved ahead: a header alone does not make the server
            // allocate what it announces.
            return Ok(None);
        }
        let mut payload = frame[start..end].to_vec();
        for (i, byte) in payload.iter_mut().enumerate() {
            *byte ^= mask[i % 4];
        }
        let message = self.message(header.opcode, header.is_final, payload)?;
        Ok(Some((message, end)))
    }

    fn message(
        &mut self,
        opcode: OpCode,
        is_final: bool,
        payload: Vec<u8>,
    ) -> Result<Option<Message>, Violation> {
        let (text, bytes) = match opcode {
            OpCode::Control(control) => {
                if !is_final {
                    return Err(Violation::Protocol);
                }
                return match control {
                    Control::Ping => Ok(Some(Message::Ping(payload))),
                    Control::Pong => Ok(None),
                    Control::Close => Ok(Some(Message::Close)),
                    Control::Reserved(_) => Err(Violation::Protocol),
                };
            }
            OpCode::Data(Data::Continue) => {
                let Some((text, mut bytes)) = self.partial.take() else {
                    return Err(Violation::Protocol);
                };
                bytes.extend_from_slice(&payload);
                (text, bytes)
            }
            OpCode::Data(data @ (Data::Text | Data::Binary)) => {
                if self.partial.is_some() {
                    return Err(Violation::Protocol);
                }
                (data == Data::Text, payload)
            }
            OpCode::Data(Data::Reserved(_)) => return Err(Violation::Protocol),
        };
        if !is_final {
            self.partial = Some((text, bytes));
            return Ok(None);
        }
        if text {
            String::from_utf8(bytes)
                .map(|text| Some(Message::Text(text)))
                .map_err(|_| Violation::NotText)
        } else {
            Ok(Some(Message::Binary(bytes)))
        }
    }
}

/// The header of a server frame (never masked) with `length` payload
/// bytes, right-aligned in `MAX_HEADER_BYTES`: returns the bytes and
/// where they start.
fn header(opcode: OpCode, length: usize) -> ([u8; MAX_HEADER_BYTES], usize) {
    let header = FrameHeader {
        opcode,
        ..FrameHeader::default()
    };
    let length = length as u64;
    let size = header.len(length);
    let mut bytes = [0; MAX_HEADER_BYTES];
    let start = MAX_HEADER_BYTES - size;
    // Writing into a slice of exactly the header's size cannot fail.
    let _ = header.format(length, &mut &mut bytes[start..]);
    (bytes, start)
}

/// A text frame built in place: the payload is written after room for the
/// longest header, which goes in front of it once its length is known, so
/// a frame is one allocation and no copy.
pub(super) struct TextFrame {
    bytes: Vec<u8>,
}

impl TextFrame {
    /// An empty frame with room for about `capacity` payload bytes.
    pub(super) fn with_capacity(capacity: usize) -> Self {
        let mut bytes = Vec::with_capacity(MAX_HEADER_BYTES + capacity);
        bytes.resize(MAX_HEADER_BYTES, 0);
        Self { bytes }
    }

    /// The payload, to write to.
    pub(super) fn payload(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }

    /// The frame's bytes.
    pub(super) fn finish(self) -> bytes::Bytes {
        let length = self.bytes.len() - MAX_HEADER_BYTES;
        let (header, start) = header(OpCode::Data(Data::Text), length);
        let mut bytes = self.bytes;
        bytes[start..MAX_HEADER_BYTES].copy_from_slice(&header[start..]);
        bytes::Bytes::from(bytes).slice(start..)
    }
}

/// A text frame of `text`.
pub(super) fn text(text: &str) -> bytes::Bytes {
    let mut frame = TextFrame::with_capacity(text.len());
    frame.payload().extend_from_slice(text.as_bytes());
    frame.finish()
}

/// A control frame (pong, close) with `payload` (at most 125 bytes).
pub(super) fn control(control: Control, payload: &[u8]) -> bytes::Bytes {
    let payload = &payload[..payload.len().min(125)];
    let (header, start) = header(OpCode::Control(control), payload.len());
    let mut bytes = header[start..].to_vec();
    bytes.extend_from_slice(payload);
    bytes::Bytes::from(bytes)
}

/// A close frame with `code`.
pub(super) fn close(code: u16) -> bytes::Bytes {
    control(Control::Close, &code.to_be_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client frame: masked with `mask`.
    fn client(opcode: OpCode, is_final: bool, payload: &[u8]) -> Vec<u8> {
        let mask = [1, 2, 3, 4];
        let header = FrameHeader {
            is_final,
            opcode,
            mask: Some(mask),
            ..FrameHeader::default()
        };
        let mut bytes = Vec::new();
        header.format(payload.len() as u64, &mut bytes).unwrap();
        bytes.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        bytes
    }

    const TEXT: OpCode = OpCode::Data(Data::Text);
    const MORE: OpCode = OpCode::Data(Data::Continue);

    /// The messages of `feed`, without their budget.
    fn messages(read: Result<Vec<Read>, Violation>) -> Result<Vec<Message>, Violation> {
        read.map(|reads| reads.into_iter().map(|read| read.message).collect())
    }

    #[test]
    fn whole_frames_give_messages_and_split_ones_wait() {
        let mut reader = Reader::new(1024);
        let mut bytes = client(TEXT, true, b"40");
        bytes.extend(client(OpCode::Data(Data::Binary), true, &[0, 1, 2]));
        bytes.extend(client(TEXT, true, "42[\"é\"]".as_bytes()));
        let (first, rest) = bytes.split_at(bytes.len() - 3);
        assert_eq!(
            messages(reader.feed(first)).unwrap(),
            vec![Message::Text("40".into()), Message::Binary(vec![0, 1, 2])]
        );
        assert!(reader.buffered() > 0);
        assert_eq!(
            messages(reader.feed(rest)).unwrap(),
            vec![Message::Text("42[\"é\"]".into())]
        );
        assert_eq!(reader.pending.capacity(), 0);
    }

    #[test]
    fn fragments_are_joined_around_control_frames() {
        let mut reader = Reader::new(1024);
        let mut bytes = client(TEXT, false, b"42[");
        bytes.extend(client(OpCode::Control(Control::Ping), true, b"hi"));
        bytes.extend(client(MORE, false, b"1,"));
        bytes.extend(client(MORE, true, b"2]"));
        assert_eq!(
            messages(reader.feed(&bytes)).unwrap(),
            vec![
                Message::Ping(b"hi".to_vec()),
                Message::Text("42[1,2]".into())
            ]
        );
    }

    #[test]
    fn a_message_over_the_limit_is_refused_from_its_header() {
        let mut reader = Reader::new(10);
        let bytes = client(TEXT, true, &[b'x'; 11]);
        // Only the header (2 bytes and the mask) has arrived: refused
        // before the payload.
        assert_eq!(messages(reader.feed(&bytes[..6])), Err(Violation::TooLarge));
        let mut reader = Reader::new(10);
        let mut bytes = client(TEXT, false, &[b'x'; 6]);
        bytes.extend(client(MORE, true, &[b'x'; 6]));
        assert_eq!(messages(reader.feed(&bytes)), Err(Violation::TooLarge));
    }

    #[test]
    fn a_large_message_is_read_only_with_a_share_of_the_budget() {
        let budget = crate::transport::input::InputBudget::new(4 * SMALL_INPUT_BYTES);
        let mut reader = Reader::new(4 * SMALL_INPUT_BYTES);
        let large = "x".repeat(SMALL_INPUT_BYTES + 1);
        let mut bytes = client(TEXT, true, b"small");
        bytes.extend(client(TEXT, false, large.as_bytes()));
        bytes.extend(client(OpCode::Control(Control::Ping), true, b"p"));
        bytes.extend(client(MORE, true, b"!"));
        bytes.extend(client(TEXT, true, b"after"));
        // Up to the large message's first frame, and no further.
        let reads = reader.feed(&bytes).unwrap();
        assert_eq!(reads.len(), 1);
        assert!(reads[0].permit.is_none());
        assert!(reader.wants_budget());
        assert!(reader.feed(&[]).unwrap().is_empty());
        // Granted: the rest is read, and the budget goes with the message.
        let permit = budget.try_take(4 * SMALL_INPUT_BYTES).unwrap();
        let reads = reader.grant(permit).unwrap();
        assert!(!reader.wants_budget() && !reader.holds_budget());
        let kinds: Vec<_> = reads
            .iter()
            .map(|read| {
                (
                    read.message == Message::Text("after".into()),
                    read.permit.is_some(),
                )
            })
            .collect();
        assert_eq!(kinds, [(false, false), (false, true), (true, false)]);
        assert!(
            budget.try_take(SMALL_INPUT_BYTES + 1).is_err(),
            "still held"
        );
        drop(reads);
        assert!(budget.try_take(SMALL_INPUT_BYTES + 1).is_ok());
    }

    #[test]
    fn the_room_of_a_large_message_is_not_kept() {
        let mut reader = Reader::new(64 * 1024);
        let mut bytes = client(TEXT, true, &[b'x'; 60 * 1024]);
        // The first byte of the next frame.
        bytes.push(0x81);
        let reads = reader.feed(&bytes).unwrap();
        assert_eq!(reads.len(), 1);
        assert_eq!(reader.buffered(), 1);
        assert!(reader.pending.capacity() <= KEPT_BYTES);
    }

    #[test]
    fn bad_frames_are_violations() {
        let unmasked = [0x81, 0x01, b'x'];
        assert_eq!(
            messages(Reader::new(10).feed(&unmasked)),
            Err(Violation::Protocol)
        );
        let stray = client(MORE, true, b"x");
        assert_eq!(
            messages(Reader::new(10).feed(&stray)),
            Err(Violation::Protocol)
        );
        let not_utf8 = client(TEXT, true, &[0xff]);
        assert_eq!(
            messages(Reader::new(10).feed(&not_utf8)),
            Err(Violation::NotText)
        );
        let split_ping = client(OpCode::Control(Control::Ping), false, b"x");
        assert_eq!(
            messages(Reader::new(10).feed(&split_ping)),
            Err(Violation::Protocol)
        );
        let long_ping = client(OpCode::Control(Control::Ping), true, &[0; 126]);
        assert_eq!(
            messages(Reader::new(1024).feed(&long_ping)),
            Err(Violation::Protocol)
        );
        let mut reserved = client(TEXT, true, b"x");
        reserved[0] |= 0x40;
        assert_eq!(
            messages(Reader::new(10).feed(&reserved)),
            Err(Violation::Protocol)
        );
    }

    #[test]
    fn server_frames_have_the_shortest_header() {
        assert_eq!(&text("2")[..], &[0x81, 1, b'2']);
        let long = text(&"x".repeat(300));
        assert_eq!(&long[..4], &[0x81, 126, 1, 44]);
        assert_eq!(long.len(), 304);
        let huge = text(&"x".repeat(70_000));
        assert_eq!(huge[1], 127);
        assert_eq!(huge.len(), 70_010);
        assert_eq!(&close(1009)[..], &[0x88, 2, 0x03, 0xf1]);
    }
}
