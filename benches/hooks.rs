//! Cost of the hook chain: one `get` on the memory store with no hooks,
//! and with 10 before and 10 after hooks. The difference divided by 20 is
//! the cost per hook.
//!
//! Run: `cargo bench --bench hooks`

#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use plume::store::MemoryService;
use plume::{App, HookContext, Hooks, Params, Result};
use serde_json::json;

async fn touch(ctx: &mut HookContext) -> Result<()> {
    // Reads something so the call is not optimised away.
    std::hint::black_box(ctx.id.is_some());
    Ok(())
}

fn app_with(hooks_each_side: usize) -> App {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let app = App::new();
    let svc = app.use_service("items", MemoryService::new()).unwrap();
    runtime
        .block_on(svc.create(json!({"text": "x"}), Params::new()))
        .unwrap();
    let mut hooks = Hooks::new();
    for _ in 0..hooks_each_side {
        hooks.before("get", touch).after("get", touch);
    }
    svc.hooks(&hooks);
    app
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("get on memory store");
    for (label, hooks) in [("bare", 0), ("10 before + 10 after hooks", 10)] {
        let app = app_with(hooks);
        let svc = app.service("items").unwrap();
        group.bench_function(label, |b| {
            b.to_async(&runtime)
                .iter(|| async { svc.get(0, Params::new()).await.unwrap() });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
