//! A hostile peer as a little program (fuzz target `shm_peer`, and the replay of its crash
//! inputs in `cargo test`): arbitrary values written into a real mapped set (header fields,
//! device slots, ring indices, command and completion records) through its atomics,
//! interleaved with the honest client's and server's calls. Whatever the bytes, the honest
//! sides must answer with VDI codes: no panic, no out-of-bounds access, no hang.
//!
//! One opcode byte per operation, followed by its operands (missing operands read as 0).
//! Every wait has timeout 0.

use std::sync::atomic::Ordering;
use std::time::Duration;
use vdisim::protocol::server::ConfigParams;
use vdisim::reference_client::device_name;
use vdisim::server::ServerCommand;
use vdisim::shm::{self, layout::SetHeader};
use vdisim::vdi::{features, CommandCode, VDConfig};
use vdisim::{ClientVirtualDevice, ClientVirtualDeviceSet, Command, ServerVirtualDevice, ServerVirtualDeviceSet};

struct Input<'a> {
    data: &'a [u8],
}

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }
    fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | (u64::from(self.u32()) << 32)
    }
    /// A "nasty" 64-bit value: small, near a boundary, or raw.
    fn value(&mut self) -> u64 {
        match self.byte() % 6 {
            0 => u64::from(self.byte()),
            1 => u64::MAX - u64::from(self.byte()),
            2 => 128 + u64::from(self.byte() % 4),
            3 => 1 << (self.byte() % 64),
            4 => u64::from(u32::MAX) - u64::from(self.byte()),
            _ => self.u64(),
        }
    }
}

static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn header_field(h: &SetHeader, which: u8, v: u64) {
    let v32 = v as u32;
    match which % 16 {
        0 => h.phase.store(v32, Ordering::Release),
        1 => h.abort.store(v32, Ordering::Release),
        2 => h.devices_published.store(v32, Ordering::Release),
        3 => h.answer[(v as usize >> 40) % 11].store(v32, Ordering::Release),
        4 => h.request[(v as usize >> 40) % 11].store(v32, Ordering::Release),
        5 => h.buffer_generation.store(v, Ordering::Release),
        6 => h.buffer_area_size.store(v, Ordering::Release),
        7 => h.version.store(v, Ordering::Release),
        8 => h.magic.store(v, Ordering::Release),
        9 => h.server.pid.store(v32, Ordering::Release),
        10 => h.server.start.store(v, Ordering::Release),
        11 => h.client.pid.store(v32, Ordering::Release),
        12 => h.header_size.store(v, Ordering::Release),
        13 => h.abort_reason.store(v32, Ordering::Release),
        14 => h.reclaimed.store(v32, Ordering::Release),
        _ => h.set_wake.store(v32, Ordering::Release),
    }
}

fn device_field(h: &SetHeader, dev: usize, which: u8, slot: usize, v: u64) {
    let d = &h.devices[dev % h.devices.len()];
    let s = slot % d.commands.slots.len();
    let v32 = v as u32;
    match which % 18 {
        0 => d.commands.head.0.store(v, Ordering::Release),
        1 => d.commands.tail.0.store(v, Ordering::Release),
        2 => d.completions.head.0.store(v, Ordering::Release),
        3 => d.completions.tail.0.store(v, Ordering::Release),
        4 => d.commands.slots[s].id.store(v, Ordering::Release),
        5 => d.commands.slots[s].code.store(v32, Ordering::Release),
        6 => d.commands.slots[s].size.store(v32, Ordering::Release),
        7 => d.commands.slots[s].buffer_offset.store(v, Ordering::Release),
        8 => d.commands.slots[s].position.store(v, Ordering::Release),
        9 => d.completions.slots[s].id.store(v, Ordering::Release),
        10 => d.completions.slots[s].code.store(v32, Ordering::Release),
        11 => d.completions.slots[s].bytes.store(v32, Ordering::Release),
        12 => d.name_len.store(v32, Ordering::Release),
        13 => d.name[s % d.name.len()].store(v as u8, Ordering::Release),
        14 => d.client_opened.store(v32, Ordering::Release),
        15 => d.commands.waiters.store(v32, Ordering::Release),
        // The words that publish a record (ring layout 2).
        16 => d.commands.slots[s].seq.store(v, Ordering::Release),
        _ => d.completions.slots[s].seq.store(v, Ordering::Release),
    }
}

/// Runs one hostile program (see the module doc). Never panics on any input unless the
/// implementation does.
pub fn run(data: &[u8]) {
    let mut input = Input { data };
    let set = format!("fz-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let devices = u32::from(input.byte() % 3) + 1;
    let mut client = ClientVirtualDeviceSet::new();
    if client.create_ex(None, &set, &VDConfig::request(devices, 0)).is_err() {
        return;
    }
    let Ok(header) = shm::open_header(shm::DEFAULT_INSTANCE, &set, Duration::ZERO) else {
        return;
    };
    let mut server: Option<ServerVirtualDeviceSet> = None;
    let mut s_devices: Vec<ServerVirtualDevice> = Vec::new();
    let mut c_devices: Vec<Option<ClientVirtualDevice>> = vec![None, None, None];
    let mut commands: Vec<(usize, Command)> = Vec::new();
    let mut ops = 0;
    while !input.data.is_empty() && ops < 64 {
        ops += 1;
        let op = input.byte();
        let k = usize::from(input.byte() % 3);
        let h = header.header();
        match op % 17 {
            0 => {
                // A header whose version the hostile side zeroed makes Open wait (legitimately)
                // up to 500 ms for its creator: skip that, it only slows the campaign down.
                if server.is_none() && h.version.load(Ordering::Acquire) == vdisim::shm::layout::LAYOUT_VERSION {
                    server = ServerVirtualDeviceSet::open(None, &set).ok();
                }
            }
            1 => {
                if let Some(s) = &server {
                    let _ = s.get_configuration();
                    let _ = s.begin_configuration(ConfigParams {
                        features: features::VDF_WRITE_MEDIA,
                        alignment: 0,
                        block_size: 4096,
                        max_transfer_size: 65536,
                        timeout_ms: 0,
                    });
                    let _ = s.request_buffers(65536, 0, 2);
                    let _ = s.end_configuration();
                }
            }
            2 => {
                if let Some(s) = &server {
                    if let Ok(d) = s.open_device(&device_name(&set, s_devices.len() as u32)) {
                        s_devices.push(d);
                    }
                }
            }
            3 | 4 => {
                if let (Some(s), Some(d)) = (&server, s_devices.get(k)) {
                    let (code, buffer) = if op % 17 == 3 {
                        (CommandCode::Write.code(), s.allocate_buffer(4096, 0).ok())
                    } else {
                        (u32::from(input.byte() % 20), None)
                    };
                    let size = buffer.as_ref().map_or(0, |b| b.len() as u32);
                    let _ = d.send_command(ServerCommand {
                        code,
                        size,
                        position: 0,
                        buffer,
                    });
                }
            }
            5 => {
                if let Some(d) = s_devices.get(k) {
                    let _ = d.close_device();
                }
            }
            6 => {
                if let Some(d) = s_devices.get(k) {
                    let _ = d.get_completion(0);
                }
            }
            7 => {
                let _ = client.get_configuration(0);
            }
            8 => {
                // Only when the name is published as expected: otherwise OpenDevice would
                // (legitimately) wait up to its 2 s for the server.
                let name = device_name(&set, k as u32);
                let published = h.devices_published.load(Ordering::Acquire) as usize;
                let slot_name = h.devices.get(k).and_then(|d| d.load_name());
                if published > k && slot_name.as_deref() == Some(name.as_str()) {
                    if let Ok(d) = client.open_device(&name) {
                        if let Some(slot) = c_devices.get_mut(d.index()) {
                            *slot = Some(d);
                        }
                    }
                }
            }
            9 => {
                if let Some(Some(d)) = c_devices.get(k) {
                    if let Ok(c) = d.get_command(0) {
                        let _ = c.buffer().len();
                        commands.push((k, c));
                    }
                }
            }
            10 => {
                if !commands.is_empty() {
                    let (dev, mut c) = commands.remove(usize::from(input.byte()) % commands.len());
                    let code = u32::from(input.byte()) * 7;
                    let bytes = input.u32() % (c.size().saturating_add(2));
                    if let Some(b) = c.buffer_mut().first_mut() {
                        *b = 0x5a;
                    }
                    if let Some(Some(d)) = c_devices.get(dev) {
                        let _ = d.complete_command(&c, code, bytes, 0);
                    }
                }
            }
            11..=13 => {
                let which = input.byte();
                let v = input.value();
                header_field(h, which, v);
            }
            14 | 15 => {
                let which = input.byte();
                let slot = usize::from(input.byte());
                let v = input.value();
                device_field(h, k, which, slot, v);
            }
            _ => match input.byte() % 4 {
                0 => {
                    let _ = client.signal_abort();
                }
                1 => {
                    if let Some(s) = &server {
                        let _ = s.signal_abort();
                    }
                }
                2 => {
                    if let Some(s) = &server {
                        let _ = s.close();
                    }
                }
                _ => {
                    let _ = client.close();
                }
            },
        }
    }
    drop(commands);
    drop(c_devices);
    let _ = client.close();
    drop(s_devices);
    if let Some(s) = server.take() {
        let _ = s.close();
    }
    drop(header);
    // Whatever the hostile writes did to the names, leave nothing behind.
    let prefix = format!("vdisim-{}-{set}", shm::DEFAULT_INSTANCE);
    if let Ok(dir) = std::fs::read_dir("/dev/shm") {
        for e in dir.flatten() {
            let n = e.file_name().to_string_lossy().to_string();
            if n.starts_with(&prefix) {
                shm::unlink(&format!("/{n}"));
            }
        }
    }
}
