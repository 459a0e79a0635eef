//! Cost of authentication: signing and verifying an access token (HS256,
//! default options; verifying a token seen before, and the full check), the jwt strategy's authenticate with an entity lookup
//! on the memory store, and argon2id hashing and verification (the
//! login-capacity limit).
//!
//! Run: `cargo bench --bench auth`

#![allow(missing_docs, clippy::unwrap_used)]

use argon2::password_hash::phc::PasswordHash;
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use criterion::{Criterion, criterion_group, criterion_main};
use plume::auth::AuthenticationService;
use plume::store::MemoryService;
use plume::{App, JwtStrategy, Params};
use serde_json::{Map, json};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

const SECRET: &str = "bench-secret-bench-secret-bench-secret-bench";

fn bench(c: &mut Criterion) {
    let rt = runtime();
    let app = App::new();
    // The secret below is published in this repository, which only the
    // `test` environment accepts.
    app.set("env", json!("test"));
    app.set(
        "authentication",
        json!({"secret": SECRET,
               "entity": "user", "service": "users", "authStrategies": ["jwt"]}),
    );
    let users = app.use_service("users", MemoryService::new()).unwrap();
    rt.block_on(users.create(json!({"email": "a@x", "password": "h"}), Params::new()))
        .unwrap();
    let auth = AuthenticationService::new(&app);
    auth.register("jwt", JwtStrategy::new()).unwrap();
    app.use_service("authentication", auth).unwrap();
    rt.block_on(app.setup()).unwrap();
    let auth = AuthenticationService::from_app(&app, None).unwrap();
    let subject = json!({"subject": "0"});
    let token = auth
        .create_access_token(&Map::new(), subject.as_object(), None)
        .unwrap();
    let credentials = json!({"strategy": "jwt", "accessToken": token});
    let allowed = vec!["jwt".to_owned()];

    c.bench_function("jwt sign (HS256)", |b| {
        b.iter(|| {
            auth.create_access_token(&Map::new(), subject.as_object(), None)
                .unwrap()
        });
    });
    c.bench_function("jwt verify (HS256), a token seen before", |b| {
        b.to_async(&rt)
            .iter(|| async { auth.verify_access_token(&token, None, None).await.unwrap() });
    });
    // With the secret passed in, nothing is remembered: the full check
    // (signature, claims, JSON) that a token's first use costs.
    c.bench_function("jwt verify (HS256), full check", |b| {
        b.to_async(&rt).iter(|| async {
            auth.verify_access_token(&token, None, Some(SECRET))
                .await
                .unwrap()
        });
    });
    c.bench_function("jwt strategy authenticate + entity lookup", |b| {
        b.to_async(&rt).iter(|| async {
            auth.authenticate(&credentials, &Params::new(), &allowed)
                .await
                .unwrap()
        });
    });

    // argon2id with the crate's defaults, directly (no blocking pool), so
    // the number is the CPU cost of one hash / one verification.
    let argon2 = Argon2::default();
    let hash = argon2.hash_password(b"correct horse").unwrap().to_string();
    let parsed = PasswordHash::new(&hash).unwrap();
    let mut group = c.benchmark_group("argon2id m=19456,t=2,p=1");
    group.sample_size(20);
    group.bench_function("hash", |b| {
        b.iter(|| argon2.hash_password(b"correct horse").unwrap());
    });
    group.bench_function("verify", |b| {
        b.iter(|| argon2.verify_password(b"correct horse", &parsed).unwrap());
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
