//! The access log: one line per request, written by hand when Plume's own
//! subscriber is installed.
//!
//! Why by hand: through `tracing`'s `fmt` layer an access line passed a
//! field visitor, `fmt::Debug` for each value, a time formatter and the
//! filter for every request, which made the default `info` level cost a
//! large share of an authenticated `get`'s throughput on one core
//! (BENCHMARKS.md, "What the access log costs"). The line written here reads the same as `fmt`'s (text and JSON,
//! see the tests) and is formatted straight into the writer's buffer.
//!
//! The filter's level and target still decide: the line is written only
//! when an `info` event of [`ACCESS_TARGET`] is enabled. Filters on field
//! values (`[{status=500}]`) do not see these lines. Under any other subscriber (an
//! application that installs its own, or a terminal, where `fmt`'s
//! colours are wanted) the access log is an ordinary `tracing` event.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing_subscriber::Layer;

use super::batch::BatchWriter;
use super::{ACCESS_TARGET, LogFormat};

/// What one access line says.
pub(super) struct AccessLine<'a> {
    pub(super) method: &'a str,
    pub(super) path: &'a str,
    pub(super) status: u16,
    pub(super) latency_us: u64,
    /// Visible ASCII only (see `request_id`).
    pub(super) request_id: &'a str,
}

/// Writes `line` through the current subscriber's [`AccessLines`] when it
/// has one, as a `tracing` event otherwise.
#[cfg_attr(not(feature = "rest"), allow(dead_code))]
pub(super) fn log(line: &AccessLine<'_>) {
    let written = tracing::dispatcher::get_default(|dispatch| {
        dispatch
            .downcast_ref::<AccessLines>()
            .map(|lines| lines.write(line))
            .is_some()
    });
    if !written {
        tracing::info!(
            target: ACCESS_TARGET,
            method = %line.method,
            path = %line.path,
            status = line.status,
            latency_us = line.latency_us,
            request_id = %line.request_id,
        );
    }
}

/// A layer that does nothing with events: it carries the writer and the
/// format, and [`AccessLog`] finds it in the subscriber to write its lines
/// directly (see the [module documentation](self)).
pub(super) struct AccessLines {
    writer: BatchWriter,
    format: LogFormat,
}

impl AccessLines {
    pub(super) fn new(writer: BatchWriter, format: LogFormat) -> Self {
        Self { writer, format }
    }

    fn write(&self, line: &AccessLine<'_>) {
        // An upper bound of the line (the fixed text and the longest
        // numbers take under 180 bytes; an escaped JSON string at most six
        // bytes per byte), so the byte cap holds before the line is
        // formatted into the buffer. The method counts: HTTP lets a
        // client choose its own.
        let most = 208
            + (line.method.len() + line.path.len() + line.request_id.len()) * self.escape_factor();
        self.writer.append(most, |out| {
            format_line(out, self.format, SystemTime::now(), line);
        });
    }

    fn escape_factor(&self) -> usize {
        match self.format {
            LogFormat::Text => 1,
            LogFormat::Json => 6,
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for AccessLines {}

/// Appends `line` as `fmt` would write it: `<time>  INFO plume::access:
/// method=.. path=.. status=.. latency_us=.. request_id=..` or the same as
/// a JSON object.
fn format_line(out: &mut Vec<u8>, format: LogFormat, now: SystemTime, line: &AccessLine<'_>) {
    let mut number = itoa::Buffer::new();
    match format {
        LogFormat::Text => {
            write_timestamp(out, now);
            out.extend_from_slice(b"  INFO ");
            out.extend_from_slice(ACCESS_TARGET.as_bytes());
            out.extend_from_slice(b": method=");
            out.extend_from_slice(line.method.as_bytes());
            // The path needs no quoting: a request target holds no spaces
            // or control characters (hyper refuses them).
            out.extend_from_slice(b" path=");
            out.extend_from_slice(line.path.as_bytes());
            out.extend_from_slice(b" status=");
            out.extend_from_slice(number.format(line.status).as_bytes());
            out.extend_from_slice(b" latency_us=");
            out.extend_from_slice(number.format(line.latency_us).as_bytes());
            // Visible ASCII without spaces: no quoting needed either.
            out.extend_from_slice(b" request_id=");
            out.extend_from_slice(line.request_id.as_bytes());
        }
        LogFormat::Json => {
            out.extend_from_slice(b"{\"timestamp\":\"");
            write_timestamp(out, now);
            out.extend_from_slice(b"\",\"level\":\"INFO\",\"method\":");
            json_string(out, line.method);
            out.extend_from_slice(b",\"path\":");
            json_string(out, line.path);
            out.extend_from_slice(b",\"status\":");
            out.extend_from_slice(number.format(line.status).as_bytes());
            out.extend_from_slice(b",\"latency_us\":");
            out.extend_from_slice(number.format(line.latency_us).as_bytes());
            out.extend_from_slice(b",\"request_id\":");
            json_string(out, line.request_id);
            out.extend_from_slice(b",\"target\":\"");
            out.extend_from_slice(ACCESS_TARGET.as_bytes());
            out.extend_from_slice(b"\"}");
        }
    }
    out.push(b'\n');
}

fn json_string(out: &mut Vec<u8>, value: &str) {
    // Writing a `str` into a `Vec` cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

thread_local! {
    /// The last second formatted on this thread (`YYYY-MM-DDTHH:MM:SS`):
    /// lines come many to a second, the calendar is worked out once.
    static SECOND: RefCell<(u64, [u8; 19])> = const { RefCell::new((u64::MAX, [0; 19])) };
}

/// RFC 3339 in UTC with microseconds, as `fmt`'s default timer writes it.
fn write_timestamp(out: &mut Vec<u8>, now: SystemTime) {
    // A clock before 1970 is written as 1970: the line matters more.
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let seconds = since.as_secs();
    SECOND.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != seconds {
            *cached = (seconds, calendar(seconds));
        }
        out.extend_from_slice(&cached.1);
    });
    let mut micros = *b".000000Z";
    put_digits(&mut micros[1..7], since.subsec_micros().into());
    out.extend_from_slice(&micros);
}

/// Writes `value` into `slot` in decimal, zero-padded to its width.
fn put_digits(slot: &mut [u8], value: u64) {
    let mut rest = value;
    for digit in slot.iter_mut().rev() {
        *digit = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
}

/// `YYYY-MM-DDTHH:MM:SS` of `seconds` after the Unix epoch, in UTC. The
/// date comes from the `time` crate once per second (the caller caches
/// it); the digits are written by hand, as the rest of the line is.
fn calendar(seconds: u64) -> [u8; 19] {
    // Past year 9999 (a clock gone wrong) the last representable second.
    let at = i64::try_from(seconds)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or_else(|| time::PrimitiveDateTime::MAX.assume_utc());
    let (year, month, day) = at.to_calendar_date();
    let (hour, minute, second) = at.to_hms();
    let mut text = *b"0000-00-00T00:00:00";
    put_digits(&mut text[0..4], u64::try_from(year).unwrap_or(0));
    put_digits(&mut text[5..7], u8::from(month).into());
    put_digits(&mut text[8..10], day.into());
    put_digits(&mut text[11..13], hour.into());
    put_digits(&mut text[14..16], minute.into());
    put_digits(&mut text[17..19], second.into());
    text
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use serde_json::Value;

    use super::*;
    use crate::logging::{LogOptions, dispatch};

    fn timestamp(seconds: u64, micros: u32) -> String {
        let mut out = Vec::new();
        write_timestamp(
            &mut out,
            UNIX_EPOCH + Duration::from_secs(seconds) + Duration::from_micros(micros.into()),
        );
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn timestamps_are_rfc3339_in_utc_with_microseconds() {
        assert_eq!(timestamp(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(timestamp(951_782_399, 7), "2000-02-28T23:59:59.000007Z");
        assert_eq!(
            timestamp(951_782_400, 999_999),
            "2000-02-29T00:00:00.999999Z"
        );
        assert_eq!(timestamp(4_107_542_400, 0), "2100-03-01T00:00:00.000000Z");
        assert_eq!(
            timestamp(1_796_615_045, 123_456),
            "2026-12-07T03:44:05.123456Z"
        );
        // The cached second is not reused for another one.
        assert_eq!(timestamp(1_796_615_046, 0), "2026-12-07T03:44:06.000000Z");
    }

    /// A writer that keeps what it is given.
    #[derive(Clone, Default)]
    struct Kept(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Kept {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    const LINE: AccessLine<'static> = AccessLine {
        method: "PATCH",
        path: "/messages/7",
        status: 404,
        latency_us: 1234,
        request_id: "req-\"7\"",
    };

    /// The line written through Plume's subscriber (by hand) and the one
    /// `fmt` writes for the same event under a subscriber without
    /// [`AccessLines`].
    fn both_lines(format: LogFormat) -> (String, String) {
        let kept = Kept::default();
        let options = LogOptions {
            format,
            ..LogOptions::default()
        };
        let (ours, guard) = dispatch(&options, kept.clone()).unwrap();
        assert!(ours.downcast_ref::<AccessLines>().is_some());
        tracing::dispatcher::with_default(&ours, || log(&LINE));
        drop(guard);
        let by_hand = String::from_utf8(kept.0.lock().unwrap().clone()).unwrap();

        let kept = Kept::default();
        let writer = {
            let kept = kept.clone();
            move || kept.clone()
        };
        let builder = tracing_subscriber::fmt()
            .with_writer(writer)
            .with_ansi(false);
        let plain = match format {
            LogFormat::Text => tracing::Dispatch::new(builder.finish()),
            LogFormat::Json => tracing::Dispatch::new(builder.json().flatten_event(true).finish()),
        };
        tracing::dispatcher::with_default(&plain, || log(&LINE));
        let by_fmt = String::from_utf8(kept.0.lock().unwrap().clone()).unwrap();
        (by_hand, by_fmt)
    }

    #[test]
    fn the_text_line_reads_as_fmt_writes_it() {
        let (by_hand, by_fmt) = both_lines(LogFormat::Text);
        let after_time = |line: &str| line.split_once(' ').unwrap().1.to_owned();
        assert_eq!(
            after_time(&by_hand),
            " INFO plume::access: method=PATCH path=/messages/7 status=404 latency_us=1234 \
             request_id=req-\"7\"\n"
        );
        assert_eq!(after_time(&by_hand), after_time(&by_fmt));
        // A timestamp of the same width.
        assert_eq!(by_hand.find(' '), by_fmt.find(' '));
    }

    #[test]
    fn the_json_line_is_the_object_fmt_writes() {
        let (by_hand, by_fmt) = both_lines(LogFormat::Json);
        let after_time = |line: &str| line.split_once("\",\"level\"").unwrap().1.to_owned();
        assert_eq!(
            after_time(&by_hand),
            ":\"INFO\",\"method\":\"PATCH\",\"path\":\"/messages/7\",\"status\":404,\
             \"latency_us\":1234,\"request_id\":\"req-\\\"7\\\"\",\"target\":\"plume::access\"}\n"
        );
        assert_eq!(after_time(&by_hand), after_time(&by_fmt));
        assert_eq!(by_hand.find(','), by_fmt.find(','));
    }

    #[test]
    fn the_estimate_bounds_every_line() {
        let method = "X".repeat(300);
        let path = format!("/{}", "\"".repeat(200));
        let request_id = "\"".repeat(128);
        let line = AccessLine {
            method: &method,
            path: &path,
            status: u16::MAX,
            latency_us: u64::MAX,
            request_id: &request_id,
        };
        for format in [LogFormat::Text, LogFormat::Json] {
            let mut out = Vec::new();
            format_line(&mut out, format, SystemTime::now(), &line);
            let factor = match format {
                LogFormat::Text => 1,
                LogFormat::Json => 6,
            };
            assert!(out.len() <= 208 + (method.len() + path.len() + request_id.len()) * factor);
            let mut short = Vec::new();
            format_line(&mut short, format, SystemTime::now(), &LINE);
            assert!(short.len() <= 208 + 8 * factor, "{}", short.len());
        }
    }

    #[test]
    fn a_json_path_is_escaped() {
        let mut out = Vec::new();
        let line = AccessLine {
            path: "/a\"b\\c",
            ..LINE
        };
        format_line(&mut out, LogFormat::Json, UNIX_EPOCH, &line);
        let value: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["path"], "/a\"b\\c");
    }
}
