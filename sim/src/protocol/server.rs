//! The server role's state machine (SPEC §1.4, §3.5, §3.6, the seed document on Close).
//!
//! Driving order for a transport: call the method named after the VDI call; feed what the
//! client published with [`ServerMachine::handle_completion`] and [`ServerMachine::handle_abort`];
//! drain synthesized completions with [`ServerMachine::poll_completion`]; wake up no later than
//! [`ServerMachine::poll_timeout`] and call [`ServerMachine::handle_timeout`]. Time is an argument
//! (a clock the machine calls only when serverTimeOut needs the time).

use super::PeerMisbehaved;
use crate::vdi::{completion, features, CommandCode, VDConfig, VdError, VdResult};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Server set states (§1.4, §1.5 "Server table").
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ServerState {
    Dne,
    Connected,
    Configurable,
    Initializing,
    Active,
    Abort,
    /// After Close; the handle is spent.
    Closed,
}

/// Per-device state on the server side (§3.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ServerDeviceState {
    Active,
    /// An error completion arrived; only ClearError may be sent until it succeeds.
    IoError,
    Closed,
}

/// A command's completion as the server's completion routine sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Completion {
    pub device: usize,
    pub id: u64,
    pub command: u32,
    pub completion_code: u32,
    pub bytes_transferred: u32,
    pub position: u64,
}

/// BeginConfiguration's arguments (§1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConfigParams {
    /// VDF_WriteMedia (BACKUP) and/or VDF_ReadMedia (RESTORE), plus CompleteEnabled.
    pub features: u32,
    /// 0 = block size, else a power of two in [block size, 64 KiB].
    pub alignment: u32,
    /// A power of two in [512, 64 KiB].
    pub block_size: u32,
    /// A multiple of 64 KiB.
    pub max_transfer_size: u32,
    /// Milliseconds to wait for the client's buffer declarations.
    pub timeout_ms: u32,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    command: u32,
    size: u32,
}

#[derive(Debug, Clone)]
struct Device {
    name: String,
    state: ServerDeviceState,
    /// Outstanding commands in id order (ids only grow, so sending appends). Completions
    /// usually come in order, so lookups find their id at or near the front.
    outstanding: VecDeque<(u64, Pending)>,
}

impl Device {
    fn position(&self, id: u64) -> Option<usize> {
        self.outstanding.iter().position(|(i, _)| *i == id)
    }
}

/// The largest buffer area one set may ask for (BUFFERCOUNT x MAXTRANSFERSIZE is capped at
/// 2 GiB by the engine; this adds room for prefixes and metadata buffers).
pub const MAX_BUFFER_AREA: u64 = (2 << 30) + (256 << 20);

/// The server set's protocol state.
#[derive(Debug, Clone)]
pub struct ServerMachine {
    state: ServerState,
    request: VDConfig,
    answer: VDConfig,
    devices: Vec<Device>,
    next_id: u64,
    buffer_bytes: u64,
    queue_capacity: usize,
    /// Outstanding commands over all devices (kept, not summed: it is read per completion).
    total_outstanding: usize,
    last_progress: Option<Instant>,
    /// The abort came from the client: completions it published before aborting still count.
    aborted_by_peer: bool,
}

impl ServerMachine {
    /// A machine whose devices hold at most `queue_capacity` outstanding commands each.
    pub fn new(queue_capacity: usize) -> Self {
        ServerMachine {
            state: ServerState::Dne,
            request: VDConfig::default(),
            answer: VDConfig::default(),
            devices: Vec::new(),
            next_id: 1,
            buffer_bytes: 0,
            queue_capacity,
            total_outstanding: 0,
            last_progress: None,
            aborted_by_peer: false,
        }
    }

    pub fn state(&self) -> ServerState {
        self.state
    }

    pub fn device_state(&self, device: usize) -> Option<ServerDeviceState> {
        self.devices.get(device).map(|d| d.state)
    }

    pub fn device_count(&self) -> usize {
        self.devices.len()
    }

    pub fn answer(&self) -> &VDConfig {
        &self.answer
    }

    pub fn outstanding(&self, device: usize) -> usize {
        self.devices.get(device).map_or(0, |d| d.outstanding.len())
    }

    pub fn total_outstanding(&self) -> usize {
        self.total_outstanding
    }

    /// Size and command code of an outstanding command.
    pub fn pending(&self, device: usize, id: u64) -> Option<(u32, u32)> {
        let d = self.devices.get(device)?;
        let (_, p) = d.outstanding.get(d.position(id)?)?;
        Some((p.command, p.size))
    }

    /// Open (§1.4): DNE → Connected with the client's request.
    pub fn open(&mut self, request: VDConfig) -> VdResult<()> {
        if self.state != ServerState::Dne {
            return Err(VdError::Protocol);
        }
        self.state = ServerState::Connected;
        self.request = request;
        Ok(())
    }

    /// GetConfiguration (§1.4): the client's request.
    pub fn get_configuration(&self) -> VdResult<VDConfig> {
        match self.state {
            ServerState::Dne | ServerState::Closed => Err(VdError::Protocol),
            ServerState::Abort => Err(VdError::Abort),
            _ => Ok(self.request),
        }
    }

    /// BeginConfiguration (§1.4): only in Connected; VD_E_INVALID for out-of-range arguments.
    pub fn begin_configuration(&mut self, p: ConfigParams) -> VdResult<()> {
        match self.state {
            ServerState::Connected => {}
            ServerState::Abort => return Err(VdError::Abort),
            _ => return Err(VdError::Protocol),
        }
        let media = features::VDF_WRITE_MEDIA | features::VDF_READ_MEDIA;
        if p.features & media == 0 || p.features & !(media | features::VDF_COMPLETE_ENABLED) != 0 {
            return Err(VdError::Invalid);
        }
        if !p.block_size.is_power_of_two() || !(512..=65536).contains(&p.block_size) {
            return Err(VdError::Invalid);
        }
        if p.alignment != 0 && (!p.alignment.is_power_of_two() || p.alignment < p.block_size || p.alignment > 65536) {
            return Err(VdError::Invalid);
        }
        if p.max_transfer_size == 0 || p.max_transfer_size % 65536 != 0 || p.max_transfer_size > 4 << 20 {
            return Err(VdError::Invalid);
        }
        // CompleteEnabled only answers a client's RequestComplete (§2.2, §3.4).
        if p.features & features::VDF_COMPLETE_ENABLED != 0
            && self.request.features & features::VDF_REQUEST_COMPLETE == 0
        {
            return Err(VdError::Invalid);
        }
        let alignment = if p.alignment == 0 { p.block_size } else { p.alignment };
        self.answer = VDConfig {
            features: (self.request.features & !features::VDF_REQUEST_COMPLETE) | p.features,
            alignment: alignment.max(self.request.alignment),
            blockSize: p.block_size,
            maxIODepth: 4,
            maxTransferSize: p.max_transfer_size,
            ..self.request
        };
        self.state = ServerState::Configurable;
        Ok(())
    }

    /// RequestBuffers (§1.4): summed until EndConfiguration. VD_E_MEMORY past the cap.
    pub fn request_buffers(&mut self, size: u32, alignment: u32, count: u32) -> VdResult<()> {
        match self.state {
            ServerState::Configurable => {}
            ServerState::Abort => return Err(VdError::Abort),
            _ => return Err(VdError::Protocol),
        }
        if size == 0 || count == 0 || (alignment != 0 && !alignment.is_power_of_two()) {
            return Err(VdError::Invalid);
        }
        let align = u64::from(alignment.max(self.answer.alignment).max(1));
        let one = u64::from(size) + u64::from(self.request.prefixZoneSize) + align;
        let total = self.buffer_bytes + one * u64::from(count);
        if total > MAX_BUFFER_AREA {
            return Err(VdError::Memory);
        }
        self.buffer_bytes = total;
        Ok(())
    }

    /// Bytes of buffer area the requests so far need.
    pub fn buffer_bytes(&self) -> u64 {
        self.buffer_bytes
    }

    /// EndConfiguration (§1.4): Configurable → Initializing; returns the answer to publish.
    /// If the transport then fails to allocate the area it calls
    /// [`ServerMachine::end_configuration_failed`] (VD_E_MEMORY, "set stays Configurable").
    pub fn end_configuration(&mut self) -> VdResult<VDConfig> {
        match self.state {
            ServerState::Configurable => {}
            ServerState::Abort => return Err(VdError::Abort),
            _ => return Err(VdError::Protocol),
        }
        self.answer.bufferAreaSize = u32::try_from(self.buffer_bytes).unwrap_or(u32::MAX);
        self.state = ServerState::Initializing;
        Ok(self.answer)
    }

    pub fn end_configuration_failed(&mut self) {
        if self.state == ServerState::Initializing {
            self.state = ServerState::Configurable;
        }
    }

    /// OpenDevice (§1.4): the next device; VD_E_OPEN once all are open, VD_E_INVALID for a
    /// bad or repeated name.
    pub fn open_device(&mut self, name: &str) -> VdResult<usize> {
        match self.state {
            ServerState::Initializing | ServerState::Active => {}
            ServerState::Abort => return Err(VdError::Abort),
            _ => return Err(VdError::Protocol),
        }
        if self.devices.len() >= self.request.deviceCount as usize {
            return Err(VdError::Open);
        }
        if name.is_empty() || self.devices.iter().any(|d| d.name == name) {
            return Err(VdError::Invalid);
        }
        self.devices.push(Device {
            name: name.to_string(),
            state: ServerDeviceState::Active,
            outstanding: VecDeque::with_capacity(self.queue_capacity),
        });
        self.state = ServerState::Active;
        Ok(self.devices.len() - 1)
    }

    /// SendCommand (§1.4, §3.5). `Ok(id)`: publish the command under `id`. On error, the
    /// completion code the callback would see is [`send_error_completion`]. `now` is called
    /// only when the serverTimeOut rule needs the time (a clock read per command is a
    /// measurable part of a round trip, issue 7).
    pub fn send_command(
        &mut self,
        device: usize,
        command: u32,
        size: u32,
        now: impl FnOnce() -> Instant,
    ) -> VdResult<u64> {
        match self.state {
            ServerState::Active => {}
            ServerState::Abort => return Err(VdError::Abort),
            _ => return Err(VdError::Protocol),
        }
        let capacity = self.queue_capacity;
        let Some(d) = self.devices.get_mut(device) else {
            return Err(VdError::Protocol);
        };
        match d.state {
            ServerDeviceState::Closed => return Err(VdError::Protocol),
            // "new SendCommands fail at once with ERROR_IO_DEVICE" (§3.5), except ClearError.
            ServerDeviceState::IoError if command != CommandCode::ClearError.code() => return Err(VdError::IoError),
            _ => {}
        }
        if d.outstanding.len() >= capacity {
            return Err(VdError::QueueFull);
        }
        let id = self.next_id;
        self.next_id += 1;
        d.outstanding.push_back((id, Pending { command, size }));
        self.total_outstanding += 1;
        if self.last_progress.is_none() && self.server_timeout().is_some() {
            self.last_progress = Some(now());
        }
        Ok(id)
    }

    /// A completion the client published. `Ok(Some(c))` to deliver; `Ok(None)` when it is
    /// ignored (§1.4 "client completions are ignored" after the server's own abort, or a
    /// completion for a command already failed by the abort); `Err` when the client
    /// misbehaved (the transport then aborts the set). After an abort *by the client*, a
    /// completion for a still-outstanding command was published before the abort and counts.
    /// `now` is called only when the serverTimeOut rule needs the time.
    pub fn handle_completion(
        &mut self,
        device: usize,
        id: u64,
        completion_code: u32,
        bytes_transferred: u32,
        position: u64,
        now: impl FnOnce() -> Instant,
    ) -> Result<Option<Completion>, PeerMisbehaved> {
        match self.state {
            ServerState::Closed => return Ok(None),
            ServerState::Abort if !self.aborted_by_peer => return Ok(None),
            ServerState::Abort => {
                let outstanding = self.devices.get(device).is_some_and(|d| d.position(id).is_some());
                if !outstanding {
                    return Ok(None);
                }
            }
            _ => {}
        }
        let Some(d) = self.devices.get_mut(device) else {
            return Err(PeerMisbehaved::BadDeviceIndex { device });
        };
        let Some((_, p)) = super::take_first(&mut d.outstanding, |(i, _)| *i == id) else {
            return Err(PeerMisbehaved::UnknownCompletion { device, id });
        };
        self.total_outstanding -= 1;
        let is_data = p.command == CommandCode::Read.code() || p.command == CommandCode::Write.code();
        if is_data && bytes_transferred > p.size {
            return Err(PeerMisbehaved::BytesExceedSize {
                device,
                id,
                bytes: bytes_transferred,
                size: p.size,
            });
        }
        if p.command == CommandCode::ClearError.code() {
            if completion_code == completion::ERROR_SUCCESS && d.state == ServerDeviceState::IoError {
                d.state = ServerDeviceState::Active;
            }
        } else if completion_code != completion::ERROR_SUCCESS && d.state == ServerDeviceState::Active {
            d.state = ServerDeviceState::IoError;
        }
        self.last_progress = if self.total_outstanding == 0 || self.server_timeout().is_none() {
            None
        } else {
            Some(now())
        };
        Ok(Some(Completion {
            device,
            id,
            command: p.command,
            completion_code,
            bytes_transferred,
            position,
        }))
    }

    /// CloseDevice (§1.4): the client's next GetCommand returns VD_E_CLOSE. VD_E_CLOSE if
    /// already closed, VD_E_ABORT after abort, VD_E_PROTOCOL before Active.
    pub fn close_device(&mut self, device: usize) -> VdResult<()> {
        match self.state {
            ServerState::Active => {}
            ServerState::Abort => return Err(VdError::Abort),
            _ => return Err(VdError::Protocol),
        }
        let Some(d) = self.devices.get_mut(device) else {
            return Err(VdError::Protocol);
        };
        if d.state == ServerDeviceState::Closed {
            return Err(VdError::Close);
        }
        d.state = ServerDeviceState::Closed;
        Ok(())
    }

    /// SignalAbort (§1.4, §3.6): outstanding requests complete with ERROR_OPERATION_ABORTED.
    pub fn signal_abort(&mut self) -> VdResult<()> {
        match self.state {
            ServerState::Dne | ServerState::Closed => Err(VdError::Protocol),
            _ => {
                self.abort();
                Ok(())
            }
        }
    }

    /// The client (or a liveness check, or a validation failure) aborted the set (§3.6).
    pub fn handle_abort(&mut self) {
        if !matches!(self.state, ServerState::Dne | ServerState::Closed | ServerState::Abort) {
            self.aborted_by_peer = true;
            self.abort();
        }
    }

    fn abort(&mut self) {
        self.state = ServerState::Abort;
        self.last_progress = None;
    }

    /// Fails the device's next outstanding command with ERROR_OPERATION_ABORTED (lazily, so
    /// completions the client published before its abort are delivered first).
    fn synthesize_one(&mut self, device: usize) -> Option<Completion> {
        let d = self.devices.get_mut(device)?;
        let (id, p) = d.outstanding.pop_front()?;
        self.total_outstanding -= 1;
        Some(Completion {
            device,
            id,
            command: p.command,
            completion_code: completion::ERROR_OPERATION_ABORTED,
            bytes_transferred: 0,
            position: 0,
        })
    }

    /// Close (seed document): VD_E_PROTOCOL if devices are still open, but it still aborts and
    /// fails outstanding commands with ERROR_OPERATION_ABORTED. Either way → Closed.
    pub fn close(&mut self) -> VdResult<()> {
        if matches!(self.state, ServerState::Dne | ServerState::Closed) {
            return Err(VdError::Protocol);
        }
        let devices_open = self.devices.iter().any(|d| d.state != ServerDeviceState::Closed);
        let premature = devices_open && self.state != ServerState::Abort;
        if premature || self.total_outstanding() > 0 {
            self.abort();
        }
        self.state = ServerState::Closed;
        if premature {
            Err(VdError::Protocol)
        } else {
            Ok(())
        }
    }

    /// The next synthesized completion (abort, Close) for `device`, if any.
    pub fn poll_completion(&mut self, device: usize) -> Option<Completion> {
        if matches!(self.state, ServerState::Abort | ServerState::Closed) {
            return self.synthesize_one(device);
        }
        None
    }

    /// Every synthesized completion, for Close's report.
    pub fn drain_completions(&mut self) -> Vec<Completion> {
        let mut out = Vec::new();
        if matches!(self.state, ServerState::Abort | ServerState::Closed) {
            for device in 0..self.devices.len() {
                while let Some(c) = self.synthesize_one(device) {
                    out.push(c);
                }
            }
        }
        out
    }

    fn server_timeout(&self) -> Option<Duration> {
        match self.request.serverTimeOut {
            0 => None,
            ms => Some(Duration::from_millis(u64::from(ms))),
        }
    }

    /// When [`ServerMachine::handle_timeout`] must next run, if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state != ServerState::Active {
            return None;
        }
        Some(self.last_progress? + self.server_timeout()? * 2)
    }

    /// serverTimeOut (§2.4): "the server aborts if its completion agent waits more than two
    /// intervals with requests pending and nothing completing". Returns true if it aborted.
    pub fn handle_timeout(&mut self, now: Instant) -> bool {
        match self.poll_timeout() {
            Some(deadline) if now >= deadline && self.total_outstanding() > 0 => {
                self.abort();
                true
            }
            _ => false,
        }
    }
}

/// The completion code SendCommand's callback sees when it fails (§1.4).
pub fn send_error_completion(e: VdError) -> u32 {
    match e {
        VdError::QueueFull => completion::ERROR_NO_SYSTEM_RESOURCES,
        VdError::IoError => completion::ERROR_IO_DEVICE,
        VdError::Protocol => completion::ERROR_INVALID_HANDLE,
        _ => completion::ERROR_OPERATION_ABORTED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vdi::completion::*;
    use crate::vdi::features::*;
    use rstest::rstest;

    const WRITE: u32 = 2;

    fn params() -> ConfigParams {
        ConfigParams {
            features: VDF_WRITE_MEDIA,
            alignment: 0,
            block_size: 65536,
            max_transfer_size: 1 << 20,
            timeout_ms: 1000,
        }
    }

    fn machine_in(state: ServerState, devices: u32) -> ServerMachine {
        let mut m = ServerMachine::new(4);
        if state == ServerState::Dne {
            return m;
        }
        let mut req = VDConfig::request(devices, 0);
        req.serverTimeOut = 1000;
        m.open(req).unwrap();
        if state == ServerState::Connected {
            return m;
        }
        m.begin_configuration(params()).unwrap();
        if state == ServerState::Configurable {
            return m;
        }
        m.request_buffers(1 << 20, 0, 4).unwrap();
        m.end_configuration().unwrap();
        if state == ServerState::Initializing {
            return m;
        }
        m.open_device("set").unwrap();
        if state == ServerState::Abort {
            m.signal_abort().unwrap();
        }
        m
    }

    #[rstest]
    #[case(ServerState::Dne, Err(VdError::Protocol))]
    #[case(ServerState::Connected, Err(VdError::Protocol))]
    #[case(ServerState::Configurable, Err(VdError::Protocol))]
    #[case(ServerState::Initializing, Err(VdError::Protocol))]
    #[case(ServerState::Active, Ok(1))]
    #[case(ServerState::Abort, Err(VdError::Abort))]
    fn send_command_needs_active(#[case] state: ServerState, #[case] expected: VdResult<u64>) {
        let mut m = machine_in(state, 1);
        assert_eq!(m.send_command(0, WRITE, 512, Instant::now), expected);
    }

    #[rstest]
    #[case(ServerState::Dne, Err(VdError::Protocol))]
    #[case(ServerState::Connected, Err(VdError::Protocol))]
    #[case(ServerState::Configurable, Err(VdError::Protocol))]
    #[case(ServerState::Initializing, Err(VdError::Protocol))]
    #[case(ServerState::Active, Ok(()))]
    #[case(ServerState::Abort, Err(VdError::Abort))]
    fn close_device_needs_active(#[case] state: ServerState, #[case] expected: VdResult<()>) {
        let mut m = machine_in(state, 1);
        assert_eq!(m.close_device(0), expected);
        if expected.is_ok() {
            assert_eq!(m.close_device(0), Err(VdError::Close), "already closed");
        }
    }

    #[rstest]
    #[case(ServerState::Dne, Err(VdError::Protocol))]
    #[case(ServerState::Connected, Ok(()))]
    #[case(ServerState::Configurable, Err(VdError::Protocol))]
    #[case(ServerState::Active, Err(VdError::Protocol))]
    fn begin_configuration_only_when_connected(#[case] state: ServerState, #[case] expected: VdResult<()>) {
        let mut m = machine_in(state, 1);
        assert_eq!(m.begin_configuration(params()), expected);
    }

    #[rstest]
    #[case(ServerState::Connected, Err(VdError::Protocol))]
    #[case(ServerState::Configurable, Ok(()))]
    #[case(ServerState::Initializing, Err(VdError::Protocol))]
    fn end_configuration_only_when_configurable(#[case] state: ServerState, #[case] expected: VdResult<()>) {
        let mut m = machine_in(state, 1);
        assert_eq!(m.end_configuration().map(|_| ()), expected);
    }

    #[rstest]
    #[case(VDF_WRITE_MEDIA, 0, 512, 65536, true)]
    #[case(VDF_READ_MEDIA, 4096, 4096, 4 << 20, true)]
    #[case(0, 0, 512, 65536, false)]
    #[case(VDF_WRITE_MEDIA, 0, 256, 65536, false)]
    #[case(VDF_WRITE_MEDIA, 0, 131072, 131072, false)]
    #[case(VDF_WRITE_MEDIA, 0, 1000, 65536, false)]
    #[case(VDF_WRITE_MEDIA, 256, 512, 65536, false)]
    #[case(VDF_WRITE_MEDIA, 131072, 512, 65536, false)]
    #[case(VDF_WRITE_MEDIA, 0, 512, 65537, false)]
    #[case(VDF_WRITE_MEDIA, 0, 512, 8 << 20, false)]
    #[case(VDF_WRITE_MEDIA | VDF_COMPLETE_ENABLED, 0, 512, 65536, false)]
    fn begin_configuration_limits(
        #[case] f: u32,
        #[case] alignment: u32,
        #[case] block_size: u32,
        #[case] max_transfer_size: u32,
        #[case] ok: bool,
    ) {
        let mut m = machine_in(ServerState::Connected, 1);
        let p = ConfigParams {
            features: f,
            alignment,
            block_size,
            max_transfer_size,
            timeout_ms: 0,
        };
        assert_eq!(m.begin_configuration(p).is_ok(), ok, "{p:?}");
    }

    #[test]
    fn complete_enabled_answers_request_complete() {
        let mut m = ServerMachine::new(4);
        m.open(VDConfig::request(1, VDF_REQUEST_COMPLETE)).unwrap();
        let p = ConfigParams {
            features: VDF_WRITE_MEDIA | VDF_COMPLETE_ENABLED,
            ..params()
        };
        m.begin_configuration(p).unwrap();
        let answer = m.end_configuration().unwrap();
        assert_eq!(answer.features & VDF_COMPLETE_ENABLED, VDF_COMPLETE_ENABLED);
        assert_eq!(answer.features & VDF_REQUEST_COMPLETE, 0);
        assert_eq!(answer.maxIODepth, 4);
    }

    #[test]
    fn open_device_until_all_open() {
        let mut m = machine_in(ServerState::Initializing, 2);
        assert_eq!(m.open_device("a"), Ok(0));
        assert_eq!(m.open_device("a"), Err(VdError::Invalid));
        assert_eq!(m.open_device("b"), Ok(1));
        assert_eq!(m.open_device("c"), Err(VdError::Open));
    }

    #[test]
    fn queue_full_and_error_codes() {
        let mut m = machine_in(ServerState::Active, 1);
        let now = Instant::now();
        for _ in 0..4 {
            m.send_command(0, WRITE, 512, || now).unwrap();
        }
        assert_eq!(m.send_command(0, WRITE, 512, || now), Err(VdError::QueueFull));
        assert_eq!(send_error_completion(VdError::QueueFull), ERROR_NO_SYSTEM_RESOURCES);
        assert_eq!(send_error_completion(VdError::IoError), ERROR_IO_DEVICE);
        assert_eq!(send_error_completion(VdError::Protocol), ERROR_INVALID_HANDLE);
        assert_eq!(send_error_completion(VdError::Abort), ERROR_OPERATION_ABORTED);
    }

    /// §3.5: error completion → IO-ERROR; SendCommand fails at once; ClearError with success
    /// makes the device Active again.
    #[test]
    fn io_error_then_clear_error() {
        let mut m = machine_in(ServerState::Active, 1);
        let now = Instant::now();
        let id = m.send_command(0, WRITE, 512, || now).unwrap();
        m.handle_completion(0, id, ERROR_DISK_FULL, 0, 0, || now).unwrap();
        assert_eq!(m.device_state(0), Some(ServerDeviceState::IoError));
        assert_eq!(m.send_command(0, WRITE, 512, || now), Err(VdError::IoError));
        let clear = m.send_command(0, CommandCode::ClearError.code(), 0, || now).unwrap();
        m.handle_completion(0, clear, ERROR_SUCCESS, 0, 0, || now).unwrap();
        assert_eq!(m.device_state(0), Some(ServerDeviceState::Active));
        assert!(m.send_command(0, WRITE, 512, || now).is_ok());
    }

    #[test]
    fn misbehaving_completions_are_reported() {
        let mut m = machine_in(ServerState::Active, 1);
        let now = Instant::now();
        let id = m.send_command(0, WRITE, 512, || now).unwrap();
        assert!(matches!(
            m.handle_completion(0, id + 5, 0, 0, 0, || now),
            Err(PeerMisbehaved::UnknownCompletion { .. })
        ));
        assert!(matches!(
            m.handle_completion(3, id, 0, 0, 0, || now),
            Err(PeerMisbehaved::BadDeviceIndex { .. })
        ));
        assert!(matches!(
            m.handle_completion(0, id, 0, 513, 0, || now),
            Err(PeerMisbehaved::BytesExceedSize { .. })
        ));
    }

    /// The seed document: Close with devices open returns VD_E_PROTOCOL, still aborts, and
    /// completes every outstanding command with ERROR_OPERATION_ABORTED.
    #[test]
    fn premature_close_is_protocol_and_aborts_outstanding() {
        let mut m = machine_in(ServerState::Active, 1);
        let now = Instant::now();
        let a = m.send_command(0, WRITE, 512, || now).unwrap();
        let b = m.send_command(0, WRITE, 512, || now).unwrap();
        assert_eq!(m.close(), Err(VdError::Protocol));
        assert_eq!(m.state(), ServerState::Closed);
        let done = m.drain_completions();
        assert_eq!(done.iter().map(|c| c.id).collect::<Vec<_>>(), vec![a, b]);
        assert!(done.iter().all(|c| c.completion_code == ERROR_OPERATION_ABORTED));
        assert_eq!(
            m.handle_completion(0, a, 0, 512, 0, || now),
            Ok(None),
            "late completion ignored"
        );
    }

    #[test]
    fn orderly_close_is_ok() {
        let mut m = machine_in(ServerState::Active, 1);
        m.close_device(0).unwrap();
        assert_eq!(m.close(), Ok(()));
        assert_eq!(m.close(), Err(VdError::Protocol));
    }

    #[test]
    fn abort_completes_outstanding_with_operation_aborted() {
        let mut m = machine_in(ServerState::Active, 1);
        let now = Instant::now();
        let id = m.send_command(0, WRITE, 512, || now).unwrap();
        m.handle_abort();
        let c = m.poll_completion(0).unwrap();
        assert_eq!((c.id, c.completion_code), (id, ERROR_OPERATION_ABORTED));
        assert_eq!(m.poll_completion(0), None);
        assert_eq!(m.send_command(0, WRITE, 512, || now), Err(VdError::Abort));
        assert_eq!(m.close_device(0), Err(VdError::Abort));
    }

    /// A completion the client published before its own abort still counts; after the
    /// server's abort, client completions are ignored (§1.4).
    #[test]
    fn completions_racing_an_abort() {
        let now = Instant::now();
        let mut m = machine_in(ServerState::Active, 1);
        let a = m.send_command(0, WRITE, 512, || now).unwrap();
        let b = m.send_command(0, WRITE, 512, || now).unwrap();
        m.handle_abort();
        let done = m
            .handle_completion(0, a, ERROR_SUCCESS, 512, 0, || now)
            .unwrap()
            .unwrap();
        assert_eq!(done.completion_code, ERROR_SUCCESS);
        let failed = m.poll_completion(0).unwrap();
        assert_eq!((failed.id, failed.completion_code), (b, ERROR_OPERATION_ABORTED));
        assert_eq!(
            m.handle_completion(0, b, ERROR_SUCCESS, 512, 0, || now),
            Ok(None),
            "already failed"
        );

        let mut m = machine_in(ServerState::Active, 1);
        let a = m.send_command(0, WRITE, 512, || now).unwrap();
        m.signal_abort().unwrap();
        assert_eq!(m.handle_completion(0, a, ERROR_SUCCESS, 512, 0, || now), Ok(None));
        assert_eq!(
            m.poll_completion(0).map(|c| c.completion_code),
            Some(ERROR_OPERATION_ABORTED)
        );
    }

    /// serverTimeOut: abort only after two intervals with requests pending and no progress.
    #[test]
    fn server_timeout_two_interval_rule() {
        let mut m = machine_in(ServerState::Active, 1);
        let t0 = Instant::now();
        assert_eq!(m.poll_timeout(), None, "nothing pending");
        let a = m.send_command(0, WRITE, 512, || t0).unwrap();
        m.send_command(0, WRITE, 512, || t0).unwrap();
        assert_eq!(m.poll_timeout(), Some(t0 + Duration::from_millis(2000)));
        assert!(!m.handle_timeout(t0 + Duration::from_millis(1999)));
        // Progress restarts the clock.
        let t1 = t0 + Duration::from_millis(1500);
        m.handle_completion(0, a, 0, 512, 0, || t1).unwrap();
        assert!(!m.handle_timeout(t0 + Duration::from_millis(2500)));
        assert!(m.handle_timeout(t1 + Duration::from_millis(2000)));
        assert_eq!(m.state(), ServerState::Abort);
        assert_eq!(
            m.poll_completion(0).map(|c| c.completion_code),
            Some(ERROR_OPERATION_ABORTED)
        );
    }

    #[test]
    fn zero_server_timeout_is_infinite() {
        let mut m = ServerMachine::new(4);
        m.open(VDConfig::request(1, 0)).unwrap();
        m.begin_configuration(params()).unwrap();
        m.end_configuration().unwrap();
        m.open_device("d").unwrap();
        let t0 = Instant::now();
        m.send_command(0, WRITE, 512, || t0).unwrap();
        assert_eq!(m.poll_timeout(), None);
        assert!(!m.handle_timeout(t0 + Duration::from_secs(3600)));
    }

    /// Without serverTimeOut nothing needs the time, so the machine never asks for it: a
    /// clock read per command was a measurable part of a round trip (issue 7).
    #[test]
    fn the_clock_is_read_only_for_server_timeout() {
        let no_clock = || -> Instant { panic!("clock read without serverTimeOut") };
        let mut m = ServerMachine::new(4);
        m.open(VDConfig::request(1, 0)).unwrap();
        m.begin_configuration(params()).unwrap();
        m.end_configuration().unwrap();
        m.open_device("d").unwrap();
        let a = m.send_command(0, WRITE, 512, no_clock).unwrap();
        let b = m.send_command(0, WRITE, 512, no_clock).unwrap();
        m.handle_completion(0, a, 0, 512, 0, no_clock).unwrap();
        m.handle_completion(0, b, 0, 512, 0, no_clock).unwrap();

        let mut timed = machine_in(ServerState::Active, 1);
        let reads = std::cell::Cell::new(0);
        let clock = || {
            reads.set(reads.get() + 1);
            Instant::now()
        };
        let a = timed.send_command(0, WRITE, 512, clock).unwrap();
        timed.send_command(0, WRITE, 512, clock).unwrap();
        timed.handle_completion(0, a, 0, 512, 0, clock).unwrap();
        assert_eq!(
            reads.get(),
            2,
            "first send starts the interval, a completion with more pending restarts it"
        );
    }

    /// Completions out of order find their command anywhere in the device's queue.
    #[test]
    fn completions_in_any_order() {
        let mut m = machine_in(ServerState::Active, 2);
        m.open_device("set1").unwrap();
        let ids: Vec<u64> = (0..6)
            .map(|i| m.send_command(i % 2, WRITE, 512, Instant::now).unwrap())
            .collect();
        assert_eq!(m.total_outstanding(), 6);
        for &i in &[4usize, 0, 2] {
            let done = m
                .handle_completion(0, ids[i], 0, 512, 0, Instant::now)
                .unwrap()
                .unwrap();
            assert_eq!(done.id, ids[i]);
        }
        assert_eq!(
            m.handle_completion(0, ids[1], 0, 512, 0, Instant::now),
            Err(PeerMisbehaved::UnknownCompletion { device: 0, id: ids[1] }),
            "a device-1 command completed on device 0"
        );
        assert_eq!(m.outstanding(0), 0);
        assert_eq!(m.total_outstanding(), 3);
        assert!(m.signal_abort().is_ok());
        let aborted: Vec<u64> = std::iter::from_fn(|| m.poll_completion(1)).map(|c| c.id).collect();
        assert_eq!(aborted, vec![ids[1], ids[3], ids[5]], "aborted in id order");
        assert_eq!(m.total_outstanding(), 0);
    }

    #[test]
    fn request_buffers_caps_memory() {
        let mut m = machine_in(ServerState::Configurable, 1);
        assert_eq!(m.request_buffers(4 << 20, 0, 4096), Err(VdError::Memory));
        assert_eq!(m.request_buffers(0, 0, 1), Err(VdError::Invalid));
        assert_eq!(m.request_buffers(65536, 0, 4), Ok(()));
    }
}
