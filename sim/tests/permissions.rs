//! Permissions and names (issue 8 item 4).
//!
//! - Segments are created mode 0600; VDISIM_SHM_GROUP_ACCESS=1 opts in to 0660 (SQL Server on
//!   Linux runs as `mssql` and shares through a group, SPEC §4).
//! - Another user cannot open a set: VD_E_SECURITY (the peer runs under uid 65534; these tests
//!   need root to switch uid and skip with a message otherwise).
//! - Set and instance names are validated: VD_E_INVALID and VD_E_INSTANCE_NAME, in this
//!   process and across processes.
//! - Creators racing for one name get exactly one success, also when the name is held by the
//!   remains of a dead creator.
// Unix only: file modes, uids and /dev/shm are Unix concepts.
#![cfg(unix)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};
use vdisim::shm;
use vdisim::vdi::{VDConfig, VdError};
use vdisim::{ClientVirtualDeviceSet, ServerVirtualDeviceSet};

mod common;
use common::{segments_of, PEER};
const NOBODY: u32 = 65534;

fn unique(tag: &str) -> String {
    common::unique("rel-p", tag)
}

struct Peer {
    child: Child,
    events: Receiver<String>,
    seen: Vec<String>,
}

impl Peer {
    fn start(cmd: Command) -> Peer {
        let (child, events) = common::spawn_with_events(cmd, Stdio::inherit());
        Peer {
            child,
            events,
            seen: Vec::new(),
        }
    }

    fn spawn(args: &[&str]) -> Peer {
        let mut cmd = Command::new(PEER);
        cmd.args(args);
        Peer::start(cmd)
    }

    /// As another user: uid/gid given, supplementary groups dropped (std does that when a
    /// root parent sets the uid).
    fn spawn_as(uid: u32, gid: u32, args: &[&str]) -> Peer {
        let mut cmd = Command::new(PEER);
        cmd.args(args).uid(uid).gid(gid);
        Peer::start(cmd)
    }

    fn spawn_env(env: (&str, &str), args: &[&str]) -> Peer {
        let mut cmd = Command::new(PEER);
        cmd.args(args).env(env.0, env.1);
        Peer::start(cmd)
    }

    fn wait_event(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(e) = self.seen.iter().find(|e| e.starts_with(prefix)) {
                return e.clone();
            }
            match self.events.recv_timeout(Duration::from_millis(100)) {
                Ok(e) => self.seen.push(e),
                Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
                Err(_) => panic!("no `{prefix}` event; saw {:?}", self.seen),
            }
        }
    }

    fn finish(mut self) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !matches!(self.child.try_wait(), Ok(Some(_))) {
            assert!(Instant::now() < deadline, "peer did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
        while let Ok(e) = self.events.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(e);
        }
        std::mem::take(&mut self.seen)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn header_path(set: &str) -> std::path::PathBuf {
    std::path::Path::new("/dev/shm").join(format!("vdisim-{}-{set}", shm::DEFAULT_INSTANCE))
}

fn buffer_path(set: &str) -> Option<std::path::PathBuf> {
    let header = format!("vdisim-{}-{set}.buf", shm::DEFAULT_INSTANCE);
    segments_of(set)
        .into_iter()
        .find(|n| n.starts_with(&header))
        .map(|n| std::path::Path::new("/dev/shm").join(n))
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).expect("segment exists").permissions().mode() & 0o777
}

fn is_root() -> bool {
    // /proc/self belongs to the effective uid.
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn create(set: &str) -> Result<ClientVirtualDeviceSet, VdError> {
    let mut vds = ClientVirtualDeviceSet::new();
    vds.create_ex(None, set, &VDConfig::request(1, 0)).map(|_| vds)
}

// ---- modes ----------------------------------------------------------------------------------

#[test]
fn segments_are_owner_only_by_default() {
    let set = unique("mode");
    let mut vds = create(&set).unwrap();
    assert_eq!(mode(&header_path(&set)), 0o600, "header segment");
    let mut server = Peer::spawn(&["configure-hold", &set, "2000"]);
    server.wait_event("configured");
    vds.get_configuration(20_000).unwrap();
    let buffer = buffer_path(&set).expect("buffer area");
    assert_eq!(mode(&buffer), 0o600, "buffer segment");
    server.finish();
    vds.close().unwrap_or(());
    assert_eq!(segments_of(&set), Vec::<String>::new());
}

#[test]
fn group_access_is_opt_in() {
    let set = unique("group");
    let env = (shm::GROUP_ACCESS_ENV, "1");
    let mut client = Peer::spawn_env(env, &["create-hold", &set, "4000"]);
    assert_eq!(
        client.wait_event("create "),
        format!("create NOERROR {}", client.child.id())
    );
    assert_eq!(mode(&header_path(&set)), 0o660, "header segment with group access");
    let mut server = Peer::spawn_env(env, &["configure-hold", &set, "500"]);
    server.wait_event("configured");
    let buffer = buffer_path(&set).expect("buffer area");
    assert_eq!(mode(&buffer), 0o660, "buffer segment with group access");
    server.finish();
    client.finish();
    assert_eq!(segments_of(&set), Vec::<String>::new());
}

// ---- other users ----------------------------------------------------------------------------

#[test]
fn another_user_gets_vd_e_security() {
    if !is_root() {
        println!("skipped: switching to uid {NOBODY} needs root");
        return;
    }
    let set = unique("other-user");
    let mut vds = create(&set).unwrap();
    for (uid, gid) in [(NOBODY, NOBODY), (NOBODY, 0)] {
        let peer = Peer::spawn_as(uid, gid, &["open-server", &set]);
        let events = peer.finish();
        assert!(
            events.contains(&"open VD_E_SECURITY".to_string()),
            "server Open as uid {uid} gid {gid}: {events:?}"
        );
        let peer = Peer::spawn_as(uid, gid, &["open-secondary", &set]);
        let events = peer.finish();
        assert!(
            events.contains(&"open VD_E_SECURITY".to_string()),
            "OpenInSecondary as uid {uid} gid {gid}: {events:?}"
        );
    }
    // The set is untouched: our own server can still use it.
    assert!(vds.get_configuration(0).is_err_and(|e| e == VdError::Timeout));
    vds.close().unwrap();
    assert_eq!(segments_of(&set), Vec::<String>::new());
}

#[test]
fn group_access_lets_the_group_in_and_nobody_else() {
    if !is_root() {
        println!("skipped: switching to uid {NOBODY} needs root");
        return;
    }
    let set = unique("group-user");
    let mut client = Peer::spawn_env((shm::GROUP_ACCESS_ENV, "1"), &["create-hold", &set, "5000"]);
    client.wait_event("create NOERROR");
    // Not in the group (root): refused.
    let events = Peer::spawn_as(NOBODY, NOBODY, &["open-server", &set]).finish();
    assert!(events.contains(&"open VD_E_SECURITY".to_string()), "{events:?}");
    // In the group: Open works (it then aborts and closes the set).
    let events = Peer::spawn_as(NOBODY, 0, &["open-server", &set]).finish();
    assert!(events.contains(&"open NOERROR".to_string()), "{events:?}");
    client.finish();
    assert_eq!(segments_of(&set), Vec::<String>::new());
}

// ---- names ----------------------------------------------------------------------------------

#[test]
fn set_names_are_validated() {
    let too_long = "n".repeat(129);
    for bad in [
        "",
        "a/b",
        "../etc/passwd",
        "a\\b",
        "tab\there",
        "nul\0byte",
        "bell\u{7}",
        too_long.as_str(),
    ] {
        let mut vds = ClientVirtualDeviceSet::new();
        assert_eq!(
            vds.create_ex(None, bad, &VDConfig::request(1, 0)).err(),
            Some(VdError::Invalid),
            "CreateEx({bad:?})"
        );
        assert_eq!(
            ServerVirtualDeviceSet::open(None, bad).err(),
            Some(VdError::Invalid),
            "Open({bad:?})"
        );
        assert_eq!(
            vds.open_in_secondary(None, bad).err(),
            Some(VdError::Invalid),
            "OpenInSecondary({bad:?})"
        );
    }
    // The longest name and non-ASCII names work, and they are case-sensitive (§2.6).
    let longest = format!("{}{}", unique("long"), "x".repeat(128))
        .chars()
        .take(128)
        .collect::<String>();
    for good in [longest.as_str(), &format!("{}-Ünïcödé-{{GUID}}", unique("u"))] {
        let mut vds = create(good).unwrap_or_else(|e| panic!("CreateEx({good:?}): {e}"));
        let lower = good.to_lowercase();
        if lower != good {
            assert_eq!(ServerVirtualDeviceSet::open(None, &lower).err(), Some(VdError::Invalid));
        }
        vds.close().unwrap();
    }
}

#[test]
fn instance_names_are_validated() {
    let set = unique("inst");
    for bad in ["machine\\SQL2019", "has space", "a/b", "seventeen_chars_x", "dot.name"] {
        let mut vds = ClientVirtualDeviceSet::new();
        assert_eq!(
            vds.create_ex(Some(bad), &set, &VDConfig::request(1, 0)).err(),
            Some(VdError::InstanceName),
            "CreateEx instance {bad:?}"
        );
        assert_eq!(
            ServerVirtualDeviceSet::open(Some(bad), &set).err(),
            Some(VdError::InstanceName)
        );
    }
    assert_eq!(segments_of(&set), Vec::<String>::new());
}

#[test]
fn names_across_processes() {
    // Invalid names and instances are refused by another process too.
    let events = Peer::spawn(&["open-server", "a/b"]).finish();
    assert!(events.contains(&"open VD_E_INVALID".to_string()), "{events:?}");
    let events = Peer::spawn(&["open-secondary", "a\\b"]).finish();
    assert!(events.contains(&"open VD_E_INVALID".to_string()), "{events:?}");
    let set = unique("xproc");
    let events = Peer::spawn(&["open-server", &set, "bad instance"]).finish();
    assert!(events.contains(&"open VD_E_INSTANCE_NAME".to_string()), "{events:?}");

    // A set of a named instance is found under that instance (case-insensitive, as SQL Server
    // instance names are), not under the default one, nor under another case of its name.
    let mut vds = ClientVirtualDeviceSet::new();
    vds.create_ex(Some("SQL2019"), &set, &VDConfig::request(1, 0)).unwrap();
    let events = Peer::spawn(&["open-server", &set]).finish();
    assert!(
        events.contains(&"open VD_E_INVALID".to_string()),
        "default instance: {events:?}"
    );
    let events = Peer::spawn(&["open-server", &set.to_uppercase(), "sql2019"]).finish();
    assert!(
        events.contains(&"open VD_E_INVALID".to_string()),
        "other case: {events:?}"
    );
    let events = Peer::spawn(&["open-server", &set, "sql2019"]).finish();
    assert!(
        events.contains(&"open NOERROR".to_string()),
        "named instance: {events:?}"
    );
    let _ = vds.close();
    assert!(std::fs::read_dir("/dev/shm")
        .unwrap()
        .flatten()
        .all(|e| !e.file_name().to_string_lossy().contains(&set)));
}

// ---- racing creators ------------------------------------------------------------------------

fn race(set: &str, racers: usize) -> Vec<String> {
    let start_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 3000;
    let peers: Vec<Peer> = (0..racers)
        .map(|_| Peer::spawn(&["create-hold", set, "1500", &start_at.to_string()]))
        .collect();
    let mut results = Vec::new();
    for mut p in peers {
        let e = p.wait_event("create ");
        results.push(e.split(' ').nth(1).unwrap_or_default().to_string());
        p.finish();
    }
    results
}

#[test]
fn racing_creators_get_exactly_one_success() {
    for round in 0..3 {
        let set = unique("race");
        let results = race(&set, 12);
        let wins = results.iter().filter(|r| *r == "NOERROR").count();
        assert_eq!(wins, 1, "round {round}: {results:?}");
        assert!(
            results.iter().all(|r| r == "NOERROR" || r == "VD_E_PROTOCOL"),
            "round {round}: losers get VD_E_PROTOCOL: {results:?}"
        );
        assert_eq!(segments_of(&set), Vec::<String>::new());
    }
}

#[test]
fn racing_creators_over_a_dead_creators_set_get_exactly_one_success() {
    let set = unique("race-stale");
    let mut dead = Peer::spawn(&["create-hold", &set, "60000"]);
    dead.wait_event("create NOERROR");
    let _ = dead.child.kill();
    let _ = dead.child.wait();
    assert_eq!(segments_of(&set).len(), 1);
    let results = race(&set, 12);
    let wins = results.iter().filter(|r| *r == "NOERROR").count();
    assert_eq!(wins, 1, "{results:?}");
    assert!(
        results.iter().all(|r| r == "NOERROR" || r == "VD_E_PROTOCOL"),
        "{results:?}"
    );
    assert_eq!(segments_of(&set), Vec::<String>::new());
}
