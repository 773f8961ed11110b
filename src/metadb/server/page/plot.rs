//! Plots as inline SVG: one bar per run, oldest on the left, scaled to
//! the largest value, flagged runs in red; each bar's title says its time
//! and value. No script and no external resource: the browser draws it
//! as part of the page, and it prints.

use crate::metadb::server::page::layout::{duration, size, text};
use std::fmt::Write;

const WIDTH: f64 = 420.0;
const HEIGHT: f64 = 150.0;
/// Room above the bars for the title, below them for the times.
const TOP: f64 = 22.0;
const BOTTOM: f64 = 18.0;
const SIDE: f64 = 6.0;

/// What a plot's values are.
#[derive(Clone, Copy)]
pub enum Unit {
    Bytes,
    Seconds,
}

impl Unit {
    fn show(self, value: i64) -> String {
        match self {
            Unit::Bytes => size(value),
            Unit::Seconds => duration(value),
        }
    }
}

/// One point of a plot.
pub struct Point<'a> {
    /// When (RFC 3339), shown in the bar's title.
    pub at: &'a str,
    pub value: i64,
    pub flagged: bool,
}

/// The SVG of `points` (oldest first) under `title`.
pub fn bars(title: &str, unit: Unit, points: &[Point]) -> String {
    let max = points.iter().map(|p| p.value).max().unwrap_or(0).max(1);
    let mut out = format!(
        "<svg class=\"plot\" role=\"img\" aria-label=\"{title}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" xmlns=\"http://www.w3.org/2000/svg\">\
         <title>{title}</title>\
         <text x=\"{SIDE}\" y=\"14\" font-size=\"12\">{title} (max {})</text>",
        text(&unit.show(max)),
        title = text(title),
    );
    let inner = HEIGHT - TOP - BOTTOM;
    let _ = write!(
        out,
        "<line x1=\"{SIDE}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\" stroke=\"#999\"/>",
        y = TOP + inner,
        x2 = WIDTH - SIDE
    );
    let step = (WIDTH - 2.0 * SIDE) / points.len().max(1) as f64;
    for (i, p) in points.iter().enumerate() {
        let h = (p.value.max(0) as f64 / max as f64 * inner).max(1.0);
        if p.flagged {
            // A mark above the bar: a fall in size leaves little bar to see.
            let _ = write!(
                out,
                "<path class=\"mark\" d=\"M{:.1} {:.1} h10 l-5 7 z\" fill=\"#c00\"/>",
                SIDE + (i as f64 + 0.4) * step - 5.0,
                TOP + inner - h - 9.0,
            );
        }
        let (class, fill) = if p.flagged {
            ("bar anomaly", "#c00")
        } else {
            ("bar", "#4a7")
        };
        let _ = write!(
            out,
            "<rect class=\"{class}\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" \
             fill=\"{fill}\"><title>{}: {}</title></rect>",
            SIDE + i as f64 * step,
            TOP + inner - h,
            (step * 0.8).max(0.5),
            text(p.at),
            text(&unit.show(p.value)),
        );
    }
    if let (Some(first), Some(last)) = (points.first(), points.last()) {
        let y = HEIGHT - 5.0;
        let _ = write!(
            out,
            "<text x=\"{SIDE}\" y=\"{y}\" font-size=\"10\">{}</text>\
             <text x=\"{}\" y=\"{y}\" font-size=\"10\" text-anchor=\"end\">{}</text>",
            text(first.at),
            WIDTH - SIDE,
            text(last.at)
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bar_per_point_flagged_ones_red() {
        let points = [
            Point {
                at: "2026-01-01T00:00:00Z",
                value: 2048,
                flagged: false,
            },
            Point {
                at: "2026-01-02T00:00:00Z",
                value: 10,
                flagged: true,
            },
        ];
        let svg = bars("Total <size>", Unit::Bytes, &points);
        assert!(svg.starts_with("<svg class=\"plot\""), "{svg}");
        assert_eq!(svg.matches("<rect class=\"bar\"").count(), 1);
        assert_eq!(svg.matches("<rect class=\"bar anomaly\"").count(), 1);
        assert_eq!(svg.matches("<path class=\"mark\"").count(), 1);
        assert!(svg.contains("Total &lt;size&gt; (max 2.0 KiB)"), "{svg}");
        assert!(svg.contains("<title>2026-01-02T00:00:00Z: 10 B</title>"));
        assert!(svg.ends_with("</svg>"));
        let empty = bars("Duration", Unit::Seconds, &[]);
        assert!(!empty.contains("<rect"), "{empty}");
    }
}
