//! The catastrophic list: commands refused in every mode, or refused in every mode with
//! these arguments (privilege changes, power-off, disk formatting, recursive deletes of
//! `/`, home or a parent, firewall changes, account and boot changes, ...). Program
//! families with rules of their own in every mode (`git`, `find`, `sed`, `awk`) are called
//! from here.

use crate::exec::parse::{Refusal, show};
use crate::exec::policy::args::{cmdline, has_flag, positionals};
use crate::exec::policy::paths::{dangerous_tree, normalize, protected_write};
use crate::exec::policy::programs::{awk_universal, find_universal, git_universal, sed_universal};
use crate::exec::policy::{Ctx, fatal};

const BUILTINS: &[&str] = &[
    "eval",
    "source",
    ".",
    "exec",
    "command",
    "builtin",
    "export",
    "unset",
    "set",
    "alias",
    "unalias",
    "history",
    "trap",
    "shopt",
    "declare",
    "typeset",
    "local",
    "readonly",
    "let",
    "ulimit",
    "umask",
    "wait",
    "fg",
    "bg",
    "jobs",
    "disown",
    "read",
    "mapfile",
    "readarray",
    "hash",
    "enable",
    "exit",
    "return",
    "shift",
    "getopts",
    "fc",
    ":",
    "pushd",
    "popd",
    "dirs",
    "suspend",
    "logout",
    "complete",
    "compgen",
    "bind",
];

/// Commands refused in every mode (or refused with these arguments in every mode).
pub(super) fn catastrophic(name: &str, args: &[String], ctx: &mut Ctx) -> Result<(), Refusal> {
    let pos = positionals(args);
    match name {
        "sudo" | "su" | "doas" | "pkexec" | "run0" | "sg" | "newgrp" | "setpriv" | "capsh" | "chroot"
        | "unshare" | "nsenter" | "machinectl" | "systemd-run" | "runuser" | "ksu" | "calife" | "super" => {
            return Err(fatal(format!(
                "\"{name}\" changes user, privileges or namespaces"
            )));
        }
        n if BUILTINS.contains(&n) => {
            return Err(Refusal::new(format!(
                "\"{name}\" is a shell builtin; commands run without a shell, so it cannot work (and eval/source/exec would hide the real command)"
            )));
        }
        "shutdown" | "reboot" | "halt" | "poweroff" | "kexec" | "telinit" | "init" => {
            return Err(fatal(format!("\"{name}\" shuts down or reboots the machine")));
        }
        "systemctl" | "loginctl"
            if pos.iter().any(|a| {
                matches!(
                    *a,
                    "reboot"
                        | "poweroff"
                        | "halt"
                        | "kexec"
                        | "suspend"
                        | "hibernate"
                        | "hybrid-sleep"
                        | "rescue"
                        | "emergency"
                        | "isolate"
                        | "soft-reboot"
                        | "kill-user"
                        | "terminate-user"
                        | "kill-session"
                        | "terminate-session"
                )
            }) =>
        {
            return Err(fatal(format!("\"{name}\" would stop the machine or sessions")));
        }
        n if n.starts_with("mkfs")
            || matches!(
                n,
                "mke2fs"
                    | "mkswap"
                    | "wipefs"
                    | "fdisk"
                    | "sfdisk"
                    | "cfdisk"
                    | "gdisk"
                    | "sgdisk"
                    | "parted"
                    | "blkdiscard"
                    | "hdparm"
                    | "badblocks"
                    | "cryptsetup"
                    | "losetup"
                    | "mount"
                    | "umount"
                    | "swapoff"
                    | "swapon"
                    | "debugfs"
                    | "tune2fs"
                    | "e2fsck"
                    | "fsck"
                    | "zpool"
                    | "lvremove"
                    | "vgremove"
                    | "pvremove"
                    | "mdadm"
            ) =>
        {
            return Err(fatal(format!("\"{name}\" formats, partitions or mounts disks")));
        }
        "dd" => {
            for a in args {
                if let Some(target) = a.strip_prefix("of=")
                    && let Some(what) = protected_write(target)
                {
                    return Err(fatal(format!("\"dd {a}\" writes to {what}")));
                }
            }
        }
        "shred" | "truncate" | "srm" | "wipe" => {
            for p in &pos {
                if let Some(what) = protected_write(p).or_else(|| dangerous_tree(p)) {
                    return Err(fatal(format!("\"{name} {}\" destroys {what}", show(p))));
                }
            }
        }
        "rm" | "rmdir" | "unlink" => {
            if has_flag(args, "", &["--no-preserve-root"]) {
                return Err(fatal(
                    "\"rm --no-preserve-root\" exists only to delete the filesystem root",
                ));
            }
            let recursive = name == "rm" && has_flag(args, "rR", &["--recursive"]);
            for p in &pos {
                if let Some(what) = protected_write(p) {
                    return Err(fatal(format!("\"{}\" deletes {what}", cmdline(name, args))));
                }
                if recursive && let Some(what) = dangerous_tree(p) {
                    return Err(fatal(format!(
                        "\"{}\" recursively deletes {what}",
                        cmdline(name, args)
                    )));
                }
                if p.contains('*') && normalize(p).1.len() <= 2 {
                    return Err(fatal(format!(
                        "\"{name} {}\" looks like a wildcard delete near the root",
                        show(p)
                    )));
                }
            }
        }
        "chmod" | "chown" | "chgrp" | "chattr" | "setfacl" => {
            for p in &pos {
                if let Some(what) = dangerous_tree(p).or_else(|| protected_write(p)) {
                    return Err(fatal(format!(
                        "\"{name} … {}\" changes permissions of {what}",
                        show(p)
                    )));
                }
            }
        }
        "crontab" if args.len() != 1 || args[0] != "-l" => {
            return Err(fatal(
                "\"crontab\" (other than -l) replaces or removes scheduled jobs",
            ));
        }
        "kill" => {
            let mut signal_given = false;
            let mut i = 0;
            while i < args.len() {
                let a = args[i].as_str();
                if a == "--" {
                    if args[i + 1..].iter().any(|x| x == "-1") {
                        return Err(fatal("\"kill -- -1\" signals every process of the account"));
                    }
                    break;
                }
                if matches!(a, "-s" | "-n" | "--signal") {
                    signal_given = true;
                    i += 2;
                    continue;
                }
                if a == "-1" && signal_given {
                    return Err(fatal("\"kill … -1\" signals every process of the account"));
                }
                if a.starts_with('-') {
                    signal_given = true;
                }
                i += 1;
            }
        }
        "killall" | "pkill" if pos.is_empty() => {
            return Err(fatal(format!("\"{name}\" without a process name")));
        }
        "killall5" => return Err(fatal("\"killall5\" signals every process")),
        "iptables" | "ip6tables" | "iptables-legacy" | "ip6tables-legacy" | "iptables-nft"
        | "ip6tables-nft" | "iptables-restore" | "ip6tables-restore" | "nft" | "ufw" | "firewall-cmd"
        | "ebtables" | "arptables" => {
            let listing = match name {
                "nft" => pos.first().is_some_and(|a| *a == "list"),
                "ufw" => pos.first().is_some_and(|a| *a == "status"),
                "firewall-cmd" => args
                    .iter()
                    .all(|a| a.starts_with("--list") || a.starts_with("--get") || a == "--state"),
                _ => {
                    !args.is_empty()
                        && args.iter().all(|a| {
                            matches!(
                                a.as_str(),
                                "-L" | "-S"
                                    | "--list"
                                    | "--list-rules"
                                    | "-n"
                                    | "-v"
                                    | "--line-numbers"
                                    | "-t"
                                    | "nat"
                                    | "filter"
                                    | "mangle"
                                    | "raw"
                                    | "INPUT"
                                    | "OUTPUT"
                                    | "FORWARD"
                            )
                        })
                }
            };
            if !listing {
                return Err(fatal(format!("\"{name}\" changes the firewall")));
            }
        }
        "passwd"
        | "chpasswd"
        | "useradd"
        | "userdel"
        | "usermod"
        | "adduser"
        | "deluser"
        | "groupadd"
        | "groupdel"
        | "groupmod"
        | "visudo"
        | "vipw"
        | "vigr"
        | "modprobe"
        | "insmod"
        | "rmmod"
        | "chsh"
        | "chfn"
        | "update-alternatives"
        | "grub-install"
        | "update-grub"
        | "efibootmgr" => {
            return Err(fatal(format!(
                "\"{name}\" changes accounts, boot or kernel configuration"
            )));
        }
        "sysctl"
            if args
                .iter()
                .any(|a| a == "-w" || a.contains('=') || a == "-p" || a == "--load") =>
        {
            return Err(fatal("\"sysctl -w\" changes kernel settings"));
        }
        "vi" | "vim" | "nvim" | "view" | "vimdiff" | "ex" | "nano" | "pico" | "emacs" | "emacsclient"
        | "joe" | "mcedit" | "less" | "more" | "most" | "pg" | "man" | "info" | "top" | "htop" | "btop"
        | "screen" | "tmux" | "ed" | "mc" | "ranger" | "nnn" => {
            return Err(Refusal::new(format!(
                "\"{name}\" is interactive (pagers and editors can also run shell commands); there is no terminal — use cat, head or sed -n instead"
            )));
        }
        "watch" => {
            return Err(Refusal::new(
                "\"watch\" re-runs its argument through sh -c until killed; run the command once instead",
            ));
        }
        "script" | "strace" | "ltrace" | "gdb" | "lldb" | "parallel" | "expect" | "valgrind" => {
            return Err(Refusal::new(format!(
                "\"{name}\" runs commands or writes files this validator cannot inspect"
            )));
        }
        "tar" | "bsdtar" | "gtar" => {
            if has_flag(
                args,
                "IF",
                &[
                    "--to-command",
                    "--checkpoint-action",
                    "--use-compress-program",
                    "--rsh-command",
                    "--info-script",
                    "--new-volume-script",
                    "--rmt-command",
                ],
            ) || args.iter().any(|a| {
                // old-style `tar xvf…` bundles: only the command-running letters matter
                !a.starts_with('-')
                    && a.len() < 12
                    && a.chars().all(|c| c.is_ascii_alphabetic())
                    && a.contains('I')
                    && args.first() == Some(a)
            }) {
                return Err(fatal(
                    "\"tar --to-command/--checkpoint-action/-I/-F\" runs arbitrary programs",
                ));
            }
            let mut it = args.iter();
            while let Some(a) = it.next() {
                let dir = if a == "-C" || a == "--directory" {
                    it.next().map(String::as_str)
                } else {
                    a.strip_prefix("--directory=")
                };
                if let Some(d) = dir
                    && let Some(what) = protected_write(d)
                        .or_else(|| dangerous_tree(d).filter(|w| *w != "the whole working directory"))
                {
                    return Err(fatal(format!("\"tar -C {}\" extracts into {what}", show(d))));
                }
            }
        }
        "zip" if has_flag(args, "", &["-TT", "--unzip-command"]) => {
            return Err(fatal("\"zip -TT\" runs an arbitrary test command"));
        }
        "rsync" => {
            if has_flag(args, "e", &["--rsh", "--rsync-path"]) {
                return Err(fatal("\"rsync -e/--rsh/--rsync-path\" runs an arbitrary program"));
            }
            if let Some(dest) = pos.last()
                && let Some(what) = protected_write(dest).or_else(|| {
                    dangerous_tree(dest).filter(|_| {
                        has_flag(
                            args,
                            "",
                            &[
                                "--delete",
                                "--delete-before",
                                "--delete-after",
                                "--delete-during",
                                "--del",
                            ],
                        )
                    })
                })
            {
                return Err(fatal(format!("\"rsync … {}\" overwrites {what}", show(dest))));
            }
        }
        "ssh" | "scp" | "sftp" | "autossh" => {
            let lower: Vec<String> = args.iter().map(|a| a.to_ascii_lowercase()).collect();
            let bad = lower.iter().any(|a| {
                a.contains("proxycommand")
                    || a.contains("localcommand")
                    || a.contains("knownhostscommand")
                    || a.contains("remotecommand")
            }) || (name != "ssh" && args.iter().any(|a| a == "-S"));
            if bad {
                return Err(fatal(format!(
                    "\"{name} -o ProxyCommand/LocalCommand\" (or -S) runs a local command"
                )));
            }
        }
        "git" => git_universal(args, ctx)?,
        "find" => find_universal(args, ctx)?,
        "sed" | "gsed" => sed_universal(args, ctx.mode)?,
        "awk" | "gawk" | "mawk" | "nawk" | "busybox-awk" => awk_universal(args, ctx.mode)?,
        "mv" | "cp" | "ln" | "install" | "tee" | "touch" | "mkdir" | "rename" => {
            let targets: Vec<&str> = match name {
                "tee" | "touch" | "mkdir" => pos.clone(),
                _ => {
                    let mut t: Vec<&str> = pos.last().copied().into_iter().collect();
                    for (i, a) in args.iter().enumerate() {
                        if a == "-t" || a == "--target-directory" {
                            t.extend(args.get(i + 1).map(String::as_str));
                        } else if let Some(d) = a.strip_prefix("--target-directory=") {
                            t.push(d);
                        }
                    }
                    t
                }
            };
            for t in targets {
                if let Some(what) = protected_write(t) {
                    return Err(fatal(format!("\"{name} … {}\" overwrites {what}", show(t))));
                }
            }
            if name == "mv" {
                for p in &pos {
                    if let Some(what) = dangerous_tree(p).filter(|w| *w != "the git repository's history") {
                        return Err(fatal(format!("\"mv {}\" moves away {what}", show(p))));
                    }
                }
            }
        }
        _ => {}
    }
    Ok(())
}
