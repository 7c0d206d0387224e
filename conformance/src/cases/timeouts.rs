//! Timeouts (SPEC §1.2, §1.3, §2.4, §3.6): a client retries after VD_E_TIMEOUT (no state
//! change); a server applies serverTimeOut's two-interval rule, and only that.

use super::{server_job, ClientScenario};
use crate::case::{Case, Expectation};
use crate::harness::play_client::{Action, Plan, Trigger};
use crate::model::{Level, Role};
use crate::plugin::Mode;

/// serverTimeOut for the server-role cases: long enough that one interval and two are far
/// apart on a loaded machine (the verdict line is at 1.5 intervals).
const INTERVAL_MS: u32 = 1000;

const RETRY_REQ: &str =
    "Client timeouts only return VD_E_TIMEOUT (no state change; retry is fine): the client asks again.";

pub(crate) fn cases() -> Vec<Case> {
    vec![
        Case {
            id: "timeouts.client.get-command-retry",
            title: "No command for 2.5 s (2.5 GetCommand timeouts) after the devices open",
            spec_ref: "§1.3, §3.6",
            requirement: RETRY_REQ,
            level: Level::Must,
            role: Role::Client,
            chapter: "timeouts",
            expectation: Expectation::CleanRun,
            run: |cx| {
                let mut s = ClientScenario::new(1);
                let pause = cx.timing.pause_ms();
                s.ops[0] = s.ops[0].clone().paused(pause);
                s.run(cx)
            },
        },
        Case {
            id: "timeouts.client.mid-stream-pause",
            title: "The stream stalls twice for 2.5 s",
            spec_ref: "§1.3, §3.6",
            requirement: RETRY_REQ,
            level: Level::Must,
            role: Role::Client,
            chapter: "timeouts",
            expectation: Expectation::CleanRun,
            run: |cx| {
                let mut s = ClientScenario::new(1);
                let pause = cx.timing.pause_ms();
                s.ops[2] = s.ops[2].clone().paused(pause);
                s.ops[4] = s.ops[4].clone().paused(pause);
                s.run(cx)
            },
        },
        // §3.1 step 3: "If the T-SQL fails early the client only sees VD_E_TIMEOUT, so samples
        // poll in 1 s steps".
        Case {
            id: "timeouts.client.get-configuration-retry",
            title: "The server configures 2.5 s after opening the set",
            spec_ref: "§1.2, §3.1",
            requirement: "GetConfiguration's VD_E_TIMEOUT changes nothing: the client polls again until the server configures.",
            level: Level::Must,
            role: Role::Client,
            chapter: "timeouts",
            expectation: Expectation::CleanRun,
            run: |cx| {
                let mut s = ClientScenario::new(1);
                s.pre_config_pause_ms = 2500;
                s.run(cx)
            },
        },
        // §2.4: "The server aborts if its completion agent waits more than two intervals with
        // requests pending and nothing completing."
        Case {
            id: "timeouts.server.two-intervals",
            title: "serverTimeOut 1 s, a Write never completed: abort after two intervals, not one",
            spec_ref: "§2.4, §3.6",
            requirement: "The server aborts if its completion agent waits more than two intervals with requests pending and nothing completing.",
            level: Level::Must,
            role: Role::Server,
            chapter: "timeouts",
            expectation: Expectation::ServerTimeoutAbort {
                interval_ms: INTERVAL_MS,
            },
            run: |cx| {
                let mut p = Plan::new(Mode::Backup, 1);
                p.server_timeout_ms = INTERVAL_MS;
                let hold = 2 * u64::from(INTERVAL_MS) + 3000;
                server_job(cx, p.with_event(Trigger::OnData(0), Action::Stall(hold)))
            },
        },
        Case {
            id: "timeouts.server.progress-resets",
            title: "serverTimeOut 1 s, every command completed after 0.6 s: no abort",
            spec_ref: "§2.4",
            requirement: "Only two intervals with requests pending and nothing completing abort: a slow client that keeps completing is not aborted.",
            level: Level::Must,
            role: Role::Server,
            chapter: "timeouts",
            expectation: Expectation::ServerCleanRun,
            run: |cx| {
                let mut p = Plan::new(Mode::Backup, 1);
                p.server_timeout_ms = INTERVAL_MS;
                p.complete_delay_ms = u64::from(INTERVAL_MS) * 6 / 10;
                server_job(cx, p)
            },
        },
        Case {
            id: "timeouts.server.zero-is-infinite",
            title: "serverTimeOut 0, a Write held for 2.5 s: no abort",
            spec_ref: "§2.4",
            requirement: "serverTimeOut: ms, 0 = infinite.",
            level: Level::Must,
            role: Role::Server,
            chapter: "timeouts",
            expectation: Expectation::ServerCleanRun,
            run: |cx| server_job(cx, Plan::new(Mode::Backup, 1).with_event(Trigger::OnData(0), Action::Stall(2500))),
        },
    ]
}
