//! The MooseNG chunkserver: stores chunk copies as files of checksummed 64 KiB blocks on
//! several data dirs, serves reads and chained writes on a QUIC data port, replicates chunks
//! on the metadata tier's orders, and reports its copies and capacity to the metadata tier.
//!
//! One entry point, [`run`], boots the whole server from a [`CsConfig`].
//!
//! # Module map
//!
//! | module | what it owns |
//! |---|---|
//! | `config` | [`CsConfig`], its defaults and [`CsConfig::validate`] |
//! | [`storage`] | the [`storage::Store`]: data dirs, the chunk file format, placement, checks, failed dirs, pending report changes (no networking, no async) |
//! | `service` | the data port's handler: requests to the store, chain forwarding |
//! | `replicate` | pulling a whole chunk from another chunkserver |
//! | `link_state` | the link's state machine and backoff (pure) |
//! | `mds_link` | registration, full and incremental reports, heartbeats, orders |
//! | `metrics` | Prometheus metrics (`mooseng_chunkserver_*`) |
//! | `http` | `/health`, `/status`, `/metrics` |
//! | `run` | wiring and shutdown; [`CsError`] |
//!
//! # Tests
//!
//! Unit tests beside the code: the chunk file format, the store on temporary dirs
//! (`storage/tests.rs`: round trips, versions, holes, truncation, corruption, torn writes,
//! placement, failed dirs), the config rules, the link's backoff, the metric names.
//! `tests/data_path.rs` runs whole chunkservers in-process on loopback with a temporary CA
//! and a scripted metadata server: chained writes, chain failures, replication orders,
//! reports, metrics and an unreachable metadata tier.

mod config;
mod http;
mod link_state;
mod mds_link;
mod metrics;
mod replicate;
mod run;
mod service;
pub mod storage;

pub use config::{ConfigError, CsConfig};
pub use run::{CsError, run};
