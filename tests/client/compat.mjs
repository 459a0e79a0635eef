// Runs the official Feathers 5 clients against a Plume server.
//
// Starts the `plume` binary (PLUME_BIN, default target/debug/plume) with
// PLUME_ENV=test on a free port, runs every check, stops the server by its
// process id, and exits non-zero if any check failed.

import { spawn } from 'node:child_process'
import assert from 'node:assert/strict'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { feathers } from '@feathersjs/feathers'
import rest from '@feathersjs/rest-client'
import { BadRequest, NotFound, MethodNotAllowed } from '@feathersjs/errors'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const bin = process.env.PLUME_BIN || path.join(root, 'target/debug/plume')

function startServer () {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ['serve', '--port', '0'], {
      cwd: root,
      env: { ...process.env, PLUME_ENV: 'test', RUST_LOG: 'info', NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe']
    })
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
        resolve({ child, url: match[1] })
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

const checks = []
const check = (name, fn) => checks.push({ name, fn })

check('create returns the record with its id', async ({ app }) => {
  const created = await app.service('messages').create({ text: 'hello from the client' })
  assert.equal(created.text, 'hello from the client')
  assert.equal(typeof created.id, 'number')
  assert.equal(typeof created.createdAt, 'number')
})

check('get and find with the query syntax', async ({ app }) => {
  const messages = app.service('messages')
  for (const text of ['b', 'c', 'a']) await messages.create({ text })
  const one = await messages.get(0)
  assert.equal(one.id, 0)
  const page = await messages.find({ query: { text: { $in: ['a', 'b'] }, $sort: { text: -1 }, $limit: 1 } })
  assert.equal(page.total, 2)
  assert.equal(page.limit, 1)
  assert.deepEqual(page.data.map((m) => m.text), ['b'])
  const none = await messages.find({ query: { $limit: 0 } })
  assert.equal(none.data.length, 0)
  assert.equal(none.total, 4)
  const selected = await messages.find({ query: { $select: ['text'], text: 'a' } })
  assert.deepEqual(Object.keys(selected.data[0]).sort(), ['id', 'text'])
  const or = await messages.find({ query: { $or: [{ text: 'a' }, { text: 'c' }], $sort: { text: 1 } } })
  assert.deepEqual(or.data.map((m) => m.text), ['a', 'c'])
})

check('patch, update and remove', async ({ app }) => {
  const messages = app.service('messages')
  const created = await messages.create({ text: 'to change' })
  const patched = await messages.patch(created.id, { text: 'patched' })
  assert.equal(patched.text, 'patched')
  assert.equal(patched.createdAt, created.createdAt)
  const updated = await messages.update(created.id, { text: 'replaced' })
  assert.equal(updated.text, 'replaced')
  assert.equal(updated.createdAt, undefined)
  const removed = await messages.remove(created.id)
  assert.equal(removed.id, created.id)
  await assert.rejects(messages.get(created.id), NotFound)
})

check('errors are revived as Feathers error classes', async ({ app }) => {
  const messages = app.service('messages')
  await assert.rejects(messages.create({ text: '   ' }), (error) => {
    assert.ok(error instanceof BadRequest, `got ${error && error.name}`)
    assert.equal(error.message, 'Message text is required')
    assert.deepEqual(error.data, { hook: 'messages.error.create' })
    return true
  })
  await assert.rejects(messages.find({ query: { $foo: 1 } }), BadRequest)
  await assert.rejects(messages.get(123456), NotFound)
  await assert.rejects(messages.remove(null), MethodNotAllowed)
})

let server
let failed = 0
try {
  server = await startServer()
  const app = feathers()
  app.configure(rest(server.url).fetch(fetch))
  for (const { name, fn } of checks) {
    try {
      await fn({ app, url: server.url })
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
  if (server) server.child.kill('SIGTERM')
}
console.log(`${checks.length - failed}/${checks.length} checks passed`)
process.exit(failed ? 1 : 0)
