//! Helpers shared by the integration tests: a server on loopback and a
//! minimal socket.io client.

pub(crate) mod backends;
pub(crate) mod server;
pub(crate) mod socket;

pub(crate) use server::TestServer;
pub(crate) use socket::SocketClient;

/// Waits, bounded, until none of the connections in `weak` is alive any
/// more (the server frees a closed socket asynchronously); how many still
/// are.
pub(crate) async fn still_alive(weak: &std::sync::Mutex<Vec<plume::WeakConnection>>) -> usize {
    let alive = || {
        weak.lock()
            .unwrap()
            .iter()
            .filter(|w| w.upgrade().is_some())
            .count()
    };
    for _ in 0..150 {
        if alive() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    alive()
}
