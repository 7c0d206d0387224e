//! The operating-system pieces the wire needs, behind one small interface: a cross-process
//! wake-up on a 32-bit word in shared memory, and process liveness tokens.
//!
//! raw_sync was considered and not used: its pthread mutex is not robust when a holder dies
//! and its Linux timed waits fail for many sub-second timeouts. A futex on a word in the
//! mapping needs no lock at all, so a dead peer cannot leave anything held.

use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// Identifies one process incarnation: a pid alone can be reused after the process dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct LivenessToken {
    pub pid: u32,
    /// Process start time in an OS-specific unit (Linux: clock ticks since boot).
    pub start: u64,
}

/// What a liveness token says about its process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    Alive,
    /// The pid is gone, is a zombie, or now belongs to another process.
    Dead,
    /// The token was never filled in.
    Unknown,
}

impl LivenessToken {
    /// The calling process's token.
    pub fn current() -> LivenessToken {
        let pid = std::process::id();
        LivenessToken {
            pid,
            start: imp::start_time(pid).unwrap_or(0),
        }
    }

    /// Checks whether the process the token names still runs.
    pub fn state(&self) -> PeerState {
        if self.pid == 0 {
            return PeerState::Unknown;
        }
        imp::state(self.pid, self.start)
    }
}

/// Blocks while `*word == expected`, for at most `timeout`; may return early (spuriously).
pub fn wait_on(word: &AtomicU32, expected: u32, timeout: Duration) {
    imp::wait_on(word, expected, timeout)
}

/// Wakes every process blocked in [`wait_on`] on `word`.
pub fn wake_all(word: &AtomicU32) {
    imp::wake_all(word)
}

#[cfg(target_os = "linux")]
mod imp {
    use super::PeerState;
    use std::sync::atomic::AtomicU32;
    use std::time::Duration;

    pub fn wait_on(word: &AtomicU32, expected: u32, timeout: Duration) {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
            // Always below 1e9: the kernel rejects unnormalised timespecs (raw_sync's bug).
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: FUTEX_WAIT only reads the 4-byte word, which `word` keeps alive and aligned
        // for the duration of the call; `ts` lives on our stack. Not FUTEX_PRIVATE because the
        // word is in a mapping shared with another process. Errors (EAGAIN when the value
        // already changed, EINTR, ETIMEDOUT) all mean "re-check", which every caller does.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAIT,
                expected,
                &ts as *const libc::timespec,
                std::ptr::null::<u32>(),
                0u32,
            );
        }
    }

    pub fn wake_all(word: &AtomicU32) {
        // SAFETY: FUTEX_WAKE does not access the word's memory beyond using its address as a
        // key; the reference keeps the address valid for the call.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAKE,
                i32::MAX,
                std::ptr::null::<libc::timespec>(),
                std::ptr::null::<u32>(),
                0u32,
            );
        }
    }

    /// Field 22 of /proc/<pid>/stat (start time) and field 3 (state).
    fn stat(pid: u32) -> Option<(char, u64)> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name (field 2) is in parentheses and may itself contain ") ".
        let rest = &text[text.rfind(')')? + 1..];
        let mut fields = rest.split_whitespace();
        let state = fields.next()?.chars().next()?;
        // After the state come fields 4..; start time is field 22, i.e. 18 further on.
        let start = fields.nth(18)?.parse().ok()?;
        Some((state, start))
    }

    pub fn start_time(pid: u32) -> Option<u64> {
        stat(pid).map(|(_, start)| start)
    }

    pub fn state(pid: u32, start: u64) -> PeerState {
        match stat(pid) {
            // start == 0: the owner published its pid but not yet its start time (server Open
            // claims the pid by CAS first). Judge by the pid alone rather than call a live
            // peer dead (reliability fix F2).
            Some((s, t)) if (t == start || start == 0) && s != 'Z' && s != 'X' => PeerState::Alive,
            _ => PeerState::Dead,
        }
    }
}

#[cfg(all(unix, not(target_os = "linux")))]
mod imp {
    //! Portable fallback: polling. Correct (every wait re-checks), slower to wake.
    use super::PeerState;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{Duration, Instant};

    pub fn wait_on(word: &AtomicU32, expected: u32, timeout: Duration) {
        let end = Instant::now() + timeout;
        while word.load(Ordering::Acquire) == expected && Instant::now() < end {
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    pub fn wake_all(_word: &AtomicU32) {}

    pub fn start_time(_pid: u32) -> Option<u64> {
        Some(0)
    }

    pub fn state(pid: u32, _start: u64) -> PeerState {
        // SAFETY: kill with signal 0 only checks for existence and permission.
        let r = unsafe { libc::kill(pid as libc::pid_t, 0) };
        if r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM) {
            PeerState::Alive
        } else {
            PeerState::Dead
        }
    }
}

#[cfg(windows)]
pub use imp::{Mapping, MappingError, NAMESPACE_ENV};

#[cfg(windows)]
mod imp {
    //! Windows (issue 9). Three pieces:
    //!
    //! - **Mappings**: page-file-backed named file mappings, `Local\<segment name>` (or
    //!   `Global\...`, see [`NAMESPACE_ENV`]). Creation is exclusive (ERROR_ALREADY_EXISTS is a
    //!   refusal, never a silent attach); the name vanishes with the last handle, also when a
    //!   process dies, so there is nothing to unlink and nothing for `vdisim cleanup` to find.
    //!   The `shared_memory` crate is not used here: its Windows backend puts a file per segment
    //!   in %TEMP%\shared_memory-rs that outlives every handle (we never let it "own" a
    //!   segment, ownership follows VDI's rules), and its create opens an existing mapping of
    //!   the same name instead of failing.
    //! - **Wake-ups**: no cross-process futex exists (WaitOnAddress is per process), so each
    //!   wake word that someone waits on gets a named manual-reset event, named after the
    //!   mapping and the word's offset in it (`Local\vdisim.wake.<offset>.<segment>`; the
    //!   `vdisim.` prefix cannot collide with a mapping's `vdisim-`). A waiter creates (or
    //!   opens) the event first and only then re-checks the word, so a waker that bumped the
    //!   word and found no event had bumped it before the re-check: no lost wake-up. A waker
    //!   sets the event, releasing every waiter at once; the event stays set until some waiter
    //!   finds it set with its word unchanged (a stale signal) and resets it. The one remaining
    //!   race (two waiters on one word, one resetting while the other is between its re-check
    //!   and its wait) costs at most one wait slice ([`crate::shm::ring::SLICE`]), since every
    //!   wait is bounded and re-checks. Events are not mutexes: WAIT_ABANDONED cannot happen,
    //!   and is treated as a spurious wake-up if it does. Words outside any vdisim mapping
    //!   (unit tests) use WaitOnAddress, which is exact within a process.
    //! - **Liveness**: a process handle: running while waiting on it times out, and its
    //!   creation time (GetProcessTimes, 100 ns units) distinguishes a reused pid.
    use super::PeerState;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Mutex, MutexGuard};
    use std::time::{Duration, Instant};
    use windows_sys::Win32::Foundation::{
        CloseHandle, GetLastError, ERROR_ACCESS_DENIED, ERROR_ALREADY_EXISTS, ERROR_FILE_NOT_FOUND, FILETIME, HANDLE,
        INVALID_HANDLE_VALUE, WAIT_OBJECT_0, WAIT_TIMEOUT,
    };
    use windows_sys::Win32::System::Memory::{
        CreateFileMappingW, MapViewOfFile, OpenFileMappingW, UnmapViewOfFile, VirtualQuery, FILE_MAP_ALL_ACCESS,
        MEMORY_BASIC_INFORMATION, MEMORY_MAPPED_VIEW_ADDRESS, PAGE_READWRITE,
    };
    use windows_sys::Win32::System::Threading::{
        CreateEventW, GetProcessTimes, OpenEventW, OpenProcess, ResetEvent, SetEvent, WaitForSingleObject,
        WaitOnAddress, WakeByAddressAll, EVENT_MODIFY_STATE, PROCESS_QUERY_LIMITED_INFORMATION, PROCESS_SYNCHRONIZE,
        SYNCHRONIZATION_SYNCHRONIZE,
    };

    /// Environment variable choosing the kernel object namespace of mappings and events:
    /// `Local` (default: the session of the caller, no privilege needed) or `Global` (across
    /// sessions, e.g. a client talking to a service in session 0; creating a Global mapping
    /// needs SeCreateGlobalPrivilege, which services and administrators have). Both sides
    /// must agree.
    pub const NAMESPACE_ENV: &str = "VDISIM_SHM_NAMESPACE";

    fn namespace() -> &'static str {
        match std::env::var(NAMESPACE_ENV) {
            Ok(v) if v.eq_ignore_ascii_case("global") => "Global",
            _ => "Local",
        }
    }

    /// `Local\vdisim-...` from our portable segment name `/vdisim-...`, NUL-terminated UTF-16.
    fn object_name(kind: &str, name: &str) -> Vec<u16> {
        format!("{}\\{kind}{}", namespace(), name.trim_start_matches('/'))
            .encode_utf16()
            .chain(std::iter::once(0))
            .collect()
    }

    /// Why a mapping could not be created or opened.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum MappingError {
        Exists,
        NotFound,
        PermissionDenied,
        Os(u32),
    }

    /// A mapped, page-file-backed named file mapping.
    #[derive(Debug)]
    pub struct Mapping {
        handle: HANDLE,
        view: *mut u8,
        len: usize,
    }

    impl Mapping {
        /// Creates `name` exclusively with `size` bytes (zero-filled by the system).
        pub fn create(name: &str, size: usize) -> Result<Mapping, MappingError> {
            if size == 0 {
                return Err(MappingError::Os(87));
            }
            let wide = object_name("", name);
            let size64 = size as u64;
            // SAFETY: `wide` is a NUL-terminated UTF-16 string that outlives the call; a null
            // security-attributes pointer means the default descriptor.
            let handle = unsafe {
                CreateFileMappingW(
                    INVALID_HANDLE_VALUE,
                    std::ptr::null(),
                    PAGE_READWRITE,
                    (size64 >> 32) as u32,
                    size64 as u32,
                    wide.as_ptr(),
                )
            };
            // SAFETY: reads this thread's last-error value; no preconditions.
            let err = unsafe { GetLastError() };
            if handle.is_null() {
                return Err(map_error(err));
            }
            if err == ERROR_ALREADY_EXISTS {
                // SAFETY: `handle` is a handle we own, closed exactly once.
                unsafe { CloseHandle(handle) };
                return Err(MappingError::Exists);
            }
            Mapping::map(name, handle, Some(size))
        }

        /// Opens an existing mapping; its length is what the view spans (page-rounded).
        pub fn open(name: &str) -> Result<Mapping, MappingError> {
            let wide = object_name("", name);
            // SAFETY: `wide` is a NUL-terminated UTF-16 string that outlives the call.
            let handle = unsafe { OpenFileMappingW(FILE_MAP_ALL_ACCESS, 0, wide.as_ptr()) };
            if handle.is_null() {
                // SAFETY: reads this thread's last-error value; no preconditions.
                return Err(map_error(unsafe { GetLastError() }));
            }
            Mapping::map(name, handle, None)
        }

        fn map(name: &str, handle: HANDLE, size: Option<usize>) -> Result<Mapping, MappingError> {
            // SAFETY: `handle` is a valid file-mapping handle we own; length 0 maps it whole.
            let view = unsafe { MapViewOfFile(handle, FILE_MAP_ALL_ACCESS, 0, 0, 0) }.Value as *mut u8;
            if view.is_null() {
                // SAFETY: as above; the handle is closed exactly once, after reading the error.
                let err = unsafe { GetLastError() };
                // SAFETY: see above.
                unsafe { CloseHandle(handle) };
                return Err(map_error(err));
            }
            let len = match size {
                Some(len) => len,
                None => {
                    // SAFETY: MEMORY_BASIC_INFORMATION is plain data, all-zero is valid.
                    let mut info: MEMORY_BASIC_INFORMATION = unsafe { std::mem::zeroed() };
                    // SAFETY: `view` is the base of our view; `info` is a live local of the size given.
                    let got = unsafe {
                        VirtualQuery(
                            view as *const _,
                            &mut info,
                            std::mem::size_of::<MEMORY_BASIC_INFORMATION>(),
                        )
                    };
                    if got == 0 {
                        0
                    } else {
                        info.RegionSize
                    }
                }
            };
            register(view as usize, len, name);
            Ok(Mapping { handle, view, len })
        }

        pub fn len(&self) -> usize {
            self.len
        }

        pub fn is_empty(&self) -> bool {
            self.len == 0
        }

        pub fn as_ptr(&self) -> *mut u8 {
            self.view
        }
    }

    impl Drop for Mapping {
        fn drop(&mut self) {
            unregister(self.view as usize);
            // SAFETY: `view` and `handle` came from MapViewOfFile / CreateFileMapping or
            // OpenFileMapping in `map` and are released exactly once, here. Nobody can still
            // hold a reference into the view: every reference borrows the owning Segment.
            unsafe {
                UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS {
                    Value: self.view as *mut _,
                });
                CloseHandle(self.handle);
            }
        }
    }

    fn map_error(err: u32) -> MappingError {
        match err {
            ERROR_FILE_NOT_FOUND => MappingError::NotFound,
            ERROR_ACCESS_DENIED => MappingError::PermissionDenied,
            ERROR_ALREADY_EXISTS => MappingError::Exists,
            other => MappingError::Os(other),
        }
    }

    /// One mapped view of this process, for turning a wake word's address into a name.
    struct Region {
        base: usize,
        len: usize,
        name: String,
        /// (offset of the word, event handle as an integer: HANDLE is not Send).
        events: Vec<(usize, usize)>,
    }

    static REGIONS: Mutex<Vec<Region>> = Mutex::new(Vec::new());

    fn regions() -> MutexGuard<'static, Vec<Region>> {
        // Nothing panics while holding the lock; should it ever, the list is still usable.
        REGIONS.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn register(base: usize, len: usize, name: &str) {
        regions().push(Region {
            base,
            len,
            name: name.to_string(),
            events: Vec::new(),
        });
    }

    fn unregister(base: usize) {
        let mut list = regions();
        if let Some(i) = list.iter().position(|r| r.base == base) {
            let region = list.swap_remove(i);
            for (_, h) in region.events {
                // SAFETY: each cached handle came from CreateEventW/OpenEventW and is closed
                // once. No wait can be using it: waits borrow the word, hence the mapping.
                unsafe { CloseHandle(h as HANDLE) };
            }
        }
    }

    /// The event of the wake word at `addr`: `Some(None)` when the word is in no vdisim
    /// mapping (process-local), `Some(Some(h))` the event, `None` when it does not exist
    /// (`create == false`) or could not be made.
    fn event_for(addr: usize, create: bool) -> Option<Option<HANDLE>> {
        let mut list = regions();
        let Some(region) = list.iter_mut().find(|r| addr >= r.base && addr - r.base < r.len) else {
            return Some(None);
        };
        let offset = addr - region.base;
        if let Some(&(_, h)) = region.events.iter().find(|(o, _)| *o == offset) {
            return Some(Some(h as HANDLE));
        }
        let wide = object_name(&format!("vdisim.wake.{offset}."), &region.name);
        let h = if create {
            // SAFETY: `wide` is NUL-terminated and outlives the call; default security; a
            // manual-reset event, initially not set. Opens the event if it already exists.
            unsafe { CreateEventW(std::ptr::null(), 1, 0, wide.as_ptr()) }
        } else {
            // SAFETY: as above.
            unsafe { OpenEventW(EVENT_MODIFY_STATE | SYNCHRONIZATION_SYNCHRONIZE, 0, wide.as_ptr()) }
        };
        if h.is_null() {
            return None;
        }
        region.events.push((offset, h as usize));
        Some(Some(h))
    }

    /// Milliseconds for a Win32 wait, rounded up so that a wait never ends before `d`.
    fn millis(d: Duration) -> u32 {
        let ms = d.as_nanos().div_ceil(1_000_000);
        // INFINITE (0xFFFFFFFF) is never produced: callers pass bounded slices.
        ms.min(u128::from(u32::MAX - 1)) as u32
    }

    pub fn wait_on(word: &AtomicU32, expected: u32, timeout: Duration) {
        let end = Instant::now() + timeout;
        match event_for(word.as_ptr() as usize, true) {
            Some(Some(event)) => wait_event(word, expected, event, end),
            Some(None) => {
                let remaining = end.saturating_duration_since(Instant::now());
                // SAFETY: both pointers are valid for 4 bytes for the call (`expected` is a
                // local); WaitOnAddress only reads them. Any return means "re-check".
                unsafe {
                    WaitOnAddress(
                        word.as_ptr() as *const _,
                        &expected as *const u32 as *const _,
                        4,
                        millis(remaining),
                    )
                };
            }
            None => poll(word, expected, end),
        }
    }

    fn wait_event(word: &AtomicU32, expected: u32, event: HANDLE, end: Instant) {
        loop {
            // SYNC POINT: the event exists before this load, so a waker whose bump we miss
            // here finds the event and sets it (see the module comment).
            if word.load(Ordering::SeqCst) != expected {
                return;
            }
            let now = Instant::now();
            if now >= end {
                return;
            }
            // SAFETY: `event` is a live event handle held by the registry while the mapping
            // (borrowed through `word`) lives.
            let r = unsafe { WaitForSingleObject(event, millis(end - now)) };
            match r {
                WAIT_OBJECT_0 => {
                    if word.load(Ordering::SeqCst) != expected {
                        return;
                    }
                    // Set with the word unchanged: a stale signal from an earlier wake-up.
                    // Clear it; the loop re-checks the word after the reset.
                    // SAFETY: as above.
                    unsafe { ResetEvent(event) };
                }
                WAIT_TIMEOUT => return,
                // WAIT_ABANDONED (mutexes only) or another result: a spurious wake-up.
                r if r != u32::MAX => return,
                // WAIT_FAILED: never spin on a broken handle; poll for the rest.
                _ => return poll(word, expected, end),
            }
        }
    }

    /// Last resort when no event can be made: short sleeps, re-checking the word.
    fn poll(word: &AtomicU32, expected: u32, end: Instant) {
        while word.load(Ordering::Acquire) == expected && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    pub fn wake_all(word: &AtomicU32) {
        match event_for(word.as_ptr() as usize, false) {
            // SAFETY: a live event handle held by the registry (see wait_event).
            Some(Some(event)) => unsafe {
                SetEvent(event);
            },
            // SAFETY: WakeByAddressAll only uses the address as a key.
            Some(None) => unsafe { WakeByAddressAll(word.as_ptr() as *const _) },
            // No event: nobody has ever waited on this word (a waiter creates it before its
            // final re-check), so there is nobody to wake.
            None => {}
        }
    }

    /// (running, creation time) of a process, or the Win32 error of opening it.
    fn query(pid: u32) -> Result<(bool, u64), u32> {
        // SAFETY: OpenProcess has no memory preconditions; a null handle means failure.
        let h = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION | PROCESS_SYNCHRONIZE, 0, pid) };
        if h.is_null() {
            // SAFETY: reads this thread's last-error value.
            return Err(unsafe { GetLastError() });
        }
        let zero = FILETIME {
            dwLowDateTime: 0,
            dwHighDateTime: 0,
        };
        let (mut c, mut e, mut k, mut u) = (zero, zero, zero, zero);
        // SAFETY: `h` is a valid process handle we own; the out pointers are live locals.
        // A process handle is signalled once the process has ended.
        let (times, running) = unsafe {
            (
                GetProcessTimes(h, &mut c, &mut e, &mut k, &mut u) != 0,
                WaitForSingleObject(h, 0) == WAIT_TIMEOUT,
            )
        };
        // SAFETY: `h` came from OpenProcess and is closed exactly once.
        unsafe { CloseHandle(h) };
        let start = if times {
            (u64::from(c.dwHighDateTime) << 32) | u64::from(c.dwLowDateTime)
        } else {
            0
        };
        Ok((running, start))
    }

    pub fn start_time(pid: u32) -> Option<u64> {
        query(pid).ok().map(|(_, s)| s)
    }

    pub fn state(pid: u32, start: u64) -> PeerState {
        match query(pid) {
            // start == 0: published pid, start time not yet (as on Linux, fix F2).
            Ok((true, s)) if s == start || start == 0 => PeerState::Alive,
            Ok(_) => PeerState::Dead,
            // A process of another user (e.g. the SQL Server service) may refuse even
            // limited access: it exists, and cannot be told apart from a reused pid. Never
            // call a peer dead on that ground.
            Err(ERROR_ACCESS_DENIED) => PeerState::Alive,
            // ERROR_INVALID_PARAMETER: no such process.
            Err(_) => PeerState::Dead,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn own_token_is_alive_and_a_changed_start_is_dead() {
        let me = LivenessToken::current();
        assert_eq!(me.state(), PeerState::Alive);
        let reused = LivenessToken {
            start: me.start + 1,
            ..me
        };
        assert_eq!(reused.state(), PeerState::Dead);
        assert_eq!(LivenessToken::default().state(), PeerState::Unknown);
    }

    #[test]
    fn a_reaped_child_is_dead() {
        #[cfg(not(windows))]
        let mut child = std::process::Command::new("true").spawn().unwrap();
        #[cfg(windows)]
        let mut child = std::process::Command::new("cmd").args(["/C", "exit"]).spawn().unwrap();
        let pid = child.id();
        let token = LivenessToken {
            pid,
            start: imp::start_time(pid).unwrap_or(0),
        };
        child.wait().unwrap();
        assert_eq!(token.state(), PeerState::Dead);
    }

    #[test]
    fn wait_times_out_and_wake_releases() {
        let word = Arc::new(AtomicU32::new(0));
        let t = Instant::now();
        wait_on(&word, 0, Duration::from_millis(30));
        assert!(t.elapsed() >= Duration::from_millis(20));
        // A sub-second timeout with many nanoseconds (raw_sync's failure) still waits.
        let t = Instant::now();
        wait_on(&word, 0, Duration::from_nanos(40_999_999));
        assert!(t.elapsed() >= Duration::from_millis(30));
        let w2 = word.clone();
        let h = std::thread::spawn(move || {
            let t = Instant::now();
            while w2.load(Ordering::SeqCst) == 0 && t.elapsed() < Duration::from_secs(5) {
                wait_on(&w2, 0, Duration::from_secs(5));
            }
            t.elapsed()
        });
        std::thread::sleep(Duration::from_millis(20));
        word.store(1, Ordering::SeqCst);
        wake_all(&word);
        assert!(h.join().unwrap() < Duration::from_secs(4));
    }
}

/// The Windows pieces on their own (they also run under Wine: scripts/windows.sh).
#[cfg(all(test, windows))]
mod windows_tests {
    use super::*;
    use std::sync::atomic::Ordering;
    use std::time::Instant;

    fn unique(tag: &str) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        format!(
            "/vdisim-wintest-{}-{tag}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )
    }

    fn word(m: &Mapping, offset: usize) -> &AtomicU32 {
        assert!(offset + 4 <= m.len() && offset % 4 == 0);
        // SAFETY: in bounds and 4-aligned (checked above; the view is page-aligned), the
        // mapping outlives the reference, and the word is only accessed atomically.
        unsafe { &*(m.as_ptr().add(offset) as *const AtomicU32) }
    }

    #[test]
    fn mappings_are_exclusive_shared_and_vanish_with_their_last_handle() {
        let name = unique("map");
        assert_eq!(Mapping::open(&name).err(), Some(MappingError::NotFound));
        let a = Mapping::create(&name, 10_000).expect("create");
        assert_eq!(a.len(), 10_000);
        assert_eq!(Mapping::create(&name, 10_000).err(), Some(MappingError::Exists));
        let b = Mapping::open(&name).expect("open");
        assert!(b.len() >= 10_000, "a view spans the whole mapping (page-rounded)");
        assert_ne!(a.as_ptr(), b.as_ptr(), "two views");
        word(&a, 8).store(0xDEAD_BEEF, Ordering::SeqCst);
        assert_eq!(word(&b, 8).load(Ordering::SeqCst), 0xDEAD_BEEF, "one memory");
        drop(a);
        assert_eq!(word(&b, 8).load(Ordering::SeqCst), 0xDEAD_BEEF);
        drop(b);
        assert_eq!(
            Mapping::open(&name).err(),
            Some(MappingError::NotFound),
            "gone with the last handle"
        );
    }

    #[test]
    fn a_wake_through_one_view_releases_a_waiter_on_another() {
        // Two views of one mapping: the named-event path, as between two processes.
        let name = unique("wake");
        let a = Mapping::create(&name, 4096).expect("create");
        let b = Mapping::open(&name).expect("open");
        let (wa, wb) = (word(&a, 64), word(&b, 64));
        let released = std::thread::scope(|s| {
            let h = s.spawn(|| {
                let t = Instant::now();
                while wb.load(Ordering::SeqCst) == 0 && t.elapsed() < Duration::from_secs(10) {
                    wait_on(wb, 0, Duration::from_secs(10));
                }
                t.elapsed()
            });
            std::thread::sleep(Duration::from_millis(50));
            wa.fetch_add(1, Ordering::SeqCst);
            wake_all(wa);
            h.join().unwrap()
        });
        // Without the event the waiter would sleep its whole 10 s wait.
        assert!(released < Duration::from_secs(5), "woken after {released:?}");
    }

    #[test]
    fn a_stale_signal_does_not_end_the_next_wait() {
        let name = unique("stale");
        let m = Mapping::create(&name, 4096).expect("create");
        let w = word(&m, 128);
        // Create the event (a first wait), then wake with nobody waiting: the event stays set.
        wait_on(w, 0, Duration::from_millis(1));
        w.fetch_add(1, Ordering::SeqCst);
        wake_all(w);
        // A wait on the new value finds the event set but its word unchanged: it clears the
        // stale signal and waits its time out.
        let t = Instant::now();
        wait_on(w, 1, Duration::from_millis(60));
        assert!(
            t.elapsed() >= Duration::from_millis(50),
            "returned after {:?}",
            t.elapsed()
        );
        // A changed word ends a wait at once.
        let t = Instant::now();
        wait_on(w, 0, Duration::from_secs(5));
        assert!(t.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn buffer_areas_are_aligned_to_64k_in_every_view() {
        let name = unique("area");
        let created = crate::shm::BufferMapping::create(&name, 1 << 20, 1, false).expect("create");
        let opened = crate::shm::BufferMapping::open(&name, 1 << 20, 1).expect("open");
        for area in [created.area_ptr(), opened.area_ptr()] {
            assert_eq!(area as usize % crate::shm::MAX_ALIGNMENT, 0, "{area:p}");
        }
    }

    #[test]
    fn a_removed_set_that_is_still_mapped_frees_its_name() {
        use crate::shm::{create_header, open_header, unlink, DEFAULT_INSTANCE};
        use crate::vdi::VdError;
        let set = unique("names").trim_start_matches("/vdisim-").to_string();
        let first = create_header(DEFAULT_INSTANCE, &set, false).expect("create");
        first
            .header()
            .version
            .store(crate::shm::layout::LAYOUT_VERSION, Ordering::Release);
        assert_eq!(
            create_header(DEFAULT_INSTANCE, &set, false).err(),
            Some(VdError::Protocol),
            "a live set's name is taken"
        );
        assert!(open_header(DEFAULT_INSTANCE, &set, Duration::ZERO).is_ok());
        // Closed (unlinked) but still mapped here: gone for openers, free for creators.
        assert!(unlink(first.segment().name()));
        assert_eq!(
            open_header(DEFAULT_INSTANCE, &set, Duration::ZERO).err(),
            Some(VdError::Invalid)
        );
        let second = create_header(DEFAULT_INSTANCE, &set, false).expect("create again");
        assert_ne!(second.segment().name(), first.segment().name(), "the next incarnation");
        second
            .header()
            .version
            .store(crate::shm::layout::LAYOUT_VERSION, Ordering::Release);
        let opened = open_header(DEFAULT_INSTANCE, &set, Duration::ZERO).expect("open the new set");
        assert_eq!(opened.segment().name(), second.segment().name());
        assert_eq!(
            create_header(DEFAULT_INSTANCE, &set, false).err(),
            Some(VdError::Protocol),
            "still one live set per name"
        );
    }

    #[test]
    fn an_unknown_pid_is_dead() {
        // Pids are multiples of 4 on Windows; this one is never handed out.
        let t = LivenessToken {
            pid: 0xFFFF_FFF0,
            start: 1,
        };
        assert_eq!(t.state(), PeerState::Dead);
    }
}
