//! The object contract every ABI relies on, driven through the plain C API exactly as C calls
//! it (raw pointers, int codes), against a server played in-process by `vdisim::server`:
//! several commands outstanding on one device, completed out of order; a command pointer stays
//! readable after completion; completing twice is VD_E_INVALID; Close invalidates the device
//! (VD_E_PROTOCOL afterwards, no crash); nothing stays in /dev/shm.

mod common;

use common::{leftover_segments, unique_set};
use sqlvdi::capi::*;
use std::ffi::CString;
use std::time::Duration;
use vdisim::pump::{self, StreamSpec};
use vdisim::server::ServerCommand;
use vdisim::vdi::{completion, CommandCode, VDC_Command, VdError};
use vdisim::VDConfig;

const NOERROR: i32 = 0;

fn code(e: VdError) -> i32 {
    e.as_linux_int()
}

#[test]
fn out_of_order_completion_stale_pointers_and_close() {
    let name = unique_set("capi");
    let cname = CString::new(name.clone()).expect("name");
    let set = vdisim_set_new();
    assert!(!set.is_null());
    let request = VDConfig::request(1, 0);
    // SAFETY: every pointer below is live for the call, as the C contract requires.
    unsafe {
        assert_eq!(vdisim_set_create(set, cname.as_ptr(), &request), NOERROR);
    }

    let server = pump::open_when_created(&name, Duration::from_secs(10)).expect("server opens the set");
    let mut spec = StreamSpec::new(1, 0);
    spec.depth = 3;
    spec.max_transfer = 65536;
    let devs = pump::configure(&server, &spec, true).expect("configure");

    let mut cfg = VDConfig::request(0, 0);
    let mut dev = std::ptr::null_mut();
    // SAFETY: as above.
    unsafe {
        assert_eq!(vdisim_set_get_configuration(set, 10_000, &mut cfg), NOERROR);
        assert_eq!(vdisim_set_open_device(set, cname.as_ptr(), &mut dev), NOERROR);
    }
    assert!(!dev.is_null());

    // Three Writes outstanding at once, each with its own buffer and a recognisable size.
    for i in 0..3u32 {
        let mut buf = server.allocate_buffer(65536, 0).expect("buffer");
        buf.as_mut_slice().fill(i as u8 + 1);
        devs[0]
            .send_command(ServerCommand {
                code: CommandCode::Write.code(),
                size: 4096 * (i + 1),
                position: 0,
                buffer: Some(buf),
            })
            .map_err(|r| r.error)
            .expect("send");
    }
    let mut cmds: Vec<*mut VDC_Command> = Vec::new();
    for _ in 0..3 {
        let mut c = std::ptr::null_mut();
        // SAFETY: as above.
        assert_eq!(unsafe { vdisim_device_get_command(dev, 5_000, &mut c) }, NOERROR);
        assert!(!c.is_null());
        cmds.push(c);
    }
    // Distinct slots, each showing its own command and buffer.
    for (i, c) in cmds.iter().enumerate() {
        // SAFETY: an active command: valid until completed.
        let (cc, size, first) = unsafe { ((**c).commandCode, (**c).size, *(**c).buffer) };
        assert_eq!(cc, CommandCode::Write.code());
        assert_eq!(size, 4096 * (i as u32 + 1));
        assert_eq!(first, i as u8 + 1);
    }

    // Complete out of order: the middle one first.
    for &i in &[1usize, 0, 2] {
        // SAFETY: as above.
        let size = unsafe { (*cmds[i]).size };
        // SAFETY: as above; `cmds[i]` is only compared by the library.
        let r = unsafe { vdisim_device_complete_command(dev, cmds[i], completion::ERROR_SUCCESS, size, 0) };
        assert_eq!(r, NOERROR, "complete command {i}");
        // Still readable right after completion (Microsoft's sample reads it).
        // SAFETY: the library keeps the slot readable after completion.
        assert_eq!(unsafe { (*cmds[i]).size }, 4096 * (i as u32 + 1));
    }
    // SAFETY: as above.
    unsafe {
        // Completing again, or something never handed out, is VD_E_INVALID.
        assert_eq!(
            vdisim_device_complete_command(dev, cmds[1], 0, 0, 0),
            code(VdError::Invalid)
        );
        let mut bogus = VDC_Command {
            commandCode: 2,
            size: 0,
            position: 0,
            buffer: std::ptr::null_mut(),
        };
        assert_eq!(
            vdisim_device_complete_command(dev, &mut bogus, 0, 0, 0),
            code(VdError::Invalid)
        );
    }
    let mut sizes: Vec<u32> = (0..3)
        .map(|_| {
            let c = devs[0].get_completion(5_000).expect("completion");
            assert_eq!(c.completion.completion_code, completion::ERROR_SUCCESS);
            c.completion.bytes_transferred
        })
        .collect();
    sizes.sort_unstable();
    assert_eq!(sizes, vec![4096, 8192, 12288]);

    // A poll with nothing queued times out; then the server closes the device.
    let mut c = std::ptr::null_mut();
    // SAFETY: as above.
    unsafe {
        assert_eq!(vdisim_device_get_command(dev, 0, &mut c), code(VdError::Timeout));
        assert!(c.is_null());
    }
    devs[0].close_device().expect("close device");
    // SAFETY: as above.
    unsafe {
        assert_eq!(vdisim_device_get_command(dev, 5_000, &mut c), code(VdError::Close));
        assert_eq!(vdisim_set_close(set), NOERROR);
        // Close invalidated the device: calls fail cleanly.
        assert_eq!(vdisim_device_get_command(dev, 0, &mut c), code(VdError::Protocol));
        assert_eq!(
            vdisim_device_complete_command(dev, cmds[0], 0, 0, 0),
            code(VdError::Protocol)
        );
        assert_eq!(vdisim_set_close(set), code(VdError::Protocol));
    }
    drop(devs);
    assert_eq!(server.close().result, Ok(()));
    drop(server);
    // SAFETY: freed once; nothing uses `set` or `dev` afterwards.
    unsafe { vdisim_set_free(set) };
    assert_eq!(leftover_segments(&name), Vec::<String>::new());
}

#[test]
fn premature_close_aborts_and_reports_open() {
    let name = unique_set("capi-premature");
    let cname = CString::new(name.clone()).expect("name");
    let set = vdisim_set_new();
    let request = VDConfig::request(1, 0);
    // SAFETY: live pointers, as the C contract requires.
    unsafe { assert_eq!(vdisim_set_create(set, cname.as_ptr(), &request), NOERROR) };
    let server = pump::open_when_created(&name, Duration::from_secs(10)).expect("open");
    let devs = pump::configure(&server, &StreamSpec::new(1, 0), true).expect("configure");
    let mut cfg = request;
    let mut dev = std::ptr::null_mut();
    // SAFETY: as above.
    unsafe {
        assert_eq!(vdisim_set_get_configuration(set, 10_000, &mut cfg), NOERROR);
        assert_eq!(vdisim_set_open_device(set, cname.as_ptr(), &mut dev), NOERROR);
        // §1.2: Close with a device still open is VD_E_OPEN, and it aborts the set.
        assert_eq!(vdisim_set_close(set), code(VdError::Open));
    }
    assert_eq!(devs[0].get_completion(2_000).err(), Some(VdError::Abort));
    drop(devs);
    let _ = server.close();
    drop(server);
    // SAFETY: freed once.
    unsafe { vdisim_set_free(set) };
    assert_eq!(leftover_segments(&name), Vec::<String>::new());
}
