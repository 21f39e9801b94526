//! The topology: a bridge namespace, one network namespace per metadata server, one per
//! chunkserver and one for the harness's clients, joined by veth pairs on the bridge. Addresses (10.88.0.0/24) exist only
//! inside these namespaces; the host's namespace is never touched.
//!
//! Namespaces are named `jp<pid>…` after the harness process that made them, so a later run
//! can tell the remains of a crashed run (its pid is gone) and remove them.

use std::net::Ipv4Addr;
use std::process::Command;

use anyhow::{Context as _, bail};

/// The address of the clients' namespace.
pub const CONTROL_IP: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 200);

/// The namespaces of one run.
#[derive(Debug, Clone)]
pub struct Topology {
    /// Prefix of every namespace name (`jp<pid>`).
    pub prefix: String,
    /// Number of metadata-server namespaces.
    pub nodes: usize,
    /// Number of chunkserver namespaces.
    pub chunkservers: usize,
}

impl Topology {
    /// The layout for `nodes` metadata servers and `chunkservers` chunkservers of the harness
    /// process `pid` (nothing is created).
    pub fn new(pid: u32, nodes: usize, chunkservers: usize) -> Topology {
        Topology {
            prefix: format!("jp{pid}"),
            nodes,
            chunkservers,
        }
    }

    /// The bridge namespace.
    pub fn bridge(&self) -> String {
        format!("{}br", self.prefix)
    }

    /// The clients' namespace.
    pub fn control(&self) -> String {
        format!("{}c", self.prefix)
    }

    /// The namespace of server `i` (1-based).
    pub fn node(&self, i: usize) -> String {
        format!("{}n{i}", self.prefix)
    }

    /// The address of server `i` (1-based).
    pub fn node_ip(i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 88, 0, i as u8)
    }

    /// The namespace of chunkserver `i` (1-based).
    pub fn chunkserver(&self, i: usize) -> String {
        format!("{}s{i}", self.prefix)
    }

    /// The address of chunkserver `i` (1-based).
    pub fn chunkserver_ip(i: usize) -> Ipv4Addr {
        Ipv4Addr::new(10, 88, 0, 100 + i as u8)
    }

    fn members(&self) -> Vec<(String, Ipv4Addr)> {
        let mut v: Vec<_> = (1..=self.nodes)
            .map(|i| (self.node(i), Self::node_ip(i)))
            .collect();
        v.extend((1..=self.chunkservers).map(|i| (self.chunkserver(i), Self::chunkserver_ip(i))));
        v.push((self.control(), CONTROL_IP));
        v
    }

    /// Creates every namespace and link; on failure removes what it made.
    pub fn create(&self) -> anyhow::Result<()> {
        if !(1..=50).contains(&self.nodes) {
            bail!("--nodes must be between 1 and 50, not {}", self.nodes);
        }
        if self.chunkservers > 50 {
            bail!("--chunkservers must be at most 50, not {}", self.chunkservers);
        }
        let made = self.try_create();
        if made.is_err() {
            self.teardown();
        }
        made
    }

    fn try_create(&self) -> anyhow::Result<()> {
        let br = self.bridge();
        ip(&["netns", "add", &br])?;
        ip(&["-n", &br, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &br, "link", "set", "br0", "up"])?;
        ip(&["-n", &br, "link", "set", "lo", "up"])?;
        for (k, (ns, addr)) in self.members().into_iter().enumerate() {
            let veth = format!("v{k}");
            ip(&["netns", "add", &ns])?;
            ip(&[
                "link", "add", &veth, "netns", &br, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ])?;
            ip(&["-n", &br, "link", "set", &veth, "master", "br0", "up"])?;
            ip(&["-n", &ns, "addr", "add", &format!("{addr}/24"), "dev", "eth0"])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(())
    }

    /// Kills every process left in the namespaces and deletes them. Best effort: it reports
    /// what it could not remove and goes on.
    pub fn teardown(&self) {
        let mut all: Vec<String> = self.members().into_iter().map(|(ns, _)| ns).collect();
        all.push(self.bridge());
        for ns in all {
            remove_namespace(&ns);
        }
    }

    /// Removes the namespaces of earlier runs whose harness process is gone.
    pub fn sweep_stale() {
        let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
            return;
        };
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let name = line.split_whitespace().next().unwrap_or("");
            let Some(rest) = name.strip_prefix("jp") else {
                continue;
            };
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if digits.is_empty() || std::path::Path::new(&format!("/proc/{digits}")).exists() {
                continue;
            }
            eprintln!("jepsen: removing namespace {name} left by an earlier run (pid {digits} is gone)");
            remove_namespace(name);
        }
    }
}

fn remove_namespace(ns: &str) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
    }
    let _ = Command::new("ip")
        .args(["netns", "del", ns])
        .stderr(std::process::Stdio::null())
        .status();
}

/// Runs `ip ARGS`; the error carries the command and its stderr.
pub fn ip(args: &[&str]) -> anyhow::Result<()> {
    run("ip", args)
}

/// Runs `ARGS` (a program and its arguments) in namespace `ns`.
pub fn ip_netns_exec(ns: &str, args: &[&str]) -> anyhow::Result<()> {
    let mut full = vec!["netns", "exec", ns];
    full.extend_from_slice(args);
    run("ip", &full)
}

/// Runs `nft ARGS` in namespace `ns`.
pub fn nft(ns: &str, args: &[&str]) -> anyhow::Result<()> {
    let mut full = vec!["nft"];
    full.extend_from_slice(args);
    ip_netns_exec(ns, &full)
}

/// Runs `program ARGS`; the error carries the command and its stderr.
pub fn run<S: AsRef<std::ffi::OsStr>>(program: &str, args: &[S]) -> anyhow::Result<()> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program} (is it installed?)"))?;
    if !out.status.success() {
        bail!(
            "`{program} {}` failed: {}",
            args.iter()
                .map(|a| a.as_ref().to_string_lossy())
                .collect::<Vec<_>>()
                .join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
