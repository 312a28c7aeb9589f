//! Credentials passed on a command line: `-u user:pass`, per-tool
//! password flags, positional passwords of tools that take one, and
//! connection strings written as arguments.

use super::context::password_literal;
use super::{Hit, Memo, RuleSpec, Window, rule};

/// Which short flags carry a password, per tool: `-p` means a port to
/// ssh and docker run, a password to docker login and mongosh.
const TOOL_FLAGS: &[(&str, &str)] = &[
    ("login", "p"),
    ("mongo", "p"),
    ("mongosh", "p"),
    ("mongodump", "p"),
    ("mongorestore", "p"),
    ("mongoimport", "p"),
    ("mongoexport", "p"),
    ("sshpass", "p"),
    ("sqlcmd", "P"),
    ("bcp", "P"),
    ("mosquitto_pub", "P"),
    ("mosquitto_sub", "P"),
    ("zip", "P"),
    ("7z", "p"),
    ("7za", "p"),
    ("rar", "p"),
    ("unrar", "p"),
    ("ldapsearch", "w"),
    ("ldapadd", "w"),
    ("ldapmodify", "w"),
    ("ldapdelete", "w"),
    ("ldappasswd", "w"),
    ("ldapwhoami", "w"),
    ("redis-cli", "a"),
    ("psexec", "p"),
    ("openconnect", "p"),
    ("rabbitmqadmin", "p"),
    ("influx", "p"),
    ("cf", "p"),
    ("oc", "p"),
    ("az", "p"),
    ("keytool", "k"),
    ("ssh-keygen", "NP"),
    ("rdesktop", "p"),
    // The Codecov uploaders take the upload token with `-t`.
    ("codecov", "t"),
    ("codecovcli", "t"),
];

/// Tools also run as a script fetched from their own site
/// (`bash <(curl -s https://codecov.io/bash) -t …`).
const FETCHED_TOOLS: &[&str] = &["codecov"];

/// The flag at the hit belongs to a tool that takes a password with it.
fn tool_flag(h: &Hit<'_>) -> bool {
    let hay = h.haystack;
    let whole = h.caps.get(0).expect("group 0");
    let flag = hay[whole.start()..]
        .trim_start()
        .as_bytes()
        .get(1)
        .copied()
        .unwrap_or(0);
    let line_start = hay[..whole.start()]
        .rfind(['\n', '|', ';', '&'])
        .map_or(0, |i| i + 1);
    let command = &hay[line_start..whole.start()];
    let allowed = command.split_whitespace().any(|word| {
        // Prompts, quotes and brackets before the tool: `$ `, `` ` ``, `«`, `(`.
        let word = word.trim_start_matches(|c: char| !c.is_alphanumeric() && !matches!(c, '.' | '/' | '\\'));
        let name = word.rsplit(['/', '\\']).next().unwrap_or(word);
        let name = name.trim_end_matches(')');
        let name = name.strip_suffix(".exe").unwrap_or(name).to_ascii_lowercase();
        // `bash <(curl -s https://codecov.io/bash) -t …`: the tool is the
        // script fetched from its own site.
        let lower = word.to_ascii_lowercase();
        let fetched = |tool: &str| {
            FETCHED_TOOLS.contains(&tool)
                && lower.contains("://")
                && lower
                    .match_indices(tool)
                    .any(|(i, _)| lower.as_bytes().get(i + tool.len()) == Some(&b'.'))
        };
        TOOL_FLAGS
            .iter()
            .any(|(tool, flags)| (name == *tool || fetched(tool)) && flags.as_bytes().contains(&flag))
    });
    allowed && password_literal(h)
}

/// Necessary for SQL's `PASSWORD '…'`: blanks, then a quote, after the
/// word.
fn quote_follows(text: &str, _start: usize, end: usize, _memo: &Memo) -> bool {
    let rest = text[end..].trim_start_matches([' ', '\t']);
    rest.len() < text.len() - end && rest.starts_with(['\'', '"'])
}

/// A quoted or bare command-line argument, in groups 1..=3.
macro_rules! arg {
    () => {
        r#"(?:'([^'\n]+)'|"([^"\n]+)"|([^\s'"\-][^\s'"]*))"#
    };
}

/// The command-line rules in priority order.
pub fn rules() -> Vec<RuleSpec> {
    vec![
        // --- command-line flags ---------------------------------------------
        RuleSpec {
            window: Some(Window::line(2, 1024)),
            ..rule(
                "password",
                r#"(?:^|[\s"'])(?:-u|--user|-a|--auth|--basic-auth|--creds?|--credentials|--proxy-user)(?:[ \t]+|=)["']?[^\s:"'@/$]+:([^\s"'@]+)"#,
                1,
                None,
                &[
                    "-u",
                    "--user",
                    "-a",
                    "--auth",
                    "--basic-auth",
                    "--cred",
                    "--proxy-user",
                ],
                Some(password_literal),
            )
        },
        rule(
            "password",
            concat!(r#"[ \t]-(?:p|P|w|a|k|N|t)(?:[ \t]+|=)?"#, arg!()),
            1,
            None,
            &[" -p", " -w", " -a", " -k", " -n", " -t"],
            Some(tool_flag),
        ),
        rule(
            "password",
            concat!(
                r#"\b(?:mysql|mysqldump|mysqladmin|mariadb)\b[^\n|;&]*?[ \t]-p"#,
                arg!()
            ),
            1,
            None,
            &["mysql", "mariadb"],
            Some(password_literal),
        ),
        rule(
            "password",
            r#"\bsqlplus[ \t]+(?:-[A-Za-z]+[ \t]+)*["']?[A-Za-z0-9_$#.]+/([^\s@'"/]+)(?:@|\s|["']|$)"#,
            1,
            None,
            &["sqlplus"],
            Some(password_literal),
        ),
        rule(
            "password",
            r#"(?:^|\s)(?:-U|--user)[ \t=]+["']?[^\s%"']+%([^\s"']+)"#,
            1,
            None,
            &["-u", "--user"],
            Some(password_literal),
        ),
        rule(
            "password",
            r#"\bpass:([^\s"']+)"#,
            1,
            None,
            &["pass:"],
            Some(password_literal),
        ),
        rule(
            "secret",
            concat!(
                r#"\bgh[ \t]+secret[ \t]+set\b[^\n]*?[ \t](?:--body|-b)(?:[ \t]+|=)"#,
                arg!()
            ),
            1,
            None,
            &["secret"],
            Some(password_literal),
        ),
        // --- positional arguments of tools that take a password ----------
        // PowerShell: `ConvertTo-SecureString 'pw' -AsPlainText -Force`.
        rule(
            "password",
            r#"(?i)\bConvertTo-SecureString[ \t]+(?:-String[ \t]+)?(?:'([^'\n]+)'|"([^"\n]+)")"#,
            1,
            None,
            &["convertto-securestring"],
            Some(password_literal),
        ),
        rule(
            "password",
            concat!(
                r#"\b(?:echo|printf)[ \t]+(?:-[ne]+[ \t]+)?"#,
                arg!(),
                r#"[ \t]*\|[ \t]*(?:sudo\b[^\n|]*[ \t]-S\b|[^\n|]*--password-stdin|passwd\b[^\n|]*--stdin|chpasswd)"#
            ),
            1,
            None,
            &["echo", "printf"],
            Some(password_literal),
        ),
        rule(
            "password",
            concat!(
                r#"\brabbitmqctl[ \t]+(?:add_user|change_password)[ \t]+\S+[ \t]+"#,
                arg!()
            ),
            1,
            None,
            &["rabbitmqctl"],
            Some(password_literal),
        ),
        rule(
            "password",
            concat!(
                r#"(?m)\bhtpasswd[ \t]+-[A-Za-z]*b[A-Za-z]*(?:[ \t]+[^\s|;&]+)+?[ \t]+"#,
                arg!(),
                r#"[ \t]*(?:$|[|;&])"#
            ),
            1,
            None,
            &["htpasswd"],
            Some(password_literal),
        ),
        rule(
            "password",
            concat!(r#"(?i)\bnet[ \t]+use\b[^\n]*?[ \t]"#, arg!(), r#"[ \t]+/user:"#),
            1,
            None,
            &["net use"],
            Some(password_literal),
        ),
        rule(
            "password",
            r#"(?i)(?:\bnet[ \t]+use\b[^\n]*?/user:\S+[ \t]+([^\s/"'][^\s"']*)|/pass(?:word)?:("[^"\n]+"|[^\s"]+))"#,
            1,
            None,
            &["net use", "/pass"],
            Some(password_literal),
        ),
        rule(
            "secret",
            concat!(
                r#"\b(?:mc[ \t]+(?:alias[ \t]+set|config[ \t]+host[ \t]+add)[ \t]+\S+[ \t]+\S+[ \t]+\S+|b2[ \t]+authorize[-_]account[ \t]+\S+)[ \t]+"#,
                arg!()
            ),
            1,
            None,
            &["mc ", "b2 "],
            Some(password_literal),
        ),
        rule(
            "password",
            r#"(?i)\bexpect[ \t]+"[^"\n]*pass[^"\n]*"\s*\n\s*send[ \t]+"([^"\n]+?)(?:\\r|\\n)?""#,
            1,
            None,
            &["expect"],
            Some(password_literal),
        ),
        // FreeRDP: `xfreerdp /v:host /u:user /p:'pw'`.
        rule(
            "password",
            concat!(r#"(?i)\b(?:x|w|sdl-)?freerdp3?\b[^\n]*?[ \t]/p:"#, arg!()),
            1,
            None,
            &["freerdp"],
            Some(password_literal),
        ),
        // SQL: `CREATE USER x WITH PASSWORD '…'`, `ALTER ROLE x PASSWORD '…'`.
        RuleSpec {
            window: Some(Window {
                filter: Some(quote_follows),
                ..Window::line(512, 1024)
            }),
            ..rule(
                "password",
                r#"(?i)\b(?:user|role|login|with)\b[^\n;]*?\b(?:encrypted[ \t]+)?password[ \t]+(?:'([^'\n]+)'|"([^"\n]+)")"#,
                1,
                None,
                &["password"],
                Some(password_literal),
            )
        },
        rule(
            "password",
            r#"(?i)\bidentified[ \t]+by[ \t]+(?:'([^'\n]+)'|"([^"\n]+)"|([^\s;'"]+))"#,
            1,
            None,
            &["identified"],
            Some(password_literal),
        ),
        // Go MySQL DSN: `user:pass@tcp(host:3306)/db`.
        rule(
            "url_password",
            r#"[A-Za-z0-9_.\-]+:([^\s@"'/:]+)@(?:tcp|unix|udp)\("#,
            1,
            None,
            &["@tcp(", "@unix(", "@udp("],
            Some(password_literal),
        ),
        // Bundler: `BUNDLE_GEMS__EXAMPLE__COM=user:pass`.
        rule(
            "password",
            r#"\bBUNDLE_[A-Z0-9_]+__[A-Z0-9_]+[ \t]*[=:][ \t]*["']?[^\s:"']+:([^\s"']+)"#,
            1,
            None,
            &["bundle_"],
            Some(password_literal),
        ),
    ]
}
