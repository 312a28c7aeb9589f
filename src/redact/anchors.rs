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
    /// must occur; the rule then scans the whole text.
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
    /// Per rule: whether it wants the positions of its anchors.
    windowed: Vec<bool>,
    /// Number of rules indexed.
    rules: usize,
}

/// What one anchor scan found.
pub struct Candidates {
    /// `run[i]`: rule `i` may match.
    pub run: Vec<bool>,
    /// `hits[i]`: byte ranges of rule `i`'s anchor occurrences (windowed
    /// rules only; empty for the others).
    pub hits: Vec<Vec<(usize, usize)>>,
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

/// A token character: what API keys, hashes and ids are made of.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// The length of the longest run of token characters in `text`, or
/// `enough` as soon as a run that long is seen.
fn longest_run(text: &str, enough: usize) -> usize {
    let mut longest = 0;
    let mut len = 0;
    for &b in text.as_bytes() {
        if is_token_byte(b) {
            len += 1;
            if len > longest {
                longest = len;
                if longest >= enough {
                    break;
                }
            }
        } else {
            len = 0;
        }
    }
    longest
}

impl Anchors {
    /// Index `per_rule[i]`, the anchor of rule `i`. A keyword list that is
    /// empty or has a one-character keyword (`-`, `(`: present in nearly
    /// every text, so no filter at all) makes the rule always run.
    /// `windowed[i]` asks for the positions of rule `i`'s anchors.
    pub fn new(per_rule: &[Anchor], windowed: &[bool]) -> Anchors {
        let mut patterns: Vec<String> = Vec::new();
        let mut owners: Vec<Vec<usize>> = Vec::new();
        let mut always = Vec::new();
        let mut run_rules = Vec::new();
        let mut windowed = windowed.to_vec();
        for (rule, anchor) in per_rule.iter().enumerate() {
            let words = match *anchor {
                Anchor::Keywords(words)
                    if !words.is_empty() && words.iter().all(|w| w.chars().count() > 1) =>
                {
                    words
                }
                Anchor::Run(min) => {
                    run_rules.push((rule, min));
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
            windowed,
            rules: per_rule.len(),
        }
    }

    /// Which rules may match `text`, and where the anchors of windowed
    /// rules occur.
    pub fn candidates(&self, text: &str) -> Candidates {
        let mut run = vec![false; self.rules];
        let mut hits: Vec<Vec<(usize, usize)>> = vec![Vec::new(); self.rules];
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
            for &rule in &self.owners[id] {
                if self.windowed[rule] {
                    hits[rule].push((m.start(), m.end()));
                }
            }
            pos = m.start() + 1;
        }
        if let Some(enough) = self.run_rules.iter().map(|&(_, min)| min).max() {
            let longest = longest_run(text, enough);
            for &(rule, min) in &self.run_rules {
                run[rule] = longest >= min;
            }
        }
        Candidates { run, hits }
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
        assert_eq!(c.hits, [vec![], vec![(2, 14), (19, 31)], vec![], vec![], vec![]]);
    }

    #[test]
    fn longest_run_stops_when_long_enough() {
        assert_eq!(longest_run("ab cdef-gh_ij x", 99), 10);
        assert_eq!(longest_run("abcdefgh", 4), 4);
        assert_eq!(longest_run("a.b", 4), 1);
    }
}
