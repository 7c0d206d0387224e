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
mod imp {
    //! Windows: no cross-process futex exists (WaitOnAddress is per process), so waits poll
    //! with a short sleep until named events replace this (issue: Windows platform layer).
    use super::PeerState;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::{Duration, Instant};
    use windows_sys::Win32::Foundation::{CloseHandle, FILETIME, STILL_ACTIVE};
    use windows_sys::Win32::System::Threading::{
        GetExitCodeProcess, GetProcessTimes, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION,
    };

    pub fn wait_on(word: &AtomicU32, expected: u32, timeout: Duration) {
        let end = Instant::now() + timeout;
        while word.load(Ordering::Acquire) == expected && Instant::now() < end {
            std::thread::sleep(Duration::from_micros(500));
        }
    }

    pub fn wake_all(_word: &AtomicU32) {}

    fn query(pid: u32) -> Option<(bool, u64)> {
        // SAFETY: OpenProcess has no memory preconditions; a null handle means failure.
        let h = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
        if h.is_null() {
            return None;
        }
        let mut code = 0u32;
        let zero = FILETIME {
            dwLowDateTime: 0,
            dwHighDateTime: 0,
        };
        let (mut c, mut e, mut k, mut u) = (zero, zero, zero, zero);
        // SAFETY: `h` is a valid process handle we own; the out pointers are live locals.
        let ok =
            unsafe { GetExitCodeProcess(h, &mut code) != 0 && GetProcessTimes(h, &mut c, &mut e, &mut k, &mut u) != 0 };
        // SAFETY: `h` came from OpenProcess and is closed exactly once.
        unsafe { CloseHandle(h) };
        if !ok {
            return None;
        }
        let start = (u64::from(c.dwHighDateTime) << 32) | u64::from(c.dwLowDateTime);
        Some((code == STILL_ACTIVE as u32, start))
    }

    pub fn start_time(pid: u32) -> Option<u64> {
        query(pid).map(|(_, s)| s)
    }

    pub fn state(pid: u32, start: u64) -> PeerState {
        match query(pid) {
            Some((true, s)) if s == start => PeerState::Alive,
            _ => PeerState::Dead,
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
        let mut child = std::process::Command::new("true").spawn().unwrap();
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
