//! Abort from either side in every state, with calls blocked (SPEC §1.2 SignalAbort, §1.4,
//! §3.6): "SignalAbort, from either side, is fail-fast: blocked and later calls return
//! VD_E_ABORT". The implementation under test must end promptly, report failure, and close.

use super::{restore_of, server_job, server_round_trip, std_ops, streams_for, ClientScenario, RestoreSpec, SEED};
use crate::case::{Case, Expectation, Observation};
use crate::harness::play_client::{Action, Plan, Trigger};
use crate::harness::play_server::{round_robin_writes, After, Op, Params, Session};
use crate::harness::Cx;
use crate::model::{Level, Role};
use crate::plugin::Mode;
use vdisim::vdi::CommandCode;

/// The server (harness) aborts at a point of the set-up: 0 after Open, 1 after
/// EndConfiguration, 2 after OpenDevice; each 300 ms after the client got there.
fn server_aborts_at(cx: &Cx, stage: u8) -> Observation {
    let p = Params::new(1);
    let mut s = Session::start(cx, Mode::Backup, &p, "a", Observation::default());
    let reached = match stage {
        0 => s.open(),
        1 => s.open() && s.configure(&p),
        _ => s.setup(&p),
    };
    if reached {
        s.pause(300);
        s.abort();
    }
    s.finish()
}

const ABORT_REQ: &str = "After SignalAbort by the server, the client's blocked and later calls return VD_E_ABORT; it calls Close and the operation fails.";
const SERVER_REQ: &str = "After SignalAbort by the client, the server's calls return VD_E_ABORT; the operation fails and the server closes the set.";

pub(crate) fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "abort.client.during-configuration",
            title: "The server aborts while the client waits in GetConfiguration",
            spec_ref: "§1.2, §3.6",
            requirement: ABORT_REQ,
            level: Level::Must,
            role: Role::Client,
            chapter: "abort",
            expectation: Expectation::FailsCleanly,
            run: |cx| server_aborts_at(cx, 0),
        },
        Case {
            id: "abort.client.before-open-device",
            title: "The server aborts after EndConfiguration, before opening the devices",
            spec_ref: "§1.2, §3.6",
            requirement: ABORT_REQ,
            level: Level::Must,
            role: Role::Client,
            chapter: "abort",
            expectation: Expectation::FailsCleanly,
            run: |cx| server_aborts_at(cx, 1),
        },
        Case {
            id: "abort.client.idle-device",
            title: "The server aborts while the client waits in GetCommand",
            spec_ref: "§1.3, §3.6",
            requirement: ABORT_REQ,
            level: Level::Must,
            role: Role::Client,
            chapter: "abort",
            expectation: Expectation::FailsCleanly,
            run: |cx| server_aborts_at(cx, 2),
        },
        Case {
            id: "abort.client.mid-backup",
            title: "The server aborts with Writes outstanding",
            spec_ref: "§3.6",
            requirement: ABORT_REQ,
            level: Level::Must,
            role: Role::Client,
            chapter: "abort",
            expectation: Expectation::FailsCleanly,
            run: |cx| {
                let mut s = ClientScenario::new(1);
                s.ops = round_robin_writes(1, &[65536, 65536, 65536]);
                s.ops[1] = s.ops[1].clone().waited();
                s.ops[2] = s.ops[2].clone().then(After::Abort);
                s.run(cx)
            },
        },
        Case {
            id: "abort.client.mid-restore",
            title: "The server aborts a restore with Reads outstanding",
            spec_ref: "§3.6",
            requirement: ABORT_REQ,
            level: Level::Must,
            role: Role::Client,
            chapter: "abort",
            expectation: Expectation::FailsCleanly,
            run: |cx| {
                let mut s = ClientScenario::new(1);
                let mut r = RestoreSpec::new(s.p, &[65536]);
                r.tweak = |reads| {
                    if reads.len() > 2 {
                        reads[1] = reads[1].clone().waited();
                        reads[2] = reads[2].clone().then(After::Abort);
                    }
                };
                s.restore = Some(r);
                s.run(cx)
            },
        },
        Case {
            id: "abort.client.after-partial-close",
            title: "The server aborts after device 0 got VD_E_CLOSE, device 1 still open",
            spec_ref: "§3.3, §3.6",
            requirement: ABORT_REQ,
            level: Level::Must,
            role: Role::Client,
            chapter: "abort",
            expectation: Expectation::FailsCleanly,
            run: |cx| {
                let mut s = ClientScenario::new(2);
                let mut ops = round_robin_writes(2, &[65536, 4096]);
                ops.push(Op::cmd(0, CommandCode::Flush).waited());
                ops.push(Op::close(0));
                ops.push(Op::write(1, 4096).paused(100).then(After::Abort));
                s.ops = ops;
                s.run(cx)
            },
        },
        // mthread.cpp (§5): "SignalAbort on error"; §1.2 SignalAbort.
        Case {
            id: "abort.client.signals-own-error",
            title: "The client cannot open its second device (misnamed by the server): it aborts the set",
            spec_ref: "§1.2, §3.6, §5",
            requirement: "A client that cannot go on calls SignalAbort (or Close, which triggers it) so the server is not left waiting.",
            level: Level::Must,
            role: Role::Client,
            chapter: "abort",
            expectation: Expectation::ClientAborts,
            run: |cx| {
                let p = Params::new(2);
                let mut s = Session::start(cx, Mode::Backup, &p, "a", Observation::default());
                if s.open() && s.configure(&p) {
                    let names = vec![s.job.set.clone(), format!("{}_typo", s.job.set)];
                    if s.open_devices_named(&names) {
                        let ops = std_ops(2);
                        let streams = streams_for(&ops, 2, SEED);
                        if s.run_ops(&ops, &streams, &p) {
                            s.close_devices(0, 0, 0);
                        }
                    }
                }
                s.finish()
            },
        },
        Case {
            id: "abort.server.before-open",
            title: "The client aborts the set before the server opens it",
            spec_ref: "§1.4, §3.6",
            requirement: SERVER_REQ,
            level: Level::Must,
            role: Role::Server,
            chapter: "abort",
            expectation: Expectation::ServerFails,
            run: |cx| server_job(cx, Plan::new(Mode::Backup, 1).with_event(Trigger::BeforeServer, Action::SignalAbort)),
        },
        Case {
            id: "abort.server.while-configurable",
            title: "The client aborts while it is still Configurable",
            spec_ref: "§1.5, §3.6",
            requirement: SERVER_REQ,
            level: Level::Must,
            role: Role::Server,
            chapter: "abort",
            expectation: Expectation::ServerFails,
            run: |cx| {
                server_job(
                    cx,
                    Plan::new(Mode::Backup, 1).with_event(Trigger::WhileConfigurable, Action::SignalAbort),
                )
            },
        },
        Case {
            id: "abort.server.after-configuration",
            title: "The client aborts after GetConfiguration, before opening devices",
            spec_ref: "§1.5, §3.6",
            requirement: SERVER_REQ,
            level: Level::Must,
            role: Role::Server,
            chapter: "abort",
            expectation: Expectation::ServerFails,
            run: |cx| {
                server_job(
                    cx,
                    Plan::new(Mode::Backup, 1).with_event(Trigger::AfterConfiguration, Action::SignalAbort),
                )
            },
        },
        Case {
            id: "abort.server.mid-backup",
            title: "The client aborts while holding a Write",
            spec_ref: "§3.6",
            requirement: SERVER_REQ,
            level: Level::Must,
            role: Role::Server,
            chapter: "abort",
            expectation: Expectation::ServerFails,
            run: |cx| server_job(cx, Plan::new(Mode::Backup, 1).with_event(Trigger::OnData(1), Action::SignalAbort)),
        },
        Case {
            id: "abort.server.mid-restore",
            title: "The client aborts a restore while holding a Read",
            spec_ref: "§3.6",
            requirement: SERVER_REQ,
            level: Level::Must,
            role: Role::Server,
            chapter: "abort",
            expectation: Expectation::ServerFails,
            run: |cx| {
                let b = Plan::new(Mode::Backup, 1);
                let r = restore_of(&b).with_event(Trigger::OnData(1), Action::SignalAbort);
                server_round_trip(cx, b, r, |_| {})
            },
        },
        Case {
            id: "abort.server.during-flush",
            title: "The client aborts while holding the final Flush",
            spec_ref: "§3.6",
            requirement: SERVER_REQ,
            level: Level::Must,
            role: Role::Server,
            chapter: "abort",
            expectation: Expectation::ServerFails,
            run: |cx| server_job(cx, Plan::new(Mode::Backup, 1).with_event(Trigger::OnFlush, Action::SignalAbort)),
        },
        Case {
            id: "abort.server.after-partial-close",
            title: "The client aborts after device 0 got VD_E_CLOSE, device 1 holding a Write",
            spec_ref: "§3.3, §3.6",
            requirement: SERVER_REQ,
            level: Level::Must,
            role: Role::Server,
            chapter: "abort",
            expectation: Expectation::ServerFails,
            run: |cx| {
                server_job(
                    cx,
                    Plan::new(Mode::Backup, 2).with_event(Trigger::AfterFirstDeviceClosed, Action::SignalAbort),
                )
            },
        },
    ]
}
