#!/usr/bin/env python3
"""Generate the redaction corpus (positive.jsonl / negative.jsonl).

Every key below is random characters of the right *shape*, produced from a
fixed seed; none is a real credential. Re-run with
`python3 tests/data/redaction/generate.py` from the crate root; the output is
deterministic.
"""
import base64
import json
import os
import random
import string

R = random.Random(20240611)
HERE = os.path.dirname(os.path.abspath(__file__))
UP = string.ascii_uppercase
LO = string.ascii_lowercase
DG = string.digits
B62 = UP + LO + DG
B64 = B62 + "+/"
B64URL = B62 + "-_"
HEX = "0123456789abcdef"


def rs(alpha, n):
    return "".join(R.choice(alpha) for _ in range(n))


def mixed(alpha, n):
    """Random string containing every class (upper, lower, digit) that the
    alphabet offers, like real generated keys."""
    need = [cls for cls in (UP, LO, DG) if any(c in alpha for c in cls)]
    while True:
        s = rs(alpha, n)
        if all(any(c in cls for c in s) for cls in need):
            return s


# ----------------------------------------------------------- secret makers --
def aws_access():
    return R.choice(["AKIA", "ASIA"]) + rs(UP + "234567", 16)


def aws_secret():
    return mixed(B64, 40)


def github():
    p = R.choice(["ghp_", "gho_", "ghu_", "ghs_", "ghr_"])
    if R.random() < 0.25:
        return "github_pat_" + mixed(B62, 22) + "_" + mixed(B62, 59)
    return p + mixed(B62, 36)


def gitlab():
    return "glpat-" + mixed(B64URL, 20)


def openai():
    if R.random() < 0.5:
        return "sk-proj-" + mixed(B64URL, 156)
    return "sk-" + mixed(B62, 48)


def anthropic():
    return "sk-ant-api03-" + mixed(B64URL, 93) + "AA"


def slack():
    return R.choice(["xoxb-", "xoxp-", "xoxa-", "xoxs-", "xoxr-"]) + rs(DG, 12) + "-" + rs(DG, 13) + "-" + mixed(B62, 24)


def slack_webhook_path():
    return "T" + rs(UP + DG, 8) + "/B" + rs(UP + DG, 10) + "/" + mixed(B62, 24)


def stripe():
    return R.choice(["sk_live_", "rk_live_", "sk_test_"]) + mixed(B62, R.choice([24, 99]))


def google():
    return "AIza" + mixed(B64URL, 35)


def azure_key():
    return mixed(B64, 86) + "=="


def twilio():
    return "SK" + rs(HEX, 32)


def sendgrid():
    return "SG." + mixed(B64URL, 22) + "." + mixed(B64URL, 43)


def npm():
    return "npm_" + mixed(B62, 36)


def pypi():
    return "pypi-AgEIcHlwaS5vcmc" + mixed(B64URL, 120)


def hf():
    return "hf_" + mixed(UP + LO, 34)


def do():
    return R.choice(["dop_v1_", "doo_v1_"]) + rs(HEX, 64)


def shopify():
    return R.choice(["shpat_", "shpss_", "shpca_", "shppa_"]) + rs(HEX, 32)


def discord():
    return R.choice("MNO") + mixed(B64URL, 25) + "." + mixed(B64URL, 6) + "." + mixed(B64URL, 38)


def telegram():
    return rs("123456789", 1) + rs(DG, 8) + ":AA" + mixed(B64URL, 33)


def mailgun():
    return "key-" + mixed(LO + DG, 32)


def b64url(obj):
    return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).decode().rstrip("=")


def jwt():
    h = b64url({"alg": R.choice(["HS256", "RS256"]), "typ": "JWT"})
    p = b64url({"sub": rs(DG, 8), "name": R.choice(["ana", "bo", "chen"]), "iat": R.randint(1600000000, 1800000000)})
    return h + "." + p + "." + mixed(B64URL, 43)


def bridge():
    return "mcpb_" + mixed(B64URL, 43)


def password():
    forms = [
        lambda: mixed(B62, R.randint(12, 24)),
        lambda: R.choice(["Tr0ub4dor", "hunter", "Summer", "Correct", "Dragon", "monkey"]) + str(R.randint(10, 9999)) + R.choice("!@#%^&*?"),
        lambda: rs(LO, 5) + R.choice("-_.!") + rs(DG, 3) + rs(UP, 3) + R.choice("#$%"),
        lambda: mixed(B64URL, 32),
    ]
    return R.choice(forms)()


def pem_body(lines=6, width=64):
    return [rs(B64, width) for _ in range(lines)] + [rs(B64, 20) + "=="]


def pem(kind=None):
    kind = kind or R.choice(["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY", "ENCRYPTED PRIVATE KEY"])
    body = pem_body(R.randint(3, 8))
    block = "-----BEGIN %s-----\n%s\n-----END %s-----" % (kind, "\n".join(body), kind)
    return block, body


TOKENS = [
    ("aws_access_key", aws_access), ("github_token", github), ("gitlab_token", gitlab),
    ("openai_key", openai), ("anthropic_key", anthropic), ("slack_token", slack),
    ("stripe_key", stripe), ("google_api_key", google), ("twilio_key", twilio),
    ("sendgrid_key", sendgrid), ("npm_token", npm), ("pypi_token", pypi),
    ("huggingface_token", hf), ("digitalocean_token", do), ("shopify_token", shopify),
    ("discord_bot_token", discord), ("telegram_bot_token", telegram), ("mailgun_key", mailgun),
    ("jwt", jwt), ("bridge_token", bridge),
]
ENV_NAMES = {
    "aws_access_key": "AWS_ACCESS_KEY_ID", "github_token": "GITHUB_TOKEN", "gitlab_token": "GITLAB_TOKEN",
    "openai_key": "OPENAI_API_KEY", "anthropic_key": "ANTHROPIC_API_KEY", "slack_token": "SLACK_BOT_TOKEN",
    "stripe_key": "STRIPE_SECRET_KEY", "google_api_key": "GOOGLE_API_KEY", "twilio_key": "TWILIO_API_KEY",
    "sendgrid_key": "SENDGRID_API_KEY", "npm_token": "NPM_TOKEN", "pypi_token": "TWINE_PASSWORD",
    "huggingface_token": "HF_TOKEN", "digitalocean_token": "DIGITALOCEAN_TOKEN", "shopify_token": "SHOPIFY_ACCESS_TOKEN",
    "discord_bot_token": "DISCORD_BOT_TOKEN", "telegram_bot_token": "TELEGRAM_BOT_TOKEN", "mailgun_key": "MAILGUN_API_KEY",
    "jwt": "SESSION_JWT", "bridge_token": "MCP_BRIDGE_TOKEN",
}


def token():
    kind, f = R.choice(TOKENS)
    return kind, f()


def host():
    return R.choice(["db.internal", "10.0.3.17", "localhost", "pg-primary.prod.svc", "cache-1", "mq.example.net"])


def user():
    return R.choice(["app", "admin", "deploy", "svc_orders", "root", "analytics"])


# ------------------------------------------------------ positive templates --
def p_env():
    lines, secrets = [], []
    lines.append("# .env for local dev")
    lines.append("NODE_ENV=development")
    lines.append("PORT=%d" % R.randint(3000, 9000))
    for _ in range(R.randint(1, 3)):
        kind, t = token()
        lines.append("%s%s=%s" % (R.choice(["", "export "]), ENV_NAMES[kind], R.choice([t, '"%s"' % t])))
        secrets.append(t)
    if R.random() < 0.6:
        pw = password()
        lines.append("%s=%s" % (R.choice(["DB_PASSWORD", "POSTGRES_PASSWORD", "REDIS_PASSWORD", "SMTP_PASS"]), pw))
        secrets.append(pw)
    lines.append("LOG_LEVEL=debug")
    return "here's my .env, the app won't start:\n" + "\n".join(lines), secrets


def p_stack():
    pw = password()
    url = "%s://%s:%s@%s:%d/%s" % (R.choice(["postgres", "postgresql", "mysql"]), user(), pw, host(), R.choice([5432, 3306]), R.choice(["orders", "app", "main"]))
    text = (
        "Traceback (most recent call last):\n"
        '  File "/app/db.py", line 42, in connect\n'
        "    engine = create_engine(DATABASE_URL)\n"
        "sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) could not connect to server\n"
        "DETAIL: connection string was %s\n" % url
    )
    return text, [pw]


def p_stack_java():
    kind, t = token()
    text = (
        "Exception in thread \"main\" java.lang.IllegalStateException: auth failed for key %s\n"
        "\tat com.acme.client.Auth.login(Auth.java:88)\n"
        "\tat com.acme.Main.main(Main.java:12)\n" % t
    )
    return text, [t]


def p_compose():
    pw = password()
    pw2 = password()
    text = (
        "docker-compose.yml:\n```yaml\nservices:\n  db:\n    image: postgres:16\n    environment:\n"
        "      POSTGRES_USER: app\n      POSTGRES_PASSWORD: %s\n  api:\n    image: acme/api:1.4.2\n"
        "    environment:\n      - DATABASE_URL=postgres://app:%s@db:5432/app\n      - DEBUG=false\n```" % (pw, pw2)
    )
    return text, [pw, pw2]


def p_diff():
    kind, t = token()
    name = ENV_NAMES[kind].lower()
    text = (
        "diff --git a/config/settings.py b/config/settings.py\n"
        "index 3f2a1b9..8c7d6e5 100644\n--- a/config/settings.py\n+++ b/config/settings.py\n"
        "@@ -10,7 +10,7 @@ DEBUG = False\n-%s = os.environ[\"%s\"]\n+%s = \"%s\"\n" % (name, ENV_NAMES[kind], name, t)
    )
    return text, [t]


def p_shell():
    kind, t = token()
    pw = password()
    form = R.choice([
        "$ mysql -h %s -u %s -p'%s' orders" % (host(), user(), pw),
        "$ mysql -h %s -u %s -p%s" % (host(), user(), pw),
        "$ sshpass -p '%s' ssh %s@%s" % (pw, user(), host()),
        "$ redis-cli -h %s -a %s ping" % (host(), pw),
        "$ ./deploy.sh --password %s --env prod" % pw,
        "$ vault login -method=userpass username=%s password=%s" % (user(), pw),
        "$ psql \"postgresql://%s:%s@%s/app\"" % (user(), pw, host()),
    ])
    text = "$ export %s=%s\n%s\nERROR 1045 (28000): Access denied\n" % (ENV_NAMES[kind], t, form)
    return text, [t, pw]


def p_curl():
    kind, t = token()
    form = R.choice([
        ("curl -s -H \"Authorization: Bearer %s\" https://api.example.com/v1/models" % t, t),
        ("curl -u %s:%s https://registry.example.com/v2/_catalog" % (user(), t), t),
        ("curl https://api.example.com/v1/items -H 'Authorization: token %s'" % t, t),
    ])
    if R.random() < 0.3:
        b = base64.b64encode(("%s:%s" % (user(), password())).encode()).decode()
        form = ("curl -H 'Authorization: Basic %s' https://ci.example.com/api/json" % b, b)
    return "I'm calling the API like this and get 401:\n```\n%s\n```" % form[0], [form[1]]


def p_json():
    kind, t = token()
    pw = password()
    cfg = {
        "service": "billing",
        "port": R.randint(1000, 9999),
        R.choice(["api_key", "apiKey", "token", "access_token", "client_secret", "secret"]): t,
        "database": {"host": host(), "user": user(), "password": pw},
        "max_tokens": 4096,
    }
    return "config.json:\n" + json.dumps(cfg, indent=2), [t, pw]


def p_k8s():
    pw = password()
    b = base64.b64encode(pw.encode()).decode()
    kind, t = token()
    text = (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: app-secrets\ntype: Opaque\ndata:\n"
        "  password: %s\nstringData:\n  api-token: %s\n" % (b, t)
    )
    return text, [b, t]


def p_chat():
    kind, t = token()
    text = R.choice([
        "can you check why the deploy fails? I set the key to %s in the dashboard" % t,
        "FYI the staging token is %s, rotate it after the demo" % t,
        "use %s for now, I'll revoke it tomorrow" % t,
        "Got `401 Unauthorized` with %s — is it scoped correctly?" % t,
    ])
    return text, [t]


def p_yaml():
    pw = password()
    kind, t = token()
    text = (
        "# config/production.yml\nserver:\n  port: 8080\ndatabase:\n  host: %s\n  username: %s\n  password: %s\n"
        "integrations:\n  %s: %s\n" % (host(), user(), R.choice([pw, '"%s"' % pw]), R.choice(["api_key", "token", "secret_key", "auth_token"]), t)
    )
    return text, [pw, t]


def p_toml():
    pw = password()
    kind, t = token()
    text = (
        "[database]\nurl = \"%s://%s:%s@%s/app\"\npool = 10\n\n[upstream]\n%s = \"%s\"\ntimeout_ms = 5000\n"
        % (R.choice(["postgres", "mongodb+srv", "redis", "rediss", "amqp", "amqps"]), user(), pw, host(), R.choice(["api_key", "token", "client_secret"]), t)
    )
    return text, [pw, t]


def p_pem():
    block, body = pem()
    wrap = R.choice([
        "here is the deploy key:\n%s\n",
        "```\n%s\n```\ndoes this look right?",
        "cat ~/.ssh/id_ed25519\n%s\n",
    ])
    return wrap % block, body[:3]


def p_pem_truncated():
    kind = R.choice(["RSA PRIVATE KEY", "OPENSSH PRIVATE KEY", "PRIVATE KEY"])
    body = pem_body(R.randint(2, 5))
    return "the paste got cut off:\n-----BEGIN %s-----\n%s" % (kind, "\n".join(body)), body


def p_gcp():
    body = pem_body(5)
    key = "-----BEGIN PRIVATE KEY-----\\n" + "\\n".join(body) + "\\n-----END PRIVATE KEY-----\\n"
    text = (
        '{\n  "type": "service_account",\n  "project_id": "acme-prod-%d",\n  "private_key_id": "%s",\n'
        '  "private_key": "%s",\n  "client_email": "ci@acme-prod.iam.gserviceaccount.com"\n}' % (R.randint(100, 999), rs(HEX, 40), key)
    )
    return text, body[:3]


def p_azure():
    k = azure_key()
    acct = "acme" + rs(LO + DG, 6)
    text = R.choice([
        "AZURE_STORAGE_CONNECTION_STRING=DefaultEndpointsProtocol=https;AccountName=%s;AccountKey=%s;EndpointSuffix=core.windows.net" % (acct, k),
        '"ConnectionStrings": { "Blob": "DefaultEndpointsProtocol=https;AccountName=%s;AccountKey=%s;EndpointSuffix=core.windows.net" }' % (acct, k),
    ])
    return text, [k]


def p_aws():
    a, s = aws_access(), aws_secret()
    text = R.choice([
        "[default]\naws_access_key_id = %s\naws_secret_access_key = %s\nregion = eu-west-1\n" % (a, s),
        "$ aws configure\nAWS Access Key ID [None]: %s\nAWS Secret Access Key [None]: %s\nDefault region name [None]: us-east-1\n" % (a, s),
        '{"AccessKeyId": "%s", "SecretAccessKey": "%s", "Expiration": "2025-01-01T00:00:00Z"}' % (a, s),
        "export AWS_ACCESS_KEY_ID=%s\nexport AWS_SECRET_ACCESS_KEY=%s\n" % (a, s),
    ])
    return text, [a, s]


def p_webhook():
    p = slack_webhook_path()
    return "the alert hook is https://hooks.slack.com/services/%s — messages aren't arriving" % p, [p]


def p_cli_flags():
    pw = password()
    kind, t = token()
    text = R.choice([
        "docker login registry.example.com -u %s --password %s" % (user(), pw),
        "helm install app ./chart --set db.password=%s --set image.tag=1.2.3" % pw,
        "terraform apply -var 'db_password=%s'" % pw,
        "./cli --api-key %s --region eu" % t,
        "gh auth login --with-token <<< %s" % t,
    ])
    secret = t if ("api-key" in text or "with-token" in text) else pw
    return text, [secret]


def p_code():
    kind, t = token()
    pw = password()
    text = R.choice([
        'client = OpenAI(api_key="%s")\nresp = client.chat.completions.create(model="gpt-4o")' % t,
        'const stripe = require("stripe")("%s");' % t,
        'let cfg = Config { token: "%s".into(), retries: 3 };' % t,
        'conn = psycopg2.connect(host="%s", user="%s", password="%s")' % (host(), user(), pw),
        'db.connect({ user: "%s", password: "%s" })' % (user(), pw),
    ])
    return text, [t if t in text else pw]


def p_log():
    kind, t = token()
    text = (
        "2024-05-02T10:11:12Z INFO  request started method=POST path=/v1/sync\n"
        "2024-05-02T10:11:12Z DEBUG headers={\"authorization\": \"Bearer %s\", \"accept\": \"*/*\"}\n"
        "2024-05-02T10:11:13Z ERROR upstream returned 403\n" % t
    )
    return text, [t]


def p_netrc():
    pw = password()
    return "~/.netrc:\nmachine api.example.com login %s password %s\n" % (user(), pw), [pw]


POSITIVE = [
    ("env_file", p_env), ("stack_trace", p_stack), ("stack_trace", p_stack_java), ("docker_compose", p_compose),
    ("diff", p_diff), ("shell_session", p_shell), ("curl", p_curl), ("json_config", p_json), ("k8s_secret", p_k8s),
    ("chat", p_chat), ("yaml_config", p_yaml), ("toml_config", p_toml), ("private_key", p_pem),
    ("private_key", p_pem_truncated), ("gcp_service_account", p_gcp), ("azure", p_azure), ("aws", p_aws),
    ("webhook", p_webhook), ("cli_flags", p_cli_flags), ("code", p_code), ("log", p_log), ("netrc", p_netrc),
]


# ------------------------------------------------------ negative templates --
def sha(n=40):
    return rs(HEX, n)


def uuid():
    h = rs(HEX, 32)
    return "%s-%s-4%s-%s%s-%s" % (h[:8], h[8:12], h[13:16], R.choice("89ab"), h[17:20], h[20:32])


def n_git():
    lines = []
    for _ in range(R.randint(2, 5)):
        lines.append("commit %s\nAuthor: Dev <dev%d@example.com>\n\n    %s\n" % (sha(), R.randint(1, 99), R.choice(["fix token refresh race", "rotate password policy docs", "bump deps", "add secret scanning to CI"])))
    lines.append("git cherry-pick %s && git revert %s" % (sha(7), sha(12)))
    return "\n".join(lines)


def n_uuid():
    return "request_id=%s trace=%s span=%s user %s not found" % (uuid(), rs(HEX, 32), rs(HEX, 16), uuid())


def n_lock():
    return R.choice([
        lambda: '"node_modules/lodash": {\n  "version": "4.17.%d",\n  "resolved": "https://registry.npmjs.org/lodash/-/lodash-4.17.21.tgz",\n  "integrity": "sha512-%s=="\n}' % (R.randint(1, 21), rs(B64, 86)),
        lambda: '[[package]]\nname = "serde"\nversion = "1.0.%d"\nsource = "registry+https://github.com/rust-lang/crates.io-index"\nchecksum = "%s"' % (R.randint(100, 230), sha(64)),
        lambda: 'lodash@^4.17.21:\n  version "4.17.21"\n  resolved "https://registry.yarnpkg.com/lodash/-/lodash-4.17.21.tgz#%s"\n  integrity sha1-%s=' % (sha(), rs(B64, 27)),
        lambda: "github.com/stretchr/testify v1.8.%d h1:%s=\ngithub.com/stretchr/testify v1.8.4/go.mod h1:%s=" % (R.randint(0, 4), rs(B64, 43), rs(B64, 43)),
        lambda: "%s  dist/app-linux-amd64.tar.gz\n%s  dist/app-darwin-arm64.tar.gz" % (sha(64), sha(64)),
        lambda: "sha512sum: %s" % sha(128),
    ])()


def n_data_uri():
    return '<img alt="logo" src="data:image/png;base64,iVBORw0KGgo%s=" />' % rs(B64, R.randint(200, 600))


def n_css():
    return ".btn { color: #%s; background: #%s; border: 1px solid rgba(0,0,0,.1); }\n:root { --accent: #%s; }" % (rs(HEX, 6), rs(HEX, 3), rs(HEX, 8))


def n_semver():
    return "Bumped tokio from 1.%d.0 to 1.%d.1, serde 1.0.%d -> 1.0.%d, and react@18.%d.0-rc.%d" % (R.randint(1, 40), R.randint(1, 40), R.randint(1, 200), R.randint(1, 200), R.randint(0, 3), R.randint(0, 9))


def n_placeholder():
    return R.choice([
        "Set OPENAI_API_KEY=<your-api-key> before running.",
        "api_key: YOUR_API_KEY",
        "export GITHUB_TOKEN=xxx",
        "password: '***'",
        "DB_PASSWORD=changeme",
        "password: ${DB_PASSWORD}",
        "password=<your-password>",
        'token: "{{ .Values.token }}"',
        'api_key = os.environ["OPENAI_API_KEY"]',
        "STRIPE_SECRET_KEY=sk_live_...",
        "Authorization: Bearer $TOKEN",
        'curl -H "Authorization: Bearer ${GITHUB_TOKEN}" https://api.github.com/user',
        "postgres://user:password@localhost:5432/mydb",
        "client_secret: <client-secret>",
        "SECRET_KEY=%(secret)s",
        "token: REPLACE_ME",
        "aws_secret_access_key = YOUR_SECRET_ACCESS_KEY",
        "password: xxxxxxxx",
        "secret: '********'",
        "api_key: !vault |",
    ]) + R.choice(["", "\n# fill these in", "  # see README"])


def n_prose():
    return R.choice([
        "Please reset your password in the UI, then retry.",
        "The token is invalid or has expired; request a new one.",
        "We should store the API key in the secret manager rather than the repo.",
        "Password rotation is handled by the ops team every 90 days.",
        "If the bearer token is missing the gateway returns 401.",
        "Note: secret scanning flagged nothing in this PR.",
        "The private key never leaves the HSM.",
        "password: must be at least 12 characters long",
        "token: invalid signature",
        "Use Basic authentication only over TLS.",
    ])


def n_skwords():
    return R.choice([
        "the task-runner crashed in task-queue-worker-3",
        "ordered a desk-lamp and a risk-free trial",
        "see ask-me-anything-2024 and whisk-together-recipe",
        "kiosk-mode-display-controller-v2 is flaky",
        "branch: feature/disk-usage-dashboard-refactor",
    ])


def n_urls():
    return "see https://docs.example.com/guide?page=%d#auth and http://localhost:8080/health, ftp://mirror.example.org/pub/, https://github.com/acme/api/blob/%s/src/main.rs" % (R.randint(1, 9), sha())


def n_ssh():
    return "ssh -i ~/.ssh/id_ed25519 %s@%s -p 2222; scp build.tgz deploy@%s:/srv/; mail ana.lopez+ci@example.com; git@github.com:acme/api.git" % (user(), host(), host())


def n_docker():
    return "docker pull ghcr.io/acme/api@sha256:%s\nDigest: sha256:%s\nStatus: Downloaded newer image" % (sha(64), sha(64))


def n_code():
    return R.choice([
        "def login(username: str, password: str) -> Token:\n    return auth.login(username=username, password=password)",
        "interface Credentials {\n  username: string;\n  password: string;\n  token?: string;\n}",
        "pub struct Config {\n    pub api_key: String,\n    pub token: Option<SecretString>,\n}",
        "password = getpass.getpass()\ntoken = generate_token(user)\nsecret_key = settings.SECRET_KEY",
        "const token = req.headers.authorization?.split(' ')[1];\nconst password = req.body.password;",
        "if password == confirm_password:\n    save(password_hash=hash(password))",
        "let api_key = std::env::var(\"API_KEY\")?;\nlet token = client.token().await?;",
        "max_tokens = 2048\ntoken_count = len(tokens)\npass_through = True\nbypass = False",
        "self.password = kwargs.get('password')\nself.token = None",
        "func (c *Client) SetToken(token string) { c.token = token }",
    ])


def n_k8s():
    return (
        "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n      - name: api\n        image: acme/api:1.%d.0\n"
        "        env:\n        - name: DB_PASSWORD\n          valueFrom:\n            secretKeyRef:\n              name: db-secret\n              key: password\n" % R.randint(0, 9)
    )


def n_env_refs():
    return "DATABASE_URL=${DATABASE_URL}\nREDIS_PASSWORD=$REDIS_PASSWORD\nAPI_TOKEN=\nSECRET_KEY=\nLOG_LEVEL=info\nTOKEN_TTL=3600\nPASSWORD_MIN_LENGTH=12"


def n_ci_log():
    return "Run actions/checkout@v4\n  with:\n    token: ***\n    ssh-strict: true\nSyncing repository: acme/api\nHEAD is now at %s Merge pull request #%d" % (sha(7), R.randint(100, 9999))


def n_stack():
    return "thread 'main' panicked at src/auth/token.rs:%d:14:\ncalled `Result::unwrap()` on an `Err` value: InvalidToken(\"signature mismatch\")\nnote: run with `RUST_BACKTRACE=1`" % R.randint(10, 300)


def n_json():
    return json.dumps({
        "model": "gpt-4o-mini", "max_tokens": R.randint(100, 4096), "temperature": 0.2,
        "token_usage": {"prompt_tokens": R.randint(1, 999), "completion_tokens": R.randint(1, 999)},
        "password_policy": {"min_length": 12, "require_symbols": True},
        "id": uuid(), "etag": sha(32),
    }, indent=2)


def n_diff():
    return "diff --git a/src/auth.rs b/src/auth.rs\nindex %s..%s 100644\n--- a/src/auth.rs\n+++ b/src/auth.rs\n@@ -1,4 +1,4 @@\n-fn check(token: &str) -> bool {\n+fn check(token: &str, now: Instant) -> bool {\n" % (sha(7), sha(7))


def n_hashes():
    return "md5 %s sha1 %s sha256 %s object %s" % (sha(32), sha(40), sha(64), rs(HEX, 40).upper())


def n_base64_text():
    return "the base64 of hello world is aGVsbG8gd29ybGQ= and the ETag is W/\"%s\"" % rs(B64URL, 27)


NEGATIVE = [
    ("git", n_git), ("uuid", n_uuid), ("lockfile", n_lock), ("data_uri", n_data_uri), ("css", n_css),
    ("semver", n_semver), ("placeholder", n_placeholder), ("prose", n_prose), ("sk_words", n_skwords),
    ("urls", n_urls), ("ssh_email", n_ssh), ("docker_digest", n_docker), ("code", n_code), ("k8s", n_k8s),
    ("env_refs", n_env_refs), ("ci_log", n_ci_log), ("stack_trace", n_stack), ("json_config", n_json),
    ("diff", n_diff), ("hashes", n_hashes), ("base64_text", n_base64_text),
]


# ------------------------------------------------- session 5 variants --
# Variants written for the mechanisms added after the blind corpora were
# read (issue 12): other vendors, tools and syntaxes than the blind cases,
# each family with benign near-misses. Their own generator, appended after
# the rows above so those stay byte-for-byte what they were.
V = random.Random(20261129)


def vs(alpha, n):
    return "".join(V.choice(alpha) for _ in range(n))


def vmixed(alpha, n):
    need = [cls for cls in (UP, LO, DG) if any(c in alpha for c in cls)]
    while True:
        s = vs(alpha, n)
        if all(any(c in cls for c in s) for cls in need):
            return s


def vpw(n=14):
    """A password with letters, digits and a symbol or two."""
    s = list(vmixed(B62, n))
    for _ in range(2):
        s[V.randrange(1, n)] = V.choice("!#%+=~^*@")
    return "".join(s)


def vuuid():
    h = vs(HEX, 32)
    return "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


def b64(text):
    return base64.b64encode(text.encode()).decode()


def variants_positive():
    """(family, text, secrets) rows; every secret must disappear."""
    rows = []

    def add(fam, text, *secrets):
        rows.append((fam, text, list(secrets)))

    # setenv / SetEnv / set-environment: the variable name says what it holds.
    t = vs(HEX, 64)
    add("v_setenv", "launchctl setenv SENTRY_AUTH_TOKEN %s" % t, t)
    t = vmixed(B62, 32)
    add("v_setenv", "tmux set-environment -g HONEYCOMB_API_KEY %s" % t, t)
    p = vpw()
    add("v_setenv", "<VirtualHost *:80>\n  SetEnv DB_PASSWORD %s\n</VirtualHost>" % p, p)
    # Foreign key words first: noun, then qualifier.
    p = vpw()
    add("v_foreign_first", 'contraseña_servidor = "%s"' % p, p)
    p = vpw()
    add("v_foreign_first", "passwort_datenbank: %s" % p, p)
    p = vpw()
    add("v_foreign_first", "пароль_пользователя=%s" % p, p)
    t = vmixed(B62, 36)
    add("v_foreign_first", 'clave_secreta: "%s"' % t, t)
    # Qualifier after the key word.
    t = vs(HEX, 40)
    add("v_key_qualifier", "PLIVO_TOKEN_PRIVATE=%s" % t, t)
    t = vmixed(B64, 44)
    add("v_key_qualifier", "signing_key_private: %s" % t, t)
    # Values with < and > that are not placeholders.
    p = vmixed(B62, 10) + "<" + vs("!,;:^", 2) + vmixed(B62, 8) + ">" + vmixed(B62, 6)
    add("v_angle_value", "SECRET_KEY='%s'" % p, p)
    p = vmixed(B62, 6) + ">" + vmixed(B62, 5) + "|" + vmixed(B62, 6)
    add("v_angle_value", "DB_PASS=%s" % p, p)
    # Dotted tokens after a token word.
    t = "st." + vmixed(B62, 22) + "." + vmixed(B62, 24)
    add("v_dotted_token", "The deploy job reads the token %s from the vault" % t, t)
    t = vs(LO, 3) + "1." + vmixed(B62, 20) + "." + vmixed(B62, 20)
    add("v_dotted_token", "token: %s" % t, t)
    # A token as a URL's user part, and /t/<token>/ paths.
    t = vmixed(B62, 40)
    add("v_url_token", "git clone https://%s@git.example.com/acme/infra.git" % t, t)
    t = vs(HEX, 32)
    add("v_url_token", "BROKER_URL=amqps://%s@broker.example.net:5671/jobs" % t, t)
    t = vmixed(B62, 24)
    add("v_url_token", "pip install --index-url https://pkgs.example.com/t/%s/simple/ acme-sdk" % t, t)
    # Tool flags.
    p = vpw()
    add("v_tool_flag", "wfreerdp /u:svc-backup /p:%s /v:10.20.0.4" % p, p)
    p = vpw()
    add("v_tool_flag", "rdesktop -u Administrator -p '%s' 10.1.1.7" % p, p)
    u = vuuid()
    add("v_tool_flag", "./codecov -t %s -F unit -f coverage.xml" % u, u)
    u = vuuid()
    add("v_tool_flag", "codecovcli upload-process -t %s --flag integration" % u, u)
    # SQL and ipsec and pgbouncer.
    p = vpw()
    add("v_sql_and_files", "ALTER ROLE app_rw WITH LOGIN PASSWORD '%s';" % p, p)
    p = vpw()
    add("v_sql_and_files", "CREATE ROLE reporter LOGIN ENCRYPTED PASSWORD '%s' VALID UNTIL 'infinity';" % p, p)
    p = vpw()
    add("v_sql_and_files", "# /etc/ipsec.secrets\n%%any %%any : PSK \"%s\"" % p, p)
    p = vpw()
    add("v_sql_and_files", "carol : XAUTH \"%s\"" % p, p)
    h = "md5" + vs(HEX, 32)
    add("v_sql_and_files", "; auth_file = /etc/pgbouncer/userlist.txt\n\"app\" \"%s\"\n\"ops\" \"%s\"" % (h, h), h)
    u, p = vs(HEX, 8), vs(HEX, 8)
    add("v_sql_and_files", "BUNDLE_GEMS__GRAPHQL__PRO\nSet for the current user (/home/ci/.bundle/config): \"%s:%s\"" % (u, p), p)
    # Key files.
    k = vmixed(B64, 140)
    add("v_key_files", "untrusted comment: signify secret key\n%s" % k, k)
    k = vmixed(B64, 140)
    add("v_key_files", "$ cat ~/.rsign/rsign.key\nuntrusted comment: rsign encrypted secret key\n%s" % k, k)
    # Positional secrets of known calls.
    p = vmixed(B62, 32)
    add("v_positional", "const t = jwt.sign({ sub: user.id }, '%s', { expiresIn: '1h' });" % p, p)
    p = vmixed(B62, 32)
    add("v_positional", 'mac := hmac.New(sha256.New, []byte("%s"))' % p, p)
    p = vmixed(B62, 28)
    add("v_positional", "$sig = hash_hmac('sha256', $payload, '%s');" % p, p)
    p = vpw()
    add("v_positional", 'Connection c = DriverManager.getConnection(url, "app", "%s");' % p, p)
    p = vpw()
    add("v_positional", '$db = mysqli_connect("db.internal", "shop", "%s", "shop");' % p, p)
    # Pairs and password fields.
    p = vpw()
    add("v_auth_pair", "es = Elasticsearch(hosts, http_auth=('elastic', '%s'))" % p, p)
    p = vpw()
    add("v_auth_pair", 'r = httpx.get(url, auth=("svc-metrics", "%s"))' % p, p)
    p = vpw()
    add("v_ui_field", "await page.getByLabel('Password').fill('%s');" % p, p)
    p = vpw()
    add("v_ui_field", "cy.get('input[name=password]').type('%s')" % p, p)
    p = vpw()
    add("v_ui_field", 'driver.find_element(By.NAME, "passwd").send_keys("%s")' % p, p)
    # Tables.
    t = vmixed(B62, 32)
    add("v_table", "| host | api key |\n|---|---|\n| prod | `%s` |" % t, t)
    p1, p2 = vpw(), vpw()
    add("v_table", "| Account | Password | Notes |\n|:--|:--|:--|\n| root | %s | rotate |\n| ops | %s | |" % (p1, p2), p1, p2)
    # Multi-word and prefixed keys in prose and columns.
    t = vmixed(B62, 34)
    add("v_prose_key", "Use the client secret %s for the staging app." % t, t)
    p = vmixed(B62, 16)
    add("v_prose_key", "Key         Value\n---         -----\ndb_password %s" % p, p)
    t = vs(HEX, 40)
    add("v_prose_key", "  api_token\t%s" % t, t)
    # Cookies.
    t = vs(LO + DG, 26)
    add("v_cookie", "Cookie: PHPSESSID=%s; lang=en" % t, t)
    t = vmixed(B62, 40)
    add("v_cookie", "curl -b 'sessionid=%s' https://app.example.com/api/me" % t, t)
    # Credentials in prose.
    p = vpw()
    add("v_prose_creds", "the login for grafana is admin / %s" % p, p)
    p = vpw()
    add("v_prose_creds", "credentials: deploy:%s" % p, p)
    # Literal fallbacks.
    t = vmixed(B62, 32)
    add("v_fallback", 'const apiKey = process.env.API_KEY ?? "%s";' % t, t)
    p = vpw()
    add("v_fallback", 'password = os.environ.get("DB_PASSWORD") or "%s"' % p, p)
    p = vpw()
    add("v_fallback", "    POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:-%s}" % p, p)
    # Encoded.
    u, p = "svc-backup", vpw()
    add("v_encoded", "$ echo -n '%s:%s' | base64\n%s" % (u, p, b64(u + ":" + p)), p, b64(u + ":" + p))
    env = "DB_HOST=db.internal\nSTRIPE_WEBHOOK_SECRET=%s\n" % vmixed(B62, 32)
    add("v_encoded", "SECRETS_B64 is the base64 of the env file: %s" % b64(env), b64(env))
    p = vpw()
    add("v_encoded", "$ vault kv get -field=password secret/prod/db\n%s" % p, p)
    t = b64(vpw())
    add("v_encoded", "$ kubectl -n prod get secret api -o go-template='{{.data.token}}'\n%s" % t, t)
    p = vpw()
    add("v_encoded", '{"log": "{\\\"client_secret\\\": \\\"%s\\\"}"}' % p, p)
    # Smuggling: adjacent literals, escapes, blocks, second table column.
    t = vmixed(B62, 40)
    add("v_smuggling", 'OPENAI_API_KEY = ("sk-proj-"\n    "%s")' % t, t)
    p = vpw()
    add("v_smuggling", '{"\\u0070assword": "%s"}' % p, p)
    p = vpw()
    add("v_smuggling", "<input name=pass&#119;ord value=x> pass&#119;ord=%s" % p, p)
    p = vmixed(B62, 18)
    add("v_smuggling", "smtp:\n  password:\n    %s\n  port: 587" % p, p)
    p = vpw()
    add("v_smuggling", 'db_password = """\n%s\n"""' % p, p)
    p, t = vpw(), vmixed(B62, 28)
    add("v_smuggling", "| svc | password | token |\n|---|---|---|\n| api | %s | %s |" % (p, t), p, t)
    # Call with a callee expression: `require('x')('id', 'secret')`.
    t = vmixed(B62, 32)
    add("v_callee_expr", "const client = require('twilio')('SK%s', '%s');" % (vs(HEX, 32), t), t)
    return rows


def variants_negative():
    """(family, text) rows that must come back unchanged."""
    rows = []

    def add(fam, text):
        rows.append((fam, text))

    add("v_setenv", "setenv PATH /usr/local/bin:$PATH")
    add("v_setenv", "launchctl setenv GITLAB_TOKEN $GITLAB_TOKEN")
    add("v_foreign_first", "senha_hash = bcrypt(senha)")
    add("v_foreign_first", "contraseña_longitud_minima: 12")
    add("v_key_qualifier", "MJ_APIKEY_PUBLIC=%s" % vs(HEX, 8))
    add("v_angle_value", "DB_PASSWORD=<db password>")
    add("v_angle_value", "password: <your-password>")
    add("v_dotted_token", "the token settings.AUTH_TOKEN_TTL is read at start-up")
    add("v_url_token", "git clone ssh://git@github.com/acme/infra.git")
    add("v_url_token", "https://deploy-bot@gitlab.example.com/acme/app.git")
    add("v_url_token", "See https://forum.example.com/t/how-to-rotate-keys/1234 for details")
    add("v_tool_flag", "docker build -t registry.example.com/app:1.4.2 .")
    add("v_tool_flag", "xfreerdp /v:jump.example.com /u:admin /p:$RDP_PASSWORD")
    add("v_sql_and_files", "ALTER ROLE app PASSWORD NULL;")
    add("v_sql_and_files", "alice : RSA alice.key.pem")
    add("v_key_files", "untrusted comment: minisign public key 4B1F0E8A\nRWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3")
    add("v_key_files", '"private_key": "-----BEGIN PRIVATE KEY-----\\n...\\n-----END PRIVATE KEY-----\\n"')
    add("v_key_files", "-----BEGIN OPENSSH PRIVATE KEY-----\n<paste the key here>\n-----END OPENSSH PRIVATE KEY-----")
    add("v_public_key", "<script>posthog.init('phc_%s', {api_host: 'https://us.i.posthog.com'})</script>" % vmixed(B62, 43))
    add("v_positional", 'jwt.encode(payload, settings.JWT_SECRET, algorithm="HS256")')
    add("v_positional", "digest = hmac.new(key, msg, hashlib.sha256).hexdigest()")
    add("v_auth_pair", "requests.get(url, auth=(user, password))")
    add("v_auth_pair", 'auth=("admin", os.environ["ADMIN_PASSWORD"])')
    add("v_ui_field", "await page.fill('#password', process.env.E2E_PASSWORD);")
    add("v_ui_field", "await page.fill('#email', 'qa@example.com');")
    add("v_table", "| field | type |\n|---|---|\n| password | string |\n| token | string |")
    add("v_table", "| setting | password policy |\n|---|---|\n| min length | 12 characters |")
    add("v_prose_key", "rotate the access token every 3600 seconds")
    add("v_prose_key", "token_count   1234567890123")
    add("v_cookie", "Cookie: theme=dark; lang=en-US")
    add("v_cookie", "Set-Cookie: session_timeout=3600; Path=/")
    add("v_prose_creds", "credentials are in vault/prod, login page is /auth/login")
    add("v_fallback", 'const token = process.env.TOKEN || "";')
    add("v_fallback", 'timeout = env.TIMEOUT || "30"')
    add("v_fallback", "    POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:-}")
    add("v_smuggling", "SECRET_KEY = os.environ[\"SECRET_KEY\"]\nif not SECRET_KEY:\n    raise RuntimeError(\"unset\")")
    add("v_smuggling", "password:\n  min_length: 12\n  require_digit: true")
    add("v_smuggling", 'print("token" "s remaining: 12")')
    add("v_encoded", "$ echo 'hello world' | base64\naGVsbG8gd29ybGQK")
    add("v_encoded", "$ echo aGVsbG8gZnJvbSBjaQ== | base64 -d\nhello from ci")
    add("v_encoded", "$ kubectl get secret -o jsonpath='{.items[*].metadata.name}'\ndb-creds api-keys")
    add("v_encoded", "//# sourceMappingURL=data:application/json;charset=utf-8;base64,%s" % b64('{"version":3,"sources":["a.ts"],"mappings":"AAAA"}'))
    return rows


def main():
    with open(os.path.join(HERE, "positive.jsonl"), "w") as f:
        for i in range(264):
            cat, gen = POSITIVE[i % len(POSITIVE)]
            text, secrets = gen()
            f.write(json.dumps({"category": cat, "text": text, "secrets": secrets}) + "\n")
        for cat, text, secrets in variants_positive():
            f.write(json.dumps({"category": cat, "text": text, "secrets": secrets}) + "\n")
    with open(os.path.join(HERE, "negative.jsonl"), "w") as f:
        for i in range(252):
            cat, gen = NEGATIVE[i % len(NEGATIVE)]
            f.write(json.dumps({"category": cat, "text": gen()}) + "\n")
        for cat, text in variants_negative():
            f.write(json.dumps({"category": cat, "text": text}) + "\n")


if __name__ == "__main__":
    main()
