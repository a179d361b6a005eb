//! The server-sent-events decoder, shared by every connector that streams
//! over SSE; it lives in [`inferlink_core::kit::sse`].

pub use inferlink_core::kit::sse::{SseDecoder, SseEvent};
