//! The domain: values parsed and validated at the edge (`MessageBody::parse`, `RoomName::parse`…)
//! so that the inside never re-checks them, and the shapes the protocol sends back.

pub mod mention;
mod model;
pub mod search;
mod values;

pub use model::*;
pub use values::*;
