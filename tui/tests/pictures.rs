//! Images in posts: a placeholder on cards; in a thread, asked of the node
//! once, `fetching…` while peers are asked, drawn once decoded, and a word
//! on why when it cannot be shown. Real blobs in a real home through the
//! embedded node: a picture, a malformed PNG, a header claiming 100000 x
//! 100000 pixels; and a post with a file attached from the compose pane.

use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use insta::assert_snapshot;
use ratatui::crossterm::event::KeyCode;
use ratatui_image::picker::Picker;

use shoal::api::{Request, Response};
use shoal::crypto::BlobId;
use shoal_tui::app::{App, update};
use shoal_tui::backend::{Backend, Embedded};
use shoal_tui::event::{Effect, Event, Loaded, Note};
use shoal_tui::model::EntryView as _;
use shoal_tui::model::{BlobState, Post, Publish};
use shoal_tui::picture;

use crate::fixture::*;
use crate::home::fixture_home;
use crate::markdown::{BLOB, thread_of};

/// A PNG of `w` x `h` pixels: a gradient.
pub fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, 160])
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .expect("png");
    out.into_inner()
}

/// A valid PNG whose header claims `w` x `h` pixels (its data is 1 x 1).
fn claiming(w: u32, h: u32) -> Vec<u8> {
    let mut p = png(1, 1);
    p[16..20].copy_from_slice(&w.to_be_bytes());
    p[20..24].copy_from_slice(&h.to_be_bytes());
    let crc = crc32fast::hash(&p[12..29]);
    p[29..33].copy_from_slice(&crc.to_be_bytes());
    p
}

fn blob_state(path: Option<&Path>, size: Option<u64>, wanted: bool) -> BlobState {
    BlobState {
        id: BlobId::parse(BLOB).expect("blob id"),
        size,
        path: path.map(Path::to_path_buf),
        wanted,
    }
}

fn cat() -> Vec<Post> {
    let mut posts = vec![post(
        "cat",
        &bjorn(),
        60_000,
        40,
        &format!("look at this:\n\n![a cat]({BLOB})\n\nnice, isn't it?"),
    )];
    posts.extend(timeline());
    posts
}

fn screen(app: &App) -> String {
    let t = draw(app);
    assert_no_controls(&t);
    format!("{:?}", t.backend())
}

#[test]
fn placeholders_then_the_picture() {
    let posts = cat();
    // A card: a one-line placeholder.
    let app = app_with(&posts, 80, 12);
    assert!(screen(&app).contains("[image: a cat]"));
    // The thread asks for it once.
    let (mut app, effects) = thread_of(&posts, 80, 30);
    assert_eq!(
        effects
            .iter()
            .filter(|e| **e == Effect::GetBlob(BLOB.into()))
            .count(),
        1,
        "{effects:?}"
    );
    assert!(screen(&app).contains("[image: a cat — fetching…]"));
    // Not held: peers are asked; a reload does not ask again.
    let e = update(
        &mut app,
        Event::Loaded(Loaded::Blob {
            id: BLOB.into(),
            result: Ok(blob_state(None, None, true)),
        }),
    );
    assert!(e.is_empty());
    let (_, again) = thread_of(&posts, 80, 30);
    assert!(again.contains(&Effect::GetBlob(BLOB.into())));
    let view = app.thread.view.clone().expect("the thread");
    let again = update(
        &mut app,
        Event::Loaded(Loaded::Thread {
            id: posts[0].key.clone(),
            result: Ok(view),
        }),
    );
    assert!(!again.contains(&Effect::GetBlob(BLOB.into())), "{again:?}");
    assert_snapshot!("image_fetching", draw(&app).backend());
    // It arrives: asked for again, held, decoded.
    let e = update(&mut app, Event::Node(Note::Blob(BLOB.into())));
    assert_eq!(e, vec![Effect::GetBlob(BLOB.into())]);
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("blob");
    std::fs::write(&file, png(64, 32)).expect("write");
    let e = update(
        &mut app,
        Event::Loaded(Loaded::Blob {
            id: BLOB.into(),
            result: Ok(blob_state(Some(&file), Some(100), false)),
        }),
    );
    assert_eq!(
        e,
        vec![Effect::Decode {
            id: BLOB.into(),
            path: file.clone()
        }]
    );
    let result = picture::prepare(&Picker::halfblocks(), &file);
    assert!(result.is_ok(), "{result:?}");
    update(
        &mut app,
        Event::Loaded(Loaded::Picture {
            id: BLOB.into(),
            result,
        }),
    );
    let shown = screen(&app);
    assert!(!shown.contains("[image"), "{shown}");
    assert!(shown.contains('▀') || shown.contains('▄'), "{shown}");
    assert_snapshot!("image_drawn", draw(&app).backend());
    // Scrolled half out of view, it is still drawn safely.
    for keys in ["j", "j", "k", "G"] {
        press(&mut app, &posts, keys);
        for size in [(80, 30), (40, 10), (20, 8), (7, 5)] {
            update(&mut app, Event::Resize(size.0, size.1));
            screen(&app);
        }
    }
}

#[test]
fn an_image_that_cannot_be_shown_says_why() {
    let posts = cat();
    let (mut app, _) = thread_of(&posts, 80, 30);
    update(
        &mut app,
        Event::Loaded(Loaded::Picture {
            id: BLOB.into(),
            result: Err("malformed: not a PNG".into()),
        }),
    );
    assert!(screen(&app).contains("[image: a cat — cannot be shown: malformed: not a PNG]"));
    assert_snapshot!("image_failed", draw(&app).backend());
    // Too large to decode, refused before reading.
    let (mut app, _) = thread_of(&posts, 80, 30);
    update(
        &mut app,
        Event::Loaded(Loaded::Blob {
            id: BLOB.into(),
            result: Ok(blob_state(Some(Path::new("/x")), Some(50 << 20), false)),
        }),
    );
    assert!(screen(&app).contains("larger than the 5120 KB limit"));
}

/// Runs a (blocking) backend call off the async threads.
async fn call<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("backend call")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_blobs_through_the_embedded_node() {
    let fx = fixture_home();
    let emb = Arc::new(Embedded::start(&fx.home).await.expect("embedded node"));
    let dir = tempfile::tempdir().expect("dir");
    let files = [
        ("good.png", png(120, 80)),
        ("broken.png", {
            let mut p = png(30, 30);
            p.truncate(p.len() / 2);
            p
        }),
        ("huge.png", claiming(100_000, 100_000)),
    ];
    let e = emb.clone();
    let d = dir.path().to_path_buf();
    let results = call(move || {
        let picker = Picker::halfblocks();
        files
            .iter()
            .map(|(name, bytes)| {
                let path = d.join(name);
                std::fs::write(&path, bytes).expect("write");
                let Response::Blob(added) = e.call(Request::BlobAdd { path }).expect("add") else {
                    panic!("not a blob")
                };
                let held = e.blob(&added.id.to_string()).expect("held");
                let file = held.path.expect("a file");
                let started = std::time::Instant::now();
                let r = picture::prepare_within(&picker, &file, picture::TIME);
                assert!(started.elapsed() < picture::TIME + std::time::Duration::from_secs(1));
                (added.id.to_string(), r)
            })
            .collect::<Vec<_>>()
    })
    .await;
    let good = results[0].1.as_ref().expect("the good one decodes");
    assert!(good.cols as u16 <= picture::MAX_COLS && good.rows as u16 <= picture::MAX_ROWS);
    let broken = results[1].1.as_ref().expect_err("the broken one does not");
    assert!(broken.contains("malformed"), "{broken}");
    let huge = results[2].1.as_ref().expect_err("the huge one is refused");
    assert!(huge.contains("100000x100000"), "{huge}");

    // A blob nobody holds: asked of peers (the node runs), not there.
    let e = emb.clone();
    let missing = call(move || e.blob(BLOB)).await.expect("asked");
    assert!(missing.path.is_none() && missing.wanted, "{missing:?}");

    // A post with the picture attached, from the compose pane: Ctrl-t, a
    // path, Enter; the file checked; sent with the post.
    let me = emb.me().to_string();
    let mut app = App::new(&me, NOW, (100, 30));
    update(&mut app, key(KeyCode::Char('c')));
    for c in "a picture".chars() {
        update(&mut app, key(KeyCode::Char(c)));
    }
    update(&mut app, ctrl('t'));
    let good_path = dir.path().join("good.png");
    for c in good_path.to_string_lossy().chars() {
        update(&mut app, key(KeyCode::Char(c)));
    }
    let effects = update(&mut app, key(KeyCode::Enter));
    let [Effect::Attach(typed)] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    let result = shoal_tui::opener::attachable(typed);
    update(&mut app, Event::Loaded(Loaded::Attached { result }));
    assert_eq!(app.attached.len(), 1);
    assert!(screen(&app).contains("+ good.png"));
    let effects = update(&mut app, ctrl('s'));
    let [Effect::Publish { what, .. }] = effects.as_slice() else {
        panic!("{effects:?}")
    };
    let Publish::Post { attach, .. } = what else {
        panic!("{what:?}")
    };
    assert_eq!(attach.len(), 1);
    let (e, w) = (emb.clone(), what.clone());
    let key = call(move || e.publish(&w)).await.expect("published");
    let e = emb.clone();
    let thread = call(move || e.thread(&key)).await.expect("thread");
    let text = thread.entries[0]
        .post()
        .and_then(|p| p.text.clone())
        .unwrap_or_default();
    let id = &results[0].0;
    assert!(text.contains(&format!("![good.png]({id})")), "{text}");
    assert_eq!(
        shoal_tui::markdown::images(&text, &[]),
        vec![id.clone()],
        "{text}"
    );
    emb.stop().await;
}
