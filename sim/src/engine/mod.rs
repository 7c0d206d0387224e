//! The simulated SQL Server (DESIGN "The simulated SQL Server").

pub mod tsql;
