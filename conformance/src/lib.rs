//! The VDI conformance harness.
