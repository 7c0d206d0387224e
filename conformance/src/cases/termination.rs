//! Termination (SPEC §1.2 Close, §1.4 CloseDevice, §3.3, §3.6): VD_E_CLOSE per device, Close
//! only after every device closed, premature Close, Close after an abort.

use super::{server_job, ClientScenario};
use crate::case::{Case, Expectation};
use crate::harness::play_client::{Action, Plan, Trigger};
use crate::harness::play_server::{After, Op};
use crate::model::{Level, Role};
use crate::plugin::Mode;
use vdisim::vdi::CommandCode;

pub(crate) fn cases() -> Vec<Case> {
    vec![
        // §1.2 Close: "Wait for VD_E_CLOSE on every device first".
        Case {
            id: "close.client.waits-for-vd-e-close",
            title: "The server closes the device 2.5 s after the final Flush",
            spec_ref: "§1.2, §3.6",
            requirement: "Wait for VD_E_CLOSE on every device before Close; the Flush is not the end of the stream.",
            level: Level::Must,
            role: Role::Client,
            chapter: "termination",
            expectation: Expectation::CleanRun,
            run: |cx| {
                let mut s = ClientScenario::new(1);
                s.close_delay_ms = cx.timing.pause_ms();
                s.run(cx)
            },
        },
        // §3.3: "Each device gets its own VD_E_CLOSE; Close the set after all have closed."
        Case {
            id: "close.client.per-device-vd-e-close",
            title: "Three devices closed 200 ms apart, two still streaming after the first closes",
            spec_ref: "§3.3",
            requirement: "Each device gets its own VD_E_CLOSE; Close the set after all have closed.",
            level: Level::Must,
            role: Role::Client,
            chapter: "termination",
            expectation: Expectation::CleanRun,
            run: |cx| {
                let mut s = ClientScenario::new(3);
                let mut ops = crate::harness::play_server::round_robin_writes(3, &[65536, 32768]);
                ops.push(Op::cmd(0, CommandCode::Flush).waited());
                ops.push(Op::close(0));
                for _ in 0..2 {
                    ops.push(Op::write(1, 4096).paused(100));
                    ops.push(Op::write(2, 4096));
                }
                ops.push(Op::cmd(1, CommandCode::Flush).waited());
                ops.push(Op::close(1).paused(200));
                ops.push(Op::write(2, 512));
                ops.push(Op::cmd(2, CommandCode::Flush).waited());
                ops.push(Op::close(2).paused(200));
                s.ops = ops;
                s.run(cx)
            },
        },
        // §1.2 Close: "after an abort, Close once buffers are no longer used"; SignalAbort:
        // "call Close afterwards".
        Case {
            id: "close.client.after-server-abort",
            title: "The server aborts a three-device backup mid-stream: the client closes and fails",
            spec_ref: "§1.2, §3.6",
            requirement: "After an abort the client calls Close, and the backup is reported as failed.",
            level: Level::Must,
            role: Role::Client,
            chapter: "termination",
            expectation: Expectation::FailsCleanly,
            run: |cx| {
                let mut s = ClientScenario::new(3);
                s.ops = crate::harness::play_server::round_robin_writes(3, &[65536, 65536]);
                s.ops[2] = s.ops[2].clone().waited();
                s.ops[3] = s.ops[3].clone().then(After::Abort);
                s.run(cx)
            },
        },
        // §1.4 CloseDevice: "the client's next GetCommand returns VD_E_CLOSE"; §3.3.
        Case {
            id: "close.server.vd-e-close-every-device",
            title: "Every one of four devices ends with VD_E_CLOSE, not VD_E_ABORT",
            spec_ref: "§1.4, §3.3",
            requirement: "The server ends each device with CloseDevice, so each gets its own VD_E_CLOSE, before it closes the set.",
            level: Level::Must,
            role: Role::Server,
            chapter: "termination",
            expectation: Expectation::ServerCleanRun,
            run: |cx| server_job(cx, Plan::new(Mode::Backup, 4)),
        },
        // §1.2 Close: "VD_E_OPEN (devices still open; it then triggers SignalAbort and frees
        // everything anyway)".
        Case {
            id: "close.server.after-client-premature-close",
            title: "The client closes the set with devices open: the server fails the backup and closes",
            spec_ref: "§1.2, §3.6",
            requirement: "A client Close with devices open triggers SignalAbort: the server's operation fails and it closes the set.",
            level: Level::Must,
            role: Role::Server,
            chapter: "termination",
            expectation: Expectation::ServerFails,
            run: |cx| server_job(cx, Plan::new(Mode::Backup, 1).with_event(Trigger::OnData(1), Action::PrematureClose)),
        },
    ]
}
