//! Canonical scenarios written by hand: the transcripts pinned by snapshots.

use super::step::{Bytes, Config, DeviceName, Step};
use super::transcript::Transcript;
use vdisim::vdi::{completion::*, features::*, CommandCode};

const WRITE: u32 = CommandCode::Write.code();
const FLUSH: u32 = CommandCode::Flush.code();

fn configured(devices: u32) -> Vec<Step> {
    let mut s = vec![
        Step::CCreate {
            devices,
            request_complete: false,
        },
        Step::CGetConfiguration,
        Step::SOpen,
        Step::SGetConfiguration,
        Step::SBeginConfiguration {
            config: Config {
                features: VDF_WRITE_MEDIA,
                block_size: 4096,
                max_transfer_size: 65536,
            },
        },
        Step::SRequestBuffers { size: 65536, count: 2 },
        Step::SEndConfiguration,
        Step::CGetConfiguration,
    ];
    for i in 0..devices as usize {
        s.push(Step::SOpenDevice { name: DeviceName::Next });
        s.push(Step::COpenDevice { dev: Some(i) });
    }
    s
}

fn write(dev: usize, size: u32, position: u64) -> Step {
    Step::SSend {
        dev,
        code: WRITE,
        size,
        position,
    }
}

fn complete_ok(dev: usize, position: u64) -> Step {
    Step::CComplete {
        dev,
        pick: 0,
        code: ERROR_SUCCESS,
        bytes: Bytes::Full,
        position,
    }
}

/// §3.1: a BACKUP to one device: configure, writes, a flush, CloseDevice, VD_E_CLOSE, Close.
pub fn normal_backup() -> Transcript {
    let mut s = configured(1);
    s.push(Step::CGetCommand { dev: 0 });
    for (size, position) in [(32768u32, 0u64), (16384, 32768)] {
        s.push(write(0, size, position));
        s.push(Step::CGetCommand { dev: 0 });
        s.push(complete_ok(0, position));
        s.push(Step::SGetCompletion { dev: 0 });
    }
    s.push(Step::SSend {
        dev: 0,
        code: FLUSH,
        size: 0,
        position: 0,
    });
    s.push(Step::CGetCommand { dev: 0 });
    s.push(complete_ok(0, 0));
    s.push(Step::SGetCompletion { dev: 0 });
    s.push(Step::SCloseDevice { dev: 0 });
    s.push(Step::CGetCommand { dev: 0 });
    s.push(Step::CGetCommand { dev: 0 });
    s.push(Step::SClose);
    s.push(Step::CClose);
    build(
        "canonical-normal-backup",
        "§3.1: BACKUP to one device; GetCommand times out on an empty queue, VD_E_CLOSE once CloseDevice \
         was sent, then PROTOCOL (NormTerm); both sides Close with NOERROR",
        &s,
    )
}

/// §3.6: two devices; the client aborts while commands are in flight on both.
pub fn abort_mid_stream() -> Transcript {
    let mut s = configured(2);
    s.push(write(0, 8192, 0));
    s.push(write(1, 8192, 0));
    s.push(write(0, 8192, 8192));
    s.push(Step::CGetCommand { dev: 0 });
    s.push(complete_ok(0, 0));
    s.push(Step::SGetCompletion { dev: 0 });
    s.push(Step::CGetCommand { dev: 1 });
    s.push(Step::CSignalAbort);
    s.push(Step::CGetCommand { dev: 0 });
    s.push(Step::CComplete {
        dev: 1,
        pick: 0,
        code: ERROR_SUCCESS,
        bytes: Bytes::Full,
        position: 0,
    });
    s.push(Step::SSend {
        dev: 0,
        code: WRITE,
        size: 4096,
        position: 0,
    });
    s.push(Step::SGetCompletion { dev: 0 });
    s.push(Step::SGetCompletion { dev: 0 });
    s.push(Step::SGetCompletion { dev: 1 });
    s.push(Step::SGetCompletion { dev: 1 });
    s.push(Step::SCloseDevice { dev: 0 });
    s.push(Step::SClose);
    s.push(Step::CClose);
    build(
        "canonical-abort-mid-stream",
        "§3.6: the client signals abort with commands outstanding on two devices: every later client call \
         returns VD_E_ABORT, each outstanding command reaches the server once as ERROR_OPERATION_ABORTED, \
         then GetCompletion returns VD_E_ABORT",
        &s,
    )
}

/// §1.2 / HELPERS: the client Closes while a device is still open and a command outstanding.
pub fn premature_close() -> Transcript {
    let mut s = configured(1);
    s.push(write(0, 4096, 0));
    s.push(Step::CGetCommand { dev: 0 });
    s.push(Step::CClose);
    s.push(Step::CClose);
    s.push(Step::SGetCompletion { dev: 0 });
    s.push(Step::SGetCompletion { dev: 0 });
    s.push(Step::SSend {
        dev: 0,
        code: WRITE,
        size: 4096,
        position: 0,
    });
    s.push(Step::SClose);
    build(
        "canonical-premature-close",
        "§1.2: Close with a device still open returns VD_E_OPEN and aborts the set; a second Close is \
         VD_E_PROTOCOL; the server gets the outstanding Write back as ERROR_OPERATION_ABORTED",
        &s,
    )
}

/// §1.4 / HELPERS: the server Closes while a device is open and a command outstanding.
pub fn server_premature_close() -> Transcript {
    let mut s = configured(1);
    s.push(write(0, 4096, 0));
    s.push(Step::SClose);
    s.push(Step::CGetCommand { dev: 0 });
    s.push(Step::CClose);
    build(
        "canonical-server-premature-close",
        "§1.4: the server's Close with a device open returns VD_E_PROTOCOL, aborts, and reports the \
         outstanding command as aborted; the client sees VD_E_ABORT",
        &s,
    )
}

/// §3.5: an error completion, IO-ERROR on both sides, ClearError, recovery.
pub fn io_error_and_clear() -> Transcript {
    let mut s = configured(1);
    s.push(write(0, 4096, 0));
    s.push(write(0, 4096, 4096));
    s.push(Step::CGetCommand { dev: 0 });
    s.push(Step::CComplete {
        dev: 0,
        pick: 0,
        code: ERROR_DISK_FULL,
        bytes: Bytes::Zero,
        position: 0,
    });
    s.push(Step::SGetCompletion { dev: 0 });
    s.push(write(0, 4096, 8192));
    s.push(Step::SSend {
        dev: 0,
        code: CommandCode::ClearError.code(),
        size: 0,
        position: 0,
    });
    s.push(Step::CGetCommand { dev: 0 });
    s.push(Step::SGetCompletion { dev: 0 });
    s.push(Step::CComplete {
        dev: 0,
        pick: 0,
        code: ERROR_SUCCESS,
        bytes: Bytes::Zero,
        position: 0,
    });
    s.push(Step::SGetCompletion { dev: 0 });
    s.push(write(0, 4096, 8192));
    s.push(Step::SCloseDevice { dev: 0 });
    s.push(Step::CGetCommand { dev: 0 });
    build(
        "canonical-io-error-clear-error",
        "§3.5: DISK_FULL puts the device in IO-ERROR: the queued Write is failed with ERROR_IO_DEVICE by \
         the client library, SendCommand fails with VD_E_IO_ERROR, ClearError completed with success \
         makes the device Active again",
        &s,
    )
}

/// Every canonical scenario.
pub fn all() -> Vec<Transcript> {
    vec![
        normal_backup(),
        abort_mid_stream(),
        premature_close(),
        server_premature_close(),
        io_error_and_clear(),
    ]
}

fn build(name: &str, description: &str, steps: &[Step]) -> Transcript {
    Transcript::from_steps(name, description, steps).unwrap_or_else(|e| Transcript {
        format: super::transcript::TRANSCRIPT_FORMAT,
        name: name.to_string(),
        description: format!("INVALID SCENARIO: {e}"),
        found_against: String::new(),
        steps: Vec::new(),
    })
}
