//! Where a windowed rule searches: the merged ranges around its anchor
//! occurrences (see [`Window`]), clipped to the anchor's line unless the
//! rule spans lines.

use crate::redact::rules::{Memo, Window};

/// The merged search windows around anchor occurrences `hits` (in any
/// order). Same-line windows are clipped to the anchor's line but include
/// the line break before it, which a rule's leading `(?:^|\s)` may
/// consume.
pub(super) fn windows(
    text: &str,
    hits: &[(usize, usize)],
    window: Window,
    memo: &Memo,
) -> Vec<(usize, usize)> {
    let floor = |mut i: usize| {
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let ceil = |mut i: usize| {
        while !text.is_char_boundary(i) {
            i += 1;
        }
        i
    };
    let mut out: Vec<(usize, usize)> = hits
        .iter()
        .filter(|&&(start, end)| window.filter.is_none_or(|f| f(text, start, end, memo)))
        .map(|&(start, end)| {
            let lo = floor(start.saturating_sub(window.before));
            let hi = ceil((end + window.after).min(text.len()));
            let (lo, hi) = if window.multiline {
                (lo, hi)
            } else {
                // Clip to the line: from the line break before `start`
                // (kept) to the one at or after `end`.
                let newlines = newlines(text, memo);
                let before = newlines.partition_point(|&n| n < start);
                let lo = before.checked_sub(1).map_or(lo, |k| newlines[k].max(lo));
                let after = newlines.partition_point(|&n| n < end);
                (lo, newlines.get(after).map_or(hi, |&n| n.min(hi)))
            };
            // A window cut inside a token would let `$` or `\b` match
            // there: run it on to the token's end.
            let cap = ceil((hi + 512).min(text.len()));
            (
                lo,
                text[hi..cap].find(char::is_whitespace).map_or(cap, |i| hi + i),
            )
        })
        .collect();
    out.sort_unstable();
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(out.len());
    for (lo, hi) in out {
        match merged.last_mut() {
            Some(last) if lo <= last.1 => last.1 = last.1.max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    merged
}

/// Whether two windows open the same ranges around the same hits.
pub(super) fn same_shape(a: &Window, b: &Window) -> bool {
    a.before == b.before && a.after == b.after && a.multiline == b.multiline
}

/// The byte offsets of `text`'s line breaks, once per text: every
/// same-line window is clipped to its anchor's line.
fn newlines<'m>(text: &str, memo: &'m Memo) -> &'m [usize] {
    memo.newlines
        .get_or_init(|| memchr::memchr_iter(b'\n', text.as_bytes()).collect())
}
