//! The socket.io transport and channels, over a real WebSocket on
//! loopback.

mod auth;
mod calls;
mod channels;
mod engine;
mod slow;

/// An app with a `notes` service whose every event goes to every
/// connection (all join the `everyone` channel).
fn notes_to_everyone() -> plume::App {
    let app = plume::App::new();
    app.use_service("notes", plume::store::MemoryService::new())
        .unwrap();
    let joining = app.clone();
    app.on_connection(move |connection| joining.channel("everyone").join(connection));
    app.publish(|_data, _ctx| vec!["everyone".to_owned()]);
    app
}
