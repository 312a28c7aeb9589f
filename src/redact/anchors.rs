//! The one-pass prefilter: which rules can possibly match a text, and
//! where.
//!
//! A rule is anchored either on literal keywords (`ghp_`, `-----begin`,
//! `password`, ...) or on a long run of token characters (a 32-character
//! hex key, a base58 private key: shapes with no literal in them). All
//! keywords of all rules go into one Aho-Corasick automaton, matched
//! ASCII-case-insensitively in a single scan; token runs are found by one
//! byte loop. A rule runs only when one of its anchors occurs, and a
//! windowed rule only around the occurrences (see [`Window`]). A message
//! without secret-ish words costs these two scans and nothing else.
//!
//! This replaced a `regex::RegexSet` of per-rule keyword alternations: an
//! overlapping set search over 50 KB cost about 5 ms (the set's lazy DFA is
//! large and it has to track every pattern to the end of the text), the
//! automaton costs well under 0.1 ms.
//!
//! [`Window`]: crate::redact::rules::Window

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, Input, MatchKind};

/// What a rule is anchored on.
#[derive(Debug, Clone, Copy)]
pub enum Anchor {
    /// One of these literals (ASCII case-insensitive) must occur.
    Keywords(&'static [&'static str]),
    /// A run of at least this many token characters (`[A-Za-z0-9_-]`)
    /// must occur; a windowed rule then searches around such runs.
    Run(usize),
    /// No anchor: the rule always runs over the whole text.
    None,
}

/// A compiled anchor index over a rule table.
pub struct Anchors {
    /// Every distinct keyword (and case variants of non-ASCII ones).
    ac: AhoCorasick,
    /// Pattern id -> indices of the rules it anchors.
    owners: Vec<Vec<usize>>,
    /// Rules with no usable anchor: they always run.
    always: Vec<usize>,
    /// Rules anchored on token runs, with their minimum run length.
    run_rules: Vec<(usize, usize)>,
    /// Per rule: whether it is a run rule that searches around runs.
    run_windows: Vec<bool>,
    /// Per windowed rule: the pattern ids whose occurrences open its
    /// windows (empty for the other rules).
    rule_patterns: Vec<Vec<usize>>,
    /// Number of rules indexed.
    rules: usize,
}

/// What one anchor scan found.
pub struct Candidates<'a> {
    /// `run[i]`: rule `i` may match.
    pub run: Vec<bool>,
    /// Byte ranges of each keyword's occurrences, by pattern id: kept once
    /// per keyword, not once per rule it anchors (`key` anchors dozens).
    by_pattern: Vec<Vec<(usize, usize)>>,
    /// See [`Anchors::rule_patterns`].
    rule_patterns: &'a [Vec<usize>],
    /// Token runs at least as long as the shortest a run rule needs.
    runs: Vec<(usize, usize)>,
    /// See [`Anchors::run_windows`].
    run_windows: &'a [bool],
}

impl Candidates<'_> {
    /// Whether `rule` searches around token runs: every such rule gets
    /// the same runs (those long enough for the least demanding one), so
    /// their windows can be computed once.
    pub fn on_runs(&self, rule: usize) -> bool {
        self.run_windows[rule]
    }

    /// Byte ranges of rule `rule`'s anchor occurrences, in no particular
    /// order (windowed rules only; empty for the others).
    pub fn hits(&self, rule: usize) -> Vec<(usize, usize)> {
        if self.run_windows[rule] {
            return self.runs.clone();
        }
        let ids = &self.rule_patterns[rule];
        let mut out = Vec::with_capacity(ids.iter().map(|&id| self.by_pattern[id].len()).sum());
        for &id in ids {
            out.extend_from_slice(&self.by_pattern[id]);
        }
        out
    }
}

/// Case variants of a keyword the ASCII folding of the automaton misses:
/// `пароль`, `ПАРОЛЬ`, `Пароль`.
fn variants(word: &str) -> Vec<String> {
    let lower = word.to_lowercase();
    if lower.is_ascii() {
        return vec![lower];
    }
    let mut out = vec![lower.clone(), word.to_uppercase()];
    let mut chars = lower.chars();
    if let Some(first) = chars.next() {
        out.push(first.to_uppercase().chain(chars).collect());
    }
    out.sort();
    out.dedup();
    out
}

/// Token characters (`[A-Za-z0-9_-]`): what API keys, hashes and ids are
/// made of. A table: the run scan looks at every byte of every message.
static TOKEN_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
        i += 1;
    }
    table
};

/// The byte ranges of the maximal runs of token characters in `text` at
/// least `min` long.
///
/// Every message is scanned, so the scan skips: a run of `min` that
/// starts at or after `from` covers byte `from + min - 1`, so when that
/// byte is not a token character the next `min` bytes are ruled out at
/// once. Prose, code and JSON have short words, and most bytes are never
/// looked at (a byte-by-byte loop cost about 10 instructions a byte).
fn long_runs(text: &str, min: usize) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let is_token = |i: usize| TOKEN_BYTE[usize::from(bytes[i])];
    let min = min.max(1);
    let mut out = Vec::new();
    // No run of `min` starts before `from`, and the byte before `from`
    // (if any) is not a token character.
    let mut from = 0;
    while from + min <= bytes.len() {
        let probe = from + min - 1;
        if !is_token(probe) {
            from = probe + 1;
            continue;
        }
        let mut start = probe;
        while start > from && is_token(start - 1) {
            start -= 1;
        }
        let mut end = probe + 1;
        while end < bytes.len() && is_token(end) {
            end += 1;
        }
        if end - start >= min {
            out.push((start, end));
        }
        // Past the byte that ended the run (or the text).
        from = end + 1;
    }
    out
}

impl Anchors {
    /// Index `per_rule[i]`, the anchor of rule `i`. A keyword list that is
    /// empty or has a one-byte keyword (`-`, `(`: present in nearly every
    /// text, so no filter at all) makes the rule always run; a
    /// one-character keyword outside ASCII (`키`) is a fine anchor.
    /// `windowed[i]` asks for the positions of rule `i`'s anchors.
    pub fn new(per_rule: &[Anchor], windowed: &[bool]) -> Anchors {
        let mut patterns: Vec<String> = Vec::new();
        let mut owners: Vec<Vec<usize>> = Vec::new();
        let mut always = Vec::new();
        let mut run_rules = Vec::new();
        let mut run_windows = vec![false; per_rule.len()];
        let mut windowed = windowed.to_vec();
        for (rule, anchor) in per_rule.iter().enumerate() {
            let words = match *anchor {
                Anchor::Keywords(words) if !words.is_empty() && words.iter().all(|w| w.len() > 1) => words,
                Anchor::Run(min) => {
                    run_rules.push((rule, min));
                    run_windows[rule] = windowed[rule];
                    windowed[rule] = false;
                    continue;
                }
                _ => {
                    always.push(rule);
                    windowed[rule] = false;
                    continue;
                }
            };
            for word in words {
                for variant in variants(word) {
                    match patterns.iter().position(|p| *p == variant) {
                        Some(id) => {
                            if !owners[id].contains(&rule) {
                                owners[id].push(rule);
                            }
                        }
                        None => {
                            patterns.push(variant);
                            owners.push(vec![rule]);
                        }
                    }
                }
            }
        }
        // The scan reports, at each position where keywords start, only
        // the longest; the shorter ones starting there are its prefixes,
        // so a keyword's occurrence also counts for its prefixes' rules.
        let mut owners_closed = owners.clone();
        for (i, p) in patterns.iter().enumerate() {
            for (j, q) in patterns.iter().enumerate() {
                if i != j && p.len() > q.len() && p.starts_with(q.as_str()) {
                    for &rule in &owners[j] {
                        if !owners_closed[i].contains(&rule) {
                            owners_closed[i].push(rule);
                        }
                    }
                }
            }
        }
        let owners = owners_closed;
        let mut rule_patterns = vec![Vec::new(); per_rule.len()];
        for (id, rules) in owners.iter().enumerate() {
            for &rule in rules {
                if windowed[rule] {
                    rule_patterns[rule].push(id);
                }
            }
        }
        let ac = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&patterns)
            .expect("anchor automaton builds");
        Anchors {
            ac,
            owners,
            always,
            run_rules,
            run_windows,
            rule_patterns,
            rules: per_rule.len(),
        }
    }

    /// Which rules may match `text`, and where the anchors of windowed
    /// rules occur.
    pub fn candidates(&self, text: &str) -> Candidates<'_> {
        let mut run = vec![false; self.rules];
        let mut by_pattern: Vec<Vec<(usize, usize)>> = vec![Vec::new(); self.owners.len()];
        for &rule in &self.always {
            run[rule] = true;
        }
        let mut seen = vec![false; self.owners.len()];
        // Leftmost-longest from every keyword start: a non-overlapping scan
        // restarted one byte after each match's start sees every position
        // where a keyword starts (an overlapping scan cannot use the
        // automaton's prefilter and costs several times more).
        let mut pos = 0;
        while let Some(m) = self.ac.find(Input::new(text).span(pos..text.len())) {
            let id = m.pattern().as_usize();
            if !seen[id] {
                seen[id] = true;
                for &rule in &self.owners[id] {
                    run[rule] = true;
                }
            }
            by_pattern[id].push((m.start(), m.end()));
            pos = m.start() + 1;
        }
        let mut runs = Vec::new();
        if let Some(shortest) = self.run_rules.iter().map(|&(_, min)| min).min() {
            runs = long_runs(text, shortest);
            let longest = runs.iter().map(|&(s, e)| e - s).max().unwrap_or(0);
            for &(rule, min) in &self.run_rules {
                run[rule] = longest >= min;
            }
        }
        Candidates {
            run,
            by_pattern,
            rule_patterns: &self.rule_patterns,
            runs,
            run_windows: &self.run_windows,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_select_rules() {
        let idx = Anchors::new(
            &[
                Anchor::Keywords(&["ghp_", "github_pat_"]),
                Anchor::Keywords(&["пароль"]),
                Anchor::Keywords(&["-"]),
                Anchor::None,
                Anchor::Run(8),
            ],
            &[false, true, true, false, false],
        );
        assert_eq!(
            idx.candidates("nothing here").run,
            [false, false, true, true, false]
        );
        assert_eq!(idx.candidates("GHP_x").run, [true, false, true, true, false]);
        assert_eq!(idx.candidates("Пароль: x").run, [false, true, true, true, false]);
        let c = idx.candidates("a ПАРОЛЬ: x, пароль a1b2c3d4e5");
        assert_eq!(c.run, [false, true, true, true, true]);
        // Positions only for windowed rules with anchors (`-` is no anchor).
        let hits: Vec<_> = (0..5)
            .map(|r| {
                let mut h = c.hits(r);
                h.sort_unstable();
                h
            })
            .collect();
        assert_eq!(hits, [vec![], vec![(2, 14), (19, 31)], vec![], vec![], vec![]]);
    }

    /// [`long_runs`] against the byte-by-byte scan it replaced, on texts
    /// of runs of every length around `min`.
    #[test]
    fn long_runs_match_a_byte_by_byte_scan() {
        fn reference(text: &str, min: usize) -> Vec<(usize, usize)> {
            let b = text.as_bytes();
            let mut out = Vec::new();
            let mut i = 0;
            while i < b.len() {
                let start = i;
                while i < b.len() && TOKEN_BYTE[usize::from(b[i])] {
                    i += 1;
                }
                if i - start >= min.max(1) {
                    out.push((start, i));
                }
                i += 1;
            }
            out
        }
        let mut seed: u64 = 0x12u64;
        for _ in 0..3000 {
            let mut text = String::new();
            while text.len() < 200 {
                crate::redact::tests::next_random(&mut seed);
                let len = (seed >> 33) as usize % 30;
                let sep = [" ", ".", "\n", "é", "/", "=", "  "][(seed >> 20) as usize % 7];
                text.push_str(&"a_-Z9".repeat(6)[..len]);
                text.push_str(sep);
            }
            for min in [1, 2, 5, 16, 24, 27, 50] {
                assert_eq!(
                    long_runs(&text, min),
                    reference(&text, min),
                    "min {min}: {text:?}"
                );
            }
        }
    }

    #[test]
    fn long_runs_are_maximal_and_long_enough() {
        assert_eq!(long_runs("ab cdef-gh_ij x", 3), [(3, 13)]);
        assert_eq!(long_runs("abcdefgh", 4), [(0, 8)]);
        assert_eq!(long_runs("a.b", 2), []);
        assert_eq!(long_runs("abc.", 3), [(0, 3)]);
        assert_eq!(long_runs("", 1), []);
    }
}
