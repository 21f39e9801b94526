//! Structured logs to stderr through `tracing`; `RUST_LOG` picks levels
//! (default: info, with raft-rs and quinn at warn).

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// Installs the log subscriber.
pub fn init() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,raft=warn,quinn=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}
