//! Figures: conversations by state, messages, unread deliveries, audit
//! entries; messages per minute over the last hour as a small bar chart
//! (SVG drawn here, no script); refusals by code over the last day.
//!
//! Both series come from the audit trail (`message.send` entries and
//! `*.refused` entries with their coalesced counts), which holds metadata
//! only, read a page at a time up to [`MAX_ENTRIES`].

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::response::IntoResponse;
use maud::{Markup, html};

use super::PageResult;
use super::layout::{self, Nav, when_opt};
use crate::bridge::{AdminResult, Bridge};
use crate::clock::Millis;
use crate::dashboard::{Dashboard, Viewer};
use crate::store::admin::{AuditFilter, FullStore};

/// Minutes in the chart.
const MINUTES: usize = 60;

/// The most audit entries one series reads.
const MAX_ENTRIES: usize = 50_000;

/// Entries per read.
const READ: i64 = 1000;

/// `GET /ui/stats`.
pub async fn page<S: FullStore>(
    State(d): State<Arc<Dashboard<S>>>,
    Extension(viewer): Extension<Viewer>,
) -> PageResult {
    let stats = d.bridge.stats().await?;
    let now = d.bridge.now_ms();
    let hour_ago = now - (MINUTES as i64) * 60_000;
    let sends = entries(&d.bridge, "message.send", hour_ago).await?;
    let mut per_minute = [0u64; MINUTES];
    for (at, _) in &sends {
        let i = ((at - hour_ago) / 60_000).clamp(0, MINUTES as i64 - 1) as usize;
        per_minute[i] += 1;
    }
    let mut refusals: BTreeMap<String, u64> = BTreeMap::new();
    for (_, detail) in entries(&d.bridge, "*.refused", now - 86_400_000).await? {
        let v: serde_json::Value = serde_json::from_str(&detail).unwrap_or_default();
        let code = v["code"].as_str().unwrap_or("unknown").to_owned();
        *refusals.entry(code).or_default() += v["count"].as_u64().unwrap_or(1);
    }
    let f = &stats.figures;
    let body = html! {
        h1 { "Stats" }
        dl.figures {
            dt { "Conversations" } dd { (f.conversations) " (" (f.active) " active, " (f.expired) " expired, " (f.closed) " closed)" }
            dt { "Messages" } dd { (f.messages) }
            dt { "Unread deliveries" } dd { (f.unread) }
            dt { "Audit entries" } dd { (f.audit_entries) }
            dt { "Database size" } dd { (f.database_bytes / 1024) " KiB" }
            dt { "Last activity" } dd { (when_opt(stats.last_activity, now)) }
        }
        h2 { "Messages per minute, last hour (" (sends.len()) " in all)" }
        (chart(&per_minute))
        h2 { "Refusals by code, last 24 hours" }
        @if refusals.is_empty() { p.muted { "None." } }
        @else {
            table.list {
                thead { tr { th { "Code" } th { "Refusals" } } }
                tbody { @for (code, n) in &refusals { tr { td.mono { (code) } td.num { (n) } } } }
            }
        }
    };
    Ok(layout::page("Stats", &viewer, Nav::Stats, body).into_response())
}

/// `(at, detail)` of entries whose action matches `glob`, since `since`.
async fn entries<S: FullStore>(
    bridge: &Bridge<S>,
    glob: &str,
    since: Millis,
) -> AdminResult<Vec<(Millis, String)>> {
    let filter = AuditFilter {
        conversation_id: None,
        action_glob: Some(glob.to_owned()),
        since: Some(since),
        until: None,
    };
    let mut out = Vec::new();
    let mut after = 0;
    while out.len() < MAX_ENTRIES {
        let page = bridge.audit_entries(&filter, after, READ).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        out.extend(page.into_iter().map(|e| (e.at, e.detail)));
    }
    Ok(out)
}

/// One bar per minute, oldest on the left, scaled to the busiest minute.
pub fn chart(per_minute: &[u64]) -> Markup {
    const W: usize = 6;
    const H: u64 = 80;
    let max = per_minute.iter().copied().max().unwrap_or(0).max(1);
    let width = per_minute.len() * W;
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" width=(width) height=(H + 14)
            viewBox=(format!("0 0 {width} {}", H + 14)) role="img" aria-label="messages per minute" {
            line x1="0" y1=(H) x2=(width) y2=(H) stroke="#999" {}
            @for (i, n) in per_minute.iter().enumerate() {
                @let h = n * H / max;
                rect x=(i * W) y=(H - h) width=(W - 1) height=(h) fill="#3b6ea8" { title { (n) " at minute " (i) } }
            }
            text x="0" y=(H + 12) font-size="10" { "-60 min" }
            text x=(width.saturating_sub(24)) y=(H + 12) font-size="10" { "now" }
            text x="2" y="10" font-size="10" { "max " (max) "/min" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_scales_to_the_busiest_minute() {
        let svg = chart(&[0, 5, 10]).into_string();
        assert!(svg.contains("height=\"80\""), "{svg}");
        assert!(svg.contains("height=\"40\""), "{svg}");
        assert!(svg.contains("max 10/min"), "{svg}");
    }
}
