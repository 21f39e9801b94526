//! Replica convergence: after the heal every server must report the same applied index and
//! state digest.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use proto::admin::{AdminReply, AdminRequest};
use serde_json::{Value, json};

use super::work::Clients;
use crate::check::{Check, Verdict};
use crate::nemesis::netns::NetnsFaults;
use crate::nodes::Nodes;

/// Waits until every server reports the same applied index and state digest for the shard;
/// gives up at once if a server crashes meanwhile.
pub(super) async fn converge(
    clients: &Clients,
    faults: &Mutex<NetnsFaults>,
    n: usize,
    within: Duration,
) -> Check {
    let started = Instant::now();
    let mut last = Vec::new();
    let Ok(client) = clients.session() else {
        return Check {
            name: "replica convergence".into(),
            verdict: Verdict::Unknown("no client session could be made".into()),
            details: Value::Null,
        };
    };
    while started.elapsed() < within {
        let crashed = faults.lock().expect("faults lock").nodes.exited();
        if !crashed.is_empty() {
            return Check {
                name: "replica convergence".into(),
                verdict: Verdict::Unknown(format!(
                    "server(s) {crashed:?} exited during the final phase (see cluster-run/logs/)"
                )),
                details: json!({"crashed": crashed}),
            };
        }
        let mut seen = Vec::new();
        for i in 1..=n {
            let ask = client.admin(Nodes::client_addr(i), AdminRequest::Digest { shard: 0 });
            if let Ok(Ok(AdminReply::Digest { applied, digest, .. })) =
                tokio::time::timeout(Duration::from_secs(1), ask).await
            {
                seen.push((i, applied, digest));
            }
        }
        let agree = seen.len() == n && seen.iter().all(|s| s.1 == seen[0].1 && s.2 == seen[0].2);
        if agree {
            return Check {
                name: "replica convergence".into(),
                verdict: Verdict::Valid,
                details: json!({"applied": seen[0].1, "digest": seen[0].2, "after_ms": started.elapsed().as_millis() as u64}),
            };
        }
        last = seen;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let seen: Vec<Value> = last
        .iter()
        .map(|(i, a, d)| json!({"node": i, "applied": a, "digest": d}))
        .collect();
    let same_index = last.len() == n && last.iter().all(|s| s.1 == last[0].1);
    let verdict = if same_index {
        Verdict::Invalid(format!(
            "replicas at the same applied index hold different states: {seen:?}"
        ))
    } else {
        Verdict::Unknown(format!("replicas did not catch up within {within:?}: {seen:?}"))
    };
    Check {
        name: "replica convergence".into(),
        verdict,
        details: Value::Array(seen),
    }
}
