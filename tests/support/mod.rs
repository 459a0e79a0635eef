//! Helpers shared by the integration tests: a server on loopback and a
//! minimal socket.io client.

pub(crate) mod server;
pub(crate) mod socket;

pub(crate) use server::TestServer;
pub(crate) use socket::SocketClient;
