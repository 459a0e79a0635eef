//! What one input may cost, for both transports: the allowance of large
//! inputs in flight ([`InputBudget`]), shared by REST bodies and socket.io
//! packets, and the count of JSON values an input may hold, checked before
//! anything is parsed.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{Error, Result};

/// Inputs up to this many bytes never wait for the [`InputBudget`]: they
/// are the ordinary calls, and what they hold is small.
pub(crate) const SMALL_INPUT_BYTES: usize = 64 * 1024;

/// How long a large input waits for its share of the [`InputBudget`]
/// before it is refused (a REST request gets 503; a socket.io connection
/// is closed).
pub(crate) const BUDGET_WAIT: Duration = Duration::from_secs(10);

/// How many inputs of the full body limit the default [`InputBudget`]
/// holds at once.
pub(crate) const LARGE_INPUTS_AT_ONCE: usize = 4;

/// A body of `n` bytes may hold at most `n / BYTES_PER_VALUE` JSON values
/// (at least [`MIN_VALUES`]). A parsed value takes about 80 bytes whatever
/// its text, so `[0,0,...]` would otherwise take 40 times its size; this
/// keeps a parsed body within a few times its bytes.
pub(crate) const BYTES_PER_VALUE: usize = 16;

/// The fewest JSON values any input may hold.
pub(crate) const MIN_VALUES: usize = 1024;

/// An allowance of input bytes that may be read, parsed and served at once,
/// shared by the REST bodies and socket.io packets larger than
/// `SMALL_INPUT_BYTES`. Parsed JSON takes several times its text, so
/// without it concurrent large inputs add up without bound; with it, at
/// most the allowance is in flight and the rest wait (REST, before the body
/// is read) or are refused with 503 (socket.io, whose packet is already
/// read).
#[derive(Debug, Clone)]
pub struct InputBudget {
    bytes: Arc<Semaphore>,
    total: usize,
}

/// A share of an [`InputBudget`], given back when dropped.
#[derive(Debug)]
pub(crate) struct InputPermit(#[allow(dead_code)] Option<OwnedSemaphorePermit>);

impl InputBudget {
    /// An allowance of `bytes` (at most about 4 GiB).
    pub fn new(bytes: usize) -> Self {
        let total = bytes.clamp(1, u32::MAX as usize);
        Self {
            bytes: Arc::new(Semaphore::new(total)),
            total,
        }
    }

    /// `LARGE_INPUTS_AT_ONCE` inputs of `limit` bytes.
    pub fn for_body_limit(limit: usize) -> Self {
        Self::new(limit.saturating_mul(LARGE_INPUTS_AT_ONCE))
    }

    /// The permits `bytes` needs; `None` for a small input. An input larger
    /// than the whole allowance takes all of it.
    fn needed(&self, bytes: usize) -> Option<u32> {
        (bytes > SMALL_INPUT_BYTES)
            .then(|| u32::try_from(bytes.min(self.total)).unwrap_or(u32::MAX))
    }

    /// A share for `bytes`, now or 503.
    #[cfg_attr(not(feature = "socketio"), allow(dead_code))]
    pub(crate) fn try_take(&self, bytes: usize) -> Result<InputPermit> {
        let Some(n) = self.needed(bytes) else {
            return Ok(InputPermit(None));
        };
        Arc::clone(&self.bytes)
            .try_acquire_many_owned(n)
            .map(|p| InputPermit(Some(p)))
            .map_err(|_| busy())
    }

    /// A share for `bytes`, waiting up to `wait` for it, then 503.
    pub(crate) async fn take(&self, bytes: usize, wait: Duration) -> Result<InputPermit> {
        let Some(n) = self.needed(bytes) else {
            return Ok(InputPermit(None));
        };
        match tokio::time::timeout(wait, Arc::clone(&self.bytes).acquire_many_owned(n)).await {
            Ok(Ok(permit)) => Ok(InputPermit(Some(permit))),
            _ => Err(busy()),
        }
    }
}

fn busy() -> Error {
    Error::unavailable("The server is busy with other large requests; try again shortly")
}

/// How many JSON values `text` holds at most, counted before anything is
/// parsed: each `[`, `{` and `,` outside strings starts one more.
pub(crate) fn count_values(text: &[u8]) -> usize {
    let (mut values, mut in_string, mut escaped) = (1usize, false, false);
    for &byte in text {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' | b',' => values += 1,
            _ => {}
        }
    }
    values
}

/// 400 when an input of `values` JSON values is more than one of `limit`
/// bytes may hold (see [`BYTES_PER_VALUE`]): like a nesting bomb, a shape
/// no client needs rather than a size.
pub(crate) fn check_value_count(values: usize, limit: usize) -> Result<()> {
    let max = (limit / BYTES_PER_VALUE).max(MIN_VALUES);
    if values > max {
        return Err(Error::bad_request(format!(
            "Invalid JSON: more than {max} values"
        )));
    }
    Ok(())
}
