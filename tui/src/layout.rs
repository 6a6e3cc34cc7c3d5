//! The regions of the screen: tab bar, body, status bar, hint line, and
//! the compose pane over the body. Shared by drawing and by `update`,
//! which needs the list sizes to keep selections in view.
//!
//! Pure; imports only ratatui's geometry.

use ratatui::layout::Rect;

/// Where each part of the screen goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Areas {
    /// The tab bar (top row).
    pub tabs: Rect,
    /// The current screen.
    pub body: Rect,
    /// The status bar (second row from the bottom).
    pub status: Rect,
    /// Hints, notices and the search prompt (bottom row).
    pub hint: Rect,
}

/// Splits the whole terminal area. Rows that do not exist get empty areas.
pub fn areas(area: Rect) -> Areas {
    let row = |y: u16, h: u16| Rect::new(area.x, y, area.width, h);
    let h = area.height;
    let tabs = row(area.y, h.min(1));
    let hint = if h >= 2 {
        row(area.y + h - 1, 1)
    } else {
        row(area.y, 0)
    };
    let status = if h >= 3 {
        row(area.y + h - 2, 1)
    } else {
        row(area.y, 0)
    };
    let body = if h > 3 {
        row(area.y + 1, h - 3)
    } else {
        row(area.y, 0)
    };
    Areas {
        tabs,
        body,
        status,
        hint,
    }
}

/// The body of a terminal of `width` x `height`.
pub fn body(width: u16, height: u16) -> Rect {
    areas(Rect::new(0, 0, width, height)).body
}

/// The compose pane: the lower part of the body, or all of a small one.
pub fn compose(body: Rect) -> Rect {
    if body.height <= 12 {
        return body;
    }
    let h = (body.height / 2).max(10).min(body.height);
    Rect::new(body.x, body.y + body.height - h, body.width, h)
}

/// A centred box of at most `w` x `h` inside `area`.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_fit_any_size() {
        for w in 0..50 {
            for h in 0..15 {
                let area = Rect::new(0, 0, w, h);
                let a = areas(area);
                for r in [a.tabs, a.body, a.status, a.hint] {
                    assert!(area.contains(r.as_position()) || r.area() == 0, "{w}x{h}");
                    assert!(r.bottom() <= h && r.right() <= w, "{w}x{h}: {r:?}");
                }
                let c = compose(a.body);
                assert!(c.bottom() <= a.body.bottom().max(c.y));
                let m = centered(area, 60, 20);
                assert!(m.right() <= w && m.bottom() <= h);
            }
        }
        let a = areas(Rect::new(0, 0, 100, 30));
        assert_eq!(a.body, Rect::new(0, 1, 100, 27));
        assert_eq!(a.status.y, 28);
        assert_eq!(a.hint.y, 29);
    }
}
