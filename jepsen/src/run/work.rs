//! The workload of a run (one of the workload modules behind one enum) and the client
//! sessions its processes use.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use client::MdsClient;
use rand::rngs::StdRng;

use crate::workload::counter::Counters;
use crate::workload::files::Files;
use crate::workload::register::Registers;
use crate::workload::set::Sets;
use crate::workload::tree::Tree;
use crate::workload::{Invocation, Name, Outcome, Route};

#[derive(Debug)]
pub(super) enum Work {
    /// Registers.
    Register(Registers),
    /// Sets.
    Set(Sets),
    /// Counters.
    Counter(Counters),
    /// Rename-tree.
    Tree(Tree),
    /// Files through a FUSE mount.
    Files(Files),
}

impl Work {
    /// Sets the workload up (retrying for 30 s while the cluster elects its first leader).
    pub(super) async fn setup(
        name: Name,
        keys: usize,
        clients: &Clients,
        mount: Option<&std::path::Path>,
    ) -> anyhow::Result<Work> {
        let client = clients.session()?;
        let started = Instant::now();
        loop {
            let made = match name {
                Name::Register => Registers::setup(&client, keys).await.map(Work::Register),
                Name::Set => Sets::setup(&client, keys).await.map(Work::Set),
                Name::Counter => Counters::setup(&client, keys).await.map(Work::Counter),
                Name::RenameTree => Tree::setup(&client, keys).await.map(Work::Tree),
                Name::Files => {
                    let root = mount.context("the files workload needs a mount")?.to_path_buf();
                    tokio::task::spawn_blocking(move || Files::setup(&root, keys))
                        .await?
                        .map(Work::Files)
                }
            };
            match made {
                Ok(w) => return Ok(w),
                Err(e) if started.elapsed() < Duration::from_secs(30) => {
                    verbose(&format!("setup not ready yet: {e}"));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(e.context("setting up the workload (is the cluster up?)")),
            }
        }
    }

    pub(super) fn generate(&self, rng: &mut StdRng) -> Invocation {
        match self {
            Work::Register(w) => w.generate(rng),
            Work::Set(w) => w.generate(rng),
            Work::Counter(w) => w.generate(rng),
            Work::Tree(w) => w.generate(rng),
            Work::Files(w) => w.generate(rng),
        }
    }

    pub(super) fn final_reads(&self) -> Vec<Invocation> {
        match self {
            Work::Register(w) => w.final_reads(),
            Work::Set(w) => w.final_reads(),
            Work::Counter(w) => w.final_reads(),
            Work::Tree(w) => w.final_reads(),
            Work::Files(w) => w.final_reads(),
        }
    }

    pub(super) fn is_mutation(&self, inv: &Invocation) -> bool {
        match self {
            Work::Register(_) => Registers::is_mutation(inv),
            Work::Set(_) => Sets::is_mutation(inv),
            Work::Counter(_) => Counters::is_mutation(inv),
            Work::Tree(_) => Tree::is_mutation(inv),
            Work::Files(_) => Files::is_mutation(inv),
        }
    }

    pub(super) async fn invoke(&self, client: &MdsClient, inv: &Invocation, route: Route) -> Outcome {
        match self {
            Work::Register(w) => w.invoke(client, inv, route).await,
            Work::Set(w) => w.invoke(client, inv, route).await,
            Work::Counter(w) => w.invoke(client, inv, route).await,
            Work::Tree(w) => w.invoke(client, inv, route).await,
            Work::Files(w) => w.invoke(inv).await,
        }
    }
}

pub(super) struct Clients {
    pub(super) seeds: Vec<std::net::SocketAddr>,
    pub(super) tls: net::TlsFiles,
    pub(super) op_timeout: Duration,
}

impl Clients {
    pub(super) fn session(&self) -> anyhow::Result<MdsClient> {
        let mut c = MdsClient::new(self.seeds.clone(), &self.tls)?;
        c.deadline = self.op_timeout;
        c.attempt_timeout = self.op_timeout.min(Duration::from_millis(500));
        Ok(c)
    }
}

fn verbose(msg: &str) {
    if std::env::var_os("JEPSEN_VERBOSE").is_some() {
        eprintln!("jepsen: {msg}");
    }
}
