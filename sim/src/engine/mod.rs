//! The simulated SQL Server (DESIGN "The simulated SQL Server").
//!
//! [`Engine::execute_batch`] runs T-SQL ([`tsql`]) against databases kept as files
//! ([`database`]); BACKUP and RESTORE play the server role of the VDI ([`crate::server`]) with a
//! self-checking stream ([`stream`]) and print SQL Server-style [`messages`].

pub mod backup;
pub mod database;
pub mod executor;
pub mod messages;
pub mod restore;
mod session;
pub mod stream;
pub mod tsql;

pub use executor::{Engine, EngineOptions, StatementOutcome, TransferStats};
pub use messages::Message;
pub use session::ProgressFn;
