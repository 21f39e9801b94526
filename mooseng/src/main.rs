//! `mooseng`: the single MooseNG binary.
//!
//! | subcommand | module | what it runs |
//! |---|---|---|
//! | `mds` | [`cmd::mds`] | a metadata server |
//! | `chunkserver` | [`cmd::chunkserver`] | a chunkserver |
//! | `mount` | [`cmd::mount`] | the FUSE mount |
//! | `demo` | [`cmd::demo`] | a whole local cluster, mounted |
//! | `admin init` | [`cmd::init`] | bootstrap a cluster: cluster file, CA, certificates |
//! | `admin status` | [`cmd::status`] | every metadata server's shards as a table |
//! | `admin node …`, `admin leader …` | [`cmd::membership`] | membership changes, leader transfer |
//! | `admin cert …` | [`cmd::cert`] | certificates for new nodes, chunkservers and clients |
//! | `admin goal …` | [`cmd::goal`] | replication goals and storage classes |
//! | `admin quota …` | [`cmd::quota`] | directory quotas |

mod cmd;
mod logging;

use clap::{Parser, Subcommand};

/// mimalloc: the metadata model allocates a few small objects per operation, and glibc's
/// allocator spent half of the model's time consolidating free lists (see
/// `crdt/benches/README.md`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// MooseNG: a MooseFS-family distributed file system with a highly available, sharded
/// metadata tier.
#[derive(Debug, Parser)]
#[command(name = "mooseng", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a metadata server.
    Mds(Box<cmd::mds::MdsArgs>),
    /// Run a chunkserver.
    Chunkserver(Box<cmd::chunkserver::ChunkserverArgs>),
    /// Mount the file system with FUSE.
    Mount(Box<cmd::mount::MountArgs>),
    /// Start a local cluster (3 metadata servers, 3 chunkservers) and mount it; Ctrl-C stops it.
    Demo(cmd::demo::DemoArgs),
    /// Administer a cluster.
    #[command(subcommand)]
    Admin(cmd::AdminCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    logging::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Mds(args) => cmd::mds::run(*args).await,
            Command::Chunkserver(args) => cmd::chunkserver::run(*args).await,
            Command::Mount(args) => cmd::mount::run(*args).await,
            Command::Demo(args) => cmd::demo::run(args).await,
            Command::Admin(a) => cmd::admin(a).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
