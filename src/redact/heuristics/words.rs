//! The word lists the value judgements of [`heuristics`](super) read:
//! placeholders, template syntax, prose, secret-store references and
//! PowerShell verbs. Data only; what a value is, is decided in
//! `heuristics.rs`.

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;

/// Values that are documentation stand-ins, not credentials.
///
/// `changeme` is deliberately here: it is a published default, redacting it
/// hides nothing, and tutorials and compose files are full of it.
pub(super) const PLACEHOLDER_WORDS: &[&str] = &[
    "password",
    "passwd",
    "pass",
    "pwd",
    "secret",
    "token",
    "apikey",
    "api_key",
    "changeme",
    "changeit",
    "none",
    "null",
    "nil",
    "true",
    "false",
    "undefined",
    "string",
    "str",
    "bytes",
    "required",
    "optional",
    "test",
    "testing",
    "value",
    "empty",
    "default",
    "hidden",
    "masked",
    "sample",
    "foo",
    "bar",
    "baz",
    "todo",
    "tbd",
    "fixme",
    "mypassword",
    "mysecret",
    "mytoken",
    "secretstr",
    "secretstring",
    "boolean",
    "number",
    "integer",
    "invalid",
    "expired",
    "missing",
    "unknown",
    "disabled",
    "enabled",
    "omitted",
    "notset",
    "unset",
];

/// Substrings that mark a value as an instruction to the reader.
pub(super) const PLACEHOLDER_MARKERS: &[&str] = &[
    "your",
    "example",
    "placeholder",
    "changeme",
    "change_me",
    "change-me",
    "redacted",
    "dummy",
    "replace",
    "insert",
    "xxxx",
    "****",
    "...",
    "…",
];

/// Template and variable syntaxes: `${X}`, `{{ .Values.x }}`, `%(x)s`, ...
pub(super) const TEMPLATE_MARKERS: &[&str] = &["${", "{{", "#{", "%(", "{%", "<%", "$(", "%[", "[REDACTED:"];

/// Finds any of [`TEMPLATE_MARKERS`] in one scan (this runs on every
/// value a key/value rule judges: one automaton, not nine substring
/// searches).
pub(super) static TEMPLATE_FINDER: LazyLock<AhoCorasick> =
    LazyLock::new(|| AhoCorasick::new(TEMPLATE_MARKERS).expect("template markers are valid patterns"));

/// Finds any of [`PLACEHOLDER_MARKERS`], ASCII case folded, in one scan.
pub(super) static PLACEHOLDER_FINDER: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(PLACEHOLDER_MARKERS)
        .expect("placeholder markers are valid patterns")
});

/// Words that make a quoted string with spaces read as a sentence.
pub(super) const PROSE_WORDS: &[&str] = &[
    "the", "a", "an", "is", "are", "be", "must", "should", "your", "you", "to", "of", "in", "for", "not",
    "please", "enter", "invalid", "at", "least", "and", "or", "with", "this", "that", "was", "has", "have",
    "can", "cannot", "will", "here", "it", "if", "by", "on",
];

/// Prefixes of references to a secret store (HashiCorp Vault, 1Password,
/// AWS Secrets Manager / SSM, GCP Secret Manager, helm-secrets and
/// vals `ref+` URLs): the value says where the secret lives.
pub(super) const REFERENCE_PREFIXES: &[&str] = &[
    "vault:",
    "vault://",
    "ref+",
    "op://",
    "arn:aws:secretsmanager:",
    "arn:aws:ssm:",
    "awssm:",
    "awssecrets:",
    "ssm:",
    "sm://",
    "gcpsm://",
    "secretsmanager:",
    "azurekeyvault:",
    "keyvault:",
    "akv:",
    "doppler:",
    "infisical:",
    "bws:",
];

/// PowerShell's approved verbs most used in scripts that handle secrets.
pub(super) const CMDLET_VERBS: &[&str] = &[
    "get",
    "set",
    "read",
    "write",
    "new",
    "convertto",
    "convertfrom",
    "import",
    "export",
    "invoke",
    "out",
    "select",
    "join",
    "split",
    "test",
    "resolve",
    "add",
    "remove",
    "start",
    "format",
];
