//! The external-program adapter: certifies a client written in any language.
//!
//! # The contract
//!
//! For every client-role case the harness runs the program once per job:
//!
//! ```text
//! <cmd> backup|restore --set NAME --devices N --store DIR --timeout-ms T [--request-complete]
//! ```
//!
//! (the same arguments as `vdisim client`, so `vdisim certify --exec "vdisim client"` certifies
//! the reference client as a process).
//!
//! - `--set NAME`: CreateEx this set name on the default instance, then GetConfiguration
//!   (retrying on VD_E_TIMEOUT), then open the devices `NAME`, `NAME_1`, ... `NAME_<N-1>`
//!   (SPEC §3.3: the first device is named like the set).
//! - `--devices N`: `VDConfig::deviceCount`.
//! - `--store DIR`: a directory. `backup` writes the stream of each device there (in any
//!   layout); `restore` reads it back. The harness gives each case a fresh directory and runs
//!   the restore against the directory its backup used.
//! - `--timeout-ms T`: how long the client may wait for the server to configure the set
//!   (GetConfiguration returns VD_E_TIMEOUT while the statement has not started; the client
//!   asks again until T has passed). GetCommand timeouts are the client's own choice: on
//!   VD_E_TIMEOUT it asks again (the timeout cases pause the stream for 2.5 s).
//! - `--request-complete`: request VDF_RequestComplete and answer VDC_Complete (SPEC §3.4).
//!
//! Exit status: **0** the job succeeded; **89** the client does not support what was asked
//! (the case is reported Unsupported, like BoGo's shim); anything else is a failure. The
//! harness kills the program (SIGKILL) when a case deadline passes, and the case is judged
//! Hang. stdout and stderr go to files in the case's scratch directory; the tail of stderr is
//! quoted in the verdict when the program fails.

use crate::plugin::{ClientJob, ClientUnderTest, JobExit, Mode, RunningJob};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The exit status that means "unsupported" (BoGo's `BOGO_NACK`).
pub const EXIT_UNSUPPORTED: i32 = 89;

/// A client under test that is an external program following the contract above.
#[derive(Debug, Clone)]
pub struct ExecClient {
    program: String,
    args: Vec<String>,
    display: String,
}

impl ExecClient {
    /// Parses a command line (`vdisim client`, `"./my tool" --verbose`): words separated by
    /// spaces, with `'...'` and `"..."` quoting.
    pub fn parse(command: &str) -> Result<ExecClient, String> {
        let words = split_words(command)?;
        let Some((program, args)) = words.split_first() else {
            return Err("the --exec command is empty".into());
        };
        Ok(ExecClient {
            program: program.clone(),
            args: args.to_vec(),
            display: command.trim().to_string(),
        })
    }

    /// The argument vector for a job (after the program's own arguments).
    pub fn job_args(job: &ClientJob) -> Vec<String> {
        let mut a = vec![
            match job.mode {
                Mode::Backup => "backup".to_string(),
                Mode::Restore => "restore".to_string(),
            },
            "--set".into(),
            job.set.clone(),
            "--devices".into(),
            job.devices.to_string(),
            "--store".into(),
            job.store.display().to_string(),
            "--timeout-ms".into(),
            job.config_timeout_ms.to_string(),
        ];
        if job.request_complete {
            a.push("--request-complete".into());
        }
        a
    }
}

fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            None => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(format!("unbalanced quote in {s:?}"));
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

impl ClientUnderTest for ExecClient {
    fn name(&self) -> String {
        format!("exec:{}", self.display)
    }

    fn start(&self, job: &ClientJob) -> Result<Box<dyn RunningJob>, String> {
        // Output next to the store (the store directory itself belongs to the client).
        let log_base = job.store.with_extension("log");
        let out = std::fs::File::create(log_base.with_extension("stdout"))
            .map_err(|e| format!("cannot create the output file: {e}"))?;
        let err_path = log_base.with_extension("stderr");
        let err = std::fs::File::create(&err_path).map_err(|e| format!("cannot create the error file: {e}"))?;
        let child = Command::new(&self.program)
            .args(&self.args)
            .args(ExecClient::job_args(job))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.program))?;
        Ok(Box::new(ExecJob {
            child,
            stderr: err_path,
            done: None,
        }))
    }
}

struct ExecJob {
    child: Child,
    stderr: PathBuf,
    done: Option<JobExit>,
}

impl ExecJob {
    fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = lines[lines.len().saturating_sub(3)..].join(" | ");
        if tail.len() > 400 {
            let mut cut = 400;
            while !tail.is_char_boundary(cut) {
                cut -= 1;
            }
            format!("{}...", &tail[..cut])
        } else {
            tail
        }
    }
}

impl RunningJob for ExecJob {
    fn wait(&mut self, deadline: Instant) -> Option<JobExit> {
        loop {
            if let Some(done) = &self.done {
                return Some(done.clone());
            }
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    let tail = self.stderr_tail();
                    self.done = Some(match status.code() {
                        Some(0) => JobExit::Success,
                        Some(EXIT_UNSUPPORTED) => {
                            JobExit::Unsupported(if tail.is_empty() { "exit 89".into() } else { tail })
                        }
                        Some(code) => JobExit::Failure(format!("exit {code}: {tail}")),
                        None => JobExit::Failure(format!("killed by a signal: {tail}")),
                    });
                }
                Ok(None) => {
                    if Instant::now() >= deadline {
                        return None;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => self.done = Some(JobExit::Failure(format!("cannot wait for the process: {e}"))),
            }
        }
    }

    fn kill(&mut self) {
        if self.done.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.done = Some(JobExit::Failure("killed by the harness".into()));
        }
    }
}

impl Drop for ExecJob {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_words_with_quotes() {
        assert_eq!(split_words("vdisim client").unwrap(), vec!["vdisim", "client"]);
        assert_eq!(
            split_words(r#"  "./my tool" --x 'a b'  "#).unwrap(),
            vec!["./my tool", "--x", "a b"]
        );
        assert!(split_words("'open").is_err());
        assert!(ExecClient::parse("   ").is_err());
    }

    #[test]
    fn job_arguments_follow_the_contract() {
        let job = ClientJob {
            mode: Mode::Restore,
            set: "s".into(),
            devices: 3,
            store: PathBuf::from("/tmp/x"),
            request_complete: true,
            config_timeout_ms: 200,
            command_timeout_ms: 100,
        };
        assert_eq!(
            ExecClient::job_args(&job).join(" "),
            "restore --set s --devices 3 --store /tmp/x --timeout-ms 200 --request-complete"
        );
    }
}
