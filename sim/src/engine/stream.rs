//! The self-checking backup stream written by the simulated SQL Server (sans-I/O, pure).
//!
//! A BACKUP to N virtual devices produces N *stripes*. A RESTORE reads them back in arbitrary
//! chunk sizes and must refuse anything that is not exactly what was written: lost, reordered,
//! duplicated or corrupted blocks, a truncated stripe, missing/extra/swapped devices, another
//! backup set, or a BLOCKSIZE mismatch. Every byte of a stripe is covered by a CRC-32 or must
//! be zero padding, so a single flipped byte anywhere is detected.
//!
//! # Byte layout (version 1, all integers little-endian, CRC-32 = IEEE/zlib polynomial)
//!
//! A stripe is `media header block | data record* | trailer block`; every part is a multiple of
//! the backup's BLOCKSIZE and each part is exactly one transfer (VDC_Write) of at most
//! MAXTRANSFERSIZE bytes.
//!
//! **Media header**: the first 512 bytes (the restore does not know BLOCKSIZE yet and 512 is
//! the smallest one), then zeros up to BLOCKSIZE.
//!
//! | off | len | field |
//! |----:|----:|-------|
//! | 0 | 8 | magic `VDISIMBK` |
//! | 8 | 2 | format version (1) |
//! | 10 | 2 | kind: 1 database, 2 log |
//! | 12 | 4 | stripe index |
//! | 16 | 4 | stripe count |
//! | 20 | 4 | BLOCKSIZE |
//! | 24 | 4 | MAXTRANSFERSIZE |
//! | 28 | 4 | reserved (0) |
//! | 32 | 8 | backup set id |
//! | 40 | 8 | database size in bytes |
//! | 48 | 8 | data records in the whole backup |
//! | 56 | 8 | created, unix seconds |
//! | 64 | 2 | database name length n (1..=128) |
//! | 66 | 128 | database name, UTF-8, zero filled after n |
//! | 194 | 314 | reserved (0) |
//! | 508 | 4 | CRC-32 of bytes 0..508 (stays here in every future version) |
//!
//! **Data record**: a 64-byte header, the payload, zeros up to a BLOCKSIZE multiple. The
//! database is cut into chunks of `MAXTRANSFERSIZE - 64` bytes, so a full record is exactly one
//! maximal transfer; chunk k (global sequence k) goes to stripe `k % stripes` as that stripe's
//! record `k / stripes`.
//!
//! | off | len | field |
//! |----:|----:|-------|
//! | 0 | 8 | magic `VDISIMDR` |
//! | 8 | 8 | backup set id |
//! | 16 | 4 | stripe index |
//! | 20 | 4 | payload length |
//! | 24 | 8 | global sequence |
//! | 32 | 8 | per-stripe sequence |
//! | 40 | 8 | database offset |
//! | 48 | 4 | CRC-32 of the payload |
//! | 52 | 8 | reserved (0) |
//! | 60 | 4 | CRC-32 of bytes 0..60 |
//!
//! **Trailer**: a 64-byte record, zeros up to BLOCKSIZE; it makes truncation detectable.
//!
//! | off | len | field |
//! |----:|----:|-------|
//! | 0 | 8 | magic `VDISIMTR` |
//! | 8 | 8 | backup set id |
//! | 16 | 4 | stripe index |
//! | 20 | 4 | stripe count |
//! | 24 | 8 | data records on this stripe |
//! | 32 | 8 | stripe length in bytes, header through trailer |
//! | 40 | 8 | payload bytes on this stripe |
//! | 48 | 4 | CRC-32 over the payload CRCs (each as 4 LE bytes, in order) |
//! | 52 | 8 | reserved (0) |
//! | 60 | 4 | CRC-32 of bytes 0..60 |
//!
//! Each [`StripeDecoder`] checks its own stripe completely (order, count, checksums); the
//! [`RestoreVerifier`] checks that the stripes belong together and that none is missing. Since
//! each stripe is verified to hold exactly the records `k ≡ stripe (mod stripes)` in order,
//! "every global sequence appeared exactly once" reduces to "every stripe finished once".

use serde::{Deserialize, Serialize};
use std::fmt;

/// Version written by this build and the only one it reads.
pub const FORMAT_VERSION: u16 = 1;
/// First bytes of every stripe.
pub const MEDIA_MAGIC: [u8; 8] = *b"VDISIMBK";
const DATA_MAGIC: [u8; 8] = *b"VDISIMDR";
const TRAILER_MAGIC: [u8; 8] = *b"VDISIMTR";
/// Bytes of the media header proper (before padding to BLOCKSIZE).
pub const MEDIA_HEADER_LEN: usize = 512;
/// Bytes of a data record header and of the trailer record.
pub const RECORD_HEADER_LEN: usize = 64;
/// BLOCKSIZE limits (§2.6).
pub const MIN_BLOCKSIZE: u32 = 512;
/// See [`MIN_BLOCKSIZE`].
pub const MAX_BLOCKSIZE: u32 = 65536;
/// MAXTRANSFERSIZE limits (§2.6); it must also be a multiple of the minimum.
pub const MIN_MAXTRANSFERSIZE: u32 = 65536;
/// See [`MIN_MAXTRANSFERSIZE`].
pub const MAX_MAXTRANSFERSIZE: u32 = 4 * 1024 * 1024;
/// Most devices (stripes) one backup may use.
pub const MAX_STRIPES: u32 = 64;
/// Longest database name in UTF-8 bytes (SQL Server's sysname is 128 characters).
pub const MAX_DATABASE_NAME_BYTES: usize = 128;

const NAME_OFF: usize = 66;
const MEDIA_CRC_OFF: usize = MEDIA_HEADER_LEN - 4;
const RECORD_CRC_OFF: usize = RECORD_HEADER_LEN - 4;

// ---------------------------------------------------------------------------------------------
// CRC-32 (IEEE 802.3 / zlib, same values as crc32fast). Kept in-module so the engine needs no
// extra dependency; slicing-by-8 runs at well over 1 GB/s in release builds.

const fn crc_tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut j = 1;
        while j < 8 {
            let prev = t[j - 1][i];
            t[j][i] = (prev >> 8) ^ t[0][(prev & 0xFF) as usize];
            j += 1;
        }
        i += 1;
    }
    t
}

static CRC_TABLES: [[u32; 256]; 8] = crc_tables();

/// Incremental CRC-32 (IEEE).
#[derive(Debug, Clone)]
pub struct Crc32 {
    state: u32,
}

impl Default for Crc32 {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc32 {
    /// A fresh hasher.
    pub fn new() -> Self {
        Self { state: !0 }
    }

    /// Adds `data`.
    pub fn update(&mut self, data: &[u8]) {
        let t = &CRC_TABLES;
        let mut c = self.state;
        let mut chunks = data.chunks_exact(8);
        for ch in &mut chunks {
            let lo = u32::from_le_bytes([ch[0], ch[1], ch[2], ch[3]]) ^ c;
            let hi = u32::from_le_bytes([ch[4], ch[5], ch[6], ch[7]]);
            c = t[7][(lo & 0xFF) as usize]
                ^ t[6][((lo >> 8) & 0xFF) as usize]
                ^ t[5][((lo >> 16) & 0xFF) as usize]
                ^ t[4][(lo >> 24) as usize]
                ^ t[3][(hi & 0xFF) as usize]
                ^ t[2][((hi >> 8) & 0xFF) as usize]
                ^ t[1][((hi >> 16) & 0xFF) as usize]
                ^ t[0][(hi >> 24) as usize];
        }
        for &b in chunks.remainder() {
            c = t[0][((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
        }
        self.state = c;
    }

    /// The checksum of everything added so far.
    pub fn finalize(&self) -> u32 {
        !self.state
    }
}

/// CRC-32 (IEEE) of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    let mut h = Crc32::new();
    h.update(data);
    h.finalize()
}

// ---------------------------------------------------------------------------------------------
// Little-endian field access. Callers pass buffers of a fixed, already checked length.

fn put_u16(b: &mut [u8], off: usize, v: u16) {
    b[off..off + 2].copy_from_slice(&v.to_le_bytes());
}
fn put_u32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_u64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}
fn get_u16(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}
fn get_u32(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(a)
}
fn get_u64(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

fn round_up(v: u64, to: u64) -> u64 {
    v.div_ceil(to.max(1)).saturating_mul(to)
}

// ---------------------------------------------------------------------------------------------
// Errors

/// Which part of a data record failed its check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorruptPart {
    /// The record header's checksum or magic is wrong.
    Header,
    /// The header is intact but its fields contradict the media header (offset, length…).
    Inconsistent,
    /// The payload does not match its checksum.
    Payload,
    /// Bytes after the payload that must be zero are not.
    Padding,
}

impl fmt::Display for CorruptPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CorruptPart::Header => "header checksum mismatch",
            CorruptPart::Inconsistent => "header fields do not match the backup",
            CorruptPart::Payload => "checksum mismatch",
            CorruptPart::Padding => "nonzero padding",
        })
    }
}

/// Why a backup could not be written or a restore refused its input. Messages are full
/// sentences naming the stripe (= device index in device order) and the block numbers; block
/// numbers are global data-record sequence numbers.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StreamError {
    /// The first bytes are not a vdisim media header.
    #[error("stripe {stripe}: the device does not hold a vdisim backup (no media header found)")]
    NotABackup {
        /// Stripe (device) index.
        stripe: u32,
    },
    /// A media header of another format version.
    #[error("stripe {stripe}: backup format version {found} is not supported (this build reads version {supported})")]
    UnsupportedVersion {
        /// Stripe (device) index.
        stripe: u32,
        /// Version in the header.
        found: u16,
        /// Version this build reads.
        supported: u16,
    },
    /// The media header fails its checksum or holds impossible values.
    #[error("stripe {stripe}: the media header is corrupt ({reason})")]
    HeaderCorrupt {
        /// Stripe (device) index.
        stripe: u32,
        /// What is wrong.
        reason: &'static str,
    },
    /// RESTORE must use the backup's BLOCKSIZE (§2.6).
    #[error("the backup was written with BLOCKSIZE = {backup} but the restore uses BLOCKSIZE = {restore}; RESTORE must use the backup's BLOCKSIZE")]
    BlocksizeMismatch {
        /// BLOCKSIZE of the backup.
        backup: u32,
        /// BLOCKSIZE of the restore.
        restore: u32,
    },
    /// The restore supplied a different number of devices than the backup used.
    #[error("the backup set was written to {backup} device(s) but the restore supplied {restore}")]
    StripeCountMismatch {
        /// Devices of the backup.
        backup: u32,
        /// Devices of the restore.
        restore: u32,
    },
    /// The device at position `expected` holds another stripe: devices swapped or repeated.
    #[error("device {expected} holds stripe {found} of the backup instead of stripe {expected} (devices swapped or repeated)")]
    WrongStripe {
        /// Stripe the device was expected to hold.
        expected: u32,
        /// Stripe it holds.
        found: u32,
    },
    /// Media or a record of another backup set.
    #[error("stripe {stripe}: data from a different backup set (id {found:#018x}, expected {expected:#018x})")]
    DifferentBackupSet {
        /// Stripe (device) index.
        stripe: u32,
        /// Backup set id expected.
        expected: u64,
        /// Backup set id found.
        found: u64,
    },
    /// A data record fails a checksum or holds impossible values.
    #[error("stripe {stripe}: block {sequence} is corrupt ({part})")]
    RecordCorrupt {
        /// Stripe (device) index.
        stripe: u32,
        /// Global sequence of the block (the expected one when the header itself is bad).
        sequence: u64,
        /// What failed.
        part: CorruptPart,
    },
    /// A later block came before an earlier one.
    #[error("stripe {stripe}: blocks are out of order (expected block {expected}, found block {found})")]
    OutOfOrder {
        /// Stripe (device) index.
        stripe: u32,
        /// Global sequence expected.
        expected: u64,
        /// Global sequence found.
        found: u64,
    },
    /// A block that was already delivered appeared again.
    #[error("stripe {stripe}: block {sequence} appears more than once")]
    Duplicate {
        /// Stripe (device) index.
        stripe: u32,
        /// Global sequence repeated.
        sequence: u64,
    },
    /// Blocks of a stripe never arrived; they would have been blocks `first`, `first +
    /// stripes`, … (the stripe's own order).
    #[error("stripe {stripe}: {count} block(s) missing, starting at block {first}")]
    Missing {
        /// Stripe (device) index.
        stripe: u32,
        /// First missing global sequence.
        first: u64,
        /// How many of this stripe's blocks are missing.
        count: u64,
    },
    /// The stream ended before the end-of-stripe trailer.
    #[error("stripe {stripe}: the stream ends after {bytes} bytes without its end-of-stripe trailer (truncated)")]
    Truncated {
        /// Stripe (device) index.
        stripe: u32,
        /// Bytes received.
        bytes: u64,
    },
    /// More bytes arrived after the trailer.
    #[error("stripe {stripe}: unexpected data after the end-of-stripe trailer")]
    TrailingGarbage {
        /// Stripe (device) index.
        stripe: u32,
    },
    /// The trailer fails its checksum or disagrees with the data that was read.
    #[error("stripe {stripe}: the end-of-stripe trailer is corrupt or does not match the data read ({reason})")]
    TrailerCorrupt {
        /// Stripe (device) index.
        stripe: u32,
        /// What is wrong.
        reason: &'static str,
    },
    /// Stripes of the same backup id disagree on a header field (forged or damaged media).
    #[error("stripe {stripe}: the media header disagrees with the other stripes on the {field}")]
    HeadersDisagree {
        /// Stripe (device) index.
        stripe: u32,
        /// Field name.
        field: &'static str,
    },
    /// A stripe was never read to its end.
    #[error("stripe {stripe} was not read to its end (missing device?)")]
    StripeMissing {
        /// Stripe (device) index.
        stripe: u32,
    },
    /// The backup options are out of range.
    #[error("invalid backup parameters: {0}")]
    BadParams(String),
    /// Reading the database or writing the restored data failed.
    #[error("I/O error: {0}")]
    Io(String),
}

/// A stable machine-readable id for each error class (for reports and expected-failure files).
pub fn error_kind(e: &StreamError) -> &'static str {
    match e {
        StreamError::NotABackup { .. } => "not_a_backup",
        StreamError::UnsupportedVersion { .. } => "unsupported_version",
        StreamError::HeaderCorrupt { .. } => "header_corrupt",
        StreamError::BlocksizeMismatch { .. } => "blocksize_mismatch",
        StreamError::StripeCountMismatch { .. } => "stripe_count_mismatch",
        StreamError::WrongStripe { .. } => "wrong_stripe",
        StreamError::DifferentBackupSet { .. } => "different_backup_set",
        StreamError::RecordCorrupt { .. } => "record_corrupt",
        StreamError::OutOfOrder { .. } => "out_of_order",
        StreamError::Duplicate { .. } => "duplicate",
        StreamError::Missing { .. } => "missing",
        StreamError::Truncated { .. } => "truncated",
        StreamError::TrailingGarbage { .. } => "trailing_garbage",
        StreamError::TrailerCorrupt { .. } => "trailer_corrupt",
        StreamError::HeadersDisagree { .. } => "headers_disagree",
        StreamError::StripeMissing { .. } => "stripe_missing",
        StreamError::BadParams(_) => "bad_params",
        StreamError::Io(_) => "io",
    }
}

fn io_err(e: std::io::Error) -> StreamError {
    StreamError::Io(e.to_string())
}

// ---------------------------------------------------------------------------------------------
// Parameters and plan

/// BACKUP DATABASE or BACKUP LOG.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StreamKind {
    /// A full database backup.
    Database,
    /// A log backup.
    Log,
}

impl StreamKind {
    fn code(self) -> u16 {
        match self {
            StreamKind::Database => 1,
            StreamKind::Log => 2,
        }
    }
    fn from_code(c: u16) -> Option<Self> {
        match c {
            1 => Some(StreamKind::Database),
            2 => Some(StreamKind::Log),
            _ => None,
        }
    }
}

/// What a BACKUP writes: identity, options and the size of the data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamParams {
    /// Backup set id, chosen by the caller (random per BACKUP).
    pub backup_id: u64,
    /// Database or log backup.
    pub kind: StreamKind,
    /// Database name, 1..=128 UTF-8 bytes.
    pub database: String,
    /// Bytes of data to back up (any value, 0 included).
    pub database_size: u64,
    /// Number of devices.
    pub stripes: u32,
    /// BLOCKSIZE option.
    pub blocksize: u32,
    /// MAXTRANSFERSIZE option.
    pub maxtransfersize: u32,
    /// Creation time, unix seconds.
    pub created_unix: u64,
}

/// Validated parameters and the sizes that follow from them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamPlan {
    blocksize: u32,
    maxtransfersize: u32,
    stripes: u32,
    database_size: u64,
    chunk_size: u32,
    total_records: u64,
}

/// Checks the options against §2.6 and computes the layout's totals.
pub fn plan(p: &StreamParams) -> Result<StreamPlan, StreamError> {
    if !p.blocksize.is_power_of_two() || !(MIN_BLOCKSIZE..=MAX_BLOCKSIZE).contains(&p.blocksize) {
        return Err(StreamError::BadParams(format!(
            "BLOCKSIZE {} must be a power of two from {MIN_BLOCKSIZE} to {MAX_BLOCKSIZE}",
            p.blocksize
        )));
    }
    if p.maxtransfersize % MIN_MAXTRANSFERSIZE != 0
        || !(MIN_MAXTRANSFERSIZE..=MAX_MAXTRANSFERSIZE).contains(&p.maxtransfersize)
    {
        return Err(StreamError::BadParams(format!(
            "MAXTRANSFERSIZE {} must be a multiple of 65536 from {MIN_MAXTRANSFERSIZE} to {MAX_MAXTRANSFERSIZE}",
            p.maxtransfersize
        )));
    }
    if u64::from(p.maxtransfersize) < 2 * u64::from(p.blocksize) {
        return Err(StreamError::BadParams(format!(
            "MAXTRANSFERSIZE {} must be at least twice BLOCKSIZE {}",
            p.maxtransfersize, p.blocksize
        )));
    }
    if !(1..=MAX_STRIPES).contains(&p.stripes) {
        return Err(StreamError::BadParams(format!(
            "{} devices requested; a backup uses 1 to {MAX_STRIPES}",
            p.stripes
        )));
    }
    if p.database.is_empty() || p.database.len() > MAX_DATABASE_NAME_BYTES {
        return Err(StreamError::BadParams(format!(
            "database name must be 1 to {MAX_DATABASE_NAME_BYTES} bytes, got {}",
            p.database.len()
        )));
    }
    let chunk_size = p.maxtransfersize - RECORD_HEADER_LEN as u32;
    let total_records = p.database_size.div_ceil(u64::from(chunk_size));
    let plan = StreamPlan {
        blocksize: p.blocksize,
        maxtransfersize: p.maxtransfersize,
        stripes: p.stripes,
        database_size: p.database_size,
        chunk_size,
        total_records,
    };
    // Every stripe's byte count must fit a u64 so counters never wrap.
    let worst = total_records
        .checked_add(2)
        .and_then(|n| n.checked_mul(u64::from(p.maxtransfersize)));
    if worst.is_none() {
        return Err(StreamError::BadParams(format!(
            "database size {} is too large",
            p.database_size
        )));
    }
    Ok(plan)
}

impl StreamPlan {
    /// BLOCKSIZE.
    pub fn blocksize(&self) -> u32 {
        self.blocksize
    }
    /// MAXTRANSFERSIZE.
    pub fn maxtransfersize(&self) -> u32 {
        self.maxtransfersize
    }
    /// Number of stripes.
    pub fn stripes(&self) -> u32 {
        self.stripes
    }
    /// Bytes of database data.
    pub fn database_size(&self) -> u64 {
        self.database_size
    }
    /// Payload bytes of a full data record (`MAXTRANSFERSIZE - 64`).
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }
    /// Data records over all stripes.
    pub fn total_records(&self) -> u64 {
        self.total_records
    }
    /// Data records on `stripe`.
    pub fn records_on_stripe(&self, stripe: u32) -> u64 {
        let s = u64::from(self.stripes.max(1));
        let i = u64::from(stripe);
        if i >= s {
            return 0;
        }
        self.total_records.saturating_add(s - 1 - i) / s
    }
    /// Transfers (VDC_Write commands) on `stripe`: header, records, trailer.
    pub fn transfers_on_stripe(&self, stripe: u32) -> u64 {
        self.records_on_stripe(stripe).saturating_add(2)
    }
    /// Database offset of global record `seq`.
    pub fn record_offset(&self, seq: u64) -> u64 {
        seq.saturating_mul(u64::from(self.chunk_size))
    }
    /// Payload length of global record `seq` (0 past the end).
    pub fn record_len(&self, seq: u64) -> u32 {
        let off = self.record_offset(seq);
        let left = self.database_size.saturating_sub(off);
        left.min(u64::from(self.chunk_size)) as u32
    }
    /// Bytes of the data record `seq` on the wire (header + payload + padding).
    pub fn record_wire_len(&self, seq: u64) -> u64 {
        round_up(
            RECORD_HEADER_LEN as u64 + u64::from(self.record_len(seq)),
            u64::from(self.blocksize),
        )
    }
    /// Bytes of `stripe` from media header through trailer.
    pub fn stripe_bytes(&self, stripe: u32) -> u64 {
        let n = self.records_on_stripe(stripe);
        let bs = u64::from(self.blocksize);
        let mut total = n.saturating_mul(u64::from(self.maxtransfersize)).saturating_add(2 * bs);
        if n > 0 && self.total_records > 0 {
            let last = self.total_records - 1;
            if last % u64::from(self.stripes.max(1)) == u64::from(stripe) {
                total = total
                    .saturating_sub(u64::from(self.maxtransfersize))
                    .saturating_add(self.record_wire_len(last));
            }
        }
        total
    }
    /// Bytes of all stripes together.
    pub fn total_bytes(&self) -> u64 {
        (0..self.stripes).fold(0u64, |a, s| a.saturating_add(self.stripe_bytes(s)))
    }
}

// ---------------------------------------------------------------------------------------------
// Media header

/// The decoded media header of one stripe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaHeader {
    /// Format version.
    pub version: u16,
    /// Database or log backup.
    pub kind: StreamKind,
    /// Backup set id.
    pub backup_id: u64,
    /// Database name at backup time.
    pub database: String,
    /// This stripe's index.
    pub stripe_index: u32,
    /// Stripes in the backup.
    pub stripes: u32,
    /// BLOCKSIZE of the backup.
    pub blocksize: u32,
    /// MAXTRANSFERSIZE of the backup.
    pub maxtransfersize: u32,
    /// Bytes of database data.
    pub database_size: u64,
    /// Data records over all stripes.
    pub total_records: u64,
    /// Creation time, unix seconds.
    pub created_unix: u64,
}

impl MediaHeader {
    /// The parameters the backup was written with.
    pub fn params(&self) -> StreamParams {
        StreamParams {
            backup_id: self.backup_id,
            kind: self.kind,
            database: self.database.clone(),
            database_size: self.database_size,
            stripes: self.stripes,
            blocksize: self.blocksize,
            maxtransfersize: self.maxtransfersize,
            created_unix: self.created_unix,
        }
    }

    fn encode(&self, b: &mut [u8]) {
        let b = &mut b[..MEDIA_HEADER_LEN];
        b.fill(0);
        b[0..8].copy_from_slice(&MEDIA_MAGIC);
        put_u16(b, 8, self.version);
        put_u16(b, 10, self.kind.code());
        put_u32(b, 12, self.stripe_index);
        put_u32(b, 16, self.stripes);
        put_u32(b, 20, self.blocksize);
        put_u32(b, 24, self.maxtransfersize);
        put_u64(b, 32, self.backup_id);
        put_u64(b, 40, self.database_size);
        put_u64(b, 48, self.total_records);
        put_u64(b, 56, self.created_unix);
        let name = self.database.as_bytes();
        let n = name.len().min(MAX_DATABASE_NAME_BYTES);
        put_u16(b, 64, n as u16);
        b[NAME_OFF..NAME_OFF + n].copy_from_slice(&name[..n]);
        let crc = crc32(&b[..MEDIA_CRC_OFF]);
        put_u32(b, MEDIA_CRC_OFF, crc);
    }

    /// Parses and validates the first 512 bytes of a stripe; `stripe` only labels errors.
    fn decode(b: &[u8], stripe: u32) -> Result<(Self, StreamPlan), StreamError> {
        let corrupt = |reason| StreamError::HeaderCorrupt { stripe, reason };
        if b.len() < MEDIA_HEADER_LEN || b[0..8] != MEDIA_MAGIC {
            return Err(StreamError::NotABackup { stripe });
        }
        if crc32(&b[..MEDIA_CRC_OFF]) != get_u32(b, MEDIA_CRC_OFF) {
            return Err(corrupt("checksum mismatch"));
        }
        let version = get_u16(b, 8);
        if version != FORMAT_VERSION {
            return Err(StreamError::UnsupportedVersion {
                stripe,
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let kind = StreamKind::from_code(get_u16(b, 10)).ok_or(corrupt("unknown backup kind"))?;
        let n = usize::from(get_u16(b, 64));
        if n == 0 || n > MAX_DATABASE_NAME_BYTES {
            return Err(corrupt("bad database name length"));
        }
        let database = std::str::from_utf8(&b[NAME_OFF..NAME_OFF + n])
            .map_err(|_| corrupt("database name is not UTF-8"))?
            .to_owned();
        let h = MediaHeader {
            version,
            kind,
            backup_id: get_u64(b, 32),
            database,
            stripe_index: get_u32(b, 12),
            stripes: get_u32(b, 16),
            blocksize: get_u32(b, 20),
            maxtransfersize: get_u32(b, 24),
            database_size: get_u64(b, 40),
            total_records: get_u64(b, 48),
            created_unix: get_u64(b, 56),
        };
        let plan = plan(&h.params()).map_err(|_| corrupt("options out of range"))?;
        if h.stripe_index >= h.stripes {
            return Err(corrupt("stripe index out of range"));
        }
        if plan.total_records != h.total_records {
            return Err(corrupt("record count does not match the database size"));
        }
        Ok((h, plan))
    }
}

/// Reads the media header from the first [`MEDIA_HEADER_LEN`] bytes of a stripe, before the
/// restore knows the backup's BLOCKSIZE (the header sits in the first 512 bytes whatever the
/// BLOCKSIZE, §3.3). `stripe` only labels errors. This does not replace the decoder's checks.
pub fn read_media_header(first: &[u8], stripe: u32) -> Result<MediaHeader, StreamError> {
    MediaHeader::decode(first, stripe).map(|(h, _)| h)
}

// ---------------------------------------------------------------------------------------------
// Encoder

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EncState {
    Header,
    Record(u64),
    Trailer,
    Done,
}

/// Produces one stripe of a backup, one transfer at a time, straight into the caller's buffer.
#[derive(Debug, Clone)]
pub struct StripeEncoder {
    plan: StreamPlan,
    header: MediaHeader,
    state: EncState,
    records: u64,
    crcs: Crc32,
    payload_bytes: u64,
    bytes: u64,
}

impl StripeEncoder {
    /// An encoder for stripe `stripe` of the backup described by `params`.
    pub fn new(params: &StreamParams, stripe: u32) -> Result<Self, StreamError> {
        let plan = plan(params)?;
        if stripe >= params.stripes {
            return Err(StreamError::BadParams(format!(
                "stripe {stripe} does not exist in a backup of {} stripes",
                params.stripes
            )));
        }
        let header = MediaHeader {
            version: FORMAT_VERSION,
            kind: params.kind,
            backup_id: params.backup_id,
            database: params.database.clone(),
            stripe_index: stripe,
            stripes: params.stripes,
            blocksize: params.blocksize,
            maxtransfersize: params.maxtransfersize,
            database_size: params.database_size,
            total_records: plan.total_records,
            created_unix: params.created_unix,
        };
        Ok(Self {
            records: plan.records_on_stripe(stripe),
            plan,
            header,
            state: EncState::Header,
            crcs: Crc32::new(),
            payload_bytes: 0,
            bytes: 0,
        })
    }

    /// Transfers this stripe needs in total (header + records + trailer).
    pub fn transfers_total(&self) -> u64 {
        self.records.saturating_add(2)
    }

    /// Bytes this stripe will have in total.
    pub fn bytes_total(&self) -> u64 {
        self.plan.stripe_bytes(self.header.stripe_index)
    }

    /// The plan shared by all stripes.
    pub fn plan(&self) -> &StreamPlan {
        &self.plan
    }

    /// The media header this stripe starts with.
    pub fn media_header(&self) -> &MediaHeader {
        &self.header
    }

    /// True once the trailer was produced.
    pub fn is_done(&self) -> bool {
        self.state == EncState::Done
    }

    fn need(&self, out: &[u8], n: usize) -> Result<(), StreamError> {
        if out.len() < n {
            return Err(StreamError::BadParams(format!(
                "transfer buffer of {} bytes is smaller than the {n} bytes needed",
                out.len()
            )));
        }
        Ok(())
    }

    /// Fills `out` (normally MAXTRANSFERSIZE bytes, the shared-memory buffer) with the next
    /// transfer and returns its length, a multiple of BLOCKSIZE; `None` once the stripe is
    /// complete. `read_db(offset, buf)` must fill `buf` with database bytes at `offset`. On an
    /// error nothing advances, so the call may be retried.
    pub fn next_transfer(
        &mut self,
        read_db: &mut dyn FnMut(u64, &mut [u8]) -> std::io::Result<()>,
        out: &mut [u8],
    ) -> Result<Option<usize>, StreamError> {
        let bs = self.plan.blocksize as usize;
        let stripe = self.header.stripe_index;
        let stripes = u64::from(self.plan.stripes);
        let n = match self.state {
            EncState::Done => return Ok(None),
            EncState::Header => {
                self.need(out, bs)?;
                self.header.encode(out);
                out[MEDIA_HEADER_LEN..bs].fill(0);
                self.state = if self.records == 0 {
                    EncState::Trailer
                } else {
                    EncState::Record(0)
                };
                bs
            }
            EncState::Record(i) => {
                let seq = i * stripes + u64::from(stripe);
                let len = self.plan.record_len(seq) as usize;
                let total = self.plan.record_wire_len(seq) as usize;
                self.need(out, total)?;
                let offset = self.plan.record_offset(seq);
                let payload = &mut out[RECORD_HEADER_LEN..RECORD_HEADER_LEN + len];
                read_db(offset, payload).map_err(io_err)?;
                let pcrc = crc32(payload);
                let h = &mut out[..RECORD_HEADER_LEN];
                h.fill(0);
                h[0..8].copy_from_slice(&DATA_MAGIC);
                put_u64(h, 8, self.header.backup_id);
                put_u32(h, 16, stripe);
                put_u32(h, 20, len as u32);
                put_u64(h, 24, seq);
                put_u64(h, 32, i);
                put_u64(h, 40, offset);
                put_u32(h, 48, pcrc);
                let hcrc = crc32(&h[..RECORD_CRC_OFF]);
                put_u32(h, RECORD_CRC_OFF, hcrc);
                out[RECORD_HEADER_LEN + len..total].fill(0);
                self.crcs.update(&pcrc.to_le_bytes());
                self.payload_bytes += len as u64;
                self.state = if i + 1 < self.records {
                    EncState::Record(i + 1)
                } else {
                    EncState::Trailer
                };
                total
            }
            EncState::Trailer => {
                self.need(out, bs)?;
                let t = &mut out[..bs];
                t.fill(0);
                t[0..8].copy_from_slice(&TRAILER_MAGIC);
                put_u64(t, 8, self.header.backup_id);
                put_u32(t, 16, stripe);
                put_u32(t, 20, self.plan.stripes);
                put_u64(t, 24, self.records);
                put_u64(t, 32, self.bytes + bs as u64);
                put_u64(t, 40, self.payload_bytes);
                put_u32(t, 48, self.crcs.finalize());
                let hcrc = crc32(&t[..RECORD_CRC_OFF]);
                put_u32(t, RECORD_CRC_OFF, hcrc);
                self.state = EncState::Done;
                bs
            }
        };
        self.bytes += n as u64;
        Ok(Some(n))
    }
}

// ---------------------------------------------------------------------------------------------
// Decoder

/// What the restore knows before reading a stripe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecoderExpectations {
    /// Position of the device in the RESTORE statement.
    pub stripe_index: u32,
    /// Devices in the RESTORE statement.
    pub stripes: u32,
    /// BLOCKSIZE of the RESTORE.
    pub blocksize: u32,
    /// Backup set id, if known (e.g. from the first stripe's header).
    pub backup_id: Option<u64>,
}

/// The result of a completely and correctly read stripe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StripeSummary {
    /// The stripe's media header.
    pub header: MediaHeader,
    /// Data records delivered.
    pub records: u64,
    /// Payload bytes delivered.
    pub payload_bytes: u64,
    /// Bytes of the stripe, header through trailer.
    pub stripe_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    MediaHeader,
    HeaderPad,
    RecordHead,
    RecordBody { seq: u64, len: u32, crc: u32, skip: bool },
    TrailerPad,
    Done,
}

/// Verifies one stripe while it is read, handing verified payloads to a sink. Input may come
/// in chunks of any size; at most one record (≤ MAXTRANSFERSIZE) is buffered. After the first
/// error the decoder stays failed and repeats that error.
#[derive(Debug)]
pub struct StripeDecoder {
    expected: DecoderExpectations,
    header: Option<MediaHeader>,
    plan: Option<StreamPlan>,
    unit: Unit,
    buf: Vec<u8>,
    consumed: u64,
    next: u64,
    records_expected: u64,
    crcs: Crc32,
    payload_bytes: u64,
    /// A record with a later sequence arrived (expected, found; per-stripe sequences). It is
    /// judged when the next record arrives: the expected one means a swap, else a loss.
    gap: Option<(u64, u64)>,
    failed: Option<StreamError>,
}

impl StripeDecoder {
    /// A decoder for the device at `expected.stripe_index`.
    pub fn new(expected: DecoderExpectations) -> Self {
        Self {
            expected,
            header: None,
            plan: None,
            unit: Unit::MediaHeader,
            buf: Vec::new(),
            consumed: 0,
            next: 0,
            records_expected: 0,
            crcs: Crc32::new(),
            payload_bytes: 0,
            gap: None,
            failed: None,
        }
    }

    /// The media header, once read and accepted.
    pub fn header(&self) -> Option<&MediaHeader> {
        self.header.as_ref()
    }

    /// True once the trailer was read and verified.
    pub fn is_complete(&self) -> bool {
        self.unit == Unit::Done && self.failed.is_none()
    }

    /// Bytes accepted so far.
    pub fn bytes_consumed(&self) -> u64 {
        self.consumed
    }

    /// Data records delivered to the sink so far.
    pub fn records_delivered(&self) -> u64 {
        self.next
    }

    /// Feeds the next bytes of the stripe. Verified payloads go to `sink(db_offset, bytes)`;
    /// nothing is handed over before its checksum has been checked.
    pub fn feed(
        &mut self,
        bytes: &[u8],
        sink: &mut dyn FnMut(u64, &[u8]) -> std::io::Result<()>,
    ) -> Result<(), StreamError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let r = self.feed_inner(bytes, sink);
        if let Err(e) = &r {
            self.failed = Some(e.clone());
        }
        r
    }

    /// Ends the stripe: errors unless the trailer was read and everything matched.
    pub fn finish(self) -> Result<StripeSummary, StreamError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let stripe = self.expected.stripe_index;
        if let Some((e, f)) = self.gap {
            return Err(self.missing(e, f - e));
        }
        match (self.unit, self.header) {
            (Unit::Done, Some(header)) => Ok(StripeSummary {
                header,
                records: self.next,
                payload_bytes: self.payload_bytes,
                stripe_bytes: self.consumed,
            }),
            _ => Err(StreamError::Truncated {
                stripe,
                bytes: self.consumed,
            }),
        }
    }

    fn stripes(&self) -> u64 {
        u64::from(self.plan.as_ref().map_or(1, |p| p.stripes).max(1))
    }

    fn global(&self, stripe_seq: u64) -> u64 {
        stripe_seq
            .saturating_mul(self.stripes())
            .saturating_add(u64::from(self.expected.stripe_index))
    }

    fn missing(&self, stripe_seq: u64, count: u64) -> StreamError {
        StreamError::Missing {
            stripe: self.expected.stripe_index,
            first: self.global(stripe_seq),
            count,
        }
    }

    fn unit_len(&self) -> usize {
        let bs = self.plan.as_ref().map_or(MIN_BLOCKSIZE, |p| p.blocksize) as usize;
        match self.unit {
            Unit::MediaHeader => MEDIA_HEADER_LEN,
            Unit::HeaderPad => bs.saturating_sub(MEDIA_HEADER_LEN),
            Unit::RecordHead => RECORD_HEADER_LEN,
            Unit::RecordBody { len, .. } => {
                round_up(RECORD_HEADER_LEN as u64 + u64::from(len), bs as u64) as usize - RECORD_HEADER_LEN
            }
            Unit::TrailerPad => bs - RECORD_HEADER_LEN,
            Unit::Done => 0,
        }
    }

    fn feed_inner(
        &mut self,
        mut bytes: &[u8],
        sink: &mut dyn FnMut(u64, &[u8]) -> std::io::Result<()>,
    ) -> Result<(), StreamError> {
        while !bytes.is_empty() {
            if self.unit == Unit::Done {
                return Err(StreamError::TrailingGarbage {
                    stripe: self.expected.stripe_index,
                });
            }
            let need = self.unit_len();
            if self.buf.is_empty() && bytes.len() >= need {
                let (unit, rest) = bytes.split_at(need);
                bytes = rest;
                self.consumed += need as u64;
                self.complete_unit(unit, sink)?;
            } else {
                let take = (need - self.buf.len()).min(bytes.len());
                self.buf.extend_from_slice(&bytes[..take]);
                bytes = &bytes[take..];
                self.consumed += take as u64;
                if self.buf.len() == need {
                    let buf = std::mem::take(&mut self.buf);
                    self.complete_unit(&buf, sink)?;
                    self.buf = buf;
                    self.buf.clear();
                }
            }
        }
        Ok(())
    }

    fn complete_unit(
        &mut self,
        unit: &[u8],
        sink: &mut dyn FnMut(u64, &[u8]) -> std::io::Result<()>,
    ) -> Result<(), StreamError> {
        let stripe = self.expected.stripe_index;
        match self.unit {
            Unit::MediaHeader => {
                let (h, plan) = MediaHeader::decode(unit, stripe)?;
                self.check_expectations(&h)?;
                self.records_expected = plan.records_on_stripe(stripe);
                let pad = plan.blocksize as usize > MEDIA_HEADER_LEN;
                self.header = Some(h);
                self.plan = Some(plan);
                self.unit = if pad { Unit::HeaderPad } else { Unit::RecordHead };
            }
            Unit::HeaderPad => {
                if unit.iter().any(|&b| b != 0) {
                    return Err(StreamError::HeaderCorrupt {
                        stripe,
                        reason: "nonzero padding after the header",
                    });
                }
                self.unit = Unit::RecordHead;
            }
            Unit::RecordHead => self.record_head(unit)?,
            Unit::RecordBody { seq, len, crc, skip } => {
                let len = len as usize;
                let corrupt = |part| StreamError::RecordCorrupt {
                    stripe,
                    sequence: seq,
                    part,
                };
                let payload = &unit[..len];
                if crc32(payload) != crc {
                    return Err(corrupt(CorruptPart::Payload));
                }
                if unit[len..].iter().any(|&b| b != 0) {
                    return Err(corrupt(CorruptPart::Padding));
                }
                if !skip {
                    let offset = self.plan.as_ref().map_or(0, |p| p.record_offset(seq));
                    sink(offset, payload).map_err(io_err)?;
                    self.crcs.update(&crc.to_le_bytes());
                    self.payload_bytes += len as u64;
                    self.next += 1;
                }
                self.unit = Unit::RecordHead;
            }
            Unit::TrailerPad => {
                if unit.iter().any(|&b| b != 0) {
                    return Err(StreamError::TrailerCorrupt {
                        stripe,
                        reason: "nonzero padding",
                    });
                }
                self.unit = Unit::Done;
            }
            Unit::Done => {}
        }
        Ok(())
    }

    fn check_expectations(&self, h: &MediaHeader) -> Result<(), StreamError> {
        let x = &self.expected;
        if let Some(id) = x.backup_id {
            if id != h.backup_id {
                return Err(StreamError::DifferentBackupSet {
                    stripe: x.stripe_index,
                    expected: id,
                    found: h.backup_id,
                });
            }
        }
        if h.stripes != x.stripes {
            return Err(StreamError::StripeCountMismatch {
                backup: h.stripes,
                restore: x.stripes,
            });
        }
        if h.stripe_index != x.stripe_index {
            return Err(StreamError::WrongStripe {
                expected: x.stripe_index,
                found: h.stripe_index,
            });
        }
        if h.blocksize != x.blocksize {
            return Err(StreamError::BlocksizeMismatch {
                backup: h.blocksize,
                restore: x.blocksize,
            });
        }
        Ok(())
    }

    fn record_head(&mut self, b: &[u8]) -> Result<(), StreamError> {
        let stripe = self.expected.stripe_index;
        let (Some(h), Some(plan)) = (&self.header, &self.plan) else {
            return Err(StreamError::NotABackup { stripe });
        };
        let backup_id = h.backup_id;
        let stripes = plan.stripes;
        let crc_ok = crc32(&b[..RECORD_CRC_OFF]) == get_u32(b, RECORD_CRC_OFF);
        let is_trailer = b[0..8] == TRAILER_MAGIC;
        if b[0..8] != DATA_MAGIC && !(is_trailer && crc_ok) {
            if is_trailer {
                return Err(StreamError::TrailerCorrupt {
                    stripe,
                    reason: "checksum mismatch",
                });
            }
            return Err(StreamError::RecordCorrupt {
                stripe,
                sequence: self.global(self.next),
                part: CorruptPart::Header,
            });
        }
        if !crc_ok {
            return Err(StreamError::RecordCorrupt {
                stripe,
                sequence: self.global(self.next),
                part: CorruptPart::Header,
            });
        }
        let found_id = get_u64(b, 8);
        if found_id != backup_id {
            return Err(StreamError::DifferentBackupSet {
                stripe,
                expected: backup_id,
                found: found_id,
            });
        }
        let found_stripe = get_u32(b, 16);
        if found_stripe != stripe {
            return Err(StreamError::WrongStripe {
                expected: stripe,
                found: found_stripe,
            });
        }
        if is_trailer {
            return self.trailer(b, stripes);
        }
        let len = get_u32(b, 20);
        let seq = get_u64(b, 24);
        let sseq = get_u64(b, 32);
        let offset = get_u64(b, 40);
        let consistent = sseq < self.records_expected
            && seq == self.global(sseq)
            && offset == plan.record_offset(seq)
            && len == plan.record_len(seq)
            && len > 0;
        if !consistent {
            return Err(StreamError::RecordCorrupt {
                stripe,
                sequence: self.global(self.next),
                part: CorruptPart::Inconsistent,
            });
        }
        if let Some((e, f)) = self.gap {
            // The record after an early one decides between a swap and a loss.
            return Err(if sseq == e {
                StreamError::OutOfOrder {
                    stripe,
                    expected: self.global(e),
                    found: self.global(f),
                }
            } else {
                self.missing(e, f - e)
            });
        }
        let skip = if sseq < self.next {
            return Err(StreamError::Duplicate { stripe, sequence: seq });
        } else if sseq > self.next {
            self.gap = Some((self.next, sseq));
            true
        } else {
            false
        };
        self.unit = Unit::RecordBody {
            seq,
            len,
            crc: get_u32(b, 48),
            skip,
        };
        Ok(())
    }

    fn trailer(&mut self, b: &[u8], stripes: u32) -> Result<(), StreamError> {
        let stripe = self.expected.stripe_index;
        if let Some((e, f)) = self.gap {
            return Err(self.missing(e, f - e));
        }
        let bad = |reason| StreamError::TrailerCorrupt { stripe, reason };
        if get_u32(b, 20) != stripes {
            return Err(bad("stripe count differs from the media header"));
        }
        let count = get_u64(b, 24);
        if count != self.records_expected {
            return Err(bad("record count differs from the media header"));
        }
        if self.next < count {
            return Err(self.missing(self.next, count - self.next));
        }
        let bs = self.plan.as_ref().map_or(MIN_BLOCKSIZE, |p| p.blocksize);
        let total = self.consumed - RECORD_HEADER_LEN as u64 + u64::from(bs);
        if get_u64(b, 32) != total {
            return Err(bad("stripe length differs"));
        }
        if get_u64(b, 40) != self.payload_bytes {
            return Err(bad("payload byte count differs"));
        }
        if get_u32(b, 48) != self.crcs.finalize() {
            return Err(bad("checksum of checksums differs"));
        }
        self.unit = Unit::TrailerPad;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Cross-stripe checks

/// Checks that the stripes of one RESTORE belong to one backup and that every stripe was read
/// to its end exactly once. Each [`StripeDecoder`] already guarantees that its stripe held
/// exactly its own blocks `k ≡ stripe (mod stripes)` in order, so together this proves every
/// global sequence `0..total` arrived exactly once. Share it between device threads behind a
/// `Mutex`; call [`check_header`](Self::check_header) as soon as a decoder has its header so a
/// foreign stripe fails before its data is written.
#[derive(Debug, Clone, Default)]
pub struct RestoreVerifier {
    reference: Option<MediaHeader>,
    finished: Vec<bool>,
}

impl RestoreVerifier {
    /// An empty verifier; the first header seen becomes the reference.
    pub fn new() -> Self {
        Self::default()
    }

    /// The backup set id of the first header seen, to pass to later decoders.
    pub fn backup_id(&self) -> Option<u64> {
        self.reference.as_ref().map(|r| r.backup_id)
    }

    /// Checks a stripe's media header against the first one seen.
    pub fn check_header(&mut self, h: &MediaHeader) -> Result<(), StreamError> {
        let Some(r) = &self.reference else {
            if h.stripe_index >= h.stripes || h.stripes > MAX_STRIPES {
                return Err(StreamError::HeaderCorrupt {
                    stripe: h.stripe_index,
                    reason: "stripe index out of range",
                });
            }
            self.finished = vec![false; h.stripes as usize];
            self.reference = Some(h.clone());
            return Ok(());
        };
        let stripe = h.stripe_index;
        if h.backup_id != r.backup_id {
            return Err(StreamError::DifferentBackupSet {
                stripe,
                expected: r.backup_id,
                found: h.backup_id,
            });
        }
        let field = if h.stripes != r.stripes {
            "stripe count"
        } else if h.stripe_index >= r.stripes {
            "stripe index"
        } else if h.kind != r.kind {
            "backup kind"
        } else if h.database != r.database {
            "database name"
        } else if h.database_size != r.database_size || h.total_records != r.total_records {
            "database size"
        } else if h.blocksize != r.blocksize || h.maxtransfersize != r.maxtransfersize {
            "block sizes"
        } else if h.created_unix != r.created_unix || h.version != r.version {
            "creation time"
        } else {
            return Ok(());
        };
        Err(StreamError::HeadersDisagree { stripe, field })
    }

    /// Records a stripe that its decoder finished successfully.
    pub fn add_stripe(&mut self, s: &StripeSummary) -> Result<(), StreamError> {
        self.check_header(&s.header)?;
        let stripe = s.header.stripe_index;
        let stripes = u64::from(s.header.stripes.max(1));
        let Some(done) = self.finished.get_mut(stripe as usize) else {
            return Err(StreamError::HeadersDisagree {
                stripe,
                field: "stripe index",
            });
        };
        if *done {
            return Err(StreamError::Duplicate {
                stripe,
                sequence: u64::from(stripe),
            });
        }
        let expected = s
            .header
            .total_records
            .saturating_add(stripes - 1 - u64::from(stripe).min(stripes - 1))
            / stripes;
        if s.records < expected {
            return Err(StreamError::Missing {
                stripe,
                first: s.records.saturating_mul(stripes).saturating_add(u64::from(stripe)),
                count: expected - s.records,
            });
        }
        *done = true;
        Ok(())
    }

    /// Succeeds with the reference header when every stripe was added.
    pub fn finish(self) -> Result<MediaHeader, StreamError> {
        let Some(r) = self.reference else {
            return Err(StreamError::StripeMissing { stripe: 0 });
        };
        if let Some(i) = self.finished.iter().position(|d| !d) {
            return Err(StreamError::StripeMissing { stripe: i as u32 });
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rstest::rstest;

    const ID: u64 = 0x5EED_0000_0000_0001;

    fn db_bytes(size: u64, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..size)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn params(stripes: u32, bs: u32, mts: u32, size: u64) -> StreamParams {
        StreamParams {
            backup_id: ID,
            kind: StreamKind::Database,
            database: "Sales".into(),
            database_size: size,
            stripes,
            blocksize: bs,
            maxtransfersize: mts,
            created_unix: 1_700_000_000,
        }
    }

    /// Every stripe as its list of transfers.
    fn encode(p: &StreamParams, db: &[u8]) -> Vec<Vec<Vec<u8>>> {
        (0..p.stripes)
            .map(|s| {
                let mut enc = StripeEncoder::new(p, s).unwrap();
                let mut buf = vec![0xAAu8; p.maxtransfersize as usize];
                let mut out = Vec::new();
                let mut read = |off: u64, b: &mut [u8]| {
                    let off = off as usize;
                    b.copy_from_slice(&db[off..off + b.len()]);
                    Ok(())
                };
                while let Some(n) = enc.next_transfer(&mut read, &mut buf).unwrap() {
                    assert_eq!(n % p.blocksize as usize, 0);
                    assert!(n <= p.maxtransfersize as usize);
                    out.push(buf[..n].to_vec());
                }
                assert!(enc.is_done());
                assert_eq!(out.len() as u64, enc.transfers_total());
                assert_eq!(out.iter().map(Vec::len).sum::<usize>() as u64, enc.bytes_total());
                out
            })
            .collect()
    }

    fn devices(stripes: &[Vec<Vec<u8>>]) -> Vec<Vec<u8>> {
        stripes.iter().map(|t| t.concat()).collect()
    }

    /// Restores like the engine: one decoder per device, a shared verifier, chunk sizes from
    /// `chunk`. `known_id` passes the first header's id on to later decoders.
    fn restore_with(
        devs: &[Vec<u8>],
        bs: u32,
        known_id: bool,
        chunk: &mut dyn FnMut() -> usize,
    ) -> Result<Vec<u8>, StreamError> {
        let mut out = Vec::new();
        let mut verifier = RestoreVerifier::new();
        for (i, dev) in devs.iter().enumerate() {
            let mut dec = StripeDecoder::new(DecoderExpectations {
                stripe_index: i as u32,
                stripes: devs.len() as u32,
                blocksize: bs,
                backup_id: if known_id { verifier.backup_id() } else { None },
            });
            let mut checked = false;
            let mut rest = &dev[..];
            while !rest.is_empty() {
                let n = chunk().clamp(1, rest.len());
                let (now, later) = rest.split_at(n);
                rest = later;
                dec.feed(now, &mut |off, data| {
                    let end = off as usize + data.len();
                    if out.len() < end {
                        out.resize(end, 0);
                    }
                    out[off as usize..end].copy_from_slice(data);
                    Ok(())
                })?;
                if let (false, Some(h)) = (checked, dec.header()) {
                    verifier.check_header(h)?;
                    checked = true;
                }
            }
            verifier.add_stripe(&dec.finish()?)?;
        }
        let h = verifier.finish()?;
        assert_eq!(out.len() as u64, h.database_size);
        Ok(out)
    }

    fn restore(devs: &[Vec<u8>], bs: u32) -> Result<Vec<u8>, StreamError> {
        restore_with(devs, bs, false, &mut || usize::MAX)
    }

    /// A 3-stripe backup with several records per stripe, for the corruption tests.
    fn sample() -> (StreamParams, Vec<u8>, Vec<Vec<Vec<u8>>>) {
        let p = params(3, 4096, 65536, 9 * 65472 + 1000);
        let db = db_bytes(p.database_size, 7);
        let t = encode(&p, &db);
        (p, db, t)
    }

    #[test]
    fn crc32_matches_known_vectors() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b"The quick brown fox jumps over the lazy dog"), 0x414F_A339);
        let data = db_bytes(1000, 3);
        let mut h = Crc32::new();
        h.update(&data[..3]);
        h.update(&data[3..517]);
        h.update(&data[517..]);
        assert_eq!(h.finalize(), crc32(&data));
    }

    #[rstest]
    #[case::blocksize_not_pow2(params(1, 1000, 65536, 1))]
    #[case::blocksize_small(params(1, 256, 65536, 1))]
    #[case::blocksize_big(params(1, 131072, 4 << 20, 1))]
    #[case::mts_not_multiple(params(1, 512, 65536 + 512, 1))]
    #[case::mts_big(params(1, 512, 8 << 20, 1))]
    #[case::mts_zero(params(1, 512, 0, 1))]
    #[case::mts_below_two_blocks(params(1, 65536, 65536, 1))]
    #[case::no_stripes(params(0, 512, 65536, 1))]
    #[case::too_many_stripes(params(65, 512, 65536, 1))]
    #[case::huge(params(1, 512, 65536, u64::MAX))]
    fn plan_rejects_bad_params(#[case] p: StreamParams) {
        assert!(matches!(plan(&p), Err(StreamError::BadParams(_))));
        assert!(StripeEncoder::new(&p, 0).is_err());
    }

    #[test]
    fn plan_rejects_bad_names_and_stripe() {
        let mut p = params(2, 512, 65536, 1);
        assert!(StripeEncoder::new(&p, 2).is_err());
        p.database = String::new();
        assert!(plan(&p).is_err());
        p.database = "é".repeat(64);
        assert!(plan(&p).is_ok());
        p.database.push('x');
        assert!(plan(&p).is_err());
    }

    #[test]
    fn plan_totals() {
        let p = params(3, 512, 65536, 4 * 65472 + 1);
        let pl = plan(&p).unwrap();
        assert_eq!(pl.chunk_size(), 65472);
        assert_eq!(pl.total_records(), 5);
        assert_eq!((0..3).map(|s| pl.records_on_stripe(s)).collect::<Vec<_>>(), [2, 2, 1]);
        assert_eq!(pl.records_on_stripe(3), 0);
        assert_eq!(pl.record_len(4), 1);
        assert_eq!(pl.record_wire_len(4), 512);
        assert_eq!(pl.stripe_bytes(1), 1024 + 65536 + 512);
        assert_eq!(pl.stripe_bytes(2), 1024 + 65536);
        let t = encode(&p, &db_bytes(p.database_size, 1));
        assert_eq!(devices(&t).iter().map(Vec::len).sum::<usize>() as u64, pl.total_bytes());
    }

    #[rstest]
    #[case(1, 512, 65536, 1)]
    #[case(1, 512, 65536, 0)]
    #[case(1, 512, 65536, 65472)]
    #[case(1, 65536, 131072, 300_001)]
    #[case(3, 4096, 131072, 1_000_003)]
    #[case(3, 512, 65536, 8192)]
    #[case(4, 8192, 4 << 20, 5 << 20)]
    #[case(64, 512, 65536, 64 * 65472 + 5)]
    #[case(64, 1024, 65536, 100_000)]
    fn round_trip(#[case] stripes: u32, #[case] bs: u32, #[case] mts: u32, #[case] size: u64) {
        let p = params(stripes, bs, mts, size);
        let db = db_bytes(size, u64::from(stripes) * 31 + size);
        let devs = devices(&encode(&p, &db));
        assert_eq!(restore(&devs, bs).unwrap(), db);
        // Reads of one block at a time, as a restore with a small MAXTRANSFERSIZE would do.
        let mut blocks = || bs as usize;
        assert_eq!(restore_with(&devs, bs, true, &mut blocks).unwrap(), db);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn round_trip_random_chunks(
            stripes in 1u32..6,
            bs_log in 9u32..14,
            mts_k in 1u32..4,
            size in 0u64..400_000,
            chunks in proptest::collection::vec(1usize..70_000, 1..20),
            seed: u64,
        ) {
            let bs = 1 << bs_log;
            let mts = (mts_k * 65536).max(2 * bs);
            let p = params(stripes, bs, mts, size);
            let db = db_bytes(size, seed);
            let devs = devices(&encode(&p, &db));
            let mut i = 0;
            let mut next = || { i += 1; chunks[i % chunks.len()] };
            prop_assert_eq!(restore_with(&devs, bs, true, &mut next).unwrap(), db);
        }

        #[test]
        fn random_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..5000),
            cut in 1usize..600,
            bs_log in 9u32..17,
        ) {
            let mut dec = StripeDecoder::new(DecoderExpectations {
                stripe_index: 0, stripes: 1, blocksize: 1 << bs_log, backup_id: None,
            });
            for c in bytes.chunks(cut) {
                if dec.feed(c, &mut |_, _| Ok(())).is_err() {
                    break;
                }
            }
            prop_assert!(dec.finish().is_err());
        }

        #[test]
        fn mutated_streams_never_panic_or_pass(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            cut in 1usize..9000,
        ) {
            let p = params(2, 512, 65536, 3 * 65472 + 77);
            let db = db_bytes(p.database_size, 5);
            let mut devs = devices(&encode(&p, &db));
            let orig = devs.clone();
            for (idx, v) in edits {
                let d = idx.index(2);
                let at = idx.index(devs[d].len());
                devs[d][at] = v;
            }
            let r = restore_with(&devs, 512, true, &mut || cut);
            if devs == orig {
                prop_assert_eq!(r.unwrap(), db);
            } else {
                prop_assert!(r.is_err());
            }
        }

        #[test]
        fn forged_headers_never_panic(
            fields in proptest::collection::vec(any::<u8>(), 186),
            keep_name in any::<bool>(),
            tail in proptest::collection::vec(any::<u8>(), 0..3000),
        ) {
            // Valid magic and checksum but arbitrary values, so the field checks are reached.
            let mut h = vec![0u8; MEDIA_HEADER_LEN];
            h[..8].copy_from_slice(&MEDIA_MAGIC);
            h[8..194].copy_from_slice(&fields);
            put_u16(&mut h, 8, FORMAT_VERSION);
            if keep_name {
                put_u16(&mut h, 64, 5);
                h[NAME_OFF..NAME_OFF + 5].copy_from_slice(b"Sales");
            }
            let crc = crc32(&h[..MEDIA_CRC_OFF]);
            put_u32(&mut h, MEDIA_CRC_OFF, crc);
            h.extend_from_slice(&tail);
            let mut dec = StripeDecoder::new(DecoderExpectations {
                stripe_index: 0, stripes: 1, blocksize: 512, backup_id: None,
            });
            let _ = dec.feed(&h, &mut |_, _| Ok(()));
            prop_assert!(dec.finish().is_err());
        }

        #[test]
        fn every_single_byte_flip_is_detected(at in any::<prop::sample::Index>(), bit in 0u8..8) {
            let p = params(1, 1024, 65536, 65472 + 3000);
            let db = db_bytes(p.database_size, 9);
            let mut devs = devices(&encode(&p, &db));
            let i = at.index(devs[0].len());
            devs[0][i] ^= 1 << bit;
            prop_assert!(restore(&devs, 1024).is_err());
        }
    }

    fn err(devs: &[Vec<u8>], bs: u32) -> StreamError {
        restore(devs, bs).unwrap_err()
    }

    #[test]
    fn payload_flip_is_record_corrupt() {
        let (_, _, mut t) = sample();
        t[1][2][64 + 100] ^= 0x40;
        assert_eq!(
            err(&devices(&t), 4096),
            StreamError::RecordCorrupt {
                stripe: 1,
                sequence: 4,
                part: CorruptPart::Payload
            }
        );
    }

    #[test]
    fn record_header_flip_is_record_corrupt() {
        let (_, _, mut t) = sample();
        t[2][1][33] ^= 1; // per-stripe sequence byte
        assert_eq!(
            err(&devices(&t), 4096),
            StreamError::RecordCorrupt {
                stripe: 2,
                sequence: 2,
                part: CorruptPart::Header
            }
        );
    }

    #[test]
    fn padding_flip_is_detected() {
        let (_, _, mut t) = sample();
        // The last record (global 9, stripe 0) is short and padded.
        let last = t[0].len() - 2;
        let n = t[0][last].len();
        t[0][last][n - 1] = 1;
        assert_eq!(
            err(&devices(&t), 4096),
            StreamError::RecordCorrupt {
                stripe: 0,
                sequence: 9,
                part: CorruptPart::Padding
            }
        );
        let (_, _, mut t) = sample();
        t[0][0][4000] = 1;
        assert!(matches!(
            err(&devices(&t), 4096),
            StreamError::HeaderCorrupt { stripe: 0, .. }
        ));
    }

    #[test]
    fn media_header_damage() {
        let (_, _, t) = sample();
        let mut d = devices(&t);
        d[1][100] ^= 2;
        assert!(matches!(err(&d, 4096), StreamError::HeaderCorrupt { stripe: 1, .. }));
        let mut d = devices(&t);
        d[0][0] = b'X';
        assert_eq!(err(&d, 4096), StreamError::NotABackup { stripe: 0 });
        let mut d = devices(&t);
        put_u16(&mut d[0], 8, 2);
        let crc = crc32(&d[0][..MEDIA_CRC_OFF]);
        put_u32(&mut d[0], MEDIA_CRC_OFF, crc);
        assert_eq!(
            err(&d, 4096),
            StreamError::UnsupportedVersion {
                stripe: 0,
                found: 2,
                supported: 1
            }
        );
    }

    #[test]
    fn trailer_damage() {
        let (_, _, mut t) = sample();
        let last = t[2].len() - 1;
        t[2][last][41] ^= 1;
        assert!(matches!(
            err(&devices(&t), 4096),
            StreamError::TrailerCorrupt { stripe: 2, .. }
        ));
        let (_, _, mut t) = sample();
        let last = t[2].len() - 1;
        t[2][last][1000] = 9;
        assert!(matches!(
            err(&devices(&t), 4096),
            StreamError::TrailerCorrupt { stripe: 2, .. }
        ));
    }

    #[test]
    fn dropped_record_is_missing() {
        let (_, _, mut t) = sample();
        t[1].remove(2); // stripe 1's second record = global 4
        assert_eq!(
            err(&devices(&t), 4096),
            StreamError::Missing {
                stripe: 1,
                first: 4,
                count: 1
            }
        );
        let (_, _, mut t) = sample();
        let n = t[0].len();
        t[0].remove(n - 2); // the last record, detected by the trailer
        assert_eq!(
            err(&devices(&t), 4096),
            StreamError::Missing {
                stripe: 0,
                first: 9,
                count: 1
            }
        );
        let (_, _, mut t) = sample();
        t[0].remove(3);
        t[0].remove(2);
        let d = devices(&t);
        assert_eq!(
            err(&d, 4096),
            StreamError::Missing {
                stripe: 0,
                first: 3,
                count: 2
            }
        );
    }

    #[test]
    fn swapped_records_are_out_of_order() {
        let (_, _, mut t) = sample();
        t[0].swap(1, 2);
        assert_eq!(
            err(&devices(&t), 4096),
            StreamError::OutOfOrder {
                stripe: 0,
                expected: 0,
                found: 3
            }
        );
        let (_, _, mut t) = sample();
        let n = t[1].len();
        t[1].swap(n - 2, n - 3);
        assert!(matches!(
            err(&devices(&t), 4096),
            StreamError::OutOfOrder { stripe: 1, .. }
        ));
    }

    #[test]
    fn duplicated_record_is_duplicate() {
        let (_, _, mut t) = sample();
        let copy = t[2][1].clone();
        t[2].insert(2, copy);
        assert_eq!(
            err(&devices(&t), 4096),
            StreamError::Duplicate { stripe: 2, sequence: 2 }
        );
    }

    #[test]
    fn truncation_is_detected() {
        let (_, _, mut t) = sample();
        t[1].pop();
        let d = devices(&t);
        assert_eq!(
            err(&d, 4096),
            StreamError::Truncated {
                stripe: 1,
                bytes: d[1].len() as u64
            }
        );
        let (_, _, t) = sample();
        let mut d = devices(&t);
        d[0].truncate(70_000);
        assert_eq!(
            err(&d, 4096),
            StreamError::Truncated {
                stripe: 0,
                bytes: 70_000
            }
        );
        d[0].clear();
        assert_eq!(err(&d, 4096), StreamError::Truncated { stripe: 0, bytes: 0 });
    }

    #[test]
    fn trailing_garbage_is_detected() {
        let (_, _, t) = sample();
        let mut d = devices(&t);
        d[2].extend_from_slice(&[0u8; 4096]);
        assert_eq!(err(&d, 4096), StreamError::TrailingGarbage { stripe: 2 });
    }

    #[test]
    fn swapped_devices_are_wrong_stripe() {
        let (_, _, t) = sample();
        let mut d = devices(&t);
        d.swap(0, 1);
        assert_eq!(err(&d, 4096), StreamError::WrongStripe { expected: 0, found: 1 });
        let mut d = devices(&t);
        d[2] = d[1].clone(); // the same device named twice
        assert_eq!(err(&d, 4096), StreamError::WrongStripe { expected: 2, found: 1 });
    }

    #[test]
    fn record_of_another_stripe_is_wrong_stripe() {
        let (_, _, mut t) = sample();
        t[0][1] = t[1][1].clone();
        assert_eq!(
            err(&devices(&t), 4096),
            StreamError::WrongStripe { expected: 0, found: 1 }
        );
    }

    #[test]
    fn missing_or_extra_device_is_stripe_count_mismatch() {
        let (_, _, t) = sample();
        let d = devices(&t);
        assert_eq!(
            err(&d[..2], 4096),
            StreamError::StripeCountMismatch { backup: 3, restore: 2 }
        );
        let mut more = d.clone();
        more.push(d[0].clone());
        assert_eq!(
            err(&more, 4096),
            StreamError::StripeCountMismatch { backup: 3, restore: 4 }
        );
    }

    #[test]
    fn blocksize_mismatch() {
        let (_, _, t) = sample();
        assert_eq!(
            err(&devices(&t), 512),
            StreamError::BlocksizeMismatch {
                backup: 4096,
                restore: 512
            }
        );
    }

    #[test]
    fn stripe_of_another_backup_is_detected() {
        let (mut p, db, t) = sample();
        p.backup_id = 99;
        let other = encode(&p, &db);
        let mut d = devices(&t);
        d[1] = devices(&other)[1].clone();
        let want = StreamError::DifferentBackupSet {
            stripe: 1,
            expected: ID,
            found: 99,
        };
        // Caught by the verifier when decoders are not told the id …
        assert_eq!(err(&d, 4096), want);
        // … and by the decoder itself when they are.
        assert_eq!(restore_with(&d, 4096, true, &mut || 600).unwrap_err(), want);
        // A single record of the other backup spliced into a stripe.
        let mut t2 = t.clone();
        t2[2][1] = other[2][1].clone();
        assert_eq!(
            err(&devices(&t2), 4096),
            StreamError::DifferentBackupSet {
                stripe: 2,
                expected: ID,
                found: 99
            }
        );
    }

    #[test]
    fn verifier_requires_every_stripe_once() {
        let (p, db, t) = sample();
        let d = devices(&t);
        let summary = |i: usize| {
            let mut dec = StripeDecoder::new(DecoderExpectations {
                stripe_index: i as u32,
                stripes: 3,
                blocksize: 4096,
                backup_id: Some(ID),
            });
            dec.feed(&d[i], &mut |_, _| Ok(())).unwrap();
            dec.finish().unwrap()
        };
        let mut v = RestoreVerifier::new();
        v.add_stripe(&summary(0)).unwrap();
        v.add_stripe(&summary(2)).unwrap();
        assert_eq!(
            v.add_stripe(&summary(0)),
            Err(StreamError::Duplicate { stripe: 0, sequence: 0 })
        );
        assert_eq!(v.clone().finish(), Err(StreamError::StripeMissing { stripe: 1 }));
        v.add_stripe(&summary(1)).unwrap();
        let h = v.finish().unwrap();
        assert_eq!(h.database_size, db.len() as u64);
        assert_eq!(h.params().database, p.database);
        assert_eq!(
            RestoreVerifier::new().finish(),
            Err(StreamError::StripeMissing { stripe: 0 })
        );

        let mut forged = summary(1);
        forged.header.database = "Other".into();
        let mut v = RestoreVerifier::new();
        v.add_stripe(&summary(0)).unwrap();
        assert_eq!(
            v.add_stripe(&forged),
            Err(StreamError::HeadersDisagree {
                stripe: 1,
                field: "database name"
            })
        );
        let mut short = summary(1);
        short.records -= 1;
        assert_eq!(
            v.add_stripe(&short),
            Err(StreamError::Missing {
                stripe: 1,
                first: 7,
                count: 1
            })
        );
    }

    #[test]
    fn errors_are_sticky_and_io_is_reported() {
        let (_, _, t) = sample();
        let d = devices(&t);
        let mut dec = StripeDecoder::new(DecoderExpectations {
            stripe_index: 0,
            stripes: 3,
            blocksize: 4096,
            backup_id: None,
        });
        let e = dec
            .feed(&d[0], &mut |_, _| Err(std::io::Error::other("disk full")))
            .unwrap_err();
        assert_eq!(e, StreamError::Io("disk full".into()));
        assert_eq!(dec.feed(&[], &mut |_, _| Ok(())), Err(e.clone()));
        assert_eq!(dec.finish(), Err(e));
    }

    #[test]
    fn encoder_errors_do_not_advance() {
        let p = params(1, 512, 65536, 1000);
        let mut enc = StripeEncoder::new(&p, 0).unwrap();
        let mut buf = vec![0u8; 65536];
        let mut ok = |_: u64, b: &mut [u8]| {
            b.fill(1);
            Ok(())
        };
        assert_eq!(enc.next_transfer(&mut ok, &mut buf), Ok(Some(512)));
        let mut fail = |_: u64, _: &mut [u8]| Err(std::io::Error::other("gone"));
        assert_eq!(
            enc.next_transfer(&mut fail, &mut buf),
            Err(StreamError::Io("gone".into()))
        );
        let mut small = [0u8; 100];
        assert!(matches!(
            enc.next_transfer(&mut ok, &mut small),
            Err(StreamError::BadParams(_))
        ));
        assert_eq!(enc.next_transfer(&mut ok, &mut buf), Ok(Some(1536)));
        assert_eq!(enc.next_transfer(&mut ok, &mut buf), Ok(Some(512)));
        assert_eq!(enc.next_transfer(&mut ok, &mut buf), Ok(None));
        assert_eq!(enc.media_header().stripe_index, 0);
    }

    #[test]
    fn header_round_trips_and_log_kind() {
        let mut p = params(2, 1024, 131072, 5);
        p.kind = StreamKind::Log;
        p.database = "日本語".repeat(14);
        let t = encode(&p, &db_bytes(5, 1));
        let mut dec = StripeDecoder::new(DecoderExpectations {
            stripe_index: 1,
            stripes: 2,
            blocksize: 1024,
            backup_id: None,
        });
        dec.feed(&devices(&t)[1], &mut |_, _| Ok(())).unwrap();
        assert!(dec.is_complete());
        let h = dec.header().unwrap().clone();
        assert_eq!(h.params(), p);
        let s = dec.finish().unwrap();
        assert_eq!((s.records, s.payload_bytes, s.stripe_bytes), (0, 0, 2048));
    }

    #[test]
    fn messages_name_stripe_and_numbers_and_kinds_are_unique() {
        let all = [
            StreamError::NotABackup { stripe: 3 },
            StreamError::UnsupportedVersion {
                stripe: 3,
                found: 9,
                supported: 1,
            },
            StreamError::HeaderCorrupt {
                stripe: 3,
                reason: "checksum mismatch",
            },
            StreamError::BlocksizeMismatch {
                backup: 4096,
                restore: 512,
            },
            StreamError::StripeCountMismatch { backup: 3, restore: 2 },
            StreamError::WrongStripe { expected: 3, found: 1 },
            StreamError::DifferentBackupSet {
                stripe: 3,
                expected: 1,
                found: 2,
            },
            StreamError::RecordCorrupt {
                stripe: 3,
                sequence: 17,
                part: CorruptPart::Payload,
            },
            StreamError::OutOfOrder {
                stripe: 3,
                expected: 17,
                found: 20,
            },
            StreamError::Duplicate {
                stripe: 3,
                sequence: 17,
            },
            StreamError::Missing {
                stripe: 3,
                first: 17,
                count: 2,
            },
            StreamError::Truncated { stripe: 3, bytes: 17 },
            StreamError::TrailingGarbage { stripe: 3 },
            StreamError::TrailerCorrupt {
                stripe: 3,
                reason: "checksum mismatch",
            },
            StreamError::HeadersDisagree {
                stripe: 3,
                field: "database name",
            },
            StreamError::StripeMissing { stripe: 3 },
            StreamError::BadParams("x".into()),
            StreamError::Io("x".into()),
        ];
        let kinds: std::collections::HashSet<_> = all.iter().map(error_kind).collect();
        assert_eq!(kinds.len(), all.len());
        for e in &all[..16] {
            let m = e.to_string();
            assert!(m.contains('3') || m.contains("4096"), "{m}");
        }
        assert_eq!(all[7].to_string(), "stripe 3: block 17 is corrupt (checksum mismatch)");
    }
}
