//! Characters that can make text on a terminal look different from what it is, and the
//! escaping that shows them instead of letting them act.
//!
//! A proposal is read by a human at a terminal before anything runs, so every proposal
//! field is refused if it holds one of these ([`disguising_char`]), and everything the
//! approval screen prints goes through [`escape`] (or, for the plan, through
//! [`crate::exec::render_plan`], which spells such characters as `$'\u…'`). The set is
//! deliberately wide: every C0 and C1 control character and DEL (carriage return plus an
//! erase-line sequence can hide a word), bidirectional overrides and isolates (U+202A–202E,
//! U+2066–2069: "Trojan Source"), zero-width and other invisible format characters
//! (U+200B–200F, U+2060–2064, U+FEFF, soft hyphen, tag characters), line and paragraph
//! separators, and the invisible fillers some fonts render as nothing.

/// Whether `c` can change how surrounding text looks on a terminal or hide itself.
pub fn is_disguising(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00AD}'                 // soft hyphen (invisible unless at a line break)
            | '\u{034F}'               // combining grapheme joiner
            | '\u{061C}'               // Arabic letter mark (bidi)
            | '\u{115F}' | '\u{1160}'  // Hangul fillers (render as nothing)
            | '\u{17B4}' | '\u{17B5}'  // Khmer invisible vowels
            | '\u{180B}'..='\u{180F}'  // Mongolian variation selectors / vowel separator
            | '\u{200B}'..='\u{200F}'  // zero-width space/joiners, LRM, RLM
            | '\u{2028}' | '\u{2029}'  // line and paragraph separators
            | '\u{202A}'..='\u{202E}'  // bidi embeddings and overrides
            | '\u{2060}'..='\u{206F}'  // word joiner, invisible operators, bidi isolates
            | '\u{3164}'               // Hangul filler
            | '\u{FE00}'..='\u{FE0F}'  // variation selectors
            | '\u{FEFF}'               // zero-width no-break space (BOM)
            | '\u{FFA0}'               // halfwidth Hangul filler
            | '\u{FFF9}'..='\u{FFFB}'  // interlinear annotation controls
            | '\u{1D173}'..='\u{1D17A}' // musical format characters
            | '\u{E0000}'..='\u{E007F}' // tag characters
            | '\u{E0100}'..='\u{E01EF}' // variation selectors supplement
        )
}

/// The first disguising character of `s`: its position (in characters, from 1) and the
/// character itself.
pub fn disguising_char(s: &str) -> Option<(usize, char)> {
    s.chars()
        .enumerate()
        .find(|(_, c)| is_disguising(*c))
        .map(|(i, c)| (i + 1, c))
}

/// `U+001B`-style name of a character, for error messages (never the character itself).
pub fn code_point(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

/// A short description of a disguising character for a refusal.
pub fn describe(c: char) -> &'static str {
    match c {
        '\r' => "carriage return",
        '\n' => "line feed",
        '\t' => "tab",
        '\x1b' => "escape (starts terminal control sequences)",
        '\x08' => "backspace",
        '\x7f' => "delete",
        '\u{0080}'..='\u{009F}' => "C1 control character",
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{061C}' | '\u{200E}' | '\u{200F}' => {
            "bidirectional text control"
        }
        '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' => "zero-width character",
        c if c.is_control() => "control character",
        _ => "invisible formatting character",
    }
}

/// `s` with every disguising character and backslash written as an escape (`\x1b`,
/// `\u{202e}`, `\\`), so what a terminal shows is exactly the text, character by
/// character. Ordinary printable text (any script) is left as it is.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if is_disguising(c) && u32::from(c) < 0x80 => {
                out.push_str(&format!("\\x{:02x}", u32::from(c)));
            }
            c if is_disguising(c) => out.push_str(&format!("\\u{{{:04x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_classic_disguises_are_caught() {
        for c in [
            '\r',
            '\n',
            '\x1b',
            '\x07',
            '\x7f',
            '\u{85}',
            '\u{9b}',
            '\u{202e}',
            '\u{2066}',
            '\u{2069}',
            '\u{200b}',
            '\u{200f}',
            '\u{feff}',
            '\u{e0041}',
        ] {
            assert!(is_disguising(c), "{}", code_point(c));
        }
        for c in ['a', ' ', 'é', '中', '→', '—', '€'] {
            assert!(!is_disguising(c), "{}", code_point(c));
        }
    }

    #[test]
    fn escape_leaves_no_disguising_character() {
        let hostile = "git log\r\x1b[2Kcat key\u{202e}txt\u{200b}\\";
        let shown = escape(hostile);
        assert_eq!(disguising_char(&shown), None);
        assert_eq!(shown, "git log\\r\\x1b[2Kcat key\\u{202e}txt\\u{200b}\\\\");
    }

    #[test]
    fn position_counts_characters_from_one() {
        assert_eq!(disguising_char("ab\u{202e}"), Some((3, '\u{202e}')));
        assert_eq!(disguising_char("plain"), None);
    }
}
