#!/usr/bin/env node
// usage: node room-server.js DIR PORT TTL_SECS [HOST]
//
// Runs the JavaScript rooms 1.0 server, ssb-room 1.3.0, with its data in
// DIR (made if missing; the key is DIR/secret) on HOST:PORT (default
// 127.0.0.1), on the main network (ssb-caps). Prints one JSON line,
// {"id": "@…ed25519", "address": "net:HOST:PORT~shs:KEY"}, once it
// listens, and exits 0 after TTL_SECS. Errors go to stderr, exit nonzero.
//
// The plugins are ssb-room's own (its index.js), minus its web page
// (http-server.js listens on port 8007 of every interface) and minus
// ssb-logging and its invite plugin, which only serve that page. Its
// `timers` are set: without them secret-stack closes a connection idle
// for 5 s, and a room's attendants are idle most of the time.

'use strict'
const fs = require('fs')
const path = require('path')

const [dir, portArg, ttlArg, host = '127.0.0.1'] = process.argv.slice(2)
const port = Number(portArg)
const ttl = Number(ttlArg)
if (!dir || !(port > 0) || !(ttl > 0)) {
  console.error('usage: node room-server.js DIR PORT TTL_SECS [HOST]')
  process.exit(2)
}

// ssb-room's plugins and the secret-stack it pins (6.3.0), not ours.
const roomDir = path.dirname(require.resolve('ssb-room/package.json'))
const fromRoom = (m) => require(require.resolve(m, { paths: [roomDir] }))
const SecretStack = fromRoom('secret-stack')
const caps = fromRoom('ssb-caps')
const ssbKeys = require('ssb-keys')

fs.mkdirSync(dir, { recursive: true })
const keys = ssbKeys.loadOrCreateSync(path.join(dir, 'secret'))
// The name `tunnel.isRoom` answers with (ssb-room reads it from here).
const roomcfg = path.join(dir, 'roomcfg')
if (!fs.existsSync(roomcfg)) {
  fs.writeFileSync(roomcfg, JSON.stringify({ name: 'js room', description: 'ssb-room 1.3.0' }))
}

const day = 24 * 3600 * 1000
const server = SecretStack({ caps })
  .use(fromRoom('ssb-master'))
  .use(fromRoom('ssb-conn'))
  .use(require('ssb-room/tunnel/server'))
  .use(require('ssb-room/ssb-shims'))
  .call(null, {
    path: dir,
    keys,
    caps,
    host,
    port,
    timers: { inactivity: day, handshake: 30e3 },
    conn: { autostart: false },
    connections: {
      incoming: { net: [{ scope: ['public', 'local', 'device'], transform: 'shs', host, port }] },
      outgoing: { net: [{ transform: 'shs' }] },
    },
  })

server.once('multiserver:listening', () => {
  const key = keys.id.slice(1, -'.ed25519'.length)
  console.log(JSON.stringify({ id: keys.id, address: `net:${host}:${port}~shs:${key}` }))
})

setTimeout(() => {
  server.close(true, () => process.exit(0))
  setTimeout(() => process.exit(0), 2000).unref()
}, ttl * 1000)
