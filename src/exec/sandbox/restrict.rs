//! The confinement the helper applies to itself before running anything: rlimits (core
//! dumps off, memory, file size, CPU time, processes) and Landlock (reads limited to the
//! mode's roots minus the bridge's hidden state, writes to the workspace or in safe mode
//! only its private tmp dir, the network blocked unless the plan allows it).

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, AccessNet, LandlockStatus, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope,
};

use crate::exec::{Mode, RunLimits, SandboxStatus};

use super::Request;

/// The Landlock ABI this code was written and tested against; newer kernels are used at
/// this level, older ones best-effort.
const TARGET_ABI: ABI = ABI::V6;

/// The `/proc` and `/dev` entries granted for reading in every mode. `/proc` is never
/// granted as a whole: on the machine this was written on (root, kernel 6.18, Landlock ABI
/// 7) a sandboxed process could read `/proc/PID/environ` of its unsandboxed ancestors when
/// `/proc` was readable, so other processes' entries must stay outside every grant. A
/// child's own `/proc/self` is a directory created after the rules, so it is not granted
/// either; programs that need it (rare: `ps`, sanitizers) fail in the sandbox.
const PROC_AND_DEV_READS: &[&str] = &[
    "/proc/cpuinfo",
    "/proc/meminfo",
    "/proc/version",
    "/proc/loadavg",
    "/proc/uptime",
    "/proc/stat",
    "/proc/filesystems",
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
];

/// What the sandbox may read: in safe and restricted modes the validator's system read
/// set plus the workspace; in yolo mode the whole filesystem except `/proc` and `/dev`
/// (other processes' environments, raw disks). Both then get [`PROC_AND_DEV_READS`], and
/// the bridge's state (`Request::hidden`) is carved out of every grant.
fn read_roots(req: &Request) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let extra = PROC_AND_DEV_READS.iter().map(PathBuf::from);
    if req.plan.mode == Mode::Yolo {
        let mut hidden = req.hidden.clone();
        hidden.extend([PathBuf::from("/proc"), PathBuf::from("/dev")]);
        let mut roots = vec![PathBuf::from("/")];
        roots.extend(extra);
        return (roots, hidden);
    }
    let mut roots: Vec<PathBuf> = crate::exec::reads::SYSTEM_READS
        .iter()
        .filter(|p| !p.starts_with("/dev/") && !p.starts_with("/proc/"))
        .map(PathBuf::from)
        .collect();
    roots.extend(extra);
    roots.push(req.workspace.clone());
    (roots, req.hidden.clone())
}

/// Lowers one limit (never above the current hard limit, which would fail).
fn lower(resource: rlimit::Resource, value: u64) -> io::Result<()> {
    let (_, hard) = rlimit::getrlimit(resource)?;
    let v = value.min(hard);
    rlimit::setrlimit(resource, v, v)
}

pub(super) fn apply_rlimits(limits: &RunLimits) -> io::Result<()> {
    use rlimit::Resource;
    lower(Resource::CORE, 0)?;
    lower(Resource::DATA, limits.max_memory_bytes)?;
    lower(Resource::FSIZE, limits.max_file_size_bytes)?;
    lower(Resource::CPU, limits.timeout.as_secs().saturating_add(1))?;
    // RLIMIT_NPROC counts every task of the real user, so allow what already runs plus the
    // budget; otherwise a busy desktop session would make every spawn fail.
    let existing = count_user_tasks().unwrap_or(0);
    lower(Resource::NPROC, existing.saturating_add(limits.max_processes))?;
    Ok(())
}

/// Counts threads (tasks) owned by this process's user, as RLIMIT_NPROC does.
fn count_user_tasks() -> io::Result<u64> {
    let uid = std::fs::metadata("/proc/self")?.uid();
    let mut n = 0u64;
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if entry.metadata().is_ok_and(|m| m.uid() == uid) {
            n += std::fs::read_dir(entry.path().join("task")).map_or(1, |d| d.count() as u64);
        }
    }
    Ok(n)
}

#[derive(Debug, thiserror::Error)]
enum LandlockError {
    #[error(transparent)]
    Ruleset(#[from] landlock::RulesetError),
    #[error(transparent)]
    Path(#[from] landlock::PathFdError),
}

pub(super) fn apply_landlock(req: &Request) -> SandboxStatus {
    let block_network = !req.plan.allow_network;
    // Safe mode may write nothing but its private tmp dir.
    let writable: &Path = if req.plan.mode == Mode::Safe {
        &req.tmp_dir
    } else {
        &req.workspace
    };
    let attempt = || -> Result<landlock::RestrictionStatus, LandlockError> {
        let mut ruleset = Ruleset::default().handle_access(AccessFs::from_all(TARGET_ABI))?;
        if block_network {
            ruleset = ruleset.handle_access(AccessNet::from_all(TARGET_ABI))?;
        }
        let ruleset = ruleset.scope(Scope::from_all(TARGET_ABI))?;
        let mut created = ruleset.create()?;
        let mut grants = Vec::new();
        let (roots, hidden) = read_roots(req);
        for root in roots {
            // A listed /proc or /dev entry is granted even though yolo hides their parents.
            let hidden: Vec<PathBuf> = hidden.iter().filter(|h| !root.starts_with(h)).cloned().collect();
            crate::exec::confine::grant_except(&root, &hidden, &mut grants);
        }
        for path in grants {
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            let access = if meta.is_dir() {
                AccessFs::from_read(TARGET_ABI)
            } else {
                AccessFs::from_read(TARGET_ABI) & AccessFs::from_file(TARGET_ABI)
            };
            if let Ok(fd) = PathFd::new(&path) {
                created = created.add_rule(PathBeneath::new(fd, access))?;
            }
        }
        created = created.add_rule(PathBeneath::new(
            PathFd::new(writable)?,
            AccessFs::from_all(TARGET_ABI),
        ))?;
        for dev in ["/dev/null", "/dev/zero", "/dev/full"] {
            if let Ok(fd) = PathFd::new(dev) {
                created = created.add_rule(PathBeneath::new(fd, AccessFs::from_file(TARGET_ABI)))?;
            }
        }
        Ok(created.restrict_self()?)
    };
    match attempt() {
        Err(e) => SandboxStatus::Unavailable {
            reason: format!("Landlock setup failed: {e}"),
        },
        Ok(status) => {
            let abi = match status.landlock {
                LandlockStatus::Available { effective_abi, .. } => abi_number(effective_abi),
                _ => 0,
            };
            match status.ruleset {
                RulesetStatus::FullyEnforced => SandboxStatus::Enforced {
                    landlock_abi: abi,
                    network_blocked: block_network,
                },
                RulesetStatus::PartiallyEnforced => {
                    let mut missing = Vec::new();
                    if abi < 2 {
                        missing.push("rename/link across directories (refer)".to_owned());
                    }
                    if abi < 3 {
                        missing.push("truncate".to_owned());
                    }
                    if abi < 4 && block_network {
                        missing.push("network (TCP bind/connect)".to_owned());
                    }
                    if abi < 5 {
                        missing.push("device ioctl".to_owned());
                    }
                    if abi < 6 {
                        missing.push("signal and abstract-socket scoping".to_owned());
                    }
                    SandboxStatus::Partial {
                        landlock_abi: abi,
                        network_blocked: block_network && abi >= 4,
                        missing,
                    }
                }
                RulesetStatus::NotEnforced => SandboxStatus::Unavailable {
                    reason: match status.landlock {
                        LandlockStatus::NotEnabled => {
                            "the kernel has Landlock but it is not enabled (add landlock to the lsm= boot parameter)".to_owned()
                        }
                        LandlockStatus::NotImplemented => {
                            "the kernel does not implement Landlock (Linux < 5.13, built without it, or blocked by a container's seccomp policy)".to_owned()
                        }
                        LandlockStatus::Available { .. } => {
                            "Landlock is available but the ruleset was not enforced".to_owned()
                        }
                    },
                },
            }
        }
    }
}

fn abi_number(abi: ABI) -> i32 {
    // ABI is a fieldless enum whose discriminants are the kernel ABI versions.
    abi as i32
}
