//! SQL Server-style messages, as sqlcmd prints them.
//!
//! Informational messages (severity 10 or less: 4035 "Processed N pages", 3014 "... successfully
//! processed", 3211 "N percent processed") print as their text alone; errors print as
//! `Msg N, Level L, State S, Server vdisim, Line X` followed by the text on the next line. The
//! numbers are SQL Server's where it has one for the situation (SPEC §3.6: 18210 and 3013 for a
//! failed device; 3014 on success); texts follow SQL Server's wording, with vdisim's own detail
//! appended where SQL Server would be vague (which stripe, which block, which BLOCKSIZE).

use super::tsql::{self, SqlError, LEVEL_ERROR};
use crate::vdi::{completion, VdError};
use serde::Serialize;
use std::fmt;
use std::time::Duration;

/// "Cannot drop the database '…', because it does not exist …".
pub const MSG_CANNOT_DROP: u32 = 3701;
/// "N percent processed." (WITH STATS).
pub const MSG_PERCENT: u32 = 3211;
/// "Read on '…' failed" (reading the database during BACKUP).
pub const MSG_READ_FAILED: u32 = 3203;
/// "The tail of the log for the database '…' has not been backed up." (RESTORE over the same
/// database without REPLACE).
pub const MSG_TAIL_LOG: u32 = 3159;
/// "The backup set in file '…' was created by BACKUP LOG and cannot be used for this restore
/// operation." (kind mismatch).
pub const MSG_WRONG_KIND: u32 = 3135;
/// "The media set has N media families but only M are provided." (device count mismatch).
pub const MSG_FAMILIES_MISSING: u32 = 3132;
/// "The media family on device '…' is incorrectly formed." (not a backup, bad header,
/// devices swapped, another backup set, BLOCKSIZE mismatch).
pub const MSG_BAD_MEDIA_FAMILY: u32 = 3241;
/// "Damage to the backup set was detected." (lost, reordered, duplicated, corrupted blocks).
pub const MSG_DAMAGE: u32 = 3189;
/// "Logical file '…' is not part of database '…'." (RESTORE … WITH MOVE).
pub const MSG_NO_LOGICAL_FILE: u32 = 3234;
/// "The log or differential backup cannot be restored because no files are ready to
/// rollforward." (RESTORE LOG into a database that does not exist).
pub const MSG_NO_ROLLFORWARD: u32 = 3117;
/// A feature of the T-SQL subset vdisim parses but does not carry out (vdisim's own number).
pub const MSG_NOT_SUPPORTED: u32 = 50003;

/// Severity of informational messages.
pub const LEVEL_INFO: u8 = 0;

/// One message of a statement's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Message {
    /// Message number.
    pub number: u32,
    /// Severity: 0 informational, 15 syntax, 16 user error.
    pub severity: u8,
    /// State.
    pub state: u8,
    /// Line in the batch the statement starts on (errors only show it).
    pub line: u32,
    /// The text.
    pub text: String,
}

impl Message {
    /// An informational message (printed as its text alone).
    pub fn info(number: u32, text: impl Into<String>) -> Message {
        Message {
            number,
            severity: LEVEL_INFO,
            state: 1,
            line: 1,
            text: text.into(),
        }
    }

    /// A level-16 error at line 1.
    pub fn error(number: u32, text: impl Into<String>) -> Message {
        Message {
            number,
            severity: LEVEL_ERROR,
            state: 1,
            line: 1,
            text: text.into(),
        }
    }

    /// The same message at `line`.
    #[must_use]
    pub fn at_line(mut self, line: u32) -> Message {
        self.line = line;
        self
    }

    /// Severity above 10: an error, which makes the statement fail.
    pub fn is_error(&self) -> bool {
        self.severity > 10
    }
}

impl From<&SqlError> for Message {
    fn from(e: &SqlError) -> Message {
        Message {
            number: e.number,
            severity: e.severity,
            state: e.state,
            line: e.line,
            text: e.message.clone(),
        }
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_error() {
            write!(
                f,
                "Msg {}, Level {}, State {}, Server vdisim, Line {}\n{}",
                self.number, self.severity, self.state, self.line, self.text
            )
        } else {
            f.write_str(&self.text)
        }
    }
}

/// The text Windows gives a Win32 error code, as SQL Server embeds it in "Operating system
/// error N(text)".
pub fn win32_text(code: u32) -> &'static str {
    match code {
        completion::ERROR_SUCCESS => "The operation completed successfully.",
        completion::ERROR_INVALID_HANDLE => "The handle is invalid.",
        completion::ERROR_ARENA_TRASHED => "The storage control blocks were destroyed.",
        completion::ERROR_BAD_ENVIRONMENT => "The environment is incorrect.",
        completion::ERROR_HANDLE_EOF => "Reached the end of the file.",
        completion::ERROR_HANDLE_DISK_FULL => "The disk is full.",
        completion::ERROR_NOT_SUPPORTED => "The request is not supported.",
        completion::ERROR_DISK_FULL => "There is not enough space on the disk.",
        completion::ERROR_OPERATION_ABORTED => {
            "The I/O operation has been aborted because of either a thread exit or an application request."
        }
        completion::ERROR_END_OF_MEDIA => "The physical end of the tape has been reached.",
        completion::ERROR_FILEMARK_DETECTED => "A tape access reached a filemark.",
        completion::ERROR_NO_DATA_DETECTED => "No more data is on the tape.",
        completion::ERROR_IO_DEVICE => "The request could not be performed because of an I/O device error.",
        completion::ERROR_EOM_OVERFLOW => "Physical end of tape encountered.",
        completion::ERROR_NO_SYSTEM_RESOURCES => {
            "Insufficient system resources exist to complete the requested service."
        }
        _ => "failed to retrieve text for this error. Reason: 15105",
    }
}

/// What went wrong at the operating-system (VDI) level, as SQL Server prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OsError {
    /// A Win32 completion code from the client (§2.5).
    Win32(u32),
    /// A VD_E_* result of a server API call (§2.1).
    Vdi(VdError),
    /// "The system cannot find the file specified": the set does not exist.
    NotFound,
}

impl fmt::Display for OsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OsError::Win32(code) => write!(f, "{code}({})", win32_text(*code)),
            OsError::Vdi(e) => write!(f, "0x{:08x}({})", e.hresult(), e.name()),
            OsError::NotFound => f.write_str("0x80070002(The system cannot find the file specified.)"),
        }
    }
}

/// 4035: "Processed N pages for database 'db', file 'file' on file 1."
pub fn processed_pages(pages: u64, db: &str, file: &str) -> Message {
    Message::info(
        tsql::MSG_PROCESSED_PAGES,
        format!("Processed {pages} pages for database '{db}', file '{file}' on file 1."),
    )
}

/// 3014: "BACKUP DATABASE successfully processed N pages in S seconds (R MB/sec)."
pub fn success(operation: &str, pages: u64, elapsed: Duration) -> Message {
    let secs = elapsed.as_secs_f64().max(0.001);
    let mb = pages as f64 * tsql::PAGE_SIZE as f64 / (1024.0 * 1024.0);
    Message::info(
        tsql::MSG_BACKUP_SUCCESS,
        format!(
            "{operation} successfully processed {pages} pages in {secs:.3} seconds ({:.3} MB/sec).",
            mb / secs
        ),
    )
}

/// 3211: "N percent processed."
pub fn percent(p: u32) -> Message {
    Message::info(MSG_PERCENT, format!("{p} percent processed."))
}

/// 3013: "BACKUP DATABASE is terminating abnormally."
pub fn terminating(operation: &str) -> Message {
    Message::error(tsql::MSG_TERMINATING, format!("{operation} is terminating abnormally."))
}

/// 3201: "Cannot open backup device 'x'. Operating system error …"
pub fn cannot_open(device: &str, os: OsError) -> Message {
    Message::error(
        tsql::MSG_BAD_DEVICE_NAME,
        format!("Cannot open backup device '{device}'. Operating system error {os}."),
    )
}

/// 3201 with vdisim's explanation instead of an OS error text.
pub fn cannot_open_because(device: &str, why: &str) -> Message {
    Message::error(
        tsql::MSG_BAD_DEVICE_NAME,
        format!("Cannot open backup device '{device}'. {why}"),
    )
}

/// 18210: "Context: what failure on backup device 'x'. Operating system error N(text)."
pub fn device_failure(context: &str, what: &str, device: &str, os: OsError) -> Message {
    Message::error(
        tsql::MSG_DEVICE_FAILURE,
        format!("{context}: {what} failure on backup device '{device}'. Operating system error {os}."),
    )
}

/// 18210 with vdisim's explanation instead of an OS error.
pub fn device_failure_because(context: &str, what: &str, device: &str, why: &str) -> Message {
    Message::error(
        tsql::MSG_DEVICE_FAILURE,
        format!("{context}: {what} failure on backup device '{device}'. {why}"),
    )
}

/// 911: "Database 'x' does not exist."
pub fn db_not_exist(db: &str) -> Message {
    Message::error(
        tsql::MSG_DB_NOT_EXIST,
        format!("Database '{db}' does not exist. Make sure that the name is entered correctly."),
    )
}

/// 1801: "Database 'x' already exists."
pub fn db_exists(db: &str) -> Message {
    Message::error(
        tsql::MSG_DB_EXISTS,
        format!("Database '{db}' already exists. Choose a different database name."),
    )
}

/// 3701: DROP DATABASE of a database that does not exist.
pub fn cannot_drop(db: &str) -> Message {
    Message::error(
        MSG_CANNOT_DROP,
        format!("Cannot drop the database '{db}', because it does not exist or you do not have permission."),
    )
}

/// 3154: RESTORE over another existing database without REPLACE.
pub fn needs_replace(db: &str, backup_of: &str) -> Message {
    Message::error(
        tsql::MSG_RESTORE_NEEDS_REPLACE,
        format!(
            "The backup set holds a backup of a database other than the existing '{db}' database \
             (it holds '{backup_of}'). Use WITH REPLACE to overwrite '{db}'."
        ),
    )
}

/// 3159: RESTORE over the same existing database without REPLACE.
pub fn tail_log(db: &str) -> Message {
    Message::error(
        MSG_TAIL_LOG,
        format!(
            "The tail of the log for the database \"{db}\" has not been backed up. Use BACKUP LOG WITH \
             NORECOVERY to backup the log if it contains work you do not want to lose. Use the WITH \
             REPLACE or WITH STOPAT clause of the RESTORE statement to just overwrite the contents of the log."
        ),
    )
}

/// 3135: the backup was made by the other kind of BACKUP.
pub fn wrong_kind(device: &str, created_by: &str) -> Message {
    Message::error(
        MSG_WRONG_KIND,
        format!("The backup set in file '{device}' was created by {created_by} and cannot be used for this restore operation."),
    )
}

/// 3132: fewer or more devices than the backup was written to.
pub fn families_mismatch(backup: u32, restore: u32) -> Message {
    let text = if restore < backup {
        format!(
            "The media set has {backup} media families but only {restore} are provided. All members must be provided."
        )
    } else {
        format!(
            "The media set has {backup} media families but {restore} devices are provided. RESTORE must name \
             exactly the devices the backup was written to."
        )
    };
    Message::error(MSG_FAMILIES_MISSING, text)
}

/// 3241: the media on a device cannot be used, and why.
pub fn bad_media_family(device: &str, why: &str) -> Message {
    Message::error(
        MSG_BAD_MEDIA_FAMILY,
        format!(
            "The media family on device '{device}' is incorrectly formed. SQL Server cannot process this media \
             family: {why}."
        ),
    )
}

/// 3189: the backup set is damaged, and where.
pub fn damage(device: &str, why: &str) -> Message {
    Message::error(
        MSG_DAMAGE,
        format!("Damage to the backup set was detected on device '{device}': {why}."),
    )
}

/// 3234: MOVE of a logical file the backup does not hold.
pub fn no_logical_file(file: &str, db: &str) -> Message {
    Message::error(
        MSG_NO_LOGICAL_FILE,
        format!(
            "Logical file '{file}' is not part of database '{db}'. Use RESTORE FILELISTONLY to list the logical file names."
        ),
    )
}

/// 3117: RESTORE LOG with nothing to roll forward.
pub fn no_rollforward(db: &str) -> Message {
    Message::error(
        MSG_NO_ROLLFORWARD,
        format!(
            "The log or differential backup cannot be restored because no files are ready to rollforward \
             (database '{db}' does not exist)."
        ),
    )
}

/// 50003: parsed but not carried out by vdisim.
pub fn not_supported(what: &str) -> Message {
    Message::error(MSG_NOT_SUPPORTED, format!("{what} is not supported by vdisim."))
}

/// Renders messages the way sqlcmd prints them, one per line.
pub fn render(messages: &[Message]) -> String {
    let mut out = String::new();
    for m in messages {
        out.push_str(&m.to_string());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_have_a_header_and_info_is_bare() {
        let e = terminating("BACKUP DATABASE").at_line(3);
        assert_eq!(
            e.to_string(),
            "Msg 3013, Level 16, State 1, Server vdisim, Line 3\nBACKUP DATABASE is terminating abnormally."
        );
        let i = processed_pages(8, "db", "db");
        assert!(!i.is_error());
        assert_eq!(
            i.to_string(),
            "Processed 8 pages for database 'db', file 'db' on file 1."
        );
    }

    #[test]
    fn os_errors_print_like_sql_server() {
        let m = device_failure(
            "BackupMedium::ReportIoError",
            "write",
            "set",
            OsError::Win32(completion::ERROR_DISK_FULL),
        );
        assert_eq!(m.number, 18210);
        assert!(m
            .text
            .ends_with("backup device 'set'. Operating system error 112(There is not enough space on the disk.)."));
        assert_eq!(OsError::Vdi(VdError::Timeout).to_string(), "0x80770003(VD_E_TIMEOUT)");
    }

    #[test]
    fn success_reports_rate() {
        let m = success("BACKUP DATABASE", 128, Duration::from_millis(500));
        assert_eq!(
            m.text,
            "BACKUP DATABASE successfully processed 128 pages in 0.500 seconds (2.000 MB/sec)."
        );
    }
}
