//! Every `#[repr(C)]` structure that lives in shared memory (DESIGN "The wire").
//!
//! All fields are atomics: the peer may write any of them at any time, so even a racy or
//! hostile write is a defined atomic access, never a data race. Offsets, not pointers: each
//! side maps the segments at its own address. Each field's doc names its writer.

use std::mem::size_of;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8};

/// `b"VDISIMHD"` as a little-endian u64: the header segment.
pub const HEADER_MAGIC: u64 = u64::from_le_bytes(*b"VDISIMHD");
/// `b"VDISIMBA"`: the buffer-area segment.
pub const BUFFER_MAGIC: u64 = u64::from_le_bytes(*b"VDISIMBA");
/// Bumped whenever any structure here changes shape. 0 means "still initialising".
pub const LAYOUT_VERSION: u64 = 2;
/// Slots per ring; a power of two so indices wrap with a mask.
pub const RING_SLOTS: usize = 128;
/// The most commands one device may have outstanding: one slot stays free for the close marker.
pub const MAX_OUTSTANDING: usize = RING_SLOTS - 1;
/// Longest set or device name, in UTF-8 bytes (SPEC §2.6 gives none; a braced GUID is 38).
pub const MAX_NAME_BYTES: usize = 128;
/// Devices per set (SPEC §2.4).
pub const MAX_DEVICES: usize = 64;
/// Command-code value of the close marker CloseDevice puts after the device's last command.
pub const CLOSE_MARKER: u32 = 0xC105_E000;
/// `buffer_offset` of a command without a buffer.
pub const NO_BUFFER: u64 = u64::MAX;
/// Where the buffer area starts inside its segment: 64 KiB in, on every platform. A Windows
/// view starts on a 64 KiB allocation-granularity boundary and cannot be placed elsewhere
/// (issue 9); a Unix view is placed on a 2 MiB boundary (huge-page friendly, issue 7). Either
/// way the area is then aligned to the largest data-zone alignment a client may ask for
/// (SPEC §2.4, 64 KB) in every process.
pub const BUFFER_AREA_OFFSET: usize = 65536;

/// The server's progress through configuration, as published in [`SetHeader::phase`].
pub mod phase {
    /// Created by the client; no server yet.
    pub const WAITING: u32 = 0;
    /// A server opened the set (Open).
    pub const CONNECTED: u32 = 1;
    /// EndConfiguration done: `answer` and the buffer area are valid.
    pub const CONFIGURED: u32 = 2;
    /// The server closed the set.
    pub const SERVER_CLOSED: u32 = 3;
}

/// Who aborted, in [`SetHeader::abort`].
pub mod abort_by {
    pub const NONE: u32 = 0;
    pub const CLIENT: u32 = 1;
    pub const SERVER: u32 = 2;
}

/// Why, in [`SetHeader::abort_reason`].
pub mod abort_reason {
    /// An explicit SignalAbort call.
    pub const SIGNAL: u32 = 0;
    /// Close with devices still open.
    pub const PREMATURE_CLOSE: u32 = 1;
    /// The aborting side found the peer dead.
    pub const PEER_DIED: u32 = 2;
    /// The aborting side read an invalid value written by the peer.
    pub const PEER_MISBEHAVED: u32 = 3;
    /// serverTimeOut's two-interval rule fired.
    pub const SERVER_TIMEOUT: u32 = 4;
}

/// A process's liveness token as stored in the header.
#[repr(C)]
pub struct LivenessWords {
    pub pid: AtomicU32,
    pub _reserved: AtomicU32,
    pub start: AtomicU64,
}

/// Pads a hot index to its own cache line so producer and consumer do not false-share.
#[repr(C, align(64))]
pub struct Padded<T>(pub T);

/// One command record (server → client): one cache line, so the consumer's poll of `seq`
/// brings the whole record with it.
#[repr(C, align(64))]
pub struct CommandSlot {
    /// Server: the ring index of the record in this slot plus one, stored last (Release).
    pub seq: AtomicU64,
    /// Server: the command id, strictly increasing per set.
    pub id: AtomicU64,
    /// Server: the VDC_* code, or [`CLOSE_MARKER`].
    pub code: AtomicU32,
    /// Server: bytes to transfer (Read/Write), or the command's size argument.
    pub size: AtomicU32,
    /// Server: the position argument.
    pub position: AtomicU64,
    /// Server: offset of the data buffer in the buffer area, or [`NO_BUFFER`].
    pub buffer_offset: AtomicU64,
}

/// One completion record (client → server): one cache line, as [`CommandSlot`].
#[repr(C, align(64))]
pub struct CompletionSlot {
    /// Client: the ring index of the record in this slot plus one, stored last (Release).
    pub seq: AtomicU64,
    /// Client: the id of the completed command.
    pub id: AtomicU64,
    /// Client: the Win32 completion code.
    pub code: AtomicU32,
    /// Client: bytes transferred.
    pub bytes: AtomicU32,
    /// Client: the resulting position.
    pub position: AtomicU64,
    pub _reserved: AtomicU64,
}

/// A single-producer single-consumer ring. `tail` is written only by the producer, `head`
/// only by the consumer; each side keeps its own index privately and never trusts the
/// shared copy of its own index (the peer could overwrite it).
#[repr(C)]
pub struct Ring<S> {
    /// Consumer: records consumed so far.
    pub head: Padded<AtomicU64>,
    /// Producer: records published so far.
    pub tail: Padded<AtomicU64>,
    /// Producer: bumped after each publish; the consumer blocks on it.
    pub wake: Padded<AtomicU32>,
    /// Consumer: how many threads are (about to be) blocked on `wake`.
    pub waiters: AtomicU32,
    pub slots: [S; RING_SLOTS],
}

/// One device's part of the header.
#[repr(C)]
pub struct DeviceSlot {
    /// Server: the device name's length; 0 until the server opens the device.
    pub name_len: AtomicU32,
    /// Client: 0, or 1 once some client process opened the device (claimed by CAS).
    pub client_opened: AtomicU32,
    /// Server: the device name in UTF-8.
    pub name: [AtomicU8; MAX_NAME_BYTES],
    /// Server → client commands.
    pub commands: Ring<CommandSlot>,
    /// Client → server completions.
    pub completions: Ring<CompletionSlot>,
}

/// The set's header segment, created by the client's CreateEx.
#[repr(C)]
pub struct SetHeader {
    /// Client: [`HEADER_MAGIC`].
    pub magic: AtomicU64,
    /// Client: 0 while initialising, then [`LAYOUT_VERSION`], stored last with Release.
    pub version: AtomicU64,
    /// Client: `size_of::<SetHeader>()`, so a reader can refuse a mismatched build.
    pub header_size: AtomicU64,
    /// Client (primary): its liveness token, written first.
    pub client: LivenessWords,
    /// Server: its liveness token, written by Open.
    pub server: LivenessWords,
    /// Server: [`phase`] values, only ever increasing.
    pub phase: AtomicU32,
    /// Either side: [`abort_by`]; set once by CAS from NONE.
    pub abort: AtomicU32,
    /// Either side (the one that won `abort`): [`abort_reason`].
    pub abort_reason: AtomicU32,
    /// Either side: bumped on every set-level event (phase change, abort, device published).
    pub set_wake: AtomicU32,
    /// Server: how many devices it has opened (and whose names are published).
    pub devices_published: AtomicU32,
    /// Anyone reclaiming a stale set: 0, or 1 once claimed (only the winner unlinks).
    pub reclaimed: AtomicU32,
    /// Client: the VDConfig request, written before `version`.
    pub request: [AtomicU32; 11],
    /// Server: the VDConfig answer, written before `phase` becomes CONFIGURED.
    pub answer: [AtomicU32; 11],
    pub _reserved: AtomicU32,
    /// Server: the generation number in the buffer segment's name.
    pub buffer_generation: AtomicU64,
    /// Server: bytes in the buffer area.
    pub buffer_area_size: AtomicU64,
    pub devices: [DeviceSlot; MAX_DEVICES],
}

/// The first page of the buffer segment, created by the server at EndConfiguration.
#[repr(C)]
pub struct BufferHeader {
    /// Server: [`BUFFER_MAGIC`].
    pub magic: AtomicU64,
    /// Server: [`LAYOUT_VERSION`], stored last.
    pub version: AtomicU64,
    /// Server: bytes in the area that starts at [`BUFFER_AREA_OFFSET`].
    pub area_size: AtomicU64,
    /// Server: must equal the header's `buffer_generation`.
    pub generation: AtomicU64,
}

/// A ring record: its sequence word is what the consumer polls.
pub trait RingSlot {
    fn seq(&self) -> &AtomicU64;
}

impl RingSlot for CommandSlot {
    fn seq(&self) -> &AtomicU64 {
        &self.seq
    }
}

impl RingSlot for CompletionSlot {
    fn seq(&self) -> &AtomicU64 {
        &self.seq
    }
}

// Pin the shapes: a change here must bump LAYOUT_VERSION.
const _: () = assert!(size_of::<CommandSlot>() == 64);
const _: () = assert!(size_of::<CompletionSlot>() == 64);
const _: () = assert!(size_of::<Ring<CommandSlot>>() % 64 == 0);
const _: () = assert!(size_of::<BufferHeader>() <= BUFFER_AREA_OFFSET);
const _: () = assert!(RING_SLOTS.is_power_of_two());

/// Size of the header segment.
pub const HEADER_SEGMENT_SIZE: usize = size_of::<SetHeader>();

impl SetHeader {
    /// Reads the request or answer words.
    pub fn load_config(words: &[AtomicU32; 11]) -> crate::vdi::VDConfig {
        let mut w = [0u32; 11];
        for (dst, src) in w.iter_mut().zip(words) {
            *dst = src.load(std::sync::atomic::Ordering::Relaxed);
        }
        crate::vdi::VDConfig::from_words(w)
    }

    /// Writes the request or answer words (publish with a Release store elsewhere).
    pub fn store_config(words: &[AtomicU32; 11], cfg: &crate::vdi::VDConfig) {
        for (dst, src) in words.iter().zip(cfg.to_words()) {
            dst.store(src, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

impl DeviceSlot {
    /// Reads a published device name; `None` if the length the peer wrote is out of range
    /// or the bytes are not UTF-8.
    pub fn load_name(&self) -> Option<String> {
        use std::sync::atomic::Ordering;
        let len = self.name_len.load(Ordering::Acquire) as usize;
        if len == 0 || len > MAX_NAME_BYTES {
            return None;
        }
        let bytes: Vec<u8> = self.name[..len].iter().map(|b| b.load(Ordering::Relaxed)).collect();
        String::from_utf8(bytes).ok()
    }

    /// Publishes a device name (the length last, with Release).
    pub fn store_name(&self, name: &str) {
        use std::sync::atomic::Ordering;
        for (dst, src) in self.name.iter().zip(name.bytes()) {
            dst.store(src, Ordering::Relaxed);
        }
        // SYNC POINT: the name bytes above happen-before a reader's Acquire load of the length.
        self.name_len
            .store(name.len().min(MAX_NAME_BYTES) as u32, Ordering::Release);
    }
}
