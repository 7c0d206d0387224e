//! Replays every fuzz crash input kept under fixtures/fuzz-crashes/ (scripts/fuzz.sh puts
//! them there) and the committed seed corpora under fuzz/corpus/: none may panic.

use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().map_or(true, |x| x != "md"));
    v.sort();
    v
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `f` on every input of `target`; returns the inputs that panicked.
fn replay(target: &str, f: fn(&[u8])) -> (usize, Vec<String>) {
    let mut inputs = files(&root().join("fixtures/fuzz-crashes").join(target));
    inputs.extend(files(&root().join("fuzz/corpus").join(target)));
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let failed: Vec<String> = inputs
        .iter()
        .filter(|p| {
            let data = std::fs::read(p).unwrap_or_default();
            std::panic::catch_unwind(|| f(&data)).is_err()
        })
        .map(|p| p.display().to_string())
        .collect();
    std::panic::set_hook(hook);
    (inputs.len(), failed)
}

#[test]
fn tsql_crash_inputs_and_seeds_parse_without_panicking() {
    let (n, failed) = replay("tsql", |data| {
        let _ = vdisim::engine::tsql::parse_batch(&String::from_utf8_lossy(data));
    });
    assert!(n > 0, "no seed corpus found");
    assert!(failed.is_empty(), "panicked: {failed:?}");
}

#[test]
fn shm_peer_crash_inputs_and_seeds_never_panic_the_honest_sides() {
    let (n, failed) = replay("shm_peer", vdi_conformance::props::hostile::run);
    assert!(n > 0, "no seed corpus found");
    assert!(failed.is_empty(), "panicked: {failed:?}");
}
