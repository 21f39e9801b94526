//! The run's report: a text summary for the terminal and an HTML page with every operation's
//! latency over time (inline SVG, no scripts) and the fault windows shaded.

use std::fmt::Write as _;

use crate::history::{Kind, Op, Process, pairs};
use crate::run::Summary;

/// The summary as lines for a terminal.
pub fn text(summary: &Summary) -> String {
    let mut s = String::new();
    for c in &summary.checks {
        let _ = writeln!(s, "  {:<40} {}", c.name, c.verdict.word());
        if let crate::check::Verdict::Invalid(why) | crate::check::Verdict::Unknown(why) = &c.verdict {
            let _ = writeln!(s, "      {why}");
        }
    }
    let _ = writeln!(s, "  operations: {}", summary.ops);
    let _ = writeln!(s, "  faults injected: {}", summary.faults);
    let _ = writeln!(s, "valid: {}", summary.valid.word());
    s
}

const W: f64 = 1000.0;
const H: f64 = 360.0;
const LEFT: f64 = 60.0;
const BOTTOM: f64 = 30.0;

/// The HTML page.
pub fn html(summary: &Summary, history: &[Op]) -> String {
    let end = history.iter().map(|o| o.time).max().unwrap_or(1).max(1) as f64;
    let x = |t: u64| LEFT + (t as f64 / end) * (W - LEFT - 10.0);
    let points: Vec<(u64, f64, Kind, &str)> = pairs(history)
        .iter()
        .filter_map(|p| {
            let c = p.complete?;
            let ms = (c.time.saturating_sub(p.invoke.time)) as f64 / 1e6;
            Some((p.invoke.time, ms.max(0.01), c.kind, p.invoke.f.as_str()))
        })
        .collect();
    let max_ms = points.iter().map(|p| p.1).fold(1.0f64, f64::max);
    let (lo, hi) = (0.01f64.log10(), max_ms.log10().max(0.0) + 0.1);
    let y = |ms: f64| (H - BOTTOM) - (ms.log10() - lo) / (hi - lo) * (H - BOTTOM - 10.0);

    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">"#
    );
    // Fault windows: from each start-X to the next stop-X (or final-heal).
    let mut open: Vec<(String, u64)> = Vec::new();
    for op in history.iter().filter(|o| o.process == Process::NEMESIS) {
        if let Some(name) = op.f.strip_prefix("start-") {
            open.push((name.to_string(), op.time));
        } else if let Some(name) =
            op.f.strip_prefix("stop-")
                .or((op.f == "final-heal").then_some(""))
        {
            open.retain(|(n, from)| {
                let closes = name.is_empty() || n == name;
                if closes {
                    let _ = write!(
                        svg,
                        r##"<rect x="{:.1}" y="0" width="{:.1}" height="{:.1}" fill="#f4c7c3" opacity="0.6"><title>{n}</title></rect><text x="{:.1}" y="12" fill="#a33">{n}</text>"##,
                        x(*from),
                        (x(op.time) - x(*from)).max(1.0),
                        H - BOTTOM,
                        x(*from) + 2.0
                    );
                }
                !closes
            });
        }
    }
    for (t, ms, kind, f) in &points {
        let color = match kind {
            Kind::Ok => "#2a7",
            Kind::Fail => "#d33",
            _ => "#e90",
        };
        let _ = write!(
            svg,
            r#"<circle cx="{:.1}" cy="{:.1}" r="1.6" fill="{color}"><title>{f} {ms:.2} ms</title></circle>"#,
            x(*t),
            y(*ms)
        );
    }
    for decade in [0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0] {
        if decade <= max_ms * 1.3 {
            let _ = write!(
                svg,
                r##"<line x1="{LEFT}" x2="{W}" y1="{0:.1}" y2="{0:.1}" stroke="#ddd"/><text x="4" y="{0:.1}">{decade} ms</text>"##,
                y(decade)
            );
        }
    }
    let _ = write!(
        svg,
        r#"<text x="{LEFT}" y="{}">0 s</text><text x="{}" y="{}">{:.1} s</text></svg>"#,
        H - 8.0,
        W - 50.0,
        H - 8.0,
        end / 1e9
    );

    let mut checks = String::new();
    for c in &summary.checks {
        let why = match &c.verdict {
            crate::check::Verdict::Invalid(w) | crate::check::Verdict::Unknown(w) => escape(w),
            crate::check::Verdict::Valid => String::new(),
        };
        let _ = write!(
            checks,
            "<tr><td>{}</td><td class=\"{}\">{}</td><td>{why}</td></tr>",
            escape(&c.name),
            c.verdict.word(),
            c.verdict.word()
        );
    }
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>jepsen run</title><style>\
         body{{font-family:sans-serif;margin:2em}} td{{padding:2px 8px;vertical-align:top}}\
         .valid{{color:#2a7}} .INVALID{{color:#d33;font-weight:bold}} .unknown{{color:#e90}}\
         </style></head><body><h1>jepsen run: {}</h1><p>settings: <code>{}</code></p>\
         <table>{checks}</table><p>operations: <code>{}</code>, faults injected: {}</p>\
         <h2>Latency over time</h2><p>green ok, red fail, orange info; shaded: faults</p>{svg}</body></html>",
        summary.valid.word(),
        escape(&summary.settings.to_string()),
        escape(&summary.ops.to_string()),
        summary.faults
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
