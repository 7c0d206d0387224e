//! The shared-memory wire: named segments, their layout, rings, wake-ups and liveness.
//!
//! This is one of the two places with `unsafe` (the other is `ffi`). Everything read from a
//! segment is untrusted; the types here only hand out atomics, and raw buffer slices after a
//! bounds check.

pub mod layout;
pub mod platform;
pub mod ring;

use crate::vdi::{VdError, VdResult};
use layout::{BufferHeader, SetHeader, BUFFER_AREA_OFFSET, HEADER_MAGIC, HEADER_SEGMENT_SIZE, LAYOUT_VERSION};
use shared_memory::{Shmem, ShmemConf, ShmemError};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Prefix of every segment vdisim creates (so `vdisim cleanup` can find them).
pub const SEGMENT_PREFIX: &str = "vdisim-";
/// The instance name used when CreateEx gets none (SPEC §1.2: NULL = default instance).
pub const DEFAULT_INSTANCE: &str = "MSSQLSERVER";
/// Environment variable that opts segments in to group read/write (SQL Server on Linux runs
/// as `mssql`, SPEC §4 on umask and groups).
pub const GROUP_ACCESS_ENV: &str = "VDISIM_SHM_GROUP_ACCESS";

/// Validates a set or device name: 1..=128 bytes, no `/` or `\` (CreateFileMapping rules,
/// §1.2, plus POSIX shm names), no control characters. VD_E_INVALID otherwise.
pub fn validate_name(name: &str) -> VdResult<()> {
    let ok = !name.is_empty()
        && name.len() <= layout::MAX_NAME_BYTES
        && !name.chars().any(|c| c == '/' || c == '\\' || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(VdError::Invalid)
    }
}

/// Normalises an instance name (§1.2): `None` or empty is the default instance; a
/// `machine\` prefix is rejected; otherwise 1..=16 letters, digits, `_`, `$` or `#`, as SQL
/// Server instance names are. VD_E_INSTANCE_NAME otherwise.
pub fn normalize_instance(instance: Option<&str>) -> VdResult<String> {
    let Some(name) = instance.filter(|s| !s.is_empty()) else {
        return Ok(DEFAULT_INSTANCE.to_string());
    };
    let ok = name.len() <= 16
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '#'));
    if ok {
        Ok(name.to_ascii_uppercase())
    } else {
        Err(VdError::InstanceName)
    }
}

/// The OS name of a set's header segment.
pub fn header_segment_name(instance: &str, set: &str) -> String {
    format!("/{SEGMENT_PREFIX}{instance}-{set}")
}

/// The OS name of a set's buffer-area segment of a given generation.
pub fn buffer_segment_name(instance: &str, set: &str, generation: u64) -> String {
    format!("/{SEGMENT_PREFIX}{instance}-{set}.buf{generation}")
}

/// A mapped named segment.
pub struct Segment {
    shmem: Shmem,
    name: String,
}

// SAFETY: a Segment is a mapping of plain memory plus its name. Shmem is !Send only because
// it holds a raw pointer; the mapping may be used from any thread, and all shared access goes
// through atomics or bounds-checked raw slices handed out by this module.
unsafe impl Send for Segment {}
// SAFETY: as above; `&Segment` only exposes the base pointer and length.
unsafe impl Sync for Segment {}

/// Why a segment could not be created or opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentError {
    Exists,
    NotFound,
    PermissionDenied,
    TooSmall,
    Os(String),
}

impl From<SegmentError> for VdError {
    fn from(e: SegmentError) -> VdError {
        match e {
            SegmentError::Exists => VdError::Protocol,
            SegmentError::NotFound => VdError::Invalid,
            SegmentError::PermissionDenied => VdError::Security,
            SegmentError::TooSmall => VdError::Invalid,
            SegmentError::Os(_) => VdError::Memory,
        }
    }
}

fn map_error(e: ShmemError) -> SegmentError {
    match e {
        ShmemError::MappingIdExists | ShmemError::LinkExists => SegmentError::Exists,
        ShmemError::MapOpenFailed(2) => SegmentError::NotFound,
        ShmemError::MapOpenFailed(13) | ShmemError::MapCreateFailed(13) => SegmentError::PermissionDenied,
        other => SegmentError::Os(other.to_string()),
    }
}

impl Segment {
    /// Creates a segment exclusively: mode 0600 unless `group_access`.
    pub fn create(name: &str, size: usize, group_access: bool) -> Result<Segment, SegmentError> {
        let mut shmem = ShmemConf::new().os_id(name).size(size).create().map_err(map_error)?;
        // We unlink explicitly: ownership follows VDI's rules, not drop order.
        shmem.set_owner(false);
        let seg = Segment {
            shmem,
            name: name.to_string(),
        };
        if group_access {
            seg.allow_group()?;
        }
        Ok(seg)
    }

    /// Opens an existing segment that must hold at least `min_size` bytes.
    pub fn open(name: &str, min_size: usize) -> Result<Segment, SegmentError> {
        let mut shmem = ShmemConf::new().os_id(name).open().map_err(map_error)?;
        shmem.set_owner(false);
        if shmem.len() < min_size {
            return Err(SegmentError::TooSmall);
        }
        Ok(Segment {
            shmem,
            name: name.to_string(),
        })
    }

    #[cfg(target_os = "linux")]
    fn allow_group(&self) -> Result<(), SegmentError> {
        use std::os::unix::fs::PermissionsExt;
        let path = format!("/dev/shm{}", self.name);
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
            .map_err(|e| SegmentError::Os(e.to_string()))
    }

    #[cfg(not(target_os = "linux"))]
    fn allow_group(&self) -> Result<(), SegmentError> {
        Ok(())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn len(&self) -> usize {
        self.shmem.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.shmem.as_ptr()
    }
}

/// Removes a segment's name (existing mappings stay valid). Returns whether it existed.
pub fn unlink(name: &str) -> bool {
    #[cfg(unix)]
    {
        let Ok(c) = std::ffi::CString::new(name) else {
            return false;
        };
        // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
        unsafe { libc::shm_unlink(c.as_ptr()) == 0 }
    }
    #[cfg(not(unix))]
    {
        // Windows named mappings disappear with their last handle.
        let _ = name;
        false
    }
}

/// A mapped header segment, viewed as a [`SetHeader`].
pub struct HeaderMapping {
    seg: Segment,
}

impl HeaderMapping {
    /// Wraps a segment known to be at least [`HEADER_SEGMENT_SIZE`] bytes.
    fn new(seg: Segment) -> Result<HeaderMapping, SegmentError> {
        if seg.len() < HEADER_SEGMENT_SIZE {
            return Err(SegmentError::TooSmall);
        }
        Ok(HeaderMapping { seg })
    }

    pub fn header(&self) -> &SetHeader {
        // SAFETY: the mapping is at least size_of::<SetHeader>() bytes (checked in `new`),
        // page-aligned (mmap), so aligned for SetHeader (align 64), and stays mapped while
        // `self` lives. Every field of SetHeader is an atomic integer, valid for any bytes,
        // and the peer only ever writes it through atomics or plain stores of whole words.
        unsafe { &*(self.seg.as_ptr() as *const SetHeader) }
    }

    pub fn segment(&self) -> &Segment {
        &self.seg
    }
}

/// A mapped buffer-area segment.
pub struct BufferMapping {
    seg: Segment,
    area_size: u64,
}

impl BufferMapping {
    fn header(&self) -> &BufferHeader {
        // SAFETY: the segment is at least BUFFER_AREA_OFFSET bytes (checked on creation and
        // open), page-aligned and mapped while `self` lives; BufferHeader is all atomics.
        unsafe { &*(self.seg.as_ptr() as *const BufferHeader) }
    }

    /// Creates the area (server, EndConfiguration).
    pub fn create(name: &str, area_size: u64, generation: u64, group: bool) -> Result<BufferMapping, SegmentError> {
        let total = usize::try_from(area_size)
            .ok()
            .and_then(|a| a.checked_add(BUFFER_AREA_OFFSET))
            .ok_or(SegmentError::TooSmall)?;
        let seg = Segment::create(name, total, group)?;
        let m = BufferMapping { seg, area_size };
        let h = m.header();
        h.magic.store(layout::BUFFER_MAGIC, Ordering::Relaxed);
        h.area_size.store(area_size, Ordering::Relaxed);
        h.generation.store(generation, Ordering::Relaxed);
        // SYNC POINT: the fields above happen-before an opener's Acquire load of `version`.
        h.version.store(LAYOUT_VERSION, Ordering::Release);
        Ok(m)
    }

    /// Opens the area (client, GetConfiguration) and checks it against the header's claims.
    pub fn open(name: &str, expected_size: u64, generation: u64) -> VdResult<BufferMapping> {
        let seg = Segment::open(name, BUFFER_AREA_OFFSET).map_err(VdError::from)?;
        let mut m = BufferMapping { seg, area_size: 0 };
        let h = m.header();
        let ok = h.version.load(Ordering::Acquire) == LAYOUT_VERSION
            && h.magic.load(Ordering::Relaxed) == layout::BUFFER_MAGIC
            && h.generation.load(Ordering::Relaxed) == generation
            && h.area_size.load(Ordering::Relaxed) == expected_size
            && (m.seg.len() - BUFFER_AREA_OFFSET) as u64 >= expected_size;
        if !ok {
            return Err(VdError::Unexpected);
        }
        m.area_size = expected_size;
        Ok(m)
    }

    pub fn area_size(&self) -> u64 {
        self.area_size
    }

    pub fn name(&self) -> &str {
        self.seg.name()
    }

    /// Base address of the area in this process.
    pub fn area_ptr(&self) -> *mut u8 {
        // SAFETY: BUFFER_AREA_OFFSET is within the segment (its length was checked).
        unsafe { self.seg.as_ptr().add(BUFFER_AREA_OFFSET) }
    }

    /// Checks that `[offset, offset + len)` lies inside the area and returns its address.
    pub fn range(&self, offset: u64, len: u64) -> Option<*mut u8> {
        let end = offset.checked_add(len)?;
        if end > self.area_size {
            return None;
        }
        // SAFETY: offset + len <= area_size, so the result stays inside the mapping.
        Some(unsafe { self.area_ptr().add(offset as usize) })
    }

    /// The inverse of [`BufferMapping::range`]: an address's offset, if inside the area.
    pub fn offset_of(&self, ptr: *const u8) -> Option<u64> {
        let base = self.area_ptr() as usize;
        let p = ptr as usize;
        (p >= base && ((p - base) as u64) < self.area_size).then(|| (p - base) as u64)
    }
}

/// Outcome of probing an existing header segment of the same name.
enum Probe {
    Live,
    Reclaimed,
}

/// Creates the header segment for a set (client CreateEx), reclaiming the remains of a dead
/// creator (liveness token) so that the next run with the same name works. Two racing
/// creators get exactly one success: creation is exclusive, and only the winner of the
/// `reclaimed` CAS unlinks a stale segment.
pub fn create_header(instance: &str, set: &str, group: bool) -> VdResult<HeaderMapping> {
    let name = header_segment_name(instance, set);
    for _ in 0..4 {
        match Segment::create(&name, HEADER_SEGMENT_SIZE, group) {
            Ok(seg) => {
                let m = HeaderMapping::new(seg).map_err(VdError::from)?;
                let h = m.header();
                let me = platform::LivenessToken::current();
                h.client.pid.store(me.pid, Ordering::Relaxed);
                h.client.start.store(me.start, Ordering::Relaxed);
                h.magic.store(HEADER_MAGIC, Ordering::Relaxed);
                h.header_size.store(HEADER_SEGMENT_SIZE as u64, Ordering::Relaxed);
                return Ok(m);
            }
            Err(SegmentError::Exists) => match probe_existing(&name, instance, set)? {
                Probe::Live => return Err(VdError::Protocol),
                Probe::Reclaimed => continue,
            },
            Err(e) => return Err(e.into()),
        }
    }
    Err(VdError::Protocol)
}

fn probe_existing(name: &str, instance: &str, set: &str) -> VdResult<Probe> {
    let seg = match Segment::open(name, 0) {
        Ok(s) => s,
        Err(SegmentError::NotFound) => return Ok(Probe::Reclaimed),
        Err(e) => return Err(e.into()),
    };
    let Ok(m) = HeaderMapping::new(seg) else {
        // Not one of ours (wrong size): refuse rather than delete someone else's object.
        return Ok(Probe::Live);
    };
    let h = m.header();
    // A creator that just created the segment fills its token immediately; give it a moment.
    let deadline = Instant::now() + Duration::from_millis(500);
    let token = loop {
        let t = platform::LivenessToken {
            pid: h.client.pid.load(Ordering::Acquire),
            start: h.client.start.load(Ordering::Acquire),
        };
        if t.pid != 0 || Instant::now() >= deadline {
            break t;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    if token.state() == platform::PeerState::Alive {
        return Ok(Probe::Live);
    }
    if h.reclaimed
        .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
    {
        let generation = h.buffer_generation.load(Ordering::Acquire);
        if generation != 0 {
            unlink(&buffer_segment_name(instance, set, generation));
        }
        unlink(name);
    }
    Ok(Probe::Reclaimed)
}

/// Opens a set's header (server Open, OpenInSecondary), waiting up to `init_wait` for a
/// creator that is still initialising (version 0). VD_E_INVALID for an unknown set or a
/// segment that is not a vdisim header of this build; VD_E_SECURITY without permission.
pub fn open_header(instance: &str, set: &str, init_wait: Duration) -> VdResult<HeaderMapping> {
    let name = header_segment_name(instance, set);
    let seg = Segment::open(&name, HEADER_SEGMENT_SIZE).map_err(VdError::from)?;
    let m = HeaderMapping::new(seg).map_err(VdError::from)?;
    let h = m.header();
    let deadline = Instant::now() + init_wait;
    loop {
        let version = h.version.load(Ordering::Acquire);
        if version == LAYOUT_VERSION {
            break;
        }
        if version != 0 || Instant::now() >= deadline {
            return Err(VdError::Invalid);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    if h.magic.load(Ordering::Relaxed) != HEADER_MAGIC
        || h.header_size.load(Ordering::Relaxed) != HEADER_SEGMENT_SIZE as u64
        || h.reclaimed.load(Ordering::Relaxed) != 0
    {
        return Err(VdError::Invalid);
    }
    Ok(m)
}

/// Whether group access was requested through the environment.
pub fn group_access_from_env() -> bool {
    std::env::var(GROUP_ACCESS_ENV).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// One vdisim segment found in the system namespace.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SegmentInfo {
    pub name: String,
    pub size: u64,
    pub stale: bool,
    pub reason: String,
}

/// Lists vdisim segments and whether each is stale: a header whose creator and server are
/// both gone, or a buffer area whose header is gone. Linux only (/dev/shm).
pub fn list_segments() -> Vec<SegmentInfo> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/dev/shm") else {
        return out;
    };
    let mut names: Vec<(String, u64)> = dir
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().to_string();
            let size = e.metadata().map(|m| m.len()).unwrap_or(0);
            n.starts_with(SEGMENT_PREFIX).then_some((n, size))
        })
        .collect();
    names.sort();
    let headers: Vec<String> = names
        .iter()
        .filter(|(n, _)| !n.contains(".buf"))
        .map(|(n, _)| n.clone())
        .collect();
    for (n, size) in &names {
        let os_name = format!("/{n}");
        let (stale, reason) = if let Some(idx) = n.rfind(".buf") {
            let parent = &n[..idx];
            if headers.iter().any(|h| h == parent) {
                (false, "buffer area of an existing set".to_string())
            } else {
                (true, "buffer area whose set header is gone".to_string())
            }
        } else {
            match Segment::open(&os_name, 0).map(HeaderMapping::new) {
                Ok(Ok(m)) => {
                    let h = m.header();
                    let client = platform::LivenessToken {
                        pid: h.client.pid.load(Ordering::Acquire),
                        start: h.client.start.load(Ordering::Acquire),
                    };
                    let server = platform::LivenessToken {
                        pid: h.server.pid.load(Ordering::Acquire),
                        start: h.server.start.load(Ordering::Acquire),
                    };
                    let alive = |t: platform::LivenessToken| t.state() == platform::PeerState::Alive;
                    if alive(client) || alive(server) {
                        (
                            false,
                            format!("in use (client pid {}, server pid {})", client.pid, server.pid),
                        )
                    } else {
                        (true, format!("creator pid {} is gone", client.pid))
                    }
                }
                Ok(Err(_)) => (false, "too small to be a vdisim set header; left alone".to_string()),
                Err(SegmentError::PermissionDenied) => (false, "owned by another user".to_string()),
                Err(e) => (false, format!("cannot open: {e:?}")),
            }
        };
        out.push(SegmentInfo {
            name: n.clone(),
            size: *size,
            stale,
            reason,
        });
    }
    out
}

/// Removes every stale vdisim segment; returns what was removed.
pub fn remove_stale_segments() -> Vec<SegmentInfo> {
    list_segments()
        .into_iter()
        .filter(|s| s.stale && unlink(&format!("/{}", s.name)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("a", true)]
    #[case("{4C4A0E4A-1A07-4C5F-9D4E-8D3C0E6B2F11}", true)]
    #[case("backup set 1", true)]
    #[case("", false)]
    #[case("a/b", false)]
    #[case("a\\b", false)]
    #[case("nul\0x", false)]
    #[case("tab\tx", false)]
    fn set_names(#[case] name: &str, #[case] ok: bool) {
        assert_eq!(validate_name(name).is_ok(), ok, "{name:?}");
        assert_eq!(validate_name(&"x".repeat(128)), Ok(()));
        assert_eq!(validate_name(&"x".repeat(129)), Err(VdError::Invalid));
    }

    #[rstest]
    #[case(None, Ok("MSSQLSERVER"))]
    #[case(Some(""), Ok("MSSQLSERVER"))]
    #[case(Some("sql2019"), Ok("SQL2019"))]
    #[case(Some("machine\\sql2019"), Err(VdError::InstanceName))]
    #[case(Some("has space"), Err(VdError::InstanceName))]
    #[case(Some("a/b"), Err(VdError::InstanceName))]
    #[case(Some("seventeen_chars_x"), Err(VdError::InstanceName))]
    fn instance_names(#[case] input: Option<&str>, #[case] expected: Result<&str, VdError>) {
        assert_eq!(normalize_instance(input).as_deref().map_err(|e| *e), expected);
    }
}
