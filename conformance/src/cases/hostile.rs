//! Hostile or dying peers (SPEC §1.2 "VDI only notices the server or primary dying", §3.6,
//! DESIGN "Everything read from shared memory is untrusted"): the peer's process dies
//! (its liveness token then names no process, as after a SIGKILL) or it writes garbage into
//! the rings. The implementation under test must end promptly, report failure, and close.

use super::{server_job, ClientScenario};
use crate::case::{Case, Expectation, Observation};
use crate::harness::hostile::{self, Garbage};
use crate::harness::play_client::{Action, Plan, Trigger};
use crate::harness::play_server::{round_robin_writes, After, Params, Session};
use crate::model::{Level, Role};
use crate::plugin::Mode;

const CLIENT_REQ: &str = "When the server dies or misbehaves the client's calls return VD_E_ABORT: the client closes the set and the backup fails.";
const SERVER_REQ: &str =
    "When the client dies or misbehaves the server's calls return VD_E_ABORT: the operation fails and the server closes the set.";

/// Three Writes, the last followed by `after`.
fn then(after: After) -> ClientScenario {
    let mut s = ClientScenario::new(1);
    s.ops = round_robin_writes(1, &[65536, 65536, 4096]);
    s.ops[1] = s.ops[1].clone().waited();
    s.ops[2] = s.ops[2].clone().then(after);
    s
}

pub(crate) fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "hostile.client.server-dies-mid-stream",
            title: "The server process dies with Writes outstanding",
            spec_ref: "§1.2, §3.6",
            requirement: CLIENT_REQ,
            level: Level::Must,
            role: Role::Client,
            chapter: "hostile",
            expectation: Expectation::FailsCleanly,
            run: |cx| then(After::ServerDies).run(cx),
        },
        Case {
            id: "hostile.client.server-dies-during-configuration",
            title: "The server process dies before configuring the set",
            spec_ref: "§1.2, §3.6",
            requirement: CLIENT_REQ,
            level: Level::Must,
            role: Role::Client,
            chapter: "hostile",
            expectation: Expectation::FailsCleanly,
            run: |cx| {
                let p = Params::new(1);
                let mut s = Session::start(cx, Mode::Backup, &p, "a", Observation::default());
                if s.open() {
                    if let Some(h) = hostile::header(&s.job.set) {
                        hostile::kill_server_token(h.header());
                        cx.log("harness", "the server dies (liveness token names no process)", "");
                    }
                    s.phase = "after the server died".into();
                }
                s.finish()
            },
        },
        Case {
            id: "hostile.client.garbage-command",
            title: "A command whose buffer lies outside the buffer area",
            spec_ref: "§3.6",
            requirement: CLIENT_REQ,
            level: Level::Must,
            role: Role::Client,
            chapter: "hostile",
            expectation: Expectation::FailsCleanly,
            run: |cx| then(After::Garbage(Garbage::BufferOutsideArea)).run(cx),
        },
        Case {
            id: "hostile.client.garbage-command-code",
            title: "A command with code 0",
            spec_ref: "§2.3, §3.6",
            requirement: CLIENT_REQ,
            level: Level::Must,
            role: Role::Client,
            chapter: "hostile",
            expectation: Expectation::FailsCleanly,
            run: |cx| then(After::Garbage(Garbage::BadCommandCode)).run(cx),
        },
        Case {
            id: "hostile.client.garbage-ring-index",
            title: "The command ring's producer index jumps far ahead",
            spec_ref: "§3.6",
            requirement: CLIENT_REQ,
            level: Level::Must,
            role: Role::Client,
            chapter: "hostile",
            expectation: Expectation::FailsCleanly,
            run: |cx| then(After::Garbage(Garbage::RingIndexJump)).run(cx),
        },
        Case {
            id: "hostile.server.client-dies-mid-stream",
            title: "The client process dies holding a Write",
            spec_ref: "§1.2, §3.6",
            requirement: SERVER_REQ,
            level: Level::Must,
            role: Role::Server,
            chapter: "hostile",
            expectation: Expectation::ServerFails,
            run: |cx| {
                server_job(
                    cx,
                    Plan::new(Mode::Backup, 1).with_event(Trigger::OnData(1), Action::Die),
                )
            },
        },
        Case {
            id: "hostile.server.client-dies-before-configuration",
            title: "The client process dies right after CreateEx",
            spec_ref: "§1.2, §3.6",
            requirement: SERVER_REQ,
            level: Level::Must,
            role: Role::Server,
            chapter: "hostile",
            expectation: Expectation::ServerFails,
            run: |cx| {
                server_job(
                    cx,
                    Plan::new(Mode::Backup, 1).with_event(Trigger::BeforeServer, Action::Die),
                )
            },
        },
        Case {
            id: "hostile.server.unknown-completion",
            title: "A completion for a command that was never sent",
            spec_ref: "§3.6",
            requirement: SERVER_REQ,
            level: Level::Must,
            role: Role::Server,
            chapter: "hostile",
            expectation: Expectation::ServerFails,
            run: |cx| {
                server_job(
                    cx,
                    Plan::new(Mode::Backup, 1)
                        .with_event(Trigger::OnData(0), Action::Garbage(Garbage::UnknownCompletionId)),
                )
            },
        },
        Case {
            id: "hostile.server.bytes-exceed-size",
            title: "A Write completion claiming more bytes than the Write's size",
            spec_ref: "§1.3, §3.6",
            requirement: SERVER_REQ,
            level: Level::Must,
            role: Role::Server,
            chapter: "hostile",
            expectation: Expectation::ServerFails,
            run: |cx| {
                server_job(
                    cx,
                    Plan::new(Mode::Backup, 1).with_event(
                        Trigger::OnData(0),
                        Action::Garbage(Garbage::BytesExceedSize { id: 0, size: 0 }),
                    ),
                )
            },
        },
        Case {
            id: "hostile.server.completion-ring-jump",
            title: "The completion ring's producer index jumps far ahead",
            spec_ref: "§3.6",
            requirement: SERVER_REQ,
            level: Level::Must,
            role: Role::Server,
            chapter: "hostile",
            expectation: Expectation::ServerFails,
            run: |cx| {
                server_job(
                    cx,
                    Plan::new(Mode::Backup, 1).with_event(Trigger::OnData(0), Action::Garbage(Garbage::RingIndexJump)),
                )
            },
        },
    ]
}
