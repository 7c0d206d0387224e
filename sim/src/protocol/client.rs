//! The client role's state machine (SPEC §1.2, §1.3, §1.5 "Client Transitions", §3.5, §3.6).
//!
//! Driving order for a transport: call the method named after the VDI call first; it answers
//! with the code the state table gives, or with `Ok` meaning "go ahead and touch shared memory".
//! Events from the peer come in through the `handle_*` methods. Nothing here waits, reads a
//! clock or touches shared memory.

use crate::vdi::{completion, VDConfig, VdError, VdResult};
use std::collections::VecDeque;

/// Set states of the §1.5 client table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SetState {
    /// Does not exist: before CreateEx and after Close.
    Dne,
    /// Created; waiting for the server's configuration.
    Configurable,
    /// GetConfiguration succeeded; devices may be opened.
    Initializing,
    /// At least one device is open.
    Active,
    /// Every opened device has seen VD_E_CLOSE.
    NormTerm,
    /// Either side signalled abort; only Close is useful (§3.6).
    Abort,
}

/// Per-device state. §1.5 marks the per-device reading UNVERIFIED; we track the table's
/// Active/NormTerm columns per device because a client with n devices calls OpenDevice n times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DeviceState {
    NotOpen,
    Open,
    /// The device returned VD_E_CLOSE (its own NormTerm).
    Closed,
}

/// What the transport should do with a command record it took from a device's command ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming {
    /// Hand it to the caller of GetCommand.
    Deliver,
    /// The device is in IO-ERROR: complete it at once with ERROR_IO_DEVICE; the client never
    /// sees it (§3.5 "queued undelivered commands complete with ERROR_IO_DEVICE").
    AutoFail,
    /// A ClearError that must wait until every command outstanding at the error is completed
    /// (§3.5); keep it and offer it again later.
    Hold,
}

#[derive(Debug, Clone)]
struct Device {
    name: String,
    state: DeviceState,
    /// Commands delivered by GetCommand and not yet completed, with their command codes.
    outstanding: VecDeque<(u64, u32)>,
    /// Set by an error completion until a ClearError completes with success (§3.5).
    io_error: bool,
}

/// The client set's protocol state.
#[derive(Debug, Clone)]
pub struct ClientMachine {
    state: SetState,
    config: Option<VDConfig>,
    devices: Vec<Device>,
    /// Whether the server has published its configuration answer (EndConfiguration).
    server_configured: bool,
    /// This handle is a secondary (OpenInSecondary): it may open devices, not configure.
    secondary: bool,
}

impl Default for ClientMachine {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientMachine {
    pub fn new() -> Self {
        ClientMachine {
            state: SetState::Dne,
            config: None,
            devices: Vec::new(),
            server_configured: false,
            secondary: false,
        }
    }

    pub fn state(&self) -> SetState {
        self.state
    }

    pub fn device_state(&self, index: usize) -> Option<DeviceState> {
        self.devices.get(index).map(|d| d.state)
    }

    pub fn config(&self) -> Option<&VDConfig> {
        self.config.as_ref()
    }

    pub fn is_aborted(&self) -> bool {
        matches!(self.state, SetState::Abort)
    }

    /// Number of commands the caller holds on a device.
    pub fn outstanding(&self, index: usize) -> usize {
        self.devices.get(index).map_or(0, |d| d.outstanding.len())
    }

    /// CreateEx (§1.2): DNE → Configurable; VD_E_PROTOCOL in any other state;
    /// VD_E_NOTSUPPORTED for a bad configuration field.
    pub fn create(&mut self, request: &VDConfig) -> VdResult<()> {
        if self.state != SetState::Dne {
            return Err(VdError::Protocol);
        }
        request.validate_request()?;
        *self = ClientMachine::new();
        self.state = SetState::Configurable;
        self.config = Some(*request);
        Ok(())
    }

    /// OpenInSecondary (§1.2): the set was created and configured by the primary; this handle
    /// starts in Initializing with the server's answer.
    pub fn open_secondary(&mut self, answer: VDConfig, device_names: Vec<String>) -> VdResult<()> {
        if self.state != SetState::Dne {
            return Err(VdError::Protocol);
        }
        *self = ClientMachine::new();
        self.secondary = true;
        self.server_configured = true;
        self.state = SetState::Initializing;
        self.config = Some(answer);
        self.devices = device_names.into_iter().map(Device::new).collect();
        Ok(())
    }

    /// The server ended its configuration (§1.4 EndConfiguration releases GetConfiguration).
    pub fn handle_server_configured(&mut self, answer: VDConfig, device_names: Vec<String>) {
        if self.state == SetState::Dne {
            return;
        }
        self.server_configured = true;
        self.config = Some(answer);
        if self.devices.is_empty() {
            self.devices = device_names.into_iter().map(Device::new).collect();
        }
    }

    /// The peer (or our own other thread) signalled abort (§3.6).
    pub fn handle_abort(&mut self) {
        if self.state != SetState::Dne {
            self.state = SetState::Abort;
        }
    }

    /// GetConfiguration (§1.2, §1.5). `Ok(Some(cfg))`: done. `Ok(None)`: not configured yet,
    /// the transport waits (and answers VD_E_TIMEOUT itself if the wait runs out, with no
    /// state change).
    pub fn get_configuration(&mut self) -> VdResult<Option<VDConfig>> {
        match self.state {
            SetState::Dne => Err(VdError::Protocol),
            SetState::Abort => Err(VdError::Abort),
            SetState::Configurable => {
                if self.server_configured {
                    self.state = SetState::Initializing;
                    Ok(self.config)
                } else {
                    Ok(None)
                }
            }
            SetState::Initializing | SetState::Active | SetState::NormTerm => Ok(self.config),
        }
    }

    /// Looks a device name up: `Ok(index)` when OpenDevice may go ahead (§1.2, §1.5).
    /// VD_E_INVALID for an unknown name once the server has published every device;
    /// `Ok(None)` when the name is unknown but the server has not opened every device yet.
    pub fn open_device(&mut self, name: &str) -> VdResult<Option<usize>> {
        match self.state {
            SetState::Dne | SetState::Configurable | SetState::NormTerm => return Err(VdError::Protocol),
            SetState::Abort => return Err(VdError::Abort),
            SetState::Initializing | SetState::Active => {}
        }
        let Some(index) = self.devices.iter().position(|d| d.name == name) else {
            return Ok(None);
        };
        if self.devices[index].state != DeviceState::NotOpen {
            // "VD_E_PROTOCOL (... device already open)".
            return Err(VdError::Protocol);
        }
        Ok(Some(index))
    }

    /// Learns device names the server published after configuration.
    pub fn handle_device_names(&mut self, names: Vec<String>) {
        for (i, name) in names.into_iter().enumerate() {
            match self.devices.get_mut(i) {
                Some(d) if d.name.is_empty() => d.name = name,
                Some(_) => {}
                None => self.devices.push(Device::new(name)),
            }
        }
    }

    /// The transport opened device `index` on the wire.
    pub fn device_opened(&mut self, index: usize) {
        if let Some(d) = self.devices.get_mut(index) {
            d.state = DeviceState::Open;
            if self.state == SetState::Initializing {
                self.state = SetState::Active;
            }
        }
    }

    /// Checks a GetCommand call before the transport looks at the ring (§1.3, §1.5).
    pub fn check_get_command(&self, index: usize) -> VdResult<()> {
        match self.state {
            SetState::Abort => return Err(VdError::Abort),
            SetState::Active => {}
            _ => return Err(VdError::Protocol),
        }
        match self.devices.get(index).map(|d| d.state) {
            Some(DeviceState::Open) => Ok(()),
            _ => Err(VdError::Protocol),
        }
    }

    /// Classifies a command record taken from device `index`'s ring (§3.5).
    pub fn classify_incoming(&self, index: usize, code: u32) -> Incoming {
        let Some(d) = self.devices.get(index) else {
            return Incoming::AutoFail;
        };
        if !d.io_error {
            return Incoming::Deliver;
        }
        if code == crate::vdi::CommandCode::ClearError.code() {
            if d.outstanding.is_empty() {
                Incoming::Deliver
            } else {
                Incoming::Hold
            }
        } else {
            Incoming::AutoFail
        }
    }

    /// GetCommand took command `id` from the ring: [`ClientMachine::check_get_command`], then
    /// [`ClientMachine::classify_incoming`], and on [`Incoming::Deliver`] also
    /// [`ClientMachine::command_delivered`]: one call (one lock in the transport) per command,
    /// so a GetCommand that finds its command at once locks once (issue 7).
    pub fn accept_incoming(&mut self, index: usize, id: u64, code: u32) -> VdResult<Incoming> {
        self.check_get_command(index)?;
        let class = self.classify_incoming(index, code);
        if class == Incoming::Deliver {
            self.command_delivered(index, id, code);
        }
        Ok(class)
    }

    /// GetCommand delivered command `id` to the caller.
    pub fn command_delivered(&mut self, index: usize, id: u64, code: u32) {
        if let Some(d) = self.devices.get_mut(index) {
            d.outstanding.push_back((id, code));
        }
    }

    /// The device's close marker reached GetCommand: VD_E_CLOSE, and NormTerm once every
    /// opened device is closed (§1.3, §3.6).
    pub fn close_delivered(&mut self, index: usize) -> VdError {
        if let Some(d) = self.devices.get_mut(index) {
            d.state = DeviceState::Closed;
        }
        let all_closed = self.devices.iter().all(|d| d.state != DeviceState::Open);
        if all_closed && self.state == SetState::Active {
            self.state = SetState::NormTerm;
        }
        VdError::Close
    }

    /// CompleteCommand (§1.3): VD_E_ABORT after abort, VD_E_PROTOCOL if the device is not
    /// open, VD_E_INVALID if the command is not active. On success the transport publishes
    /// the completion.
    pub fn complete_command(&mut self, index: usize, id: u64, completion_code: u32) -> VdResult<()> {
        match self.state {
            SetState::Abort => return Err(VdError::Abort),
            SetState::Active => {}
            _ => return Err(VdError::Protocol),
        }
        let Some(d) = self.devices.get_mut(index) else {
            return Err(VdError::Protocol);
        };
        if d.state == DeviceState::NotOpen {
            return Err(VdError::Protocol);
        }
        let Some((_, code)) = super::take_first(&mut d.outstanding, |(i, _)| *i == id) else {
            return Err(VdError::Invalid);
        };
        if code == crate::vdi::CommandCode::ClearError.code() {
            // "a success reply makes the device Active again" (§3.5).
            if completion_code == completion::ERROR_SUCCESS {
                d.io_error = false;
            }
        } else if completion_code != completion::ERROR_SUCCESS {
            // "An error completion puts the device in IO-ERROR" (§3.5).
            d.io_error = true;
        }
        Ok(())
    }

    /// SignalAbort (§1.2, §1.5): VD_E_PROTOCOL in DNE, otherwise → Abort.
    pub fn signal_abort(&mut self) -> VdResult<()> {
        if self.state == SetState::Dne {
            return Err(VdError::Protocol);
        }
        self.state = SetState::Abort;
        Ok(())
    }

    /// Whether Close would find devices still open: opened and not yet closed, outside Abort.
    pub fn devices_still_open(&self) -> bool {
        self.state != SetState::Abort && self.devices.iter().any(|d| d.state == DeviceState::Open)
    }

    /// Close (§1.2, §1.5): VD_E_PROTOCOL in DNE. With devices still open it answers VD_E_OPEN
    /// ("it then triggers SignalAbort and frees everything anyway"); either way → DNE.
    pub fn close(&mut self) -> VdResult<()> {
        if self.state == SetState::Dne {
            return Err(VdError::Protocol);
        }
        let premature = self.devices_still_open();
        *self = ClientMachine::new();
        if premature {
            Err(VdError::Open)
        } else {
            Ok(())
        }
    }
}

impl Device {
    fn new(name: String) -> Device {
        Device {
            name,
            state: DeviceState::NotOpen,
            outstanding: VecDeque::new(),
            io_error: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vdi::{completion::*, CommandCode};
    use rstest::rstest;

    const P: Option<VdError> = Some(VdError::Protocol);
    const A: Option<VdError> = Some(VdError::Abort);
    const OK: Option<VdError> = None;

    #[derive(Debug, Clone, Copy)]
    enum Call {
        Create,
        GetConfiguration,
        OpenDevice,
        GetCommand,
        CompleteCommand,
        SignalAbort,
        Close,
    }

    /// Builds a machine in `state` with one device "set" and, in Active, one outstanding
    /// command with id 7 and one queued in the ring.
    fn machine_in(state: SetState) -> ClientMachine {
        let mut m = ClientMachine::new();
        if state == SetState::Dne {
            return m;
        }
        m.create(&VDConfig::request(1, 0)).unwrap();
        if state == SetState::Configurable {
            return m;
        }
        m.handle_server_configured(VDConfig::request(1, 0), vec!["set".into()]);
        assert_eq!(m.get_configuration().unwrap().map(|c| c.deviceCount), Some(1));
        if state == SetState::Initializing {
            return m;
        }
        let i = m.open_device("set").unwrap().unwrap();
        m.device_opened(i);
        m.command_delivered(0, 7, CommandCode::Write.code());
        match state {
            SetState::Active => {}
            SetState::NormTerm => {
                m.complete_command(0, 7, ERROR_SUCCESS).unwrap();
                assert_eq!(m.close_delivered(0), VdError::Close);
            }
            SetState::Abort => m.signal_abort().unwrap(),
            _ => unreachable!(),
        }
        assert_eq!(m.state(), state);
        m
    }

    fn call(m: &mut ClientMachine, c: Call) -> Option<VdError> {
        match c {
            Call::Create => m.create(&VDConfig::request(1, 0)).err(),
            Call::GetConfiguration => m.get_configuration().err(),
            Call::OpenDevice => m.open_device("set").err(),
            Call::GetCommand => m.check_get_command(0).err(),
            Call::CompleteCommand => m.complete_command(0, 7, ERROR_SUCCESS).err(),
            Call::SignalAbort => m.signal_abort().err(),
            Call::Close => m.close().err(),
        }
    }

    /// Every cell of the §1.5 client table: the code, and the state after the call.
    #[rstest]
    // Create(Ex)
    #[case(Call::Create, SetState::Dne, OK, SetState::Configurable)]
    #[case(Call::Create, SetState::Configurable, P, SetState::Configurable)]
    #[case(Call::Create, SetState::Initializing, P, SetState::Initializing)]
    #[case(Call::Create, SetState::Active, P, SetState::Active)]
    #[case(Call::Create, SetState::NormTerm, P, SetState::NormTerm)]
    #[case(Call::Create, SetState::Abort, P, SetState::Abort)]
    // GetConfiguration
    #[case(Call::GetConfiguration, SetState::Dne, P, SetState::Dne)]
    #[case(Call::GetConfiguration, SetState::Configurable, OK, SetState::Configurable)]
    #[case(Call::GetConfiguration, SetState::Initializing, OK, SetState::Initializing)]
    #[case(Call::GetConfiguration, SetState::Active, OK, SetState::Active)]
    #[case(Call::GetConfiguration, SetState::NormTerm, OK, SetState::NormTerm)]
    #[case(Call::GetConfiguration, SetState::Abort, A, SetState::Abort)]
    // OpenDevice
    #[case(Call::OpenDevice, SetState::Dne, P, SetState::Dne)]
    #[case(Call::OpenDevice, SetState::Configurable, P, SetState::Configurable)]
    #[case(Call::OpenDevice, SetState::Initializing, OK, SetState::Initializing)]
    #[case(Call::OpenDevice, SetState::Active, P, SetState::Active)]
    #[case(Call::OpenDevice, SetState::NormTerm, P, SetState::NormTerm)]
    #[case(Call::OpenDevice, SetState::Abort, A, SetState::Abort)]
    // GetCommand
    #[case(Call::GetCommand, SetState::Dne, P, SetState::Dne)]
    #[case(Call::GetCommand, SetState::Configurable, P, SetState::Configurable)]
    #[case(Call::GetCommand, SetState::Initializing, P, SetState::Initializing)]
    #[case(Call::GetCommand, SetState::Active, OK, SetState::Active)]
    #[case(Call::GetCommand, SetState::NormTerm, P, SetState::NormTerm)]
    #[case(Call::GetCommand, SetState::Abort, A, SetState::Abort)]
    // CompleteCommand
    #[case(Call::CompleteCommand, SetState::Dne, P, SetState::Dne)]
    #[case(Call::CompleteCommand, SetState::Configurable, P, SetState::Configurable)]
    #[case(Call::CompleteCommand, SetState::Initializing, P, SetState::Initializing)]
    #[case(Call::CompleteCommand, SetState::Active, OK, SetState::Active)]
    #[case(Call::CompleteCommand, SetState::NormTerm, P, SetState::NormTerm)]
    #[case(Call::CompleteCommand, SetState::Abort, A, SetState::Abort)]
    // SignalAbort
    #[case(Call::SignalAbort, SetState::Dne, P, SetState::Dne)]
    #[case(Call::SignalAbort, SetState::Configurable, OK, SetState::Abort)]
    #[case(Call::SignalAbort, SetState::Initializing, OK, SetState::Abort)]
    #[case(Call::SignalAbort, SetState::Active, OK, SetState::Abort)]
    #[case(Call::SignalAbort, SetState::NormTerm, OK, SetState::Abort)]
    #[case(Call::SignalAbort, SetState::Abort, OK, SetState::Abort)]
    // Close. The table gives OK in Active, but §1.2 documents VD_E_OPEN when devices are
    // still open ("it then triggers SignalAbort and frees everything anyway"): we follow §1.2.
    #[case(Call::Close, SetState::Dne, P, SetState::Dne)]
    #[case(Call::Close, SetState::Configurable, OK, SetState::Dne)]
    #[case(Call::Close, SetState::Initializing, OK, SetState::Dne)]
    #[case(Call::Close, SetState::Active, Some(VdError::Open), SetState::Dne)]
    #[case(Call::Close, SetState::NormTerm, OK, SetState::Dne)]
    #[case(Call::Close, SetState::Abort, OK, SetState::Dne)]
    fn client_state_table(
        #[case] c: Call,
        #[case] from: SetState,
        #[case] code: Option<VdError>,
        #[case] to: SetState,
    ) {
        let mut m = machine_in(from);
        assert_eq!(call(&mut m, c), code, "{c:?} in {from:?}");
        assert_eq!(m.state(), to, "{c:?} in {from:?}");
    }

    #[test]
    fn get_configuration_waits_until_the_server_configured() {
        let mut m = ClientMachine::new();
        m.create(&VDConfig::request(2, 0)).unwrap();
        assert_eq!(m.get_configuration(), Ok(None));
        assert_eq!(m.state(), SetState::Configurable);
        let mut answer = VDConfig::request(2, 0);
        answer.blockSize = 65536;
        m.handle_server_configured(answer, vec!["a".into(), "b".into()]);
        assert_eq!(m.get_configuration(), Ok(Some(answer)));
        assert_eq!(m.state(), SetState::Initializing);
    }

    #[test]
    fn open_device_rules() {
        let mut m = machine_in(SetState::Initializing);
        m.handle_device_names(vec!["set".into(), "two".into()]);
        assert_eq!(m.open_device("nope"), Ok(None));
        let i = m.open_device("set").unwrap().unwrap();
        m.device_opened(i);
        assert_eq!(m.state(), SetState::Active);
        assert_eq!(m.open_device("set"), Err(VdError::Protocol), "already open");
        assert_eq!(m.open_device("two"), Ok(Some(1)), "second device while Active");
    }

    #[test]
    fn norm_term_needs_every_device_closed() {
        let mut m = machine_in(SetState::Initializing);
        m.handle_device_names(vec!["set".into(), "two".into()]);
        for name in ["set", "two"] {
            let i = m.open_device(name).unwrap().unwrap();
            m.device_opened(i);
        }
        m.close_delivered(0);
        assert_eq!(m.state(), SetState::Active);
        assert_eq!(m.check_get_command(0), Err(VdError::Protocol), "device 0 is done");
        assert_eq!(m.check_get_command(1), Ok(()));
        m.close_delivered(1);
        assert_eq!(m.state(), SetState::NormTerm);
        assert_eq!(m.close(), Ok(()));
    }

    #[test]
    fn complete_command_rejects_unknown_and_double_completion() {
        let mut m = machine_in(SetState::Active);
        assert_eq!(m.complete_command(0, 99, ERROR_SUCCESS), Err(VdError::Invalid));
        assert_eq!(m.complete_command(0, 7, ERROR_SUCCESS), Ok(()));
        assert_eq!(m.complete_command(0, 7, ERROR_SUCCESS), Err(VdError::Invalid));
        assert_eq!(m.complete_command(5, 7, ERROR_SUCCESS), Err(VdError::Protocol));
    }

    /// §3.5: an error completion puts the device in IO-ERROR; queued commands are failed for
    /// the client; ClearError waits for outstanding commands, and success clears the error.
    #[test]
    fn io_error_and_clear_error() {
        let mut m = machine_in(SetState::Active);
        m.command_delivered(0, 8, CommandCode::Write.code());
        m.complete_command(0, 7, ERROR_DISK_FULL).unwrap();
        let write = CommandCode::Write.code();
        let clear = CommandCode::ClearError.code();
        assert_eq!(m.classify_incoming(0, write), Incoming::AutoFail);
        assert_eq!(m.classify_incoming(0, clear), Incoming::Hold, "8 is outstanding");
        assert_eq!(m.accept_incoming(0, 9, clear), Ok(Incoming::Hold));
        assert_eq!(m.outstanding(0), 1, "a held command is not delivered");
        m.complete_command(0, 8, ERROR_SUCCESS).unwrap();
        assert_eq!(m.accept_incoming(0, 9, clear), Ok(Incoming::Deliver));
        assert_eq!(m.outstanding(0), 1, "9 is delivered");
        assert_eq!(
            m.accept_incoming(3, 10, write),
            Err(VdError::Protocol),
            "device 3 is not open"
        );
        m.complete_command(0, 9, ERROR_SUCCESS).unwrap();
        assert_eq!(m.classify_incoming(0, write), Incoming::Deliver);
    }

    #[test]
    fn create_validates_the_request_and_close_allows_reuse() {
        let mut m = ClientMachine::new();
        assert_eq!(m.create(&VDConfig::request(65, 0)), Err(VdError::NotSupported));
        assert_eq!(m.state(), SetState::Dne);
        m.create(&VDConfig::request(1, 0)).unwrap();
        m.close().unwrap();
        assert_eq!(m.create(&VDConfig::request(1, 0)), Ok(()), "reusable after Close");
    }
}
