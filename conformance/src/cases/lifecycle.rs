//! Lifecycle and the state table (SPEC §1.2-§1.5, §3.1-§3.3): the transitions a peer can
//! observe. From the server's side: the client creates the set, takes the configuration,
//! opens every device, takes commands, returns to NormTerm on VD_E_CLOSE and closes. From
//! the client's side: the server configures, opens the devices, sends, closes each device.

use super::{restore_of, server_job, server_round_trip, ClientScenario};
use crate::case::{Case, Expectation};
use crate::harness::play_client::Plan;
use crate::model::{Level, Role};
use crate::plugin::Mode;

pub(crate) fn cases() -> Vec<Case> {
    vec![
        // §3.1 step 5-6: "Loop GetCommand → act → CompleteCommand ... On VD_E_CLOSE stop,
        // then Close()."
        Case {
            id: "lifecycle.client.backup-completes",
            title: "A one-device backup runs from CreateEx to Close",
            spec_ref: "§3.1",
            requirement: "The client loops GetCommand, acts, CompleteCommand; on VD_E_CLOSE it stops, then calls Close.",
            level: Level::Must,
            role: Role::Client,
            chapter: "lifecycle",
            expectation: Expectation::CleanRun,
            run: |cx| ClientScenario::new(1).run(cx),
        },
        // §3.2: "The stream read must be byte-identical to the one written."
        Case {
            id: "lifecycle.client.restore-round-trip",
            title: "A one-device backup restores byte for byte",
            spec_ref: "§3.2",
            requirement: "The stream read must be byte-identical to the one written.",
            level: Level::Must,
            role: Role::Client,
            chapter: "lifecycle",
            expectation: Expectation::RoundTrip,
            run: |cx| ClientScenario::round_trip(1).run(cx),
        },
        // §1.5: OpenDevice Initializing → Active; "Clients with n devices call OpenDevice n
        // times"; §3.3: "Clients run one thread per device (OpenDevice + own loop)".
        Case {
            id: "lifecycle.client.opens-every-device",
            title: "The client opens all four devices before the stream starts",
            spec_ref: "§1.5, §3.3",
            requirement: "Clients with n devices call OpenDevice n times, one thread (or process) per device.",
            level: Level::Must,
            role: Role::Client,
            chapter: "lifecycle",
            expectation: Expectation::OpensEveryDevice,
            run: |cx| {
                let mut s = ClientScenario::new(4);
                s.watch_opens = true;
                s.run(cx)
            },
        },
        // §1.2 OpenDevice: "VD_E_OPEN (all devices open; benign, clients may loop until it appears)".
        Case {
            id: "lifecycle.client.open-device-retry",
            title: "Devices published 3.5 s after the configuration: the client retries OpenDevice",
            spec_ref: "§1.2",
            requirement: "VD_E_OPEN from OpenDevice is benign: the client loops until the device appears.",
            level: Level::Must,
            role: Role::Client,
            chapter: "lifecycle",
            expectation: Expectation::CleanRun,
            run: |cx| {
                let mut s = ClientScenario::new(1);
                s.pre_open_pause_ms = 3500;
                s.run(cx)
            },
        },
        // §1.4: Open → Connected, BeginConfiguration, EndConfiguration → Initializing,
        // OpenDevice → Active, SendCommand, CloseDevice; §3.1 from the server's side.
        Case {
            id: "lifecycle.server.backup-completes",
            title: "A one-device backup: configure, open, Writes, Flush, CloseDevice, Close",
            spec_ref: "§1.4, §3.1",
            requirement: "The server configures the set, opens the device, streams, ends the device with CloseDevice (the client's VD_E_CLOSE) and closes the set.",
            level: Level::Must,
            role: Role::Server,
            chapter: "lifecycle",
            expectation: Expectation::ServerCleanRun,
            run: |cx| server_job(cx, Plan::new(Mode::Backup, 1)),
        },
        // §3.2: a RESTORE reads the stream back until end of data.
        Case {
            id: "lifecycle.server.restore-completes",
            title: "A one-device restore of the server's own backup",
            spec_ref: "§3.2",
            requirement: "The server reads the stream back until the end of data, closes the device and succeeds.",
            level: Level::Must,
            role: Role::Server,
            chapter: "lifecycle",
            expectation: Expectation::ServerCleanRun,
            run: |cx| {
                let b = Plan::new(Mode::Backup, 1);
                server_round_trip(cx, b.clone(), restore_of(&b), |_| {})
            },
        },
        // §1.4 OpenDevice "returns the next device"; §3.3 one thread per device.
        Case {
            id: "lifecycle.server.three-devices",
            title: "A three-device backup ends cleanly on every device",
            spec_ref: "§1.4, §3.3",
            requirement: "The server opens every device of the set and ends each one with CloseDevice.",
            level: Level::Must,
            role: Role::Server,
            chapter: "lifecycle",
            expectation: Expectation::ServerCleanRun,
            run: |cx| server_job(cx, Plan::new(Mode::Backup, 3)),
        },
        // §1.2: the client may open devices whenever it is ready; commands wait in the queue.
        Case {
            id: "lifecycle.server.late-device-open",
            title: "The client opens its devices 500 ms after GetConfiguration",
            spec_ref: "§1.2, §1.4",
            requirement: "Commands sent before the client opens the device wait for it; the backup completes.",
            level: Level::Must,
            role: Role::Server,
            chapter: "lifecycle",
            expectation: Expectation::ServerCleanRun,
            run: |cx| {
                let mut p = Plan::new(Mode::Backup, 2);
                p.open_delay_ms = 500;
                server_job(cx, p)
            },
        },
    ]
}
