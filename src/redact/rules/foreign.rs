//! Secret words in other languages: which key words mean password,
//! token, secret or key, and the noun-first word order of Romance and
//! Slavic languages (`senha_banco`, `токен_доступа`). Read by
//! [`family_of`](super::family::family_of).

use super::family::Strength;

/// Password words in other languages (lower-case), matched at the end of
/// the key: agents write config and chat in every language.
pub(super) const FOREIGN_PASSWORD_WORDS: &[&str] = &[
    "passwort",
    "kennwort",
    "contraseña",
    "contrasena",
    "senha",
    "parola",
    "wachtwoord",
    "hasło",
    "haslo",
    "lozinka",
    "salasana",
    "lösenord",
    "losenord",
    "adgangskode",
    "heslo",
    "jelszó",
    "jelszo",
    "şifre",
    "sifre",
    "пароль",
    "密码",
    "密碼",
    "パスワード",
    "비밀번호",
    "passord",
    "κωδικός",
    "κωδικος",
    "парола",
    "пароля",
    "口令",
    "암호",
    "पासवर्ड",
    "סיסמה",
    "סיסמא",
    "parolă",
    "geslo",
];

/// Token words in other languages (lower-case), matched at the key's end.
pub(super) const FOREIGN_TOKEN_WORDS: &[&str] = &["токен", "令牌", "トークン", "토큰", "jeton", "gettone"];

/// Secret words in other languages (lower-case), matched at the key's end.
pub(super) const FOREIGN_SECRET_WORDS: &[&str] = &[
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
];

/// Key words in other languages (lower-case): like a bare English `key`,
/// they need a token-shaped value.
pub(super) const FOREIGN_KEY_WORDS: &[&str] = &[
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
];

/// Qualifiers after a foreign key word that make it a secret key
/// (`chiave_segreta`, `clave_secreta`, `clé_privée`, `ключ_секретный`).
const FOREIGN_SECRET_QUALIFIERS: &[&str] = &[
    "segreta",
    "segreto",
    "secreta",
    "secreto",
    "secrète",
    "secrete",
    "secreet",
    "geheim",
    "geheime",
    "geheimer",
    "privata",
    "privato",
    "privada",
    "privado",
    "privée",
    "privee",
    "prywatny",
    "tajny",
    "secretă",
    "секретный",
    "секретного",
    "приватный",
    "доступа",
];

/// Words after a leading secret word that make the key describe the
/// secret instead of holding it (`senha_hash`, `токен_тип`, `haslo_reset`).
const NOT_VALUE_WORDS: &[&str] = &[
    "hash",
    "hashed",
    "digest",
    "policy",
    "politica",
    "política",
    "length",
    "len",
    "longitud",
    "lunghezza",
    "comprimento",
    "min",
    "max",
    "reset",
    "hint",
    "prompt",
    "rule",
    "rules",
    "regex",
    "pattern",
    "field",
    "label",
    "file",
    "path",
    "name",
    "nome",
    "nombre",
    "nom",
    "id",
    "type",
    "tipo",
    "mode",
    "expiry",
    "expires",
    "url",
    "endpoint",
    "count",
    "size",
    "format",
    "ttl",
    "timeout",
    "enabled",
    "required",
    "длина",
    "тип",
    "имя",
];

/// Romance and Slavic languages put the noun first: `senha_banco`
/// ("password, database"), `haslo_admina`, `MOT_DE_PASSE_BDD`,
/// `токен_доступа` ("token of access"), `chiave_segreta` ("key, secret").
/// The key's first word (or `mot de passe`) is a foreign secret word and
/// no later word says the value is about the secret rather than it.
/// English keeps its word-last reading: `token_usage`, `password_reset`.
pub(super) fn foreign_word_first(key: &str) -> Option<(&'static str, Strength)> {
    use Strength::{Strong, Weak};
    let key = key.trim_start_matches(['$', '-', '_']);
    if !key.contains(['_', '-', '.']) {
        return None;
    }
    // Asked for every key-word occurrence: an ASCII first word that is no
    // foreign secret word (nearly every key: `db_password`, `api_key`)
    // is ruled out before anything is allocated.
    let first_raw = key.split(['_', '-', '.']).find(|w| !w.is_empty())?;
    if first_raw.is_ascii()
        && !first_raw.eq_ignore_ascii_case("mot")
        && ![
            FOREIGN_PASSWORD_WORDS,
            FOREIGN_TOKEN_WORDS,
            FOREIGN_SECRET_WORDS,
            FOREIGN_KEY_WORDS,
        ]
        .iter()
        .any(|words| words.iter().any(|w| w.eq_ignore_ascii_case(first_raw)))
    {
        return None;
    }
    let lower = key.to_lowercase();
    let mut words = lower.split(['_', '-', '.']).filter(|w| !w.is_empty());
    let mut first = words.next()?;
    let mut rest: Vec<&str> = words.collect();
    if first == "mot" && rest.len() >= 2 && rest[0] == "de" && rest[1] == "passe" {
        first = "contraseña";
        rest.drain(..2);
    }
    // `clave_api`, `chave_de_api` are read below, as `api_key`.
    if rest.is_empty()
        || rest.len() > 3
        || rest.last() == Some(&"api")
        || rest.iter().any(|w| NOT_VALUE_WORDS.contains(w))
    {
        return None;
    }
    if FOREIGN_PASSWORD_WORDS.contains(&first) {
        return Some(("password", Strong));
    }
    if FOREIGN_TOKEN_WORDS.contains(&first) {
        return Some(("token", Strong));
    }
    if FOREIGN_SECRET_WORDS.contains(&first) {
        return Some(("secret", Strong));
    }
    if FOREIGN_KEY_WORDS.contains(&first) {
        return Some(if FOREIGN_SECRET_QUALIFIERS.contains(&rest[0]) {
            ("secret", Strong)
        } else {
            ("secret", Weak)
        });
    }
    None
}
