//! Cheap shape and entropy measures used to tell secrets from ordinary text.
//!
//! These only ever run on a candidate span a rule has already matched, so
//! they are deliberately simple byte loops with no allocation.

/// Shannon entropy of `s` in bits per byte (0.0 for the empty string).
///
/// Random base62/base64 material scores about 4.5–6; dictionary words and
/// repeated characters score low, which is why entropy floors separate
/// `hunter2xyz!` from `aaaaaaaa`.
pub fn shannon(s: &str) -> f64 {
    let bytes = s.as_bytes();
    if bytes.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for &b in bytes {
        counts[usize::from(b)] += 1;
    }
    let len = bytes.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = f64::from(c) / len;
            -p * p.log2()
        })
        .sum()
}

/// Which character classes occur in a string.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Classes {
    /// At least one ASCII uppercase letter.
    pub upper: bool,
    /// At least one ASCII lowercase letter.
    pub lower: bool,
    /// At least one ASCII digit.
    pub digit: bool,
    /// At least one character that is not an ASCII letter, digit or `_`.
    pub symbol: bool,
}

impl Classes {
    /// Classify every byte of `s`.
    pub fn of(s: &str) -> Classes {
        let mut c = Classes::default();
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' => c.upper = true,
                b'a'..=b'z' => c.lower = true,
                b'0'..=b'9' => c.digit = true,
                b'_' => {}
                _ => c.symbol = true,
            }
        }
        c
    }

    /// Upper, lower and digit all present: the shape of generated API keys.
    pub fn mixed_alnum(self) -> bool {
        self.upper && self.lower && self.digit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_table() {
        let cases: &[(&str, f64, f64)] = &[
            ("", 0.0, 0.0),
            ("aaaaaaaa", 0.0, 0.0),
            ("abababab", 1.0, 1.0),
            ("abcdefgh", 3.0, 3.0),
            ("wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ3vKd8pLm", 4.2, 6.0),
        ];
        for &(s, lo, hi) in cases {
            let e = shannon(s);
            assert!(e >= lo - 1e-9 && e <= hi + 1e-9, "{s:?} -> {e}");
        }
    }

    #[test]
    fn classes_table() {
        let cases: &[(&str, bool)] = &[("Ab1", true), ("abc1", false), ("ABC1", false), ("AbC", false)];
        for &(s, mixed) in cases {
            assert_eq!(Classes::of(s).mixed_alnum(), mixed, "{s}");
        }
        assert!(Classes::of("a-b").symbol);
        assert!(!Classes::of("a_b").symbol);
    }
}
