//! The socket.io transport and channels, over a real WebSocket on
//! loopback.

mod calls;
mod channels;
