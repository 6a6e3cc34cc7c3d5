//! The key map: which key press means what, in each input mode.
//!
//! Pure functions from a crossterm key event to an action: [`action`] for
//! the screens, [`edit`] for the compose editor and the search prompt.
//! Imports only crossterm's key types (through ratatui) and the tab list;
//! never the app state, the node or I/O.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::screens::Tab;

/// What a key press asks for on a screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `k`, Up.
    Up,
    /// `j`, Down.
    Down,
    /// `g`, Home.
    Top,
    /// `G`, End.
    Bottom,
    /// Ctrl-d, PageDown: half a page down.
    HalfDown,
    /// Ctrl-u, PageUp: half a page up.
    HalfUp,
    /// Enter, `o`, `l`, Right: open the selection (a thread, a
    /// conversation, a profile).
    Open,
    /// `h`, Esc, Left: back.
    Back,
    /// `c`: compose a post.
    Compose,
    /// `e`: compose in `$EDITOR`.
    ComposeInEditor,
    /// `r`: reply to the selected message.
    Reply,
    /// `f`: like the selected message.
    Like,
    /// `m`: private message to the author (or the selected person).
    Message,
    /// `F`: follow or unfollow the author (or the selected person).
    Follow,
    /// `B`: block the author (or the selected person), after asking.
    Block,
    /// `p`: the author's profile.
    Profile,
    /// `/`: search the whole store.
    Search,
    /// `s`: find in what the current view has loaded.
    Find,
    /// `S`: the saved searches.
    Saved,
    /// `w`: save the search shown.
    Save,
    /// `n`: next match (on the groups screen: a new group).
    NextMatch,
    /// `N`: previous match.
    PrevMatch,
    /// `y`: copy the selected id.
    CopyId,
    /// `L`: follow a link in the selected message (a choice when it has
    /// several).
    FollowLink,
    /// `O`: open the selected message's blob (an image, a file) or web
    /// link with the system opener (a choice when it has several).
    OpenExternal,
    /// `u`: raw JSON of the selected message.
    Raw,
    /// `a`: add a member to the selected group.
    AddMember,
    /// `x`: remove a member from the selected group, after asking.
    RemoveMember,
    /// `R`: reload the current view from the start.
    Reload,
    /// `z`: mute the selected message's thread (again: unmute it).
    MuteThread,
    /// `M`: mute the selected message's author (again: unmute them).
    MuteAuthor,
    /// `H`: the history of an edited message (its revisions).
    History,
    /// `A`: the next account (with several homes).
    NextAccount,
    /// `?`: help.
    Help,
    /// `q`: quit (asks first when a draft would be lost).
    Quit,
    /// Ctrl-c: quit now.
    Interrupt,
    /// `1`..`6`: a tab.
    Tab(Tab),
    /// `]`, Tab: the next tab.
    NextTab,
    /// `[`, BackTab: the previous tab.
    PrevTab,
}

/// Whether the event is a press (or an auto-repeat), not a release.
pub fn is_press(key: &KeyEvent) -> bool {
    matches!(key.kind, KeyEventKind::Press | KeyEventKind::Repeat)
}

/// The action of a key press on a screen, if any.
pub fn action(key: KeyEvent) -> Option<Action> {
    use Action::*;
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl {
        return match key.code {
            KeyCode::Char('c') => Some(Interrupt),
            KeyCode::Char('d') => Some(HalfDown),
            KeyCode::Char('u') => Some(HalfUp),
            KeyCode::Char('n') => Some(Down),
            KeyCode::Char('p') => Some(Up),
            _ => None,
        };
    }
    if key.modifiers.contains(KeyModifiers::ALT) {
        return None;
    }
    Some(match key.code {
        KeyCode::Char('j') | KeyCode::Down => Down,
        KeyCode::Char('k') | KeyCode::Up => Up,
        KeyCode::Char('g') | KeyCode::Home => Top,
        KeyCode::Char('G') | KeyCode::End => Bottom,
        KeyCode::PageDown => HalfDown,
        KeyCode::PageUp => HalfUp,
        KeyCode::Enter | KeyCode::Char('o') | KeyCode::Char('l') | KeyCode::Right => Open,
        KeyCode::Char('h') | KeyCode::Esc | KeyCode::Left | KeyCode::Backspace => Back,
        KeyCode::Char('c') => Compose,
        KeyCode::Char('e') => ComposeInEditor,
        KeyCode::Char('r') => Reply,
        KeyCode::Char('f') => Like,
        KeyCode::Char('m') => Message,
        KeyCode::Char('F') => Follow,
        KeyCode::Char('B') => Block,
        KeyCode::Char('p') => Profile,
        KeyCode::Char('/') => Search,
        KeyCode::Char('s') => Find,
        KeyCode::Char('S') => Saved,
        KeyCode::Char('w') => Save,
        KeyCode::Char('n') => NextMatch,
        KeyCode::Char('N') => PrevMatch,
        KeyCode::Char('y') => CopyId,
        KeyCode::Char('L') => FollowLink,
        KeyCode::Char('O') => OpenExternal,
        KeyCode::Char('u') => Raw,
        KeyCode::Char('a') => AddMember,
        KeyCode::Char('x') => RemoveMember,
        KeyCode::Char('R') => Reload,
        KeyCode::Char('z') => MuteThread,
        KeyCode::Char('M') => MuteAuthor,
        KeyCode::Char('H') => History,
        KeyCode::Char('A') => NextAccount,
        KeyCode::Char('?') => Help,
        KeyCode::Char('q') => Quit,
        KeyCode::Char(']') | KeyCode::Tab => NextTab,
        KeyCode::Char('[') | KeyCode::BackTab => PrevTab,
        KeyCode::Char(d @ '0'..='9') => Tab(self::Tab::from_digit(d)?),
        _ => return None,
    })
}

/// What a key press does in the compose editor or the search prompt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edit {
    /// Types a character.
    Char(char),
    /// Enter: a new line (in the prompt: accept).
    Newline,
    /// Deletes before the cursor.
    Backspace,
    /// Deletes at the cursor.
    Delete,
    /// Cursor left.
    Left,
    /// Cursor right.
    Right,
    /// Cursor up a line.
    Up,
    /// Cursor down a line.
    Down,
    /// Start of the line.
    Home,
    /// End of the line.
    End,
    /// Ctrl-s: send.
    Send,
    /// Esc: close, keeping the draft.
    Close,
    /// Ctrl-e: continue in `$EDITOR`.
    External,
    /// Ctrl-t: attach a file (typed letters are text here, so `a` is
    /// taken).
    Attach,
}

/// The editing action of a key press, if any.
pub fn edit(key: KeyEvent) -> Option<Edit> {
    use Edit::*;
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return match key.code {
            KeyCode::Char('s') => Some(Send),
            KeyCode::Char('e') => Some(External),
            KeyCode::Char('t') => Some(Attach),
            KeyCode::Char('c') => Some(Close),
            KeyCode::Char('a') => Some(Home),
            KeyCode::Char('h') => Some(Backspace),
            KeyCode::Char('j') | KeyCode::Char('m') => Some(Newline),
            _ => None,
        };
    }
    Some(match key.code {
        KeyCode::Char(c) => Char(c),
        KeyCode::Enter => Newline,
        KeyCode::Backspace => Backspace,
        KeyCode::Delete => Delete,
        KeyCode::Left => Left,
        KeyCode::Right => Right,
        KeyCode::Up => Up,
        KeyCode::Down => Down,
        KeyCode::Home => Home,
        KeyCode::End => End,
        KeyCode::Esc => Close,
        KeyCode::Tab => Char(' '),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn ctrl(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    fn ch(c: char) -> KeyEvent {
        key(KeyCode::Char(c))
    }

    #[test]
    fn vim_movement() {
        assert_eq!(action(ch('j')), Some(Action::Down));
        assert_eq!(action(ch('k')), Some(Action::Up));
        assert_eq!(action(key(KeyCode::Down)), Some(Action::Down));
        assert_eq!(action(ch('g')), Some(Action::Top));
        assert_eq!(action(ch('G')), Some(Action::Bottom));
        assert_eq!(action(ctrl('d')), Some(Action::HalfDown));
        assert_eq!(action(ctrl('u')), Some(Action::HalfUp));
    }

    #[test]
    fn open_and_back() {
        for k in [key(KeyCode::Enter), ch('o'), ch('l')] {
            assert_eq!(action(k), Some(Action::Open), "{k:?}");
        }
        for k in [ch('h'), key(KeyCode::Esc), key(KeyCode::Left)] {
            assert_eq!(action(k), Some(Action::Back), "{k:?}");
        }
    }

    #[test]
    fn social_keys() {
        let expect = [
            ('c', Action::Compose),
            ('e', Action::ComposeInEditor),
            ('r', Action::Reply),
            ('f', Action::Like),
            ('m', Action::Message),
            ('F', Action::Follow),
            ('B', Action::Block),
            ('/', Action::Search),
            ('s', Action::Find),
            ('S', Action::Saved),
            ('w', Action::Save),
            ('n', Action::NextMatch),
            ('N', Action::PrevMatch),
            ('y', Action::CopyId),
            ('L', Action::FollowLink),
            ('O', Action::OpenExternal),
            ('a', Action::AddMember),
            ('x', Action::RemoveMember),
            ('u', Action::Raw),
            ('z', Action::MuteThread),
            ('M', Action::MuteAuthor),
            ('H', Action::History),
            ('?', Action::Help),
            ('q', Action::Quit),
        ];
        for (c, a) in expect {
            assert_eq!(action(ch(c)), Some(a), "{c}");
        }
    }

    #[test]
    fn ctrl_c_interrupts_and_unknown_keys_do_nothing() {
        assert_eq!(action(ctrl('c')), Some(Action::Interrupt));
        assert_eq!(action(ch('Z')), None);
        assert_eq!(action(ctrl('z')), None);
        assert_eq!(
            action(KeyEvent::new(KeyCode::Char('j'), KeyModifiers::ALT)),
            None
        );
    }

    #[test]
    fn tabs_by_number_and_brackets() {
        assert_eq!(action(ch('1')), Some(Action::Tab(Tab::Timeline)));
        assert_eq!(action(ch('2')), Some(Action::Tab(Tab::Thread)));
        assert_eq!(action(ch('3')), Some(Action::Tab(Tab::Messages)));
        assert_eq!(action(ch('4')), Some(Action::Tab(Tab::Groups)));
        assert_eq!(action(ch('5')), Some(Action::Tab(Tab::Contacts)));
        assert_eq!(action(ch('6')), Some(Action::Tab(Tab::Log)));
        assert_eq!(action(ch('9')), None);
        assert_eq!(action(ch(']')), Some(Action::NextTab));
        assert_eq!(action(ch('[')), Some(Action::PrevTab));
    }

    #[test]
    fn editor_keys() {
        assert_eq!(edit(ctrl('s')), Some(Edit::Send));
        assert_eq!(edit(ctrl('e')), Some(Edit::External));
        assert_eq!(edit(ctrl('t')), Some(Edit::Attach));
        assert_eq!(edit(key(KeyCode::Esc)), Some(Edit::Close));
        assert_eq!(edit(key(KeyCode::Enter)), Some(Edit::Newline));
        // Letters that are commands elsewhere are text here.
        assert_eq!(edit(ch('q')), Some(Edit::Char('q')));
        assert_eq!(edit(ch('j')), Some(Edit::Char('j')));
        assert_eq!(edit(key(KeyCode::Backspace)), Some(Edit::Backspace));
        assert_eq!(edit(key(KeyCode::F(1))), None);
    }

    #[test]
    fn releases_are_not_presses() {
        let mut k = ch('j');
        assert!(is_press(&k));
        k.kind = KeyEventKind::Release;
        assert!(!is_press(&k));
    }
}
