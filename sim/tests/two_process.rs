//! The core across two real processes: the test process plays one role through the public API,
//! `vdisim-peer` (a separate process) plays the other, over real shared memory.

use std::time::{Duration, Instant};
use vdisim::pump::{self, StreamSpec};
use vdisim::reference_client::{self, Mode, Options};
use vdisim::server::ServerCommand;
use vdisim::vdi::{completion, CommandCode, VDConfig, VdError, INFINITE};
use vdisim::{ClientVirtualDeviceSet, ServerVirtualDeviceSet};

mod common;
#[cfg(unix)]
use common::segments_of as leftovers;
use common::{assert_no_leftovers, Peer};

/// A set name unique to this test process and call, so tests can run in parallel.
fn unique(tag: &str) -> String {
    common::unique("t2p", tag)
}

impl Peer {
    fn wait_success(mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "peer failed: {status}");
                return;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("peer did not exit");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Test process = server, peer = reference client storing files; then the reverse direction
/// reads them back; then the roles swap (test = client, peer = server).
fn round_trip(devices: u32, bytes: u64) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let spec = StreamSpec {
        depth: 2,
        ..StreamSpec::new(devices, bytes)
    };

    // Backup: the server (here) writes, the client process stores.
    let set = unique("bk");
    let client = Peer::spawn(&["client-backup", &set, &devices.to_string(), store.to_str().unwrap()]);
    let server = pump::open_when_created(&set, Duration::from_secs(20)).unwrap();
    let devs = pump::configure(&server, &spec, true).unwrap();
    pump::send_stream(&server, &devs, &spec).unwrap();
    assert_eq!(server.close().result, Ok(()));
    client.wait_success();
    for i in 0..devices {
        let data = std::fs::read(reference_client::stripe_path(&store, i)).unwrap();
        assert_eq!(data.len() as u64, bytes, "device {i} length");
        assert_eq!(pump::check_pattern(i, 0, &data), None, "device {i} content");
    }
    assert_no_leftovers(&set);

    // Restore: the client process serves Reads from its files, the server verifies.
    let set = unique("rs");
    let client = Peer::spawn(&["client-restore", &set, &devices.to_string(), store.to_str().unwrap()]);
    let server = pump::open_when_created(&set, Duration::from_secs(20)).unwrap();
    let devs = pump::configure(&server, &spec, false).unwrap();
    let got = pump::receive_stream(&server, &devs, &spec).unwrap();
    assert_eq!(got, vec![bytes; devices as usize]);
    assert_eq!(server.close().result, Ok(()));
    client.wait_success();
    assert_no_leftovers(&set);

    // Roles swapped: the server is the other process, the reference client runs here.
    let set = unique("sw");
    let store2 = dir.path().join("store2");
    let server = Peer::spawn(&["server-backup", &set, &devices.to_string(), &bytes.to_string()]);
    let opts = Options::new(Mode::Backup, &set, devices, &store2);
    let report = reference_client::run(&opts, || {}).unwrap();
    assert!(report.devices.iter().all(|d| d.ended_with == "VD_E_CLOSE"));
    server.wait_success();
    for i in 0..devices {
        let data = std::fs::read(reference_client::stripe_path(&store2, i)).unwrap();
        assert_eq!(pump::check_pattern(i, 0, &data), None);
        assert_eq!(data.len() as u64, bytes);
    }
    let set = unique("sr");
    let server = Peer::spawn(&["server-restore", &set, &devices.to_string(), &bytes.to_string()]);
    let opts = Options::new(Mode::Restore, &set, devices, &store2);
    reference_client::run(&opts, || {}).unwrap();
    server.wait_success();
    assert_no_leftovers(&set);
}

#[test]
fn stream_one_device_both_ways_byte_exact() {
    round_trip(1, 3 * 1024 * 1024 + 17);
}

#[test]
fn stream_three_devices_both_ways_byte_exact() {
    round_trip(3, 2 * 1024 * 1024 + 4096);
}

#[test]
fn stream_sixty_four_devices_both_ways_byte_exact() {
    round_trip(64, 200_000);
}

/// §1.2: Close with devices still open answers VD_E_OPEN and aborts; the server's outstanding
/// commands end with ERROR_OPERATION_ABORTED (§3.6).
#[test]
fn premature_client_close_aborts_the_servers_outstanding_commands() {
    let set = unique("pc");
    let client = Peer::spawn(&["client-premature-close", &set]);
    let server = pump::open_when_created(&set, Duration::from_secs(20)).unwrap();
    let devs = pump::configure(&server, &StreamSpec::new(1, 0), true).unwrap();
    for _ in 0..2 {
        let buf = server.allocate_buffer(65536, 0).unwrap();
        devs[0]
            .send_command(ServerCommand {
                code: CommandCode::Write.code(),
                size: 65536,
                position: 0,
                buffer: Some(buf),
            })
            .unwrap();
    }
    assert_eq!(client.expect("close"), "close VD_E_OPEN");
    for _ in 0..2 {
        let c = devs[0].get_completion(5000).unwrap();
        assert_eq!(c.completion.completion_code, completion::ERROR_OPERATION_ABORTED);
        assert!(c.buffer.is_some(), "the buffer comes back with the completion");
    }
    assert_eq!(devs[0].get_completion(100).err(), Some(VdError::Abort));
    client.wait_success();
    let closed = server.close();
    assert_eq!(
        closed.result,
        Ok(()),
        "the set was already aborted, so Close is orderly"
    );
    assert_no_leftovers(&set);
}

/// The seed document: the server's Close with devices open returns VD_E_PROTOCOL, still
/// aborts, and completes outstanding commands with ERROR_OPERATION_ABORTED; the client's
/// next call returns VD_E_ABORT.
#[test]
fn premature_server_close_is_protocol_and_the_client_sees_abort() {
    let set = unique("ps");
    let server = Peer::spawn(&["server-premature-close", &set]);
    let mut vds = ClientVirtualDeviceSet::new();
    vds.create_ex(None, &set, &VDConfig::request(1, 0)).unwrap();
    vds.get_configuration(20_000).unwrap();
    let dev = vds.open_device(&set).unwrap();
    let cmd = dev.get_command(20_000).unwrap();
    assert_eq!(cmd.command(), Some(CommandCode::Write));
    let closed = server.expect("close");
    assert_eq!(closed, "close VD_E_PROTOCOL 995", "one outstanding command, aborted");
    assert_eq!(dev.get_command(INFINITE).err(), Some(VdError::Abort));
    assert_eq!(dev.complete_command(&cmd, 0, 65536, 0), Err(VdError::Abort));
    server.wait_success();
    assert_eq!(vds.close(), Ok(()), "Close after abort is the right thing (§1.5)");
    assert_no_leftovers(&set);
}

/// §3.6: SignalAbort by the server: the client's blocked GetCommand and every later call
/// return VD_E_ABORT.
#[test]
fn server_abort_releases_a_blocked_client() {
    let set = unique("sa");
    let client = Peer::spawn(&["client-hold", &set, "4294967295"]);
    let server = pump::open_when_created(&set, Duration::from_secs(20)).unwrap();
    let _devs = pump::configure(&server, &StreamSpec::new(1, 0), true).unwrap();
    client.expect("open-device NOERROR");
    std::thread::sleep(Duration::from_millis(200)); // let it block in GetCommand(INFINITE)
    let t = Instant::now();
    server.signal_abort().unwrap();
    assert_eq!(client.expect("get-command"), "get-command VD_E_ABORT");
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(client.expect("get-command-again"), "get-command-again VD_E_ABORT");
    assert_eq!(client.expect("close"), "close NOERROR");
    client.wait_success();
    let _ = server.close();
    assert_no_leftovers(&set);
}

/// §3.6: SignalAbort by the client: the server's blocked wait for completions returns the
/// outstanding command as ERROR_OPERATION_ABORTED, then VD_E_ABORT; SendCommand fails.
#[test]
fn client_abort_releases_a_blocked_server() {
    let set = unique("ca");
    let client = Peer::spawn(&["client-abort", &set, "1"]);
    let server = pump::open_when_created(&set, Duration::from_secs(20)).unwrap();
    let devs = pump::configure(&server, &StreamSpec::new(1, 0), true).unwrap();
    let send = |n: u32| {
        let buf = server.allocate_buffer(65536, 0).unwrap();
        devs[0].send_command(ServerCommand {
            code: CommandCode::Write.code(),
            size: n,
            position: 0,
            buffer: Some(buf),
        })
    };
    send(4096).unwrap();
    let first = devs[0].get_completion(20_000).unwrap();
    assert_eq!(first.completion.completion_code, completion::ERROR_SUCCESS);
    // The client now aborts; this Write may or may not reach it first.
    let _ = send(512);
    let c = devs[0].get_completion(INFINITE);
    match c {
        Ok(c) => {
            assert_eq!(c.completion.completion_code, completion::ERROR_OPERATION_ABORTED);
            assert_eq!(devs[0].get_completion(INFINITE).err(), Some(VdError::Abort));
        }
        Err(e) => assert_eq!(e, VdError::Abort),
    }
    assert_eq!(send(512).map_err(|r| r.error).err(), Some(VdError::Abort));
    assert_eq!(client.expect("signal-abort"), "signal-abort NOERROR");
    assert_eq!(client.expect("get-command"), "get-command VD_E_ABORT");
    client.wait_success();
    let _ = server.close();
    assert_no_leftovers(&set);
}

/// §1.3: GetCommand with a short timeout and no command returns VD_E_TIMEOUT with no state
/// change, and a retry gets the command once it is sent; CloseDevice gives VD_E_CLOSE.
#[test]
fn get_command_timeout_is_retryable_and_close_device_ends_the_stream() {
    let set = unique("to");
    let client = Peer::spawn(&["client-hold", &set, "100"]);
    let server = pump::open_when_created(&set, Duration::from_secs(20)).unwrap();
    let devs = pump::configure(&server, &StreamSpec::new(1, 0), true).unwrap();
    assert_eq!(client.expect("get-command"), "get-command VD_E_TIMEOUT");
    assert_eq!(client.expect("get-command"), "get-command VD_E_TIMEOUT");
    let buf = server.allocate_buffer(65536, 0).unwrap();
    devs[0]
        .send_command(ServerCommand {
            code: CommandCode::Write.code(),
            size: 1024,
            position: 0,
            buffer: Some(buf),
        })
        .unwrap();
    assert_eq!(client.expect("get-command NOERROR"), "get-command NOERROR 2 1024");
    let c = devs[0].get_completion(20_000).unwrap();
    assert_eq!(
        (c.completion.completion_code, c.completion.bytes_transferred),
        (0, 1024)
    );
    devs[0].close_device().unwrap();
    assert_eq!(devs[0].close_device(), Err(VdError::Close), "already closed");
    assert_eq!(client.expect("get-command VD_E_CLOSE"), "get-command VD_E_CLOSE");
    assert_eq!(client.expect("close"), "close NOERROR");
    client.wait_success();
    assert_eq!(server.close().result, Ok(()));
    assert_no_leftovers(&set);
}

/// §1.2: GetConfiguration with no server returns VD_E_TIMEOUT, and can be retried.
#[test]
fn get_configuration_without_a_server_times_out() {
    let set = unique("nc");
    let mut vds = ClientVirtualDeviceSet::new();
    vds.create_ex(None, &set, &VDConfig::request(1, 0)).unwrap();
    let t = Instant::now();
    assert_eq!(vds.get_configuration(150), Err(VdError::Timeout));
    assert!(t.elapsed() >= Duration::from_millis(150));
    assert_eq!(vds.get_configuration(0), Err(VdError::Timeout), "0 polls");
    assert_eq!(vds.close(), Ok(()));
    assert_no_leftovers(&set);
}

/// A SIGKILLed client: the server's blocked wait returns within twice its timeout, with the
/// outstanding command aborted; Close cleans up the dead client's segments.
#[test]
fn killed_client_releases_the_server_within_twice_its_timeout() {
    let set = unique("kc");
    let mut client = Peer::spawn(&["client-hold", &set, "4294967295"]);
    let server = pump::open_when_created(&set, Duration::from_secs(20)).unwrap();
    let devs = pump::configure(&server, &StreamSpec::new(1, 0), true).unwrap();
    client.expect("open-device NOERROR");
    // A Flush the client completes, then a command it will never see: kill it first.
    client.kill();
    let buf = server.allocate_buffer(65536, 0).unwrap();
    let _ = devs[0].send_command(ServerCommand {
        code: CommandCode::Write.code(),
        size: 512,
        position: 0,
        buffer: Some(buf),
    });
    let timeout = 2000;
    let t = Instant::now();
    let r = devs[0].get_completion(timeout);
    assert!(t.elapsed() < Duration::from_millis(2 * u64::from(timeout)));
    match r {
        Ok(c) => assert_eq!(c.completion.completion_code, completion::ERROR_OPERATION_ABORTED),
        Err(e) => assert_eq!(e, VdError::Abort),
    }
    assert!(server.last_error().unwrap_or_default().contains("died"));
    let _ = server.close();
    assert_no_leftovers(&set);
}

/// A SIGKILLed server: the client's blocked GetCommand returns within twice its timeout.
#[test]
fn killed_server_releases_the_client_within_twice_its_timeout() {
    let set = unique("ks");
    let mut server = Peer::spawn(&["server-hold", &set]);
    let mut vds = ClientVirtualDeviceSet::new();
    vds.create_ex(None, &set, &VDConfig::request(1, 0)).unwrap();
    vds.get_configuration(20_000).unwrap();
    let dev = vds.open_device(&set).unwrap();
    let cmd = dev.get_command(20_000).unwrap();
    server.expect("send-command");
    server.kill();
    let timeout = 2000;
    let t = Instant::now();
    let r = dev.get_command(timeout);
    assert!(t.elapsed() < Duration::from_millis(2 * u64::from(timeout)));
    assert_eq!(r.err(), Some(VdError::Abort));
    assert_eq!(dev.complete_command(&cmd, 0, 512, 0), Err(VdError::Abort));
    assert!(vds.last_error().unwrap_or_default().contains("died"));
    assert_eq!(vds.close(), Ok(()));
    assert_no_leftovers(&set);
}

/// The next run with the same set name works after a creator was killed (stale reclaim).
#[test]
fn a_dead_creators_set_is_reclaimed_on_the_next_create() {
    let set = unique("rc");
    let mut client = Peer::spawn(&["client-hold", &set, "4294967295"]);
    client.expect("created");
    client.kill();
    #[cfg(unix)]
    assert!(!leftovers(&set).is_empty(), "the killed creator left its header");
    // A Windows mapping vanishes with the last process holding it: nothing to reclaim.
    #[cfg(windows)]
    {
        let name = vdisim::shm::header_segment_name(vdisim::shm::DEFAULT_INSTANCE, &set);
        let deadline = Instant::now() + Duration::from_secs(5);
        while vdisim::shm::Segment::open(&name, 0).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            vdisim::shm::Segment::open(&name, 0).is_err(),
            "the killed creator's mapping outlived it"
        );
    }
    let mut vds = ClientVirtualDeviceSet::new();
    vds.create_ex(None, &set, &VDConfig::request(1, 0)).unwrap();
    // While a live creator holds the name, a second create is refused (§1.2).
    let mut other = ClientVirtualDeviceSet::new();
    assert_eq!(
        other.create_ex(None, &set, &VDConfig::request(1, 0)),
        Err(VdError::Protocol)
    );
    assert_eq!(vds.close(), Ok(()));
    assert_no_leftovers(&set);
}

/// Server Open of a set nobody created is VD_E_INVALID (§1.4).
#[test]
fn server_open_of_an_unknown_set_is_invalid() {
    assert_eq!(
        ServerVirtualDeviceSet::open(None, &unique("none")).err(),
        Some(VdError::Invalid)
    );
}

/// A server that marks the set closed without closing a device (hostile or broken) cannot
/// leave the client's GetCommand(INFINITE) waiting for ever: nothing more can arrive.
#[test]
fn a_closed_server_that_never_closed_the_device_ends_an_infinite_get_command() {
    use std::sync::atomic::Ordering as O;
    let set = unique("hc");
    let mut vds = ClientVirtualDeviceSet::new();
    vds.create_ex(None, &set, &VDConfig::request(1, 0)).unwrap();
    let server = ServerVirtualDeviceSet::open(None, &set).unwrap();
    let _devs = pump::configure(&server, &StreamSpec::new(1, 0), true).unwrap();
    vds.get_configuration(5000).unwrap();
    let dev = vds.open_device(&set).unwrap();
    let header = vdisim::shm::open_header(vdisim::shm::DEFAULT_INSTANCE, &set, Duration::ZERO).unwrap();
    header
        .header()
        .phase
        .store(vdisim::shm::layout::phase::SERVER_CLOSED, O::Release);
    let t = Instant::now();
    assert_eq!(dev.get_command(INFINITE).err(), Some(VdError::Abort));
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(vds
        .last_error()
        .unwrap_or_default()
        .contains("without closing device 0"));
    drop(header);
    let _ = server.close();
    assert_eq!(vds.close(), Ok(()));
    assert_no_leftovers(&set);
}
