//! The nemesis loop (plans a fault from the seed, starts it, holds it, ends it, rests) and the
//! final heal of every fault.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use proto::admin::{AdminReply, AdminRequest, Role};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use super::Options;
use super::recorder::Recorder;
use super::work::Clients;
use crate::nemesis::netns::NetnsFaults;
use crate::nemesis::{Fault, Faults, plan};
use crate::nodes::Nodes;

fn leader(clients: &Clients, handle: &tokio::runtime::Handle, n: usize) -> Option<usize> {
    let client = clients.session().ok()?;
    handle.block_on(async {
        for i in 1..=n {
            let ask = client.admin(Nodes::client_addr(i), AdminRequest::Status);
            if let Ok(Ok(AdminReply::Status(s))) = tokio::time::timeout(Duration::from_millis(300), ask).await
                && s.shards.iter().any(|s| s.role == Role::Leader)
            {
                return Some(i);
            }
        }
        None
    })
}

pub(super) fn nemesis_loop(
    opts: &Options,
    faults: &Mutex<NetnsFaults>,
    recorder: &Recorder,
    clients: &Clients,
    handle: &tokio::runtime::Handle,
    deadline: Instant,
) -> anyhow::Result<usize> {
    if opts.nemesis.is_empty() {
        return Ok(0);
    }
    let mut rng = StdRng::seed_from_u64(opts.seed.rotate_left(17) ^ 0xA5A5);
    let n = opts.nodes;
    let mut count = 0;
    // This loop runs on a blocking-pool thread of its own (spawn_blocking), so it may sleep.
    #[allow(clippy::disallowed_methods, reason = "runs on a spawn_blocking thread")]
    let sleep_until = |t: Instant| {
        while Instant::now() < t.min(deadline) {
            std::thread::sleep(Duration::from_millis(20).min(t.min(deadline) - Instant::now()));
        }
    };
    sleep_until(Instant::now() + opts.interval);
    while Instant::now() < deadline {
        let family = opts.nemesis[rng.gen_range(0..opts.nemesis.len())];
        let leader = leader(clients, handle, n);
        let fault: Fault = plan(
            family,
            &mut rng,
            (n, opts.chunkservers),
            leader,
            opts.skew,
            &opts.partition_modes,
        );
        recorder.nemesis(format!("start-{}", fault.name()), serde_json::to_value(&fault)?);
        fault.start(&mut *faults.lock().expect("faults lock"))?;
        count += 1;
        sleep_until(Instant::now() + opts.interval);
        fault.stop(&mut *faults.lock().expect("faults lock"))?;
        recorder.nemesis(format!("stop-{}", fault.name()), serde_json::to_value(&fault)?);
        sleep_until(Instant::now() + opts.interval);
    }
    Ok(count)
}

pub(super) fn heal_all(faults: &mut NetnsFaults, recorder: &Recorder) -> anyhow::Result<()> {
    faults.heal()?;
    for i in 1..=faults.nodes.len() {
        if faults.nodes.paused(i) {
            faults.resume(i)?;
        }
        if faults.nodes.can_skew() {
            faults.skew(i, 0)?;
        }
        faults.restart(i)?;
    }
    for cs in 1..=faults.topology.chunkservers {
        faults.restart_chunkserver(cs)?;
    }
    recorder.nemesis("final-heal".into(), json!({"healed": true}));
    Ok(())
}
