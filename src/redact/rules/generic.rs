//! The keyword-anchored generic detector.
//!
//! A value is a secret when its *context* says so (the key name, the CLI
//! flag, the word before it) and its *shape* agrees. The context picks a
//! family and a strength:
//!
//! * strong keys (`password`, `*_token`, `*_secret`, `api_key`,
//!   `client_secret`, `account key`, ...) accept any plausible literal
//!   ([`plausible_secret_value`]: not a placeholder, template, path, code
//!   expression or prose);
//! * weak keys (a bare `key`, `*_key` with an unknown qualifier,
//!   `signature`) accept only token-shaped values ([`token_shaped`]: long,
//!   letters and digits, high entropy);
//! * `auth` keys (docker `config.json`, npm `_auth`) accept base64 that
//!   decodes to `user:password`, or a token-shaped value.
//!
//! The separator matters too: `key = v`, `key: v`, `--key v`, `setx KEY v`
//! are assignments; `the password is v` is prose and needs a stricter
//! value; `token v` (only whitespace) needs a token-shaped one.
//!
//! A bare value extends to the end of its token, never stopping at `&`,
//! `;`, `#` or `!` (`DB_PASSWORD=K9v#Xq2!mZ&7pLw` is one value), except
//! where the syntax says the value ended: `&` in a URL query, `;Name=` in a
//! connection string, `,name=` in a list, closing brackets that were never
//! opened, sentence punctuation.

use std::borrow::Cow;

pub use super::family::KEY_WORDS;
pub use super::judge::{Joint, Value, judge};
use super::{Found, Hit, Memo, Prefilter, RuleSpec, Window};

/// A value after its key, in named groups: `tdq`, `tsq` (Python triple
/// quotes, on one line), `dq`, `sq`, `bq` (quoted, with
/// an optional Python string prefix `u`/`b`/`r`/`f`), `eq` (`\"…\"`
/// inside a JSON-escaped string), or `bare` (to the end of the token; a
/// JSON escape such as `\n` ends it too).
pub const VALUE: &str = concat!(
    r#"(?:[urbfURBF]{0,2}"""(?P<tdq>[^\n]*?)"""|[urbfURBF]{0,2}'''(?P<tsq>[^\n]*?)'''"#,
    r#"|[urbfURBF]{0,2}"(?P<dq>(?:[^"\\\n]|\\.)*)"|[urbfURBF]{0,2}'(?P<sq>[^'\n]*)'|`(?P<bq>[^`\n]*)`"#,
    r#"|\\+"(?P<eq>(?:[^"\\\n]|\\[^"\n\\])*)\\+""#,
    r#"|(?P<bare>[^\s"'`(\[{<\\][^\s"'`\\]*(?:\\[^nrt"\s\\][^\s"'`\\]*)*))"#
);

/// What stands for [`KEY_WORDS`] in the generic rule's parse regex: any
/// word, optionally followed by ` key` (`API key`). A word is ASCII
/// letters, digits and `_`, or any non-ASCII character: a byte class, not
/// Unicode `\w`, whose large UTF-8 automaton made every parse (a bounded
/// backtrack over states x bytes, its visited set cleared each time) cost
/// several microseconds. The parse only splits a span the full regex
/// already matched, and a parse that does not reproduce that span is
/// discarded, so the wider class cannot widen what is redacted.
pub const ANY_KEY_WORD: &str = r"[^\x00-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]+(?:[ ]key)?";

/// The generic rule's regex, with `k` as the key-word alternation. Named
/// groups: `fkey` (CLI flag), `skey` (`set`/`setx NAME value`), `key` with
/// `sep` (assignment, prose or whitespace), then the value as `dq`, `sq`,
/// `bq` or `bare`.
fn generic_regex(k: &str) -> Cow<'static, str> {
    Cow::Owned(format!(
        concat!(
            r#"(?i)(?:(?:^|(?-u:[\s"'(\[=,;|]))--?(?P<fkey>(?-u:[a-z0-9_\-])*(?:{k}))(?:=|[ \t]+)"#,
            r#"|\b(?:setx?|setenv|set-environment)[ \t]+(?:-(?-u:[a-z])+[ \t]+)?(?P<skey>(?-u:[a-z0-9_.\-])*(?:{k}){s})[ \t]+"#,
            r#"|(?P<key>(?-u:[a-z0-9_.\-])*(?:{k}){s})(?:\\*["'])?\]?[ \t]*"#,
            r#"(?P<sep>=>|:=|\?=|\+=|=|:[ \t]*&?'?(?-u:[a-z_])(?-u:[a-z0-9_<>\[\]:])*[ \t]+=|:))"#,
            r#"[ \t]*{v}"#
        ),
        k = k,
        s = KEY_SUFFIX,
        v = VALUE
    ))
}

/// Words after the key word: `senha_banco`, `токен_доступа`,
/// `MJ_APIKEY_PRIVATE` (`family_of` decides whether the key is secret).
const KEY_SUFFIX: &str = r"(?:[_\-.][^\x00-\x2c\x2e\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]+){0,3}";

/// Strong secret words for prose and whitespace-separated forms.
const PROSE_KEYS: &str = concat!(
    r"(?:secret[ ]access|access|api|auth|client|private|signing|master|account|app|bot)[ ](?:key|token|secret)|",
    r"pass(?:word|wd|phrase|wort)|pwd|token|secret|api[ _\-]?key|mot de passe|kennwort|contrase(?:ñ|n)a|",
    r"senha|parola|wachtwoord|has(?:ł|l)o|пароль|密码|パスワード|비밀번호|requirepass|masterauth|",
    r"passord|κωδικ(?:ό|ο)ς|парол(?:а|я)|口令|암호|токен|令牌|トークン|토큰|секрет|秘密|密(?:钥|鑰)|シークレット"
);

/// The prose/whitespace form: a strong secret word, then whitespace, a
/// verb (`is`, `es`, `est`, `ist`), or up to 40 characters of filler
/// ending in `:` or a verb, then a token of 10+ characters of a token
/// alphabet. The value shape is in the regex itself so that ordinary
/// prose (`token refresh race`) never becomes a candidate.
fn prose_regex() -> String {
    format!(
        concat!(
            r#"(?i)(?P<key>{k})["'`]?(?P<gap>[ \t]+(?:is|was|to|as|es|est|ist|are|är|er)[ \t]+|[ \t]+"#,
            r#"|[^\n:=]{{0,40}}?(?:[ \t]*:|[ \t]+(?:is|was|es|est|ist|are))[ \t]+)(?:«[ \t]*|`)?"#,
            r#"(?P<bare>[A-Za-z0-9+/=_\-.~!@#$%^&*]{{10,}})"#
        ),
        k = PROSE_KEYS
    )
}

/// The value groups of a key/value regex as a [`Value`].
pub fn value_of(h: &Hit<'_>) -> Option<Value> {
    let caps = h.caps;
    for (name, quoted) in [
        ("tdq", true),
        ("tsq", true),
        ("dq", true),
        ("sq", true),
        ("bq", true),
        ("eq", true),
        ("bare", false),
    ] {
        if let Some(m) = caps.name(name) {
            return Some(Value {
                start: m.start(),
                end: m.end(),
                quoted,
            });
        }
    }
    None
}

fn classify(h: &Hit<'_>) -> Option<Found> {
    let caps = h.caps;
    let value = value_of(h)?;
    if let Some(flag) = caps.name("fkey") {
        // `--password -x`: the next thing is another flag, not a value.
        if !value.quoted && h.haystack[value.start..].starts_with('-') {
            return None;
        }
        if !value.quoted && usage_metavariable(h.haystack, flag.start(), &h.haystack[value.start..value.end])
        {
            return None;
        }
        return judge(h.haystack, flag.range(), value, Joint::Assign, false);
    }
    if let Some(key) = caps.name("skey") {
        return judge(h.haystack, key.range(), value, Joint::Assign, true);
    }
    let key = caps.name("key")?;
    let joint = match caps.name("sep") {
        Some(_) => Joint::Assign,
        None if caps.name("gap").is_some_and(|g| g.as_str().trim().is_empty()) => Joint::Space,
        None => Joint::Prose,
    };
    // The key must start a word: `one-time-password x` is not `password x`.
    // An identifier that starts its line is a whole key in a column
    // (`  auth_token     66cb…`, `db_password  …` in `vault kv get`).
    let mut key_range = key.range();
    let prev = h.haystack[..key.start()].bytes().next_back();
    if joint != Joint::Assign && prev.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_') {
        let before = &h.haystack[..key.start()];
        let ident = before.len()
            - before
                .bytes()
                .rev()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_')
                .count();
        let line_start = before[..ident].rfind('\n').map_or(0, |i| i + 1);
        let lead_alnum = before[line_start..ident].chars().any(char::is_alphanumeric);
        if prev != Some(b'_') || lead_alnum || joint != Joint::Space {
            return None;
        }
        key_range = ident..key.end();
    }
    judge(h.haystack, key_range, value, joint, false)
}

/// Whether a flag's value is the metavariable of a usage synopsis:
/// `[--max-connections-per-credential N|off]`, `[--password PASS]...`
/// (Markdown tables escape the bar: `N\|off`). The flag opens an optional
/// argument's brackets and the value is capitals (no digit: a secret is
/// rarely capitals alone), maybe `|` alternatives, then the closing
/// bracket.
fn usage_metavariable(hay: &str, flag_start: usize, value: &str) -> bool {
    if !hay[..flag_start].trim_end_matches('-').ends_with('[') {
        return false;
    }
    let Some((inner, _)) = value.split_once(']') else {
        return false;
    };
    let mut alternatives = inner.split('|').map(|a| a.strip_suffix('\\').unwrap_or(a));
    let name = alternatives.next().unwrap_or_default();
    let capitals = !name.is_empty()
        && name.starts_with(|c: char| c.is_ascii_uppercase())
        && name
            .bytes()
            .all(|c| c.is_ascii_uppercase() || c == b'_' || c == b'-');
    capitals && alternatives.all(|a| !a.is_empty() && a.bytes().all(|c| c.is_ascii_alphanumeric()))
}

/// Where a key/value match lies around its key word: the key's other
/// words, a flag's dashes or `set ` before it, the value after it.
pub const KEY_VALUE_WINDOW: Window = Window {
    before: 256,
    after: 4096,
    multiline: false,
    filter: Some(assignment_follows),
};

/// The prose form's window: a sentence around the secret word.
const PROSE_WINDOW: Window = Window {
    before: 16,
    after: 4096,
    multiline: false,
    filter: Some(token_follows),
};

/// The value characters of the prose form (`[A-Za-z0-9+/=_\-.~!@#$%^&*]`),
/// as a table: [`token_follows`] reads up to 96 bytes per occurrence.
static VALUE_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        table[i] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'+' | b'/'
                    | b'='
                    | b'_'
                    | b'-'
                    | b'.'
                    | b'~'
                    | b'!'
                    | b'@'
                    | b'#'
                    | b'$'
                    | b'%'
                    | b'^'
                    | b'&'
                    | b'*'
            );
        i += 1;
    }
    table
};

/// Necessary for the prose form: within a few words after the secret
/// word, on its line, a run of 10+ value characters with a digit or both
/// cases (the value the prose form requires). `Token refresh race` and
/// `password reset instructions` fail it.
fn token_follows(text: &str, _start: usize, end: usize, _memo: &Memo) -> bool {
    let b = text.as_bytes();
    let value_char = |c: u8| VALUE_BYTE[usize::from(c)];
    let limit = (end + 96).min(b.len());
    let mut i = end;
    while i < limit && b[i] != b'\n' {
        if !value_char(b[i]) {
            i += 1;
            continue;
        }
        let run = i;
        let (mut digit, mut upper, mut lower) = (false, false, false);
        while i < b.len() && value_char(b[i]) {
            digit |= b[i].is_ascii_digit();
            upper |= b[i].is_ascii_uppercase();
            lower |= b[i].is_ascii_lowercase();
            i += 1;
        }
        if i - run >= 10 && (digit || (upper && lower)) {
            return true;
        }
    }
    false
}

/// A cheap necessary condition for an assignment-form match around the
/// key word at `start..end`: the key it is part of ends (at the end of its
/// run of key characters) in an assignment (`=`, `:`, `?=`, `+=`, after an
/// optional, possibly escaped, closing quote and bracket), or in
/// whitespace when the key is a flag (`--password x`) or follows
/// `set`/`setx`. Most occurrences of `key`, `pat` or `auth` in prose and
/// code (`monkey`, `path`, `author`) fail it and cost nothing more.
pub fn assignment_follows(text: &str, start: usize, _end: usize, _memo: &Memo) -> bool {
    let b = text.as_bytes();
    // Letters of any script too (`contraseña`, `lösenord`), but not
    // quotes or marks around the key (`«`, `“`).
    let key_char = |c: char| c.is_alphanumeric() || matches!(c, '_' | '.' | '-');
    // From the anchor's start: the occurrence reported may be a longer
    // anchor of another rule (`pass:` for `pass`).
    let key_end = text[start..]
        .char_indices()
        .find(|&(_, c)| !key_char(c))
        .map_or(text.len(), |(i, _)| start + i);
    let mut q = key_end;
    // `\"`, `\\\"`: a key inside a JSON string, escaped once or more.
    let mut e = q;
    while b.get(e) == Some(&b'\\') {
        e += 1;
    }
    if e > q && matches!(b.get(e), Some(b'"' | b'\'')) {
        q = e;
    }
    if matches!(b.get(q), Some(b'"' | b'\'')) {
        q += 1;
    }
    if b.get(q) == Some(&b']') {
        q += 1;
    }
    let blank = q;
    while q < b.len() && matches!(b[q], b' ' | b'\t') {
        q += 1;
    }
    let assigned = match b.get(q) {
        Some(b'=' | b':') => true,
        Some(b'?' | b'+') => b.get(q + 1) == Some(&b'='),
        _ => false,
    };
    if !assigned && (q == blank || q == b.len()) {
        return false;
    }
    let s = text[..start]
        .char_indices()
        .rev()
        .find(|&(_, c)| !key_char(c))
        .map_or(0, |(i, c)| i + c.len_utf8());
    // Whitespace after the key: a flag or `set NAME value` (checked
    // before the key's family, which costs more).
    if !(assigned || b[s] == b'-' || follows_set(&text[..s])) {
        return false;
    }
    // The key ends with a secret word (`token_usage`, `max_tokens` do not).
    super::family::family_of(&text[s..key_end]).is_some()
}

/// `before` (the text before a key) ends with `set`, `setx`, `setenv` or
/// `set-environment`, and maybe one option after it (`set -x`).
fn follows_set(before: &str) -> bool {
    let before = before.trim_end_matches([' ', '\t']);
    // `set -x NAME value`: skip one option.
    let before = match before.rfind([' ', '\t']) {
        Some(i) if before[i + 1..].starts_with('-') => before[..i].trim_end_matches([' ', '\t']),
        _ => before,
    };
    let tail = &before.as_bytes()[before.len().saturating_sub(16)..];
    let lower: Vec<u8> = tail.to_ascii_lowercase();
    // `set`, `setx` (cmd), `setenv` (csh, launchctl, Apache `SetEnv`),
    // `set-environment` (tmux).
    [&b"set"[..], b"setx", b"setenv", b"set-environment"]
        .iter()
        .any(|w| {
            lower.ends_with(w)
                && (lower.len() == w.len() || !lower[lower.len() - w.len() - 1].is_ascii_alphanumeric())
        })
}

/// The generic rules: assignment form, then prose form.
pub fn rules() -> Vec<RuleSpec> {
    vec![
        RuleSpec {
            kind: "secret",
            regex: generic_regex(KEY_WORDS),
            group: 0,
            entropy_min: None,
            prefilter: Prefilter::Keywords(&[
                "pass",
                "pwd",
                "pw",
                "psk",
                "token",
                "secret",
                "cred",
                "auth",
                "sig",
                "pat",
                "jwt",
                "bearer",
                "key",
                "salt",
                "pepper",
                "kennwort",
                "contrase",
                "senha",
                "parola",
                "wachtwoord",
                "hasło",
                "haslo",
                "lozinka",
                "salasana",
                "senord",
                "adgangskode",
                "heslo",
                "jelsz",
                "ifre",
                "пароль",
                "密码",
                "密碼",
                "パスワード",
                "비밀번호",
                "passord",
                "κωδικ",
                "парол",
                "口令",
                "암호",
                "पासवर्ड",
                "סיסמ",
                "parolă",
                "geslo",
                "токен",
                "令牌",
                "トークン",
                "토큰",
                "jeton",
                "gettone",
                "секрет",
                "秘密",
                "密钥",
                "密鑰",
                "シークレット",
                "비밀",
                "geheimnis",
                "segreto",
                "secreto",
                "segredo",
                "ключ",
                "キー",
                "키",
                "schlüssel",
                "schluessel",
                "clave",
                "chave",
                "chiave",
                "clé",
                "klucz",
                "sleutel",
                "anahtar",
                "nøgle",
            ]),
            check: None,
            classify: Some(classify),
            window: Some(KEY_VALUE_WINDOW),
            parse: Some(generic_regex(ANY_KEY_WORD)),
        },
        RuleSpec {
            kind: "secret",
            regex: Cow::Owned(prose_regex()),
            group: 0,
            entropy_min: None,
            prefilter: Prefilter::Keywords(&[
                "pass",
                "pwd",
                "token",
                "secret",
                "key",
                "kennwort",
                "contrase",
                "senha",
                "parola",
                "wachtwoord",
                "hasło",
                "haslo",
                "пароль",
                "密码",
                "パスワード",
                "비밀번호",
                "masterauth",
                "passord",
                "κωδικ",
                "парол",
                "口令",
                "암호",
                "токен",
                "令牌",
                "トークン",
                "토큰",
                "секрет",
                "秘密",
                "密钥",
                "密鑰",
                "シークレット",
            ]),
            check: None,
            classify: Some(classify),
            window: Some(PROSE_WINDOW),
            parse: None,
        },
    ]
}
