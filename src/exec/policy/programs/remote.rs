//! Restricted mode installs and runs the project's own dependencies, never code named on
//! the command line from somewhere else. These judges refuse package specifications that
//! fetch code from a URL, a git host or a path outside the working directory, for the
//! package managers restricted mode allows (`npm`, `go`). Registry names
//! (`npm install left-pad`) stay allowed: the registry and the lockfile are the project's
//! declared sources.

use crate::exec::parse::{Refusal, show};
use crate::exec::policy;

/// Hosted-git shorthands npm resolves to a repository download.
const NPM_GIT_HOSTS: &[&str] = &["github:", "gitlab:", "bitbucket:", "gist:", "git:", "git+"];

/// Why the npm package specification `spec` fetches code from outside the registry or the
/// working directory, if it does.
pub(crate) fn npm_remote_spec(spec: &str) -> Option<&'static str> {
    let lower = spec.to_ascii_lowercase();
    // A spec may carry an alias: `name@npm:other` is registry, `name@github:x/y` is not.
    let target = match lower.split_once('@') {
        Some((name, rest)) if !name.is_empty() => rest,
        _ => lower.as_str(),
    };
    for candidate in [lower.as_str(), target] {
        if NPM_GIT_HOSTS.iter().any(|h| candidate.starts_with(h)) {
            return Some("a git repository (its install scripts run at install)");
        }
        if candidate.contains("://") {
            return Some("a URL (a tarball or repository downloaded and run at install)");
        }
        if let Some(path) = candidate.strip_prefix("file:") {
            if !policy::confined(path) {
                return Some("a local package outside the working directory");
            }
            return None;
        }
    }
    if lower.ends_with(".tgz") || lower.ends_with(".tar.gz") || lower.ends_with(".tar") {
        if policy::confined(&lower) {
            return None;
        }
        return Some("a tarball outside the working directory");
    }
    // `user/repo` (optionally `#ref`) is npm's GitHub shorthand; scoped names start with `@`.
    let unscoped = !lower.starts_with('@');
    if unscoped && lower.contains('/') {
        let is_path = lower.starts_with('.') || lower.starts_with('/') || lower.starts_with('~');
        if !is_path {
            return Some("a GitHub repository (npm's user/repo shorthand)");
        }
        if !policy::confined(&lower) {
            return Some("a local package outside the working directory");
        }
        return None;
    }
    None
}

/// Judges the package arguments of `npm install/add/ci/i` (everything after the subcommand).
pub(crate) fn npm_install(args: &[&str]) -> Result<(), Refusal> {
    for spec in args {
        if let Some(why) = npm_remote_spec(spec) {
            return Err(Refusal::new(format!(
                "\"npm install {}\" names {why}; restricted mode installs only registry packages and the project's own lockfile",
                show(spec)
            )));
        }
    }
    Ok(())
}

/// Judges `go build/test/run/vet/list/generate` positionals: `pkg@version` names a module
/// version that is downloaded and, for `run`, executed; restricted mode builds only the
/// module in the working directory and its `go.mod` requirements.
pub(crate) fn go_positionals(sub: &str, args: &[&str]) -> Result<(), Refusal> {
    for a in args {
        if a.contains('@') {
            return Err(Refusal::new(format!(
                "\"go {sub} {}\" names a module version to download and build; restricted mode builds only the module in the working directory (its go.mod requirements)",
                show(a)
            )));
        }
        if a.contains("://") {
            return Err(Refusal::new(format!(
                "\"go {sub} {}\" names a URL; restricted mode builds only the module in the working directory",
                show(a)
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names_and_workspace_paths_pass() {
        for spec in [
            "left-pad",
            "left-pad@1.3.0",
            "@scope/pkg",
            "@scope/pkg@^2",
            "./packages/a",
            "file:./vendor/x",
            "alias@npm:left-pad",
            "vendor/x.tgz",
        ] {
            assert_eq!(npm_remote_spec(spec), None, "{spec}");
        }
    }

    #[test]
    fn remote_specifications_are_named() {
        for spec in [
            "https://evil.example/x.tgz",
            "git+https://github.com/a/b.git",
            "git://github.com/a/b",
            "github:a/b",
            "a/b",
            "a/b#main",
            "gitlab:a/b",
            "bitbucket:a/b",
            "gist:123",
            "x@github:a/b",
            "x@https://e/x.tgz",
            "file:../outside",
            "file:/tmp/x",
            "../x.tgz",
            "/tmp/x.tgz",
            "HTTPS://E/X",
        ] {
            assert!(npm_remote_spec(spec).is_some(), "{spec}");
        }
    }
}
