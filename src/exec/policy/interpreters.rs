//! Shells and language interpreters: which family a program belongs to, where its inline
//! code is (`python -c`, `node -e`, `sh -c`), whether it reads a program from standard
//! input, and the yolo-mode scan of inline code for commands that destroy or leak.

use crate::exec::parse::Refusal;
use crate::exec::policy::args::{basename, positionals};
use crate::exec::policy::fatal;

pub(super) const SHELLS: &[&str] = &[
    "sh", "bash", "zsh", "dash", "ksh", "mksh", "pdksh", "fish", "csh", "tcsh", "ash", "yash", "rbash",
];

pub(super) fn interpreter_family(name: &str) -> Option<&'static str> {
    let family = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    Some(match family {
        "python" | "pypy" => "python",
        "perl" => "perl",
        "ruby" | "irb" => "ruby",
        "node" | "nodejs" | "deno" | "bun" => "node",
        "php" => "php",
        "lua" | "luajit" => "lua",
        "tclsh" | "wish" => "tcl",
        "Rscript" => "R",
        "osascript" => "osascript",
        "pwsh" | "powershell" => "powershell",
        _ => return None,
    })
}

/// The inline-code option of an interpreter, if `args` use one: returns the code.
pub(super) fn inline_code<'a>(family: &str, args: &'a [String]) -> Option<&'a str> {
    let flags: &[&str] = match family {
        "python" => &["-c"],
        "perl" => &["-e", "-E"],
        "ruby" => &["-e"],
        "node" => &["-e", "--eval", "-p", "--print"],
        "php" => &["-r"],
        "lua" => &["-e"],
        "R" => &["-e"],
        "osascript" => &["-e"],
        "powershell" => &["-c", "-Command", "-command", "-EncodedCommand"],
        _ => &[],
    };
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if a == "--" || !a.starts_with('-') {
            return None;
        }
        for f in flags {
            if a == *f {
                return Some(args.get(i + 1).map_or("", String::as_str));
            }
            // -c'code', -e'code', --eval=code
            if let Some(rest) = a.strip_prefix(f) {
                let rest = rest.strip_prefix('=').unwrap_or(rest);
                if !rest.is_empty() && f.len() == 2 {
                    return Some(rest);
                }
                if f.starts_with("--") && a.starts_with(&format!("{f}=")) {
                    return Some(rest);
                }
            }
        }
        // python -Bc 'code' style clusters
        if family == "python" && !a.starts_with("--") && a.ends_with('c') {
            return Some(args.get(i + 1).map_or("", String::as_str));
        }
        i += 1;
    }
    None
}

/// True when the program reads the program text to execute from standard input.
pub(crate) fn reads_program_from_stdin(argv: &[String]) -> bool {
    let Some(first) = argv.first() else {
        return false;
    };
    let name = basename(first);
    let args = &argv[1..];
    if SHELLS.contains(&name) {
        let mut i = 0;
        while i < args.len() {
            let a = args[i].as_str();
            if a == "-s" || a == "-" {
                return true;
            }
            if a == "--" {
                return args.get(i + 1).is_none_or(|x| x == "-");
            }
            if matches!(a, "-o" | "+o" | "-O" | "+O") {
                i += 2;
                continue;
            }
            if a.starts_with('-') || a.starts_with('+') {
                if !a.starts_with("--") && a.contains('c') {
                    return false;
                }
                i += 1;
                continue;
            }
            return false;
        }
        return true;
    }
    if let Some(family) = interpreter_family(name) {
        if inline_code(family, args).is_some() {
            return false;
        }
        if family == "python" && args.iter().any(|a| a == "-m") {
            return false;
        }
        let pos = positionals(args);
        return pos.is_empty() || pos[0] == "-";
    }
    false
}

pub(super) fn scan_inline_code(name: &str, code: &str) -> Result<(), Refusal> {
    const PATTERNS: &[&str] = &[
        "rm -rf",
        "rm -fr",
        "rm -r",
        "rmtree",
        "mkfs",
        "/dev/sd",
        "/dev/nvme",
        "/dev/hd",
        "/dev/vd",
        "/dev/mmcblk",
        "dd if=",
        "of=/dev",
        "os.system",
        "subprocess",
        "pty.spawn",
        "child_process",
        "execSync",
        "spawnSync",
        "execFile",
        "Runtime.getRuntime",
        "shell_exec",
        "passthru",
        "proc_open",
        "popen",
        "system(",
        "system ",
        "exec(",
        "exec ",
        "`",
        "%x",
        "/etc/shadow",
        ".ssh",
        "id_rsa",
        "id_ed25519",
        ".aws",
        ".env",
        "shutdown",
        "reboot",
        "poweroff",
        "kill -9",
        "killpg",
        "fork",
        ":(){",
        "eval(",
        "__import__",
        "sudo ",
        "chmod -R",
        "chown -R",
        "iptables",
        "crontab",
        "os.remove",
        "os.unlink",
        "unlinkSync",
        "rmSync",
        "rmdirSync",
        "fs.rm",
        "shutil",
        "base64",
        "b64decode",
        "Deno.run",
        "Deno.Command",
        "Bun.spawn",
        "io.popen",
        "os.execute",
    ];
    if let Some(p) = PATTERNS.iter().find(|p| code.contains(**p)) {
        return Err(fatal(format!(
            "inline {name} code contains \"{p}\", which may run commands, destroy files or read secrets; put the code in a file so it can be reviewed"
        )));
    }
    Ok(())
}
