#!/usr/bin/env node
// Publishes messages with unusual content through a running refpeer ssb-server, over one RPC
// connection made with the kit's own helper (scripts/lib.js: ssb-client, net + shs, the peer's key).
//
// usage: REFPEER_HOME=<dir> node tests/js/publish-unusual.js <peer>
//   kit: $SHOAL_REFPEER, default <repo>/../shared/refpeer
//
// Publishes ~50 messages one after the other (the server assigns previous, sequence and a
// monotonic, often fractional, timestamp), one of them private (recps: the peer and another
// feed; the server boxes it, and we check that it opens again), one just under the 8192-unit
// limit, and tries one over the limit, which the server must refuse.
// Prints one line per published message: {key, private, content} with the content as sent.
'use strict'
const path = require('path')
const crypto = require('crypto')

const kit = path.resolve(process.env.SHOAL_REFPEER || path.join(__dirname, '..', '..', '..', 'shared', 'refpeer'))
const { connect, serverRequire } = require(path.join(kit, 'scripts', 'lib.js'))
const ssbKeys = serverRequire('ssb-keys')

const peer = process.argv[2]
if (!peer) { console.error('usage: node tests/js/publish-unusual.js <peer>'); process.exit(2) }
function fail (msg) { console.error('publish-unusual: ' + msg); process.exit(1) }

const friend = ssbKeys.generate('ed25519', crypto.createHash('sha256').update('shoal publish friend').digest())

let CONTROLS = ''
for (let c = 0; c < 0x20; c++) CONTROLS += String.fromCharCode(c)
CONTROLS += '\u007f\u0080\u009f\u2028\u2029'
const SURROGATES = ['\ud800', '\udfff', 'x\ud800y', '\ud83dA', '\ude00\ud83d', '\ud83d\ud83d\ude00', '\udbff']
const TEXTS = ['', 'é ß Ω Ж', '日本語のテキスト', '😀🐟👩\u200d👩\u200d👧', 'e\u0301\u0301', '\ufeff\ufffd\uffff', '"\\/\'', '\u{10ffff}𝄞']
const NUMBERS = [0.1, 1e21, 1e-7, 5e-324, 1.7976931348623157e308, 2 ** 53 + 2, 12345678901234567890, 123e-20, -0, 4294967295, 1 / 3]
const TYPES = ['abc', 'x'.repeat(52), 'a😀', '日'.repeat(52), 'a'.repeat(50) + '😀', '\u0000\u0001\u0002', '\ud800ab']

function contents (self) {
  const list = []
  for (let i = 0; i < 8; i++) list.push({ type: 'post', text: TEXTS[i] + ' ' + SURROGATES[i % SURROGATES.length] })
  for (let i = 0; i < 7; i++) list.push({ type: 'post', text: SURROGATES[i], [SURROGATES[i] + 'key']: SURROGATES[(i + 1) % 7] })
  for (let i = 0; i < 5; i++) list.push({ type: 'control', text: CONTROLS.slice(i * 6) + CONTROLS.slice(0, i * 6), [CONTROLS[i]]: CONTROLS[i + 1] })
  for (let i = 0; i < 5; i++) {
    list.push(Object.assign({ type: 'integer-keys', b: 1, 10: 'ten', 2: 'two', '01': 'x', '-1': 'y', 4294967294: 'max', 4294967295: 'over', '': i, 1.5: 'f' },
      { [String(i * 3)]: i, nested: { 9: [], 1: {}, a: { 3: 'x', 0: 'y' } } }))
  }
  for (let i = 0; i < 5; i++) list.push({ type: 'numbers', n: NUMBERS[i], values: NUMBERS.slice(i), neg: -NUMBERS[i + 1], o: { 1e21: 1e21, 0.1: 0.1 } })
  for (let i = 0; i < 5; i++) {
    let v = i % 2 ? [] : {}
    for (let d = 0; d < 6 + i * 3; d++) v = d % 2 ? [v, d, [], {}] : { [String(d)]: v, e: {}, f: [''] }
    list.push({ type: 'nested', value: v })
  }
  list.push({ type: 'empty', text: '', '': '', list: ['', { '': '' }] })
  for (const type of TYPES) list.push({ type, text: 'type ' + JSON.stringify(type) })
  // (no "__proto__" key: ssb-server 16 signs and keys a message with it, then stores and serves
  // the message without it, so the served copy no longer matches its key or signature)
  list.push(JSON.parse('{"type":"proto","constructor":"c","valueOf":"v"}'))
  list.push({ type: 'post', text: 'reply', root: null, branch: [], mentions: [{ link: friend.id, name: '😀' }], channel: '\ud800' })
  list.push({ type: 'post', text: 'private ' + TEXTS[3] + SURROGATES[0] + CONTROLS, recps: [self, friend.id] })
  list.push({ type: 'post', text: '', unit: '日' }) // filled to just under the limit below
  return list
}

// Units of the message the server will make of `content`, with a timestamp as long as any it makes.
function estimate (self, content) {
  return JSON.stringify({
    previous: '%' + 'A'.repeat(43) + '=.sha256', sequence: 99, author: self, timestamp: 1700000000000.0001,
    hash: 'sha256', content, signature: 'S'.repeat(100)
  }, null, 2).length
}

connect(peer, (err, sbot, config) => {
  if (err) fail('connect: ' + err.message)
  const self = config.keys.id
  const list = contents(self)
  const long = list[list.length - 1]
  long.text = '日'.repeat(8170 - estimate(self, long))
  let i = 0
  const next = () => {
    if (i === list.length) return tooLong()
    const content = list[i++]
    sbot.publish(content, (err, msg) => {
      if (err) fail(`publish ${i}: ${err.message}`)
      const isPrivate = !!content.recps
      if (isPrivate) {
        if (typeof msg.value.content !== 'string' || !msg.value.content.endsWith('.box')) fail('private message not boxed')
        const opened = ssbKeys.unbox(msg.value.content, config.keys)
        if (JSON.stringify(opened) !== JSON.stringify(content)) fail('private message does not open to its content')
      }
      process.stdout.write(JSON.stringify({ key: msg.key, private: isPrivate, content }) + '\n')
      next()
    })
  }
  // Over the limit: the server must refuse it, and still publish after it.
  const tooLong = () => {
    sbot.publish({ type: 'post', text: 'a'.repeat(8200) }, (err) => {
      if (!err) fail('a message over 8192 units was published')
      const content = { type: 'post', text: 'after the refused one 😀' }
      sbot.publish(content, (err, msg) => {
        if (err) fail('publish after the refused one: ' + err.message)
        process.stdout.write(JSON.stringify({ key: msg.key, private: false, content }) + '\n')
        sbot.close(true, () => process.exit(0))
      })
    })
  }
  next()
})
