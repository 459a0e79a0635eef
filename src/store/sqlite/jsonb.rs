//! Reads the top-level fields of a record stored as SQLite's binary JSON
//! (JSONB), for the query matcher ([`super::matcher`]), which tests every
//! condition of a query in one pass over the record instead of one
//! `json_extract` call (a few hundred nanoseconds each) per field.
//!
//! The format is SQLite's documented JSONB: each element is a header
//! whose low four bits are its type and whose high four bits are its
//! payload size (0–11), or say that the size follows in the next 1, 2, 4
//! or 8 bytes (12–15, big-endian); then the payload. Numbers are stored as
//! their text, strings as UTF-8 with or without escapes, and an object as
//! its keys and values in turn.
//!
//! Reading never panics and never fails: bytes that are not well-formed
//! JSONB read as [`Scalar::Other`], which no query value equals or orders
//! against, so a damaged record matches nothing but negations.

use std::borrow::Cow;

/// A stored value as the comparison rules see it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Scalar<'a> {
    /// `null`, or a missing field.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as `f64` (the memory store's comparison).
    Number(f64),
    /// A string, unescaped.
    Str(Cow<'a, str>),
    /// An array or an object: the JSONB element, header included. Equal
    /// to no query value and ordered against none; sorted by its JSON
    /// text ([`write_json`]).
    Composite(&'a [u8]),
    /// Bytes that are not JSONB: equal to no query value, ordered against
    /// none, sorted as `null`.
    Other,
}

const NULL: u8 = 0;
const TRUE: u8 = 1;
const FALSE: u8 = 2;
const INT: u8 = 3;
const INT5: u8 = 4;
const FLOAT: u8 = 5;
const FLOAT5: u8 = 6;
const TEXT: u8 = 7;
const TEXTJ: u8 = 8;
const TEXT5: u8 = 9;
const TEXTRAW: u8 = 10;
const ARRAY: u8 = 11;
const OBJECT: u8 = 12;

/// One element: its type and payload, and where it starts and the next
/// one does.
struct Element<'a> {
    kind: u8,
    payload: &'a [u8],
    start: usize,
    end: usize,
}

/// The element starting at `at`, or `None` when the bytes there are not
/// one.
#[inline]
fn element(buf: &[u8], at: usize) -> Option<Element<'_>> {
    let header = *buf.get(at)?;
    let kind = header & 0x0f;
    let size_code = header >> 4;
    let (size, start) = match size_code {
        0..=11 => (usize::from(size_code), at + 1),
        code => {
            let width = 1usize << (code - 12);
            let bytes = buf.get(at + 1..at + 1 + width)?;
            let size = bytes
                .iter()
                .try_fold(0u64, |n, b| n.checked_mul(256).map(|n| n + u64::from(*b)))?;
            (usize::try_from(size).ok()?, at + 1 + width)
        }
    };
    let end = start.checked_add(size)?;
    Some(Element {
        kind,
        payload: buf.get(start..end)?,
        start: at,
        end,
    })
}

/// Up to 64 field names, looked up in one pass over a record
/// ([`FieldSet::read`]).
#[derive(Debug)]
pub(super) struct FieldSet {
    names: Vec<Box<[u8]>>,
    /// For each [`signature`], the names (bit i: `names[i]`) that have
    /// it: a key is compared only with the names it could be, rather than
    /// with each of them (which was most of a query's time).
    by_signature: Box<[u64; 256]>,
}

/// A byte from a name's length and its first and last bytes.
fn signature(name: &[u8]) -> usize {
    let first = usize::from(name.first().copied().unwrap_or(0));
    let last = usize::from(name.last().copied().unwrap_or(0));
    (name.len().wrapping_mul(7) ^ first.wrapping_mul(3) ^ last) & 0xff
}

impl FieldSet {
    /// The names to look up: at most 64 (the rest are ignored).
    pub(super) fn new(names: &[impl AsRef<str>]) -> Self {
        let names: Vec<Box<[u8]>> = names
            .iter()
            .take(64)
            .map(|n| Box::from(n.as_ref().as_bytes()))
            .collect();
        let mut by_signature = Box::new([0u64; 256]);
        for (i, name) in names.iter().enumerate() {
            by_signature[signature(name)] |= 1 << i;
        }
        Self {
            names,
            by_signature,
        }
    }

    /// Finds the fields of the record `blob` in one pass: `out[i]` is set
    /// to the value of the i-th name (the first such key, as
    /// `json_extract` reads it), and stays [`Scalar::Null`] when the field
    /// is missing. A record that is not an object has no fields.
    pub(super) fn read<'a>(&self, blob: &'a [u8], out: &mut [Scalar<'a>]) {
        for slot in out.iter_mut() {
            *slot = Scalar::Null;
        }
        let Some(root) = element(blob, 0) else {
            return;
        };
        if root.kind != OBJECT {
            return;
        }
        let body = root.payload;
        // Bit i: names[i] is still to find.
        let mut wanted: u64 = match self.names.len() {
            64 => u64::MAX,
            n => (1u64 << n) - 1,
        };
        let mut at = 0;
        while at < body.len() && wanted != 0 {
            let Some(key) = element(body, at) else {
                return;
            };
            let Some(value) = element(body, key.end) else {
                return;
            };
            at = value.end;
            let Some(key) = key_bytes(key.kind, key.payload) else {
                continue;
            };
            let mut candidates = self.by_signature[signature(&key)] & wanted;
            while candidates != 0 {
                let i = candidates.trailing_zeros() as usize;
                candidates &= candidates - 1;
                if same(&key, &self.names[i]) {
                    wanted &= !(1 << i);
                    if let Some(slot) = out.get_mut(i) {
                        *slot = scalar(&value, &body[value.start..value.end]);
                    }
                }
            }
        }
    }
}

/// [`FieldSet::read`] for names given once.
#[cfg(test)]
pub(super) fn fields<'a>(blob: &'a [u8], names: &[impl AsRef<str>], out: &mut [Scalar<'a>]) {
    FieldSet::new(names).read(blob, out);
}

/// `a == b`, without a call to `memcmp` for the short names fields
/// usually have: comparing each key with each wanted name that way was a
/// tenth of a query's time.
#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.first() == b.first() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// A key's bytes, unescaped; read without checking UTF-8, since it is
/// only compared with field names.
fn key_bytes(kind: u8, payload: &[u8]) -> Option<Cow<'_, [u8]>> {
    match kind {
        TEXT | TEXTRAW => Some(Cow::Borrowed(payload)),
        TEXTJ | TEXT5 if !payload.contains(&b'\\') => Some(Cow::Borrowed(payload)),
        kind => match text(kind, payload)? {
            Cow::Borrowed(s) => Some(Cow::Borrowed(s.as_bytes())),
            Cow::Owned(s) => Some(Cow::Owned(s.into_bytes())),
        },
    }
}

fn scalar<'a>(element: &Element<'a>, whole: &'a [u8]) -> Scalar<'a> {
    match element.kind {
        ARRAY | OBJECT => Scalar::Composite(whole),
        NULL => Scalar::Null,
        TRUE => Scalar::Bool(true),
        FALSE => Scalar::Bool(false),
        INT | INT5 | FLOAT | FLOAT5 => {
            number(element.payload).map_or(Scalar::Other, Scalar::Number)
        }
        kind => text(kind, element.payload).map_or(Scalar::Other, Scalar::Str),
    }
}

/// Writes the JSON text of the JSONB element `bytes` (an array or object
/// found by [`fields`]) to `out`, compact and escaped as `serde_json`
/// writes it: the text the memory store sorts arrays and objects by.
/// `None` (with `out` partly written) for bytes that are not JSONB.
pub(super) fn write_json(bytes: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let element = element(bytes, 0)?;
    write_element(&element, out)
}

fn write_element(element: &Element<'_>, out: &mut Vec<u8>) -> Option<()> {
    let payload = element.payload;
    match element.kind {
        NULL => out.extend_from_slice(b"null"),
        TRUE => out.extend_from_slice(b"true"),
        FALSE => out.extend_from_slice(b"false"),
        // The text `serde_json` wrote, kept as it was.
        INT | FLOAT => out.extend_from_slice(payload),
        INT5 | FLOAT5 => {
            let n = number(payload)?;
            let text = serde_json::Number::from_f64(n)?.to_string();
            out.extend_from_slice(text.as_bytes());
        }
        // Escaped as the JSON text it came from, which `serde_json` wrote.
        TEXTJ => {
            out.push(b'"');
            out.extend_from_slice(payload);
            out.push(b'"');
        }
        TEXT | TEXT5 | TEXTRAW => {
            let text = text(element.kind, payload)?;
            let quoted = serde_json::to_string(text.as_ref()).ok()?;
            out.extend_from_slice(quoted.as_bytes());
        }
        ARRAY | OBJECT => {
            let (open, close) = if element.kind == ARRAY {
                (b'[', b']')
            } else {
                (b'{', b'}')
            };
            out.push(open);
            let mut at = 0;
            let mut index = 0;
            while at < payload.len() {
                let child = self::element(payload, at)?;
                if index > 0 {
                    // In an object, keys and values alternate.
                    out.push(if element.kind == OBJECT && index % 2 == 1 {
                        b':'
                    } else {
                        b','
                    });
                }
                write_element(&child, out)?;
                at = child.end;
                index += 1;
            }
            out.push(close);
        }
        _ => return None,
    }
    Some(())
}

/// A number's text as `f64`: JSON's forms, and JSON5's (`+1`, `.5`, `5.`,
/// hexadecimal integers) which SQLite also keeps.
fn number(payload: &[u8]) -> Option<f64> {
    // Most stored numbers are integers of a few digits: read those
    // directly, exactly (below 2^53), rather than through the float parser.
    let (sign, digits) = match payload.first() {
        Some(b'-') => (-1.0, &payload[1..]),
        _ => (1.0, payload),
    };
    if !digits.is_empty() && digits.len() <= 15 && digits.iter().all(u8::is_ascii_digit) {
        let n = digits
            .iter()
            .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
        return Some(sign * n as f64);
    }
    let text = std::str::from_utf8(payload).ok()?;
    let (negative, digits) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let magnitude = match digits.get(..2) {
        Some("0x" | "0X") => u128::from_str_radix(&digits[2..], 16).ok()? as f64,
        _ => digits.parse::<f64>().ok()?,
    };
    Some(if negative { -magnitude } else { magnitude })
}

/// A string element's value (or a key's), unescaped; `None` for other
/// types and for bytes that are not UTF-8 or hold a bad escape.
fn text(kind: u8, payload: &[u8]) -> Option<Cow<'_, str>> {
    let raw = std::str::from_utf8(payload).ok()?;
    match kind {
        TEXT | TEXTRAW => Some(Cow::Borrowed(raw)),
        TEXTJ | TEXT5 if !raw.contains('\\') => Some(Cow::Borrowed(raw)),
        TEXTJ | TEXT5 => unescape(raw).map(Cow::Owned),
        _ => None,
    }
}

/// Resolves JSON escapes, and JSON5's (`\'`, `\v`, `\0`, `\xHH`, and a
/// backslash before a line break, which continues the line).
fn unescape(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            '"' => out.push('"'),
            '\\' => out.push('\\'),
            '/' => out.push('/'),
            '\'' => out.push('\''),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\u{b}'),
            '0' => out.push('\0'),
            'x' => {
                let hex: String = chars.by_ref().take(2).collect();
                out.push(char::from(u8::from_str_radix(&hex, 16).ok()?));
            }
            'u' => {
                let high = hex4(&mut chars)?;
                let code = if (0xD800..0xDC00).contains(&high) {
                    if chars.next()? != '\\' || chars.next()? != 'u' {
                        return None;
                    }
                    let low = hex4(&mut chars)?;
                    if !(0xDC00..0xE000).contains(&low) {
                        return None;
                    }
                    0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                } else {
                    high
                };
                out.push(char::from_u32(code)?);
            }
            // A line continuation: the break (CR LF counts as one) is
            // not part of the string.
            '\r' => {
                if chars.clone().next() == Some('\n') {
                    chars.next();
                }
            }
            '\n' | '\u{2028}' | '\u{2029}' => {}
            _ => return None,
        }
    }
    Some(out)
}

fn hex4(chars: &mut std::str::Chars<'_>) -> Option<u32> {
    let hex: String = chars.by_ref().take(4).collect();
    if hex.len() != 4 {
        return None;
    }
    u32::from_str_radix(&hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    /// The JSONB SQLite makes of `json`.
    fn jsonb(json: &str) -> Vec<u8> {
        let conn = Connection::open_in_memory().unwrap();
        conn.query_row("SELECT jsonb(?1)", [json], |row| row.get(0))
            .unwrap()
    }

    fn read(json: &str, names: &[&str]) -> Vec<Scalar<'static>> {
        let blob = jsonb(json);
        let mut out = vec![Scalar::Null; names.len()];
        fields(&blob, names, &mut out);
        out.into_iter()
            .map(|s| match s {
                Scalar::Str(s) => Scalar::Str(Cow::Owned(s.into_owned())),
                Scalar::Null => Scalar::Null,
                Scalar::Bool(b) => Scalar::Bool(b),
                Scalar::Number(n) => Scalar::Number(n),
                // Compared by their text in `writes_arrays_and_objects_as_serde_does`.
                Scalar::Composite(_) | Scalar::Other => Scalar::Other,
            })
            .collect()
    }

    fn s(text: &str) -> Scalar<'static> {
        Scalar::Str(Cow::Owned(text.to_owned()))
    }

    #[test]
    fn reads_each_type_of_top_level_field() {
        let got = read(
            r#"{"a":null,"b":true,"c":false,"d":-12,"e":2.5e3,"f":"plain","g":[1],"h":{"x":1}}"#,
            &["h", "g", "f", "e", "d", "c", "b", "a", "missing"],
        );
        assert_eq!(
            got,
            [
                Scalar::Other,
                Scalar::Other,
                s("plain"),
                Scalar::Number(2500.0),
                Scalar::Number(-12.0),
                Scalar::Bool(false),
                Scalar::Bool(true),
                Scalar::Null,
                Scalar::Null,
            ]
        );
    }

    #[test]
    fn unescapes_strings_and_keys() {
        let got = read(
            r#"{"t":"a\"b\\c\/d\n\u00e9\ud83d\ude00","\u0061":"x","k":"é😀"}"#,
            &["t", "a", "k"],
        );
        assert_eq!(got, [s("a\"b\\c/d\n\u{e9}\u{1F600}"), s("x"), s("é😀")]);
    }

    #[test]
    fn reads_json5_numbers_and_strings() {
        let got = read(
            "{a: 0x1F, b: +5, c: .5, d: 5., e: 'it\\'s', f: '\\x41\\v'}",
            &["a", "b", "c", "d", "e", "f"],
        );
        assert_eq!(
            got,
            [
                Scalar::Number(31.0),
                Scalar::Number(5.0),
                Scalar::Number(0.5),
                Scalar::Number(5.0),
                s("it's"),
                s("A\u{b}"),
            ]
        );
    }

    #[test]
    fn long_payloads_use_wider_size_headers() {
        let long = "y".repeat(70_000);
        let got = read(&format!(r#"{{"a":"{long}","b":1}}"#), &["b", "a"]);
        assert_eq!(got, [Scalar::Number(1.0), s(&long)]);
    }

    #[test]
    fn writes_arrays_and_objects_as_serde_does() {
        let record = serde_json::json!({
            "a": [1, -2.5, 1e300, "x\"y\u{1}\n", null, true, {"k": []}],
            "o": {"z": "é", "a": {"b": [false]}, "s": "tab\t"},
        });
        let blob = jsonb(&record.to_string());
        let mut out = [Scalar::Null, Scalar::Null];
        fields(&blob, &["a", "o"], &mut out);
        for (scalar, value) in out.iter().zip([&record["a"], &record["o"]]) {
            let Scalar::Composite(bytes) = scalar else {
                panic!("{scalar:?}");
            };
            let mut text = Vec::new();
            write_json(bytes, &mut text).unwrap();
            assert_eq!(String::from_utf8(text).unwrap(), value.to_string());
        }
    }

    #[test]
    fn the_first_of_duplicate_keys_is_read_as_json_extract_does() {
        assert_eq!(read(r#"{"a":1,"a":2}"#, &["a"]), [Scalar::Number(1.0)]);
    }

    #[test]
    fn bytes_that_are_not_jsonb_have_no_fields() {
        for blob in [&b""[..], b"\xff", b"\x0c", b"\xcc\x05", b"{\"a\":1}"] {
            let mut out = [Scalar::Bool(true)];
            fields(blob, &["a"], &mut out);
            assert_eq!(out, [Scalar::Null], "{blob:?}");
        }
        // A truncated record: its header promises more than there is.
        let mut blob = jsonb(r#"{"a":1,"b":"two"}"#);
        blob.truncate(blob.len() - 2);
        let mut out = [Scalar::Bool(true), Scalar::Bool(true)];
        fields(&blob, &["a", "b"], &mut out);
        assert_eq!(out, [Scalar::Null, Scalar::Null]);
    }
}
