// Floods a LAN port with UDP packets as a hostile neighbour would: COUNT
// well-formed announcements of distinct made-up peers at this host's own
// address (so that each passes the sender check), then junk.
// usage: node lan-flood.js OWN_IP TARGET_IP PORT COUNT
const dgram = require('dgram')
const crypto = require('crypto')
const [ownIp, target, port, count] = process.argv.slice(2)
const socket = dgram.createSocket('udp4')
const packets = []
for (let i = 0; i < +count; i++) {
  const key = crypto.randomBytes(32).toString('base64')
  packets.push(`net:${ownIp}:${20000 + i}~shs:${key}`)
}
for (let i = 0; i < 100; i++) packets.push(crypto.randomBytes(1 + (i * 37) % 1400))
let sent = 0
function next () {
  if (sent === packets.length) return socket.close()
  const p = Buffer.from(packets[sent++])
  socket.send(p, 0, p.length, +port, target, next)
}
next()
