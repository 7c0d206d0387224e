//! The simulated SQL Server (DESIGN "The simulated SQL Server").

pub mod database;
pub mod stream;
pub mod tsql;
