//! The network-namespace backend: packet drops and loss are nftables rules in the bridge
//! namespace (family `bridge`, hook `forward`), so the servers themselves are untouched;
//! processes are signalled directly; clocks move through libfaketime files.

use std::process::{Child, Command, Stdio};

use anyhow::Context as _;

use crate::netns::{Topology, ip_netns_exec, nft};
use crate::nodes::Nodes;

use super::Faults;

const TABLE: &str = "jepsen";
/// The NFQUEUE number the delayers use (per namespace, so one number serves every server).
const DELAY_QUEUE: &str = "7";

/// Faults for servers in network namespaces.
#[derive(Debug)]
pub struct NetnsFaults {
    /// The namespaces.
    pub topology: Topology,
    /// The servers.
    pub nodes: Nodes,
    table: bool,
    delayers: Vec<(usize, Child)>,
}

impl NetnsFaults {
    /// A backend over `nodes` in `topology`.
    pub fn new(topology: Topology, nodes: Nodes) -> NetnsFaults {
        NetnsFaults {
            topology,
            nodes,
            table: false,
            delayers: Vec::new(),
        }
    }

    fn rules(&mut self, rules: &[String]) -> anyhow::Result<()> {
        self.heal()?;
        let br = self.topology.bridge();
        nft(&br, &["add", "table", "bridge", TABLE])?;
        self.table = true;
        nft(
            &br,
            &[
                "add",
                "chain",
                "bridge",
                TABLE,
                "nem",
                "{ type filter hook forward priority 0; }",
            ],
        )?;
        for rule in rules {
            let mut args = vec!["add", "rule", "bridge", TABLE, "nem"];
            args.extend(rule.split(' '));
            nft(&br, &args)?;
        }
        Ok(())
    }
}

impl Drop for NetnsFaults {
    fn drop(&mut self) {
        let _ = self.heal();
    }
}

impl Faults for NetnsFaults {
    fn partition(&mut self, drops: &[(usize, usize)]) -> anyhow::Result<()> {
        let rules: Vec<String> = drops
            .iter()
            .map(|(a, b)| {
                format!(
                    "ip saddr {} ip daddr {} drop",
                    Topology::node_ip(*a),
                    Topology::node_ip(*b)
                )
            })
            .collect();
        self.rules(&rules)
    }

    fn loss(&mut self, percent: u32) -> anyhow::Result<()> {
        // Only between servers: the clients' namespace keeps a clean path.
        let servers = format!("10.88.0.1-10.88.0.{}", self.topology.nodes);
        self.rules(&[format!(
            "ip saddr {servers} ip daddr {servers} numgen random mod 100 < {percent} drop"
        )])
    }

    fn heal(&mut self) -> anyhow::Result<()> {
        if self.table {
            nft(&self.topology.bridge(), &["delete", "table", "bridge", TABLE])?;
            self.table = false;
        }
        for (node, mut child) in std::mem::take(&mut self.delayers) {
            ip_netns_exec(&self.topology.node(node), &["iptables", "-F", "OUTPUT"])?;
            let _ = child.kill();
            let _ = child.wait();
        }
        Ok(())
    }

    fn delay(&mut self, ms: u32) -> anyhow::Result<()> {
        self.heal()?;
        let me = std::env::current_exe()?;
        for node in 1..=self.topology.nodes {
            let ns = self.topology.node(node);
            let child = Command::new("ip")
                .args(["netns", "exec", &ns])
                .arg(&me)
                .args(["delayer", "--queue", DELAY_QUEUE, "--ms", &ms.to_string()])
                .stdout(Stdio::null())
                .spawn()
                .context("starting a delayer")?;
            self.delayers.push((node, child));
            ip_netns_exec(
                &ns,
                &[
                    "iptables",
                    "-A",
                    "OUTPUT",
                    "-o",
                    "eth0",
                    "-j",
                    "NFQUEUE",
                    "--queue-num",
                    DELAY_QUEUE,
                    "--queue-bypass",
                ],
            )?;
        }
        Ok(())
    }

    fn transfer_leader(&mut self, to: usize) -> anyhow::Result<()> {
        self.nodes
            .admin(&["leader", "transfer", "--shard", "0", "--to", &to.to_string()])
    }

    fn remove_node(&mut self, node: usize) -> anyhow::Result<()> {
        self.nodes
            .admin(&["node", "remove", "--shard", "0", "--id", &node.to_string()])?;
        self.nodes.kill(node);
        self.nodes.wipe(node)
    }

    fn add_node(&mut self, node: usize) -> anyhow::Result<()> {
        self.nodes.start(node)?;
        let (client, raft, http) = Nodes::addrs(node);
        self.nodes.admin(&[
            "node",
            "add",
            "--shard",
            "0",
            "--id",
            &node.to_string(),
            "--client-addr",
            &client.to_string(),
            "--raft-addr",
            &raft.to_string(),
            "--http-addr",
            &http.to_string(),
            "--timeout-secs",
            "30",
        ])
    }

    fn kill_chunkserver(&mut self, cs: usize) -> anyhow::Result<()> {
        self.nodes.kill_chunkserver(cs);
        Ok(())
    }

    fn restart_chunkserver(&mut self, cs: usize) -> anyhow::Result<()> {
        self.nodes.start_chunkserver(cs)
    }

    fn kill(&mut self, node: usize) -> anyhow::Result<()> {
        self.nodes.kill(node);
        Ok(())
    }

    fn restart(&mut self, node: usize) -> anyhow::Result<()> {
        self.nodes.start(node)
    }

    fn pause(&mut self, node: usize) -> anyhow::Result<()> {
        self.nodes.set_paused(node, true)
    }

    fn resume(&mut self, node: usize) -> anyhow::Result<()> {
        self.nodes.set_paused(node, false)
    }

    fn skew(&mut self, node: usize, secs: i64) -> anyhow::Result<()> {
        self.nodes.skew(node, secs)
    }
}
