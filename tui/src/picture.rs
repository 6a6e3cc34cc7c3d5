//! Decoding a blob into a picture the terminal can draw, with bounds: a
//! file over [`MAX_BYTES`](crate::images::MAX_BYTES) is refused before it
//! is read, an image whose header claims more than [`MAX_SIDE`] pixels a
//! side is refused before it is decoded, decoding runs under the image
//! crate's allocation limits, and [`prepare_within`] gives up after a
//! time. The picture is scaled to at most [`MAX_COLS`] x [`MAX_ROWS`]
//! cells and made ready for the terminal's protocol (sixel, kitty, iTerm2
//! or half blocks, as the `ratatui-image` picker found it).
//!
//! [`picker`] finds how this terminal draws pictures from its environment
//! and its window size in pixels, without reading the terminal's input:
//! asking the terminal (`SHOAL_TUI_PICTURES=query`) leaves a reader behind
//! where the terminal does not answer, and it eats the first key pressed.
//!
//! I/O: reads files and the environment; runs on the runtime's decoding
//! thread, never on the UI loop. Imports `images` (the result type),
//! `ratatui-image`, `image` and crossterm's window size.

use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use image::{ImageReader, Limits};
use ratatui::layout::Size;
use ratatui_image::picker::{Picker, ProtocolType};
use ratatui_image::sliced::SlicedProtocol;
use ratatui_image::{FontSize, Resize};

use crate::images::{MAX_BYTES, Ready};

/// The widest or tallest image decoded, in pixels.
pub const MAX_SIDE: u32 = 8192;

/// The most memory one decode may take.
const MAX_ALLOC: u64 = 256 * 1024 * 1024;

/// The most columns a picture takes.
pub const MAX_COLS: u16 = 60;

/// The most rows a picture takes.
pub const MAX_ROWS: u16 = 16;

/// How long a decode may take before it is given up.
pub const TIME: Duration = Duration::from_secs(5);

/// How this terminal draws pictures. `SHOAL_TUI_PICTURES` chooses
/// (`halfblocks`, `sixel`, `kitty`, `iterm2`, or `query` to ask the
/// terminal); else kitty's and iTerm2's (and WezTerm's) own variables say,
/// outside tmux; else half blocks, which every terminal with colours
/// draws. The cell size comes from the window's size in pixels when the
/// terminal reports it.
pub fn picker() -> Picker {
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let chosen = var("SHOAL_TUI_PICTURES").to_ascii_lowercase();
    if chosen == "query" {
        return Picker::from_query_stdio().unwrap_or_else(|_| Picker::halfblocks());
    }
    let font = ratatui::crossterm::terminal::window_size()
        .ok()
        .filter(|w| w.width > 0 && w.height > 0 && w.columns > 0 && w.rows > 0)
        .map(|w| FontSize::new(w.width / w.columns, w.height / w.rows))
        .filter(|f| f.width > 0 && f.height > 0);
    let tmux = !var("TMUX").is_empty();
    let protocol = match chosen.as_str() {
        "halfblocks" => ProtocolType::Halfblocks,
        "sixel" => ProtocolType::Sixel,
        "kitty" => ProtocolType::Kitty,
        "iterm2" => ProtocolType::Iterm2,
        _ if tmux || font.is_none() => ProtocolType::Halfblocks,
        _ if !var("KITTY_WINDOW_ID").is_empty() || var("TERM") == "xterm-kitty" => {
            ProtocolType::Kitty
        }
        _ if matches!(var("TERM_PROGRAM").as_str(), "iTerm.app" | "WezTerm")
            || var("LC_TERMINAL") == "iTerm2" =>
        {
            ProtocolType::Iterm2
        }
        _ => ProtocolType::Halfblocks,
    };
    #[allow(deprecated)]
    let mut picker = match font {
        Some(f) => Picker::from_fontsize(f),
        None => Picker::halfblocks(),
    };
    picker.set_protocol_type(protocol);
    picker
}

/// Reads, checks and decodes the image in `path`, and makes it ready for
/// the terminal; `Err` says why it cannot be shown.
pub fn prepare(picker: &Picker, path: &Path) -> Result<Ready, String> {
    let size = std::fs::metadata(path)
        .map_err(|e| format!("cannot read it: {e}"))?
        .len();
    if size > MAX_BYTES {
        return Err(format!(
            "{} KB, larger than the {} KB limit",
            size / 1024,
            MAX_BYTES / 1024
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
    decode(picker, &bytes)
}

/// [`prepare`] on bytes already read (at most [`MAX_BYTES`]).
pub fn decode(picker: &Picker, bytes: &[u8]) -> Result<Ready, String> {
    if bytes.len() as u64 > MAX_BYTES {
        return Err("too large".into());
    }
    let reader = || {
        ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| format!("cannot read it: {e}"))
    };
    let r = reader()?;
    if r.format().is_none() {
        return Err("not an image this client reads (PNG, JPEG, GIF, WebP)".into());
    }
    // The header first: huge claims are refused before any decoding.
    let (w, h) = r.into_dimensions().map_err(|e| format!("malformed: {e}"))?;
    if w == 0 || h == 0 {
        return Err("malformed: empty".into());
    }
    if w > MAX_SIDE || h > MAX_SIDE {
        return Err(format!("{w}x{h} pixels, larger than {MAX_SIDE}x{MAX_SIDE}"));
    }
    let mut r = reader()?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    r.limits(limits);
    let img = r.decode().map_err(|e| format!("malformed: {e}"))?;
    let fit = Resize::Fit(None);
    let cells = fit.size_for(&img, picker.font_size(), Size::new(MAX_COLS, MAX_ROWS));
    let cells = Size::new(cells.width.max(1), cells.height.max(1));
    let proto = SlicedProtocol::new_with_resize(picker, img, cells, fit)
        .map_err(|e| format!("cannot be drawn: {e}"))?;
    let size = proto.size();
    if size.width == 0 || size.height == 0 || size.width > MAX_COLS || size.height > MAX_ROWS {
        return Err("cannot be drawn at this size".into());
    }
    Ok(Ready {
        cols: size.width,
        rows: size.height,
        proto: Arc::new(proto),
    })
}

/// [`prepare`] on a thread of its own, given up after `within` (the
/// thread then finishes on its own, its result dropped).
pub fn prepare_within(picker: &Picker, path: &Path, within: Duration) -> Result<Ready, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (picker, path) = (picker.clone(), path.to_owned());
    std::thread::Builder::new()
        .name("shoal-tui-decode".into())
        .spawn(move || {
            let _ = tx.send(prepare(&picker, &path));
        })
        .map_err(|e| format!("cannot start decoding: {e}"))?;
    match rx.recv_timeout(within) {
        Ok(r) => r,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            Err(format!("took longer than {}s to decode", within.as_secs()))
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            Err("the decoder stopped (a broken image)".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PNG of `w` x `h` pixels.
    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 40) as u8, (y * 40) as u8, 128])
        });
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png)
            .expect("png");
        out.into_inner()
    }

    #[test]
    fn a_small_png_is_ready_in_cells() {
        let picker = Picker::halfblocks();
        let r = decode(&picker, &png(40, 40)).expect("decoded");
        assert!(
            r.cols >= 1 && r.cols <= MAX_COLS && r.rows >= 1 && r.rows <= MAX_ROWS,
            "{r:?}"
        );
    }

    #[test]
    fn bad_images_say_why() {
        let picker = Picker::halfblocks();
        let mut bad = png(8, 8);
        bad.truncate(bad.len() / 2);
        assert!(decode(&picker, &bad).unwrap_err().contains("malformed"));
        assert!(decode(&picker, b"hello, not an image").is_err());
        // A header claiming 100000 x 100000 pixels (its checksum right).
        let mut huge = png(1, 1);
        huge[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        huge[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32fast::hash(&huge[12..29]);
        huge[29..33].copy_from_slice(&crc.to_be_bytes());
        let e = decode(&picker, &huge).unwrap_err();
        assert!(e.contains("larger than"), "{e}");
    }
}
