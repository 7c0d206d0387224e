//! `vdisim cleanup [--remove] [--json]`: lists the vdisim shared-memory segments of this
//! machine (Linux: /dev/shm/vdisim-*) and whether each is stale, and removes the stale ones.
//!
//! A header segment is stale when neither its creator (the client) nor its server is alive by
//! their liveness tokens (pid + start time), or when its creator died before finishing it; a
//! buffer area is stale when its set's header is gone or stale. Live sets, sets of other users
//! and files that are not vdisim headers are never removed. Removal of a header goes through
//! the same claim (a CAS in the header) as CreateEx's reclaiming, so a set created again under
//! the same name meanwhile is left alone.
//!
//! Exit code: 0 (also when stale segments are listed), 2 if removing was asked for and a stale
//! segment could not be removed.

use vdisim::shm::{self, SegmentInfo};

#[derive(clap::Args)]
pub struct Args {
    /// Remove the stale segments (without it, only list).
    #[arg(long)]
    pub remove: bool,
    /// Print JSON: {"segments": [...], "removed": [...]}.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> u8 {
    let before = shm::list_segments();
    let removed = if args.remove {
        shm::remove_stale_segments()
    } else {
        Vec::new()
    };
    // A stale segment that is still there after removal (another user's, or a race lost to
    // a concurrent reclaim that will remove it anyway) is reported, not fatal unless it stays.
    let stuck: Vec<&SegmentInfo> = if args.remove {
        let now = shm::list_segments();
        before
            .iter()
            .filter(|b| b.stale && !removed.iter().any(|r| r.name == b.name))
            .filter(|b| now.iter().any(|n| n.name == b.name && n.stale))
            .collect()
    } else {
        Vec::new()
    };
    if args.json {
        let v = serde_json::json!({ "segments": before, "removed": removed });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        print_table(&before, &removed, args.remove);
    }
    if stuck.is_empty() {
        0
    } else {
        for s in stuck {
            eprintln!("vdisim cleanup: could not remove /dev/shm/{}", s.name);
        }
        2
    }
}

fn print_table(segments: &[SegmentInfo], removed: &[SegmentInfo], remove: bool) {
    if segments.is_empty() {
        println!("no vdisim segments");
        #[cfg(windows)]
        println!("(Windows: a named mapping vanishes with its last handle; nothing is ever left to clean up)");
        return;
    }
    let width = segments.iter().map(|s| s.name.len()).max().unwrap_or(4).max(4);
    println!("{:<width$}  {:>12}  {:<7}  REASON", "NAME", "BYTES", "STATE");
    for s in segments {
        let state = if removed.iter().any(|r| r.name == s.name) {
            "removed"
        } else if s.stale {
            "stale"
        } else {
            "in use"
        };
        println!("{:<width$}  {:>12}  {:<7}  {}", s.name, s.size, state, s.reason);
    }
    let stale = segments.iter().filter(|s| s.stale).count();
    if remove {
        println!("removed {} stale segment(s)", removed.len());
    } else if stale > 0 {
        println!("{stale} stale segment(s); run `vdisim cleanup --remove` to remove them");
    }
}
