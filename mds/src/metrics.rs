//! Prometheus metrics of the metadata server. Every name starts with `mooseng_`.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use proto::admin::Role;

use crate::raft::Group;

/// Labels of per-shard metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShardLabel {
    /// Shard id.
    pub shard: u32,
}

/// Labels of per-operation metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabels {
    /// Operation name (`create`, `lookup`, …).
    pub operation: &'static str,
    /// Outcome.
    pub result: Outcome,
}

/// The outcome of an operation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum Outcome {
    /// Answered (including POSIX errors).
    Ok,
    /// Failed with a retryable routing or availability error.
    Retry,
    /// Failed otherwise.
    Error,
}

/// The server's metrics.
#[derive(Debug)]
pub struct Metrics {
    /// The registry to encode.
    pub registry: Registry,
    /// Raft proposals made.
    pub proposals: Counter,
    /// Duration of one host round's persistence (the write-ahead log append and its fsync).
    pub round_seconds: Histogram,
    /// Duration of one LMDB commit of applied entries (its fsync included).
    pub lmdb_commit_seconds: Histogram,
    /// Committed entries above LMDB's applied index at start, applied again from the
    /// write-ahead log.
    pub wal_replayed: Gauge,
    /// Operations served.
    pub operations: Family<OpLabels, Counter>,
    /// Operation latency.
    pub operation_seconds: Family<OpLabels, Histogram>,
    role: Family<ShardLabel, Gauge>,
    leader: Family<ShardLabel, Gauge>,
    term: Family<ShardLabel, Gauge>,
    commit: Family<ShardLabel, Gauge>,
    applied: Family<ShardLabel, Gauge>,
    apply_lag: Family<ShardLabel, Gauge>,
    /// LMDB bytes in use.
    pub lmdb_used: Gauge,
    /// LMDB map size.
    pub lmdb_map: Gauge,
    /// Chunkservers heard within the dead-after interval.
    pub chunkservers_alive: Gauge,
    /// Chunks below their goal, by shard led here (last complete scan).
    pub chunks_under_goal: Family<ShardLabel, Gauge>,
    /// Chunks without a valid live copy, by shard led here (last complete scan).
    pub chunks_missing: Family<ShardLabel, Gauge>,
    /// Orders queued for chunkservers, by kind.
    pub chunk_orders: Family<OrderLabel, Counter>,
}

/// Labels of chunk orders.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OrderLabel {
    /// `replicate` or `delete`.
    pub kind: &'static str,
}

fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("mooseng");
        let proposals = Counter::default();
        let round_seconds = latency();
        let lmdb_commit_seconds = latency();
        let wal_replayed = Gauge::default();
        let operations = Family::<OpLabels, Counter>::default();
        let operation_seconds = Family::<OpLabels, Histogram>::new_with_constructor(latency);
        let (role, leader, term, commit, applied, apply_lag) = Default::default();
        let (lmdb_used, lmdb_map, chunkservers_alive) = Default::default();
        let (chunks_under_goal, chunks_missing, chunk_orders) = Default::default();
        registry.register(
            "raft_proposals",
            "Raft proposals made by this node",
            proposals.clone(),
        );
        registry.register(
            "raft_round_seconds",
            "Duration of one host round's persistence: the write-ahead log append (one fsync) for all shards",
            round_seconds.clone(),
        );
        registry.register(
            "lmdb_commit_seconds",
            "Duration of one LMDB commit of applied entries, its fsync included",
            lmdb_commit_seconds.clone(),
        );
        registry.register(
            "wal_replayed_entries",
            "Committed entries above LMDB's applied index at start, applied again from the write-ahead log",
            wal_replayed.clone(),
        );
        registry.register("operations", "Client operations served", operations.clone());
        registry.register(
            "operation_duration_seconds",
            "Client operation latency",
            operation_seconds.clone(),
        );
        registry.register(
            "raft_role",
            "Raft role: 0 follower, 1 candidate, 2 leader, 3 learner",
            Family::clone(&role),
        );
        registry.register(
            "raft_leader",
            "1 if this node leads the shard",
            Family::clone(&leader),
        );
        registry.register("raft_term", "Raft term", Family::clone(&term));
        registry.register(
            "raft_commit_index",
            "Highest committed raft index",
            Family::clone(&commit),
        );
        registry.register(
            "raft_applied_index",
            "Highest applied raft index",
            Family::clone(&applied),
        );
        registry.register(
            "raft_apply_lag",
            "Committed but not yet applied entries",
            Family::clone(&apply_lag),
        );
        registry.register(
            "lmdb_used_bytes",
            "Bytes of the LMDB map in use",
            Gauge::clone(&lmdb_used),
        );
        registry.register("lmdb_map_bytes", "Size of the LMDB map", Gauge::clone(&lmdb_map));
        registry.register(
            "chunkservers_alive",
            "Chunkservers whose heartbeat this node heard within the dead-after interval",
            Gauge::clone(&chunkservers_alive),
        );
        registry.register(
            "chunks_under_goal",
            "Chunks with fewer valid copies than their goal (shards led here, last scan)",
            Family::clone(&chunks_under_goal),
        );
        registry.register(
            "chunks_missing",
            "Chunks with no valid copy on a live chunkserver (shards led here, last scan)",
            Family::clone(&chunks_missing),
        );
        registry.register(
            "chunk_orders",
            "Orders queued for chunkservers",
            Family::clone(&chunk_orders),
        );
        Metrics {
            registry,
            proposals,
            round_seconds,
            lmdb_commit_seconds,
            wal_replayed,
            operations,
            operation_seconds,
            role,
            leader,
            term,
            commit,
            applied,
            apply_lag,
            lmdb_used,
            lmdb_map,
            chunkservers_alive,
            chunks_under_goal,
            chunks_missing,
            chunk_orders,
        }
    }

    /// Records the state of every group.
    pub fn observe_groups<'a>(&self, groups: impl Iterator<Item = &'a Group>) {
        for g in groups {
            let s = g.status();
            let l = ShardLabel { shard: s.shard };
            let role = match s.role {
                Role::Follower => 0,
                Role::Candidate | Role::PreCandidate => 1,
                Role::Leader => 2,
                Role::Learner => 3,
            };
            self.role.get_or_create(&l).set(role);
            self.leader
                .get_or_create(&l)
                .set(i64::from(s.role == Role::Leader));
            self.term.get_or_create(&l).set(clamp(s.term));
            self.commit.get_or_create(&l).set(clamp(s.commit));
            self.applied.get_or_create(&l).set(clamp(s.applied));
            self.apply_lag
                .get_or_create(&l)
                .set(clamp(s.commit.saturating_sub(s.applied)));
        }
    }

    /// Records one served operation.
    pub fn observe_op(&self, operation: &'static str, result: Outcome, seconds: f64) {
        let labels = OpLabels { operation, result };
        self.operations.get_or_create(&labels).inc();
        self.operation_seconds.get_or_create(&labels).observe(seconds);
    }

    /// The metrics in Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!("encode metrics: {e}");
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
