//! The reference model: what every call must return, derived from SPEC §1.2-§1.5, §3.5 and
//! §3.6 (and the decisions in the helpers' notes where the SPEC leaves a choice), written
//! independently of `vdisim::protocol` so that it can disagree with it.
//!
//! The model is pure and deterministic: it predicts the outcome of a step from the steps
//! before it. Every wait in the scenarios has timeout 0, so "no result yet" is always
//! VD_E_TIMEOUT, never a race.
//!
//! Where the SPEC says nothing, the model follows these choices (each one is a place where an
//! implementation could reasonably differ; a transcript makes the disagreement concrete):
//! - Abort is one shared fact (§3.6 "SignalAbort, from either side"): once either side
//!   aborted, both sides are in the Abort state, whether or not they made a call since.
//! - A dead peer is noticed only by a call that waits (GetConfiguration before the answer,
//!   GetCommand with nothing to deliver, the server's GetCompletion with nothing to return);
//!   the side that notices aborts the set (DESIGN "every wait re-checks ... peer liveness").
//! - Commands already queued are still delivered after the server died; the abort comes when
//!   the queue is empty.
//! - The client's set is NormTerm once every device it opened returned VD_E_CLOSE.
//! - The client library fails commands queued behind an error completion with
//!   ERROR_IO_DEVICE itself and holds a ClearError until every command outstanding at the
//!   error is completed (§3.5).
//! - The server's Close with devices still open returns VD_E_PROTOCOL and aborts; once aborted
//!   it returns NOERROR. Either way commands still outstanding come back as aborted.
//! - After an abort, each outstanding command comes back once from the server's GetCompletion
//!   with ERROR_OPERATION_ABORTED, per device in the order sent, then VD_E_ABORT. When the
//!   abort came from the client's side (its SignalAbort or Close), completions it
//!   published before are still delivered first with their own codes; after the server's own
//!   abort they are ignored (§1.4 "client completions are ignored"). A dead client noticed by
//!   the server counts as the server's own abort: what it published on a device is delivered
//!   while that device has any, the rest is ignored.
//! - The server closing the set before configuring it ends the client's GetConfiguration with
//!   VD_E_ABORT (and aborts the set).
//!
//! Steps that would block for a real time in the implementation are not generated: the
//! client's OpenDevice of a name the server has not published (it waits up to 2 s for it) and
//! the server's Open of a set whose creator died (it gives a new CreateEx 1 s to replace it).

use super::step::{Bytes, Config, DeviceName, Outcome, Step};
use std::collections::VecDeque;
use vdisim::vdi::{completion, features, CommandCode, VdError};

/// At most this many commands may be outstanding per device (one ring slot stays free for
/// CloseDevice's marker); one more is VD_E_QUEUE_FULL. This is the emulator's ring size
/// (vdisim::shm::layout::MAX_OUTSTANDING), fixed by the wire, not by the SPEC.
pub const QUEUE_DEPTH: usize = vdisim::shm::layout::MAX_OUTSTANDING;

/// The server's cap on requested buffer bytes (vdisim::protocol::server::MAX_BUFFER_AREA).
const MAX_BUFFER_AREA: u64 = (2 << 30) + (256 << 20);

const CLEAR_ERROR: u32 = CommandCode::ClearError.code();

fn is_data(code: u32) -> bool {
    code == CommandCode::Read.code() || code == CommandCode::Write.code()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    pub id: u64,
    pub code: u32,
    pub size: u32,
    pub position: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Record {
    Command(Cmd),
    CloseMarker,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Done {
    cmd: Cmd,
    code: u32,
    bytes: u32,
    position: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientDevice {
    NotOpen,
    Open,
    /// GetCommand returned VD_E_CLOSE.
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerDevice {
    Active,
    IoError,
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    // server side
    pub s_state: ServerDevice,
    /// Sent and not yet returned by GetCompletion, in the order sent.
    s_outstanding: Vec<Cmd>,
    // the command ring and what the client library holds back
    ring: VecDeque<Record>,
    held: Option<Cmd>,
    // client side
    pub c_state: ClientDevice,
    /// Delivered by GetCommand, not completed, in delivery order.
    pub delivered: Vec<Cmd>,
    /// Commands completed successfully (their handles can be completed again: VD_E_INVALID).
    pub completed: usize,
    c_io_error: bool,
    // the completion ring
    completions: VecDeque<Done>,
}

/// Client set phase (§1.5), without Abort: abort is the shared flag [`Model::aborted`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientPhase {
    /// No CreateEx yet.
    None,
    Configurable,
    Initializing,
    Active,
    NormTerm,
    /// Close was called (DNE; device handles are stale).
    Closed,
}

/// Server set phase (§1.4), without Abort.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerPhase {
    /// No Open succeeded yet.
    None,
    Connected,
    Configurable,
    Initializing,
    Active,
    Closed,
}

/// What the set's shared header says about the server's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Published {
    Waiting,
    Connected,
    Configured,
    ServerClosed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    pub client: ClientPhase,
    pub client_alive: bool,
    pub devices_requested: u32,
    request_complete: bool,
    pub server: ServerPhase,
    /// The server wrote its liveness token (Open got that far).
    server_registered: bool,
    pub server_alive: bool,
    /// Either side aborted (§3.6); both sides are in Abort from then on.
    pub aborted: bool,
    /// The first abort came from the client's side (its call, or its death).
    abort_by_client: bool,
    published: Published,
    pub block_size: u32,
    buffer_bytes: u64,
    next_id: u64,
    /// Read/Write buffers lent with commands and not yet back at the server.
    pub lent: usize,
    pub devices: Vec<Device>,
    /// The outcome of the last step applied (what the implementation must return).
    pub last: Option<Outcome>,
    /// Steps applied so far.
    pub steps: usize,
}

impl Default for Model {
    fn default() -> Self {
        Model::new()
    }
}

fn rejected(e: VdError) -> Outcome {
    Outcome {
        completion: Some(vdisim::protocol::server::send_error_completion(e)),
        ..Outcome::err(e)
    }
}

impl Model {
    pub fn new() -> Model {
        Model {
            client: ClientPhase::None,
            client_alive: true,
            devices_requested: 0,
            request_complete: false,
            server: ServerPhase::None,
            server_registered: false,
            server_alive: true,
            aborted: false,
            abort_by_client: false,
            published: Published::Waiting,
            block_size: 512,
            buffer_bytes: 0,
            next_id: 1,
            lent: 0,
            devices: Vec::new(),
            last: None,
            steps: 0,
        }
    }

    /// Whether the client has a set (created and not closed).
    pub fn client_has_set(&self) -> bool {
        !matches!(self.client, ClientPhase::None | ClientPhase::Closed)
    }

    /// Whether the server has a handle it may call (Open succeeded, alive).
    pub fn server_has_set(&self) -> bool {
        self.server != ServerPhase::None && self.server_alive
    }

    pub fn server_open(&self) -> bool {
        !matches!(self.server, ServerPhase::None | ServerPhase::Closed)
    }

    /// Devices the client may name in OpenDevice without waiting: the server opened them.
    pub fn published_devices(&self) -> usize {
        self.devices.len()
    }

    pub fn total_outstanding(&self) -> usize {
        self.devices.iter().map(|d| d.s_outstanding.len()).sum()
    }

    /// The abort; the first one decides who aborted.
    fn abort(&mut self, by_client: bool) {
        if !self.aborted {
            self.aborted = true;
            self.abort_by_client = by_client;
        }
    }

    /// Whether a step would block for seconds in the implementation (the client's OpenDevice
    /// waiting for a name the server has not published yet): such steps are never generated.
    pub fn would_block(&self, step: &Step) -> bool {
        match step {
            // Open gives a set whose creator died a grace period to be replaced by a new
            // CreateEx before opening it (vdisim's reliability fix F9).
            Step::SOpen => self.client_has_set() && !self.client_alive,
            Step::COpenDevice { dev } => {
                let answering = self.client_has_set()
                    && !self.aborted
                    && matches!(self.client, ClientPhase::Initializing | ClientPhase::Active);
                let known = match dev {
                    Some(i) => *i < self.devices.len(),
                    None => self.devices.len() >= self.devices_requested as usize,
                };
                answering && !known
            }
            _ => false,
        }
    }

    /// Whether a step can be executed at all in this state (a handle it needs exists, the
    /// side is alive, it would not block). Outcomes of allowed steps may still be errors.
    pub fn allows(&self, step: &Step) -> bool {
        use Step::*;
        if self.would_block(step) {
            return false;
        }
        let dev_ok = |d: usize| d < self.devices.len();
        let c_dev = |d: usize| dev_ok(d) && self.devices[d].c_state != ClientDevice::NotOpen;
        match step {
            // One set per scenario: reusing the handle after Close (§1.2 allows it) would be a
            // second, independent set, which the model does not track.
            CCreate { .. } => self.client_alive && self.client != ClientPhase::Closed,
            CGetConfiguration | COpenDevice { dev: None } | CSignalAbort | CClose => self.client_alive,
            COpenDevice { dev: Some(d) } => self.client_alive && (dev_ok(*d) || !self.client_has_set()),
            CGetCommand { dev } => self.client_alive && c_dev(*dev),
            CComplete { dev, .. } => self.client_alive && c_dev(*dev) && !self.devices[*dev].delivered.is_empty(),
            CCompleteStale { dev } => self.client_alive && c_dev(*dev) && self.devices[*dev].completed > 0,
            CCompleteWrongDevice { from, to } => {
                self.client_alive
                    && from != to
                    && c_dev(*from)
                    && c_dev(*to)
                    && !self.devices[*from].delivered.is_empty()
            }
            // A death is only interesting while the other side can still notice it.
            CDies => self.client_alive && self.client_has_set() && self.server_has_set(),
            SOpen => self.server_alive && self.server == ServerPhase::None,
            SGetConfiguration
            | SBeginConfiguration { .. }
            | SRequestBuffers { .. }
            | SEndConfiguration
            | SOpenDevice { .. }
            | SSignalAbort
            | SClose => self.server_has_set(),
            SSend { dev, code, size, .. } => {
                // Keep the buffer area (1 MiB of metadata room plus requests) from running out.
                self.server_has_set()
                    && dev_ok(*dev)
                    && (!is_data(*code) || (self.lent < 16 && *size <= 32768 && *size > 0))
            }
            SFlood { dev } | SGetCompletion { dev } | SCloseDevice { dev } => self.server_has_set() && dev_ok(*dev),
            SDies => self.server_has_set() && self.client_alive,
        }
    }

    /// Applies a step and returns the outcome the implementation must produce.
    pub fn apply(&mut self, step: &Step) -> Outcome {
        use Step::*;
        self.steps += 1;
        let out = match step {
            CCreate {
                devices,
                request_complete,
            } => self.c_create(*devices, *request_complete),
            CGetConfiguration => self.c_get_configuration(),
            COpenDevice { dev } => self.c_open_device(*dev),
            CGetCommand { dev } => self.c_get_command(*dev),
            CComplete {
                dev,
                pick,
                code,
                bytes,
                position,
            } => self.c_complete(*dev, *pick, *code, *bytes, *position),
            CCompleteStale { .. } => {
                // §1.3: VD_E_INVALID "command not active"; abort is checked first.
                if self.aborted {
                    Outcome::err(VdError::Abort)
                } else {
                    Outcome::err(VdError::Invalid)
                }
            }
            CCompleteWrongDevice { .. } => Outcome::err(VdError::Invalid),
            CSignalAbort => {
                if !self.client_has_set() {
                    Outcome::err(VdError::Protocol)
                } else {
                    self.abort(true);
                    Outcome::ok()
                }
            }
            CClose => self.c_close(),
            CDies => {
                self.client_alive = false;
                Outcome::ok()
            }
            SOpen => self.s_open(),
            SGetConfiguration => {
                if self.aborted {
                    Outcome::err(VdError::Abort)
                } else if self.server == ServerPhase::Closed {
                    Outcome::err(VdError::Protocol)
                } else {
                    Outcome::ok()
                }
            }
            SBeginConfiguration { config } => self.s_begin(config),
            SRequestBuffers { size, count } => self.s_request_buffers(*size, *count),
            SEndConfiguration => {
                if self.aborted {
                    Outcome::err(VdError::Abort)
                } else if self.server != ServerPhase::Configurable {
                    Outcome::err(VdError::Protocol)
                } else {
                    self.server = ServerPhase::Initializing;
                    self.published = Published::Configured;
                    Outcome::ok()
                }
            }
            SOpenDevice { name } => self.s_open_device(*name),
            SSend {
                dev,
                code,
                size,
                position,
            } => self.s_send(*dev, *code, *size, *position),
            SFlood { dev } => {
                let mut sent = 0u32;
                let last = loop {
                    let o = self.s_send(*dev, CommandCode::Flush.code(), 0, 0);
                    if o.result != "NOERROR" || sent > 1000 {
                        break o;
                    }
                    sent += 1;
                };
                Outcome {
                    sent: Some(sent),
                    ..last
                }
            }
            SGetCompletion { dev } => self.s_get_completion(*dev),
            SCloseDevice { dev } => self.s_close_device(*dev),
            SSignalAbort => {
                if self.server == ServerPhase::Closed {
                    Outcome::err(VdError::Protocol)
                } else {
                    self.abort(false);
                    Outcome::ok()
                }
            }
            SClose => self.s_close(),
            SDies => {
                self.server_alive = false;
                Outcome::ok()
            }
        };
        self.last = Some(out.clone());
        out
    }

    // ---------------------------------------------------------------- client

    /// CreateEx (§1.2): VD_E_NOTSUPPORTED for a bad config field (deviceCount 1..=64, §2.4);
    /// VD_E_PROTOCOL once the handle has a set (§1.5 row Create).
    fn c_create(&mut self, devices: u32, request_complete: bool) -> Outcome {
        if self.client != ClientPhase::None {
            return Outcome::err(VdError::Protocol);
        }
        if devices == 0 || devices > 64 {
            return Outcome::err(VdError::NotSupported);
        }
        self.client = ClientPhase::Configurable;
        self.devices_requested = devices;
        self.request_complete = request_complete;
        Outcome::ok()
    }

    /// GetConfiguration (§1.2, §1.5 row GetConfiguration); a timeout changes nothing (§3.6).
    fn c_get_configuration(&mut self) -> Outcome {
        if !self.client_has_set() {
            return Outcome::err(VdError::Protocol);
        }
        if self.aborted {
            return Outcome::err(VdError::Abort);
        }
        if self.client != ClientPhase::Configurable {
            return Outcome::ok();
        }
        match self.published {
            Published::Configured => {
                self.client = ClientPhase::Initializing;
                Outcome::ok()
            }
            // The server closed the set without configuring it: the operation is over.
            Published::ServerClosed => {
                self.abort(true);
                Outcome::err(VdError::Abort)
            }
            Published::Waiting | Published::Connected => {
                if self.server_registered && !self.server_alive {
                    self.abort(true);
                    Outcome::err(VdError::Abort)
                } else {
                    Outcome::err(VdError::Timeout)
                }
            }
        }
    }

    /// OpenDevice (§1.2, §1.5 row OpenDevice; per device, the table's footnote).
    fn c_open_device(&mut self, dev: Option<usize>) -> Outcome {
        if !self.client_has_set() {
            return Outcome::err(VdError::Protocol);
        }
        if self.aborted {
            return Outcome::err(VdError::Abort);
        }
        if !matches!(self.client, ClientPhase::Initializing | ClientPhase::Active) {
            return Outcome::err(VdError::Protocol);
        }
        let Some(i) = dev else {
            // Every device is published and none has this name.
            return Outcome::err(VdError::Invalid);
        };
        let d = &mut self.devices[i];
        if d.c_state != ClientDevice::NotOpen {
            return Outcome::err(VdError::Protocol);
        }
        d.c_state = ClientDevice::Open;
        self.client = ClientPhase::Active;
        Outcome::ok()
    }

    /// GetCommand (§1.3, §3.5, §3.6).
    fn c_get_command(&mut self, dev: usize) -> Outcome {
        if self.aborted {
            return Outcome::err(VdError::Abort);
        }
        if self.client != ClientPhase::Active || self.devices[dev].c_state != ClientDevice::Open {
            return Outcome::err(VdError::Protocol);
        }
        let d = &mut self.devices[dev];
        loop {
            if let Some(held) = &d.held {
                // §3.5: "ClearError is delivered only after the client completes every
                // command outstanding at the error".
                if d.delivered.is_empty() || !d.c_io_error {
                    let cmd = held.clone();
                    d.held = None;
                    return deliver(d, cmd);
                }
                break;
            }
            match d.ring.pop_front() {
                None => break,
                Some(Record::CloseMarker) => {
                    d.c_state = ClientDevice::Closed;
                    let all_done = self.devices.iter().all(|x| x.c_state != ClientDevice::Open);
                    if all_done {
                        self.client = ClientPhase::NormTerm;
                    }
                    return Outcome::err(VdError::Close);
                }
                Some(Record::Command(cmd)) => {
                    if !d.c_io_error {
                        return deliver(d, cmd);
                    }
                    if cmd.code == CLEAR_ERROR {
                        d.held = Some(cmd);
                        continue;
                    }
                    // §3.5: "queued undelivered commands complete with ERROR_IO_DEVICE (the
                    // client never sees them)".
                    d.completions.push_back(Done {
                        cmd,
                        code: completion::ERROR_IO_DEVICE,
                        bytes: 0,
                        position: 0,
                    });
                }
            }
        }
        if self.server_registered && !self.server_alive {
            self.abort(true);
            return Outcome::err(VdError::Abort);
        }
        Outcome::err(VdError::Timeout)
    }

    /// CompleteCommand (§1.3, §3.5).
    fn c_complete(&mut self, dev: usize, pick: usize, code: u32, bytes: Bytes, position: u64) -> Outcome {
        if self.aborted {
            return Outcome::err(VdError::Abort);
        }
        let d = &mut self.devices[dev];
        let k = pick % d.delivered.len();
        let cmd = d.delivered[k].clone();
        let n = bytes.of(cmd.size);
        if is_data(cmd.code) && n > cmd.size {
            return Outcome::err(VdError::Invalid);
        }
        if self.client != ClientPhase::Active {
            // NormTerm (every device saw VD_E_CLOSE) or DNE after Close (§1.5).
            return Outcome::err(VdError::Protocol);
        }
        d.delivered.remove(k);
        d.completed += 1;
        if cmd.code == CLEAR_ERROR {
            if code == completion::ERROR_SUCCESS {
                // "a success reply makes the device Active again" (§3.5).
                d.c_io_error = false;
            }
        } else if code != completion::ERROR_SUCCESS {
            // "An error completion puts the device in IO-ERROR" (§3.5).
            d.c_io_error = true;
        }
        d.completions.push_back(Done {
            cmd,
            code,
            bytes: n,
            position,
        });
        Outcome::ok()
    }

    /// Close (§1.2): VD_E_OPEN with devices still open (outside Abort), and the set is
    /// aborted unless it ended normally. Either way → DNE.
    fn c_close(&mut self) -> Outcome {
        if !self.client_has_set() {
            return Outcome::err(VdError::Protocol);
        }
        let premature = !self.aborted && self.devices.iter().any(|d| d.c_state == ClientDevice::Open);
        if self.client != ClientPhase::NormTerm {
            self.abort(true);
        }
        self.client = ClientPhase::Closed;
        if premature {
            Outcome::err(VdError::Open)
        } else {
            Outcome::ok()
        }
    }

    // ---------------------------------------------------------------- server

    /// Open (§1.4): VD_E_INVALID for an unknown set; VD_E_ABORT if the client already
    /// aborted; VD_E_BUSY if a live server (here: ourselves, after a failed Open) has it.
    fn s_open(&mut self) -> Outcome {
        if !self.client_has_set() {
            return Outcome::err(VdError::Invalid);
        }
        if self.server_registered {
            return Outcome::err(VdError::Busy);
        }
        self.server_registered = true;
        if self.aborted {
            return Outcome::err(VdError::Abort);
        }
        self.server = ServerPhase::Connected;
        self.published = Published::Connected;
        Outcome::ok()
    }

    /// BeginConfiguration (§1.4): only in Connected; the limits of §1.4 and §2.6.
    fn s_begin(&mut self, c: &Config) -> Outcome {
        if self.aborted {
            return Outcome::err(VdError::Abort);
        }
        if self.server != ServerPhase::Connected {
            return Outcome::err(VdError::Protocol);
        }
        let media = features::VDF_WRITE_MEDIA | features::VDF_READ_MEDIA;
        let extra = c.features & !media;
        let features_ok = c.features & media != 0
            && (extra == 0 || (extra == features::VDF_COMPLETE_ENABLED && self.request_complete));
        let bs_ok = c.block_size.is_power_of_two() && (512..=65536).contains(&c.block_size);
        let mts_ok = c.max_transfer_size != 0 && c.max_transfer_size % 65536 == 0 && c.max_transfer_size <= 4 << 20;
        if !(features_ok && bs_ok && mts_ok) {
            return Outcome::err(VdError::Invalid);
        }
        self.block_size = c.block_size;
        self.server = ServerPhase::Configurable;
        Outcome::ok()
    }

    fn s_request_buffers(&mut self, size: u32, count: u32) -> Outcome {
        if self.aborted {
            return Outcome::err(VdError::Abort);
        }
        if self.server != ServerPhase::Configurable {
            return Outcome::err(VdError::Protocol);
        }
        if size == 0 || count == 0 {
            return Outcome::err(VdError::Invalid);
        }
        let one = u64::from(size) + u64::from(self.block_size);
        let total = self.buffer_bytes + one * u64::from(count);
        if total > MAX_BUFFER_AREA {
            return Outcome::err(VdError::Memory);
        }
        self.buffer_bytes = total;
        Outcome::ok()
    }

    /// OpenDevice (§1.4): "returns the next device; VD_E_OPEN once all are open".
    fn s_open_device(&mut self, name: DeviceName) -> Outcome {
        if name == DeviceName::Bad {
            return Outcome::err(VdError::Invalid);
        }
        if self.aborted {
            return Outcome::err(VdError::Abort);
        }
        if !matches!(self.server, ServerPhase::Initializing | ServerPhase::Active) {
            return Outcome::err(VdError::Protocol);
        }
        if self.devices.len() >= self.devices_requested as usize {
            return Outcome::err(VdError::Open);
        }
        if name == DeviceName::Duplicate && !self.devices.is_empty() {
            return Outcome::err(VdError::Invalid);
        }
        self.devices.push(Device {
            s_state: ServerDevice::Active,
            s_outstanding: Vec::new(),
            ring: VecDeque::new(),
            held: None,
            c_state: ClientDevice::NotOpen,
            delivered: Vec::new(),
            completed: 0,
            c_io_error: false,
            completions: VecDeque::new(),
        });
        self.server = ServerPhase::Active;
        Outcome::ok()
    }

    /// SendCommand (§1.4, §3.5): the refused command's callback code comes with the error.
    fn s_send(&mut self, dev: usize, code: u32, size: u32, position: u64) -> Outcome {
        if self.aborted {
            return rejected(VdError::Abort);
        }
        if self.server != ServerPhase::Active {
            return rejected(VdError::Protocol);
        }
        let d = &mut self.devices[dev];
        match d.s_state {
            ServerDevice::Closed => return rejected(VdError::Protocol),
            // "new SendCommands fail at once with ERROR_IO_DEVICE" (§3.5), except ClearError.
            ServerDevice::IoError if code != CLEAR_ERROR => return rejected(VdError::IoError),
            _ => {}
        }
        if d.s_outstanding.len() >= QUEUE_DEPTH {
            return rejected(VdError::QueueFull);
        }
        let cmd = Cmd {
            id: self.next_id,
            code,
            size,
            position,
        };
        self.next_id += 1;
        d.s_outstanding.push(cmd.clone());
        d.ring.push_back(Record::Command(cmd));
        if is_data(code) {
            self.lent += 1;
        }
        Outcome::ok()
    }

    /// The completion routine's view (§1.4, §3.6).
    fn s_get_completion(&mut self, dev: usize) -> Outcome {
        let closed = self.server == ServerPhase::Closed;
        while let Some(done) = self.devices[dev].completions.pop_front() {
            let d = &mut self.devices[dev];
            let outstanding = d.s_outstanding.iter().any(|c| c.id == done.cmd.id);
            if closed || (self.aborted && (!self.abort_by_client || !outstanding)) {
                // Completions after Close, or after the server's own abort, are ignored.
                continue;
            }
            d.s_outstanding.retain(|c| c.id != done.cmd.id);
            if done.cmd.code == CLEAR_ERROR {
                if done.code == completion::ERROR_SUCCESS && d.s_state == ServerDevice::IoError {
                    d.s_state = ServerDevice::Active;
                }
            } else if done.code != completion::ERROR_SUCCESS && d.s_state == ServerDevice::Active {
                d.s_state = ServerDevice::IoError;
            }
            return self.returned(&done.cmd, done.code, done.bytes, done.position);
        }
        if !self.aborted && !self.client_alive {
            // Noticed only when nothing the client published on this device is left to
            // deliver; the server then aborts on its own (its completions count as ignored).
            self.abort(false);
        }
        if self.aborted || closed {
            let d = &mut self.devices[dev];
            if !d.s_outstanding.is_empty() {
                let cmd = d.s_outstanding.remove(0);
                return self.returned(&cmd, completion::ERROR_OPERATION_ABORTED, 0, 0);
            }
        }
        if self.aborted {
            return Outcome::err(VdError::Abort);
        }
        Outcome::err(VdError::Timeout)
    }

    fn returned(&mut self, cmd: &Cmd, code: u32, bytes: u32, position: u64) -> Outcome {
        if is_data(cmd.code) {
            self.lent = self.lent.saturating_sub(1);
        }
        Outcome {
            command: Some(cmd.code),
            completion: Some(code),
            bytes: Some(bytes),
            position: Some(position),
            ..Outcome::ok()
        }
    }

    /// CloseDevice (§1.4): VD_E_CLOSE if already closed, VD_E_ABORT after abort.
    fn s_close_device(&mut self, dev: usize) -> Outcome {
        if self.aborted {
            return Outcome::err(VdError::Abort);
        }
        if self.server != ServerPhase::Active {
            return Outcome::err(VdError::Protocol);
        }
        let d = &mut self.devices[dev];
        if d.s_state == ServerDevice::Closed {
            return Outcome::err(VdError::Close);
        }
        d.s_state = ServerDevice::Closed;
        d.ring.push_back(Record::CloseMarker);
        Outcome::ok()
    }

    /// Close (§1.4, HELPERS decision): VD_E_PROTOCOL with devices open, but it still aborts
    /// and completes outstanding commands with ERROR_OPERATION_ABORTED.
    fn s_close(&mut self) -> Outcome {
        if self.server == ServerPhase::Closed {
            return Outcome {
                aborted: Some(0),
                ..Outcome::err(VdError::Protocol)
            };
        }
        let devices_open = self.devices.iter().any(|d| d.s_state != ServerDevice::Closed);
        let premature = devices_open && !self.aborted;
        if premature || self.total_outstanding() > 0 {
            self.abort(false);
        }
        let aborted: usize = self
            .devices
            .iter_mut()
            .map(|d| std::mem::take(&mut d.s_outstanding).len())
            .sum();
        self.lent = 0;
        self.server = ServerPhase::Closed;
        self.published = Published::ServerClosed;
        Outcome {
            aborted: Some(aborted as u32),
            ..if premature {
                Outcome::err(VdError::Protocol)
            } else {
                Outcome::ok()
            }
        }
    }
}

fn deliver(d: &mut Device, cmd: Cmd) -> Outcome {
    let out = Outcome {
        command: Some(cmd.code),
        size: Some(cmd.size),
        position: Some(cmd.position),
        ..Outcome::ok()
    };
    d.delivered.push(cmd);
    out
}
