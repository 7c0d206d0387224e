//! Data transfer (SPEC §2.6, §3.1, §3.2, §3.4): Write and Read sizes, BLOCKSIZE multiples,
//! short reads and end of data, positions with RandomAccess, byte-exact round trips.

use super::{restore_of, server_job, server_round_trip, ClientScenario, RestoreSpec};
use crate::case::{Case, Expectation, SizeRule};
use crate::harness::play_client::Plan;
use crate::harness::play_server::{flush_all, round_robin_writes};
use crate::model::{Level, Role};
use crate::plugin::Mode;
use vdisim::vdi::{completion, features, CommandCode};

/// One device: these Writes, then these Reads.
fn writes_then_reads(max_transfer: u32, writes: &[u32], reads: &[u32]) -> ClientScenario {
    let mut s = ClientScenario::new(1);
    s.p.max_transfer = max_transfer;
    s.ops = round_robin_writes(1, writes);
    s.ops.extend(flush_all(1));
    s.restore = Some(RestoreSpec::new(s.p, reads));
    s
}

/// Reads of varied sizes, none equal to the Write size, up to MAXTRANSFERSIZE 256 KiB.
fn varied_reads() -> ClientScenario {
    writes_then_reads(262144, &[65536; 6], &[512, 262144, 4096, 131072, 65536])
}

const WRITE: u32 = CommandCode::Write.code();
const READ: u32 = CommandCode::Read.code();

pub(crate) fn cases() -> Vec<Case> {
    vec![
        // §3.1 step 5: "Write = persist size bytes, report bytesTransferred".
        Case {
            id: "data.client.write-counts",
            title: "Every Write completes with ERROR_SUCCESS and bytesTransferred = size",
            spec_ref: "§1.3, §3.1",
            requirement: "Write: persist size bytes and report bytesTransferred (the whole size on success).",
            level: Level::Must,
            role: Role::Client,
            chapter: "data",
            expectation: Expectation::WriteCountsExact,
            run: |cx| ClientScenario::new(1).run(cx),
        },
        Case {
            id: "data.client.varied-write-sizes",
            title: "Writes of varied BLOCKSIZE multiples round-trip",
            spec_ref: "§2.6, §3.2",
            requirement: "Transfers of any multiple of BLOCKSIZE up to MAXTRANSFERSIZE are stored and given back byte for byte.",
            level: Level::Must,
            role: Role::Client,
            chapter: "data",
            expectation: Expectation::RoundTrip,
            run: |cx| writes_then_reads(65536, &[512, 65536, 1536, 4096, 32768, 512, 65536], &[65536]).run(cx),
        },
        // §2.6: "reads may be any multiple of BLOCKSIZE up to MAXTRANSFERSIZE, in any order
        // of sizes".
        Case {
            id: "data.client.restore-read-sizes",
            title: "A restore with Read sizes unlike the Write sizes gives back the same bytes",
            spec_ref: "§2.6",
            requirement: "Reads may be any multiple of BLOCKSIZE up to MAXTRANSFERSIZE, in any order of sizes.",
            level: Level::Must,
            role: Role::Client,
            chapter: "data",
            expectation: Expectation::RoundTrip,
            run: |cx| varied_reads().run(cx),
        },
        // §3.2: "VDC_Read: fill size bytes; at end of data return a short count with
        // ERROR_HANDLE_EOF".
        Case {
            id: "data.client.restore-full-reads",
            title: "Every Read before the end of data is filled completely",
            spec_ref: "§3.2",
            requirement: "VDC_Read: fill size bytes; only at the end of data return a short count (with ERROR_HANDLE_EOF).",
            level: Level::Must,
            role: Role::Client,
            chapter: "data",
            expectation: Expectation::ReadsFullThenEof,
            run: |cx| varied_reads().run(cx),
        },
        Case {
            id: "data.client.restore-eof-short",
            title: "The Read that reaches the end returns the remainder with ERROR_HANDLE_EOF",
            spec_ref: "§3.2",
            requirement: "At end of data return a short count with ERROR_HANDLE_EOF (ERROR_NO_DATA_DETECTED is equivalent).",
            level: Level::Must,
            role: Role::Client,
            chapter: "data",
            expectation: Expectation::ReadsFullThenEof,
            run: |cx| writes_then_reads(65536, &[65536, 65536, 65536, 1536], &[65536]).run(cx),
        },
        Case {
            id: "data.client.restore-eof-exact",
            title: "Data ending on a Read boundary: the next Read returns 0 bytes with ERROR_HANDLE_EOF",
            spec_ref: "§3.2",
            requirement: "At end of data return a short count (here 0) with ERROR_HANDLE_EOF.",
            level: Level::Must,
            role: Role::Client,
            chapter: "data",
            expectation: Expectation::ReadsFullThenEof,
            run: |cx| writes_then_reads(65536, &[65536, 65536, 65536], &[65536]).run(cx),
        },
        Case {
            id: "data.client.empty-backup",
            title: "A backup with no data restores as an empty stream",
            spec_ref: "§3.1, §3.2",
            requirement: "The stream read must be byte-identical to the one written, even when it is empty.",
            level: Level::Must,
            role: Role::Client,
            chapter: "data",
            expectation: Expectation::RoundTrip,
            run: |cx| writes_then_reads(65536, &[], &[65536]).run(cx),
        },
        Case {
            id: "data.client.backup-replaces-store",
            title: "A second backup to the same store replaces the first",
            spec_ref: "§3.2",
            requirement: "A restore gives back the stream of the backup it restores, byte for byte, nothing appended.",
            level: Level::Must,
            role: Role::Client,
            chapter: "data",
            expectation: Expectation::RoundTrip,
            run: |cx| {
                let mut s = writes_then_reads(65536, &[4096, 512], &[65536]);
                let mut earlier = round_robin_writes(1, &[65536; 4]);
                earlier.extend(flush_all(1));
                s.earlier_backup = Some(earlier);
                s.run(cx)
            },
        },
        // §2.6: "All transfers are multiples of it."
        Case {
            id: "data.server.write-block-multiple",
            title: "Every Write is a multiple of BLOCKSIZE (4 KiB), the last one too",
            spec_ref: "§2.6",
            requirement: "BLOCKSIZE: all transfers are multiples of it.",
            level: Level::Must,
            role: Role::Server,
            chapter: "data",
            expectation: Expectation::TransferSizes {
                command: WRITE,
                rule: SizeRule::BlockMultiple,
            },
            run: |cx| {
                let mut p = Plan::new(Mode::Backup, 1);
                p.block_size = 4096;
                server_job(cx, p)
            },
        },
        // §2.4: maxTransferSize is the "largest transfer attempted".
        Case {
            id: "data.server.write-max-transfer",
            title: "No Write exceeds maxTransferSize",
            spec_ref: "§2.4, §2.6",
            requirement: "maxTransferSize is the largest transfer attempted.",
            level: Level::Must,
            role: Role::Server,
            chapter: "data",
            expectation: Expectation::TransferSizes {
                command: WRITE,
                rule: SizeRule::AtMostMaxTransfer,
            },
            run: |cx| server_job(cx, Plan::new(Mode::Backup, 1)),
        },
        Case {
            id: "data.server.read-block-multiple",
            title: "Every Read is a multiple of BLOCKSIZE (4 KiB)",
            spec_ref: "§2.6",
            requirement: "Reads may be any multiple of BLOCKSIZE up to MAXTRANSFERSIZE.",
            level: Level::Must,
            role: Role::Server,
            chapter: "data",
            expectation: Expectation::TransferSizes {
                command: READ,
                rule: SizeRule::BlockMultiple,
            },
            run: |cx| {
                let mut b = Plan::new(Mode::Backup, 1);
                b.block_size = 4096;
                server_round_trip(cx, b.clone(), restore_of(&b), |_| {})
            },
        },
        Case {
            id: "data.server.read-max-transfer",
            title: "No Read exceeds maxTransferSize",
            spec_ref: "§2.6",
            requirement: "Reads may be any multiple of BLOCKSIZE up to MAXTRANSFERSIZE.",
            level: Level::Must,
            role: Role::Server,
            chapter: "data",
            expectation: Expectation::TransferSizes {
                command: READ,
                rule: SizeRule::AtMostMaxTransfer,
            },
            run: |cx| {
                let b = Plan::new(Mode::Backup, 1);
                server_round_trip(cx, b.clone(), restore_of(&b), |_| {})
            },
        },
        // §3.2: "at end of data return a short count with ERROR_HANDLE_EOF".
        Case {
            id: "data.server.short-read-eof",
            title: "A short last Read with ERROR_HANDLE_EOF ends the restore normally",
            spec_ref: "§3.2",
            requirement: "At end of data the client returns a short count with ERROR_HANDLE_EOF: the end of the stream, not an error.",
            level: Level::Must,
            role: Role::Server,
            chapter: "data",
            expectation: Expectation::ServerRoundTrip,
            run: |cx| {
                let b = Plan::new(Mode::Backup, 1);
                server_round_trip(cx, b.clone(), restore_of(&b), |_| {})
            },
        },
        Case {
            id: "data.server.no-data-detected-eof",
            title: "ERROR_NO_DATA_DETECTED ends the restore like ERROR_HANDLE_EOF",
            spec_ref: "§3.2",
            requirement: "ERROR_NO_DATA_DETECTED is equivalent to ERROR_HANDLE_EOF at end of data.",
            level: Level::Must,
            role: Role::Server,
            chapter: "data",
            expectation: Expectation::ServerRoundTrip,
            run: |cx| {
                let b = Plan::new(Mode::Backup, 1);
                let mut r = restore_of(&b);
                r.eof_code = completion::ERROR_NO_DATA_DETECTED;
                server_round_trip(cx, b, r, |_| {})
            },
        },
        Case {
            id: "data.server.eof-zero-bytes",
            title: "Data ending on a Read boundary: a 0-byte ERROR_HANDLE_EOF ends the restore",
            spec_ref: "§3.2",
            requirement: "At end of data the client returns a short count (here 0) with ERROR_HANDLE_EOF.",
            level: Level::Must,
            role: Role::Server,
            chapter: "data",
            expectation: Expectation::ServerRoundTrip,
            run: |cx| {
                let mut b = Plan::new(Mode::Backup, 1);
                b.bytes_per_device = 4 * 65536;
                server_round_trip(cx, b.clone(), restore_of(&b), |_| {})
            },
        },
        Case {
            id: "data.server.truncated-restore-fails",
            title: "A restore whose data ends 4 KiB early fails",
            spec_ref: "§3.2",
            requirement: "The stream read must be byte-identical to the one written: a short stream is not a good restore.",
            level: Level::Must,
            role: Role::Server,
            chapter: "data",
            expectation: Expectation::ServerFails,
            run: |cx| {
                let b = Plan::new(Mode::Backup, 1);
                server_round_trip(cx, b.clone(), restore_of(&b), |streams| {
                    for s in streams.iter_mut() {
                        s.truncate(s.len().saturating_sub(4096));
                    }
                })
            },
        },
        Case {
            id: "data.server.corrupt-restore-detected",
            title: "A restore with one flipped byte fails",
            spec_ref: "§3.2",
            requirement: "The stream read must be byte-identical to the one written; a server should detect a damaged stream.",
            level: Level::Should,
            role: Role::Server,
            chapter: "data",
            expectation: Expectation::ServerFails,
            run: |cx| {
                let b = Plan::new(Mode::Backup, 1);
                server_round_trip(cx, b.clone(), restore_of(&b), |streams| {
                    if let Some(byte) = streams.first_mut().and_then(|s| s.get_mut(70_000)) {
                        *byte ^= 0x5A;
                    }
                })
            },
        },
        // §3.4: "Position: defined for Read/Write only with RandomAccess, as a byte offset from
        // the start of the file."
        Case {
            id: "data.server.write-positions",
            title: "With VDF_LikeDisk, Write positions are byte offsets",
            spec_ref: "§3.4",
            requirement: "With RandomAccess, position is the byte offset from the start of the file.",
            level: Level::Must,
            role: Role::Server,
            chapter: "data",
            expectation: Expectation::PositionsAreOffsets { command: WRITE },
            run: |cx| {
                let mut p = Plan::new(Mode::Backup, 1);
                p.features = features::VDF_LIKE_DISK;
                server_job(cx, p)
            },
        },
        Case {
            id: "data.server.read-positions",
            title: "With VDF_LikeDisk, Read positions are byte offsets",
            spec_ref: "§3.4",
            requirement: "With RandomAccess, position is the byte offset from the start of the file.",
            level: Level::Must,
            role: Role::Server,
            chapter: "data",
            expectation: Expectation::PositionsAreOffsets { command: READ },
            run: |cx| {
                let mut b = Plan::new(Mode::Backup, 1);
                b.features = features::VDF_LIKE_DISK;
                server_round_trip(cx, b.clone(), restore_of(&b), |_| {})
            },
        },
    ]
}
