//! `mooseng mount`: the FUSE mount of a MooseNG file system.
//!
//! Two layers plus one errno table, as in mountpoint-s3:
//!
//! | module | what it owns |
//! |---|---|
//! | [`core`] | the file-system core: [`Fs`], every operation as an async method over a metadata service ([`Meta`]) and chunkservers ([`Data`]), with write-back buffering, read-ahead, directory streams, locks and the cache-invalidation watcher; it never mentions fuser |
//! | [`errno`] | the one mapping from [`FsError`] to a Linux errno |
//! | `fuse` | the thin fuser 0.18 layer: converts arguments, runs the core operation on the tokio runtime, replies |
//! | [`mount`] | [`MountConfig`] (with `-o` parsing) and [`run`]: mount, serve until shutdown or unmount, flush, unmount |
//!
//! POSIX choices the mount makes (where Linux leaves room) are listed in [`core`]'s
//! documentation.
//!
//! Tests come in two tiers: the core's unit tests run the core over in-memory fakes of
//! the metadata service and the chunkservers (`core/tests/`); the mount tests mount those
//! fakes through fuser at a temporary directory and use them through `std::fs`
//! (`mount/tests.rs`; skipped without `/dev/fuse` unless `REQUIRE_FUSE=1`).

pub mod core;
pub mod errno;
mod fuse;
pub mod mount;

pub use crate::core::{Data, Fs, FsConfig, FsError, Meta};
pub use crate::mount::{MountConfig, MountError, MountOptions, run};
