// Feathers 5 (koa) equivalent of Plume's default app, for bench/run.
//
// Same services, hooks and authentication settings as Plume's default app
// (issue 4, point 5): `users` (public sign-up, password hashed, protected),
// `messages` (authenticated, paginated 10/50, text required, userId and
// createdAt stamped, error hook on create) and `authentication` (jwt +
// local). Both services use @feathersjs/memory, where Plume uses SQLite.
//
//   PORT=3031 node app.mjs      (listens on 127.0.0.1 only)
import { feathers } from '@feathersjs/feathers'
import { koa, rest, bodyParser, errorHandler, parseAuthentication } from '@feathersjs/koa'
import { AuthenticationService, JWTStrategy, authenticate } from '@feathersjs/authentication'
import { LocalStrategy, hooks as localHooks } from '@feathersjs/authentication-local'
import { MemoryService } from '@feathersjs/memory'
import socketio from '@feathersjs/socketio'
import { BadRequest } from '@feathersjs/errors'

const { hashPassword, protect } = localHooks

const host = process.env.HOST || '127.0.0.1'
const port = Number(process.env.PORT || 3030)

// Plume's config/default.json, authentication section.
const authentication = {
  secret:
    process.env.AUTH_SECRET ||
    'plume-development-secret-do-not-use-in-production-change-me-0123456789',
  entity: 'user',
  service: 'users',
  authStrategies: ['jwt', 'local'],
  jwtOptions: {
    header: { typ: 'access' },
    audience: 'https://yourdomain.com',
    issuer: 'feathers',
    algorithm: 'HS256',
    expiresIn: '1d'
  },
  local: {
    usernameField: 'email',
    passwordField: 'password'
  }
}

// The `get_payload` override of Plume's default app: role and permissions
// of the user travel in the token when the user has them.
class AppAuthenticationService extends AuthenticationService {
  async getPayload(authResult, params) {
    const payload = await super.getPayload(authResult, params)
    const { user } = authResult
    if (user && user.permissions !== undefined) payload.permissions = user.permissions
    if (user && user.role !== undefined) payload.role = user.role
    return payload
  }
}

const app = koa(feathers())
app.set('authentication', authentication)

app.use(errorHandler())
app.use(parseAuthentication())
app.use(bodyParser())
app.configure(rest())
// Real-time, as a generated Feathers app has it (its `channels` file):
// every connection joins `anonymous`, moves to `authenticated` on login,
// and every service event goes to `authenticated`. `bench/realtime` measures
// it; the request scenarios of `bench/run` do not touch it.
app.configure(socketio())
app.on('connection', (connection) => app.channel('anonymous').join(connection))
app.on('login', (authResult, { connection }) => {
  if (connection) {
    app.channel('anonymous').leave(connection)
    app.channel('authenticated').join(connection)
  }
})
app.publish(() => app.channel('authenticated'))

// users: create is public (sign-up); everything else needs a JWT.
app.use('users', new MemoryService({ id: 'id', startId: 0 }))
app.service('users').hooks({
  after: {
    all: [protect('password')]
  },
  before: {
    find: [authenticate('jwt')],
    get: [authenticate('jwt')],
    create: [hashPassword('password')],
    update: [authenticate('jwt'), hashPassword('password')],
    patch: [authenticate('jwt'), hashPassword('password')],
    remove: [authenticate('jwt')]
  }
})

// messages: every method needs a JWT; paginated 10 / 50.
const requireText = async (context) => {
  const text = context.data && context.data.text
  if (typeof text !== 'string' || text.trim() === '') {
    throw new BadRequest('Message text is required')
  }
}

const stamp = async (context) => {
  context.data = {
    ...context.data,
    userId: context.params.user.id,
    createdAt: Date.now()
  }
}

const tagCreateError = async (context) => {
  if (context.error && context.error.code === 400) {
    context.error.data = { ...(context.error.data || {}), hook: 'messages.error.create' }
  }
}

app.use('messages', new MemoryService({ id: 'id', startId: 0, paginate: { default: 10, max: 50 } }))
app.service('messages').hooks({
  before: {
    all: [authenticate('jwt')],
    create: [requireText, stamp]
  },
  error: {
    create: [tagCreateError]
  }
})

// authentication: jwt + local.
const auth = new AppAuthenticationService(app)
auth.register('jwt', new JWTStrategy())
auth.register('local', new LocalStrategy())
app.use('authentication', auth)
app.service('authentication').hooks({
  before: {
    create: [
      async (context) => {
        const payload = context.params.payload || {}
        if (payload.role === undefined) payload.role = 'user'
        context.params.payload = payload
      }
    ]
  }
})

await app.listen(port, host)
console.log(`feathers listening on http://${host}:${port}`)

const stop = () => process.exit(0)
process.on('SIGINT', stop)
process.on('SIGTERM', stop)
