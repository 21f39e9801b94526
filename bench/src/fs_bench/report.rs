//! The table, the ratios, the targets of the brief (§10) and the JSON file.
//!
//! A ratio is the subject's rate divided by a baseline's (ops/s, or MB/s for write and
//! read) in the same row: above 1 the subject is faster.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::plan::{Config, Outcome, Row};
use crate::{Args, Target};
use client::units::human;

/// What the run was: printed above the table and stored in the JSON.
#[derive(Debug)]
pub struct Header {
    unix_time: u64,
    notes: Vec<(String, String)>,
    machine: Value,
    config: Value,
    summary: String,
}

impl Header {
    pub fn new(args: &Args, targets: &[Target], cfg: &Config) -> Header {
        let notes = args
            .notes
            .iter()
            .map(|n| match n.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (n.clone(), String::new()),
            })
            .collect();
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let mem_kib: u64 = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        let machine = json!({
            "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
            "memory_gib": (mem_kib as f64 / (1 << 20) as f64 * 10.0).round() / 10.0,
            "kernel": read("/proc/sys/kernel/osrelease").trim(),
            "loadavg_at_start": loadavg(),
        });
        let config = json!({
            "files": cfg.files,
            "procs": cfg.procs,
            "data_size": cfg.data_size,
            "block_size": cfg.block_size,
            "readdir_reps": cfg.readdir_reps,
            "caches_dropped": cfg.drop_caches,
            "targets": targets.iter().map(|t| json!({
                "name": t.name, "path": t.path, "fstype": t.fstype,
            })).collect::<Vec<_>>(),
        });
        let summary = format!(
            "fs-bench: {} files per round at {} process(es); {} written then read by 1 process \
             in {} calls; caches {}",
            cfg.files,
            cfg.procs
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" and "),
            human(cfg.data_size),
            human(cfg.block_size),
            if cfg.drop_caches {
                "dropped before stat, readdir and read"
            } else {
                "NOT dropped (not root)"
            },
        );
        Header {
            unix_time: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            notes,
            machine,
            config,
            summary,
        }
    }

    pub fn print(&self) {
        eprintln!("{}", self.summary);
        let load = &self.machine["loadavg_at_start"];
        if load
            .as_str()
            .and_then(|l| l.split(' ').next()?.parse::<f64>().ok())
            > Some(0.5)
        {
            eprintln!(
                "fs-bench: WARNING: load average {} before the run: something else is using \
                 the CPUs, and the results will be noisy",
                load.as_str().unwrap_or("?")
            );
        }
    }
}

/// The 1, 5 and 15 minute load averages.
fn loadavg() -> String {
    let l = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    l.split(' ').take(3).collect::<Vec<_>>().join(" ")
}

/// Everything measured.
#[derive(Debug)]
pub struct Report {
    header: Header,
    targets: Vec<(Target, Outcome)>,
    subject: String,
    moosefs: String,
    /// The load averages when the run ended.
    load_end: String,
}

/// One line of the targets of the brief.
struct Goal {
    what: String,
    op: &'static str,
    procs: usize,
    ratio: f64,
    /// `ratio >= min` (or `<= max` when `at_most`).
    bound: f64,
    at_most: bool,
    /// Shown, but not a target of this configuration.
    info: Option<&'static str>,
}

impl Report {
    pub fn new(
        header: Header,
        targets: &[Target],
        outcomes: Vec<Outcome>,
        subject: &str,
        moosefs: &str,
    ) -> Report {
        Report {
            header,
            targets: targets.iter().cloned().zip(outcomes).collect(),
            subject: subject.to_string(),
            moosefs: moosefs.to_string(),
            load_end: loadavg(),
        }
    }

    pub fn any_failed(&self) -> bool {
        self.targets.iter().any(|(_, o)| o.error.is_some())
    }

    /// The (op, procs) rows in the order they were run.
    fn keys(&self) -> Vec<(&'static str, usize)> {
        let mut keys = Vec::new();
        for (_, o) in &self.targets {
            for r in &o.rows {
                if !keys.contains(&(r.op, r.procs)) {
                    keys.push((r.op, r.procs));
                }
            }
        }
        keys
    }

    fn row(&self, name: &str, op: &str, procs: usize) -> Option<&Row> {
        self.targets
            .iter()
            .find(|(t, _)| t.name == name)?
            .1
            .rows
            .iter()
            .find(|r| r.op == op && r.procs == procs)
    }

    fn has(&self, name: &str) -> bool {
        self.targets.iter().any(|(t, _)| t.name == name)
    }

    /// The targets other than the subject, when the subject was measured.
    fn baselines(&self) -> Vec<&str> {
        if !self.has(&self.subject) {
            return Vec::new();
        }
        self.targets
            .iter()
            .map(|(t, _)| t.name.as_str())
            .filter(|n| *n != self.subject)
            .collect()
    }

    fn ratio(&self, baseline: &str, op: &str, procs: usize) -> Option<f64> {
        let s = self.row(&self.subject, op, procs)?;
        let b = self.row(baseline, op, procs)?;
        (b.rate > 0.0).then(|| s.rate / b.rate)
    }

    fn goals(&self) -> Vec<Goal> {
        let mut goals = Vec::new();
        let files = self.header.config["files"].as_u64().unwrap_or(0);
        for (op, procs) in self.keys() {
            let what = match op {
                "create" => "file create via FUSE",
                "stat" => "stat, uncached",
                "readdir" => "readdir of a large directory",
                "write" => "sequential write",
                "read" => "sequential read",
                _ => continue,
            };
            if let Some(ratio) = self.ratio(&self.moosefs, op, procs) {
                goals.push(Goal {
                    what: format!("{what}, {procs} proc(s), vs {}", self.moosefs),
                    op,
                    procs,
                    ratio,
                    bound: 1.0,
                    at_most: false,
                    info: (op == "readdir")
                        .then_some("the brief's target is for 1M entries")
                        .filter(|_| files < 1_000_000),
                });
            }
        }
        for (op, procs) in self.keys() {
            if op != "create" {
                continue;
            }
            let p50 = |n: &str| self.row(n, op, procs).map(|r| r.lat.p50);
            if let (Some(s), Some(b)) = (p50(&self.subject), p50("passthrough"))
                && b > 0.0
            {
                goals.push(Goal {
                    what: format!("create p50, {procs} proc(s), vs passthrough"),
                    op,
                    procs,
                    ratio: s / b,
                    bound: 2.0,
                    at_most: true,
                    info: Some("the target is for optimistic mode; this build mounts strict"),
                });
            }
        }
        goals
    }

    pub fn print(&self) {
        let h = &self.header;
        println!();
        println!("{}", h.summary);
        for (k, v) in &h.notes {
            println!("  {k}: {v}");
        }
        println!(
            "  machine: {} CPUs, {} GiB, Linux {}",
            h.machine["cpus"],
            h.machine["memory_gib"],
            h.machine["kernel"].as_str().unwrap_or("?")
        );
        println!(
            "  load average: {} at start, {} at end",
            h.machine["loadavg_at_start"].as_str().unwrap_or("?"),
            self.load_end
        );
        for (t, _) in &self.targets {
            println!("  {}: {} ({})", t.name, t.path.display(), t.fstype);
        }
        println!();
        let baselines = self.baselines();
        let mut head1 = format!("{:<8} {:>5} {:>5} ", "", "", "");
        let mut head2 = format!("{:<8} {:>5} {:>5} ", "op", "procs", "unit");
        for (t, _) in &self.targets {
            head1.push_str(&format!("| {:<26} ", t.name));
            head2.push_str(&format!("| {:>8} {:>8} {:>8} ", "rate", "p50 us", "p99 us"));
        }
        if !baselines.is_empty() {
            head1.push_str(&format!("| {} ÷", self.subject));
            head2.push('|');
            for b in &baselines {
                head2.push_str(&format!(" {b:>11}"));
            }
        }
        println!("{}", head1.trim_end());
        println!("{}", head2.trim_end());
        for (op, procs) in self.keys() {
            let unit = if matches!(op, "write" | "read") {
                "MB/s"
            } else {
                "ops/s"
            };
            let mut line = format!("{op:<8} {procs:>5} {unit:>5} ");
            for (t, _) in &self.targets {
                match self.row(&t.name, op, procs) {
                    Some(r) => line.push_str(&format!(
                        "| {:>8.0} {:>8.0} {:>8.0} ",
                        r.rate, r.lat.p50, r.lat.p99
                    )),
                    None => line.push_str(&format!("| {:>8} {:>8} {:>8} ", "-", "-", "-")),
                }
            }
            if !baselines.is_empty() {
                line.push('|');
                for b in &baselines {
                    match self.ratio(b, op, procs) {
                        Some(x) => line.push_str(&format!(" {:>10.2}x", x)),
                        None => line.push_str(&format!(" {:>11}", "-")),
                    }
                }
            }
            println!("{}", line.trim_end());
        }
        println!(
            "(rate: ops/s, or MB/s = 10^6 bytes/s; readdir: entries/s, latency per full \
             listing; write/read: latency per call, the final fsync counted in MB/s only)"
        );
        for (t, o) in &self.targets {
            if let Some(e) = &o.error {
                println!("{}: FAILED: {e}", t.name);
            }
        }
        println!();
        let goals = self.goals();
        if goals.is_empty() {
            println!(
                "targets: need both `{}` and `{}` targets in the run",
                self.subject, self.moosefs
            );
            return;
        }
        println!("targets (brief §10): {} ÷ baseline", self.subject);
        for g in goals {
            let (sign, met) = if g.at_most {
                ("<=", g.ratio <= g.bound)
            } else {
                (">=", g.ratio >= g.bound)
            };
            let verdict = match g.info {
                Some(why) => format!("{} (for information: {why})", met_word(met)),
                None => met_word(met).to_string(),
            };
            println!(
                "  {:<52} {:>6.2} x  (target {sign} {} x)  {verdict}",
                g.what, g.ratio, g.bound
            );
        }
    }

    pub fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        let h = &self.header;
        let results: Vec<Value> = self
            .targets
            .iter()
            .flat_map(|(t, o)| {
                o.rows.iter().map(move |r| {
                    json!({
                        "target": t.name, "op": r.op, "procs": r.procs, "ops": r.ops,
                        "secs": r.secs, "rate": r.rate,
                        "unit": if matches!(r.op, "write" | "read") { "MB/s" } else { "ops/s" },
                        "p50_us": r.lat.p50, "p99_us": r.lat.p99,
                    })
                })
            })
            .collect();
        let mut ratios = Vec::new();
        for (op, procs) in self.keys() {
            for b in self.baselines() {
                if let Some(x) = self.ratio(b, op, procs) {
                    ratios.push(json!({
                        "op": op, "procs": procs, "subject": self.subject, "baseline": b, "ratio": x,
                    }));
                }
            }
        }
        let goals: Vec<Value> = self
            .goals()
            .iter()
            .map(|g| {
                let met = if g.at_most {
                    g.ratio <= g.bound
                } else {
                    g.ratio >= g.bound
                };
                json!({
                    "what": g.what, "op": g.op, "procs": g.procs, "ratio": g.ratio,
                    "bound": g.bound, "bound_is": if g.at_most { "at_most" } else { "at_least" },
                    "met": met, "info_only": g.info,
                })
            })
            .collect();
        let j = json!({
            "unix_time": h.unix_time,
            "notes": h.notes.iter()
                .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                .collect::<serde_json::Map<_, _>>(),
            "machine": h.machine,
            "loadavg_at_end": self.load_end,
            "config": h.config,
            "errors": self.targets.iter().filter_map(|(t, o)| {
                o.error.as_ref().map(|e| json!({ "target": t.name, "error": e }))
            }).collect::<Vec<_>>(),
            "results": results,
            "ratios": ratios,
            "targets": goals,
        });
        std::fs::write(path, format!("{j:#}\n")).with_context(|| format!("write {}", path.display()))
    }
}

fn met_word(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}
