//! Tests of the typed API: its wire form, its errors and exit codes, and
//! `execute` on a real home opened without a node.

use super::*;
use crate::crypto::{FeedId, Keypair, MsgId};
use crate::store::StoreError;

fn feed(n: u8) -> FeedId {
    Keypair::from_seed(&[n; 32]).id()
}

fn msg(n: u8) -> MsgId {
    MsgId([n; 32])
}

/// A home with a fixed identity, opened without a node.
fn home() -> (tempfile::TempDir, Local) {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("me.secret");
    crate::crypto::write_secret_file(&secret, &Keypair::from_seed(&[1; 32])).unwrap();
    let home = dir.path().join("home");
    crate::home::Home::init(&home, crate::home::Identity::SecretFile(&secret))
        .unwrap()
        .store()
        .unwrap()
        .release_own_holds()
        .unwrap();
    let local = Local::open(&home).unwrap();
    (dir, local)
}

/// Keeps what a request streamed.
#[derive(Default)]
struct Kept {
    out: Vec<String>,
    notes: Vec<String>,
}

impl Sink for Kept {
    fn out(&mut self, line: &[u8]) -> Result<(), ApiError> {
        self.out.push(String::from_utf8(line.to_vec()).unwrap());
        Ok(())
    }
    fn note(&mut self, line: &str) {
        self.notes.push(line.to_string());
    }
}

fn run(host: &Local, req: Request) -> Result<Response, ApiError> {
    execute(host, req, &mut Discard)
}

#[test]
fn every_request_crosses_the_wire_unchanged() {
    let reqs = vec![
        Request::Whoami,
        Request::Address,
        Request::Publish {
            content: r#"{"type":"x","n":1.5e300}"#.into(),
        },
        Request::Post {
            text: "hi".into(),
            attach: Vec::new(),
        },
        Request::Reply {
            id: msg(1),
            text: "re".into(),
        },
        Request::Like {
            id: msg(2),
            undo: true,
        },
        Request::Name { name: "Ada".into() },
        Request::Follow { id: feed(2) },
        Request::Unfollow { id: feed(2) },
        Request::Block { id: feed(3) },
        Request::Dm {
            to: vec![feed(2), feed(3)],
            text: "psst".into(),
        },
        Request::Feed {
            before: Some((5, 7)),
            limit: 20,
        },
        Request::Inbox {
            before: None,
            limit: 3,
        },
        Request::Thread { id: msg(3) },
        Request::Search(SearchQuery {
            text: "tide OR \"sea wall\"".into(),
            from: Some(feed(2)),
            kind: Some(SearchKind::Group),
            since: Some(1_600_000_000_000),
            limit: Some(5),
        }),
        Request::Searches {
            save: Some("tide".into()),
            forget: None,
        },
        Request::Contacts { id: None },
        Request::Profile { id: Some(feed(4)) },
        Request::PostsBy {
            id: feed(4),
            before: None,
            limit: 9,
        },
        Request::Get { id: msg(4) },
        Request::Log {
            author: Some(feed(5)),
            since: 3,
            limit: Some(10),
        },
        Request::Import {
            path: "/tmp/x.jsonl".into(),
        },
        Request::GroupCreate {
            name: "crew".into(),
        },
        Request::GroupAdd {
            group: msg(5),
            members: vec![feed(6)],
            admin: true,
        },
        Request::GroupRemove {
            group: msg(5),
            members: vec![feed(6)],
        },
        Request::GroupDemote {
            group: msg(5),
            members: vec![feed(6)],
        },
        Request::GroupPromote {
            group: msg(5),
            members: vec![feed(6)],
        },
        Request::GroupPost {
            group: msg(5),
            text: "t".into(),
        },
        Request::GroupList,
        Request::GroupMembers { group: msg(5) },
        Request::GroupRead {
            group: msg(5),
            before: Some((1, 2)),
            limit: 4,
        },
        Request::MarkRead { rxs: vec![1, 2] },
        Request::Connect {
            address: "net:127.0.0.1:8008~shs:x".into(),
        },
        Request::Peers,
        Request::Status,
        Request::Uri {
            text: "@x.ed25519".into(),
        },
        Request::Why { id: feed(7) },
        Request::InviteAccept {
            code: "net:h:1~shs:k:s".into(),
        },
        Request::InviteCreate {
            uses: 3,
            note: Some("hi".into()),
            external: Some("pub.example.com:8008".into()),
        },
    ];
    for req in reqs {
        let text = serde_json::to_string(&req).unwrap();
        let back: Request = serde_json::from_str(&text).unwrap();
        assert_eq!(back, req, "{text}");
    }
    // The names are kebab-case, ids in their text form.
    let text = serde_json::to_string(&Request::GroupAdd {
        group: msg(5),
        members: vec![feed(6)],
        admin: false,
    })
    .unwrap();
    assert!(
        text.starts_with(r#"{"cmd":"group-add","group":"%"#),
        "{text}"
    );
    assert!(text.contains(".ed25519\""), "{text}");
    // An invite's uses default to one.
    let r: Request = serde_json::from_str(r#"{"cmd":"invite-create"}"#).unwrap();
    assert_eq!(
        r,
        Request::InviteCreate {
            uses: 1,
            note: None,
            external: None
        }
    );
}

#[test]
fn a_request_naming_a_bad_id_is_refused_when_read() {
    for bad in [
        r#"{"cmd":"follow","id":"@nope.ed25519"}"#,
        r#"{"cmd":"thread","id":"%AAAA.sha256"}"#,
        r#"{"cmd":"dm","to":["not an id"],"text":"x"}"#,
        r#"{"cmd":"thread","id":7}"#,
        r#"{"cmd":"no-such-command"}"#,
    ] {
        assert!(serde_json::from_str::<Request>(bad).is_err(), "{bad}");
    }
}

#[test]
fn answers_cross_the_wire_unchanged_threads_with_both_kinds_of_entry() {
    let item = Item {
        key: msg(1).to_string(),
        author: feed(1).to_string(),
        time: 5,
        rx: 7,
        text: Some("hi".into()),
        likes: 2,
        unread: true,
        content: serde_json::json!({"type": "post", "text": "hi"}),
        ..Item::default()
    };
    let answers = vec![
        Response::Thread(Thread {
            root: msg(1).to_string(),
            entries: vec![
                Entry::Message {
                    depth: 0,
                    item: Box::new(item.clone()),
                },
                Entry::Missing {
                    depth: 1,
                    key: msg(9).to_string(),
                },
                Entry::Muted { depth: 1, count: 3 },
            ],
            hidden: 1,
            forked_from: Some(msg(4).to_string()),
            more: 2,
            muted: 3,
            muted_thread: true,
        }),
        Response::Items { items: vec![item] },
        Response::Search(SearchResults {
            hits: vec![SearchHit {
                key: msg(2).to_string(),
                rx: 3,
                author: feed(1).to_string(),
                name: Some("Ada".into()),
                time: 5,
                kind: "private".into(),
                content_type: "post".into(),
                root: None,
                score: 1.5,
                snippet: "a tide".into(),
                marks: vec![(2, 6)],
            }],
            literal: true,
        }),
        Response::Searches {
            searches: vec!["tide".into()],
        },
        Response::Published {
            key: msg(3),
            sequence: 4,
        },
        Response::Done,
        Response::Status(Status {
            running: Some(false),
            limits: serde_json::json!({"peer_rate": 1}),
            ..Status::default()
        }),
        Response::Peers {
            connected: vec![],
            known: vec![KnownPeer {
                address: "a".into(),
                record: PeerRecord::default(),
                dial_failures: Some(3),
            }],
        },
        Response::InviteAccepted {
            pub_id: feed(2),
            address: "net:h:1~shs:k".into(),
            follow: msg(1),
            announcement: msg(2),
            dialling: false,
        },
        Response::Invite {
            code: "net:h:1~shs:k:s".into(),
            uses: 2,
        },
    ];
    for r in answers {
        let text = serde_json::to_string(&r).unwrap();
        let back: Response = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r, "{text}");
    }
}

#[test]
fn the_body_is_what_the_cli_prints() {
    let r = Response::Published {
        key: msg(3),
        sequence: 4,
    };
    assert_eq!(
        r.body(),
        serde_json::json!({"key": msg(3).to_string(), "sequence": 4})
    );
    // A status without a node says so, and has no incoming share.
    let s = Response::Status(Status {
        running: Some(false),
        ..Status::default()
    })
    .body();
    assert_eq!(s["running"], serde_json::json!(false));
    assert!(s.get("max_incoming").is_none());
    let s = Response::Status(Status {
        max_incoming: Some(48),
        ..Status::default()
    })
    .body();
    assert!(s.get("running").is_none());
    assert_eq!(s["max_incoming"], serde_json::json!(48));
}

#[test]
fn errors_map_to_exit_codes_in_one_place() {
    assert_eq!(ApiError::Usage("x".into()).exit_code(), 2);
    assert_eq!(ApiError::Refused("x".into()).exit_code(), 2);
    assert_eq!(ApiError::NotFound(msg(1)).exit_code(), 1);
    assert_eq!(ApiError::KeyMissing("e".into()).exit_code(), 1);
    assert_eq!(ApiError::Locked.exit_code(), 1);
    assert_eq!(ApiError::Failed("x".into()).exit_code(), 1);
    assert_eq!(ApiError::Control("x".into()).exit_code(), 1);
    // And cross the wire as they are.
    let e = ApiError::NotFound(msg(1));
    let back: ApiError = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
    assert_eq!(back, e);
    assert_eq!(
        ApiError::from(StoreError::Locked),
        ApiError::Locked,
        "a locked store says so"
    );
}

#[test]
fn what_can_be_checked_without_the_store_is_a_usage_error() {
    for req in [
        Request::Publish {
            content: "not json".into(),
        },
        Request::Publish {
            content: "[1,2]".into(),
        },
        Request::Name { name: "  ".into() },
        Request::GroupCreate { name: "".into() },
        Request::Connect {
            address: "nowhere".into(),
        },
        Request::InviteAccept {
            code: "net:h:1~shs:k".into(),
        },
        Request::InviteCreate {
            uses: 0,
            note: None,
            external: None,
        },
        Request::InviteCreate {
            uses: 1,
            note: None,
            external: Some("h:0".into()),
        },
    ] {
        let e = req.check().unwrap_err();
        assert_eq!(e.exit_code(), 2, "{req:?}: {e}");
    }
    assert!(
        Request::Post {
            text: "".into(),
            attach: Vec::new(),
        }
        .check()
        .is_ok()
    );
}

#[test]
fn execute_publishes_reads_marks_read_and_streams() {
    let (_dir, host) = home();
    let me = host.id();
    let Response::Id { id } = run(&host, Request::Whoami).unwrap() else {
        panic!("whoami")
    };
    assert_eq!(id, me);
    let Response::Published { key, sequence } = run(
        &host,
        Request::Post {
            text: "first".into(),
            attach: Vec::new(),
        },
    )
    .unwrap() else {
        panic!("post")
    };
    assert_eq!(sequence, 1);
    run(
        &host,
        Request::Reply {
            id: key,
            text: "second".into(),
        },
    )
    .unwrap();
    let Response::Items { items } = run(
        &host,
        Request::Feed {
            before: None,
            limit: 10,
        },
    )
    .unwrap() else {
        panic!("feed")
    };
    let texts: Vec<_> = items.iter().filter_map(|i| i.text.as_deref()).collect();
    assert_eq!(texts, ["second", "first"]);
    let Response::Thread(t) = run(&host, Request::Thread { id: key }).unwrap() else {
        panic!("thread")
    };
    assert_eq!(t.entries.len(), 2);
    // A message we do not hold is not found (exit 1).
    let e = run(&host, Request::Get { id: msg(9) }).unwrap_err();
    assert_eq!(e, ApiError::NotFound(msg(9)));
    // Log streams each message as a line.
    let mut kept = Kept::default();
    let r = execute(
        &host,
        Request::Log {
            author: Some(me),
            since: 0,
            limit: None,
        },
        &mut kept,
    )
    .unwrap();
    assert_eq!(r, Response::Done);
    assert_eq!(kept.out.len(), 2);
    assert!(kept.out[0].contains("\"first\""), "{}", kept.out[0]);
    let Response::Status(s) = run(&host, Request::Status).unwrap() else {
        panic!("status")
    };
    assert_eq!((s.messages, s.running), (2, Some(false)));
}

#[test]
fn a_dm_to_too_many_is_a_usage_error_and_writes_nothing() {
    let (_dir, host) = home();
    let to: Vec<FeedId> = (2..10).map(feed).collect();
    let e = run(
        &host,
        Request::Dm {
            to,
            text: "x".into(),
        },
    )
    .unwrap_err();
    assert_eq!(e.exit_code(), 2, "{e}");
    let Response::Status(s) = run(&host, Request::Status).unwrap() else {
        panic!("status")
    };
    assert_eq!(s.messages, 0);
}

#[test]
fn an_import_notes_each_rejected_line_and_counts() {
    let (dir, host) = home();
    let file = dir.path().join("in.jsonl");
    std::fs::write(&file, "not json\n\n{\"also\": \"bad\"}\n").unwrap();
    let mut kept = Kept::default();
    let r = execute(&host, Request::Import { path: file }, &mut kept).unwrap();
    assert_eq!(
        r,
        Response::Imported {
            imported: 0,
            rejected: 2,
            duplicates: 0
        }
    );
    assert_eq!(kept.notes.len(), 2, "{:?}", kept.notes);
    assert!(kept.notes[0].starts_with("rejected line 1: "));
    assert!(kept.notes[1].starts_with("rejected line 3: "));
}

#[test]
fn whoami_and_address_leave_the_store_closed() {
    // A `shoal whoami` while a node starts must not take its store lock.
    let (dir, host) = home();
    let other = || crate::home::Home::open(&dir.path().join("home")).and_then(|h| Ok(h.store()?));
    run(&host, Request::Whoami).unwrap();
    run(&host, Request::Address).unwrap();
    drop(other().expect("the store is free after whoami and address"));
    run(&host, Request::Status).unwrap();
    assert!(other().is_err(), "a request that reads holds the store");
}

#[test]
fn an_invite_comes_as_a_code_or_as_the_link_apps_share() {
    let key = feed(9).b64();
    let seed = crate::crypto::b64_encode(&[7; 32]);
    let code = format!("net:pub.example.com:8008~shs:{key}:{seed}");
    let plain = types::parse_code(&code).unwrap();
    let link = format!(
        "ssb:experimental?action=consume-invite&invite={}",
        crate::uri::encode_component(&code)
    );
    assert_eq!(
        types::parse_code(&link).unwrap().to_string(),
        plain.to_string()
    );
    for bad in [
        "ssb:experimental?action=consume-invite".to_string(),
        "ssb:experimental?action=claim-http-invite&invite=abc".to_string(),
        format!(
            "ssb:feed/classic/{}",
            key.replace('+', "-").replace('/', "_")
        ),
    ] {
        assert_eq!(types::parse_code(&bad).unwrap_err().exit_code(), 2, "{bad}");
    }
}
