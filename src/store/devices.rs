//! Linked devices: which feeds are one person. Reads the [`SAME_AS`]
//! table (written by the index as contact messages with `sameAs` arrive).
//!
//! A feed's claim that another feed is a device of its person counts only
//! when the other feed claims it back, so a stranger cannot make itself
//! anyone's device. A person is the connected component of such mutual
//! links (A-B and B-C make A, B and C one person), walked breadth-first in
//! id order and capped at [`MAX_DEVICES`]. Imports `crypto` only.

use std::collections::{BTreeSet, VecDeque};

use super::{Reader, Result, Store};
use crate::crypto::FeedId;

/// Most feeds one person is made of.
pub const MAX_DEVICES: usize = 16;

/// A feed's person: its devices, and the links only one side made.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Devices {
    /// The person's feeds, the one asked about first, then in the order
    /// found (at most [`MAX_DEVICES`]).
    pub person: Vec<FeedId>,
    /// `(claimant, claimed)`: links a feed of the person made that the
    /// other side has not (not honoured).
    pub one_sided: Vec<(FeedId, FeedId)>,
}

impl Store {
    /// The person `feed` is, as mutual device links make it.
    pub fn devices(&self, feed: &FeedId) -> Result<Devices> {
        self.reader()?.devices(feed)
    }
}

impl Reader {
    /// Feeds `x` says are its devices (its latest `sameAs` of each).
    fn device_claims(&self, x: &FeedId) -> Result<BTreeSet<FeedId>> {
        let mut lo = [0u8; 64];
        lo[..32].copy_from_slice(&x.0);
        let mut hi = [0xffu8; 64];
        hi[..32].copy_from_slice(&x.0);
        let mut out = BTreeSet::new();
        for e in self.same_as.range::<&[u8; 64]>(&lo..=&hi)? {
            let (k, v) = e?;
            if v.value()[0] == 1 {
                out.insert(FeedId(k.value()[32..].try_into().expect("32 bytes")));
            }
        }
        Ok(out)
    }

    /// The person `feed` is, as mutual device links make it.
    pub fn devices(&self, feed: &FeedId) -> Result<Devices> {
        let mut person = vec![*feed];
        let mut one_sided = Vec::new();
        let mut queue = VecDeque::from([*feed]);
        while let Some(x) = queue.pop_front() {
            for t in self.device_claims(&x)? {
                if person.contains(&t) {
                    continue;
                }
                if !self.device_claims(&t)?.contains(&x) {
                    one_sided.push((x, t));
                } else if person.len() < MAX_DEVICES {
                    person.push(t);
                    queue.push_back(t);
                }
            }
        }
        Ok(Devices { person, one_sided })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;

    fn keys(n: u8) -> Keypair {
        Keypair::from_seed(&[n; 32])
    }

    fn link(store: &Store, from: &Keypair, to: &Keypair, linked: bool) {
        let content = format!(
            r#"{{"type":"contact","contact":"{}","following":true,"sameAs":{linked}}}"#,
            to.id()
        );
        let content = crate::feed::json::parse(content.as_bytes()).unwrap();
        store.append_local(from, content, None).unwrap();
    }

    fn person(store: &Store, k: &Keypair) -> Vec<FeedId> {
        let mut p = store.devices(&k.id()).unwrap().person;
        p.sort();
        p
    }

    fn ids(ks: &[&Keypair]) -> Vec<FeedId> {
        let mut v: Vec<FeedId> = ks.iter().map(|k| k.id()).collect();
        v.sort();
        v
    }

    #[test]
    fn a_person_is_the_component_of_mutual_links_and_a_claim_alone_is_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_as(&dir.path().join("s.redb"), &keys(1)).unwrap();
        let (a, b, c, d) = (keys(2), keys(3), keys(4), keys(5));
        // A claims B: one side.
        link(&store, &a, &b, true);
        let got = store.devices(&a.id()).unwrap();
        assert_eq!(got.person, vec![a.id()]);
        assert_eq!(got.one_sided, vec![(a.id(), b.id())]);
        // B claims A back: one person. A chain B-C too.
        link(&store, &b, &a, true);
        link(&store, &b, &c, true);
        link(&store, &c, &b, true);
        assert_eq!(person(&store, &a), ids(&[&a, &b, &c]));
        assert_eq!(person(&store, &c), ids(&[&a, &b, &c]));
        // A loop (C-A) changes nothing; D claiming C is not honoured.
        link(&store, &c, &a, true);
        link(&store, &a, &c, true);
        link(&store, &d, &c, true);
        assert_eq!(person(&store, &b), ids(&[&a, &b, &c]));
        assert_eq!(person(&store, &d), vec![d.id()]);
        // B unlinks C: C is still A's (A-C both ways), B still A's.
        link(&store, &b, &c, false);
        assert_eq!(person(&store, &a), ids(&[&a, &b, &c]));
        link(&store, &a, &c, false);
        assert_eq!(person(&store, &a), ids(&[&a, &b]));
        assert_eq!(person(&store, &c), vec![c.id()]);
    }

    #[test]
    fn a_person_has_at_most_sixteen_devices() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_as(&dir.path().join("s.redb"), &keys(1)).unwrap();
        let all: Vec<Keypair> = (10..40).map(keys).collect();
        for w in all.windows(2) {
            link(&store, &w[0], &w[1], true);
            link(&store, &w[1], &w[0], true);
        }
        let got = store.devices(&all[0].id()).unwrap();
        assert_eq!(got.person.len(), MAX_DEVICES);
        assert_eq!(got.person[0], all[0].id());
    }
}
