//! Stripes (SPEC §2.4 deviceCount 1-64, §2.6 BUFFERCOUNT shared, §3.3): backups through
//! several devices at once. A client that services its devices one after another stalls
//! the stream (the server deals data round robin from one shared buffer pool) and is judged
//! a Hang by the stall deadline, without hanging the run.

use super::{restore_of, server_job, server_round_trip, ClientScenario, RestoreSpec};
use crate::case::{Case, Expectation};
use crate::harness::play_client::Plan;
use crate::harness::play_server::{flush_all, round_robin_writes};
use crate::model::{Level, Role};
use crate::plugin::Mode;

const PARALLEL_REQ: &str = "Clients run one thread per device (OpenDevice + own loop) or secondary processes: every device is serviced at the same time.";

/// A round trip over `devices` devices with `buffers` shared buffers.
fn striped(devices: u32, buffers: u32, writes: &[u32]) -> ClientScenario {
    let mut s = ClientScenario::new(devices);
    s.p.buffer_count = buffers;
    s.ops = round_robin_writes(devices, writes);
    s.ops.extend(flush_all(devices));
    s.restore = Some(RestoreSpec::new(s.p, &[65536]));
    s
}

pub(crate) fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "stripes.client.two-devices",
            title: "A backup over two devices with two shared buffers round-trips",
            spec_ref: "§3.3",
            requirement: PARALLEL_REQ,
            level: Level::Must,
            role: Role::Client,
            chapter: "stripes",
            expectation: Expectation::RoundTrip,
            run: |cx| striped(2, 2, &[65536, 65536, 4096, 512]).run(cx),
        },
        Case {
            id: "stripes.client.four-devices",
            title: "A backup over four devices round-trips",
            spec_ref: "§3.3",
            requirement: PARALLEL_REQ,
            level: Level::Must,
            role: Role::Client,
            chapter: "stripes",
            expectation: Expectation::RoundTrip,
            run: |cx| striped(4, 4, &[65536, 32768, 4096]).run(cx),
        },
        // §2.4: "deviceCount: 1–64".
        Case {
            id: "stripes.client.64-devices",
            title: "A backup over 64 devices round-trips",
            spec_ref: "§2.4, §3.3",
            requirement: "deviceCount may be 64; every device is serviced and each stream comes back byte for byte.",
            level: Level::Must,
            role: Role::Client,
            chapter: "stripes",
            expectation: Expectation::RoundTrip,
            run: |cx| striped(64, 16, &[4096, 512]).run(cx),
        },
        // §2.6: "BUFFERCOUNT: buffers of MAXTRANSFERSIZE, shared by all devices".
        Case {
            id: "stripes.client.one-shared-buffer",
            title: "BUFFERCOUNT 1 shared by three devices",
            spec_ref: "§2.6, §3.3",
            requirement: "BUFFERCOUNT buffers are shared by all devices: a device's buffer returns to the pool only when the client completes its command.",
            level: Level::Must,
            role: Role::Client,
            chapter: "stripes",
            expectation: Expectation::RoundTrip,
            run: |cx| striped(3, 1, &[65536, 4096]).run(cx),
        },
        // §3.3: "The server uses one thread per device".
        Case {
            id: "stripes.server.parallel-devices",
            title: "Three devices: each gets a command while the others hold their first",
            spec_ref: "§3.3",
            requirement: "The server uses one thread per device: no device waits for another to finish.",
            level: Level::Must,
            role: Role::Server,
            chapter: "stripes",
            expectation: Expectation::DevicesInParallel,
            run: |cx| {
                let mut p = Plan::new(Mode::Backup, 3);
                p.hold_first_until_all = true;
                server_job(cx, p)
            },
        },
        Case {
            id: "stripes.server.four-devices-round-trip",
            title: "A four-device backup restores through four devices",
            spec_ref: "§3.3",
            requirement: "RESTORE normally needs the same device count as the BACKUP; each stripe comes back whole.",
            level: Level::Must,
            role: Role::Server,
            chapter: "stripes",
            expectation: Expectation::ServerRoundTrip,
            run: |cx| {
                let b = Plan::new(Mode::Backup, 4);
                server_round_trip(cx, b.clone(), restore_of(&b), |_| {})
            },
        },
        Case {
            id: "stripes.server.64-devices",
            title: "A 64-device backup ends cleanly on every device",
            spec_ref: "§2.4, §3.3",
            requirement: "deviceCount may be 64; the server opens and closes every device.",
            level: Level::Must,
            role: Role::Server,
            chapter: "stripes",
            expectation: Expectation::ServerCleanRun,
            run: |cx| {
                let mut p = Plan::new(Mode::Backup, 64);
                p.bytes_per_device = 16 * 1024;
                p.buffer_count = 32;
                server_job(cx, p)
            },
        },
    ]
}
