//! vdi-conformance: the VDI conformance harness (the h2spec / BoGo of VDI).
#![forbid(unsafe_code)]

pub mod model;
pub mod report;
