#!/usr/bin/env node
// Blobs through a running refpeer ssb-server, over one RPC connection made with the kit's own
// helper (scripts/lib.js). Waits for the server at each step: `sbot blobs.add FILE` on the command
// line can exit before the server has written the blob.
//
// usage: REFPEER_HOME=<dir> node tests/js/blobs.js <peer> add FILE
//          adds FILE as a blob, then publishes a post linking it as Patchwork does
//          ({text: "![NAME](&ID)", mentions: [{link, name, size, type}]}); prints {id, key}
//        REFPEER_HOME=<dir> node tests/js/blobs.js <peer> want ID OUT [timeoutSec=60]
//          asks for the blob (blobs.want: from the peers it is connected to), then reads it
//          with blobs.get into OUT; prints {id, size, ms}, or exits 1 on timeout
//        REFPEER_HOME=<dir> node tests/js/blobs.js <peer> want-all ID...
//          blobs.want of each in turn (no read back); prints {count, ms}
'use strict'
const path = require('path')
const fs = require('fs')

const kit = path.resolve(process.env.SHOAL_REFPEER || path.join(__dirname, '..', '..', '..', 'shared', 'refpeer'))
const { connect, serverRequire } = require(path.join(kit, 'scripts', 'lib.js'))
const pull = serverRequire('pull-stream')

const [peer, cmd, a, b, c] = process.argv.slice(2)
function fail (err) { console.error(String(err && err.stack || err)); process.exit(1) }

connect(peer, (err, sbot) => {
  if (err) fail(err)
  const done = (out) => { console.log(JSON.stringify(out)); sbot.close(true, () => process.exit(0)) }
  if (cmd === 'add') {
    const bytes = fs.readFileSync(a)
    const name = path.basename(a)
    pull(pull.values([bytes]), sbot.blobs.add((err, id) => {
      if (err) fail(err)
      const content = {
        type: 'post',
        text: `![${name}](${id})`,
        mentions: [{ link: id, name, size: bytes.length, type: 'image/png' }]
      }
      sbot.publish(content, (err, msg) => {
        if (err) fail(err)
        done({ id, key: msg.key })
      })
    }))
  } else if (cmd === 'want') {
    const t0 = Date.now()
    const timer = setTimeout(() => { console.log(JSON.stringify({ timeout: true, id: a })); process.exit(1) }, (+c || 60) * 1000)
    sbot.blobs.want(a, (err, has) => {
      if (err) fail(err)
      if (!has) fail(new Error('blobs.want answered false'))
      pull(sbot.blobs.get(a), pull.collect((err, bufs) => {
        if (err) fail(err)
        const all = Buffer.concat(bufs)
        fs.writeFileSync(b, all)
        clearTimeout(timer)
        done({ id: a, size: all.length, ms: Date.now() - t0 })
      }))
    })
  } else if (cmd === 'want-all') {
    const ids = process.argv.slice(4)
    const t0 = Date.now()
    ;(function next (i) {
      if (i === ids.length) return done({ count: ids.length, ms: Date.now() - t0 })
      sbot.blobs.want(ids[i], (err, has) => {
        if (err) fail(err)
        if (!has) fail(new Error('blobs.want answered false'))
        next(i + 1)
      })
    })(0)
  } else {
    fail(new Error('usage: blobs.js <peer> add FILE | want ID OUT [timeoutSec]'))
  }
})
