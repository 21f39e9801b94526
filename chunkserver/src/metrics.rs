//! Prometheus metrics of the chunkserver. Every name starts with `mooseng_chunkserver_`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use proto::data::DataError;

use crate::storage::Usage;

/// Labels of `mooseng_chunkserver_operations_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabel {
    /// `read`, `write`, `truncate`, `sync`, `replicate`, `delete` or `stat`.
    operation: &'static str,
}

/// Labels of `mooseng_chunkserver_errors_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabel {
    /// See [`error_kind`]; `mds` for a failed exchange with the metadata tier.
    kind: &'static str,
}

/// The chunkserver's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    capacity: Gauge,
    used: Gauge,
    chunks: Gauge,
    /// Bytes returned by reads.
    pub read_bytes: Counter,
    /// Bytes written to local copies (writes and replication).
    pub written_bytes: Counter,
    operations: Family<OperationLabel, Counter>,
    errors: Family<ErrorLabel, Counter>,
}

/// The `kind` label of a data error.
pub fn error_kind(e: &DataError) -> &'static str {
    match e {
        DataError::NoChunk(_) => "no_chunk",
        DataError::WrongVersion { .. } => "wrong_version",
        DataError::Corrupt { .. } => "corrupt",
        DataError::NoSpace => "no_space",
        DataError::Chain { .. } => "chain",
        DataError::BadRequest(_) => "bad_request",
        DataError::Io(_) => "io",
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("mooseng_chunkserver");
        let (capacity, used, chunks) = Default::default();
        let (read_bytes, written_bytes) = Default::default();
        let operations = Family::<OperationLabel, Counter>::default();
        let errors = Family::<ErrorLabel, Counter>::default();
        registry.register(
            "capacity_bytes",
            "Total bytes of the file systems of the data dirs that have not failed",
            Gauge::clone(&capacity),
        );
        registry.register(
            "used_bytes",
            "Bytes not available on those file systems",
            Gauge::clone(&used),
        );
        registry.register("chunks", "Chunk copies held", Gauge::clone(&chunks));
        registry.register(
            "read_bytes",
            "Bytes returned by reads",
            Counter::clone(&read_bytes),
        );
        registry.register(
            "written_bytes",
            "Bytes written to local copies by writes and replication",
            Counter::clone(&written_bytes),
        );
        registry.register(
            "operations",
            "Data requests and orders handled, by operation",
            operations.clone(),
        );
        registry.register("errors", "Failures, by kind", errors.clone());
        Metrics {
            registry,
            capacity,
            used,
            chunks,
            read_bytes,
            written_bytes,
            operations,
            errors,
        }
    }

    /// Counts one handled operation.
    pub fn operation(&self, operation: &'static str) {
        self.operations.get_or_create(&OperationLabel { operation }).inc();
    }

    /// Counts one failure.
    pub fn error(&self, kind: &'static str) {
        self.errors.get_or_create(&ErrorLabel { kind }).inc();
    }

    /// Sets the space and chunk gauges.
    pub fn observe_usage(&self, u: Usage) {
        self.capacity.set(clamp(u.capacity));
        self.used.set(clamp(u.used));
        self.chunks.set(clamp(u.chunks));
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

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_contract() {
        let m = Metrics::new();
        m.operation("read");
        m.error("corrupt");
        m.read_bytes.inc_by(5);
        m.observe_usage(Usage {
            capacity: 100,
            used: 40,
            chunks: 3,
        });
        let text = m.encode();
        for line in [
            "mooseng_chunkserver_capacity_bytes 100",
            "mooseng_chunkserver_used_bytes 40",
            "mooseng_chunkserver_chunks 3",
            "mooseng_chunkserver_read_bytes_total 5",
            "mooseng_chunkserver_written_bytes_total 0",
            "mooseng_chunkserver_operations_total{operation=\"read\"} 1",
            "mooseng_chunkserver_errors_total{kind=\"corrupt\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }
}
