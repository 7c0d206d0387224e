//! The shared-memory wire: named segments, their layout, rings, wake-ups and liveness.
//!
//! This is one of the two places with `unsafe` (the other is `ffi`). Everything read from a
//! segment is untrusted; the types here only hand out atomics, and raw buffer slices after a
//! bounds check.

pub mod layout;
pub mod platform;
pub mod ring;

use crate::protocol::PeerMisbehaved;
use crate::vdi::{VdError, VdResult};
use layout::{BufferHeader, SetHeader, BUFFER_AREA_OFFSET, HEADER_MAGIC, HEADER_SEGMENT_SIZE, LAYOUT_VERSION};
#[cfg(unix)]
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
    #[cfg(unix)]
    shmem: Shmem,
    /// Windows: a page-file-backed named mapping of our own (platform.rs says why not the
    /// `shared_memory` crate there).
    #[cfg(windows)]
    shmem: platform::Mapping,
    name: String,
    /// Unix: a second view of the segment placed so that the buffer area starts on a
    /// 2 MiB boundary (see [`Segment::map_area`]); `as_ptr` then returns it.
    #[cfg(unix)]
    aligned: Option<AlignedView>,
}

/// The largest data-zone alignment a client may ask for (SPEC §1.4: "a power of 2 in
/// [blockSize, 64 KB]"). mmap only promises page alignment, so buffer areas are placed on
/// such a boundary explicitly, or a 64 KiB-aligned request would hold in no process.
pub const MAX_ALIGNMENT: usize = 65536;

/// Where a Unix buffer-area view starts: a 2 MiB (huge page) boundary, which is also a
/// [`MAX_ALIGNMENT`] boundary, as is the area [`layout::BUFFER_AREA_OFFSET`] bytes in.
#[cfg(unix)]
const VIEW_ALIGNMENT: usize = 2 << 20;
#[cfg(unix)]
const _: () = assert!(VIEW_ALIGNMENT % MAX_ALIGNMENT == 0 && BUFFER_AREA_OFFSET % MAX_ALIGNMENT == 0);

/// A shared view of a named segment at a chosen alignment (unix).
#[cfg(unix)]
struct AlignedView {
    ptr: *mut u8,
    len: usize,
}

#[cfg(unix)]
impl AlignedView {
    /// Maps all `len` bytes of segment `name` at a [`VIEW_ALIGNMENT`] boundary: reserve
    /// `len + VIEW_ALIGNMENT` bytes of address space, map the segment over the right part of
    /// the reservation, release the rest. With `reserve`, the segment's memory is allocated
    /// first (Linux), so a full /dev/shm is an error here rather than a SIGBUS on first touch.
    fn map(name: &str, len: usize, reserve: bool) -> Result<AlignedView, SegmentError> {
        let os = |what: &str| SegmentError::Os(format!("{what}: {}", std::io::Error::last_os_error()));
        let c = std::ffi::CString::new(name).map_err(|_| SegmentError::Os("segment name".into()))?;
        // SAFETY: `c` is a valid NUL-terminated string; shm_open has no other precondition.
        let fd = unsafe { libc::shm_open(c.as_ptr(), libc::O_RDWR, 0) };
        if fd < 0 {
            return Err(os("shm_open"));
        }
        let span = len + VIEW_ALIGNMENT;
        // SAFETY: an anonymous PROT_NONE reservation at an address of the kernel's choosing;
        // nothing is read or written through it.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                span,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            // SAFETY: `fd` is the descriptor opened above, closed once.
            unsafe { libc::close(fd) };
            return Err(os("mmap reserve"));
        }
        let start = base as usize;
        // `at - start < VIEW_ALIGNMENT` keeps the view inside the reservation.
        let at = start.next_multiple_of(VIEW_ALIGNMENT);
        // SAFETY: `[at, at + len)` lies inside the reservation this function owns, so
        // MAP_FIXED replaces only our own PROT_NONE pages; `fd` is a valid descriptor of a
        // segment at least `len` bytes long (the caller's mapping of it has that length).
        let p = unsafe {
            libc::mmap(
                at as *mut libc::c_void,
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_FIXED,
                fd,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            let e = os("mmap segment");
            // SAFETY: the whole reservation is ours and nothing else was mapped into it;
            // `fd` is the descriptor opened above, closed once.
            unsafe {
                libc::munmap(base, span);
                libc::close(fd);
            }
            return Err(e);
        }
        // Transparent huge pages where the host allows them for shared memory
        // (/sys/kernel/mm/transparent_hugepage/shmem_enabled = advise): a 64-device stream's
        // 64 MiB of buffers then needs 32 TLB entries instead of 16384 (issue 7). A refusal
        // changes nothing, so the result is ignored.
        #[cfg(target_os = "linux")]
        // SAFETY: `[at, at + len)` is the view just mapped; madvise only sets a paging hint.
        unsafe {
            libc::madvise(at as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
        }
        let populated = if reserve { populate(fd, at, len) } else { Ok(()) };
        // SAFETY: `fd` is the descriptor opened above, closed once; the mapping keeps its own
        // reference to the segment.
        unsafe { libc::close(fd) };
        if let Err(e) = populated {
            // SAFETY: the view and the reservation's remains are ours, unmapped once.
            unsafe { libc::munmap(base, span) };
            return Err(e);
        }
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
            .unwrap_or(4096)
            .max(1);
        let tail = (at + len).next_multiple_of(page);
        // SAFETY: `[start, at)` and `[tail, start + span)` are parts of our reservation that
        // the segment view does not cover; both start on page boundaries.
        unsafe {
            if at > start {
                libc::munmap(base, at - start);
            }
            if tail < start + span {
                libc::munmap(tail as *mut libc::c_void, start + span - tail);
            }
        }
        Ok(AlignedView {
            ptr: at as *mut u8,
            len,
        })
    }
}

/// Allocates the memory behind the view `[at, at + len)` of segment `fd` now, so that a full
/// /dev/shm is an error (VD_E_MEMORY) instead of a SIGBUS at some later first touch. Through
/// the view (MADV_POPULATE_WRITE, Linux 5.14), so the huge-page hint applies; on older kernels
/// through the file (posix_fallocate, small pages).
#[cfg(target_os = "linux")]
fn populate(fd: libc::c_int, at: usize, len: usize) -> Result<(), SegmentError> {
    let failed = |e: std::io::Error| SegmentError::Os(format!("allocating the segment: {e}"));
    // SAFETY: `[at, at + len)` is a shared read-write view of a segment at least `len` bytes
    // long; populating faults its pages in without changing their contents.
    let r = unsafe { libc::madvise(at as *mut libc::c_void, len, libc::MADV_POPULATE_WRITE) };
    if r == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() != Some(libc::EINVAL) {
        return Err(failed(err));
    }
    let len = libc::off_t::try_from(len).unwrap_or(libc::off_t::MAX);
    // SAFETY: `fd` is an open descriptor of the segment; posix_fallocate only allocates its
    // blocks in [0, len) and returns an error number (errno is left alone).
    match unsafe { libc::posix_fallocate(fd, 0, len) } {
        0 => Ok(()),
        e => Err(failed(std::io::Error::from_raw_os_error(e))),
    }
}

#[cfg(all(unix, not(target_os = "linux")))]
fn populate(_fd: libc::c_int, _at: usize, _len: usize) -> Result<(), SegmentError> {
    Ok(())
}

#[cfg(unix)]
impl Drop for AlignedView {
    fn drop(&mut self) {
        // SAFETY: `ptr..ptr + len` is the view mapped in `map`, unmapped exactly once here;
        // its Segment (the only owner) is being dropped, so no slice into it outlives this.
        unsafe { libc::munmap(self.ptr as *mut libc::c_void, self.len) };
    }
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

#[cfg(windows)]
fn map_windows_error(e: platform::MappingError) -> SegmentError {
    match e {
        platform::MappingError::Exists => SegmentError::Exists,
        platform::MappingError::NotFound => SegmentError::NotFound,
        platform::MappingError::PermissionDenied => SegmentError::PermissionDenied,
        platform::MappingError::Os(code) => SegmentError::Os(format!("Win32 error {code}")),
    }
}

#[cfg(unix)]
fn map_error(e: ShmemError) -> SegmentError {
    match e {
        ShmemError::MappingIdExists | ShmemError::LinkExists => SegmentError::Exists,
        ShmemError::MapOpenFailed(2) => SegmentError::NotFound,
        // mmap of a zero-length object: its creator is between shm_open and ftruncate (or died
        // there). Not a memory problem: the set is not ready (reliability fix F3).
        ShmemError::MapOpenFailed(22) => SegmentError::TooSmall,
        ShmemError::MapOpenFailed(13) | ShmemError::MapCreateFailed(13) => SegmentError::PermissionDenied,
        other => SegmentError::Os(other.to_string()),
    }
}

impl Segment {
    /// Creates a segment exclusively: mode 0600 unless `group_access`.
    pub fn create(name: &str, size: usize, group_access: bool) -> Result<Segment, SegmentError> {
        #[cfg(windows)]
        let shmem = platform::Mapping::create(name, size).map_err(map_windows_error)?;
        #[cfg(unix)]
        let mut shmem = ShmemConf::new().os_id(name).size(size).create().map_err(map_error)?;
        // We unlink explicitly: ownership follows VDI's rules, not drop order.
        #[cfg(unix)]
        shmem.set_owner(false);
        let seg = Segment {
            shmem,
            name: name.to_string(),
            #[cfg(unix)]
            aligned: None,
        };
        if group_access {
            seg.allow_group()?;
        }
        Ok(seg)
    }

    /// Opens an existing segment that must hold at least `min_size` bytes.
    pub fn open(name: &str, min_size: usize) -> Result<Segment, SegmentError> {
        #[cfg(windows)]
        let shmem = platform::Mapping::open(name).map_err(map_windows_error)?;
        #[cfg(unix)]
        let mut shmem = ShmemConf::new().os_id(name).open().map_err(map_error)?;
        #[cfg(unix)]
        shmem.set_owner(false);
        if shmem.len() < min_size {
            return Err(SegmentError::TooSmall);
        }
        Ok(Segment {
            shmem,
            name: name.to_string(),
            #[cfg(unix)]
            aligned: None,
        })
    }

    /// Re-maps the segment at a 2 MiB boundary so that the buffer area
    /// ([`layout::BUFFER_AREA_OFFSET`] in) is [`MAX_ALIGNMENT`]-aligned in every process (SPEC
    /// §2.4 alignment) and may use huge pages; `reserve` allocates its memory first (the
    /// creator). Unix only: a Windows view starts on a 64 KiB boundary, and the area 64 KiB in.
    pub fn map_area(&mut self, reserve: bool) -> Result<(), SegmentError> {
        #[cfg(unix)]
        {
            self.aligned = Some(AlignedView::map(&self.name, self.shmem.len(), reserve)?);
        }
        #[cfg(not(unix))]
        let _ = reserve;
        Ok(())
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
        #[cfg(unix)]
        if let Some(v) = &self.aligned {
            return v.ptr;
        }
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
        // Windows named mappings disappear with their last handle (process exit included):
        // there is no name to remove, and a name stays taken while any process maps it.
        // A set header is marked removed instead (a tombstone: `reclaimed` set), which every
        // opener refuses and the next CreateEx of the name steps over (windows_names).
        windows_names::tombstone(name)
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

    /// Re-checks what a peer must never change after initialisation: magic, layout version
    /// and header size; and that `phase` only moves forward from `phase_seen` (the highest
    /// value this side has seen or written) within the defined values. Run on each blocking
    /// slice; a failure names the field (reliability fix F8).
    pub fn check_shared(&self, phase_seen: &std::sync::atomic::AtomicU32) -> Result<(), PeerMisbehaved> {
        let h = self.header();
        let magic = h.magic.load(Ordering::Relaxed);
        if magic != HEADER_MAGIC {
            return Err(PeerMisbehaved::BadHeaderField {
                field: "magic",
                value: magic,
            });
        }
        let version = h.version.load(Ordering::Relaxed);
        if version != LAYOUT_VERSION {
            return Err(PeerMisbehaved::BadHeaderField {
                field: "version",
                value: version,
            });
        }
        let size = h.header_size.load(Ordering::Relaxed);
        if size != HEADER_SEGMENT_SIZE as u64 {
            return Err(PeerMisbehaved::BadHeaderField {
                field: "header_size",
                value: size,
            });
        }
        let now = h.phase.load(Ordering::Acquire);
        if now > layout::phase::SERVER_CLOSED {
            return Err(PeerMisbehaved::BadHeaderField {
                field: "phase",
                value: u64::from(now),
            });
        }
        let seen = phase_seen.fetch_max(now, Ordering::AcqRel);
        if now < seen {
            return Err(PeerMisbehaved::StateRegression { from: seen, to: now });
        }
        Ok(())
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
        let mut seg = Segment::create(name, total, group)?;
        if let Err(e) = seg.map_area(true) {
            // Nobody else knows the name yet: the segment is ours to remove.
            unlink(name);
            return Err(e);
        }
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
        let mut seg = Segment::open(name, BUFFER_AREA_OFFSET).map_err(VdError::from)?;
        seg.map_area(false).map_err(VdError::from)?;
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
    #[cfg_attr(not(windows), allow(unused_mut))]
    let mut name = header_segment_name(instance, set);
    #[cfg(windows)]
    let mut incarnation = 0;
    #[cfg(not(windows))]
    let attempts = 4;
    #[cfg(windows)]
    let attempts = windows_names::INCARNATIONS + 4;
    for _ in 0..attempts {
        match Segment::create(&name, HEADER_SEGMENT_SIZE, group) {
            Ok(seg) => {
                let m = HeaderMapping::new(seg).map_err(VdError::from)?;
                let h = m.header();
                let me = platform::LivenessToken::current();
                // SYNC POINT: the start time happens-before a prober's Acquire load of a
                // non-zero pid, so a live creator is never judged by a half-written token
                // (reliability fix F1: racing creators both succeeded).
                h.client.start.store(me.start, Ordering::Relaxed);
                h.client.pid.store(me.pid, Ordering::Release);
                h.magic.store(HEADER_MAGIC, Ordering::Relaxed);
                h.header_size.store(HEADER_SEGMENT_SIZE as u64, Ordering::Relaxed);
                #[cfg(windows)]
                if windows_names::another_live(instance, set, incarnation) {
                    // A racing creator holds another incarnation: step back (see windows_names).
                    h.reclaimed.store(1, Ordering::Release);
                    return Err(VdError::Protocol);
                }
                return Ok(m);
            }
            Err(SegmentError::Exists) => match probe_existing(&name, instance, set)? {
                Probe::Live => return Err(VdError::Protocol),
                Probe::Reclaimed => {
                    // Windows: a removed set keeps its name while any process still maps it;
                    // the next incarnation of the name is free of it.
                    #[cfg(windows)]
                    {
                        incarnation += 1;
                        if incarnation >= windows_names::INCARNATIONS {
                            return Err(VdError::Protocol);
                        }
                        name = windows_names::incarnation(instance, set, incarnation);
                    }
                    continue;
                }
            },
            Err(e) => return Err(e.into()),
        }
    }
    Err(VdError::Protocol)
}

fn probe_existing(name: &str, instance: &str, set: &str) -> VdResult<Probe> {
    let mut waited_empty = false;
    let seg = loop {
        match Segment::open(name, 0) {
            Ok(s) => break s,
            Err(SegmentError::NotFound) => return Ok(Probe::Reclaimed),
            // Zero length: the creator is between shm_open and ftruncate. Give it a moment;
            // if it stays empty its creator died there, and we size it ourselves so that the
            // normal path below (no liveness token → reclaim by CAS) applies (fix F4).
            Err(SegmentError::TooSmall) if !waited_empty => {
                waited_empty = true;
                let deadline = Instant::now() + Duration::from_millis(500);
                while Instant::now() < deadline && segment_len(name) == Some(0) {
                    std::thread::sleep(Duration::from_millis(5));
                }
                if segment_len(name) == Some(0) {
                    grow_empty_header(name);
                }
            }
            Err(e) => return Err(e.into()),
        }
    };
    let Ok(m) = HeaderMapping::new(seg) else {
        // Not one of ours (wrong size): refuse rather than delete someone else's object.
        return Ok(Probe::Live);
    };
    let h = m.header();
    // Windows: a tombstone (a closed set some process still maps) is never live.
    #[cfg(windows)]
    if h.reclaimed.load(Ordering::Acquire) != 0 {
        return Ok(Probe::Reclaimed);
    }
    // A creator that just created the segment fills its token immediately; give it a moment.
    let deadline = Instant::now() + Duration::from_millis(500);
    let token = loop {
        // SYNC POINT: pid first (Acquire), pairs with the creator's Release store (F1).
        let pid = h.client.pid.load(Ordering::Acquire);
        let t = platform::LivenessToken {
            pid,
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

/// The length of a segment, by name (`None` if it is gone or this OS has no /dev/shm).
fn segment_len(name: &str) -> Option<u64> {
    std::fs::metadata(shm_path(name)).ok().map(|m| m.len())
}

/// Where a segment's name lives in the file system (Linux).
fn shm_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new("/dev/shm").join(name.trim_start_matches('/'))
}

/// Sizes a zero-length header segment left by a creator that died before its ftruncate, so it
/// can be probed and reclaimed like any other dead set. Sizing it to the length the creator
/// would have given it is harmless should that creator still be alive after all.
fn grow_empty_header(name: &str) {
    if let Ok(f) = std::fs::OpenOptions::new().write(true).open(shm_path(name)) {
        if f.metadata().is_ok_and(|m| m.len() == 0) {
            let _ = f.set_len(HEADER_SEGMENT_SIZE as u64);
        }
    }
}

/// Opens a set's header (server Open, OpenInSecondary), waiting up to `init_wait` for a
/// creator that is still initialising (version 0). VD_E_INVALID for an unknown set or a
/// segment that is not a vdisim header of this build; VD_E_SECURITY without permission.
pub fn open_header(instance: &str, set: &str, init_wait: Duration) -> VdResult<HeaderMapping> {
    #[cfg(not(windows))]
    let m = {
        let name = header_segment_name(instance, set);
        let seg = Segment::open(&name, HEADER_SEGMENT_SIZE).map_err(VdError::from)?;
        HeaderMapping::new(seg).map_err(VdError::from)?
    };
    #[cfg(windows)]
    let m = windows_names::open_live(instance, set)?;
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

/// How long a header may stay without a creator token (or a segment stay empty) before it
/// counts as abandoned: a live creator fills both within microseconds of creating it.
const INIT_GRACE: Duration = Duration::from_secs(2);

/// What a header segment's contents say about its set.
enum HeaderVerdict {
    InUse(String),
    Stale(String),
    /// Not a vdisim header of this build, or not ours to judge: left alone.
    Foreign(String),
    Gone,
}

/// How long ago a segment was last modified (by ftruncate or a write through the file).
fn segment_age(name: &str) -> Duration {
    std::fs::metadata(shm_path(name))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .unwrap_or(Duration::ZERO)
}

/// Judges a mapped header by its liveness tokens.
fn judge_header(name: &str, h: &SetHeader) -> HeaderVerdict {
    if h.reclaimed.load(Ordering::Acquire) != 0 {
        return HeaderVerdict::Stale("already reclaimed by another process".to_string());
    }
    // SYNC POINT: pid before start, pairs with the writers' order (F1).
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
        HeaderVerdict::InUse(format!("in use (client pid {}, server pid {})", client.pid, server.pid))
    } else if client.pid == 0 && segment_age(name) < INIT_GRACE {
        HeaderVerdict::InUse("being created".to_string())
    } else if client.pid == 0 {
        HeaderVerdict::Stale("its creator died before finishing CreateEx".to_string())
    } else {
        HeaderVerdict::Stale(format!("creator pid {} is gone", client.pid))
    }
}

/// Opens a header segment by OS name and judges it; hands back the mapping when it is ours.
fn open_and_judge(os_name: &str) -> (HeaderVerdict, Option<HeaderMapping>) {
    match Segment::open(os_name, 0) {
        Ok(seg) => match HeaderMapping::new(seg) {
            Ok(m) => (judge_header(os_name, m.header()), Some(m)),
            Err(_) => (
                HeaderVerdict::Foreign("too small to be a vdisim set header; left alone".to_string()),
                None,
            ),
        },
        Err(SegmentError::TooSmall) if segment_age(os_name) >= INIT_GRACE => (
            HeaderVerdict::Stale("empty: its creator died while creating it".to_string()),
            None,
        ),
        Err(SegmentError::TooSmall) => (HeaderVerdict::InUse("being created".to_string()), None),
        Err(SegmentError::NotFound) => (HeaderVerdict::Gone, None),
        Err(SegmentError::PermissionDenied) => (HeaderVerdict::Foreign("owned by another user".to_string()), None),
        Err(e) => (HeaderVerdict::Foreign(format!("cannot open: {e:?}")), None),
    }
}

/// Reads a segment's first word, which tells headers from buffer areas (fix F6: a set named
/// `x.buf1` must never be taken for the buffer area of set `x`).
fn first_word(name: &str) -> Option<u64> {
    use std::io::Read;
    let mut word = [0u8; 8];
    let mut f = std::fs::File::open(shm_path(name)).ok()?;
    f.read_exact(&mut word).ok()?;
    Some(u64::from_le_bytes(word))
}

/// The header a buffer-area name belongs to: `<header>.buf<digits>`.
fn buffer_parent(name: &str) -> Option<&str> {
    let idx = name.rfind(".buf")?;
    let digits = &name[idx + 4..];
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then(|| &name[..idx])
}

/// Lists vdisim segments and whether each is stale: a header whose creator and server are
/// both gone (or that was never finished), or a buffer area whose set is gone or stale.
/// Linux only (/dev/shm).
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
    for (n, size) in &names {
        let os_name = format!("/{n}");
        let word = first_word(&os_name);
        let parent = buffer_parent(n).filter(|_| word != Some(HEADER_MAGIC));
        let (stale, reason) = match parent {
            Some(parent) => match open_and_judge(&format!("/{parent}")).0 {
                HeaderVerdict::Gone => (true, "buffer area whose set header is gone".to_string()),
                HeaderVerdict::Stale(why) => (true, format!("buffer area of a stale set ({why})")),
                HeaderVerdict::InUse(_) | HeaderVerdict::Foreign(_) => {
                    (false, "buffer area of an existing set".to_string())
                }
            },
            None => match open_and_judge(&os_name).0 {
                HeaderVerdict::Stale(why) => (true, why),
                HeaderVerdict::InUse(why) | HeaderVerdict::Foreign(why) => (false, why),
                HeaderVerdict::Gone => continue,
            },
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

/// Removes a stale header the way a creator reclaims one: re-judged on a fresh mapping, and
/// unlinked only by the winner of the `reclaimed` CAS, so a set created under the same name
/// meanwhile is never removed (fix F6). Also removes its buffer area. Returns the OS names
/// it unlinked.
fn reclaim_stale_header(os_name: &str) -> Vec<String> {
    if segment_len(os_name) == Some(0) && segment_age(os_name) >= INIT_GRACE {
        grow_empty_header(os_name);
    }
    let (verdict, mapping) = open_and_judge(os_name);
    let (HeaderVerdict::Stale(_), Some(m)) = (verdict, mapping) else {
        return Vec::new();
    };
    let h = m.header();
    if h.reclaimed
        .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return Vec::new();
    }
    let mut gone = Vec::new();
    let generation = h.buffer_generation.load(Ordering::Acquire);
    let buffer = format!("{os_name}.buf{generation}");
    if generation != 0 && unlink(&buffer) {
        gone.push(buffer);
    }
    if unlink(os_name) {
        gone.push(os_name.to_string());
    }
    gone
}

/// Removes every stale vdisim segment; returns what was removed.
pub fn remove_stale_segments() -> Vec<SegmentInfo> {
    let listed = list_segments();
    let mut gone: Vec<String> = Vec::new();
    for s in listed.iter().filter(|s| s.stale) {
        let os_name = format!("/{}", s.name);
        if gone.contains(&os_name) {
            continue;
        }
        let is_buffer = buffer_parent(&s.name).is_some() && first_word(&os_name) != Some(HEADER_MAGIC);
        if is_buffer {
            // Buffer names carry a fresh generation, so a new set never reuses one.
            if unlink(&os_name) {
                gone.push(os_name);
            }
        } else {
            gone.extend(reclaim_stale_header(&os_name));
        }
    }
    listed
        .into_iter()
        .filter(|s| gone.contains(&format!("/{}", s.name)))
        .collect()
}

/// Windows set names (issue 9). A named mapping cannot be unlinked: its name lives while any
/// process maps it (a server still closing, an observer), and vanishes with the last handle.
/// To keep the Linux meaning of Close ("the set is gone, the name is free"):
/// - removing a header marks it (`reclaimed` = 1, a tombstone); openers skip tombstones;
/// - a set name has [`INCARNATIONS`] mapping names: `<header name>` then `<header name>/<k>`
///   (`/` cannot occur in set names, so no set's header is another's incarnation). CreateEx
///   takes the first incarnation not held by a tombstone; openers take the first live one.
///
/// Two creators racing for a name end with at most one live set: each checks the other
/// incarnations after creating its own and steps back (tombstoning it) if it finds a live one;
/// of two such checks at least one sees the other, so at worst both step back
/// (VD_E_PROTOCOL, as for any CreateEx that meets a live set).
#[cfg(windows)]
mod windows_names {
    use super::*;

    /// How many closed-but-still-mapped sets of one name may linger before CreateEx of the
    /// name fails with VD_E_PROTOCOL.
    pub const INCARNATIONS: u32 = 8;

    pub fn incarnation(instance: &str, set: &str, k: u32) -> String {
        let base = header_segment_name(instance, set);
        if k == 0 {
            base
        } else {
            format!("{base}/{k}")
        }
    }

    /// Marks the set header named `name` removed. Returns whether there was one.
    pub fn tombstone(name: &str) -> bool {
        let Some(m) = Segment::open(name, HEADER_SEGMENT_SIZE)
            .ok()
            .and_then(|seg| HeaderMapping::new(seg).ok())
        else {
            return false;
        };
        let h = m.header();
        if h.magic.load(Ordering::Acquire) != HEADER_MAGIC {
            return false;
        }
        h.reclaimed.store(1, Ordering::Release);
        true
    }

    /// Whether an incarnation other than `mine` holds a live set (not a tombstone, creator
    /// not known dead).
    pub fn another_live(instance: &str, set: &str, mine: u32) -> bool {
        (0..INCARNATIONS).filter(|&k| k != mine).any(|k| {
            let Ok(seg) = Segment::open(&incarnation(instance, set, k), HEADER_SEGMENT_SIZE) else {
                return false;
            };
            let Ok(m) = HeaderMapping::new(seg) else {
                return false;
            };
            let h = m.header();
            let creator = platform::LivenessToken {
                pid: h.client.pid.load(Ordering::Acquire),
                start: h.client.start.load(Ordering::Acquire),
            };
            h.reclaimed.load(Ordering::Acquire) == 0 && creator.state() != platform::PeerState::Dead
        })
    }

    /// The first incarnation of the set that is not a tombstone. VD_E_INVALID if there is
    /// none; VD_E_SECURITY if one could not be opened for lack of rights.
    pub fn open_live(instance: &str, set: &str) -> VdResult<HeaderMapping> {
        let mut denied = false;
        for k in 0..INCARNATIONS {
            match Segment::open(&incarnation(instance, set, k), HEADER_SEGMENT_SIZE) {
                Ok(seg) => {
                    let Ok(m) = HeaderMapping::new(seg) else { continue };
                    if m.header().reclaimed.load(Ordering::Acquire) == 0 {
                        return Ok(m);
                    }
                }
                Err(SegmentError::PermissionDenied) => denied = true,
                Err(_) => {}
            }
        }
        Err(if denied { VdError::Security } else { VdError::Invalid })
    }
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
