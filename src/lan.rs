//! LAN discovery as the JavaScript `ssb-local` plugin does it: about once
//! a second the node broadcasts its multiserver address
//! (`net:IP:PORT~shs:KEY`, plain UTF-8) over UDP to the port its TCP
//! listener uses, and it listens on that port for its neighbours' own.
//!
//! Owns what a LAN packet may make the node do, and the UDP shell that
//! sends and hears them. A packet is taken only when it is a multiserver
//! address whose host is the IPv4 or IPv6 literal of a LAN address
//! ([`crate::net::scope::is_lan`]) and is the very address the packet came
//! from: a packet cannot send the node to any other host, nor make it look
//! a name up. What is heard is kept in memory only ([`Heard`]: at most
//! [`MAX_HEARD`] peers, each forgotten [`FORGET_AFTER`] after it was last
//! heard), never written to the peer table; whom to dial among them is
//! [`crate::dialer`]'s choice. Packets are sent only to the broadcast
//! address of each LAN interface whose address the listener serves, never
//! to a public address. Packets that are refused are counted and said in
//! one log line a minute at most. Imports `crypto` and `net`.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::crypto::FeedId;
use crate::net::{MultiAddr, scope};

/// How often the node says where it is.
pub const ANNOUNCE_EVERY: Duration = Duration::from_secs(1);
/// A peer not heard for this long is forgotten (as `ssb-local` does).
pub const FORGET_AFTER: Duration = Duration::from_secs(10);
/// Most peers heard at once; packets naming more are refused until some
/// are forgotten.
pub const MAX_HEARD: usize = 32;
/// The longest packet read; longer ones are refused.
pub const MAX_PACKET: usize = 1024;
/// The shortest time between two log lines about refused packets.
pub const LOG_REFUSED_EVERY: Duration = Duration::from_secs(60);

/// Why a LAN packet was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Longer than [`MAX_PACKET`].
    TooLong(usize),
    /// Not UTF-8.
    NotText,
    /// Not a multiserver `net:…~shs:…` address.
    NotAnAddress(crate::net::AddrError),
    /// The host is a name, not an IP address.
    NotAnIp(String),
    /// The host is not a LAN address.
    NotLan(IpAddr),
    /// The host is not the address the packet came from.
    NotTheSender {
        /// The host in the packet.
        announced: IpAddr,
        /// Where the packet came from.
        sender: IpAddr,
    },
    /// [`MAX_HEARD`] peers are heard already.
    Full,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::TooLong(n) => write!(f, "{n} bytes, more than {MAX_PACKET}"),
            Refused::NotText => write!(f, "not UTF-8"),
            Refused::NotAnAddress(e) => write!(f, "not a multiserver address: {e}"),
            Refused::NotAnIp(h) => write!(f, "the host {h:?} is not an IP address"),
            Refused::NotLan(ip) => write!(f, "{ip} is not a LAN address"),
            Refused::NotTheSender { announced, sender } => {
                write!(f, "announces {announced} but came from {sender}")
            }
            Refused::Full => write!(f, "{MAX_HEARD} LAN peers are heard already"),
        }
    }
}

/// The address a LAN packet announces, if it may be taken: see the module
/// documentation. `None` for our own packets.
pub fn parse(packet: &[u8], sender: IpAddr, me: &FeedId) -> Result<Option<MultiAddr>, Refused> {
    if packet.len() > MAX_PACKET {
        return Err(Refused::TooLong(packet.len()));
    }
    let text = std::str::from_utf8(packet).map_err(|_| Refused::NotText)?;
    let addr: MultiAddr = text.trim().parse().map_err(Refused::NotAnAddress)?;
    if addr.key == *me {
        return Ok(None);
    }
    let announced: IpAddr = addr
        .host
        .parse()
        .map_err(|_| Refused::NotAnIp(addr.host.chars().take(64).collect()))?;
    if !scope::is_lan(announced) {
        return Err(Refused::NotLan(announced));
    }
    if canonical(announced) != canonical(sender) {
        return Err(Refused::NotTheSender { announced, sender });
    }
    Ok(Some(addr))
}

/// An IPv4-mapped IPv6 address as the IPv4 one it carries.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// What we broadcast on an interface whose address is `ip`.
pub fn announcement(ip: Ipv4Addr, port: u16, me: &FeedId) -> String {
    MultiAddr {
        host: ip.to_string(),
        port,
        key: *me,
    }
    .to_string()
}

/// An IPv4 interface: its address and netmask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interface {
    /// The interface's address.
    pub ip: Ipv4Addr,
    /// Its netmask.
    pub netmask: Ipv4Addr,
}

/// Where to announce ourselves: for each interface with a LAN address
/// that `listen` serves (the unspecified address serves all), the address
/// to announce and the subnet's broadcast address to send it to.
/// Loopback, public and point-to-point (/31, /32) interfaces get nothing.
pub fn targets(interfaces: &[Interface], listen: IpAddr) -> Vec<(Ipv4Addr, Ipv4Addr)> {
    let mut out: Vec<(Ipv4Addr, Ipv4Addr)> = interfaces
        .iter()
        .filter(|i| scope::is_lan(IpAddr::V4(i.ip)))
        .filter(|i| listen.is_unspecified() || canonical(listen) == IpAddr::V4(i.ip))
        .filter(|i| u32::from(i.netmask).leading_ones() <= 30)
        .map(|i| {
            let broadcast = Ipv4Addr::from(u32::from(i.ip) | !u32::from(i.netmask));
            (i.ip, broadcast)
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The peers heard on the LAN lately, in memory, bounded.
#[derive(Debug, Default)]
pub struct Heard {
    peers: HashMap<FeedId, (MultiAddr, Instant)>,
    refused: u64,
    last_refusal: Option<Refused>,
    last_log: Option<Instant>,
}

impl Heard {
    /// Takes one packet from `sender` at `now`: `true` when it names a
    /// peer not heard before (or at a new address).
    pub fn hear(&mut self, packet: &[u8], sender: IpAddr, me: &FeedId, now: Instant) -> bool {
        let addr = match parse(packet, sender, me) {
            Ok(Some(addr)) => addr,
            Ok(None) => return false,
            Err(why) => {
                self.refuse(why);
                return false;
            }
        };
        self.forget_old(now);
        let full = self.peers.len() >= MAX_HEARD;
        match self.peers.get_mut(&addr.key) {
            Some((known, at)) => {
                *at = now;
                if *known == addr {
                    return false;
                }
                *known = addr;
                true
            }
            None if full => {
                self.refuse(Refused::Full);
                false
            }
            None => {
                self.peers.insert(addr.key, (addr, now));
                true
            }
        }
    }

    fn refuse(&mut self, why: Refused) {
        self.refused = self.refused.saturating_add(1);
        self.last_refusal = Some(why);
    }

    fn forget_old(&mut self, now: Instant) {
        self.peers
            .retain(|_, (_, at)| now.saturating_duration_since(*at) < FORGET_AFTER);
    }

    /// The peers heard within [`FORGET_AFTER`] of `now`, by key.
    pub fn current(&mut self, now: Instant) -> Vec<MultiAddr> {
        self.forget_old(now);
        let mut out: Vec<MultiAddr> = self.peers.values().map(|(a, _)| a.clone()).collect();
        out.sort_by_key(|a| a.key);
        out
    }

    /// The packets refused since the last time this answered, and the
    /// last reason, at most once every [`LOG_REFUSED_EVERY`].
    pub fn refusals_to_log(&mut self, now: Instant) -> Option<(u64, Refused)> {
        if self.refused == 0
            || self
                .last_log
                .is_some_and(|t| now.saturating_duration_since(t) < LOG_REFUSED_EVERY)
        {
            return None;
        }
        self.last_log = Some(now);
        let n = std::mem::take(&mut self.refused);
        self.last_refusal.take().map(|why| (n, why))
    }
}

/// The address to give peers for a listener on every address: the first
/// public interface address, else the first LAN one; none when the
/// machine has only loopback.
pub fn host_for_peers(interfaces: &[Interface]) -> Option<Ipv4Addr> {
    let public = interfaces
        .iter()
        .find(|i| scope::is_public(IpAddr::V4(i.ip)));
    let lan = interfaces.iter().find(|i| scope::is_lan(IpAddr::V4(i.ip)));
    public.or(lan).map(|i| i.ip)
}

/// The address to give peers for a listener at `ip`: `ip` itself, or for
/// a listener on every address [`host_for_peers`] of this machine's
/// interfaces (loopback when it has no other).
pub fn reachable_at(ip: IpAddr) -> IpAddr {
    if !ip.is_unspecified() {
        return ip;
    }
    host_for_peers(&interfaces()).map_or(IpAddr::from([127, 0, 0, 1]), IpAddr::V4)
}

/// The node's IPv4 interfaces, as the OS lists them.
fn interfaces() -> Vec<Interface> {
    if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| match i.addr {
            if_addrs::IfAddr::V4(v4) if !i.is_loopback() => Some(Interface {
                ip: v4.ip,
                netmask: v4.netmask,
            }),
            _ => None,
        })
        .collect()
}

/// Binds the LAN socket: UDP on every address at `port`, shared with
/// other programs doing the same (as `ssb-local` binds it), allowed to
/// broadcast.
pub fn bind(port: u16) -> std::io::Result<tokio::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_address(true)?;
    socket.set_broadcast(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)).into())?;
    tokio::net::UdpSocket::from_std(socket.into())
}

/// Runs LAN discovery on `socket` (from [`bind`]) for a node listening at
/// `listen` as `me`, until `shutdown` turns true: announces us every
/// [`ANNOUNCE_EVERY`], puts what it hears in `heard`, and calls `on_new`
/// when a new peer is heard.
pub async fn run(
    socket: tokio::net::UdpSocket,
    listen: SocketAddr,
    me: FeedId,
    heard: Arc<Mutex<Heard>>,
    on_new: impl Fn(),
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(ANNOUNCE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut buf = vec![0u8; MAX_PACKET + 1];
    let mut send_failed = false;
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tick.tick() => {
                let targets = targets(&interfaces(), listen.ip());
                for (ip, broadcast) in targets {
                    let body = announcement(ip, listen.port(), &me);
                    let sent = socket
                        .send_to(body.as_bytes(), (broadcast, listen.port()))
                        .await;
                    if let Err(e) = sent {
                        // Said once, not every second.
                        if !send_failed {
                            tracing::info!("cannot announce us on the LAN at {broadcast}: {e}");
                        }
                        send_failed = true;
                    }
                }
                let now = Instant::now();
                let log = heard
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .refusals_to_log(now);
                if let Some((n, why)) = log {
                    tracing::info!("ignored {n} LAN packets (the last: {why})");
                }
            }
            got = socket.recv_from(&mut buf) => {
                let Ok((n, from)) = got else { continue };
                let new = heard
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .hear(&buf[..n], from.ip(), &me, Instant::now());
                if new {
                    on_new();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;

    fn id(n: u8) -> FeedId {
        Keypair::from_seed(&[n; 32]).id()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn takes_what_ssb_local_sends_from_its_own_address() {
        let (me, peer) = (id(1), id(2));
        let packet = announcement("192.168.1.20".parse().unwrap(), 8008, &peer);
        assert_eq!(
            packet,
            format!("net:192.168.1.20:8008~shs:{}", peer.b64()),
            "the body ssb-local writes"
        );
        let got = parse(packet.as_bytes(), ip("192.168.1.20"), &me).unwrap();
        assert_eq!(got.unwrap().key, peer);
        // Our own, looped back to us: nothing, and no complaint.
        let ours = announcement("192.168.1.5".parse().unwrap(), 8008, &me);
        assert_eq!(parse(ours.as_bytes(), ip("192.168.1.5"), &me), Ok(None));
        // Several transports, `;`-separated: the `net:` one.
        let multi = format!("ws://192.168.1.20:8989~shs:{k};{packet}", k = peer.b64());
        assert!(
            parse(multi.as_bytes(), ip("192.168.1.20"), &me)
                .unwrap()
                .is_some()
        );
        // From an IPv4-mapped sender.
        assert!(
            parse(packet.as_bytes(), ip("::ffff:192.168.1.20"), &me)
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn a_packet_cannot_send_us_anywhere_else() {
        let (me, peer) = (id(1), id(2));
        let key = peer.b64();
        let from = ip("10.0.0.7");
        type Expect = fn(&Refused) -> bool;
        let cases: Vec<(String, Expect)> = vec![
            (format!("net:10.0.0.8:8008~shs:{key}"), |r| {
                matches!(r, Refused::NotTheSender { .. })
            }),
            (format!("net:8.8.8.8:8008~shs:{key}"), |r| {
                matches!(r, Refused::NotLan(_))
            }),
            (format!("net:127.0.0.1:8008~shs:{key}"), |r| {
                matches!(r, Refused::NotLan(_))
            }),
            (format!("net:pub.example.org:8008~shs:{key}"), |r| {
                matches!(r, Refused::NotAnIp(_))
            }),
            (format!("net:10.0.0.7:0~shs:{key}"), |r| {
                matches!(r, Refused::NotAnAddress(_))
            }),
            (format!("net:10.0.0.7:8008~shs:{}", &key[..20]), |r| {
                matches!(r, Refused::NotAnAddress(_))
            }),
            ("hello".into(), |r| matches!(r, Refused::NotAnAddress(_))),
            ("x".repeat(MAX_PACKET + 1), |r| {
                matches!(r, Refused::TooLong(_))
            }),
        ];
        for (packet, expected) in cases {
            let got = parse(packet.as_bytes(), from, &me);
            assert!(got.as_ref().is_err_and(expected), "{packet:.60}: {got:?}");
        }
        assert_eq!(parse(&[0xff, 0xfe], from, &me), Err(Refused::NotText));
    }

    #[test]
    fn heard_peers_are_bounded_forgotten_and_refusals_logged_once_a_minute() {
        let me = id(1);
        let t0 = Instant::now();
        let mut heard = Heard::default();
        let packet = |n: u8| announcement(Ipv4Addr::new(10, 0, 1, n), 8008, &id(n));
        let from = |n: u8| IpAddr::V4(Ipv4Addr::new(10, 0, 1, n));
        assert!(heard.hear(packet(2).as_bytes(), from(2), &me, t0));
        assert!(
            !heard.hear(packet(2).as_bytes(), from(2), &me, t0),
            "heard before"
        );
        // A flood of a thousand fake peers: at most MAX_HEARD are kept.
        for i in 0..1000u32 {
            let n = (i % 250) as u8 + 3;
            let fake = announcement(Ipv4Addr::new(10, 0, 1, n), 8000 + i as u16, &id(n));
            heard.hear(fake.as_bytes(), from(n), &me, t0);
        }
        assert_eq!(heard.current(t0).len(), MAX_HEARD);
        let (n, why) = heard.refusals_to_log(t0).expect("refusals said");
        assert!(n >= 1000 - 4 * MAX_HEARD as u64, "{n}");
        assert_eq!(why, Refused::Full);
        heard.hear(b"junk", from(9), &me, t0);
        assert_eq!(heard.refusals_to_log(t0 + Duration::from_secs(59)), None);
        assert_eq!(
            heard
                .refusals_to_log(t0 + LOG_REFUSED_EVERY)
                .map(|(n, _)| n),
            Some(1)
        );
        // Not heard for FORGET_AFTER: forgotten, and room for new ones.
        let later = t0 + FORGET_AFTER;
        assert!(heard.current(later).is_empty());
        assert!(heard.hear(packet(2).as_bytes(), from(2), &me, later));
        assert_eq!(heard.current(later).len(), 1);
    }

    #[test]
    fn we_announce_only_on_lan_interfaces_the_listener_serves() {
        let iface = |ip: &str, mask: &str| Interface {
            ip: ip.parse().unwrap(),
            netmask: mask.parse().unwrap(),
        };
        let all = [
            iface("192.168.1.5", "255.255.255.0"),
            iface("10.9.0.1", "255.255.0.0"),
            iface("193.0.14.129", "255.255.255.0"),
            iface("10.200.0.1", "255.255.255.255"),
        ];
        let v4 = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(
            targets(&all, ip("0.0.0.0")),
            [
                (v4("10.9.0.1"), v4("10.9.255.255")),
                (v4("192.168.1.5"), v4("192.168.1.255"))
            ]
        );
        assert_eq!(
            targets(&all, ip("192.168.1.5")),
            [(v4("192.168.1.5"), v4("192.168.1.255"))]
        );
        assert!(targets(&all, ip("127.0.0.1")).is_empty());
        assert!(targets(&all, ip("193.0.14.129")).is_empty());
        // What `shoal address` says for a listener on every address.
        assert_eq!(host_for_peers(&all), Some(v4("193.0.14.129")));
        assert_eq!(host_for_peers(&all[..2]), Some(v4("192.168.1.5")));
        assert_eq!(host_for_peers(&[]), None);
    }
}
