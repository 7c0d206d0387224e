//! Databases of the simulated SQL Server, kept as plain files in a data directory.
//!
//! A database `X` is the file `<root>/X.mdf`: 8 KiB pages, each starting with a 24-byte header
//! (magic `VDISIMPG`, page id, hash of the database name; little-endian) followed by
//! pseudo-random bytes from splitmix64 seeded by (name hash, page id). Content is therefore
//! deterministic (same name and size give the same bytes on every machine) yet differs between
//! databases, so a restore into the wrong database or a wrong page order is visible.
//!
//! Files are only ever published complete: creation and restore write a dot-file
//! (`.X.creating-<pid>-<n>`, `.X.restoring-<pid>-<n>`), fsync it and rename it into place.
//! Dot-files never count as databases, and [`DataDir::sweep_stale_restores`] removes those
//! left behind by killed processes.

use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes per database page.
pub const PAGE_SIZE: usize = 8192;
/// Bytes at the start of each page holding magic, page id and name hash.
pub const PAGE_HEADER_LEN: usize = 24;
const PAGE_MAGIC: [u8; 8] = *b"VDISIMPG";
const EXTENSION: &str = "mdf";
const MAX_NAME_CHARS: usize = 128;
const RESTORING: &str = ".restoring-";
const CREATING: &str = ".creating-";
/// Large sequential I/O keeps creation well above 500 MB/s.
const IO_CHUNK: usize = 1 << 20;

/// Distinguishes temp files of one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Why a database operation failed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum DbError {
    /// The database already exists (and REPLACE was not given).
    #[error("database '{0}' already exists; choose a different name or use REPLACE")]
    Exists(String),
    /// No such database.
    #[error("database '{0}' does not exist")]
    NotFound(String),
    /// The name cannot be used as a database (file) name.
    #[error("invalid database name {0:?}: use 1 to 128 characters, not starting with '.', without '..', control characters or any of / \\ : * ? \" < > |")]
    InvalidName(String),
    /// The size does not fit the page arithmetic.
    #[error("invalid database size: {0}")]
    InvalidSize(String),
    /// A file system error.
    #[error("I/O error: {0}")]
    Io(String),
}

impl From<io::Error> for DbError {
    fn from(e: io::Error) -> Self {
        DbError::Io(e.to_string())
    }
}

/// Name, size and page count of a database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbInfo {
    /// Database name.
    pub name: String,
    /// Bytes in the file.
    pub size: u64,
    /// Pages (the last one may be partial for restored odd-sized data).
    pub pages: u64,
}

impl DbInfo {
    fn new(name: &str, size: u64) -> Self {
        Self {
            name: name.to_owned(),
            size,
            pages: size.div_ceil(PAGE_SIZE as u64),
        }
    }
}

/// Checks that `db` is usable as a database and file name on every platform. Leading dots are
/// reserved for temp files.
pub fn validate_name(db: &str) -> Result<(), DbError> {
    let n = db.chars().count();
    let bad_char = |c: char| c.is_control() || matches!(c, '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|');
    if n == 0 || n > MAX_NAME_CHARS || db.starts_with('.') || db.contains("..") {
        return Err(DbError::InvalidName(db.to_owned()));
    }
    if db.chars().any(bad_char) {
        return Err(DbError::InvalidName(db.to_owned()));
    }
    Ok(())
}

fn invalid_input(e: DbError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e.to_string())
}

// ---------------------------------------------------------------------------------------------
// Deterministic content

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Stable 64-bit hash of a database name (FNV-1a, then mixed).
pub fn name_hash(db: &str) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for &b in db.as_bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3);
    }
    splitmix64(&mut h)
}

fn fill_page(hash: u64, page_id: u64, page: &mut [u8]) {
    page[0..8].copy_from_slice(&PAGE_MAGIC);
    page[8..16].copy_from_slice(&page_id.to_le_bytes());
    page[16..24].copy_from_slice(&hash.to_le_bytes());
    let mut state = hash ^ page_id.wrapping_mul(0xD1B5_4A32_D192_ED03);
    for w in page[PAGE_HEADER_LEN..].chunks_exact_mut(8) {
        w.copy_from_slice(&splitmix64(&mut state).to_le_bytes());
    }
}

/// The content page `page_id` of a freshly created database `db` has.
pub fn page_content(db: &str, page_id: u64) -> Box<[u8; PAGE_SIZE]> {
    let mut page = Box::new([0u8; PAGE_SIZE]);
    fill_page(name_hash(db), page_id, &mut page[..]);
    page
}

// ---------------------------------------------------------------------------------------------
// Positional I/O, so several device threads can share one reader or restore target.

#[cfg(unix)]
fn read_exact_at(f: &File, buf: &mut [u8], off: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(f, buf, off)
}
#[cfg(unix)]
fn write_all_at(f: &File, buf: &[u8], off: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(f, buf, off)
}
#[cfg(windows)]
fn read_exact_at(f: &File, mut buf: &mut [u8], mut off: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match f.seek_read(buf, off) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                off += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
#[cfg(windows)]
fn write_all_at(f: &File, mut buf: &[u8], mut off: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match f.seek_write(buf, off) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                buf = &buf[n..];
                off += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
#[cfg(not(any(unix, windows)))]
fn read_exact_at(mut f: &File, buf: &mut [u8], off: u64) -> io::Result<()> {
    use std::io::{Seek, SeekFrom};
    f.seek(SeekFrom::Start(off))?;
    f.read_exact(buf)
}
#[cfg(not(any(unix, windows)))]
fn write_all_at(mut f: &File, buf: &[u8], off: u64) -> io::Result<()> {
    use std::io::{Seek, SeekFrom};
    f.seek(SeekFrom::Start(off))?;
    f.write_all(buf)
}

fn check_range(offset: u64, len: usize, size: u64) -> io::Result<()> {
    match offset.checked_add(len as u64) {
        Some(end) if end <= size => Ok(()),
        _ => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("range {offset}+{len} lies beyond the database size {size}"),
        )),
    }
}

/// Reads until `buf` is full or the file ends; returns the bytes read.
fn fill(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// Removes a temp file unless disarmed, so no error path leaves one behind.
struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_file(p);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Data directory

/// The directory holding the databases.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// Opens `root`, creating it if needed.
    pub fn new(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root)?;
        Ok(Self { root })
    }

    /// `$VDISIM_DATA`, else the per-user data dir (`%LOCALAPPDATA%\vdisim` on Windows,
    /// `$XDG_DATA_HOME/vdisim` or `$HOME/.local/share/vdisim` elsewhere), else
    /// `<temp>/vdisim`.
    pub fn default_location() -> PathBuf {
        location_from(&|k| std::env::var_os(k), cfg!(windows))
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/<db>.mdf`, after checking the name.
    pub fn path_of(&self, db: &str) -> Result<PathBuf, DbError> {
        validate_name(db)?;
        Ok(self.root.join(format!("{db}.{EXTENSION}")))
    }

    /// True if the database exists (false for invalid names).
    pub fn exists(&self, db: &str) -> bool {
        self.path_of(db).map(|p| p.is_file()).unwrap_or(false)
    }

    /// Size of the database file in bytes.
    pub fn size_of(&self, db: &str) -> io::Result<u64> {
        Ok(fs::metadata(self.path_of(db).map_err(invalid_input)?)?.len())
    }

    /// Name, size and pages of an existing database.
    pub fn info(&self, db: &str) -> Result<DbInfo, DbError> {
        let path = self.path_of(db)?;
        match fs::metadata(path) {
            Ok(m) if m.is_file() => Ok(DbInfo::new(db, m.len())),
            Ok(_) => Err(DbError::NotFound(db.to_owned())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(DbError::NotFound(db.to_owned())),
            Err(e) => Err(e.into()),
        }
    }

    /// Database names, sorted. Dot-files (temp files) and other files are ignored.
    pub fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.root)? {
            let entry = entry?;
            let Ok(file) = entry.file_name().into_string() else {
                continue;
            };
            let Some(db) = file.strip_suffix(&format!(".{EXTENSION}")) else {
                continue;
            };
            if validate_name(db).is_ok() && entry.file_type()?.is_file() {
                names.push(db.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    /// Deletes a database.
    pub fn drop_database(&self, db: &str) -> io::Result<()> {
        fs::remove_file(self.path_of(db).map_err(invalid_input)?)
    }

    fn temp_path(&self, db: &str, what: &str) -> PathBuf {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        self.root.join(format!(".{db}{what}{}-{n}", std::process::id()))
    }

    /// Creates database `db` of `size_bytes` rounded up to whole pages (at least one) with
    /// deterministic content. Fails if it exists.
    pub fn create_database(&self, db: &str, size_bytes: u64) -> Result<DbInfo, DbError> {
        let dest = self.path_of(db)?;
        if dest.exists() {
            return Err(DbError::Exists(db.to_owned()));
        }
        let pages = size_bytes.div_ceil(PAGE_SIZE as u64).max(1);
        let size = pages
            .checked_mul(PAGE_SIZE as u64)
            .ok_or_else(|| DbError::InvalidSize(format!("{size_bytes} bytes is too large")))?;
        let tmp = self.temp_path(db, CREATING);
        let mut guard = TempGuard(Some(tmp.clone()));
        let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        let hash = name_hash(db);
        let mut buf = vec![0u8; IO_CHUNK];
        let per_chunk = (IO_CHUNK / PAGE_SIZE) as u64;
        let mut page = 0;
        while page < pages {
            let n = (pages - page).min(per_chunk);
            let bytes = &mut buf[..n as usize * PAGE_SIZE];
            for (i, p) in bytes.chunks_exact_mut(PAGE_SIZE).enumerate() {
                fill_page(hash, page + i as u64, p);
            }
            file.write_all(bytes)?;
            page += n;
        }
        // No fsync: a killed process cannot expose a partial file (the rename publishes it
        // complete), and the content can be regenerated, so only power loss could hurt and
        // creation stays disk-bandwidth bound.
        drop(file);
        publish(&tmp, &dest, false, db)?;
        guard.0 = None;
        Ok(DbInfo::new(db, size))
    }

    /// Opens a database for positional reads (shareable between threads).
    pub fn open_reader(&self, db: &str) -> Result<DbReader, DbError> {
        let path = self.path_of(db)?;
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(DbError::NotFound(db.to_owned())),
            Err(e) => return Err(e.into()),
        };
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(DbError::NotFound(db.to_owned()));
        }
        Ok(DbReader {
            name: db.to_owned(),
            size: meta.len(),
            file,
        })
    }

    /// Starts restoring `db` (`size` bytes) into a temp file; the database appears only at
    /// [`RestoreTarget::commit`]. Fails with [`DbError::Exists`] if it exists and `!replace`.
    pub fn begin_restore(&self, db: &str, size: u64, replace: bool) -> Result<RestoreTarget, DbError> {
        let dest = self.path_of(db)?;
        if !replace && dest.exists() {
            return Err(DbError::Exists(db.to_owned()));
        }
        let tmp = self.temp_path(db, RESTORING);
        let file = OpenOptions::new().read(true).write(true).create_new(true).open(&tmp)?;
        let target = RestoreTarget {
            name: db.to_owned(),
            dest,
            tmp,
            file: Some(file),
            size,
            replace,
        };
        if let Some(f) = &target.file {
            f.set_len(size)?; // on error `target` drops and removes the temp file
        }
        Ok(target)
    }

    /// A 64-bit content hash of the database file (not cryptographic; for comparisons).
    pub fn digest(&self, db: &str) -> io::Result<u64> {
        let mut f = File::open(self.path_of(db).map_err(invalid_input)?)?;
        let mut h = Hasher64::new();
        let mut buf = vec![0u8; IO_CHUNK];
        loop {
            let n = fill(&mut f, &mut buf)?;
            h.update(&buf[..n]);
            if n < buf.len() {
                return Ok(h.finish());
            }
        }
    }

    /// True if databases `a` and `b` have identical bytes.
    pub fn identical(&self, a: &str, b: &str) -> io::Result<bool> {
        let mut fa = File::open(self.path_of(a).map_err(invalid_input)?)?;
        let mut fb = File::open(self.path_of(b).map_err(invalid_input)?)?;
        if fa.metadata()?.len() != fb.metadata()?.len() {
            return Ok(false);
        }
        let mut ba = vec![0u8; IO_CHUNK];
        let mut bb = vec![0u8; IO_CHUNK];
        loop {
            let na = fill(&mut fa, &mut ba)?;
            let nb = fill(&mut fb, &mut bb)?;
            if na != nb || ba[..na] != bb[..nb] {
                return Ok(false);
            }
            if na < ba.len() {
                return Ok(true);
            }
        }
    }

    /// Removes temp files of processes that no longer run; returns how many. Only Linux can
    /// tell (via `/proc/<pid>`); elsewhere nothing is removed.
    pub fn sweep_stale_restores(&self) -> io::Result<usize> {
        let mut removed = 0;
        for entry in fs::read_dir(&self.root)? {
            let entry = entry?;
            let Ok(file) = entry.file_name().into_string() else {
                continue;
            };
            let Some(pid) = temp_file_pid(&file) else {
                continue;
            };
            if !pid_alive(pid) && fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

fn location_from(get: &dyn Fn(&str) -> Option<OsString>, windows: bool) -> PathBuf {
    let var = |k: &str| get(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(p) = var("VDISIM_DATA") {
        return p;
    }
    if windows {
        if let Some(p) = var("LOCALAPPDATA") {
            return p.join("vdisim");
        }
    } else {
        if let Some(p) = var("XDG_DATA_HOME").filter(|p| p.is_absolute()) {
            return p.join("vdisim");
        }
        if let Some(p) = var("HOME") {
            return p.join(".local").join("share").join("vdisim");
        }
    }
    std::env::temp_dir().join("vdisim")
}

/// The pid in `.<db>.restoring-<pid>-<n>` or `.<db>.creating-<pid>-<n>`.
fn temp_file_pid(file: &str) -> Option<u32> {
    if !file.starts_with('.') {
        return None;
    }
    // The last marker wins: database names may themselves contain a marker.
    let (i, m) = [RESTORING, CREATING]
        .iter()
        .filter_map(|m| file.rfind(m).map(|i| (i, m)))
        .max_by_key(|&(i, _)| i)?;
    let rest = &file[i + m.len()..];
    rest.split('-').next()?.parse().ok()
}

#[cfg(target_os = "linux")]
fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}
#[cfg(not(target_os = "linux"))]
fn pid_alive(_pid: u32) -> bool {
    true
}

/// Moves a finished temp file to `dest`. Without `replace` it never overwrites: a hard link
/// fails atomically if `dest` appeared meanwhile.
fn publish(tmp: &Path, dest: &Path, replace: bool, db: &str) -> Result<(), DbError> {
    if replace {
        fs::rename(tmp, dest)?;
    } else {
        match fs::hard_link(tmp, dest) {
            Ok(()) => {
                let _ = fs::remove_file(tmp);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(DbError::Exists(db.to_owned())),
            // File systems without hard links: check, then rename.
            Err(_) if dest.exists() => return Err(DbError::Exists(db.to_owned())),
            Err(_) => fs::rename(tmp, dest)?,
        }
    }
    if let Some(dir) = dest.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Reader and restore target

/// Positional reads of one database; `&self` methods so device threads can share it.
#[derive(Debug)]
pub struct DbReader {
    name: String,
    size: u64,
    file: File,
}

impl DbReader {
    /// Database name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Bytes in the database when it was opened.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Fills `buf` from `offset`; reading past the end is an `UnexpectedEof` error.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(offset, buf.len(), self.size)?;
        read_exact_at(&self.file, buf, offset)
    }
}

/// A database being restored. Dropping it without [`commit`](Self::commit) deletes the temp
/// file, so a failed restore never leaves something that looks like a database.
#[derive(Debug)]
pub struct RestoreTarget {
    name: String,
    dest: PathBuf,
    tmp: PathBuf,
    file: Option<File>,
    size: u64,
    replace: bool,
}

impl RestoreTarget {
    /// Database name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Bytes the database will have.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The temp file written to.
    pub fn temp_path(&self) -> &Path {
        &self.tmp
    }

    /// Writes `data` at `offset`; writes past the declared size are refused.
    pub fn write_at(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        check_range(offset, data.len(), self.size)?;
        match &self.file {
            Some(f) => write_all_at(f, data, offset),
            None => Err(io::Error::other("restore target already closed")),
        }
    }

    /// Makes the data durable and atomically puts it in place as the database. Without
    /// REPLACE it fails with [`DbError::Exists`] if the database appeared meanwhile.
    pub fn commit(mut self) -> Result<DbInfo, DbError> {
        if let Some(f) = self.file.take() {
            f.sync_all()?;
        }
        publish(&self.tmp, &self.dest, self.replace, &self.name)?;
        self.tmp = PathBuf::new();
        Ok(DbInfo::new(&self.name, self.size))
    }

    /// Discards the restore (same as dropping).
    pub fn abort(self) {}
}

impl Drop for RestoreTarget {
    fn drop(&mut self) {
        drop(self.file.take());
        if !self.tmp.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Content hash: four xxHash64-style lanes over 32-byte stripes.

const P1: u64 = 0x9E37_79B1_85EB_CA87;
const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const P3: u64 = 0x1656_67B1_9E37_79F9;

struct Hasher64 {
    lanes: [u64; 4],
    tail: Vec<u8>,
    len: u64,
}

impl Hasher64 {
    fn new() -> Self {
        Self {
            lanes: [P1.wrapping_add(P2), P2, 0, P1.wrapping_neg()],
            tail: Vec::with_capacity(32),
            len: 0,
        }
    }

    fn round(acc: u64, w: u64) -> u64 {
        acc.wrapping_add(w.wrapping_mul(P2)).rotate_left(31).wrapping_mul(P1)
    }

    fn stripe(&mut self, s: &[u8]) {
        for (lane, w) in self.lanes.iter_mut().zip(s.chunks_exact(8)) {
            let mut a = [0u8; 8];
            a.copy_from_slice(w);
            *lane = Self::round(*lane, u64::from_le_bytes(a));
        }
    }

    fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if !self.tail.is_empty() {
            let take = (32 - self.tail.len()).min(data.len());
            self.tail.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.tail.len() < 32 {
                return;
            }
            let t = std::mem::take(&mut self.tail);
            self.stripe(&t);
            self.tail = t;
            self.tail.clear();
        }
        let mut stripes = data.chunks_exact(32);
        for s in &mut stripes {
            self.stripe(s);
        }
        self.tail.extend_from_slice(stripes.remainder());
    }

    fn finish(&self) -> u64 {
        let [a, b, c, d] = self.lanes;
        let mut h = a
            .rotate_left(1)
            .wrapping_add(b.rotate_left(7))
            .wrapping_add(c.rotate_left(12))
            .wrapping_add(d.rotate_left(18))
            .wrapping_add(self.len);
        for &byte in &self.tail {
            h = (h ^ u64::from(byte).wrapping_mul(P3)).rotate_left(11).wrapping_mul(P1);
        }
        splitmix64(&mut h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn dir() -> (tempfile::TempDir, DataDir) {
        let t = tempfile::tempdir().unwrap();
        let d = DataDir::new(t.path().join("data")).unwrap();
        (t, d)
    }

    fn read_all(d: &DataDir, db: &str) -> Vec<u8> {
        fs::read(d.path_of(db).unwrap()).unwrap()
    }

    #[rstest]
    #[case("Sales")]
    #[case("my db 2")]
    #[case("a.b-c_d")]
    #[case("日本語")]
    #[case(&"x".repeat(128))]
    fn valid_names(#[case] name: &str) {
        assert_eq!(validate_name(name), Ok(()));
    }

    #[rstest]
    #[case("")]
    #[case(&"x".repeat(129))]
    #[case("a/b")]
    #[case("a\\b")]
    #[case("a\0b")]
    #[case("..")]
    #[case("a..b")]
    #[case(".hidden")]
    #[case("tab\there")]
    #[case("new\nline")]
    #[case("c:d")]
    #[case("what?")]
    fn invalid_names(#[case] name: &str) {
        let (_t, d) = dir();
        assert_eq!(validate_name(name), Err(DbError::InvalidName(name.into())));
        assert!(d.path_of(name).is_err());
        assert!(!d.exists(name));
        assert!(matches!(d.create_database(name, 1), Err(DbError::InvalidName(_))));
        assert!(matches!(d.begin_restore(name, 1, true), Err(DbError::InvalidName(_))));
        assert!(d.size_of(name).is_err());
        assert!(d.drop_database(name).is_err());
    }

    #[test]
    fn create_is_deterministic_and_name_dependent() {
        let (_t1, a) = dir();
        let (_t2, b) = dir();
        let size = 3 * (1 << 20) + 5 * PAGE_SIZE as u64 + 1; // not a multiple of the I/O chunk
        let info = a.create_database("Sales", size).unwrap();
        assert_eq!(info.pages, 3 * 128 + 6);
        assert_eq!(info.size, info.pages * PAGE_SIZE as u64);
        b.create_database("Sales", size).unwrap();
        b.create_database("Sales2", size).unwrap();
        let x = read_all(&a, "Sales");
        assert_eq!(x.len() as u64, info.size);
        assert_eq!(x, read_all(&b, "Sales"));
        assert_eq!(a.digest("Sales").unwrap(), b.digest("Sales").unwrap());
        let y = read_all(&b, "Sales2");
        assert_ne!(x[PAGE_HEADER_LEN..PAGE_SIZE], y[PAGE_HEADER_LEN..PAGE_SIZE]);
        assert_ne!(b.digest("Sales").unwrap(), b.digest("Sales2").unwrap());
        assert!(!b.identical("Sales", "Sales2").unwrap());
        // Page headers and generator agree; pages differ from each other.
        for p in [0u64, 1, 200, info.pages - 1] {
            let page = &x[p as usize * PAGE_SIZE..][..PAGE_SIZE];
            assert_eq!(&page[..8], b"VDISIMPG");
            assert_eq!(page[8..16], p.to_le_bytes());
            assert_eq!(page[16..24], name_hash("Sales").to_le_bytes());
            assert_eq!(page, &page_content("Sales", p)[..]);
        }
        assert_ne!(x[PAGE_SIZE + 24..2 * PAGE_SIZE], x[24..PAGE_SIZE]);
    }

    #[rstest]
    #[case(0, 1)]
    #[case(1, 1)]
    #[case(8192, 1)]
    #[case(8193, 2)]
    fn sizes_round_up_to_pages(#[case] size: u64, #[case] pages: u64) {
        let (_t, d) = dir();
        let info = d.create_database("db", size).unwrap();
        assert_eq!(info, DbInfo::new("db", pages * 8192));
        assert_eq!(d.size_of("db").unwrap(), pages * 8192);
        assert_eq!(d.info("db").unwrap(), info);
    }

    #[test]
    fn create_refuses_existing_and_huge() {
        let (_t, d) = dir();
        d.create_database("db", 1).unwrap();
        assert_eq!(d.create_database("db", 1), Err(DbError::Exists("db".into())));
        assert!(matches!(
            d.create_database("big", u64::MAX),
            Err(DbError::InvalidSize(_))
        ));
        assert_eq!(d.list().unwrap(), ["db"]);
        assert_eq!(fs::read_dir(d.root()).unwrap().count(), 1);
    }

    #[test]
    fn reader_reads_positionally() {
        let (_t, d) = dir();
        d.create_database("db", 5 * PAGE_SIZE as u64).unwrap();
        let all = read_all(&d, "db");
        let r = d.open_reader("db").unwrap();
        assert_eq!((r.name(), r.size()), ("db", all.len() as u64));
        let mut buf = vec![0u8; 10_000];
        r.read_at(12_345, &mut buf).unwrap();
        assert_eq!(buf, all[12_345..22_345]);
        r.read_at(0, &mut buf[..0]).unwrap();
        let e = r.read_at(all.len() as u64 - 10, &mut buf).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert!(r.read_at(u64::MAX, &mut buf).is_err());
        assert_eq!(d.open_reader("nope").unwrap_err(), DbError::NotFound("nope".into()));
        assert_eq!(d.info("nope"), Err(DbError::NotFound("nope".into())));
    }

    #[test]
    fn restore_commit_publishes_the_copy() {
        let (_t, d) = dir();
        d.create_database("src", 40 * PAGE_SIZE as u64).unwrap();
        let r = d.open_reader("src").unwrap();
        let t = d.begin_restore("copy", r.size(), false).unwrap();
        assert!(!d.exists("copy"));
        assert!(t.temp_path().exists());
        assert_eq!(d.list().unwrap(), ["src"]);
        // Out-of-order chunks, as stripes arrive.
        let chunk = 65_472u64;
        let chunks: Vec<u64> = (0..r.size().div_ceil(chunk)).rev().collect();
        for c in chunks {
            let off = c * chunk;
            let mut buf = vec![0u8; (r.size() - off).min(chunk) as usize];
            r.read_at(off, &mut buf).unwrap();
            t.write_at(off, &buf).unwrap();
        }
        assert!(t.write_at(r.size() - 1, &[0, 0]).is_err());
        let tmp = t.temp_path().to_owned();
        let info = t.commit().unwrap();
        assert_eq!(info, DbInfo::new("copy", r.size()));
        assert!(!tmp.exists());
        assert!(d.identical("src", "copy").unwrap());
        assert_eq!(d.digest("src").unwrap(), d.digest("copy").unwrap());
        assert_eq!(d.list().unwrap(), ["copy", "src"]);
    }

    #[test]
    fn restore_abort_leaves_nothing() {
        let (_t, d) = dir();
        let t = d.begin_restore("new", 3 * PAGE_SIZE as u64, false).unwrap();
        t.write_at(0, &[1; 100]).unwrap();
        let tmp = t.temp_path().to_owned();
        drop(t);
        assert!(!tmp.exists() && !d.exists("new"));
        assert_eq!(fs::read_dir(d.root()).unwrap().count(), 0);
        d.begin_restore("new", 1, false).unwrap().abort();
        assert_eq!(fs::read_dir(d.root()).unwrap().count(), 0);
    }

    #[test]
    fn replace_rule() {
        let (_t, d) = dir();
        d.create_database("db", 2 * PAGE_SIZE as u64).unwrap();
        let before = read_all(&d, "db");
        assert_eq!(
            d.begin_restore("db", 10, false).unwrap_err(),
            DbError::Exists("db".into())
        );
        // An aborted REPLACE keeps the old database.
        let t = d.begin_restore("db", 10, true).unwrap();
        t.write_at(0, b"0123456789").unwrap();
        drop(t);
        assert_eq!(read_all(&d, "db"), before);
        // A committed one replaces it.
        let t = d.begin_restore("db", 10, true).unwrap();
        t.write_at(0, b"0123456789").unwrap();
        assert_eq!(t.commit().unwrap().size, 10);
        assert_eq!(read_all(&d, "db"), b"0123456789");
        // A database created while a non-REPLACE restore ran is not overwritten.
        let t = d.begin_restore("late", 4, false).unwrap();
        d.create_database("late", 1).unwrap();
        assert_eq!(t.commit().unwrap_err(), DbError::Exists("late".into()));
        assert_eq!(d.size_of("late").unwrap(), PAGE_SIZE as u64);
        assert_eq!(d.list().unwrap(), ["db", "late"]);
        assert_eq!(fs::read_dir(d.root()).unwrap().count(), 2);
    }

    #[test]
    fn list_ignores_temp_and_foreign_files_and_sweep_removes_stale() {
        let (_t, d) = dir();
        d.create_database("b", 1).unwrap();
        d.create_database("a", 1).unwrap();
        let live = d.begin_restore("c", 1, false).unwrap();
        let dead = d.root().join(".d.restoring-999999999-0");
        let dead_create = d.root().join(".e.creating-999999998-3");
        for f in [&dead, &dead_create] {
            fs::write(f, b"x").unwrap();
        }
        fs::write(d.root().join("notes.txt"), b"x").unwrap();
        fs::write(d.root().join(".x.mdf"), b"x").unwrap();
        fs::create_dir(d.root().join("dir.mdf")).unwrap();
        assert_eq!(d.list().unwrap(), ["a", "b"]);
        let removed = d.sweep_stale_restores().unwrap();
        if cfg!(target_os = "linux") {
            assert_eq!(removed, 2);
            assert!(!dead.exists() && !dead_create.exists());
        }
        assert!(live.temp_path().exists(), "our own restore must survive");
        assert_eq!(d.list().unwrap(), ["a", "b"]);
        d.drop_database("a").unwrap();
        assert!(d.drop_database("a").is_err());
        assert_eq!(d.list().unwrap(), ["b"]);
    }

    #[test]
    fn temp_names_parse() {
        assert_eq!(temp_file_pid(".db.restoring-42-0"), Some(42));
        assert_eq!(temp_file_pid(".a.restoring-b.creating-7-1"), Some(7));
        assert_eq!(temp_file_pid(".x.restoring-1.restoring-9-0"), Some(9));
        assert_eq!(temp_file_pid("db.restoring-42-0"), None);
        assert_eq!(temp_file_pid(".db.restoring-abc"), None);
        assert_eq!(temp_file_pid(".db.mdf"), None);
    }

    #[test]
    fn default_location_rules() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| OsString::from(*v))
        };
        let all = env(&[
            ("VDISIM_DATA", "/data/v"),
            ("XDG_DATA_HOME", "/xdg"),
            ("HOME", "/home/u"),
            ("LOCALAPPDATA", "C:\\Users\\u\\AppData\\Local"),
        ]);
        assert_eq!(location_from(&all, false), PathBuf::from("/data/v"));
        let unix = env(&[("VDISIM_DATA", ""), ("XDG_DATA_HOME", "/xdg"), ("HOME", "/h")]);
        // "/xdg" is an absolute path only by Unix rules (on Windows it lacks a drive).
        if cfg!(unix) {
            assert_eq!(location_from(&unix, false), Path::new("/xdg").join("vdisim"));
        }
        let rel = env(&[("XDG_DATA_HOME", "rel"), ("HOME", "/h")]);
        assert_eq!(location_from(&rel, false), Path::new("/h/.local/share/vdisim"));
        let win = env(&[("LOCALAPPDATA", "L"), ("HOME", "/h")]);
        assert_eq!(location_from(&win, true), Path::new("L").join("vdisim"));
        let none = env(&[]);
        assert_eq!(location_from(&none, false), std::env::temp_dir().join("vdisim"));
        assert!(DataDir::default_location().ends_with("vdisim") || std::env::var_os("VDISIM_DATA").is_some());
    }

    #[test]
    fn digest_depends_on_every_byte() {
        let (_t, d) = dir();
        let path = d.path_of("h").unwrap();
        let base: Vec<u8> = (0..100_003u32).map(|i| (i * 7) as u8).collect();
        fs::write(&path, &base).unwrap();
        let h0 = d.digest("h").unwrap();
        for at in [0usize, 31, 32, 65_536, 100_002] {
            let mut v = base.clone();
            v[at] ^= 1;
            fs::write(&path, &v).unwrap();
            assert_ne!(d.digest("h").unwrap(), h0, "byte {at}");
        }
        fs::write(&path, &base[..100_002]).unwrap();
        assert_ne!(d.digest("h").unwrap(), h0);
        let mut h = Hasher64::new();
        for c in base.chunks(7) {
            h.update(c);
        }
        assert_eq!(h.finish(), h0);
    }
}
