//! `vdisim-bench-peer`: the other process of every two-process benchmark.
//!
//! It prints `READY` once attached and `DONE` before a clean exit, so the bench can follow it.
//! Modes:
//! - `spin-pong <segment>`: answers each odd value of word 0 with the next even one (spin).
//! - `unix-pong <socket>`: echoes 24-byte messages.
//! - `ring-sink <segment> [slots]`: consumes the bare ring of `slots` (default [`STREAM_BUFFERS`]) x 1 MiB slots, copying
//!   each slot into a reused buffer, until word 2 is set.
//! - `unix-sink <socket>`: reads `u64 length` + that many bytes into a reused 1 MiB buffer, then
//!   acknowledges with one byte; length 0 ends.
//! - `vdi-client <set> <devices> <complete|copy> [idle-trials idle-ms]`: a VDI client (one
//!   thread per device) that completes every Write at once (`complete`) or after copying its
//!   data into a reused buffer (`copy`, from a pool shared by the device threads). With idle
//!   trials, device 0 first blocks in GetCommand for idle-ms that many times, printing
//!   `IDLE <thread-cpu-ns> <wall-ns>` for each.

// The socket modes are Unix only; what only they use is unused elsewhere.
#![cfg_attr(not(unix), allow(unused_imports))]

use std::io::{Read, Write};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use vdisim::reference_client::device_name;
use vdisim::vdi::{completion, features, CommandCode, VDConfig, VdError, INFINITE};
use vdisim::{ClientVirtualDevice, ClientVirtualDeviceSet};
use vdisim_benches::{spin_until, thread_cpu_time, Region, CHUNK, MESSAGE_BYTES, STREAM_BUFFERS};

/// Longest a baseline peer waits for its bench before giving up (the bench died).
const PATIENCE: Duration = Duration::from_secs(120);

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    let result = match arg(0) {
        "spin-pong" => spin_pong(arg(1)),
        #[cfg(unix)]
        "unix-pong" => unix_pong(arg(1)),
        "ring-sink" => ring_sink(arg(1), arg(2).parse().unwrap_or(STREAM_BUFFERS as usize)),
        #[cfg(unix)]
        "unix-sink" => unix_sink(arg(1)),
        // The socket baselines need Unix domain sockets (the ipc bench is Unix only).
        #[cfg(not(unix))]
        "unix-pong" | "unix-sink" => Err("Unix domain sockets: Unix only".to_string()),
        "vdi-client" => {
            let devices = arg(2).parse().unwrap_or(1);
            let copy = arg(3) == "copy";
            let trials = arg(4).parse().unwrap_or(0);
            let idle_ms = arg(5).parse().unwrap_or(2000);
            vdi_client(arg(1), devices, copy, trials, idle_ms)
        }
        other => Err(format!("unknown mode `{other}`")),
    };
    match result {
        Ok(()) => {
            say("DONE");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("vdisim-bench-peer {}: {e}", arg(0));
            ExitCode::FAILURE
        }
    }
}

/// Word 0 carries the ping (odd) and the pong (even); `u64::MAX` stops.
fn spin_pong(name: &str) -> Result<(), String> {
    let region = Region::open(name, 0)?;
    let seq = region.word(0);
    say("READY");
    let mut expect = 1u64;
    loop {
        let mut v = 0;
        let ok = spin_until(Instant::now() + PATIENCE, || {
            v = seq.load(Ordering::Acquire);
            v == expect || v == u64::MAX
        });
        if !ok {
            return Err("no ping".into());
        }
        if v == u64::MAX {
            return Ok(());
        }
        seq.store(expect + 1, Ordering::Release);
        expect += 2;
    }
}

#[cfg(unix)]
fn unix_pong(path: &str) -> Result<(), String> {
    let mut s = UnixStream::connect(path).map_err(|e| format!("connect {path}: {e}"))?;
    let _ = s.set_read_timeout(Some(PATIENCE));
    say("READY");
    let mut msg = [0u8; MESSAGE_BYTES];
    loop {
        match s.read_exact(&mut msg) {
            Ok(()) => s.write_all(&msg).map_err(|e| e.to_string())?,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Word 0: head (consumer), word 1: tail (producer), word 2: stop.
fn ring_sink(name: &str, slots: usize) -> Result<(), String> {
    let region = Region::open(name, slots * CHUNK)?;
    let (head, tail, stop) = (region.word(0), region.word(1), region.word(2));
    let mut dst = vec![0u8; CHUNK];
    let mut h = head.load(Ordering::Acquire);
    say("READY");
    loop {
        let ok = spin_until(Instant::now() + PATIENCE, || {
            tail.load(Ordering::Acquire) != h || stop.load(Ordering::Acquire) != 0
        });
        if !ok {
            return Err("ring stalled".into());
        }
        if tail.load(Ordering::Acquire) == h {
            return Ok(());
        }
        region.read((h as usize % slots) * CHUNK, &mut dst);
        std::hint::black_box(&mut dst);
        h += 1;
        head.store(h, Ordering::Release);
    }
}

#[cfg(unix)]
fn unix_sink(path: &str) -> Result<(), String> {
    let mut s = UnixStream::connect(path).map_err(|e| format!("connect {path}: {e}"))?;
    let _ = s.set_read_timeout(Some(PATIENCE));
    say("READY");
    let mut buf = vec![0u8; CHUNK];
    loop {
        let mut len = [0u8; 8];
        s.read_exact(&mut len).map_err(|e| e.to_string())?;
        let mut left = u64::from_le_bytes(len);
        if left == 0 {
            return Ok(());
        }
        while left > 0 {
            let want = left.min(CHUNK as u64) as usize;
            let n = s.read(&mut buf[..want]).map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("unexpected end of stream".into());
            }
            std::hint::black_box(&mut buf);
            left -= n as u64;
        }
        s.write_all(&[1]).map_err(|e| e.to_string())?;
    }
}

/// The reused buffers Writes are copied out to, most recently used first: as many as copies
/// run at once (about one per core), so a sink is warm in cache whichever device thread
/// copies next, however many devices there are.
struct SinkPool(Mutex<Vec<Vec<u8>>>);

impl SinkPool {
    fn take(&self) -> Vec<u8> {
        let popped = self.0.lock().unwrap_or_else(|p| p.into_inner()).pop();
        popped.unwrap_or_else(|| vec![0u8; CHUNK])
    }

    fn give(&self, sink: Vec<u8>) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(sink);
    }
}

static SINKS: SinkPool = SinkPool(Mutex::new(Vec::new()));

fn vdi_client(set: &str, devices: u32, copy: bool, trials: u32, idle_ms: u32) -> Result<(), String> {
    let mut vds = ClientVirtualDeviceSet::new();
    vds.create_ex(None, set, &VDConfig::request(devices, features::VDF_LIKE_PIPE))
        .map_err(|e| format!("CreateEx: {e}"))?;
    say("CREATED");
    let served = configure_and_serve(&vds, set, devices, copy, trials, idle_ms);
    if served.is_err() {
        let _ = vds.signal_abort();
    }
    let closed = vds.close();
    served?;
    closed.map_err(|e| format!("Close: {e}"))
}

fn configure_and_serve(
    vds: &ClientVirtualDeviceSet,
    set: &str,
    devices: u32,
    copy: bool,
    trials: u32,
    idle_ms: u32,
) -> Result<(), String> {
    vds.get_configuration(30_000)
        .map_err(|e| format!("GetConfiguration: {e}"))?;
    let devs = (0..devices)
        .map(|i| vds.open_device(&device_name(set, i)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("OpenDevice: {e}"))?;
    say("READY");
    std::thread::scope(|s| {
        let handles: Vec<_> = devs
            .iter()
            .map(|dev| {
                let idle = if dev.index() == 0 { trials } else { 0 };
                s.spawn(move || serve(dev, copy, idle, idle_ms))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("device thread panicked".into())))
            .collect::<Result<Vec<()>, String>>()
    })?;
    Ok(())
}

fn serve(dev: &ClientVirtualDevice, copy: bool, idle_trials: u32, idle_ms: u32) -> Result<(), String> {
    for _ in 0..idle_trials {
        let (cpu, wall) = (thread_cpu_time(), Instant::now());
        let got = dev.get_command(idle_ms);
        let (cpu, wall) = (thread_cpu_time() - cpu, wall.elapsed());
        if !matches!(got, Err(VdError::Timeout)) {
            return Err(format!("idle GetCommand returned {:?}, not VD_E_TIMEOUT", got.err()));
        }
        say(&format!("IDLE {} {}", cpu.as_nanos(), wall.as_nanos()));
    }
    loop {
        let cmd = match dev.get_command(INFINITE) {
            Ok(c) => c,
            Err(VdError::Close) => return Ok(()),
            Err(e) => return Err(format!("GetCommand: {e}")),
        };
        let code = match cmd.command() {
            Some(CommandCode::Write) => {
                if copy {
                    let mut sink = SINKS.take();
                    let data = cmd.buffer();
                    let n = data.len().min(sink.len());
                    sink[..n].copy_from_slice(&data[..n]);
                    std::hint::black_box(&mut sink);
                    SINKS.give(sink);
                }
                completion::ERROR_SUCCESS
            }
            Some(CommandCode::Flush) => completion::ERROR_SUCCESS,
            _ => completion::ERROR_NOT_SUPPORTED,
        };
        dev.complete_command(&cmd, code, cmd.size(), 0)
            .map_err(|e| format!("CompleteCommand: {e}"))?;
    }
}
