//! The engine's statement layer without a client: option limits (SPEC §2.6) rejected with
//! SQL Server's message numbers before any device is touched, CREATE/DROP, line numbers, batch
//! semantics, and the message output of a normal BACKUP and RESTORE (insta snapshots, timings
//! redacted).

use rstest::rstest;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use vdisim::engine::database::DataDir;
use vdisim::engine::{messages, Engine, EngineOptions, StatementOutcome};
use vdisim::reference_client::{self, device_name, Mode, Options};

fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "engs-{}-{tag}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn engine(dir: &tempfile::TempDir) -> Engine {
    Engine::new(DataDir::new(dir.path().join("data")).unwrap(), None).with_options(EngineOptions {
        open_grace: Duration::from_millis(200),
        ..EngineOptions::default()
    })
}

fn all_text(v: &[StatementOutcome]) -> String {
    v.iter().map(|o| messages::render(&o.messages)).collect()
}

/// Every limit of §2.6 and the statement rules, rejected with the right number and text. The
/// error comes from the whole batch (a syntax-level check), so nothing in it runs.
#[rstest]
#[case::blocksize_not_power_of_two(
    "WITH BLOCKSIZE = 1000",
    3068,
    "Invalid block size 1000 specified. The block size must be a power of 2 between 512 bytes and 64 KB."
)]
#[case::blocksize_too_small("WITH BLOCKSIZE = 256", 3068, "Invalid block size 256 specified.")]
#[case::blocksize_too_large("WITH BLOCKSIZE = 131072", 3068, "Invalid block size 131072 specified.")]
#[case::maxtransfer_not_multiple(
    "WITH MAXTRANSFERSIZE = 65537",
    3069,
    "The specified MAXTRANSFERSIZE 65537 is invalid. It must be a multiple of 64 KB between 64 KB and 4 MB."
)]
#[case::maxtransfer_too_large(
    "WITH MAXTRANSFERSIZE = 8388608",
    3069,
    "The specified MAXTRANSFERSIZE 8388608 is invalid."
)]
#[case::maxtransfer_zero("WITH MAXTRANSFERSIZE = 0", 3069, "The specified MAXTRANSFERSIZE 0 is invalid.")]
#[case::buffercount_zero(
    "WITH BUFFERCOUNT = 0",
    3213,
    "Invalid BUFFERCOUNT 0 specified. BUFFERCOUNT must be between 1 and 4096."
)]
#[case::buffercount_too_large("WITH BUFFERCOUNT = 5000", 3213, "Invalid BUFFERCOUNT 5000 specified.")]
#[case::buffer_memory(
    "WITH BUFFERCOUNT = 1024, MAXTRANSFERSIZE = 4194304",
    3213,
    "more than the limit of 2147483648 bytes (2 GB)."
)]
#[case::stats(
    "WITH STATS = 101",
    3200,
    "Invalid STATS value 101. STATS must be between 1 and 100."
)]
#[case::duplicate_option(
    "WITH BLOCKSIZE = 512, BLOCKSIZE = 1024",
    1034,
    "Duplicate specification of the action"
)]
fn backup_option_limits(#[case] options: &str, #[case] number: u32, #[case] text: &str) {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(&dir);
    let set = unique("lim");
    let out = e.execute_batch(&format!(
        "CREATE DATABASE a (SIZE = 64 KB)\nBACKUP DATABASE a TO VIRTUAL_DEVICE = '{set}' {options}"
    ));
    assert_eq!(out.len(), 1, "a batch with an error runs nothing");
    let m = &out[0].messages;
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].number, number, "{}", m[0]);
    assert!(m[0].is_error());
    assert!(m[0].text.contains(text), "{}", m[0].text);
    assert!(!e.data_dir().exists("a"), "the CREATE in the failed batch did not run");
}

#[rstest]
#[case::restore_blocksize("WITH BLOCKSIZE = 3000", 3068)]
#[case::restore_maxtransfer("WITH MAXTRANSFERSIZE = 100000", 3069)]
#[case::restore_buffercount("WITH BUFFERCOUNT = 0", 3213)]
fn restore_option_limits(#[case] options: &str, #[case] number: u32) {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(&dir);
    let out = e.execute_batch(&format!("RESTORE DATABASE a FROM VIRTUAL_DEVICE = 'v' {options}"));
    assert_eq!(out[0].messages[0].number, number, "{}", all_text(&out));
}

#[test]
fn device_list_rules() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(&dir);
    let many: Vec<String> = (0..65).map(|i| format!("VIRTUAL_DEVICE = 'd{i}'")).collect();
    let out = e.execute_batch(&format!("BACKUP DATABASE a TO {}", many.join(", ")));
    assert_eq!(out[0].messages[0].number, 3205);
    assert!(out[0].messages[0]
        .text
        .contains("only 64 are allowed. 65 devices were specified."));
    let out = e.execute_batch("BACKUP DATABASE a TO VIRTUAL_DEVICE = 'x', VIRTUAL_DEVICE = 'x'");
    assert_eq!(out[0].messages[0].number, 3209);
    let out = e.execute_batch("BACKUP DATABASE a TO VIRTUAL_DEVICE = 'a/b'");
    assert_eq!(out[0].messages[0].number, 3201);
    let out = e.execute_batch("BACKUP DATABASE a TO DISK = '/tmp/a.bak'");
    assert_eq!(out[0].messages[0].number, 50001);
    let out = e.execute_batch("BACKUP DATABASE a TO VIRTUAL_DEVICE = 'x', VIRTUAL_DEVICE = 'y' WITH SNAPSHOT");
    assert_eq!(out[0].messages[0].number, 50002);
}

#[test]
fn create_drop_and_line_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(&dir);
    let out =
        e.execute_batch("CREATE DATABASE a (SIZE = 64 KB)\n\nCREATE DATABASE a\nDROP DATABASE b\nDROP DATABASE a");
    assert_eq!(out.len(), 4);
    assert!(!out[0].failed() && out[0].messages.is_empty(), "CREATE prints nothing");
    assert_eq!(
        messages::render(&out[1].messages),
        "Msg 1801, Level 16, State 1, Server vdisim, Line 3\nDatabase 'a' already exists. Choose a different database name.\n"
    );
    assert_eq!(
        messages::render(&out[2].messages),
        "Msg 3701, Level 16, State 1, Server vdisim, Line 4\nCannot drop the database 'b', because it does not exist or you do not have permission.\n"
    );
    assert!(!out[3].failed());
    assert!(!e.data_dir().exists("a"));
    // Default size: 8 MB like SQL Server's model database.
    e.execute_batch("CREATE DATABASE d");
    assert_eq!(e.data_dir().size_of("d").unwrap(), 8 << 20);
}

#[test]
fn errors_before_the_transfer_end_with_3013() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(&dir);
    let out = e.execute_batch("SELECT 1");
    assert_eq!(out[0].messages[0].number, 102);
    assert_eq!(out[0].messages[0].severity, 15);
    let set = unique("nodb");
    let out = e.execute_batch(&format!("BACKUP DATABASE nosuch TO VIRTUAL_DEVICE = '{set}'"));
    assert_eq!(
        all_text(&out),
        "Msg 911, Level 16, State 1, Server vdisim, Line 1\nDatabase 'nosuch' does not exist. Make sure that the name \
         is entered correctly.\nMsg 3013, Level 16, State 1, Server vdisim, Line 1\nBACKUP DATABASE is terminating \
         abnormally.\n"
    );
    e.execute_batch("CREATE DATABASE s (SIZE = 64 KB)");
    let out = e.execute_batch(&format!("BACKUP DATABASE s TO VIRTUAL_DEVICE = '{set}' WITH SNAPSHOT"));
    assert!(all_text(&out).contains("Msg 50003"), "{}", all_text(&out));
    assert!(all_text(&out).ends_with("BACKUP DATABASE is terminating abnormally.\n"));
}

/// Replaces "in 0.123 seconds (45.678 MB/sec)" so snapshots do not depend on the machine.
fn redact(s: &str) -> String {
    s.lines()
        .map(|l| match (l.find(" pages in "), l.rfind(" MB/sec).")) {
            (Some(i), Some(_)) => format!("{} pages in [SECONDS] seconds ([RATE] MB/sec).", &l[..i]),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The message output of a normal striped BACKUP and RESTORE, as sqlcmd shows it. The client
/// is the reference client on a thread here (the two-process version is engine_roundtrip.rs).
#[test]
fn backup_and_restore_messages() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(&dir);
    e.execute_batch("CREATE DATABASE Sales (SIZE = 1024 KB)");
    let store = dir.path().join("store");
    let run = |mode: Mode, sql: &str, set: &str| {
        let opts = Options::new(mode, set, 2, &store);
        let client = std::thread::scope(|s| {
            let c = s.spawn(|| reference_client::run(&opts, || {}));
            let out = e.execute_batch(sql);
            (c.join().unwrap(), out)
        });
        assert!(client.0.is_ok(), "{:?}", client.0);
        redact(&all_text(&client.1))
    };
    let set = unique("snap");
    let backup = run(
        Mode::Backup,
        &format!(
            "BACKUP DATABASE [Sales] TO VIRTUAL_DEVICE = '{}', VIRTUAL_DEVICE = '{}' WITH STATS = 25",
            device_name(&set, 0),
            device_name(&set, 1)
        ),
        &set,
    );
    insta::assert_snapshot!("backup_messages", backup);
    let set = unique("snap");
    let restore = run(
        Mode::Restore,
        &format!(
            "RESTORE DATABASE [Sales_copy] FROM VIRTUAL_DEVICE = '{}', VIRTUAL_DEVICE = '{}'",
            device_name(&set, 0),
            device_name(&set, 1)
        ),
        &set,
    );
    insta::assert_snapshot!("restore_messages", restore);
    assert!(e.data_dir().identical("Sales", "Sales_copy").unwrap());
}

#[test]
fn redaction_keeps_everything_else() {
    assert_eq!(
        redact("Processed 8 pages for database 'a', file 'a' on file 1.\nBACKUP DATABASE successfully processed 8 pages in 0.012 seconds (5.208 MB/sec)."),
        "Processed 8 pages for database 'a', file 'a' on file 1.\nBACKUP DATABASE successfully processed 8 pages in [SECONDS] seconds ([RATE] MB/sec)."
    );
}
