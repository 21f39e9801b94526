//! Files through a FUSE mount: clients create files `f<k>/<n>` holding their number (64 KiB of
//! it, so the data travels through the chunkservers), fsync and close them; listings during
//! the run read every file back. The final listings go through a second mount made after the
//! heal, with nothing cached, so they show what the servers kept. Checked with set-full: a file
//! whose create, write and fsync succeeded must be there, with its contents; a file with
//! wrong contents counts as an element nobody added.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use rand::Rng;
use serde_json::{Value, json};

use super::{Invocation, Outcome};
use crate::history::Kind;

/// Bytes written to each file.
const SIZE: usize = 64 * 1024;

/// The files workload.
#[derive(Debug)]
pub struct Files {
    root: Mutex<PathBuf>,
    keys: usize,
    next: AtomicI64,
}

impl Files {
    /// Creates (or finds) the `keys` directories under the mount `root`.
    pub fn setup(root: &Path, keys: usize) -> anyhow::Result<Files> {
        for k in 0..keys {
            std::fs::create_dir_all(root.join(format!("f{k}")))?;
        }
        Ok(Files {
            root: Mutex::new(root.to_path_buf()),
            keys,
            next: AtomicI64::new(1),
        })
    }

    /// Reads from now on go through the mount at `root` (the fresh one of the final phase).
    pub fn read_through(&self, root: &Path) {
        *self.root.lock().expect("root lock") = root.to_path_buf();
    }

    /// The next operation: mostly new files, sometimes a listing.
    pub fn generate(&self, rng: &mut impl Rng) -> Invocation {
        if rng.gen_bool(0.1) {
            Invocation::read(format!("f{}", rng.gen_range(0..self.keys)))
        } else {
            let e = self.next.fetch_add(1, Ordering::Relaxed);
            Invocation {
                f: "add",
                key: Some(format!("f{}", e as usize % self.keys)),
                value: json!(e),
            }
        }
    }

    /// A listing of every directory, for the final phase.
    pub fn final_reads(&self) -> Vec<Invocation> {
        Invocation::reads_of_all("f", self.keys)
    }

    /// Whether `inv` changes state.
    pub fn is_mutation(inv: &Invocation) -> bool {
        inv.f == "add"
    }

    /// Performs `inv` on a blocking thread (file-system calls block).
    pub async fn invoke(&self, inv: &Invocation) -> Outcome {
        let dir = self
            .root
            .lock()
            .expect("root lock")
            .join(format!("f{}", inv.key_index()));
        let inv = inv.clone();
        let done = tokio::task::spawn_blocking(move || match inv.value.as_i64() {
            Some(e) if inv.f == "add" => match create(&dir.join(e.to_string()), e) {
                Ok(()) => Outcome::ok(inv.value.clone()),
                // Some of it may have happened: the file may exist, with or without data.
                Err(err) => Outcome::not_ok(Kind::Info, inv.value.clone(), err.to_string()),
            },
            _ => match list(&dir) {
                Ok(elements) => Outcome::ok(json!(elements)),
                Err(err) => Outcome::not_ok(Kind::Fail, Value::Null, err.to_string()),
            },
        })
        .await;
        done.unwrap_or_else(|e| {
            Outcome::not_ok(Kind::Info, Value::Null, format!("the file call panicked: {e}"))
        })
    }
}

fn contents(e: i64) -> Vec<u8> {
    format!("{e:020}\n")
        .into_bytes()
        .into_iter()
        .cycle()
        .take(SIZE)
        .collect()
}

fn create(path: &Path, e: i64) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(&contents(e))?;
    f.sync_all()
}

/// The elements in `dir` whose contents are complete. A file holding a beginning of its
/// contents is being written (a listing concurrent with its create): left out, as if not
/// there yet — if its create had finished before the listing began, the checker calls it
/// stale. One holding anything else is listed as its negation (never added, so the checker
/// reports it).
fn list(dir: &Path) -> std::io::Result<Vec<i64>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(e) = name.to_str().and_then(|n| n.parse::<i64>().ok()) else {
            out.push(i64::MIN);
            continue;
        };
        let mut data = Vec::new();
        std::fs::File::open(entry.path())?.read_to_end(&mut data)?;
        let expected = contents(e);
        if data == expected {
            out.push(e);
        } else if !expected.starts_with(&data) {
            out.push(-e);
        }
    }
    Ok(out)
}
