//! Text from a peer, made safe for an operator's terminal.
//!
//! A node's refusal message, its `Describe` strings or a transport error can carry control
//! characters: an escape sequence can clear the screen, retitle the window, rewrite earlier
//! lines or hide text, and bidirectional overrides can reorder what a line appears to say.
//! [`sanitize`] replaces every such character with a visible escape (`\u{1b}`), so what the
//! operator reads is what the peer sent, and nothing the peer sent acts on the terminal.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` must not reach a terminal as itself: C0 and C1 controls (tab and line breaks
/// included: one cell, one line), DEL, and the Unicode bidirectional controls.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// `text` with every [`is_unsafe`] character replaced by its `\u{…}` escape; borrowed when
/// there is nothing to replace.
pub fn sanitize(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_and_bidi_characters_become_visible_escapes() {
        assert!(matches!(sanitize("plain text, ünïcode"), Cow::Borrowed(_)));
        assert_eq!(
            sanitize("a\u{1b}[2Jb\u{7}c\nd\te\u{7f}f\u{9b}g\u{202e}h\u{2066}i\r"),
            "a\\u{1b}[2Jb\\u{7}c\\u{a}d\\u{9}e\\u{7f}f\\u{9b}g\\u{202e}h\\u{2066}i\\u{d}"
        );
    }

    #[test]
    fn nothing_unsafe_survives() {
        let all: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        assert!(!sanitize(&all).chars().any(is_unsafe));
    }
}
