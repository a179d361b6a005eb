//! The inference connector API (from `inferlink-core`), plus what needs the
//! registry: [`LiveConnector`], which follows a selector's resolution.

pub use inferlink_core::connector::*;

mod live;

pub use live::LiveConnector;
