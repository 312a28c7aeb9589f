//! Safety copies: `backup` (an online copy, optionally with the key) and
//! `restore` (a verified copy installed in place of the database).

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};

use super::{open, refuse_existing, sidecar};
use crate::audit::HeadFile;
use crate::auth::ServerKey;
use crate::bridge::Bridge;
use crate::cli::render::{self};
use crate::clock::SystemClock;
use crate::config::{Config, KeySource, audit_head_path_for, key_path_for};
use crate::redact::Redactor;
use crate::store::sqlite::{OpenMode, SqliteStore};

fn key_file(config: &Config) -> anyhow::Result<&Path> {
    match &config.key {
        KeySource::File(p) | KeySource::Given(p) => Ok(p),
        KeySource::Env(_) => bail!(
            "the server key comes from MCP_BRIDGE_KEY, not a file; keep it in your secrets store (--with-key copies key files only)"
        ),
        KeySource::Absent => bail!("no server key is configured (--key-file or MCP_BRIDGE_KEY)"),
    }
}

/// Copies a key file to a new 0600 file.
fn copy_private(src: &Path, dest: &Path) -> anyhow::Result<()> {
    let bytes =
        zeroize::Zeroizing::new(std::fs::read(src).with_context(|| format!("reading {}", src.display()))?);
    let mut f =
        crate::auth::create_private_file(dest).with_context(|| format!("creating {}", dest.display()))?;
    f.write_all(&bytes)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("writing {}", dest.display()))
}

pub(super) async fn backup(config: &Config, dest: &Path, with_key: bool) -> anyhow::Result<ExitCode> {
    config.database.sqlite_path("backup")?;
    refuse_existing(dest, "backup target")?;
    let key_dest = key_path_for(dest);
    let key_src = if with_key {
        refuse_existing(&key_dest, "key copy")?;
        Some(key_file(config)?.to_owned())
    } else {
        None
    };
    on_bridge!(open(config).await?, |bridge| {
        let total = bridge.database_size().await.unwrap_or(0).max(1) as u64;
        // A progress bar on stderr, only for a person watching it.
        let bar = if std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} backing up {bytes}/{total_bytes} [{wide_bar}] {elapsed}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            Some(bar)
        } else {
            None
        };
        let job = bridge.backup(dest);
        tokio::pin!(job);
        let result = loop {
            tokio::select! {
                r = &mut job => break r,
                _ = tokio::time::sleep(Duration::from_millis(100)) => {
                    if let (Some(bar), Ok(m)) = (&bar, std::fs::metadata(dest)) {
                        bar.set_position(m.len().min(total));
                    }
                }
            }
        };
        if let Some(bar) = &bar {
            bar.finish_and_clear();
        }
        let seq = result.with_context(|| format!("backing up to {}", dest.display()))?;
        let size = std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0);
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "backup written to {} ({}); recorded as audit entry {seq}",
            dest.display(),
            render::bytes(size as i64)
        )?;
        if let Some(src) = key_src {
            copy_private(&src, &key_dest)?;
            writeln!(out, "server key copied to {}", key_dest.display())?;
            eprintln!(
                "WARNING: {} is the secret that protects every session token and seals the audit trail. \
                 Anyone holding it with the database can test token guesses offline and forge audit entries. \
                 Store it apart from the backup.",
                key_dest.display()
            );
        } else {
            writeln!(
                out,
                "the server key was not copied; restoring needs the key this database uses ({}), or pass --with-key",
                match &config.key {
                    KeySource::File(p) | KeySource::Given(p) => p.display().to_string(),
                    KeySource::Env(_) | KeySource::Absent => "MCP_BRIDGE_KEY".into(),
                }
            )?;
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub(super) async fn restore(config: &Config, src: &Path, with_key: bool) -> anyhow::Result<ExitCode> {
    let target = config.database.sqlite_path("restore")?;
    if !src.is_file() {
        bail!("backup {} does not exist or is not a file", src.display());
    }
    // The key that will verify the copy: the backup's own (--with-key), or
    // the one the target uses. Never create one here: a fresh key cannot
    // verify anything, and a failed restore must leave no file behind.
    let (key, install_key) = if with_key {
        let k = key_path_for(src);
        let dest = key_file(config)?.to_owned();
        if !k.is_file() {
            bail!("--with-key: no key file at {}", k.display());
        }
        let key = ServerKey::load(&KeySource::File(k.clone())).context("loading the backup's key")?;
        (key, Some((k, dest)))
    } else {
        if let KeySource::File(k) | KeySource::Given(k) = &config.key
            && !k.is_file()
        {
            bail!(
                "no server key at {}: a backup can only be verified with the key it was made under; \
                 pass --with-key if it was saved beside the backup ({})",
                k.display(),
                key_path_for(src).display()
            );
        }
        (
            ServerKey::load(&config.key).context("loading the server key")?,
            None,
        )
    };
    let in_use = || async {
        if SqliteStore::in_use(target)
            .await
            .with_context(|| format!("checking whether {} is in use", target.display()))?
        {
            bail!(
                "{} is in use by another process (an `mcp-bridge serve` or other client has it open); \
                 stop every agent's server on it, then retry. Nothing was changed.",
                target.display()
            );
        }
        Ok(())
    };
    in_use().await?;
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        bail!("the directory of {} does not exist", target.display());
    }
    let staged =
        SqliteStore::stage_copy(src, target).with_context(|| format!("copying {}", src.display()))?;
    let checked = async {
        let store = SqliteStore::open(&staged, OpenMode::MustExist)
            .await
            .context("opening the copy")?;
        // The wrapping keys of the key file that will serve the copy.
        let key_source = match &install_key {
            Some((k, _)) => KeySource::File(k.clone()),
            None => config.key.clone(),
        };
        super::super::install_keys(crate::store::Store::keyring(&store), &key, &key_source)?;
        let redactor = Redactor::new(&config.redaction).context("compiling redaction rules")?;
        let bridge = Bridge::new(
            store,
            key.clone(),
            redactor,
            config.limits.clone(),
            Arc::new(SystemClock),
        );
        // The seals first (a copy made under another server key fails
        // there), then whether this key file opens the copy's data keys (a
        // copy older than a purge or a rotation does not).
        let check = match bridge.restore_check().await {
            Ok(c) => c,
            Err(e) => {
                bridge.shutdown().await;
                return Err(anyhow::Error::new(e));
            }
        };
        if let Err(e) = bridge.check_data_keys().await {
            bridge.shutdown().await;
            return Err(anyhow::Error::new(e));
        }
        let head = bridge.record_restore(src, target).await;
        bridge.shutdown().await;
        Ok::<_, anyhow::Error>((check, head?))
    }
    .await;
    let (check, head) = match checked {
        Ok(v) => v,
        Err(e) => {
            SqliteStore::discard(&staged);
            return Err(e.context(format!(
                "the backup {} failed verification; nothing was changed",
                src.display()
            )));
        }
    };
    // Check again right before the swap: a server may have started meanwhile.
    if let Err(e) = in_use().await {
        SqliteStore::discard(&staged);
        return Err(e);
    }
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let keep = sidecar(target, &format!(".pre-restore-{stamp}"));
    if let Err(e) = SqliteStore::swap_into_place(&staged, target, Some(&keep)) {
        SqliteStore::discard(&staged);
        return Err(e).context("replacing the database");
    }
    // The restored chain is the database's chain from now on: its head
    // replaces the one recorded for the database it replaced.
    HeadFile::new(audit_head_path_for(target), &key)
        .reset(Some(&head))
        .context("recording the restored audit head")?;
    let seq = head.seq;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "restored {} into {}: integrity ok, schema ok, audit chain intact ({} entries), {} conversation(s), {} message(s); recorded as audit entry {seq}",
        src.display(),
        target.display(),
        check.audit_entries,
        check.conversations,
        check.messages
    )?;
    if keep.exists() {
        writeln!(out, "the previous database is kept at {}", keep.display())?;
    }
    if let Some((from, to)) = install_key {
        if to.exists() {
            let old = sidecar(&to, &format!(".pre-restore-{stamp}"));
            std::fs::rename(&to, &old)
                .with_context(|| format!("keeping the old key as {}", old.display()))?;
            writeln!(out, "the previous key is kept at {}", old.display())?;
        }
        copy_private(&from, &to)?;
        writeln!(out, "installed the backup's key at {}", to.display())?;
    }
    Ok(ExitCode::SUCCESS)
}
