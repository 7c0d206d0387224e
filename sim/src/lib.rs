//! vdisim: a shared-memory emulator of SQL Server's Virtual Device Interface (VDI) that plays
//! both roles, the SQL Server side ([`server`]) and the backup application's side ([`client`]).
//!
//! Layers, one way only: [`vdi`] (the vocabulary of vdi.h) ← [`protocol`] (sans-I/O state
//! machines, no unsafe) ← [`shm`] (the wire; with `ffi`, the only unsafe code) ← [`client`] and
//! [`server`] (the public APIs) ← [`engine`] (the simulated SQL Server).
#![deny(unsafe_code)]

#[allow(unsafe_code)]
pub mod client;
pub mod engine;
pub mod protocol;
pub mod pump;
pub mod reference_client;
#[allow(unsafe_code)]
pub mod server;
#[allow(unsafe_code)]
pub mod shm;
pub mod vdi;

pub use client::{ClientVirtualDevice, ClientVirtualDeviceSet, Command};
pub use server::{ServerBuffer, ServerCommand, ServerCompletion, ServerVirtualDevice, ServerVirtualDeviceSet};
pub use vdi::{VDConfig, VdError, VdResult};
