//! The page shell every page shares (head, navigation, who is logged in)
//! and small rendering helpers. Every value goes through maud's escaping;
//! nothing here builds HTML from strings by hand.

use maud::{DOCTYPE, Markup, html};

use crate::clock::{Millis, rfc3339};
use crate::dashboard::{PREFIX, Viewer};

/// The navigation entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// The conversation list and a conversation.
    Conversations,
    /// The audit trail.
    Audit,
    /// YOLO proposals.
    Proposals,
    /// Figures.
    Stats,
}

/// A full page for a logged-in viewer.
pub fn page(title: &str, viewer: &Viewer, nav: Nav, body: Markup) -> Markup {
    let link = |n: Nav, path: &str, label: &str| {
        html! {
            a href=(format!("{PREFIX}{path}")) class=[(n == nav).then_some("current")] { (label) }
        }
    };
    document(
        title,
        html! {
            header.top {
                span.brand { "mcp-bridge" }
                nav {
                    (link(Nav::Conversations, "/", "Conversations"))
                    (link(Nav::Audit, "/audit", "Audit"))
                    (link(Nav::Proposals, "/proposals", "Proposals"))
                    (link(Nav::Stats, "/stats", "Stats"))
                }
                span.who { (viewer.label()) @if !viewer.can_act() { " · read-only" } }
                form.inline method="post" action=(format!("{PREFIX}/logout")) {
                    (csrf_field(viewer))
                    button type="submit" { "Log out" }
                }
            }
            main { (body) }
        },
    )
}

/// A page without navigation (login, errors).
pub fn bare(title: &str, body: Markup) -> Markup {
    document(title, html! { main.narrow { (body) } })
}

fn document(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " · mcp-bridge" }
                link rel="stylesheet" href=(format!("{PREFIX}/assets/app.css"));
                script src=(format!("{PREFIX}/assets/app.js")) defer {}
            }
            body { (body) }
        }
    }
}

/// The hidden CSRF field every form carries.
pub fn csrf_field(viewer: &Viewer) -> Markup {
    html! { input type="hidden" name="csrf" value=(viewer.csrf); }
}

/// An instant as RFC 3339 with a relative hint in its title.
pub fn when(ms: Millis, now: Millis) -> Markup {
    html! { time datetime=(rfc3339(ms)) title=(rfc3339(ms)) { (ago(ms, now)) } }
}

/// An optional instant, or a dash.
pub fn when_opt(ms: Option<Millis>, now: Millis) -> Markup {
    match ms {
        Some(ms) => when(ms, now),
        None => html! { span.muted { "—" } },
    }
}

/// `12s ago`, `3m ago`, `in 2h`: coarse, for scanning a table.
pub fn ago(then: Millis, now: Millis) -> String {
    let (d, future) = if then > now {
        (then - now, true)
    } else {
        (now - then, false)
    };
    let s = d / 1000;
    let text = match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    };
    if future {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_are_coarse_and_signed() {
        assert_eq!(ago(0, 5_000), "5s ago");
        assert_eq!(ago(0, 120_000), "2m ago");
        assert_eq!(ago(7_200_000, 0), "in 2h");
        assert_eq!(ago(0, 3 * 86_400_000), "3d ago");
    }
}
