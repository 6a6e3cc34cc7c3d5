//! Linked devices on real nodes: a laptop and a phone, each with its own
//! feed, link each other (`shoal device link`, on both) and a friend sees
//! one person: one name, one profile listing the devices, a DM to the
//! laptop readable on the phone. A feed that claims to be someone's
//! device without their link back is not honoured and is shown as claimed
//! by one side; an unlink ends it.

use crate::common::test_key;
use crate::nodes::ServeNode;

/// `shoal device list FEED` as `(id, name)` lines and one-sided claims.
fn devices(node: &ServeNode, feed: &str) -> (Vec<String>, Vec<String>) {
    let text = node.ok(["device", "list", feed]).text();
    let (claims, devices): (Vec<String>, Vec<String>) = text
        .lines()
        .map(str::to_string)
        .partition(|l| l.starts_with("claimed by one side"));
    (devices, claims)
}

#[test]
fn two_devices_that_link_each_other_are_one_person_to_a_friend() {
    let dir = tempfile::tempdir().unwrap();
    let mut laptop = ServeNode::init(dir.path(), "laptop", &test_key(0x20));
    let mut phone = ServeNode::init(dir.path(), "phone", &test_key(0x21));
    let mut friend = ServeNode::init(dir.path(), "friend", &test_key(0x22));
    let stranger = ServeNode::init(dir.path(), "stranger", &test_key(0x23));
    let (l, p, f, s) = (
        laptop.id.to_string(),
        phone.id.to_string(),
        friend.id.to_string(),
        stranger.id.to_string(),
    );
    laptop.ok(["name", "Ada"]);
    // One side only so far: not a link.
    laptop.ok(["device", "link", &p]);
    let (ds, claims) = devices(&laptop, &l);
    assert_eq!(ds.len(), 1, "{ds:?}");
    assert_eq!(
        claims,
        vec![format!("claimed by one side: {l} says {p} is its device")]
    );
    phone.ok(["device", "link", &l]);
    phone.follow(&f);
    friend.follow(&l);
    friend.follow(&s);
    // A stranger says it is the laptop's device.
    stranger.ok(["device", "link", &l]);
    laptop.start();
    phone.start();
    friend.start();
    friend.ok(["connect", laptop.address().as_str()]);
    phone.ok(["connect", laptop.address().as_str()]);
    phone.ok(["connect", friend.address().as_str()]);
    // The friend follows the laptop, which follows the phone: both come.
    friend.wait_count(&l, 2, 30);
    friend.wait_count(&p, 2, 30);
    let (ds, _) = devices(&friend, &l);
    assert_eq!(ds, vec![format!("{l} Ada"), format!("{p} Ada")]);
    // The phone never named itself: it is shown by its person's name.
    let profile = friend.ok(["--json", "profile", &p]).text();
    let profile: serde_json::Value = serde_json::from_str(&profile).unwrap();
    assert_eq!(profile["name"], "Ada", "{profile}");
    assert_eq!(profile["devices"][0]["id"], l, "{profile}");
    // The link is a follow to clients that know nothing of sameAs.
    let links = friend.ok(["--json", "contacts", &p]).text();
    assert!(links.contains(&l), "{links}");

    // A DM to the laptop is addressed to the phone too.
    friend.ok(["dm", "--to", &l, "for Ada, wherever she reads"]);
    crate::nodes::wait_for(
        30,
        std::time::Duration::from_millis(100),
        "the phone to read the DM",
        || {
            phone
                .run(["inbox"])
                .text()
                .contains("for Ada, wherever she reads")
                .then_some(())
        },
        || phone.log_tail(20),
    );

    // The stranger's claim: not honoured, shown as one side's.
    let mut stranger = stranger;
    stranger.start();
    stranger.ok(["connect", friend.address().as_str()]);
    friend.wait_count(&s, 1, 30);
    let (ds, _) = devices(&friend, &l);
    assert!(!ds.iter().any(|d| d.starts_with(&s)), "{ds:?}");
    let (ds, claims) = devices(&friend, &s);
    assert_eq!(ds.len(), 1, "{ds:?}");
    assert_eq!(
        claims,
        vec![format!("claimed by one side: {s} says {l} is its device")]
    );

    // Either side ends it.
    phone.ok(["device", "unlink", &l]);
    friend.wait_count(&p, 3, 30);
    let (ds, _) = devices(&friend, &l);
    assert_eq!(ds, vec![format!("{l} Ada")]);
}
