#!/usr/bin/env python3
"""Generate the blind2 redaction evaluation corpus (issue 12).

Written from vendors' published token formats and from what agent messages
look like (CI logs, diffs, shell sessions, config files, stack traces, HTTP
requests, code, chat prose), without reading the engine's rules or the other
corpora. See BLIND2.md for the sources and the format.

Usage:
    python3 blind2_generate.py          # (re)write blind2_positive.jsonl and blind2_negative.jsonl
    python3 blind2_generate.py --check  # validate the files and that they match this generator

Standard library only; every random value comes from one seeded random.Random,
so the output is byte-for-byte reproducible.
"""

import argparse
import base64
import json
import os
import random
import string
import sys
import zlib

SEED = 0xB11D2
HERE = os.path.dirname(os.path.abspath(__file__))
POSITIVE = os.path.join(HERE, "blind2_positive.jsonl")
NEGATIVE = os.path.join(HERE, "blind2_negative.jsonl")

FAMILIES = [
    "vendor_token",
    "credential_pair",
    "cli_flag",
    "auth_header",
    "registry_config",
    "url_secret",
    "config_idiom",
    "private_key",
    "connection_string",
    "generic_keyword",
    "function_argument",
    "encoded",
    "non_english",
]

UP = string.ascii_uppercase
LO = string.ascii_lowercase
DIG = string.digits
ALNUM = UP + LO + DIG
HEX = "0123456789abcdef"
B64 = ALNUM + "+/"
B64URL = ALNUM + "-_"
B62 = DIG + UP + LO


class G:
    """Random value factory: every value in the corpus comes from here."""

    def __init__(self, seed):
        self.r = random.Random(seed)

    # -- primitives -------------------------------------------------------
    def s(self, chars, n):
        return "".join(self.r.choice(chars) for _ in range(n))

    def hex(self, n):
        return self.s(HEX, n)

    def HEX(self, n):
        return self.s(HEX.upper(), n)

    def alnum(self, n):
        return self.s(ALNUM, n)

    def lower_alnum(self, n):
        return self.s(LO + DIG, n)

    def upper_alnum(self, n):
        return self.s(UP + DIG, n)

    def digits(self, n):
        return self.s(DIG[1:], 1) + self.s(DIG, n - 1)

    def b64url(self, n):
        return self.s(B64URL, n)

    def raw(self, n):
        return bytes(self.r.getrandbits(8) for _ in range(n))

    def b64bytes(self, n):
        return base64.b64encode(self.raw(n)).decode()

    def pick(self, seq):
        return self.r.choice(seq)

    def randint(self, a, b):
        return self.r.randint(a, b)

    def uuid(self):
        h = self.hex(32)
        h = h[:12] + "4" + h[13:16] + self.pick("89ab") + h[17:]
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def word(self):
        return self.pick(WORDS)

    def pw(self, n=None, symbols="!#%&*+-.=?^_~@"):
        """A password a human would call random: mixed case, digits, symbols."""
        n = n or self.randint(14, 22)
        while True:
            v = self.s(ALNUM + symbols * 2, n)
            if (
                any(c in UP for c in v)
                and any(c in LO for c in v)
                and any(c in DIG for c in v)
                and (not symbols or any(c in symbols for c in v))
                and v[0] in ALNUM
                and v[-1] in ALNUM
            ):
                return v

    def urlpw(self, n=None):
        return self.pw(n, symbols="-._~")

    def plainpw(self, n=None):
        return self.pw(n, symbols="-_")

    def basic(self, user, password):
        return base64.b64encode(f"{user}:{password}".encode()).decode()

    # -- vendor shapes ----------------------------------------------------
    def gh(self, prefix):
        """GitHub token: prefix + 30 random base62 + 6-char base62 CRC32."""
        body = self.alnum(30)
        crc = zlib.crc32(body.encode())
        enc = ""
        while crc:
            crc, rem = divmod(crc, 62)
            enc = B62[rem] + enc
        return prefix + body + enc.rjust(6, "0")

    def gh_fine(self):
        return "github_pat_" + self.alnum(22) + "_" + self.alnum(59)

    def glpat(self):
        return "glpat-" + self.s(ALNUM + "-_", 20)

    def slack_bot(self):
        return f"xoxb-{self.digits(self.randint(10, 13))}-{self.digits(self.randint(10, 13))}-{self.alnum(24)}"

    def slack_user(self):
        return f"xoxp-{self.digits(11)}-{self.digits(11)}-{self.digits(13)}-{self.hex(32)}"

    def slack_app(self):
        return f"xapp-1-A{self.upper_alnum(10)}-{self.digits(13)}-{self.hex(64)}"

    def stripe(self, kind="sk", mode="live"):
        if self.r.random() < 0.5:
            return f"{kind}_{mode}_{self.alnum(24)}"
        return f"{kind}_{mode}_51{self.alnum(97)}"

    def openai(self):
        return "sk-proj-" + self.b64url(74) + "T3BlbkFJ" + self.b64url(74)

    def openai_legacy(self):
        return "sk-" + self.alnum(20) + "T3BlbkFJ" + self.alnum(20)

    def anthropic(self):
        return "sk-ant-api03-" + self.b64url(93) + "AA"

    def hf(self):
        return "hf_" + self.s(UP + LO, 34)

    def aws_id(self, prefix="AKIA"):
        while True:
            v = prefix + self.s(UP + "234567", 16)
            if "EXAMPLE" not in v:
                return v

    def aws_secret(self):
        return self.s(B64, 40)

    def aws_session(self):
        return "IQoJb3JpZ2luX2Vj" + self.s(B64, self.randint(300, 360))

    def azure_storage_key(self):
        return self.b64bytes(64)

    def azure_sas_key(self):
        return self.b64bytes(32)

    def azure_client_secret(self):
        return self.alnum(3) + self.pick(DIG) + "Q~" + self.s(ALNUM + "_~.-", 34)

    def jwt(self, claims=None):
        header = base64.urlsafe_b64encode(b'{"alg":"HS256","typ":"JWT"}').rstrip(b"=").decode()
        claims = claims or {
            "sub": self.uuid(),
            "iat": 1764300000 + self.randint(0, 90000),
            "exp": 1764400000 + self.randint(0, 90000),
            "scope": self.pick(["read write", "admin", "deploy", "agents:send"]),
        }
        payload = base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":")).encode()).rstrip(b"=").decode()
        return f"{header}.{payload}.{self.b64url(43)}"

    def telegram(self):
        return f"{self.digits(10)}:AA{self.b64url(33)}"

    def discord_bot(self):
        uid = base64.b64encode(self.digits(19).encode()).decode().rstrip("=")
        return f"{uid}.{self.b64url(6)}.{self.b64url(38)}"

    def pem_body(self, der_prefix, total, width=64):
        der = bytes.fromhex(der_prefix) + self.raw(total)
        b = base64.b64encode(der).decode()
        return [b[i : i + width] for i in range(0, len(b), width)]


WORDS = [
    "orbit", "lantern", "cobalt", "harbor", "meadow", "quartz", "falcon", "ember",
    "summit", "delta", "willow", "atlas", "beacon", "cedar", "nimbus", "pixel",
]


def rsa_lines(g, n=None):
    return g.pem_body("308204a40201000282010100", n or g.randint(380, 700))


def pkcs8_lines(g, n=None):
    return g.pem_body("308204be020100300d06092a864886f70d0101010500048204a8308204a40201000282010100", n or g.randint(380, 700))


def ec_lines(g):
    return g.pem_body("30770201010420", 32 + 80)


def openssh_lines(g):
    blob = b"openssh-key-v1\x00\x00\x00\x00\x04none\x00\x00\x00\x04none\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x003\x00\x00\x00\x0bssh-ed25519"
    b = base64.b64encode(blob + g.raw(g.randint(250, 300))).decode()
    return [b[i : i + 70] for i in range(0, len(b), 70)]


def ssh_ed25519_pub(g):
    blob = b"\x00\x00\x00\x0bssh-ed25519\x00\x00\x00\x20" + g.raw(32)
    return "ssh-ed25519 " + base64.b64encode(blob).decode()


def ssh_rsa_pub(g):
    blob = b"\x00\x00\x00\x07ssh-rsa\x00\x00\x00\x03\x01\x00\x01\x00\x00\x01\x01\x00" + g.raw(256)
    return "ssh-rsa " + base64.b64encode(blob).decode()


def cert_lines(g):
    return g.pem_body("3082037730820260a003020102021400", g.randint(600, 820))


def pubkey_lines(g):
    der = bytes.fromhex("30820122300d06092a864886f70d01010105000382010f003082010a0282010100") + g.raw(256) + bytes.fromhex("0203010001")
    b = base64.b64encode(der).decode()
    return [b[i : i + 64] for i in range(0, len(b), 64)]


# ---------------------------------------------------------------------------
# Positives
# ---------------------------------------------------------------------------


def vendor_tokens(g, out):
    def P(text, *secrets):
        out.append(("vendor_token", text, list(secrets)))

    t = g.gh("ghp_")
    P(f"Push to the release branch failed with 403, so I generated a new classic PAT: {t} (scopes: repo, workflow). Can you retry the tag job with it?", t)

    t = g.gh("gho_")
    P(
        "$ gh auth status --show-token\n"
        "github.com\n"
        "  \u2713 Logged in to github.com account octo-relay (/home/agent/.config/gh/hosts.yml)\n"
        "  - Active account: true\n"
        "  - Git operations protocol: https\n"
        f"  - Token: {t}\n"
        "  - Token scopes: 'gist', 'read:org', 'repo'",
        t,
    )

    t = g.gh_fine()
    P(
        "diff --git a/.env.ci b/.env.ci\n"
        "index 3c1e0a2..9b7f4d1 100644\n"
        "--- a/.env.ci\n"
        "+++ b/.env.ci\n"
        "@@ -1,3 +1,4 @@\n"
        " NODE_ENV=test\n"
        " LOG_LEVEL=debug\n"
        f"+GITHUB_TOKEN={t}\n"
        " PORT=8080",
        t,
    )

    t = g.gh("ghs_")
    P(
        "Traceback (most recent call last):\n"
        '  File "/app/sync/repos.py", line 88, in fetch_installation_repos\n'
        "    gh = Github(auth=Auth.Token(token))\n"
        "  locals:\n"
        f"    token = '{t}'\n"
        "    installation_id = 48213377\n"
        "github.GithubException.BadCredentialsException: 401 {\"message\": \"Bad credentials\"}",
        t,
    )

    t = g.glpat()
    P(
        "variables:\n"
        "  DOCKER_DRIVER: overlay2\n"
        f'  GITLAB_API_TOKEN: "{t}"\n'
        "  RELEASE_CHANNEL: stable",
        t,
    )

    t = g.slack_bot()
    P(
        "import { WebClient } from '@slack/web-api';\n\n"
        f"const web = new WebClient('{t}');\n"
        "await web.chat.postMessage({ channel: '#deploys', text: 'build 1942 is green' });",
        t,
    )

    t = g.slack_app()
    P(f"# socket mode needs both\nSLACK_APP_TOKEN={t}\nSLACK_SIGNING_ENABLED=true", t)

    t = g.slack_user()
    P(f"For the export script I used my own user token instead of the bot one ({t}); it has channels:history so it can read the archived channels.", t)

    t = g.stripe("sk", "live")
    P(f"# config/initializers/stripe.rb\nStripe.api_key = '{t}'\nStripe.api_version = '2024-06-20'", t)

    t = g.stripe("rk", "live")
    P(
        "      containers:\n"
        "        - name: billing-worker\n"
        "          env:\n"
        "            - name: STRIPE_KEY\n"
        f"              value: {t}\n"
        "            - name: QUEUE\n"
        "              value: invoices",
        t,
    )

    t = "whsec_" + g.alnum(32)
    P(f"2026-11-28T22:14:03Z WARN webhook: signature mismatch for evt on /stripe/webhook, endpoint secret in use = {t}, tolerance=300s", t)

    t = g.openai()
    P(f"In [1]: %env OPENAI_API_KEY={t}\nenv: OPENAI_API_KEY={t}\n\nIn [2]: from openai import OpenAI; client = OpenAI()", t)

    t = g.anthropic()
    P(f"$ docker run --rm -e ANTHROPIC_API_KEY={t} -v $PWD:/work ghcr.io/acme/review-bot:1.8.2 --pr 412", t)

    t = g.hf()
    P(
        "huggingface_hub.errors.GatedRepoError: 403 Client Error.\n"
        "Cannot access gated repo for url https://huggingface.co/meta-llama/Llama-3.1-8B/resolve/main/config.json.\n"
        f"Access to model meta-llama/Llama-3.1-8B is restricted. Token used: {t}",
        t,
    )

    t = "gsk_" + g.alnum(20) + "WGdyb3FY" + g.alnum(24)
    P(f"# .env.local (do not commit)\nGROQ_API_KEY={t}\nGROQ_MODEL=llama-3.3-70b-versatile", t)

    t = "r8_" + g.alnum(37)
    P(f"export REPLICATE_API_TOKEN={t}\nreplicate run stability-ai/sdxl -i prompt='a lighthouse at dusk'", t)

    t = "npm_" + g.alnum(36)
    P(
        "Run npm publish --access public\n"
        "npm notice Publishing to https://registry.npmjs.org/ with tag latest\n"
        f"npm verb getAuth using token {t} for //registry.npmjs.org/\n"
        "+ @acme/bridge-client@2.4.1",
        t,
    )

    t = "pypi-AgEIcHlwaS5vcmc" + g.b64url(g.randint(150, 190))
    P(f"Here is the project-scoped upload token for acme-bridge on PyPI, paste it when twine asks: {t}", t)

    t = f"SG.{g.b64url(22)}.{g.b64url(43)}"
    P(f"<?php\nrequire 'vendor/autoload.php';\n$sendgrid = new \\SendGrid('{t}');\n$response = $sendgrid->send($email);", t)

    t = "key-" + g.hex(32)
    P(json.dumps({"mailer": {"driver": "mailgun", "domain": "mg.orbit-labs.io", "secret": t, "endpoint": "api.eu.mailgun.net"}}, indent=2), t)

    t = "dop_v1_" + g.hex(64)
    P(f'# terraform.tfvars\nregion   = "fra1"\ndo_token = "{t}"\nsize     = "s-2vcpu-4gb"', t)

    t = "dp.pt." + g.alnum(43)
    P(f"FROM node:20-slim\nWORKDIR /srv\nENV DOPPLER_TOKEN={t}\nRUN doppler secrets download --no-file --format env > .env", t)

    t = "dapi" + g.hex(32)
    P(f"$ cat ~/.databrickscfg\n[DEFAULT]\nhost  = https://adb-5821930411278394.14.azuredatabricks.net\ntoken = {t}", t)

    t = "NRAK-" + g.upper_alnum(27)
    P(f"agent@build-07:~/infra$ NEW_RELIC_API_KEY={t} terraform plan -out tf.plan\nRefreshing state...", t)

    t = "sntryu_" + g.hex(64)
    P(f"$ cat .sentryclirc\n[defaults]\norg = orbit-labs\nproject = bridge\n\n[auth]\ntoken={t}", t)

    t = f"glsa_{g.alnum(32)}_{g.hex(8)}"
    P(
        "client, err := gapi.New(\"https://grafana.internal.orbit-labs.io\", gapi.Config{\n"
        f"\tAPIKey: \"{t}\",\n"
        "\tOrgID:  1,\n"
        "})",
        t,
    )

    t = "shpat_" + g.hex(32)
    P(f"irb(main):004> session = ShopifyAPI::Auth::Session.new(shop: 'lantern-goods.myshopify.com', access_token: '{t}')", t)

    t = "EAAA" + g.b64url(60)
    P(f"from square.client import Client\nclient = Client(access_token=\"{t}\", environment=\"production\")", t)

    t = "ATATT3xFfGF0" + g.b64url(171) + "=" + g.HEX(8)
    P(f"jira-cli keeps failing with 401. I exported JIRA_API_TOKEN={t} and JIRA_AUTH_TYPE=basic, login is ops@orbit-labs.io.", t)

    t = "lin_api_" + g.alnum(40)
    P(json.dumps({"mcpServers": {"linear": {"command": "npx", "args": ["-y", "@linear/mcp-server"], "env": {"LINEAR_API_KEY": t}}}}, indent=2), t)

    t = "ntn_" + g.digits(11) + g.alnum(35)
    P(json.dumps({"mcpServers": {"notion": {"command": "npx", "args": ["-y", "@notionhq/notion-mcp-server"], "env": {"NOTION_TOKEN": t}}}}), t)

    t = f"PMAK-{g.hex(24)}-{g.hex(34)}"
    P(f"The newman step in Jenkins reads POSTMAN_API_KEY from the job config; right now it is hard-coded as {t} in Jenkinsfile line 42.", t)

    t = "pul-" + g.hex(40)
    P(f"##[group]Run pulumi up --yes --stack prod\nenv:\n  PULUMI_ACCESS_TOKEN: {t}\n  AWS_REGION: eu-west-1\n##[endgroup]", t)

    t = "hvs." + g.b64url(91)
    P(
        "$ vault token create -policy=ci-deploy -ttl=24h\n"
        "Key                  Value\n"
        "---                  -----\n"
        f"token                {t}\n"
        f"token_accessor       {g.alnum(24)}\n"
        "token_duration       24h\n"
        "token_renewable      true\n"
        'token_policies       ["ci-deploy" "default"]',
        t,
    )

    t = f"{g.alnum(14)}.atlasv1.{g.s(LO + DIG + '-_', 67)}"
    P(json.dumps({"credentials": {"app.terraform.io": {"token": t}}}, indent=2), t)

    t = "HRKU-AA" + g.b64url(58)
    P(f"$ heroku authorizations:create -d 'ci deploys'\nCreating OAuth Authorization... done\nClient:      <none>\nID:          {g.uuid()}\nDescription: ci deploys\nScope:       global\nToken:       {t}", t)

    t = "fo1_" + g.b64url(43)
    P(f"$ fly tokens create deploy -a bridge-prod\n{t}\n\nStore it as FLY_API_TOKEN in the repo secrets.", t)

    t = f"tskey-auth-k{g.alnum(10)}CNTRL-{g.alnum(33)}"
    P(f"services:\n  tailscale:\n    image: tailscale/tailscale:stable\n    environment:\n      - TS_AUTHKEY={t}\n      - TS_HOSTNAME=bridge-sidecar", t)

    t = f"dt0c01.{g.upper_alnum(24)}.{g.upper_alnum(64)}"
    P(f"DT_API_TOKEN={t}\nDT_ENV_URL=https://abc12345.live.dynatrace.com", t)

    t = "dckr_pat_" + g.b64url(27)
    P(f"I logged in to Docker Hub as orbitci with the access token {t} instead of the account password, pulls are no longer rate limited.", t)

    t = "sbp_" + g.hex(40)
    P(json.dumps({"mcpServers": {"supabase": {"command": "npx", "args": ["-y", "@supabase/mcp-server-supabase@latest", "--access-token", t]}}}, indent=2), t)

    t = "squ_" + g.hex(40)
    P(f"sonar.projectKey=orbit_bridge\nsonar.organization=orbit-labs\nsonar.token={t}\nsonar.sources=src", t)

    t = "AIzaSy" + g.b64url(33)
    P(f"$ export GEMINI_API_KEY={t}\n$ python summarize.py --model gemini-1.5-pro notes/*.md", t)

    t = "xai-" + g.alnum(80)
    P(f"const client = new OpenAI({{ baseURL: 'https://api.x.ai/v1', apiKey: '{t}' }});", t)

    t = "sk-or-v1-" + g.hex(64)
    P(f"OPENROUTER_API_KEY=\"{t}\"  # shared team key, rotate monthly", t)

    t = f"lsv2_pt_{g.hex(32)}_{g.hex(10)}"
    P(f"LANGCHAIN_TRACING_V2=true\nLANGCHAIN_API_KEY={t}\nLANGCHAIN_PROJECT=bridge-evals", t)

    t = "pplx-" + g.alnum(48)
    P(f"Perplexity calls are failing with 401 since this morning; the key in the worker env is {t}, maybe it was revoked with the old org?", t)

    t = f"access_token$production${g.lower_alnum(16)}${g.hex(32)}"
    P(f"<?php\nreturn [\n    'braintree' => [\n        'access_token' => '{t}',\n    ],\n];", t)

    t = f"pat{g.alnum(14)}.{g.hex(64)}"
    P(f"curl -s https://api.airtable.com/v0/meta/bases --oauth2-bearer {t} | jq '.bases[].name'", t)

    t = "figd_" + g.b64url(40)
    P(f"figma-export config: {{ fileId: 'Xk3pQ9', token: '{t}', output: 'src/icons' }}", t)

    t = "CFPAT-" + g.b64url(43)
    P(f"$ contentful login --management-token {t}\nGreat! You've successfully logged in.", t)

    t = "bkua_" + g.hex(40)
    P(f"BUILDKITE_API_TOKEN={t} bk build list --pipeline bridge --state failed", t)

    t = "cmVmdGtuOjAxOjE3" + g.alnum(48)
    P(f"artifactory:\n  url: https://orbit.jfrog.io/artifactory\n  identity_token: {t}", t)

    t = f"{g.hex(32)}-us{g.randint(10, 21)}"
    P(f"mailchimp.setConfig({{ apiKey: \"{t}\", server: \"{t[-4:]}\" }});", t)

    t = g.discord_bot()
    P(f"import discord\n\nclient = discord.Client(intents=discord.Intents.default())\n# TODO move to env\nclient.run('{t}')", t)

    t = g.telegram()
    P(f"TELEGRAM_BOT_TOKEN={t}\nTELEGRAM_CHAT_ID=-1001873342211", t)

    t = "AGE-SECRET-KEY-1" + g.s("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L".upper(), 58)
    P(f"$ cat ~/.config/sops/age/keys.txt\n# created: 2026-11-02T09:41:17Z\n# public key: age1{g.s('qpzry9x8gf2tvdw0s3jn54khce6mua7l', 58)}\n{t}", t)

    t = "rubygems_" + g.hex(48)
    P(f"GEM_HOST_API_KEY={t} gem push pkg/bridge-client-0.9.3.gem", t)

    t = "pscale_tkn_" + g.b64url(43)
    P(f"PLANETSCALE_SERVICE_TOKEN_ID=9x2kq7m1zv0w\nPLANETSCALE_SERVICE_TOKEN={t}", t)

    t = "glc_" + g.s(B64, 120) + "=="
    P(f"grafana-agent flow: prometheus.remote_write \"cloud\" {{ endpoint {{ url = \"https://prometheus-prod-24-prod-eu-west-2.grafana.net/api/prom/push\" basic_auth {{ username = \"1289734\" password = \"{t}\" }} }} }}", t)


def credential_pairs(g, out):
    def P(text, *secrets):
        out.append(("credential_pair", text, list(secrets)))

    kid, sec = g.aws_id(), g.aws_secret()
    P(
        "import boto3\n\n"
        "s3 = boto3.client(\n"
        '    "s3",\n'
        f'    aws_access_key_id="{kid}",\n'
        f'    aws_secret_access_key="{sec}",\n'
        '    region_name="eu-central-1",\n'
        ")",
        sec,
    )

    kid, sec = g.aws_id(), g.aws_secret()
    P(f"$ cat ~/.aws/credentials\n[default]\naws_access_key_id = {kid}\naws_secret_access_key = {sec}\n\n[readonly]\nrole_arn = arn:aws:iam::480163952271:role/ReadOnly\nsource_profile = default", sec)

    kid, sec = g.aws_id(), g.aws_secret()
    P(f"For the demo bucket use access key {kid} with secret {sec}; I'll deactivate the pair on Friday.", sec)

    kid, sec, tok = g.aws_id("ASIA"), g.aws_secret(), g.aws_session()
    P(
        "$ aws sts assume-role --role-arn arn:aws:iam::480163952271:role/deployer --role-session-name ci\n"
        + json.dumps(
            {
                "Credentials": {
                    "AccessKeyId": kid,
                    "SecretAccessKey": sec,
                    "SessionToken": tok,
                    "Expiration": "2026-11-29T06:12:44+00:00",
                },
                "AssumedRoleUser": {"AssumedRoleId": "AROAW3XQ7PL2KD5HM6NTY:ci", "Arn": "arn:aws:sts::480163952271:assumed-role/deployer/ci"},
            },
            indent=4,
        ),
        sec,
        tok,
    )

    kid, sec = g.aws_id(), g.aws_secret()
    P(f"$ aws configure --profile staging\nAWS Access Key ID [None]: {kid}\nAWS Secret Access Key [None]: {sec}\nDefault region name [None]: us-east-2\nDefault output format [None]: json", sec)

    sid, tok = "AC" + g.hex(32), g.hex(32)
    P(f"from twilio.rest import Client\n\nclient = Client(\"{sid}\", \"{tok}\")\nclient.messages.create(to=\"+15558675310\", from_=\"+15017122661\", body=\"Deploy finished\")", tok)

    sid, tok = "AC" + g.hex(32), g.hex(32)
    P(f"TWILIO_ACCOUNT_SID={sid}\nTWILIO_AUTH_TOKEN={tok}\nTWILIO_FROM=+15017122661", tok)

    sid, ksid, ksec = "AC" + g.hex(32), "SK" + g.hex(32), g.alnum(32)
    P(f"const client = require('twilio')('{ksid}', '{ksec}', {{ accountSid: '{sid}' }});", ksec)

    kid, sec = "LTAI" + g.alnum(20), g.alnum(30)
    P(json.dumps({"current": "default", "profiles": [{"name": "default", "mode": "AK", "access_key_id": kid, "access_key_secret": sec, "region_id": "cn-hangzhou"}]}, indent=2), sec)

    kid, sec = "AKID" + g.alnum(32), g.alnum(32)
    P(f"cred = credential.Credential(\"{kid}\", \"{sec}\")\nclient = cvm_client.CvmClient(cred, \"ap-guangzhou\")", sec)

    app, pw, tenant = g.uuid(), g.azure_client_secret(), g.uuid()
    P(
        "$ az ad sp create-for-rbac --name bridge-ci --role Contributor --scopes /subscriptions/" + g.uuid() + "\n"
        "Creating 'Contributor' role assignment under scope ...\n"
        + json.dumps({"appId": app, "displayName": "bridge-ci", "password": pw, "tenant": tenant}, indent=2),
        pw,
    )

    cid, csec = f"{g.digits(12)}-{g.lower_alnum(32)}.apps.googleusercontent.com", "GOCSPX-" + g.b64url(28)
    P(json.dumps({"installed": {"client_id": cid, "project_id": "orbit-bridge", "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": "https://oauth2.googleapis.com/token", "client_secret": csec, "redirect_uris": ["http://localhost"]}}), csec)

    app, key = g.upper_alnum(10), g.hex(32)
    P(f"// scripts/reindex.ts\nconst client = algoliasearch('{app}', '{key}'); // admin key, needed for setSettings\nawait client.initIndex('docs').setSettings({{ searchableAttributes: ['title', 'body'] }});", key)

    kid, ksec = "rzp_live_" + g.alnum(14), g.alnum(24)
    P(f"RAZORPAY_KEY_ID={kid}\nRAZORPAY_KEY_SECRET={ksec}", ksec)

    ak, sk = g.alnum(64), g.alnum(64)
    P(f"binance:\n  apiKey: {ak}\n  secretKey: {sk}\n  testnet: false", ak, sk)

    api, app = g.hex(32), g.hex(40)
    P(f"Both Datadog keys for the staging org, please put them in the vault and not in the chart: DD_API_KEY={api} DD_APP_KEY={app}", api, app)

    pub, priv = g.hex(32), g.hex(32)
    P(f"MJ_APIKEY_PUBLIC={pub}\nMJ_APIKEY_PRIVATE={priv}", priv)

    kid, sec = g.hex(32), g.hex(64)
    P(f"[r2]\ntype = s3\nprovider = Cloudflare\naccess_key_id = {kid}\nsecret_access_key = {sec}\nendpoint = https://{g.hex(32)}.r2.cloudflarestorage.com\nacl = private", sec)

    kid, sec = "DO00" + g.upper_alnum(16), g.s(B64, 43)
    P(f"s3cmd --access_key={kid} --secret_key={sec} --host=fra1.digitaloceanspaces.com --host-bucket='%(bucket)s.fra1.digitaloceanspaces.com' ls s3://bridge-backups", sec)

    kid, key = "005" + g.hex(22), "K005" + g.s(ALNUM + "/+", 27)
    P(f"b2 authorize-account {kid} {key}\nUsing https://api.backblazeb2.com", key)

    cid, csec = g.hex(24), g.hex(30)
    P(f"client = plaid_api.PlaidApi(plaid.ApiClient(plaid.Configuration(\n    host=plaid.Environment.Production,\n    api_key={{'clientId': '{cid}', 'secret': '{csec}'}},\n)))", csec)

    cid, csec = "0oa" + g.alnum(17), g.b64url(40)
    P(f"okta:\n  oauth2:\n    issuer: https://orbit.okta.com/oauth2/default\n    client-id: {cid}\n    client-secret: {csec}", csec)

    hid, hsec = "GOOG1E" + g.upper_alnum(55), g.s(B64, 40)
    P(f"GCS interoperability HMAC for the rclone job: access id {hid}, secret {hsec}. Service account is backup-writer@orbit-bridge.iam.gserviceaccount.com.", hsec)

    app_id, key, sec = g.digits(7), g.hex(20), g.hex(20)
    P(f"const pusher = new Pusher({{\n  appId: \"{app_id}\",\n  key: \"{key}\",\n  secret: \"{sec}\",\n  cluster: \"eu\",\n  useTLS: true\n}});", sec)


def cli_flags(g, out):
    def P(text, *secrets):
        out.append(("cli_flag", text, list(secrets)))

    p = g.pw()
    P(f"$ docker login -u orbitci -p '{p}' registry.orbit-labs.io\nWARNING! Using --password via the CLI is insecure. Use --password-stdin.\nLogin Succeeded", p)

    p = g.plainpw()
    P(f"agent@db-01:~$ mysql -h 10.0.4.12 -u report -p{p} analytics -e 'select count(*) from events'", p)

    k = g.azure_storage_key()
    P(f"az storage blob upload --account-name orbitbackups --account-key {k} --container-name nightly --file dump.sql.gz --name 2026-11-28.sql.gz", k)

    app, p = g.uuid(), g.azure_client_secret()
    P(f"- run: az login --service-principal -u {app} -p {p} --tenant {g.uuid()}", p)

    p = g.urlpw()
    P(f"curl -sS -u deploy:{p} https://nexus.orbit-labs.io/service/rest/v1/repositories | jq length", p)

    p = g.pw()
    P(f"helm repo add orbit https://charts.orbit-labs.io --username chart-reader --password '{p}'", p)

    t = g.jwt()
    P(f"kubectl --server=https://10.0.0.1:6443 --token={t} --insecure-skip-tls-verify get pods -n bridge", t)

    s = g.aws_secret()
    P(f"$ aws configure set aws_secret_access_key {s} --profile ci\n$ aws sts get-caller-identity --profile ci", s)

    p = g.pw()
    P(f"sqlcmd -S tcp:sql-prod.orbit.internal,1433 -U sa -P \"{p}\" -Q \"SELECT name FROM sys.databases\"", p)

    p = g.plainpw()
    P(f"mongosh \"mongodb://db.orbit.internal:27017/admin\" --username root --password {p} --eval 'db.stats()'", p)

    p = g.plainpw()
    P(f"redis-cli -h cache.orbit.internal -p 6379 -a {p} --no-auth-warning INFO keyspace", p)

    p = g.plainpw()
    P(f"openssl pkcs12 -export -in cert.pem -inkey key.pem -out bundle.p12 -passout pass:{p}", p)

    t = "pypi-AgEIcHlwaS5vcmc" + g.b64url(160)
    P(f"python -m twine upload --non-interactive -u __token__ -p {t} dist/*", t)

    p = g.pw()
    P(f"terraform apply -auto-approve -var 'region=eu-west-1' -var 'db_password={p}'", p)

    p = g.pw()
    P(f"ansible-playbook site.yml -i inventory/prod --extra-vars \"ansible_become_pass={p}\" --limit web", p)

    p = g.pw()
    P(f"sshpass -p '{p}' ssh -o StrictHostKeyChecking=no admin@192.168.40.17 'sudo systemctl restart bridge'", p)

    p = g.plainpw()
    P(f"$ smbclient //fs01/finance -U 'ORBIT\\svc_backup%{p}' -c 'ls'", p)

    p = g.pw()
    P(f"mvn -B deploy -DaltDeploymentRepository=internal::https://repo.orbit-labs.io/releases -Drepo.username=ci -Drepo.password='{p}'", p)

    p = g.plainpw()
    P(f"keytool -importcert -alias orbit-ca -file ca.crt -keystore truststore.jks -storepass {p} -noprompt", p)

    t = "squ_" + g.hex(40)
    P(f"sonar-scanner -Dsonar.projectKey=bridge -Dsonar.host.url=https://sonar.orbit-labs.io -Dsonar.token={t}", t)

    t = g.hex(8) + "-" + g.hex(4) + "-" + g.hex(4) + "-" + g.hex(4) + "-" + g.hex(12)
    P(f"bash <(curl -s https://codecov.io/bash) -t {t} -f coverage/lcov.info", t)

    t = g.b64url(86) + "=="
    P(f"influx write --bucket metrics --org orbit --token {t} --file batch.lp", t)

    p = g.plainpw()
    P(f"docker run -d --name pg -e POSTGRES_USER=bridge -e POSTGRES_PASSWORD={p} -p 5432:5432 postgres:16", p)

    p = g.pw()
    P(f"ldapsearch -x -H ldaps://ldap.orbit.internal -D 'cn=admin,dc=orbit,dc=internal' -w '{p}' -b 'ou=people,dc=orbit,dc=internal' uid", p)

    ak, sk = g.upper_alnum(20), g.alnum(40)
    P(f"mc alias set backup https://minio.orbit.internal:9000 {ak} {sk}", sk)

    p = g.pw()
    P(f"xfreerdp /v:jump.orbit.internal /u:Administrator /p:'{p}' /cert:ignore", p)


def auth_headers(g, out):
    def P(text, *secrets):
        out.append(("auth_header", text, list(secrets)))

    t = g.jwt()
    P(
        "POST /v1/agents/send HTTP/1.1\r\n"
        "Host: bridge.orbit-labs.io\r\n"
        "Content-Type: application/json\r\n"
        f"Authorization: Bearer {t}\r\n"
        "Content-Length: 57\r\n\r\n"
        '{"to":"planner","body":"rebased onto main, please re-run"}',
        t,
    )

    b = g.basic("admin", g.pw())
    P(f"    location /metrics {{\n        proxy_pass http://127.0.0.1:9100;\n        proxy_set_header Authorization \"Basic {b}\";\n    }}", b)

    t = g.hex(40)
    P(f"curl -H \"Authorization: Token {t}\" https://api.orbit-labs.io/v2/projects/?page=2", t)

    b = g.basic("svc-scraper", g.urlpw())
    P(f"<VirtualHost *:443>\n    ProxyPass /upstream https://10.0.2.8/\n    RequestHeader set Authorization \"Basic {b}\"\n</VirtualHost>", b)

    t = g.b64url(40)
    P(f"backend api_upstream\n    http-request set-header Authorization \"Bearer {t}\"\n    server api1 10.0.3.21:8443 ssl verify none", t)

    t = g.anthropic()
    P(
        "curl https://api.anthropic.com/v1/messages \\\n"
        f"  -H \"x-api-key: {t}\" \\\n"
        "  -H \"anthropic-version: 2023-06-01\" \\\n"
        "  -H \"content-type: application/json\" \\\n"
        "  -d '{\"model\":\"claude-sonnet-4-5\",\"max_tokens\":256,\"messages\":[{\"role\":\"user\",\"content\":\"ping\"}]}'",
        t,
    )

    t = g.jwt()
    P(
        "const res = await fetch(`${API}/v1/threads`, {\n"
        "  method: 'GET',\n"
        f"  headers: {{ Authorization: 'Bearer {t}', Accept: 'application/json' }},\n"
        "});",
        t,
    )

    t = g.alnum(32)
    P(f"headers = {{\n    \"X-API-Key\": \"{t}\",\n    \"User-Agent\": \"bridge-sync/0.4\",\n}}\nresp = requests.get(\"https://api.weatherdesk.io/v3/forecast\", headers=headers, timeout=10)", t)

    t = g.b64url(43)
    P(f"req, _ := http.NewRequest(\"GET\", \"https://api.orbit-labs.io/v1/usage\", nil)\nreq.Header.Set(\"Authorization\", \"Bearer {t}\")\nresp, err := http.DefaultClient.Do(req)", t)

    b = g.basic("ops", g.urlpw())
    P(f"> GET /api/health HTTP/2\n> Host: grafana.orbit.internal\n> user-agent: curl/8.5.0\n> accept: */*\n> authorization: Basic {b}\n>\n< HTTP/2 200", b)

    b = g.basic("proxyuser", g.urlpw())
    P(f"CONNECT registry.npmjs.org:443 HTTP/1.1\nHost: registry.npmjs.org:443\nProxy-Authorization: Basic {b}\nUser-Agent: npm/10.8.2 node/v20.17.0", b)

    t = "00" + g.b64url(40)
    P(f"curl -X GET https://orbit.okta.com/api/v1/users?limit=25 -H 'Accept: application/json' -H 'Authorization: SSWS {t}'", t)

    t = g.gh("ghp_")
    P(f"http GET https://api.github.com/repos/orbit-labs/bridge/actions/runs 'Authorization:token {t}' per_page==5", t)

    t = g.discord_bot()
    P(f"PATCH /api/v10/applications/@me HTTP/1.1\nHost: discord.com\nAuthorization: Bot {t}\nContent-Type: application/json", t)

    t = g.uuid()
    P(f"curl -k https://splunk.orbit.internal:8088/services/collector/event -H \"Authorization: Splunk {t}\" -d '{{\"event\": \"deploy\", \"sourcetype\": \"ci\"}}'", t)

    t = g.hex(32)
    P(f"curl -X POST \"https://api.datadoghq.eu/api/v1/events\" -H \"Content-Type: application/json\" -H \"DD-API-KEY: {t}\" -d @event.json", t)

    t = "glpat-" + g.b64url(20)
    P(f"curl --header \"PRIVATE-TOKEN: {t}\" \"https://gitlab.orbit-labs.io/api/v4/projects/42/pipelines?status=failed\"", t)

    t = "hvs." + g.b64url(91)
    P(f"curl -s --header \"X-Vault-Token: {t}\" https://vault.orbit.internal:8200/v1/secret/data/bridge | jq .data.data", t)

    b = base64.b64encode(f"{g.alnum(20)}:{g.b64url(22)}".encode()).decode()
    P(f"curl -H \"Authorization: ApiKey {b}\" https://es.orbit.internal:9200/_cluster/health?pretty", b)

    t = g.hex(32)
    P(f"POST /openai/deployments/gpt-4o/chat/completions?api-version=2024-06-01 HTTP/1.1\nHost: orbit-eastus.openai.azure.com\napi-key: {t}\nContent-Type: application/json", t)

    sess = g.b64url(48)
    P(f"GET /admin/queues HTTP/1.1\nHost: bridge.orbit-labs.io\nCookie: theme=dark; session_id={sess}; lang=en", sess)

    t = g.jwt()
    P(
        "static_resources:\n  clusters:\n  - name: billing\n    typed_extension_protocol_options: {}\n"
        "  request_headers_to_add:\n  - header:\n      key: authorization\n"
        f"      value: Bearer {t}\n",
        t,
    )


def registry_configs(g, out):
    def P(text, *secrets):
        out.append(("registry_config", text, list(secrets)))

    t = "npm_" + g.alnum(36)
    P(f"$ cat ~/.npmrc\nregistry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken={t}\nfund=false", t)

    b = g.basic("ci-reader", g.pw())
    P(f"# .npmrc for the Nexus proxy\nregistry=https://nexus.orbit-labs.io/repository/npm-all/\n_auth={b}\nalways-auth=true\nemail=ci@orbit-labs.io", b)

    p = base64.b64encode(g.pw().encode()).decode()
    P(f"//npm.pkg.orbit-labs.io/:username=deployer\n//npm.pkg.orbit-labs.io/:_password={p}\n//npm.pkg.orbit-labs.io/:email=deployer@orbit-labs.io", p)

    t = "pypi-AgEIcHlwaS5vcmc" + g.b64url(170)
    P(f"[distutils]\nindex-servers =\n    pypi\n    internal\n\n[pypi]\nusername = __token__\npassword = {t}\n\n[internal]\nrepository = https://pypi.orbit-labs.io/\nusername = ci", t)

    b1, b2 = g.basic("orbitci", g.pw()), g.basic("_json_key_base64", g.b64bytes(60))
    P(json.dumps({"auths": {"https://index.docker.io/v1/": {"auth": b1}, "europe-docker.pkg.dev": {"auth": b2}}, "credsStore": ""}, indent=2), b1, b2)

    t = g.gh("ghp_")
    P(f"$ cat ~/.netrc\nmachine github.com\n  login orbit-bot\n  password {t}\nmachine api.github.com\n  login orbit-bot\n  password {t}", t)

    t = g.uuid()
    P(f"machine api.heroku.com login ops@orbit-labs.io password {t}\nmachine git.heroku.com login ops@orbit-labs.io password {t}", t)

    t = "npm_" + g.alnum(36)
    P(f"# .yarnrc.yml\nnodeLinker: node-modules\nnpmScopes:\n  orbit:\n    npmRegistryServer: \"https://npm.pkg.github.com\"\n    npmAuthToken: \"{t}\"", t)

    p = g.pw(symbols="!#%*+-.=?^_~")
    P(
        "<settings>\n  <servers>\n    <server>\n      <id>orbit-releases</id>\n      <username>deployer</username>\n"
        f"      <password>{p}</password>\n    </server>\n  </servers>\n</settings>",
        p,
    )

    p = g.plainpw()
    P(f"# ~/.gradle/gradle.properties\norg.gradle.jvmargs=-Xmx2g\norbitMavenUser=ci\norbitMavenPassword={p}", p)

    t = "oy2" + g.lower_alnum(43)
    p = g.pw(symbols="!#%*+-.=?^_~")
    P(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<configuration>\n  <packageSourceCredentials>\n    <orbit>\n"
        "      <add key=\"Username\" value=\"ci\" />\n"
        f"      <add key=\"ClearTextPassword\" value=\"{p}\" />\n"
        "    </orbit>\n  </packageSourceCredentials>\n  <apikeys>\n"
        f"    <add key=\"https://www.nuget.org/api/v2/package\" value=\"{t}\" />\n"
        "  </apikeys>\n</configuration>",
        p,
        t,
    )

    t = "rubygems_" + g.hex(48)
    P(f"$ cat ~/.gem/credentials\n---\n:rubygems_api_key: {t}", t)

    t = "cio" + g.alnum(32)
    P(f"# ~/.cargo/credentials.toml\n[registry]\ntoken = \"{t}\"", t)

    t, p = g.gh("ghp_"), g.pw()
    P(json.dumps({"github-oauth": {"github.com": t}, "http-basic": {"repo.packagist.com": {"username": "token", "password": p}}}, indent=4), t, p)

    up = f"{g.hex(8)}:{g.hex(8)}"
    P(f"$ bundle config\nSettings are listed in order of priority.\n\nBUNDLE_ENTERPRISE__CONTRIBSYS__COM\nSet for your local app (/srv/app/.bundle/config): \"{up}\"", up)

    p = g.pw()
    P(f"apiVersion: \"\"\ngenerated: \"2026-11-20T10:12:01Z\"\nrepositories:\n- name: orbit\n  url: https://charts.orbit-labs.io\n  username: reader\n  password: '{p}'\n  insecure_skip_tls_verify: false", p)

    t = g.gh("ghp_")
    P(f"$ cat ~/.git-credentials\nhttps://orbit-bot:{t}@github.com", t)

    p = g.plainpw()
    P(f"[global]\nindex-url = https://ci:{p}@pypi.orbit-labs.io/simple/\ntrusted-host = pypi.orbit-labs.io", p)

    t = f"{g.alnum(14)}.atlasv1.{g.s(LO + DIG + '-_', 67)}"
    P(f"# ~/.terraformrc\ncredentials \"app.terraform.io\" {{\n  token = \"{t}\"\n}}", t)

    b = g.basic("robot$bridge-pusher", g.alnum(32))
    P(json.dumps({"auths": {"harbor.orbit-labs.io": {"auth": b}}}), b)


def url_secrets(g, out):
    def P(text, *secrets):
        out.append(("url_secret", text, list(secrets)))

    t = g.telegram()
    P(f"curl -s -X POST https://api.telegram.org/bot{t}/sendMessage -d chat_id=-1001873342211 -d text='nightly build failed'", t)

    t = g.alnum(24)
    P(f"SLACK_WEBHOOK_URL=https://hooks.slack.com/services/T{g.upper_alnum(10)}/B{g.upper_alnum(10)}/{t}", t)

    t = g.b64url(68)
    P(f"discord notify: POST https://discord.com/api/webhooks/{g.digits(19)}/{t} -> 204 No Content", t)

    k = "AIzaSy" + g.b64url(33)
    P(f"GET https://maps.googleapis.com/maps/api/geocode/json?address=Unter+den+Linden+1,Berlin&key={k} 200 OK 184ms", k)

    sig, kid = g.hex(64), g.aws_id("ASIA")
    tok = g.aws_session()
    tok_q = tok.replace("/", "%2F").replace("+", "%2B")
    P(
        "Presigned download link (valid 15 min): https://bridge-exports.s3.eu-west-1.amazonaws.com/reports/2026-11.csv"
        "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        f"&X-Amz-Credential={kid}%2F20261129%2Feu-west-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20261129T051200Z&X-Amz-Expires=900"
        f"&X-Amz-Security-Token={tok_q}"
        "&X-Amz-SignedHeaders=host"
        f"&X-Amz-Signature={sig}",
        sig,
        tok_q,
    )

    sig = base64.b64encode(g.raw(32)).decode().replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    P(f"azcopy copy ./dist \"https://orbitstatic.blob.core.windows.net/site?sv=2022-11-02&ss=b&srt=co&sp=rwdlac&se=2026-12-31T23:59:59Z&st=2026-11-01T00:00:00Z&spr=https&sig={sig}\" --recursive", sig)

    t = g.b64url(43)
    P(f"wget -O latest.tar.gz 'https://artifacts.orbit-labs.io/download/bridge/latest.tar.gz?token={t}&arch=amd64'", t)

    t = g.hex(40)
    P(f"I opened https://ci.orbit-labs.io/job/bridge/lastBuild/consoleText?access_token={t} in the browser and the log ends at the migration step.", t)

    t = g.hex(32)
    P(f"curl 'https://api.datadoghq.com/api/v1/validate?api_key={t}'", t)

    t = g.gh("ghs_")
    P(f"[command]/usr/bin/git remote set-url origin https://x-access-token:{t}@github.com/orbit-labs/bridge.git", t)

    p = g.urlpw()
    P(f"git clone https://jenkins:{p}@bitbucket.orbit-labs.io/scm/core/bridge.git", p)

    t = g.b64url(22)
    P(f"ifttt: https://maker.ifttt.com/trigger/deploy_done/with/key/{t}?value1=bridge", t)

    inner, tok, v2 = g.hex(32), g.uuid(), "V2" + g.b64url(43)
    P(
        "TEAMS_WEBHOOK=https://orbitlabs.webhook.office.com/webhookb2/"
        f"{g.uuid()}@{g.uuid()}/IncomingWebhook/{inner}/{tok}/{v2}",
        inner,
        v2,
    )

    k, t = "AIzaSy" + g.b64url(33), g.b64url(43)
    P(f"Google Chat alert hook: https://chat.googleapis.com/v1/spaces/AAAA{g.b64url(7)}/messages?key={k}&token={t}", k, t)

    cs = g.b64url(32)
    P(f"POST https://login.orbit-idp.io/oauth/token?grant_type=client_credentials&client_id=bridge-worker&client_secret={cs}&scope=agents.send", cs)

    p, key, sec = g.urlpw(), g.digits(15), g.b64url(27)
    P(f"CLOUDINARY_URL=cloudinary://{key}:{sec}@orbit-media", sec)

    t = g.hex(40)
    P(f"Rendered RSS feed link: https://status.orbit-labs.io/feeds/private.rss?auth_token={t}", t)

    t = "sk_live_" + g.alnum(24)
    P(f"The webhook forwarding URL in the old config is https://relay.orbit-labs.io/stripe/{t}/events, that secret has to come out of the path.", t)

    t = g.b64url(32)
    P(f"nats: connecting to nats://{t}@nats.orbit.internal:4222 (token auth)", t)


def config_idioms(g, out):
    def P(text, *secrets):
        out.append(("config_idiom", text, list(secrets)))

    k = g.b64url(50)
    P(f"app = Flask(__name__)\napp.config['SECRET_KEY'] = '{k}'\napp.config['SESSION_COOKIE_SECURE'] = True", k)

    t = g.alnum(40)
    P(f"from django.conf import settings\n\nsettings.API_TOKEN = \"{t}\"\nsettings.API_TIMEOUT = 30", t)

    k = "django-insecure-" + g.s(LO + DIG + "!@#%^&*(-_=+)", 50)
    P(f"# settings/base.py\nDEBUG = False\nSECRET_KEY = '{k}'\nALLOWED_HOSTS = ['bridge.orbit-labs.io']", k)

    t = g.hex(64)
    P(f"C:\\Users\\build> setx BRIDGE_API_TOKEN \"{t}\"\n\nSUCCESS: Specified value was saved.", t)

    p = g.pw(symbols="#%*+-.=?^_~@")
    P(f"C:\\deploy> set DB_PASSWORD={p}\nC:\\deploy> bridge-migrate.exe --env prod", p)

    t = g.openai()
    P(f"PS C:\\src\\bridge> $env:OPENAI_API_KEY = \"{t}\"\nPS C:\\src\\bridge> python .\\eval.py", t)

    p1, p2 = base64.b64encode(g.pw().encode()).decode(), base64.b64encode(g.alnum(40).encode()).decode()
    P(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: bridge-db\n  namespace: bridge\ntype: Opaque\ndata:\n"
        f"  username: YnJpZGdl\n  password: {p1}\n  api-token: {p2}",
        p1,
        p2,
    )

    p = g.pw()
    P(f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: smtp\nstringData:\n  SMTP_USER: notifications@orbit-labs.io\n  SMTP_PASSWORD: \"{p}\"", p)

    p = g.pw()
    P(f"resource \"azurerm_mssql_server\" \"main\" {{\n  name                         = \"orbit-sql\"\n  administrator_login          = \"sqladmin\"\n  administrator_login_password = \"{p}\"\n  version                      = \"12.0\"\n}}", p)

    p = g.pw()
    P(f"variable \"grafana_admin_password\" {{\n  type      = string\n  default   = \"{p}\"\n  sensitive = true\n}}", p)

    p = g.plainpw()
    P(f"; /etc/bridge/bridge.ini\n[server]\nport = 8080\n\n[database]\nhost = db.orbit.internal\nuser = bridge\npassword = {p}\n", p)

    t = g.hex(48)
    P(f"<appSettings>\n  <add key=\"Environment\" value=\"Production\" />\n  <add key=\"PaymentApiSecret\" value=\"{t}\" />\n</appSettings>", t)

    p = g.pw(symbols="#%*+-.=?^_~@")
    P(f"<datasource jndi-name=\"java:/BridgeDS\" pool-name=\"BridgeDS\">\n  <connection-url>jdbc:postgresql://db:5432/bridge</connection-url>\n  <security>\n    <user-name>bridge</user-name>\n    <password>{p}</password>\n  </security>\n</datasource>", p)

    p = g.plainpw()
    P(f"spring.datasource.url=jdbc:mysql://db.orbit.internal:3306/bridge\nspring.datasource.username=bridge\nspring.datasource.password={p}\nspring.jpa.hibernate.ddl-auto=validate", p)

    k = g.hex(128)
    P(f"production:\n  secret_key_base: {k}\n  action_mailer_host: bridge.orbit-labs.io", k)

    p = g.plainpw()
    P(f"services:\n  db:\n    image: postgres:16\n    environment:\n      - POSTGRES_DB=bridge\n      - POSTGRES_PASSWORD={p}\n    volumes:\n      - pgdata:/var/lib/postgresql/data", p)

    t = g.b64url(40)
    P(f"[Service]\nExecStart=/usr/local/bin/bridge serve\nEnvironment=BRIDGE_ADMIN_TOKEN={t}\nRestart=on-failure", t)

    k = "base64:" + g.b64bytes(32)
    P(f"APP_NAME=Bridge\nAPP_ENV=production\nAPP_KEY={k}\nAPP_DEBUG=false", k)

    salts = [g.s(ALNUM + "!@#%^&*()-_=+[]{}<>~;:,.|", 64) for _ in range(2)]
    P(f"define( 'AUTH_KEY',         '{salts[0]}' );\ndefine( 'SECURE_AUTH_KEY',  '{salts[1]}' );\ndefine( 'WP_DEBUG', false );", *salts)

    t = g.hex(32)
    P(f"const config = {{\n  port: process.env.PORT || 3000,\n  jwtSecret: process.env.JWT_SECRET || \"{t}\",\n}};", t)

    t = g.b64url(43)
    P(f"package config\n\n// fallback for local runs\nconst webhookSigningKey = \"{t}\"", t)

    t = g.alnum(48)
    P(f"static API_KEY: &str = \"{t}\";\n\nfn client() -> reqwest::Client {{ reqwest::Client::new() }}", t)

    p = g.pw()
    P(f"grafana:\n  adminUser: admin\n  adminPassword: \"{p}\"\n  persistence:\n    enabled: true", p)

    t = g.alnum(40)
    P(f"[auth.github]\nenabled = true\nclient_id = Iv1.{g.hex(16)}\nclient_secret = {t}\nscopes = user:email,read:org", t)

    t = g.hex(40)
    P(f"ENV NODE_ENV=production\nENV PARTNER_API_SECRET={t}\nCMD [\"node\", \"server.js\"]", t)


def private_keys(g, out):
    def P(text, *secrets):
        out.append(("private_key", text, list(secrets)))

    def block(kind, lines, sep="\n", lead="", tail=""):
        body = sep.join(lines)
        return f"{lead}-----BEGIN {kind}-----{sep}{body}{sep}-----END {kind}-----{tail}", body

    text, body = block("RSA PRIVATE KEY", rsa_lines(g))
    P(f"$ cat deploy/id_rsa\n{text}\n$ ls -l deploy/\n-rw------- 1 agent agent 1679 Nov 28 21:03 id_rsa", body)

    lines = openssh_lines(g)
    text, body = block("OPENSSH PRIVATE KEY", lines)
    P(f"Here is the key the runner uses for the jump host, add it to the Ansible vault please:\n\n```\n{text}\n```", body)

    lines = ec_lines(g)
    body = "\n+".join(lines)
    P(
        "diff --git a/certs/server.key b/certs/server.key\nnew file mode 100644\nindex 0000000..4f2a9c1\n--- /dev/null\n+++ b/certs/server.key\n@@ -0,0 +1,5 @@\n"
        f"+-----BEGIN EC PRIVATE KEY-----\n+{body}\n+-----END EC PRIVATE KEY-----",
        body,
    )

    lines = pkcs8_lines(g)
    body = "\\n".join(lines)
    pk = f"-----BEGIN PRIVATE KEY-----\\n{body}\\n-----END PRIVATE KEY-----\\n"
    sa = (
        "{\n"
        '  "type": "service_account",\n'
        '  "project_id": "orbit-bridge",\n'
        f'  "private_key_id": "{g.hex(40)}",\n'
        f'  "private_key": "{pk}",\n'
        '  "client_email": "bridge-ci@orbit-bridge.iam.gserviceaccount.com",\n'
        f'  "client_id": "{g.digits(21)}",\n'
        '  "token_uri": "https://oauth2.googleapis.com/token"\n'
        "}"
    )
    P(sa, body)

    lines = rsa_lines(g, 600)
    body = "\n    ".join(lines)
    P(
        "tls:\n  enabled: true\n  certFile: /etc/bridge/tls.crt\n  key: |\n"
        f"    -----BEGIN RSA PRIVATE KEY-----\n    {body}\n    -----END RSA PRIVATE KEY-----\n",
        body,
    )

    lines = pkcs8_lines(g)
    body = "\n".join(lines)
    P(
        "resource \"tls_self_signed_cert\" \"bridge\" {\n  private_key_pem = <<-EOT\n"
        f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n  EOT\n  validity_period_hours = 8760\n}}",
        body,
    )

    pem = "-----BEGIN PRIVATE KEY-----\n" + "\n".join(pkcs8_lines(g)) + "\n-----END PRIVATE KEY-----\n"
    b = base64.b64encode(pem.encode()).decode()
    P(f"apiVersion: v1\nkind: Secret\ntype: kubernetes.io/tls\nmetadata:\n  name: bridge-tls\ndata:\n  tls.crt: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUM=\n  tls.key: {b}", b)

    k = g.b64bytes(32)
    P(f"[Interface]\nAddress = 10.8.0.3/24\nPrivateKey = {k}\nDNS = 10.8.0.1\n\n[Peer]\nPublicKey = {g.b64bytes(32)}\nEndpoint = vpn.orbit-labs.io:51820\nAllowedIPs = 10.8.0.0/24", k)

    lines = rsa_lines(g, 420)
    body = "\\n".join(lines)
    P(f"JWT_PRIVATE_KEY=\"-----BEGIN RSA PRIVATE KEY-----\\n{body}\\n-----END RSA PRIVATE KEY-----\"\nJWT_ISSUER=https://bridge.orbit-labs.io", body)

    body = "\n".join(g.pem_body("950558046566", 300))
    P(
        "gpg --armor --export-secret-keys release@orbit-labs.io\n"
        "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n"
        f"{body}\n={g.b64bytes(3)}\n-----END PGP PRIVATE KEY BLOCK-----",
        body,
    )

    lines = rsa_lines(g, 500)
    body = "\n".join(lines)
    P(
        "Error: failed to parse key for signer 'release':\n"
        "  asn1: structure error: tags don't match (16 vs {class:1 tag:2 length:111 isCompound:true})\n"
        "  key material was:\n"
        f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----",
        body,
    )

    lines = ec_lines(g)
    body = "\n".join(lines)
    P(
        "```python\nSIGNING_KEY = \"\"\"\n"
        f"-----BEGIN EC PRIVATE KEY-----\n{body}\n-----END EC PRIVATE KEY-----\n\"\"\"\n"
        "signer = ec.derive_private_key  # loaded below\n```",
        body,
    )

    lines = openssh_lines(g)
    body = "\n".join(lines)
    P(
        "- name: Install deploy key\n  ansible.builtin.copy:\n    dest: /home/deploy/.ssh/id_ed25519\n    mode: '0600'\n    content: |\n"
        "      -----BEGIN OPENSSH PRIVATE KEY-----\n      " + body.replace("\n", "\n      ") + "\n      -----END OPENSSH PRIVATE KEY-----",
        body.replace("\n", "\n      "),
    )

    lines = g.pem_body("308205", 1200)
    body = "\n".join(lines)
    P(f"-----BEGIN ENCRYPTED PRIVATE KEY-----\n{body}\n-----END ENCRYPTED PRIVATE KEY-----\n(passphrase is in 1Password under 'bridge signing')", body)


def connection_strings(g, out):
    def P(text, *secrets):
        out.append(("connection_string", text, list(secrets)))

    p = g.urlpw()
    P(f"DATABASE_URL=postgres://bridge:{p}@db.orbit.internal:5432/bridge?sslmode=require", p)

    p = g.urlpw()
    P(f"sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) connection to server at \"10.0.4.12\", port 5432 failed: FATAL:  password authentication failed for user \"etl\"\n(Background on this error at: https://sqlalche.me/e/20/e3q8)\n[engine url: postgresql+psycopg2://etl:{p}@10.0.4.12:5432/warehouse]", p)

    p = g.urlpw()
    P(f"const uri = \"mongodb+srv://app-rw:{p}@cluster0.x7kq2.mongodb.net/bridge?retryWrites=true&w=majority\";\nconst client = new MongoClient(uri);", p)

    p = g.urlpw()
    P(f"REDIS_URL=redis://default:{p}@redis-14872.c12.eu-west-1-2.ec2.cloud.redislabs.com:14872/0", p)

    p = g.urlpw()
    P(f"celery -A bridge worker --broker amqp://bridge:{p}@rabbitmq.orbit.internal:5672/bridge -l info", p)

    p = g.urlpw()
    P(f"jdbc:postgresql://db.orbit.internal:5432/bridge?user=bridge_app&password={p}&ssl=true", p)

    p = g.pw(symbols="!#%*+-.=?^_~@")
    P(f"\"ConnectionStrings\": {{\n  \"Default\": \"Server=tcp:orbit-sql.database.windows.net,1433;Initial Catalog=bridge;User ID=sqladmin;Password={p};Encrypt=True;TrustServerCertificate=False;\"\n}}", p)

    k = g.azure_storage_key()
    P(f"AZURE_STORAGE_CONNECTION_STRING=DefaultEndpointsProtocol=https;AccountName=orbitbackups;AccountKey={k};EndpointSuffix=core.windows.net", k)

    k = g.azure_sas_key()
    P(f"Endpoint=sb://orbit-events.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={k}", k)

    k = g.azure_storage_key()
    P(f"cosmos = CosmosClient.from_connection_string(\"AccountEndpoint=https://orbit-docs.documents.azure.com:443/;AccountKey={k};\")", k)

    p = g.plainpw()
    P(f"var redis = ConnectionMultiplexer.Connect(\"orbit-cache.redis.cache.windows.net:6380,password={p},ssl=True,abortConnect=False\");", p)

    p = g.pw(symbols="!#%*+-.=?^_~@")
    P(f"DRIVER={{ODBC Driver 18 for SQL Server}};SERVER=sql-prod.orbit.internal;DATABASE=finance;UID=report_ro;PWD={p};TrustServerCertificate=yes", p)

    p = g.pw(symbols="!#%*+-.=?^_~@")
    P(f"sasl.mechanism=PLAIN\nsecurity.protocol=SASL_SSL\nsasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"{g.upper_alnum(16)}\" password=\"{p}\";", p)

    p = g.plainpw()
    P(f"conn = psycopg2.connect(\"host=db.orbit.internal port=5432 dbname=bridge user=bridge password={p} sslmode=verify-full\")", p)

    p = g.plainpw()
    P(f"$ sqlplus system/{p}@//oracle.orbit.internal:1521/ORCLPDB1\n\nSQL*Plus: Release 21.0.0.0.0 - Production", p)

    p = g.urlpw()
    P(f"clickhouse-client --host ch.orbit.internal --secure\n# or via URL: clickhouse://analyst:{p}@ch.orbit.internal:9440/events", p)

    p = g.urlpw()
    P(f"NEO4J_URI=neo4j+s://neo4j:{p}@a1b2c3d4.databases.neo4j.io", p)

    p = g.urlpw()
    P(f"mysql://root:{p}@127.0.0.1:3306/bridge_test is what the failing test uses; CI sets it through TEST_DATABASE_URL.", p)

    p = g.pw(symbols="&;#!")
    P(f"export PGPASSWORD='{p}'\npg_dump -h db.orbit.internal -U bridge -Fc bridge > bridge.dump", p)

    p = g.urlpw()
    P(f"  datasource db {{\n    provider = \"postgresql\"\n    url      = \"postgresql://prisma:{p}@db.orbit.internal:5432/app?schema=public\"\n  }}", p)


def generic_keywords(g, out):
    def P(text, *secrets):
        out.append(("generic_keyword", text, list(secrets)))

    p = g.pw(symbols="&#!;")
    P(f"DB_PASSWORD=\"{p}\"\nDB_HOST=db.orbit.internal\nDB_PORT=5432", p)

    t = g.alnum(32)
    P(f"api_key: \"{t}\"\ntimeout_seconds: 30\nretries: 3", t)

    s = g.b64url(48)
    P(f"[auth]\nissuer = \"https://bridge.orbit-labs.io\"\nsigning_secret = \"{s}\"\naudience = \"agents\"", s)

    t = g.hex(40)
    P(f"level=debug ts=2026-11-29T04:58:12Z caller=client.go:114 msg=\"loaded upstream config\" endpoint=https://ingest.orbit-labs.io token={t} batch=500", t)

    p = g.pw()
    P(f"settings = {{\n    \"smtp_host\": \"smtp.orbit-labs.io\",\n    \"smtp_user\": \"alerts\",\n    \"smtp_password\": \"{p}\",\n}}", p)

    s = g.hex(64)
    P(json.dumps({"webhook": {"url": "https://bridge.orbit-labs.io/hooks/github", "secret": s, "events": ["push", "pull_request"]}}), s)

    p = g.pw(symbols="&;#!%")
    P(f"The admin password for the staging Grafana is {p} (user admin), please change it after you log in.", p)

    t = g.alnum(36)
    P(f"export ACCESS_TOKEN='{t}'\nexport API_BASE=https://api.orbit-labs.io", t)

    k = g.b64bytes(32)
    P(f"encryption_key = \"{k}\"  # AES-256, base64", k)

    s = g.b64url(40)
    P(f"client_secret: {s}\nclient_id: bridge-dashboard\nredirect_uri: https://bridge.orbit-labs.io/oauth/callback", s)

    p = g.pw(symbols="&;#!")
    P(f"password = \"{p}\"\nusername = \"replicator\"", p)

    t = g.alnum(26)
    P(f"2026-11-29 05:02:41,118 INFO  [sync] authenticating with apikey={t} region=eu", t)

    s = g.b64url(64)
    P(f"JWT_SECRET={s}\nJWT_TTL=3600", s)

    p = g.pw()
    P(f"Config dump:\n  cache.enabled = true\n  cache.ttl = 600\n  ldap.bind_dn = cn=reader,dc=orbit\n  ldap.bind_password = {p}\n  ldap.url = ldaps://ldap.orbit.internal", p)

    t = g.hex(32)
    P(f"  auth_token     {t}\n  (token reused from previous session)", t)

    k = g.alnum(40)
    P(f"master_key: '{k}'", k)

    p = g.pw(symbols="&;!")
    P(f"passwd={p}", p)

    s = g.alnum(30)
    P(f"private_token = {s}", s)

    p = g.pw()
    P(f"| service | user | password |\n|---|---|---|\n| staging db | app | `{p}` |", p)

    k = g.hex(32)
    P(f"SESSION_SECRET={k} npm start", k)


def function_arguments(g, out):
    def P(text, *secrets):
        out.append(("function_argument", text, list(secrets)))

    p = g.pw()
    P(f"cnx = mysql.connector.connect(user='bridge', password='{p}', host='10.0.4.12', database='bridge')", p)

    p = g.pw()
    P(f"r = redis.Redis(host=\"cache.orbit.internal\", port=6379, password=\"{p}\", ssl=True)", p)

    s = g.b64url(43)
    P(f"token = jwt.encode({{\"sub\": user.id, \"exp\": exp}}, \"{s}\", algorithm=\"HS256\")", s)

    p = g.pw()
    P(f"resp = requests.get(\"https://nexus.orbit-labs.io/service/rest/v1/status\", auth=(\"admin\", \"{p}\"))", p)

    p = g.pw()
    P(f"auth = HTTPBasicAuth('svc-reporter', '{p}')\nrequests.post(url, json=payload, auth=auth)", p)

    kid, sec = g.aws_id(), g.aws_secret()
    P(f"AWSCredentials creds = new BasicAWSCredentials(\"{kid}\", \"{sec}\");\nAmazonS3 s3 = AmazonS3ClientBuilder.standard().withCredentials(new AWSStaticCredentialsProvider(creds)).build();", sec)

    p = g.pw()
    P(f"var smtp = new SmtpClient(\"smtp.office365.com\", 587)\n{{\n    EnableSsl = true,\n    Credentials = new NetworkCredential(\"alerts@orbit-labs.io\", \"{p}\")\n}};", p)

    t = g.gh("ghp_")
    P(f"client = Octokit::Client.new(access_token: '{t}')\nclient.create_release('orbit-labs/bridge', 'v2.4.1')", t)

    p = g.pw()
    P(f"$pdo = new PDO('mysql:host=db.orbit.internal;dbname=bridge', 'bridge', '{p}');", p)

    kid, sec = g.aws_id(), g.aws_secret()
    P(f"cfg, err := config.LoadDefaultConfig(ctx,\n\tconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(\"{kid}\", \"{sec}\", \"\")),\n)", sec)

    s = g.b64url(40)
    P(f"let creds = Credentials::new(\"bridge-worker\", \"{s}\");\nlet client = OAuthClient::builder().credentials(creds).build()?;", s)

    p = g.pw()
    P(f"smtp.login(\"notifications@orbit-labs.io\", \"{p}\")", p)

    p = g.pw()
    P(f"ftp = FTP('ftp.partner-feed.com')\nftp.login(user='orbit', passwd='{p}')", p)

    t = g.alnum(40)
    P(f"const client = new CloudflareClient({{ apiToken: \"{t}\" }});", t)

    p = g.plainpw()
    P(f"db, err := sql.Open(\"mysql\", \"bridge:{p}@tcp(10.0.4.12:3306)/bridge?parseTime=true\")", p)

    s = g.hex(64)
    P(f"mac = hmac.new(b\"{s}\", body, hashlib.sha256).hexdigest()", s)

    p = g.pw()
    P(f"await page.fill('#password', '{p}');\nawait page.click('button[type=submit]');", p)


def encoded(g, out):
    def P(text, *secrets):
        out.append(("encoded", text, list(secrets)))

    p = g.pw()
    inner = json.dumps({"username": "svc-sync", "password": p})
    P(json.dumps({"level": "error", "msg": "upstream rejected credentials", "request_body": inner}), p)

    p = g.pw()
    raw = f"ci-bot:{p}"
    b = base64.b64encode(raw.encode()).decode()
    P(f"$ echo -n '{raw}' | base64\n{b}", p, b)

    b = g.basic(g.pick(["deploy", "robot", "ci"]), g.pw())
    cfg = json.dumps({"auths": {"quay.io": {"auth": b}}})
    P(f"resource \"kubernetes_secret\" \"pull\" {{\n  type = \"kubernetes.io/dockerconfigjson\"\n  data = {{\n    \".dockerconfigjson\" = {json.dumps(cfg)}\n  }}\n}}", b)

    p = g.pw(symbols="!#%&*+=?^@")
    enc = "".join(c if c.isalnum() or c in "-._~" else "%{:02X}".format(ord(c)) for c in p)
    P(f"DATABASE_URL=postgresql://bridge:{enc}@db.orbit.internal:5432/bridge", enc)

    b = base64.b64encode(json.dumps({"auths": {"ghcr.io": {"auth": g.basic("orbit-bot", g.gh("ghp_"))}}}).encode()).decode()
    P(f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: ghcr-pull\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: {b}", b)

    t = g.jwt()
    inner = json.dumps({"Authorization": f"Bearer {t}", "Accept": "application/json"})
    P(json.dumps({"event": "http_request", "method": "GET", "url": "https://api.orbit-labs.io/v1/me", "headers": inner}), t)

    b = g.basic("monitor", g.urlpw())
    P(f"b'GET /status HTTP/1.1\\r\\nHost: 10.0.2.8:8080\\r\\nAuthorization: Basic {b}\\r\\nConnection: close\\r\\n\\r\\n'", b)

    env = f"API_KEY={g.alnum(32)}\nDB_PASSWORD={g.plainpw()}\n"
    b = base64.b64encode(env.encode()).decode()
    P(f"The CI variable ENV_FILE_B64 holds the whole production .env, base64 encoded: {b}", b)

    s = g.aws_secret()
    while "/" not in s:
        s = g.aws_secret()
    esc = s.replace("/", "\\/")
    P(f"{{\"status\":\"ok\",\"credentials\":{{\"key\":\"{g.aws_id()}\",\"secret\":\"{esc}\",\"region\":\"eu-west-1\"}}}}", esc)

    cs = g.b64bytes(30)
    while "+" not in cs and "/" not in cs:
        cs = g.b64bytes(30)
    cs_q = cs.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    P(f"POST /oauth2/v2.0/token\nContent-Type: application/x-www-form-urlencoded\n\nclient_id={g.uuid()}&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default&client_secret={cs_q}&grant_type=client_credentials", cs_q)

    p = g.pw()
    inner = json.dumps({"token": p})
    outer = json.dumps(inner)
    P(f"time=\"2026-11-29T05:03:22Z\" level=debug msg={json.dumps('payload=' + outer)}", p)

    p = g.pw()
    b = base64.b64encode(p.encode()).decode()
    P(f"$ kubectl get secret bridge-db -o jsonpath='{{.data.password}}'\n{b}", b)

    p = g.pw()
    P(f"\"annotations\": {{\"kubectl.kubernetes.io/last-applied-configuration\": \"{{\\\"apiVersion\\\":\\\"v1\\\",\\\"kind\\\":\\\"Secret\\\",\\\"stringData\\\":{{\\\"password\\\":\\\"{p}\\\"}}}}\"}}", p)


def non_english(g, out):
    def P(text, *secrets):
        out.append(("non_english", text, list(secrets)))

    p = g.pw()
    P(f"base_de_datos:\n  servidor: db.orbit.internal\n  usuario: informes\n  contraseña: \"{p}\"", p)

    p = g.plainpw()
    P(f"# Ne pas committer\nMOT_DE_PASSE_BDD={p}\nUTILISATEUR_BDD=bridge", p)

    p = g.pw()
    P(f"Le mot de passe du compte de service est {p} ; merci de ne pas le partager en dehors de l'équipe.", p)

    t, k = g.alnum(40), g.hex(32)
    P(f"[Zugang]\nBenutzer = bridge\nPasswort = {t}\nAPI-Schlüssel = {k}", t, k)

    p = g.pw()
    P(f"config = {{\n    'usuario': 'relatorios',\n    'senha': '{p}',\n    'servidor': 'db.orbit.internal',\n}}", p)

    k = g.b64url(40)
    P(f"chiave_segreta: \"{k}\"\nambiente: produzione", k)

    p = g.pw()
    P(f"сервер: db.orbit.internal\nпользователь: bridge\nпароль: \"{p}\"", p)

    t = g.hex(40)
    P(f"токен_доступа = \"{t}\"  # не публиковать", t)

    p = g.pw()
    P(f"数据库配置：\n  主机: db.orbit.internal\n  用户名: bridge\n  密码: \"{p}\"", p)

    k = g.alnum(32)
    P(f"请把新的 API 密钥 {k} 配置到生产环境，旧的今天失效。", k)

    p = g.pw()
    P(f"ユーザー名=bridge\nパスワード=\"{p}\"\nホスト=db.orbit.internal", p)

    p = g.pw()
    P(f"비밀번호: \"{p}\"\n사용자: bridge", p)

    p = g.plainpw()
    P(f"hasło={p}\nużytkownik=raporty", p)

    p = g.pw()
    P(f"veritabanı:\n  kullanıcı: rapor\n  şifre: \"{p}\"", p)

    p = g.plainpw()
    P(f"[database]\ngebruiker = bridge\nwachtwoord = {p}", p)

    k = g.hex(32)
    P(f"clave_api = \"{k}\"  # clave de producción, no compartir", k)


# ---------------------------------------------------------------------------
# Negatives: benign near misses that must come back unchanged
# ---------------------------------------------------------------------------


def negatives(g, out):
    def N(cat, text):
        out.append((cat, text, []))

    # -- vendor_token: prefixes, placeholders, public keys, ids ----------
    v = "vendor_token"
    N(v, "$ git log --oneline -5\n" + "\n".join(f"{g.hex(7)} {m}" for m in ["redact: widen vendor table", "store: audit head file", "ci: cache cargo registry", "docs: performance figures", "fix: clippy on 1.83"]))
    N(v, "GitHub classic PATs start with `ghp_`, OAuth tokens with `gho_`, app installation tokens with `ghs_` and fine-grained PATs with `github_pat_`; none of them should ever be pasted into a message.")
    N(v, "# .env.example\nGITHUB_TOKEN=ghp_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\nSLACK_BOT_TOKEN=xoxb-your-bot-token\nOPENAI_API_KEY=sk-...")
    N(v, f"<script src=\"https://js.stripe.com/v3/\"></script>\n<script>\n  const stripe = Stripe('pk_live_51{g.alnum(97)}');\n</script>")
    N(v, f"2026-11-29T04:11:09Z INFO billing: charge succeeded customer=cus_{g.alnum(14)} payment_intent=pi_3{g.alnum(23)} invoice=in_1{g.alnum(23)} amount=4900 currency=eur")
    mb = base64.urlsafe_b64encode(json.dumps({"u": "orbit-labs", "a": "cl" + g.lower_alnum(23)}, separators=(",", ":")).encode()).rstrip(b"=").decode()
    N(v, f"mapboxgl.accessToken = 'pk.{mb}.{g.b64url(22)}'; // public token, URL-restricted to *.orbit-labs.io")
    N(v, f"posthog.init('phc_{g.alnum(43)}', {{ api_host: 'https://eu.i.posthog.com', person_profiles: 'identified_only' }})")
    N(v, f"<div class=\"g-recaptcha\" data-sitekey=\"6L{g.b64url(38)}\"></div>")
    N(v, "From the AWS docs, the example pair is AKIAIOSFODNN7EXAMPLE / wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY; they are placeholders and do not work.")
    N(v, 'TOKEN_PATTERNS = [\n    re.compile(r"ghp_[A-Za-z0-9]{36}"),\n    re.compile(r"xox[baprs]-[0-9A-Za-z-]{10,}"),\n    re.compile(r"sk_live_[0-9a-zA-Z]{24,}"),\n]')
    N(v, f"Posted to channel C0{g.upper_alnum(9)} as user U0{g.upper_alnum(8)}, message ts 17328{g.digits(5)}.{g.digits(6)}, thread_ts 17328{g.digits(5)}.{g.digits(6)}")
    N(v, f"$ docker pull ghcr.io/orbit-labs/bridge@sha256:{g.hex(64)}\nStatus: Downloaded newer image for ghcr.io/orbit-labs/bridge@sha256:{g.hex(64)}")
    N(v, "> bridge-client@2.4.1 build\n> tsc -p tsconfig.build.json\n\nnpm_lifecycle_event=build npm_package_version=2.4.1 npm_config_registry=https://registry.npmjs.org/")
    N(v, f"<!-- Google tag (gtag.js) -->\n<script async src=\"https://www.googletagmanager.com/gtag/js?id=G-{g.upper_alnum(10)}\"></script>")
    clerk = base64.b64encode(b"clerk.orbit-labs.io$").decode().rstrip("=")
    N(v, f"NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY=pk_live_{clerk}\nCLERK_SECRET_KEY=${{CLERK_SECRET_KEY}}")
    N(v, f"Sentry captured the panic: Event ID {g.hex(32)}, release bridge@2.4.1, environment production.")
    N(v, "from huggingface_hub import hf_hub_download\n\npath = hf_hub_download(repo_id=\"sentence-transformers/all-MiniLM-L6-v2\", filename=\"config.json\")\nos.environ[\"HF_HUB_ENABLE_HF_TRANSFER\"] = \"1\"")
    N(v, "$ gh auth status\ngithub.com\n  \u2713 Logged in to github.com account octo-relay (keyring)\n  - Active account: true\n  - Git operations protocol: https\n  - Token: gho_************************************\n  - Token scopes: 'gist', 'read:org', 'repo'")
    N(v, "Use your test card 4242 4242 4242 4242 with any future expiry and any CVC; Stripe test mode never charges it.")
    N(v, f"heroku releases -a bridge-prod\n=== bridge-prod Releases - Current: v{g.randint(200, 400)}\nv312  Deploy {g.hex(8)}  ops@orbit-labs.io  2026/11/28 21:14:07 +0000")
    N(v, "Vault tokens look like `hvs.<random>` and batch tokens like `hvb.<random>`; ask for a short-lived one with `vault token create -ttl=1h`.")

    # -- credential_pair ------------------------------------------------
    v = "credential_pair"
    N(v, 's3 = boto3.client(\n    "s3",\n    aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],\n    aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],\n)')
    N(v, f"$ aws sts get-caller-identity\n{{\n    \"UserId\": \"AIDA{g.s(UP + '234567', 17)}\",\n    \"Account\": \"480163952271\",\n    \"Arn\": \"arn:aws:iam::480163952271:user/ci-bridge\"\n}}")
    N(v, "TWILIO_ACCOUNT_SID=${TWILIO_ACCOUNT_SID}\nTWILIO_AUTH_TOKEN=${TWILIO_AUTH_TOKEN}")
    N(v, f"Service principal bridge-ci: appId {g.uuid()}, tenant {g.uuid()}. The client secret lives in Key Vault orbit-kv as `bridge-ci-secret`; do not copy it anywhere.")
    N(v, f"GOOGLE_CLIENT_ID={g.digits(12)}-{g.lower_alnum(32)}.apps.googleusercontent.com\nGOOGLE_CLIENT_SECRET=")
    N(v, "[profile prod]\nsso_start_url = https://orbit.awsapps.com/start\nsso_region = eu-west-1\nsso_account_id = 480163952271\nsso_role_name = Deployer\nregion = eu-west-1")
    N(v, f"ALGOLIA_APP_ID={g.upper_alnum(10)}\nALGOLIA_INDEX=docs_production\n# the admin key is injected by the deploy pipeline")
    N(v, "client = Client(os.environ[\"TWILIO_API_KEY\"], os.environ[\"TWILIO_API_SECRET\"], os.environ[\"TWILIO_ACCOUNT_SID\"])")

    # -- cli_flag --------------------------------------------------------
    v = "cli_flag"
    N(v, "echo \"$CR_PAT\" | docker login ghcr.io -u orbit-bot --password-stdin\nLogin Succeeded")
    N(v, "$ mysql -h 10.0.4.12 -u report -p analytics\nEnter password:")
    N(v, "az login --identity --username /subscriptions/0f1e2d3c-0000-4000-8000-000000000000/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/bridge")
    N(v, "kubectl --token=\"$(cat /var/run/secrets/kubernetes.io/serviceaccount/token)\" get pods -n bridge")
    N(v, "vault login -method=oidc role=engineer\nComplete the login via your OIDC provider. Launching browser to:")
    N(v, "gh auth login --hostname github.com --with-token < ~/.config/bridge/token.txt")
    N(v, "docker run -d -p 5432:5432 -e POSTGRES_PASSWORD_FILE=/run/secrets/pg_password -v pgdata:/var/lib/postgresql/data postgres:16")
    N(v, "ssh -p 2222 -i ~/.ssh/id_ed25519 deploy@bastion.orbit-labs.io")
    N(v, "openssl genpkey -algorithm ed25519 -out signing.pem && openssl pkey -in signing.pem -pubout -out signing.pub")
    N(v, "helm upgrade --install bridge ./chart --set image.tag=2.4.1 --set replicaCount=3 --set ingress.host=bridge.orbit-labs.io")
    N(v, "redis-cli -h cache.orbit.internal --askpass INFO keyspace")
    N(v, "cargo test --test redaction_corpus -j1 -- --nocapture --test-threads=1")
    N(v, "terraform apply -var-file=prod.tfvars -var 'db_password_secret_arn=arn:aws:secretsmanager:eu-west-1:480163952271:secret:bridge/db-AbCdEf'")
    N(v, "sshpass -e ssh admin@192.168.40.17   # SSHPASS is exported by the vault agent wrapper")

    # -- auth_header -----------------------------------------------------
    v = "auth_header"
    N(v, 'curl -H "Authorization: Bearer $TOKEN" https://api.orbit-labs.io/v1/me')
    N(v, 'HTTP/1.1 401 Unauthorized\nWWW-Authenticate: Bearer realm="bridge", error="invalid_token", error_description="The access token expired"\nContent-Length: 0')
    N(v, 'curl https://api.orbit-labs.io/v1/threads -H "Authorization: Bearer <access_token>" -H "Accept: application/json"')
    N(v, "Access-Control-Allow-Origin: https://app.orbit-labs.io\nAccess-Control-Allow-Headers: Authorization, Content-Type, X-Api-Key\nVary: Origin, Authorization")
    N(v, "location /api/ {\n    proxy_pass http://bridge:8080;\n    proxy_set_header Authorization $http_authorization;\n    proxy_set_header X-Request-Id $request_id;\n}")
    N(v, "- name: Comment on PR\n  run: |\n    curl -sS -X POST -H \"Authorization: token ${{ secrets.GITHUB_TOKEN }}\" \\\n      \"$GITHUB_API_URL/repos/$GITHUB_REPOSITORY/issues/$PR/comments\" -d @body.json")
    N(v, f"HTTP/2 200\ncontent-type: application/json\nx-request-id: {g.uuid()}\nx-ratelimit-remaining: 4987\netag: W/\"{g.hex(40)}\"")
    N(v, "headers = {\"Authorization\": f\"Bearer {access_token}\", \"Content-Type\": \"application/json\"}")
    N(v, "The server answered 403 because the Authorization header was missing entirely; the proxy strips it unless `forward_auth_header: true` is set.")
    N(v, f"traceparent: 00-{g.hex(32)}-{g.hex(16)}-01\ntracestate: rojo=00f067aa0ba902b7")
    N(v, "req.Header.Set(\"Authorization\", \"Bearer \"+os.Getenv(\"BRIDGE_TOKEN\"))")
    N(v, f"x-amz-request-id: {g.HEX(16)}\nx-amz-id-2: {g.b64bytes(54)}\nServer: AmazonS3")

    # -- registry_config -------------------------------------------------
    v = "registry_config"
    N(v, "# .npmrc\n@orbit:registry=https://npm.pkg.github.com\n//npm.pkg.github.com/:_authToken=${NODE_AUTH_TOKEN}\nalways-auth=true")
    N(v, "[distutils]\nindex-servers = pypi\n\n[pypi]\nusername = __token__\n# password comes from the keyring (keyring set https://upload.pypi.org/legacy/ __token__)")
    N(v, json.dumps({"auths": {"ghcr.io": {}, "https://index.docker.io/v1/": {}}, "credsStore": "desktop", "currentContext": "default"}, indent=2))
    N(v, "npmScopes:\n  orbit:\n    npmRegistryServer: \"https://npm.pkg.github.com\"\n    npmAuthToken: \"${NPM_AUTH_TOKEN}\"")
    N(v, "<server>\n  <id>orbit-releases</id>\n  <username>${env.MAVEN_USERNAME}</username>\n  <password>${env.MAVEN_PASSWORD}</password>\n</server>")
    N(v, "[registries.orbit]\nindex = \"sparse+https://cargo.orbit-labs.io/index/\"\ncredential-provider = [\"cargo:token\"]")
    N(v, "<packageSourceCredentials>\n  <orbit>\n    <add key=\"Username\" value=\"ci\" />\n    <add key=\"ClearTextPassword\" value=\"%NUGET_PAT%\" />\n  </orbit>\n</packageSourceCredentials>")
    N(v, "machine github.com\n  login orbit-bot\n  # password supplied by git-credential-manager")
    N(v, "[global]\nindex-url = https://pypi.org/simple\nextra-index-url = https://pypi.orbit-labs.io/simple/\ntimeout = 60")
    N(v, json.dumps({"credHelpers": {"123456789012.dkr.ecr.eu-west-1.amazonaws.com": "ecr-login", "europe-docker.pkg.dev": "gcloud"}}, indent=2))

    # -- url_secret ------------------------------------------------------
    v = "url_secret"
    N(v, "https://api.github.com/repos/orbit-labs/bridge/issues?state=open&per_page=100&page=2&sort=created&direction=desc")
    N(v, f"See https://github.com/orbit-labs/bridge/commit/{g.hex(40)} and https://github.com/orbit-labs/bridge/blob/{g.hex(40)}/src/main.rs#L42")
    N(v, f"https://www.youtube.com/watch?v={g.b64url(11)}&t=42s")
    N(v, "https://bridge.orbit-labs.io/signup?utm_source=newsletter&utm_medium=email&utm_campaign=nov-2026&ref=changelog")
    N(v, "curl -s \"https://api.telegram.org/bot${TELEGRAM_BOT_TOKEN}/getMe\"")
    N(v, "Set SLACK_WEBHOOK_URL to the incoming-webhook URL from the app settings (it looks like https://hooks.slack.com/services/T000/B000/XXXX) and never commit it.")
    N(v, "GET https://maps.googleapis.com/maps/api/geocode/json?address=Berlin&key=${MAPS_API_KEY}")
    N(v, f"https://storage.googleapis.com/orbit-public-assets/releases/bridge-2.4.1-x86_64-unknown-linux-gnu.tar.gz?generation={g.digits(16)}")
    N(v, f"Download the report: https://bridge.orbit-labs.io/exports/{g.uuid()}/report.csv (requires SSO)")
    N(v, "https://registry.npmjs.org/@orbit/bridge-client/-/bridge-client-2.4.1.tgz")
    N(v, "Callback configured as https://bridge.orbit-labs.io/oauth/callback?provider=github&next=%2Fsettings%2Fintegrations")
    N(v, f"https://pkg.go.dev/github.com/orbit-labs/bridge@v0.0.0-20261128211402-{g.hex(12)}")

    # -- config_idiom ----------------------------------------------------
    v = "config_idiom"
    N(v, "app.config['SECRET_KEY'] = os.environ['SECRET_KEY']\napp.config['SESSION_COOKIE_SAMESITE'] = 'Lax'")
    N(v, "settings.API_TOKEN = get_secret(\"bridge/api-token\")\nsettings.API_TIMEOUT = 30")
    N(v, "env:\n  - name: DB_PASSWORD\n    valueFrom:\n      secretKeyRef:\n        name: bridge-db\n        key: password")
    N(v, "resource \"aws_db_instance\" \"main\" {\n  username = \"bridge\"\n  password = random_password.db.result\n  manage_master_user_password = false\n}")
    N(v, "spring.datasource.url=jdbc:postgresql://db:5432/bridge\nspring.datasource.username=${DB_USER}\nspring.datasource.password=${DB_PASSWORD}")
    N(v, "grafana:\n  adminUser: admin\n  admin:\n    existingSecret: grafana-admin\n    passwordKey: admin-password")
    N(v, "[Service]\nEnvironmentFile=/etc/bridge/bridge.env\nExecStart=/usr/local/bin/bridge serve --config /etc/bridge/config.toml")
    N(v, "# .env.example\nSTRIPE_SECRET_KEY=sk_test_your_key_here\nDATABASE_URL=postgres://user:password@localhost:5432/dbname\nSESSION_SECRET=changeme  # placeholder, generate one with `openssl rand -hex 32`")
    N(v, "apiVersion: external-secrets.io/v1beta1\nkind: ExternalSecret\nmetadata:\n  name: bridge-db\nspec:\n  secretStoreRef:\n    name: vault\n  data:\n    - secretKey: password\n      remoteRef:\n        key: secret/data/bridge/db\n        property: password")
    N(v, "<appSettings>\n  <add key=\"Environment\" value=\"Production\" />\n  <add key=\"PaymentApiSecret\" value=\"\" />\n</appSettings>")
    N(v, "export RUST_LOG=mcp_bridge=debug,tower_http=info\nexport RUST_BACKTRACE=1")
    N(v, "C:\\> setx JAVA_HOME \"C:\\Program Files\\Eclipse Adoptium\\jdk-21.0.5.11-hotspot\"\n\nSUCCESS: Specified value was saved.")
    N(v, "password:\n  min_length: 12\n  require_symbol: true\n  max_age_days: 90")
    N(v, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bridge-config\ndata:\n  LOG_LEVEL: info\n  MAX_MESSAGE_BYTES: \"65536\"\n  FEATURE_REDACTION: \"true\"")

    # -- private_key: public material and placeholders ------------------
    v = "private_key"
    N(v, f"$ cat ~/.ssh/authorized_keys\n{ssh_ed25519_pub(g)} deploy@ci-runner\n{ssh_rsa_pub(g)} ops@laptop")
    N(v, "-----BEGIN PUBLIC KEY-----\n" + "\n".join(pubkey_lines(g)) + "\n-----END PUBLIC KEY-----")
    N(v, "$ openssl s_client -connect bridge.orbit-labs.io:443 -showcerts </dev/null\n-----BEGIN CERTIFICATE-----\n" + "\n".join(cert_lines(g)) + "\n-----END CERTIFICATE-----")
    N(v, '{\n  "type": "service_account",\n  "project_id": "orbit-bridge",\n  "private_key": "-----BEGIN PRIVATE KEY-----\\n<your key here>\\n-----END PRIVATE KEY-----\\n",\n  "client_email": "bridge-ci@orbit-bridge.iam.gserviceaccount.com"\n}')
    N(v, "ssh-keygen -t ed25519 -C \"deploy@orbit-labs.io\" -f ~/.ssh/id_ed25519 -N \"\"\nchmod 600 ~/.ssh/id_ed25519")
    N(v, f"[Peer]\nPublicKey = {g.b64bytes(32)}\nEndpoint = vpn.orbit-labs.io:51820\nAllowedIPs = 10.8.0.0/24\nPersistentKeepalive = 25")
    N(v, f"Encrypt with: sops --encrypt --age age1{g.s('qpzry9x8gf2tvdw0s3jn54khce6mua7l', 58)} secrets.yaml > secrets.enc.yaml")
    N(v, f"Host bastion\n  HostName bastion.orbit-labs.io\n  User deploy\n  IdentityFile ~/.ssh/id_ed25519\n  IdentitiesOnly yes")
    N(v, f"bastion.orbit-labs.io,203.0.113.17 {ssh_ed25519_pub(g)}")
    N(v, f"The host key fingerprint is SHA256:{base64.b64encode(g.raw(32)).decode().rstrip('=')} (ED25519); compare it before you accept.")
    N(v, "-----BEGIN CERTIFICATE REQUEST-----\n" + "\n".join(g.pem_body("308202a53082018d020100", 560)) + "\n-----END CERTIFICATE REQUEST-----")

    # -- connection_string -----------------------------------------------
    v = "connection_string"
    N(v, "DATABASE_URL=postgres://bridge@localhost:5432/bridge?sslmode=disable")
    N(v, "mongodb://db1.orbit.internal:27017,db2.orbit.internal:27017,db3.orbit.internal:27017/bridge?replicaSet=rs0&readPreference=secondaryPreferred")
    N(v, "Server=tcp:orbit-sql.database.windows.net,1433;Database=bridge;Authentication=Active Directory Default;Encrypt=True;")
    N(v, "AZURE_STORAGE_CONNECTION_STRING=UseDevelopmentStorage=true")
    N(v, "REDIS_URL=redis://redis:6379/0\nCELERY_BROKER_URL=amqp://rabbitmq:5672//")
    N(v, "DATABASE_URL=postgres://bridge:${DB_PASSWORD}@db.orbit.internal:5432/bridge")
    N(v, "jdbc:postgresql://db.orbit.internal:5432/bridge?ssl=true&sslmode=verify-full&ApplicationName=bridge-api")
    N(v, "conn = psycopg2.connect(host=\"db.orbit.internal\", dbname=\"bridge\", user=\"bridge\", password=os.environ[\"PGPASSWORD\"])")
    N(v, "sqlite:///var/lib/bridge/bridge.db?mode=rwc")
    N(v, "psql \"host=db.orbit.internal port=5432 dbname=bridge user=bridge sslmode=verify-full sslrootcert=/etc/ssl/certs/orbit-ca.pem\"")

    # -- generic_keyword: keywords without secrets, and random-looking ids
    v = "generic_keyword"
    N(v, "max_tokens=4096, temperature=0.2, tokenizer=\"cl100k_base\", stop_token=\"</s>\"")
    N(v, "password_reset_url: https://bridge.orbit-labs.io/account/reset\npassword_min_length: 12\npasswordless_login: false")
    N(v, "api_key_header: X-Api-Key\napi_key_required: true\napi_key_ttl_days: 90")
    N(v, f"$ sha256sum bridge-2.4.1-x86_64-unknown-linux-gnu.tar.gz\n{g.hex(64)}  bridge-2.4.1-x86_64-unknown-linux-gnu.tar.gz")
    N(v, f"[[package]]\nname = \"serde\"\nversion = \"1.0.215\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"{g.hex(64)}\"")
    N(v, f"\"node_modules/lodash\": {{\n  \"version\": \"4.17.21\",\n  \"resolved\": \"https://registry.npmjs.org/lodash/-/lodash-4.17.21.tgz\",\n  \"integrity\": \"sha512-{g.b64bytes(64)}\"\n}}")
    N(v, f"golang.org/x/crypto v0.29.0 h1:{g.b64bytes(32)}\ngolang.org/x/crypto v0.29.0/go.mod h1:{g.b64bytes(32)}")
    N(v, f"requests==2.32.3 \\\n    --hash=sha256:{g.hex(64)} \\\n    --hash=sha256:{g.hex(64)}")
    N(v, f"2026-11-29T05:01:12.331Z INFO request completed request_id={g.uuid()} trace_id={g.hex(32)} span_id={g.hex(16)} status=200 duration_ms=41")
    N(v, f"Build {g.digits(10)} finished for commit {g.hex(40)} on runner i-0{g.hex(16)}")
    N(v, "theme:\n  primary: \"#1e293b\"\n  accent: \"#f59e0b\"\n  background: \"#0f172a\"\n  border: \"#334155cc\"")
    N(v, "token_count: 1834\nsecret_scanning: enabled\nauth: oauth2\nkey: app.kubernetes.io/name\nsecretName: bridge-tls")
    N(v, f"ERROR 401 Unauthorized: invalid api key (request {g.uuid()}). Check that BRIDGE_API_KEY is set in the environment.")
    N(v, "The words antidisestablishmentarianism, internationalization and AbstractSingletonProxyFactoryBean are long but not secret.")
    N(v, f"<link rel=\"stylesheet\" href=\"https://cdn.orbit-labs.io/app.{g.hex(8)}.css\" integrity=\"sha384-{g.b64bytes(48)}\" crossorigin=\"anonymous\">")
    N(v, f"/nix/store/{g.s('0123456789abcdfghijklmnpqrsvwxyz', 32)}-openssl-3.3.2/lib/libssl.so.3")
    N(v, f"Container {g.hex(64)} exited with code 137 (OOMKilled) on node ip-10-0-3-21.eu-west-1.compute.internal")
    N(v, f"ULIDs like {g.s('0123456789ABCDEFGHJKMNPQRSTVWXYZ', 26)} sort by time; Mongo ObjectIds like {g.hex(24)} do too.")
    N(v, f"secret_name = \"prod/bridge/db-password\"\nsecret_arn  = \"arn:aws:secretsmanager:eu-west-1:480163952271:secret:prod/bridge/db-password-{g.alnum(6)}\"")
    N(v, "version: 2.4.1-rc.3+build.20261128.1942\nrust-version: 1.83.0\nmsrv: 1.75")

    # -- function_argument -----------------------------------------------
    v = "function_argument"
    N(v, "password = getpass.getpass(\"Password for svc-reporter: \")\nresp = requests.get(url, auth=(\"svc-reporter\", password))")
    N(v, "client = OpenAI(api_key=os.environ[\"OPENAI_API_KEY\"])")
    N(v, "const stripe = new Stripe(process.env.STRIPE_SECRET_KEY!, { apiVersion: '2024-06-20' });")
    N(v, "Credentials = new NetworkCredential(config[\"Smtp:User\"], config[\"Smtp:Password\"])")
    N(v, "payload = jwt.decode(token, key=settings.JWT_PUBLIC_KEY, algorithms=[\"RS256\"], audience=\"agents\")")
    N(v, "cnx = mysql.connector.connect(user=cfg.user, password=cfg.password, host=cfg.host, database=\"bridge\")")
    N(v, "def login(username: str, password: str) -> Session:\n    \"\"\"Authenticate and return a session; the password is never logged.\"\"\"")
    N(v, "hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=12))")
    N(v, "await page.fill('#password', process.env.E2E_PASSWORD ?? '');")

    # -- encoded ---------------------------------------------------------
    v = "encoded"
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + g.raw(90)).decode()
    N(v, f"<img alt=\"status\" src=\"data:image/png;base64,{png}\">")
    ev = base64.b64encode(json.dumps({"event": "user.signup", "id": 4211, "plan": "team"}).encode()).decode()
    N(v, json.dumps({"message": {"data": ev, "messageId": g.digits(16), "publishTime": "2026-11-29T05:04:11.102Z"}, "subscription": "projects/orbit-bridge/subscriptions/events"}))
    N(v, json.dumps({"level": "info", "msg": "forwarded", "body": json.dumps({"to": "planner", "text": "tests pass on main"})}))
    N(v, "$ echo 'aGVsbG8gZnJvbSB0aGUgYnVpbGQgYm90Cg==' | base64 -d\nhello from the build bot")
    N(v, "GET /search?q=rust%20async%20trait%20object&lang=en%2Dgb HTTP/1.1")
    N(v, "Authorization: Basic <base64 of user:password>  (see RFC 7617, section 2)")
    font = base64.b64encode(b"wOF2\x00\x01\x00\x00" + g.raw(120)).decode()
    N(v, f"@font-face {{ font-family: 'Inter'; src: url(data:font/woff2;base64,{font}) format('woff2'); }}")
    N(v, json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "logo"}, "binaryData": {"logo.svg": base64.b64encode(b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><circle cx="12" cy="12" r="10"/></svg>').decode()}}))
    N(v, "{\"headers\":\"{\\\"Content-Type\\\":\\\"application/json\\\",\\\"X-Request-Id\\\":\\\"" + g.uuid() + "\\\"}\"}")
    N(v, f"JWT header only, for the docs: eyJhbGciOiJSUzI1NiIsImtpZCI6IjIwMjYtMTEifQ decodes to {{\"alg\":\"RS256\",\"kid\":\"2026-11\"}}.")

    # -- non_english -----------------------------------------------------
    v = "non_english"
    N(v, "¿Olvidaste tu contraseña? Escribe tu correo y te enviaremos un enlace para restablecerla.")
    N(v, "Mot de passe oublié ? Le lien de réinitialisation expire au bout de 30 minutes.")
    N(v, "Passwort: (leer lassen, wird aus dem Tresor geladen)\nBenutzer: bridge")
    N(v, "密码长度至少 12 位，必须包含大小写字母和数字。")
    N(v, "パスワードを入力してください（8文字以上）。")
    N(v, "пароль: <ваш пароль>\nпользователь: bridge")
    N(v, "senha: ${SENHA_BANCO}\nusuario: relatorios")
    N(v, "비밀번호를 잊으셨나요? 관리자에게 재설정을 요청하세요.")
    N(v, "şifre: \"\"  # boş bırakın, ortam değişkeninden okunur")


# ---------------------------------------------------------------------------
# Assembly, writing and checking
# ---------------------------------------------------------------------------

POSITIVE_BUILDERS = [
    vendor_tokens,
    credential_pairs,
    cli_flags,
    auth_headers,
    registry_configs,
    url_secrets,
    config_idioms,
    private_keys,
    connection_strings,
    generic_keywords,
    function_arguments,
    encoded,
    non_english,
]


def build():
    g = G(SEED)
    pos = []
    for builder in POSITIVE_BUILDERS:
        builder(g, pos)
    neg = []
    negatives(g, neg)
    return pos, neg


def to_jsonl(rows):
    return "".join(json.dumps({"category": c, "text": t, "secrets": s}, ensure_ascii=False) + "\n" for c, t, s in rows)


def validate(pos_rows, neg_rows):
    """Return a list of problems; empty when the corpus is well formed."""
    problems = []
    seen = set()
    all_secrets = []
    for kind, rows in (("positive", pos_rows), ("negative", neg_rows)):
        for i, row in enumerate(rows, 1):
            where = f"{kind} line {i}"
            if not isinstance(row, dict) or set(row) != {"category", "text", "secrets"}:
                problems.append(f"{where}: keys must be exactly category, text, secrets")
                continue
            cat, text, secrets = row["category"], row["text"], row["secrets"]
            if cat not in FAMILIES:
                problems.append(f"{where}: unknown category {cat!r}")
            if not isinstance(text, str) or not text.strip():
                problems.append(f"{where}: empty text")
                continue
            if text in seen:
                problems.append(f"{where}: duplicate text")
            seen.add(text)
            if not isinstance(secrets, list):
                problems.append(f"{where}: secrets must be a list")
                continue
            if kind == "negative":
                if secrets:
                    problems.append(f"{where}: a negative lists no secrets")
                continue
            if not secrets:
                problems.append(f"{where}: a positive lists at least one secret")
            for s in secrets:
                if not isinstance(s, str) or len(s) < 8:
                    problems.append(f"{where}: secret {s!r} is not a string of 8+ characters")
                    continue
                if s not in text:
                    problems.append(f"{where}: secret {s[:24]!r}... is not a substring of text")
                if "EXAMPLE" in s:
                    problems.append(f"{where}: secret contains EXAMPLE")
                all_secrets.append(s)
    for i, row in enumerate(neg_rows, 1):
        for s in all_secrets:
            if isinstance(row, dict) and s in row.get("text", ""):
                problems.append(f"negative line {i}: contains a positive's secret")
    return problems


def read_jsonl(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                rows.append({"error": f"{os.path.basename(path)} line {n}: {e}"})
    return rows


def counts(rows):
    c = {}
    for row in rows:
        cat = row[0] if isinstance(row, tuple) else row.get("category")
        c[cat] = c.get(cat, 0) + 1
    return c


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="validate the files and compare them with a fresh generation")
    args = ap.parse_args()

    pos, neg = build()
    pos_text, neg_text = to_jsonl(pos), to_jsonl(neg)

    if args.check:
        problems = []
        for path, expected in ((POSITIVE, pos_text), (NEGATIVE, neg_text)):
            if not os.path.exists(path):
                problems.append(f"{os.path.basename(path)} is missing")
            elif open(path, encoding="utf-8").read() != expected:
                problems.append(f"{os.path.basename(path)} differs from what the generator produces (regenerate it)")
        if not problems:
            problems += validate(read_jsonl(POSITIVE), read_jsonl(NEGATIVE))
        for p in problems:
            print("FAIL:", p, file=sys.stderr)
        if problems:
            return 1
        print(f"ok: {len(pos)} positives, {len(neg)} negatives")
        return 0

    problems = validate([json.loads(line) for line in pos_text.splitlines()], [json.loads(line) for line in neg_text.splitlines()])
    if problems:
        for p in problems:
            print("FAIL:", p, file=sys.stderr)
        return 1
    with open(POSITIVE, "w", encoding="utf-8") as f:
        f.write(pos_text)
    with open(NEGATIVE, "w", encoding="utf-8") as f:
        f.write(neg_text)
    print(f"wrote {len(pos)} positives, {len(neg)} negatives")
    for name, rows in (("positive", pos), ("negative", neg)):
        c = counts(rows)
        print(f"  {name}: " + ", ".join(f"{k}={c[k]}" for k in FAMILIES if k in c))
    return 0


if __name__ == "__main__":
    sys.exit(main())
