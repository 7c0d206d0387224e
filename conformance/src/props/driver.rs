//! Executing steps against real implementations: a [`Driver`] turns each [`Step`] into the
//! VDI call and reports the [`Outcome`].
//!
//! [`Pair`] drives the built-in client library in this process, and a server end that is
//! either the built-in server in this process ([`LocalServer`]: both roles in one thread over
//! real shared memory, every wait with timeout 0) or a peer process speaking the
//! `vdisim-peer script` protocol ([`super::remote::RemoteServer`]).

use super::step::{DeviceName, Outcome, Step};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use vdisim::protocol::server::ConfigParams;
use vdisim::reference_client::device_name;
use vdisim::server::ServerCommand;
use vdisim::shm::{self, HeaderMapping};
use vdisim::vdi::{features, CommandCode, VDConfig, VdError};
use vdisim::{ClientVirtualDevice, ClientVirtualDeviceSet, Command, ServerVirtualDevice, ServerVirtualDeviceSet};

/// Something that executes steps: the built-in pair, a peer process, a seeded defect.
pub trait Driver {
    /// e.g. `builtin`, `exec:vdisim-peer script`, `mutant:close-ignores-open-devices`.
    fn name(&self) -> String;
    fn exec(&mut self, step: &Step) -> Outcome;
    /// Ends the case and releases everything. Returns the names of shared-memory segments
    /// the implementation left behind (which this then removes).
    fn finish(&mut self) -> Vec<String>;
}

/// A fresh set name for one case, unique across processes and runs.
pub fn fresh_set_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "props-{}-{}-{:x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        nanos
    )
}

/// The name the scenarios use for an unknown device.
pub fn unknown_device_name(set: &str) -> String {
    format!("{set}_unknown")
}

/// Segments in /dev/shm that belong to `set` (header and buffer areas).
pub fn segments_of(set: &str) -> Vec<String> {
    let prefix = shm::header_segment_name(shm::DEFAULT_INSTANCE, set);
    let prefix = prefix.trim_start_matches('/');
    let Ok(dir) = std::fs::read_dir("/dev/shm") else {
        return Vec::new();
    };
    let mut found: Vec<String> = dir
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n == prefix || n.starts_with(&format!("{prefix}.buf")))
        .collect();
    found.sort();
    found
}

/// Removes whatever `set` left in /dev/shm and returns what it removed.
pub fn sweep(set: &str) -> Vec<String> {
    let left = segments_of(set);
    for n in &left {
        shm::unlink(&format!("/{n}"));
    }
    left
}

/// Makes a liveness token in the header stale: the process it names is "dead" from then on
/// (the pid is ours, the start time is not, which is how a reused pid looks).
fn kill_token(words: &vdisim::shm::layout::LivenessWords) {
    words.start.fetch_add(1, Ordering::AcqRel);
}

/// The built-in client library, driven from this process.
pub struct LocalClient {
    set: String,
    vds: ClientVirtualDeviceSet,
    devices: Vec<Option<ClientVirtualDevice>>,
    delivered: Vec<Vec<Command>>,
    completed: Vec<Vec<Command>>,
    header: Option<HeaderMapping>,
    dead: bool,
}

const NO_HANDLE: &str = "NO-HANDLE";

impl LocalClient {
    pub fn new(set: &str) -> LocalClient {
        LocalClient {
            set: set.to_string(),
            vds: ClientVirtualDeviceSet::new(),
            devices: Vec::new(),
            delivered: Vec::new(),
            completed: Vec::new(),
            header: None,
            dead: false,
        }
    }

    fn grow(&mut self, n: usize) {
        while self.devices.len() < n {
            self.devices.push(None);
            self.delivered.push(Vec::new());
            self.completed.push(Vec::new());
        }
    }

    fn device(&self, i: usize) -> Option<&ClientVirtualDevice> {
        self.devices.get(i).and_then(Option::as_ref)
    }

    pub fn exec(&mut self, step: &Step) -> Outcome {
        use Step::*;
        if self.dead {
            return Outcome::code("DEAD");
        }
        match step {
            CCreate {
                devices,
                request_complete,
            } => {
                let f = if *request_complete {
                    features::VDF_REQUEST_COMPLETE
                } else {
                    0
                };
                let r = self.vds.create_ex(None, &self.set, &VDConfig::request(*devices, f));
                if r.is_ok() && self.header.is_none() {
                    self.header = shm::open_header(shm::DEFAULT_INSTANCE, &self.set, Duration::ZERO).ok();
                }
                Outcome::of(&r)
            }
            CGetConfiguration => Outcome::of(&self.vds.get_configuration(0)),
            COpenDevice { dev } => {
                let name = match dev {
                    Some(i) => device_name(&self.set, *i as u32),
                    None => unknown_device_name(&self.set),
                };
                match self.vds.open_device(&name) {
                    Ok(d) => {
                        let i = d.index();
                        self.grow(i + 1);
                        self.devices[i] = Some(d);
                        Outcome::ok()
                    }
                    Err(e) => Outcome::err(e),
                }
            }
            CGetCommand { dev } => {
                let Some(d) = self.device(*dev) else {
                    return Outcome::code(NO_HANDLE);
                };
                match d.get_command(0) {
                    Ok(cmd) => {
                        let out = Outcome {
                            command: Some(cmd.code()),
                            size: Some(cmd.size()),
                            position: Some(cmd.position()),
                            ..Outcome::ok()
                        };
                        self.delivered[*dev].push(cmd);
                        out
                    }
                    Err(e) => Outcome::err(e),
                }
            }
            CComplete {
                dev,
                pick,
                code,
                bytes,
                position,
            } => {
                let Some(d) = self.device(*dev) else {
                    return Outcome::code(NO_HANDLE);
                };
                let list = &self.delivered[*dev];
                if list.is_empty() {
                    return Outcome::code(NO_HANDLE);
                }
                let k = pick % list.len();
                let cmd = &list[k];
                let r = d.complete_command(cmd, *code, bytes.of(cmd.size()), *position);
                if r.is_ok() {
                    let c = self.delivered[*dev].remove(k);
                    self.completed[*dev].push(c);
                }
                Outcome::of(&r)
            }
            CCompleteStale { dev } => {
                let (Some(d), Some(cmd)) = (self.device(*dev), self.completed.get(*dev).and_then(|c| c.last())) else {
                    return Outcome::code(NO_HANDLE);
                };
                Outcome::of(&d.complete_command(cmd, 0, 0, 0))
            }
            CCompleteWrongDevice { from, to } => {
                let (Some(d), Some(cmd)) = (self.device(*to), self.delivered.get(*from).and_then(|c| c.first())) else {
                    return Outcome::code(NO_HANDLE);
                };
                Outcome::of(&d.complete_command(cmd, 0, 0, 0))
            }
            CSignalAbort => Outcome::of(&self.vds.signal_abort()),
            CClose => Outcome::of(&self.vds.close()),
            CDies => {
                if let Some(h) = &self.header {
                    kill_token(&h.header().client);
                }
                self.dead = true;
                Outcome::ok()
            }
            _ => Outcome::code("NOT-A-CLIENT-STEP"),
        }
    }

    /// Drops every handle (a set still open is closed by its Drop, as Release does).
    pub fn release(&mut self) {
        self.delivered.clear();
        self.completed.clear();
        self.devices.clear();
        self.vds = ClientVirtualDeviceSet::new();
        self.header = None;
    }
}

/// The server end of a [`Pair`].
pub trait ServerEnd {
    fn describe(&self) -> String;
    fn exec(&mut self, step: &Step) -> Outcome;
    /// Drops every handle (a dead or remote server: stops it).
    fn release(&mut self);
}

/// The built-in server, driven from this process.
pub struct LocalServer {
    set: String,
    server: Option<ServerVirtualDeviceSet>,
    devices: Vec<ServerVirtualDevice>,
    header: Option<HeaderMapping>,
    dead: bool,
}

impl LocalServer {
    pub fn new(set: &str) -> LocalServer {
        LocalServer {
            set: set.to_string(),
            server: None,
            devices: Vec::new(),
            header: None,
            dead: false,
        }
    }
}

/// Executes a server step on the built-in server API. Shared by [`LocalServer`] and the
/// `vdisim replay` peer mode.
pub fn exec_server(
    set: &str,
    server: &mut Option<ServerVirtualDeviceSet>,
    devices: &mut Vec<ServerVirtualDevice>,
    step: &Step,
) -> Outcome {
    use Step::*;
    if let SOpen = step {
        return match ServerVirtualDeviceSet::open(None, set) {
            Ok(s) => {
                *server = Some(s);
                Outcome::ok()
            }
            Err(e) => Outcome::err(e),
        };
    }
    let Some(s) = server.as_ref() else {
        return Outcome::code(NO_HANDLE);
    };
    let dev = |i: usize| devices.get(i);
    match step {
        SGetConfiguration => Outcome::of(&s.get_configuration()),
        SBeginConfiguration { config } => Outcome::of(&s.begin_configuration(ConfigParams {
            features: config.features,
            alignment: 0,
            block_size: config.block_size,
            max_transfer_size: config.max_transfer_size,
            timeout_ms: 1000,
        })),
        SRequestBuffers { size, count } => Outcome::of(&s.request_buffers(*size, 0, *count)),
        SEndConfiguration => Outcome::of(&s.end_configuration()),
        SOpenDevice { name } => {
            let n = match name {
                DeviceName::Next => device_name(set, devices.len() as u32),
                DeviceName::Duplicate => device_name(set, 0),
                DeviceName::Bad => "bad/name".to_string(),
            };
            match s.open_device(&n) {
                Ok(d) => {
                    devices.push(d);
                    Outcome::ok()
                }
                Err(e) => Outcome::err(e),
            }
        }
        SSend {
            dev: i,
            code,
            size,
            position,
        } => {
            let Some(d) = dev(*i) else {
                return Outcome::code(NO_HANDLE);
            };
            let buffer = if CommandCode::from_code(*code).is_some_and(|c| c.has_buffer()) {
                match s.allocate_buffer(*size, 0) {
                    Ok(b) => Some(b),
                    Err(e) => return Outcome::code(&format!("AllocateBuffer:{}", e.name())),
                }
            } else {
                None
            };
            send(
                d,
                ServerCommand {
                    code: *code,
                    size: *size,
                    position: *position,
                    buffer,
                },
            )
        }
        SFlood { dev: i } => {
            let Some(d) = dev(*i) else {
                return Outcome::code(NO_HANDLE);
            };
            let mut sent = 0;
            loop {
                let o = send(
                    d,
                    ServerCommand {
                        code: CommandCode::Flush.code(),
                        size: 0,
                        position: 0,
                        buffer: None,
                    },
                );
                if o.result != "NOERROR" || sent > 1000 {
                    return Outcome { sent: Some(sent), ..o };
                }
                sent += 1;
            }
        }
        SGetCompletion { dev: i } => {
            let Some(d) = dev(*i) else {
                return Outcome::code(NO_HANDLE);
            };
            match d.get_completion(0) {
                Ok(c) => Outcome {
                    command: Some(c.completion.command),
                    completion: Some(c.completion.completion_code),
                    bytes: Some(c.completion.bytes_transferred),
                    position: Some(c.completion.position),
                    ..Outcome::ok()
                },
                Err(e) => Outcome::err(e),
            }
        }
        SCloseDevice { dev: i } => match dev(*i) {
            Some(d) => Outcome::of(&d.close_device()),
            None => Outcome::code(NO_HANDLE),
        },
        SSignalAbort => Outcome::of(&s.signal_abort()),
        SClose => {
            let c = s.close();
            Outcome {
                aborted: Some(c.aborted.len() as u32),
                ..Outcome::of(&c.result)
            }
        }
        _ => Outcome::code("NOT-A-SERVER-STEP"),
    }
}

fn send(d: &ServerVirtualDevice, cmd: ServerCommand) -> Outcome {
    match d.send_command(cmd) {
        Ok(_) => Outcome::ok(),
        Err(r) => Outcome {
            completion: Some(r.completion_code),
            ..Outcome::err(r.error)
        },
    }
}

impl ServerEnd for LocalServer {
    fn describe(&self) -> String {
        "builtin".into()
    }

    fn exec(&mut self, step: &Step) -> Outcome {
        if self.dead {
            return Outcome::code("DEAD");
        }
        if let Step::SDies = step {
            if let Some(h) = &self.header {
                kill_token(&h.header().server);
            }
            self.dead = true;
            self.release();
            return Outcome::ok();
        }
        let out = exec_server(&self.set, &mut self.server, &mut self.devices, step);
        if matches!(step, Step::SOpen) && self.server.is_some() && self.header.is_none() {
            self.header = shm::open_header(shm::DEFAULT_INSTANCE, &self.set, Duration::ZERO).ok();
        }
        out
    }

    fn release(&mut self) {
        self.devices.clear();
        self.server = None;
        self.header = None;
    }
}

/// A client in this process and a server end, on one fresh set.
pub struct Pair<S: ServerEnd> {
    pub set: String,
    pub client: LocalClient,
    pub server: S,
}

impl Pair<LocalServer> {
    /// Both built-in roles in this process.
    pub fn in_process() -> Pair<LocalServer> {
        let set = fresh_set_name();
        Pair {
            client: LocalClient::new(&set),
            server: LocalServer::new(&set),
            set,
        }
    }
}

impl<S: ServerEnd> Driver for Pair<S> {
    fn name(&self) -> String {
        self.server.describe()
    }

    fn exec(&mut self, step: &Step) -> Outcome {
        match step.side() {
            super::step::Side::Client => self.client.exec(step),
            super::step::Side::Server => self.server.exec(step),
        }
    }

    fn finish(&mut self) -> Vec<String> {
        self.client.release();
        self.server.release();
        sweep(&self.set)
    }
}

impl<S: ServerEnd> Drop for Pair<S> {
    fn drop(&mut self) {
        self.client.release();
        self.server.release();
        sweep(&self.set);
    }
}

/// Whether an outcome is the VD error `e`.
pub fn is(o: &Outcome, e: VdError) -> bool {
    o.result == e.name()
}
