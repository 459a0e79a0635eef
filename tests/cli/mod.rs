//! The `plume` binary: `plume secret`, and refusing bad configuration with
//! a message and a non-zero exit.

use std::process::Command;

fn plume() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_plume"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("PLUME_ENV")
        .env_remove("AUTH_SECRET")
        .env_remove("PORT")
        .env_remove("HOST")
        .env_remove("SQLITE_FILE")
        .env("NO_COLOR", "1");
    command
}

#[test]
fn secret_prints_64_random_bytes_in_base64() {
    let first = plume().arg("secret").output().unwrap();
    let second = plume().arg("secret").output().unwrap();
    assert!(first.status.success());
    let a = String::from_utf8(first.stdout).unwrap();
    let b = String::from_utf8(second.stdout).unwrap();
    assert_eq!(a.trim().len(), 88, "{a}");
    assert_ne!(a, b);
}

#[test]
fn production_without_a_secret_refuses_to_start() {
    let output = plume().env("PLUME_ENV", "production").output().unwrap();
    assert!(!output.status.success());
    let log = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("plume secret"), "{log}");
}

#[test]
fn a_bad_port_variable_refuses_to_start() {
    let output = plume().env("PORT", "eighty").output().unwrap();
    assert!(!output.status.success());
    let log = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("PORT='eighty' must be a number"), "{log}");
}

#[test]
fn a_missing_config_folder_refuses_to_start() {
    let output = plume()
        .args(["--config", "no-such-folder"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let log = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("no-such-folder"), "{log}");
}

#[test]
fn sigterm_stops_the_server_gracefully() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let mut child = plume()
        .args(["serve", "--port", "0"])
        .env("PLUME_ENV", "test")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The log goes to stderr; wait for the address.
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let started = Instant::now();
    let listening = loop {
        match lines.next() {
            Some(Ok(line)) if line.contains("listening on") => break true,
            Some(Ok(_)) if started.elapsed() < Duration::from_secs(20) => continue,
            _ => break false,
        }
    };
    assert!(listening, "the server did not start");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit:?}");
}
