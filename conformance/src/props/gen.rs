//! Which steps the scenarios try in each model state, with weights that push sequences
//! towards the interesting states (devices open, commands in flight, errors) before an
//! abort, a Close or a death ends them.

use super::model::{ClientDevice, ClientPhase, Model, ServerPhase};
use super::step::{Bytes, Config, DeviceName, Step};
use proptest::prelude::*;
use proptest::strategy::{BoxedStrategy, Union};
use vdisim::vdi::{completion::*, features::*, CommandCode};

fn create() -> BoxedStrategy<Step> {
    (
        prop_oneof![12 => 1u32..=3, 1 => Just(0u32), 1 => Just(65u32)],
        prop_oneof![3 => Just(false), 1 => Just(true)],
    )
        .prop_map(|(devices, request_complete)| Step::CCreate {
            devices,
            request_complete,
        })
        .boxed()
}

fn begin() -> BoxedStrategy<Step> {
    let valid = (
        prop_oneof![3 => Just(VDF_WRITE_MEDIA), 2 => Just(VDF_READ_MEDIA)],
        prop_oneof![Just(512u32), Just(4096u32)],
        prop_oneof![Just(65536u32), Just(1u32 << 20)],
    );
    let any = (
        prop_oneof![
            Just(VDF_WRITE_MEDIA | VDF_COMPLETE_ENABLED),
            Just(0u32),
            Just(VDF_WRITE_MEDIA)
        ],
        prop_oneof![Just(512u32), Just(1000u32), Just(131072u32)],
        prop_oneof![Just(65536u32), Just(65537u32), Just(8u32 << 20)],
    );
    prop_oneof![8 => valid, 2 => any]
        .prop_map(|(features, block_size, max_transfer_size)| Step::SBeginConfiguration {
            config: Config {
                features,
                block_size,
                max_transfer_size,
            },
        })
        .boxed()
}

fn request_buffers() -> BoxedStrategy<Step> {
    prop_oneof![
        6 => (prop_oneof![Just(65536u32), Just(1u32 << 20)], 1u32..=4),
        1 => Just((0u32, 1u32)),
        1 => Just((4u32 << 20, 1024u32)),
    ]
    .prop_map(|(size, count)| Step::SRequestBuffers { size, count })
    .boxed()
}

fn send(dev: usize, block_size: u32) -> BoxedStrategy<Step> {
    let data = (
        prop_oneof![3 => Just(CommandCode::Write.code()), 2 => Just(CommandCode::Read.code())],
        1u32..=8,
    )
        .prop_map(move |(code, blocks)| (code, (blocks * block_size).min(32768)));
    let other = (
        prop_oneof![
            4 => Just(CommandCode::Flush.code()),
            3 => Just(CommandCode::ClearError.code()),
            3 => (3u32..=19).prop_filter("not a data command", |c| *c != 1 && *c != 2),
            1 => Just(99u32),
        ],
        0u32..1024,
    );
    (prop_oneof![6 => data, 4 => other], 0u64..(1 << 20))
        .prop_map(move |((code, size), position)| Step::SSend {
            dev,
            code,
            size,
            position,
        })
        .boxed()
}

fn complete(dev: usize) -> BoxedStrategy<Step> {
    (
        0usize..4,
        prop_oneof![
            16 => Just(ERROR_SUCCESS),
            1 => Just(ERROR_HANDLE_EOF),
            1 => Just(ERROR_DISK_FULL),
            1 => Just(ERROR_NOT_SUPPORTED),
            1 => Just(ERROR_OPERATION_ABORTED),
            1 => Just(ERROR_IO_DEVICE),
            1 => Just(ERROR_FILEMARK_DETECTED),
        ],
        prop_oneof![8 => Just(Bytes::Full), 1 => Just(Bytes::Half), 1 => Just(Bytes::Zero), 1 => Just(Bytes::Over)],
        0u64..4096,
    )
        .prop_map(move |(pick, code, bytes, position)| Step::CComplete {
            dev,
            pick,
            code,
            bytes,
            position,
        })
        .boxed()
}

/// The strategy for the next step from state `m`. Steps that make progress weigh far more
/// than the ones that end a set (abort, Close, death) or are plain misuse, so that most
/// sequences reach commands in flight before they end.
pub fn transitions(m: &Model) -> BoxedStrategy<Step> {
    let mut arms: Vec<(u32, BoxedStrategy<Step>)> = Vec::new();
    let mut just = |w: u32, s: Step| {
        if w > 0 && m.allows(&s) {
            arms.push((w, Just(s).boxed()));
        }
    };
    let pick = |cond: bool, hi: u32| if cond { hi } else { 1 };
    let live = !m.aborted;
    if m.client_alive {
        let configured = matches!(m.server, ServerPhase::Initializing | ServerPhase::Active);
        just(
            pick(
                live && m.client == ClientPhase::Configurable,
                if configured { 20 } else { 3 },
            ),
            Step::CGetConfiguration,
        );
        for (i, d) in m.devices.iter().enumerate() {
            if d.c_state == ClientDevice::NotOpen {
                just(pick(live, 20), Step::COpenDevice { dev: Some(i) });
            } else {
                just(pick(live, 30), Step::CGetCommand { dev: i });
                if d.completed > 0 {
                    just(1, Step::CCompleteStale { dev: i });
                }
                if !d.delivered.is_empty() {
                    for to in 0..m.devices.len() {
                        just(1, Step::CCompleteWrongDevice { from: i, to });
                    }
                }
            }
        }
        just(1, Step::COpenDevice { dev: None });
        just(1, Step::CSignalAbort);
        just(1, Step::CClose);
        just(1, Step::CDies);
    }
    if m.server_alive {
        just(
            pick(live && m.server == ServerPhase::None && m.client_has_set(), 30),
            Step::SOpen,
        );
        just(1, Step::SGetConfiguration);
        just(
            pick(live && m.server == ServerPhase::Configurable, 15),
            Step::SEndConfiguration,
        );
        let more_devices = m.devices.len() < m.devices_requested as usize;
        let opening = matches!(m.server, ServerPhase::Initializing | ServerPhase::Active);
        just(
            pick(more_devices && opening && live, 20),
            Step::SOpenDevice { name: DeviceName::Next },
        );
        just(
            1,
            Step::SOpenDevice {
                name: DeviceName::Duplicate,
            },
        );
        just(1, Step::SOpenDevice { name: DeviceName::Bad });
        for i in 0..m.devices.len() {
            just(pick(live, 25), Step::SGetCompletion { dev: i });
            just(pick(live, 3), Step::SCloseDevice { dev: i });
            just(1, Step::SFlood { dev: i });
        }
        just(1, Step::SSignalAbort);
        just(1, Step::SClose);
        just(1, Step::SDies);
    }
    // Steps with random arguments.
    if m.client_alive {
        arms.push((pick(m.client == ClientPhase::None, 40), create()));
        for (i, d) in m.devices.iter().enumerate() {
            if d.c_state != ClientDevice::NotOpen && !d.delivered.is_empty() {
                arms.push((pick(live, 40), complete(i)));
            }
        }
    }
    if m.server_has_set() {
        arms.push((pick(live && m.server == ServerPhase::Connected, 20), begin()));
        arms.push((
            pick(live && m.server == ServerPhase::Configurable, 6),
            request_buffers(),
        ));
        for i in 0..m.devices.len() {
            arms.push((pick(live, 30), send(i, m.block_size)));
        }
    }
    Union::new_weighted(arms)
        .prop_filter("step allowed in this state", {
            let m = m.clone();
            move |s| m.allows(s)
        })
        .boxed()
}
