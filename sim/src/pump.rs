//! A minimal server-side data pump over the server API: streams a deterministic pattern out
//! through Write commands, or reads one back through Read commands and verifies it.
//!
//! Used by the two-process tests of the core, the benchmarks and the test peer; the engine
//! (BACKUP/RESTORE of real database files) lives in [`crate::engine`].

use crate::protocol::server::ConfigParams;
use crate::reference_client::device_name;
use crate::server::{ServerBuffer, ServerCommand, ServerVirtualDevice, ServerVirtualDeviceSet};
use crate::vdi::{completion, features, CommandCode, VdError, VdResult};
use std::time::{Duration, Instant};

/// Shape of a pumped stream.
#[derive(Debug, Clone, Copy)]
pub struct StreamSpec {
    pub devices: u32,
    pub bytes_per_device: u64,
    pub block_size: u32,
    pub max_transfer: u32,
    /// Commands in flight per device (each with its own buffer).
    pub depth: u32,
    /// get_completion timeout per wait, milliseconds.
    pub timeout_ms: u32,
}

impl StreamSpec {
    pub fn new(devices: u32, bytes_per_device: u64) -> StreamSpec {
        StreamSpec {
            devices,
            bytes_per_device,
            block_size: 65536,
            max_transfer: 1 << 20,
            depth: 2,
            timeout_ms: 10_000,
        }
    }
}

/// The byte at `offset` of device `device`'s stream.
pub fn pattern_byte(device: u32, offset: u64) -> u8 {
    let x = offset.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (u64::from(device) << 56) ^ (offset >> 13);
    (x >> 56) as u8 ^ (offset as u8)
}

/// Fills `out` with the stream of `device` starting at `offset`.
pub fn fill_pattern(device: u32, offset: u64, out: &mut [u8]) {
    for (i, b) in out.iter_mut().enumerate() {
        *b = pattern_byte(device, offset + i as u64);
    }
}

/// First offset where `data` differs from the pattern, if any.
pub fn check_pattern(device: u32, offset: u64, data: &[u8]) -> Option<u64> {
    data.iter()
        .enumerate()
        .find(|(i, b)| **b != pattern_byte(device, offset + *i as u64))
        .map(|(i, _)| offset + i as u64)
}

/// Opens a set as the server, retrying while the client has not created it yet.
pub fn open_when_created(set: &str, wait: Duration) -> VdResult<ServerVirtualDeviceSet> {
    let deadline = Instant::now() + wait;
    loop {
        match ServerVirtualDeviceSet::open(None, set) {
            Err(VdError::Invalid) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            other => return other,
        }
    }
}

/// Configures the set for a backup (`write = true`) or restore and opens every device under
/// the reference client's names.
pub fn configure(
    server: &ServerVirtualDeviceSet,
    spec: &StreamSpec,
    write: bool,
) -> VdResult<Vec<ServerVirtualDevice>> {
    let request = server.get_configuration()?;
    if request.deviceCount != spec.devices {
        server.signal_abort()?;
        return Err(VdError::Invalid);
    }
    let media = if write {
        features::VDF_WRITE_MEDIA
    } else {
        features::VDF_READ_MEDIA
    };
    server.begin_configuration(ConfigParams {
        features: media,
        alignment: 0,
        block_size: spec.block_size,
        max_transfer_size: spec.max_transfer,
        timeout_ms: 10_000,
    })?;
    server.request_buffers(spec.max_transfer, 0, spec.depth * spec.devices)?;
    server.end_configuration()?;
    (0..spec.devices)
        .map(|i| server.open_device(&device_name(server.name(), i)))
        .collect()
}

fn expect_success(c: &crate::server::ServerCompletion, size: u32) -> VdResult<()> {
    if c.completion.completion_code != completion::ERROR_SUCCESS || c.completion.bytes_transferred != size {
        return Err(VdError::Unexpected);
    }
    Ok(())
}

/// Streams the pattern out of every device in parallel (one thread per device, like SQL
/// Server), then Flush and CloseDevice on each.
pub fn send_stream(
    server: &ServerVirtualDeviceSet,
    devices: &[ServerVirtualDevice],
    spec: &StreamSpec,
) -> VdResult<()> {
    std::thread::scope(|s| {
        let handles: Vec<_> = devices
            .iter()
            .map(|dev| s.spawn(move || send_device(server, dev, spec)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Err(VdError::Unexpected)))
            .collect::<VdResult<Vec<()>>>()
    })?;
    Ok(())
}

fn send_device(server: &ServerVirtualDeviceSet, dev: &ServerVirtualDevice, spec: &StreamSpec) -> VdResult<()> {
    let device = dev.index() as u32;
    let mut free: Vec<ServerBuffer> = (0..spec.depth)
        .map(|_| server.allocate_buffer(spec.max_transfer, 0))
        .collect::<VdResult<_>>()?;
    let mut offset = 0u64;
    let mut in_flight = 0u32;
    while offset < spec.bytes_per_device || in_flight > 0 {
        while offset < spec.bytes_per_device {
            let Some(mut buf) = free.pop() else { break };
            let n = (spec.bytes_per_device - offset).min(u64::from(spec.max_transfer)) as u32;
            fill_pattern(device, offset, &mut buf.as_mut_slice()[..n as usize]);
            dev.send_command(ServerCommand {
                code: CommandCode::Write.code(),
                size: n,
                position: offset,
                buffer: Some(buf),
            })
            .map_err(|r| r.error)?;
            offset += u64::from(n);
            in_flight += 1;
        }
        let c = dev.get_completion(spec.timeout_ms)?;
        in_flight -= 1;
        let size = c.buffer.as_ref().map_or(0, |_| c.completion.bytes_transferred);
        expect_success(&c, size)?;
        free.extend(c.buffer);
    }
    run_simple(dev, CommandCode::Flush, spec.timeout_ms)?;
    dev.close_device()
}

/// Sends a buffer-less command and waits for its completion code.
pub fn run_simple(dev: &ServerVirtualDevice, code: CommandCode, timeout_ms: u32) -> VdResult<u32> {
    dev.send_command(ServerCommand {
        code: code.code(),
        size: 0,
        position: 0,
        buffer: None,
    })
    .map_err(|r| r.error)?;
    let c = dev.get_completion(timeout_ms)?;
    if code == CommandCode::Flush && c.completion.completion_code != completion::ERROR_SUCCESS {
        return Err(VdError::Unexpected);
    }
    Ok(c.completion.completion_code)
}

/// Reads every device's stream back until EOF, in parallel, verifying the pattern and the
/// length. Returns the bytes read per device.
pub fn receive_stream(
    server: &ServerVirtualDeviceSet,
    devices: &[ServerVirtualDevice],
    spec: &StreamSpec,
) -> Result<Vec<u64>, String> {
    std::thread::scope(|s| {
        let handles: Vec<_> = devices
            .iter()
            .map(|dev| s.spawn(move || receive_device(server, dev, spec)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Err("device thread panicked".into())))
            .collect()
    })
}

fn receive_device(
    server: &ServerVirtualDeviceSet,
    dev: &ServerVirtualDevice,
    spec: &StreamSpec,
) -> Result<u64, String> {
    let device = dev.index() as u32;
    let err = |e: VdError| format!("device {device}: {e}");
    let mut free: Vec<ServerBuffer> = (0..spec.depth)
        .map(|_| server.allocate_buffer(spec.max_transfer, 0))
        .collect::<VdResult<_>>()
        .map_err(err)?;
    // The client serves Reads in command order, so each id maps to the next stream offset.
    let mut pending: std::collections::VecDeque<(u64, u64)> = Default::default();
    let mut next_offset = 0u64;
    let mut received = 0u64;
    let mut eof = false;
    loop {
        while let Some(buf) = if eof { None } else { free.pop() } {
            let id = dev
                .send_command(ServerCommand {
                    code: CommandCode::Read.code(),
                    size: spec.max_transfer,
                    position: next_offset,
                    buffer: Some(buf),
                })
                .map_err(|r| err(r.error))?;
            pending.push_back((id, next_offset));
            next_offset += u64::from(spec.max_transfer);
        }
        if pending.is_empty() {
            break;
        }
        let c = dev.get_completion(spec.timeout_ms).map_err(err)?;
        let Some(pos) = pending.iter().position(|(id, _)| *id == c.completion.id) else {
            return Err(format!(
                "device {device}: completion for unknown command {}",
                c.completion.id
            ));
        };
        let (_, offset) = pending.remove(pos).unwrap_or_default();
        let code = c.completion.completion_code;
        let n = c.completion.bytes_transferred as usize;
        if let Some(buf) = c.buffer {
            if code == completion::ERROR_SUCCESS || completion::is_end_of_data(code) {
                if let Some(bad) = check_pattern(device, offset, &buf.as_slice()[..n]) {
                    return Err(format!("device {device}: byte {bad} differs"));
                }
                received += n as u64;
            }
            free.push(buf);
        }
        match code {
            completion::ERROR_SUCCESS => {}
            c if completion::is_end_of_data(c) => eof = true,
            // Reads queued behind the EOF are failed by the IO-ERROR rule (§3.5).
            completion::ERROR_IO_DEVICE if eof => {}
            other => return Err(format!("device {device}: Read completed with {other}")),
        }
    }
    if received != spec.bytes_per_device {
        return Err(format!(
            "device {device}: read {received} bytes, expected {}",
            spec.bytes_per_device
        ));
    }
    dev.close_device().map_err(err)?;
    Ok(received)
}
