//! Paths and what they reach: credentials (refused as arguments in every mode), the files
//! and trees a write or delete must never touch (system directories, home, start-up files,
//! devices, the repository's history), and whether a path stays inside the working
//! directory.

/// Lexically normalized path: (is_absolute, components). `..` pops (saturating at `/` for
/// absolute paths, kept as a leading `..` for relative ones).
pub(super) fn normalize(path: &str) -> (bool, Vec<&str>) {
    let absolute = path.starts_with('/');
    let mut comps: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if comps.last().is_some_and(|l| *l != "..") {
                    comps.pop();
                } else if !absolute {
                    comps.push("..");
                }
            }
            other => comps.push(other),
        }
    }
    (absolute, comps)
}

const SYSTEM_DIRS: &[&str] = &[
    "etc", "usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "boot", "dev", "proc", "sys",
];

/// Why deleting/chmodding `path` recursively would be catastrophic, if it would.
pub(super) fn dangerous_tree(path: &str) -> Option<&'static str> {
    if path.is_empty() {
        return None;
    }
    let (absolute, comps) = normalize(path);
    if absolute {
        if comps.is_empty() {
            return Some("the filesystem root");
        }
        if comps.len() == 1 {
            return Some("a top-level system directory");
        }
        if matches!(comps[0], "home" | "Users") && comps.len() == 2 {
            return Some("a home directory");
        }
        if SYSTEM_DIRS.contains(&comps[0]) {
            return Some("a system directory");
        }
    } else {
        if comps.is_empty() {
            return Some("the whole working directory");
        }
        if comps.iter().all(|c| *c == "..") {
            return Some("a parent of the working directory");
        }
    }
    if comps.last() == Some(&".git") {
        return Some("the git repository's history");
    }
    None
}

const STARTUP_FILES: &[&str] = &[
    ".bashrc",
    ".bash_profile",
    ".bash_login",
    ".bash_logout",
    ".profile",
    ".zshrc",
    ".zshenv",
    ".zprofile",
    ".zlogin",
    ".inputrc",
    ".xinitrc",
    ".xprofile",
];

const HISTORY_FILES: &[&str] = &[
    ".bash_history",
    ".zsh_history",
    ".history",
    ".sh_history",
    ".python_history",
    ".node_repl_history",
];

const HARMLESS_DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/stdout",
    "/dev/stderr",
    "/dev/tty",
    "/dev/fd/1",
    "/dev/fd/2",
];

/// Why writing to (or truncating, or deleting) `path` would be catastrophic, if it would.
pub(crate) fn protected_write(path: &str) -> Option<&'static str> {
    let (absolute, comps) = normalize(path);
    if absolute && comps.first() == Some(&"dev") {
        let joined = format!("/{}", comps.join("/"));
        if HARMLESS_DEVICES.contains(&joined.as_str()) {
            return None;
        }
        return Some("a device (raw disks and terminals are off limits)");
    }
    if absolute && comps.first().is_some_and(|c| SYSTEM_DIRS.contains(c)) {
        return Some("a system path");
    }
    if let Some(last) = comps.last() {
        if STARTUP_FILES.contains(last) {
            return Some("a shell startup file");
        }
        if HISTORY_FILES.contains(last) {
            return Some("shell history (wiping history hides what happened)");
        }
    }
    if comps.contains(&".ssh") {
        return Some("the SSH directory");
    }
    if comps.windows(2).any(|w| w == [".git", "hooks"]) {
        return Some("git hooks (they run on later git commands)");
    }
    match dangerous_tree(path) {
        Some(d @ ("the filesystem root" | "a top-level system directory" | "a home directory")) => Some(d),
        _ => None,
    }
}

/// What credential `path` names, if any.
fn secret_path(path: &str) -> Option<&'static str> {
    let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    let last = *comps.last()?;
    const KEYS: &[&str] = &[
        "id_rsa",
        "id_dsa",
        "id_ecdsa",
        "id_ed25519",
        "id_ecdsa_sk",
        "id_ed25519_sk",
        "identity",
    ];
    if KEYS.contains(&last) {
        return Some("an SSH private key");
    }
    if comps.first() == Some(&"proc") && comps.len() >= 3 && matches!(last, "environ" | "mem" | "auxv") {
        return Some("a process's environment or memory (where MCP_BRIDGE_KEY and tokens may live)");
    }
    if comps
        .windows(2)
        .any(|w| w[0] == "mcp-bridge" && w[1].starts_with("bridge.db"))
    {
        return Some("the bridge's own database or key");
    }
    if let Some(i) = comps.iter().position(|c| *c == ".ssh")
        && i + 1 < comps.len()
        && !last.ends_with(".pub")
        && last != "known_hosts"
    {
        return Some("a file in ~/.ssh");
    }
    if comps.windows(2).any(|w| w[0] == ".aws" && w[1] == "credentials") {
        return Some("AWS credentials");
    }
    if comps.windows(2).any(|w| {
        w[0] == "etc"
            && matches!(
                w[1],
                "shadow" | "gshadow" | "shadow-" | "sudoers" | "sudoers.d" | "master.passwd"
            )
    }) {
        return Some("a system password or sudo file");
    }
    if comps
        .windows(2)
        .any(|w| w[0] == "ssh" && w[1].starts_with("ssh_host_") && w[1].ends_with("_key"))
    {
        return Some("an SSH host key");
    }
    if comps.contains(&".gnupg") {
        return Some("the GnuPG keyring");
    }
    if comps.windows(2).any(|w| {
        (w[0] == ".docker" && w[1] == "config.json")
            || (w[0] == ".kube" && w[1] == "config")
            || (w[0] == ".cargo" && w[1].starts_with("credentials"))
    }) {
        return Some("registry or cluster credentials");
    }
    if last == ".env"
        || (last.starts_with(".env.")
            && !matches!(
                last,
                ".env.example" | ".env.sample" | ".env.template" | ".env.dist" | ".env.defaults"
            ))
    {
        return Some("an .env secrets file");
    }
    if matches!(
        last,
        ".netrc" | ".git-credentials" | ".pgpass" | ".npmrc" | ".pypirc" | ".vault-token" | ".my.cnf"
    ) {
        return Some("a credentials file");
    }
    None
}

/// Checks an argument and its `=value` / `@file` parts for credential paths.
pub(crate) fn secret_in_arg(arg: &str) -> Option<&'static str> {
    let mut candidates = vec![arg];
    if let Some((_, v)) = arg.split_once('=') {
        candidates.push(v);
    }
    if let Some((_, v)) = arg.split_once('@') {
        candidates.push(v);
    }
    if let Some(v) = arg.strip_prefix("file://") {
        candidates.push(v);
    }
    candidates.into_iter().find_map(secret_path)
}

/// A relative path that stays beneath the working directory (lexically).
pub(crate) fn confined(path: &str) -> bool {
    let (absolute, comps) = normalize(path);
    !absolute && !path.starts_with('~') && !comps.contains(&"..")
}
