//! The case catalogue, one file per chapter (h2spec style), plus the scenario builders the
//! chapters share. Ids are stable: a case may be retired, never renumbered or reused.

mod abort;
mod commands;
mod config;
mod data;
mod hostile;
mod lifecycle;
mod stripes;
mod termination;
mod timeouts;

use crate::case::{Case, Observation};
use crate::harness::play_client::{self, Plan};
use crate::harness::play_server::{flush_all, round_robin_reads, round_robin_writes, streams_for, Op, Params, Session};
use crate::harness::Cx;
use crate::plugin::{JobExit, Mode};
use std::sync::OnceLock;

/// The chapters, in catalogue order.
pub const CHAPTERS: [&str; 9] = [
    "lifecycle",
    "config",
    "data",
    "termination",
    "abort",
    "timeouts",
    "stripes",
    "commands",
    "hostile",
];

/// Every case, in catalogue order.
pub fn catalogue() -> &'static [Case] {
    static ALL: OnceLock<Vec<Case>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut v = Vec::new();
        v.extend(lifecycle::cases());
        v.extend(config::cases());
        v.extend(data::cases());
        v.extend(termination::cases());
        v.extend(abort::cases());
        v.extend(timeouts::cases());
        v.extend(stripes::cases());
        v.extend(commands::cases());
        v.extend(hostile::cases());
        v
    })
}

/// Looks a case up by id.
pub fn find(id: &str) -> Option<&'static Case> {
    catalogue().iter().find(|c| c.id == id)
}

/// The data seed of the backups the harness makes.
pub(crate) const SEED: u64 = 0x5EED_0001;

/// The Write sizes of a standard backup round (multiples of 512, at most 64 KiB).
const STD_WRITES: [u32; 5] = [65536, 65536, 32768, 4096, 512];

/// A standard backup: the standard rounds dealt round robin, then a Flush per device.
pub(crate) fn std_ops(devices: u32) -> Vec<Op> {
    let mut ops = round_robin_writes(devices, &STD_WRITES);
    ops.extend(flush_all(devices));
    ops
}

/// A standard backup ending with VDC_Complete on every device (for VDF_RequestComplete).
pub(crate) fn std_ops_with_complete(devices: u32) -> Vec<Op> {
    let mut ops = std_ops(devices);
    ops.extend((0..devices as usize).map(|d| Op::cmd(d, vdisim::vdi::CommandCode::Complete).waited()));
    ops
}

/// A restore after a backup (client role).
#[derive(Clone)]
pub(crate) struct RestoreSpec {
    pub p: Params,
    /// Read sizes, cycled.
    pub sizes: Vec<u32>,
    /// Changes to the Read ops (e.g. an abort after one of them).
    pub tweak: fn(&mut Vec<Op>),
}

impl RestoreSpec {
    pub(crate) fn new(p: Params, sizes: &[u32]) -> RestoreSpec {
        RestoreSpec {
            p,
            sizes: sizes.to_vec(),
            tweak: |_| {},
        }
    }
}

/// A client-role scenario: one backup (optionally preceded by another to the same store),
/// optionally followed by a restore of it.
pub(crate) struct ClientScenario {
    pub p: Params,
    pub ops: Vec<Op>,
    /// Wait this long after the stream before closing the devices.
    pub close_delay_ms: u64,
    /// Close the devices this far apart.
    pub stagger_ms: u64,
    /// Wait this long after closing the first device (a client must keep servicing the others).
    pub first_close_gap_ms: u64,
    /// Pause after Open, before configuring (the client waits in GetConfiguration).
    pub pre_config_pause_ms: u64,
    /// Pause after EndConfiguration, before opening the devices.
    pub pre_open_pause_ms: u64,
    /// Record how many devices the client opens before streaming.
    pub watch_opens: bool,
    /// An earlier backup to the same store (its ops).
    pub earlier_backup: Option<Vec<Op>>,
    pub restore: Option<RestoreSpec>,
}

impl ClientScenario {
    pub(crate) fn new(devices: u32) -> ClientScenario {
        ClientScenario {
            p: Params::new(devices),
            ops: std_ops(devices),
            close_delay_ms: 0,
            stagger_ms: 0,
            first_close_gap_ms: if devices > 1 { 250 } else { 0 },
            pre_config_pause_ms: 0,
            pre_open_pause_ms: 0,
            watch_opens: false,
            earlier_backup: None,
            restore: None,
        }
    }

    /// A scenario followed by a restore with 64 KiB Reads.
    pub(crate) fn round_trip(devices: u32) -> ClientScenario {
        let mut s = ClientScenario::new(devices);
        s.restore = Some(RestoreSpec::new(s.p, &[65536]));
        s
    }

    fn backup(&self, cx: &Cx, ops: &[Op], seed: u64, obs: Observation) -> (Observation, Vec<Vec<u8>>) {
        let p = &self.p;
        let streams = streams_for(ops, p.devices, seed);
        let mut s = Session::start(cx, Mode::Backup, p, "a", obs);
        if s.open() {
            if self.pre_config_pause_ms > 0 {
                s.pause(self.pre_config_pause_ms);
            }
            if s.configure(p) {
                if self.pre_open_pause_ms > 0 {
                    s.pause(self.pre_open_pause_ms);
                }
                if s.open_devices() {
                    if self.watch_opens {
                        s.watch_device_opens();
                    }
                    if s.run_ops(ops, &streams, p) {
                        s.close_devices(self.close_delay_ms, self.stagger_ms, self.first_close_gap_ms);
                    }
                }
            }
        }
        (s.finish(), streams)
    }

    pub(crate) fn run(self, cx: &Cx) -> Observation {
        let mut obs = Observation::default();
        if let Some(earlier) = &self.earlier_backup {
            let (o, _) = self.backup(cx, earlier, SEED + 1, obs);
            obs = o;
            if !clean(&obs) {
                return obs;
            }
        }
        let (o, streams) = self.backup(cx, &self.ops, SEED, obs);
        obs = o;
        let Some(r) = &self.restore else { return obs };
        if !clean(&obs) {
            return obs;
        }
        let mut reads = round_robin_reads(&streams, &r.sizes);
        (r.tweak)(&mut reads);
        let mut s = Session::start(cx, Mode::Restore, &r.p, "a", obs);
        if s.setup(&r.p) && s.run_ops(&reads, &streams, &r.p) && s.close_devices(0, 0, self.first_close_gap_ms) {
            s.check_integrity(&streams);
        }
        s.finish()
    }
}

/// Whether a run so far went cleanly (so the next job of the scenario makes sense).
fn clean(o: &Observation) -> bool {
    o.exit == Some(JobExit::Success)
        && o.problems.is_empty()
        && o.hang.is_none()
        && o.abort.is_none()
        && o.unsupported.is_none()
        && o.harness_error.is_none()
}

/// A server-role job (the harness plays the client).
pub(crate) fn server_job(cx: &Cx, plan: Plan) -> Observation {
    let mut obs = Observation::default();
    let _ = play_client::run_job(cx, &plan, &[], &mut obs);
    obs
}

/// A server-role backup then restore of what it wrote.
pub(crate) fn server_round_trip(cx: &Cx, backup: Plan, restore: Plan, tweak: fn(&mut Vec<Vec<u8>>)) -> Observation {
    play_client::round_trip(cx, &backup, &restore, tweak)
}

/// The restore plan matching a backup plan.
pub(crate) fn restore_of(backup: &Plan) -> Plan {
    Plan {
        mode: Mode::Restore,
        ..backup.clone()
    }
}
