//! Shared pieces of the vdisim benchmarks (issue 7): the names and sizes every measure agrees
//! on, the bare shared-memory region the baselines use, the peer child process, and reading
//! criterion's medians back.
//!
//! Every measure has its baseline in the same bench binary, run in the same invocation, so a
//! ratio compares numbers taken on the same machine under the same load.
//!
//! The baselines need raw shared memory (atomics and byte copies at offsets of a mapping);
//! that is the only `unsafe` here, in [`Region`], each block with its argument.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use vdisim::shm::Segment;

/// Size of the Write whose round trip is measured.
pub const ROUND_TRIP_BYTES: u32 = 64 * 1024;
/// Bytes each way in the UnixStream ping-pong baseline (a command record's payload).
pub const MESSAGE_BYTES: usize = 24;
/// MAXTRANSFERSIZE of the streams, and the slot size of the bare ring.
pub const CHUNK: usize = 1 << 20;
/// BUFFERCOUNT of the one-device stream, and the slot count of the bare ring.
pub const STREAM_BUFFERS: u32 = 4;
/// Devices of the scaled stream.
pub const SCALE_DEVICES: u32 = 64;
/// BUFFERCOUNT of the scaled stream: shared by all devices (SPEC §2.6), so one per device.
pub const SCALE_BUFFERS: u32 = 64;
/// `name` from the environment if set and valid, else `default` (experiment knobs: the
/// documented figures use the defaults).
pub fn env_or(name: &str, default: u32) -> u32 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Where the baselines' data slots start in a [`Region`]: the first page holds control words.
pub const DATA_OFFSET: usize = 4096;
/// Control words of a [`Region`], one per cache line.
pub const WORDS: usize = DATA_OFFSET / 64;

/// Bytes per stream iteration: `VDISIM_BENCH_STREAM_MIB` MiB (default 1024, i.e. 1 GiB),
/// rounded down to whole chunks and to a multiple of [`SCALE_DEVICES`] chunks.
pub fn stream_bytes() -> u64 {
    let mib = std::env::var("VDISIM_BENCH_STREAM_MIB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(1024)
        .max(u64::from(SCALE_DEVICES));
    (mib / u64::from(SCALE_DEVICES)) * u64::from(SCALE_DEVICES) * CHUNK as u64
}

/// A name unique to this process and call, for sets, segments and sockets (`vdisim-` prefix,
/// so `vdisim cleanup` would find a leftover).
pub fn unique_name(kind: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "vdisim-bench-{}-{kind}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A deterministic, non-trivial chunk the producers copy into each buffer.
pub fn source_chunk() -> Vec<u8> {
    (0..CHUNK as u64)
        .map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8 ^ i as u8)
        .collect()
}

/// Busy-waits until `ready` holds, with a yield every 256 polls so a baseline does not
/// collapse when its peer was preempted. Returns false if `deadline` passed first.
pub fn spin_until(deadline: Instant, mut ready: impl FnMut() -> bool) -> bool {
    let mut n = 0u32;
    while !ready() {
        n = n.wrapping_add(1);
        if n % 256 == 0 {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
    true
}

/// CPU time (user + system) the calling thread used so far (getrusage RUSAGE_THREAD).
#[cfg(unix)]
pub fn thread_cpu_time() -> Duration {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a `struct rusage` to the pointer, which points to one; the
    // zeroed value is a valid rusage even if the call failed and wrote nothing.
    let ru = unsafe {
        libc::getrusage(libc::RUSAGE_THREAD, ru.as_mut_ptr());
        ru.assume_init()
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec.max(0) as u64, (t.tv_usec.max(0) as u32) * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// CPU time (user + system) the calling thread used so far (GetThreadTimes, 100 ns units).
#[cfg(windows)]
pub fn thread_cpu_time() -> Duration {
    use windows_sys::Win32::Foundation::FILETIME;
    use windows_sys::Win32::System::Threading::{GetCurrentThread, GetThreadTimes};
    let zero = FILETIME {
        dwLowDateTime: 0,
        dwHighDateTime: 0,
    };
    let (mut c, mut e, mut k, mut u) = (zero, zero, zero, zero);
    // SAFETY: GetCurrentThread returns a pseudo-handle that needs no closing; the out
    // pointers are live locals. On failure they stay zero.
    unsafe { GetThreadTimes(GetCurrentThread(), &mut c, &mut e, &mut k, &mut u) };
    let ticks = |t: FILETIME| (u64::from(t.dwHighDateTime) << 32) | u64::from(t.dwLowDateTime);
    Duration::from_nanos((ticks(k) + ticks(u)).saturating_mul(100))
}

/// A bare shared-memory segment for the baselines: [`WORDS`] atomic control words, each on
/// its own cache line, then `data_len` bytes of slots at [`DATA_OFFSET`].
pub struct Region {
    seg: Segment,
    data_len: usize,
    owner: bool,
}

impl Region {
    /// Creates the segment (`name` as from [`unique_name`]); it is unlinked when dropped.
    pub fn create(name: &str, data_len: usize) -> Result<Region, String> {
        let seg = Segment::create(&format!("/{name}"), DATA_OFFSET + data_len, false)
            .map_err(|e| format!("create segment {name}: {e:?}"))?;
        Ok(Region {
            seg,
            data_len,
            owner: true,
        })
    }

    /// Maps a segment created by [`Region::create`] in another process.
    pub fn open(name: &str, data_len: usize) -> Result<Region, String> {
        let seg =
            Segment::open(&format!("/{name}"), DATA_OFFSET + data_len).map_err(|e| format!("open {name}: {e:?}"))?;
        Ok(Region {
            seg,
            data_len,
            owner: false,
        })
    }

    /// Control word `i` (taken modulo [`WORDS`]).
    pub fn word(&self, i: usize) -> &AtomicU64 {
        let offset = (i % WORDS) * 64;
        // SAFETY: offset + 8 <= DATA_OFFSET <= the segment's length; the mapping is page
        // aligned so the address is 8-aligned; it stays mapped while `self` lives; any bytes
        // are a valid AtomicU64, and both processes only access it atomically.
        unsafe { &*(self.seg.as_ptr().add(offset) as *const AtomicU64) }
    }

    fn check(&self, offset: usize, len: usize) {
        assert!(
            offset.checked_add(len).is_some_and(|end| end <= self.data_len),
            "region access {offset}+{len} outside {} data bytes",
            self.data_len
        );
    }

    /// Copies `src` into the data area at `offset`. The caller's protocol (the ring's
    /// indices) must give it the range exclusively, as [`Region::read`]'s caller.
    pub fn write(&self, offset: usize, src: &[u8]) {
        self.check(offset, src.len());
        // SAFETY: the range lies inside the mapping (checked above) and does not overlap
        // `src` (a private buffer); the ring protocol hands a slot to one side at a time, with
        // Release/Acquire on the indices ordering the copies.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.seg.as_ptr().add(DATA_OFFSET + offset), src.len());
        }
    }

    /// Copies the data area at `offset` into `dst`.
    pub fn read(&self, offset: usize, dst: &mut [u8]) {
        self.check(offset, dst.len());
        // SAFETY: as in `write`, reading instead of writing.
        unsafe {
            std::ptr::copy_nonoverlapping(self.seg.as_ptr().add(DATA_OFFSET + offset), dst.as_mut_ptr(), dst.len());
        }
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        if self.owner {
            vdisim::shm::unlink(self.seg.name());
        }
    }
}

/// A child process running `vdisim-bench-peer`, whose stdout lines are read by a thread so
/// every wait for one has a deadline. Killed (by its own pid) if dropped while running.
pub struct Peer {
    child: Child,
    lines: mpsc::Receiver<String>,
    what: String,
}

impl Peer {
    pub fn spawn(exe: &str, args: &[&str]) -> Result<Peer, String> {
        let mut child = Command::new(exe)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("spawn {exe}: {e}"))?;
        let out = child.stdout.take().ok_or("no stdout")?;
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Peer {
            child,
            lines,
            what: args.join(" "),
        })
    }

    /// Waits for a line starting with `word` and returns the rest of it.
    pub fn expect(&self, word: &str, timeout: Duration) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix(word) {
                        return Ok(rest.trim().to_string());
                    }
                }
                Err(e) => return Err(format!("peer `{}`: no `{word}` line ({e})", self.what)),
            }
        }
    }

    /// Waits for the child to exit on its own, successfully.
    pub fn finish(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => return Err(format!("peer `{}` exited with {status}", self.what)),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                Ok(None) => return Err(format!("peer `{}` did not exit", self.what)),
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Criterion's output directory: `CRITERION_HOME`, else `<target>/criterion`.
pub fn criterion_home() -> PathBuf {
    if let Some(h) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(h);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    target.join("criterion")
}

/// The median time per iteration, in nanoseconds, criterion estimated for `group/function`.
pub fn criterion_median_ns(home: &Path, group: &str, function: &str) -> Result<f64, String> {
    let path = home.join(group).join(function).join("new").join("estimates.json");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    v["median"]["point_estimate"]
        .as_f64()
        .ok_or_else(|| format!("{}: no median.point_estimate", path.display()))
}

/// Where the idle bench writes its result (it is not a criterion measure).
pub fn idle_result_path(home: &Path) -> PathBuf {
    home.join("idle").join("result.json")
}

/// The median of some values (the mean of the middle two for an even count).
pub fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }

    #[test]
    fn stream_bytes_is_whole_chunks_per_scaled_device() {
        let b = stream_bytes();
        assert_eq!(b % (CHUNK as u64 * u64::from(SCALE_DEVICES)), 0);
        assert!(b > 0);
    }

    #[test]
    fn region_round_trips_bytes_and_unlinks() {
        let name = unique_name("test");
        let path = format!("/dev/shm/{name}");
        {
            let a = Region::create(&name, 4096).unwrap();
            let b = Region::open(&name, 4096).unwrap();
            a.word(1).store(7, Ordering::SeqCst);
            assert_eq!(b.word(1).load(Ordering::SeqCst), 7);
            a.write(10, b"hello");
            let mut out = [0u8; 5];
            b.read(10, &mut out);
            assert_eq!(&out, b"hello");
            assert!(Path::new(&path).exists());
        }
        assert!(!Path::new(&path).exists());
    }

    #[test]
    fn thread_cpu_time_advances_with_work() {
        let t0 = thread_cpu_time();
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(thread_cpu_time() > t0);
    }
}
