#!/usr/bin/env node
// usage: node room-peer.js DIR TTL_SECS [--seed HEX64] [--post TEXT]...
//          [--follow FEED]... [--room ADDRESS]... [--watch FEED] [--every MS]
//
// A Manyverse-style peer on the main network: secret-stack, ssb-db2 (and
// its compat layer for EBT), ssb-friends, ssb-ebt,
// ssb-replication-scheduler (replicates the feeds it follows), ssb-conn
// (its scheduler dials room attendants it follows) and ssb-room-client
// (tunnels through rooms 1.0 and 2.0). Its data lives in DIR.
//
//   --seed HEX64    its key from this 32-byte seed (as shoal's
//                   Keypair::from_seed); else DIR/secret, made if missing
//   --post TEXT     publishes a post with TEXT (in order, once each run)
//   --follow FEED   publishes a contact message following FEED
//   --room ADDRESS  connects to the room at this multiserver address
//                   (net:HOST:PORT~shs:KEY) as ssb-conn type "room"
//   --watch FEED    the feed the reports are about (default: its own)
//   --every MS      how often it reports (default 500)
//
// Prints JSON lines on stdout: first {"event": "ready", "id": "@…"} once
// its posts and follows are published, then every MS
// {"event": "report", "feed", "seq", "texts", "peers"}: the highest
// sequence it holds of the watched feed, the texts of that feed's posts
// in order, and its connections as ssb-conn reports them
// ([{address, key, type}], tunnels included). Exits 0 after TTL_SECS;
// errors go to stderr with exit status 1.

'use strict'
const fs = require('fs')
const path = require('path')
const pull = require('pull-stream')
const ssbKeys = require('ssb-keys')
const caps = require('ssb-caps')
const SecretStack = require('secret-stack')
const { where, author, toCallback } = require('ssb-db2/operators')

function usage(why) {
  console.error(`room-peer.js: ${why}`)
  console.error('usage: node room-peer.js DIR TTL_SECS [--seed HEX64] [--post TEXT]... ' +
    '[--follow FEED]... [--room ADDRESS]... [--watch FEED] [--every MS]')
  process.exit(2)
}

const [dir, ttlArg, ...rest] = process.argv.slice(2)
const ttl = Number(ttlArg)
if (!dir || !(ttl > 0)) usage('DIR and TTL_SECS are needed')
const opts = { posts: [], follows: [], rooms: [], seed: null, watch: null, every: 500 }
for (let i = 0; i < rest.length; i += 2) {
  const [flag, value] = [rest[i], rest[i + 1]]
  if (value === undefined) usage(`${flag} needs a value`)
  if (flag === '--post') opts.posts.push(value)
  else if (flag === '--follow') opts.follows.push(value)
  else if (flag === '--room') opts.rooms.push(value)
  else if (flag === '--seed') opts.seed = value
  else if (flag === '--watch') opts.watch = value
  else if (flag === '--every') opts.every = Number(value)
  else usage(`unknown argument ${flag}`)
}

function fail(what, err) {
  console.error(`room-peer.js: ${what}: ${err && err.stack ? err.stack : err}`)
  process.exit(1)
}

fs.mkdirSync(dir, { recursive: true })
let keys
if (opts.seed) {
  const seed = Buffer.from(opts.seed, 'hex')
  if (seed.length !== 32) usage('--seed takes 64 hex digits')
  keys = ssbKeys.generate('ed25519', seed)
} else {
  keys = ssbKeys.loadOrCreateSync(path.join(dir, 'secret'))
}

const day = 24 * 3600 * 1000
const ssb = SecretStack({ caps })
  .use(require('ssb-master'))
  .use(require('ssb-db2'))
  .use(require('ssb-db2/compat'))
  .use(require('ssb-friends'))
  .use(require('ssb-ebt'))
  .use(require('ssb-conn'))
  .use(require('ssb-replication-scheduler'))
  .use(require('ssb-room-client'))
  .call(null, {
    path: dir,
    keys,
    caps,
    // Without timers secret-stack closes a connection idle for 5 s.
    timers: { inactivity: day, handshake: 30e3 },
    friends: { hops: 2 },
    conn: { autostart: true, populatePubs: false },
    connections: {
      // Incoming connections only through rooms' tunnels.
      incoming: { tunnel: [{ scope: 'public', transform: 'shs' }] },
      outgoing: { net: [{ transform: 'shs' }], tunnel: [{ transform: 'shs' }] },
    },
  })

// Publishes `contents` one after the other.
function publishAll(contents, cb) {
  if (contents.length === 0) return cb()
  ssb.db.publish(contents[0], (err) => {
    if (err) return fail('publish', err)
    publishAll(contents.slice(1), cb)
  })
}

const watch = opts.watch || ssb.id

function report() {
  ssb.db.query(where(author(watch)), toCallback((err, msgs) => {
    if (err) return fail('query', err)
    msgs.sort((a, b) => a.value.sequence - b.value.sequence)
    const seq = msgs.length ? msgs[msgs.length - 1].value.sequence : 0
    const texts = msgs
      .filter((m) => m.value.content && m.value.content.type === 'post')
      .map((m) => m.value.content.text)
    const peers = ssb.conn.query().peersConnected()
      .map(([address, data]) => ({ address, key: data.key, type: data.type }))
    console.log(JSON.stringify({ event: 'report', feed: watch, seq, texts, peers }))
  }))
}

const contents = [
  ...opts.follows.map((contact) => ({ type: 'contact', contact, following: true })),
  ...opts.posts.map((text) => ({ type: 'post', text })),
]
publishAll(contents, () => {
  console.log(JSON.stringify({ event: 'ready', id: ssb.id }))
  for (const address of opts.rooms) {
    ssb.conn.remember(address, { type: 'room', autoconnect: true })
    ssb.conn.connect(address, { type: 'room' }, (err) => {
      // Not fatal: ssb-conn's scheduler tries again.
      if (err) console.error(`room-peer.js: connecting to ${address}: ${err.message || err}`)
    })
  }
  setInterval(report, opts.every)
  report()
})

setTimeout(() => {
  ssb.close(true, () => process.exit(0))
  setTimeout(() => process.exit(0), 2000).unref()
}, ttl * 1000)
