// Runs the official Feathers 5 JavaScript clients against the `plume`
// binary serving its default app.
//
// Starts `plume` (PLUME_BIN, default target/debug/plume) with PLUME_ENV=test
// (SQLite in memory) on a free port, runs every check with
// @feathersjs/rest-client, @feathersjs/socketio-client and
// @feathersjs/authentication-client, stops each server by its process id,
// and exits non-zero if any check failed.

import { spawn } from 'node:child_process'
import assert from 'node:assert/strict'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { feathers } from '@feathersjs/feathers'
import rest from '@feathersjs/rest-client'
import socketio from '@feathersjs/socketio-client'
import authentication from '@feathersjs/authentication-client'
import { BadRequest, Conflict, NotFound, MethodNotAllowed, NotAuthenticated } from '@feathersjs/errors'
import { io } from 'socket.io-client'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const bin = process.env.PLUME_BIN || path.join(root, 'target/debug/plume')
const servers = []

function startServer (extraEnv = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ['serve', '--port', '0'], {
      cwd: root,
      env: { ...process.env, PLUME_ENV: 'test', RUST_LOG: 'info', NO_COLOR: '1', ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    servers.push(child)
    let log = ''
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`server did not start within 20 s:\n${log}`))
    }, 20000)
    const onData = (chunk) => {
      log += chunk
      const match = log.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/)
      if (match) {
        clearTimeout(timer)
        resolve(match[1])
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.on('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`server exited with ${code}:\n${log}`))
    })
  })
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function restClient (url) {
  return feathers().configure(rest(url).fetch(fetch)).configure(authentication())
}

function socketClient (url) {
  const socket = io(url, { transports: ['websocket'], forceNew: true })
  const app = feathers().configure(socketio(socket)).configure(authentication())
  return { app, socket }
}

/** Collects `<service> <event>` events a socket client receives. */
function recorder (app, service) {
  const seen = []
  for (const event of ['created', 'patched', 'updated', 'removed']) {
    app.service(service).on(event, (data) => seen.push({ event, data }))
  }
  return seen
}

async function until (predicate, what, ms = 5000) {
  const end = Date.now() + ms
  while (Date.now() < end) {
    if (predicate()) return
    await sleep(20)
  }
  throw new Error(`timed out waiting for ${what}`)
}

const checks = []
const check = (name, fn) => checks.push({ name, fn })
const user = { email: 'ada@example.com', password: 'correct horse battery' }
const login = { strategy: 'local', email: user.email, password: user.password }

check('sign up, then log in with the local strategy', async ({ url }) => {
  const app = restClient(url)
  const created = await app.service('users').create(user)
  assert.equal(created.email, user.email)
  assert.equal(created.password, undefined, 'the hash never leaves the server')
  await assert.rejects(app.service('users').create(user), Conflict)
  const result = await app.authenticate(login)
  assert.equal(typeof result.accessToken, 'string')
  assert.equal(result.user.email, user.email)
  assert.equal(result.user.password, undefined)
  assert.equal(result.authentication.payload.iss, 'feathers')
  assert.equal(result.authentication.payload.role, 'user')
  assert.equal(String(result.authentication.payload.sub), String(result.user.id))
})

check('wrong password and unknown user give the same NotAuthenticated', async ({ url }) => {
  const app = restClient(url)
  const wrong = await app.authenticate({ ...login, password: 'nope' }).catch((e) => e)
  const unknown = await app.authenticate({ ...login, email: 'nobody@example.com' }).catch((e) => e)
  assert.ok(wrong instanceof NotAuthenticated, `got ${wrong && wrong.name}`)
  assert.ok(unknown instanceof NotAuthenticated)
  assert.equal(wrong.message, unknown.message)
})

check('reAuthenticate returns the same token', async ({ url }) => {
  const app = restClient(url)
  const first = await app.authenticate(login)
  const again = await app.reAuthenticate(true)
  assert.equal(again.accessToken, first.accessToken)
})

check('protected services need the token, and get it from the client', async ({ url }) => {
  const anonymous = restClient(url)
  await assert.rejects(anonymous.service('messages').find(), NotAuthenticated)
  const app = restClient(url)
  const { user: me } = await app.authenticate(login)
  const messages = app.service('messages')
  const created = await messages.create({ text: 'hello', userId: 'someone else' })
  assert.equal(created.text, 'hello')
  assert.equal(created.userId, me.id, 'userId comes from the token')
  assert.equal(typeof created.createdAt, 'number')
  assert.equal((await messages.get(created.id)).text, 'hello')
  assert.equal((await messages.patch(created.id, { text: 'patched' })).text, 'patched')
  assert.equal((await messages.update(created.id, { text: 'replaced' })).text, 'replaced')
  assert.equal((await messages.remove(created.id)).id, created.id)
  await assert.rejects(messages.get(created.id), NotFound)
  // Users are paginated and a user finds only their own record.
  const users = await app.service('users').find()
  assert.equal(users.total, 1)
  assert.equal(users.data[0].email, user.email)
  assert.ok(users.data.every((u) => u.password === undefined))
})

check('the query syntax', async ({ url }) => {
  const app = restClient(url)
  await app.authenticate(login)
  const messages = app.service('messages')
  for (const text of ['b', 'c', 'a']) await messages.create({ text })
  const page = await messages.find({ query: { text: { $in: ['a', 'b'] }, $sort: { text: -1 }, $limit: 1 } })
  assert.equal(page.total, 2)
  assert.equal(page.limit, 1)
  assert.deepEqual(page.data.map((m) => m.text), ['b'])
  const counted = await messages.find({ query: { $limit: 0 } })
  assert.equal(counted.data.length, 0)
  assert.ok(counted.total >= 3)
  const selected = await messages.find({ query: { $select: ['text'], text: 'a' } })
  assert.deepEqual(Object.keys(selected.data[0]).sort(), ['id', 'text'])
  const or = await messages.find({ query: { $or: [{ text: 'a' }, { text: 'c' }], $sort: { text: 1 } } })
  assert.deepEqual(or.data.map((m) => m.text), ['a', 'c'])
  const older = await messages.find({ query: { createdAt: { $lte: Date.now() }, $skip: 1, $limit: 50 } })
  assert.equal(older.skip, 1)
})

check('errors are revived as Feathers error classes', async ({ url }) => {
  const app = restClient(url)
  await app.authenticate(login)
  const messages = app.service('messages')
  await assert.rejects(messages.create({ text: '   ' }), (error) => {
    assert.ok(error instanceof BadRequest, `got ${error && error.name}`)
    assert.equal(error.message, 'validation failed')
    assert.equal(error.data[0].instancePath, '/text')
    return true
  })
  await assert.rejects(messages.find({ query: { $foo: 1 } }), BadRequest)
  await assert.rejects(messages.get(123456), NotFound)
  await assert.rejects(messages.remove(null), MethodNotAllowed)
})

check('logout revokes the token', async ({ url }) => {
  const app = restClient(url)
  const { accessToken } = await app.authenticate(login)
  await app.logout()
  const stale = restClient(url)
  await stale.authentication.setAccessToken(accessToken)
  await assert.rejects(stale.reAuthenticate(), NotAuthenticated)
  await assert.rejects(app.service('messages').find(), NotAuthenticated)
})

check('socket: log in, events reach authenticated sockets only, log out', async ({ url }) => {
  const anonymous = socketClient(url)
  const client = socketClient(url)
  try {
    const anonymousEvents = recorder(anonymous.app, 'messages')
    const events = recorder(client.app, 'messages')
    const result = await client.app.authenticate(login)
    assert.equal(result.user.email, user.email)
    // Later socket calls carry the login.
    assert.ok((await client.app.service('messages').find()).total >= 0)

    const restApp = restClient(url)
    await restApp.authenticate(login)
    const created = await restApp.service('messages').create({ text: 'from REST' })
    await until(() => events.some((e) => e.event === 'created' && e.data.id === created.id), 'the created event')
    await restApp.service('messages').patch(created.id, { text: 'edited' })
    await restApp.service('messages').remove(created.id)
    await until(() => events.some((e) => e.event === 'removed' && e.data.id === created.id), 'the removed event')
    assert.deepEqual(events.filter((e) => e.data.id === created.id).map((e) => e.event), ['created', 'patched', 'removed'])
    await sleep(200)
    assert.deepEqual(anonymousEvents, [], 'anonymous sockets get no events')

    await client.app.logout()
    await assert.rejects(client.app.service('messages').find(), NotAuthenticated)
    const before = events.length
    await restApp.service('messages').create({ text: 'after logout' })
    await sleep(300)
    assert.equal(events.length, before, 'no events after logout')
  } finally {
    anonymous.socket.close()
    client.socket.close()
  }
})

check('socket over long-polling, then upgraded (the client default): the handshake\'s Authorization header logs it in', async ({ url }) => {
  const restApp = restClient(url)
  const { accessToken } = await restApp.authenticate(login)
  // No `transports` option: the client starts with polling and upgrades.
  const socket = io(url, { forceNew: true, extraHeaders: { authorization: `Bearer ${accessToken}` } })
  const app = feathers().configure(socketio(socket))
  try {
    const events = recorder(app, 'messages')
    await until(() => socket.connected, 'the connection')
    // A call without logging in over the socket: the header's login.
    assert.ok((await app.service('messages').find()).total >= 0)
    await until(() => socket.io.engine.transport.name === 'websocket', 'the upgrade to WebSocket')
    const created = await restApp.service('messages').create({ text: 'to a polling-born socket' })
    await until(() => events.some((e) => e.event === 'created' && e.data.id === created.id), 'the created event')
    assert.ok((await app.service('messages').find()).total >= 1, 'still logged in after the upgrade')
  } finally {
    socket.close()
  }
})

check('socket: an expired token is announced, the socket closed, and a new login works on reconnect (3 s)', async () => {
  const url = await startServer({ AUTH_EXPIRES_IN: '3s' })
  const restApp = restClient(url)
  await restApp.service('users').create(user)
  const client = socketClient(url)
  try {
    const events = recorder(client.app, 'messages')
    let expired = null
    // What an app does with the official client: forget the expired login
    // at once, so the client does not retry it when the socket drops (its
    // reAuthenticate would be refused, and Node stops on the unhandled
    // rejection), then log in afresh.
    client.app.service('authentication').on('expired', (error) => {
      expired = error
      client.app.authentication.reset()
    })
    let reason = null
    client.socket.on('disconnect', (why) => { reason = why })
    await client.app.authenticate(login)
    const author = restClient(url)
    await author.authenticate(login)
    await author.service('messages').create({ text: 'before expiry' })
    await until(() => events.length === 1, 'an event before expiry')
    await until(() => reason !== null, 'the server closing the socket', 6000)
    assert.equal(reason, 'io server disconnect')
    assert.equal(expired && expired.name, 'NotAuthenticated')
    assert.equal(expired && expired.message, 'jwt expired')
    // The client reconnects and logs in afresh; events flow again.
    client.socket.connect()
    await client.app.authenticate(login)
    const fresh = restClient(url)
    await fresh.authenticate(login)
    await fresh.service('messages').create({ text: 'after a new login' })
    await until(() => events.length === 2, 'an event after the new login')
  } finally {
    client.socket.close()
  }
})

let failed = 0
try {
  const url = await startServer()
  for (const { name, fn } of checks) {
    try {
      await fn({ url })
      console.log(`ok   ${name}`)
    } catch (error) {
      failed++
      console.log(`FAIL ${name}\n     ${(error && error.stack) || error}`)
    }
  }
} catch (error) {
  failed++
  console.log(`FAIL starting the server: ${error.message}`)
} finally {
  for (const child of servers) child.kill('SIGTERM')
}
console.log(`${checks.length - failed}/${checks.length} checks passed`)
process.exit(failed ? 1 : 0)
