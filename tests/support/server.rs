//! A test server: binds 127.0.0.1:0, serves an app, stops when dropped.

use plume::App;
use plume::transport::rest::RestOptions;
use serde_json::Value;
use tokio::sync::oneshot;

/// A running server; dropping it shuts the server down.
pub(crate) struct TestServer {
    pub(crate) base: String,
    /// The app being served, for internal calls that look past the
    /// access rules (snapshots of whole tables).
    pub(crate) app: App,
    pub(crate) client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<plume::Result<()>>>,
}

impl TestServer {
    pub(crate) async fn start(app: App) -> Self {
        Self::start_with(app, RestOptions::default()).await
    }

    pub(crate) async fn start_with(app: App, options: RestOptions) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let served = app.clone();
        let task = tokio::spawn(plume::server::serve(served, listener, options, async {
            let _ = stopped.await;
        }));
        Self {
            base: format!("http://{addr}"),
            app,
            client: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request and returns the status and the body as JSON
    /// (`Value::Null` for an empty body).
    pub(crate) async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)))
        };
        (status, body)
    }

    pub(crate) async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.client.get(self.url(path))).await
    }

    pub(crate) async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(self.client.post(self.url(path)).json(body)).await
    }

    /// Stops the server and waits for it, so a test can check teardown.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
