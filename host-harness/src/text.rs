//! Guest-controlled text on its way to a terminal or a log: control characters and escape sequences
//! are shown, never obeyed, so a plugin cannot clear the screen, rewrite earlier lines, set the window
//! title, or print a line that looks like the host's own output.

/// `text` with every control character (except `\n` and `\t` when `keep_newlines`) written as a
/// visible `\u{..}` escape.
pub fn neutralise(text: &str, keep_newlines: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let keep = keep_newlines && (c == '\n' || c == '\t');
        if !keep && (c.is_control() || is_invisible_format(c)) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// One line of guest text (no newlines kept).
pub fn for_terminal(text: &str) -> String {
    neutralise(text, false)
}

/// Bidirectional overrides and zero-width characters that reorder or hide what a terminal shows.
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_are_shown_not_obeyed() {
        assert_eq!(for_terminal("a\x1b[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(for_terminal("x\ry"), "x\\u{d}y");
        assert_eq!(for_terminal("line\nnext"), "line\\u{a}next");
        assert_eq!(neutralise("line\nnext\t\x07", true), "line\nnext\t\\u{7}");
        assert_eq!(for_terminal("\u{202e}evil"), "\\u{202e}evil");
        assert_eq!(for_terminal("plain ünïcode"), "plain ünïcode");
        assert_eq!(for_terminal("\u{9b}31m"), "\\u{9b}31m");
    }
}
