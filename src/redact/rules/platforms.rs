//! Vendor token formats, second table: providers added from gitleaks'
//! published rules (`config/gitleaks.toml`) and the providers' own token
//! documentation, for the platforms agents meet in CI logs, configs and
//! shell sessions. Same conventions as `vendors.rs`: every entry is
//! anchored on its literal prefix, and the random part must look random.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::checks::{mixed, not_placeholder, random_tail_not_public};
use super::vendors::{c, g, v};
use super::{Hit, RuleSpec};

/// Base64 of a JWT (`ZXlK…` is `eyJ…` encoded once more), as Kubernetes
/// secrets and CI variables store them: it decodes to `eyJ….eyJ….…`.
fn base64_jwt(h: &Hit<'_>) -> bool {
    let s = h.secret.as_str();
    let Ok(bytes) = STANDARD.decode(s.get(..s.len() / 4 * 4).unwrap_or(s)) else {
        return false;
    };
    let text = String::from_utf8_lossy(&bytes);
    text.starts_with("eyJ") && text.matches('.').count() >= 2 && random_tail_not_public(h)
}

/// The second vendor table, in priority order.
pub fn rules() -> Vec<RuleSpec> {
    vec![
        // --- AI providers and agent tooling -------------------------------
        v("firecrawl_key", r"\bfc-[a-f0-9]{32}\b", &["fc-"]),
        v("anyscale_key", r"\besecret_[A-Za-z0-9]{20,}", &["esecret_"]),
        v("elevenlabs_key", r"\bsk_[a-f0-9]{48}\b", &["sk_"]),
        v("together_key", r"\btgp_v1_[A-Za-z0-9_\-]{40,}", &["tgp_v1_"]),
        v(
            "browserbase_key",
            r"\bbb_(?:live|test)_[A-Za-z0-9_\-]{20,}",
            &["bb_live_", "bb_test_"],
        ),
        // --- code hosting, CI, registries -----------------------------------
        g(
            "gitlab_session",
            r"\b_gitlab_session=([0-9a-z]{32})\b",
            &["_gitlab_session="],
            not_placeholder,
        ),
        v(
            "azure_devops_pat",
            r"\b[A-Za-z0-9]{52}AZDO[A-Za-z0-9]{4}\b",
            &["azdo"],
        ),
        v(
            "packagist_token",
            r"\bpackagist_[ou][ru]t_[a-f0-9]{68}\b",
            &["packagist_"],
        ),
        v("scalingo_token", r"\btk-us-[A-Za-z0-9_\-]{48}", &["tk-us-"]),
        v(
            "settlemint_token",
            r"\bsm_(?:pat|aat|sat)_[A-Za-z0-9]{16}\b",
            &["sm_pat_", "sm_aat_", "sm_sat_"],
        ),
        v(
            "authress_key",
            r"\b(?:sc|ext|scauth|authress)_[a-z0-9]{5,30}\.[a-z0-9]{4,6}\.acc[_\-][a-z0-9\-]{10,32}\.[a-z0-9+/_=\-]{30,120}",
            &[".acc_", ".acc-"],
        ),
        // --- cloud ------------------------------------------------------------
        v("tencent_secret_id", r"\bAKID[A-Za-z0-9]{32}\b", &["akid"]),
        v(
            "yandex_iam_token",
            r"\bt1\.[A-Za-z0-9_\-]+={0,2}\.[A-Za-z0-9_\-]{86}={0,2}",
            &["t1."],
        ),
        v("yandex_key", r"\bYC[A-Za-z0-9_\-]{38}\b", &["yc"]),
        v("clickhouse_key", r"\b4b1d[A-Za-z0-9]{38}\b", &["4b1d"]),
        v(
            "defined_networking_key",
            r"\bdnkey-[a-z0-9=_\-]{26}-[a-z0-9=_\-]{52}",
            &["dnkey-"],
        ),
        v("intra42_secret", r"\bs-s4t2(?:ud|af)-[a-f0-9]{64}\b", &["s-s4t2"]),
        v(
            "maxmind_key",
            r"\b[A-Za-z0-9]{6}_[A-Za-z0-9]{29}_mmk\b",
            &["_mmk"],
        ),
        // --- messaging --------------------------------------------------------
        v(
            "slack_token",
            r"\bxoxe\.xox[bp]-[0-9]-[A-Za-z0-9]{100,}",
            &["xoxe."],
        ),
        v(
            "matrix_token",
            r"\bsyt_[A-Za-z0-9]+_[A-Za-z0-9]{20}_[A-Za-z0-9]{6}\b",
            &["syt_"],
        ),
        // --- payments ---------------------------------------------------------
        v("stripe_key", r"\b(?:sk|rk)_prod_[A-Za-z0-9]{16,}", &["k_prod_"]),
        c(
            "mollie_key",
            r"\b(?:live|test)_[A-Za-z0-9]{30}\b",
            &["live_", "test_"],
            mixed,
        ),
        // --- observability and analytics -----------------------------------
        v(
            "honeycomb_key",
            r"\bhc[ax]ik_[0-9a-z]{58}\b",
            &["hcaik_", "hcxik_"],
        ),
        v(
            "axiom_token",
            r"\bxa[ap]t-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
            &["xaat-", "xapt-"],
        ),
        v("posthog_personal_key", r"\bphx_[A-Za-z0-9]{40,}", &["phx_"]),
        // --- JWTs stored base64-encoded once more -------------------------
        c("jwt", r"\bZXlK[A-Za-z0-9+/]{40,}={0,2}", &["zxlk"], base64_jwt),
    ]
}
