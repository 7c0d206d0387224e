//! The vocabulary of the property-based scenarios: one [`Step`] per VDI call (client or
//! server side, or a fault), and the [`Outcome`] a call produced.
//!
//! Steps are symbolic where the concrete value is the implementation's business (which
//! command object to complete is "the k-th outstanding one"; a device is its index), and
//! concrete where the model must predict the result (sizes, codes, positions). Both are
//! serde types: a transcript is a list of steps with their expected outcomes, and the
//! `vdisim-peer script` contract exchanges one step and one outcome per line as JSON.

use serde::{Deserialize, Serialize};
use std::fmt;
use vdisim::vdi::{completion, CommandCode, VdError};

/// Which amount a CompleteCommand reports as bytes transferred, relative to the command's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bytes {
    Full,
    Half,
    Zero,
    /// One more than the command's size: VD_E_INVALID for Read/Write (§1.3).
    Over,
}

impl Bytes {
    pub fn of(self, size: u32) -> u32 {
        match self {
            Bytes::Full => size,
            Bytes::Half => size / 2,
            Bytes::Zero => 0,
            Bytes::Over => size.saturating_add(1),
        }
    }
}

/// Which name a server OpenDevice uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceName {
    /// The next device's name: the set name, then `<set>_1`, `<set>_2`... (§3.3).
    Next,
    /// The first device's name again (VD_E_INVALID once it is open).
    Duplicate,
    /// A name with a `/` (VD_E_INVALID).
    Bad,
}

/// BeginConfiguration's arguments, as the scenarios choose them (§1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Config {
    /// VDF_WriteMedia, VDF_ReadMedia, optionally | VDF_CompleteEnabled.
    pub features: u32,
    pub block_size: u32,
    pub max_transfer_size: u32,
}

/// One call by one side, or a fault. Device indices are the order in which the server opened
/// the devices (which is also the client's index).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "call")]
pub enum Step {
    // ---- client (IClientVirtualDeviceSet2 / IClientVirtualDevice, §1.2, §1.3) ----
    /// CreateEx with `devices` devices (1..=64 valid) and optionally VDF_RequestComplete.
    CCreate {
        devices: u32,
        request_complete: bool,
    },
    /// GetConfiguration(timeout 0).
    CGetConfiguration,
    /// OpenDevice of device `dev` (by its name), or of an unknown name when `dev` is None.
    COpenDevice {
        dev: Option<usize>,
    },
    /// GetCommand(timeout 0) on device `dev`.
    CGetCommand {
        dev: usize,
    },
    /// CompleteCommand of the `pick`-th (modulo) outstanding command of `dev`.
    CComplete {
        dev: usize,
        pick: usize,
        code: u32,
        bytes: Bytes,
        position: u64,
    },
    /// CompleteCommand again on the command of `dev` completed last (VD_E_INVALID).
    CCompleteStale {
        dev: usize,
    },
    /// CompleteCommand on device `to` of the first outstanding command of device `from`.
    CCompleteWrongDevice {
        from: usize,
        to: usize,
    },
    CSignalAbort,
    CClose,
    /// The client process dies (in-process: its liveness token is made stale).
    CDies,
    // ---- server (IServerVirtualDeviceSet2 / IServerVirtualDevice, §1.4) ----
    SOpen,
    SGetConfiguration,
    SBeginConfiguration {
        config: Config,
    },
    SRequestBuffers {
        size: u32,
        count: u32,
    },
    SEndConfiguration,
    SOpenDevice {
        name: DeviceName,
    },
    /// SendCommand; Read and Write get a fresh buffer of `size` bytes.
    SSend {
        dev: usize,
        code: u32,
        size: u32,
        position: u64,
    },
    /// SendCommand(VDC_Flush) until it fails: fills the device's queue.
    SFlood {
        dev: usize,
    },
    /// The next completion of device `dev`, waiting 0 ms.
    SGetCompletion {
        dev: usize,
    },
    SCloseDevice {
        dev: usize,
    },
    SSignalAbort,
    SClose,
    /// The server process dies (in-process: its liveness token is made stale; across
    /// processes: the peer is killed).
    SDies,
}

/// Which side a step belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Client,
    Server,
}

impl Step {
    pub fn side(&self) -> Side {
        use Step::*;
        match self {
            CCreate { .. }
            | CGetConfiguration
            | COpenDevice { .. }
            | CGetCommand { .. }
            | CComplete { .. }
            | CCompleteStale { .. }
            | CCompleteWrongDevice { .. }
            | CSignalAbort
            | CClose
            | CDies => Side::Client,
            _ => Side::Server,
        }
    }

    /// The call as a transcript line shows it, e.g. `SendCommand(dev=0, VDC_Write, 4096)`.
    pub fn render(&self) -> String {
        use Step::*;
        match self {
            CCreate {
                devices,
                request_complete,
            } => format!(
                "CreateEx(devices={devices}{})",
                if *request_complete { ", VDF_RequestComplete" } else { "" }
            ),
            CGetConfiguration => "GetConfiguration(timeout=0)".into(),
            COpenDevice { dev: Some(d) } => format!("OpenDevice(dev={d})"),
            COpenDevice { dev: None } => "OpenDevice(unknown name)".into(),
            CGetCommand { dev } => format!("GetCommand(dev={dev}, timeout=0)"),
            CComplete {
                dev,
                pick,
                code,
                bytes,
                position,
            } => format!(
                "CompleteCommand(dev={dev}, outstanding #{pick}, {}, bytes={bytes:?}, position={position})",
                completion_name(*code)
            ),
            CCompleteStale { dev } => format!("CompleteCommand(dev={dev}, already completed)"),
            CCompleteWrongDevice { from, to } => format!("CompleteCommand(dev={to}, a command of dev={from})"),
            CSignalAbort => "SignalAbort()".into(),
            CClose => "Close()".into(),
            CDies => "<client process dies>".into(),
            SOpen => "Open()".into(),
            SGetConfiguration => "GetConfiguration()".into(),
            SBeginConfiguration { config } => format!(
                "BeginConfiguration(features=0x{:x}, blockSize={}, maxTransferSize={})",
                config.features, config.block_size, config.max_transfer_size
            ),
            SRequestBuffers { size, count } => format!("RequestBuffers(size={size}, count={count})"),
            SEndConfiguration => "EndConfiguration()".into(),
            SOpenDevice { name } => format!("OpenDevice({name:?})"),
            SSend {
                dev,
                code,
                size,
                position,
            } => format!(
                "SendCommand(dev={dev}, {}, size={size}, position={position})",
                command_name(*code)
            ),
            SFlood { dev } => format!("SendCommand(dev={dev}, VDC_Flush) until it fails"),
            SGetCompletion { dev } => format!("GetCompletion(dev={dev}, timeout=0)"),
            SCloseDevice { dev } => format!("CloseDevice(dev={dev})"),
            SSignalAbort => "SignalAbort()".into(),
            SClose => "Close()".into(),
            SDies => "<server process dies>".into(),
        }
    }
}

/// What a call returned: the code, plus what came with it. Fields not relevant to a call are
/// absent (and skipped in JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Outcome {
    /// `NOERROR` or a `VD_E_*` name; for SendCommand's flood, the code that stopped it.
    pub result: String,
    /// GetCommand: the delivered command's code. GetCompletion: the completed command's code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    /// GetCompletion: the Win32 completion code; a refused SendCommand: what its callback saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u32>,
    /// SendCommand flood: how many commands were accepted before it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent: Option<u32>,
    /// Server Close: how many commands it completed with ERROR_OPERATION_ABORTED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted: Option<u32>,
}

impl Outcome {
    pub fn ok() -> Outcome {
        Outcome::code("NOERROR")
    }

    pub fn code(result: &str) -> Outcome {
        Outcome {
            result: result.to_string(),
            ..Outcome::default()
        }
    }

    pub fn err(e: VdError) -> Outcome {
        Outcome::code(e.name())
    }

    pub fn of<T>(r: &Result<T, VdError>) -> Outcome {
        match r {
            Ok(_) => Outcome::ok(),
            Err(e) => Outcome::err(*e),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.result)?;
        if let Some(c) = self.command {
            write!(f, " {}", command_name(c))?;
        }
        if let Some(s) = self.size {
            write!(f, " size={s}")?;
        }
        if let Some(c) = self.completion {
            write!(f, " completion={}", completion_name(c))?;
        }
        if let Some(b) = self.bytes {
            write!(f, " bytes={b}")?;
        }
        if let Some(p) = self.position {
            write!(f, " position={p}")?;
        }
        if let Some(n) = self.sent {
            write!(f, " after {n} accepted")?;
        }
        if let Some(n) = self.aborted {
            write!(f, " aborted={n}")?;
        }
        Ok(())
    }
}

/// `VDC_Write`, or the number for codes that are not VDI commands.
pub fn command_name(code: u32) -> String {
    CommandCode::from_code(code).map_or_else(|| format!("command {code}"), |c| c.name().to_string())
}

/// `ERROR_SUCCESS`, or the number for codes without a name.
pub fn completion_name(code: u32) -> String {
    completion::name(code).map_or_else(|| code.to_string(), str::to_string)
}
