//! Heuristics that decide whether a value found next to a key such as
//! `password` or `api_key` is a real secret or ordinary developer text
//! (a template variable, a placeholder, a type name, a code expression…).
//!
//! Context rules ("the thing after `password=`") are where secret scanners
//! either miss a lot or mangle a lot; keeping the decision in one small,
//! table-tested module makes the trade-off explicit.

mod words;

use crate::redact::entropy::{Classes, shannon};
use words::{
    CMDLET_VERBS, PLACEHOLDER_FINDER, PLACEHOLDER_WORDS, PROSE_WORDS, REFERENCE_PREFIXES, TEMPLATE_FINDER,
};

/// True when `v` refers to a secret instead of being one: a secret-store
/// reference (`vault:secret/data/db#password`, `op://vault/item/field`,
/// `projects/p/secrets/s/versions/latest`), or a list of `name=value`
/// settings that says where the secret comes from
/// (`--secret id=npmrc,src=$HOME/.npmrc`, `type=secret,id=aws`).
pub fn is_reference(v: &str) -> bool {
    let lower = v.to_ascii_lowercase();
    if REFERENCE_PREFIXES.iter().any(|p| lower.starts_with(p))
        || (lower.starts_with("projects/") && lower.contains("/secrets/"))
    {
        return true;
    }
    let settings = |part: &str| {
        part.split_once('=').is_some_and(|(name, _)| {
            !name.is_empty() && name.len() <= 12 && name.bytes().all(|c| c.is_ascii_lowercase() || c == b'_')
        })
    };
    // One such setting is enough: a `name=value` cut at `,src=` by the
    // value's end (`id=npmrc`).
    v.split(',').all(settings)
        && v.split(',').any(|p| {
            let name = p.split('=').next().unwrap_or("");
            matches!(
                name,
                "id" | "src" | "source" | "env" | "type" | "target" | "dst" | "required"
            )
        })
}

/// True when `v` is a placeholder, template or variable reference rather
/// than a literal credential.
pub fn is_placeholder(v: &str) -> bool {
    let v = v.trim();
    if v.is_empty() {
        return true;
    }
    if is_reference(v) {
        return true;
    }
    let lower = v.to_ascii_lowercase();
    if PLACEHOLDER_WORDS.contains(&lower.as_str()) {
        return true;
    }
    if TEMPLATE_FINDER.is_match(v) || PLACEHOLDER_FINDER.is_match(v) || angle_placeholder(v) {
        return true;
    }
    // `$VAR`, `%VAR%`, YAML tags such as `!vault`.
    let b = v.as_bytes();
    if b[0] == b'$' && b.get(1).is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_') {
        return true;
    }
    if b.len() > 2 && b[0] == b'%' && b[b.len() - 1] == b'%' {
        return true;
    }
    // `{token}` (f-strings, format strings, route params), `:password`
    // (SQL bind parameters, Ruby symbols), `@password` (T-SQL variables).
    if b.len() > 2 && b[0] == b'{' && b[b.len() - 1] == b'}' && is_identifier(&v[1..v.len() - 1]) {
        return true;
    }
    if b.len() > 1 && matches!(b[0], b':' | b'@') && is_identifier(&v[1..]) {
        return true;
    }
    if b[0] == b'!' {
        return true;
    }
    // `xxxxxx`, `******`, `XXXX-XXXX`, `------`.
    let first = b[0].to_ascii_lowercase();
    if b.iter()
        .all(|c| c.to_ascii_lowercase() == first || matches!(c, b'-' | b'_' | b'.'))
    {
        return true;
    }
    b.iter()
        .all(|c| matches!(c, b'*' | b'x' | b'X' | b'.' | b'-' | b'_' | b'#' | b'?'))
}

/// `<password>`, `<YOUR TOKEN>`, `<db-pass`, `x>`: an angle-bracketed
/// name, or a value that starts or ends with a bracket. Random key
/// material (WordPress salts, generated passwords) may contain `<` and
/// `>` with symbols between them (`F<,_m7:^zP>[`), which is no name.
fn angle_placeholder(v: &str) -> bool {
    if v.starts_with('<') || v.ends_with('>') {
        return true;
    }
    let b = v.as_bytes();
    let mut open = None;
    for (i, &c) in b.iter().enumerate() {
        match c {
            b'<' => open = Some(i),
            b'>' => {
                if let Some(o) = open
                    && i > o + 1
                    && b[o + 1..i]
                        .iter()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b' ' | b'_' | b'-' | b'.'))
                {
                    return true;
                }
                open = None;
            }
            _ => {}
        }
    }
    false
}

/// `1.2.3`, `v1.2.3-rc.1`: a version, not a credential.
pub fn is_version(v: &str) -> bool {
    let core = v.strip_prefix(['v', 'V']).unwrap_or(v);
    let core = core.split(['-', '+']).next().unwrap_or(core);
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() >= 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
}

/// Keys vendors publish to browsers on purpose (Stripe `pk_live_`, Mapbox
/// `pk.eyJ…`): public by design, redacting them hides nothing.
pub fn is_publishable(v: &str) -> bool {
    ["pk_live_", "pk_test_", "pk.eyJ", "FLWPUBK"]
        .iter()
        .any(|p| v.starts_with(p))
}

/// True for filesystem paths and URLs, which follow keys like `private_key:`
/// far more often than inline key material does.
pub fn is_path_or_url(v: &str) -> bool {
    // Base64 may start with `/` too; paths have no `+`, no `=` padding and
    // no 21+ character segment of bare letters and digits.
    // Random base64 also has short mixed-case segments with digits
    // (`/2hwct9kKx/vS9kvxlI/5mH0…`); path segments are names, mostly
    // lower-case.
    let mixed_segments = v
        .split('/')
        .filter(|seg| {
            !seg.is_empty()
                && seg.bytes().all(|c| c.is_ascii_alphanumeric())
                && Classes::of(seg).mixed_alnum()
        })
        .count();
    let upper = v.bytes().filter(u8::is_ascii_uppercase).count();
    let base64ish = v.contains('+')
        || v.ends_with('=')
        || v.split('/')
            .any(|seg| seg.len() > 20 && seg.bytes().all(|c| c.is_ascii_alphanumeric()))
        || mixed_segments >= 3
        || (mixed_segments >= 2 && upper * 8 >= v.len());
    (v.starts_with('/') && !base64ish)
        || v.starts_with("~/")
        || v.starts_with("./")
        || v.starts_with("../")
        || v.starts_with("file:")
        || v.contains("://")
        || [".pem", ".key", ".json", ".txt", ".p12", ".pfx", ".crt", ".env"]
            .iter()
            .any(|ext| v.to_ascii_lowercase().ends_with(ext))
}

/// True for unquoted values that are code, not literals: dotted paths
/// (`process.env.X`, `settings.SECRET_KEY`), calls, indexing, `::` paths.
pub fn is_code_expression(v: &str) -> bool {
    if v.contains("::") || v.contains("->") {
        return true;
    }
    let mut segments = 0;
    for seg in v.split('.') {
        // A segment no one would name a field: a dotted token
        // (`pat.oYI4_09Gia….e1AjAPy055…`), not `settings.SECRET_KEY`.
        if random_segment(seg) {
            return false;
        }
        let ok = seg
            .bytes()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_' || c == b'$')
            && seg
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'$');
        if !ok {
            return false;
        }
        segments += 1;
    }
    segments >= 2
}

/// 16+ characters with two or more each of upper case, lower case and
/// digits and high entropy: generated, not an identifier.
fn random_segment(seg: &str) -> bool {
    let count = |f: fn(&u8) -> bool| seg.as_bytes().iter().filter(|c| f(c)).count();
    seg.len() >= 16
        && count(u8::is_ascii_uppercase) >= 2
        && count(u8::is_ascii_lowercase) >= 2
        && count(u8::is_ascii_digit) >= 2
        && shannon(seg) >= 3.5
}

/// True for unquoted code that calls or indexes: `getpass.getpass()`,
/// `os.environ["X"]` (cut at the quote: `os.environ[`), `kwargs.get(`.
pub fn is_call_or_index(v: &str) -> bool {
    let head = v
        .bytes()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'$' | b'.' | b':'))
        .count();
    head > 0
        && v.as_bytes()[0].is_ascii_alphabetic()
        && matches!(v.as_bytes().get(head), Some(b'(' | b'['))
        && v[..head].bytes().any(|c| c.is_ascii_alphabetic())
}

/// True when `v` looks like generated key material on its own: 16 to 1024
/// characters of a token alphabet, letters and digits, at least 3 bits of
/// entropy per character, and not a placeholder, path, URL, version or
/// code expression. Used where the context alone is weak (a bare `key`,
/// a signature parameter, `token <value>` in prose).
pub fn token_shaped(v: &str) -> bool {
    let n = v.len();
    if !(16..=1024).contains(&n) || is_placeholder(v) || is_path_or_url(v) || is_code_expression(v) {
        return false;
    }
    if !v.bytes().all(|c| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'+' | b'/'
                    | b'='
                    | b'_'
                    | b'-'
                    | b'.'
                    | b'~'
                    | b'%'
                    | b':'
                    | b'!'
                    | b'@'
                    | b'#'
                    | b'$'
                    | b'^'
                    | b'*'
                    | b'&'
            )
    }) {
        return false;
    }
    let lower = v.to_ascii_lowercase();
    // `raw/2026/11/events-0001.parquet`: an object key or file name.
    let ext = lower.rsplit_once('.').map_or("", |(_, e)| e);
    if (1..=8).contains(&ext.len()) && ext.bytes().all(|c| c.is_ascii_lowercase()) && lower.contains('/') {
        return false;
    }
    if ["sha1", "sha256", "sha384", "sha512", "md5"]
        .iter()
        .any(|p| lower.starts_with(p))
    {
        return false;
    }
    let c = Classes::of(v);
    if (c.upper || c.lower) && c.digit {
        return shannon(v) >= 3.0;
    }
    // No digit: random mixed case (about half upper-case letters), not a
    // camelCase identifier (a capital per word, well under a quarter).
    let upper = v.bytes().filter(u8::is_ascii_uppercase).count();
    c.upper && c.lower && n >= 20 && shannon(v) >= 4.0 && upper * 4 >= n && upper * 4 <= n * 3
}

/// True for a PowerShell cmdlet name (`Read-Host`, `Get-Content`,
/// `ConvertTo-SecureString`): the value is a command's output, not a
/// literal.
pub fn is_cmdlet(v: &str) -> bool {
    let Some((verb, noun)) = v.split_once('-') else {
        return false;
    };
    CMDLET_VERBS.contains(&verb.to_ascii_lowercase().as_str())
        && noun.len() >= 3
        && noun.as_bytes()[0].is_ascii_uppercase()
        && noun.bytes().all(|c| c.is_ascii_alphabetic())
}

/// True for `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_identifier(v: &str) -> bool {
    let b = v.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// True when a string containing spaces reads as a sentence (UI strings in
/// i18n files: `"password": "Password must be at least 8 characters"`).
pub fn is_prose(v: &str) -> bool {
    let mut words = 0;
    for w in v.split_whitespace() {
        words += 1;
        let w = w
            .trim_matches(|c: char| !c.is_ascii_alphanumeric())
            .to_ascii_lowercase();
        if PROSE_WORDS.contains(&w.as_str()) {
            return true;
        }
    }
    // Five plain words read as a sentence; a passphrase has digits or symbols.
    words > 4 && v.bytes().all(|c| c.is_ascii_alphabetic() || c == b' ')
}

/// Every word of a key name, split on non-alphanumerics and camelCase,
/// lower-cased: `dbPassword_b64` -> `["db", "password", "b64"]`. The
/// reference for the allocation-free split in `rules/family.rs`.
#[cfg(test)]
pub fn key_words(key: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut prev_lower = false;
    for c in key.chars() {
        if !c.is_ascii_alphanumeric() {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            prev_lower = false;
            continue;
        }
        if c.is_ascii_uppercase() && prev_lower && !cur.is_empty() {
            words.push(std::mem::take(&mut cur));
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        cur.push(c.to_ascii_lowercase());
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// How the value was written next to its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValueContext {
    /// Inside `"..."` or `'...'`: a string literal, never a variable.
    pub quoted: bool,
    /// A config-file line (`KEY=value`, `export KEY=value`, `key: value` at
    /// line start, `- KEY=value`): bare words are literals here.
    pub literal: bool,
    /// Looks like code (`f(password=pw,`): bare identifiers are variables.
    pub code: bool,
}

/// Decide whether `value`, found after a secret-ish key, is a credential.
///
/// Rules, in order: placeholders/templates/paths never are; quoted prose
/// never is; unquoted code expressions and identifiers in code never are;
/// letters-only words need a literal context, 8+ characters and not be a
/// known placeholder word; everything needs 6+ characters and a little
/// entropy (so `aaaaaaaa` and `111111` stay).
pub fn plausible_secret_value(value: &str, ctx: ValueContext) -> bool {
    let v = value.trim();
    if v.len() < 6 || is_placeholder(v) || is_path_or_url(v) || is_publishable(v) || is_version(v) {
        return false;
    }
    if v.contains(char::is_whitespace) && (!ctx.quoted || is_prose(v)) {
        return false;
    }
    if !ctx.quoted {
        if is_code_expression(v) || is_call_or_index(v) || is_cmdlet(v) {
            return false;
        }
        // An identifier in code is a variable, unless it is mixed-case
        // alphanumeric noise no one names a variable (`QgXGXGLvbfoa9Ap`).
        // Nor one that is mostly digits and letters of a long hex or
        // base-36 string (`b9a1024ae34c…`).
        let digits = v.bytes().filter(u8::is_ascii_digit).count();
        let numeric_noise = v.len() >= 16 && digits * 4 >= v.len();
        if ctx.code && is_identifier(v) && !Classes::of(v).mixed_alnum() && !numeric_noise {
            return false;
        }
    }
    let classes = Classes::of(v);
    let wordy = !classes.digit
        && v.bytes()
            .all(|c| c.is_ascii_alphabetic() || c == b'_' || c == b'-');
    if wordy && ((!ctx.quoted && !ctx.literal) || v.len() < 8) {
        return false;
    }
    shannon(v) >= 1.5
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIT: ValueContext = ValueContext {
        quoted: false,
        literal: true,
        code: false,
    };
    const QUOTED: ValueContext = ValueContext {
        quoted: true,
        literal: false,
        code: false,
    };
    const BARE: ValueContext = ValueContext {
        quoted: false,
        literal: false,
        code: false,
    };
    const CODE: ValueContext = ValueContext {
        quoted: false,
        literal: false,
        code: true,
    };

    #[test]
    fn value_table() {
        let cases: &[(&str, ValueContext, bool)] = &[
            ("hunter2xyz!", BARE, true),
            ("hunter2", BARE, true),
            ("supersecretvalue", LIT, true),
            ("supersecretvalue", BARE, false),
            ("correct horse battery staple", QUOTED, true),
            ("Password must be at least 8 characters", QUOTED, false),
            ("${DB_PASSWORD}", BARE, false),
            ("$DB_PASSWORD", LIT, false),
            ("<your-password>", BARE, false),
            ("{{ .Values.token }}", QUOTED, false),
            ("os.environ", BARE, false),
            ("process.env.TOKEN", BARE, false),
            ("settings.SECRET_KEY", BARE, false),
            ("user_password", CODE, false),
            ("changeme", LIT, false),
            ("YOUR_API_KEY", LIT, false),
            ("xxxxxxxxxx", LIT, false),
            ("**********", QUOTED, false),
            ("required", LIT, false),
            ("/etc/ssl/private/key.pem", LIT, false),
            ("aaaaaaaa1", LIT, false),
            ("aaaaaaaaa", LIT, false),
            ("[REDACTED:password]", QUOTED, false),
            ("!vault", LIT, false),
            ("$2b$12$abcdefghijABCDEFGHIJ12", QUOTED, true),
            ("cGFzc3dvcmQxMjM=", LIT, true),
        ];
        for &(v, ctx, want) in cases {
            assert_eq!(plausible_secret_value(v, ctx), want, "{v:?} {ctx:?}");
        }
    }

    #[test]
    fn key_words_table() {
        let cases: &[(&str, &[&str])] = &[
            ("DB_PASSWORD", &["db", "password"]),
            ("dbPassword", &["db", "password"]),
            ("api-key", &["api", "key"]),
            ("--client-secret", &["client", "secret"]),
            ("token", &["token"]),
            ("AWS_SECRET_ACCESS_KEY", &["aws", "secret", "access", "key"]),
            ("secret_key_base", &["secret", "key", "base"]),
        ];
        for &(k, want) in cases {
            assert_eq!(key_words(k), want, "{k}");
        }
    }
}
