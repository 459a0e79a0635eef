//! The socket.io transport and channels, over a real WebSocket on
//! loopback.

mod auth;
mod calls;
mod channels;
mod engine;
mod slow;
