//! The REST transport over real HTTP: a server on 127.0.0.1 with an
//! ephemeral port, driven with reqwest (Feathers: `@feathersjs/transport-commons`,
//! `src/http.ts` and `src/routing/router.ts`; `@feathersjs/express`,
//! `src/rest.ts` and `src/handlers.ts`).

mod errors;
mod routing;
mod schemas;
