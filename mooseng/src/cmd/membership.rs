//! `mooseng admin node add|promote|remove` and `mooseng admin leader transfer`. Requests go
//! to the shard's leader (found from the topology and not-leader hints); a new node joins as a
//! learner, is promoted once caught up, and every voter change uses joint consensus.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Subcommand;
use client::{ClientError, MdsClient};
use proto::RpcError;
use proto::admin::{AdminReply, AdminRequest, NodeInfo};

use crate::cmd::ClusterArgs;

/// `admin node …`.
#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Add a metadata server to a shard: as a learner, then (unless --learner) promote it to
    /// voter once it has caught up.
    Add {
        #[command(flatten)]
        cluster: ClusterArgs,
        /// The shard.
        #[arg(long, default_value_t = 0)]
        shard: u32,
        /// The new server's node id.
        #[arg(long)]
        id: u64,
        /// Its client address.
        #[arg(long)]
        client_addr: String,
        /// Its raft address.
        #[arg(long)]
        raft_addr: String,
        /// Its HTTP address.
        #[arg(long)]
        http_addr: String,
        /// Stop after adding it as a learner.
        #[arg(long)]
        learner: bool,
        /// How long to wait for it to catch up.
        #[arg(long, default_value_t = 120)]
        timeout_secs: u64,
    },
    /// Promote a learner of a shard to voter.
    Promote {
        #[command(flatten)]
        cluster: ClusterArgs,
        /// The shard.
        #[arg(long, default_value_t = 0)]
        shard: u32,
        /// The learner's node id.
        #[arg(long)]
        id: u64,
        /// How long to wait for it to catch up.
        #[arg(long, default_value_t = 120)]
        timeout_secs: u64,
    },
    /// Remove a metadata server from a shard.
    Remove {
        #[command(flatten)]
        cluster: ClusterArgs,
        /// The shard.
        #[arg(long, default_value_t = 0)]
        shard: u32,
        /// The node id to remove.
        #[arg(long)]
        id: u64,
    },
}

/// `admin leader …`.
#[derive(Debug, Subcommand)]
pub enum LeaderCommand {
    /// Move a shard's leadership to another voter.
    Transfer {
        #[command(flatten)]
        cluster: ClusterArgs,
        /// The shard.
        #[arg(long, default_value_t = 0)]
        shard: u32,
        /// The node to lead it.
        #[arg(long)]
        to: u64,
    },
}

/// Sends `req` to the leader of `shard`, following not-leader hints and retrying retryable
/// refusals until `timeout`, printing why it waits.
async fn at_leader(
    client: &MdsClient,
    shard: u32,
    req: AdminRequest,
    timeout: Duration,
) -> anyhow::Result<AdminReply> {
    let started = Instant::now();
    let mut target: Option<SocketAddr> = None;
    let mut last_note = String::new();
    loop {
        let addr = match target {
            Some(a) => a,
            None => leader_addr(client, shard).await?,
        };
        match client.admin(addr, req.clone()).await {
            Ok(r) => return Ok(r),
            Err(ClientError::Rpc(RpcError::NotLeader { leader, .. })) => {
                target = leader.and_then(|(_, a)| a.parse().ok()).filter(|a| *a != addr);
                if target.is_none() {
                    client.refresh_topology().await.ok();
                }
            }
            Err(ClientError::Rpc(e)) if e.is_retryable() => {
                let note = e.to_string();
                if note != last_note {
                    eprintln!("waiting: {note}");
                    last_note = note;
                }
                target = None;
            }
            Err(ClientError::Net(e)) if e.is_retryable() => target = None,
            Err(e) => return Err(e).context("admin request refused"),
        }
        if started.elapsed() > timeout {
            bail!(
                "gave up after {timeout:?}: {}",
                if last_note.is_empty() {
                    "no leader answered"
                } else {
                    &last_note
                }
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn leader_addr(client: &MdsClient, shard: u32) -> anyhow::Result<SocketAddr> {
    let t = client.refresh_topology().await.context("fetch the topology")?;
    let leader = t
        .leaders
        .iter()
        .find(|(s, l)| *s == shard && *l != 0)
        .map(|(_, l)| *l);
    let node = leader
        .and_then(|l| t.nodes.iter().find(|n| n.id == l))
        .or(t.nodes.first());
    node.and_then(|n| n.client_addr.parse().ok())
        .context("no metadata server known")
}

/// Runs `admin node …`.
pub async fn node(cmd: NodeCommand) -> anyhow::Result<()> {
    match cmd {
        NodeCommand::Add {
            cluster,
            shard,
            id,
            client_addr,
            raft_addr,
            http_addr,
            learner,
            timeout_secs,
        } => {
            let (_, client) = cluster.client()?;
            let node = NodeInfo {
                id,
                client_addr,
                raft_addr,
                http_addr,
            };
            let timeout = Duration::from_secs(timeout_secs);
            at_leader(&client, shard, AdminRequest::AddLearner { shard, node }, timeout).await?;
            println!("node {id} joined shard {shard} as a learner");
            if !learner {
                at_leader(&client, shard, AdminRequest::Promote { shard, node: id }, timeout).await?;
                println!("node {id} promoted to voter of shard {shard}");
            }
            client.close().await;
        }
        NodeCommand::Promote {
            cluster,
            shard,
            id,
            timeout_secs,
        } => {
            let (_, client) = cluster.client()?;
            at_leader(
                &client,
                shard,
                AdminRequest::Promote { shard, node: id },
                Duration::from_secs(timeout_secs),
            )
            .await?;
            println!("node {id} promoted to voter of shard {shard}");
            client.close().await;
        }
        NodeCommand::Remove { cluster, shard, id } => {
            let (_, client) = cluster.client()?;
            at_leader(
                &client,
                shard,
                AdminRequest::RemoveNode { shard, node: id },
                Duration::from_secs(30),
            )
            .await?;
            println!("node {id} removed from shard {shard}");
            client.close().await;
        }
    }
    Ok(())
}

/// Runs `admin leader …`.
pub async fn leader(cmd: LeaderCommand) -> anyhow::Result<()> {
    let LeaderCommand::Transfer { cluster, shard, to } = cmd;
    let (_, client) = cluster.client()?;
    at_leader(
        &client,
        shard,
        AdminRequest::TransferLeader { shard, to },
        Duration::from_secs(10),
    )
    .await?;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        let t = client.refresh_topology().await?;
        if t.leaders.iter().any(|(s, l)| *s == shard && *l == to) {
            println!("shard {shard} is now led by node {to}");
            client.close().await;
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("leadership of shard {shard} did not move to node {to} within 5 s (is it an up-to-date voter?)")
}
