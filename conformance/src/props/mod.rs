//! Property-based scenarios of the VDI protocol (issue 5): a reference model checked against
//! real implementations with proptest-state-machine, failures shrunk into JSON transcripts
//! that are replayed forever after.
//!
//! - [`step`]: the calls ([`step::Step`]) and what they return ([`step::Outcome`]).
//! - [`model`]: the reference model (SPEC §1.2-§1.5, §3.5, §3.6), independent of
//!   `vdisim::protocol`.
//! - [`gen`]: which steps to try in each state.
//! - [`driver`]: steps against the built-in pair in one process ([`driver::Pair`]).
//! - [`remote`]: the server side in a peer process (`vdisim-peer script`), killable.
//! - [`machine`]: the `ReferenceStateMachine` / `StateMachineTest` glue and [`machine::check`].
//! - [`transcript`]: saving, loading and replaying scenarios.
//! - [`hostile`]: a hostile peer program over a real set (fuzz target `shm_peer`).
//! - [`mutants`]: model-level seeded defects that the model must catch.
//! - [`scenarios`]: hand-written canonical scenarios (pinned by snapshots).

pub mod driver;
pub mod gen;
pub mod hostile;
pub mod machine;
pub mod model;
pub mod mutants;
pub mod remote;
pub mod scenarios;
pub mod step;
pub mod transcript;
