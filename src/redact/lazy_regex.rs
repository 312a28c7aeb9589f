//! Regexes compiled when first searched.
//!
//! The built-in rule set holds a few hundred regexes, most of which a given
//! server never needs: a rule only runs when its anchor (a keyword, a
//! vendor prefix) occurs in a message. Compiling all of them up front took
//! about 45 ms and 12 MB per process; compiling each on its first search
//! costs a message only the rules it actually reaches.

use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use regex::{Regex, RegexBuilder};

/// A regex and the pattern it is compiled from on first use.
#[derive(Clone, Debug)]
pub(super) struct LazyRegex {
    /// `None` for a regex compiled when the rule was made (custom rules,
    /// validated at start-up).
    pattern: Option<Arc<str>>,
    /// The lazy DFA's cache limit; the regex crate's default when `None`.
    dfa_size_limit: Option<usize>,
    compiled: OnceLock<Regex>,
}

impl LazyRegex {
    /// A built-in pattern, compiled on its first search. Built-in patterns
    /// are known to compile: `every_builtin_pattern_compiles` compiles
    /// every one of them in the test suite.
    pub(super) fn new(pattern: String, dfa_size_limit: Option<usize>) -> Self {
        Self {
            pattern: Some(pattern.into()),
            dfa_size_limit,
            compiled: OnceLock::new(),
        }
    }

    /// A regex already compiled (and so already validated).
    pub(super) fn compiled(regex: Regex) -> Self {
        Self {
            pattern: None,
            dfa_size_limit: None,
            compiled: OnceLock::from(regex),
        }
    }
}

impl LazyRegex {
    /// The compiled regex, compiling it now if this is its first use.
    pub(super) fn try_compile(&self) -> Result<&Regex, regex::Error> {
        if let Some(regex) = self.compiled.get() {
            return Ok(regex);
        }
        let mut builder = RegexBuilder::new(self.pattern.as_deref().unwrap_or_default());
        if let Some(limit) = self.dfa_size_limit {
            builder.dfa_size_limit(limit);
        }
        let regex = builder.build()?;
        // Another thread may have compiled it meanwhile; either copy serves.
        Ok(self.compiled.get_or_init(|| regex))
    }
}

impl Deref for LazyRegex {
    type Target = Regex;

    fn deref(&self) -> &Regex {
        self.try_compile()
            .expect("built-in redaction pattern compiles (checked by every_builtin_pattern_compiles)")
    }
}
