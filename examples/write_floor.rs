//! The floor under a real-time event's cost on this machine: what writing
//! one small WebSocket frame to each of N loopback TCP connections costs
//! the writing process, with nothing else in the way (no engine, no queue
//! per socket, no task per socket: one thread writes to every socket in
//! turn). `bench/realtime` measures what a delivered event costs a real
//! server; the difference between the two is what the server's socket.io
//! path adds over the kernel's write.
//!
//! ```sh
//! cargo build --release --example write_floor
//! taskset -c 0 target/release/examples/write_floor serve --port 4000 --sockets 10000 &
//! taskset -c 1 target/release/examples/write_floor read --port 4000 --sockets 10000
//! ```
//!
//! The reader connects the sockets and drains them; the server waits for
//! all of them, then writes `--rounds` rounds of one 300-byte frame to
//! every socket, a pause between rounds so that the reader keeps up, and
//! prints its CPU time (from `/proc/self/stat`) per write. Loopback only;
//! both stop by themselves.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Write;
use std::net::TcpListener;
use std::time::Duration;

use tokio::io::AsyncReadExt;

/// Linux's USER_HZ, the unit of the CPU times in `/proc/<pid>/stat`.
const TICKS_PER_SECOND: f64 = 100.0;
/// The size of a `messages created` packet as Plume sends it.
const FRAME_BYTES: usize = 300;

fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name: utime is the 12th, stime the 13th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / TICKS_PER_SECOND)
}

/// An unmasked WebSocket text frame (server to client) of `FRAME_BYTES`.
fn frame() -> Vec<u8> {
    let payload = FRAME_BYTES - 4;
    let mut frame = vec![0x81, 126];
    frame.extend_from_slice(&u16::try_from(payload).unwrap_or(u16::MAX).to_be_bytes());
    frame.resize(FRAME_BYTES, b'x');
    frame
}

fn serve(port: u16, sockets: usize, rounds: usize) -> Result<(), String> {
    let listener = TcpListener::bind(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    let mut streams = Vec::with_capacity(sockets);
    while streams.len() < sockets {
        let (stream, _) = listener.accept().map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        streams.push(stream);
    }
    let frame = frame();
    let before = cpu_seconds().ok_or("no /proc/self/stat")?;
    for _ in 0..rounds {
        for stream in &mut streams {
            stream.write_all(&frame).map_err(|e| e.to_string())?;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let spent = cpu_seconds().ok_or("no /proc/self/stat")? - before;
    let writes = (rounds * sockets) as f64;
    println!(
        "{sockets} sockets, {rounds} rounds: {:.2} µs of CPU per {FRAME_BYTES}-byte write",
        spent / writes * 1e6
    );
    Ok(())
}

fn read(port: u16, sockets: usize) -> Result<(), String> {
    // Each socket waits in epoll as a real client's does, so that the
    // writer pays for waking the reader, as it does for a real client.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let mut readers = tokio::task::JoinSet::new();
        for _ in 0..sockets {
            let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .map_err(|e| e.to_string())?;
            readers.spawn(async move {
                let mut buffer = [0_u8; 4096];
                // Until the server closes the socket (or it fails).
                while let Ok(1..) = stream.read(&mut buffer).await {}
            });
        }
        while readers.join_next().await.is_some() {}
        Ok(())
    })
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let port = u16::try_from(value("--port", 4000)).unwrap_or(4000);
    let sockets = value("--sockets", 1000);
    let outcome = match args.get(1).map(String::as_str) {
        Some("serve") => serve(port, sockets, value("--rounds", 100)),
        Some("read") => read(port, sockets),
        _ => Err("usage: write_floor serve|read [--port P] [--sockets N] [--rounds R]".to_owned()),
    };
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            std::process::ExitCode::FAILURE
        }
    }
}
