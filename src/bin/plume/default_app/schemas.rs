//! What clients may write to the default app's services, as JSON Schemas
//! (also shown in its OpenAPI document).

use serde_json::json;

use plume::Result;
use plume::schema::Schema;

/// The longest message text, in characters.
pub(crate) const MAX_TEXT: usize = 10_000;

/// The longest email address (RFC 5321's path limit) and password a client
/// may send; a longer password only costs the server hashing time.
pub(super) const MAX_EMAIL: usize = 254;
pub(super) const MAX_PASSWORD: usize = 1_024;

/// What a client may write to `users`: `email` (a valid address) and
/// `password`, and the record's own `id` (the store decides what it
/// means; sign-up drops it). Sign-up requires both, an `update` the email
/// (a replaced record may drop its password, as a Feathers document store
/// does; such an account cannot log in until it sets one), a patch
/// neither. Anything else, `role` and `permissions` included, is 400.
pub(super) fn user_schema(required: &[&str]) -> Result<Schema> {
    Schema::new(json!({
        "type": "object",
        "properties": {
            "email": {"type": "string", "format": "email", "maxLength": MAX_EMAIL},
            "password": {"type": "string", "minLength": 1, "maxLength": MAX_PASSWORD},
            "id": {},
        },
        "required": required,
        "additionalProperties": false,
    }))
}

/// What a client may write to `messages`: a non-blank `text` of at most
/// [`MAX_TEXT`] characters (required, but not by a patch), the record's
/// own `id` (the store decides what it means), and on `create` a `userId`, which the server overwrites (the official client
/// examples send one). The owner and the creation time are otherwise the
/// server's: `update` keeps them (`preserve_on_update`), `patch` merges.
/// Server code may write other fields (internal calls are not
/// restricted), but not a bad text. Every record of an array is checked
/// (as Feathers' `validateData` does); whether an array may be created at all is the store's answer
/// (405 unless `multi` allows it).
pub(super) fn message_schema(writer: Writer) -> Result<Schema> {
    let mut properties = json!({
        "text": {"type": "string", "minLength": 1, "maxLength": MAX_TEXT, "pattern": "\\S"},
    });
    if writer != Writer::Any {
        properties["id"] = json!({});
    }
    if writer == Writer::ClientCreating {
        properties["userId"] = json!({});
    }
    Schema::new(json!({
        "type": "object",
        "properties": properties,
        "required": ["text"],
        "additionalProperties": writer == Writer::Any,
    }))
}

/// The schemas of what clients write that the OpenAPI document shows too.
pub(super) struct ClientSchemas {
    pub(super) sign_up: Schema,
    pub(super) user_patch: Schema,
    pub(super) message: Schema,
    pub(super) message_patch: Schema,
}

/// Who writes a message, for [`message_schema`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Writer {
    /// Any caller, server code included: only the text is checked.
    Any,
    /// A client's `create`.
    ClientCreating,
    /// A client's `update` or `patch`.
    Client,
}
