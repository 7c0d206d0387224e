//! Configuration and limits (SPEC §1.4, §2.2, §2.4, §2.6): what the client asks for in its
//! VDConfig, what the server answers, and transfers at the limits of BLOCKSIZE and
//! MAXTRANSFERSIZE.

use super::{restore_of, server_job, server_round_trip, std_ops_with_complete, ClientScenario, RestoreSpec};
use crate::case::{AnswerRule, Case, Expectation};
use crate::harness::play_client::Plan;
use crate::harness::play_server::{flush_all, round_robin_writes};
use crate::model::{Level, Role};
use crate::plugin::Mode;
use vdisim::vdi::features;

/// A round trip with the given BLOCKSIZE, MAXTRANSFERSIZE, Write sizes and Read sizes.
fn sized_round_trip(block: u32, max_transfer: u32, writes: &[u32], reads: &[u32]) -> ClientScenario {
    let mut s = ClientScenario::new(1);
    s.p.block_size = block;
    s.p.max_transfer = max_transfer;
    s.ops = round_robin_writes(1, writes);
    s.ops.extend(flush_all(1));
    s.restore = Some(RestoreSpec::new(s.p, reads));
    s
}

pub(crate) fn cases() -> Vec<Case> {
    vec![
        // §2.4: "deviceCount: 1–64"; §2.2: "Only pipe, tape or disk (each optionally
        // +Removable, +Discard) is supported".
        Case {
            id: "config.client.request-valid",
            title: "The VDConfig request names the device count and a supported media kind",
            spec_ref: "§2.2, §2.4",
            requirement: "deviceCount is the number of devices (1-64); features are pipe, tape or disk, optionally +Removable, +Discard.",
            level: Level::Must,
            role: Role::Client,
            chapter: "config",
            expectation: Expectation::RequestValid,
            run: |cx| ClientScenario::new(1).run(cx),
        },
        Case {
            id: "config.client.request-device-count",
            title: "An eight-device job asks for deviceCount = 8",
            spec_ref: "§2.4, §3.3",
            requirement: "cfg.deviceCount = n for a backup to n virtual devices.",
            level: Level::Must,
            role: Role::Client,
            chapter: "config",
            expectation: Expectation::RequestValid,
            run: |cx| ClientScenario::new(8).run(cx),
        },
        // §2.2: "RequestComplete is the client's request; the server answers with
        // CompleteEnabled if it will send VDC_Complete."
        Case {
            id: "config.client.request-complete",
            title: "Asked to, the client requests VDF_RequestComplete",
            spec_ref: "§2.2",
            requirement: "A client that wants VDC_Complete sets VDF_RequestComplete in its request.",
            level: Level::Must,
            role: Role::Client,
            chapter: "config",
            expectation: Expectation::RequestHas(features::VDF_REQUEST_COMPLETE),
            run: |cx| {
                let mut s = ClientScenario::new(1);
                s.p.request_complete = true;
                s.ops = std_ops_with_complete(1);
                s.run(cx)
            },
        },
        // §2.6: "BLOCKSIZE: a power of 2, 512 B–64 KB, default 512. All transfers are
        // multiples of it."
        Case {
            id: "config.client.block-size-512",
            title: "BLOCKSIZE 512: transfers of 512 B to 64 KiB round-trip",
            spec_ref: "§2.6",
            requirement: "Transfers are any multiple of BLOCKSIZE (512) up to MAXTRANSFERSIZE.",
            level: Level::Must,
            role: Role::Client,
            chapter: "config",
            expectation: Expectation::RoundTrip,
            run: |cx| sized_round_trip(512, 65536, &[512, 1024, 1536, 65536, 2048], &[512, 65536, 1024]).run(cx),
        },
        Case {
            id: "config.client.block-size-64k",
            title: "BLOCKSIZE 64 KiB with MAXTRANSFERSIZE 1 MiB round-trips",
            spec_ref: "§2.6",
            requirement: "BLOCKSIZE may be 64 KiB; transfers are multiples of it up to MAXTRANSFERSIZE.",
            level: Level::Must,
            role: Role::Client,
            chapter: "config",
            expectation: Expectation::RoundTrip,
            run: |cx| sized_round_trip(65536, 1 << 20, &[65536, 1 << 20, 131072], &[1 << 20, 65536]).run(cx),
        },
        // §2.6: "MAXTRANSFERSIZE: a multiple of 64 KB, 64 KB–4 MB".
        Case {
            id: "config.client.max-transfer-4m",
            title: "MAXTRANSFERSIZE 4 MiB: 4 MiB Writes and Reads round-trip",
            spec_ref: "§2.6",
            requirement: "MAXTRANSFERSIZE may be 4 MB; the client handles transfers of that size.",
            level: Level::Must,
            role: Role::Client,
            chapter: "config",
            expectation: Expectation::RoundTrip,
            run: |cx| sized_round_trip(65536, 4 << 20, &[4 << 20, 65536], &[4 << 20]).run(cx),
        },
        // §2.2: "The server returns WriteMedia (0x10000) for BACKUP and ReadMedia for RESTORE".
        Case {
            id: "config.server.write-media-for-backup",
            title: "A backup is answered with VDF_WriteMedia",
            spec_ref: "§2.2",
            requirement: "The server returns WriteMedia for BACKUP in the final configuration.",
            level: Level::Must,
            role: Role::Server,
            chapter: "config",
            expectation: Expectation::Answer(AnswerRule::WriteMedia),
            run: |cx| server_job(cx, Plan::new(Mode::Backup, 1)),
        },
        Case {
            id: "config.server.read-media-for-restore",
            title: "A restore is answered with VDF_ReadMedia",
            spec_ref: "§2.2, §3.2",
            requirement: "The server returns ReadMedia for RESTORE in the final configuration.",
            level: Level::Must,
            role: Role::Server,
            chapter: "config",
            expectation: Expectation::Answer(AnswerRule::ReadMedia),
            run: |cx| {
                let b = Plan::new(Mode::Backup, 1);
                server_round_trip(cx, b.clone(), restore_of(&b), |_| {})
            },
        },
        // §1.4 BeginConfiguration: "blockSize a power of 2 in [512, 64 KB]".
        Case {
            id: "config.server.block-size",
            title: "blockSize in the answer is a power of 2 in [512, 64 KiB]",
            spec_ref: "§1.4, §2.4",
            requirement: "blockSize is a power of 2 in [512, 64 KB].",
            level: Level::Must,
            role: Role::Server,
            chapter: "config",
            expectation: Expectation::Answer(AnswerRule::BlockSize),
            run: |cx| server_job(cx, Plan::new(Mode::Backup, 1)),
        },
        // §1.4: "maxTransferSize a multiple of 64 KB"; §2.6: "64 KB–4 MB".
        Case {
            id: "config.server.max-transfer",
            title: "maxTransferSize in the answer is a multiple of 64 KiB up to 4 MiB",
            spec_ref: "§1.4, §2.6",
            requirement: "maxTransferSize is a multiple of 64 KB, 64 KB-4 MB.",
            level: Level::Must,
            role: Role::Server,
            chapter: "config",
            expectation: Expectation::Answer(AnswerRule::MaxTransfer),
            run: |cx| server_job(cx, Plan::new(Mode::Backup, 1)),
        },
        // §2.4: "maxIODepth (deprecated, always 4)".
        Case {
            id: "config.server.max-io-depth",
            title: "maxIODepth in the answer is 4",
            spec_ref: "§2.4",
            requirement: "maxIODepth is deprecated and always 4.",
            level: Level::Should,
            role: Role::Server,
            chapter: "config",
            expectation: Expectation::Answer(AnswerRule::MaxIoDepth4),
            run: |cx| server_job(cx, Plan::new(Mode::Backup, 1)),
        },
        // §2.4: "alignment: the minimum start alignment of the data zone".
        Case {
            id: "config.server.alignment",
            title: "Data buffers start on the client's requested 4 KiB alignment",
            spec_ref: "§2.4",
            requirement: "alignment (client input) is the minimum start alignment of the data zone.",
            level: Level::Must,
            role: Role::Server,
            chapter: "config",
            expectation: Expectation::BuffersAligned(4096),
            run: |cx| {
                let mut p = Plan::new(Mode::Backup, 1);
                p.alignment = 4096;
                server_job(cx, p)
            },
        },
        Case {
            id: "config.server.alignment-64k",
            title: "Data buffers start on the largest alignment a client may ask for (64 KiB)",
            spec_ref: "§1.4, §2.4",
            requirement: "alignment (client input) is the minimum start alignment of the data zone, up to 64 KB.",
            level: Level::Must,
            role: Role::Server,
            chapter: "config",
            expectation: Expectation::BuffersAligned(65536),
            run: |cx| {
                let mut p = Plan::new(Mode::Backup, 2);
                p.alignment = 65536;
                server_job(cx, p)
            },
        },
    ]
}
