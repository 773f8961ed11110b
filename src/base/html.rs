//! HTML escaping for the status pages that the agent and the metadb serve:
//! names, paths and messages on them come from configurations and records
//! that any host may have written.

use crate::base::visible::visible;

/// `value` made safe to show in HTML text or a quoted attribute, and
/// visible ([`visible`]): what a page shows is what was written.
pub fn text(value: &str) -> String {
    escape(&visible(value))
}

/// Escapes text for HTML element content and quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
