//! A real home with fixture data, made with the shoal library: our
//! identity and two people from fixed seeds, their signed feeds with fixed
//! timestamps (posts, a reply, names), and our follows. The config listens
//! on an ephemeral loopback port so tests never collide on 8008.

use std::path::{Path, PathBuf};

use shoal::crypto::{FeedId, Keypair};
use shoal::feed::content::Edge;
use shoal::feed::{self, FeedState, Object, Value, VerifiedMsg};
use shoal::home::Home;
use shoal::social::compose;

/// The claimed time of the first fixture message.
pub const T0: f64 = 1_700_000_000_000.0;

/// A home holding the fixture feeds.
pub struct FixtureHome {
    /// Keeps the directory alive.
    pub dir: tempfile::TempDir,
    /// The home directory.
    pub home: PathBuf,
    /// Us.
    pub me: FeedId,
    /// Alice.
    pub alice: FeedId,
    /// Bob.
    pub bob: FeedId,
    /// Alice's first post (the thread root).
    pub root: String,
}

/// A feed of `contents`, claiming the given times.
fn feed_of(keys: &Keypair, contents: Vec<(f64, Value)>) -> Vec<VerifiedMsg> {
    let mut state: Option<FeedState> = None;
    let mut out = Vec::new();
    for (ts, c) in contents {
        let v = feed::build(keys, state.as_ref(), ts, c, None);
        let m = feed::validate(state.as_ref(), None, v).expect("fixture message is valid");
        state = Some(m.state());
        out.push(m);
    }
    out
}

fn reply(root: &str, text: &str) -> Value {
    let mut c = Object::new();
    c.insert("type", Value::from("post"));
    c.insert("text", Value::from(text));
    c.insert("root", Value::from(root));
    c.insert("branch", Value::from(root));
    Value::Object(c)
}

/// Writes a config that listens on a free loopback port.
pub fn quiet_config(home: &Path) {
    std::fs::write(home.join("config.toml"), "listen = \"127.0.0.1:0\"\n").expect("config");
}

/// Makes the fixture home.
pub fn fixture_home() -> FixtureHome {
    let dir = tempfile::tempdir().expect("temp dir");
    let me = Keypair::from_seed(&[11; 32]);
    let alice = Keypair::from_seed(&[12; 32]);
    let bob = Keypair::from_seed(&[13; 32]);
    let secret = dir.path().join("me.secret");
    shoal::crypto::write_secret_file(&secret, &me).expect("secret");
    let home = dir.path().join("home");
    Home::init(&home, shoal::home::Identity::SecretFile(&secret))
        .expect("init")
        .store()
        .expect("store")
        .release_own_holds()
        .expect("a fixture identity has nothing to restore");
    quiet_config(&home);

    let alice_feed = feed_of(
        &alice,
        vec![
            (T0, compose::name(&alice.id(), "Alice")),
            (
                T0 + 1000.0,
                compose::post("Hello from Alice, the first post"),
            ),
            (T0 + 3000.0, compose::post("A second post from Alice")),
        ],
    );
    let root = alice_feed[1].id().to_string();
    let bob_feed = feed_of(
        &bob,
        vec![
            (T0, compose::name(&bob.id(), "Bob")),
            (T0 + 2000.0, reply(&root, "Replying to Alice: welcome!")),
            (T0 + 4000.0, compose::post("Bob's own post")),
        ],
    );
    let my_feed = feed_of(
        &me,
        vec![
            (T0, compose::name(&me.id(), "Me")),
            (T0 + 10.0, compose::contact(&alice.id(), Edge::Follow)),
            (T0 + 20.0, compose::contact(&bob.id(), Edge::Follow)),
        ],
    );
    {
        let h = Home::open(&home).expect("open home");
        let store = h.store().expect("store");
        let mut all = my_feed;
        all.extend(alice_feed);
        all.extend(bob_feed);
        store.ingest(all).expect("ingest");
    }
    FixtureHome {
        dir,
        home,
        me: me.id(),
        alice: alice.id(),
        bob: bob.id(),
        root,
    }
}

/// The fixture home with a private group made through the library: we
/// created "harbour crew", added Alice, and posted once. Answers the home
/// and the group id.
pub fn group_home() -> (FixtureHome, String) {
    use shoal::store::GroupOp;
    let fx = fixture_home();
    let group = {
        let h = Home::open(&fx.home).expect("open home");
        let store = h.store().expect("store");
        let write = |op: &GroupOp| {
            store
                .group_write(h.keys(), op, h.sign_cap())
                .expect("group write")
        };
        let created = write(&GroupOp::Create);
        let group = created.last().expect("the epoch").id();
        let mut about = shoal::feed::Object::new();
        about.insert("type", Value::from("about"));
        about.insert("about", Value::from(group.to_string()));
        about.insert("name", Value::from("harbour crew"));
        write(&GroupOp::Post {
            group,
            content: Value::Object(about),
        });
        write(&GroupOp::Add {
            group,
            members: vec![fx.alice],
            admins: vec![],
        });
        write(&GroupOp::Post {
            group,
            content: compose::post("Welcome aboard, Alice"),
        });
        group.to_string()
    };
    (fx, group)
}

/// The texts of our timeline, newest first, read with the library (the
/// home must not be open elsewhere).
pub fn timeline_texts(home: &Path) -> Vec<(String, String)> {
    let h = Home::open(home).expect("open home");
    let store = h.store().expect("store (is the client still running?)");
    let r = store.reader().expect("reader");
    let mut v = shoal::social::View::new(&r).expect("view");
    v.timeline(None, 100)
        .expect("timeline")
        .into_iter()
        .map(|i| (i.author, i.text.unwrap_or_default()))
        .collect()
}
