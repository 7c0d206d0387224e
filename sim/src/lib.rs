//! vdisim: a shared-memory emulator of SQL Server's Virtual Device Interface (VDI) that plays
//! both roles, the SQL Server side ([`server`]) and the backup application's side ([`client`]).
//!
//! Layers, one way only: [`vdi`] (the vocabulary of vdi.h) ← [`protocol`] (sans-I/O state
//! machines, no unsafe) ← [`shm`] (the wire; with `ffi`, the only unsafe code) ← [`client`] and
//! [`server`] (the public APIs) ← [`engine`] (the simulated SQL Server).
//!
//! Both roles in a few lines (here in one process; in real use the two sides are separate
//! processes, and each side is usually several threads, one per device):
//!
//! ```
//! use vdisim::server::ServerCommand;
//! use vdisim::vdi::{completion, features, CommandCode, VDConfig, VdError};
//! use vdisim::protocol::server::ConfigParams;
//! use vdisim::{ClientVirtualDeviceSet, ServerVirtualDeviceSet};
//!
//! let name = format!("doc-example-{}", std::process::id());
//! // Client (the backup application): CreateEx first (SPEC §3.1 step 1).
//! let mut client = ClientVirtualDeviceSet::new();
//! client.create_ex(None, &name, &VDConfig::request(1, features::VDF_LIKE_PIPE))?;
//!
//! // Server (SQL Server): Open, configure, open the device (§1.4).
//! let server = ServerVirtualDeviceSet::open(None, &name)?;
//! server.begin_configuration(ConfigParams {
//!     features: features::VDF_WRITE_MEDIA,
//!     alignment: 0,
//!     block_size: 65536,
//!     max_transfer_size: 1 << 20,
//!     timeout_ms: 1000,
//! })?;
//! server.request_buffers(1 << 20, 0, 1)?;
//! server.end_configuration()?;
//! let sdev = server.open_device(&name)?;
//!
//! // Client: GetConfiguration, OpenDevice.
//! let cfg = client.get_configuration(1000)?;
//! assert_eq!(cfg.features & features::VDF_WRITE_MEDIA, features::VDF_WRITE_MEDIA);
//! let cdev = client.open_device(&name)?;
//!
//! // One Write through shared memory, zero-copy.
//! let mut buf = server.allocate_buffer(65536, 0)?;
//! buf.as_mut_slice().fill(0xAB);
//! let cmd = ServerCommand { code: CommandCode::Write.code(), size: 65536, position: 0, buffer: Some(buf) };
//! sdev.send_command(cmd).map_err(|r| r.error)?;
//! let got = cdev.get_command(1000)?;
//! assert!(got.buffer().iter().all(|b| *b == 0xAB));
//! cdev.complete_command(&got, completion::ERROR_SUCCESS, got.size(), 0)?;
//! assert_eq!(sdev.get_completion(1000)?.completion.bytes_transferred, 65536);
//!
//! // Normal end: CloseDevice gives the client VD_E_CLOSE, then both sides Close.
//! sdev.close_device()?;
//! assert_eq!(cdev.get_command(1000).err(), Some(VdError::Close));
//! assert_eq!(server.close().result, Ok(()));
//! client.close()?;
//! # Ok::<(), VdError>(())
//! ```
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
