//! The harness side of a case: a per-case context ([`Cx`]) with the transcript, unique
//! names, a scratch directory and the deadlines; the two drivers ([`play_server`] where the
//! harness plays SQL Server, [`play_client`] where it plays the backup application); and the
//! tools for hostile cases ([`hostile`]).

pub(crate) mod hostile;
pub(crate) mod pattern;
pub(crate) mod play_client;
pub(crate) mod play_server;

use crate::case::AbortSeen;
use crate::model::{Role, TranscriptEntry};
use crate::plugin::{ClientUnderTest, ServerUnderTest};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use vdisim::shm::layout::{abort_by, abort_reason};

/// The deadlines of a run. Every wait of the harness is bounded by one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// For the client to create the set (a process may need a while to start).
    pub create_wait: Duration,
    /// No progress at all (no command sent, none completed) for this long is a hang.
    pub stall: Duration,
    /// For the implementation to end once its job is over (or aborted).
    pub exit_wait: Duration,
    /// The GetCommand timeout suggested to in-process clients; the timeout cases pause the
    /// stream for two and a half of these (and at least 2.5 s, past the reference client's
    /// own 1 s).
    pub client_timeout_ms: u32,
}

impl Timing {
    /// How long the timeout cases pause: 2.5 client timeouts, and at least 2.5 s.
    pub fn pause_ms(&self) -> u64 {
        (u64::from(self.client_timeout_ms) * 5 / 2).max(2500)
    }
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            create_wait: Duration::from_secs(20),
            stall: Duration::from_secs(4),
            exit_wait: Duration::from_secs(6),
            client_timeout_ms: 1000,
        }
    }
}

/// Most transcript entries kept per case; later ones are counted, not stored.
const TRANSCRIPT_LIMIT: usize = 4000;

static CASE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// One case's context.
pub struct Cx<'a> {
    pub(crate) case_id: &'static str,
    pub(crate) role: Role,
    pub(crate) t0: Instant,
    transcript: Mutex<Vec<TranscriptEntry>>,
    dropped: AtomicU64,
    base: String,
    names: AtomicU32,
    used_sets: Mutex<Vec<String>>,
    pub(crate) dir: PathBuf,
    pub(crate) client: Option<&'a dyn ClientUnderTest>,
    pub(crate) server: Option<&'a dyn ServerUnderTest>,
    pub(crate) timing: Timing,
}

impl<'a> Cx<'a> {
    pub(crate) fn new(
        case_id: &'static str,
        role: Role,
        client: Option<&'a dyn ClientUnderTest>,
        server: Option<&'a dyn ServerUnderTest>,
        timing: Timing,
    ) -> Cx<'a> {
        let n = CASE_COUNTER.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        // Unique per process and case: set names never collide across parallel cases or runs.
        let base = format!("vdic{pid}n{n}");
        let dir = std::env::temp_dir().join(format!("vdi-conformance-{pid}-{n}"));
        Cx {
            case_id,
            role,
            t0: Instant::now(),
            transcript: Mutex::new(Vec::new()),
            dropped: AtomicU64::new(0),
            base,
            names: AtomicU32::new(0),
            used_sets: Mutex::new(Vec::new()),
            dir,
            client,
            server,
            timing,
        }
    }

    /// Appends a transcript entry: who called what, and what came back.
    pub(crate) fn log(&self, actor: &str, call: impl Into<String>, result: impl Into<String>) {
        let mut t = self.transcript.lock().unwrap_or_else(|p| p.into_inner());
        if t.len() >= TRANSCRIPT_LIMIT {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        t.push(TranscriptEntry {
            at_ms: self.t0.elapsed().as_millis() as u64,
            actor: actor.to_string(),
            call: call.into(),
            result: result.into(),
        });
    }

    /// The transcript so far (with a last entry counting what was left out).
    pub(crate) fn transcript(&self) -> Vec<TranscriptEntry> {
        let mut t = self.transcript.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let dropped = self.dropped.load(Ordering::Relaxed);
        if dropped > 0 {
            t.push(TranscriptEntry {
                at_ms: self.t0.elapsed().as_millis() as u64,
                actor: "harness".into(),
                call: "transcript".into(),
                result: format!("{dropped} more entries left out"),
            });
        }
        t
    }

    /// A fresh set name for this case (each job of a case gets its own).
    pub(crate) fn new_set_name(&self) -> String {
        let k = self.names.fetch_add(1, Ordering::Relaxed);
        let name = format!("{}s{k}", self.base);
        self.used_sets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(name.clone());
        name
    }

    /// A store directory inside the case's scratch directory (not created: the client does).
    pub(crate) fn store(&self, tag: &str) -> PathBuf {
        self.dir.join(format!("store-{tag}"))
    }

    pub(crate) fn prepare(&self) -> std::io::Result<()> {
        self.log(
            "harness",
            format!("case {}", self.case_id),
            format!("sets {}s*", self.base),
        );
        std::fs::create_dir_all(&self.dir)
    }

    /// Removes the scratch directory and any shared-memory segment a killed implementation
    /// left behind for this case's sets.
    pub(crate) fn cleanup(&self) {
        let sets = self.used_sets.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for set in sets {
            hostile::unlink_set(&set);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Names an abort reason from the shared header.
pub(crate) fn reason_name(reason: u32) -> &'static str {
    match reason {
        abort_reason::SIGNAL => "signal",
        abort_reason::PREMATURE_CLOSE => "premature-close",
        abort_reason::PEER_DIED => "peer-died",
        abort_reason::PEER_MISBEHAVED => "peer-misbehaved",
        abort_reason::SERVER_TIMEOUT => "server-timeout",
        _ => "unknown",
    }
}

/// Turns the header's (by, reason) into what the case saw, for the role under test.
pub(crate) fn abort_seen(role: Role, by: u32, reason: u32) -> AbortSeen {
    let by_name = if by == abort_by::CLIENT { "client" } else { "server" };
    let by_implementation = match role {
        Role::Client => by == abort_by::CLIENT,
        Role::Server => by == abort_by::SERVER,
    };
    AbortSeen {
        by: by_name,
        reason: reason_name(reason),
        by_implementation,
    }
}

/// Renders a Win32 completion code for transcripts.
pub(crate) fn code_name(code: u32) -> String {
    vdisim::vdi::completion::name(code).map_or_else(|| format!("Win32({code})"), |n| n.to_string())
}

/// Renders a command code for transcripts.
pub(crate) fn cmd_name(code: u32) -> String {
    vdisim::vdi::CommandCode::from_code(code).map_or_else(|| format!("command({code})"), |c| c.name().to_string())
}
