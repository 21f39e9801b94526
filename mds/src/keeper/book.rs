//! Orders waiting for their chunkserver's next heartbeat. An order stays out until it times
//! out; the same order is not issued again meanwhile (its copy is being made, or its report is
//! on the way), but a different one about the same chunk is (the file was removed while a
//! copy was made, say).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use proto::chunk::Order;

/// How many orders one heartbeat answer carries at most.
pub const ORDERS_PER_HEARTBEAT: usize = 16;

/// Orders by chunkserver, and the orders out.
#[derive(Debug)]
pub struct Book {
    queues: HashMap<u64, VecDeque<(Order, Instant)>>,
    out: HashMap<(u64, Order), Instant>,
    timeout: Duration,
}

impl Book {
    /// An empty book whose orders expire after `timeout`.
    pub fn new(timeout: Duration) -> Book {
        Book {
            queues: HashMap::new(),
            out: HashMap::new(),
            timeout,
        }
    }

    /// Queues `orders` ((chunkserver, order)), except those already out. Returns how many
    /// were queued.
    pub fn issue(&mut self, orders: Vec<(u64, Order)>, now: Instant) -> usize {
        let until = now + self.timeout;
        let mut n = 0;
        for (server, order) in orders {
            let key = (server, order.clone());
            if self.out.get(&key).is_some_and(|t| *t > now) {
                continue;
            }
            self.out.insert(key, until);
            self.queues.entry(server).or_default().push_back((order, until));
            n += 1;
        }
        n
    }

    /// The next orders for `server` that have not expired.
    pub fn take(&mut self, server: u64, now: Instant) -> Vec<Order> {
        let Some(q) = self.queues.get_mut(&server) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        while out.len() < ORDERS_PER_HEARTBEAT
            && let Some((order, until)) = q.pop_front()
        {
            if until > now {
                out.push(order);
            }
        }
        out
    }

    /// Forgets expired orders.
    pub fn expire(&mut self, now: Instant) {
        self.out.retain(|_, until| *until > now);
        for q in self.queues.values_mut() {
            q.retain(|(_, until)| *until > now);
        }
        self.queues.retain(|_, q| !q.is_empty());
    }

    /// Orders waiting for delivery.
    pub fn queued(&self) -> usize {
        self.queues.values().map(VecDeque::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delete(chunk: u64) -> Order {
        Order::Delete { chunk, version: None }
    }

    #[test]
    fn an_order_is_out_once_until_it_times_out() {
        let t0 = Instant::now();
        let mut b = Book::new(Duration::from_secs(30));
        assert_eq!(b.issue(vec![(1, delete(5)), (2, delete(5))], t0), 2);
        assert_eq!(b.issue(vec![(1, delete(5))], t0 + Duration::from_secs(1)), 0);
        assert_eq!(b.take(1, t0), vec![delete(5)]);
        assert_eq!(b.take(1, t0), vec![]);
        assert_eq!(b.issue(vec![(1, delete(5))], t0 + Duration::from_secs(30)), 1);
    }

    #[test]
    fn a_different_order_about_a_chunk_goes_out_at_once() {
        let t0 = Instant::now();
        let mut b = Book::new(Duration::from_secs(30));
        let from = proto::data::Server {
            id: 2,
            addr: "cs2".into(),
        };
        b.issue(
            vec![(
                1,
                Order::Replicate {
                    chunk: 5,
                    version: 1,
                    from,
                },
            )],
            t0,
        );
        assert_eq!(b.issue(vec![(1, delete(5))], t0), 1);
        assert_eq!(b.take(1, t0).len(), 2);
    }

    #[test]
    fn undelivered_orders_expire() {
        let t0 = Instant::now();
        let mut b = Book::new(Duration::from_secs(30));
        b.issue(vec![(1, delete(5))], t0);
        assert_eq!(b.take(1, t0 + Duration::from_secs(31)), vec![]);
        b.issue(vec![(1, delete(6))], t0);
        b.expire(t0 + Duration::from_secs(31));
        assert_eq!(b.queued(), 0);
        assert_eq!(b.issue(vec![(1, delete(6))], t0 + Duration::from_secs(31)), 1);
    }

    #[test]
    fn a_heartbeat_carries_a_bounded_number_of_orders() {
        let t0 = Instant::now();
        let mut b = Book::new(Duration::from_secs(30));
        for c in 0..40 {
            b.issue(vec![(1, delete(c))], t0);
        }
        assert_eq!(b.take(1, t0).len(), ORDERS_PER_HEARTBEAT);
        assert_eq!(b.queued(), 40 - ORDERS_PER_HEARTBEAT);
    }
}
