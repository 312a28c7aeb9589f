//! Key names: which words make a key secret-bearing, and how strongly.
//!
//! `DB_PASSWORD`, `apiKey`, `client-secret`, `Passwort`: the key is split
//! into words and its last word (after dropping an encoding word such as
//! `b64` or `value`) picks the placeholder kind and a [`Strength`]. The
//! same tables serve the generic detector and every keyed context rule.

use super::foreign::{
    FOREIGN_KEY_WORDS, FOREIGN_PASSWORD_WORDS, FOREIGN_SECRET_WORDS, FOREIGN_TOKEN_WORDS, foreign_word_first,
};

/// One word of a key, lower-cased, on the stack: its last 64 bytes (every
/// test on a word looks at its end or compares it with a shorter word).
#[derive(Clone, Copy)]
struct Word {
    buf: [u8; 64],
    len: usize,
}

impl Word {
    const EMPTY: Word = Word { buf: [0; 64], len: 0 };

    fn of(word: &[u8]) -> Word {
        let tail = &word[word.len().saturating_sub(64)..];
        let mut w = Word::EMPTY;
        for (d, c) in w.buf.iter_mut().zip(tail) {
            *d = c.to_ascii_lowercase();
        }
        w.len = tail.len();
        w
    }

    fn as_str(&self) -> &str {
        // Words are ASCII letters and digits.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

/// The last three words of a key, split like
/// [`key_words`](crate::redact::heuristics::key_words) (non-alphanumerics
/// and camelCase), last word first.
struct LastWords {
    words: [Word; 3],
    /// How many of `words` are set.
    count: usize,
    /// How many words the key has in all.
    total: usize,
}

impl LastWords {
    fn of(key: &str) -> LastWords {
        let b = key.as_bytes();
        let mut ranges: [(usize, usize); 3] = [(0, 0); 3];
        let mut total = 0;
        let mut start: Option<usize> = None;
        let mut prev_lower = false;
        let mut push = |s: usize, e: usize, total: &mut usize| {
            ranges.rotate_right(1);
            ranges[0] = (s, e);
            *total += 1;
        };
        for (i, &c) in b.iter().enumerate() {
            if !c.is_ascii_alphanumeric() {
                if let Some(s) = start.take() {
                    push(s, i, &mut total);
                }
                prev_lower = false;
                continue;
            }
            if c.is_ascii_uppercase()
                && prev_lower
                && let Some(s) = start
            {
                push(s, i, &mut total);
                start = Some(i);
            }
            start.get_or_insert(i);
            prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        }
        if let Some(s) = start {
            push(s, b.len(), &mut total);
        }
        let count = total.min(3);
        let mut words = [Word::EMPTY; 3];
        for (w, &(s, e)) in words.iter_mut().zip(&ranges).take(count) {
            *w = Word::of(&b[s..e]);
        }
        LastWords { words, count, total }
    }
}

/// Words a secret-bearing key ends with (regex alternation, case-insensitive).
/// `[ ]key` lets prose keys such as `API key` and `secret key` through;
/// `api_key`, `api-key`, `apiKey` are covered by the plain `key`.
pub const KEY_WORDS: &str = concat!(
    r"pass(?:word|wd|phrase|e)?|pwd|pw|psk|token|secret|credentials?|creds?|auth|authident|sig(?:nature)?|pat|jwt|bearer|salt|pepper|",
    r"passwort|kennwort|contrase(?:ñ|n)a|senha|parola|wachtwoord|has(?:ł|l)o|lozinka|salasana|l(?:ö|o)senord|",
    r"adgangskode|heslo|jelsz(?:ó|o)|(?:ş|s)ifre|пароль|密码|密碼|パスワード|비밀번호|",
    r"passord|κωδικ(?:ό|ο)ς|парол(?:а|я)|口令|암호|पासवर्ड|סיסמ(?:ה|א)|parolă|geslo|",
    r"токен|令牌|トークン|토큰|jeton|gettone|",
    r"секрет|秘密|密(?:钥|鑰)|シークレット|비밀|geheimnis|segreto|secreto|segredo|",
    r"ключ|キー|키|schl(?:ü|ue)ssel|clave|chave|chiave|clé|klucz|sleutel|anahtar|nøgle|",
    r"(?:clave|chave|chiave)[_\-](?:de[_\-])?api|",
    r"(?:secret|token|password|key)[_\-.]?(?:base|value|data|b64|base64|hex|raw)|",
    r"(?:api|secret|private|access|auth|client|app|account|master|admin|service|signing|encryption|",
    r"license|subscription|storage|consumer|webhook|session|shared|hmac|jwt)[ ]key|key"
);

/// How strongly a key name says "the value is a secret".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strength {
    /// Any plausible literal.
    Strong,
    /// Only token-shaped values.
    Weak,
    /// Base64 `user:password`, or a token-shaped value.
    Auth,
}

/// Qualifiers that make `<q> key` a secret.
const STRONG_KEY_QUALIFIERS: &[&str] = &[
    "secret",
    "access",
    "auth",
    "encryption",
    "decryption",
    "signing",
    "master",
    "client",
    "app",
    "service",
    "shared",
    "hmac",
    "jwt",
    "session",
    "webhook",
    "account",
    "admin",
    "license",
    "subscription",
    "storage",
    "root",
    "deploy",
    "write",
    "sas",
    "crypto",
    "aes",
    "cipher",
    "vault",
    "bot",
    "integration",
    "ingest",
    "ingestion",
    "management",
];

/// Qualifiers that make `<q> key` something that is not a secret.
pub const PUBLIC_KEY_QUALIFIERS: &[&str] = &[
    // `Sec-WebSocket-Key`: a handshake nonce, public by protocol.
    "socket",
    "public",
    "pub",
    "publishable",
    "primary",
    "foreign",
    "sort",
    "partition",
    "cache",
    "idempotency",
    "routing",
    "shard",
    "row",
    "object",
    "map",
    "lookup",
    "dedup",
    "dedupe",
    "hash",
    "host",
    "gpg",
    "pgp",
    "kms",
    "ssh",
    "unique",
    "composite",
    "index",
    "table",
    "translation",
    "i18n",
    "site",
    "recaptcha",
    "s3",
    "bucket",
    "storage_account",
    "registry",
    "group",
    "label",
];

/// Key-name prefixes of values a build publishes to every browser on
/// purpose (Next.js, Vite, Create React App, Expo, Gatsby, Nuxt,
/// SvelteKit, Storybook): `NEXT_PUBLIC_SUPABASE_ANON_KEY` is public by
/// design, and a frontend bundle ships it.
pub const PUBLIC_PREFIXES: &[&str] = &[
    "next_public_",
    "vite_",
    "react_app_",
    "expo_public_",
    "gatsby_",
    "nuxt_public_",
    "public_",
    "storybook_",
    "vue_app_",
];

/// Whether `key` (any case) starts with a [`PUBLIC_PREFIXES`] entry,
/// possibly after `$`, `process.env.`, `import.meta.env.` or an
/// `export `.
pub fn is_public_key_name(key: &str) -> bool {
    let k = key.trim_start_matches(['$', '-']);
    let k = ["process.env.", "import.meta.env.", "env."]
        .iter()
        .find_map(|p| {
            k.get(..p.len())
                .filter(|h| h.eq_ignore_ascii_case(p))
                .map(|_| &k[p.len()..])
        })
        .unwrap_or(k);
    PUBLIC_PREFIXES
        .iter()
        .any(|p| k.len() > p.len() && k.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes()))
}

/// Trailing key words that describe an encoding, not a meaning.
const ENCODING_WORDS: &[&str] = &[
    "base",
    "value",
    "data",
    "b64",
    "base64",
    "hex",
    "raw",
    "plain",
    "plaintext",
    "str",
    "encoded",
];

/// Words ending in `pass` that are not passwords.
const NOT_PASS: &[&str] = &[
    "bypass",
    "compass",
    "surpass",
    "overpass",
    "underpass",
    "trespass",
    "encompass",
    "impass",
    "multipass",
    "firstpass",
    "onepass",
    "subpass",
    "renderpass",
];

/// The placeholder kind and strength for a key name, or `None` when the
/// name does not denote a secret (`password_hash`, `max_tokens`,
/// `public_key`, `monkey`).
///
/// Called for every key-word occurrence of a message (the generic rule's
/// prefilter), so it does not allocate for ASCII keys.
pub fn family_of(key: &str) -> Option<(&'static str, Strength)> {
    use Strength::{Auth, Strong, Weak};
    if is_public_key_name(key) {
        return None;
    }
    let ascii = key.is_ascii();
    // Every key-word occurrence asks, so most words are ruled out by
    // their last byte before any comparison.
    let last_byte = key.as_bytes().last().map(u8::to_ascii_lowercase);
    let foreign = |words: &[&str]| {
        if ascii {
            words.iter().any(|w| {
                w.as_bytes().last().copied() == last_byte
                    && key.len() >= w.len()
                    && key.as_bytes()[key.len() - w.len()..].eq_ignore_ascii_case(w.as_bytes())
            })
        } else {
            let lower = key.to_lowercase();
            words.iter().any(|w| lower.ends_with(w))
        }
    };
    if foreign(FOREIGN_PASSWORD_WORDS) {
        return Some(("password", Strong));
    }
    if foreign(FOREIGN_TOKEN_WORDS) {
        return Some(("token", Strong));
    }
    if foreign(FOREIGN_SECRET_WORDS) {
        return Some(("secret", Strong));
    }
    if foreign(FOREIGN_KEY_WORDS) {
        return Some(("secret", Weak));
    }
    if let Some(found) = foreign_word_first(key) {
        return Some(found);
    }
    let tail = LastWords::of(key);
    // First to last.
    let mut words = [""; 3];
    let mut n = tail.count;
    for (i, w) in words.iter_mut().enumerate().take(n) {
        *w = tail.words[n - 1 - i].as_str();
    }
    // `secret_key_base`, `password_b64`, `client-key-data`: the last word
    // says how the secret is encoded, the one before says what it is.
    if tail.total > 1 && ENCODING_WORDS.contains(&words[n - 1]) {
        n -= 1;
    }
    let last = if n > 0 { words[n - 1] } else { "" };
    let prev = if n > 1 { words[n - 2] } else { "" };
    // `clave_api`, `chave_de_api`: Romance word order for "API key".
    let before_prev = if n > 2 { words[n - 3] } else { "" };
    if last == "api"
        && (FOREIGN_KEY_WORDS.contains(&prev) || (prev == "de" && FOREIGN_KEY_WORDS.contains(&before_prev)))
    {
        return Some(("api_key", Strong));
    }
    if matches!(last, "pass" | "pw" | "pword" | "psk")
        || last.ends_with("password")
        || last.ends_with("passwd")
        || last.ends_with("passphrase")
        || last.ends_with("pwd")
        || (last.len() <= 8 && last.ends_with("pw"))
        || (last.ends_with("pass") && !NOT_PASS.contains(&last))
        || (last == "passe" && prev == "de")
        || (last.len() > 4 && last.ends_with("auth") && last != "oauth")
    {
        return Some(("password", Strong));
    }
    if last == "ident" && prev == "auth" || last == "authident" {
        return Some(("auth", Auth));
    }
    if last.ends_with("token") || matches!(last, "pat" | "jwt" | "bearer") {
        return Some(("token", Strong));
    }
    if last.ends_with("secret") || matches!(last, "credential" | "credentials" | "creds" | "cred") {
        // `existingSecret: my-release-db` names a secret, it is not one.
        if matches!(prev, "existing" | "ref" | "k8s" | "kubernetes" | "vault") {
            return None;
        }
        return Some(("secret", Strong));
    }
    if last == "auth" {
        return Some(("auth", Auth));
    }
    // WordPress `AUTH_SALT`, Django-style `HASHID_SALT`, a `PEPPER`: keys
    // that make hashes unguessable are secrets. `salt_length` is not.
    if matches!(last, "salt" | "pepper") {
        return Some(("secret", Strong));
    }
    if matches!(last, "sig" | "signature") {
        return Some(("signature", Weak));
    }
    if last == "apikey" || (last == "key" && prev == "api") {
        return Some(("api_key", Strong));
    }
    // `MJ_APIKEY_PRIVATE`, `API_KEY_SECRET`, `SIGNING_KEY_PRIVATE`: the
    // qualifier after the key word.
    if matches!(last, "private" | "priv") && (prev.ends_with("key") || prev.ends_with("token")) {
        return Some(("secret", Strong));
    }
    if last == "privatekey" || (last == "key" && prev == "private") {
        return Some(("private_key", Strong));
    }
    if last == "key" {
        if STRONG_KEY_QUALIFIERS.contains(&prev) {
            return Some(("secret", Strong));
        }
        if PUBLIC_KEY_QUALIFIERS.contains(&prev) {
            return None;
        }
        return Some(("secret", Weak));
    }
    if let Some(q) = last.strip_suffix("key")
        && STRONG_KEY_QUALIFIERS.contains(&q)
    {
        return Some(("secret", Strong));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::heuristics::key_words;

    #[test]
    fn last_words_split_like_key_words() {
        for key in [
            "DB_PASSWORD",
            "dbPassword",
            "api-key",
            "--client-secret",
            "token",
            "AWS_SECRET_ACCESS_KEY",
            "secret_key_base",
            "x",
            "",
            "__",
            "мой_пароль",
            "HTTPSProxyAuth2Token",
        ] {
            let all = key_words(key);
            let tail = LastWords::of(key);
            assert_eq!(tail.total, all.len(), "{key}");
            let got: Vec<&str> = tail.words.iter().take(tail.count).map(Word::as_str).collect();
            let want: Vec<&str> = all.iter().rev().take(3).map(String::as_str).collect();
            assert_eq!(got, want, "{key}");
        }
    }

    #[test]
    fn family_table() {
        let cases: &[(&str, Option<(&str, Strength)>)] = &[
            ("DB_PASSWORD", Some(("password", Strength::Strong))),
            ("secret_key_base", Some(("secret", Strength::Strong))),
            ("password_hash", None),
            ("max_tokens", None),
            ("public_key", None),
            ("monkey", None),
            ("apiKey", Some(("api_key", Strength::Strong))),
            ("key", Some(("secret", Strength::Weak))),
            ("Passwort", Some(("password", Strength::Strong))),
            ("мой_пароль", Some(("password", Strength::Strong))),
            ("existingSecret", None),
            ("senha_banco", Some(("password", Strength::Strong))),
            ("MOT_DE_PASSE_BDD", Some(("password", Strength::Strong))),
            ("токен_доступа", Some(("token", Strength::Strong))),
            ("chiave_segreta", Some(("secret", Strength::Strong))),
            ("senha_hash", None),
            ("MJ_APIKEY_PRIVATE", Some(("secret", Strength::Strong))),
            ("MJ_APIKEY_PUBLIC", None),
        ];
        for &(key, want) in cases {
            assert_eq!(family_of(key), want, "{key}");
        }
    }
}
