//! Agent credentials: the secret a registered agent's MCP client holds in
//! its configuration (`MCP_BRIDGE_AGENT`), never in a prompt or transcript.
//!
//! Same construction as seat tokens: 256 random bits, base64url, with a
//! prefix of its own (`mcpa_`, where seat tokens have `mcpb_`) so that secret
//! scanners and humans can tell the two apart. It is shown once, when
//! `agent add` or `agent rotate` issues it; the store keeps only an
//! HMAC-SHA-256 under the server key, computed over a label that seat tokens
//! never use, so a credential's hash can never stand for a token's hash (or
//! an audit seal) and the other way round. Checks against a stored hash are
//! constant-time ([`hmac::Mac::verify_slice`]); clear bytes are zeroed on drop.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac;
use rand::RngCore;
use zeroize::Zeroizing;

use super::{ServerKey, TokenHash};

/// The credential prefix; documented so scanners and humans can recognise credentials.
pub const CREDENTIAL_PREFIX: &str = "mcpa_";
/// Length of a credential: the prefix plus 43 base64url characters (256 bits).
pub const CREDENTIAL_LEN: usize = CREDENTIAL_PREFIX.len() + 43;

/// What the MAC of an agent credential covers before the credential itself.
/// Seat tokens are MACed bare and audit seals over their own framing; this
/// label (with its NUL, which no token or seal input starts with) keeps the
/// three apart under the one server key.
const CREDENTIAL_LABEL: &[u8] = b"mcp-bridge agent credential v1\0";

/// An agent credential in clear. Exists only between generation and the
/// output that shows it, or while a presented credential is being checked.
/// `Debug` never prints it and the bytes are zeroed on drop.
pub struct AgentCredential(Zeroizing<String>);

impl AgentCredential {
    /// Draws 256 bits from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(bytes.as_mut());
        let mut s = String::with_capacity(CREDENTIAL_LEN);
        s.push_str(CREDENTIAL_PREFIX);
        s.push_str(&URL_SAFE_NO_PAD.encode(bytes.as_ref()));
        Self(Zeroizing::new(s))
    }

    /// A presented credential, if it has exactly the shape [`generate`]
    /// produces: `mcpa_` and the canonical base64url of 32 bytes, nothing
    /// around it (no whitespace, no padding). Anything else is `None`, so a
    /// seat token, a truncated paste or a value with a trailing newline is
    /// refused before any lookup.
    ///
    /// [`generate`]: AgentCredential::generate
    pub fn parse(text: &str) -> Option<Self> {
        let body = text.strip_prefix(CREDENTIAL_PREFIX)?;
        if text.len() != CREDENTIAL_LEN {
            return None;
        }
        // The decoder refuses characters outside the alphabet and
        // non-zero trailing bits, so only the canonical form of 32 bytes
        // passes, and a credential has exactly one spelling.
        let decoded = Zeroizing::new(URL_SAFE_NO_PAD.decode(body).ok()?);
        (decoded.len() == 32).then(|| Self(Zeroizing::new(text.to_owned())))
    }

    /// The credential text, for the one output that shows it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AgentCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AgentCredential([redacted])")
    }
}

/// A credential on its one way out to the human who registers the agent:
/// it serializes as the plain string (the output must carry it) but `Debug`
/// prints `[redacted]`, so a stray `{:?}` or log field never leaks it; its
/// bytes are zeroed on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct ShownCredential(Zeroizing<String>);

impl ShownCredential {
    /// Takes the clear text of a freshly issued credential.
    pub fn new(credential: &AgentCredential) -> Self {
        Self(Zeroizing::new(credential.expose().to_owned()))
    }
}

impl std::ops::Deref for ShownCredential {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ShownCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl serde::Serialize for ShownCredential {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl schemars::JsonSchema for ShownCredential {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("ShownCredential")
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "pattern": "^mcpa_[A-Za-z0-9_-]{43}$" })
    }
}

impl ServerKey {
    /// The keyed hash the store keeps for an agent credential:
    /// HMAC-SHA-256 over a label of its own and the credential, so it is
    /// never equal to a seat token's hash or an audit seal.
    pub fn hash_agent_credential(&self, credential: &AgentCredential) -> TokenHash {
        TokenHash(self.credential_mac(credential).finalize().into_bytes().to_vec())
    }

    /// Checks `credential` against a stored hash in constant time.
    pub fn verify_agent_credential(&self, credential: &AgentCredential, stored: &TokenHash) -> bool {
        self.credential_mac(credential).verify_slice(&stored.0).is_ok()
    }

    fn credential_mac(&self, credential: &AgentCredential) -> super::HmacSha256 {
        let mut mac = self.hmac();
        mac.update(CREDENTIAL_LABEL);
        mac.update(credential.expose().as_bytes());
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::SessionToken;

    #[test]
    fn credentials_are_prefixed_256_bit_base64url() {
        let c = AgentCredential::generate();
        assert_eq!(c.expose().len(), CREDENTIAL_LEN);
        assert!(c.expose().starts_with(CREDENTIAL_PREFIX));
        let body = &c.expose()[CREDENTIAL_PREFIX.len()..];
        assert_eq!(URL_SAFE_NO_PAD.decode(body).unwrap().len(), 32);
        assert_ne!(c.expose(), AgentCredential::generate().expose());
    }

    #[test]
    fn parse_accepts_exactly_the_generated_shape() {
        let c = AgentCredential::generate();
        assert_eq!(AgentCredential::parse(c.expose()).unwrap().expose(), c.expose());
        let text = c.expose();
        let body = &text[CREDENTIAL_PREFIX.len()..];
        let refused = [
            String::new(),
            CREDENTIAL_PREFIX.to_owned(),
            format!("{text}\n"),
            format!(" {text}"),
            format!("{text}A"),
            text[..CREDENTIAL_LEN - 1].to_owned(),
            format!("mcpb_{body}"),
            format!("MCPA_{body}"),
            format!("{CREDENTIAL_PREFIX}{}=", &body[..42]),
            format!("{CREDENTIAL_PREFIX}{}+", &body[..42]),
            format!("{CREDENTIAL_PREFIX}{}é", &body[..41]),
            // 43 characters whose last one carries non-zero trailing bits.
            format!("{CREDENTIAL_PREFIX}{}B", "A".repeat(42)),
            SessionToken::generate().expose().to_owned(),
        ];
        for r in &refused {
            assert!(AgentCredential::parse(r).is_none(), "accepted {r:?}");
        }
        assert!(AgentCredential::parse(&format!("{CREDENTIAL_PREFIX}{}A", "A".repeat(42))).is_some());
    }

    #[test]
    fn hashes_are_keyed_and_apart_from_token_hashes() {
        let key = ServerKey::from_bytes([7; 32]);
        let c = AgentCredential::generate();
        let h = key.hash_agent_credential(&c);
        assert_eq!(h.0.len(), 32);
        assert!(key.verify_agent_credential(&c, &h));
        assert!(!key.verify_agent_credential(&AgentCredential::generate(), &h));
        assert!(!ServerKey::from_bytes([8; 32]).verify_agent_credential(&c, &h));
        // The same text MACed as a seat token gives another hash.
        let as_token = SessionToken::from_presented(c.expose());
        assert_ne!(key.hash_token(&as_token), h);
        assert_ne!(key.mac(c.expose().as_bytes()), h.0);
    }

    #[test]
    fn redaction_removes_a_pasted_credential() {
        let c = AgentCredential::generate();
        let text = format!("use {} now", c.expose());
        let out = crate::redact::Redactor::builtin().redact(&text);
        assert!(
            !out.text.contains(&c.expose()[CREDENTIAL_PREFIX.len()..]),
            "{}",
            out.text
        );
        assert_eq!(out.kinds, ["bridge_agent_credential"]);
    }

    #[test]
    fn shown_credentials_serialize_in_clear_but_never_debug() {
        let c = AgentCredential::generate();
        let shown = ShownCredential::new(&c);
        assert_eq!(
            serde_json::to_value(&shown).unwrap(),
            serde_json::json!(c.expose())
        );
        assert_eq!(&*shown, c.expose());
        assert_eq!(format!("{shown:?}"), "[redacted]");
        assert_eq!(format!("{c:?}"), "AgentCredential([redacted])");
    }
}
