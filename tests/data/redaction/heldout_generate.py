#!/usr/bin/env python3
"""Generate the held-out redaction corpus (issue 12).

Written only from vendors' published token formats and realistic agent-message
contexts, without reading the engine's rule table or its own corpus. Every
secret is fake: random characters from a seeded generator, shaped like the
vendor's documented format (prefix, charset, length; no checksums).

    python3 tests/data/redaction/heldout_generate.py           # heldout_*.jsonl
    python3 tests/data/redaction/heldout_generate.py --blind   # blind_*.jsonl
    python3 tests/data/redaction/heldout_generate.py --check   # validate files

Standard library only. Output is deterministic for a given seed.
"""

import base64
import hashlib
import json
import os
import random
import string
import sys
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))

FAMILIES = [
    "credential_pair",
    "cli_flag",
    "auth_header",
    "registry_auth",
    "url_secret",
    "config_idiom",
    "vendor_token",
    "delimiter_value",
    "private_key",
    "jwt",
    "generic_secret",
]

rng = random.Random(0)

UPPER = string.ascii_uppercase
LOWER = string.ascii_lowercase
DIGITS = string.digits
ALNUM = UPPER + LOWER + DIGITS
HEX = "0123456789abcdef"
B64 = ALNUM + "+/"
B64URL = ALNUM + "-_"
B32 = UPPER + "234567"
BECH32 = "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L"


# --------------------------------------------------------------------------
# random material
# --------------------------------------------------------------------------

def r(charset, n):
    """n random characters from charset, never spelling a placeholder word."""
    while True:
        s = "".join(rng.choice(charset) for _ in range(n))
        low = s.lower()
        if "example" in low or "xxxx" in low or "test" in low or "redact" in low:
            continue
        return s


def hexs(n):
    return r(HEX, n)


def digits(n):
    return rng.choice("123456789") + r(DIGITS, n - 1)


def b64_of(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def b64url_of(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def rand_bytes(n):
    return bytes(rng.getrandbits(8) for _ in range(n))


def uid():
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def password(n=None, specials=""):
    """A random password: letters and digits (and the given specials), with at
    least one upper, lower and digit, starting with a letter."""
    n = n or rng.randint(12, 20)
    cs = ALNUM + specials
    while True:
        p = rng.choice(UPPER + LOWER) + r(cs, n - 1)
        if (any(c in UPPER for c in p) and any(c in LOWER for c in p)
                and any(c in DIGITS for c in p)
                and (not specials or any(c in specials for c in p[1:-1]))):
            return p


def delim_password(specials="#!&;$%", n=None):
    """A password with at least two delimiter characters strictly inside it,
    so a value cut at the first delimiter leaks its tail."""
    n = n or rng.randint(13, 20)
    while True:
        p = password(n, specials)
        inner = p[1:-1]
        if sum(c in specials for c in inner) >= 2 and p[-1] in ALNUM:
            return p


def user():
    return rng.choice(["deploy", "ci-bot", "admin", "svc_backup", "app", "jenkins",
                       "release", "grafana", "etl_loader", "root", "build", "ops",
                       "analytics", "payments-svc", "maria", "k.tanaka", "dev1"])


def host():
    return rng.choice(["db.internal", "10.0.3.17", "pg-prod-1.c9x2k.eu-west-1.rds.amazonaws.com",
                       "mysql.staging.svc.cluster.local", "cache-01", "mq.corp.lan",
                       "192.168.56.10", "warehouse.acme.io", "localhost", "orders-db"])


def ts():
    return "2026-%02d-%02dT%02d:%02d:%02d.%03dZ" % (
        rng.randint(1, 11), rng.randint(1, 28), rng.randint(0, 23),
        rng.randint(0, 59), rng.randint(0, 59), rng.randint(0, 999))


def sha1():
    return hashlib.sha1(rand_bytes(20)).hexdigest()


def sha256():
    return hashlib.sha256(rand_bytes(32)).hexdigest()


# --------------------------------------------------------------------------
# vendor token formats (published prefixes, charsets, lengths)
# --------------------------------------------------------------------------

def aws_key_id(prefix="AKIA"):
    return prefix + r(B32, 16)


def aws_secret():
    return r(B64, 40)


def jwt_token(payload=None, alg="HS256", sig_len=43):
    header = {"alg": alg, "typ": "JWT"}
    if alg.startswith("RS") or alg.startswith("ES"):
        header["kid"] = hexs(16)
        sig_len = 342 if alg.startswith("RS") else 86
    if payload is None:
        payload = {"sub": str(rng.randint(1000, 999999)), "iat": rng.randint(1700000000, 1790000000)}
        payload["exp"] = payload["iat"] + rng.choice([900, 3600, 86400])
    h = b64url_of(json.dumps(header, separators=(",", ":")).encode())
    p = b64url_of(json.dumps(payload, separators=(",", ":")).encode())
    return f"{h}.{p}.{r(B64URL, sig_len)}"


def mapbox_secret():
    body = b64url_of(json.dumps({"u": rng.choice(["acme-maps", "fleetview"]),
                                 "a": "cl" + r(LOWER + DIGITS, 23)},
                                separators=(",", ":")).encode())
    return f"sk.{body}.{r(B64URL, 22)}"


def sentry_org_token():
    body = b64url_of(json.dumps({"iat": rng.randint(1700000000, 1790000000),
                                 "url": "https://sentry.io",
                                 "region_url": "https://us.sentry.io",
                                 "org": rng.choice(["acme", "lumen-labs"])},
                                separators=(",", ":")).encode())
    return f"sntrys_{body}_{r(B64URL, 43)}"


def grafana_cloud_token():
    body = b64url_of(json.dumps({"o": digits(6), "n": "stack-" + digits(6) + "-hm-read",
                                 "k": r(ALNUM, 24), "m": {"r": "prod-us-east-0"}},
                                separators=(",", ":")).encode())
    return "glc_" + body


def onepassword_token():
    body = b64_of(json.dumps({"signInAddress": "my.1password.com", "userAuth": {
        "method": "SRPg-4096", "alg": "PBES2g-HS256", "iterations": 650000,
        "salt": r(B64URL, 22)}, "email": r(LOWER, 12) + "@1passwordserviceaccounts.com",
        "srpX": hexs(64), "muk": {"alg": "A256GCM", "ext": True, "k": r(B64URL, 43),
                                   "key_ops": ["encrypt", "decrypt"], "kty": "oct",
                                   "kid": "mp"}, "secretKey": "A3-" + r(UPPER + DIGITS, 6),
        "throttleSecret": {"seed": hexs(64), "uuid": r(UPPER + DIGITS, 26)},
        "deviceUuid": r(LOWER + DIGITS, 26)}, separators=(",", ":")).encode())
    return "ops_" + body.rstrip("=")


# (vendor, generator, env-var name a project would use)
VENDORS = [
    ("GitHub", lambda: "ghp_" + r(ALNUM, 36), "GITHUB_TOKEN"),
    ("GitHub", lambda: "github_pat_" + r(ALNUM, 22) + "_" + r(ALNUM, 59), "GH_TOKEN"),
    ("GitHub", lambda: "gho_" + r(ALNUM, 36), "GH_OAUTH_TOKEN"),
    ("GitHub", lambda: "ghs_" + r(ALNUM, 36), "GH_APP_INSTALLATION_TOKEN"),
    ("GitHub", lambda: "ghr_" + r(ALNUM, 76), "GH_REFRESH_TOKEN"),
    ("GitLab", lambda: "glpat-" + r(B64URL, 20), "GITLAB_TOKEN"),
    ("GitLab", lambda: "glrt-" + r(B64URL, 20), "RUNNER_TOKEN"),
    ("GitLab", lambda: "glptt-" + hexs(40), "TRIGGER_TOKEN"),
    ("Slack", lambda: f"xoxb-{digits(12)}-{digits(13)}-{r(ALNUM, 24)}", "SLACK_BOT_TOKEN"),
    ("Slack", lambda: f"xoxp-{digits(12)}-{digits(12)}-{digits(13)}-{hexs(32)}", "SLACK_USER_TOKEN"),
    ("Slack", lambda: f"xapp-1-A{r(UPPER + DIGITS, 10)}-{digits(13)}-{hexs(64)}", "SLACK_APP_TOKEN"),
    ("Stripe", lambda: "sk_live_51" + r(ALNUM, 97), "STRIPE_SECRET_KEY"),
    ("Stripe", lambda: "rk_live_51" + r(ALNUM, 97), "STRIPE_RESTRICTED_KEY"),
    ("Stripe", lambda: "whsec_" + r(ALNUM, 32), "STRIPE_WEBHOOK_SECRET"),
    ("AWS", lambda: aws_secret(), "AWS_SECRET_ACCESS_KEY"),
    ("Google Cloud", lambda: "AIza" + r(B64URL, 35), "GOOGLE_API_KEY"),
    ("Google Cloud", lambda: "GOCSPX-" + r(B64URL, 28), "GOOGLE_CLIENT_SECRET"),
    ("Google Cloud", lambda: "ya29.a0" + r(B64URL, 150), "GOOGLE_OAUTH_ACCESS_TOKEN"),
    ("Azure", lambda: r(ALNUM, 3) + rng.choice(DIGITS) + "Q~" + r(ALNUM + "_.~-", 34), "AZURE_CLIENT_SECRET"),
    ("Azure", lambda: r(B64, 86) + "==", "AZURE_STORAGE_KEY"),
    ("Twilio", lambda: hexs(32), "TWILIO_AUTH_TOKEN"),
    ("SendGrid", lambda: "SG." + r(B64URL, 22) + "." + r(B64URL, 43), "SENDGRID_API_KEY"),
    ("npm", lambda: "npm_" + r(ALNUM, 36), "NPM_TOKEN"),
    ("PyPI", lambda: "pypi-AgEIcHlwaS5vcmc" + r(B64URL, 140), "PYPI_TOKEN"),
    ("Docker Hub", lambda: "dckr_pat_" + r(B64URL, 27), "DOCKERHUB_TOKEN"),
    ("Anthropic", lambda: "sk-ant-api03-" + r(B64URL, 93) + "AA", "ANTHROPIC_API_KEY"),
    ("Anthropic", lambda: "sk-ant-admin01-" + r(B64URL, 93) + "AA", "ANTHROPIC_ADMIN_KEY"),
    ("OpenAI", lambda: "sk-proj-" + r(B64URL, 74) + "T3BlbkFJ" + r(B64URL, 74), "OPENAI_API_KEY"),
    ("OpenAI", lambda: "sk-" + r(ALNUM, 20) + "T3BlbkFJ" + r(ALNUM, 20), "OPENAI_KEY"),
    ("OpenAI", lambda: "sk-svcacct-" + r(B64URL, 74) + "T3BlbkFJ" + r(B64URL, 74), "OPENAI_SVC_KEY"),
    ("Hugging Face", lambda: "hf_" + r(UPPER + LOWER, 34), "HF_TOKEN"),
    ("Datadog", lambda: hexs(32), "DD_API_KEY"),
    ("Datadog", lambda: hexs(40), "DD_APP_KEY"),
    ("Sentry", sentry_org_token, "SENTRY_AUTH_TOKEN"),
    ("Sentry", lambda: "sntryu_" + hexs(64), "SENTRY_USER_TOKEN"),
    ("New Relic", lambda: "NRAK-" + r(UPPER + DIGITS, 27), "NEW_RELIC_API_KEY"),
    ("New Relic", lambda: hexs(36) + "NRAL", "NEW_RELIC_LICENSE_KEY"),
    ("Shopify", lambda: "shpat_" + hexs(32), "SHOPIFY_ACCESS_TOKEN"),
    ("Shopify", lambda: "shpss_" + hexs(32), "SHOPIFY_SHARED_SECRET"),
    ("Mailgun", lambda: "key-" + hexs(32), "MAILGUN_API_KEY"),
    ("Mailgun", lambda: f"{hexs(32)}-{hexs(8)}-{hexs(8)}", "MAILGUN_PRIVATE_KEY"),
    ("Telegram", lambda: f"{digits(10)}:AA{r(B64URL, 33)}", "TELEGRAM_BOT_TOKEN"),
    ("Discord", lambda: f"{rng.choice('MNO')}{r(ALNUM, 25)}.{r(B64URL, 6)}.{r(B64URL, 38)}", "DISCORD_BOT_TOKEN"),
    ("Mailchimp", lambda: f"{hexs(32)}-us{rng.randint(1, 21)}", "MAILCHIMP_API_KEY"),
    ("DigitalOcean", lambda: "dop_v1_" + hexs(64), "DIGITALOCEAN_TOKEN"),
    ("DigitalOcean", lambda: "doo_v1_" + hexs(64), "DO_OAUTH_TOKEN"),
    ("Heroku", lambda: "HRKU-AA" + r(B64URL, 58), "HEROKU_API_KEY"),
    ("Atlassian", lambda: "ATATT3xFfGF0" + r(B64URL, 170) + "=" + hexs(8).upper(), "JIRA_API_TOKEN"),
    ("Linear", lambda: "lin_api_" + r(ALNUM, 40), "LINEAR_API_KEY"),
    ("Postman", lambda: f"PMAK-{hexs(24)}-{hexs(34)}", "POSTMAN_API_KEY"),
    ("Doppler", lambda: "dp.pt." + r(ALNUM, 43), "DOPPLER_TOKEN"),
    ("Pulumi", lambda: "pul-" + hexs(40), "PULUMI_ACCESS_TOKEN"),
    ("Terraform Cloud", lambda: r(LOWER + DIGITS, 14) + ".atlasv1." + r(ALNUM, 67), "TFE_TOKEN"),
    ("HashiCorp Vault", lambda: "hvs." + r(B64URL, 92), "VAULT_TOKEN"),
    ("Grafana", lambda: "glsa_" + r(ALNUM, 32) + "_" + hexs(8), "GRAFANA_SA_TOKEN"),
    ("Grafana", grafana_cloud_token, "GRAFANA_CLOUD_TOKEN"),
    ("PlanetScale", lambda: "pscale_tkn_" + r(B64URL, 43), "PLANETSCALE_SERVICE_TOKEN"),
    ("PlanetScale", lambda: "pscale_pw_" + r(B64URL, 43), "DATABASE_PASSWORD"),
    ("Square", lambda: "EAAA" + r(B64URL, 60), "SQUARE_ACCESS_TOKEN"),
    ("Square", lambda: "sq0csp-" + r(B64URL, 43), "SQUARE_APP_SECRET"),
    ("Braintree", lambda: f"access_token$production${r(LOWER + DIGITS, 16)}${hexs(32)}", "BRAINTREE_ACCESS_TOKEN"),
    ("age", lambda: "AGE-SECRET-KEY-1" + r(BECH32, 58), "SOPS_AGE_KEY"),
    ("Databricks", lambda: "dapi" + hexs(32), "DATABRICKS_TOKEN"),
    ("Cloudflare", lambda: r(B64URL, 40), "CLOUDFLARE_API_TOKEN"),
    ("Cloudflare", lambda: f"v1.0-{hexs(24)}-{hexs(146)}", "CF_ORIGIN_CA_KEY"),
    ("Notion", lambda: "ntn_" + digits(11) + r(ALNUM, 35), "NOTION_TOKEN"),
    ("Notion", lambda: "secret_" + r(ALNUM, 43), "NOTION_API_KEY"),
    ("Airtable", lambda: "pat" + r(ALNUM, 14) + "." + hexs(64), "AIRTABLE_TOKEN"),
    ("Replicate", lambda: "r8_" + r(ALNUM, 37), "REPLICATE_API_TOKEN"),
    ("Groq", lambda: "gsk_" + r(ALNUM, 52), "GROQ_API_KEY"),
    ("Perplexity", lambda: "pplx-" + r(ALNUM, 48), "PERPLEXITY_API_KEY"),
    ("xAI", lambda: "xai-" + r(ALNUM, 80), "XAI_API_KEY"),
    ("Supabase", lambda: "sbp_" + hexs(40), "SUPABASE_ACCESS_TOKEN"),
    ("Bitbucket", lambda: "ATBB" + r(ALNUM, 32), "BITBUCKET_APP_PASSWORD"),
    ("Buildkite", lambda: "bkua_" + hexs(40), "BUILDKITE_API_TOKEN"),
    ("Sourcegraph", lambda: f"sgp_{hexs(16)}_{hexs(40)}", "SRC_ACCESS_TOKEN"),
    ("RubyGems", lambda: "rubygems_" + hexs(48), "GEM_HOST_API_KEY"),
    ("NuGet", lambda: "oy2" + r(LOWER + DIGITS, 43), "NUGET_API_KEY"),
    ("Clojars", lambda: "CLOJARS_" + r(LOWER + DIGITS, 60), "CLOJARS_TOKEN"),
    ("Dynatrace", lambda: f"dt0c01.{r(UPPER + DIGITS, 24)}.{r(UPPER + DIGITS, 64)}", "DT_API_TOKEN"),
    ("Mapbox", mapbox_secret, "MAPBOX_SECRET_TOKEN"),
    ("Tailscale", lambda: f"tskey-auth-k{r(ALNUM, 10)}CNTRL-{r(ALNUM, 33)}", "TS_AUTHKEY"),
    ("LangSmith", lambda: f"lsv2_pt_{hexs(32)}_{hexs(10)}", "LANGSMITH_API_KEY"),
    ("OpenRouter", lambda: "sk-or-v1-" + hexs(64), "OPENROUTER_API_KEY"),
    ("Resend", lambda: f"re_{r(ALNUM, 8)}_{r(ALNUM, 24)}", "RESEND_API_KEY"),
    ("JFrog", lambda: "AKCp8" + r(ALNUM, 68), "ARTIFACTORY_API_KEY"),
    ("Fly.io", lambda: "fo1_" + r(B64URL, 43), "FLY_API_TOKEN"),
    ("Prefect", lambda: "pnu_" + r(ALNUM, 36), "PREFECT_API_KEY"),
    ("Adafruit", lambda: "aio_" + r(ALNUM, 28), "ADAFRUIT_IO_KEY"),
    ("Typeform", lambda: "tfp_" + r(B64URL, 59), "TYPEFORM_TOKEN"),
    ("EasyPost", lambda: "EZAK" + r(ALNUM, 54), "EASYPOST_API_KEY"),
    ("Flutterwave", lambda: f"FLWSECK-{hexs(32)}-X", "FLW_SECRET_KEY"),
    ("Frame.io", lambda: "fio-u-" + r(B64URL, 64), "FRAMEIO_TOKEN"),
    ("Okta", lambda: "00" + r(B64URL, 40), "OKTA_API_TOKEN"),
    ("Figma", lambda: "figd_" + r(B64URL, 40), "FIGMA_TOKEN"),
    ("Infracost", lambda: "ico-" + r(ALNUM, 32), "INFRACOST_API_KEY"),
    ("Pinecone", lambda: f"pcsk_{r(ALNUM, 5)}_{r(ALNUM, 63)}", "PINECONE_API_KEY"),
    ("Shippo", lambda: "shippo_live_" + hexs(40), "SHIPPO_API_TOKEN"),
    ("Brevo", lambda: f"xkeysib-{hexs(64)}-{r(ALNUM, 16)}", "BREVO_API_KEY"),
    ("HubSpot", lambda: "pat-na1-" + uid(), "HUBSPOT_ACCESS_TOKEN"),
    ("LaunchDarkly", lambda: "api-" + uid(), "LD_API_KEY"),
    ("Cerebras", lambda: "csk-" + r(LOWER + DIGITS, 48), "CEREBRAS_API_KEY"),
    ("DeepSeek", lambda: "sk-" + hexs(32), "DEEPSEEK_API_KEY"),
    ("Render", lambda: "rnd_" + r(ALNUM, 32), "RENDER_API_KEY"),
    ("Netlify", lambda: "nfp_" + r(ALNUM, 36), "NETLIFY_AUTH_TOKEN"),
    ("Contentful", lambda: "CFPAT-" + r(B64URL, 43), "CONTENTFUL_MANAGEMENT_TOKEN"),
    ("1Password", onepassword_token, "OP_SERVICE_ACCOUNT_TOKEN"),
    ("Firebase", lambda: f"AAAA{r(B64URL, 7)}:APA91b{r(B64URL, 134)}", "FCM_SERVER_KEY"),
    ("Meta", lambda: "EAAG" + r(ALNUM, 180), "FB_ACCESS_TOKEN"),
    ("X (Twitter)", lambda: "AAAAAAAAAAAAAAAAAAAAA" + r(ALNUM, 25) + "%3D" + r(ALNUM, 50), "TWITTER_BEARER_TOKEN"),
    ("Plaid", lambda: "access-production-" + uid(), "PLAID_ACCESS_TOKEN"),
    ("Snyk", lambda: uid(), "SNYK_TOKEN"),
    ("CircleCI", lambda: f"CCIPAT_{r(ALNUM, 22)}_{hexs(40)}", "CIRCLE_TOKEN"),
    ("Codecov", lambda: uid(), "CODECOV_TOKEN"),
    ("Octopus Deploy", lambda: "API-" + r(UPPER + DIGITS, 26), "OCTOPUS_API_KEY"),
    ("Harness", lambda: f"pat.{r(B64URL, 22)}.{r(ALNUM, 24)}.{r(ALNUM, 20)}", "HARNESS_PLATFORM_API_KEY"),
    ("Scalingo", lambda: "tk-us-" + r(B64URL, 48), "SCALINGO_API_TOKEN"),
    ("ReadMe", lambda: "rdme_" + hexs(70), "README_API_KEY"),
    ("Duffel", lambda: "duffel_live_" + r(B64URL, 43), "DUFFEL_ACCESS_TOKEN"),
    ("Mistral", lambda: r(ALNUM, 32), "MISTRAL_API_KEY"),
    ("Cohere", lambda: r(ALNUM, 40), "CO_API_KEY"),
    ("OpenShift", lambda: "sha256~" + r(B64URL, 43), "OPENSHIFT_TOKEN"),
    ("IBM Cloud", lambda: r(B64URL, 44), "IBMCLOUD_API_KEY"),
    ("Yandex Cloud", lambda: "AQVN" + r(B64URL, 36), "YC_API_KEY"),
    ("Rollbar", lambda: hexs(32), "ROLLBAR_ACCESS_TOKEN"),
]

# vendors whose tokens carry no self-identifying prefix: always shown with a key name
CONTEXT_ONLY = {"AWS", "Twilio", "Datadog", "Cloudflare", "Snyk", "Codecov", "Mistral",
                "Cohere", "IBM Cloud", "Rollbar", "Okta", "DeepSeek", "Mailgun",
                "Azure", "New Relic"}


def vendor(name):
    choices = [v for v in VENDORS if v[0] == name]
    v = rng.choice(choices)
    return v[1]()


# --------------------------------------------------------------------------
# message frames: where a snippet sits in an agent message
# --------------------------------------------------------------------------

def gha_log(lines):
    """GitHub Actions style log: one increasing timestamp per line."""
    h, m, sec = rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 50)
    day = "2026-%02d-%02d" % (rng.randint(1, 11), rng.randint(1, 28))
    out = []
    for i, ln in enumerate(lines):
        frac = rng.randint(0, 9999999)
        out.append(f"{day}T{h:02d}:{m:02d}:{min(59, sec + i):02d}.{frac:07d}Z {ln}")
    return "\n".join(out)


def diff_of(path, lines, removed=None):
    body = []
    if removed:
        body += ["-" + ln for ln in removed]
    body += ["+" + ln for ln in lines]
    a, b = hexs(7), hexs(7)
    return (f"diff --git a/{path} b/{path}\nindex {a}..{b} 100644\n--- a/{path}\n+++ b/{path}\n"
            f"@@ -{rng.randint(1, 80)},{len(removed or [])} +{rng.randint(1, 80)},{len(lines)} @@\n"
            + "\n".join(body))


FILE_FRAMES = {2, 5, 7, 8, 11}  # frames that present the snippet as a file's content


def frame(snippet, lang="", path=None, kind="file"):
    """Put a snippet somewhere realistic in a message: start, middle or end.
    kind="line" is for log lines and prose, which are never shown as a file."""
    lines = snippet.split("\n")
    path = path or rng.choice([".env", "config/settings.py", "deploy/values.yaml", "app.toml",
                               "docker-compose.yml", "scripts/deploy.sh", "src/config.ts"])
    options = [
        lambda: snippet,
        lambda: f"```{lang}\n{snippet}\n```",
        lambda: f"Here's the relevant part of `{path}`:\n\n```{lang}\n{snippet}\n```\n\nCan you check why the job still fails?",
        lambda: f"{snippet}\n\n^ that's what I have locally, the CI run uses the same values.",
        lambda: f"Found it. The failing step was using this:\n{snippet}\nI'll rotate it after the deploy.",
        lambda: diff_of(path, lines),
        lambda: gha_log(["##[group]Run ./scripts/deploy.sh"] + lines + ["##[endgroup]", "Error: Process completed with exit code 1."]),
        lambda: f"$ cat {path}\n{snippet}\n$ ",
        lambda: json.dumps({"tool": "read_file", "path": path, "content": snippet + "\n"}, ensure_ascii=False),
        lambda: json.dumps({"type": "tool_result", "exit_code": 0, "stdout": snippet, "stderr": ""}, indent=2, ensure_ascii=False),
        lambda: f"> {snippet}" if len(lines) == 1 else f"Quoted from the ticket:\n\n" + "\n".join("> " + ln for ln in lines),
        lambda: f"Step 3 of the runbook says to put this in place first:\n\n    " + "\n    ".join(lines) + "\n\nthen restart the service.",
    ]
    if kind != "file":
        options = [o for i, o in enumerate(options) if i not in FILE_FRAMES]
    return rng.choice(options)()


def place(snippet, secrets, lang="", path=None, frames=True, kind="file"):
    """Frame a snippet, retrying until every secret survives the framing
    verbatim (JSON escaping or line prefixes can split a secret)."""
    if frames:
        for _ in range(20):
            text = frame(snippet, lang, path, kind)
            if all(s in text for s in secrets):
                return text
    return snippet


CASES = []


def add(category, text, secrets):
    assert category in FAMILIES, category
    for s in secrets:
        assert s and s in text, (category, s, text)
    CASES.append({"category": category, "text": text, "secrets": list(secrets)})


# --------------------------------------------------------------------------
# positive families
# --------------------------------------------------------------------------

def fam_credential_pair():
    c = "credential_pair"
    for i in range(4):
        kid, sec = aws_key_id(), aws_secret()
        tpl = [
            f"[default]\naws_access_key_id = {kid}\naws_secret_access_key = {sec}\nregion = eu-central-1",
            f's3 = boto3.client("s3", aws_access_key_id="{kid}", aws_secret_access_key="{sec}")',
            f"const s3 = new S3Client({{ region: 'us-east-1', credentials: {{ accessKeyId: '{kid}', secretAccessKey: '{sec}' }} }});",
            f'creds := credentials.NewStaticCredentialsProvider("{kid}", "{sec}", "")',
        ][i]
        add(c, place(tpl, [sec], path="~/.aws/credentials"), [sec])
    kid, sec = aws_key_id(), aws_secret()
    add(c, f"The IAM user for the nightly export is ready. Access key ID {kid}, secret {sec} - "
           "please store it in the vault and delete this message.", [sec])
    kid, sec = aws_key_id(), aws_secret()
    add(c, f"$ AWS_ACCESS_KEY_ID={kid} AWS_SECRET_ACCESS_KEY={sec} aws s3 ls s3://acme-backups/\n"
           f"2026-11-28 23:10:04 pg_dump_20261128.sql.gz", [sec])
    kid, sec = aws_key_id(), aws_secret()
    add(c, f"User name,Password,Access key ID,Secret access key,Console login link\n"
           f"ci-exporter,,{kid},{sec},https://123456789012.signin.aws.amazon.com/console", [sec])
    kid, sec = aws_key_id(), aws_secret()
    add(c, place(f'AWSCredentials creds = new BasicAWSCredentials("{kid}", "{sec}");', [sec], lang="java"), [sec])
    kid, sec = aws_key_id("ASIA"), aws_secret()
    tok = "IQoJb3JpZ2luX2VjE" + r(B64, 380) + "=="
    add(c, json.dumps({"Credentials": {"AccessKeyId": kid, "SecretAccessKey": sec, "SessionToken": tok,
                                       "Expiration": "2026-11-29T04:12:55+00:00"},
                       "AssumedRoleUser": {"AssumedRoleId": "AROA" + r(B32, 17) + ":ci",
                                           "Arn": "arn:aws:sts::123456789012:assumed-role/deploy/ci"}}, indent=4),
        [sec, tok])
    kid, sec = aws_key_id(), aws_secret()
    add(c, place(f'provider "aws" {{\n  region     = "us-west-2"\n  access_key = "{kid}"\n  secret_key = "{sec}"\n}}',
                 [sec], lang="hcl", path="main.tf"), [sec])
    kid, sec = aws_key_id(), aws_secret()
    add(c, f"let creds = Credentials::new(\"{kid}\", \"{sec}\", None, None, \"static\");", [sec])
    kid, sec = aws_key_id(), aws_secret()
    add(c, f"I ran `aws configure` and typed:\nAWS Access Key ID [None]: {kid}\nAWS Secret Access Key [None]: {sec}\n"
           "Default region name [None]: ap-south-1\nDefault output format [None]: json", [sec])
    kid, sec = aws_key_id(), aws_secret()
    add(c, f"echo {kid}:{sec} > ${{HOME}}/.passwd-s3fs && chmod 600 ${{HOME}}/.passwd-s3fs", [sec])
    # Twilio
    for i in range(4):
        sid, tok = "AC" + hexs(32), hexs(32)
        tpl = [
            f"client = Client(\"{sid}\", \"{tok}\")\nmessage = client.messages.create(to=\"+15558675310\", from_=\"+15017122661\", body=\"hi\")",
            f"curl -X POST https://api.twilio.com/2010-04-01/Accounts/{sid}/Messages.json \\\n  --data-urlencode \"Body=deploy done\" \\\n  -u {sid}:{tok}",
            f"Twilio account SID is {sid} and the auth token {tok}; the number is +1 555 0100.",
            f"const client = require('twilio')('{sid}', '{tok}');",
        ][i]
        add(c, place(tpl, [tok]), [tok])
    sk, sec = "SK" + hexs(32), r(ALNUM, 32)
    add(c, place(f"TWILIO_API_KEY={sk}\nTWILIO_API_SECRET={sec}", [sec]), [sec])
    # other key id + secret pairs
    lt, ls = "LTAI" + r(ALNUM, 20), r(ALNUM, 30)
    add(c, place(f"client = AcsClient('{lt}', '{ls}', 'cn-hangzhou')", [ls], lang="python"), [ls])
    ak, sk2 = "AKID" + r(ALNUM, 32), r(ALNUM, 32)
    add(c, f"cred = credential.Credential(\"{ak}\", \"{sk2}\")  # tencentcloud", [sk2])
    keyid, appkey = "005" + hexs(22), "K005" + r(ALNUM + "/+", 27)
    add(c, f"b2 authorize-account {keyid} {appkey}\nUsing https://api.backblazeb2.com", [appkey])
    appid, adm = r(UPPER + DIGITS, 10), hexs(32)
    add(c, place(f"const client = algoliasearch('{appid}', '{adm}'); // admin key, needed for setSettings", [adm]), [adm])
    cid, csec = digits(12) + "-" + r(LOWER + DIGITS, 32) + ".apps.googleusercontent.com", "GOCSPX-" + r(B64URL, 28)
    add(c, json.dumps({"web": {"client_id": cid, "project_id": "acme-login", "client_secret": csec,
                               "auth_uri": "https://accounts.google.com/o/oauth2/auth"}}), [csec])
    gid, gsec = "Iv1." + hexs(16), hexs(40)
    add(c, f"GitHub App created. Client ID: {gid}\nClient secret: {gsec}\nCopy it now, you won't see it again.", [gsec])
    app_id, app_secret = digits(15), hexs(32)
    add(c, place(f"FB_APP_ID={app_id}\nFB_APP_SECRET={app_secret}", [app_secret]), [app_secret])
    pk, psec = r(LOWER, 8), uid()
    add(c, f"atlas config set public_api_key {pk}\natlas config set private_api_key {psec}", [psec])
    ck, cs = r(ALNUM, 25), r(ALNUM, 50)
    add(c, f"auth = tweepy.OAuth1UserHandler(\"{ck}\", \"{cs}\")", [cs])
    rk, rs = "rzp_live_" + r(ALNUM, 14), r(ALNUM, 24)
    add(c, place(f"razorpay:\n  key_id: {rk}\n  key_secret: {rs}", [rs], lang="yaml"), [rs])
    key, sec = hexs(20), hexs(20)
    add(c, f"pusher = Pusher(app_id=u'{digits(7)}', key=u'{key}', secret=u'{sec}', cluster=u'eu')", [sec])
    acc, ak2 = r(LOWER + DIGITS, 12), r(B64, 86) + "=="
    add(c, f"DefaultEndpointsProtocol=https;AccountName={acc};AccountKey={ak2};EndpointSuffix=core.windows.net", [ak2])
    tid, cid2, csec2 = uid(), uid(), r(ALNUM, 3) + "8Q~" + r(ALNUM + "_.~-", 34)
    add(c, f"az login --service-principal --username {cid2} --tenant {tid} --password {csec2}", [csec2])
    apikey, apisec = r(ALNUM, 64), r(ALNUM, 64)
    add(c, f"client = Client(api_key='{apikey}', api_secret='{apisec}')  # binance", [apikey, apisec])


def fam_cli_flag():
    c = "cli_flag"
    pw = password()
    add(c, f"$ mysql -h {host()} -u {user()} -p{pw} orders -e 'select count(*) from invoices'\n+----------+\n| count(*) |\n+----------+\n|    41877 |\n+----------+", [pw])
    pw = password()
    add(c, place(f"mysqldump --user=backup --password={pw} --single-transaction shop > shop.sql", [pw], lang="bash"), [pw])
    pw = password()
    add(c, f"docker login -u acmebot -p {pw} registry.acme.io\nWARNING! Using --password via the CLI is insecure. Use --password-stdin.\nLogin Succeeded", [pw])
    tok = vendor("Docker Hub")
    add(c, place(f"docker login --username acmeci --password {tok}", [tok], lang="bash"), [tok])
    key = r(B64, 86) + "=="
    add(c, f"az storage blob upload --account-name acmeartifacts --account-key {key} --container-name builds --file dist.tgz --name dist-{hexs(7)}.tgz", [key])
    key = r(B64, 86) + "=="
    add(c, place(f"az storage container list \\\n  --account-name logsarchive \\\n  --account-key \"{key}\" \\\n  -o table", [key], lang="bash"), [key])
    pw = password()
    add(c, f"curl -u admin:{pw} -X GET http://{host()}:9200/_cluster/health?pretty", [pw])
    pw = password()
    add(c, f"Tried `curl --user deploy:{pw} https://nexus.corp.lan/service/rest/v1/repositories` and got 401, so the account is locked?", [pw])
    pw = password()
    add(c, f"mongosh \"mongodb://{host()}:27017/admin\" --username root --password {pw} --eval 'db.runCommand({{ping:1}})'", [pw])
    pw = password()
    add(c, f"$ redis-cli -h cache-01 -a {pw} INFO replication\nWarning: Using a password with '-a' or '-u' option on the command line interface may not be safe.\n# Replication\nrole:master", [pw])
    pw = password()
    add(c, place(f"sshpass -p '{pw}' ssh -o StrictHostKeyChecking=no {user()}@10.20.0.4 'systemctl restart app'", [pw], lang="bash"), [pw])
    pw = password()
    add(c, f"keytool -importkeystore -srckeystore server.p12 -srcstoretype PKCS12 -srcstorepass {pw} -destkeystore server.jks -deststorepass {pw}", [pw])
    pw = password()
    add(c, f"openssl pkcs12 -export -in cert.pem -inkey key.pem -out bundle.p12 -passout pass:{pw}", [pw])
    pw = password()
    add(c, f"vault login -method=userpass username=ops password={pw}", [pw])
    pw = password()
    add(c, place(f"helm repo add internal https://charts.acme.io --username ci --password {pw}", [pw], lang="bash"), [pw])
    pw = password()
    add(c, f"kubectl create secret generic pg-creds --from-literal=username=app --from-literal=password={pw} -n prod", [pw])
    tok = jwt_token({"iss": "kubernetes/serviceaccount", "kubernetes.io/serviceaccount/namespace": "ci",
                     "sub": "system:serviceaccount:ci:deployer"}, alg="RS256")
    add(c, f"kubectl --server https://10.0.0.1:6443 --token={tok} get pods -A", [tok])
    pw = password()
    add(c, f"cf login -a https://api.sys.acme.io -u release -p {pw} -o acme -s prod", [pw])
    tok = vendor("OpenShift")
    add(c, f"oc login --token={tok} --server=https://api.ocp4.acme.io:6443", [tok])
    tok = vendor("PyPI")
    add(c, f"twine upload -u __token__ -p {tok} dist/*", [tok])
    pw = password()
    add(c, f"java -Djavax.net.ssl.keyStore=/etc/app/ks.jks -Djavax.net.ssl.keyStorePassword={pw} -jar app.jar", [pw])
    pw = password()
    add(c, f"ldapsearch -x -H ldaps://ldap.corp.lan -D 'cn=admin,dc=corp,dc=lan' -w {pw} -b 'ou=people,dc=corp,dc=lan' '(uid=jdoe)'", [pw])
    pw = password()
    add(c, f"sqlcmd -S tcp:sql01.corp.lan,1433 -U sa -P {pw} -Q \"SELECT @@VERSION\"", [pw])
    pw = password()
    add(c, place(f"smbclient //fileserver/finance -U 'CORP\\svc_scan%{pw}' -c 'ls'", [pw], lang="bash"), [pw])
    pw = password()
    add(c, f"wget --user=mirror --password={pw} -r ftp://files.partner.net/exports/", [pw])
    tok = vendor("NuGet")
    add(c, f"dotnet nuget push bin/Release/Acme.Core.4.2.0.nupkg --api-key {tok} --source https://api.nuget.org/v3/index.json", [tok])
    pw = password()
    add(c, f"mvn deploy -DaltDeploymentRepository=internal::https://repo.acme.io/releases -Drepo.username=ci -Drepo.password={pw}", [pw])
    pw = password()
    add(c, f"terraform apply -var 'db_password={pw}' -auto-approve", [pw])
    pw = password()
    add(c, f"ansible-playbook site.yml -i inventory/prod --extra-vars \"ansible_become_pass={pw}\"", [pw])
    pw = password()
    add(c, f"7z a -p{pw} -mhe=on backup.7z ./exports", [pw])
    pw = password()
    add(c, f"mosquitto_pub -h mqtt.acme.io -p 8883 -u sensor01 -P {pw} -t 'plant/line3/temp' -m 21.4", [pw])
    tok = vendor("GitHub")
    add(c, f"gh secret set DEPLOY_KEY --body {tok} --repo acme/infra", [tok])


def basic(u, p):
    return b64_of(f"{u}:{p}".encode())


def fam_auth_header():
    c = "auth_header"
    b = basic(user(), password())
    add(c, f"curl -s -H 'Authorization: Basic {b}' https://jenkins.acme.io/api/json?tree=jobs[name]", [b])
    b = basic("grafana", password())
    add(c, place(f"location /metrics/ {{\n    proxy_pass http://prometheus:9090/;\n    proxy_set_header Authorization \"Basic {b}\";\n}}", [b], lang="nginx", path="/etc/nginx/conf.d/metrics.conf"), [b])
    b = basic("backend", password())
    add(c, place(f"backend api\n    http-request set-header Authorization \"Basic {b}\"\n    server api1 10.0.1.12:8080 check", [b], path="haproxy.cfg"), [b])
    tok = r(B64URL, 48)
    add(c, place(f"request_headers_to_add:\n- header:\n    key: Authorization\n    value: \"Bearer {tok}\"\n  append_action: OVERWRITE_IF_EXISTS_OR_ADD", [tok], lang="yaml", path="envoy.yaml"), [tok])
    tok = r(ALNUM, 40)
    add(c, f"GET /v2/orders?page=3 HTTP/1.1\nHost: api.partner.io\nAuthorization: Bearer {tok}\nAccept: application/json\nUser-Agent: python-requests/2.31.0", [tok])
    tok = r(ALNUM + "._-", 64)
    add(c, f"resp = requests.get(url, headers={{\"Authorization\": \"Bearer {tok}\", \"Accept\": \"application/json\"}}, timeout=10)", [tok])
    tok = hexs(40)
    add(c, f"fetch(`${{API}}/projects`, {{ headers: {{ Authorization: 'Token {tok}' }} }})", [tok])
    tok = vendor("GitHub")
    add(c, f"curl -H \"Authorization: token {tok}\" https://api.github.com/repos/acme/infra/actions/runs?per_page=5", [tok])
    tok = r(ALNUM, 40)
    add(c, place(f"Authorization: Token token={tok}", [tok]), [tok])
    nonce, resp = hexs(32), hexs(32)
    add(c, f"Authorization: Digest username=\"admin\", realm=\"camera\", nonce=\"{nonce}\", uri=\"/ISAPI/System/status\", qop=auth, nc=00000001, cnonce=\"{hexs(16)}\", response=\"{resp}\"", [resp])
    b = basic("proxyuser", password())
    add(c, f"CONNECT registry.npmjs.org:443 HTTP/1.1\nProxy-Authorization: Basic {b}\n", [b])
    tok = vendor("GitLab")
    add(c, f"curl --header \"PRIVATE-TOKEN: {tok}\" \"https://gitlab.acme.io/api/v4/projects/42/pipelines?status=failed\"", [tok])
    tok = hexs(32)
    add(c, f"POST https://acme-eastus.openai.azure.com/openai/deployments/gpt4o/chat/completions?api-version=2024-06-01\napi-key: {tok}\nContent-Type: application/json", [tok])
    tok = vendor("Anthropic")
    add(c, f"curl https://api.anthropic.com/v1/messages -H \"x-api-key: {tok}\" -H \"anthropic-version: 2023-06-01\" -H \"content-type: application/json\" -d @req.json", [tok])
    tok = hexs(32)
    add(c, f"Ocp-Apim-Subscription-Key: {tok}", [tok])
    tok = vendor("HashiCorp Vault")
    add(c, f"curl -s --header \"X-Vault-Token: {tok}\" https://vault.acme.io:8200/v1/secret/data/ci | jq .data", [tok])
    tok = vendor("Discord")
    add(c, f"headers = {{'Authorization': 'Bot {tok}', 'Content-Type': 'application/json'}}", [tok])
    tok = vendor("Okta")
    add(c, f"curl -H \"Authorization: SSWS {tok}\" https://acme.okta.com/api/v1/users?limit=25", [tok])
    tok = b64_of(f"{r(ALNUM, 20)}:{r(B64URL, 22)}".encode())
    add(c, place(f"Authorization: ApiKey {tok}", [tok]), [tok])
    tok = uid()
    add(c, f"curl -k https://splunk.acme.io:8088/services/collector -H \"Authorization: Splunk {tok}\" -d '{{\"event\": \"deploy\"}}'", [tok])
    tok = vendor("Dynatrace")
    add(c, f"Authorization: Api-Token {tok}", [tok])
    k, s = r(ALNUM, 34), r(ALNUM, 22)
    add(c, f"curl -X GET -H \"Authorization: sso-key {k}:{s}\" \"https://api.godaddy.com/v1/domains/available?domain=acme.dev\"", [s])
    tok = r(B64URL, 43)
    add(c, f":method: GET\n:path: /api/v1/accounts/me\n:authority: api.acme.io\nauthorization: Bearer {tok}\naccept-encoding: gzip", [tok])
    b = basic("ci", password())
    add(c, f"Invoke-RestMethod -Uri $uri -Headers @{{ Authorization = \"Basic {b}\" }}", [b])
    tok = r(ALNUM, 32)
    add(c, place(f"http:\n  client:\n    default-headers:\n      Authorization: Bearer {tok}\n      X-Client: billing", [tok], lang="yaml"), [tok])
    tok = uid()
    add(c, f"Authorization: GenieKey {tok}", [tok])
    tok = r(ALNUM, 36)
    add(c, f"X-API-Key: {tok}\nX-Request-Id: {uid()}", [tok])
    tok = vendor("Google Cloud")
    add(c, f"ERROR 401 calling https://www.googleapis.com/drive/v3/files with headers {{'Authorization': 'OAuth {tok}'}}", [tok])


def fam_registry_auth():
    c = "registry_auth"
    tok = vendor("npm")
    add(c, place(f"//registry.npmjs.org/:_authToken={tok}", [tok], path=".npmrc"), [tok])
    tok = "ghp_" + r(ALNUM, 36)
    add(c, place(f"@acme:registry=https://npm.pkg.github.com\n//npm.pkg.github.com/:_authToken={tok}\nalways-auth=true", [tok], path=".npmrc"), [tok])
    a = basic("ci", password())
    add(c, place(f"registry=https://nexus.acme.io/repository/npm-group/\n_auth={a}\nemail=ci@acme.io\nalways-auth=true", [a], path=".npmrc"), [a])
    p64 = b64_of(password().encode())
    add(c, f"//artifactory.acme.io/api/npm/npm/:username=ci\n//artifactory.acme.io/api/npm/npm/:_password={p64}\n//artifactory.acme.io/api/npm/npm/:email=ci@acme.io", [p64])
    tok = vendor("Heroku")
    add(c, f"$ cat ~/.netrc\nmachine api.heroku.com\n  login ops@acme.io\n  password {tok}\nmachine git.heroku.com\n  login ops@acme.io\n  password {tok}", [tok])
    tok = "ghp_" + r(ALNUM, 36)
    add(c, place(f"machine github.com login acme-bot password {tok}", [tok], path="~/.netrc"), [tok])
    pw = password()
    add(c, f"machine ftp.partner.net\nlogin exports\npassword {pw}\n", [pw])
    tok = vendor("PyPI")
    add(c, place(f"[distutils]\nindex-servers =\n    pypi\n\n[pypi]\nusername = __token__\npassword = {tok}", [tok], lang="ini", path="~/.pypirc"), [tok])
    pw = password()
    add(c, f"[internal]\nrepository = https://pypi.acme.io/\nusername = uploader\npassword = {pw}", [pw])
    a = basic("acmeci", password())
    add(c, place(json.dumps({"auths": {"https://index.docker.io/v1/": {"auth": a}}}, indent=2), [a], lang="json", path="~/.docker/config.json"), [a])
    a = basic("USERNAME", vendor("GitHub"))
    add(c, json.dumps({"auths": {"ghcr.io": {"auth": a}, "registry.acme.io": {"auth": basic("robot$ci", r(ALNUM, 32))}}}), [a])
    it = r(B64URL, 120)
    add(c, json.dumps({"auths": {"acr42.azurecr.io": {"auth": "MDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAwOg==", "identitytoken": it}}}, indent=1), [it])
    tok = "cio" + r(ALNUM, 32)
    add(c, place(f"[registry]\ntoken = \"{tok}\"", [tok], lang="toml", path="~/.cargo/credentials.toml"), [tok])
    tok = r(ALNUM, 40)
    add(c, f"[registries.acme-internal]\ntoken = \"Bearer {tok}\"", [tok])
    tok = vendor("RubyGems")
    add(c, f"$ cat ~/.gem/credentials\n---\n:rubygems_api_key: {tok}", [tok])
    pw = password()
    add(c, place(f"<settings>\n  <servers>\n    <server>\n      <id>acme-releases</id>\n      <username>deployer</username>\n      <password>{pw}</password>\n    </server>\n  </servers>\n</settings>", [pw], lang="xml", path="~/.m2/settings.xml"), [pw])
    pw = password()
    add(c, f"<packageSourceCredentials>\n  <AcmeFeed>\n    <add key=\"Username\" value=\"build\" />\n    <add key=\"ClearTextPassword\" value=\"{pw}\" />\n  </AcmeFeed>\n</packageSourceCredentials>", [pw])
    pw = password()
    tok = "ghp_" + r(ALNUM, 36)
    add(c, json.dumps({"http-basic": {"repo.packagist.com": {"username": "token", "password": pw}},
                       "github-oauth": {"github.com": tok}}, indent=4), [pw, tok])
    tok = vendor("npm")
    add(c, place(f"npmRegistryServer: \"https://registry.npmjs.org\"\nnpmAuthToken: \"{tok}\"", [tok], lang="yaml", path=".yarnrc.yml"), [tok])
    pw = password()
    add(c, f"npmScopes:\n  acme:\n    npmRegistryServer: \"https://npm.acme.io\"\n    npmAuthIdent: \"ci:{pw}\"", [pw])
    tok = vendor("PyPI")
    add(c, f"$ poetry config pypi-token.pypi {tok}\n$ poetry publish --build", [tok])
    pw = password()
    add(c, place(f"export POETRY_HTTP_BASIC_ACME_USERNAME=ci\nexport POETRY_HTTP_BASIC_ACME_PASSWORD={pw}", [pw], lang="bash"), [pw])
    pw = password()
    add(c, f"BUNDLE_GEMS__CONTRIBSYS__COM=acme:{pw}", [pw])
    pw = password()
    add(c, f"apiVersion: \"\"\ngenerated: \"0001-01-01T00:00:00Z\"\nrepositories:\n- name: internal\n  url: https://charts.acme.io\n  username: ci\n  password: {pw}", [pw])
    key = vendor("JFrog")
    add(c, f"artifactory_user=ci\nartifactory_password={key}\nartifactory_contextUrl=https://acme.jfrog.io/artifactory", [key])
    tok = r(ALNUM, 40)
    add(c, f"index-url = https://__token__:{tok}@pypi.acme.io/simple/", [tok])


def fam_url_secret():
    c = "url_secret"
    pw = password()
    add(c, place(f"DATABASE_URL=postgres://app:{pw}@{host()}:5432/app?sslmode=require", [pw]), [pw])
    pw = password()
    add(c, f"pymongo.errors.ServerSelectionTimeoutError: could not connect to mongodb+srv://etl:{pw}@cluster0.x7k2q.mongodb.net/warehouse?retryWrites=true", [pw])
    pw = password()
    add(c, place(f"CELERY_BROKER_URL = 'redis://:{pw}@cache-01:6379/0'", [pw], lang="python"), [pw])
    pw = password()
    add(c, f"amqp://orders:{pw}@mq.corp.lan:5672/%2F", [pw])
    pw = password()
    add(c, f"$ git clone https://jdoe:{pw}@git.acme.io/platform/infra.git\nCloning into 'infra'...", [pw])
    tok = vendor("GitHub")
    add(c, f"git remote set-url origin https://x-access-token:{tok}@github.com/acme/web.git", [tok])
    tok = "glpat-" + r(B64URL, 20)
    add(c, f"fatal: unable to access 'https://oauth2:{tok}@gitlab.com/acme/api.git/': The requested URL returned error: 403", [tok])
    tok = vendor("Telegram")
    add(c, f"requests.exceptions.HTTPError: 409 Client Error: Conflict for url: https://api.telegram.org/bot{tok}/getUpdates?offset=0&timeout=30", [tok])
    tok = vendor("Telegram")
    add(c, place(f"curl -s \"https://api.telegram.org/bot{tok}/sendMessage\" -d chat_id=-100{digits(10)} -d text=\"deploy ok\"", [tok]), [tok])
    t, b, s = "T" + r(UPPER + DIGITS, 10), "B" + r(UPPER + DIGITS, 10), r(ALNUM, 24)
    add(c, place(f"SLACK_WEBHOOK_URL=https://hooks.slack.com/services/{t}/{b}/{s}", [s]), [s])
    wid, wtok = digits(19), r(B64URL, 68)
    add(c, f"Posting the release notes to https://discord.com/api/webhooks/{wid}/{wtok} failed with 429, retrying in 2s", [wtok])
    sig = r(B64, 43) + "="
    sig_enc = sig.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    add(c, f"https://acmelogs.blob.core.windows.net/exports/2026-11.csv?sv=2022-11-02&ss=b&srt=o&sp=r&se=2026-12-31T00:00:00Z&st=2026-11-01T00:00:00Z&spr=https&sig={sig_enc}", [sig_enc])
    sg = hexs(64)
    kid = aws_key_id()
    add(c, f"Download link (valid 1h): https://acme-reports.s3.eu-west-1.amazonaws.com/q3.pdf?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={kid}%2F20261129%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Date=20261129T021500Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature={sg}", [sg])
    gsig = hexs(512)
    add(c, f"https://storage.googleapis.com/acme-ml/models/v3.bin?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=loader%40acme-ml.iam.gserviceaccount.com%2F20261129%2Fauto%2Fstorage%2Fgoog4_request&X-Goog-Date=20261129T020000Z&X-Goog-Expires=900&X-Goog-SignedHeaders=host&X-Goog-Signature={gsig}", [gsig])
    key = "AIza" + r(B64URL, 35)
    add(c, f"<script src=\"https://maps.googleapis.com/maps/api/js?key={key}&callback=initMap\" async></script>", [key])
    tok = "EAAG" + r(ALNUM, 150)
    add(c, f"GET https://graph.facebook.com/v19.0/me/accounts?access_token={tok} -> 200", [tok])
    tok = r(ALNUM, 32)
    add(c, f"Webhook configured: https://ci.acme.io/job/deploy-prod/build?token={tok}&cause=merge", [tok])
    tok = "glptt-" + hexs(40)
    add(c, f"curl -X POST \"https://gitlab.com/api/v4/projects/123/trigger/pipeline?token={tok}&ref=main\"", [tok])
    tok = r(ALNUM, 40)
    add(c, f"https://acme-app-default-rtdb.firebaseio.com/users.json?auth={tok}", [tok])
    pw = password()
    add(c, place(f"spring.datasource.url=jdbc:mysql://{host()}:3306/shop?user=shop&password={pw}&useSSL=true", [pw]), [pw])
    key = "key-" + hexs(32)
    add(c, f"curl -s --user 'api:{key}' https://api.mailgun.net/v3/mg.acme.io/messages -F from=noreply@acme.io", [key])
    sk = vendor("Stripe")
    add(c, f"https://{sk}:@api.stripe.com/v1/charges?limit=3", [sk])
    ck, cs = digits(15), r(B64URL, 27)
    add(c, place(f"CLOUDINARY_URL=cloudinary://{ck}:{cs}@acme-media", [cs]), [cs])
    pw = password()
    add(c, f"smtp://postmaster%40mg.acme.io:{pw}@smtp.mailgun.org:587", [pw])
    hexseg, g1, g2, g3 = hexs(32), uid(), uid(), uid()
    add(c, f"TEAMS_WEBHOOK=https://acme.webhook.office.com/webhookb2/{g1}@{g2}/IncomingWebhook/{hexseg}/{g3}", [hexseg])
    pw = password()
    add(c, f"Connecting to https://elastic:{pw}@es-prod.acme.io:9200 ... ConnectionError(timeout)", [pw])
    tok = r(B64URL, 22)
    add(c, f"curl -X POST https://maker.ifttt.com/trigger/backup_done/with/key/{tok}", [tok])
    tok = vendor("Grafana")
    add(c, f"remote_write:\n  - url: https://{digits(6)}:{tok}@prometheus-prod-13-prod-us-east-0.grafana.net/api/prom/push", [tok])
    pw = password()
    add(c, f"lftp -e 'mirror -R ./site /public_html; bye' ftp://webdeploy:{pw}@ftp.acme-hosting.com", [pw])
    csig = r(B64URL + "~", 172)
    add(c, f"https://d111111abcdef8.cloudfront.net/video/intro.mp4?Expires=1796000000&Signature={csig}&Key-Pair-Id=K2JCJMDEHXQW5F", [csig])


def fam_config_idiom():
    c = "config_idiom"
    v = r(ALNUM + "!@#%^*-_", 50)
    add(c, place(f"app = Flask(__name__)\napp.config['SECRET_KEY'] = '{v}'", [v], lang="python", path="app/__init__.py"), [v])
    v = r(ALNUM, 40)
    add(c, place(f"settings.API_TOKEN = \"{v}\"\nsettings.TIMEOUT = 30", [v], lang="python"), [v])
    v = "django-insecure-" + r(LOWER + DIGITS + "!@#$%^&*(-_=+)", 50)
    add(c, f"# SECURITY WARNING: keep the secret key used in production secret!\nSECRET_KEY = '{v}'", [v])
    v, sk = r(ALNUM, 32), vendor("Stripe")
    add(c, f"os.environ[\"STRIPE_API_KEY\"] = \"{sk}\"\nos.environ['INTERNAL_HMAC_KEY'] = '{v}'", [sk, v])
    v = vendor("GitHub")
    add(c, f"$ export GITHUB_TOKEN={v}\n$ gh pr list --state open", [v])
    v = r(ALNUM, 40)
    add(c, f"C:\\Users\\build> setx OPENWEATHER_API_KEY \"{v}\"\n\nSUCCESS: Specified value was saved.", [v])
    v = password()
    add(c, f"C:\\app> set DB_PASS={v}\nC:\\app> dotnet run --project Api", [v])
    v = r(ALNUM, 36)
    add(c, f"PS C:\\src\\api> $env:SEARCH_API_KEY = \"{v}\"\nPS C:\\src\\api> npm start", [v])
    v = r(ALNUM, 32)
    add(c, f"set -gx ALGOLIA_WRITE_KEY {v}", [v])
    v = password()
    add(c, place(f"FROM node:20-alpine\nWORKDIR /app\nENV SESSION_SECRET={v}\nCOPY . .\nRUN npm ci\nCMD [\"node\", \"server.js\"]", [v], lang="dockerfile", path="Dockerfile"), [v])
    p, k = password(), r(ALNUM, 40)
    pb, kb = b64_of(p.encode()), b64_of(k.encode())
    add(c, place(f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: app-secrets\n  namespace: prod\ntype: Opaque\ndata:\n  DB_PASSWORD: {pb}\n  API_KEY: {kb}", [pb, kb], lang="yaml", path="k8s/secret.yaml"), [pb, kb])
    v = password()
    add(c, place(f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: smtp\nstringData:\n  username: mailer\n  password: {v}", [v], lang="yaml"), [v])
    v = password()
    add(c, place(f"resource \"aws_db_instance\" \"main\" {{\n  engine         = \"postgres\"\n  instance_class = \"db.t3.medium\"\n  username       = \"acme\"\n  password       = \"{v}\"\n}}", [v], lang="hcl", path="rds.tf"), [v])
    v = password()
    add(c, f"variable \"admin_password\" {{\n  type    = string\n  default = \"{v}\"\n}}", [v])
    v = password()
    add(c, place(f"[database]\nhost = {host()}\nport = 5432\nuser = reporting\npassword = {v}\n\n[cache]\nttl = 300", [v], lang="ini", path="config.ini"), [v])
    v = password()
    add(c, place(f"spring.datasource.url=jdbc:postgresql://{host()}:5432/app\nspring.datasource.username=app\nspring.datasource.password={v}", [v], path="application.properties"), [v])
    v = r(ALNUM, 32)
    add(c, place(f"<appSettings>\n  <add key=\"PaymentGatewayUrl\" value=\"https://pay.acme.io\" />\n  <add key=\"PaymentGatewaySecret\" value=\"{v}\" />\n</appSettings>", [v], lang="xml", path="Web.config"), [v])
    v = password()
    add(c, f"<connectionStrings>\n  <add name=\"Default\" connectionString=\"Server=sql01;Database=Shop;User Id=shop;Password={v};TrustServerCertificate=True\" />\n</connectionStrings>", [v])
    v = r(ALNUM, 40)
    add(c, f"<credentials><user>etl</user><apiSecret>{v}</apiSecret></credentials>", [v])
    v = r(B64URL, 64)
    add(c, place(f"auth:\n  jwt:\n    issuer: https://auth.acme.io\n    signing_secret: \"{v}\"\n    ttl: 15m", [v], lang="yaml"), [v])
    v = r(ALNUM, 32)
    add(c, place(f"[service.billing]\nendpoint = \"https://billing.internal\"\napi_key = \"{v}\"", [v], lang="toml"), [v])
    v = r(ALNUM + "-_", 48)
    add(c, json.dumps({"auth0": {"domain": "acme.eu.auth0.com", "clientId": r(ALNUM, 32), "clientSecret": v}}, indent=2), [v])
    v = password()
    add(c, place(f"services:\n  db:\n    image: postgres:16\n    environment:\n      - POSTGRES_USER=app\n      - POSTGRES_PASSWORD={v}", [v], lang="yaml", path="docker-compose.yml"), [v])
    v = r(ALNUM, 40)
    add(c, f"jobs:\n  deploy:\n    runs-on: ubuntu-latest\n    env:\n      FASTLY_API_TOKEN: {v}\n    steps:\n      - uses: actions/checkout@v4", [v])
    v = hexs(128)
    add(c, f"Rails.application.configure do\n  config.secret_key_base = \"{v}\"\nend", [v])
    v = r(ALNUM + "!@#%^*()-_[]{}<>~+=,.;:/?|", 64)
    add(c, f"define( 'AUTH_KEY',         '{v}' );", [v])
    v = "base64:" + b64_of(rand_bytes(32))
    add(c, f"APP_NAME=Acme\nAPP_ENV=production\nAPP_KEY={v}\nAPP_DEBUG=false", [v])
    v = r(ALNUM, 40)
    add(c, f"module.exports = {{\n  port: 8080,\n  jwtSecret: '{v}',\n}};", [v])
    v = r(ALNUM, 32)
    add(c, f"[Service]\nEnvironment=\"NODE_ENV=production\"\nEnvironment=\"WEBHOOK_TOKEN={v}\"\nExecStart=/usr/bin/node /srv/app/index.js", [v])
    v = password()
    add(c, f"props.setProperty(\"mail.smtp.password\", \"{v}\");", [v])
    v = r(ALNUM, 32)
    add(c, f"SetEnv API_SECRET {v}", [v])
    v = r(ALNUM, 32)
    add(c, f"export const config = {{ stripe: {{ secretKey: process.env.STRIPE_KEY }}, region: 'eu', internalSecret: \"{v}\" }};", [v])


def fam_vendor_token():
    c = "vendor_token"
    seen = set()
    frames_kv = [
        lambda env, t: f"{env}={t}",
        lambda env, t: f"export {env}=\"{t}\"",
        lambda env, t: f"  {env.lower()}: {t}",
        lambda env, t: json.dumps({env: t}),
    ]
    frames_bare = [
        lambda t: f"Using token {t} for the upload.",
        lambda t: f"{t}",
        lambda t: f"[{ts()}] INFO auth: loaded credential {t} from keychain",
        lambda t: f"here is the key I used: {t}",
        lambda t: f"It worked after I swapped in `{t}`. Should I commit it?",
        lambda t: f"token='{t}'",
        lambda t: f"Error: invalid credentials ({t}) - check that the key has the right scopes",
    ]
    for name, gen, env in VENDORS:
        key = (name, env)
        if key in seen:
            continue
        seen.add(key)
        tok = gen()
        # self-identifying formats always appear without a key name, so the
        # family measures format recognition; the rest need their key name
        if name in CONTEXT_ONLY:
            snippet = rng.choice(frames_kv)(env, tok)
            add(c, place(snippet, [tok]), [tok])
        else:
            snippet = rng.choice(frames_bare)(tok)
            add(c, place(snippet, [tok], kind="line"), [tok])


def fam_delimiter_value():
    c = "delimiter_value"
    v = delim_password("#!&")
    add(c, place(f"DB_PASSWORD={v}\nDB_HOST={host()}", [v], path=".env"), [v])
    v = delim_password(";!")
    add(c, f"$ PGPASSWORD='{v}' psql -h {host()} -U reporting -d analytics -c '\\dt'", [v])
    v = delim_password(";#&")
    add(c, f"PGPASSWORD={v}", [v])
    v = delim_password("&;")
    add(c, place(f"api_key={v}", [v]), [v])
    v = delim_password("&#")
    add(c, f"secret={v}", [v])
    v = delim_password("$&!")
    add(c, place(f"export REDIS_PASSWORD='{v}'", [v], lang="bash"), [v])
    v = delim_password("#;!&")
    add(c, place(f"database:\n  user: app\n  password: \"{v}\"\n  pool: 10", [v], lang="yaml"), [v])
    v = delim_password("&#%!")
    add(c, json.dumps({"db": {"user": "app", "password": v}}), [v])
    v = delim_password("#;")
    add(c, f"[mysql]\nuser = backup\npassword = {v}", [v])
    v = delim_password("!&#")
    add(c, f"$ mysql -u root -p'{v}' -e 'show databases'", [v])
    v = delim_password("#;&!")
    add(c, f"docker run -d -e 'MSSQL_SA_PASSWORD={v}' -e ACCEPT_EULA=Y mcr.microsoft.com/mssql/server:2022-latest", [v])
    v = delim_password("&!#%")
    add(c, f"The new staging password is {v} (rotated this morning).", [v])
    v = delim_password("#&")
    add(c, f"SMTP_PASS={v}  # mailgun", [v])
    v = delim_password("$;")
    add(c, f"setx DB_PASSWORD \"{v}\"", [v])
    v = delim_password("&;!")
    add(c, f"spring.datasource.password={v}", [v])
    v = delim_password("#!%")
    add(c, f"ADMIN_PASSWORD=\"{v}\" ./bootstrap.sh --seed", [v])
    raw = delim_password("@&#/:")
    enc = raw.replace("%", "%25").replace("@", "%40").replace("&", "%26").replace("#", "%23").replace("/", "%2F").replace(":", "%3A")
    add(c, f"DATABASE_URL=postgresql://app:{enc}@{host()}:5432/app", [enc])
    v = delim_password("'&;")
    add(c, f"password = \"{v}\"", [v])
    v = delim_password("\"#!")
    esc = v.replace('"', '\\"')
    add(c, f"{{\"username\": \"svc\", \"password\": \"{esc}\"}}", [esc])
    v = delim_password("`$&")
    add(c, f"db_password: '{v}'", [v])
    words = " ".join(rng.choice(["correct", "horse", "battery", "staple", "orbit", "lantern", "maple", "quartz", "velvet", "tundra"]) for _ in range(4))
    v = f"{words} {digits(2)}!"
    add(c, f"vault_passphrase: \"{v}\"", [v])
    v = delim_password("!;&#")
    add(c, f"<add key=\"SmtpPassword\" value=\"{v}\" />", [v])
    v = delim_password("&#!")
    add(c, f"+DB_PASSWORD={v}\n-DB_PASSWORD=${{DB_PASSWORD}}", [v])
    v = delim_password(";&")
    add(c, f"PGPASSWORD=\"{v}\" pg_dump -h {host()} app > app.sql", [v])
    v = delim_password("#&")
    add(c, f"kubectl create secret generic api --from-literal=token='{v}'", [v])
    v = delim_password("!#;")
    add(c, f"[{ts()}] WARN config: MYSQL_ROOT_PASSWORD={v} is shorter than the recommended 24 characters", [v])
    v = delim_password("%&")
    add(c, f"auth_token: {v}", [v])


PEM_TYPES = [
    ("RSA PRIVATE KEY", "MIIEpAIBAAKCAQEA", 1180),
    ("PRIVATE KEY", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQ", 1200),
    ("EC PRIVATE KEY", "MHcCAQEEI", 110),
    ("OPENSSH PRIVATE KEY", "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW", 300),
    ("ENCRYPTED PRIVATE KEY", "MIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkqhkiG9w0BBQwwHAQI", 1240),
    ("DSA PRIVATE KEY", "MIIBuwIBAAKBgQ", 590),
]


def pem_body(prefix, n):
    body = prefix + r(B64, n - len(prefix))
    body += "=" * (-len(body) % 4)
    return "\n".join(body[i:i + 64] for i in range(0, len(body), 64))


def pem(kind=None):
    kind = kind or rng.choice(PEM_TYPES)
    name, prefix, n = kind
    body = pem_body(prefix, n)
    return f"-----BEGIN {name}-----\n{body}\n-----END {name}-----", body


def fam_private_key():
    c = "private_key"
    for kind in PEM_TYPES:
        block, body = pem(kind)
        add(c, place(block, [body], path="deploy/key.pem"), [body])
    block, body = pem(PEM_TYPES[0])
    add(c, f"$ cat ~/.ssh/deploy_rsa\n{block}\n$ chmod 600 ~/.ssh/deploy_rsa", [body])
    block, body = pem(PEM_TYPES[1])
    jblock = block.replace("\n", "\\n") + "\\n"
    jbody = body.replace("\n", "\\n")
    sa = ('{\n  "type": "service_account",\n  "project_id": "acme-data",\n  "private_key_id": "' + hexs(40) + '",\n'
          f'  "private_key": "{jblock}",\n  "client_email": "loader@acme-data.iam.gserviceaccount.com",\n'
          f'  "client_id": "{digits(21)}",\n  "token_uri": "https://oauth2.googleapis.com/token"\n}}')
    add(c, sa, [jbody])
    block, body = pem(PEM_TYPES[3])
    ind = "\n".join("    " + ln for ln in block.split("\n"))
    ibody = "\n".join("    " + ln for ln in body.split("\n")).lstrip()
    add(c, f"deploy_key: |\n{ind}", [ibody])
    block, body = pem(PEM_TYPES[0])
    head = "\n".join(body.split("\n")[:4])
    add(c, f"$ head -5 /etc/ssl/private/api.key\n-----BEGIN RSA PRIVATE KEY-----\n{head}", [head])
    block, body = pem(PEM_TYPES[1])
    add(c, diff_of("certs/server.key", block.split("\n")), ["\n+".join(body.split("\n"))])
    block, body = pem(PEM_TYPES[2])
    add(c, f"Error: failed to parse key: asn1: structure error\nkey was:\n{block}\n", [body])
    n, e = r(B64URL, 342), "AQAB"
    parts = {k: r(B64URL, 342 if k == "d" else 171) for k in ["d", "p", "q", "dp", "dq", "qi"]}
    jwk = {"kty": "RSA", "kid": hexs(8), "use": "sig", "alg": "RS256", "n": n, "e": e, **parts}
    add(c, json.dumps(jwk, indent=2), list(parts.values()))
    d = r(B64URL, 43)
    add(c, json.dumps({"kty": "EC", "crv": "P-256", "x": r(B64URL, 43), "y": r(B64URL, 43), "d": d}), [d])
    d = r(B64URL, 43)
    add(c, f"signing_jwk = {{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"{r(B64URL, 43)}\",\"d\":\"{d}\"}}", [d])
    k = r(B64, 43) + "="
    add(c, place(f"[Interface]\nAddress = 10.8.0.2/24\nPrivateKey = {k}\nDNS = 1.1.1.1\n\n[Peer]\nPublicKey = {r(B64, 43)}=\nEndpoint = vpn.acme.io:51820\nAllowedIPs = 0.0.0.0/0", [k], lang="ini", path="/etc/wireguard/wg0.conf"), [k])
    block, body = pem(PEM_TYPES[0])
    kd = b64_of(block.encode())
    add(c, f"users:\n- name: admin@prod\n  user:\n    client-certificate-data: {b64_of(rand_bytes(900))}\n    client-key-data: {kd}", [kd])
    hx = hexs(64)
    add(c, f"DEPLOYER_PRIVATE_KEY=0x{hx}\nRPC_URL=https://mainnet.infura.io/v3/{hexs(32)}", [hx])
    k = vendor("age")
    add(c, f"# created: 2026-11-20T10:00:00Z\n# public key: age1{r(BECH32.lower(), 58)}\n{k}", [k])
    priv = "\n".join(r(B64, 64) for _ in range(13)) + "\n" + r(B64, 28) + "="
    add(c, f"PuTTY-User-Key-File-3: ssh-rsa\nEncryption: none\nComment: rsa-key-20261129\nPublic-Lines: 6\n{chr(10).join(r(B64, 64) for _ in range(6))}\nPrivate-Lines: 14\n{priv}\nPrivate-MAC: {hexs(64)}", [priv])
    body = pem_body("lQOYBGV", 1600)
    add(c, f"-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n{body}\n={r(B64, 4)}\n-----END PGP PRIVATE KEY BLOCK-----", [body])
    block, body = pem(PEM_TYPES[1])
    add(c, f"const privateKey = `{block}`;\nconst token = jwt.sign(payload, privateKey, {{ algorithm: 'RS256' }});", [body])
    block, body = pem(PEM_TYPES[3])
    add(c, f"I pasted the deploy key into the CI variable SSH_PRIVATE_KEY:\n\n{block}\n\nbut ssh still says `Load key \"/tmp/key\": invalid format`.", [body])
    block, body = pem(PEM_TYPES[0])
    pyblock = block.replace("\n", "\\n")
    pybody = body.replace("\n", "\\n")
    add(c, f"PRIVATE_KEY = \"{pyblock}\"", [pybody])


def fam_jwt():
    c = "jwt"
    ctxs = [
        lambda t: f"Authorization: Bearer {t}",
        lambda t: f"Set-Cookie: session={t}; Path=/; HttpOnly; Secure; SameSite=Lax",
        lambda t: f"Cookie: _ga=GA1.2.{digits(9)}.{digits(10)}; access_token={t}; theme=dark",
        lambda t: f"[{ts()}] DEBUG auth.middleware verified token={t} user=42",
        lambda t: json.dumps({"access_token": t, "token_type": "Bearer", "expires_in": 3600, "scope": "openid profile"}),
        lambda t: json.dumps({"id_token": t, "refresh_token": r(B64URL, 64), "expires_in": 300}),
        lambda t: f"localStorage.getItem('auth') -> \"{t}\"",
        lambda t: f"SUPABASE_SERVICE_ROLE_KEY={t}",
        lambda t: f"wscat -c 'wss://rt.acme.io/socket?jwt={t}'",
        lambda t: f"Here's the token from the failing request, can you decode it and tell me why it's rejected? {t}",
        lambda t: f"jwt.exceptions.ExpiredSignatureError: Signature has expired\n  token: {t}",
        lambda t: f"grpcurl -H 'authorization: Bearer {t}' api.acme.io:443 acme.v1.Orders/List",
        lambda t: f"- name: Call API\n  run: curl -H \"Authorization: Bearer {t}\" https://api.acme.io/v1/deploy",
        lambda t: f"TOKEN={t}",
        lambda t: f"{t}",
        lambda t: f"HTTP/1.1 200 OK\nContent-Type: application/json\n\n{{\"token\":\"{t}\",\"user\":{{\"id\":7,\"role\":\"admin\"}}}}",
        lambda t: f"const token = \"{t}\";",
        lambda t: f"/var/run/secrets/kubernetes.io/serviceaccount/token:\n{t}",
        lambda t: f"`{t}` is what the mobile app sends, it seems to never expire",
        lambda t: f"X-Amz-Security-Token not needed; use x-hasura-admin-token: {t}",
        lambda t: f"INSERT INTO sessions (user_id, token) VALUES (42, '{t}');",
        lambda t: f"?access_token={t}",
        lambda t: f"Authorization=Bearer%20{t}",
        lambda t: f"  \"authToken\": \"{t}\",",
        lambda t: f"echo {t} | cut -d. -f2 | base64 -d",
    ]
    payloads = [
        None,
        {"sub": "user_" + r(ALNUM, 12), "email": "jdoe@acme.io", "role": "admin", "iat": 1764370000, "exp": 1764373600},
        {"iss": "supabase", "ref": r(LOWER, 20), "role": "service_role", "iat": 1764370000, "exp": 2079946000},
        {"iss": "https://login.microsoftonline.com/" + uid() + "/v2.0", "aud": uid(), "oid": uid(), "name": "Jane Doe"},
        {"aud": "https://api.acme.io", "scope": "read:orders write:orders", "azp": r(ALNUM, 32)},
    ]
    algs = ["HS256", "RS256", "ES256", "HS512"]
    for f in ctxs:
        t = jwt_token(rng.choice(payloads), alg=rng.choice(algs))
        add(c, place(f(t), [t], kind="line") if rng.random() < 0.4 else f(t), [t])


def fam_generic_secret():
    c = "generic_secret"
    items = [
        lambda v: f"var kennwort = \"{v}\"; // Datenbank",
        lambda v: f"contraseña: {v}",
        lambda v: f"mot_de_passe = '{v}'",
        lambda v: f"senha_banco = \"{v}\"",
        lambda v: f"$parola = '{v}';",
        lambda v: f"пароль: {v}",
        lambda v: f"数据库密码 = \"{v}\"",
        lambda v: f"パスワード: {v}",
        lambda v: f"wachtwoord={v}",
        lambda v: f"haslo_admina = \"{v}\"",
        lambda v: f"let masterPass = \"{v}\"",
        lambda v: f"const char *rootpw = \"{v}\";",
        lambda v: f"private static final String BIND_PW = \"{v}\";",
        lambda v: f"val hmacKey = \"{v}\"",
        lambda v: f"let cipherKey: String = \"{v}\"",
        lambda v: f"config :acme, Acme.Repo, username: \"acme\", passwd: \"{v}\"",
        lambda v: f"local smtp_pass = \"{v}\"",
        lambda v: f"my $db_pwd = '{v}';",
        lambda v: f"CREATE USER reporting WITH PASSWORD '{v}';",
        lambda v: f"ALTER USER 'app'@'%' IDENTIFIED BY '{v}';",
        lambda v: f"$ cat ~/.pgpass\n{host()}:5432:*:replicator:{v}",
        lambda v: f"requirepass {v}",
        lambda v: f"/etc/pgbouncer/userlist.txt:\n\"pgbouncer\" \"{v}\"",
        lambda v: f"wpa_passphrase={v}",
        lambda v: f"network={{\n    ssid=\"acme-office\"\n    psk=\"{v}\"\n}}",
        lambda v: f"10.0.0.1 10.0.0.2 : PSK \"{v}\"",
        lambda v: f"client 10.20.0.0/16 {{\n    secret = {v}\n}}",
        lambda v: f"  webhookSigningSecret: {v}",
        lambda v: f"sessionSecret = \"{v}\"",
        lambda v: f"ansible_ssh_pass: {v}",
        lambda v: f"masterauth {v}",
    ]
    for f in items:
        v = password() if rng.random() < 0.6 else r(ALNUM, rng.randint(24, 40))
        add(c, place(f(v), [v]) if rng.random() < 0.5 else f(v), [v])


def more_positives():
    """Second pass: contexts that mix several secrets, tracebacks, tool dumps
    and less common file formats, spread over the families."""
    # credential_pair
    c = "credential_pair"
    kid, sec = aws_key_id(), aws_secret()
    add(c, "Traceback (most recent call last):\n  File \"/srv/sync/sync.py\", line 12, in <module>\n"
           f"    session = boto3.Session(aws_access_key_id='{kid}', aws_secret_access_key='{sec}', region_name='eu-west-1')\n"
           "botocore.exceptions.ClientError: An error occurred (InvalidAccessKeyId) when calling the ListBuckets operation", [sec])
    kid, sec = aws_key_id(), aws_secret()
    add(c, place(f"[s3remote]\ntype = s3\nprovider = AWS\naccess_key_id = {kid}\nsecret_access_key = {sec}\nregion = eu-north-1", [sec], path="~/.config/rclone/rclone.conf"), [sec])
    ak, sk = r(UPPER + DIGITS, 20), r(ALNUM, 40)
    add(c, f"$ mc alias set backup https://minio.acme.io:9000 {ak} {sk}\nAdded `backup` successfully.", [sk])
    kid, sec = aws_key_id(), aws_secret()
    add(c, f"docker run --rm -e AWS_ACCESS_KEY_ID={kid} -e AWS_SECRET_ACCESS_KEY={sec} amazon/aws-cli s3 cp s3://acme-etl/in.csv -", [sec])
    sid, tok = "AC" + hexs(32), hexs(32)
    add(c, f"Twilio creds for the SMS alerts:\n- SID: `{sid}`\n- Token: `{tok}`\n- From: +1 555 010 2030", [tok])
    key, sec = digits(15), r(B64URL, 27)
    add(c, f"cloudinary.config(cloud_name=\"acme\", api_key=\"{key}\", api_secret=\"{sec}\", secure=True)", [sec])
    key, sec = hexs(8), r(ALNUM, 16)
    add(c, place(f"VONAGE_API_KEY={key}\nVONAGE_API_SECRET={sec}", [sec]), [sec])
    aid, atok = "MA" + r(UPPER + DIGITS, 18), r(ALNUM, 40)
    add(c, f"client = plivo.RestClient(\"{aid}\", \"{atok}\")", [atok])
    cid, csec = hexs(32), hexs(32)
    add(c, f"sp = spotipy.Spotify(auth_manager=SpotifyClientCredentials(client_id='{cid}', client_secret='{csec}'))", [csec])
    cid, csec = "A" + r(B64URL, 79), "E" + r(B64URL, 79)
    add(c, place(f"PAYPAL_CLIENT_ID={cid}\nPAYPAL_CLIENT_SECRET={csec}\nPAYPAL_MODE=live", [csec]), [csec])

    cs, at, ct = b64_of(rand_bytes(33)), f"akab-{r(LOWER + DIGITS, 16)}-{r(LOWER + DIGITS, 16)}", f"akab-{r(LOWER + DIGITS, 16)}-{r(LOWER + DIGITS, 16)}"
    add(c, place(f"[default]\nclient_secret = {cs}\nhost = akab-{r(LOWER + DIGITS, 16)}-{r(LOWER + DIGITS, 16)}.luna.akamaiapis.net\naccess_token = {at}\nclient_token = {ct}", [cs, at], path="~/.edgerc"), [cs, at])
    tid, tsec = "ak-" + r(ALNUM, 22), "as-" + r(ALNUM, 22)
    add(c, f"$ modal token set --token-id {tid} --token-secret {tsec}\nToken written to /home/dev/.modal.toml in profile acme.", [tsec])
    kk = hexs(32)
    add(c, f"$ cat ~/.kaggle/kaggle.json\n{{\"username\":\"jdoe\",\"key\":\"{kk}\"}}", [kk])
    ak, sk = "SCW" + r(UPPER + DIGITS, 17), uid()
    add(c, place(f"SCW_ACCESS_KEY={ak}\nSCW_SECRET_KEY={sk}\nSCW_DEFAULT_PROJECT_ID={uid()}", [sk]), [sk])
    ak, sk = hexs(32), hexs(64)
    add(c, f"R2 bucket `assets` is reachable with access key id {ak} and secret access key {sk} at https://{hexs(32)}.r2.cloudflarestorage.com", [sk])
    ck, cs2 = r(UPPER + DIGITS, 16), r(ALNUM + "+/", 64)
    add(c, place(f"sasl.mechanism=PLAIN\nsecurity.protocol=SASL_SSL\nsasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"{ck}\" password=\"{cs2}\";", [cs2], path="client.properties"), [cs2])
    ably = f"{r(B64URL, 6)}.{r(B64URL, 6)}:{r(B64URL, 43)}"
    add(c, f"const ably = new Ably.Realtime({{ key: '{ably}' }});", [ably.split(":")[1]])

    # cli_flag
    c = "cli_flag"
    pw = password()
    add(c, f"psql \"host={host()} port=5432 dbname=app user=app password={pw} sslmode=require\" -c 'select 1'", [pw])
    pw = password()
    add(c, f"$ echo '{pw}' | sudo -S apt-get -y install nginx\n[sudo] password for deploy: Reading package lists... Done", [pw])
    pw = password()
    add(c, f"rabbitmqctl add_user ops {pw} && rabbitmqctl set_user_tags ops administrator", [pw])
    pw = password()
    add(c, f"htpasswd -bc /etc/nginx/.htpasswd admin {pw}\nAdding password for user admin", [pw])
    pw = password()
    add(c, f"C:\\> net use Z: \\\\fs01\\finance {pw} /user:CORP\\svc_backup /persistent:yes\nThe command completed successfully.", [pw])
    pw, tok = password(), r(B64URL, 86) + "=="
    add(c, f"influx setup --username admin --password {pw} --token {tok} --org acme --bucket metrics --force", [pw, tok])
    pw = password()
    add(c, f"docker exec -it db mysql -uroot -p{pw} -e \"SHOW PROCESSLIST\"", [pw])
    pw = password()
    add(c, f"sqlplus system/{pw}@//oradb.corp.lan:1521/ORCLPDB1 @migrate.sql", [pw])
    pw = password()
    add(c, f"cmdkey /add:fs01.corp.lan /user:CORP\\svc_backup /pass:{pw}", [pw])

    # auth_header
    c = "auth_header"
    tok = r(B64URL, 43)
    add(c, json.dumps({"log": {"entries": [{"request": {"method": "GET", "url": "https://api.acme.io/v1/me",
        "headers": [{"name": "accept", "value": "application/json"}, {"name": "authorization", "value": "Bearer " + tok}]}}]}}, indent=1), [tok])
    b = basic("svc", password())
    add(c, f"HttpURLConnection conn = (HttpURLConnection) url.openConnection();\nconn.setRequestProperty(\"Authorization\", \"Basic {b}\");", [b])
    tok = r(ALNUM, 40)
    add(c, f"req.Header.Set(\"Authorization\", \"Bearer {tok}\")\nresp, err := http.DefaultClient.Do(req)", [tok])
    tok = r(ALNUM, 32)
    add(c, f"$ http GET https://api.acme.io/v1/invoices Authorization:\"Bearer {tok}\"\nHTTP/1.1 200 OK", [tok])
    tok = r(ALNUM, 48)
    add(c, json.dumps({"info": {"name": "Acme API"}, "auth": {"type": "bearer", "bearer": [{"key": "token", "value": tok, "type": "string"}]}}, indent=2), [tok])
    pw, tok = password(), r(ALNUM, 40)
    add(c, place(f"scrape_configs:\n  - job_name: node\n    basic_auth:\n      username: prom\n      password: {pw}\n  - job_name: api\n    authorization:\n      type: Bearer\n      credentials: {tok}", [pw, tok], lang="yaml", path="prometheus.yml"), [pw, tok])
    tok = r(ALNUM, 32)
    add(c, f"wget --header=\"Authorization: Bearer {tok}\" https://files.acme.io/export.zip", [tok])
    tok = r(ALNUM, 40)
    add(c, f"client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue(\"Bearer\", \"{tok}\");", [tok])

    # registry_auth
    c = "registry_auth"
    tok = vendor("GitLab")
    add(c, f"@acme:registry=https://gitlab.com/api/v4/projects/4242/packages/npm/\n//gitlab.com/api/v4/projects/4242/packages/npm/:_authToken={tok}", [tok])
    tok = vendor("Terraform Cloud")
    add(c, place(f"credentials \"app.terraform.io\" {{\n  token = \"{tok}\"\n}}", [tok], path="~/.terraformrc"), [tok])
    tok = "gho_" + r(ALNUM, 36)
    add(c, f"$ cat ~/.config/gh/hosts.yml\ngithub.com:\n    user: jdoe\n    oauth_token: {tok}\n    git_protocol: https", [tok])
    tok = "ghp_" + r(ALNUM, 36)
    add(c, f"$ cat ~/.git-credentials\nhttps://jdoe:{tok}@github.com", [tok])
    tok = vendor("npm")
    add(c, f"\"//registry.yarnpkg.com/:_authToken\" \"{tok}\"", [tok])
    tok = r(ALNUM, 40)
    add(c, f"[install.scopes]\nacme = {{ token = \"{tok}\", url = \"https://npm.acme.io/\" }}", [tok])
    pw = password()
    add(c, f"artifactoryUser=ci\nartifactoryPassword={pw}\norg.gradle.jvmargs=-Xmx2g", [pw])
    pw = password()
    add(c, f"[global]\nindex-url = https://ci:{pw}@nexus.acme.io/repository/pypi/simple\ntrusted-host = nexus.acme.io", [pw])

    # url_secret
    c = "url_secret"
    pw = password()
    add(c, f"dsn := \"shop:{pw}@tcp({host()}:3306)/shop?parseTime=true\"\ndb, err := sql.Open(\"mysql\", dsn)", [pw])
    pw = password()
    add(c, f"REDIS_URL=rediss://default:{pw}@eu1-eager-owl-3021.upstash.io:6379", [pw])
    key = hexs(32)
    add(c, f"curl -X POST \"https://http-intake.logs.datadoghq.com/api/v2/logs?dd-api-key={key}\" -H 'Content-Type: application/json' -d @log.json", [key])
    key, tok = "AIza" + r(B64URL, 35), r(B64URL, 43)
    add(c, f"GCHAT_WEBHOOK=https://chat.googleapis.com/v1/spaces/AAAA{r(B64URL, 7)}/messages?key={key}&token={tok}%3D", [key, tok])
    hook = r(LOWER + DIGITS, 26)
    add(c, f"Mattermost alerts go to https://chat.acme.io/hooks/{hook} (channel #ops-alerts)", [hook])
    pw = password()
    add(c, f"nats://orders:{pw}@nats.corp.lan:4222", [pw])
    pw = password()
    add(c, f"Driver={{ODBC Driver 18 for SQL Server}};Server=tcp:sql01.corp.lan,1433;Database=Shop;UID=shop;PWD={pw};Encrypt=yes;", [pw])

    # config_idiom
    c = "config_idiom"
    gh, sk, pw, ses = vendor("GitHub"), vendor("Stripe"), password(), r(ALNUM, 48)
    add(c, f"$ cat .env\nNODE_ENV=production\nPORT=8080\nLOG_LEVEL=info\nGITHUB_TOKEN={gh}\nSTRIPE_SECRET_KEY={sk}\nDATABASE_PASSWORD={pw}\nSESSION_SECRET={ses}\nFEATURE_NEW_CHECKOUT=true", [gh, sk, pw, ses])
    pw, tok = password(), r(ALNUM, 40)
    add(c, json.dumps([{"Id": hexs(64), "Config": {"Image": "acme/api:1.14.2", "Env": [
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", f"DB_PASSWORD={pw}",
        f"INTERNAL_API_TOKEN={tok}", "LANG=C.UTF-8"]}}], indent=4), [pw, tok])
    a, b = password(), r(ALNUM, 40)
    ab, bb = b64_of(a.encode()), b64_of(b.encode())
    add(c, f"$ kubectl get secret api-secrets -n prod -o yaml\napiVersion: v1\ndata:\n  db-password: {ab}\n  stripe-key: {bb}\nkind: Secret\nmetadata:\n  creationTimestamp: \"2026-11-20T09:12:44Z\"\n  name: api-secrets\n  namespace: prod\n  resourceVersion: \"{digits(8)}\"\n  uid: {uid()}\ntype: Opaque", [ab, bb])
    pw = password()
    add(c, json.dumps({"version": 4, "terraform_version": "1.9.8", "resources": [{"mode": "managed", "type": "aws_db_instance", "name": "main",
        "instances": [{"attributes": {"engine": "postgres", "username": "acme", "password": pw, "port": 5432}, "sensitive_attributes": [[{"type": "get_attr", "value": "password"}]]}]}]}, indent=2), [pw])
    tok, url = r(ALNUM, 40), password()
    add(c, f"$ heroku config -a acme-api\n=== acme-api Config Vars\nDATABASE_URL:      postgres://u{r(LOWER, 12)}:{url}@ec2-3-91-12-7.compute-1.amazonaws.com:5432/d{r(LOWER, 12)}\nLOG_LEVEL:         info\nPUSHER_SECRET:     {tok}", [url, tok])
    pw = password()
    add(c, json.dumps({"Logging": {"LogLevel": {"Default": "Information"}}, "ConnectionStrings": {"Default": f"Server=sql01;Database=Shop;User Id=shop;Password={pw};"}}, indent=2), [pw])
    v = r(ALNUM, 40)
    add(c, f"cfg := Config{{\n\tBaseURL: \"https://api.acme.io\",\n\tAPIKey:  \"{v}\",\n\tTimeout: 10 * time.Second,\n}}", [v])
    v = vendor("Stripe")
    add(c, f"@Value(\"${{stripe.secret-key:{v}}}\")\nprivate String stripeSecretKey;", [v])
    v = r(ALNUM, 32)
    add(c, f"$ dotnet user-secrets list\nSmtp:Host = smtp.acme.io\nSmtp:Password = {v}", [v])

    # delimiter_value
    c = "delimiter_value"
    v = delim_password("#!&")
    add(c, f"SESSION_SECRET=\"{v}\"", [v])
    v = delim_password("&;#")
    add(c, f"./migrate --db-user app --db-password='{v}' up", [v])
    raw = delim_password("&#%!")
    enc = raw.replace("%", "%25").replace("&", "%26").replace("#", "%23").replace("!", "%21")
    add(c, f"mongodb://admin:{enc}@mongo-0.mongo:27017/?authSource=admin&replicaSet=rs0", [enc])
    v = delim_password(";!$")
    add(c, f"<Password>{v}</Password>", [v])
    v = delim_password("#&!")
    add(c, f"- name: Seed\n  env:\n    SEED_ADMIN_PASSWORD: '{v}'\n  run: npm run seed", [v])
    v = delim_password("&!;")
    add(c, f"conn = psycopg2.connect(host=\"{host()}\", dbname=\"app\", user=\"app\", password=\"{v}\")", [v])

    # private_key
    c = "private_key"
    block, body = pem(PEM_TYPES[0])
    jbody = body.replace("\n", "\\n")
    add(c, json.dumps({"type": "tls_private_key", "name": "deploy", "instances": [{"attributes": {"algorithm": "RSA", "rsa_bits": 2048}}]})[:-3]
        + f", \"private_key_pem\": \"{block.replace(chr(10), chr(92) + 'n')}\\n\"}}}}]}}", [jbody])
    block, body = pem(PEM_TYPES[0])
    add(c, f"GITHUB_APP_ID={digits(6)}\nGITHUB_APP_PRIVATE_KEY=\"{block.replace(chr(10), chr(92) + 'n')}\"", [body.replace("\n", "\\n")])
    block, body = pem(PEM_TYPES[1])
    tk = b64_of(block.encode())
    add(c, f"apiVersion: v1\nkind: Secret\ntype: kubernetes.io/tls\nmetadata:\n  name: web-tls\ndata:\n  tls.crt: {b64_of(cert_block().encode())}\n  tls.key: {tk}", [tk])
    arr = "[" + ",".join(str(b) for b in rand_bytes(64)) + "]"
    add(c, f"$ cat ~/.config/solana/id.json\n{arr}", [arr])
    wif = rng.choice("KL") + r("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz", 51)
    add(c, f"importprivkey {wif} \"cold-storage\" false", [wif])

    # jwt
    c = "jwt"
    t = jwt_token({"iss": "https://token.actions.githubusercontent.com", "aud": "sts.amazonaws.com", "sub": "repo:acme/infra:ref:refs/heads/main"}, alg="RS256")
    add(c, f"{ts()} ACTIONS_ID_TOKEN_REQUEST_TOKEN={t}", [t])
    t = jwt_token(alg="RS256")
    add(c, f"users:\n- name: ci\n  user:\n    token: {t}", [t])
    t = jwt_token()
    add(c, f"requests.post(url, json=body, headers={{\"Authorization\": \"JWT {t}\"}})", [t])
    t = jwt_token({"iss": "https://securetoken.google.com/acme-app", "aud": "acme-app", "user_id": r(ALNUM, 28)}, alg="RS256")
    add(c, f"curl 'https://acme-app-default-rtdb.firebaseio.com/orders.json?auth={t}'", [t])

    # generic_secret
    c = "generic_secret"
    v = password()
    add(c, f"$ cat ~/.my.cnf\n[client]\nuser=backup\npassword={v}\nhost={host()}", [v])
    v = password()
    add(c, f"<UserAccounts>\n  <AdministratorPassword>\n    <Value>{v}</Value>\n    <PlainText>true</PlainText>\n  </AdministratorPassword>\n</UserAccounts>", [v])
    v = password()
    add(c, f"spawn ssh admin@10.0.0.5\nexpect \"password:\"\nsend \"{v}\\r\"\ninteract", [v])
    v = b64_of(password().encode())
    add(c, f"<Server>\n  <Host>ftp.partner.net</Host>\n  <User>exports</User>\n  <Pass encoding=\"base64\">{v}</Pass>\n</Server>", [v])
    v = r(ALNUM, 32)
    add(c, f"  \"signingKey\": \"{v}\",\n  \"algorithm\": \"HS256\"", [v])


# --------------------------------------------------------------------------
# negatives: benign near-misses, each filed under the family it resembles
# --------------------------------------------------------------------------

def data_uri_png():
    raw = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + rand_bytes(120)
    return "data:image/png;base64," + b64_of(raw)


def integrity():
    return "sha512-" + b64_of(hashlib.sha512(rand_bytes(16)).digest())


def sourcemap():
    body = b64_of(json.dumps({"version": 3, "file": "main.js", "sources": ["../src/main.ts"],
                              "names": [], "mappings": "AAAA,SAAS," + r("ABCDEFGIKMOQSUWYace", 40)}).encode())
    return "//# sourceMappingURL=data:application/json;charset=utf-8;base64," + body


def ssh_pub(kind="ssh-ed25519"):
    if kind == "ssh-ed25519":
        return "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI" + r(B64, 43) + " " + user() + "@laptop"
    return "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQ" + r(B64, 540) + "= " + user() + "@build-01"


def cert_block(name="CERTIFICATE"):
    body = pem_body("MIIDdzCCAl+gAwIBAgIE", 1200)
    return f"-----BEGIN {name}-----\n{body}\n-----END {name}-----"


def neg(category, text):
    assert category in FAMILIES
    CASES.append({"category": category, "text": text, "secrets": []})


def negatives():
    N = neg
    # credential_pair
    c = "credential_pair"
    N(c, "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\nregion = us-east-1\n\n(these are the placeholder values from the AWS docs; real ones come from SSO)")
    N(c, "s3 = boto3.client(\"s3\", aws_access_key_id=os.environ[\"AWS_ACCESS_KEY_ID\"], aws_secret_access_key=os.environ[\"AWS_SECRET_ACCESS_KEY\"])")
    N(c, "$ aws configure list\n      Name                    Value             Type    Location\n      ----                    -----             ----    --------\n   profile                <not set>             None    None\naccess_key     ****************" + r(UPPER + DIGITS, 4) + " shared-credentials-file\nsecret_key     ****************" + r(ALNUM, 4) + " shared-credentials-file\n    region                eu-west-1      config-file    ~/.aws/config")
    N(c, json.dumps({"UserId": "AIDA" + r(B32, 17), "Account": "123456789012", "Arn": "arn:aws:iam::123456789012:user/ci-exporter"}, indent=4))
    N(c, "client = Client(account_sid, auth_token)\nmessage = client.messages.create(body=\"Deploy finished\", from_=FROM, to=ONCALL)")
    N(c, "const client = twilio(process.env.TWILIO_ACCOUNT_SID, process.env.TWILIO_AUTH_TOKEN);")
    N(c, "The secret access key is only shown once when you create the key pair, so if you lost it you have to create a new access key and deactivate the old one.")
    N(c, f"Role ARN: arn:aws:iam::{digits(12)}:role/github-actions-deploy\nSession: gha-{digits(10)}-{digits(1)}")
    N(c, f"Message SID SM{hexs(32)} queued, status=accepted, price=null")
    N(c, "credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, \"\")")
    N(c, f"provider \"aws\" {{\n  region  = \"us-west-2\"\n  profile = \"prod\"\n  assume_role {{\n    role_arn = \"arn:aws:iam::{digits(12)}:role/terraform\"\n  }}\n}}")
    N(c, "api_key = \"<your api key>\"\napi_secret = \"<your api secret>\"")
    N(c, "AWS_ACCESS_KEY_ID=${{ secrets.AWS_ACCESS_KEY_ID }}\nAWS_SECRET_ACCESS_KEY=${{ secrets.AWS_SECRET_ACCESS_KEY }}")
    N(c, f"Key pair created: key id {uid()}, fingerprint {':'.join(hexs(2) for _ in range(16))} (the private part was downloaded as acme.pem)")
    N(c, f"b2 ls b2://acme-backups/ --recursive | head\n2026-11-28  23:10  {digits(9)}  pg/{digits(8)}.sql.gz")
    N(c, "GOOGLE_CLIENT_ID=" + digits(12) + "-" + r(LOWER + DIGITS, 32) + ".apps.googleusercontent.com\nGOOGLE_CLIENT_SECRET=${GOOGLE_CLIENT_SECRET}")
    N(c, "| Field | Example |\n|---|---|\n| Access key ID | `AKIAIOSFODNN7EXAMPLE` |\n| Secret access key | `wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY` |")
    N(c, f"Assumed role {uid()} for session ci-{digits(6)}; credentials expire at 2026-11-29T04:12:55Z")
    N(c, "Rotate the Twilio auth token under Console > Account > API keys & tokens, then update TWILIO_AUTH_TOKEN in the vault.")
    N(c, f"aws iam list-access-keys --user-name ci\n{{\n    \"AccessKeyMetadata\": [\n        {{\n            \"UserName\": \"ci\",\n            \"Status\": \"Inactive\",\n            \"CreateDate\": \"2025-03-02T10:00:00+00:00\"\n        }}\n    ]\n}}")

    # cli_flag
    c = "cli_flag"
    N(c, "echo \"$REGISTRY_TOKEN\" | docker login ghcr.io -u acme-bot --password-stdin\nLogin Succeeded")
    N(c, "$ mysql -h db.internal -u root -p\nEnter password:\nWelcome to the MySQL monitor.")
    N(c, "docker run -d -p 5432:5432 -e POSTGRES_PASSWORD_FILE=/run/secrets/pg -v pgdata:/var/lib/postgresql/data postgres:16")
    N(c, "ssh -p 2222 deploy@10.20.0.4 'uptime'\n 02:41:07 up 41 days,  3:12,  1 user,  load average: 0.08, 0.11, 0.09")
    N(c, "scp -P 2222 -i ~/.ssh/id_ed25519 build.tar.gz deploy@bastion:/tmp/")
    N(c, "curl -u \"$NEXUS_USER:$NEXUS_PASS\" https://nexus.corp.lan/service/rest/v1/status")
    N(c, "psql -h db.internal -U reporting -W -d analytics\nPassword for user reporting:")
    N(c, "az storage blob list --account-name acmeartifacts --account-key \"$AZURE_STORAGE_KEY\" --container-name builds -o table")
    N(c, "redis-cli -h cache-01 -a \"$(cat /run/secrets/redis)\" ping\nPONG")
    N(c, "openssl pkcs12 -export -in cert.pem -inkey key.pem -out bundle.p12 -passout env:P12_PASS")
    N(c, "sshpass -f ~/.config/ops/pw ssh ops@10.20.0.4 true")
    N(c, "mysqldump --defaults-extra-file=/etc/backup/my.cnf --single-transaction shop | gzip > shop.sql.gz")
    N(c, "kubectl create secret generic pg-creds --from-file=password=./pg-password.txt -n prod\nsecret/pg-creds created")
    N(c, "git commit -m \"cli: stop accepting --password on the command line, read it from stdin\"")
    N(c, "$ grep -rn -- '--password' scripts/\nscripts/backup.sh:12:  --password-file \"$PW_FILE\" \\")
    N(c, "ps aux | grep mysqld\nmysql     1123  0.4  5.2 2451236 421004 ?  Ssl  Nov28   4:12 /usr/sbin/mysqld --port=3306 --socket=/var/run/mysqld/mysqld.sock")
    N(c, "gpg --batch --pinentry-mode loopback --passphrase-fd 0 --decrypt secrets.tar.gz.gpg < /run/secrets/gpg-pass > secrets.tar.gz")
    N(c, "tar -xzpf backup-2026-11-28.tar.gz -C /srv/restore && ls -p /srv/restore")
    N(c, "twine upload --repository testpypi dist/*\nEnter your API token:")
    N(c, "usage: mysql [-u user] [-p[password]] [-h host] [-P port] database\n  -p, --password[=name] Password to use when connecting to server. If password is not given it's asked from the tty.")
    N(c, "npm login --auth-type=web --registry https://registry.npmjs.org/\nLogin at:\nhttps://www.npmjs.com/login?next=/login/cli/" + uid())
    N(c, "docker run -p 8080:80 -p 8443:443 --name web nginx:1.27-alpine")

    # auth_header
    c = "auth_header"
    N(c, "curl -H \"Authorization: Bearer <token>\" https://api.acme.io/v1/orders")
    N(c, "curl -H \"Authorization: Bearer $API_TOKEN\" https://api.acme.io/v1/orders")
    N(c, "- run: curl -fsS -H \"Authorization: Bearer ${{ secrets.DEPLOY_TOKEN }}\" https://deploy.acme.io/hooks/web")
    N(c, "headers = {\"Authorization\": f\"Bearer {token}\", \"Accept\": \"application/json\"}")
    N(c, "HTTP/1.1 401 Unauthorized\nWWW-Authenticate: Basic realm=\"Restricted\", charset=\"UTF-8\"\nContent-Length: 0")
    N(c, f"HTTP/1.1 401 Unauthorized\nWWW-Authenticate: Digest realm=\"camera\", qop=\"auth\", nonce=\"{hexs(32)}\", opaque=\"{hexs(32)}\"")
    N(c, "proxy_set_header Authorization $http_authorization;\nproxy_pass_header Authorization;")
    N(c, "Access-Control-Allow-Headers: Authorization, Content-Type, X-Request-Id\nAccess-Control-Max-Age: 600")
    N(c, f"HTTP/2 200\ncontent-type: application/json\nx-request-id: {uid()}\netag: \"{sha1()}\"\nx-amzn-trace-id: Root=1-{hexs(8)}-{hexs(24)}")
    N(c, f"traceparent: 00-{hexs(32)}-{hexs(16)}-01\ntracestate: congo=t61rcWkgMzE")
    N(c, "Authorization: Basic $(printf '%s:%s' \"$USER\" \"$PASS\" | base64)")
    N(c, "-H \"Authorization: token ${GH_TOKEN}\"")
    N(c, "Cookie: theme=dark; lang=en-GB; tz=Europe%2FLondon")
    N(c, f"Content-MD5: {b64_of(hashlib.md5(rand_bytes(8)).digest())}\nContent-Type: application/octet-stream")
    N(c, "Authorization: [REDACTED]\nUser-Agent: curl/8.5.0")
    N(c, "The API expects `Authorization: Bearer <access token>`; tokens come from POST /oauth/token and expire after an hour.")
    N(c, f"If-None-Match: W/\"{hexs(16)}\"\nCache-Control: no-cache")
    N(c, "Strict-Transport-Security: max-age=63072000; includeSubDomains; preload")
    N(c, "http-request set-header Authorization \"Basic %[env(BACKEND_BASIC)]\"")
    N(c, "request.headers['Authorization'] = 'Bearer ' + self.token_provider.get()")
    N(c, f"X-Request-Id: {uid()}\nX-Correlation-Id: {hexs(32)}")

    # registry_auth
    c = "registry_auth"
    N(c, "//registry.npmjs.org/:_authToken=${NPM_TOKEN}\nalways-auth=true")
    N(c, "registry=https://registry.npmjs.org/\nsave-exact=true\nengine-strict=true")
    N(c, f"    \"node_modules/lodash\": {{\n      \"version\": \"4.17.21\",\n      \"resolved\": \"https://registry.npmjs.org/lodash/-/lodash-4.17.21.tgz\",\n      \"integrity\": \"{integrity()}\"\n    }}")
    N(c, f"lodash@^4.17.21:\n  version \"4.17.21\"\n  resolved \"https://registry.yarnpkg.com/lodash/-/lodash-4.17.21.tgz#{sha1()}\"\n  integrity {integrity()}")
    N(c, f"$ docker pull ghcr.io/acme/api@sha256:{sha256()}\nDigest: sha256:{sha256()}\nStatus: Downloaded newer image")
    N(c, f"[[package]]\nname = \"serde\"\nversion = \"1.0.215\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"{sha256()}\"")
    N(c, f"github.com/stretchr/testify v1.9.0 h1:{b64_of(rand_bytes(32))}\ngithub.com/stretchr/testify v1.9.0/go.mod h1:{b64_of(rand_bytes(32))}")
    N(c, f"requests==2.32.3 \\\n    --hash=sha256:{sha256()} \\\n    --hash=sha256:{sha256()}")
    N(c, f"  /react@18.3.1:\n    resolution: {{integrity: {integrity()}}}\n    engines: {{node: '>=0.10.0'}}")
    N(c, json.dumps({"auths": {"ghcr.io": {}, "https://index.docker.io/v1/": {}}, "credsStore": "desktop", "currentContext": "default"}, indent=2))
    N(c, "[pypi]\nrepository = https://upload.pypi.org/legacy/\nusername = __token__\n# password comes from keyring")
    N(c, "<server>\n  <id>acme-releases</id>\n  <username>${env.MAVEN_USER}</username>\n  <password>${env.MAVEN_PASSWORD}</password>\n</server>")
    N(c, "<add key=\"ClearTextPassword\" value=\"%NUGET_PAT%\" />")
    N(c, f"\"source\": {{\"type\": \"git\", \"url\": \"https://github.com/symfony/console.git\", \"reference\": \"{sha1()}\"}},\n\"dist\": {{\"type\": \"zip\", \"shasum\": \"\"}}")
    N(c, "$ npm whoami\nacme-ci\n$ npm publish --access public\n+ @acme/ui@3.4.1")
    N(c, "Successfully registered gem: acme-client (2.1.0)")
    N(c, "machine github.com\n  login acme-bot\n  # password is injected by the credential helper")
    N(c, "npmAuthToken: \"${NPM_AUTH_TOKEN}\"\nnpmAlwaysAuth: true")
    N(c, f"Pushing acme/api:1.14.2\n1.14.2: digest: sha256:{sha256()} size: 2417")
    N(c, "[registries.acme-internal]\nindex = \"sparse+https://cargo.acme.io/index/\"\ncredential-provider = [\"cargo:token-from-stdout\", \"/usr/local/bin/get-cargo-token\"]")
    N(c, f"FROM python:3.12-slim@sha256:{sha256()}\nRUN pip install --no-cache-dir -r requirements.txt")

    # url_secret
    c = "url_secret"
    N(c, f"See https://github.com/acme/infra/commit/{sha1()} for the fix.")
    N(c, "https://shop.acme.io/search?q=usb+c+cable&page=2&sort=price_asc#results")
    N(c, "DATABASE_URL=postgres://localhost:5432/app_dev")
    N(c, "DATABASE_URL=postgres://app@db.internal:5432/app?sslmode=verify-full")
    N(c, "DATABASE_URL=postgres://${DB_USER}:${DB_PASSWORD}@${DB_HOST}:5432/app")
    N(c, "postgresql://user:password@localhost:5432/mydb  # replace user/password with your own")
    N(c, "redis://redis:6379/0")
    N(c, "https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=42s")
    N(c, "https://acme-reports.s3.eu-west-1.amazonaws.com/public/logo.svg")
    N(c, "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX")
    N(c, "curl https://api.telegram.org/bot<token>/getMe")
    N(c, "POST https://discord.com/api/webhooks/{webhook.id}/{webhook.token}")
    N(c, "git@github.com:acme/infra.git\nssh://git@gitlab.acme.io:2222/platform/api.git")
    N(c, f"https://docs.rs/tokio/1.41.1/tokio/sync/struct.Mutex.html")
    N(c, f"GET /api/v1/orders/{uid()}?expand=items&fields=id,total HTTP/1.1")
    N(c, f"https://acme.io/pricing?utm_source=newsletter&utm_medium=email&utm_campaign=nov-2026&utm_content={hexs(8)}")
    N(c, "mailto:security@acme.io?subject=Vulnerability%20report")
    N(c, f"https://github.com/acme/web/actions/runs/{digits(11)}/job/{digits(11)}")
    N(c, f"https://registry.npmjs.org/@acme%2fui/-/ui-3.4.1.tgz")
    N(c, "https://storage.googleapis.com/acme-public/datasets/cities.csv")
    N(c, "https://maps.googleapis.com/maps/api/js?key=YOUR_API_KEY&callback=initMap")
    N(c, f"ws://localhost:5173/?token=&v={hexs(8)}")

    # config_idiom
    c = "config_idiom"
    N(c, "app.config['SECRET_KEY'] = os.environ['SECRET_KEY']")
    N(c, "SECRET_KEY = os.getenv(\"DJANGO_SECRET_KEY\")\nif not SECRET_KEY:\n    raise ImproperlyConfigured(\"DJANGO_SECRET_KEY is not set\")")
    N(c, "database:\n  host: db.internal\n  password: ${DB_PASSWORD}\n  pool: 10")
    N(c, "resource \"aws_db_instance\" \"main\" {\n  username = \"acme\"\n  password = var.db_password\n}")
    N(c, "env:\n  - name: DB_PASSWORD\n    valueFrom:\n      secretKeyRef:\n        name: pg-creds\n        key: password")
    N(c, "export API_TOKEN=$(vault kv get -field=token secret/ci/api)")
    N(c, "settings.API_TOKEN = None  # set at runtime by the secrets loader")
    N(c, "api_key: \"\"\nendpoint: https://api.acme.io")
    N(c, "spring.datasource.password=${SPRING_DATASOURCE_PASSWORD}")
    N(c, "variable \"db_password\" {\n  type      = string\n  sensitive = true\n}")
    N(c, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  LOG_LEVEL: debug\n  FEATURE_FLAGS: search,checkout-v2\n  TIMEOUT_MS: \"2500\"")
    N(c, "setx PATH \"%PATH%;C:\\tools\\bin\"")
    N(c, "TOKEN_TTL_SECONDS=3600\nPASSWORD_MIN_LENGTH=12\nSESSION_COOKIE_SECURE=true")
    N(c, "password_hashing:\n  algorithm: argon2id\n  memory_kib: 65536\n  iterations: 3")
    N(c, "secret_name: prod/payments/db-credentials\nsecret_region: eu-west-1")
    N(c, "<add key=\"PaymentGatewaySecret\" value=\"#{PaymentGatewaySecret}#\" />")
    N(c, "[Service]\nEnvironmentFile=/etc/acme/api.env\nExecStart=/usr/bin/node /srv/app/index.js")
    N(c, "max_tokens: 4096\ntemperature: 0.2\ntoken_endpoint: https://auth.acme.io/oauth/token")
    N(c, "jwtSecret: process.env.JWT_SECRET,\nsessionSecret: process.env.SESSION_SECRET,")
    N(c, "$env:PATH += \";C:\\Program Files\\Git\\bin\"")
    N(c, "define( 'AUTH_KEY',         'put your unique phrase here' );")
    N(c, "key_vault_uri = \"https://acme-prod-kv.vault.azure.net/\"\nvault_path = \"secret/data/app\"")

    # vendor_token
    c = "vendor_token"
    N(c, "GitHub classic tokens start with ghp_, fine-grained ones with github_pat_, and Actions tokens with ghs_.")
    N(c, "ANTHROPIC_API_KEY=sk-ant-...\nOPENAI_API_KEY=sk-...")
    N(c, "export SLACK_BOT_TOKEN=xoxb-your-bot-token")
    N(c, f"<script>const stripe = Stripe('pk_live_51{r(ALNUM, 97)}');</script>")
    N(c, f"mapboxgl.accessToken = 'pk.{b64url_of(json.dumps({'u': 'acme-maps', 'a': 'cl' + r(LOWER + DIGITS, 23)}).encode())}.{r(B64URL, 22)}';")
    N(c, f"Created customer cus_{r(ALNUM, 14)} and charge ch_{r(ALNUM, 24)}; payment intent pi_{r(ALNUM, 24)} succeeded.")
    N(c, f"{{\"id\": \"msg_01{r(ALNUM, 22)}\", \"type\": \"message\", \"role\": \"assistant\", \"model\": \"claude-sonnet-4-5\", \"stop_reason\": \"tool_use\", \"content\": [{{\"type\": \"tool_use\", \"id\": \"toolu_01{r(ALNUM, 22)}\", \"name\": \"bash\"}}]}}")
    N(c, f"{{\"id\": \"chatcmpl-{r(ALNUM, 29)}\", \"object\": \"chat.completion\", \"created\": 1764370000, \"model\": \"gpt-4o-2024-08-06\", \"system_fingerprint\": \"fp_{hexs(10)}\"}}")
    N(c, f"request-id: req_{r(ALNUM, 24)}\nanthropic-ratelimit-requests-remaining: 49")
    N(c, f"Posted to channel C{r(UPPER + DIGITS, 10)} as user U{r(UPPER + DIGITS, 10)} (ts 1764370123.{digits(6)})")
    N(c, f"gh run view {digits(11)} --log-failed\nX build in 2m14s (ID {digits(11)})")
    N(c, f"docker pull ghcr.io/acme/api:sha-{hexs(7)}")
    N(c, "npm install @sentry/node @slack/web-api @anthropic-ai/sdk openai stripe")
    N(c, f"Sentry event {hexs(32)} captured (release api@1.14.2, environment production)")
    N(c, "GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}\nNPM_TOKEN: ${{ secrets.NPM_TOKEN }}")
    N(c, f"Twilio webhook: MessageSid=SM{hexs(32)}&AccountSid=AC{'0' * 32}&From=%2B15017122661")
    N(c, "HF_TOKEN=hf_********************************")
    N(c, f"Thread thread_{r(ALNUM, 24)} run run_{r(ALNUM, 24)} completed; file file-{r(ALNUM, 24)} attached")
    N(c, f"Vault lease id: database/creds/readonly/{r(ALNUM, 24)} (ttl 768h, renewable)")
    N(c, "You can generate a token at https://huggingface.co/settings/tokens; it will look like hf_ followed by 34 letters.")
    N(c, "stripe listen --forward-to localhost:4242/webhook\n> Ready! Your webhook signing secret is whsec_... (^C to quit)")
    N(c, f"datadog-agent status | head -3\n  Agent (v7.58.2)\n  Status date: 2026-11-29 02:41:07 UTC\n  Hostname: ip-10-0-3-17")

    # delimiter_value
    c = "delimiter_value"
    N(c, "DB_PASSWORD=${DB_PASSWORD:-}\nDB_HOST=${DB_HOST:-localhost}")
    N(c, "if [ -z \"$PGPASSWORD\" ]; then echo 'PGPASSWORD not set' >&2; exit 1; fi")
    N(c, "PGPASSWORD=\"$(cat /run/secrets/pg)\" pg_dump -h db.internal app > app.sql")
    N(c, "https://acme.io/reports?from=2026-11-01&to=2026-11-28&group=week#summary")
    N(c, "make build && ./bin/migrate up; echo \"exit=$?\" # done")
    N(c, "Password must be 12+ characters and contain one of !@#$%^&*")
    N(c, "PASSWORD_REGEX = r'^(?=.*[a-z])(?=.*[A-Z])(?=.*\\d)(?=.*[!@#$%^&*]).{12,}$'")
    N(c, "sed -e 's/#.*$//' -e '/^$/d' config.ini > config.clean")
    N(c, "<a href=\"/search?q=tea&amp;page=2\">next &raquo;</a>")
    N(c, "export PGPASSWORD\nexport PGHOST=db.internal")
    N(c, ".btn-primary { color: #ff0066; background: #1a1a2e; } /* #todo: dark mode */")
    N(c, "DB_PASSWORD=\nDB_USER=app")
    N(c, "api_key=${API_KEY}&format=json")
    N(c, "for f in *.log; do gzip \"$f\"; done; ls -lh | grep -c '.gz$'")
    N(c, "secret=$(openssl rand -base64 32) && kubectl create secret generic app --from-literal=secret=\"$secret\"")
    N(c, "echo \"Hello, World!\" && printf '%s\\n' \"100% done; bye\"")
    N(c, "password: \"{{ vault_db_password }}\"")
    N(c, f"query: status=open&assignee=me&labels=bug,p1&since={ts()}")
    N(c, "[mysql]\nuser = backup\n# password comes from ~/.mylogin.cnf")
    N(c, "git log --oneline --since='2 weeks ago' | grep -i 'fix!' ; echo $?")
    N(c, "DB_PASSWORD='<set me in .env.local>'")
    N(c, "ADMIN_PASSWORD=\"${ADMIN_PASSWORD:?ADMIN_PASSWORD must be set}\" ./bootstrap.sh --seed")

    # private_key
    c = "private_key"
    N(c, ssh_pub())
    N(c, "$ cat ~/.ssh/id_rsa.pub\n" + ssh_pub("ssh-rsa"))
    N(c, cert_block())
    N(c, f"-----BEGIN PUBLIC KEY-----\n{pem_body('MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA', 392)}\n-----END PUBLIC KEY-----")
    N(c, f"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n{pem_body('mQINBGV', 1200)}\n={r(B64, 4)}\n-----END PGP PUBLIC KEY BLOCK-----")
    N(c, f"github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{r(B64, 43)}\n|1|{b64_of(rand_bytes(20))}|{b64_of(rand_bytes(20))} ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBB{r(B64, 88)}=")
    N(c, json.dumps({"keys": [{"kty": "RSA", "kid": hexs(8), "use": "sig", "alg": "RS256", "n": r(B64URL, 342), "e": "AQAB"}]}))
    N(c, f"Your identification has been saved in /home/dev/.ssh/id_ed25519\nYour public key has been saved in /home/dev/.ssh/id_ed25519.pub\nThe key fingerprint is:\nSHA256:{r(B64, 43)} dev@laptop\nThe key's randomart image is:\n+--[ED25519 256]--+\n|      .o+*=.     |\n|       +=B+o     |\n+----[SHA256]-----+")
    N(c, "$ grep -rl 'BEGIN RSA PRIVATE KEY' . --include='*.pem'\n./certs/legacy/api.key")
    N(c, "private_key_path = \"~/.ssh/id_ed25519\"\npublic_key = file(\"~/.ssh/id_ed25519.pub\")")
    N(c, f"[Peer]\nPublicKey = {r(B64, 43)}=\nEndpoint = vpn.acme.io:51820\nAllowedIPs = 10.8.0.0/24")
    N(c, f"# public key: age1{r(BECH32.lower(), 58)}\nrecipients: age1{r(BECH32.lower(), 58)}")
    N(c, f"$ ssh-add -l\n256 SHA256:{r(B64, 43)} dev@laptop (ED25519)\n3072 SHA256:{r(B64, 43)} deploy (RSA)")
    N(c, cert_block("CERTIFICATE REQUEST"))
    N(c, f"Payout address: 0x{hexs(40)}\nTx hash: 0x{hexs(64)}")
    N(c, "Error: error:1E08010C:DECODER routines::unsupported (the file at ./key.pem is not a PEM private key)")
    N(c, f"ca.crt: |\n  -----BEGIN CERTIFICATE-----\n  " + "\n  ".join(pem_body("MIIDBTCCAe2gAwIBAgII", 800).split("\n")) + "\n  -----END CERTIFICATE-----")
    N(c, "ssh-keygen -t ed25519 -C \"ci@acme.io\" -f ./deploy_key -N \"\"")
    N(c, f"client-certificate-data: {b64_of(cert_block().encode())[:200]}... (truncated)")
    N(c, "Added `-----BEGIN OPENSSH PRIVATE KEY-----` to .gitleaksignore patterns? No - we ignore the fixtures directory instead.")

    # jwt
    c = "jwt"
    N(c, data_uri_png())
    N(c, sourcemap())
    N(c, f"GET /api/v1/events?limit=50&cursor={b64url_of(json.dumps({'id': int(digits(6)), 'ts': 1764370000}).encode())}")
    N(c, "Authorization: Bearer <jwt>")
    N(c, "const payload = jwt.verify(token, publicKey, { algorithms: ['RS256'], audience: 'https://api.acme.io' });")
    N(c, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}\n{\"sub\":\"42\",\"role\":\"admin\",\"exp\":1764373600}")
    N(c, "jwks_uri: https://auth.acme.io/.well-known/jwks.json\nissuer: https://auth.acme.io/")
    N(c, "com.acme.auth.jwt.TokenService.verify(TokenService.java:88)\n  at com.acme.auth.filter.JwtFilter.doFilter(JwtFilter.java:41)")
    N(c, "token = 'eyJhbGciOi...'  # truncated in the docs")
    N(c, f"$ kubectl get secret app-tls -o jsonpath='{{.metadata.annotations}}'\n{{\"kubectl.kubernetes.io/last-applied-configuration\":\"{{\\\"apiVersion\\\":\\\"v1\\\",\\\"kind\\\":\\\"Secret\\\"}}\"}}")
    N(c, "version 1.2.3.4 (build 20261128.1)\nnext: 1.2.4.0-rc.1+exp.sha.5114f85")
    N(c, f"data:font/woff2;base64,{b64_of(b'wOF2' + rand_bytes(150))}")
    N(c, f"<img alt=\"chart\" src=\"{data_uri_png()}\" width=\"320\"/>")
    N(c, "jwt.exceptions.DecodeError: Not enough segments\n  token: (empty)")
    N(c, "Set-Cookie: theme=dark; Path=/; Max-Age=31536000")
    N(c, f"exp: 1764373600 (2026-11-29T03:46:40Z), iat: 1764370000, nbf: 1764370000")
    N(c, f"Decoded header: {b64url_of(json.dumps({'alg': 'RS256', 'kid': hexs(8)}).encode())} -> {{\"alg\":\"RS256\"}}")
    N(c, "The token has three base64url parts separated by dots: header.payload.signature.")
    N(c, f"payload_b64 = \"{b64url_of(json.dumps({'event': 'deploy', 'sha': sha1()}).encode())}\"  # webhook body, not a token")
    N(c, f"DEBUG sso: state={uid()} nonce generated, redirecting to https://auth.acme.io/authorize?response_type=code&client_id=web")
    N(c, f"Supabase anon key is set in NEXT_PUBLIC_SUPABASE_ANON_KEY (see .env.example: NEXT_PUBLIC_SUPABASE_ANON_KEY=your-anon-key)")

    # generic_secret
    c = "generic_secret"
    N(c, "[sudo] password for deploy: \nSorry, try again.")
    N(c, "Enter passphrase for key '/home/dev/.ssh/id_ed25519': ")
    N(c, "pwd = os.getcwd()\nprint(pwd)")
    N(c, "PWD=/home/dev/src/acme\nOLDPWD=/home/dev\nSHELL=/bin/bash")
    N(c, "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin")
    N(c, "password: Optional[str] = None\npassphrase: Optional[str] = None")
    N(c, "fn verify_password(hash: &str, candidate: &str) -> Result<bool, Error>")
    N(c, "passphrase = getpass.getpass(\"Passphrase: \")")
    N(c, "SELECT id, email, password_hash, created_at FROM users WHERE email = $1;")
    N(c, "ALTER USER app WITH PASSWORD :'new_password';")
    N(c, "contraseña: ********")
    N(c, f"password_reset_token_expiry = 3600\nsecret_length = 32\ntoken_count = {rng.randint(1000, 9999)}")
    N(c, "keyring get acme-cli default\n(uses the OS keychain; nothing stored in config)")
    N(c, "Secrets are loaded from config/secrets.yml.enc with the master key in RAILS_MASTER_KEY.")
    N(c, "requirepass \"\"\n# no auth on the local dev instance")
    N(c, f"commit {sha1()}\nAuthor: Jane Doe <jane@acme.io>\nDate:   Sat Nov 28 23:10:04 2026 +0000\n\n    auth: hash passwords with argon2id")
    N(c, f"request_id={uid()} user_id={digits(6)} password_changed=true ip=203.0.113.24")
    N(c, f"sha256sum release.tar.gz\n{sha256()}  release.tar.gz")
    N(c, f"sha512: {hashlib.sha512(rand_bytes(8)).hexdigest()}")
    N(c, f"Build {uid()} finished at {ts()} (v2.14.0-rc.3, commit {sha1()[:12]})")
    N(c, "credentials: \"include\",\nmode: \"cors\",")
    N(c, "let kennwort = std::env::var(\"DB_KENNWORT\").expect(\"DB_KENNWORT fehlt\");")


def long_log(n, inject=None, at=None):
    """A long, benign CI/build log of n lines; inject extra lines at index at."""
    pkgs = ["serde", "tokio", "hyper", "rustls", "sqlx", "tracing", "clap", "axum", "regex", "rand"]
    lines = []
    for i in range(n):
        kind = rng.randrange(6)
        if kind == 0:
            lines.append(f"   Compiling {rng.choice(pkgs)} v1.{rng.randint(0, 40)}.{rng.randint(0, 20)}")
        elif kind == 1:
            lines.append(f"{ts()} INFO request_id={uid()} method=GET path=/api/v1/orders/{digits(6)} status=200 dur_ms={rng.randint(1, 900)}")
        elif kind == 2:
            lines.append(f"#{rng.randint(5, 30)} sha256:{sha256()} {rng.randint(1, 90)}.{rng.randint(0, 9)}MB / {rng.randint(90, 200)}.0MB")
        elif kind == 3:
            lines.append(f"test {rng.choice(pkgs)}::tests::case_{i} ... ok")
        elif kind == 4:
            lines.append(f"{hexs(7)} Merge pull request #{rng.randint(100, 999)} from acme/feature-{r(LOWER, 6)}")
        else:
            lines.append(f"npm http fetch GET 200 https://registry.npmjs.org/{rng.choice(['react', 'lodash', 'zod', 'vite'])} {rng.randint(5, 300)}ms (cache hit)")
    if inject:
        at = len(lines) // 2 if at is None else at
        lines[at:at] = inject
    return "\n".join(lines)


def long_positives():
    """Secrets buried in long logs (5-20 KB), at the start, middle and end."""
    pw = password()
    add("cli_flag", long_log(150, [f"+ mysql -h {host()} -u migrate -p{pw} app < schema.sql"]), [pw])
    tok = vendor("npm")
    add("vendor_token", long_log(250, [f"npm verb config using token {tok} for //registry.npmjs.org/"], at=3), [tok])
    sk, pw2 = vendor("Stripe"), password()
    add("config_idiom", long_log(200, [f"+ export STRIPE_SECRET_KEY={sk}", f"+ export DB_PASSWORD={pw2}"], at=199), [sk, pw2])
    t = jwt_token(alg="RS256")
    add("jwt", long_log(300, [f"{ts()} DEBUG outgoing request headers={{'authorization': 'Bearer {t}'}}"]), [t])
    block, body = pem(PEM_TYPES[3])
    add("private_key", long_log(120, ["+ cat /tmp/deploy_key"] + block.split("\n"), at=60), [body])


def prose_positives():
    """Secrets written as prose, tables and in other languages."""
    c = "generic_secret"
    v = password()
    add(c, f"Hier ist das Passwort für die Staging-DB: {v} (bitte nicht weitergeben)", [v])
    v = password()
    add(c, f"La contraseña del usuario admin es {v}, cámbiala después del despliegue.", [v])
    v = password()
    add(c, f"Le mot de passe du compte de service est « {v} ».", [v])
    v = password()
    add(c, f"creds for the staging box are admin / {v}", [v])
    v = password()
    add(c, f"login: deploy, pass: {v}, host: {host()}", [v])
    v = password()
    add(c, f"password:{v}", [v])
    v1, v2 = password(), password()
    add(c, f"| env | user | password |\n|---|---|---|\n| staging | app | {v1} |\n| prod | app | {v2} |", [v1, v2])
    v = password()
    add(c, f"Ok, I reset it. New root password for the bastion: `{v}`", [v])
    c = "url_secret"
    pw = password()
    add(c, f"engine = create_engine(\"snowflake://etl:{pw}@acme-xy12345/analytics/public?warehouse=COMPUTE_WH\")", [pw])
    pw = password()
    add(c, f"sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) connection to server at \"{host()}\" failed\n(Background on this error at: https://sqlalche.me/e/20/e3q8)\n[SQL: postgresql+psycopg2://analytics:{pw}@{host()}:5432/dw]", [pw])
    c = "config_idiom"
    v = r(ALNUM, 40)
    add(c, f"  - name: Deploy\n    env:\n      NETLIFY_AUTH_TOKEN: \"{v}\"\n    run: netlify deploy --prod", [v])
    v = password()
    add(c, f"export PGPASSWORD=\"{v}\"\npsql -h {host()} -U app -c '\\\\dt'", [v])


def tool_positives():
    """Vendor CLIs taking tokens as flags, form bodies, debug prints of structs."""
    c = "cli_flag"
    tok = "ghp_" + r(ALNUM, 36)
    add(c, f"$ gh auth login --hostname github.com --with-token <<< {tok}\n$ gh auth status\n  ✓ Logged in to github.com account acme-bot (keyring)", [tok])
    tok = vendor("npm")
    add(c, f"npm config set //registry.npmjs.org/:_authToken {tok}", [tok])
    tok = vendor("Stripe")
    add(c, f"stripe listen --api-key {tok} --forward-to localhost:4242/webhook", [tok])
    tok = vendor("DigitalOcean")
    add(c, f"doctl auth init --context acme -t {tok}", [tok])
    tok = vendor("Hugging Face")
    add(c, f"huggingface-cli login --token {tok} --add-to-git-credential", [tok])
    tok = r(ALNUM, 24)
    add(c, f"vercel deploy --prod --token {tok} --scope acme", [tok])
    tok = vendor("Terraform Cloud")
    add(c, f"tfe-cli --token {tok} workspace list", [tok])
    tok = vendor("Sentry")
    add(c, f"sentry-cli --auth-token {tok} releases new -p web 1.14.2", [tok])
    c = "url_secret"
    cs = r(B64URL, 48)
    add(c, f"POST /oauth/token HTTP/1.1\nHost: auth.acme.io\nContent-Type: application/x-www-form-urlencoded\n\ngrant_type=client_credentials&client_id=billing-worker&client_secret={cs}&audience=https%3A%2F%2Fapi.acme.io", [cs])
    pw = password()
    add(c, f"{ts()} DEBUG request body: username=jdoe&password={pw}&remember_me=1", [pw])
    rt = r(B64URL, 64)
    add(c, f"curl -X POST https://oauth2.googleapis.com/token -d client_id={digits(12)}-{r(LOWER + DIGITS, 32)}.apps.googleusercontent.com -d refresh_token={rt} -d grant_type=refresh_token", [rt])
    c = "config_idiom"
    pw, tok = password(), r(ALNUM, 40)
    add(c, f"[src/main.rs:42:5] &config = Config {{\n    listen: 127.0.0.1:8080,\n    db_password: \"{pw}\",\n    api_token: \"{tok}\",\n    max_conns: 32,\n}}", [pw, tok])
    pw = password()
    add(c, f"config loaded: {{Addr::8080 DBUser:app DBPassword:{pw} Debug:false}}", [pw])
    gh, pw = vendor("GitHub"), password()
    add(c, f"$ env | sort\nHOME=/home/runner\nHOSTNAME=runner-7f9c\nGITHUB_TOKEN={gh}\nLANG=C.UTF-8\nMYSQL_PASSWORD={pw}\nPATH=/usr/local/bin:/usr/bin:/bin", [gh, pw])
    c = "generic_secret"
    pw = password()
    add(c, f"ERROR connect() failed with kwargs={{'host': '{host()}', 'user': 'app', 'password': '{pw}', 'dbname': 'orders'}}", [pw])
    pw = password()
    add(c, f"<input type=\"hidden\" name=\"api_password\" value=\"{pw}\">", [pw])


def more_negatives():
    N = neg
    c = "credential_pair"
    N(c, "client = Client('ACxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', 'your_auth_token')")
    N(c, "AWS_ACCESS_KEY_ID=AKIA****************\nAWS_SECRET_ACCESS_KEY=****************************************")
    N(c, "aws_access_key_id = <redacted>\naws_secret_access_key = <redacted>")
    N(c, f"Access key {r(B32, 4)}... was last used 2026-11-27 by the nightly export (service s3, region eu-west-1).")
    c = "cli_flag"
    N(c, "mysql -uroot -p\"$MYSQL_ROOT_PASSWORD\" -e 'select 1'")
    N(c, "docker login -u \"$CI_REGISTRY_USER\" -p \"$CI_REGISTRY_PASSWORD\" \"$CI_REGISTRY\"")
    N(c, "pip install --user -U pip setuptools wheel")
    N(c, "psql -p 5433 -U postgres -h localhost -c '\\l'")
    N(c, "sqlcmd -S localhost -U sa -P \"$SA_PASSWORD\" -Q 'SELECT 1'")
    c = "auth_header"
    N(c, "components:\n  securitySchemes:\n    bearerAuth:\n      type: http\n      scheme: bearer\n      bearerFormat: JWT")
    N(c, f"{ts()} curl -H \"Authorization: Bearer ***\" https://api.acme.io/v1/deploy")
    N(c, "Authorization header missing or malformed; expected 'Bearer <token>' (got 'Basic')")
    c = "registry_auth"
    N(c, "@acme:registry=https://npm.pkg.github.com\nengine-strict=true")
    N(c, "$ docker-credential-desktop list\n{\"https://index.docker.io/v1/\":\"acmebot\",\"ghcr.io\":\"acme-bot\"}")
    N(c, f"[[package]]\nname = \"urllib3\"\nversion = \"2.2.3\"\nfiles = [\n    {{file = \"urllib3-2.2.3-py3-none-any.whl\", hash = \"sha256:{sha256()}\"}},\n]")
    c = "url_secret"
    N(c, "git clone https://jdoe@github.com/acme/infra.git")
    N(c, "jdbc:postgresql://db.internal:5432/app?user=app&ssl=true&sslmode=verify-full")
    N(c, f"https://acme-data.s3.amazonaws.com/exports/2026-11.csv?versionId={r(B64URL, 32)}")
    N(c, "https://www.google.com/maps/place/Big+Ben/@51.5007292,-0.1268141,17z/")
    N(c, f"https://medium.com/@jdoe/how-we-rotate-secrets-{hexs(12)}")
    c = "config_idiom"
    N(c, "PASSWORD_FILE=/run/secrets/db_password\nAPI_KEY_FILE=/run/secrets/api_key")
    N(c, "api_key_header: X-API-Key\ntoken_type: Bearer\nexpires_in: 3600")
    N(c, "auth:\n  existingSecret: pg-creds\n  secretKeys:\n    adminPasswordKey: postgres-password\n    userPasswordKey: password")
    N(c, "secret: true\nrequired: true\ndescription: The API token used to call the billing service")
    c = "vendor_token"
    N(c, f"$ docker ps\nCONTAINER ID   IMAGE              COMMAND                  STATUS\n{hexs(12)}   acme/api:1.14.2    \"/app/server\"            Up 3 hours\n{hexs(12)}   postgres:16        \"docker-entrypoint.s…\"   Up 3 hours")
    N(c, "\n".join(f"{hexs(7)} {m}" for m in ["fix(auth): refresh token rotation (#412)", "chore: bump ghp action to v4", "feat: add sk-ant key validation"]))
    N(c, "ipfs://bafybei" + r(LOWER + "234567", 52))
    N(c, "<div class=\"sk-spinner sk-fading-circle\"><div class=\"sk-circle1 sk-child\"></div></div>")
    N(c, f"REPORT RequestId: {uid()}\tDuration: 12.31 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB")
    c = "delimiter_value"
    N(c, "curl -s \"https://api.acme.io/search?q=tea&sort=asc\" -H 'Accept: */*' | jq '.items[] | .id'")
    N(c, "PS1='\\u@\\h:\\w\\$ '")
    N(c, "echo $((1 + 2)); history | tail -3 # check")
    c = "private_key"
    N(c, f"$ ssh-keyscan github.com\n# github.com:22 SSH-2.0-babeld-{hexs(8)}\ngithub.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{r(B64, 43)}")
    N(c, "openssl genrsa -out key.pem 2048 && openssl rsa -in key.pem -pubout -out pub.pem")
    N(c, "spec:\n  secretName: web-tls\n  privateKey:\n    algorithm: ECDSA\n    size: 256\n    rotationPolicy: Always")
    c = "jwt"
    N(c, "const cfg = JSON.parse(atob('eyJmZWF0dXJlIjoiY2hlY2tvdXQtdjIiLCJvbiI6dHJ1ZX0='));")
    N(c, "Set `JWT_ALGORITHM=RS256` and point `JWKS_URL` at the identity provider; tokens are validated per request.")
    N("config_idiom", json.dumps({"Bucket": "acme-lake", "Key": "orders/2026/11/28/part-0001.parquet", "VersionId": r(B64URL, 32)}))
    N("config_idiom", "- restore_cache:\n    keys:\n      - v1-deps-{{ checksum \"package-lock.json\" }}")
    N("config_idiom", "- uses: actions/cache@v4\n  with:\n    path: ~/.cargo\n    key: ${{ runner.os }}-cargo-${{ hashFiles('**/Cargo.lock') }}")
    N("config_idiom", "primary_key: id\napi_key_name: ci-deployer\ntoken_endpoint_auth_method: client_secret_basic")
    N("config_idiom", "DOCKER_AUTH_CONFIG: ${{ secrets.DOCKER_AUTH_CONFIG }}\nKUBECONFIG: /home/runner/.kube/config")
    N("auth_header", "curl -X POST https://auth.acme.io/oauth/token -d grant_type=client_credentials -d client_id=web -d audience=https://api.acme.io")
    N("cli_flag", "kubectl --token-file /var/run/secrets/kubernetes.io/serviceaccount/token get pods")
    N("registry_auth", f"go: downloading github.com/acme/lib v0.0.0-20261128101010-{hexs(12)}")
    N("generic_secret", f"/nix/store/{r('0123456789abcdfghijklmnpqrsvwxyz', 32)}-openssl-3.3.2/lib/libssl.so.3")
    N("generic_secret", f"dist/assets/index-{r(ALNUM, 8)}.js   142.31 kB │ gzip: 45.90 kB\ndist/assets/vendor-{r(ALNUM, 8)}.js  512.07 kB │ gzip: 160.22 kB")
    N("generic_secret", f"{{\"_id\": {{\"$oid\": \"{hexs(24)}\"}}, \"order\": \"01J{r('0123456789ABCDEFGHJKMNPQRSTVWXYZ', 23)}\", \"status\": \"paid\"}}")
    N("generic_secret", f"Solana tx confirmed: {r('123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz', 88)}")
    N("generic_secret", "Das Passwort muss mindestens 12 Zeichen lang sein und darf nicht den Benutzernamen enthalten.")
    N("generic_secret", "| env | user | password |\n|---|---|---|\n| staging | app | (in 1Password: Staging DB) |\n| prod | app | (in Vault: kv/prod/db) |")
    N("generic_secret", "login: deploy, pass: see the vault, host: db.internal")
    N("url_secret", "engine = create_engine(os.environ[\"SNOWFLAKE_URL\"])  # snowflake://etl:<password>@acme-xy12345/analytics")
    N("vendor_token", f"npm notice shasum: {sha1()}\nnpm notice integrity: {integrity()[:20]}...{r(B64, 10)}==")
    N("jwt", f"Signed-off-by: Jane Doe <jane@acme.io>\ngpg: Signature made Sat Nov 28 23:10:04 2026 UTC\ngpg:                using EDDSA key {hexs(40).upper()}")
    N("config_idiom", "[src/main.rs:42:5] &config = Config {\n    listen: 127.0.0.1:8080,\n    db_password: \"[REDACTED]\",\n    api_token: None,\n    max_conns: 32,\n}")
    N("config_idiom", f"$ env | sort\nHOME=/home/runner\nHOSTNAME=runner-{hexs(4)}\nLANG=C.UTF-8\nPATH=/usr/local/bin:/usr/bin:/bin\nRUNNER_TEMP=/home/runner/work/_temp\nGITHUB_SHA={sha1()}")
    N("cli_flag", "gh auth login --hostname github.com --git-protocol https --web")
    N("cli_flag", "stripe listen --forward-to localhost:4242/webhook --skip-verify")
    N("url_secret", "POST /oauth/token HTTP/1.1\nContent-Type: application/x-www-form-urlencoded\n\ngrant_type=authorization_code&redirect_uri=https%3A%2F%2Fapp.acme.io%2Fcallback&code_verifier=<verifier>")
    N("generic_secret", "ERROR connect() failed with kwargs={'host': 'db.internal', 'user': 'app', 'password': '***', 'dbname': 'orders'}")
    c = "generic_secret"
    N(c, f"$ kubectl get pods -n prod\nNAME                       READY   STATUS    RESTARTS   AGE\napi-{r(LOWER + DIGITS, 10)}-{r(LOWER + DIGITS, 5)}   1/1     Running   0          3h12m")
    N(c, "minimum_password_length = 14\npassword_reuse_prevention = 24\nmax_password_age = 90")
    N(c, "PASSWORD_HASHERS = [\"django.contrib.auth.hashers.Argon2PasswordHasher\"]")
    N(c, f"{ts()} FATAL: password authentication failed for user \"app\" (connection from 10.0.3.17)")


def write(name, rows):
    path = os.path.join(HERE, name)
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def check(name):
    bad = 0
    n = 0
    with open(os.path.join(HERE, name), encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            row = json.loads(line)
            n += 1
            ok = (set(row) == {"category", "text", "secrets"} and row["category"] in FAMILIES
                  and all(isinstance(s, str) and s and s in row["text"] for s in row["secrets"]))
            if "negative" in name:
                ok = ok and row["secrets"] == []
            else:
                ok = ok and len(row["secrets"]) > 0
            if not ok:
                bad += 1
                print(f"{name}:{i}: invalid row", file=sys.stderr)
    return n, bad


def counts_table():
    """Markdown table of rows per family for every corpus file present."""
    names = ["heldout_positive.jsonl", "heldout_negative.jsonl",
             "blind_positive.jsonl", "blind_negative.jsonl"]
    present = [n for n in names if os.path.exists(os.path.join(HERE, n))]
    counts = {}
    for n in present:
        with open(os.path.join(HERE, n), encoding="utf-8") as f:
            for line in f:
                fam = json.loads(line)["category"]
                counts[(n, fam)] = counts.get((n, fam), 0) + 1
    cols = [n.replace(".jsonl", "") for n in present]
    out = ["| family | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for fam in FAMILIES + ["total"]:
        if fam == "total":
            vals = [sum(v for (n2, _), v in counts.items() if n2 == n) for n in present]
        else:
            vals = [counts.get((n, fam), 0) for n in present]
        out.append(f"| {fam} | " + " | ".join(str(v) for v in vals) + " |")
    return "\n".join(out)


def main():
    args = sys.argv[1:]
    if "--blind" in args:
        blind_main()
        return
    if "--counts" in args:
        print(counts_table())
        return
    if "--check" in args:
        total_bad = 0
        for name in ["heldout_positive.jsonl", "heldout_negative.jsonl",
                     "blind_positive.jsonl", "blind_negative.jsonl"]:
            if os.path.exists(os.path.join(HERE, name)):
                n, bad = check(name)
                print(f"{name}: {n} rows, {bad} invalid")
                total_bad += bad
        sys.exit(1 if total_bad else 0)
    for fam in [fam_credential_pair, fam_cli_flag, fam_auth_header, fam_registry_auth,
                fam_url_secret, fam_config_idiom, fam_vendor_token, fam_delimiter_value,
                fam_private_key, fam_jwt, fam_generic_secret]:
        fam()
    more_positives()
    long_positives()
    prose_positives()
    tool_positives()
    pos = list(CASES)
    CASES.clear()
    negatives()
    more_negatives()
    neg("generic_secret", long_log(300))
    neg("registry_auth", "\n".join(f"    \"node_modules/{r(LOWER, rng.randint(3, 9))}\": {{\"version\": \"{rng.randint(0, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}\", \"integrity\": \"{integrity()}\"}}," for _ in range(80)))
    neg("vendor_token", long_log(200))
    negs = list(CASES)
    write("heldout_positive.jsonl", pos)
    write("heldout_negative.jsonl", negs)
    for label, rows in (("positive", pos), ("negative", negs)):
        counts = {}
        for row in rows:
            counts[row["category"]] = counts.get(row["category"], 0) + 1
        print(label, len(rows), counts)


# --------------------------------------------------------------------------
# blind set: other seed, other context templates, other vendors where possible
# --------------------------------------------------------------------------

BLIND_SEED = 20261129

# vendors not used by the held-out set (formats from the same kinds of sources)
BLIND_VENDORS = [
    ("PostHog", lambda: "phx_" + r(ALNUM, 43), "POSTHOG_PERSONAL_API_KEY"),
    ("ClickUp", lambda: f"pk_{digits(8)}_{r(UPPER + DIGITS, 32)}", "CLICKUP_API_TOKEN"),
    ("Trello", lambda: "ATTA" + hexs(64) + hexs(8).upper(), "TRELLO_TOKEN"),
    ("Dropbox", lambda: "sl.B" + r(B64URL, 134), "DROPBOX_ACCESS_TOKEN"),
    ("Apify", lambda: "apify_api_" + r(ALNUM, 36), "APIFY_TOKEN"),
    ("Firecrawl", lambda: "fc-" + hexs(32), "FIRECRAWL_API_KEY"),
    ("Tavily", lambda: "tvly-" + r(ALNUM, 32), "TAVILY_API_KEY"),
    ("Fireworks", lambda: "fw_" + r(ALNUM, 24), "FIREWORKS_API_KEY"),
    ("Voyage AI", lambda: "pa-" + r(B64URL, 43), "VOYAGE_API_KEY"),
    ("Jina", lambda: "jina_" + r(ALNUM, 60), "JINA_API_KEY"),
    ("Mandrill", lambda: "md-" + r(B64URL, 22), "MANDRILL_API_KEY"),
    ("PubNub", lambda: "sec-c-" + r(B64, 48), "PUBNUB_SECRET_KEY"),
    ("Paystack", lambda: "sk_live_" + hexs(40), "PAYSTACK_SECRET_KEY"),
    ("Mollie", lambda: "live_" + r(ALNUM, 30), "MOLLIE_API_KEY"),
    ("Unleash", lambda: "*:production." + hexs(64), "UNLEASH_API_TOKEN"),
    ("Honeycomb", lambda: "hcaik_" + r(LOWER + DIGITS, 58), "HONEYCOMB_API_KEY"),
    ("Bitwarden", lambda: f"0.{uid()}.{r(ALNUM, 30)}:{r(B64, 22)}==", "BWS_ACCESS_TOKEN"),
    ("Azure DevOps", lambda: r(LOWER + "234567", 52), "AZURE_DEVOPS_EXT_PAT"),
    ("Weights & Biases", lambda: hexs(40), "WANDB_API_KEY"),
    ("Linode", lambda: hexs(64), "LINODE_TOKEN"),
    ("Vercel", lambda: r(ALNUM, 24), "VERCEL_TOKEN"),
    ("Todoist", lambda: hexs(40), "TODOIST_API_TOKEN"),
    ("Postmark", lambda: uid(), "POSTMARK_SERVER_TOKEN"),
    ("Expo", lambda: r(B64URL, 40), "EXPO_TOKEN"),
]


def blind_vendor(name):
    return rng.choice([v for v in BLIND_VENDORS if v[0] == name])[1]()


def journal(lines, unit="api"):
    """systemd journal lines."""
    pid = rng.randint(300, 40000)
    return "\n".join(f"Nov 29 0{rng.randint(0, 3)}:{rng.randint(10, 59)}:{rng.randint(10, 59)} ip-10-0-{rng.randint(0, 9)}-{rng.randint(2, 250)} {unit}[{pid}]: {ln}" for ln in lines)


def jenkins(lines):
    out = ["Started by user release", "[Pipeline] Start of Pipeline", "[Pipeline] node", "[Pipeline] {", "[Pipeline] sh"]
    out += ["+ " + ln for ln in lines]
    out += ["[Pipeline] }", "[Pipeline] End of Pipeline", "Finished: FAILURE"]
    return "\n".join(out)


def gitlab_ci(lines):
    out = [f"Running with gitlab-runner 17.{rng.randint(0, 6)}.0 (abcd{hexs(4)})", "  on shared-runner-3 " + r(ALNUM, 8),
           "Executing \"step_script\" stage of the job script"]
    out += ["$ " + ln for ln in lines]
    out += ["ERROR: Job failed: exit code 1"]
    return "\n".join(out)


def chat(who, snippet):
    return f"**{who}** (10:{rng.randint(10, 59)}): can you look at this?\n```\n{snippet}\n```\n**assistant**: on it."


def notebook(src):
    return json.dumps({"cell_type": "code", "execution_count": rng.randint(1, 40), "metadata": {},
                       "source": [ln + "\n" for ln in src.split("\n")], "outputs": []}, indent=1, ensure_ascii=False)


def pr_comment(path, line):
    return f"Review comment on **{path}** L{rng.randint(5, 200)}:\n```\n{line}\n```\nNit: this should come from the environment, not be hard-coded."


def pylog(msg):
    return f"{ts()[:19].replace('T', ' ')},{rng.randint(100, 999)} - app.client - ERROR - {msg}"


def structured(msg, **kw):
    d = {"level": "debug", "ts": ts(), "caller": "client/http.go:" + str(rng.randint(40, 300)), "msg": msg}
    d.update(kw)
    return json.dumps(d)


def bframe(snippet, secrets, path="config", kind="file"):
    """Blind-set frames: none of them appear in the held-out templates.
    kind="cmd" also allows CI consoles, kind="log" also allows log streams."""
    lines = snippet.split("\n")
    options = [
        lambda: chat(rng.choice(["maria", "k.tanaka", "dev1", "ops-oncall"]), snippet),
        lambda: notebook(snippet),
        lambda: pr_comment(path, snippet) if len(lines) == 1 else f"Reviewing `{path}`:\n\n~~~\n{snippet}\n~~~",
        lambda: f"<details><summary>full output</summary>\n\n```text\n{snippet}\n```\n</details>",
        lambda: f"Ticket OPS-{rng.randint(1000, 9999)}: customer reports failures since the rollout.\nRepro config:\n{snippet}\n--\nSent from the support portal",
        lambda: f"{snippet}",
    ]
    if kind == "cmd" and len(lines) == 1:
        options += [lambda: jenkins(lines), lambda: gitlab_ci(lines)]
    if kind == "log":
        options += [lambda: journal(lines), lambda: f"kubectl logs deploy/worker -n jobs --tail=20\n{snippet}"]
    for _ in range(20):
        text = rng.choice(options)()
        if all(s in text for s in secrets):
            return text
    return snippet


def blind_positives():
    # credential_pair
    c = "credential_pair"
    kid, sec = aws_key_id(), aws_secret()
    add(c, bframe(f"$s3 = new S3Client(['region' => 'eu-west-1', 'credentials' => ['key' => '{kid}', 'secret' => '{sec}']]);", [sec], "app/Storage.php"), [sec])
    kid, sec = aws_key_id(), aws_secret()
    add(c, bframe(f"Aws.config.update(credentials: Aws::Credentials.new('{kid}', '{sec}'))", [sec], "config/initializers/aws.rb"), [sec])
    kid, sec = aws_key_id(), aws_secret()
    add(c, f"PS C:\\> Set-AWSCredential -AccessKey {kid} -SecretKey {sec} -StoreAs ci-prod", [sec])
    kid, sec = aws_key_id(), aws_secret()
    add(c, bframe(f"java -Daws.accessKeyId={kid} -Daws.secretKey={sec} -jar uploader.jar", [sec], kind="cmd"), [sec])
    ak, sk = "EXO" + hexs(24), r(B64URL, 43)
    add(c, f"exo config add --key {ak} --secret {sk} --zone ch-gva-2", [sk])
    ak, sk = "DO00" + r(UPPER + DIGITS, 16), r(B64, 43)
    add(c, bframe(f"SPACES_KEY={ak}\nSPACES_SECRET={sk}\nSPACES_ENDPOINT=https://fra1.digitaloceanspaces.com", [sk]), [sk])
    ak, sk = hexs(32), hexs(48)
    add(c, json.dumps({"apikey": r(B64URL, 44), "cos_hmac_keys": {"access_key_id": ak, "secret_access_key": sk}, "iam_serviceid_crn": "crn:v1:bluemix:public:iam-identity::a/" + hexs(32)}, indent=2), [sk])
    cid, s2 = hexs(24), hexs(30)
    add(c, f"plaid_client = plaid.ApiClient(plaid.Configuration(host=plaid.Environment.Production, api_key={{'clientId': '{cid}', 'secret': '{s2}'}}))", [s2])
    ak, sk = r(UPPER + DIGITS, 20), r(ALNUM, 40)
    add(c, f"ObsClient(access_key_id='{ak}', secret_access_key='{sk}', server='https://obs.eu-west-101.myhuaweicloud.com')", [sk])
    ak, sk, ck = r(ALNUM, 16), r(ALNUM, 32), r(ALNUM, 32)
    add(c, f"[ovh-eu]\napplication_key={ak}\napplication_secret={sk}\nconsumer_key={ck}", [sk, ck])

    # cli_flag
    c = "cli_flag"
    pw = password()
    add(c, bframe(f"mongoexport --host {host()} -u reporter -p {pw} --authenticationDatabase admin -d shop -c orders -o orders.json", [pw], kind="cmd"), [pw])
    tok = r(ALNUM, 40)
    add(c, f"curl --oauth2-bearer {tok} https://api.acme.io/v2/reports/daily", [tok])
    tok = blind_vendor("Azure DevOps")
    add(c, bframe(f"git -c http.extraHeader=\"Authorization: Basic {b64_of((':' + tok).encode())}\" clone https://dev.azure.com/acme/Platform/_git/infra", [b64_of((':' + tok).encode())], kind="cmd"), [b64_of((':' + tok).encode())])
    pw = password()
    add(c, f"ssh-keygen -t ed25519 -f ~/.ssh/release -N '{pw}' -C release@acme", [pw])
    pw = password()
    add(c, bframe(f"gcloud sql users set-password root --host=% --instance=orders-prod --password={pw}", [pw], kind="cmd"), [pw])
    pw = password()
    add(c, f"aws rds create-db-instance --db-instance-identifier orders --engine postgres --master-username acme --master-user-password {pw} --allocated-storage 50", [pw])
    pw = password()
    add(c, bframe(f"kubectl create secret docker-registry regcred --docker-server=registry.acme.io --docker-username=ci --docker-password={pw}", [pw], kind="cmd"), [pw])
    pw = password()
    add(c, f"pscp -pw {pw} build.zip deploy@10.1.4.20:/opt/app/", [pw])
    pw = password()
    add(c, f"$cred = New-Object System.Management.Automation.PSCredential('CORP\\svc_deploy', (ConvertTo-SecureString '{pw}' -AsPlainText -Force))", [pw])
    tok = r(ALNUM, 32)
    add(c, f"$ fly secrets set INTERNAL_API_TOKEN={tok} -a acme-api\nRelease v42 created", [tok])

    # auth_header
    c = "auth_header"
    tok = r(ALNUM, 40)
    add(c, bframe(f"reverse_proxy /api/* backend:8080 {{\n    header_up Authorization \"Bearer {tok}\"\n}}", [tok], "Caddyfile"), [tok])
    b = basic("metrics", password())
    add(c, f"<Location /internal>\n    RequestHeader set Authorization \"Basic {b}\"\n    ProxyPass http://10.0.2.9:9100/\n</Location>", [b])
    tok = r(ALNUM, 36)
    add(c, f"http:\n  middlewares:\n    add-auth:\n      headers:\n        customRequestHeaders:\n          Authorization: \"Bearer {tok}\"", [tok])
    tok = r(ALNUM, 40)
    add(c, f"export default function () {{\n  const res = http.get(`${{BASE}}/orders`, {{ headers: {{ Authorization: 'Bearer {tok}' }} }});\n  check(res, {{ 'status 200': (r) => r.status === 200 }});\n}}", [tok])
    tok = r(ALNUM, 40)
    add(c, bframe(f"curl_setopt($ch, CURLOPT_HTTPHEADER, ['Accept: application/json', 'Authorization: Bearer {tok}']);", [tok]), [tok])
    pw = password()
    add(c, f"let resp = client.get(url).basic_auth(\"exporter\", Some(\"{pw}\")).send().await?;", [pw])
    tok = r(ALNUM, 40)
    add(c, f"let resp = reqwest::Client::new().get(url).bearer_auth(\"{tok}\").send().await?;", [tok])
    tok = "shpat_" + hexs(32)
    add(c, bframe(f"X-Shopify-Access-Token: {tok}", [tok]), [tok])
    key = hexs(37)
    add(c, f"curl -X GET \"https://api.cloudflare.com/client/v4/zones\" -H \"X-Auth-Email: ops@acme.io\" -H \"X-Auth-Key: {key}\"", [key])
    b = basic("admin", password())
    add(c, f"GET /status HTTP/1.1\r\nhost: 10.0.0.7:8080\r\nauthorization: basic {b}\r\n\r\n", [b])

    # registry_auth
    c = "registry_auth"
    tok = r(ALNUM, 20)
    add(c, f"channels:\n  - https://conda.acme.io/t/{tok}/internal\n  - conda-forge", [tok])
    pw = password()
    add(c, f"$ cat ~/.sbt/.credentials\nrealm=Sonatype Nexus Repository Manager\nhost=nexus.acme.io\nuser=ci\npassword={pw}", [pw])
    pat = b64_of(blind_vendor("Azure DevOps").encode())
    add(c, bframe(f"//pkgs.dev.azure.com/acme/_packaging/feed/npm/registry/:username=acme\n//pkgs.dev.azure.com/acme/_packaging/feed/npm/registry/:_password={pat}", [pat], ".npmrc"), [pat])
    pw, sp = password(), password()
    add(c, f"ossrhUsername=acme-release\nossrhPassword={pw}\nsigning.keyId=24875D73\nsigning.password={sp}\nsigning.secretKeyRingFile=/home/ci/.gnupg/secring.gpg", [pw, sp])
    at, rt = "ya29.a0" + r(B64URL, 140), "1//0" + r(B64URL, 99)
    add(c, json.dumps({"accessToken": at, "refreshToken": rt, "tokenEndpoint": "https://accounts.google.com/o/oauth2/token", "scopes": ["openid"], "expiration": 1764373600000}), [at, rt])
    tok = hexs(32)
    add(c, f"machine trunk.cocoapods.org\n  login release@acme.io\n  password {tok}", [tok])
    tok = r(ALNUM, 64)
    add(c, json.dumps({"auths": {"quay.io": {"auth": basic("acme+ci_robot", tok), "email": ""}}}), [basic("acme+ci_robot", tok)])
    tok = r(ALNUM, 40)
    add(c, bframe(f"[registries.internal]\nindex = \"sparse+https://crates.acme.io/api/v1/crates/\"\ntoken = \"{tok}\"", [tok], ".cargo/config.toml"), [tok])
    pw = password()
    add(c, f"<server>\n  <id>deploy-key</id>\n  <privateKey>${{user.home}}/.ssh/deploy</privateKey>\n  <passphrase>{pw}</passphrase>\n</server>", [pw])

    # url_secret
    c = "url_secret"
    pw = password()
    add(c, bframe(f"DATABASE_URL=\"mysql://app:{pw}@aws.connect.psdb.cloud/shop?sslaccept=strict\"", [pw], "prisma/.env"), [pw])
    pw = "npg_" + r(ALNUM, 12)
    add(c, f"psql 'postgresql://neondb_owner:{pw}@ep-cool-lake-a5x2k9.eu-central-1.aws.neon.tech/neondb?sslmode=require'", [pw])
    pw = password()
    add(c, f"sftp://deploy:{pw}@files.acme-hosting.com:2222/var/www", [pw])
    pw = password()
    add(c, bframe(f"COUCHDB_URL=http://admin:{pw}@couch.internal:5984/orders", [pw]), [pw])
    tok = "glpat-" + r(B64URL, 20)
    add(c, f"RSS feed: https://gitlab.acme.io/acme/api/-/commits/main?format=atom&private_token={tok}", [tok])
    sig, ak = r(B64, 27) + "=", "LTAI" + r(ALNUM, 20)
    enc = sig.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    add(c, f"https://acme-assets.oss-cn-hangzhou.aliyuncs.com/build.zip?OSSAccessKeyId={ak}&Expires=1796000000&Signature={enc}", [enc])
    key = r(B64URL, 32)
    add(c, f"wss://ws.acme-feed.io/v2/stream?apikey={key}&symbols=BTC-USD", [key])
    tok = r(ALNUM, 32)
    add(c, bframe(f"curl -fsS 'https://hc-ping.com/{uid()}' && curl -fsS 'https://api.statuspage.io/v1/pages/{r(LOWER + DIGITS, 12)}/incidents.json?api_key={tok}'", [tok], kind="cmd"), [tok])
    sig = r(B64, 43) + "="
    enc = sig.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    add(c, f"az storage message put --queue-url 'https://acmeq.queue.core.windows.net/jobs?sv=2023-01-03&sp=a&se=2026-12-01&sig={enc}' --content hello", [enc])

    # config_idiom
    c = "config_idiom"
    pw = password()
    add(c, bframe(f"# group_vars/prod.yml\ndb_user: app\ndb_password: {pw}\ndb_pool: 20", [pw], "group_vars/prod.yml"), [pw])
    pw = password()
    add(c, f"profile::db::password: '{pw}'\nprofile::db::host: '{host()}'", [pw])
    pw = password()
    add(c, bframe(f"quarkus.datasource.username=app\nquarkus.datasource.password={pw}\nquarkus.datasource.jdbc.url=jdbc:postgresql://{host()}/app", [pw], "application.properties"), [pw])
    tok = r(ALNUM, 40)
    add(c, f"provider:\n  name: aws\n  environment:\n    STAGE: prod\n    PARTNER_API_KEY: {tok}", [tok])
    tok = r(ALNUM, 32)
    add(c, bframe(f"[vars]\nENVIRONMENT = \"production\"\nUPSTREAM_SECRET = \"{tok}\"", [tok], "wrangler.toml"), [tok])
    pw = password()
    add(c, f"db_password = \"{pw}\"\ninstance_class = \"db.r6g.large\"", [pw])
    pw = password()
    add(c, f"Resources:\n  Database:\n    Type: AWS::RDS::DBInstance\n    Properties:\n      MasterUsername: acme\n      MasterUserPassword: {pw}", [pw])
    pw = password()
    add(c, f"services.grafana.settings.security.admin_password = \"{pw}\";", [pw])
    pw = password()
    add(c, bframe(json.dumps({"sqltools.connections": [{"name": "prod", "driver": "PostgreSQL", "server": host(), "username": "ro", "password": pw}]}, indent=2), [pw], ".vscode/settings.json"), [pw])
    skb = r(B64URL, 64)
    add(c, f"config :acme, AcmeWeb.Endpoint,\n  url: [host: \"acme.io\"],\n  secret_key_base: \"{skb}\"", [skb])

    # vendor_token
    c = "vendor_token"
    kv = [lambda e, t: f"{e}={t}", lambda e, t: f"{e.lower()} = \"{t}\"", lambda e, t: f"setenv {e} {t}"]
    bare = [lambda t: pylog(f"request failed with key {t}: 403 Forbidden"),
            lambda t: structured("loaded api credential", credential=t),
            lambda t: f"I generated a fresh one, use {t} from now on",
            lambda t: f"client = Client(\"{t}\")"]
    context_only = {"Azure DevOps", "Weights & Biases", "Linode", "Vercel", "Todoist", "Postmark", "Expo"}
    for name, gen, env in BLIND_VENDORS:
        tok = gen()
        if name in context_only or rng.random() < 0.3:
            snippet = rng.choice(kv)(env, tok)
        else:
            snippet = rng.choice(bare)(tok)
        add(c, bframe(snippet, [tok], kind="log" if snippet.startswith(("20", "{")) else "file"), [tok])

    # delimiter_value
    c = "delimiter_value"
    for tpl, specials in [
        (lambda v: f"PASSWORD={v}", "|<>"),
        (lambda v: f"password: '{v}'", "@:=,"),
        (lambda v: f"set \"DB_PASS={v}\"", "^&%"),
        (lambda v: f"{host()}:5432:app:app:{v}", ";#&"),
        (lambda v: f"api_secret = '''{v}'''", "\"'#"),
        (lambda v: f"$env:DB_PASSWORD = '{v}'", "`$;"),
        (lambda v: f"JWT_SECRET={v} node server.js", "!#&"),
        (lambda v: f"{{\"password\":\"{v}\",\"user\":\"svc\"}}", "&;#!"),
        (lambda v: f"REDIS_PASS=\"{v}\" # staging", "#;&|"),
    ]:
        v = delim_password(specials)
        text = tpl(v)
        add(c, bframe(text, [v]), [v])

    # private_key
    c = "private_key"
    block, body = pem(PEM_TYPES[2])
    java = " +\n".join(f"    \"{ln}\\n\"" for ln in block.split("\n"))
    add(c, f"String pem =\n{java};", ["\n".join(f"    \"{ln}\\n\"" for ln in body.split("\n")).replace("\n", " +\n").lstrip()])
    sk = "RWRTY0Iy" + r(B64, 204)
    add(c, f"untrusted comment: minisign encrypted secret key\n{sk}", [sk])
    k = b64_of(rand_bytes(64))
    add(c, bframe(f"ED25519_SIGNING_KEY={k}", [k], kind="cmd"), [k])
    block, body = pem(PEM_TYPES[3])
    add(c, bframe(block, [body]), [body])
    body = pem_body("lQVYBGV", 2400)
    add(c, f"$ gpg --export-secret-keys --armor release@acme.io\n-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n{body}\n={r(B64, 4)}\n-----END PGP PRIVATE KEY BLOCK-----", [body])
    block, body = pem(PEM_TYPES[1])
    add(c, structured("tls config", key_pem=block), [body.replace("\n", "\\n")])
    k = "AGE-SECRET-KEY-1" + r(BECH32, 58)
    add(c, f"sops --decrypt secrets.enc.yaml\n# SOPS_AGE_KEY={k}", [k])
    block, body = pem(PEM_TYPES[0])
    add(c, f"tls:\n  key: |\n" + "\n".join("    " + ln for ln in block.split("\n")), ["\n".join("    " + ln for ln in body.split("\n")).lstrip()])

    # jwt
    c = "jwt"
    for f in [
        lambda t: json.dumps({"id": uid(), "name": "prod", "values": [{"key": "token", "value": t, "enabled": True}]}),
        lambda t: f"@baseUrl = https://api.acme.io\n@token = {t}\n\nGET {{{{baseUrl}}}}/me\nAuthorization: Bearer {{{{token}}}}",
        lambda t: structured("auth ok", user_id=42, token=t),
        lambda t: f"<input type=\"hidden\" name=\"id_token\" value=\"{t}\">",
        lambda t: f"11-29 02:41:07.123  4821  4870 D OkHttp  : Authorization: Bearer {t}",
        lambda t: f"client_secret={t}&grant_type=authorization_code&code=c{r(ALNUM, 40)}",
        lambda t: pylog(f"token rejected: {t}"),
        lambda t: f"HASURA_GRAPHQL_ADMIN_TOKEN: {t}",
    ]:
        t = jwt_token(alg=rng.choice(["HS256", "RS256", "ES256"]))
        add(c, bframe(f(t), [t], kind="log"), [t])

    # generic_secret
    c = "generic_secret"
    for f in [
        lambda v: f"passwort = \"{v}\"",
        lambda v: f"heslo: {v}",
        lambda v: f"jelszo = '{v}'",
        lambda v: f"κωδικός: {v}",
        lambda v: f"비밀번호 = \"{v}\"",
        lambda v: f"val dbPwd = \"{v}\"",
        lambda v: f"Sys.setenv(WAREHOUSE_PASS = \"{v}\")",
        lambda v: f"const apiSecret = '{v}';",
        lambda v: f"ENV[\"SMTP_SECRET\"] = \"{v}\"",
        lambda v: f"BASIC_AUTH_PASS = \"{v}\".freeze",
    ]:
        v = password() if rng.random() < 0.5 else r(ALNUM, rng.randint(20, 36))
        add(c, bframe(f(v), [v]), [v])


def blind_negatives():
    N = neg
    N("credential_pair", "aws_access_key_id     = (known after apply)\naws_secret_access_key = (sensitive value)")
    N("credential_pair", f"Account ID: {digits(12)}   Subscription: {uid()}   Tenant: {uid()}")
    N("credential_pair", f"GCP project number {digits(12)}, service account loader@acme-data.iam.gserviceaccount.com (unique id {digits(21)})")
    N("credential_pair", "Set-AWSCredential -ProfileName ci-prod\nGet-S3Bucket | Select-Object -First 3")
    N("credential_pair", "Twilio Console -> Account Info shows the Account SID and a hidden Auth Token field; click 'show' only on a trusted machine.")
    N("cli_flag", "$ mysql --login-path=prod -e 'select now()'")
    N("cli_flag", "gcloud sql users set-password root --host=% --instance=orders-prod --prompt-for-password")
    N("cli_flag", "kubectl create secret docker-registry regcred --docker-server=registry.acme.io --from-file=.dockerconfigjson=./config.json")
    N("cli_flag", "pscp -i C:\\keys\\deploy.ppk build.zip deploy@10.1.4.20:/opt/app/")
    N("cli_flag", "$cred = Get-Credential -UserName 'CORP\\svc_deploy' -Message 'deploy account'")
    N("cli_flag", "docker buildx build --secret id=npmrc,src=$HOME/.npmrc -t acme/web:latest .")
    N("auth_header", "X-Hub-Signature-256: sha256=" + hexs(64) + "\nX-GitHub-Delivery: " + uid())
    N("auth_header", f"Stripe-Signature: t=1764370000,v1={hexs(64)}")
    N("auth_header", "Sec-WebSocket-Key: " + b64_of(rand_bytes(16)) + "\nSec-WebSocket-Version: 13")
    N("auth_header", f"Idempotency-Key: {uid()}\nIf-Match: \"{hexs(32)}\"")
    N("auth_header", f"x-goog-hash: crc32c={b64_of(rand_bytes(4))},md5={b64_of(rand_bytes(16))}")
    N("auth_header", "header_up Authorization {http.request.header.Authorization}")
    N("registry_auth", f"<script src=\"https://cdn.jsdelivr.net/npm/alpinejs@3.14.1/dist/cdn.min.js\" integrity=\"sha384-{b64_of(rand_bytes(48))}\" crossorigin=\"anonymous\"></script>")
    N("registry_auth", f"$ docker image ls --digests\nREPOSITORY   TAG      DIGEST                                                                    IMAGE ID\nacme/api     1.14.2   sha256:{sha256()}   {hexs(12)}")
    N("registry_auth", "[[source]]\nurl = \"https://${PYPI_USER}:${PYPI_PASS}@pypi.acme.io/simple\"\nverify_ssl = true\nname = \"acme\"")
    N("registry_auth", f"acme_client-2.1.0-py3-none-any.whl (sha256={sha256()})")
    N("registry_auth", "machine trunk.cocoapods.org\n  login release@acme.io")
    N("url_secret", "DATABASE_URL=\"mysql://app:${DB_PASSWORD}@aws.connect.psdb.cloud/shop\"")
    N("url_secret", f"https://hc-ping.com/{uid()}/fail")
    N("url_secret", "https://gitlab.acme.io/acme/api/-/commits/main?format=atom")
    N("url_secret", "sftp://deploy@files.acme-hosting.com:2222/var/www")
    N("url_secret", f"https://acme.atlassian.net/browse/OPS-{rng.randint(1000, 9999)}?focusedCommentId={digits(6)}")
    N("url_secret", f"https://www.figma.com/file/{r(ALNUM, 22)}/Checkout-v2?node-id=12%3A345")
    N("config_idiom", "  + master_password = (sensitive value)\n  + username        = \"acme\"")
    N("config_idiom", "db_password: \"{{ lookup('community.hashi_vault.hashi_vault', 'secret=kv/data/db:password') }}\"")
    N("config_idiom", "MasterUserPassword: !Sub '{{resolve:secretsmanager:${DbSecret}:SecretString:password}}'")
    N("config_idiom", "services.grafana.settings.security.admin_password = \"$__file{/run/secrets/grafana-admin}\";")
    N("config_idiom", "[vars]\nENVIRONMENT = \"production\"\n# UPSTREAM_SECRET is set with `wrangler secret put`")
    N("config_idiom", "- name: Configure\n  no_log: true\n  ansible.builtin.template:\n    src: app.env.j2\n    dest: /etc/app.env")
    N("vendor_token", f"Rendered trace {hexs(32)} span {hexs(16)} (service=checkout, env=prod)")
    N("vendor_token", "POSTHOG_HOST=https://eu.posthog.com\nNEXT_PUBLIC_POSTHOG_KEY=phc_" + r(ALNUM, 43))
    N("vendor_token", "Trello card https://trello.com/c/" + r(ALNUM, 8) + "/142-rotate-api-keys")
    N("vendor_token", "Get a key at https://app.tavily.com (it starts with tvly-) and export it as TAVILY_API_KEY.")
    N("vendor_token", f"wandb: Run data is saved locally in ./wandb/run-20261129_024107-{r(LOWER + DIGITS, 8)}\nwandb: Syncing run stellar-sun-42")
    N("vendor_token", f"bitcoin:bc1q{r('qpzry9x8gf2tvdw0s3jn54khce6mua7l', 38)}?amount=0.01")
    N("delimiter_value", "set \"PATH=%PATH%;C:\\tools\" & echo %PATH%")
    N("delimiter_value", "awk -F: '$3 >= 1000 && $1 != \"nobody\" {print $1}' /etc/passwd")
    N("delimiter_value", "grep -E 'error|warn' app.log | sort | uniq -c | sort -rn | head")
    N("delimiter_value", "REDIS_PASS=\"${REDIS_PASS:?}\" # required, set by the orchestrator")
    N("delimiter_value", "$env:DB_PASSWORD = Read-Host -AsSecureString 'DB password'")
    N("private_key", f"-----BEGIN SSH SIGNATURE-----\n{pem_body('U1NIU0lHAAAAAQAAADMAAAALc3NoLWVkMjU1MTkAAAAg', 400)}\n-----END SSH SIGNATURE-----")
    N("private_key", f"gpg: key {hexs(16).upper()}: public key \"Release Signing <release@acme.io>\" imported\nPrimary key fingerprint: {' '.join(hexs(4).upper() for _ in range(10))}")
    N("private_key", "untrusted comment: minisign public key " + hexs(16).upper() + "\nRWQ" + r(B64, 53))
    N("private_key", f"cosign verify --key cosign.pub ghcr.io/acme/api@sha256:{sha256()}")
    N("private_key", "tls:\n  key: /etc/ssl/private/api.key\n  cert: /etc/ssl/certs/api.crt")
    N("jwt", "@token = {{login.response.body.$.token}}\nGET {{baseUrl}}/me\nAuthorization: Bearer {{token}}")
    N("jwt", f"Content-Security-Policy: script-src 'self' 'nonce-{b64_of(rand_bytes(16))}'; object-src 'none'")
    N("jwt", f"![diagram](data:image/svg+xml;base64,{b64_of(b'<svg xmlns=' + rand_bytes(90))})")
    N("jwt", f"{{\"level\":\"debug\",\"msg\":\"auth ok\",\"user_id\":42,\"token\":\"[REDACTED]\",\"ts\":\"{ts()}\"}}")
    N("jwt", "const [header, payload, signature] = token.split('.');")
    N("generic_secret", "<input type=\"password\" name=\"password\" autocomplete=\"current-password\" required>")
    N("generic_secret", "passwort = os.environ.get(\"DB_PASSWORT\")")
    N("generic_secret", f"Build #{rng.randint(100, 999)} password stage: ******** (masked by Jenkins)")
    N("generic_secret", f"{ts()} [MASKED] value hidden by GitLab; job {digits(10)} succeeded")
    N("generic_secret", "비밀번호를 입력하세요: ")
    N("generic_secret", "\"password\": null,\n\"passwordLastChanged\": \"2026-10-02T08:00:00Z\"")


def blind_main():
    rng.seed(BLIND_SEED)
    CASES.clear()
    blind_positives()
    pos = list(CASES)
    CASES.clear()
    blind_negatives()
    negs = list(CASES)
    write("blind_positive.jsonl", pos)
    write("blind_negative.jsonl", negs)
    for label, rows in (("positive", pos), ("negative", negs)):
        counts = {}
        for row in rows:
            counts[row["category"]] = counts.get(row["category"], 0) + 1
        print(label, len(rows), counts)


if __name__ == "__main__":
    main()
