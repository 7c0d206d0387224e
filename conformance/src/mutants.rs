//! Seeded defects: built-in implementations with one classic bug each. The suite must catch
//! every one, and `caught_by` names the cases that do (the tests pin this table).

use crate::builtin::{ClientKnobs, KnobClient, KnobServer, ServerKnobs};
use crate::model::Role;
use crate::runner::Target;

/// The bug a mutant carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Knobs {
    Client(ClientKnobs),
    Server(ServerKnobs),
}

/// One seeded defect.
#[derive(Debug, Clone)]
pub struct Mutant {
    pub name: &'static str,
    pub description: &'static str,
    /// The case ids that fail (or hang) against it.
    pub caught_by: &'static [&'static str],
    pub knobs: Knobs,
}

/// A mutant made runnable.
pub enum MutantImpl {
    Client(KnobClient),
    Server(KnobServer),
}

impl MutantImpl {
    pub fn target(&self) -> Target<'_> {
        match self {
            MutantImpl::Client(c) => Target::Client(c),
            MutantImpl::Server(s) => Target::Server(s),
        }
    }
}

impl Mutant {
    pub fn role(&self) -> Role {
        match self.knobs {
            Knobs::Client(_) => Role::Client,
            Knobs::Server(_) => Role::Server,
        }
    }

    /// The implementation name in reports: `mutant:<name>`.
    pub fn implementation_name(&self) -> String {
        format!("mutant:{}", self.name)
    }

    pub fn implementation(&self) -> MutantImpl {
        match self.knobs {
            Knobs::Client(knobs) => MutantImpl::Client(KnobClient {
                name: self.implementation_name(),
                knobs,
            }),
            Knobs::Server(knobs) => MutantImpl::Server(KnobServer {
                name: self.implementation_name(),
                knobs,
            }),
        }
    }
}

const C: ClientKnobs = ClientKnobs {
    sequential_devices: false,
    abort_as_timeout: false,
    close_after_flush: false,
    close_on_first_device: false,
    timeout_fatal: false,
    config_timeout_fatal: false,
    open_fatal: false,
    write_count_zero: false,
    flush_early: false,
    no_signal_abort: false,
    unknown_success: false,
    clear_error_not_supported: false,
    complete_not_supported: false,
    eof_success: false,
    eof_drops_tail: false,
    short_reads: false,
    get_after_close: false,
    append_store: false,
    success_after_abort: false,
};

const S: ServerKnobs = ServerKnobs {
    sequential_devices: false,
    ignore_server_timeout: false,
    timeout_one_interval: false,
    timeout_total: false,
    close_without_close_device: false,
    no_flush: false,
    no_data_detected_is_error: false,
    ignore_flush_errors: false,
    ignore_abort: false,
    unaligned_tail: false,
    oversize_writes: false,
    wrong_media: false,
    never_sends_complete: false,
    complete_unrequested: false,
    accepts_truncated: false,
    never_closes: false,
};

macro_rules! client {
    ($name:literal, $desc:literal, [$($id:literal),* $(,)?], $field:ident) => {
        Mutant {
            name: $name,
            description: $desc,
            caught_by: &[$($id),*],
            knobs: Knobs::Client(ClientKnobs { $field: true, ..C }),
        }
    };
}

macro_rules! server {
    ($name:literal, $desc:literal, [$($id:literal),* $(,)?], $field:ident) => {
        Mutant {
            name: $name,
            description: $desc,
            caught_by: &[$($id),*],
            knobs: Knobs::Server(ServerKnobs { $field: true, ..S }),
        }
    };
}

/// Every mutant, clients first.
pub fn mutants() -> Vec<Mutant> {
    vec![
        client!(
            "sequential-stripes",
            "Services its devices one after another instead of one thread each (deadlocks striped backups).",
            [
                "lifecycle.client.opens-every-device",
                "config.client.request-device-count",
                "close.client.per-device-vd-e-close",
                "abort.client.signals-own-error",
                "stripes.client.two-devices",
                "stripes.client.four-devices",
                "stripes.client.64-devices",
                "stripes.client.one-shared-buffer",
            ],
            sequential_devices
        ),
        client!(
            "ignores-abort",
            "Treats VD_E_ABORT from GetCommand like VD_E_TIMEOUT and keeps asking for ever.",
            [
                "close.client.after-server-abort",
                "abort.client.idle-device",
                "abort.client.mid-backup",
                "abort.client.mid-restore",
                "abort.client.after-partial-close",
                "hostile.client.server-dies-mid-stream",
                "hostile.client.garbage-command",
                "hostile.client.garbage-command-code",
                "hostile.client.garbage-ring-index",
            ],
            abort_as_timeout
        ),
        client!(
            "close-after-flush",
            "Takes the Flush for the end of the stream and calls Close before VD_E_CLOSE.",
            [
                "lifecycle.client.backup-completes",
                "lifecycle.client.restore-round-trip",
                "lifecycle.client.open-device-retry",
                "config.client.block-size-512",
                "config.client.block-size-64k",
                "config.client.max-transfer-4m",
                "data.client.varied-write-sizes",
                "data.client.restore-read-sizes",
                "data.client.restore-full-reads",
                "data.client.restore-eof-short",
                "data.client.restore-eof-exact",
                "data.client.empty-backup",
                "data.client.backup-replaces-store",
                "close.client.waits-for-vd-e-close",
                "close.client.per-device-vd-e-close",
                "abort.client.mid-restore",
                "timeouts.client.get-command-retry",
                "timeouts.client.mid-stream-pause",
                "timeouts.client.get-configuration-retry",
                "stripes.client.two-devices",
                "stripes.client.four-devices",
                "stripes.client.64-devices",
                "stripes.client.one-shared-buffer",
                "commands.client.continues-after-clear-error",
                "commands.client.several-flushes",
                "commands.client.complete-handshake",
                "commands.client.complete-then-close",
            ],
            close_after_flush
        ),
        client!(
            "close-on-first-device",
            "Closes the set as soon as the first device returns VD_E_CLOSE, the others still streaming.",
            [
                "close.client.per-device-vd-e-close",
                "stripes.client.two-devices",
                "stripes.client.four-devices",
                "stripes.client.64-devices",
                "stripes.client.one-shared-buffer",
            ],
            close_on_first_device
        ),
        client!(
            "timeout-is-fatal",
            "Treats VD_E_TIMEOUT from GetCommand as fatal: aborts a healthy backup that pauses.",
            [
                "close.client.waits-for-vd-e-close",
                "timeouts.client.get-command-retry",
                "timeouts.client.mid-stream-pause",
            ],
            timeout_fatal
        ),
        client!(
            "config-timeout-is-fatal",
            "Gives up on the first VD_E_TIMEOUT from GetConfiguration.",
            ["timeouts.client.get-configuration-retry",],
            config_timeout_fatal
        ),
        client!(
            "open-device-once",
            "Treats VD_E_OPEN from OpenDevice as fatal instead of retrying.",
            ["lifecycle.client.open-device-retry",],
            open_fatal
        ),
        client!(
            "write-count-zero",
            "Completes Writes with bytesTransferred = 0.",
            ["data.client.write-counts",],
            write_count_zero
        ),
        client!(
            "flush-before-writes",
            "Completes Writes lazily but acknowledges a Flush at once, before the Writes it should make durable.",
            ["commands.client.flush-after-writes",],
            flush_early
        ),
        client!(
            "no-signal-abort",
            "Never calls SignalAbort on its own errors: serves the devices it has and leaves the server waiting.",
            ["abort.client.signals-own-error",],
            no_signal_abort
        ),
        client!(
            "unknown-command-success",
            "Answers unknown commands with ERROR_SUCCESS instead of ERROR_NOT_SUPPORTED.",
            ["commands.client.unknown-not-supported",],
            unknown_success
        ),
        client!(
            "clear-error-not-supported",
            "Answers ClearError with ERROR_NOT_SUPPORTED.",
            [
                "commands.client.clear-error",
                "commands.client.continues-after-clear-error",
            ],
            clear_error_not_supported
        ),
        client!(
            "complete-not-supported",
            "Asks for VDF_RequestComplete but answers VDC_Complete with ERROR_NOT_SUPPORTED.",
            [
                "commands.client.complete-handshake",
                "commands.client.complete-then-close",
            ],
            complete_not_supported
        ),
        client!(
            "eof-with-success",
            "At the end of data returns the short count with ERROR_SUCCESS instead of ERROR_HANDLE_EOF.",
            [
                "data.client.restore-full-reads",
                "data.client.restore-eof-short",
                "data.client.restore-eof-exact",
            ],
            eof_success
        ),
        client!(
            "eof-drops-tail",
            "At the end of data returns 0 bytes with ERROR_HANDLE_EOF, losing the partial last block.",
            [
                "lifecycle.client.restore-round-trip",
                "config.client.block-size-512",
                "config.client.block-size-64k",
                "config.client.max-transfer-4m",
                "data.client.varied-write-sizes",
                "data.client.restore-read-sizes",
                "data.client.restore-full-reads",
                "data.client.restore-eof-short",
                "data.client.backup-replaces-store",
                "stripes.client.two-devices",
                "stripes.client.four-devices",
                "stripes.client.64-devices",
                "stripes.client.one-shared-buffer",
                "commands.client.continues-after-clear-error",
                "commands.client.several-flushes",
            ],
            eof_drops_tail
        ),
        client!(
            "short-reads",
            "Returns at most 64 KiB per Read with ERROR_SUCCESS, whatever the Read asked for.",
            [
                "config.client.block-size-64k",
                "config.client.max-transfer-4m",
                "data.client.restore-read-sizes",
                "data.client.restore-full-reads",
            ],
            short_reads
        ),
        client!(
            "polls-after-close",
            "Calls GetCommand again after VD_E_CLOSE and aborts the finished set on the VD_E_PROTOCOL it gets.",
            [
                "lifecycle.client.backup-completes",
                "lifecycle.client.restore-round-trip",
                "lifecycle.client.open-device-retry",
                "config.client.block-size-512",
                "config.client.block-size-64k",
                "config.client.max-transfer-4m",
                "data.client.varied-write-sizes",
                "data.client.restore-read-sizes",
                "data.client.restore-full-reads",
                "data.client.restore-eof-short",
                "data.client.restore-eof-exact",
                "data.client.empty-backup",
                "data.client.backup-replaces-store",
                "close.client.waits-for-vd-e-close",
                "close.client.per-device-vd-e-close",
                "timeouts.client.get-command-retry",
                "timeouts.client.mid-stream-pause",
                "timeouts.client.get-configuration-retry",
                "stripes.client.two-devices",
                "stripes.client.four-devices",
                "stripes.client.64-devices",
                "stripes.client.one-shared-buffer",
                "commands.client.continues-after-clear-error",
                "commands.client.several-flushes",
                "commands.client.complete-then-close",
            ],
            get_after_close
        ),
        client!(
            "appends-to-store",
            "Opens its store without truncating it: a second backup is appended to the first.",
            ["data.client.backup-replaces-store",],
            append_store
        ),
        client!(
            "success-after-abort",
            "Reports success even when the set was aborted.",
            [
                "close.client.after-server-abort",
                "abort.client.before-open-device",
                "abort.client.idle-device",
                "abort.client.mid-backup",
                "abort.client.mid-restore",
                "abort.client.after-partial-close",
                "abort.client.signals-own-error",
                "hostile.client.server-dies-mid-stream",
                "hostile.client.garbage-command",
                "hostile.client.garbage-command-code",
                "hostile.client.garbage-ring-index",
            ],
            success_after_abort
        ),
        server!(
            "server-sequential-devices",
            "Streams one device completely, then the next, instead of one thread per device.",
            ["stripes.server.parallel-devices",],
            sequential_devices
        ),
        server!(
            "server-ignores-timeout",
            "Never applies the client's serverTimeOut.",
            ["timeouts.server.two-intervals",],
            ignore_server_timeout
        ),
        server!(
            "server-timeout-one-interval",
            "Aborts after one serverTimeOut interval without progress instead of two.",
            ["timeouts.server.two-intervals",],
            timeout_one_interval
        ),
        server!(
            "server-timeout-total",
            "Aborts when the job has run two serverTimeOut intervals, even while commands complete.",
            ["timeouts.server.progress-resets",],
            timeout_total
        ),
        server!(
            "server-no-close-device",
            "Closes the set without CloseDevice, so clients see VD_E_ABORT instead of VD_E_CLOSE.",
            [
                "lifecycle.server.backup-completes",
                "lifecycle.server.restore-completes",
                "lifecycle.server.three-devices",
                "lifecycle.server.late-device-open",
                "data.server.short-read-eof",
                "data.server.no-data-detected-eof",
                "data.server.eof-zero-bytes",
                "close.server.vd-e-close-every-device",
                "timeouts.server.progress-resets",
                "timeouts.server.zero-is-infinite",
                "stripes.server.four-devices-round-trip",
                "stripes.server.64-devices",
                "commands.server.flush-last",
                "commands.server.complete-handshake",
            ],
            close_without_close_device
        ),
        server!(
            "server-no-flush",
            "Never sends the final Flush of a backup.",
            [
                "abort.server.during-flush",
                "commands.server.flush-last",
                "commands.server.complete-handshake",
                "commands.server.flush-error-fails-backup",
            ],
            no_flush
        ),
        server!(
            "server-no-data-detected-is-error",
            "Takes only ERROR_HANDLE_EOF as end of data; ERROR_NO_DATA_DETECTED fails the restore.",
            ["data.server.no-data-detected-eof",],
            no_data_detected_is_error
        ),
        server!(
            "server-ignores-flush-errors",
            "Does not check the completion codes of Flush and VDC_Complete.",
            [
                "commands.server.complete-error-fails-backup",
                "commands.server.flush-error-fails-backup",
            ],
            ignore_flush_errors
        ),
        server!(
            "server-ignores-abort",
            "Treats VD_E_ABORT and ERROR_OPERATION_ABORTED like timeouts: waits and retries for ever.",
            [
                "close.server.after-client-premature-close",
                "abort.server.while-configurable",
                "abort.server.after-configuration",
                "abort.server.mid-backup",
                "abort.server.mid-restore",
                "abort.server.during-flush",
                "abort.server.after-partial-close",
                "timeouts.server.two-intervals",
                "hostile.server.client-dies-mid-stream",
                "hostile.server.client-dies-before-configuration",
                "hostile.server.unknown-completion",
                "hostile.server.bytes-exceed-size",
                "hostile.server.completion-ring-jump",
            ],
            ignore_abort
        ),
        server!(
            "server-unaligned-tail",
            "Sends the last chunk with its exact length, not a multiple of BLOCKSIZE.",
            ["data.server.write-block-multiple",],
            unaligned_tail
        ),
        server!(
            "server-oversize-writes",
            "Sends Writes of twice maxTransferSize.",
            ["data.server.write-max-transfer",],
            oversize_writes
        ),
        server!(
            "server-wrong-media",
            "Answers VDF_ReadMedia for a backup (and WriteMedia for a restore).",
            [
                "config.server.write-media-for-backup",
                "config.server.read-media-for-restore",
            ],
            wrong_media
        ),
        server!(
            "server-never-sends-complete",
            "Answers VDF_CompleteEnabled but never sends VDC_Complete.",
            [
                "commands.server.complete-handshake",
                "commands.server.complete-error-fails-backup",
            ],
            never_sends_complete
        ),
        server!(
            "server-complete-unrequested",
            "Sends VDC_Complete although the client did not ask for it.",
            ["commands.server.no-complete-without-request",],
            complete_unrequested
        ),
        server!(
            "server-accepts-truncated",
            "Reports a restore whose data ended early as a success.",
            ["data.server.truncated-restore-fails",],
            accepts_truncated
        ),
        server!(
            "server-never-closes",
            "Never calls Close on the set (the buffer area leaks).",
            [
                "lifecycle.server.backup-completes",
                "lifecycle.server.restore-completes",
                "lifecycle.server.three-devices",
                "lifecycle.server.late-device-open",
                "data.server.truncated-restore-fails",
                "close.server.vd-e-close-every-device",
                "close.server.after-client-premature-close",
                "abort.server.while-configurable",
                "abort.server.after-configuration",
                "abort.server.mid-backup",
                "abort.server.mid-restore",
                "abort.server.during-flush",
                "abort.server.after-partial-close",
                "timeouts.server.progress-resets",
                "timeouts.server.zero-is-infinite",
                "stripes.server.64-devices",
                "commands.server.complete-error-fails-backup",
                "commands.server.flush-error-fails-backup",
                "commands.server.write-error-fails-backup",
                "commands.server.read-error-fails-restore",
                "hostile.server.client-dies-mid-stream",
                "hostile.server.client-dies-before-configuration",
                "hostile.server.unknown-completion",
                "hostile.server.bytes-exceed-size",
                "hostile.server.completion-ring-jump",
            ],
            never_closes
        ),
    ]
}

/// A mutant by name.
pub fn find(name: &str) -> Option<Mutant> {
    mutants().into_iter().find(|m| m.name == name)
}
