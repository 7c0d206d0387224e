//! A realistic run report shared by the report tests: several implementations, passes, a failure
//! with a transcript, hangs, unsupported and informational cases, an expected failure, a
//! regression, and hostile strings (markup, quotes, newlines, terminal escapes, bidi overrides,
//! unicode) where an external implementation controls the text.
#![allow(dead_code)] // each test binary uses a different part

use vdi_conformance::model::{
    CaseInfo, CaseResult, ImplementationRun, Integrity, Level, Role, RunReport, Termination, TranscriptEntry, Verdict,
    REPORT_SCHEMA_VERSION,
};

/// Text an external program could print: markup, entities, quotes, newline, tab, CR, ESC (a color
/// sequence), a C1 CSI, a bidi override, NUL, non-Latin scripts and an emoji.
pub const HOSTILE: &str =
    "<script>alert(\"x&y\")</script> 'q' ]]> \n second line\ttab\r \u{1b}[31mred\u{1b}[0m \u{9b}2J \u{202e}evil\u{202c} \u{0} Zürich ✓ 日本語 🚀";

pub const HOSTILE_IMPL: &str = "exec:./my client --name \"<b>&amp;</b>\"";

pub fn case(id: &str, title: &str, spec: &str, level: Level, role: Role, chapter: &str, req: &str) -> CaseInfo {
    CaseInfo {
        id: id.into(),
        title: title.into(),
        spec_ref: spec.into(),
        requirement: req.into(),
        level,
        role,
        chapter: chapter.into(),
        expectation: "ClientCode(NOERROR)".into(),
    }
}

pub fn t(at_ms: u64, actor: &str, call: &str, result: &str) -> TranscriptEntry {
    TranscriptEntry {
        at_ms,
        actor: actor.into(),
        call: call.into(),
        result: result.into(),
    }
}

pub fn pass(id: &str, ms: u64) -> CaseResult {
    CaseResult {
        case_id: id.into(),
        verdict: Verdict::Pass,
        integrity: Integrity::NotChecked,
        termination: Termination::Clean,
        duration_ms: ms,
        transcript: vec![
            t(0, "harness", "CreateEx(set, devices=1)", "NOERROR"),
            t(1, "client", "GetConfiguration(timeout=5000)", "NOERROR"),
        ],
        expected_failure: None,
    }
}

pub fn with(id: &str, verdict: Verdict, ms: u64) -> CaseResult {
    CaseResult {
        verdict,
        ..pass(id, ms)
    }
}

pub fn catalogue() -> Vec<CaseInfo> {
    use Level::*;
    use Role::*;
    vec![
        case(
            "lifecycle.create-then-config",
            "CreateEx, then GetConfiguration returns the server's configuration",
            "§1.5",
            Must,
            Client,
            "lifecycle",
            "GetConfiguration MUST return NOERROR once the server has called EndConfiguration.",
        ),
        case(
            "lifecycle.open-before-config",
            "OpenDevice before GetConfiguration is refused",
            "§1.5",
            Must,
            Client,
            "lifecycle",
            "OpenDevice before the configuration is known MUST return VD_E_PROTOCOL.",
        ),
        case(
            "config.max-transfer-size",
            "Transfers never exceed MAXTRANSFERSIZE",
            "§2.4",
            Must,
            Client,
            "configuration",
            "The client MUST accept any transfer size up to maxTransferSize.",
        ),
        case(
            "data.short-read-eof",
            "A short read at the end of the stream completes with ERROR_HANDLE_EOF",
            "§3.3",
            Must,
            Client,
            "data",
            "A Read past the end MUST complete with ERROR_HANDLE_EOF.",
        ),
        case(
            "termination.close-after-vd-e-close",
            "Close only after every device saw VD_E_CLOSE",
            "§1.2",
            Must,
            Client,
            "termination",
            "The client MUST call Close only after GetCommand returned VD_E_CLOSE on every device.",
        ),
        case(
            "termination.premature-close-protocol",
            "Server Close with devices open is VD_E_PROTOCOL",
            "§1.2",
            Must,
            Server,
            "termination",
            "Close with devices still open MUST return VD_E_PROTOCOL and abort the set.",
        ),
        case(
            "stripes.parallel-4",
            "Four stripes serviced concurrently",
            "§2.6",
            Must,
            Client,
            "stripes",
            "The client MUST service all devices concurrently; sequential service deadlocks.",
        ),
        case(
            "timeouts.retry-after-timeout",
            "GetCommand is retried after VD_E_TIMEOUT",
            "§1.3",
            Should,
            Client,
            "timeouts",
            "A client SHOULD retry GetCommand after VD_E_TIMEOUT instead of aborting.",
        ),
        case(
            "commands.flush-acknowledged",
            "Flush is acknowledged only once data is durable",
            "§3.4",
            Must,
            Client,
            "commands",
            "VDC_Flush MUST complete only after all prior writes are durable.",
        ),
    ]
}

fn failure_transcript() -> Vec<TranscriptEntry> {
    vec![
        t(
            0,
            "harness",
            "CreateEx(set=\"vdisim-t-42-close\", devices=2)",
            "NOERROR",
        ),
        t(1, "client", "GetConfiguration(timeout=5000)", "NOERROR"),
        t(2, "server", "OpenDevice(\"vdisim-t-42-close\")", "NOERROR"),
        t(2, "server", "OpenDevice(\"vdisim-t-42-close_1\")", "NOERROR"),
        t(5, "server", "SendCommand(dev=0, VDC_Write, 65536)", "NOERROR"),
        t(6, "client", "GetCommand(dev=0, timeout=1000)", "VDC_Write 65536 @0"),
        t(7, "client", "CompleteCommand(dev=0, ERROR_SUCCESS, 65536)", "NOERROR"),
        t(9, "server", "CloseDevice(dev=0)", "NOERROR"),
        t(10, "client", "Close()", "NOERROR"),
        t(11, "server", "GetCompletion(dev=1, timeout=1000)", "VD_E_ABORT"),
    ]
}

pub const MUTANT: &str = "mutant:services-stripes-sequentially";

/// The fixture report.
pub fn sample_report() -> RunReport {
    let builtin = ImplementationRun {
        implementation: "builtin-client".into(),
        role: Role::Client,
        results: vec![
            pass("lifecycle.create-then-config", 12),
            pass("lifecycle.open-before-config", 3),
            pass("config.max-transfer-size", 41),
            CaseResult {
                integrity: Integrity::Intact,
                ..pass("data.short-read-eof", 57)
            },
            pass("termination.close-after-vd-e-close", 18),
            CaseResult {
                integrity: Integrity::Intact,
                ..pass("stripes.parallel-4", 230)
            },
            pass("timeouts.retry-after-timeout", 1_204),
            pass("commands.flush-acknowledged", 9),
        ],
        duration_ms: 1_574,
    };

    let mutant = ImplementationRun {
        implementation: MUTANT.into(),
        role: Role::Client,
        results: vec![
            pass("lifecycle.create-then-config", 11),
            pass("lifecycle.open-before-config", 4),
            pass("config.max-transfer-size", 39),
            pass("data.short-read-eof", 60),
            CaseResult {
                case_id: "termination.close-after-vd-e-close".into(),
                verdict: Verdict::Fail {
                    expected: "GetCommand returns VD_E_CLOSE on devices 0 and 1, then Close".into(),
                    actual: "Close on device 1 before VD_E_CLOSE (set aborted)".into(),
                    requirement:
                        "The client MUST call Close only after GetCommand returned VD_E_CLOSE on every device.".into(),
                },
                integrity: Integrity::Corrupt,
                termination: Termination::Unclean,
                duration_ms: 25,
                transcript: failure_transcript(),
                expected_failure: None,
            },
            CaseResult {
                case_id: "stripes.parallel-4".into(),
                verdict: Verdict::Hang {
                    step: "GetCommand(dev=1, timeout=INFINITE) while device 0 waits for its next command".into(),
                },
                integrity: Integrity::NotChecked,
                termination: Termination::Killed,
                duration_ms: 5_003,
                transcript: vec![
                    t(
                        0,
                        "harness",
                        "CreateEx(set=\"vdisim-t-43-stripes\", devices=4)",
                        "NOERROR",
                    ),
                    t(3, "server", "SendCommand(dev=0, VDC_Write, 1048576)", "NOERROR"),
                    t(3, "server", "SendCommand(dev=1, VDC_Write, 1048576)", "NOERROR"),
                    t(
                        4,
                        "client",
                        "GetCommand(dev=0, timeout=INFINITE)",
                        "VDC_Write 1048576 @0",
                    ),
                    t(5_000, "harness", "deadline 5000 ms passed", "TIMEOUT"),
                ],
                expected_failure: Some("seeded defect: services stripes one after another".into()),
            },
            with(
                "timeouts.retry-after-timeout",
                Verdict::NonStrict {
                    expected: "GetCommand retried after VD_E_TIMEOUT".into(),
                    actual: "SignalAbort after the first VD_E_TIMEOUT".into(),
                    requirement: "A client SHOULD retry GetCommand after VD_E_TIMEOUT instead of aborting.".into(),
                },
                1_010,
            ),
            pass("commands.flush-acknowledged", 10),
        ],
        duration_ms: 6_162,
    };

    let hostile = ImplementationRun {
        implementation: HOSTILE_IMPL.into(),
        role: Role::Client,
        results: vec![
            pass("lifecycle.create-then-config", 35),
            with(
                "lifecycle.open-before-config",
                Verdict::Fail {
                    expected: "VD_E_PROTOCOL <0x80770005> & abort".into(),
                    actual: HOSTILE.into(),
                    requirement: "OpenDevice before the configuration is known MUST return VD_E_PROTOCOL.".into(),
                },
                48,
            ),
            with(
                "config.max-transfer-size",
                Verdict::Unsupported {
                    reason: "the program exited with 89 (unsupported): \"no large buffers\"".into(),
                },
                20,
            ),
            CaseResult {
                transcript: vec![t(0, "client", HOSTILE, HOSTILE), t(1, "stderr", "line <2> & \"3\"", "")],
                ..with(
                    "data.short-read-eof",
                    Verdict::Informational {
                        note: "the program printed to stderr".into(),
                    },
                    66,
                )
            },
            pass("termination.close-after-vd-e-close", 40),
            pass("stripes.parallel-4", 300),
            pass("timeouts.retry-after-timeout", 1_100),
            CaseResult {
                case_id: "commands.flush-acknowledged".into(),
                verdict: Verdict::Hang {
                    step: "waiting for the program to exit after VD_E_CLOSE".into(),
                },
                integrity: Integrity::NotChecked,
                termination: Termination::Killed,
                duration_ms: 10_000,
                transcript: vec![
                    t(0, "harness", "spawn ./my client --backup", "pid 4242"),
                    t(10_000, "harness", "kill -9 4242", "killed"),
                ],
                expected_failure: None,
            },
            with(
                "legacy.removed-case",
                Verdict::Informational {
                    note: "a case id no longer in the catalogue".into(),
                },
                1,
            ),
        ],
        duration_ms: 11_610,
    };

    let server = ImplementationRun {
        implementation: "builtin-server".into(),
        role: Role::Server,
        results: vec![pass("termination.premature-close-protocol", 14)],
        duration_ms: 14,
    };

    RunReport {
        schema_version: REPORT_SCHEMA_VERSION,
        tool: "vdisim".into(),
        tool_version: "0.1.0".into(),
        started_at: "2025-01-15T10:20:30Z".into(),
        cases: catalogue(),
        runs: vec![builtin, mutant, hostile, server],
        regressions: vec![format!("{MUTANT}/termination.close-after-vd-e-close")],
    }
}
