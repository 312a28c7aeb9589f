//! How the overseer's commands look: aligned tables, relative times, and
//! colour only where a person is watching.
//!
//! Colour is used only when stdout is a terminal, `NO_COLOR` is unset or
//! empty (<https://no-color.org>) and `TERM` is not `dumb`, so piped output
//! and logs never carry escape codes. Every value read from the database or
//! a file (bodies, notes, paths, roles, ids, kinds, audit actors and
//! details, error messages) passes through [`clean`] (or [`cell`], or
//! [`json`] for JSON output) before it reaches a terminal, so nothing an
//! agent or a crafted file wrote can move the cursor, erase a line, recolour
//! the overseer's screen or reorder text with bidirectional overrides.

use std::io::IsTerminal;

use comfy_table::{Attribute, Cell, Color, ContentArrangement, Table, presets};

use crate::bridge::LiveState;
use crate::clock::{Millis, rfc3339};

/// Whether stdout gets colour and terminal-width tables.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// Emit ANSI colours.
    pub color: bool,
    /// Fit tables to the terminal width.
    pub tty: bool,
}

impl Style {
    /// Decides once, from stdout and the environment.
    pub fn detect() -> Self {
        let tty = std::io::stdout().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
        Self {
            color: tty && !no_color && !dumb,
            tty,
        }
    }

    /// A borderless table with a bold header, aligned columns.
    pub fn table<I, T>(&self, header: I) -> Table
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        let mut t = Table::new();
        t.load_preset(presets::NOTHING);
        if self.color {
            t.enforce_styling();
        } else {
            t.force_no_tty();
        }
        if self.tty {
            t.set_content_arrangement(ContentArrangement::Dynamic);
        }
        t.set_header(header.into_iter().map(|h| {
            let c = Cell::new(h.into());
            if self.color {
                c.add_attribute(Attribute::Bold)
            } else {
                c
            }
        }));
        t
    }

    /// A two-column key/value table without a header.
    pub fn pairs(&self) -> Table {
        let mut t = Table::new();
        t.load_preset(presets::NOTHING);
        if self.color {
            t.enforce_styling();
        } else {
            t.force_no_tty();
        }
        t
    }

    /// A cell coloured by a conversation's state.
    pub fn state_cell(&self, state: LiveState) -> Cell {
        let c = Cell::new(state.as_str());
        if !self.color {
            return c;
        }
        c.fg(match state {
            LiveState::Active => Color::Green,
            LiveState::Expired => Color::DarkGrey,
            LiveState::Closed => Color::Yellow,
        })
    }

    /// A cell that is red when `warn` holds (revoked, dead, broken); its
    /// text is cleaned like every [`cell`].
    pub fn flag_cell(&self, text: impl Into<String>, warn: bool) -> Cell {
        let c = cell(text.into());
        if self.color && warn { c.fg(Color::Red) } else { c }
    }

    /// Wraps text in an ANSI style when colour is on.
    pub fn paint(&self, text: &str, code: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
}

/// "3 min ago", "in 2 h", "just now": how far `then` is from `now`.
pub fn relative(then: Millis, now: Millis) -> String {
    let delta = (now - then) / 1000;
    let secs = delta.unsigned_abs();
    if secs < 5 {
        return "just now".into();
    }
    let span = if secs < 60 {
        format!("{secs} s")
    } else if secs < 3600 {
        format!("{} min", secs / 60)
    } else if secs < 86_400 {
        compound(secs / 3600, "h", secs % 3600 / 60, "min")
    } else {
        compound(secs / 86_400, "d", secs % 86_400 / 3600, "h")
    };
    if delta >= 0 {
        format!("{span} ago")
    } else {
        format!("in {span}")
    }
}

/// "2 h 59 min" rather than a floored "2 h", which would read as an hour early.
fn compound(big: u64, big_unit: &str, small: u64, small_unit: &str) -> String {
    if small == 0 {
        format!("{big} {big_unit}")
    } else {
        format!("{big} {big_unit} {small} {small_unit}")
    }
}

/// A relative time, or "-" when there is none.
pub fn relative_opt(then: Option<Millis>, now: Millis) -> String {
    then.map_or_else(|| "-".into(), |t| relative(t, now))
}

/// An absolute time with its relative form: "2026-01-02T03:04:05.000Z (3 min ago)".
pub fn when(then: Millis, now: Millis) -> String {
    format!("{} ({})", rfc3339(then), relative(then, now))
}

/// Human byte sizes: "812 B", "4.2 MiB".
pub fn bytes(n: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Whether a character must never reach a terminal raw: C0 and C1 controls
/// (ESC, CSI `U+009B`, carriage return, backspace, DEL) and the invisible
/// bidirectional marks and overrides that reorder what is displayed.
fn unsafe_char(ch: char) -> bool {
    ch.is_control()
        || matches!(ch, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Text made safe for a terminal: unsafe characters (see `unsafe_char`)
/// other than newline and tab become visible escapes (`\u{1b}`), so a value
/// cannot clear the screen, move the cursor, fake a colour or hide text.
pub fn clean(text: &str) -> String {
    if !text.chars().any(|c| unsafe_char(c) && c != '\n' && c != '\t') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 16);
    for ch in text.chars() {
        if unsafe_char(ch) && ch != '\n' && ch != '\t' {
            out.extend(ch.escape_unicode());
        } else {
            out.push(ch);
        }
    }
    out
}

/// One line of text for a table cell or a single-line field: like [`clean`],
/// and newlines and tabs escaped too, so a value cannot fake table rows.
pub fn line(text: &str) -> String {
    clean(text).replace('\n', "\\n").replace('\t', "\\t")
}

/// A table cell holding a value from the database, cleaned with [`line`].
pub fn cell(text: impl AsRef<str>) -> Cell {
    Cell::new(line(text.as_ref()))
}

/// JSON text with every unsafe character written as a `\uXXXX` escape.
/// serde_json escapes C0 controls only; DEL, C1 controls and bidi marks it
/// leaves raw. Such characters can only occur inside strings, where the
/// escape means the same character, so the JSON's meaning is unchanged.
pub fn json(text: &str) -> String {
    if !text.chars().any(unsafe_char) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 16);
    for ch in text.chars() {
        if unsafe_char(ch) && !matches!(ch, '\n' | '\t' | '\r') {
            out.push_str(&format!("\\u{:04x}", ch as u32));
        } else {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_read_naturally() {
        let now = 10_000_000;
        assert_eq!(relative(now - 1000, now), "just now");
        assert_eq!(relative(now - 42_000, now), "42 s ago");
        assert_eq!(relative(now - 180_000, now), "3 min ago");
        assert_eq!(relative(now + 7_200_000, now), "in 2 h");
        assert_eq!(relative(now - 3 * 86_400_000, now), "3 d ago");
        assert_eq!(relative(now + 10_740_000, now), "in 2 h 59 min");
    }

    #[test]
    fn sizes_are_binary_units() {
        assert_eq!(bytes(812), "812 B");
        assert_eq!(bytes(4 * 1024 * 1024 + 200 * 1024), "4.2 MiB");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(clean("a\x1b[2Jb\nc\td"), "a\\u{1b}[2Jb\nc\td");
    }

    #[test]
    fn c1_controls_del_and_bidi_overrides_are_escaped() {
        assert_eq!(
            clean("a\u{9b}2Jb\u{7f}c\u{202e}d\re"),
            "a\\u{9b}2Jb\\u{7f}c\\u{202e}d\\u{d}e"
        );
        assert_eq!(line("a\nb\tc"), "a\\nb\\tc");
    }

    #[test]
    fn json_output_escapes_what_serde_json_leaves_raw() {
        let text = serde_json::to_string(&serde_json::json!({"k": "a\u{1b}b\u{9b}c\u{202e}d"})).unwrap();
        let safe = json(&text);
        assert!(!safe.chars().any(unsafe_char), "{safe}");
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back["k"], "a\u{1b}b\u{9b}c\u{202e}d");
    }
}
