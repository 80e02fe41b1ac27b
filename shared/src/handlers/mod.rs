//! Handlers: plain async functions over an `App`, named after the route they serve. The Lambda
//! binaries, the local gateway and the tests all call these.

pub mod http;
pub mod ws;
