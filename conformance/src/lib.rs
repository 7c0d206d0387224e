//! vdi-conformance: the VDI conformance harness (the h2spec / BoGo of VDI).
//!
//! The harness certifies an implementation of either side of SQL Server's Virtual Device
//! Interface against a catalogue of cases ([`cases::catalogue`]), each one a SPEC requirement
//! with a stable id, a MUST/SHOULD level and a typed [`case::Expectation`]:
//!
//! - a **client** (backup application) under test implements [`plugin::ClientUnderTest`];
//!   the harness plays SQL Server through `vdisim::server`;
//! - a **server** under test implements [`plugin::ServerUnderTest`]; the harness plays the
//!   backup application through `vdisim::client`;
//! - a client in any language is certified through the external-program contract of
//!   [`exec`]: `<cmd> backup|restore --set NAME --devices N --store DIR --timeout-ms T
//!   [--request-complete]`, exit 0 = success, 89 = unsupported, anything else = failure.
//!
//! Verdicts are Pass, NonStrict (a SHOULD missed), Fail{expected, actual, requirement},
//! Hang{step} (a step deadline passed: the implementation is killed and the run goes on),
//! Unsupported and Informational; data integrity and termination are judged separately.
//! Each case runs isolated (its own set names, scratch directory and transcript of calls and
//! codes), several at a time.
//!
//! From your own test:
//!
//! ```no_run
//! use vdi_conformance::builtin::BuiltinClient; // or your own ClientUnderTest
//! use vdi_conformance::{certify_client, Options};
//!
//! let run = certify_client(&BuiltinClient, &Options::default());
//! assert!(run.is_conformant());
//! ```
//!
//! [`mutants`] lists built-in implementations with one classic bug each; the suite must
//! catch every one of them.
#![forbid(unsafe_code)]

pub mod builtin;
pub mod case;
pub mod cases;
pub mod exec;
pub mod harness;
pub mod model;
pub mod mutants;
pub mod plugin;
pub mod props;
pub mod report;
pub mod runner;

pub use harness::Timing;
pub use runner::{certify, certify_client, certify_server, report as build_report, run_builtin_suite, Options, Target};
