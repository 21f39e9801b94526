//! `mooseng admin status`: asks every metadata server in the cluster file for its view and
//! prints one row per (server, shard).

use std::net::SocketAddr;

use proto::admin::{AdminReply, AdminRequest, Role};

use crate::cmd::ClusterArgs;

/// Prints the table.
pub async fn run(args: ClusterArgs) -> anyhow::Result<()> {
    let (cluster, client) = args.client()?;
    println!(
        "{:>4}  {:<22} {:>5}  {:<9} {:>6} {:>7} {:>10} {:>10} {:>5}  {:<12} {:<10} {:>14}",
        "NODE",
        "CLIENT ADDR",
        "SHARD",
        "ROLE",
        "TERM",
        "LEADER",
        "COMMIT",
        "APPLIED",
        "LAG",
        "VOTERS",
        "LEARNERS",
        "LMDB USED/MAP"
    );
    let mut reachable = 0;
    for n in &cluster.nodes {
        let Ok(addr) = n.client_addr.parse::<SocketAddr>() else {
            continue;
        };
        match client.admin(addr, AdminRequest::Status).await {
            Ok(AdminReply::Status(s)) => {
                reachable += 1;
                let lmdb = format!("{}/{}", mib(s.lmdb_used), mib(s.lmdb_map));
                if s.shards.is_empty() {
                    println!(
                        "{:>4}  {:<22} {:>5}  {:<9}",
                        n.id, n.client_addr, "-", "no shards"
                    );
                }
                for sh in &s.shards {
                    println!(
                        "{:>4}  {:<22} {:>5}  {:<9} {:>6} {:>7} {:>10} {:>10} {:>5}  {:<12} {:<10} {:>14}",
                        n.id,
                        n.client_addr,
                        sh.shard,
                        role(sh.role),
                        sh.term,
                        if sh.leader == 0 {
                            "-".to_string()
                        } else {
                            sh.leader.to_string()
                        },
                        sh.commit,
                        sh.applied,
                        sh.commit.saturating_sub(sh.applied),
                        ids(&sh.voters),
                        ids(&sh.learners),
                        lmdb
                    );
                }
            }
            Ok(other) => println!("{:>4}  {:<22} unexpected answer {other:?}", n.id, n.client_addr),
            Err(e) => println!("{:>4}  {:<22} unreachable: {e}", n.id, n.client_addr),
        }
    }
    client.close().await;
    anyhow::ensure!(reachable > 0, "no metadata server answered");
    Ok(())
}

fn role(r: Role) -> &'static str {
    match r {
        Role::Leader => "leader",
        Role::Follower => "follower",
        Role::Candidate => "candidate",
        Role::PreCandidate => "precand",
        Role::Learner => "learner",
    }
}

fn ids(v: &[u64]) -> String {
    if v.is_empty() {
        "-".into()
    } else {
        v.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
    }
}

fn mib(b: u64) -> String {
    format!("{}M", b >> 20)
}
