//! Benchmarks of the metadata model (`cargo bench -p crdt`). See `crdt/benches/README.md`.
//!
//! 1. Applying create-file deltas to a directory that already holds 1,000,000 entries.
//! 2. Joining two diverged replicas of 100,000 entries.
//! 3. Encoded bytes per create delta.
//!
//! Criterion measures 1 and 2; a plain timed pass then prints the three figures with their
//! goals, so the numbers are visible without reading criterion's report.

use std::hint::black_box;
use std::time::{Duration, Instant};

use crdt::model::{Delta, FileKind, FileTime, Ino, Name, Namespace, NewInode};
use crdt::{Crdt, Hlc, NodeId, codec};
use criterion::{BatchSize, Criterion, Throughput};
use uuid::Uuid;

/// The allocator the `mooseng` binary ships with; the model's cost is mostly allocation, so
/// measuring under another allocator would measure something that does not ship.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DIR_ENTRIES: u64 = 1_000_000;
const JOIN_ENTRIES: u64 = 100_000;
const APPLY_GOAL_OPS: f64 = 1_000_000.0;
const BYTES_GOAL: usize = 128;

/// An inode id as the metadata servers allocate them: a per-(node, bucket) counter in the high
/// bits, the allocating node and bucket in the low 24 bits.
fn ino(counter: u64, node: u64, bucket: u64) -> Ino {
    Ino((counter << 24) | (node << 12) | bucket)
}

/// Makes create-file deltas the way a metadata server does: create + link + parent touch.
struct Writer {
    ns: Namespace,
    clock: Hlc,
    node: u64,
    next: u64,
    wall_ms: u64,
}

impl Writer {
    fn new(node: u64) -> Self {
        let clock = Hlc::new(NodeId(node), Duration::from_millis(500));
        Writer {
            ns: Namespace::new(),
            clock,
            node,
            next: 0,
            wall_ms: 1_790_000_000_000,
        }
    }

    fn create(&mut self, dir: Ino) -> Delta {
        self.next += 1;
        self.wall_ms += u64::from(self.next.is_multiple_of(7));
        let time = FileTime::new((self.wall_ms / 1000) as i64, 123_456_789).unwrap();
        let file = ino(self.next, self.node, 0x2a7);
        let name = Name::new(format!("file-{:07}", self.next)).unwrap();
        let id = Uuid::from_u64_pair(self.node, self.next);
        let mut edit = self.ns.edit(self.clock.now(self.wall_ms), id).unwrap();
        edit.create(
            file,
            NewInode {
                kind: FileKind::File,
                mode: 0o644,
                uid: 1000,
                gid: 1000,
                rdev: 0,
                time,
                nlink: 1,
                symlink: None,
            },
        );
        edit.link(dir, name, file);
        edit.touch(dir, time);
        edit.finish()
    }

    fn remove(&mut self, dir: Ino, n: u64) -> Delta {
        let file = ino(n, self.node, 0x2a7);
        let name = Name::new(format!("file-{n:07}")).unwrap();
        let mut edit = self
            .ns
            .edit(self.clock.now(self.wall_ms), Uuid::from_u64_pair(self.node, !n))
            .unwrap();
        edit.unlink(dir, name, file);
        edit.delete(file);
        edit.finish()
    }
}

fn root_delta() -> Delta {
    let mut ns = Namespace::new();
    let mut clock = Hlc::new(NodeId(1), Duration::from_millis(500));
    let mut edit = ns.edit(clock.now(1), Uuid::from_u128(1)).unwrap();
    let time = FileTime::new(0, 0).unwrap();
    edit.create(
        Ino::ROOT,
        NewInode {
            kind: FileKind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
            rdev: 0,
            time,
            nlink: 2,
            symlink: None,
        },
    );
    edit.finish()
}

/// A replica whose root holds `n` entries, and the writer that made them.
fn populated(n: u64) -> (Namespace, Writer) {
    let mut writer = Writer::new(3);
    let mut replica = Namespace::new();
    replica.apply(&root_delta());
    for _ in 0..n {
        replica.apply(&writer.create(Ino::ROOT));
    }
    (replica, writer)
}

/// Two replicas that share `n` entries, then each creates `n / 10` and removes `n / 100`.
fn diverged(n: u64) -> (Namespace, Namespace) {
    let (base, _) = populated(n - n / 10);
    let (mut a, mut b) = (base.clone(), base);
    for (replica, node) in [(&mut a, 5), (&mut b, 6)] {
        let mut w = Writer::new(node);
        for _ in 0..n / 10 {
            replica.apply(&w.create(Ino::ROOT));
        }
    }
    let mut remover = Writer::new(3);
    for k in 1..=n / 100 {
        a.apply(&remover.remove(Ino::ROOT, k));
        b.apply(&remover.remove(Ino::ROOT, n / 100 + k));
    }
    (a, b)
}

/// Criterion's view of apply: the directory starts at 1,000,000 entries and keeps growing
/// across samples (deltas are made outside the timed section).
/// Applies `creates` fresh create deltas to `replica` and returns the time that took; then,
/// untimed, removes those files again and collects their tombstones, so the directory is back
/// at its size and the next round reuses the memory this one freed (a replica's steady state).
fn steady_round(replica: &mut Namespace, writer: &mut Writer, creates: u64) -> Duration {
    let first = writer.next + 1;
    let deltas: Vec<Delta> = (0..creates).map(|_| writer.create(Ino::ROOT)).collect();
    let start = Instant::now();
    for d in &deltas {
        black_box(replica.apply(d));
    }
    let elapsed = start.elapsed();
    let mut stable = None;
    for n in first..first + creates {
        let d = writer.remove(Ino::ROOT, n);
        replica.apply(&d);
        stable = Some(d.hlc);
    }
    if let Some(stable) = stable {
        replica.collect_garbage(stable);
        writer.ns.collect_garbage(stable);
    }
    elapsed
}

/// Criterion's view of apply in steady state: one iteration is a batch of 10,000 create deltas
/// into the directory, which holds 1,000,000 entries when each batch starts.
fn bench_apply(c: &mut Criterion, replica: &mut Namespace, writer: &mut Writer) {
    const BATCH: u64 = 10_000;
    let mut g = c.benchmark_group("apply");
    g.throughput(Throughput::Elements(BATCH));
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    g.bench_function("10k_create_deltas_into_1M_dir", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| steady_round(replica, writer, BATCH)).sum())
    });
    g.finish();
}

fn bench_join(c: &mut Criterion, a: &Namespace, b: &Namespace) {
    let mut g = c.benchmark_group("join");
    g.throughput(Throughput::Elements(JOIN_ENTRIES));
    g.sample_size(10);
    g.bench_function("diverged_replicas_100k", |bench| {
        bench.iter_batched(|| a.clone(), |mut x| x.join(b), BatchSize::LargeInput)
    });
    g.finish();
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    eprintln!("building a replica with {DIR_ENTRIES} entries in one directory...");
    let (base, mut writer) = populated(DIR_ENTRIES);
    let (a, b) = diverged(JOIN_ENTRIES);

    // Cold: 1,000,000 create deltas into a fresh copy of the 1M-entry replica. Every byte the
    // new entries take is memory the process touches for the first time.
    let pending: Vec<Delta> = (0..DIR_ENTRIES).map(|_| writer.create(Ino::ROOT)).collect();
    let sizes: Vec<usize> = pending
        .iter()
        .take(10_000)
        .map(|d| codec::encode(d).len())
        .collect();
    let mut replica = base.clone();
    let start = Instant::now();
    for d in &pending {
        replica.apply(d);
    }
    let cold_ops = pending.len() as f64 / start.elapsed().as_secs_f64();
    drop((replica, pending));

    // Steady state: ten rounds of 100,000 creates into the 1M-entry directory, each followed
    // (untimed) by removing them again.
    let mut replica = base.clone();
    let rounds: Duration = (0..10)
        .map(|_| steady_round(&mut replica, &mut writer, DIR_ENTRIES / 10))
        .sum();
    let steady_ops = DIR_ENTRIES as f64 / rounds.as_secs_f64();

    bench_apply(&mut criterion, &mut replica, &mut writer);
    bench_join(&mut criterion, &a, &b);
    criterion.final_summary();

    let mut joined = a.clone();
    let start = Instant::now();
    joined.join(&b);
    let join_s = start.elapsed().as_secs_f64();

    let bytes = sizes.iter().sum::<usize>() as f64 / sizes.len() as f64;
    let max_bytes = sizes.iter().copied().max().unwrap_or(0);

    println!();
    println!("crdt metadata benchmark (one core)");
    println!(
        "  apply create-file delta into a 1M-entry dir, steady:  {steady_ops:>12.0} ops/s  (goal >= {APPLY_GOAL_OPS:.0}) {}",
        verdict(steady_ops >= APPLY_GOAL_OPS)
    );
    println!(
        "  apply create-file delta, 1M->2M entries, cold memory: {cold_ops:>12.0} ops/s  (first touch of new memory: page faults)"
    );
    println!(
        "  join two diverged replicas of {JOIN_ENTRIES} entries:     {:>12.1} ms    ({:.0} entries/s)",
        join_s * 1e3,
        JOIN_ENTRIES as f64 / join_s
    );
    println!(
        "  encoded bytes per create delta:                        {bytes:>12.1} B     (max {max_bytes}, goal <= {BYTES_GOAL}) {}",
        verdict(max_bytes <= BYTES_GOAL)
    );
}

fn verdict(ok: bool) -> &'static str {
    if ok { "OK" } else { "MISSED" }
}
