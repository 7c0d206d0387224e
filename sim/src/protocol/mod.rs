//! Sans-I/O VDI protocol state machines for both roles.
//!
//! This module contains no shared memory, no threads, no clock and no waiting: every call
//! returns the code the VDI documentation gives for the current state, and time comes in as an
//! argument. The transport in [`crate::client`] and [`crate::server`] is only a loop around it.
#![forbid(unsafe_code)]

pub mod buffers;
pub mod client;
pub mod server;

/// What a peer can do wrong that makes the honest side abort the set. Everything read from
/// shared memory is untrusted; each variant names the field that was bad.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum PeerMisbehaved {
    #[error("peer completed command {id} on device {device}, which is not outstanding")]
    UnknownCompletion { device: usize, id: u64 },
    #[error("peer named device index {device}, which does not exist")]
    BadDeviceIndex { device: usize },
    #[error("peer reported {bytes} bytes transferred for command {id} on device {device} of size {size}")]
    BytesExceedSize {
        device: usize,
        id: u64,
        bytes: u32,
        size: u32,
    },
    #[error("ring {ring} of device {device}: producer index {tail} is not within {capacity} of consumer index {head}")]
    RingIndex {
        device: usize,
        ring: &'static str,
        head: u64,
        tail: u64,
        capacity: u64,
    },
    #[error("device {device}: command id {id} does not follow {previous}")]
    SequenceJump { device: usize, previous: u64, id: u64 },
    #[error("device {device}: command {code} is not a VDI command code")]
    BadCommandCode { device: usize, code: u32 },
    #[error("device {device}: buffer [{offset}, +{size}) lies outside the {area}-byte buffer area")]
    BufferOutsideSegment {
        device: usize,
        offset: u64,
        size: u64,
        area: u64,
    },
    #[error("device {device}: a {code} command carries a buffer, or a data command has none")]
    BufferMismatch { device: usize, code: u32 },
    #[error("shared header: {field} holds {value}, which is not valid")]
    BadHeaderField { field: &'static str, value: u64 },
    #[error("shared header: phase (set state) went back from {from} to {to}")]
    StateRegression { from: u32, to: u32 },
}

impl PeerMisbehaved {
    /// A stable identifier for reports and transcripts.
    pub fn kind(&self) -> &'static str {
        match self {
            PeerMisbehaved::UnknownCompletion { .. } => "unknown-completion",
            PeerMisbehaved::BadDeviceIndex { .. } => "bad-device-index",
            PeerMisbehaved::BytesExceedSize { .. } => "bytes-exceed-size",
            PeerMisbehaved::RingIndex { .. } => "ring-index",
            PeerMisbehaved::SequenceJump { .. } => "sequence-jump",
            PeerMisbehaved::BadCommandCode { .. } => "bad-command-code",
            PeerMisbehaved::BufferOutsideSegment { .. } => "buffer-outside-segment",
            PeerMisbehaved::BufferMismatch { .. } => "buffer-mismatch",
            PeerMisbehaved::BadHeaderField { .. } => "bad-header-field",
            PeerMisbehaved::StateRegression { .. } => "state-regression",
        }
    }
}

/// Removes the first element of `queue` that `matches`. Completions mostly arrive in order,
/// so it is usually the front one, taken without `VecDeque::remove`'s general shifting.
pub(crate) fn take_first<T>(queue: &mut std::collections::VecDeque<T>, matches: impl Fn(&T) -> bool) -> Option<T> {
    if matches(queue.front()?) {
        return queue.pop_front();
    }
    let i = queue.iter().position(matches)?;
    queue.remove(i)
}
