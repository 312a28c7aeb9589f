//! Credentials in tables: a Markdown (or any pipe-delimited) table whose
//! header names a secret column (`| user | password |`), and the value in
//! that column of every row below it.
//!
//! The header is what says "password"; the cells themselves have no key
//! next to them, so no key/value rule can see them. Escaped pipes (`\|`)
//! inside a cell are not supported: the cell is cut there.

use std::cell::Cell;

use super::family::{Strength, family_of};
use super::{Found, Hit, Memo, Prefilter, RuleSpec, TableRow, Window};
use crate::redact::heuristics::{ValueContext, plausible_secret_value, token_shaped};

const CELL: ValueContext = ValueContext {
    quoted: true,
    literal: true,
    code: false,
};

/// `|---|:--:|` and the like.
fn is_separator(line: &str) -> bool {
    let t = match (pipe_start(line), line.rfind('|')) {
        (Some(a), Some(b)) => &line[a..=b],
        _ => line.trim(),
    };
    let dashes = t.bytes().filter(|&c| c == b'-').count();
    dashes >= 2
        && (t.contains('|') || dashes >= 3)
        && t.bytes()
            .all(|c| matches!(c, b'|' | b'-' | b':' | b' ' | b'\t' | b'+'))
}

/// Where a table line's first `|` is: after indentation, or a short
/// prefix with no letters or digits (a blockquote's `> `, a quote).
fn pipe_start(line: &str) -> Option<usize> {
    let i = line.find('|')?;
    let prefix = &line[..i];
    (prefix.chars().count() <= 4 && !prefix.chars().any(char::is_alphanumeric)).then_some(i)
}

/// The cells of a pipe-delimited line, as absolute byte ranges (outer
/// pipes dropped, cells trimmed).
fn cells(hay: &str, line: std::ops::Range<usize>) -> Vec<std::ops::Range<usize>> {
    let text = &hay[line.clone()];
    let Some(first) = pipe_start(text) else {
        return Vec::new();
    };
    let body_start = line.start + first + 1;
    let body = &text[first + 1..];
    let body = body.rfind('|').map_or(body, |i| &body[..i]);
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = body.as_bytes();
    for i in 0..=bytes.len() {
        let end = i == bytes.len();
        if end || (bytes[i] == b'|' && (i == 0 || bytes[i - 1] != b'\\')) {
            let cell = &body[start..i];
            // A blank cell is an empty range at its end, never an
            // inverted one (`|   |` once panicked the slicing below).
            let lead = cell.len() - cell.trim_start().len();
            let from = body_start + start + lead;
            out.push(from..from + cell.trim().len());
            start = i + 1;
        }
    }
    out
}

/// The line of `hay` containing `pos`, without its line break.
fn line_at(hay: &str, pos: usize) -> std::ops::Range<usize> {
    let start = hay[..pos].rfind('\n').map_or(0, |i| i + 1);
    let end = hay[pos..].find('\n').map_or(hay.len(), |i| pos + i);
    let end = if hay[..end].ends_with('\r') { end - 1 } else { end };
    start..end
}

/// The header line of the table row starting at `row_start`: walk up
/// through rows to the separator and take the line above it. The walk
/// stops early at the row `memo` holds (the previous cell's row, usually
/// the same row or the one just above): the rest of the walk from there
/// is the one already done, so its header is the answer.
fn header_of(hay: &str, row_start: usize, memo: &Cell<Option<TableRow>>) -> Option<std::ops::Range<usize>> {
    let known = memo.get();
    let mut above = row_start;
    let header = loop {
        if let Some((start, header)) = known
            && start == above
        {
            break header;
        }
        if above == 0 {
            break None;
        }
        let prev = line_at(hay, above - 1);
        let text = &hay[prev.clone()];
        if is_separator(text) {
            if prev.start == 0 {
                break None;
            }
            let line = line_at(hay, prev.start - 1);
            break Some((line.start, line.end));
        }
        if pipe_start(text).is_none() {
            break None;
        }
        above = prev.start;
    };
    memo.set(Some((row_start, header)));
    header.map(|(start, end)| start..end)
}

/// A cell of a data row: find the table's header (the line above the
/// separator, walking up through rows) and judge the cell when its
/// column's header names a secret. Every cell is its own match, so a
/// row with a password and a token column loses both.
fn classify(h: &Hit<'_>) -> Option<Found> {
    let hay = h.haystack;
    let cell_text = h.caps.get(1)?;
    let row = line_at(hay, cell_text.start());
    let (column, cell) = {
        let mut split = h.memo.table_cells.borrow_mut();
        if split.as_ref().is_none_or(|(start, _, _)| *start != row.start) {
            let separator = is_separator(&hay[row.clone()]);
            let row_cells = if separator {
                Vec::new()
            } else {
                cells(hay, row.clone())
            };
            *split = Some((row.start, separator, row_cells));
        }
        let (_, separator, row_cells) = split.as_ref()?;
        if *separator {
            return None;
        }
        let column = row_cells
            .iter()
            .position(|c| c.start >= cell_text.start() && c.end <= cell_text.end())?;
        (column, row_cells[column].clone())
    };
    let header = header_of(hay, row.start, &h.memo.table_row)?;
    let (kind, strength) = column_family(hay, header, column, h.memo)?;
    // Inline code and emphasis are formatting, not part of the value.
    let text = &hay[cell.clone()];
    let strip = text.len() - text.trim_start_matches(['`', '*']).len();
    let v = text.trim_matches(['`', '*']);
    let ok = match strength {
        Strength::Strong | Strength::Auth => plausible_secret_value(v, CELL),
        Strength::Weak => token_shaped(v),
    };
    if !ok || v.is_empty() || v.contains(char::is_whitespace) {
        return None;
    }
    let start = cell.start + strip;
    Some(Found {
        kind,
        range: start..start + v.len(),
    })
}

/// The secret family the name of column `column` of the table whose
/// header line is `header` says, if any. Named once per table (`memo`),
/// not once per cell.
fn column_family(
    hay: &str,
    header: std::ops::Range<usize>,
    column: usize,
    memo: &Memo,
) -> Option<(&'static str, Strength)> {
    with_columns(hay, header, memo, |families| {
        families.get(column).copied().flatten()
    })
}

/// `f` of the families the columns of the header line `header` name,
/// named once per table (the header filter and every cell below ask).
fn with_columns<T>(
    hay: &str,
    header: std::ops::Range<usize>,
    memo: &Memo,
    f: impl FnOnce(&[Option<(&'static str, Strength)>]) -> T,
) -> T {
    let mut known = memo.table_columns.borrow_mut();
    if known.as_ref().is_none_or(|(start, _)| *start != header.start) {
        let families = cells(hay, header.clone())
            .into_iter()
            .map(|col| name_family(&hay[col]))
            .collect();
        *known = Some((header.start, families));
    }
    f(known.as_ref().map_or(&[], |(_, families)| families.as_slice()))
}

/// The secret family a column name says (`**API key**` as `API_key`).
fn name_family(name: &str) -> Option<(&'static str, Strength)> {
    family_of(&name.trim_matches(['*', '`', '_', ' ']).replace(' ', "_"))
}

/// A Markdown table's header line holds the anchor: open windows only
/// for anchors on a line that starts with `|`, is followed by a
/// separator line and names a secret column (a docs table whose header
/// says `keyword` or `Token budget` has no cell to judge).
fn header_follows(text: &str, start: usize, _end: usize, memo: &Memo) -> bool {
    let line = line_at(text, start);
    if pipe_start(&text[line.clone()]).is_none() || line.end >= text.len() {
        return false;
    }
    let next = line_at(text, (line.end + 1).min(text.len()));
    let next = if text[line.end..].starts_with("\r\n") {
        line_at(text, (line.end + 2).min(text.len()))
    } else {
        next
    };
    is_separator(&text[next])
        && with_columns(text, line, memo, |families| families.iter().any(Option::is_some))
}

/// The table rule.
pub fn rules() -> Vec<RuleSpec> {
    vec![RuleSpec {
        kind: "secret",
        // One cell: its pipe, then its text (group 1).
        regex: r"\|([^|\n]*)".into(),
        group: 0,
        entropy_min: None,
        prefilter: Prefilter::Keywords(&["pass", "pwd", "token", "secret", "key", "cred"]),
        check: None,
        classify: Some(classify),
        window: Some(Window {
            before: 0,
            after: 8192,
            multiline: true,
            filter: Some(header_follows),
        }),
        parse: None,
    }]
}
