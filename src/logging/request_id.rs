//! Request ids: every HTTP request gets one, taken from its `x-request-id`
//! header when that is sane (1 to [`MAX_REQUEST_ID_LEN`] visible ASCII
//! characters) and made otherwise. The access log layer returns it in the
//! response's `x-request-id` header, writes it in the access line and
//! makes it [`current`] while the request's own task runs, so that every
//! other event logged there carries it too (`request_id`, added by
//! [`WithRequestId`] to the line `fmt` formats).
//!
//! Why not a `tracing` span per request: under `fmt` a span formats and
//! stores its fields when it opens, on every request, whether anything
//! is logged in it or not, which is most of what the hand-written access
//! line saved (see `access`). Here a request costs moving its id in and
//! out of a thread-local on each poll; the id is written only into lines
//! that are logged. Work a request hands to another task or thread (an
//! SQLite reader, a spawned task) logs without it.

use std::cell::RefCell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The header a request id is read from and returned in.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The longest request id taken from a client; a longer one is replaced.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// A request's id: 1 to [`MAX_REQUEST_ID_LEN`] visible ASCII characters
/// (no spaces, no control characters), so it goes into a header or a log
/// line as it is. Kept inline: no allocation per request.
#[derive(Clone, PartialEq, Eq)]
pub struct RequestId {
    len: u8,
    bytes: [u8; MAX_REQUEST_ID_LEN],
}

impl std::fmt::Debug for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RequestId").field(&self.as_str()).finish()
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl RequestId {
    /// `value` as an id when it is sane: 1 to [`MAX_REQUEST_ID_LEN`]
    /// bytes, each visible ASCII (`!` to `~`).
    pub fn parse(value: &[u8]) -> Option<Self> {
        if value.is_empty()
            || value.len() > MAX_REQUEST_ID_LEN
            || !value.iter().all(u8::is_ascii_graphic)
        {
            return None;
        }
        let mut bytes = [0; MAX_REQUEST_ID_LEN];
        bytes[..value.len()].copy_from_slice(value);
        Some(Self {
            len: u8::try_from(value.len()).ok()?,
            bytes,
        })
    }

    /// A new id, unique in this process and (by a random prefix drawn at
    /// start) across processes: `<16 hex digits>-<counter in hex>`. A
    /// counter rather than a UUID per request: no random bytes to draw
    /// on the request path.
    pub fn make() -> Self {
        static PREFIX: OnceLock<[u8; 16]> = OnceLock::new();
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let prefix = PREFIX.get_or_init(|| {
            let mut random = [0_u8; 8];
            // Without the system's randomness, the time and the process
            // id still tell processes apart in practice.
            if getrandom::fill(&mut random).is_err() {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos());
                let mixed = (nanos as u64) ^ (u64::from(std::process::id()) << 32);
                random = mixed.to_be_bytes();
            }
            let mut hex = [0_u8; 16];
            for (at, byte) in random.iter().enumerate() {
                hex[2 * at] = HEX[usize::from(byte >> 4)];
                hex[2 * at + 1] = HEX[usize::from(byte & 0xf)];
            }
            hex
        });
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut bytes = [0; MAX_REQUEST_ID_LEN];
        bytes[..16].copy_from_slice(prefix);
        bytes[16] = b'-';
        let mut len = 17;
        let digits = (64 - count.leading_zeros()).div_ceil(4).max(1);
        for shift in (0..digits).rev() {
            bytes[len] = HEX[usize::try_from((count >> (4 * shift)) & 0xf).unwrap_or(0)];
            len += 1;
        }
        Self {
            len: u8::try_from(len).unwrap_or(17),
            bytes,
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        // Only visible ASCII is ever stored.
        std::str::from_utf8(self.as_bytes()).unwrap_or_default()
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

thread_local! {
    /// The id of the request whose task this thread is running, if any.
    static CURRENT: RefCell<Option<RequestId>> = const { RefCell::new(None) };
}

/// The id of the request being handled on this thread: set while the
/// access log layer polls the request's future, so hooks and services
/// read it here (work moved to another task or thread does not see it).
pub fn current() -> Option<RequestId> {
    CURRENT.with(|current| current.borrow().clone())
}

/// Makes `id` [`current`] until the guard drops, which puts back what was
/// there (also when the poll panics).
#[cfg_attr(not(feature = "rest"), allow(dead_code))]
pub(super) struct Entered<'a> {
    slot: &'a mut Option<RequestId>,
}

impl<'a> Entered<'a> {
    /// Moves the id out of `slot` into the thread-local, and the
    /// thread-local's value into `slot`; the guard swaps them back.
    #[cfg_attr(not(feature = "rest"), allow(dead_code))]
    pub(super) fn new(slot: &'a mut Option<RequestId>) -> Self {
        CURRENT.with(|current| std::mem::swap(&mut *current.borrow_mut(), slot));
        Self { slot }
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        CURRENT.with(|current| std::mem::swap(&mut *current.borrow_mut(), self.slot));
    }
}

/// An event format that adds the current request's id to each line
/// `inner` formats: ` request_id=<id>` at the end of a text line, a
/// `"request_id"` member at the end of a JSON object. Lines logged outside
/// a request are `inner`'s, untouched.
#[derive(Debug, Clone)]
pub(super) struct WithRequestId<F> {
    inner: F,
    json: bool,
}

impl<F> WithRequestId<F> {
    pub(super) fn text(inner: F) -> Self {
        Self { inner, json: false }
    }

    pub(super) fn json(inner: F) -> Self {
        Self { inner, json: true }
    }
}

impl<S, N, F> FormatEvent<S, N> for WithRequestId<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let Some(id) = current() else {
            return self.inner.format_event(ctx, writer, event);
        };
        // Formatted aside, so that the id goes at the end of the line:
        // `inner` writes the line whole. (Colours come from `inner`'s own
        // setting, not from this writer.)
        let mut line = String::with_capacity(256);
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let body = line.trim_end_matches('\n');
        if self.json {
            match body.strip_suffix('}') {
                Some(open) => {
                    writer.write_str(open)?;
                    // Visible ASCII needs escaping only for `"` and `\`.
                    writer.write_str(",\"request_id\":\"")?;
                    for c in id.as_str().chars() {
                        if matches!(c, '"' | '\\') {
                            writer.write_char('\\')?;
                        }
                        writer.write_char(c)?;
                    }
                    writer.write_str("\"}")?;
                }
                None => writer.write_str(body)?,
            }
        } else {
            writer.write_str(body)?;
            writer.write_str(" request_id=")?;
            writer.write_str(id.as_str())?;
        }
        writer.write_char('\n')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_ids_are_taken_and_others_refused() {
        for sane in ["a", "abc-123_DEF.xyz", "\"quoted\"", &"x".repeat(128)] {
            assert_eq!(
                RequestId::parse(sane.as_bytes()).unwrap().as_str(),
                sane,
                "{sane}"
            );
        }
        for insane in [
            "".to_owned(),
            "x".repeat(129),
            "with space".to_owned(),
            "tab\there".to_owned(),
            "new\nline".to_owned(),
            "del\u{7f}".to_owned(),
            "é".to_owned(),
        ] {
            assert!(RequestId::parse(insane.as_bytes()).is_none(), "{insane:?}");
        }
    }

    #[test]
    fn made_ids_are_unique_and_sane() {
        let ids: Vec<RequestId> = (0..1000).map(|_| RequestId::make()).collect();
        let mut texts: Vec<&str> = ids.iter().map(RequestId::as_str).collect();
        for text in &texts {
            assert!(RequestId::parse(text.as_bytes()).is_some(), "{text}");
            assert!(text.len() >= 18 && text.as_bytes()[16] == b'-', "{text}");
        }
        texts.sort_unstable();
        texts.dedup();
        assert_eq!(texts.len(), 1000);
    }

    #[test]
    fn the_current_id_is_set_while_entered_and_restored_after() {
        assert_eq!(current(), None);
        let mut slot = RequestId::parse(b"outer");
        {
            let _entered = Entered::new(&mut slot);
            assert_eq!(current().unwrap().as_str(), "outer");
            let mut inner = RequestId::parse(b"inner");
            {
                let _nested = Entered::new(&mut inner);
                assert_eq!(current().unwrap().as_str(), "inner");
            }
            assert_eq!(current().unwrap().as_str(), "outer");
        }
        assert_eq!(current(), None);
        assert_eq!(
            slot.unwrap().as_str(),
            "outer",
            "the id is back in its slot"
        );
    }
}
