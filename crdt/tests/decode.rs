//! Decoders never panic: garbage, truncated, corrupted and future-version input gives an error
//! or a canonical value. This is the always-on companion of the cargo-fuzz targets in
//! `crdt/fuzz/`, which explore the same decoders for longer.
//!
//! Tier: property (proptest, 256 cases per property).

mod common;

use common::{Sim, steps};
use crdt::Crdt;
use crdt::codec::{self, DecodeError, Versioned, reencode};
use crdt::model::{Delta, Directory, DirectoryView, Inode, Namespace, QuotaUsage};
use proptest::prelude::*;
use proptest::test_runner::Config;

/// Decoding either fails cleanly or yields a value whose canonical encoding is a fixpoint.
fn check<T: Versioned>(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(canonical) = reencode::<T>(bytes) {
        prop_assert_eq!(
            reencode::<T>(&canonical).expect("canonical bytes decode"),
            canonical
        );
    }
    Ok(())
}

/// A decoded state behaves as a CRDT state: joining it with itself changes nothing.
fn idempotent<T: Versioned + Crdt + Clone + PartialEq + std::fmt::Debug>(
    bytes: &[u8],
) -> Result<(), TestCaseError> {
    if let Ok(v) = codec::decode::<T>(bytes) {
        let mut joined = v.clone();
        joined.join(&v);
        prop_assert_eq!(joined, v);
    }
    Ok(())
}

fn check_all(bytes: &[u8]) -> Result<(), TestCaseError> {
    check::<Delta>(bytes)?;
    check::<Inode>(bytes)?;
    check::<Directory>(bytes)?;
    check::<QuotaUsage>(bytes)?;
    check::<Namespace>(bytes)?;
    idempotent::<Inode>(bytes)?;
    idempotent::<Directory>(bytes)?;
    idempotent::<Namespace>(bytes)?;
    if let Ok(dir) = codec::decode::<Directory>(bytes) {
        for v in dir.visible() {
            prop_assert_eq!(dir.lookup(&v.name), Some(v.entry.ino));
        }
    }
    Ok(())
}

/// Valid encodings of every decoded type, taken from a simulation run.
fn encodings(sim: &Sim) -> Vec<Vec<u8>> {
    let ns = &sim.replicas[0].ns;
    let mut out: Vec<Vec<u8>> = sim.produced.iter().map(codec::encode).collect();
    out.push(codec::encode(ns));
    for ino in sim.live_inodes(0) {
        out.push(codec::encode(ns.record(ino).expect("live")));
        if let Some(d) = ns.dir(ino) {
            out.push(codec::encode(d));
        }
    }
    out
}

proptest! {
    #![proptest_config(Config { cases: 256, ..Config::default() })]

    #[test]
    fn decoding_garbage_never_panics(kind in any::<u8>(), version in 0u8..3, body in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut bytes = vec![kind, version];
        bytes.extend(body);
        check_all(&bytes)?;
    }

    #[test]
    fn decoding_corrupted_or_truncated_encodings_never_panics(
        s in steps(true),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        cut in any::<usize>(),
    ) {
        let sim = Sim::run(&s);
        for good in encodings(&sim) {
            let mut bad = good.clone();
            for &(at, byte) in &flips {
                let i = at % bad.len();
                bad[i] = byte;
            }
            check_all(&bad)?;
            check_all(&good[..cut % good.len()])?;
        }
    }

    #[test]
    fn every_encoding_round_trips(s in steps(true)) {
        let sim = Sim::run(&s);
        for d in &sim.produced {
            prop_assert_eq!(&codec::decode::<Delta>(&codec::encode(d)).unwrap(), d);
        }
        let ns = &sim.replicas[1].ns;
        prop_assert_eq!(&codec::decode::<Namespace>(&codec::encode(ns)).unwrap(), ns);
    }
}

/// Inputs the fuzzers once crashed on (one file per input, named after its target).
#[test]
fn fuzz_regressions_decode_cleanly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let mut n = 0;
    for file in std::fs::read_dir(&dir).unwrap() {
        let bytes = std::fs::read(file.unwrap().path()).unwrap();
        check_all(&bytes).unwrap();
        n += 1;
    }
    assert!(n > 0, "no regression inputs in {}", dir.display());
}

#[test]
fn future_versions_are_refused_for_every_type() {
    fn refused<T: Versioned>() {
        let bytes = [T::KIND, T::VERSION + 1, 0, 0, 0];
        assert_eq!(
            codec::decode::<T>(&bytes).err(),
            Some(DecodeError::UnsupportedVersion {
                found: T::VERSION + 1,
                newest: T::VERSION
            })
        );
    }
    refused::<Delta>();
    refused::<Inode>();
    refused::<Directory>();
    refused::<QuotaUsage>();
    refused::<Namespace>();
}
