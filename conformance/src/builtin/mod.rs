//! The built-in implementations of both roles, and the knob-driven variants the mutants use.

pub mod client;
pub mod server;

pub use client::{BuiltinClient, ClientKnobs, KnobClient};
pub use server::{BuiltinServer, KnobServer, ServerKnobs};
