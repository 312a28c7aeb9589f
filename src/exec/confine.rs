//! Which paths the sandbox may read, computed before Landlock is applied.
//!
//! Landlock grants access to whole hierarchies and cannot carve an exception out of a
//! granted directory. To keep the bridge's own state (database, `-wal`, `-shm`, key,
//! passphrase hash) unreadable even where reads are otherwise broad (yolo mode reads the
//! whole filesystem), the grant of a directory that contains hidden state is replaced by
//! grants of each of its children except the hidden ones, recursively along the path to
//! the state ([`grant_except`]). The cost: the split directories themselves (for example
//! `$HOME`) cannot be listed, and files created in them later are not readable.
//!
//! State inside the workspace cannot be hidden that way without taking away the ability
//! to create files in the workspace, so [`hidden_paths`] refuses to run at all then.

use std::path::{Path, PathBuf};

use crate::exec::Error;

/// Deepest directory split followed (the path from `/` to the state directory).
const MAX_SPLIT_DEPTH: usize = 64;

/// The canonical paths the sandbox must never reach, for the bridge state files
/// `state_files` (the database and its key file).
///
/// For each state file whose directory does not contain the workspace, the whole directory
/// is hidden (it holds the database, its `-wal`/`-shm`/`-journal`, the key, the passphrase
/// hash and anything else the bridge keeps there). When the directory does contain the
/// workspace (the database sits directly above it), every entry of that directory whose
/// name starts with the state file's name is hidden (`bridge.db`, `bridge.db-wal`,
/// `bridge.db.key`, `bridge.db.overseer`, ...). State inside the workspace is an error.
pub(crate) fn hidden_paths(workspace: &Path, state_files: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    let mut hidden = Vec::new();
    for file in state_files {
        let Some(name) = file.file_name() else {
            continue;
        };
        let dir = match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let Ok(dir) = dir.canonicalize() else {
            continue; // no state there yet: nothing to hide
        };
        if dir.starts_with(workspace) {
            return Err(Error::StateInsideWorkspace {
                path: dir.join(name),
                workspace: workspace.to_owned(),
            });
        }
        if !workspace.starts_with(&dir) {
            hidden.push(dir);
            continue;
        }
        let prefix = name.to_string_lossy().into_owned();
        hidden.push(dir.join(name));
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    hidden.push(e.path());
                }
            }
        }
    }
    hidden.sort();
    hidden.dedup();
    Ok(hidden)
}

/// Appends to `out` the paths that together grant `root` minus everything in `hidden`
/// (canonical paths). Children are canonicalized before being judged, so a symlink that
/// leads into hidden state is never granted under another name.
pub(crate) fn grant_except(root: &Path, hidden: &[PathBuf], out: &mut Vec<PathBuf>) {
    split(root, hidden, out, 0);
}

fn split(path: &Path, hidden: &[PathBuf], out: &mut Vec<PathBuf>, depth: usize) {
    let Ok(real) = path.canonicalize() else {
        return;
    };
    if hidden.iter().any(|h| real.starts_with(h)) {
        return;
    }
    if !hidden.iter().any(|h| h.starts_with(&real)) {
        out.push(real);
        return;
    }
    if depth >= MAX_SPLIT_DEPTH {
        return;
    }
    let Ok(entries) = std::fs::read_dir(&real) else {
        return;
    };
    for entry in entries.flatten() {
        split(&entry.path(), hidden, out, depth + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_state_is_left_out_and_everything_else_granted() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let ws = root.join("ws");
        std::fs::create_dir_all(ws.join("src")).unwrap();
        for f in ["bridge.db", "bridge.db-wal", "bridge.db.key", "other.txt"] {
            std::fs::write(root.join(f), "x").unwrap();
        }
        std::os::unix::fs::symlink(root.join("bridge.db.key"), root.join("alias")).unwrap();
        let hidden = hidden_paths(&ws, &[root.join("bridge.db"), root.join("bridge.db.key")]).unwrap();
        assert!(hidden.contains(&root.join("bridge.db-wal")), "{hidden:?}");
        let mut grants = Vec::new();
        grant_except(&root, &hidden, &mut grants);
        assert!(grants.contains(&ws));
        assert!(grants.contains(&root.join("other.txt")));
        assert!(
            !grants.iter().any(|g| g.to_string_lossy().contains("bridge.db")),
            "{grants:?}"
        );
        assert!(
            !grants.contains(&root),
            "the split directory itself is not granted"
        );
    }

    #[test]
    fn state_inside_the_workspace_refuses_to_run() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().canonicalize().unwrap();
        std::fs::create_dir(ws.join(".state")).unwrap();
        let err = hidden_paths(&ws, &[ws.join(".state/bridge.db")]).unwrap_err();
        assert!(matches!(err, Error::StateInsideWorkspace { .. }));
    }

    #[test]
    fn a_separate_state_directory_is_hidden_whole() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("ws")).unwrap();
        std::fs::create_dir_all(root.join("state")).unwrap();
        let hidden = hidden_paths(&root.join("ws"), &[root.join("state/bridge.db")]).unwrap();
        assert_eq!(hidden, vec![root.join("state")]);
    }
}
