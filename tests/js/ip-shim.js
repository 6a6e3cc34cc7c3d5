// Preloaded (NODE_OPTIONS=--require=…) into an ssb-server whose LAN
// discovery (ssb-local) is on. ssb-gossip's scheduler asks the `ip` module
// (1.1.9, locked by ssb-server 16) whether each peer's host is private; for
// a peer table entry without a host, `ip.isPrivate(undefined)` throws and
// the server dies within seconds of hearing a LAN announcement. Here such
// a host is simply not private, nor loopback.
const path = require('path')
const kit = process.env.SHOAL_REFPEER
const gossip = path.dirname(require.resolve('ssb-gossip', { paths: [kit] }))
const ip = require(require.resolve('ip', { paths: [gossip] }))
for (const name of ['isPrivate', 'isLoopback']) {
  const original = ip[name]
  ip[name] = (addr) => typeof addr === 'string' && original.call(ip, addr)
}
