// The Feathers 5 equivalent of examples/todos.rs, written the way the
// Feathers guide and generator write it (TypeBox schemas, resolvers,
// validators), in one file so that its length compares with the Rust
// example's: users who sign up and log in, todos owned by their author,
// a role claim in the token, remove for admins only.
//
// Run: npm install && PORT=3031 node app.mjs
import crypto from 'node:crypto'
import { feathers } from '@feathersjs/feathers'
import { koa, rest, bodyParser, errorHandler } from '@feathersjs/koa'
import { MemoryService } from '@feathersjs/memory'
import { AuthenticationService, JWTStrategy, authenticate } from '@feathersjs/authentication'
import { LocalStrategy, passwordHash } from '@feathersjs/authentication-local'
import { Forbidden } from '@feathersjs/errors'
import { Ajv, addFormats, hooks as schemaHooks, resolve } from '@feathersjs/schema'
import { Type, getValidator, querySyntax } from '@feathersjs/typebox'

const dataValidator = addFormats(new Ajv({}), ['email'])
const queryValidator = addFormats(new Ajv({ coerceTypes: true }), [])

const signUpSchema = Type.Object(
  { email: Type.String({ format: 'email' }), password: Type.String({ minLength: 8, maxLength: 1024 }) },
  { additionalProperties: false }
)
const signUpValidator = getValidator(signUpSchema, dataValidator)
const userDataResolver = resolve({ password: passwordHash({ strategy: 'local' }) })
const userExternalResolver = resolve({ password: async () => undefined })

const todoDataSchema = Type.Object(
  { title: Type.String({ minLength: 1, maxLength: 200 }), done: Type.Optional(Type.Boolean()) },
  { additionalProperties: false }
)
const todoDataValidator = getValidator(todoDataSchema, dataValidator)
const todoPatchValidator = getValidator(Type.Partial(todoDataSchema, { additionalProperties: false }), dataValidator)
const todoQuerySchema = Type.Intersect(
  [querySyntax(Type.Object({ title: Type.String(), done: Type.Boolean() })), Type.Object({}, { additionalProperties: false })],
  { additionalProperties: false }
)
const todoQueryValidator = getValidator(todoQuerySchema, queryValidator)
const owner = async (_value, _data, context) => context.params.user?.id
const todoDataResolver = resolve({ owner, done: async (value) => value ?? false })
const todoQueryResolver = resolve({ owner })

// Only a token with the admin role may remove a todo.
const adminsOnly = async (context) => {
  if (context.params.authentication?.payload?.role !== 'admin') {
    throw new Forbidden('Only admins may remove todos')
  }
}

// Clients may not write what server code may (the admin's role).
const fromClients = (hook) => async (context) => (context.params.provider ? hook(context) : undefined)

// Signs the user's role into the token.
class RoleAuthenticationService extends AuthenticationService {
  async getPayload(authResult, params) {
    const payload = await super.getPayload(authResult, params)
    return { ...payload, role: authResult.user?.role ?? 'user' }
  }
}

export const app = koa(feathers())
app.set('authentication', {
  secret: crypto.randomBytes(32).toString('hex'),
  entity: 'user',
  service: 'users',
  authStrategies: ['jwt', 'local'],
  local: { usernameField: 'email', passwordField: 'password' }
})
app.use(errorHandler())
app.use(bodyParser())
app.configure(rest())

app.use('users', new MemoryService({ startId: 0 }))
app.service('users').hooks({
  around: {
    all: [schemaHooks.resolveExternal(userExternalResolver)],
    find: [authenticate('jwt')],
    get: [authenticate('jwt')],
    patch: [authenticate('jwt')],
    remove: [authenticate('jwt')]
  },
  before: {
    create: [fromClients(schemaHooks.validateData(signUpValidator)), schemaHooks.resolveData(userDataResolver)],
    patch: [schemaHooks.resolveData(userDataResolver)]
  }
})

app.use('todos', new MemoryService({ startId: 0, paginate: { default: 10, max: 50 } }))
app.service('todos').hooks({
  around: { all: [authenticate('jwt')] },
  before: {
    create: [schemaHooks.validateData(todoDataValidator), schemaHooks.resolveData(todoDataResolver)],
    patch: [schemaHooks.validateData(todoPatchValidator), schemaHooks.resolveQuery(todoQueryResolver)],
    find: [schemaHooks.validateQuery(todoQueryValidator), schemaHooks.resolveQuery(todoQueryResolver)],
    get: [schemaHooks.resolveQuery(todoQueryResolver)],
    remove: [adminsOnly]
  }
})

const authentication = new RoleAuthenticationService(app)
authentication.register('jwt', new JWTStrategy())
authentication.register('local', new LocalStrategy())
app.use('authentication', authentication)

await app.service('users').create({ email: 'admin@example.com', password: 'admin password', role: 'admin' })
await app.listen(Number(process.env.PORT ?? 3030))
console.log(`todos on http://127.0.0.1:${process.env.PORT ?? 3030}`)
