//! The server side in another process, over a command pipe: the `script` contract.
//!
//! The program is started as `<command...> <set-name>` and plays the SQL Server side of the
//! set `<set-name>` (which the client in this process creates). It reads one server step per
//! line on stdin, as the JSON of [`Step`] (e.g. `{"call":"SSend","dev":0,"code":2,"size":4096,
//! "position":0}`; calls `SOpen`, `SGetConfiguration`, `SBeginConfiguration`,
//! `SRequestBuffers`, `SEndConfiguration`, `SOpenDevice`, `SSend`, `SFlood`,
//! `SGetCompletion`, `SCloseDevice`, `SSignalAbort`, `SClose`; every wait has timeout 0), and
//! answers each with one line `RESULT <json>` where `<json>` is an [`Outcome`] (other lines
//! are ignored). It exits when stdin ends. `SDies` is never sent: the process is killed.
//! `vdisim-peer script <set>` implements this for the built-in server.

use super::driver::ServerEnd;
use super::step::{Outcome, Step};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

/// How long one step may take in the peer before it counts as a hang.
const STEP_DEADLINE: Duration = Duration::from_secs(10);

/// A server end in a child process.
pub struct RemoteServer {
    command: Vec<String>,
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    lines: Option<Receiver<String>>,
}

impl RemoteServer {
    /// Starts `command` (program and arguments) with the set name appended.
    pub fn spawn(command: &[String], set: &str) -> Result<RemoteServer, String> {
        let (program, args) = command.split_first().ok_or("empty command")?;
        let mut child = Command::new(program)
            .args(args)
            .arg(set)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("{program}: {e}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(json) = line.strip_prefix("RESULT ") {
                    if tx.send(json.to_string()).is_err() {
                        break;
                    }
                }
            }
        });
        Ok(RemoteServer {
            command: command.to_vec(),
            child: Some(child),
            stdin,
            lines: Some(rx),
        })
    }

    fn kill(&mut self) {
        self.stdin = None;
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.lines = None;
    }
}

impl ServerEnd for RemoteServer {
    fn describe(&self) -> String {
        format!("exec:{}", self.command.join(" "))
    }

    fn exec(&mut self, step: &Step) -> Outcome {
        if let Step::SDies = step {
            // A real death: SIGKILL, then reap, so the pid is gone when the client checks.
            self.kill();
            return Outcome::ok();
        }
        let (Some(stdin), Some(lines)) = (self.stdin.as_mut(), self.lines.as_ref()) else {
            return Outcome::code("DEAD");
        };
        let Ok(json) = serde_json::to_string(step) else {
            return Outcome::code("UNSERIALIZABLE");
        };
        if writeln!(stdin, "{json}").and_then(|_| stdin.flush()).is_err() {
            return Outcome::code("PEER-GONE");
        }
        match lines.recv_timeout(STEP_DEADLINE) {
            Ok(line) => serde_json::from_str(&line).unwrap_or_else(|_| Outcome::code(&format!("BAD-RESULT {line}"))),
            Err(RecvTimeoutError::Timeout) => Outcome::code("HANG"),
            Err(RecvTimeoutError::Disconnected) => Outcome::code("PEER-GONE"),
        }
    }

    fn release(&mut self) {
        // Closing stdin asks the peer to release its handles and exit; give it a moment.
        self.stdin = None;
        if let Some(c) = self.child.as_mut() {
            for _ in 0..200 {
                if matches!(c.try_wait(), Ok(Some(_))) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        self.kill();
    }
}

impl Drop for RemoteServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The `vdisim-peer` binary next to the running test or tool (target/<profile>/). Under
/// cargo (the `CARGO` variable is set) it is built or brought up to date first, once per
/// process, so a test never talks to a stale peer.
pub fn peer_binary() -> Result<PathBuf, String> {
    static BUILT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut candidates = Vec::new();
    let file = format!("vdisim-peer{}", std::env::consts::EXE_SUFFIX);
    if let Some(dir) = exe.parent() {
        candidates.push(dir.join(&file));
        if let Some(up) = dir.parent() {
            candidates.push(up.join(&file));
        }
    }
    if let Ok(cargo) = std::env::var("CARGO") {
        BUILT
            .get_or_init(|| {
                let status = match Command::new(cargo)
                    .args(["build", "--quiet", "-p", "vdisim", "--bin", "vdisim-peer"])
                    .current_dir(env!("CARGO_MANIFEST_DIR"))
                    .status()
                {
                    Ok(status) => status,
                    // cargo cannot be started: a Windows test run under Wine, where CARGO is a
                    // Linux program (scripts/windows.sh); `cargo test` built the peer already.
                    Err(_) if cfg!(windows) => return Ok(()),
                    Err(e) => return Err(e.to_string()),
                };
                if status.success() {
                    Ok(())
                } else {
                    Err("cargo build of vdisim-peer failed".into())
                }
            })
            .clone()?;
    }
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| "vdisim-peer not found next to this executable (build it: cargo build -p vdisim)".into())
}
