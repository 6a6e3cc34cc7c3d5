#!/usr/bin/env node
// Hands already-signed messages of one feed to a running refpeer ssb-server through its
// createWriteStream, the sink its legacy replication writes into (ssb-validate only, without the
// extra checks of the `add` RPC), then waits until the server holds the last one.
//
// usage: REFPEER_HOME=<dir> node tests/js/write-stream.js <peer> <file.ndjson>
//   kit: $SHOAL_REFPEER, default <repo>/../shared/refpeer
//   lines: {key, value} of one feed, in order. Exits 1 if the server does not store them all
//   within 20 s. Prints {feed, sequence} of what the server holds.
'use strict'
const fs = require('fs')
const path = require('path')

const kit = path.resolve(process.env.SHOAL_REFPEER || path.join(__dirname, '..', '..', '..', 'shared', 'refpeer'))
const { connect, serverRequire, seqOf } = require(path.join(kit, 'scripts', 'lib.js'))
const pull = serverRequire('pull-stream')

const [peer, file] = process.argv.slice(2)
if (!peer || !file) { console.error('usage: node tests/js/write-stream.js <peer> <file.ndjson>'); process.exit(2) }
const msgs = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map(l => JSON.parse(l).value)
const feed = msgs[0].author
const want = msgs[msgs.length - 1].sequence

connect(peer, (err, sbot) => {
  if (err) { console.error('write-stream: connect: ' + err.message); process.exit(1) }
  pull(pull.values(msgs), sbot.createWriteStream((err) => {
    if (err) { console.error('write-stream: ' + err.message); process.exit(1) }
  }))
  const deadline = Date.now() + 20000
  const poll = () => sbot.latestSequence(feed, (err, latest) => {
    const seq = err ? 0 : seqOf(latest)
    if (seq === want) {
      console.log(JSON.stringify({ feed, sequence: seq }))
      return sbot.close(true, () => process.exit(0))
    }
    if (Date.now() > deadline) { console.error(`write-stream: server holds ${feed} up to ${seq}, not ${want}`); process.exit(1) }
    setTimeout(poll, 50)
  })
  poll()
})
