//! Issue 16: the `config/` a Feathers v5 generator writes for a chat app
//! on SQLite runs unchanged with `plume`: a host name, knex's `sqlite`
//! shape, `origins` for CORS, `public` for static files, and one warning
//! for what Plume does not implement or does not know.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Server, TempDir, output_within, plume};

const ORIGIN: &str = "http://localhost:3030";

/// A project folder as the generator leaves it: `config/` (with the keys
/// of the issue, an OAuth section and one misspelt key), `public/` (with a
/// dotfile and a file named like a service), and a file beside them that
/// must never be served.
fn feathers_project(name: &str) -> TempDir {
    let dir = TempDir::new(name);
    let secret = String::from_utf8(plume().arg("secret").output().unwrap().stdout).unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir_all(&config).unwrap();
    let default = json!({
        "host": "localhost",
        "port": 3030,
        "public": "./public/",
        "origins": [ORIGIN],
        "paginate": {"default": 7, "max": 20},
        "sqlite": {
            "client": "sqlite3",
            "connection": "feathers-chat.sqlite",
            "useNullAsDefault": true
        },
        "authentication": {
            "entity": "user",
            "service": "users",
            "secret": secret.trim(),
            "authStrategies": ["jwt", "local"],
            "jwtOptions": {
                "header": {"typ": "access"},
                "audience": "https://yourdomain.com",
                "algorithm": "HS256",
                "expiresIn": "1d"
            },
            "local": {"usernameField": "email", "passwordField": "password"},
            "oauth": {"github": {"key": "<Client ID>", "secret": "<Client secret>"}}
        },
        "bodyLimt": 1000
    });
    let variables = json!({
        "port": {"__name": "PORT", "__format": "number"},
        "host": "HOSTNAME",
        "authentication": {"secret": "FEATHERS_SECRET"}
    });
    write_json(&config.join("default.json"), &default);
    write_json(
        &config.join("custom-environment-variables.json"),
        &variables,
    );
    let public = dir.path().join("public");
    std::fs::create_dir_all(public.join("assets")).unwrap();
    std::fs::write(public.join("index.html"), "<h1>feathers-chat</h1>").unwrap();
    std::fs::write(public.join("app.js"), "console.log('chat')").unwrap();
    std::fs::write(public.join(".env"), "DOTFILE_SECRET=1").unwrap();
    std::fs::write(public.join("messages"), "a file named like a service").unwrap();
    std::fs::write(public.join("assets").join("logo.txt"), "LOGO_CONTENT").unwrap();
    std::fs::write(public.join("assets").join(".env"), "NESTED_SECRET=1").unwrap();
    std::fs::write(dir.path().join("outside.txt"), "OUTSIDE_SECRET").unwrap();
    dir
}

fn write_json(path: &Path, value: &Value) {
    std::fs::write(path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
}

/// Serves the project from its own folder, as `npm start` would, with the
/// generator's variables: `HOSTNAME` (set to `localhost` here; machines
/// set it to their name) and `PORT`.
fn serve(project: &Path) -> Server {
    let mut command = plume();
    command
        .current_dir(project)
        .args(["serve", "--config", "config"])
        .env("HOSTNAME", "localhost")
        .env("PORT", "0")
        .env("RUST_LOG", "info");
    Server::spawn(command)
}

/// One raw HTTP/1.1 request (clients normalise `..` away before sending);
/// returns the status and the whole answer.
fn raw_get(address: SocketAddr, target: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

fn cors_headers(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .keys()
        .map(|name| name.as_str().to_owned())
        .filter(|name| name.starts_with("access-control-"))
        .collect()
}

#[tokio::test]
async fn a_generated_feathers_config_runs_unchanged() {
    let project = feathers_project("feathers");
    let server = serve(project.path());
    let address: SocketAddr = server
        .url
        .trim_start_matches("http://")
        .parse()
        .unwrap_or_else(|e| panic!("{e}: {}", server.url));
    let client = reqwest::Client::new();

    // 1. `localhost` is listened on (here it is 127.0.0.1, and the name
    // reaches the same server).
    assert!(address.ip().is_loopback(), "{address}");
    let by_name = format!("http://localhost:{}", address.port());
    let answer = client
        .get(format!("{by_name}/messages"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 401);

    // 4. One warning for what is not implemented, one for what is unknown.
    let log = server.startup_log.join("\n");
    let not_built: Vec<&String> = server
        .startup_log
        .iter()
        .filter(|line| line.contains("not implemented"))
        .collect();
    assert_eq!(not_built.len(), 1, "{log}");
    assert!(not_built[0].contains("authentication.oauth"), "{log}");
    let unknown: Vec<&String> = server
        .startup_log
        .iter()
        .filter(|line| line.contains("misspelt"))
        .collect();
    assert_eq!(unknown.len(), 1, "{log}");
    assert!(unknown[0].contains("bodyLimt"), "{log}");
    for key in ["useNullAsDefault", "origins", "public", "paginate"] {
        assert!(!unknown[0].contains(key), "{key} is read: {log}");
    }

    // 2. The data goes to knex's `connection` file.
    let signed_up = client
        .post(format!("{}/users", server.url))
        .json(&json!({"email": "ada@example.com", "password": "correct horse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_up.status(), 201);
    assert!(project.path().join("feathers-chat.sqlite").is_file());
    assert!(!project.path().join("data").exists());

    // 3. CORS for the listed origin, with credentials; nothing for others.
    let listed = client
        .get(format!("{}/messages", server.url))
        .header("origin", ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(
        listed.headers()["access-control-allow-origin"],
        ORIGIN,
        "{:?}",
        listed.headers()
    );
    assert_eq!(listed.headers()["access-control-allow-credentials"], "true");
    let stranger = client
        .get(format!("{}/messages", server.url))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status(), 401);
    assert_eq!(cors_headers(&stranger), Vec::<String>::new());
    for (origin, allowed) in [(ORIGIN, true), ("https://evil.example", false)] {
        let preflight = client
            .request(reqwest::Method::OPTIONS, format!("{}/messages", server.url))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            )
            .send()
            .await
            .unwrap();
        let headers = cors_headers(&preflight);
        if allowed {
            assert!(
                headers.contains(&"access-control-allow-methods".to_owned()),
                "{headers:?}"
            );
            assert_eq!(preflight.headers()["access-control-allow-origin"], ORIGIN);
        } else {
            assert_eq!(headers, Vec::<String>::new(), "{origin}");
        }
    }

    // socket.io's polling requests come from the page too: same CORS.
    for (origin, allowed) in [(ORIGIN, true), ("https://evil.example", false)] {
        let polling = client
            .get(format!("{}/socket.io/?EIO=4&transport=polling", server.url))
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(polling.status(), 200, "{origin}");
        let headers = cors_headers(&polling);
        if allowed {
            assert_eq!(polling.headers()["access-control-allow-origin"], ORIGIN);
            assert_eq!(
                polling.headers()["access-control-allow-credentials"],
                "true"
            );
        } else {
            assert_eq!(headers, Vec::<String>::new(), "{origin}");
        }
    }

    // `paginate` sets the page sizes.
    let token = client
        .post(format!("{}/authentication", server.url))
        .json(
            &json!({"strategy": "local", "email": "ada@example.com", "password": "correct horse"}),
        )
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    for (query, limit) in [("", 7), ("?$limit=100", 20)] {
        let page: Value = client
            .get(format!("{}/messages{query}", server.url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(page["limit"], limit, "{query}: {page}");
    }

    // 3. `public` after the services: files, `index.html` for `/`, no
    // listing, no dotfiles, nothing outside the folder.
    let index = client.get(format!("{}/", server.url)).send().await.unwrap();
    assert_eq!(index.status(), 200);
    assert_eq!(index.text().await.unwrap(), "<h1>feathers-chat</h1>");
    let script = client
        .get(format!("{}/app.js", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), 200);
    assert!(
        script.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript"),
        "{:?}",
        script.headers()
    );
    let head = client
        .head(format!("{}/assets/logo.txt", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    // The service wins over the file of the same name.
    let service = client
        .get(format!("{}/messages", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(service.status(), 401);
    assert_eq!(
        service.json::<Value>().await.unwrap()["name"],
        "NotAuthenticated"
    );
    for target in [
        "/assets/",
        "/assets",
        "/.env",
        "/%2eenv",
        "/nowhere.html",
        "/../outside.txt",
        "/%2e%2e/outside.txt",
        "/assets/..%2f..%2foutside.txt",
        "/assets%2F.env",
        "/assets%2f%2eenv",
        "//assets",
        "//assets/logo.txt",
        "/..%5coutside.txt",
    ] {
        let (status, answer) = raw_get(address, target);
        assert!(
            status == 404 || status == 400 || (status == 307 && target == "/assets"),
            "{target}: {answer}"
        );
        for secret in [
            "OUTSIDE_SECRET",
            "DOTFILE_SECRET",
            "NESTED_SECRET",
            "LOGO_CONTENT",
        ] {
            assert!(!answer.contains(secret), "{target}: {answer}");
        }
        if status == 404 {
            assert!(
                answer.contains("\"name\":\"NotFound\""),
                "{target}: {answer}"
            );
        }
    }
    // Other methods on a path no service takes stay Feathers' 404.
    let posted = client
        .post(format!("{}/app.js", server.url))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 404);
    drop(server);
}

#[test]
fn a_host_name_that_does_not_resolve_stops_the_start_naming_it() {
    let project = feathers_project("unresolved");
    let mut command = plume();
    command
        .current_dir(project.path())
        .args(["serve", "--config", "config", "--port", "0"])
        .env("HOSTNAME", "no-such-host.invalid");
    let output = output_within(command, Duration::from_secs(30));
    assert!(!output.status.success());
    let log = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(log.contains("'no-such-host.invalid'"), "{log}");
    assert!(log.contains("does not resolve"), "{log}");
}

/// An address of the name that is in use stops the start (it is not
/// skipped as a missing one would be).
#[tokio::test]
async fn an_address_in_use_is_an_error_not_a_skip() {
    let Ok(taken) = std::net::TcpListener::bind("127.0.0.2:0") else {
        // Only Linux routes all of 127/8 to the loopback by default.
        eprintln!("127.0.0.2 is not available here: nothing to test");
        return;
    };
    let port = taken.local_addr().unwrap().port();
    let addresses: Vec<SocketAddr> = [format!("127.0.0.1:{port}"), format!("127.0.0.2:{port}")]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    let error = plume::server::bind_all("two-loopbacks", &addresses)
        .await
        .unwrap_err();
    assert!(error.message().contains("127.0.0.2"), "{error}");
    drop(taken);
}

/// A name with several addresses is listened on at each, on one port.
#[tokio::test]
async fn every_address_of_a_name_is_listened_on_with_one_port() {
    let addresses: Vec<SocketAddr> = ["127.0.0.1:0", "127.0.0.2:0"]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    let listeners = plume::server::bind_all("two-loopbacks", &addresses)
        .await
        .unwrap();
    let bound = listeners.local_addrs().unwrap();
    assert_eq!(bound.len(), 2);
    assert_eq!(bound[0].port(), bound[1].port());
    // The repository's own test configuration (an in-memory database).
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let config = plume::config::Config::load_with(&dir, "test", |_| None).unwrap();
    let app = crate::default_app::build(&config).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(plume::server::serve_on(
        app,
        listeners,
        plume::transport::rest::RestOptions::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    let client = reqwest::Client::new();
    for address in &bound {
        let answer = client
            .get(format!("http://{address}/messages"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 401, "{address}");
    }
    let _ = stop.send(());
    server.await.unwrap().unwrap();

    // IP literals, v4 and v6 (with or without brackets), are one address.
    let mut literals = vec!["127.0.0.1"];
    if std::net::TcpListener::bind("[::1]:0").is_ok() {
        literals.extend(["::1", "[::1]"]);
    }
    for literal in literals {
        let bound = plume::server::bind(literal, 0).await.unwrap();
        let bound = bound.local_addrs().unwrap();
        assert_eq!(bound.len(), 1, "{literal}");
        assert!(bound[0].ip().is_loopback(), "{literal}");
        assert_eq!(bound[0].is_ipv6(), literal.contains(':'), "{literal}");
    }

    // And `localhost` as the system resolves it: each of its addresses.
    let local = plume::server::bind("localhost", 0).await.unwrap();
    let local = local.local_addrs().unwrap();
    assert!(!local.is_empty());
    assert!(
        local
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == local[0].port())
    );
}
