//! # mcp-bridge
//!
//! A secure coordination layer for LLM agents: an MCP server through which
//! agents (a backend and a frontend agent, a developer and a reviewer) open
//! conversations, exchange redacted and authenticated messages, and report
//! their liveness, while every action lands in a tamper-evident audit trail.
//!
//! # Layout
//! - [`config`]: every knob in one place; defaults < `mcp-bridge.toml` < `MCP_BRIDGE_*` < flags.
//! - [`mcp`]: the rmcp server: tool schemas, argument validation, `bridge::Error` -> tool errors.
//! - [`dashboard`]: the overseer's web pages (`mcp-bridge dashboard`, and `/ui` on `serve --http`).
//! - [`http`]: `serve --http`: MCP over streamable HTTP on axum, bearer authentication, health endpoints.
//! - [`cli`]: the clap subcommands: `serve` for MCP clients, and the overseer's commands
//!   (list, show, audit, cleanup, rotate, export, backup, approve, ...).
//! - [`bridge`]: the use cases, one function each, each in one store transaction.
//! - [`auth`]: session tokens and their keyed hashes.
//! - [`limits`]: rate windows as an exact sliding log of events, evaluated against state kept in the store.
//! - [`redact`]: the secret-redaction rule engine.
//! - [`audit`]: the hash chain over every action, its verification, and the head kept outside the database.
//! - [`store`]: the `Store`/`Tx` traits and the SQLite backend.
//! - [`exec`]: YOLO mode's command validator (a real shell parser) and sandboxed runner.
//! - [`clock`]: the time source, injectable so expiry and windows are testable.

pub mod audit;
pub mod auth;
pub mod bridge;
pub mod cli;
pub mod clock;
pub mod config;
pub mod dashboard;
pub mod exec;
pub mod http;
pub mod limits;
pub mod mcp;
pub mod redact;
pub mod seal;
pub mod store;
