//! A case is data: a stable id, the SPEC sentence it checks, a typed [`Expectation`] and the
//! scenario that produces an [`Observation`]. The expectation, not the scenario, decides the
//! verdict, so the requirement text and the check cannot drift apart (STYLE lesson 13).

use crate::harness::Cx;
use crate::model::{CaseInfo, Integrity, Level, Role, Termination, Verdict};
use crate::plugin::JobExit;
use vdisim::vdi::{completion, features, CommandCode, VDConfig};

/// One entry of the catalogue.
pub struct Case {
    /// Stable id, never renumbered or reused: `<chapter>.<role>.<what>`.
    pub id: &'static str,
    pub title: &'static str,
    /// SPEC section(s), e.g. `§3.5`.
    pub spec_ref: &'static str,
    /// The SPEC requirement the case checks (quoted or paraphrased closely).
    pub requirement: &'static str,
    /// MUST (strict: failing it fails the run) or SHOULD (non-strict).
    pub level: Level,
    /// The role under test.
    pub role: Role,
    pub chapter: &'static str,
    /// What must be observed for a Pass.
    pub expectation: Expectation,
    /// The scenario: drives the implementation and records what it saw.
    pub run: fn(&Cx) -> Observation,
}

impl Case {
    pub fn info(&self) -> CaseInfo {
        CaseInfo {
            id: self.id.to_string(),
            title: self.title.to_string(),
            spec_ref: self.spec_ref.to_string(),
            requirement: self.requirement.to_string(),
            level: self.level,
            role: self.role,
            chapter: self.chapter.to_string(),
            expectation: self.expectation.to_string(),
        }
    }
}

/// A rule on the server's configuration answer (SPEC §1.4, §2.4, §2.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerRule {
    /// VDF_WriteMedia set, VDF_ReadMedia clear (BACKUP, §2.2).
    WriteMedia,
    /// VDF_ReadMedia set, VDF_WriteMedia clear (RESTORE, §2.2).
    ReadMedia,
    /// blockSize a power of two in [512, 64 KiB] (§1.4).
    BlockSize,
    /// maxTransferSize a multiple of 64 KiB in [64 KiB, 4 MiB] (§2.6).
    MaxTransfer,
    /// maxIODepth is 4 (§2.4: "deprecated, always 4").
    MaxIoDepth4,
    /// The client's media-kind feature bits are kept in the answer.
    KeepsMediaKind,
}

/// How a transfer size must relate to the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeRule {
    /// A non-zero multiple of blockSize (§2.6 "All transfers are multiples of it").
    BlockMultiple,
    /// At most maxTransferSize (§2.4 "largest transfer attempted").
    AtMostMaxTransfer,
}

/// The typed expectation of a case. Rendered (Display) into the catalogue and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expectation {
    // ---- client role (the harness plays SQL Server) ----
    /// The client exits 0; every device ended with VD_E_CLOSE before the client's Close; the
    /// set was never aborted; the client closed the set.
    CleanRun,
    /// Every run was clean (as [`Expectation::CleanRun`]) and the restore gave back the
    /// backup byte for byte.
    RoundTrip,
    /// After an abort or a dead or hostile peer: the client ends before the deadline, reports
    /// failure, and closes the set.
    FailsCleanly,
    /// The client aborts the set itself (SignalAbort, or Close which triggers it) and reports
    /// failure.
    ClientAborts,
    /// The client's VDConfig request is valid: deviceCount as asked, a supported media kind.
    RequestValid,
    /// The client's request carries these VDF_* bits.
    RequestHas(u32),
    /// The client opens every device of the set.
    OpensEveryDevice,
    /// Every completion of `command` carries `code`.
    CompletionCode { command: u32, code: u32 },
    /// Every Write completes with ERROR_SUCCESS and bytesTransferred = size.
    WriteCountsExact,
    /// Every Read before the end of data completes with ERROR_SUCCESS and bytesTransferred =
    /// size; the Read that reaches the end returns the remainder with an end-of-data code.
    ReadsFullThenEof,
    /// A Flush completes only after every Write sent before it on the device.
    FlushAfterWrites,
    // ---- server role (the harness plays the client) ----
    /// The server reports success; every device ended with VD_E_CLOSE; no abort; it closed the set.
    ServerCleanRun,
    /// The server restores its own backup: both jobs succeed.
    ServerRoundTrip,
    /// The server ends before the deadline, reports failure, and closes the set.
    ServerFails,
    /// The configuration answer obeys a rule.
    Answer(AnswerRule),
    /// Every command `command` has a size obeying the rule.
    TransferSizes { command: u32, rule: SizeRule },
    /// With VDF_RandomAccess, Read/Write positions are byte offsets from the start (§3.4).
    PositionsAreOffsets { command: u32 },
    /// The data buffers start at multiples of the client's requested alignment.
    BuffersAligned(u32),
    /// The last command before VD_E_CLOSE (VDC_Complete aside) is VDC_Flush.
    FlushLast,
    /// CompleteEnabled answered, then VDC_Complete after the final Flush on every device.
    CompleteHandshake,
    /// Without VDF_RequestComplete: no CompleteEnabled, no VDC_Complete.
    NoCompleteCommand,
    /// The server aborts after two serverTimeOut intervals without progress (not after one).
    ServerTimeoutAbort { interval_ms: u32 },
    /// Devices are serviced concurrently: every device gets a command while the others hold theirs.
    DevicesInParallel,
    /// Recorded, not judged.
    Informational,
}

fn command_name(code: u32) -> String {
    CommandCode::from_code(code).map_or_else(|| format!("command {code}"), |c| c.name().to_string())
}

fn code_name(code: u32) -> String {
    completion::name(code).map_or_else(|| format!("Win32 error {code}"), |n| n.to_string())
}

impl std::fmt::Display for Expectation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expectation::CompletionCode { command, code } => {
                write!(f, "CompletionCode({} -> {})", command_name(*command), code_name(*code))
            }
            Expectation::TransferSizes { command, rule } => {
                write!(f, "TransferSizes({}, {rule:?})", command_name(*command))
            }
            Expectation::PositionsAreOffsets { command } => {
                write!(f, "PositionsAreOffsets({})", command_name(*command))
            }
            Expectation::RequestHas(bits) => write!(f, "RequestHas(0x{bits:x})"),
            Expectation::ServerTimeoutAbort { interval_ms } => {
                write!(f, "ServerTimeoutAbort(interval={interval_ms}ms)")
            }
            other => write!(f, "{other:?}"),
        }
    }
}

/// One command as the harness saw it.
#[derive(Debug, Clone, Default)]
pub struct CmdObs {
    pub device: usize,
    pub id: u64,
    pub code: u32,
    pub size: u32,
    pub position: u64,
    /// The buffer's address (server role: as the client sees it), 0 without buffer.
    pub address: usize,
    /// Completion code, once completed.
    pub completion: Option<u32>,
    pub bytes: u32,
    /// Global order in which the harness issued (client role) or received (server role) it.
    pub seq: u64,
    /// Global order of its completion.
    pub done_seq: Option<u64>,
    /// Client role, Reads: the byte count the Read should return, and whether it is the one
    /// that reaches the end of the device's data.
    pub expect_bytes: Option<u32>,
    pub last: bool,
}

/// Who aborted the set, as the harness saw it at the end of the case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbortSeen {
    /// `client` or `server`.
    pub by: &'static str,
    /// The shared-memory reason (`signal`, `premature-close`, `peer-died`, ...).
    pub reason: &'static str,
    /// Whether the implementation under test did it (rather than the harness).
    pub by_implementation: bool,
}

impl std::fmt::Display for AbortSeen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let who = if self.by_implementation {
            "the implementation under test"
        } else {
            "the harness"
        };
        write!(f, "aborted by the {} ({who}), reason {}", self.by, self.reason)
    }
}

/// Everything a scenario saw; the expectation judges it.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    /// How the implementation's last job ended (`None`: it did not end; it was killed).
    pub exit: Option<JobExit>,
    /// Every job's exit, in order (a round trip has two).
    pub exits: Vec<Option<JobExit>>,
    pub killed: bool,
    /// A step deadline passed: the step.
    pub hang: Option<String>,
    /// The implementation said the case is unsupported.
    pub unsupported: Option<String>,
    /// Protocol problems found while driving the scenario (each a sentence).
    pub problems: Vec<String>,
    /// The first abort of the set, if any.
    pub abort: Option<AbortSeen>,
    pub request: Option<VDConfig>,
    pub answer: Option<VDConfig>,
    pub commands: Vec<CmdObs>,
    /// Server role: how the harness's GetCommand loop ended on each device.
    pub device_ends: Vec<String>,
    /// Whether the implementation closed the set (client: the segment is gone; server: it
    /// called Close). `None` when it could not be observed.
    pub set_closed: Option<bool>,
    pub integrity: Integrity,
    pub integrity_detail: Option<String>,
    /// A measured duration (e.g. from the stalled command to the abort), in milliseconds.
    pub measured_ms: Option<u64>,
    /// Devices opened by the client / devices in the set.
    pub devices_opened: Option<(u32, u32)>,
    /// Server role: a device that got no command while the others held theirs.
    pub parallel_problem: Option<String>,
    /// What the harness asked for (client role: the job's device count).
    pub job_devices: u32,
    pub job_request_complete: bool,
    /// Free-form notes for Informational cases and reports.
    pub notes: Vec<String>,
    /// The harness itself failed (not the implementation).
    pub harness_error: Option<String>,
}

/// The outcome of judging one observation.
pub struct Judged {
    pub verdict: Verdict,
    pub integrity: Integrity,
    pub termination: Termination,
}

type Check = Result<(), (String, String)>;

fn fail(expected: impl Into<String>, actual: impl Into<String>) -> Check {
    Err((expected.into(), actual.into()))
}

fn exit_text(e: &Option<JobExit>) -> String {
    e.as_ref()
        .map_or_else(|| "did not end (killed)".to_string(), |e| e.describe())
}

impl Observation {
    fn cmds(&self, code: u32) -> impl Iterator<Item = &CmdObs> {
        self.commands.iter().filter(move |c| c.code == code)
    }

    fn first_problem(&self) -> Check {
        match self.problems.first() {
            Some(p) => fail("no protocol problem", p.clone()),
            None => Ok(()),
        }
    }

    fn exited_success(&self, what: &str) -> Check {
        for e in &self.exits {
            if e != &Some(JobExit::Success) {
                return fail(
                    format!("the {what} reports success"),
                    format!("it reported {}", exit_text(e)),
                );
            }
        }
        if self.exits.is_empty() {
            return fail(format!("the {what} runs"), "it was never started");
        }
        Ok(())
    }

    fn no_abort(&self) -> Check {
        match &self.abort {
            Some(a) => fail("the set is never aborted", format!("the set was {a}")),
            None => Ok(()),
        }
    }

    fn closed(&self, what: &str) -> Check {
        match self.set_closed {
            Some(false) => fail(format!("the {what} closes the set"), "the set was left open"),
            _ => Ok(()),
        }
    }

    fn reports_failure(&self, what: &str) -> Check {
        match &self.exit {
            Some(JobExit::Failure(_)) => Ok(()),
            Some(JobExit::Success) => fail(
                format!("the {what} reports failure"),
                "it reported success for a job that did not complete",
            ),
            other => fail(format!("the {what} reports failure"), exit_text(other)),
        }
    }

    fn devices_closed_normally(&self) -> Check {
        if self.device_ends.is_empty() {
            return fail("every device ends with VD_E_CLOSE", "no device was opened");
        }
        for (d, end) in self.device_ends.iter().enumerate() {
            if end != "VD_E_CLOSE" {
                return fail(
                    "every device ends with VD_E_CLOSE",
                    format!("device {d} ended with {end}"),
                );
            }
        }
        Ok(())
    }
}

impl Expectation {
    /// Judges an observation. `Err((expected, actual))` when the expectation is not met.
    fn check(&self, o: &Observation) -> Check {
        use Expectation::*;
        match *self {
            CleanRun => {
                o.first_problem()?;
                o.exited_success("client")?;
                o.no_abort()?;
                o.closed("client")
            }
            RoundTrip => {
                o.first_problem()?;
                o.exited_success("client")?;
                o.no_abort()?;
                match o.integrity {
                    Integrity::Intact => Ok(()),
                    _ => fail(
                        "the restore gives back the backup byte for byte",
                        o.integrity_detail.clone().unwrap_or_else(|| "data not checked".into()),
                    ),
                }
            }
            FailsCleanly => {
                o.reports_failure("client")?;
                o.closed("client")
            }
            ClientAborts => {
                match &o.abort {
                    Some(a) if a.by == "client" => {}
                    Some(a) => return fail("the client aborts the set", format!("the set was {a}")),
                    None => return fail("the client aborts the set", "nobody aborted it"),
                }
                o.reports_failure("client")
            }
            RequestValid => {
                let Some(r) = o.request else {
                    return fail("a VDConfig request", "the client never created the set");
                };
                if r.deviceCount != o.job_devices {
                    return fail(
                        format!("deviceCount = {}", o.job_devices),
                        format!("deviceCount = {}", r.deviceCount),
                    );
                }
                let bits = r.features & !(features::VDF_REQUEST_COMPLETE);
                if !features::is_supported_media(bits) {
                    return fail(
                        "features = pipe, tape or disk (optionally +Removable, +Discard)",
                        format!("features = 0x{:x}", r.features),
                    );
                }
                if r.features & features::VDF_REQUEST_COMPLETE != 0 && !o.job_request_complete {
                    return fail(
                        "no VDF_RequestComplete unless asked",
                        format!("features = 0x{:x}", r.features),
                    );
                }
                Ok(())
            }
            RequestHas(bits) => match o.request {
                Some(r) if r.features & bits == bits => Ok(()),
                Some(r) => fail(
                    format!("features include 0x{bits:x}"),
                    format!("features = 0x{:x}", r.features),
                ),
                None => fail("a VDConfig request", "the client never created the set"),
            },
            OpensEveryDevice => match o.devices_opened {
                Some((a, b)) if a == b => Ok(()),
                Some((a, b)) => fail(format!("the client opens all {b} devices"), format!("it opened {a}")),
                None => fail("the client opens every device", "the case never got that far"),
            },
            CompletionCode { command, code } => {
                let mut n = 0;
                for c in o.cmds(command) {
                    n += 1;
                    match c.completion {
                        Some(got) if got == code => {}
                        Some(got) => {
                            return fail(
                                format!("{} completes with {}", command_name(command), code_name(code)),
                                format!("device {}: it completed with {}", c.device, code_name(got)),
                            )
                        }
                        None => {
                            return fail(
                                format!("{} completes with {}", command_name(command), code_name(code)),
                                format!("device {}: it was never completed", c.device),
                            )
                        }
                    }
                }
                if n == 0 {
                    return fail(
                        format!("a {} to judge", command_name(command)),
                        "the case never sent one",
                    );
                }
                Ok(())
            }
            WriteCountsExact => {
                let mut n = 0;
                for c in o.cmds(CommandCode::Write.code()) {
                    n += 1;
                    let ok = c.completion == Some(completion::ERROR_SUCCESS) && c.bytes == c.size;
                    if !ok {
                        return fail(
                            "every VDC_Write completes with ERROR_SUCCESS and bytesTransferred = size",
                            format!(
                                "device {}: Write of {} bytes completed with {} and bytesTransferred = {}",
                                c.device,
                                c.size,
                                c.completion.map_or("nothing".into(), code_name),
                                c.bytes
                            ),
                        );
                    }
                }
                if n == 0 {
                    return fail("Writes to judge", "the case never got to send one");
                }
                Ok(())
            }
            ReadsFullThenEof => {
                let mut n = 0;
                for c in o.cmds(CommandCode::Read.code()) {
                    n += 1;
                    let Some(got) = c.completion else {
                        return fail(
                            "every Read completes",
                            format!("device {}: a Read was never completed", c.device),
                        );
                    };
                    let want = c.expect_bytes.unwrap_or(c.size);
                    if !c.last {
                        if got != completion::ERROR_SUCCESS || c.bytes != c.size {
                            return fail(
                                "a Read before the end of data: ERROR_SUCCESS with bytesTransferred = size",
                                format!(
                                    "device {}: Read of {} completed with {}, {} bytes",
                                    c.device,
                                    c.size,
                                    code_name(got),
                                    c.bytes
                                ),
                            );
                        }
                    } else if !completion::is_end_of_data(got) || c.bytes != want {
                        return fail(
                            format!("the Read that reaches the end returns {want} bytes with ERROR_HANDLE_EOF"),
                            format!(
                                "device {}: Read of {} completed with {}, {} bytes",
                                c.device,
                                c.size,
                                code_name(got),
                                c.bytes
                            ),
                        );
                    }
                }
                if n == 0 {
                    return fail("Reads to judge", "the case never got to send one");
                }
                Ok(())
            }
            FlushAfterWrites => {
                let mut flushes = 0;
                for f in o.cmds(CommandCode::Flush.code()) {
                    flushes += 1;
                    let Some(fdone) = f.done_seq else {
                        return fail("the Flush completes", format!("device {}: it never did", f.device));
                    };
                    for w in o.cmds(CommandCode::Write.code()) {
                        if w.device == f.device && w.seq < f.seq && w.done_seq.map_or(true, |d| d > fdone) {
                            return fail(
                                "VDC_Flush completes after the Writes sent before it",
                                format!(
                                    "device {}: Flush completed before the Write sent {} commands earlier",
                                    f.device,
                                    f.seq - w.seq
                                ),
                            );
                        }
                    }
                }
                if flushes == 0 {
                    return fail("a Flush to judge", "the case never sent one");
                }
                Ok(())
            }
            ServerCleanRun => {
                o.first_problem()?;
                o.exited_success("server")?;
                o.devices_closed_normally()?;
                o.no_abort()?;
                o.closed("server")
            }
            ServerRoundTrip => {
                o.first_problem()?;
                o.exited_success("server")?;
                o.no_abort()?;
                o.devices_closed_normally()
            }
            ServerFails => {
                o.reports_failure("server")?;
                o.closed("server")
            }
            Answer(rule) => {
                let Some(a) = o.answer else {
                    return fail("a configuration answer", "the server never configured the set");
                };
                let media = a.features & (features::VDF_WRITE_MEDIA | features::VDF_READ_MEDIA);
                let (ok, expected) = match rule {
                    AnswerRule::WriteMedia => (media == features::VDF_WRITE_MEDIA, "features has WriteMedia only"),
                    AnswerRule::ReadMedia => (media == features::VDF_READ_MEDIA, "features has ReadMedia only"),
                    AnswerRule::BlockSize => (
                        a.blockSize.is_power_of_two() && (512..=65536).contains(&a.blockSize),
                        "blockSize a power of 2 in [512, 65536]",
                    ),
                    AnswerRule::MaxTransfer => (
                        a.maxTransferSize % 65536 == 0 && (65536..=4 << 20).contains(&a.maxTransferSize),
                        "maxTransferSize a multiple of 65536 in [64 KiB, 4 MiB]",
                    ),
                    AnswerRule::MaxIoDepth4 => (a.maxIODepth == 4, "maxIODepth = 4"),
                    AnswerRule::KeepsMediaKind => {
                        let kind = features::VDF_LIKE_TAPE | features::VDF_LIKE_DISK;
                        let want = o.request.map_or(0, |r| r.features & kind);
                        (a.features & kind == want, "the requested media-kind bits are kept")
                    }
                };
                if ok {
                    Ok(())
                } else {
                    fail(
                        expected,
                        format!(
                            "features = 0x{:x}, blockSize = {}, maxTransferSize = {}, maxIODepth = {}",
                            a.features, a.blockSize, a.maxTransferSize, a.maxIODepth
                        ),
                    )
                }
            }
            TransferSizes { command, rule } => {
                let Some(a) = o.answer else {
                    return fail("a configuration answer", "the server never configured the set");
                };
                let mut n = 0;
                for c in o.cmds(command) {
                    n += 1;
                    let ok = match rule {
                        SizeRule::BlockMultiple => c.size > 0 && a.blockSize > 0 && c.size % a.blockSize == 0,
                        SizeRule::AtMostMaxTransfer => c.size <= a.maxTransferSize,
                    };
                    if !ok {
                        let expected = match rule {
                            SizeRule::BlockMultiple => format!("sizes are multiples of blockSize {}", a.blockSize),
                            SizeRule::AtMostMaxTransfer => {
                                format!("sizes at most maxTransferSize {}", a.maxTransferSize)
                            }
                        };
                        return fail(
                            expected,
                            format!("device {}: a {} of {} bytes", c.device, command_name(command), c.size),
                        );
                    }
                }
                if n == 0 {
                    return fail(format!("{} commands to judge", command_name(command)), "none arrived");
                }
                Ok(())
            }
            PositionsAreOffsets { command } => {
                let devices = o.commands.iter().map(|c| c.device + 1).max().unwrap_or(0);
                let mut n = 0;
                for d in 0..devices {
                    let mut offset = 0u64;
                    for c in o.cmds(command).filter(|c| c.device == d) {
                        n += 1;
                        if c.position != offset {
                            return fail(
                                "positions are byte offsets from the start of the device's data",
                                format!(
                                    "device {d}: a {} at byte {offset} carried position {}",
                                    command_name(command),
                                    c.position
                                ),
                            );
                        }
                        offset += u64::from(if command == CommandCode::Read.code() {
                            c.bytes
                        } else {
                            c.size
                        });
                    }
                }
                if n == 0 {
                    return fail(format!("{} commands to judge", command_name(command)), "none arrived");
                }
                Ok(())
            }
            BuffersAligned(align) => {
                let mut n = 0;
                for c in o.commands.iter().filter(|c| c.address != 0) {
                    n += 1;
                    if c.address % align as usize != 0 {
                        return fail(
                            format!("data buffers aligned to {align} bytes"),
                            format!("device {}: a buffer at address 0x{:x}", c.device, c.address),
                        );
                    }
                }
                if n == 0 {
                    return fail("data buffers to judge", "no data command arrived");
                }
                Ok(())
            }
            FlushLast => {
                o.devices_closed_normally()?;
                let devices = o.device_ends.len();
                for d in 0..devices {
                    let last = o
                        .commands
                        .iter()
                        .rfind(|c| c.device == d && c.code != CommandCode::Complete.code());
                    match last {
                        Some(c) if c.code == CommandCode::Flush.code() => {}
                        Some(c) => {
                            return fail(
                                "VDC_Flush is the last command before VD_E_CLOSE",
                                format!("device {d}: the last command was {}", command_name(c.code)),
                            )
                        }
                        None => {
                            return fail(
                                "VDC_Flush is the last command before VD_E_CLOSE",
                                format!("device {d}: no command at all"),
                            )
                        }
                    }
                }
                Ok(())
            }
            CompleteHandshake => {
                match o.answer {
                    Some(a) if a.features & features::VDF_COMPLETE_ENABLED != 0 => {}
                    Some(a) => {
                        return fail(
                            "VDF_CompleteEnabled in the answer to VDF_RequestComplete",
                            format!("features = 0x{:x}", a.features),
                        )
                    }
                    None => return fail("a configuration answer", "the server never configured the set"),
                }
                o.devices_closed_normally()?;
                for d in 0..o.device_ends.len() {
                    let cmds: Vec<&CmdObs> = o.commands.iter().filter(|c| c.device == d).collect();
                    let complete = cmds.iter().rposition(|c| c.code == CommandCode::Complete.code());
                    let Some(at) = complete else {
                        return fail("VDC_Complete on every device", format!("device {d}: none arrived"));
                    };
                    let data_after = cmds[at + 1..]
                        .iter()
                        .any(|c| c.code == CommandCode::Write.code() || c.code == CommandCode::Flush.code());
                    let flush_before = cmds[..at].iter().any(|c| c.code == CommandCode::Flush.code());
                    if data_after || !flush_before {
                        return fail(
                            "VDC_Complete after the last Write and the final Flush",
                            format!("device {d}: VDC_Complete arrived out of order"),
                        );
                    }
                }
                o.exited_success("server")
            }
            NoCompleteCommand => {
                if let Some(a) = o.answer {
                    if a.features & features::VDF_COMPLETE_ENABLED != 0 {
                        return fail(
                            "no VDF_CompleteEnabled without VDF_RequestComplete",
                            format!("features = 0x{:x}", a.features),
                        );
                    }
                }
                if let Some(c) = o.cmds(CommandCode::Complete.code()).next() {
                    return fail(
                        "no VDC_Complete without VDF_RequestComplete",
                        format!("device {}: VDC_Complete arrived", c.device),
                    );
                }
                o.exited_success("server")
            }
            ServerTimeoutAbort { interval_ms } => {
                let lo = u64::from(interval_ms) * 3 / 2;
                match (&o.abort, o.measured_ms) {
                    (Some(a), Some(ms)) if a.by == "server" && ms >= lo => o.reports_failure("server"),
                    (Some(a), Some(ms)) if a.by == "server" => fail(
                        format!("abort after two intervals ({} ms) without progress", 2 * interval_ms),
                        format!("the server aborted after {ms} ms"),
                    ),
                    (Some(a), _) => fail("the server aborts", format!("the set was {a}")),
                    (None, _) => fail(
                        format!("abort after two intervals ({} ms) without progress", 2 * interval_ms),
                        "the server never aborted",
                    ),
                }
            }
            DevicesInParallel => match &o.parallel_problem {
                Some(p) => fail("every device gets a command while the others hold theirs", p.clone()),
                None => o.exited_success("server"),
            },
            Informational => Ok(()),
        }
    }

    /// Judges an observation for a case.
    pub fn judge(&self, case: &Case, o: &Observation) -> Judged {
        let termination = if o.killed {
            Termination::Killed
        } else if o.exits.is_empty() {
            Termination::NotChecked
        } else if o.set_closed == Some(false) || o.exit.is_none() {
            Termination::Unclean
        } else {
            Termination::Clean
        };
        let verdict = if let Some(reason) = &o.unsupported {
            Verdict::Unsupported { reason: reason.clone() }
        } else if let Some(err) = &o.harness_error {
            Verdict::Fail {
                expected: "the harness runs the case".into(),
                actual: format!("harness error: {err}"),
                requirement: case.requirement.to_string(),
            }
        } else if let Some(step) = &o.hang {
            Verdict::Hang { step: step.clone() }
        } else if *self == Expectation::Informational {
            let note = if o.notes.is_empty() {
                "nothing recorded".to_string()
            } else {
                o.notes.join("; ")
            };
            Verdict::Informational { note }
        } else {
            match self.check(o) {
                Ok(()) => Verdict::Pass,
                Err((expected, actual)) => match case.level {
                    Level::Must => Verdict::Fail {
                        expected,
                        actual,
                        requirement: case.requirement.to_string(),
                    },
                    Level::Should => Verdict::NonStrict {
                        expected,
                        actual,
                        requirement: case.requirement.to_string(),
                    },
                },
            }
        };
        Judged {
            verdict,
            integrity: o.integrity,
            termination,
        }
    }
}
