//! Commands and errors (SPEC §2.5, §3.1, §3.4, §3.5): Flush, ClearError after an error
//! completion, ERROR_NOT_SUPPORTED for unknown commands, the VDC_Complete handshake, and a
//! server's reaction to error completions.

use super::{restore_of, server_job, server_round_trip, std_ops_with_complete, ClientScenario, RestoreSpec};
use crate::case::{Case, Expectation};
use crate::harness::play_client::Plan;
use crate::harness::play_server::Op;
use crate::model::{Level, Role};
use crate::plugin::Mode;
use vdisim::vdi::{completion, features, CommandCode};

/// A command code no VDI version defines.
const UNKNOWN: u32 = 99;

/// Writes, an unknown command (NOT_SUPPORTED puts the device in IO-ERROR), ClearError, more
/// Writes, Flush.
fn unknown_then_clear_error(restore: bool) -> ClientScenario {
    let mut s = ClientScenario::new(1);
    let mut unknown = Op::raw(0, UNKNOWN, 0).waited();
    unknown.expect_error = true;
    s.ops = vec![
        Op::write(0, 65536),
        Op::write(0, 4096),
        unknown,
        Op::cmd(0, CommandCode::ClearError).waited(),
        Op::write(0, 65536),
        Op::write(0, 512),
        Op::cmd(0, CommandCode::Flush).waited(),
    ];
    if restore {
        s.restore = Some(RestoreSpec::new(s.p, &[65536]));
    }
    s
}

fn with_complete() -> ClientScenario {
    let mut s = ClientScenario::new(1);
    s.p.request_complete = true;
    s.ops = std_ops_with_complete(1);
    s
}

fn request_complete(mut p: Plan) -> Plan {
    p.features |= features::VDF_REQUEST_COMPLETE;
    p
}

pub(crate) fn cases() -> Vec<Case> {
    vec![
        // §2.5: "NOT_SUPPORTED is for commands the client does not implement"; §3.1 step 5:
        // "anything else = NOT_SUPPORTED".
        Case {
            id: "commands.client.unknown-not-supported",
            title: "An unknown command code (99) is answered ERROR_NOT_SUPPORTED",
            spec_ref: "§2.5, §3.1",
            requirement: "Every command gets a code; NOT_SUPPORTED is for commands the client does not implement.",
            level: Level::Must,
            role: Role::Client,
            chapter: "commands",
            expectation: Expectation::CompletionCode {
                command: UNKNOWN,
                code: completion::ERROR_NOT_SUPPORTED,
            },
            run: |cx| unknown_then_clear_error(false).run(cx),
        },
        // §3.1 step 5: "ClearError = SUCCESS"; §3.5: "a success reply makes the device Active again".
        Case {
            id: "commands.client.clear-error",
            title: "ClearError after an error completion is answered ERROR_SUCCESS",
            spec_ref: "§3.1, §3.5",
            requirement: "ClearError = SUCCESS; a success reply makes the device Active again.",
            level: Level::Must,
            role: Role::Client,
            chapter: "commands",
            expectation: Expectation::CompletionCode {
                command: CommandCode::ClearError.code(),
                code: completion::ERROR_SUCCESS,
            },
            run: |cx| unknown_then_clear_error(false).run(cx),
        },
        Case {
            id: "commands.client.continues-after-clear-error",
            title: "After ClearError the backup goes on and restores byte for byte",
            spec_ref: "§3.5",
            requirement: "After a successful ClearError the device is Active again: the stream continues, nothing lost.",
            level: Level::Must,
            role: Role::Client,
            chapter: "commands",
            expectation: Expectation::RoundTrip,
            run: |cx| unknown_then_clear_error(true).run(cx),
        },
        // §3.1 step 5: "Flush = make durable".
        Case {
            id: "commands.client.flush-success",
            title: "Flush is answered ERROR_SUCCESS",
            spec_ref: "§3.1, §3.4",
            requirement: "Flush = make durable, answered SUCCESS.",
            level: Level::Must,
            role: Role::Client,
            chapter: "commands",
            expectation: Expectation::CompletionCode {
                command: CommandCode::Flush.code(),
                code: completion::ERROR_SUCCESS,
            },
            run: |cx| ClientScenario::new(1).run(cx),
        },
        // §3.4: "Flush makes earlier writes durable".
        Case {
            id: "commands.client.flush-after-writes",
            title: "A Flush sent behind Writes completes after them",
            spec_ref: "§3.4",
            requirement: "Flush makes earlier writes durable: it cannot complete before the Writes sent before it.",
            level: Level::Must,
            role: Role::Client,
            chapter: "commands",
            expectation: Expectation::FlushAfterWrites,
            run: |cx| ClientScenario::new(1).run(cx),
        },
        // §3.4: "Since SQL 2008 (FILESTREAM) it can occur several times per backup".
        Case {
            id: "commands.client.several-flushes",
            title: "Flushes in the middle of the stream, then more data",
            spec_ref: "§3.4",
            requirement: "Flush can occur several times per backup; the stream goes on after it.",
            level: Level::Must,
            role: Role::Client,
            chapter: "commands",
            expectation: Expectation::RoundTrip,
            run: |cx| {
                let mut s = ClientScenario::round_trip(1);
                s.ops = vec![
                    Op::write(0, 65536),
                    Op::write(0, 4096),
                    Op::cmd(0, CommandCode::Flush).waited(),
                    Op::write(0, 65536),
                    Op::cmd(0, CommandCode::Flush).waited(),
                    Op::write(0, 512),
                    Op::cmd(0, CommandCode::Flush).waited(),
                ];
                s.run(cx)
            },
        },
        // §3.4: "VDC_Complete: all data has been sent. Finalise the media and answer SUCCESS".
        Case {
            id: "commands.client.complete-handshake",
            title: "VDC_Complete (asked for) is answered ERROR_SUCCESS",
            spec_ref: "§2.2, §3.4",
            requirement: "VDC_Complete: all data has been sent. Finalise the media and answer SUCCESS.",
            level: Level::Must,
            role: Role::Client,
            chapter: "commands",
            expectation: Expectation::CompletionCode {
                command: CommandCode::Complete.code(),
                code: completion::ERROR_SUCCESS,
            },
            run: |cx| with_complete().run(cx),
        },
        Case {
            id: "commands.client.complete-then-close",
            title: "After VDC_Complete the client still waits for VD_E_CLOSE, then closes",
            spec_ref: "§3.4, §1.2",
            requirement: "VDC_Complete is not the end of the stream: wait for VD_E_CLOSE on every device, then Close.",
            level: Level::Must,
            role: Role::Client,
            chapter: "commands",
            expectation: Expectation::CleanRun,
            run: |cx| with_complete().run(cx),
        },
        // §3.4: "before VDC_Complete it [Flush] was always the last command".
        Case {
            id: "commands.server.flush-last",
            title: "A backup ends each device with a Flush",
            spec_ref: "§3.4",
            requirement: "Flush makes earlier writes durable; before VDC_Complete it was always the last command.",
            level: Level::Must,
            role: Role::Server,
            chapter: "commands",
            expectation: Expectation::FlushLast,
            run: |cx| server_job(cx, Plan::new(Mode::Backup, 2)),
        },
        // §2.2: "the server answers with CompleteEnabled if it will send VDC_Complete".
        Case {
            id: "commands.server.complete-handshake",
            title: "VDF_RequestComplete: CompleteEnabled, then VDC_Complete after the final Flush",
            spec_ref: "§2.2, §3.4",
            requirement: "RequestComplete is the client's request; the server answers with CompleteEnabled if it will send VDC_Complete, which comes after all data.",
            level: Level::Must,
            role: Role::Server,
            chapter: "commands",
            expectation: Expectation::CompleteHandshake,
            run: |cx| server_job(cx, request_complete(Plan::new(Mode::Backup, 2))),
        },
        Case {
            id: "commands.server.no-complete-without-request",
            title: "Without VDF_RequestComplete there is no VDC_Complete",
            spec_ref: "§2.2",
            requirement: "CompleteEnabled (and VDC_Complete) only answer a client's RequestComplete.",
            level: Level::Must,
            role: Role::Server,
            chapter: "commands",
            expectation: Expectation::NoCompleteCommand,
            run: |cx| server_job(cx, Plan::new(Mode::Backup, 1)),
        },
        // §3.4: "a failure fails the backup and prevents log truncation".
        Case {
            id: "commands.server.complete-error-fails-backup",
            title: "VDC_Complete answered with ERROR_IO_DEVICE fails the backup",
            spec_ref: "§3.4",
            requirement: "VDC_Complete: a failure fails the backup.",
            level: Level::Must,
            role: Role::Server,
            chapter: "commands",
            expectation: Expectation::ServerFails,
            run: |cx| {
                let mut p = request_complete(Plan::new(Mode::Backup, 1));
                p.fail = Some((CommandCode::Complete.code(), 0, completion::ERROR_IO_DEVICE));
                server_job(cx, p)
            },
        },
        Case {
            id: "commands.server.flush-error-fails-backup",
            title: "Flush answered with ERROR_IO_DEVICE fails the backup",
            spec_ref: "§3.4, §3.5",
            requirement: "Flush makes the writes durable; a Flush that failed leaves a backup that cannot be trusted, so it fails.",
            level: Level::Must,
            role: Role::Server,
            chapter: "commands",
            expectation: Expectation::ServerFails,
            run: |cx| {
                let mut p = Plan::new(Mode::Backup, 1);
                p.fail = Some((CommandCode::Flush.code(), 0, completion::ERROR_IO_DEVICE));
                server_job(cx, p)
            },
        },
        // §3.1 step 5: "ERROR_DISK_FULL/ERROR_EOM_OVERFLOW abort the backup".
        Case {
            id: "commands.server.write-error-fails-backup",
            title: "A Write answered with ERROR_DISK_FULL fails the backup",
            spec_ref: "§3.1, §3.5",
            requirement: "ERROR_DISK_FULL on a Write aborts the backup.",
            level: Level::Must,
            role: Role::Server,
            chapter: "commands",
            expectation: Expectation::ServerFails,
            run: |cx| {
                let mut p = Plan::new(Mode::Backup, 1);
                p.fail = Some((CommandCode::Write.code(), 1, completion::ERROR_DISK_FULL));
                server_job(cx, p)
            },
        },
        Case {
            id: "commands.server.read-error-fails-restore",
            title: "A Read answered with ERROR_IO_DEVICE fails the restore",
            spec_ref: "§3.5",
            requirement: "An error completion puts the device in IO-ERROR; a restore that lost data fails.",
            level: Level::Must,
            role: Role::Server,
            chapter: "commands",
            expectation: Expectation::ServerFails,
            run: |cx| {
                let b = Plan::new(Mode::Backup, 1);
                let mut r = restore_of(&b);
                r.fail = Some((CommandCode::Read.code(), 1, completion::ERROR_IO_DEVICE));
                server_round_trip(cx, b, r, |_| {})
            },
        },
        // §3.5: "The server may instead CloseDevice (client gets VD_E_CLOSE) or SignalAbort."
        Case {
            id: "commands.server.error-reaction",
            title: "What the server does after ERROR_DISK_FULL: ClearError, CloseDevice or SignalAbort",
            spec_ref: "§3.5",
            requirement: "After an error completion the server may send ClearError, CloseDevice the device, or SignalAbort.",
            level: Level::Should,
            role: Role::Server,
            chapter: "commands",
            expectation: Expectation::Informational,
            run: |cx| {
                let mut p = Plan::new(Mode::Backup, 1);
                p.fail = Some((CommandCode::Write.code(), 1, completion::ERROR_DISK_FULL));
                server_job(cx, p)
            },
        },
    ]
}
