//! Round trip and stream throughput of vdisim across two processes, each against its bare
//! baselines in the same invocation (issue 7).
//!
//! - `round_trip/{vdi,spin,unix}`: one Write of 64 KiB (data untouched) from the server's
//!   send_command to get_completion seeing it, against a ping-pong on one atomic in shared
//!   memory and a UnixStream ping-pong of 24 bytes.
//! - `stream/{vdi_1dev,ring,unix,vdi_64dev}`: `stream_bytes()` (1 GiB by default) of 1 MiB
//!   chunks, the server filling each buffer (a copy from a source chunk) and the client copying
//!   it out to a reused buffer; against a bare 4 x 1 MiB shared-memory ring doing the same
//!   copies, a UnixStream carrying the same bytes, and the same VDI stream over 64 devices.
//!
//! The child process is `vdisim-bench-peer`; the server side runs here.

// The socket baselines are Unix only; what only they use is unused elsewhere.
#![cfg_attr(not(unix), allow(unused_imports))]

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use std::io::{Read, Write};
#[cfg(unix)]
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use vdisim::pump::{self, StreamSpec};
use vdisim::server::{ServerBuffer, ServerCommand, ServerVirtualDevice, ServerVirtualDeviceSet};
use vdisim::vdi::{completion, CommandCode};
use vdisim_benches::{
    env_or, source_chunk, spin_until, stream_bytes, unique_name, Peer, Region, CHUNK, MESSAGE_BYTES, ROUND_TRIP_BYTES,
    SCALE_BUFFERS, SCALE_DEVICES, STREAM_BUFFERS,
};

const PEER: &str = env!("CARGO_BIN_EXE_vdisim-bench-peer");
const STARTUP: Duration = Duration::from_secs(30);
/// get_completion timeout: far above any expected wait, so only a broken run hits it.
const WAIT_MS: u32 = 30_000;

/// Panics with context: a benchmark that cannot run must stop loudly, not measure nonsense.
fn must<T, E: std::fmt::Debug>(r: Result<T, E>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: {e:?}"),
    }
}

/// A configured set: the server here, the client in a `vdisim-bench-peer vdi-client` child.
struct VdiSession {
    peer: Peer,
    server: ServerVirtualDeviceSet,
    devices: Vec<ServerVirtualDevice>,
    /// Free buffers, per device.
    buffers: Vec<Vec<ServerBuffer>>,
}

impl VdiSession {
    /// `buffer_count` is BUFFERCOUNT: shared by all devices, split evenly here.
    fn start(devices: u32, buffer_count: u32, max_transfer: u32, behaviour: &str) -> VdiSession {
        let set = unique_name("vdi");
        let peer = must(
            Peer::spawn(PEER, &["vdi-client", &set, &devices.to_string(), behaviour]),
            "spawn client",
        );
        must(peer.expect("CREATED", STARTUP), "client CreateEx");
        let server = must(pump::open_when_created(&set, STARTUP), "server Open");
        let per_device = (buffer_count / devices).max(1);
        let spec = StreamSpec {
            max_transfer,
            depth: per_device,
            ..StreamSpec::new(devices, 0)
        };
        let devs = must(pump::configure(&server, &spec, true), "configure");
        let buffers = (0..devices)
            .map(|_| {
                (0..per_device)
                    .map(|_| must(server.allocate_buffer(max_transfer, 0), "AllocateBuffer"))
                    .collect()
            })
            .collect();
        must(peer.expect("READY", STARTUP), "client OpenDevice");
        VdiSession {
            peer,
            server,
            devices: devs,
            buffers,
        }
    }

    /// CloseDevice on every device, then both sides close normally.
    fn finish(mut self) {
        for d in &self.devices {
            must(d.close_device(), "CloseDevice");
        }
        must(self.peer.expect("DONE", STARTUP), "client Close");
        self.buffers.clear();
        must(self.server.close().result, "server Close");
        must(self.peer.finish(STARTUP), "client exit");
    }
}

/// Streams `bytes` through one device: fill a free buffer, send a Write, reuse the buffers
/// as completions come back; returns once every Write completed.
fn pump_device(dev: &ServerVirtualDevice, free: &mut Vec<ServerBuffer>, bytes: u64, src: &[u8]) {
    let mut offset = 0u64;
    let mut in_flight = 0usize;
    while offset < bytes || in_flight > 0 {
        while offset < bytes {
            let Some(mut buf) = free.pop() else { break };
            let n = (bytes - offset).min(buf.len() as u64) as usize;
            buf.as_mut_slice()[..n].copy_from_slice(&src[..n]);
            let sent = dev.send_command(ServerCommand {
                code: CommandCode::Write.code(),
                size: n as u32,
                position: offset,
                buffer: Some(buf),
            });
            must(sent.map_err(|r| r.error), "SendCommand");
            offset += n as u64;
            in_flight += 1;
        }
        let c = must(dev.get_completion(WAIT_MS), "GetCompletion");
        assert_eq!(c.completion.completion_code, completion::ERROR_SUCCESS);
        in_flight -= 1;
        free.extend(c.buffer);
    }
}

/// One stream of `total` bytes split evenly over the session's devices, one thread each.
fn vdi_stream(s: &mut VdiSession, total: u64, src: &[u8]) {
    let per_device = total / s.devices.len() as u64;
    std::thread::scope(|scope| {
        for (dev, free) in s.devices.iter().zip(s.buffers.iter_mut()) {
            scope.spawn(move || pump_device(dev, free, per_device, src));
        }
    });
}

/// A UnixStream to a freshly spawned peer in `mode`, over a socket in the temp directory.
#[cfg(unix)]
fn unix_peer(mode: &str) -> (Peer, UnixStream) {
    let path = std::env::temp_dir().join(format!("{}.sock", unique_name(mode)));
    let listener = must(UnixListener::bind(&path), "bind");
    must(listener.set_nonblocking(true), "nonblocking");
    let path_str = path.to_string_lossy().into_owned();
    let peer = must(Peer::spawn(PEER, &[mode, &path_str]), "spawn unix peer");
    let deadline = Instant::now() + STARTUP;
    let stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2))
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    let _ = std::fs::remove_file(&path);
    must(stream.set_nonblocking(false), "blocking");
    must(peer.expect("READY", STARTUP), "unix peer ready");
    (peer, stream)
}

/// Both ends of a one-device set in this process, configured as `VdiSession`'s.
fn one_thread_session() -> (
    ServerVirtualDevice,
    vdisim::ClientVirtualDevice,
    vdisim::ClientVirtualDeviceSet,
    ServerVirtualDeviceSet,
    Option<ServerBuffer>,
) {
    let set = unique_name("vdi1t");
    let name = set.clone();
    let client = std::thread::spawn(move || {
        let mut vds = vdisim::ClientVirtualDeviceSet::new();
        let request = vdisim::vdi::VDConfig::request(1, vdisim::vdi::features::VDF_LIKE_PIPE);
        must(vds.create_ex(None, &name, &request), "CreateEx");
        must(vds.get_configuration(WAIT_MS), "client GetConfiguration");
        let dev = must(vds.open_device(&name), "client OpenDevice");
        (vds, dev)
    });
    let server = must(pump::open_when_created(&set, STARTUP), "server Open");
    let spec = StreamSpec {
        max_transfer: ROUND_TRIP_BYTES,
        depth: 1,
        ..StreamSpec::new(1, 0)
    };
    let dev = must(pump::configure(&server, &spec, true), "configure").remove(0);
    let buf = must(server.allocate_buffer(ROUND_TRIP_BYTES, 0), "AllocateBuffer");
    let (vds, cdev) = client.join().expect("client setup thread");
    (dev, cdev, vds, server, Some(buf))
}

/// The round trip's command: a Write of [`ROUND_TRIP_BYTES`] whose data nobody touches.
fn send_round_trip_write(dev: &ServerVirtualDevice, buffer: Option<ServerBuffer>) {
    let sent = dev.send_command(ServerCommand {
        code: CommandCode::Write.code(),
        size: ROUND_TRIP_BYTES,
        position: 0,
        buffer,
    });
    must(sent.map_err(|r| r.error), "SendCommand");
}

fn round_trip(c: &mut Criterion) {
    let mut g = c.benchmark_group("round_trip");

    let mut vdi = VdiSession::start(1, 1, ROUND_TRIP_BYTES, "complete");
    g.bench_function("vdi", |b| {
        b.iter_custom(|iters| {
            let dev = &vdi.devices[0];
            let mut buf = vdi.buffers[0].pop().expect("one buffer");
            let t = Instant::now();
            for _ in 0..iters {
                send_round_trip_write(dev, Some(buf));
                let done = must(dev.get_completion(WAIT_MS), "GetCompletion");
                buf = done.buffer.expect("the Write's buffer comes back");
            }
            let elapsed = t.elapsed();
            vdi.buffers[0].push(buf);
            elapsed
        })
    });
    vdi.finish();

    // Diagnostic, not a target: the same calls made by one thread that plays both roles
    // (both ends mapped in this process), so no cache line crosses cores. What is left is
    // the software cost of the path; `vdi` minus this is what the transfers cost.
    let (dev, cdev, mut client_set, server, mut buf) = one_thread_session();
    g.bench_function("vdi_one_thread", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                send_round_trip_write(&dev, buf.take());
                let cmd = must(cdev.get_command(WAIT_MS), "GetCommand");
                must(cdev.complete_command(&cmd, 0, cmd.size(), 0), "CompleteCommand");
                let done = must(dev.get_completion(WAIT_MS), "GetCompletion");
                buf = done.buffer;
            }
            t.elapsed()
        })
    });
    must(dev.close_device(), "CloseDevice");
    assert_eq!(cdev.get_command(WAIT_MS).err(), Some(vdisim::vdi::VdError::Close));
    must(client_set.close(), "client Close");
    drop(buf);
    must(server.close().result, "server Close");

    let name = unique_name("spin");
    let region = must(Region::create(&name, 0), "segment");
    let mut peer = must(Peer::spawn(PEER, &["spin-pong", &name]), "spawn spin-pong");
    must(peer.expect("READY", STARTUP), "spin-pong ready");
    let seq = region.word(0);
    let mut next = 1u64;
    g.bench_function("spin", |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                seq.store(next, Ordering::Release);
                let ok = spin_until(Instant::now() + STARTUP, || seq.load(Ordering::Acquire) == next + 1);
                assert!(ok, "spin-pong peer stopped answering");
                next += 2;
            }
            t.elapsed()
        })
    });
    seq.store(u64::MAX, Ordering::Release);
    must(peer.finish(STARTUP), "spin-pong exit");
    drop(region);

    // The socket baseline exists on Unix only (no Unix domain sockets in std on Windows).
    #[cfg(unix)]
    {
        let (mut peer, mut stream) = unix_peer("unix-pong");
        g.bench_function("unix", |b| {
            b.iter_custom(|iters| {
                let mut msg = [7u8; MESSAGE_BYTES];
                let t = Instant::now();
                for _ in 0..iters {
                    must(stream.write_all(&msg), "write");
                    must(stream.read_exact(&mut msg), "read");
                }
                t.elapsed()
            })
        });
        drop(stream);
        must(peer.finish(STARTUP), "unix-pong exit");
    }
    g.finish();
}

/// `stream/<id>`: `total` bytes through `session` per iteration; the session ends after.
fn vdi_stream_bench(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: &str,
    mut session: VdiSession,
    total: u64,
    src: &[u8],
) {
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let t = Instant::now();
            for _ in 0..iters {
                vdi_stream(&mut session, total, src);
            }
            t.elapsed()
        })
    });
    session.finish();
}

/// The bare two-process ring of `slots` x 1 MiB doing the stream's copies (`stream/ring`).
fn bare_ring(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: &str,
    slots: usize,
    total: u64,
    src: &[u8],
) {
    let name = unique_name("ring");
    let region = must(Region::create(&name, slots * CHUNK), "segment");
    let mut peer = must(
        Peer::spawn(PEER, &["ring-sink", &name, &slots.to_string()]),
        "spawn ring-sink",
    );
    must(peer.expect("READY", STARTUP), "ring-sink ready");
    let (head, tail, stop) = (region.word(0), region.word(1), region.word(2));
    let mut t_idx = 0u64;
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let chunks = total / CHUNK as u64;
            let t = Instant::now();
            for _ in 0..iters * chunks {
                let free = spin_until(Instant::now() + STARTUP, || {
                    t_idx - head.load(Ordering::Acquire) < slots as u64
                });
                assert!(free, "ring-sink stopped consuming");
                region.write((t_idx as usize % slots) * CHUNK, src);
                t_idx += 1;
                tail.store(t_idx, Ordering::Release);
            }
            let drained = spin_until(Instant::now() + STARTUP, || head.load(Ordering::Acquire) == t_idx);
            assert!(drained, "ring-sink stopped consuming");
            t.elapsed()
        })
    });
    stop.store(1, Ordering::Release);
    must(peer.finish(STARTUP), "ring-sink exit");
    drop(region);
}

fn stream(c: &mut Criterion) {
    let total = stream_bytes();
    let src = source_chunk();
    let mut g = c.benchmark_group("stream");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Bytes(total));

    let one_buffers = env_or("VDISIM_BENCH_STREAM_BUFFERS", STREAM_BUFFERS);
    vdi_stream_bench(
        &mut g,
        "vdi_1dev",
        VdiSession::start(1, one_buffers, CHUNK as u32, "copy"),
        total,
        &src,
    );

    bare_ring(&mut g, "ring", STREAM_BUFFERS as usize, total, &src);

    #[cfg(unix)]
    {
        let (mut peer, mut sock) = unix_peer("unix-sink");
        let mut staging = vec![0u8; CHUNK];
        g.bench_function("unix", |b| {
            b.iter_custom(|iters| {
                let t = Instant::now();
                for _ in 0..iters {
                    must(sock.write_all(&total.to_le_bytes()), "write length");
                    let mut left = total;
                    while left > 0 {
                        let n = left.min(CHUNK as u64) as usize;
                        staging[..n].copy_from_slice(&src[..n]);
                        must(sock.write_all(&staging[..n]), "write");
                        left -= n as u64;
                    }
                    let mut ack = [0u8; 1];
                    must(sock.read_exact(&mut ack), "ack");
                }
                t.elapsed()
            })
        });
        must(sock.write_all(&0u64.to_le_bytes()), "write end");
        must(peer.finish(STARTUP), "unix-sink exit");
    }

    let (devices, buffers) = (
        env_or("VDISIM_BENCH_SCALE_DEVICES", SCALE_DEVICES),
        env_or("VDISIM_BENCH_SCALE_BUFFERS", SCALE_BUFFERS),
    );
    let many = VdiSession::start(devices, buffers, CHUNK as u32, "copy");
    vdi_stream_bench(&mut g, "vdi_64dev", many, total, &src);
    // Diagnostic, not a target: the bare ring with as many 1 MiB slots as the 64-device run
    // has buffers. Its ratio to `ring` is what the larger working set alone costs.
    bare_ring(&mut g, "ring_64slots", SCALE_BUFFERS as usize, total, &src);
    g.finish();
}

criterion_group!(benches, round_trip, stream);
criterion_main!(benches);
