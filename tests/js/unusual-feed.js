#!/usr/bin/env node
// A deterministic classic feed with unusual content, signed by the JavaScript stack
// (ssb-keys + ssb-validate from the refpeer kit's oracle), plus variants of its next message.
//
// usage: node tests/js/unusual-feed.js [--quirk-feed]
//   kit: $SHOAL_REFPEER, default <repo>/../shared/refpeer (run its bin/install.sh first)
//   --quirk-feed: print only a short feed of odd messages ssb-validate accepts (see quirkFeed)
//
// Output, one compact JSON per line:
//   - the feed, in order: {key, value, timestamp}        (every message checked by ssb-validate)
//   - then variants of the message after the feed's last one, each checked by ssb-validate:
//     {case, valid, state, key, value}  where state is {id, sequence} (the feed state the message
//     is validated against) and valid is what ssb-validate says (invalid ones: tampered text, wrong
//     previous, short or long type, 8193 units, non-canonical signature, bad boxes; valid ones:
//     oddities ssb-validate accepts such as a previous wrapped in an array or a string timestamp).
// Exits 1 if ssb-validate disagrees with what a line is meant to be, or with our own id.
'use strict'
const path = require('path')
const crypto = require('crypto')
const { createRequire } = require('module')

const kit = path.resolve(process.env.SHOAL_REFPEER || path.join(__dirname, '..', '..', '..', 'shared', 'refpeer'))
const oracleRequire = createRequire(path.join(kit, 'oracle', 'package.json'))
const chloride = oracleRequire('chloride')

function fail (msg) { console.error('unusual-feed: ' + msg); process.exit(1) }
function sha256 (data) { return crypto.createHash('sha256').update(data).digest() }

// private-box draws its nonce, body key and one-time keypair from chloride: make them a
// deterministic stream so that the boxed messages, and so the whole feed, are the same every run.
let rngCounter = 0
function detBytes (n) {
  const out = Buffer.alloc(n)
  for (let off = 0; off < n;) off += sha256('shoal-unusual-feed-rng-' + rngCounter++).copy(out, off)
  return out
}
chloride.randombytes = buf => { detBytes(buf.length).copy(buf); return buf }
chloride.crypto_box_keypair = () => chloride.crypto_box_seed_keypair(detBytes(32))
// (private-box copies crypto_box_keypair when it loads, so ssb-keys comes after the patch)
const ssbKeys = oracleRequire('ssb-keys')
const validate = oracleRequire('ssb-validate')

// A small deterministic PRNG (xorshift32) for the content.
let rs = 0x5eed1234
function rnd (n) { rs ^= rs << 13; rs >>>= 0; rs ^= rs >>> 17; rs ^= rs << 5; rs >>>= 0; return rs % n }
function pick (xs) { return xs[rnd(xs.length)] }

const keys = ssbKeys.generate('ed25519', sha256('shoal unusual feed author'))
const friend = ssbKeys.generate('ed25519', sha256('shoal unusual feed friend'))

// Pieces of trap strings: escapes, raw non-ASCII, lone surrogates, controls, line separators.
const PIECES = [
  'a', 'Z', ' ', '"', '\\', '/', "'", '\u007f', '\u0080', '\u009f', '\u00a0', 'é', 'ÿ', '\u0100', '€',
  '\u2028', '\u2029', '\ufeff', '\ufffd', '\uffff', '日本語', '한국어', 'שלום', 'مرحبا', '😀', '🐟',
  '👩\u200d👩\u200d👧', '\u{10ffff}', '\u{10000}', 'e\u0301', '\u0301', '𝄞', '\ud800', '\udfff',
  '\ud83dA', '\ude00\ud83d', '\ud83d', '\udbff\udfff', '\t', '\n', '\r', '\b', '\f', '\u0000', '\u001f',
  '\u000b', '\u001b[0m', '</script>', '\\u0041', '%', '@', '&', '.box', '.sig.ed25519'
]
function trap (n) { let s = ''; for (let i = 0; i < n; i++) s += pick(PIECES); return s }

let CONTROLS = ''
for (let c = 0; c < 0x20; c++) CONTROLS += String.fromCharCode(c)
CONTROLS += '\u007f'
for (let c = 0x80; c < 0xa0; c++) CONTROLS += String.fromCharCode(c)
CONTROLS += '\u2028\u2029'

const NUMBERS = [
  0, -0, 1, -1, 0.1, 0.2 + 0.1, 1 / 3, Math.PI, 1e21, 1e20, 1e-7, 1e-6, 0.000001, 5e-324,
  1.7976931348623157e308, 2 ** 53, 2 ** 53 + 2, 12345678901234567890, 123456789012345678901234,
  4294967295, 4294967296, -2147483648, 2147483648, 123e-20, -1e-300, 1.5e300, NaN, Infinity,
  -Infinity, 2.5, 100, 1e100, 9.999999999999999e22, 1.0000000000000002, 0.30000000000000004
]

const TYPES = [
  'abc', 'x'.repeat(52), 'a😀', '日本語', '日'.repeat(52), 'a'.repeat(50) + '😀', '\u0000\u0001\u0002',
  '\ud800ab', 'é'.repeat(52), '\u2028\u2029\u2028', '\ud83d\ud83d\ud83d', '"\\/', '   ', '😀'.repeat(26),
  '\udfff'.repeat(52), 'post', 'ab\u0301'
]

const LONG_UNITS = ['日', '😀', 'é', '\u0100', '\u2028', 'a', '\ud800']
const LONG_TARGETS = [8192, 8191, 8190, 8100, 8192, 8000, 8192]

let state = null // {id, sequence, timestamp}
const feedKeys = []

function idOf (msg) {
  return '%' + sha256(Buffer.from(JSON.stringify(msg, null, 2), 'latin1')).toString('base64') + '.sha256'
}

// The unsigned message in one of the two field orders ssb-validate allows.
function unsignedMsg (st, content, timestamp, authorFirst, over = {}) {
  const previous = 'previous' in over ? over.previous : (st ? st.id : null)
  const sequence = 'sequence' in over ? over.sequence : (st ? st.sequence + 1 : 1)
  return authorFirst
    ? { previous, author: keys.id, sequence, timestamp, hash: 'sha256', content }
    : { previous, sequence, author: keys.id, timestamp, hash: 'sha256', content }
}

// Length in UTF-16 units of the signed message: the signature is always 100 characters.
function signedLength (unsigned) {
  return JSON.stringify(Object.assign({}, unsigned, { signature: 's'.repeat(100) }), null, 2).length
}

// A message exactly `target` units long: mk(filler) builds the unsigned message, and the
// filler is copies of `unit` (whatever it costs once printed) topped up with 'x'.
function fitted (mk, target, unit) {
  const base = signedLength(mk(''))
  const cost = signedLength(mk(unit)) - base
  const need = target - base
  if (need < 0 || cost < 1) fail('cannot fit to ' + target)
  const msg = mk(unit.repeat(Math.floor(need / cost)) + 'x'.repeat(need % cost))
  const got = signedLength(msg)
  if (got !== target) fail(`fitted message is ${got} units, wanted ${target}`)
  return msg
}

function print (obj) { process.stdout.write(JSON.stringify(obj) + '\n') }

function append (content, timestamp, authorFirst) {
  const msg = ssbKeys.signObj(keys, null, unsignedMsg(state, content, timestamp, authorFirst))
  const err = validate.checkInvalid(state, null, msg)
  if (err) fail(`message ${state ? state.sequence + 1 : 1} rejected by ssb-validate: ${err.message}`)
  const key = idOf(msg)
  if (key !== validate.id(msg)) fail('id differs from ssb-validate: ' + key)
  if (JSON.stringify(msg, null, 2).length > 8192) fail('message over 8192 units accepted?')
  print({ key, value: msg, timestamp: 1750000000000 + feedKeys.length + 0.25 })
  feedKeys.push(key)
  state = { id: key, sequence: msg.sequence, timestamp }
}

function randomValue (depth) {
  switch (rnd(depth > 3 ? 4 : 7)) {
    case 0: return trap(rnd(6))
    case 1: return pick(NUMBERS)
    case 2: return pick([true, false, null, '', 0])
    case 3: return pick(['日本', '😀', '\ud800', CONTROLS.slice(rnd(30)), '-0', '1e21'])
    case 4: { const n = rnd(5); const a = []; for (let i = 0; i < n; i++) a.push(randomValue(depth + 1)); return a }
    default: {
      const o = {}; const n = rnd(6)
      for (let i = 0; i < n; i++) {
        const k = pick(['0', '1', '10', '01', '-1', '4294967294', '4294967295', '', 'a', trap(2), String(rnd(100))])
        o[k] = randomValue(depth + 1)
      }
      return o
    }
  }
}

function nested (depth, i) {
  let v = pick([[], {}, '', 0, null, '\ud800'])
  for (let d = 0; d < depth; d++) v = (d + i) % 2 ? [v, d, [], {}] : { [String(d)]: v, d, e: {}, f: [] }
  return v
}

function content (i) {
  const k = Math.floor(i / 12)
  switch (i % 12) {
    case 0: return { type: 'post', text: trap(10 + k), mentions: [{ link: friend.id, name: trap(3) }] }
    case 1: {
      const c = { type: 'surrogates', text: pick(['\ud800', '\udfff', 'x\ud800y', '\ud83d\u0041', '\ude00\ud83d', '\ud83d\ud83d\ude00']) + k }
      c['\ud800key' + k] = '\udbff'
      c['k\udfff'] = '\ud800\udc00'
      c.list = ['\udfff', '\ud800\ud800', '\udc00\udc00', trap(4)]
      return c
    }
    case 2: {
      const c = { type: 'control', text: CONTROLS, rotated: CONTROLS.slice(k) + CONTROLS.slice(0, k) }
      c[CONTROLS[k % CONTROLS.length]] = CONTROLS[(k + 1) % CONTROLS.length]
      c['\u0000\u001f\u007f'] = k
      return c
    }
    case 3: {
      const c = { type: 'integer-keys', b: 1, 10: 'ten', 2: 'two', '01': 'zero one', '-1': 'minus one', 4294967294: 'max index', 4294967295: 'not an index', 4294967296: 'big', 1.5: 'float', 0: 'zero', '': 'empty', '00': 'double zero', a: { 3: 'x', 1: 'y', z: { 100: [], 7: {} } } }
      c[String(k * 7)] = k
      c[String(4294967290 + (k % 8))] = 'near max ' + k
      return Object.assign(c, JSON.parse('{"__proto__": {"polluted": true}, "constructor": "c", "toString": 1}'))
    }
    case 4: {
      const values = []
      for (let j = 0; j < 8; j++) values.push(NUMBERS[(k * 8 + j) % NUMBERS.length])
      return { type: 'numbers', values, n: NUMBERS[k % NUMBERS.length], neg: -NUMBERS[(k + 3) % NUMBERS.length], o: { 1e21: 1e21, 5e-324: 5e-324, 0.1: 0.1 } }
    }
    case 5: return { type: 'nested', value: nested(4 + k, i), empty: [[], {}, [[]], [{}], { a: [] }] }
    case 6: {
      const c = { type: 'empty', text: '', '': '', list: ['', [''], { '': '' }], o: { '': { '': '' } } }
      c[''.padEnd(k % 3, ' ')] = ''
      return c
    }
    case 7: return { type: TYPES[k % TYPES.length], text: trap(3) }
    case 8: {
      const inner = { type: 'post', text: trap(8), recps: [keys.id, friend.id] }
      const boxed = ssbKeys.box(inner, [keys.id, friend.id])
      const opened = ssbKeys.unbox(boxed, keys)
      if (JSON.stringify(opened) !== JSON.stringify(inner)) fail('box does not open')
      return boxed + ['', '', '', '2', '.extra \ud800 😀', '\t'][k % 6]
    }
    case 9: {
      const unit = LONG_UNITS[k % LONG_UNITS.length]
      const target = LONG_TARGETS[k % LONG_TARGETS.length]
      return fitted(text => unsignedMsg(state, { type: 'post', text, unit }, timestampOf(i), i % 2 === 1), target, unit)
    }
    case 10: return { type: 'post', text: 'reply ' + trap(5), root: feedKeys[0] || null, branch: feedKeys[feedKeys.length - 1] || null, channel: trap(2), weight: 0.5 + k }
    default: return Object.assign({ type: 'random' }, { value: randomValue(0), more: randomValue(1) })
  }
}

const SPECIAL_TS = [1.5, 0.1, 5e-324, 1e21, 1.7976931348623157e308, -0, -1.25, 1e-7, 123456789.123456789, 2 ** 53 + 2]
function timestampOf (i) {
  if (i > 0 && i % 23 === 0) return SPECIAL_TS[(i / 23) % SPECIAL_TS.length]
  return 1700000000000 + i * 1013 + [0.5, 0.25, 0.1, 1 / 3, 0.001, 0.9999][i % 6]
}


// --quirk-feed: a short chained feed of another author whose messages ssb-validate accepts although
// they are odd: previous wrapped in arrays (ssb-validate compares it with `!=`) and timestamps that
// are not numbers (it checks the first message's only). ssb-server's `add` refuses them, but its
// createWriteStream (the legacy replication path) stores and serves them.
function quirkFeed () {
  const author = ssbKeys.generate('ed25519', sha256('shoal quirk feed author'))
  let st = null
  const steps = [
    { content: { type: 'post', text: 'first' }, timestamp: 1700000000000.5 },
    { content: { type: 'post', text: 'previous in an array' }, timestamp: 1700000001000.5, wrap: 1 },
    { content: { type: 'post', text: 'a string timestamp' }, timestamp: 'noon' },
    { content: { type: 'post', text: 'previous in two arrays' }, timestamp: 1700000003000.5, wrap: 2 },
    { content: { type: 'post', text: 'a null timestamp' }, timestamp: null },
    { content: { type: 'post', text: 'plain again 😀' }, timestamp: 1700000005000.25 }
  ]
  for (const step of steps) {
    let previous = st ? st.id : null
    for (let w = 0; w < (step.wrap || 0); w++) previous = [previous]
    const msg = ssbKeys.signObj(author, null, {
      previous, sequence: st ? st.sequence + 1 : 1, author: author.id, timestamp: step.timestamp, hash: 'sha256', content: step.content
    })
    const err = validate.checkInvalid(st, null, msg)
    if (err) fail('quirk feed rejected by ssb-validate: ' + err.message)
    const key = idOf(msg)
    print({ key, value: msg, timestamp: 1750000000000.5 })
    st = { id: key, sequence: msg.sequence, timestamp: msg.timestamp }
  }
}

function main () {
  const N = 300
  for (let i = 0; i < N; i++) {
    let c = content(i)
    if (i % 12 === 9) c = c.content // fitted() returns the whole unsigned message
    append(c, timestampOf(i), i % 2 === 1)
  }

  // Variants of message N+1. Each is checked here: ssb-validate must agree with `valid`.
  const last = state
  const beforeLast = { id: feedKeys[N - 2], sequence: N - 1 }
  function variant (name, valid, st, msg) {
    let err
    try { err = validate.checkInvalid(st, null, msg) } catch (e) { err = e }
    if (!!err === valid) fail(`variant ${name}: ssb-validate says ${err ? 'invalid (' + err.message + ')' : 'valid'}, expected ${valid ? 'valid' : 'invalid'}`)
    print({ case: name, valid, state: st && { id: st.id, sequence: st.sequence }, key: idOf(msg), value: msg })
  }
  const ts = 1800000000000.5
  const sign = (content, over = {}, authorFirst = false, t = ts) => ssbKeys.signObj(keys, null, unsignedMsg(last, content, t, authorFirst, over))

  {
    const m = sign({ type: 'post', text: 'original 😀' })
    variant('tampered text', false, last, Object.assign({}, m, { content: { type: 'post', text: 'tampered 😀' } }))
    const s = sign({ type: 'post', text: '\ud800' })
    variant('tampered lone surrogate', false, last, Object.assign({}, s, { content: { type: 'post', text: '\udbff' } }))
    const ctl = sign({ type: 'post', text: '\u0001' })
    variant('tampered control char', false, last, Object.assign({}, ctl, { content: { type: 'post', text: '\u0002' } }))
  }
  variant('wrong previous', false, last, sign({ type: 'post', text: 'hi' }, { previous: beforeLast.id }))
  variant('sequence skipped', false, last, sign({ type: 'post', text: 'hi' }, { sequence: N + 2 }))
  variant('type of 2 chars', false, last, sign({ type: 'ab', text: 'x' }))
  variant('type of 2 units, one emoji', false, last, sign({ type: '😀', text: 'x' }))
  variant('type of 53 units, 52 code points', false, last, sign({ type: 'a'.repeat(51) + '😀' }))
  variant('type of 53 chars', false, last, sign({ type: 'x'.repeat(53) }))
  variant('type not a string', false, last, sign({ type: 123 }))
  for (const unit of ['a', '日', '😀', '\ud800']) {
    const c = fitted(text => unsignedMsg(last, { type: 'post', text }, ts, false), 8193, unit).content
    variant(`8193 units of ${JSON.stringify(unit)}`, false, last, sign(c))
  }
  {
    const m = sign({ type: 'post', text: 'signature with stray bits' })
    const b64 = m.signature.slice(0, 88)
    const stray = b64.slice(0, 85) + String.fromCharCode(b64.charCodeAt(85) + 1) + '=='
    if (Buffer.from(stray, 'base64').toString('base64') !== b64) fail('stray-bit signature decodes differently')
    variant('non-canonical signature base64', false, last, Object.assign({}, m, { signature: stray + '.sig.ed25519' }))
    variant('signature without padding', false, last, Object.assign({}, m, { signature: b64.slice(0, 86) + '.sig.ed25519' }))
  }
  {
    const boxed = ssbKeys.box({ type: 'post', text: 'boxed' }, [keys.id])
    variant('box with a newline after .box', false, last, sign(boxed + '\n'))
    variant('box with U+2028 after .box', false, last, sign(boxed + 'x\u2028'))
    variant('box with non-canonical base64', false, last, sign('QUJ=.box'))
    variant('box without the dot', false, last, sign(boxed.slice(0, -4) + 'box'))
    variant('box as the bare suffix', true, last, sign('.box'))
    variant('box with a future suffix', true, last, sign(boxed + '2.anything \ud800'))
  }
  variant('author before sequence', true, last, sign({ type: 'post', text: 'order' }, {}, true))
  variant('exactly 8192 units of U+D800', true, last, sign(fitted(text => unsignedMsg(last, { type: 'post', text }, ts, false), 8192, '\ud800').content))
  // ssb-validate compares previous with `!=`, so an array holding the id passes, and it checks
  // the timestamp of the first message only.
  variant('previous wrapped in an array', true, last, sign({ type: 'post', text: 'p' }, { previous: [last.id] }))
  variant('previous wrapped in two arrays', true, last, sign({ type: 'post', text: 'p' }, { previous: [[last.id]] }))
  variant('timestamp is a string', true, last, sign({ type: 'post', text: 't' }, {}, false, '2024-01-01'))
  variant('timestamp is null', true, last, sign({ type: 'post', text: 't' }, {}, false, null))
  variant('timestamp is an object', true, last, sign({ type: 'post', text: 't' }, {}, false, { ms: 1 }))
}

if (process.argv.includes('--quirk-feed')) quirkFeed()
else main()
