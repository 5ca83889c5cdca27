//! The typed result of `foolmap eval` ([`foolmap::artifact::report`]): computed by
//! [`crate::eval::run`], read by the printer, the report writer, the table and the demo without
//! string paths.

pub use foolmap::artifact::report::*;
