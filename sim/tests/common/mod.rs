//! Helpers shared by the integration tests that drive `vdisim-peer` processes and check
//! /dev/shm. Each test file keeps its own `Peer` type (they need different things of a peer);
//! what they all need is here.

// Each test crate uses a different part of this module.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};
use vdisim::shm;

pub const PEER: &str = env!("CARGO_BIN_EXE_vdisim-peer");

/// A set name unique to this process and call: `<prefix>-<tag>-<pid>-<n>`.
pub fn unique(prefix: &str, tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Starts `cmd` (usually `Command::new(PEER)` with arguments) with stdout piped: the payload
/// of each `EVENT ...` line it prints arrives on the returned channel, which closes at its EOF.
pub fn spawn_with_events(mut cmd: Command, stderr: Stdio) -> (Child, Receiver<String>) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("spawn vdisim-peer");
    let out = child.stdout.take().expect("stdout");
    let (tx, events) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("EVENT ") {
                let _ = tx.send(rest.to_string());
            }
        }
    });
    (child, events)
}

/// The /dev/shm entries of one set: its header and any buffer area. Empty where there is no
/// /dev/shm (Windows: a named mapping vanishes with its last handle, so none can be left).
pub fn segments_of(set: &str) -> Vec<String> {
    let header = format!("vdisim-{}-{set}", shm::DEFAULT_INSTANCE);
    let buffer = format!("{header}.buf");
    std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| *n == header || n.starts_with(&buffer))
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts that nothing of `set` stays in /dev/shm, allowing the last side to close a moment
/// to finish unlinking.
pub fn assert_no_leftovers(set: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !segments_of(set).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(segments_of(set), Vec::<String>::new(), "segments left behind for {set}");
}

/// A `vdisim-peer` process whose events are read in order: `expect` consumes them up to the
/// one it waits for. (The hostile, permission and chaos tests keep every event instead and have
/// peers of their own.)
pub struct Peer {
    pub child: Child,
    pub events: Receiver<String>,
}

impl Peer {
    pub fn spawn(args: &[&str]) -> Peer {
        let mut cmd = Command::new(PEER);
        cmd.args(args);
        let (child, events) = spawn_with_events(cmd, Stdio::inherit());
        Peer { child, events }
    }

    /// Waits for the next event starting with `prefix`, skipping others; panics after 20 s.
    pub fn expect(&self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(e) if e.starts_with(prefix) => return e,
                Ok(_) => continue,
                Err(_) => panic!("peer never reported {prefix:?}"),
            }
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
