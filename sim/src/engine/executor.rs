//! The simulated SQL Server's statement executor: parses a batch ([`super::tsql`]) and carries
//! out each statement against the data directory ([`super::database`]), playing the server role
//! of the VDI for BACKUP ([`super::backup`]) and RESTORE ([`super::restore`]).
//!
//! Like SQL Server, a syntax error anywhere in a batch means nothing in it runs; an error while
//! executing a statement ends that statement only (with 3013 for BACKUP/RESTORE), and the batch
//! goes on with the next one.

use super::database::{DataDir, DbError};
use super::messages::{self, Message};
use super::session::ProgressFn;
use super::tsql::{self, BackupKind, Statement};
use serde::Serialize;
use std::time::Duration;

/// Tunables of the engine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How long BACKUP/RESTORE retries Open while the client has not created the set yet.
    pub open_grace: Duration,
    /// How long a device may go without any completion while commands are outstanding before
    /// the operation fails (SQL Server waits forever; vdisim bounds every wait).
    pub stall_timeout: Duration,
    /// CREATE DATABASE without SIZE (SQL Server's model database is 8 MB).
    pub default_database_size: u64,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            open_grace: Duration::from_secs(10),
            stall_timeout: Duration::from_secs(120),
            default_database_size: 8 << 20,
        }
    }
}

/// What a BACKUP or RESTORE moved (for summaries and throughput).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransferStats {
    /// Database (or log) bytes backed up or restored.
    pub bytes: u64,
    /// The same in 8 KiB pages, rounded up.
    pub pages: u64,
    /// Bytes of backup stream over all devices (headers, records, padding, trailers).
    pub stream_bytes: u64,
    /// Devices used.
    pub devices: usize,
    /// BLOCKSIZE in effect (for RESTORE: the backup's).
    pub blocksize: u32,
    /// MAXTRANSFERSIZE in effect.
    pub maxtransfersize: u32,
    /// BUFFERCOUNT in effect.
    pub buffercount: u32,
    /// Whether VDF_CompleteEnabled was answered and VDC_Complete sent (§3.4).
    pub complete_enabled: bool,
    /// Time of the transfer, from the set's Open to its Close.
    #[serde(with = "duration_ms")]
    pub elapsed: Duration,
}

mod duration_ms {
    pub fn serialize<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
}

impl TransferStats {
    /// MiB per second of database data.
    pub fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / (1024.0 * 1024.0) / self.elapsed.as_secs_f64().max(0.001)
    }
}

/// The result of one statement: its messages in order and, for BACKUP/RESTORE that succeeded,
/// what moved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatementOutcome {
    /// "CREATE DATABASE", "BACKUP DATABASE", "RESTORE LOG", ... ("BATCH" for a parse error).
    pub statement: String,
    /// Messages as sqlcmd prints them.
    pub messages: Vec<Message>,
    /// Set when a BACKUP or RESTORE succeeded.
    pub transfer: Option<TransferStats>,
}

impl StatementOutcome {
    /// True if any message is an error (severity above 10).
    pub fn failed(&self) -> bool {
        self.messages.iter().any(Message::is_error)
    }
}

/// The simulated SQL Server.
pub struct Engine {
    data: DataDir,
    instance: Option<String>,
    options: EngineOptions,
    progress: Option<ProgressFn>,
}

impl Engine {
    /// An engine over `data`, serving VDI sets of `instance` (None = the default instance).
    /// Removes temp files that killed processes left in the data directory.
    pub fn new(data: DataDir, instance: Option<String>) -> Engine {
        let _ = data.sweep_stale_restores();
        Engine {
            data,
            instance,
            options: EngineOptions::default(),
            progress: None,
        }
    }

    /// Replaces the options.
    #[must_use]
    pub fn with_options(mut self, options: EngineOptions) -> Engine {
        self.options = options;
        self
    }

    /// Calls `f(done, total)` as BACKUP/RESTORE data moves (from device threads).
    pub fn set_progress(&mut self, f: Option<ProgressFn>) {
        self.progress = f;
    }

    /// The data directory.
    pub fn data_dir(&self) -> &DataDir {
        &self.data
    }

    /// The VDI instance name (None = default instance).
    pub fn instance(&self) -> Option<&str> {
        self.instance.as_deref()
    }

    /// The options in effect.
    pub fn options(&self) -> &EngineOptions {
        &self.options
    }

    pub(crate) fn progress(&self) -> Option<ProgressFn> {
        self.progress.clone()
    }

    /// Executes a batch: every statement in order, each with its own outcome. A syntax error
    /// gives a single outcome with that error and runs nothing.
    pub fn execute_batch(&self, sql: &str) -> Vec<StatementOutcome> {
        let statements = match tsql::parse_batch_lines(sql) {
            Ok(s) => s,
            Err(e) => {
                return vec![StatementOutcome {
                    statement: "BATCH".into(),
                    messages: vec![Message::from(&e)],
                    transfer: None,
                }]
            }
        };
        statements
            .into_iter()
            .map(|(line, st)| self.execute(&st, line))
            .collect()
    }

    /// Executes one parsed statement; `line` is where it starts in its batch.
    pub fn execute(&self, st: &Statement, line: u32) -> StatementOutcome {
        let (statement, result) = match st {
            Statement::CreateDatabase(c) => ("CREATE DATABASE".to_string(), self.create(c)),
            Statement::DropDatabase { name } => ("DROP DATABASE".to_string(), self.drop_db(name)),
            Statement::Backup(b) => {
                let op = format!("BACKUP {}", kind_word(b.kind));
                (op.clone(), super::backup::run(self, b, &op))
            }
            Statement::Restore(r) => {
                let op = format!("RESTORE {}", kind_word(r.kind));
                (op.clone(), super::restore::run(self, r, &op))
            }
        };
        let (mut messages, transfer) = match result {
            Ok((m, t)) => (m, t),
            Err(mut m) => {
                if matches!(st, Statement::Backup(_) | Statement::Restore(_)) {
                    m.push(messages::terminating(&statement));
                }
                (m, None)
            }
        };
        for m in &mut messages {
            if m.is_error() {
                m.line = line;
            }
        }
        StatementOutcome {
            statement,
            messages,
            transfer,
        }
    }

    fn create(&self, c: &tsql::CreateDatabase) -> ExecResult {
        let size = c.size_bytes.unwrap_or(self.options.default_database_size);
        match self.data.create_database(&c.name, size) {
            Ok(_) => Ok((Vec::new(), None)),
            Err(e) => Err(vec![db_error(&c.name, &e)]),
        }
    }

    fn drop_db(&self, name: &str) -> ExecResult {
        if !self.data.exists(name) {
            return Err(vec![messages::cannot_drop(name)]);
        }
        match self.data.drop_database(name) {
            Ok(()) => Ok((Vec::new(), None)),
            Err(e) => Err(vec![db_error(name, &DbError::Io(e.to_string()))]),
        }
    }
}

/// Messages and stats on success; the messages explaining the failure otherwise (the caller
/// adds 3013 for BACKUP/RESTORE).
pub(crate) type ExecResult = Result<(Vec<Message>, Option<TransferStats>), Vec<Message>>;

pub(crate) fn kind_word(k: BackupKind) -> &'static str {
    match k {
        BackupKind::Database => "DATABASE",
        BackupKind::Log => "LOG",
    }
}

/// A data-directory error as a SQL Server message.
pub(crate) fn db_error(db: &str, e: &DbError) -> Message {
    match e {
        DbError::Exists(_) => messages::db_exists(db),
        DbError::NotFound(_) => messages::db_not_exist(db),
        DbError::InvalidName(_) => Message::error(tsql::MSG_BAD_DATABASE_NAME, format!("Invalid database name '{db}'.")),
        DbError::InvalidSize(s) => Message::error(tsql::MSG_FILE_SIZE_TOO_LARGE, format!("Invalid database size: {s}.")),
        DbError::Io(s) => Message::error(
            5123,
            format!("CREATE FILE encountered operating system error '{s}' while attempting to open or create the physical file for database '{db}'."),
        ),
    }
}
