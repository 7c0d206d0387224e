//! The VDI vocabulary: the constants and structures of `vdi.h` / `vdierror.h` (SPEC §2).
//!
//! Values are copied exactly from the public headers; tests at the bottom pin every one so a
//! typo cannot slip in unnoticed.

use std::fmt;

/// `VD_ERROR(c) = MAKE_HRESULT(1, 0x77, c)` (SPEC §2.1).
const fn vd_error(code: u32) -> u32 {
    0x8077_0000 | code
}

/// Every VDI failure HRESULT, one variant per `VD_E_*` (SPEC §2.1).
///
/// `NOERROR` is `Ok(())`: APIs return `Result<_, VdError>`. On Linux the same values are
/// negative `int`s ([`VdError::as_linux_int`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[repr(u32)]
pub enum VdError {
    /// `VD_E_NOTOPEN` 0x80770002: the set or device is not open.
    NotOpen = vd_error(0x2),
    /// `VD_E_TIMEOUT` 0x80770003: the wait ran out; nothing changed, the call may be retried.
    Timeout = vd_error(0x3),
    /// `VD_E_ABORT` 0x80770004: either side signalled abort (SPEC §3.6).
    Abort = vd_error(0x4),
    /// `VD_E_SECURITY` 0x80770005: the caller may not open the set.
    Security = vd_error(0x5),
    /// `VD_E_INVALID` 0x80770006: a bad argument (unknown device name, command not active...).
    Invalid = vd_error(0x6),
    /// `VD_E_INSTANCE_NAME` 0x80770007: the instance name is not valid.
    InstanceName = vd_error(0x7),
    /// `VD_E_NOTSUPPORTED` 0x80770009: a configuration field is not supported.
    NotSupported = vd_error(0x9),
    /// `VD_E_MEMORY` 0x8077000a: the buffer area could not be allocated.
    Memory = vd_error(0xa),
    /// `VD_E_UNEXPECTED` 0x8077000b: an internal or peer failure with no better code.
    Unexpected = vd_error(0xb),
    /// `VD_E_PROTOCOL` 0x8077000c: the call is not allowed in the current state (SPEC §1.5).
    Protocol = vd_error(0xc),
    /// `VD_E_OPEN` 0x8077000d: devices are open (Close) or all devices are open (OpenDevice).
    Open = vd_error(0xd),
    /// `VD_E_CLOSE` 0x8077000e: the server closed the device; the normal end of a stream.
    Close = vd_error(0xe),
    /// `VD_E_BUSY` 0x8077000f.
    Busy = vd_error(0xf),
    /// `VD_E_QUEUE_FULL`: SendCommand found the device's queue full. Not in any public header,
    /// so its value is ours (SPEC §2.1 marks it UNVERIFIED); we use the next free code.
    QueueFull = vd_error(0x10),
    /// `VD_E_IO_ERROR`: SendCommand on a device in the IO-ERROR state (SPEC §3.5). Value ours,
    /// as for `QueueFull`.
    IoError = vd_error(0x11),
}

impl VdError {
    /// Every variant, for tables and tests.
    pub const ALL: [VdError; 15] = [
        VdError::NotOpen,
        VdError::Timeout,
        VdError::Abort,
        VdError::Security,
        VdError::Invalid,
        VdError::InstanceName,
        VdError::NotSupported,
        VdError::Memory,
        VdError::Unexpected,
        VdError::Protocol,
        VdError::Open,
        VdError::Close,
        VdError::Busy,
        VdError::QueueFull,
        VdError::IoError,
    ];

    /// The HRESULT value.
    pub const fn hresult(self) -> u32 {
        self as u32
    }

    /// The Linux `int` return value (the same bits, negative).
    pub const fn as_linux_int(self) -> i32 {
        self as u32 as i32
    }

    /// The header name, e.g. `VD_E_PROTOCOL`.
    pub const fn name(self) -> &'static str {
        match self {
            VdError::NotOpen => "VD_E_NOTOPEN",
            VdError::Timeout => "VD_E_TIMEOUT",
            VdError::Abort => "VD_E_ABORT",
            VdError::Security => "VD_E_SECURITY",
            VdError::Invalid => "VD_E_INVALID",
            VdError::InstanceName => "VD_E_INSTANCE_NAME",
            VdError::NotSupported => "VD_E_NOTSUPPORTED",
            VdError::Memory => "VD_E_MEMORY",
            VdError::Unexpected => "VD_E_UNEXPECTED",
            VdError::Protocol => "VD_E_PROTOCOL",
            VdError::Open => "VD_E_OPEN",
            VdError::Close => "VD_E_CLOSE",
            VdError::Busy => "VD_E_BUSY",
            VdError::QueueFull => "VD_E_QUEUE_FULL",
            VdError::IoError => "VD_E_IO_ERROR",
        }
    }

    /// Maps an HRESULT back to its variant; `None` for NOERROR and unknown values.
    pub fn from_hresult(value: u32) -> Option<VdError> {
        VdError::ALL.into_iter().find(|e| e.hresult() == value)
    }

    /// Maps a header name (`VD_E_ABORT`) back to its variant.
    pub fn from_name(name: &str) -> Option<VdError> {
        VdError::ALL.into_iter().find(|e| e.name() == name)
    }
}

impl fmt::Display for VdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (0x{:08x})", self.name(), self.hresult())
    }
}

impl std::error::Error for VdError {}

/// `NOERROR`, for the C ABIs.
pub const NOERROR: u32 = 0;

/// Result of every VDI call.
pub type VdResult<T> = Result<T, VdError>;

/// Renders a call result the way transcripts and reports show it: `NOERROR` or the error name.
pub fn result_name<T>(result: &VdResult<T>) -> &'static str {
    match result {
        Ok(_) => "NOERROR",
        Err(e) => e.name(),
    }
}

/// `VDFeatures` bits (SPEC §2.2).
pub mod features {
    pub const VDF_REMOVABLE: u32 = 0x1;
    pub const VDF_REWIND: u32 = 0x2;
    pub const VDF_POSITION: u32 = 0x10;
    pub const VDF_SKIP_BLOCKS: u32 = 0x20;
    pub const VDF_REVERSE_POSITION: u32 = 0x40;
    pub const VDF_DISCARD: u32 = 0x80;
    pub const VDF_FILE_MARKS: u32 = 0x100;
    pub const VDF_RANDOM_ACCESS: u32 = 0x200;
    pub const VDF_SNAPSHOT_PREPARE: u32 = 0x400;
    pub const VDF_ENUM_FROZEN_FILES: u32 = 0x800;
    pub const VDF_VSS_WRITER: u32 = 0x1000;
    pub const VDF_REQUEST_COMPLETE: u32 = 0x2000;
    pub const VDF_WRITE_MEDIA: u32 = 0x10000;
    pub const VDF_READ_MEDIA: u32 = 0x20000;
    pub const VDF_COMPLETE_ENABLED: u32 = 0x40000;
    pub const VDF_LATCH_STATS: u32 = 0x8000_0000;

    /// `VDF_LikePipe`: no positioning at all.
    pub const VDF_LIKE_PIPE: u32 = 0;
    /// `VDF_LikeTape` = FileMarks|Removable|Rewind|Position|SkipBlocks|ReversePosition = 0x173.
    pub const VDF_LIKE_TAPE: u32 =
        VDF_FILE_MARKS | VDF_REMOVABLE | VDF_REWIND | VDF_POSITION | VDF_SKIP_BLOCKS | VDF_REVERSE_POSITION;
    /// `VDF_LikeDisk` = RandomAccess.
    pub const VDF_LIKE_DISK: u32 = VDF_RANDOM_ACCESS;

    /// Bits a client may put in `VDConfig::features` on CreateEx. The media-kind bits must
    /// form pipe, tape or disk, each optionally with Removable and Discard (SPEC §2.2).
    pub const CLIENT_REQUESTABLE: u32 = VDF_LIKE_TAPE
        | VDF_LIKE_DISK
        | VDF_DISCARD
        | VDF_SNAPSHOT_PREPARE
        | VDF_ENUM_FROZEN_FILES
        | VDF_VSS_WRITER
        | VDF_REQUEST_COMPLETE
        | VDF_LATCH_STATS;

    /// Whether the client's requested media kind is one VDI supports: pipe, tape or disk, each
    /// optionally plus Removable and Discard (SPEC §2.2 "Feature Bits").
    pub fn is_supported_media(features: u32) -> bool {
        if features & !CLIENT_REQUESTABLE != 0 {
            return false;
        }
        let kind = features & (VDF_LIKE_TAPE | VDF_LIKE_DISK) & !(VDF_REMOVABLE | VDF_DISCARD);
        let tape_core = VDF_LIKE_TAPE & !VDF_REMOVABLE;
        kind == VDF_LIKE_PIPE || kind == tape_core || kind == VDF_LIKE_DISK
    }
}

/// `VDCommands` codes (SPEC §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[repr(u32)]
pub enum CommandCode {
    Read = 1,
    Write = 2,
    ClearError = 3,
    Rewind = 4,
    WriteMark = 5,
    SkipMarks = 6,
    SkipBlocks = 7,
    Load = 8,
    GetPosition = 9,
    SetPosition = 10,
    Discard = 11,
    Flush = 12,
    Snapshot = 13,
    MountSnapshot = 14,
    PrepareToFreeze = 15,
    FileInfoBegin = 16,
    FileInfoEnd = 17,
    GetError = 18,
    Complete = 19,
}

impl CommandCode {
    pub const ALL: [CommandCode; 19] = [
        CommandCode::Read,
        CommandCode::Write,
        CommandCode::ClearError,
        CommandCode::Rewind,
        CommandCode::WriteMark,
        CommandCode::SkipMarks,
        CommandCode::SkipBlocks,
        CommandCode::Load,
        CommandCode::GetPosition,
        CommandCode::SetPosition,
        CommandCode::Discard,
        CommandCode::Flush,
        CommandCode::Snapshot,
        CommandCode::MountSnapshot,
        CommandCode::PrepareToFreeze,
        CommandCode::FileInfoBegin,
        CommandCode::FileInfoEnd,
        CommandCode::GetError,
        CommandCode::Complete,
    ];

    /// The numeric code.
    pub const fn code(self) -> u32 {
        self as u32
    }

    /// Parses a wire value; `None` for codes outside `VDC_Read..=VDC_Complete`.
    pub fn from_code(code: u32) -> Option<CommandCode> {
        CommandCode::ALL.into_iter().find(|c| c.code() == code)
    }

    /// Whether the command carries a data buffer (Read and Write only, SPEC §3.4).
    pub const fn has_buffer(self) -> bool {
        matches!(self, CommandCode::Read | CommandCode::Write)
    }

    /// The header name, e.g. `VDC_Write`.
    pub const fn name(self) -> &'static str {
        match self {
            CommandCode::Read => "VDC_Read",
            CommandCode::Write => "VDC_Write",
            CommandCode::ClearError => "VDC_ClearError",
            CommandCode::Rewind => "VDC_Rewind",
            CommandCode::WriteMark => "VDC_WriteMark",
            CommandCode::SkipMarks => "VDC_SkipMarks",
            CommandCode::SkipBlocks => "VDC_SkipBlocks",
            CommandCode::Load => "VDC_Load",
            CommandCode::GetPosition => "VDC_GetPosition",
            CommandCode::SetPosition => "VDC_SetPosition",
            CommandCode::Discard => "VDC_Discard",
            CommandCode::Flush => "VDC_Flush",
            CommandCode::Snapshot => "VDC_Snapshot",
            CommandCode::MountSnapshot => "VDC_MountSnapshot",
            CommandCode::PrepareToFreeze => "VDC_PrepareToFreeze",
            CommandCode::FileInfoBegin => "VDC_FileInfoBegin",
            CommandCode::FileInfoEnd => "VDC_FileInfoEnd",
            CommandCode::GetError => "VDC_GetError",
            CommandCode::Complete => "VDC_Complete",
        }
    }
}

impl fmt::Display for CommandCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `VDWhence`, carried in `size` of VDC_SetPosition with RandomAccess (SPEC §2.3, §3.4).
pub mod whence {
    pub const VDC_BEGINNING: u32 = 0;
    pub const VDC_CURRENT: u32 = 1;
    pub const VDC_END: u32 = 2;
}

/// Win32 completion codes used with CompleteCommand (SPEC §2.5).
pub mod completion {
    pub const ERROR_SUCCESS: u32 = 0;
    pub const ERROR_INVALID_HANDLE: u32 = 6;
    pub const ERROR_ARENA_TRASHED: u32 = 7;
    pub const ERROR_BAD_ENVIRONMENT: u32 = 10;
    pub const ERROR_HANDLE_EOF: u32 = 38;
    pub const ERROR_HANDLE_DISK_FULL: u32 = 39;
    pub const ERROR_NOT_SUPPORTED: u32 = 50;
    pub const ERROR_DISK_FULL: u32 = 112;
    pub const ERROR_OPERATION_ABORTED: u32 = 995;
    pub const ERROR_END_OF_MEDIA: u32 = 1100;
    pub const ERROR_FILEMARK_DETECTED: u32 = 1101;
    pub const ERROR_NO_DATA_DETECTED: u32 = 1104;
    pub const ERROR_IO_DEVICE: u32 = 1117;
    pub const ERROR_EOM_OVERFLOW: u32 = 1129;
    pub const ERROR_NO_SYSTEM_RESOURCES: u32 = 1450;

    /// Every named code with its name.
    pub const NAMED: [(u32, &str); 15] = [
        (ERROR_SUCCESS, "ERROR_SUCCESS"),
        (ERROR_INVALID_HANDLE, "ERROR_INVALID_HANDLE"),
        (ERROR_ARENA_TRASHED, "ERROR_ARENA_TRASHED"),
        (ERROR_BAD_ENVIRONMENT, "ERROR_BAD_ENVIRONMENT"),
        (ERROR_HANDLE_EOF, "ERROR_HANDLE_EOF"),
        (ERROR_HANDLE_DISK_FULL, "ERROR_HANDLE_DISK_FULL"),
        (ERROR_NOT_SUPPORTED, "ERROR_NOT_SUPPORTED"),
        (ERROR_DISK_FULL, "ERROR_DISK_FULL"),
        (ERROR_OPERATION_ABORTED, "ERROR_OPERATION_ABORTED"),
        (ERROR_END_OF_MEDIA, "ERROR_END_OF_MEDIA"),
        (ERROR_FILEMARK_DETECTED, "ERROR_FILEMARK_DETECTED"),
        (ERROR_NO_DATA_DETECTED, "ERROR_NO_DATA_DETECTED"),
        (ERROR_IO_DEVICE, "ERROR_IO_DEVICE"),
        (ERROR_EOM_OVERFLOW, "ERROR_EOM_OVERFLOW"),
        (ERROR_NO_SYSTEM_RESOURCES, "ERROR_NO_SYSTEM_RESOURCES"),
    ];

    /// The name of a completion code, or `None` for codes vdi.h/winerror.h do not name here.
    pub fn name(code: u32) -> Option<&'static str> {
        NAMED.iter().find(|(c, _)| *c == code).map(|(_, n)| *n)
    }

    /// Whether a completion code means end of data on a Read (SPEC §3.2).
    pub const fn is_end_of_data(code: u32) -> bool {
        matches!(code, ERROR_HANDLE_EOF | ERROR_NO_DATA_DETECTED)
    }
}

/// `INFINITE` for the Windows-style millisecond timeouts.
pub const INFINITE: u32 = 0xFFFF_FFFF;

/// The most devices one set may have (SPEC §2.4).
pub const MAX_DEVICES: u32 = 64;

/// `VDConfig`: eleven 32-bit fields, 44 bytes (SPEC §2.4). The first seven are the client's
/// request, the last four the server's answer.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[allow(non_snake_case)]
pub struct VDConfig {
    pub deviceCount: u32,
    pub features: u32,
    pub prefixZoneSize: u32,
    pub alignment: u32,
    pub softFileMarkBlockSize: u32,
    pub EOMWarningSize: u32,
    /// Milliseconds; 0 = infinite. The server aborts after two intervals without progress.
    pub serverTimeOut: u32,
    pub blockSize: u32,
    /// Deprecated; always 4.
    pub maxIODepth: u32,
    pub maxTransferSize: u32,
    pub bufferAreaSize: u32,
}

impl VDConfig {
    /// A client request for `devices` devices with the given features, everything else zero.
    pub fn request(devices: u32, features: u32) -> VDConfig {
        VDConfig {
            deviceCount: devices,
            features,
            ..VDConfig::default()
        }
    }

    /// As an array, in header order (for the wire and for hashing).
    pub fn to_words(&self) -> [u32; 11] {
        [
            self.deviceCount,
            self.features,
            self.prefixZoneSize,
            self.alignment,
            self.softFileMarkBlockSize,
            self.EOMWarningSize,
            self.serverTimeOut,
            self.blockSize,
            self.maxIODepth,
            self.maxTransferSize,
            self.bufferAreaSize,
        ]
    }

    /// Inverse of [`VDConfig::to_words`].
    pub fn from_words(w: [u32; 11]) -> VDConfig {
        VDConfig {
            deviceCount: w[0],
            features: w[1],
            prefixZoneSize: w[2],
            alignment: w[3],
            softFileMarkBlockSize: w[4],
            EOMWarningSize: w[5],
            serverTimeOut: w[6],
            blockSize: w[7],
            maxIODepth: w[8],
            maxTransferSize: w[9],
            bufferAreaSize: w[10],
        }
    }

    /// The checks CreateEx makes on a client request (SPEC §1.2, §2.2, §2.4): VD_E_NOTSUPPORTED
    /// for a bad field.
    pub fn validate_request(&self) -> VdResult<()> {
        if self.deviceCount == 0 || self.deviceCount > MAX_DEVICES {
            return Err(VdError::NotSupported);
        }
        if !features::is_supported_media(self.features) {
            return Err(VdError::NotSupported);
        }
        // Alignment is a power of two no larger than 64 KiB (0 = use the block size) (§1.4).
        if self.alignment != 0 && (!self.alignment.is_power_of_two() || self.alignment > 65536) {
            return Err(VdError::NotSupported);
        }
        // The prefix zone sits before each buffer; keep it to something a page can hold.
        if self.prefixZoneSize > 65536 {
            return Err(VdError::NotSupported);
        }
        if self.softFileMarkBlockSize != 0 && self.features & features::VDF_FILE_MARKS == 0 {
            return Err(VdError::NotSupported);
        }
        Ok(())
    }
}

/// The C `VDC_Command` as handed to clients (SPEC §2.4): 24 bytes on x86-64.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
#[allow(non_snake_case)]
pub struct VDC_Command {
    pub commandCode: u32,
    pub size: u32,
    pub position: u64,
    pub buffer: *mut u8,
}

/// The C `VDS_Command` of the server interface (SPEC §2.4): 56 bytes on x86-64.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
#[allow(non_snake_case)]
pub struct VDS_Command {
    pub commandCode: u32,
    pub size: u32,
    pub inPosition: u64,
    pub outPosition: u64,
    pub buffer: *mut u8,
    pub completionRoutine: *mut u8,
    pub completionContext: *mut u8,
    pub completionCode: u32,
    pub bytesTransferred: u32,
}

/// The COM identities of §1.1, for the vdi.h-style C interface.
pub mod guids {
    pub const IID_ICLIENT_VIRTUAL_DEVICE: &str = "40700424-0080-11d2-851f-00c04fc21759";
    pub const IID_ICLIENT_VIRTUAL_DEVICE_SET: &str = "40700425-0080-11d2-851f-00c04fc21759";
    pub const IID_ICLIENT_VIRTUAL_DEVICE_SET2: &str = "d0e6eb07-7a62-11d2-8573-00c04fc21759";
    pub const IID_ISERVER_VIRTUAL_DEVICE: &str = "b5e7a131-a7bd-11d1-84c2-00c04fc21759";
    pub const IID_ISERVER_VIRTUAL_DEVICE_SET: &str = "b5e7a132-a7bd-11d1-84c2-00c04fc21759";
    pub const IID_ISERVER_VIRTUAL_DEVICE_SET2: &str = "AECBD0D6-24C6-11d3-85B7-00C04FC21759";
    /// `CLSID_MSSQL_ClientVirtualDeviceSet` is the IID's GUID.
    pub const CLSID_MSSQL_CLIENT_VIRTUAL_DEVICE_SET: &str = IID_ICLIENT_VIRTUAL_DEVICE_SET;
}

#[cfg(test)]
mod tests {
    use super::completion::*;
    use super::features::*;
    use super::*;
    use rstest::rstest;
    use std::mem::{offset_of, size_of};

    #[rstest]
    #[case(VdError::NotOpen, 0x8077_0002, "VD_E_NOTOPEN")]
    #[case(VdError::Timeout, 0x8077_0003, "VD_E_TIMEOUT")]
    #[case(VdError::Abort, 0x8077_0004, "VD_E_ABORT")]
    #[case(VdError::Security, 0x8077_0005, "VD_E_SECURITY")]
    #[case(VdError::Invalid, 0x8077_0006, "VD_E_INVALID")]
    #[case(VdError::InstanceName, 0x8077_0007, "VD_E_INSTANCE_NAME")]
    #[case(VdError::NotSupported, 0x8077_0009, "VD_E_NOTSUPPORTED")]
    #[case(VdError::Memory, 0x8077_000a, "VD_E_MEMORY")]
    #[case(VdError::Unexpected, 0x8077_000b, "VD_E_UNEXPECTED")]
    #[case(VdError::Protocol, 0x8077_000c, "VD_E_PROTOCOL")]
    #[case(VdError::Open, 0x8077_000d, "VD_E_OPEN")]
    #[case(VdError::Close, 0x8077_000e, "VD_E_CLOSE")]
    #[case(VdError::Busy, 0x8077_000f, "VD_E_BUSY")]
    fn hresults_match_vdierror_h(#[case] e: VdError, #[case] value: u32, #[case] name: &str) {
        assert_eq!(e.hresult(), value);
        assert_eq!(e.name(), name);
        assert_eq!(e.to_string(), format!("{name} (0x{value:08x})"));
        assert_eq!(VdError::from_hresult(value), Some(e));
        assert_eq!(VdError::from_name(name), Some(e));
        assert!(e.as_linux_int() < 0);
    }

    #[test]
    fn error_values_are_distinct_and_code_8_unused() {
        let mut values: Vec<u32> = VdError::ALL.iter().map(|e| e.hresult()).collect();
        values.sort_unstable();
        values.dedup();
        assert_eq!(values.len(), VdError::ALL.len());
        assert_eq!(VdError::from_hresult(0x8077_0008), None);
        assert_eq!(VdError::from_hresult(NOERROR), None);
    }

    #[rstest]
    #[case(VDF_REMOVABLE, 0x1)]
    #[case(VDF_REWIND, 0x2)]
    #[case(VDF_POSITION, 0x10)]
    #[case(VDF_SKIP_BLOCKS, 0x20)]
    #[case(VDF_REVERSE_POSITION, 0x40)]
    #[case(VDF_DISCARD, 0x80)]
    #[case(VDF_FILE_MARKS, 0x100)]
    #[case(VDF_RANDOM_ACCESS, 0x200)]
    #[case(VDF_SNAPSHOT_PREPARE, 0x400)]
    #[case(VDF_ENUM_FROZEN_FILES, 0x800)]
    #[case(VDF_VSS_WRITER, 0x1000)]
    #[case(VDF_REQUEST_COMPLETE, 0x2000)]
    #[case(VDF_WRITE_MEDIA, 0x10000)]
    #[case(VDF_READ_MEDIA, 0x20000)]
    #[case(VDF_COMPLETE_ENABLED, 0x40000)]
    #[case(VDF_LATCH_STATS, 0x8000_0000)]
    #[case(VDF_LIKE_PIPE, 0)]
    #[case(VDF_LIKE_TAPE, 0x173)]
    #[case(VDF_LIKE_DISK, 0x200)]
    fn features_match_vdi_h(#[case] actual: u32, #[case] expected: u32) {
        assert_eq!(actual, expected);
    }

    #[rstest]
    #[case(VDF_LIKE_PIPE, true)]
    #[case(VDF_LIKE_TAPE, true)]
    #[case(VDF_LIKE_DISK, true)]
    #[case(VDF_LIKE_PIPE | VDF_REQUEST_COMPLETE, true)]
    #[case(VDF_LIKE_DISK | VDF_REMOVABLE | VDF_DISCARD, true)]
    #[case(VDF_LIKE_TAPE & !VDF_REMOVABLE, true)]
    #[case(VDF_LIKE_TAPE | VDF_RANDOM_ACCESS, false)]
    #[case(VDF_REWIND, false)]
    #[case(VDF_WRITE_MEDIA, false)]
    #[case(0x0400_0000, false)]
    fn only_pipe_tape_or_disk_media(#[case] f: u32, #[case] ok: bool) {
        assert_eq!(is_supported_media(f), ok);
    }

    #[test]
    fn command_codes_match_vdi_h() {
        for (i, c) in CommandCode::ALL.iter().enumerate() {
            assert_eq!(c.code(), i as u32 + 1, "{c}");
            assert_eq!(CommandCode::from_code(c.code()), Some(*c));
        }
        assert_eq!(CommandCode::Flush.code(), 12);
        assert_eq!(CommandCode::Complete.code(), 19);
        assert_eq!(CommandCode::from_code(0), None);
        assert_eq!(CommandCode::from_code(20), None);
        assert_eq!((whence::VDC_BEGINNING, whence::VDC_CURRENT, whence::VDC_END), (0, 1, 2));
    }

    #[rstest]
    #[case(ERROR_SUCCESS, 0)]
    #[case(ERROR_INVALID_HANDLE, 6)]
    #[case(ERROR_ARENA_TRASHED, 7)]
    #[case(ERROR_BAD_ENVIRONMENT, 10)]
    #[case(ERROR_HANDLE_EOF, 38)]
    #[case(ERROR_HANDLE_DISK_FULL, 39)]
    #[case(ERROR_NOT_SUPPORTED, 50)]
    #[case(ERROR_DISK_FULL, 112)]
    #[case(ERROR_OPERATION_ABORTED, 995)]
    #[case(ERROR_END_OF_MEDIA, 1100)]
    #[case(ERROR_FILEMARK_DETECTED, 1101)]
    #[case(ERROR_NO_DATA_DETECTED, 1104)]
    #[case(ERROR_IO_DEVICE, 1117)]
    #[case(ERROR_EOM_OVERFLOW, 1129)]
    #[case(ERROR_NO_SYSTEM_RESOURCES, 1450)]
    fn completion_codes_match_winerror_h(#[case] actual: u32, #[case] expected: u32) {
        assert_eq!(actual, expected);
        assert!(completion::name(actual).is_some());
    }

    #[test]
    fn struct_layouts_match_the_c_headers() {
        assert_eq!(size_of::<VDConfig>(), 44);
        assert_eq!(offset_of!(VDConfig, serverTimeOut), 24);
        assert_eq!(offset_of!(VDConfig, bufferAreaSize), 40);
        assert_eq!(size_of::<VDC_Command>(), 24);
        assert_eq!(offset_of!(VDC_Command, position), 8);
        assert_eq!(offset_of!(VDC_Command, buffer), 16);
        assert_eq!(size_of::<VDS_Command>(), 56);
        assert_eq!(offset_of!(VDS_Command, completionCode), 48);
    }

    #[test]
    fn config_words_round_trip_and_request_checks() {
        let c = VDConfig::from_words([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
        assert_eq!(c.to_words(), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
        assert_eq!(VDConfig::request(1, 0).validate_request(), Ok(()));
        assert_eq!(VDConfig::request(64, VDF_LIKE_DISK).validate_request(), Ok(()));
        assert_eq!(VDConfig::request(0, 0).validate_request(), Err(VdError::NotSupported));
        assert_eq!(VDConfig::request(65, 0).validate_request(), Err(VdError::NotSupported));
        let mut bad_align = VDConfig::request(1, 0);
        bad_align.alignment = 3000;
        assert_eq!(bad_align.validate_request(), Err(VdError::NotSupported));
        let mut marks = VDConfig::request(1, 0);
        marks.softFileMarkBlockSize = 512;
        assert_eq!(marks.validate_request(), Err(VdError::NotSupported));
    }
}
