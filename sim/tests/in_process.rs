//! Both roles in one process, one thread each (the two-process tests cover the same calls
//! across processes): what a server with several threads per device may rely on.

use std::sync::mpsc;
use std::time::{Duration, Instant};
use vdisim::pump::{self, StreamSpec};
use vdisim::reference_client::device_name;
use vdisim::server::{ServerCommand, ServerVirtualDeviceSet};
use vdisim::vdi::{completion, features, CommandCode, VDConfig, VdError};
use vdisim::ClientVirtualDeviceSet;

const WAIT: Duration = Duration::from_secs(10);

mod common;

fn unique(tag: &str) -> String {
    common::unique("inproc", tag)
}

/// CloseDevice from one thread while another is blocked in GetCompletion on the same
/// device returns at once (it used to wait for that GetCompletion: both took the device's
/// ring lock). The client then sees the Write, then VD_E_CLOSE, and everything ends normally.
#[test]
fn close_device_does_not_wait_for_a_blocked_get_completion() {
    let set = unique("close");
    let name = set.clone();
    let (took_write, write_taken) = mpsc::channel();
    let (release, released) = mpsc::channel::<()>();
    let client = std::thread::spawn(move || {
        let mut vds = ClientVirtualDeviceSet::new();
        vds.create_ex(None, &name, &VDConfig::request(1, features::VDF_LIKE_PIPE))
            .expect("CreateEx");
        vds.get_configuration(10_000).expect("client GetConfiguration");
        let dev = vds.open_device(&device_name(&name, 0)).expect("client OpenDevice");
        let cmd = dev.get_command(10_000).expect("the Write");
        took_write.send(cmd.code()).unwrap();
        // Hold the Write until the server's CloseDevice has returned.
        released.recv_timeout(WAIT).expect("released");
        dev.complete_command(&cmd, completion::ERROR_SUCCESS, cmd.size(), 0)
            .expect("CompleteCommand");
        let end = dev.get_command(10_000).err();
        vds.close().expect("client Close");
        end
    });

    let server = pump::open_when_created(&set, WAIT).expect("server Open");
    let spec = StreamSpec {
        max_transfer: 65536,
        depth: 1,
        ..StreamSpec::new(1, 0)
    };
    let dev = pump::configure(&server, &spec, true).expect("configure").remove(0);
    let buf = server.allocate_buffer(65536, 0).expect("AllocateBuffer");
    dev.send_command(ServerCommand {
        code: CommandCode::Write.code(),
        size: 65536,
        position: 0,
        buffer: Some(buf),
    })
    .map_err(|r| r.error)
    .expect("SendCommand");
    assert_eq!(write_taken.recv_timeout(WAIT), Ok(CommandCode::Write.code()));

    std::thread::scope(|s| {
        // Bounded, so that a CloseDevice that waits for it shows as a slow CloseDevice (a
        // failure) rather than a hang.
        let waiter = s.spawn(|| dev.get_completion(8_000));
        // Let the waiter block (its result does not depend on it: CloseDevice must return
        // whether or not it has).
        std::thread::sleep(Duration::from_millis(100));
        let t = Instant::now();
        assert_eq!(dev.close_device(), Ok(()));
        let took = t.elapsed();
        release.send(()).unwrap();
        assert!(
            took < Duration::from_secs(4),
            "CloseDevice waited {took:?} for the blocked GetCompletion"
        );
        let done = waiter.join().unwrap().expect("the Write's completion");
        assert_eq!(done.completion.completion_code, completion::ERROR_SUCCESS);
        assert!(done.buffer.is_some(), "the buffer comes back");
    });
    assert_eq!(client.join().unwrap(), Some(VdError::Close));
    assert_eq!(server.close().result, Ok(()));
}

// A server may share its set and device handles between threads (the test above does);
// checked when this file compiles.
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    shared::<ServerVirtualDeviceSet>();
    shared::<vdisim::server::ServerVirtualDevice>();
};
