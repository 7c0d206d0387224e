//! Parser for the T-SQL subset that vdisim's simulated SQL Server accepts.
//!
//! Supported statements (keywords are case-insensitive):
//!
//! * `CREATE DATABASE name [ (SIZE = n [KB|MB|GB|TB]) ]`, and the real form
//!   `CREATE DATABASE name ON [PRIMARY] (NAME = x, FILENAME = 'y', SIZE = n, ...) [, (...)] [LOG ON (...)]`;
//! * `DROP DATABASE name`;
//! * `BACKUP DATABASE|LOG name TO VIRTUAL_DEVICE = 'a' [, ...] [WITH ...]` (SPEC §3.1, §3.3);
//! * `RESTORE DATABASE|LOG name FROM VIRTUAL_DEVICE = 'a' [, ...] [WITH ...]` (SPEC §3.2).
//!
//! Problems are reported as SQL Server-style [`SqlError`]s. The module does no I/O, never
//! panics, and runs in time linear in the input (the lexer is pulled lazily by the parser,
//! so the first error by position is the one reported).
//!
//! Line numbers count `\n` over the whole text given to [`parse_batch`] / [`parse_statement`]
//! (a `GO` line does not restart them). Errors found while parsing (102, 105, 113 and 1034 at
//! level 15, and the level-16 unsupported-device error) carry the line of the offending token;
//! errors found by validating a parsed statement (level 16: limits, names, devices) carry the
//! line where the statement starts, as SQL Server does for errors raised after parsing.

use serde::Serialize;
use std::collections::HashSet;

// ---------------------------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------------------------

/// Most backup devices one BACKUP/RESTORE may name (SQL Server's limit; Msg 3205).
pub const MAX_DEVICES: usize = 64;
/// Smallest BLOCKSIZE in bytes (SPEC §2.6: a power of 2, 512 B–64 KB).
pub const MIN_BLOCKSIZE: u32 = 512;
/// Largest BLOCKSIZE in bytes (SPEC §2.6).
pub const MAX_BLOCKSIZE: u32 = 65536;
/// BLOCKSIZE used when the statement names none (SPEC §2.6).
pub const DEFAULT_BLOCKSIZE: u32 = 512;
/// MAXTRANSFERSIZE must be a multiple of this, and at least this (SPEC §2.6: 64 KB).
pub const MAXTRANSFERSIZE_UNIT: u32 = 65536;
/// MAXTRANSFERSIZE used when the statement names none (SPEC §2.6: 64 KB).
pub const DEFAULT_MAXTRANSFERSIZE: u32 = 65536;
/// Largest MAXTRANSFERSIZE in bytes (SPEC §2.6: 4 MB).
pub const MAX_MAXTRANSFERSIZE: u32 = 4 * 1024 * 1024;
/// Largest BUFFERCOUNT vdisim accepts (vdisim's own cap; SQL Server documents none).
pub const MAX_BUFFERCOUNT: u32 = 4096;
/// Cap on `BUFFERCOUNT * MAXTRANSFERSIZE`, the buffer memory of one operation (SPEC §2.6
/// says buffers are MAXTRANSFERSIZE each and shared by all devices); vdisim's own 2 GiB cap.
pub const MAX_BUFFER_MEMORY: u64 = 2 * 1024 * 1024 * 1024;
/// Longest database or device name, in UTF-16 code units (`sysname` is `nvarchar(128)`).
pub const MAX_NAME_LEN: usize = 128;
/// Percentage used by a bare `STATS` (SQL Server's default).
pub const DEFAULT_STATS: u32 = 10;
/// Database page size in bytes, the unit of SQL Server's file-size limit.
pub const PAGE_SIZE: u64 = 8192;
/// Largest database file, in pages (Msg 1842).
pub const MAX_FILE_PAGES: u64 = 2_147_483_647;

/// Severity of parse-time errors (syntax), as SQL Server reports them.
pub const LEVEL_SYNTAX: u8 = 15;
/// Severity of ordinary user errors.
pub const LEVEL_ERROR: u8 = 16;

// ---------------------------------------------------------------------------------------------
// Message numbers
// ---------------------------------------------------------------------------------------------

/// "Incorrect syntax near '…'." (level 15).
pub const MSG_SYNTAX: u32 = 102;
/// "Unclosed quotation mark after the character string '…'." (level 15); also for an
/// unclosed `[` or `"` identifier, as SQL Server does.
pub const MSG_UNCLOSED_QUOTE: u32 = 105;
/// "Missing end comment mark '*/'." (level 15), SQL Server's error for an unterminated `/*`.
pub const MSG_MISSING_END_COMMENT: u32 = 113;
/// "Syntax error: Duplicate specification of the action "…" in the … statement." (level 15).
pub const MSG_DUPLICATE_OPTION: u32 = 1034;
/// A CREATE DATABASE file SIZE above 2147483647 pages.
pub const MSG_FILE_SIZE_TOO_LARGE: u32 = 1842;
/// BLOCKSIZE not a power of 2 in 512..=65536 (SPEC §2.6).
pub const MSG_BAD_BLOCKSIZE: u32 = 3068;
/// MAXTRANSFERSIZE not a multiple of 64 KB in 64 KB..=4 MB (SPEC §2.6).
pub const MSG_BAD_MAXTRANSFERSIZE: u32 = 3069;
/// STATS outside 1..=100 (vdisim's wording).
pub const MSG_BAD_STATS: u32 = 3200;
/// "Cannot open backup device '…'. Operating system error 123(…)." for a bad device name.
pub const MSG_BAD_DEVICE_NAME: u32 = 3201;
/// More than [`MAX_DEVICES`] devices.
pub const MSG_TOO_MANY_DEVICES: u32 = 3205;
/// The same virtual device named twice (vdisim's wording; SQL Server's exact text is unknown).
pub const MSG_DUPLICATE_DEVICE: u32 = 3209;
/// BUFFERCOUNT outside 1..=[`MAX_BUFFERCOUNT`] or buffer memory above [`MAX_BUFFER_MEMORY`].
pub const MSG_BAD_BUFFERCOUNT: u32 = 3213;
/// "Invalid database name '…'." — vdisim's own number and wording.
pub const MSG_BAD_DATABASE_NAME: u32 = 15100;
/// A DISK/TAPE/URL or logical backup device: vdisim supports only VIRTUAL_DEVICE. vdisim's
/// own number, in the user range (>= 50000) so it cannot be mistaken for a SQL Server one.
pub const MSG_UNSUPPORTED_DEVICE_TYPE: u32 = 50001;
/// BACKUP WITH SNAPSHOT naming other than exactly one device (SPEC §3.7). vdisim's own.
pub const MSG_SNAPSHOT_DEVICE_COUNT: u32 = 50002;

/// "BACKUP DATABASE successfully processed …" (for the engine; unused here).
pub const MSG_BACKUP_SUCCESS: u32 = 3014;
/// "RESTORE DATABASE successfully processed …" (same number as backup; for the engine).
pub const MSG_RESTORE_SUCCESS: u32 = 3014;
/// "BACKUP/RESTORE DATABASE is terminating abnormally." (for the engine).
pub const MSG_TERMINATING: u32 = 3013;
/// "… failure on backup device … Operating system error …" (for the engine; SPEC §3.6).
pub const MSG_DEVICE_FAILURE: u32 = 18210;
/// "Processed N pages for database …" (for the engine).
pub const MSG_PROCESSED_PAGES: u32 = 4035;
/// "Database '…' already exists." (for the engine).
pub const MSG_DB_EXISTS: u32 = 1801;
/// "Database '…' does not exist." (for the engine).
pub const MSG_DB_NOT_EXIST: u32 = 911;
/// "The backup set holds a backup of a database other than the existing …" (for the engine).
pub const MSG_RESTORE_NEEDS_REPLACE: u32 = 3154;

/// Longest token or literal text quoted inside a syntax-error message; longer ones are cut
/// and end in "...", so a huge literal cannot produce a huge message.
const MAX_SHOWN: usize = 128;

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

/// A SQL Server-style error message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[error("Msg {number}, Level {severity}, State {state}, Server vdisim, Line {line}\n{message}")]
pub struct SqlError {
    /// Message number (see the `MSG_*` constants).
    pub number: u32,
    /// Severity level: 15 for syntax errors, 16 for user errors.
    pub severity: u8,
    /// State; always 1 from this module.
    pub state: u8,
    /// 1-based line (see the module docs for which line).
    pub line: u32,
    /// Message text.
    pub message: String,
}

impl SqlError {
    /// An error with state 1 and line 1.
    pub fn new(number: u32, severity: u8, message: impl Into<String>) -> Self {
        SqlError {
            number,
            severity,
            state: 1,
            line: 1,
            message: message.into(),
        }
    }

    /// The same error reported at `line`.
    #[must_use]
    pub fn at_line(mut self, line: u32) -> Self {
        self.line = line;
        self
    }

    /// The same error with another state.
    #[must_use]
    pub fn with_state(mut self, state: u8) -> Self {
        self.state = state;
        self
    }
}

/// One parsed statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Statement {
    /// `CREATE DATABASE`.
    CreateDatabase(CreateDatabase),
    /// `BACKUP DATABASE|LOG`.
    Backup(Backup),
    /// `RESTORE DATABASE|LOG`.
    Restore(Restore),
    /// `DROP DATABASE name`.
    DropDatabase {
        /// The database to drop.
        name: String,
    },
}

impl Statement {
    /// The database the statement is about.
    pub fn database(&self) -> &str {
        match self {
            Statement::CreateDatabase(c) => &c.name,
            Statement::Backup(b) => &b.database,
            Statement::Restore(r) => &r.database,
            Statement::DropDatabase { name } => name,
        }
    }
}

/// `CREATE DATABASE name ...`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreateDatabase {
    /// Database name.
    pub name: String,
    /// Sum of the SIZEs of the data files (log files excluded) in bytes; `None` when no data
    /// file has a SIZE. A SIZE without a unit is in MB, as in SQL Server.
    pub size_bytes: Option<u64>,
}

/// What a BACKUP/RESTORE copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum BackupKind {
    /// `BACKUP DATABASE` / `RESTORE DATABASE`.
    Database,
    /// `BACKUP LOG` / `RESTORE LOG`.
    Log,
}

/// `BACKUP DATABASE|LOG name TO VIRTUAL_DEVICE = ... [WITH ...]` (SPEC §3.1, §3.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Backup {
    /// DATABASE or LOG.
    pub kind: BackupKind,
    /// Database name.
    pub database: String,
    /// Virtual device names in statement order; the first is the set name (SPEC §3.3).
    pub devices: Vec<String>,
    /// The WITH options.
    pub options: BackupOptions,
}

/// WITH options of a BACKUP. Options that are accepted but ignored (NAME, SKIP, NOSKIP,
/// REWIND, NOREWIND, UNLOAD, NOUNLOAD) are not recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BackupOptions {
    /// BLOCKSIZE, validated (SPEC §2.6).
    pub blocksize: Option<u32>,
    /// BUFFERCOUNT, validated.
    pub buffercount: Option<u32>,
    /// MAXTRANSFERSIZE, validated (SPEC §2.6).
    pub maxtransfersize: Option<u32>,
    /// FORMAT (NOFORMAT: false). FORMAT does not imply `init` here.
    pub format: bool,
    /// INIT (NOINIT: false).
    pub init: bool,
    /// COPY_ONLY.
    pub copy_only: bool,
    /// CHECKSUM (NO_CHECKSUM: false).
    pub checksum: bool,
    /// SNAPSHOT (SPEC §3.7); requires exactly one device.
    pub snapshot: bool,
    /// STATS percentage, 1..=100; a bare STATS is [`DEFAULT_STATS`].
    pub stats: Option<u32>,
    /// DESCRIPTION text.
    pub description: Option<String>,
}

/// `RESTORE DATABASE|LOG name FROM VIRTUAL_DEVICE = ... [WITH ...]` (SPEC §3.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Restore {
    /// DATABASE or LOG.
    pub kind: BackupKind,
    /// Database name.
    pub database: String,
    /// Virtual device names in statement order.
    pub devices: Vec<String>,
    /// The WITH options.
    pub options: RestoreOptions,
}

/// WITH options of a RESTORE. Options that are accepted but ignored (FILE, NAME, SKIP,
/// NOSKIP, REWIND, NOREWIND, UNLOAD, NOUNLOAD) are not recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RestoreOptions {
    /// BLOCKSIZE, validated; must match the backup's (SPEC §2.6).
    pub blocksize: Option<u32>,
    /// BUFFERCOUNT, validated.
    pub buffercount: Option<u32>,
    /// MAXTRANSFERSIZE, validated (SPEC §2.6).
    pub maxtransfersize: Option<u32>,
    /// REPLACE.
    pub replace: bool,
    /// RECOVERY (the default, true); NORECOVERY sets false.
    pub recovery: bool,
    /// CHECKSUM (NO_CHECKSUM: false).
    pub checksum: bool,
    /// STATS percentage, 1..=100; a bare STATS is [`DEFAULT_STATS`].
    pub stats: Option<u32>,
    /// `MOVE 'logical' TO 'path'` pairs, in statement order.
    pub moves: Vec<(String, String)>,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        RestoreOptions {
            blocksize: None,
            buffercount: None,
            maxtransfersize: None,
            replace: false,
            recovery: true,
            checksum: false,
            stats: None,
            moves: Vec::new(),
        }
    }
}

/// BUFFERCOUNT used when a statement names none, for `devices` devices: `2 * devices + 2`.
///
/// SQL Server's own default depends on device and database-file counts and is not
/// documented; vdisim gives each device two buffers (one filling while the other is with the
/// client) plus two spares, since buffers are shared by all devices (SPEC §2.6, §3.3).
/// With at most [`MAX_DEVICES`] devices this is at most 130. Saturates instead of overflowing.
pub fn default_buffercount(devices: usize) -> u32 {
    u32::try_from(devices)
        .unwrap_or(u32::MAX)
        .saturating_mul(2)
        .saturating_add(2)
}

impl Backup {
    /// BLOCKSIZE, or [`DEFAULT_BLOCKSIZE`] (SPEC §2.6).
    pub fn effective_blocksize(&self) -> u32 {
        self.options.blocksize.unwrap_or(DEFAULT_BLOCKSIZE)
    }
    /// MAXTRANSFERSIZE, or [`DEFAULT_MAXTRANSFERSIZE`] (SPEC §2.6).
    pub fn effective_maxtransfersize(&self) -> u32 {
        self.options.maxtransfersize.unwrap_or(DEFAULT_MAXTRANSFERSIZE)
    }
    /// BUFFERCOUNT, or [`default_buffercount`] of the device count.
    pub fn effective_buffercount(&self) -> u32 {
        self.options
            .buffercount
            .unwrap_or_else(|| default_buffercount(self.devices.len()))
    }
}

impl Restore {
    /// BLOCKSIZE, or [`DEFAULT_BLOCKSIZE`] (SPEC §2.6).
    pub fn effective_blocksize(&self) -> u32 {
        self.options.blocksize.unwrap_or(DEFAULT_BLOCKSIZE)
    }
    /// MAXTRANSFERSIZE, or [`DEFAULT_MAXTRANSFERSIZE`] (SPEC §2.6).
    pub fn effective_maxtransfersize(&self) -> u32 {
        self.options.maxtransfersize.unwrap_or(DEFAULT_MAXTRANSFERSIZE)
    }
    /// BUFFERCOUNT, or [`default_buffercount`] of the device count.
    pub fn effective_buffercount(&self) -> u32 {
        self.options
            .buffercount
            .unwrap_or_else(|| default_buffercount(self.devices.len()))
    }
}

/// Checks a database or device name.
///
/// `kind` is `"device"` (or `"virtual_device"`) for backup devices, anything else (normally
/// `"database"`) for database-like names. A name is invalid when empty, longer than
/// [`MAX_NAME_LEN`] UTF-16 code units, or containing `/`, `\`, NUL or another control
/// character. Device errors are Msg 3201 (OS error 123, as SQL Server reports unusable
/// device names); other errors are vdisim's Msg 15100 `Invalid <kind> name '<name>'.`.
/// The error's line is 1; callers set their own with [`SqlError::at_line`].
pub fn validate_name(kind: &str, name: &str) -> Result<(), SqlError> {
    let bad = name.is_empty()
        || name.encode_utf16().nth(MAX_NAME_LEN).is_some()
        || name.chars().any(|c| c == '/' || c == '\\' || c.is_control());
    if !bad {
        return Ok(());
    }
    let is_device = ["device", "virtual_device", "virtual device"]
        .iter()
        .any(|k| kind.eq_ignore_ascii_case(k));
    if is_device {
        Err(SqlError::new(
            MSG_BAD_DEVICE_NAME,
            LEVEL_ERROR,
            format!(
                "Cannot open backup device '{name}'. Operating system error 123(The filename, \
                 directory name, or volume label syntax is incorrect.)."
            ),
        ))
    } else {
        Err(SqlError::new(
            MSG_BAD_DATABASE_NAME,
            LEVEL_ERROR,
            format!("Invalid {kind} name '{name}'."),
        ))
    }
}

/// Parses a batch: statements separated by `;`, by lines holding only `GO`
/// (case-insensitive, optionally followed by a `--` comment), or by nothing (T-SQL does not
/// require separators). An empty batch gives `Ok(vec![])`. Stops at the first error.
pub fn parse_batch(sql: &str) -> Result<Vec<Statement>, SqlError> {
    let mut p = Parser::new(sql);
    let mut out = Vec::new();
    loop {
        match p.peek()?.kind {
            Kind::Eof => return Ok(out),
            Kind::Go | Kind::Punct(';') => {
                p.advance()?;
            }
            _ => out.push(p.statement()?),
        }
    }
}

/// Like [`parse_batch`], with the line each statement starts on (for errors the engine raises
/// while executing it, which SQL Server reports at the statement's first line).
pub fn parse_batch_lines(sql: &str) -> Result<Vec<(u32, Statement)>, SqlError> {
    let mut p = Parser::new(sql);
    let mut out = Vec::new();
    loop {
        let (kind, line) = {
            let t = p.peek()?;
            (t.kind, t.line)
        };
        match kind {
            Kind::Eof => return Ok(out),
            Kind::Go | Kind::Punct(';') => {
                p.advance()?;
            }
            _ => out.push((line, p.statement()?)),
        }
    }
}

/// Parses exactly one statement, with an optional trailing `;`. Anything else, including an
/// empty input or a `GO` line, is a syntax error.
pub fn parse_statement(sql: &str) -> Result<Statement, SqlError> {
    let mut p = Parser::new(sql);
    let st = p.statement()?;
    p.eat_punct(';')?;
    let t = p.peek()?;
    if t.kind != Kind::Eof {
        return Err(syntax_error(&shown(&t.text), t.line));
    }
    Ok(st)
}

// ---------------------------------------------------------------------------------------------
// Error helpers
// ---------------------------------------------------------------------------------------------

/// `s`, cut to [`MAX_SHOWN`] characters plus "..." when longer.
fn shown(s: &str) -> String {
    match s.char_indices().nth(MAX_SHOWN) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

fn syntax_error(near: &str, line: u32) -> SqlError {
    SqlError::new(MSG_SYNTAX, LEVEL_SYNTAX, format!("Incorrect syntax near '{near}'.")).at_line(line)
}

fn duplicate_option(option: &str, statement: &str, line: u32) -> SqlError {
    SqlError::new(
        MSG_DUPLICATE_OPTION,
        LEVEL_SYNTAX,
        format!(
            "Syntax error: Duplicate specification of the action \"{option}\" in the \
             {statement} statement."
        ),
    )
    .at_line(line)
}

fn unsupported_device(what: &str, line: u32) -> SqlError {
    SqlError::new(
        MSG_UNSUPPORTED_DEVICE_TYPE,
        LEVEL_ERROR,
        format!(
            "vdisim supports only VIRTUAL_DEVICE backup devices; {what} is not supported. \
             Use VIRTUAL_DEVICE = '<name>'."
        ),
    )
    .at_line(line)
}

// ---------------------------------------------------------------------------------------------
// Lexer
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Bare identifier or keyword; text as written.
    Word,
    /// `[..]` or `".."` identifier; text unescaped.
    QuotedIdent,
    /// `'..'` or `N'..'` literal; text unescaped.
    Str,
    /// Digits, possibly with a `.` fraction; text as written.
    Num,
    /// `@name`; never valid here.
    Var,
    /// Any other single character.
    Punct(char),
    /// A line holding only GO.
    Go,
    Eof,
}

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    text: String,
    line: u32,
}

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == '#'
}

fn is_ident_continue(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '#' | '$' | '@')
}

struct Lexer<'a> {
    src: &'a str,
    /// Byte offset; always on a char boundary.
    pos: usize,
    line: u32,
    /// Whether a token or comment already appeared on the current line (for GO).
    line_has_content: bool,
}

impl<'a> Lexer<'a> {
    fn new(src: &'a str) -> Self {
        Lexer {
            src,
            pos: 0,
            line: 1,
            line_has_content: false,
        }
    }

    fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn peek_char(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek_char2(&self) -> Option<char> {
        let mut it = self.rest().chars();
        it.next();
        it.next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek_char()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line = self.line.saturating_add(1);
            self.line_has_content = false;
        }
        Some(c)
    }

    fn bump_while(&mut self, f: impl Fn(char) -> bool) {
        while let Some(c) = self.peek_char() {
            if !f(c) {
                break;
            }
            self.bump();
        }
    }

    /// Skips whitespace and comments.
    fn skip_trivia(&mut self) -> Result<(), SqlError> {
        loop {
            match self.peek_char() {
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                Some('-') if self.peek_char2() == Some('-') => self.bump_while(|c| c != '\n'),
                Some('/') if self.peek_char2() == Some('*') => {
                    // T-SQL block comments nest.
                    let line = self.line;
                    self.bump();
                    self.bump();
                    let mut depth: usize = 1;
                    while depth > 0 {
                        match self.bump() {
                            None => {
                                return Err(SqlError::new(
                                    MSG_MISSING_END_COMMENT,
                                    LEVEL_SYNTAX,
                                    "Missing end comment mark '*/'.",
                                )
                                .at_line(line))
                            }
                            Some('*') if self.peek_char() == Some('/') => {
                                self.bump();
                                depth -= 1;
                            }
                            Some('/') if self.peek_char() == Some('*') => {
                                self.bump();
                                depth = depth.saturating_add(1);
                            }
                            Some(_) => {}
                        }
                    }
                    self.line_has_content = true;
                }
                _ => return Ok(()),
            }
        }
    }

    /// After the opening quote: reads up to `close`, where a doubled `close` stands for one.
    fn quoted(&mut self, close: char, line: u32) -> Result<String, SqlError> {
        let start = self.pos;
        let mut out = String::new();
        loop {
            match self.bump() {
                None => {
                    let raw = self.src.get(start..).unwrap_or("");
                    return Err(SqlError::new(
                        MSG_UNCLOSED_QUOTE,
                        LEVEL_SYNTAX,
                        format!("Unclosed quotation mark after the character string '{}'.", shown(raw)),
                    )
                    .at_line(line));
                }
                Some(c) if c == close => {
                    if self.peek_char() == Some(close) {
                        self.bump();
                        out.push(close);
                    } else {
                        return Ok(out);
                    }
                }
                Some(c) => out.push(c),
            }
        }
    }

    /// Whether only blanks or a `--` comment remain on the current line.
    fn rest_of_line_blank(&self) -> bool {
        let mut it = self.rest().chars().peekable();
        while let Some(c) = it.next() {
            match c {
                '\n' => return true,
                '-' if it.peek() == Some(&'-') => return true,
                c if c.is_whitespace() => {}
                _ => return false,
            }
        }
        true
    }

    fn next_token(&mut self) -> Result<Token, SqlError> {
        self.skip_trivia()?;
        let line = self.line;
        let first_on_line = !self.line_has_content;
        let start = self.pos;
        let Some(c) = self.peek_char() else {
            return Ok(Token {
                kind: Kind::Eof,
                text: String::new(),
                line,
            });
        };
        self.line_has_content = true;
        let tok = |kind, text| Token { kind, text, line };
        match c {
            '\'' => {
                self.bump();
                Ok(tok(Kind::Str, self.quoted('\'', line)?))
            }
            'N' | 'n' if self.peek_char2() == Some('\'') => {
                self.bump();
                self.bump();
                Ok(tok(Kind::Str, self.quoted('\'', line)?))
            }
            '[' => {
                self.bump();
                Ok(tok(Kind::QuotedIdent, self.quoted(']', line)?))
            }
            '"' => {
                self.bump();
                Ok(tok(Kind::QuotedIdent, self.quoted('"', line)?))
            }
            c if c.is_ascii_digit() => {
                self.bump_while(|c| c.is_ascii_digit());
                if self.peek_char() == Some('.') {
                    self.bump();
                    self.bump_while(|c| c.is_ascii_digit());
                }
                Ok(tok(Kind::Num, self.src[start..self.pos].to_string()))
            }
            '@' => {
                self.bump();
                self.bump_while(is_ident_continue);
                Ok(tok(Kind::Var, self.src[start..self.pos].to_string()))
            }
            c if is_ident_start(c) => {
                self.bump_while(is_ident_continue);
                let text = &self.src[start..self.pos];
                let kind = if first_on_line && text.eq_ignore_ascii_case("GO") && self.rest_of_line_blank() {
                    Kind::Go
                } else {
                    Kind::Word
                };
                Ok(tok(kind, text.to_string()))
            }
            c => {
                self.bump();
                Ok(tok(Kind::Punct(c), c.to_string()))
            }
        }
    }
}

/// T-SQL reserved keywords (sorted, upper case); they cannot be bare names.
#[rustfmt::skip]
const RESERVED: &[&str] = &[
    "ADD", "ALL", "ALTER", "AND", "ANY", "AS", "ASC", "AUTHORIZATION", "BACKUP", "BEGIN",
    "BETWEEN", "BREAK", "BROWSE", "BULK", "BY", "CASCADE", "CASE", "CHECK", "CHECKPOINT", "CLOSE",
    "CLUSTERED", "COALESCE", "COLLATE", "COLUMN", "COMMIT", "COMPUTE", "CONSTRAINT", "CONTAINS",
    "CONTAINSTABLE", "CONTINUE", "CONVERT", "CREATE", "CROSS", "CURRENT", "CURRENT_DATE",
    "CURRENT_TIME", "CURRENT_TIMESTAMP", "CURRENT_USER", "CURSOR", "DATABASE", "DBCC",
    "DEALLOCATE", "DECLARE", "DEFAULT", "DELETE", "DENY", "DESC", "DISK", "DISTINCT",
    "DISTRIBUTED", "DOUBLE", "DROP", "DUMP", "ELSE", "END", "ERRLVL", "ESCAPE", "EXCEPT", "EXEC",
    "EXECUTE", "EXISTS", "EXIT", "EXTERNAL", "FETCH", "FILE", "FILLFACTOR", "FOR", "FOREIGN",
    "FREETEXT", "FREETEXTTABLE", "FROM", "FULL", "FUNCTION", "GOTO", "GRANT", "GROUP", "HAVING",
    "HOLDLOCK", "IDENTITY", "IDENTITYCOL", "IDENTITY_INSERT", "IF", "IN", "INDEX", "INNER",
    "INSERT", "INTERSECT", "INTO", "IS", "JOIN", "KEY", "KILL", "LEFT", "LIKE", "LINENO", "LOAD",
    "MERGE", "NATIONAL", "NOCHECK", "NONCLUSTERED", "NOT", "NULL", "NULLIF", "OF", "OFF",
    "OFFSETS", "ON", "OPEN", "OPENDATASOURCE", "OPENQUERY", "OPENROWSET", "OPENXML", "OPTION",
    "OR", "ORDER", "OUTER", "OVER", "PERCENT", "PIVOT", "PLAN", "PRECISION", "PRIMARY", "PRINT",
    "PROC", "PROCEDURE", "PUBLIC", "RAISERROR", "READ", "READTEXT", "RECONFIGURE", "REFERENCES",
    "REPLICATION", "RESTORE", "RESTRICT", "RETURN", "REVERT", "REVOKE", "RIGHT", "ROLLBACK",
    "ROWCOUNT", "ROWGUIDCOL", "RULE", "SAVE", "SCHEMA", "SECURITYAUDIT", "SELECT",
    "SEMANTICKEYPHRASETABLE", "SEMANTICSIMILARITYDETAILSTABLE", "SEMANTICSIMILARITYTABLE",
    "SESSION_USER", "SET", "SETUSER", "SHUTDOWN", "SOME", "STATISTICS", "SYSTEM_USER", "TABLE",
    "TABLESAMPLE", "TEXTSIZE", "THEN", "TO", "TOP", "TRAN", "TRANSACTION", "TRIGGER", "TRUNCATE",
    "TRY_CONVERT", "TSEQUAL", "UNION", "UNIQUE", "UNPIVOT", "UPDATE", "UPDATETEXT", "USE", "USER",
    "VALUES", "VARYING", "VIEW", "WAITFOR", "WHEN", "WHERE", "WHILE", "WITH", "WRITETEXT",
];

fn is_reserved(word: &str) -> bool {
    // No keyword is longer than 30 bytes; skip the upper-casing for long words.
    word.len() <= 32 && RESERVED.binary_search(&word.to_ascii_uppercase().as_str()).is_ok()
}

// ---------------------------------------------------------------------------------------------
// Parser
// ---------------------------------------------------------------------------------------------

/// An integer literal as written: `value` is `None` when negative or beyond `u64`.
#[derive(Debug, Clone)]
struct NumLit {
    value: Option<u64>,
    text: String,
}

impl NumLit {
    fn shown(&self) -> String {
        match self.value {
            Some(v) => v.to_string(),
            None => shown(&self.text),
        }
    }

    fn in_range(&self, lo: u32, hi: u32) -> Option<u32> {
        self.value
            .and_then(|v| u32::try_from(v).ok())
            .filter(|v| (lo..=hi).contains(v))
    }
}

/// A `SIZE`-like value: number times unit multiplier.
#[derive(Debug, Clone)]
struct RawSize {
    num: NumLit,
    multiplier: u64,
    unit: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Backup,
    Restore,
}

impl Op {
    fn keyword(self) -> &'static str {
        match self {
            Op::Backup => "BACKUP",
            Op::Restore => "RESTORE",
        }
    }
}

/// Slots for duplicate detection; each family (e.g. INIT/NOINIT) shares one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Blocksize,
    Buffercount,
    Maxtransfersize,
    Format,
    Init,
    CopyOnly,
    Checksum,
    Snapshot,
    Stats,
    Description,
    Name,
    Skip,
    Rewind,
    Unload,
    Replace,
    Recovery,
    File,
    /// MOVE may be repeated.
    Move,
}

fn option_slot(upper: &str, op: Op) -> Option<Slot> {
    let common = match upper {
        "BLOCKSIZE" => Some(Slot::Blocksize),
        "BUFFERCOUNT" => Some(Slot::Buffercount),
        "MAXTRANSFERSIZE" => Some(Slot::Maxtransfersize),
        "CHECKSUM" | "NO_CHECKSUM" => Some(Slot::Checksum),
        "STATS" => Some(Slot::Stats),
        "NAME" => Some(Slot::Name),
        "SKIP" | "NOSKIP" => Some(Slot::Skip),
        "REWIND" | "NOREWIND" => Some(Slot::Rewind),
        "UNLOAD" | "NOUNLOAD" => Some(Slot::Unload),
        _ => None,
    };
    common.or(match (op, upper) {
        (Op::Backup, "FORMAT" | "NOFORMAT") => Some(Slot::Format),
        (Op::Backup, "INIT" | "NOINIT") => Some(Slot::Init),
        (Op::Backup, "COPY_ONLY") => Some(Slot::CopyOnly),
        (Op::Backup, "SNAPSHOT") => Some(Slot::Snapshot),
        (Op::Backup, "DESCRIPTION") => Some(Slot::Description),
        (Op::Restore, "REPLACE") => Some(Slot::Replace),
        (Op::Restore, "RECOVERY" | "NORECOVERY") => Some(Slot::Recovery),
        (Op::Restore, "FILE") => Some(Slot::File),
        (Op::Restore, "MOVE") => Some(Slot::Move),
        _ => None,
    })
}

/// WITH options before validation.
#[derive(Debug, Clone)]
struct RawOptions {
    blocksize: Option<NumLit>,
    buffercount: Option<NumLit>,
    maxtransfersize: Option<NumLit>,
    stats: Option<NumLit>,
    format: bool,
    init: bool,
    copy_only: bool,
    checksum: bool,
    snapshot: bool,
    description: Option<String>,
    replace: bool,
    recovery: bool,
    moves: Vec<(String, String)>,
}

impl Default for RawOptions {
    fn default() -> Self {
        RawOptions {
            blocksize: None,
            buffercount: None,
            maxtransfersize: None,
            stats: None,
            format: false,
            init: false,
            copy_only: false,
            checksum: false,
            snapshot: false,
            description: None,
            replace: false,
            recovery: true,
            moves: Vec::new(),
        }
    }
}

/// Validated transfer options shared by BACKUP and RESTORE.
struct Transfer {
    blocksize: Option<u32>,
    buffercount: Option<u32>,
    maxtransfersize: Option<u32>,
    stats: Option<u32>,
}

struct Parser<'a> {
    lx: Lexer<'a>,
    peeked: Option<Token>,
    /// Display text and line of the last consumed token, for "unexpected end" errors.
    prev: Option<(String, u32)>,
}

impl<'a> Parser<'a> {
    fn new(sql: &'a str) -> Self {
        Parser {
            lx: Lexer::new(sql),
            peeked: None,
            prev: None,
        }
    }

    fn peek(&mut self) -> Result<&Token, SqlError> {
        let t = match self.peeked.take() {
            Some(t) => t,
            None => self.lx.next_token()?,
        };
        Ok(self.peeked.insert(t))
    }

    fn advance(&mut self) -> Result<Token, SqlError> {
        let t = match self.peeked.take() {
            Some(t) => t,
            None => self.lx.next_token()?,
        };
        if t.kind != Kind::Eof {
            self.prev = Some((shown(&t.text), t.line));
        }
        Ok(t)
    }

    /// Msg 102 for the next token; at the end of the input or batch, for the last token.
    fn unexpected(&mut self) -> SqlError {
        let (kind, text, line) = match self.peek() {
            Ok(t) => (t.kind, shown(&t.text), t.line),
            Err(e) => return e,
        };
        match (kind, &self.prev) {
            (Kind::Eof | Kind::Go, Some((p, l))) => syntax_error(p, *l),
            (Kind::Eof | Kind::Go, None) => syntax_error("", line),
            _ => syntax_error(&text, line),
        }
    }

    fn at_kw(&mut self, kw: &str) -> Result<bool, SqlError> {
        let t = self.peek()?;
        Ok(t.kind == Kind::Word && t.text.eq_ignore_ascii_case(kw))
    }

    fn eat_kw(&mut self, kw: &str) -> Result<bool, SqlError> {
        if self.at_kw(kw)? {
            self.advance()?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), SqlError> {
        if self.eat_kw(kw)? {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn eat_punct(&mut self, c: char) -> Result<bool, SqlError> {
        if self.peek()?.kind == Kind::Punct(c) {
            self.advance()?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    fn expect_punct(&mut self, c: char) -> Result<(), SqlError> {
        if self.eat_punct(c)? {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn string_lit(&mut self) -> Result<String, SqlError> {
        if self.peek()?.kind == Kind::Str {
            Ok(self.advance()?.text)
        } else {
            Err(self.unexpected())
        }
    }

    /// A database or logical file name: a non-reserved bare word or a quoted identifier.
    fn name(&mut self) -> Result<String, SqlError> {
        let t = self.peek()?;
        let ok = match t.kind {
            Kind::QuotedIdent => true,
            Kind::Word => !is_reserved(&t.text),
            _ => false,
        };
        if ok {
            Ok(self.advance()?.text)
        } else {
            Err(self.unexpected())
        }
    }

    /// An integer literal, optionally signed (`allow_sign`). Variables are syntax errors.
    fn integer(&mut self, allow_sign: bool) -> Result<NumLit, SqlError> {
        let mut negative = false;
        if allow_sign {
            if self.eat_punct('-')? {
                negative = true;
            } else {
                self.eat_punct('+')?;
            }
        }
        let t = self.peek()?;
        if t.kind != Kind::Num || t.text.contains('.') {
            return Err(self.unexpected());
        }
        let text = self.advance()?.text;
        let value = text.parse::<u64>().ok();
        Ok(if negative {
            NumLit {
                value: value.filter(|v| *v == 0),
                text: format!("-{text}"),
            }
        } else {
            NumLit { value, text }
        })
    }

    fn statement(&mut self) -> Result<Statement, SqlError> {
        let line = self.peek()?.line;
        if self.eat_kw("CREATE")? {
            self.expect_kw("DATABASE")?;
            self.create_database(line)
        } else if self.eat_kw("DROP")? {
            self.expect_kw("DATABASE")?;
            let name = self.name()?;
            validate_name("database", &name).map_err(|e| e.at_line(line))?;
            Ok(Statement::DropDatabase { name })
        } else if self.eat_kw("BACKUP")? {
            self.backup_restore(Op::Backup, line)
        } else if self.eat_kw("RESTORE")? {
            self.backup_restore(Op::Restore, line)
        } else {
            Err(self.unexpected())
        }
    }

    fn create_database(&mut self, line: u32) -> Result<Statement, SqlError> {
        let name = self.name()?;
        let mut data_sizes = Vec::new();
        if self.peek()?.kind == Kind::Punct('(') {
            // vdisim's short form: CREATE DATABASE name (SIZE = n)
            data_sizes.extend(self.filespec()?);
        } else if self.eat_kw("ON")? {
            self.eat_kw("PRIMARY")?;
            loop {
                data_sizes.extend(self.filespec()?);
                if !self.eat_punct(',')? {
                    break;
                }
            }
            if self.eat_kw("LOG")? {
                self.expect_kw("ON")?;
                loop {
                    self.filespec()?;
                    if !self.eat_punct(',')? {
                        break;
                    }
                }
            }
        }
        validate_name("database", &name).map_err(|e| e.at_line(line))?;
        let mut size_bytes: Option<u64> = None;
        for s in &data_sizes {
            let max = MAX_FILE_PAGES * PAGE_SIZE;
            let bytes = s
                .num
                .value
                .and_then(|v| v.checked_mul(s.multiplier))
                .filter(|b| *b <= max);
            let total = bytes.and_then(|b| size_bytes.unwrap_or(0).checked_add(b));
            match total {
                Some(t) => size_bytes = Some(t),
                None => {
                    return Err(SqlError::new(
                        MSG_FILE_SIZE_TOO_LARGE,
                        LEVEL_ERROR,
                        format!(
                            "The file size, max size cannot be greater than 2147483647 in \
                             units of a page size (SIZE = {} {} was specified).",
                            s.num.shown(),
                            s.unit
                        ),
                    )
                    .at_line(line))
                }
            }
        }
        Ok(Statement::CreateDatabase(CreateDatabase { name, size_bytes }))
    }

    /// `( prop = value [, ...] )`; returns the SIZE if given.
    fn filespec(&mut self) -> Result<Option<RawSize>, SqlError> {
        self.expect_punct('(')?;
        let mut seen = [false; 5];
        let mut size = None;
        loop {
            let t = self.peek()?;
            if t.kind != Kind::Word {
                return Err(self.unexpected());
            }
            let upper = t.text.to_ascii_uppercase();
            let tline = t.line;
            let slot = match upper.as_str() {
                "NAME" => 0,
                "FILENAME" => 1,
                "SIZE" => 2,
                "MAXSIZE" => 3,
                "FILEGROWTH" => 4,
                _ => return Err(self.unexpected()),
            };
            if std::mem::replace(&mut seen[slot], true) {
                return Err(duplicate_option(&upper, "CREATE DATABASE", tline));
            }
            self.advance()?;
            self.expect_punct('=')?;
            match slot {
                0 => {
                    if self.peek()?.kind == Kind::Str {
                        self.advance()?;
                    } else {
                        self.name()?;
                    }
                }
                1 => {
                    self.string_lit()?;
                }
                2 => size = Some(self.size(false)?),
                3 => {
                    if !self.eat_kw("UNLIMITED")? {
                        self.size(false)?;
                    }
                }
                _ => {
                    self.size(true)?;
                }
            }
            if !self.eat_punct(',')? {
                break;
            }
        }
        self.expect_punct(')')?;
        Ok(size)
    }

    /// `n [KB|MB|GB|TB]` (MB when no unit), or `n %` when `allow_percent`.
    fn size(&mut self, allow_percent: bool) -> Result<RawSize, SqlError> {
        let num = self.integer(false)?;
        for (unit, multiplier) in [("KB", 1u64 << 10), ("MB", 1 << 20), ("GB", 1 << 30), ("TB", 1 << 40)] {
            if self.eat_kw(unit)? {
                return Ok(RawSize { num, multiplier, unit });
            }
        }
        if allow_percent && self.eat_punct('%')? {
            return Ok(RawSize {
                num,
                multiplier: 0,
                unit: "%",
            });
        }
        Ok(RawSize {
            num,
            multiplier: 1 << 20,
            unit: "MB",
        })
    }

    fn backup_restore(&mut self, op: Op, line: u32) -> Result<Statement, SqlError> {
        let kind = if self.eat_kw("DATABASE")? {
            BackupKind::Database
        } else if self.eat_kw("LOG")? {
            BackupKind::Log
        } else {
            return Err(self.unexpected());
        };
        let database = self.name()?;
        self.expect_kw(match op {
            Op::Backup => "TO",
            Op::Restore => "FROM",
        })?;
        let devices = self.devices()?;
        let raw = if self.eat_kw("WITH")? {
            self.options(op)?
        } else {
            RawOptions::default()
        };
        let at = |e: SqlError| e.at_line(line);
        let x = validate_common(&database, &devices, &raw).map_err(at)?;
        Ok(match op {
            Op::Backup => {
                if raw.snapshot && devices.len() != 1 {
                    return Err(at(SqlError::new(
                        MSG_SNAPSHOT_DEVICE_COUNT,
                        LEVEL_ERROR,
                        format!(
                            "BACKUP WITH SNAPSHOT requires exactly one virtual device; {} \
                             were specified.",
                            devices.len()
                        ),
                    )));
                }
                Statement::Backup(Backup {
                    kind,
                    database,
                    devices,
                    options: BackupOptions {
                        blocksize: x.blocksize,
                        buffercount: x.buffercount,
                        maxtransfersize: x.maxtransfersize,
                        format: raw.format,
                        init: raw.init,
                        copy_only: raw.copy_only,
                        checksum: raw.checksum,
                        snapshot: raw.snapshot,
                        stats: x.stats,
                        description: raw.description,
                    },
                })
            }
            Op::Restore => Statement::Restore(Restore {
                kind,
                database,
                devices,
                options: RestoreOptions {
                    blocksize: x.blocksize,
                    buffercount: x.buffercount,
                    maxtransfersize: x.maxtransfersize,
                    replace: raw.replace,
                    recovery: raw.recovery,
                    checksum: raw.checksum,
                    stats: x.stats,
                    moves: raw.moves,
                },
            }),
        })
    }

    /// `VIRTUAL_DEVICE = 'name' [, ...]`.
    fn devices(&mut self) -> Result<Vec<String>, SqlError> {
        let mut devices = Vec::new();
        loop {
            let t = self.peek()?;
            let (kind, line) = (t.kind, t.line);
            match kind {
                Kind::Word => {
                    let upper = t.text.to_ascii_uppercase();
                    match upper.as_str() {
                        "VIRTUAL_DEVICE" => {
                            self.advance()?;
                            self.expect_punct('=')?;
                            devices.push(self.string_lit()?);
                        }
                        "DISK" | "TAPE" | "URL" => {
                            return Err(unsupported_device(&upper, line));
                        }
                        _ if is_reserved(&upper) => return Err(self.unexpected()),
                        _ => {
                            let what = format!("logical backup device '{}'", shown(&t.text));
                            return Err(unsupported_device(&what, line));
                        }
                    }
                }
                Kind::QuotedIdent => {
                    let what = format!("logical backup device '{}'", shown(&t.text));
                    return Err(unsupported_device(&what, line));
                }
                _ => return Err(self.unexpected()),
            }
            if !self.eat_punct(',')? {
                return Ok(devices);
            }
        }
    }

    /// The option list after WITH.
    fn options(&mut self, op: Op) -> Result<RawOptions, SqlError> {
        let mut raw = RawOptions::default();
        let mut seen: u32 = 0;
        loop {
            let t = self.peek()?;
            if t.kind != Kind::Word {
                return Err(self.unexpected());
            }
            let upper = t.text.to_ascii_uppercase();
            let tline = t.line;
            let Some(slot) = option_slot(&upper, op) else {
                return Err(self.unexpected());
            };
            if slot != Slot::Move {
                let bit = 1u32 << (slot as u32);
                if seen & bit != 0 {
                    return Err(duplicate_option(&upper, op.keyword(), tline));
                }
                seen |= bit;
            }
            self.advance()?;
            match upper.as_str() {
                "BLOCKSIZE" | "BUFFERCOUNT" | "MAXTRANSFERSIZE" | "FILE" => {
                    self.expect_punct('=')?;
                    let n = Some(self.integer(true)?);
                    match slot {
                        Slot::Blocksize => raw.blocksize = n,
                        Slot::Buffercount => raw.buffercount = n,
                        Slot::Maxtransfersize => raw.maxtransfersize = n,
                        _ => {} // FILE: accepted, ignored
                    }
                }
                "STATS" => {
                    raw.stats = Some(if self.eat_punct('=')? {
                        self.integer(true)?
                    } else {
                        NumLit {
                            value: Some(u64::from(DEFAULT_STATS)),
                            text: DEFAULT_STATS.to_string(),
                        }
                    });
                }
                "DESCRIPTION" => {
                    self.expect_punct('=')?;
                    raw.description = Some(self.string_lit()?);
                }
                "NAME" => {
                    self.expect_punct('=')?;
                    self.string_lit()?;
                }
                "MOVE" => {
                    let logical = self.string_lit()?;
                    self.expect_kw("TO")?;
                    let path = self.string_lit()?;
                    raw.moves.push((logical, path));
                }
                "FORMAT" => raw.format = true,
                "INIT" => raw.init = true,
                "COPY_ONLY" => raw.copy_only = true,
                "CHECKSUM" => raw.checksum = true,
                "SNAPSHOT" => raw.snapshot = true,
                "REPLACE" => raw.replace = true,
                "NORECOVERY" => raw.recovery = false,
                // NOFORMAT, NOINIT, NO_CHECKSUM, RECOVERY: the defaults.
                // SKIP, NOSKIP, REWIND, NOREWIND, UNLOAD, NOUNLOAD: accepted, ignored.
                _ => {}
            }
            if !self.eat_punct(',')? {
                return Ok(raw);
            }
        }
    }
}

/// Checks names, devices and transfer options (SPEC §2.6). Errors have line 1.
fn validate_common(database: &str, devices: &[String], raw: &RawOptions) -> Result<Transfer, SqlError> {
    validate_name("database", database)?;
    if devices.len() > MAX_DEVICES {
        return Err(SqlError::new(
            MSG_TOO_MANY_DEVICES,
            LEVEL_ERROR,
            format!(
                "Too many backup devices specified for backup or restore; only {MAX_DEVICES} \
                 are allowed. {} devices were specified.",
                devices.len()
            ),
        ));
    }
    let mut seen = HashSet::new();
    for d in devices {
        validate_name("device", d)?;
        // Names are case-sensitive (SPEC §2.6).
        if !seen.insert(d.as_str()) {
            return Err(SqlError::new(
                MSG_DUPLICATE_DEVICE,
                LEVEL_ERROR,
                format!(
                    "Operating system error: the same virtual device '{d}' is specified more \
                     than once."
                ),
            ));
        }
    }
    let blocksize = match &raw.blocksize {
        None => None,
        Some(n) => match n.in_range(MIN_BLOCKSIZE, MAX_BLOCKSIZE).filter(|v| v.is_power_of_two()) {
            Some(v) => Some(v),
            None => {
                return Err(SqlError::new(
                    MSG_BAD_BLOCKSIZE,
                    LEVEL_ERROR,
                    format!(
                        "Invalid block size {} specified. The block size must be a power of 2 \
                         between 512 bytes and 64 KB.",
                        n.shown()
                    ),
                ))
            }
        },
    };
    let maxtransfersize = match &raw.maxtransfersize {
        None => None,
        Some(n) => match n
            .in_range(MAXTRANSFERSIZE_UNIT, MAX_MAXTRANSFERSIZE)
            .filter(|v| v % MAXTRANSFERSIZE_UNIT == 0)
        {
            Some(v) => Some(v),
            None => {
                return Err(SqlError::new(
                    MSG_BAD_MAXTRANSFERSIZE,
                    LEVEL_ERROR,
                    format!(
                        "The specified MAXTRANSFERSIZE {} is invalid. It must be a multiple of \
                         64 KB between 64 KB and 4 MB.",
                        n.shown()
                    ),
                ))
            }
        },
    };
    let buffercount = match &raw.buffercount {
        None => None,
        Some(n) => match n.in_range(1, MAX_BUFFERCOUNT) {
            Some(v) => Some(v),
            None => {
                return Err(SqlError::new(
                    MSG_BAD_BUFFERCOUNT,
                    LEVEL_ERROR,
                    format!(
                        "Invalid BUFFERCOUNT {} specified. BUFFERCOUNT must be between 1 and \
                         {MAX_BUFFERCOUNT}.",
                        n.shown()
                    ),
                ))
            }
        },
    };
    let bc = buffercount.unwrap_or_else(|| default_buffercount(devices.len()));
    let mts = maxtransfersize.unwrap_or(DEFAULT_MAXTRANSFERSIZE);
    let memory = u64::from(bc).saturating_mul(u64::from(mts));
    if memory > MAX_BUFFER_MEMORY {
        return Err(SqlError::new(
            MSG_BAD_BUFFERCOUNT,
            LEVEL_ERROR,
            format!(
                "BUFFERCOUNT {bc} with MAXTRANSFERSIZE {mts} needs {memory} bytes of buffer \
                 memory, more than the limit of {MAX_BUFFER_MEMORY} bytes (2 GB)."
            ),
        ));
    }
    let stats = match &raw.stats {
        None => None,
        Some(n) => match n.in_range(1, 100) {
            Some(v) => Some(v),
            None => {
                return Err(SqlError::new(
                    MSG_BAD_STATS,
                    LEVEL_ERROR,
                    format!("Invalid STATS value {}. STATS must be between 1 and 100.", n.shown()),
                ))
            }
        },
    };
    Ok(Transfer {
        blocksize,
        buffercount,
        maxtransfersize,
        stats,
    })
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rstest::rstest;

    fn s(x: &str) -> String {
        x.to_string()
    }

    fn backup(kind: BackupKind, db: &str, devs: &[&str], options: BackupOptions) -> Statement {
        Statement::Backup(Backup {
            kind,
            database: s(db),
            devices: devs.iter().map(|d| s(d)).collect(),
            options,
        })
    }

    fn restore(kind: BackupKind, db: &str, devs: &[&str], options: RestoreOptions) -> Statement {
        Statement::Restore(Restore {
            kind,
            database: s(db),
            devices: devs.iter().map(|d| s(d)).collect(),
            options,
        })
    }

    fn create(name: &str, size_bytes: Option<u64>) -> Statement {
        Statement::CreateDatabase(CreateDatabase {
            name: s(name),
            size_bytes,
        })
    }

    fn err(sql: &str) -> SqlError {
        match parse_batch(sql) {
            Ok(v) => panic!("expected an error for {sql:?}, got {v:?}"),
            Err(e) => e,
        }
    }

    fn bopts(f: impl FnOnce(&mut BackupOptions)) -> BackupOptions {
        let mut o = BackupOptions::default();
        f(&mut o);
        o
    }

    fn ropts(f: impl FnOnce(&mut RestoreOptions)) -> RestoreOptions {
        let mut o = RestoreOptions::default();
        f(&mut o);
        o
    }

    const MB: u64 = 1 << 20;

    // ----- statement forms ---------------------------------------------------------------

    #[rstest]
    #[case("CREATE DATABASE db", create("db", None))]
    #[case("create database Db1;", create("Db1", None))]
    #[case("CREATE DATABASE d (SIZE = 10)", create("d", Some(10 * MB)))]
    #[case("CREATE DATABASE d (SIZE=10MB)", create("d", Some(10 * MB)))]
    #[case("CREATE DATABASE d ( size = 512 kb )", create("d", Some(512 * 1024)))]
    #[case("CREATE DATABASE d (SIZE = 2 GB)", create("d", Some(2 << 30)))]
    #[case("CREATE DATABASE d (SIZE = 1TB)", create("d", Some(1 << 40)))]
    #[case("CREATE DATABASE d (SIZE = 0)", create("d", Some(0)))]
    #[case(
        "CREATE DATABASE d ON PRIMARY (NAME = d_data, FILENAME = '/var/opt/mssql/d.mdf', \
         SIZE = 8MB, MAXSIZE = UNLIMITED, FILEGROWTH = 64MB) \
         LOG ON (NAME = d_log, FILENAME = N'/var/opt/mssql/d.ldf', SIZE = 100MB, FILEGROWTH = 10%)",
        create("d", Some(8 * MB))
    )]
    #[case(
        "CREATE DATABASE d ON (NAME = 'a', FILENAME = 'a', SIZE = 1), \
         (NAME = [b], FILENAME = 'b', SIZE = 3, MAXSIZE = 1GB)",
        create("d", Some(4 * MB))
    )]
    #[case("CREATE DATABASE d ON (NAME = a, FILENAME = 'a')", create("d", None))]
    #[case(
        "CREATE DATABASE d ON (NAME = a, FILENAME = 'a') LOG ON (NAME = l, FILENAME = 'l', SIZE = 5)",
        create("d", None)
    )]
    #[case("DROP DATABASE d", Statement::DropDatabase { name: s("d") })]
    #[case("drop DATABASE [x y]", Statement::DropDatabase { name: s("x y") })]
    #[case("DROP DATABASE \"q\"\"d\"", Statement::DropDatabase { name: s("q\"d") })]
    #[case(
        "BACKUP DATABASE db TO VIRTUAL_DEVICE = 'dev'",
        backup(BackupKind::Database, "db", &["dev"], BackupOptions::default())
    )]
    #[case(
        "backup log [db] to virtual_device = N'dev';",
        backup(BackupKind::Log, "db", &["dev"], BackupOptions::default())
    )]
    #[case(
        "BACKUP DATABASE db TO VIRTUAL_DEVICE='{A}', VIRTUAL_DEVICE='b',VIRTUAL_DEVICE='c'",
        backup(BackupKind::Database, "db", &["{A}", "b", "c"], BackupOptions::default())
    )]
    #[case(
        "RESTORE DATABASE db FROM VIRTUAL_DEVICE = 'dev'",
        restore(BackupKind::Database, "db", &["dev"], RestoreOptions::default())
    )]
    #[case(
        "RESTORE LOG db FROM VIRTUAL_DEVICE = 'a', VIRTUAL_DEVICE = 'b' WITH NORECOVERY",
        restore(BackupKind::Log, "db", &["a", "b"], ropts(|o| o.recovery = false))
    )]
    #[case("CREATE DATABASE GO", create("GO", None))]
    #[case("CREATE DATABASE [select]", create("select", None))]
    #[case("CREATE DATABASE #tmp_db$1", create("#tmp_db$1", None))]
    #[case("CREATE DATABASE Ünïcødé", create("Ünïcødé", None))]
    fn parses_statement_forms(#[case] sql: &str, #[case] expected: Statement) {
        assert_eq!(parse_statement(sql).unwrap(), expected);
        assert_eq!(parse_batch(sql).unwrap(), vec![expected]);
    }

    // ----- BACKUP options -----------------------------------------------------------------

    #[rstest]
    #[case("BLOCKSIZE = 4096", bopts(|o| o.blocksize = Some(4096)))]
    #[case("BLOCKSIZE = +512", bopts(|o| o.blocksize = Some(512)))]
    #[case("BUFFERCOUNT = 7", bopts(|o| o.buffercount = Some(7)))]
    #[case("MAXTRANSFERSIZE = 1048576", bopts(|o| o.maxtransfersize = Some(1 << 20)))]
    #[case("FORMAT", bopts(|o| o.format = true))]
    #[case("NOFORMAT", BackupOptions::default())]
    #[case("INIT", bopts(|o| o.init = true))]
    #[case("NOINIT", BackupOptions::default())]
    #[case("COPY_ONLY", bopts(|o| o.copy_only = true))]
    #[case("CHECKSUM", bopts(|o| o.checksum = true))]
    #[case("NO_CHECKSUM", BackupOptions::default())]
    #[case("SNAPSHOT", bopts(|o| o.snapshot = true))]
    #[case("STATS", bopts(|o| o.stats = Some(10)))]
    #[case("STATS = 5", bopts(|o| o.stats = Some(5)))]
    #[case("DESCRIPTION = 'it''s nightly'", bopts(|o| o.description = Some(s("it's nightly"))))]
    #[case("DESCRIPTION = N''", bopts(|o| o.description = Some(s(""))))]
    #[case("NAME = 'full'", BackupOptions::default())]
    #[case("SKIP, NOREWIND, NOUNLOAD", BackupOptions::default())]
    #[case("NOSKIP, REWIND, UNLOAD", BackupOptions::default())]
    #[case(
        "blocksize=65536, BufferCount=16, MAXTRANSFERSIZE=4194304, FORMAT, INIT, COPY_ONLY, \
         CHECKSUM, STATS=100, DESCRIPTION='d', NAME='n', SKIP, REWIND, UNLOAD",
        bopts(|o| {
            o.blocksize = Some(65536);
            o.buffercount = Some(16);
            o.maxtransfersize = Some(4 << 20);
            o.format = true;
            o.init = true;
            o.copy_only = true;
            o.checksum = true;
            o.stats = Some(100);
            o.description = Some(s("d"));
        })
    )]
    fn parses_backup_options(#[case] with: &str, #[case] expected: BackupOptions) {
        let sql = format!("BACKUP DATABASE db TO VIRTUAL_DEVICE = 'v' WITH {with}");
        assert_eq!(
            parse_statement(&sql).unwrap(),
            backup(BackupKind::Database, "db", &["v"], expected)
        );
    }

    // ----- RESTORE options ----------------------------------------------------------------

    #[rstest]
    #[case("REPLACE", ropts(|o| o.replace = true))]
    #[case("RECOVERY", RestoreOptions::default())]
    #[case("NORECOVERY", ropts(|o| o.recovery = false))]
    #[case("CHECKSUM", ropts(|o| o.checksum = true))]
    #[case("NO_CHECKSUM", RestoreOptions::default())]
    #[case("STATS", ropts(|o| o.stats = Some(10)))]
    #[case("STATS = 1", ropts(|o| o.stats = Some(1)))]
    #[case("FILE = 1", RestoreOptions::default())]
    #[case("BLOCKSIZE = 65536", ropts(|o| o.blocksize = Some(65536)))]
    #[case("BUFFERCOUNT = 4096", ropts(|o| o.buffercount = Some(4096)))]
    #[case("MAXTRANSFERSIZE = 131072", ropts(|o| o.maxtransfersize = Some(131072)))]
    #[case("NAME = 'x', NOSKIP", RestoreOptions::default())]
    #[case("REWIND, NOUNLOAD", RestoreOptions::default())]
    #[case(
        "MOVE 'db' TO '/data/db.mdf', MOVE N'db_log' TO '/data/it''s.ldf'",
        ropts(|o| o.moves = vec![
            (s("db"), s("/data/db.mdf")),
            (s("db_log"), s("/data/it's.ldf")),
        ])
    )]
    #[case(
        "REPLACE, NORECOVERY, MOVE 'a' TO 'b', CHECKSUM, STATS = 50, FILE = 2",
        ropts(|o| {
            o.replace = true;
            o.recovery = false;
            o.checksum = true;
            o.stats = Some(50);
            o.moves = vec![(s("a"), s("b"))];
        })
    )]
    fn parses_restore_options(#[case] with: &str, #[case] expected: RestoreOptions) {
        let sql = format!("RESTORE DATABASE db FROM VIRTUAL_DEVICE = 'v' WITH {with}");
        assert_eq!(
            parse_statement(&sql).unwrap(),
            restore(BackupKind::Database, "db", &["v"], expected)
        );
    }

    // ----- quoting, escaping, comments ----------------------------------------------------

    #[rstest]
    #[case("BACKUP DATABASE [my]]db] TO VIRTUAL_DEVICE = 'v'", "my]db", "v")]
    #[case("BACKUP DATABASE \"a\"\"b\" TO VIRTUAL_DEVICE = 'v'", "a\"b", "v")]
    #[case("BACKUP DATABASE [a b] TO VIRTUAL_DEVICE = 'it''s'", "a b", "it's")]
    #[case("BACKUP DATABASE d TO VIRTUAL_DEVICE = N'ünï'", "d", "ünï")]
    #[case("BACKUP DATABASE d TO VIRTUAL_DEVICE = n'x'", "d", "x")]
    #[case("BACKUP DATABASE d TO VIRTUAL_DEVICE = ''''", "d", "'")]
    #[case("BACKUP DATABASE d TO VIRTUAL_DEVICE = '--not a comment'", "d", "--not a comment")]
    #[case("BACKUP/*c*/DATABASE--x\n[d]TO VIRTUAL_DEVICE='v'", "d", "v")]
    #[case("/* a /* nested */ comment */ BACKUP DATABASE d TO VIRTUAL_DEVICE='v'", "d", "v")]
    #[case(
        "-- leading\nBACKUP\tDATABASE\r\n  d\n\nTO\nVIRTUAL_DEVICE\n=\n'v' -- trailing",
        "d",
        "v"
    )]
    #[case("BACKUP DATABASE [GO] TO VIRTUAL_DEVICE = 'GO'", "GO", "GO")]
    #[case("BACKUP DATABASE [a--b] TO VIRTUAL_DEVICE = 'v'", "a--b", "v")]
    fn quoting_and_comments(#[case] sql: &str, #[case] db: &str, #[case] dev: &str) {
        match parse_statement(sql) {
            Ok(Statement::Backup(b)) => {
                assert_eq!(b.database, db);
                assert_eq!(b.devices, vec![s(dev)]);
            }
            other => panic!("{sql:?}: {other:?}"),
        }
    }

    #[rstest]
    #[case("'/* not a comment */'", "/* not a comment */")]
    #[case("'-- nor this'", "-- nor this")]
    #[case("'multi\nline'", "multi\nline")]
    #[case("N'ünï''q'", "ünï'q")]
    fn description_strings(#[case] lit: &str, #[case] text: &str) {
        let Ok(Statement::Backup(b)) = backup_with(&format!("DESCRIPTION = {lit}")) else {
            panic!("{lit}")
        };
        assert_eq!(b.options.description.as_deref(), Some(text));
    }

    // ----- separation ---------------------------------------------------------------------

    #[rstest]
    #[case("", 0)]
    #[case("   \n\t ", 0)]
    #[case("-- only a comment", 0)]
    #[case("/* only */", 0)]
    #[case(";;", 0)]
    #[case("GO", 0)]
    #[case("GO\nGO\n", 0)]
    #[case("CREATE DATABASE a; DROP DATABASE a", 2)]
    #[case("CREATE DATABASE a;DROP DATABASE a;", 2)]
    #[case("CREATE DATABASE a\nGO\nDROP DATABASE a\ngo\n", 2)]
    #[case("CREATE DATABASE a\n  Go  \t\nDROP DATABASE a", 2)]
    #[case("CREATE DATABASE a\r\nGO\r\nDROP DATABASE a\r\n", 2)]
    #[case("CREATE DATABASE a\nGO -- done\nDROP DATABASE a", 2)]
    #[case("CREATE DATABASE a DROP DATABASE a", 2)]
    #[case(
        "CREATE DATABASE a\nBACKUP DATABASE a TO VIRTUAL_DEVICE='v' WITH FORMAT\nRESTORE DATABASE a FROM VIRTUAL_DEVICE='v'",
        3
    )]
    #[case("CREATE DATABASE a;\nGO\n;\nBACKUP DATABASE a TO VIRTUAL_DEVICE='v';\nGO", 2)]
    fn batch_separation(#[case] sql: &str, #[case] count: usize) {
        assert_eq!(parse_batch(sql).unwrap().len(), count, "{sql:?}");
    }

    #[test]
    fn batch_keeps_order_and_content() {
        let got = parse_batch("CREATE DATABASE a\nGO\nDROP DATABASE b;").unwrap();
        assert_eq!(got, vec![create("a", None), Statement::DropDatabase { name: s("b") }]);
    }

    #[rstest]
    // GO not alone on its line is an identifier, so these are syntax errors.
    #[case("CREATE DATABASE a GO", "GO", 1)]
    #[case("CREATE DATABASE a\nGO 2\n", "GO", 2)]
    #[case("CREATE DATABASE a\nGOX\n", "GOX", 2)]
    #[case("CREATE DATABASE a;GO", "GO", 1)]
    #[case("CREATE DATABASE a\n/* c */ GO\n", "GO", 2)]
    // A GO line ends the statement, so the last token before it is named.
    #[case("BACKUP DATABASE a\nGO\nTO VIRTUAL_DEVICE='v'", "a", 1)]
    fn go_edge_cases(#[case] sql: &str, #[case] near: &str, #[case] line: u32) {
        let e = err(sql);
        assert_eq!(e.number, MSG_SYNTAX, "{e}");
        assert_eq!(e.message, format!("Incorrect syntax near '{near}'."));
        assert_eq!(e.line, line);
    }

    #[rstest]
    #[case("")]
    #[case(";")]
    #[case("CREATE DATABASE a; DROP DATABASE a")]
    #[case("CREATE DATABASE a;;")]
    #[case("CREATE DATABASE a\nGO")]
    fn parse_statement_wants_exactly_one(#[case] sql: &str) {
        let e = parse_statement(sql).unwrap_err();
        assert_eq!((e.number, e.severity), (MSG_SYNTAX, 15), "{e}");
    }

    // ----- syntax errors and line numbers -------------------------------------------------

    #[rstest]
    #[case("SELECT 1", "SELECT", 1)]
    #[case("\n\n  select * from t", "select", 3)]
    #[case("garbage", "garbage", 1)]
    #[case("CREATE TABLE t", "TABLE", 1)]
    #[case("CREATE DATABASE", "DATABASE", 1)]
    #[case("CREATE DATABASE select", "select", 1)]
    #[case("CREATE DATABASE a b", "b", 1)]
    #[case("CREATE DATABASE a (SIZE = 1.5)", "1.5", 1)]
    #[case("CREATE DATABASE a (SIZE = 10 PB)", "PB", 1)]
    #[case("CREATE DATABASE a (SIZE = @s)", "@s", 1)]
    #[case("CREATE DATABASE a (SIZE = -1)", "-", 1)]
    #[case("CREATE DATABASE a ()", ")", 1)]
    #[case("CREATE DATABASE a (COLOR = 1)", "COLOR", 1)]
    #[case("CREATE DATABASE a (SIZE = 1", "1", 1)]
    #[case("CREATE DATABASE a ON", "ON", 1)]
    #[case("CREATE DATABASE a ON (NAME = a), ", ",", 1)]
    #[case("CREATE DATABASE a ON (FILENAME = x)", "x", 1)]
    #[case("CREATE DATABASE a ON (NAME=a) LOG (NAME=b)", "(", 1)]
    #[case("DROP DATABASE a, b", ",", 1)]
    #[case("DROP TABLE a", "TABLE", 1)]
    #[case("DROP DATABASE @db", "@db", 1)]
    #[case("BACKUP", "BACKUP", 1)]
    #[case("BACKUP TABLE a", "TABLE", 1)]
    #[case("BACKUP DATABASE a", "a", 1)]
    #[case("BACKUP DATABASE a\nTO", "TO", 2)]
    #[case("BACKUP DATABASE a TO VIRTUAL_DEVICE", "VIRTUAL_DEVICE", 1)]
    #[case("BACKUP DATABASE a TO VIRTUAL_DEVICE =", "=", 1)]
    #[case("BACKUP DATABASE a TO VIRTUAL_DEVICE = @v", "@v", 1)]
    #[case("BACKUP DATABASE a TO VIRTUAL_DEVICE = v", "v", 1)]
    #[case("BACKUP DATABASE a TO VIRTUAL_DEVICE = 'v',", ",", 1)]
    #[case("BACKUP DATABASE a TO 'v'", "v", 1)]
    #[case("BACKUP DATABASE a FROM VIRTUAL_DEVICE = 'v'", "FROM", 1)]
    #[case("RESTORE DATABASE a TO VIRTUAL_DEVICE = 'v'", "TO", 1)]
    #[case("RESTORE HEADERONLY FROM VIRTUAL_DEVICE = 'v'", "HEADERONLY", 1)]
    #[case("BACKUP DATABASE a TO VIRTUAL_DEVICE='v' WITH", "WITH", 1)]
    #[case("BACKUP DATABASE a TO VIRTUAL_DEVICE='v'\nWITH\nBOGUS", "BOGUS", 3)]
    #[case("BACKUP DATABASE a TO VIRTUAL_DEVICE='v' WITH FORMAT,", ",", 1)]
    #[case("BACKUP DATABASE a TO VIRTUAL_DEVICE='v' WITH FORMAT INIT", "INIT", 1)]
    #[case("BACKUP DATABASE a TO VIRTUAL_DEVICE='v' WITH BLOCKSIZE", "BLOCKSIZE", 1)]
    #[case("BACKUP DATABASE a TO VIRTUAL_DEVICE='v' WITH BLOCKSIZE 512", "512", 1)]
    #[case("BACKUP DATABASE a TO VIRTUAL_DEVICE='v' WITH BLOCKSIZE = @bs", "@bs", 1)]
    #[case("BACKUP DATABASE a TO VIRTUAL_DEVICE='v' WITH BLOCKSIZE = '512'", "512", 1)]
    #[case("BACKUP DATABASE a TO VIRTUAL_DEVICE='v' WITH BLOCKSIZE = 512.0", "512.0", 1)]
    #[case("BACKUP DATABASE a TO VIRTUAL_DEVICE='v' WITH STATS = x", "x", 1)]
    #[case("BACKUP DATABASE a TO VIRTUAL_DEVICE='v' WITH DESCRIPTION = 5", "5", 1)]
    #[case("BACKUP DATABASE a TO VIRTUAL_DEVICE='v' WITH REPLACE", "REPLACE", 1)]
    #[case("BACKUP DATABASE a TO VIRTUAL_DEVICE='v' WITH MOVE 'a' TO 'b'", "MOVE", 1)]
    #[case("BACKUP DATABASE a TO VIRTUAL_DEVICE='v' WITH COMPRESSION", "COMPRESSION", 1)]
    #[case("RESTORE DATABASE a FROM VIRTUAL_DEVICE='v' WITH FORMAT", "FORMAT", 1)]
    #[case("RESTORE DATABASE a FROM VIRTUAL_DEVICE='v' WITH SNAPSHOT", "SNAPSHOT", 1)]
    #[case("RESTORE DATABASE a FROM VIRTUAL_DEVICE='v' WITH MOVE 'a' 'b'", "b", 1)]
    #[case("RESTORE DATABASE a FROM VIRTUAL_DEVICE='v' WITH MOVE a TO 'b'", "a", 1)]
    #[case("RESTORE DATABASE a FROM VIRTUAL_DEVICE='v' WITH FILE", "FILE", 1)]
    #[case(
        "CREATE DATABASE a;\n\nBACKUP DATABASE b\n  TO VIRTUAL_DEVICE = 'v' WITH\n  ,",
        ",",
        5
    )]
    #[case("/* one\ntwo\nthree */ SELECT", "SELECT", 3)]
    #[case("BACKUP DATABASE a TO VIRTUAL_DEVICE='v' WITH FORMAT +", "+", 1)]
    #[case("BACKUP DATABASE a TO VIRTUAL_DEVICE='v' WITH FORMAT\n*", "*", 2)]
    fn syntax_errors(#[case] sql: &str, #[case] near: &str, #[case] line: u32) {
        let e = err(sql);
        assert_eq!(
            (e.number, e.severity, e.state),
            (MSG_SYNTAX, LEVEL_SYNTAX, 1),
            "{sql:?}: {e}"
        );
        assert_eq!(e.message, format!("Incorrect syntax near '{near}'."), "{sql:?}");
        assert_eq!(e.line, line, "{sql:?}: {e}");
    }

    #[test]
    fn syntax_error_shows_at_most_128_chars_of_a_token() {
        let long = "x".repeat(1000);
        let e = err(&format!("CREATE DATABASE a {long}"));
        assert_eq!(e.message, format!("Incorrect syntax near '{}...'.", "x".repeat(128)));
    }

    #[test]
    fn syntax_error_on_empty_statement_input() {
        let e = parse_statement("").unwrap_err();
        assert_eq!(e.message, "Incorrect syntax near ''.");
        assert_eq!(e.line, 1);
    }

    #[rstest]
    #[case("BACKUP DATABASE a TO VIRTUAL_DEVICE = 'abc", "abc", 1)]
    #[case("\nBACKUP DATABASE a TO VIRTUAL_DEVICE = 'x\ny", "x\ny", 2)]
    #[case("BACKUP DATABASE a TO VIRTUAL_DEVICE = N'it''s", "it''s", 1)]
    #[case("BACKUP DATABASE [abc TO VIRTUAL_DEVICE = 'v'", "abc TO VIRTUAL_DEVICE = 'v'", 1)]
    #[case("DROP DATABASE \"abc", "abc", 1)]
    #[case("'", "", 1)]
    fn unclosed_quote(#[case] sql: &str, #[case] text: &str, #[case] line: u32) {
        let e = err(sql);
        assert_eq!((e.number, e.severity), (MSG_UNCLOSED_QUOTE, 15), "{e}");
        assert_eq!(
            e.message,
            format!("Unclosed quotation mark after the character string '{text}'.")
        );
        assert_eq!(e.line, line);
    }

    #[rstest]
    #[case("/* never closed", 1)]
    #[case("CREATE DATABASE a\n/* /* nested */ still open", 2)]
    #[case("CREATE DATABASE a /*/", 1)]
    fn unterminated_block_comment(#[case] sql: &str, #[case] line: u32) {
        let e = err(sql);
        assert_eq!((e.number, e.severity), (MSG_MISSING_END_COMMENT, 15), "{e}");
        assert_eq!(e.message, "Missing end comment mark '*/'.");
        assert_eq!(e.line, line);
    }

    #[test]
    fn first_error_by_position_wins() {
        // A syntax error in the first statement is reported before a lexical one later.
        let e = err("SELECT 1\nGO\nBACKUP DATABASE 'unclosed");
        assert_eq!(e.number, MSG_SYNTAX);
    }

    // ----- unsupported devices ------------------------------------------------------------

    #[rstest]
    #[case("BACKUP DATABASE a TO DISK = '/tmp/a.bak'", "DISK", 1)]
    #[case("BACKUP DATABASE a TO tape = '\\\\.\\tape0'", "TAPE", 1)]
    #[case("BACKUP DATABASE a TO URL = 'https://x/y'", "URL", 1)]
    #[case("RESTORE DATABASE a FROM DISK = 'x'", "DISK", 1)]
    #[case("RESTORE LOG a FROM VIRTUAL_DEVICE = 'v',\n URL = 'x'", "URL", 2)]
    #[case("BACKUP DATABASE a TO mydev", "logical backup device 'mydev'", 1)]
    #[case("BACKUP DATABASE a TO [my dev]", "logical backup device 'my dev'", 1)]
    fn only_virtual_devices(#[case] sql: &str, #[case] what: &str, #[case] line: u32) {
        let e = err(sql);
        assert_eq!((e.number, e.severity), (MSG_UNSUPPORTED_DEVICE_TYPE, 16), "{e}");
        assert!(e.message.contains("only VIRTUAL_DEVICE"), "{e}");
        assert!(e.message.contains(what), "{e}");
        assert_eq!(e.line, line);
    }

    // ----- limits -------------------------------------------------------------------------

    fn backup_with(with: &str) -> Result<Statement, SqlError> {
        parse_statement(&format!("BACKUP DATABASE d TO VIRTUAL_DEVICE = 'v' WITH {with}"))
    }

    fn restore_with(with: &str) -> Result<Statement, SqlError> {
        parse_statement(&format!("RESTORE DATABASE d FROM VIRTUAL_DEVICE = 'v' WITH {with}"))
    }

    #[rstest]
    #[case("511", false)]
    #[case("512", true)]
    #[case("1024", true)]
    #[case("4096", true)]
    #[case("32768", true)]
    #[case("65536", true)]
    #[case("131072", false)]
    #[case("768", false)]
    #[case("1000", false)]
    #[case("65535", false)]
    #[case("0", false)]
    #[case("256", false)]
    #[case("-512", false)]
    #[case("4294967808", false)] // 2^32 + 512: must not wrap to 512
    #[case("99999999999999999999999", false)]
    fn blocksize_limits(#[case] v: &str, #[case] ok: bool) {
        for r in [
            backup_with(&format!("BLOCKSIZE = {v}")),
            restore_with(&format!("BLOCKSIZE = {v}")),
        ] {
            match r {
                Ok(st) => {
                    assert!(ok, "{v} accepted");
                    let want: u32 = v.parse().unwrap();
                    match st {
                        Statement::Backup(b) => assert_eq!(b.effective_blocksize(), want),
                        Statement::Restore(b) => assert_eq!(b.effective_blocksize(), want),
                        other => panic!("{other:?}"),
                    }
                }
                Err(e) => {
                    assert!(!ok, "{v} rejected: {e}");
                    assert_eq!((e.number, e.severity), (MSG_BAD_BLOCKSIZE, 16));
                    assert_eq!(
                        e.message,
                        format!(
                            "Invalid block size {v} specified. The block size must be a power \
                             of 2 between 512 bytes and 64 KB."
                        )
                    );
                }
            }
        }
    }

    #[rstest]
    #[case("65535", false)]
    #[case("65536", true)]
    #[case("131072", true)]
    #[case("131073", false)]
    #[case("196608", true)]
    #[case("4194304", true)]
    #[case("4259840", false)]
    #[case("0", false)]
    #[case("-65536", false)]
    #[case("4295032832", false)] // 2^32 + 65536
    fn maxtransfersize_limits(#[case] v: &str, #[case] ok: bool) {
        for r in [
            backup_with(&format!("MAXTRANSFERSIZE = {v}")),
            restore_with(&format!("MAXTRANSFERSIZE = {v}")),
        ] {
            match r {
                Ok(st) => {
                    assert!(ok, "{v} accepted");
                    let want: u32 = v.parse().unwrap();
                    match st {
                        Statement::Backup(b) => assert_eq!(b.effective_maxtransfersize(), want),
                        Statement::Restore(b) => assert_eq!(b.effective_maxtransfersize(), want),
                        other => panic!("{other:?}"),
                    }
                }
                Err(e) => {
                    assert!(!ok, "{v} rejected: {e}");
                    assert_eq!((e.number, e.severity), (MSG_BAD_MAXTRANSFERSIZE, 16));
                    assert_eq!(
                        e.message,
                        format!(
                            "The specified MAXTRANSFERSIZE {v} is invalid. It must be a \
                             multiple of 64 KB between 64 KB and 4 MB."
                        )
                    );
                }
            }
        }
    }

    #[rstest]
    #[case("BUFFERCOUNT = 0", Err("0"))]
    #[case("BUFFERCOUNT = 1", Ok(1))]
    #[case("BUFFERCOUNT = 4096", Ok(4096))]
    #[case("BUFFERCOUNT = 4097", Err("4097"))]
    #[case("BUFFERCOUNT = -1", Err("-1"))]
    #[case("BUFFERCOUNT = 18446744073709551616", Err("18446744073709551616"))]
    // Memory cap: 512 * 4 MiB = 2 GiB exactly is allowed, 513 is not.
    #[case("BUFFERCOUNT = 512, MAXTRANSFERSIZE = 4194304", Ok(512))]
    #[case("BUFFERCOUNT = 513, MAXTRANSFERSIZE = 4194304", Err("513"))]
    #[case("MAXTRANSFERSIZE = 4194304, BUFFERCOUNT = 4096", Err("4096"))]
    #[case("BUFFERCOUNT = 1024, MAXTRANSFERSIZE = 2097152", Ok(1024))]
    #[case("BUFFERCOUNT = 1025, MAXTRANSFERSIZE = 2097152", Err("1025"))]
    fn buffercount_limits(#[case] with: &str, #[case] expected: Result<u32, &str>) {
        for r in [backup_with(with), restore_with(with)] {
            match (r, expected) {
                (Ok(Statement::Backup(b)), Ok(n)) => assert_eq!(b.effective_buffercount(), n),
                (Ok(Statement::Restore(b)), Ok(n)) => assert_eq!(b.effective_buffercount(), n),
                (Err(e), Err(v)) => {
                    assert_eq!((e.number, e.severity), (MSG_BAD_BUFFERCOUNT, 16), "{e}");
                    assert!(e.message.contains(v), "{e}");
                    assert!(
                        e.message.contains("4096") || e.message.contains("2147483648"),
                        "names the limit: {e}"
                    );
                }
                (r, _) => panic!("{with}: {r:?}"),
            }
        }
    }

    #[test]
    fn memory_cap_message_names_values_and_limit() {
        let e = backup_with("BUFFERCOUNT = 513, MAXTRANSFERSIZE = 4194304").unwrap_err();
        assert_eq!(
            e.message,
            "BUFFERCOUNT 513 with MAXTRANSFERSIZE 4194304 needs 2151677952 bytes of buffer \
             memory, more than the limit of 2147483648 bytes (2 GB)."
        );
    }

    #[rstest]
    #[case("STATS = 0", Err("0"))]
    #[case("STATS = 1", Ok(1))]
    #[case("STATS = 100", Ok(100))]
    #[case("STATS = 101", Err("101"))]
    #[case("STATS = -5", Err("-5"))]
    #[case("STATS", Ok(DEFAULT_STATS))]
    fn stats_limits(#[case] with: &str, #[case] expected: Result<u32, &str>) {
        for r in [backup_with(with), restore_with(with)] {
            match (r, expected) {
                (Ok(Statement::Backup(b)), Ok(n)) => assert_eq!(b.options.stats, Some(n)),
                (Ok(Statement::Restore(b)), Ok(n)) => assert_eq!(b.options.stats, Some(n)),
                (Err(e), Err(v)) => {
                    assert_eq!((e.number, e.severity), (MSG_BAD_STATS, 16), "{e}");
                    assert_eq!(
                        e.message,
                        format!("Invalid STATS value {v}. STATS must be between 1 and 100.")
                    );
                }
                (r, _) => panic!("{with}: {r:?}"),
            }
        }
    }

    fn devices_sql(verb: &str, n: usize) -> String {
        let (op, dir) = if verb == "BACKUP" {
            ("BACKUP", "TO")
        } else {
            ("RESTORE", "FROM")
        };
        let devs: Vec<String> = (0..n).map(|i| format!("VIRTUAL_DEVICE = 'd{i}'")).collect();
        format!("{op} DATABASE db {dir} {}", devs.join(", "))
    }

    #[rstest]
    #[case("BACKUP", 1, true)]
    #[case("BACKUP", 63, true)]
    #[case("BACKUP", 64, true)]
    #[case("BACKUP", 65, false)]
    #[case("RESTORE", 64, true)]
    #[case("RESTORE", 65, false)]
    #[case("RESTORE", 1000, false)]
    fn device_count_limit(#[case] verb: &str, #[case] n: usize, #[case] ok: bool) {
        match parse_statement(&devices_sql(verb, n)) {
            Ok(Statement::Backup(b)) => {
                assert!(ok);
                assert_eq!(b.devices.len(), n);
                assert_eq!(b.devices[0], "d0");
                assert_eq!(b.effective_buffercount(), default_buffercount(n));
            }
            Ok(Statement::Restore(r)) => {
                assert!(ok);
                assert_eq!(r.devices.len(), n);
                assert_eq!(r.effective_buffercount(), default_buffercount(n));
            }
            Ok(other) => panic!("{other:?}"),
            Err(e) => {
                assert!(!ok, "{e}");
                assert_eq!((e.number, e.severity), (MSG_TOO_MANY_DEVICES, 16));
                assert!(e.message.starts_with(
                    "Too many backup devices specified for backup or restore; only 64 are \
                     allowed."
                ));
                assert!(e.message.contains(&format!("{n} devices")), "{e}");
            }
        }
    }

    #[rstest]
    #[case("VIRTUAL_DEVICE = 'a', VIRTUAL_DEVICE = 'a'", Some("a"))]
    #[case("VIRTUAL_DEVICE = 'a', VIRTUAL_DEVICE = 'b', VIRTUAL_DEVICE = N'b'", Some("b"))]
    #[case("VIRTUAL_DEVICE = 'a', VIRTUAL_DEVICE = 'A'", None)] // case-sensitive (SPEC §2.6)
    fn duplicate_devices(#[case] devs: &str, #[case] dup: Option<&str>) {
        let r = parse_statement(&format!("BACKUP DATABASE d TO {devs}"));
        match dup {
            None => assert!(r.is_ok(), "{r:?}"),
            Some(d) => {
                let e = r.unwrap_err();
                assert_eq!((e.number, e.severity), (MSG_DUPLICATE_DEVICE, 16));
                assert_eq!(
                    e.message,
                    format!(
                        "Operating system error: the same virtual device '{d}' is specified \
                         more than once."
                    )
                );
            }
        }
    }

    #[rstest]
    #[case("BACKUP DATABASE d TO VIRTUAL_DEVICE='v' WITH SNAPSHOT", true)]
    #[case("BACKUP DATABASE d TO VIRTUAL_DEVICE='v', VIRTUAL_DEVICE='w' WITH SNAPSHOT", false)]
    fn snapshot_needs_one_device(#[case] sql: &str, #[case] ok: bool) {
        match parse_statement(sql) {
            Ok(_) => assert!(ok),
            Err(e) => {
                assert!(!ok, "{e}");
                assert_eq!(e.number, MSG_SNAPSHOT_DEVICE_COUNT);
                assert!(e.message.contains("2 were specified"), "{e}");
            }
        }
    }

    #[rstest]
    #[case("FORMAT, FORMAT", "FORMAT", "BACKUP")]
    #[case("FORMAT, NOFORMAT", "NOFORMAT", "BACKUP")]
    #[case("init, noinit", "NOINIT", "BACKUP")]
    #[case("BLOCKSIZE = 512, blocksize = 512", "BLOCKSIZE", "BACKUP")]
    #[case("BUFFERCOUNT = 1, BUFFERCOUNT = 2", "BUFFERCOUNT", "BACKUP")]
    #[case("MAXTRANSFERSIZE = 65536, MAXTRANSFERSIZE = 65536", "MAXTRANSFERSIZE", "BACKUP")]
    #[case("COPY_ONLY, COPY_ONLY", "COPY_ONLY", "BACKUP")]
    #[case("CHECKSUM, NO_CHECKSUM", "NO_CHECKSUM", "BACKUP")]
    #[case("SNAPSHOT, SNAPSHOT", "SNAPSHOT", "BACKUP")]
    #[case("STATS, STATS = 5", "STATS", "BACKUP")]
    #[case("DESCRIPTION = 'a', DESCRIPTION = 'b'", "DESCRIPTION", "BACKUP")]
    #[case("NAME = 'a', NAME = 'b'", "NAME", "BACKUP")]
    #[case("SKIP, NOSKIP", "NOSKIP", "BACKUP")]
    #[case("REWIND, REWIND", "REWIND", "BACKUP")]
    #[case("UNLOAD, NOUNLOAD", "NOUNLOAD", "BACKUP")]
    #[case("REPLACE, REPLACE", "REPLACE", "RESTORE")]
    #[case("RECOVERY, NORECOVERY", "NORECOVERY", "RESTORE")]
    #[case("FILE = 1, FILE = 2", "FILE", "RESTORE")]
    #[case("CHECKSUM, CHECKSUM", "CHECKSUM", "RESTORE")]
    fn duplicate_options(#[case] with: &str, #[case] opt: &str, #[case] verb: &str) {
        let sql = if verb == "BACKUP" {
            format!("BACKUP DATABASE d TO VIRTUAL_DEVICE='v'\nWITH {with}")
        } else {
            format!("RESTORE DATABASE d FROM VIRTUAL_DEVICE='v'\nWITH {with}")
        };
        let e = err(&sql);
        assert_eq!((e.number, e.severity), (MSG_DUPLICATE_OPTION, 15), "{e}");
        assert_eq!(
            e.message,
            format!(
                "Syntax error: Duplicate specification of the action \"{opt}\" in the {verb} \
                 statement."
            )
        );
        assert_eq!(e.line, 2);
    }

    #[test]
    fn move_is_repeatable_and_filespec_duplicates_are_errors() {
        assert!(restore_with("MOVE 'a' TO 'b', MOVE 'c' TO 'd', MOVE 'a' TO 'e'").is_ok());
        let e = err("CREATE DATABASE d (SIZE = 1, SIZE = 2)");
        assert_eq!(e.number, MSG_DUPLICATE_OPTION);
        assert!(e.message.contains("\"SIZE\" in the CREATE DATABASE"), "{e}");
    }

    #[rstest]
    #[case("CREATE DATABASE d (SIZE = 16777215 MB)", Some(16_777_215 * MB))]
    #[case("CREATE DATABASE d (SIZE = 16 TB)", None)] // 16 TiB > 2147483647 pages
    #[case("CREATE DATABASE d (SIZE = 99999999999999999999999)", None)]
    #[case("CREATE DATABASE d (SIZE = 18446744073709551615 KB)", None)]
    fn create_size_limits(#[case] sql: &str, #[case] expected: Option<u64>) {
        match (parse_statement(sql), expected) {
            (Ok(st), Some(n)) => assert_eq!(st, create("d", Some(n))),
            (Err(e), None) => {
                assert_eq!((e.number, e.severity), (MSG_FILE_SIZE_TOO_LARGE, 16));
                assert!(e.message.contains("SIZE = "), "{e}");
            }
            (r, _) => panic!("{sql}: {r:?}"),
        }
    }

    // ----- names --------------------------------------------------------------------------

    #[rstest]
    #[case("database", "db", true)]
    #[case("database", "", false)]
    #[case("database", "a/b", false)]
    #[case("database", "a\\b", false)]
    #[case("database", "a\0b", false)]
    #[case("database", "a\tb", false)]
    #[case("database", "a\nb", false)]
    #[case("database", "a\u{7f}b", false)]
    #[case("database", "with space", true)]
    #[case("device", "{6F9619FF-8B86-D011-B42D-00C04FC964FF}", true)]
    #[case("device", "", false)]
    #[case("device", "/tmp/x", false)]
    #[case("device", "C:\\x", false)]
    #[case("device", "x\u{1}", false)]
    #[case("VIRTUAL_DEVICE", "a/b", false)]
    fn name_rules(#[case] kind: &str, #[case] name: &str, #[case] ok: bool) {
        match validate_name(kind, name) {
            Ok(()) => assert!(ok, "{name:?} accepted"),
            Err(e) => {
                assert!(!ok, "{name:?} rejected: {e}");
                if kind.eq_ignore_ascii_case("database") {
                    assert_eq!(e.number, MSG_BAD_DATABASE_NAME);
                    assert_eq!(e.message, format!("Invalid database name '{name}'."));
                } else {
                    assert_eq!(e.number, MSG_BAD_DEVICE_NAME);
                    assert_eq!(
                        e.message,
                        format!(
                            "Cannot open backup device '{name}'. Operating system error \
                             123(The filename, directory name, or volume label syntax is \
                             incorrect.)."
                        )
                    );
                }
                assert_eq!(e.severity, 16);
            }
        }
    }

    #[rstest]
    #[case(127, true)]
    #[case(128, true)]
    #[case(129, false)]
    fn name_length_limit(#[case] len: usize, #[case] ok: bool) {
        let name = "n".repeat(len);
        assert_eq!(validate_name("database", &name).is_ok(), ok);
        assert_eq!(validate_name("device", &name).is_ok(), ok);
        // Counted in UTF-16 units: a non-BMP char is two.
        let wide = format!("{}{}", "n".repeat(len - 1), '\u{1F600}');
        assert_eq!(validate_name("database", &wide).is_ok(), len < 128);
        let sql = format!("BACKUP DATABASE [{name}] TO VIRTUAL_DEVICE = '{name}'");
        match parse_statement(&sql) {
            Ok(_) => assert!(ok),
            Err(e) => {
                assert!(!ok);
                assert_eq!(e.number, MSG_BAD_DATABASE_NAME);
                assert!(e.message.contains(&name));
            }
        }
        let sql = format!("BACKUP DATABASE d TO VIRTUAL_DEVICE = '{name}'");
        match parse_statement(&sql) {
            Ok(_) => assert!(ok),
            Err(e) => {
                assert!(!ok);
                assert_eq!(e.number, MSG_BAD_DEVICE_NAME);
                assert!(e.message.contains(&name));
            }
        }
    }

    #[rstest]
    #[case("CREATE DATABASE [a/b]", MSG_BAD_DATABASE_NAME, "a/b")]
    #[case("DROP DATABASE [a\\b]", MSG_BAD_DATABASE_NAME, "a\\b")]
    #[case("RESTORE DATABASE [] FROM VIRTUAL_DEVICE = 'v'", MSG_BAD_DATABASE_NAME, "''")]
    #[case("BACKUP DATABASE d TO VIRTUAL_DEVICE = ''", MSG_BAD_DEVICE_NAME, "''")]
    #[case("BACKUP DATABASE d TO VIRTUAL_DEVICE = '../x'", MSG_BAD_DEVICE_NAME, "'../x'")]
    #[case(
        "RESTORE LOG d FROM VIRTUAL_DEVICE = 'a', VIRTUAL_DEVICE = 'b\\c'",
        MSG_BAD_DEVICE_NAME,
        "'b\\c'"
    )]
    fn names_checked_in_statements(#[case] sql: &str, #[case] number: u32, #[case] shown: &str) {
        let e = err(sql);
        assert_eq!(e.number, number, "{e}");
        assert!(e.message.contains(shown), "{e}");
    }

    #[test]
    fn other_name_kinds_use_their_kind_in_the_message() {
        let e = validate_name("login", "").unwrap_err();
        assert_eq!(e.number, MSG_BAD_DATABASE_NAME);
        assert_eq!(e.message, "Invalid login name ''.");
    }

    // ----- semantic error lines -----------------------------------------------------------

    #[rstest]
    #[case(
        "BACKUP DATABASE a\nTO VIRTUAL_DEVICE='x'\nWITH BLOCKSIZE = 3000",
        1,
        MSG_BAD_BLOCKSIZE
    )]
    #[case(
        "CREATE DATABASE a;\n\nBACKUP DATABASE a TO VIRTUAL_DEVICE='x' WITH BLOCKSIZE = 3000",
        3,
        MSG_BAD_BLOCKSIZE
    )]
    #[case(
        "CREATE DATABASE a\nGO\n\n  RESTORE DATABASE a\n FROM VIRTUAL_DEVICE='x'\n WITH STATS = 0",
        4,
        MSG_BAD_STATS
    )]
    #[case("\n\nDROP DATABASE\n[a/b]", 3, MSG_BAD_DATABASE_NAME)]
    #[case(
        "\nBACKUP DATABASE d TO\n VIRTUAL_DEVICE='a',\n VIRTUAL_DEVICE='a'",
        2,
        MSG_DUPLICATE_DEVICE
    )]
    fn semantic_errors_report_statement_line(#[case] sql: &str, #[case] line: u32, #[case] number: u32) {
        let e = err(sql);
        assert_eq!((e.number, e.line), (number, line), "{e}");
    }

    // ----- misc API -----------------------------------------------------------------------

    #[test]
    fn display_is_sqlcmd_style() {
        let e = err("\nSELECT 1");
        assert_eq!(
            e.to_string(),
            "Msg 102, Level 15, State 1, Server vdisim, Line 2\nIncorrect syntax near 'SELECT'."
        );
        let e = SqlError::new(MSG_TERMINATING, 16, "BACKUP DATABASE is terminating abnormally.")
            .at_line(7)
            .with_state(2);
        assert_eq!(
            e.to_string(),
            "Msg 3013, Level 16, State 2, Server vdisim, Line 7\nBACKUP DATABASE is terminating \
             abnormally."
        );
    }

    #[test]
    fn effective_defaults() {
        let Ok(Statement::Backup(b)) = parse_statement("BACKUP DATABASE d TO VIRTUAL_DEVICE='v'") else {
            panic!()
        };
        assert_eq!(b.effective_blocksize(), DEFAULT_BLOCKSIZE);
        assert_eq!(b.effective_maxtransfersize(), DEFAULT_MAXTRANSFERSIZE);
        assert_eq!(b.effective_buffercount(), 4);
        let Ok(Statement::Restore(r)) = parse_statement(&devices_sql("RESTORE", 3)) else {
            panic!()
        };
        assert_eq!(r.effective_blocksize(), 512);
        assert_eq!(r.effective_maxtransfersize(), 65536);
        assert_eq!(r.effective_buffercount(), 8);
        assert!(r.options.recovery);
    }

    #[rstest]
    #[case(0, 2)]
    #[case(1, 4)]
    #[case(64, 130)]
    #[case(usize::MAX, u32::MAX)]
    fn default_buffercount_values(#[case] devices: usize, #[case] n: u32) {
        assert_eq!(default_buffercount(devices), n);
    }

    #[test]
    fn limits_are_consistent() {
        assert_eq!(MAX_MAXTRANSFERSIZE, 4 * 1024 * 1024);
        assert_eq!(MAX_BUFFER_MEMORY, 1 << 31);
        // The default buffer count at the device limit fits the memory cap at the largest
        // transfer size, so a statement without BUFFERCOUNT never trips Msg 3213.
        assert!(u64::from(default_buffercount(MAX_DEVICES)) * u64::from(MAX_MAXTRANSFERSIZE) <= MAX_BUFFER_MEMORY);
        assert!(RESERVED.windows(2).all(|w| w[0] < w[1]), "RESERVED sorted");
        assert!(RESERVED.iter().all(|k| k.len() <= 32));
    }

    #[test]
    fn statement_database_accessor() {
        let v = parse_batch(
            "CREATE DATABASE a; DROP DATABASE b; BACKUP LOG c TO VIRTUAL_DEVICE='v'; \
             RESTORE LOG d FROM VIRTUAL_DEVICE='v'",
        )
        .unwrap();
        let names: Vec<&str> = v.iter().map(Statement::database).collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
    }

    #[test]
    fn long_inputs_are_linear() {
        let start = std::time::Instant::now();
        let n = 200_000;
        let cases = [
            format!("BACKUP DATABASE d TO {}", "VIRTUAL_DEVICE='x',".repeat(n)),
            format!("{}BACKUP", "/*".repeat(n)),
            "-- c\n".repeat(n),
            "GO\n".repeat(n),
            ";".repeat(n),
            "CREATE DATABASE a\n".repeat(n / 4),
            format!("BACKUP DATABASE d TO VIRTUAL_DEVICE='{}'", "x".repeat(n * 5)),
            format!("BACKUP DATABASE d TO VIRTUAL_DEVICE='{}", "''".repeat(n)),
            format!("BACKUP DATABASE [{}]", "]]".repeat(n)),
            format!("CREATE DATABASE d (SIZE = {})", "9".repeat(n)),
            format!("GO {}", "GO ".repeat(n)),
            "(".repeat(n),
            "x".repeat(n * 5),
        ];
        for c in &cases {
            let _ = parse_batch(c);
            let _ = parse_statement(c);
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(parse_batch(&cases[3]).unwrap().len(), 0);
        assert_eq!(parse_batch(&cases[5]).unwrap().len(), n / 4);
    }

    #[test]
    fn serializes() {
        fn assert_serialize<T: Serialize>(_: &T) {}
        let st = parse_statement("BACKUP DATABASE d TO VIRTUAL_DEVICE='v'").unwrap();
        assert_serialize(&st);
        assert_serialize(&err("x"));
    }

    // ----- properties ---------------------------------------------------------------------

    const SOUP: &[&str] = &[
        "BACKUP",
        "RESTORE",
        "CREATE",
        "DROP",
        "DATABASE",
        "LOG",
        "TO",
        "FROM",
        "ON",
        "PRIMARY",
        "VIRTUAL_DEVICE",
        "DISK",
        "URL",
        "WITH",
        "BLOCKSIZE",
        "BUFFERCOUNT",
        "MAXTRANSFERSIZE",
        "FORMAT",
        "NOINIT",
        "COPY_ONLY",
        "CHECKSUM",
        "SNAPSHOT",
        "STATS",
        "DESCRIPTION",
        "NAME",
        "FILENAME",
        "SIZE",
        "MAXSIZE",
        "FILEGROWTH",
        "UNLIMITED",
        "MB",
        "GB",
        "KB",
        "%",
        "MOVE",
        "REPLACE",
        "NORECOVERY",
        "FILE",
        "SELECT",
        "db",
        "[d]]b]",
        "\"q\"",
        "'v'",
        "N'v'",
        "'it''s'",
        "'",
        "[",
        "\"",
        "=",
        ",",
        ";",
        "(",
        ")",
        "-",
        "+",
        "*",
        "/",
        "/*",
        "*/",
        "--",
        "@v",
        "@",
        "0",
        "512",
        "65536",
        "4194304",
        "4097",
        "1.5",
        "99999999999999999999999",
        "\nGO\n",
        "GO",
        "\n",
        "é",
        "\u{0}",
        "\u{1F600}",
        "\r\n",
    ];

    const SEPS: &[&str] = &[" ", "", "\n", "\t"];

    fn soup() -> impl Strategy<Value = String> {
        prop::collection::vec((prop::sample::select(SOUP), prop::sample::select(SEPS)), 0..48)
            .prop_map(|v| v.into_iter().flat_map(|(t, sep)| [t, sep]).collect())
    }

    fn valid_backup() -> impl Strategy<Value = (String, u32, u32, u32, usize)> {
        (9u32..=16, 1u32..=64, 1u32..=128, 1usize..=4).prop_map(|(bs, mts, bc, nd)| {
            let bs = 1u32 << bs;
            let mts = mts * 65536;
            let devs: Vec<String> = (0..nd).map(|i| format!("VIRTUAL_DEVICE = N'dev{i}'")).collect();
            (
                format!(
                    "backup database [db] to {} with blocksize = {bs}, maxtransfersize = {mts}, \
                     buffercount = {bc}",
                    devs.join(",\n")
                ),
                bs,
                mts,
                bc,
                nd,
            )
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_strings_never_panic(sql in any::<String>()) {
            let _ = parse_batch(&sql);
            let _ = parse_statement(&sql);
        }

        #[test]
        fn token_soup_never_panics(sql in soup()) {
            let r = parse_batch(&sql);
            if let Err(e) = &r {
                prop_assert!(e.line >= 1);
                prop_assert!(!e.message.is_empty());
            }
            let _ = parse_statement(&sql);
        }

        #[test]
        fn prefix_of_soup_never_panics(sql in soup(), cut in 0usize..400) {
            let cut = sql.char_indices().map(|(i, _)| i).nth(cut).unwrap_or(sql.len());
            let _ = parse_batch(&sql[..cut]);
        }

        #[test]
        fn valid_backups_parse((sql, bs, mts, bc, nd) in valid_backup()) {
            let st = parse_statement(&sql).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let Statement::Backup(b) = st else { return Err(TestCaseError::fail("not a backup")) };
            prop_assert_eq!(b.effective_blocksize(), bs);
            prop_assert_eq!(b.effective_maxtransfersize(), mts);
            prop_assert_eq!(b.effective_buffercount(), bc);
            prop_assert_eq!(b.devices.len(), nd);
        }

        #[test]
        fn mutated_valid_statements_never_panic(
            (sql, _, _, _, _) in valid_backup(),
            at in 0usize..300,
            ins in prop::sample::select(SOUP),
        ) {
            let at = sql.char_indices().map(|(i, _)| i).nth(at).unwrap_or(sql.len());
            let mutated = format!("{}{}{}", &sql[..at], ins, &sql[at..]);
            let _ = parse_batch(&mutated);
            let _ = parse_statement(&mutated);
        }
    }
}
