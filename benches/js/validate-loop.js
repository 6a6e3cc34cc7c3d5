// validate-loop.js DUMP: the validation-only rate of the JavaScript
// ssb-validate (the checks ssb-server's ssb-db runs on every message it takes
// in), for `cargo bench --bench import`.
//
// Reads the dump of {key, value, timestamp} lines and parses them (not
// timed), then runs `state = validate.append(state, null, value)` over every
// message in dump order, as ssb-db's `add` does, emptying `state.queue` after
// each (where ssb-db hands it to its writer). Timed: that loop only, i.e.
// per message the order, shape and chain checks, the value encoded with
// JSON.stringify(value, null, 2) for its id (SHA-256) and again without its
// signature for ed25519 verification (ssb-keys, sodium-native). Three rounds
// from an empty state, in one process; prints the fastest as JSON
// {"count", "ms", "version"} (the version of ssb-validate that ran).
//
// ssb-validate is resolved from the refpeer oracle's node_modules:
// ORACLE_DIR, else ../../../shared/refpeer/oracle from this file.
'use strict'
const fs = require('fs')
const path = require('path')

const dump = process.argv[2]
if (!dump) {
  console.error('usage: node validate-loop.js DUMP.jsonl')
  process.exit(2)
}
const oracle = process.env.ORACLE_DIR || path.join(__dirname, '../../../shared/refpeer/oracle')
const validate = require(require.resolve('ssb-validate', { paths: [oracle] }))
const { version } = require(require.resolve('ssb-validate/package.json', { paths: [oracle] }))

const values = fs
  .readFileSync(dump, 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((line) => JSON.parse(line).value)

// A changed signature must be refused, or the loop measures nothing.
const first = values.find((v) => v.sequence === 1)
const sig = first.signature
const bad = Object.assign({}, first, {
  signature: sig.slice(0, 20) + (sig[20] === 'A' ? 'B' : 'A') + sig.slice(21)
})
let refused = false
try {
  validate.append(validate.initial(), null, bad)
} catch (err) {
  refused = /invalid signature/.test(err.message)
}
if (!refused) throw new Error('ssb-validate accepted a changed signature')

let best = Infinity
for (let round = 0; round < 3; round++) {
  let state = validate.initial()
  const t = process.hrtime.bigint()
  for (const value of values) {
    state = validate.append(state, null, value)
    state.queue = []
  }
  const ms = Number(process.hrtime.bigint() - t) / 1e6
  if (state.validated !== values.length) {
    throw new Error(`validated ${state.validated} of ${values.length}`)
  }
  best = Math.min(best, ms)
}
console.log(JSON.stringify({ count: values.length, ms: best, version }))
