//! The built-in rule table, one file per family of mechanism.
//!
//! | file | mechanism |
//! | --- | --- |
//! | [`keys`] | key material blocks (PEM, OpenSSH, PGP) |
//! | [`vendors`], [`platforms`] | vendor token formats with a recognisable prefix or shape |
//! | [`pairs`] | the secret half of a pair found next to its public id (AWS key id + secret, Twilio SID + auth token, Alibaba id + secret) |
//! | [`context`], [`cli`], [`files`] | credentials recognised by where they sit: URLs, `Authorization` headers, CLI flags, registry auth files, XML, Kubernetes `data:`, HCL |
//! | [`calls`] | credentials passed as call arguments, keyed by the function's name or by position in known calls; auth pairs; password fields typed by UI automation |
//! | [`tables`] | Markdown tables whose header names a secret column |
//! | [`blocks`] | YAML block and plain multi-line scalars, heredocs, TOML `"""` strings after a secret key |
//! | [`encoded`] | base64 near a mention of it, decoded; input of `\| base64`; output of secret-printing commands |
//! | [`fallback`] | literal defaults behind a lookup (`X \|\| "…"`, `${VAR:-…}`) |
//! | [`generic`] ([`family`], [`judge`]) | the keyword-anchored detector: a secret-ish key, flag or word, then a value judged by shape and entropy |
//!
//! Order is priority: when two rules claim exactly the same span, the
//! earlier one names it, so specific token formats come before generic
//! `key = value` rules.
//!
//! Regex conventions: `\b` is rewritten to the ASCII word boundary
//! `(?-u:\b)` at compile time (Unicode `\b` would force the slow engine on
//! non-ASCII input); tokens whose alphabet contains `-` end with
//! `(?:[^A-Za-z0-9_\-]|$)` instead of `\b` and keep the secret in group 1.

mod blocks;
mod calls;
mod checks;
mod cli;
mod context;
mod encoded;
mod fallback;
mod family;
mod files;
mod foreign;
pub mod generic;
mod judge;
mod keys;
mod pairs;
mod platforms;
mod tables;
mod vendors;

use std::borrow::Cow;
use std::cell::{Cell, OnceCell, RefCell};
use std::ops::Range;

use regex::Captures;

/// Extra validation a match must pass before it is redacted.
pub type Check = fn(&Hit<'_>) -> bool;

/// Like [`Check`], but also decides the kind and the exact span to replace
/// (`None` = reject). Used where the value's end or kind depends on context:
/// a bare value that stops at the next `&name=` only inside a URL query, a
/// key whose name says `password` or `api_key`.
pub type Classify = fn(&Hit<'_>) -> Option<Found>;

/// What a [`Classify`] accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Kind for the placeholder.
    pub kind: &'static str,
    /// Byte range in the haystack to replace.
    pub range: Range<usize>,
}

/// A regex match under consideration, as seen by a [`Check`].
pub struct Hit<'h> {
    /// The whole text being redacted.
    pub haystack: &'h str,
    /// All capture groups of the match.
    pub caps: &'h Captures<'h>,
    /// The span that would be replaced.
    pub secret: regex::Match<'h>,
    /// What earlier matches of the same rule in the same search learned
    /// about `haystack`.
    pub memo: &'h Memo,
}

/// Facts learnt about one text while judging a match, reused for the
/// next match of any rule in the same text (one memo per text and pass):
/// without it, every cell of a table walked up through every row above it
/// to find the header, and every value of a YAML map walked the whole
/// document, quadratic in the text's length.
#[derive(Debug, Default)]
pub struct Memo {
    /// The last table row whose header was looked up.
    pub table_row: Cell<Option<TableRow>>,
    /// The last table header whose columns were named: its start, and
    /// per column the secret family its name says (`None`: not secret).
    pub table_columns: RefCell<Option<TableColumns>>,
    /// The last table row whose cells were split: its start, whether it
    /// is a separator line, and its cells. A row's cells are matched one
    /// by one, so the row is split once, not once per cell.
    pub table_cells: RefCell<Option<TableCells>>,
    /// The byte offsets of the text's line breaks.
    pub newlines: OnceCell<Vec<usize>>,
    /// The text's YAML documents (see `files::yaml_documents`).
    pub yaml_documents: OnceCell<Vec<YamlDocument>>,
}

/// A YAML document of a text: the byte range between two document
/// markers (or the text's ends), and whether it is a `kind: Secret`.
#[derive(Debug, Clone, Copy)]
pub struct YamlDocument {
    /// First byte of the document.
    pub start: usize,
    /// End of the document (exclusive; its last line break excluded).
    pub end: usize,
    /// The document holds `kind: Secret`.
    pub secret: bool,
}

/// A table header's start and, per column, the family its name says.
pub type TableColumns = (usize, Vec<Option<(&'static str, family::Strength)>>);

/// A table row's start, whether it is a separator, and its cells.
pub type TableCells = (usize, bool, Vec<std::ops::Range<usize>>);

/// A table row's start and its header line's byte range (`None`: the
/// row is in no table).
pub type TableRow = (usize, Option<(usize, usize)>);

/// What gates a rule in the one-pass prefilter (see `anchors.rs`).
#[derive(Debug, Clone, Copy)]
pub enum Prefilter {
    /// Case-insensitive literals, one of which must occur.
    Keywords(&'static [&'static str]),
    /// A maximal run of at least this many token characters
    /// (`[A-Za-z0-9_-]`): shapes with no literal (hex keys, base58).
    Run(usize),
    /// A regex of its own (pairing rules: "an AWS key id occurs somewhere").
    Pattern(&'static str),
    /// The rule's own regex (rules with no literal to anchor on).
    Itself,
}

/// See [`Window::filter`].
pub type WindowFilter = fn(&str, usize, usize, &Memo) -> bool;

/// Where a rule's matches can lie relative to an occurrence of one of its
/// anchors: from `before` bytes before the anchor's start to `after` bytes
/// after its end, on the anchor's line unless `multiline`. A windowed
/// rule's regex runs only over those windows, not over the whole text:
/// for rules whose regex has no literal prefix (the keyword sits after a
/// key prefix, a flag, a quote) a whole-text scan costs milliseconds on a
/// 50 KB message.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Bytes before the anchor's start the match may begin at.
    pub before: usize,
    /// Bytes after the anchor's end the match may end at.
    pub after: usize,
    /// Matches may span lines (pairs: an id and its secret a few lines
    /// apart).
    pub multiline: bool,
    /// A cheap necessary condition on an anchor occurrence (`text`,
    /// `start`, `end`, and what is known of `text`): occurrences that fail
    /// it open no window.
    pub filter: Option<WindowFilter>,
}

impl Window {
    /// A same-line window with no filter.
    pub const fn line(before: usize, after: usize) -> Window {
        Window {
            before,
            after,
            multiline: false,
            filter: None,
        }
    }
}

/// One built-in rule. See the module docs for field semantics.
pub struct RuleSpec {
    /// Placeholder kind, `[REDACTED:<kind>]`.
    pub kind: &'static str,
    /// Pattern (Rust `regex` syntax).
    pub regex: Cow<'static, str>,
    /// 0 = whole match; k = first participating capture group with index >= k.
    pub group: usize,
    /// Minimum Shannon entropy (bits/char) of the secret span.
    pub entropy_min: Option<f64>,
    /// What gates the rule in the one-pass anchor scan.
    pub prefilter: Prefilter,
    /// Shape check on the match.
    pub check: Option<Check>,
    /// Check that also names the kind and the span (generic rules).
    pub classify: Option<Classify>,
    /// Run only around anchor occurrences (`Prefilter::Keywords`, `Run`).
    pub window: Option<Window>,
    /// A smaller regex with the same groups that parses a match of `regex`
    /// into its captures. Capture extraction costs in proportion to the
    /// regex's automaton; the generic rules' keyword alternation makes it
    /// large, so `regex` only finds the span and `parse` (keyword list
    /// replaced by any word) splits it. A span `parse` does not reproduce
    /// exactly falls back to `regex`'s own captures.
    pub parse: Option<Cow<'static, str>>,
}

/// A rule gated by keywords (empty = by its own regex), with an optional
/// check: the common case of every table.
pub(crate) fn rule(
    kind: &'static str,
    regex: &'static str,
    group: usize,
    entropy_min: Option<f64>,
    keywords: &'static [&'static str],
    check: Option<Check>,
) -> RuleSpec {
    RuleSpec {
        kind,
        regex: Cow::Borrowed(regex),
        group,
        entropy_min,
        prefilter: if keywords.is_empty() {
            Prefilter::Itself
        } else {
            Prefilter::Keywords(keywords)
        },
        check,
        classify: None,
        window: None,
        parse: None,
    }
}

/// `spec`, gated on a token run of at least `min` characters instead of
/// keywords: for shapes with no literal in them. The rule searches only
/// around such runs (a few dozen bytes either side, on their line): the
/// token may have separators (`.` in a Discord token, `/` and `:` in an
/// Asana one) around its longest run. A whole-text scan per rule cost
/// more than the windows, even in a lockfile full of hashes.
pub(crate) fn on_runs(spec: RuleSpec, min: usize) -> RuleSpec {
    RuleSpec {
        prefilter: Prefilter::Run(min),
        window: Some(Window::line(RUN_REACH, RUN_REACH)),
        ..spec
    }
}

/// How far a run rule's match may reach beyond the run that anchors it.
const RUN_REACH: usize = 64;

/// How far before its keyword a match of a rule with an implied window
/// may start (a vendor's keyword is its token's prefix; a key's is in the
/// key, after a flag's dashes or a quote).
const IMPLIED_BEFORE: usize = 256;

/// How far after its keyword such a match may end (the rest of the line,
/// in practice: the window is clipped to the keyword's line).
const IMPLIED_AFTER: usize = 4096;

/// The window a rule searches in: its own, or, for a keyword rule whose
/// pattern cannot match a line break, the keyword's line (from
/// [`IMPLIED_BEFORE`] bytes before the keyword). A match of such a rule
/// lies on one line, around its keyword: searching the whole text for
/// the one `sk_live_` a message holds cost a full lazy-DFA pass per rule,
/// most of a message's time when it holds a few vendors' tokens.
pub fn window_of(spec: &RuleSpec) -> Option<Window> {
    if spec.window.is_some() {
        return spec.window;
    }
    (matches!(spec.prefilter, Prefilter::Keywords(_)) && single_line(&spec.regex))
        .then_some(Window::line(IMPLIED_BEFORE, IMPLIED_AFTER))
}

/// Whether a pattern can only match within one line, read from its
/// text: outside classes no escape that matches a line break (`\s`,
/// `\n`, `\W`, `\D`, `\p{…}`, `\x…`, …), classes that either list no
/// such escape or are negated and exclude the line break (`[^\s"']`,
/// `[^\r\n]`), and no `s` flag. Conservative: what it cannot read counts
/// as able to match a break.
fn single_line(pattern: &str) -> bool {
    /// Escapes that match, or may match, a line break.
    const BREAKING: &[u8] = b"snWDpPxuUvfr";
    let b = pattern.as_bytes();
    let mut i = leading_boundary(pattern);
    while i < b.len() {
        match b[i] {
            b'\\' => {
                if b.get(i + 1).is_some_and(|c| BREAKING.contains(c)) {
                    return false;
                }
                i += 2;
            }
            b'[' => {
                let negated = b.get(i + 1) == Some(&b'^');
                let Some(len) = class_len(&b[i..]) else {
                    return false;
                };
                let class = &b[i..i + len];
                let escapes: Vec<u8> = class
                    .iter()
                    .enumerate()
                    .filter(|&(k, _)| k > 0 && class[k - 1] == b'\\' && (k < 2 || class[k - 2] != b'\\'))
                    .map(|(_, &c)| c)
                    .collect();
                let excludes_break = escapes.iter().any(|c| matches!(c, b'n' | b's'));
                let lists_break = class.contains(&b'\n') || escapes.iter().any(|c| BREAKING.contains(c));
                if (negated && !excludes_break) || (!negated && lists_break) {
                    return false;
                }
                i += len;
            }
            b'\n' => return false,
            b'(' if b.get(i + 1) == Some(&b'?') => {
                // A flag group (`(?is)`, `(?s:…)`) may not set `s`.
                let flags = b[i + 2..]
                    .iter()
                    .take_while(|c| c.is_ascii_alphabetic() || **c == b'-');
                if flags.clone().any(|&c| c == b's' || c == b'x') {
                    return false;
                }
                i += 2;
            }
            _ => i += 1,
        }
    }
    true
}

/// The length of a leading `(?:^|\s)` or `(?:^|[…])` (after flags such as
/// `(?i)`), else 0. It consumes at most the character before the keyword's
/// line, which a same-line window keeps (the line break before the
/// anchor), so it does not take the match off the line.
fn leading_boundary(pattern: &str) -> usize {
    let flags = if pattern.starts_with("(?") && !pattern.starts_with("(?:") {
        pattern.find(')').map_or(0, |i| i + 1)
    } else {
        0
    };
    let rest = &pattern[flags..];
    if let Some(after) = rest.strip_prefix(r"(?:^|\s)") {
        return pattern.len() - after.len();
    }
    if let Some(class) = rest.strip_prefix("(?:^|")
        && class.starts_with('[')
        && let Some(len) = class_len(class.as_bytes())
        && class[len..].starts_with(')')
    {
        return pattern.len() - class[len + 1..].len();
    }
    0
}

/// The length of the character class at the start of `b` (from `[` to
/// its `]`), or `None` when it is nested or unterminated.
fn class_len(b: &[u8]) -> Option<usize> {
    let mut i = 1;
    if b.get(i) == Some(&b'^') {
        i += 1;
    }
    // A `]` first is a literal.
    if b.get(i) == Some(&b']') {
        i += 1;
    }
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'[' => return None,
            b']' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// The built-in rules in priority order.
pub fn builtin_rules() -> Vec<RuleSpec> {
    let mut rules = keys::rules();
    rules.extend(vendors::rules());
    // Context before pairs: a bearer token that happens to sit near an
    // AWS key id is named by its header, not as the id's secret half.
    rules.extend(context::rules());
    rules.extend(pairs::rules());
    rules.extend(files::late_rules());
    rules.extend(calls::rules());
    rules.extend(calls::positional_rules());
    rules.extend(calls::ui_and_pair_rules());
    rules.extend(tables::rules());
    rules.extend(blocks::rules());
    rules.extend(encoded::rules());
    rules.extend(fallback::rules());
    rules.extend(generic::rules());
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line_patterns_are_read_conservatively() {
        for p in [
            r"\bghp_[A-Za-z0-9]{36}\b",
            r"(?i)\bapi[_-]?key[ \t]*=[ \t]*([a-z0-9]{32})",
            r"(?-u:\b)x.y",
            r#"token="([^"\n]+)""#,
            r#"auth[^\s"'`=]+"#,
            r"a[^\r\n]*b",
            r#"(?:^|\s)(?:-U|--user)[ \t=]+["']?[^\s%"']+%([^\s"']+)"#,
            r#"(?i)(?:^|[\s"'])--user[ \t]+(\S+)"#,
        ] {
            assert!(single_line(p), "{p}");
        }
        for p in [
            r"key\s*=\s*(\S+)",
            r#"token="([^"]+)""#,
            r"[\s\S]*",
            r"[[:space:]]",
            r"[^a]\\",
            r"[^\\n]",
            r"(?x) a b",
            r"(?:^|\s)a\sb",
            r"x(?:^|\s)a",
            r"(?s)BEGIN.*END",
            r"(?is:BEGIN.*END)",
            r"a\nb",
            r"\W+",
            r"\p{Zs}",
            r"\x0a",
        ] {
            assert!(!single_line(p), "{p}");
        }
    }

    #[test]
    fn some_keyword_rules_get_an_implied_window() {
        let rules = builtin_rules();
        let implied = rules
            .iter()
            .filter(|r| r.window.is_none() && window_of(r).is_some())
            .count();
        // 163 when written: a pattern edit that makes many rules unreadable
        // as single-line (and so whole-text again) should be noticed.
        assert!(implied >= 150, "only {implied} rules have an implied window");
    }
}
