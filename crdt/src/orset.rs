//! Add-wins observed-remove set with dots (a delta-state AWORSet).
//!
//! Every add is tagged with a fresh [`Dot`] and the HLC [`Timestamp`] of the add. A remove
//! deletes the dots it has observed. Merging keeps a tagged element unless the other side has
//! seen its dot and dropped it, so an add concurrent with a remove survives (add wins).
//! Removed elements leave no tombstone: the [`CausalContext`] remembers their dots instead.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::ops::RangeBounds;

use serde::{Deserialize, Serialize};

use crate::Crdt;
use crate::dot::{CausalContext, Dot, NodeId};
use crate::hlc::Timestamp;

/// One add event of an element: its dot and when it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Tag {
    /// The unique event id; ordering of tags is by dot.
    pub dot: Dot,
    /// The HLC stamp of the add.
    pub at: Timestamp,
}

/// The full state of an add-wins OR-Set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(serialize = "E: Serialize", deserialize = "E: Deserialize<'de> + Ord"))]
#[serde(from = "RawOrSet<E>")]
pub struct OrSet<E> {
    entries: BTreeMap<E, Tags>,
    ctx: CausalContext,
}

/// The delta of one or more mutations. Unlike a state, it lists an element with no tags when
/// it only removes that element: every dot in `ctx` belongs to a listed element, which lets a
/// delta be joined into a large state in time proportional to the delta.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(serialize = "E: Serialize", deserialize = "E: Deserialize<'de> + Ord"))]
pub struct OrSetDelta<E> {
    entries: BTreeMap<E, Vec<Tag>>,
    ctx: CausalContext,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "E: Deserialize<'de> + Ord"))]
struct RawOrSet<E> {
    entries: BTreeMap<E, Vec<Tag>>,
    ctx: CausalContext,
}

impl<E: Ord> From<RawOrSet<E>> for OrSet<E> {
    /// Normalises decoded input: tags sorted and unique, no element without tags, and every
    /// tag's dot in the context.
    fn from(raw: RawOrSet<E>) -> Self {
        let mut ctx = raw.ctx;
        let mut entries = BTreeMap::new();
        for (e, mut tags) in raw.entries {
            normalize_tags(&mut tags);
            for tag in &tags {
                ctx.insert(tag.dot);
            }
            if !tags.is_empty() {
                entries.insert(e, Tags::from(tags));
            }
        }
        OrSet { entries, ctx }
    }
}

/// The live adds of one element of a state: almost always exactly one, kept inline so that
/// the common case costs no allocation. Encodes as a sequence, like a `Vec<Tag>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(into = "Vec<Tag>")]
enum Tags {
    One(Tag),
    Many(Vec<Tag>),
}

impl Tags {
    fn as_slice(&self) -> &[Tag] {
        match self {
            Tags::One(t) => std::slice::from_ref(t),
            Tags::Many(v) => v,
        }
    }
}

impl From<Vec<Tag>> for Tags {
    fn from(v: Vec<Tag>) -> Self {
        match v.as_slice() {
            [one] => Tags::One(*one),
            _ => Tags::Many(v),
        }
    }
}

impl From<Tags> for Vec<Tag> {
    fn from(t: Tags) -> Self {
        match t {
            Tags::One(t) => vec![t],
            Tags::Many(v) => v,
        }
    }
}

fn normalize_tags(tags: &mut Vec<Tag>) {
    tags.sort_unstable_by_key(|t| t.dot);
    tags.dedup_by_key(|t| t.dot);
}

impl<E> Default for OrSet<E> {
    fn default() -> Self {
        OrSet {
            entries: BTreeMap::new(),
            ctx: CausalContext::new(),
        }
    }
}

impl<E> Default for OrSetDelta<E> {
    fn default() -> Self {
        OrSetDelta {
            entries: BTreeMap::new(),
            ctx: CausalContext::new(),
        }
    }
}

/// Tags of one element after merging side `a` (with context `a_ctx`) and side `b`.
/// A tag survives if both sides have it, or if the side lacking it never saw its dot.
fn merge_tags(a: &[Tag], a_ctx: &CausalContext, b: &[Tag], b_ctx: &CausalContext) -> Vec<Tag> {
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    let (mut i, mut j) = (0, 0);
    loop {
        let take_a = match (a.get(i), b.get(j)) {
            (None, None) => break,
            (Some(x), Some(y)) if x.dot == y.dot => {
                out.push((*x).max(*y));
                i += 1;
                j += 1;
                continue;
            }
            (Some(x), Some(y)) => x.dot < y.dot,
            (Some(_), None) => true,
            (None, Some(_)) => false,
        };
        if take_a {
            if !b_ctx.contains(&a[i].dot) {
                out.push(a[i]);
            }
            i += 1;
        } else {
            if !a_ctx.contains(&b[j].dot) {
                out.push(b[j]);
            }
            j += 1;
        }
    }
    out
}

/// One element's live tags after joining the delta of one add ([`OrSetDelta::add`]), given
/// its tags and the context of the state before the join. These per-element functions let a
/// store that keeps each element in its own record apply deltas exactly as [`OrSet`] does;
/// follow them with [`record_add`] on the context.
pub fn tags_after_add(tags: &[Tag], ctx: &CausalContext, tag: Tag, supersedes: &[Dot]) -> Vec<Tag> {
    let mut out: Vec<Tag> = tags
        .iter()
        .copied()
        .filter(|t| t.dot == tag.dot || !supersedes.contains(&t.dot))
        .collect();
    match out.binary_search_by_key(&tag.dot, |t| t.dot) {
        Ok(i) => out[i] = out[i].max(tag),
        Err(i) if !ctx.contains(&tag.dot) => out.insert(i, tag),
        Err(_) => {}
    }
    out
}

/// One element's live tags after joining the delta of one removal ([`OrSetDelta::remove`]);
/// follow it with [`record_remove`] on the context.
pub fn tags_after_remove(tags: &[Tag], dots: &[Dot]) -> Vec<Tag> {
    tags.iter().copied().filter(|t| !dots.contains(&t.dot)).collect()
}

/// Records in a context the dots an add has seen: its own and the ones it supersedes.
pub fn record_add(ctx: &mut CausalContext, tag: Tag, supersedes: &[Dot]) {
    ctx.insert(tag.dot);
    record_remove(ctx, supersedes);
}

/// Records in a context the dots a removal has seen.
pub fn record_remove(ctx: &mut CausalContext, dots: &[Dot]) {
    for d in dots {
        ctx.insert(*d);
    }
}

impl<E: Ord + Clone> OrSet<E> {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `e` as a new event of `node` at `at` and returns the delta. The add supersedes the
    /// element's earlier tags, so the element ends up with exactly one tag here.
    pub fn add(&mut self, e: E, node: NodeId, at: Timestamp) -> OrSetDelta<E> {
        let dot = self.ctx.next_dot(node);
        let supersedes: Vec<Dot> = self.tags(&e).iter().map(|t| t.dot).collect();
        let delta = OrSetDelta::add(e, Tag { dot, at }, supersedes);
        self.apply(&delta);
        delta
    }

    /// Removes every observed add of `e` and returns the delta (empty if `e` is absent).
    pub fn remove(&mut self, e: &E) -> OrSetDelta<E> {
        let tags = self.tags(e);
        if tags.is_empty() {
            return OrSetDelta::default();
        }
        let delta = OrSetDelta::remove(e.clone(), tags.iter().map(|t| t.dot).collect::<Vec<_>>());
        self.apply(&delta);
        delta
    }

    /// Joins the delta of one add ([`OrSetDelta::add`]) without building it: `e` gains `tag`
    /// unless its dot was already seen, and loses the superseded adds.
    pub fn apply_add(&mut self, e: &E, tag: Tag, supersedes: &[Dot]) {
        match self.entries.entry(e.clone()) {
            Entry::Occupied(mut slot) => {
                let tags = tags_after_add(slot.get().as_slice(), &self.ctx, tag, supersedes);
                if tags.is_empty() {
                    slot.remove();
                } else {
                    slot.insert(Tags::from(tags));
                }
            }
            Entry::Vacant(slot) => {
                if !self.ctx.contains(&tag.dot) {
                    slot.insert(Tags::One(tag));
                }
            }
        }
        record_add(&mut self.ctx, tag, supersedes);
    }

    /// Joins the delta of one removal ([`OrSetDelta::remove`]) without building it.
    pub fn apply_remove(&mut self, e: &E, dots: &[Dot]) {
        if let Some(slot) = self.entries.get_mut(e) {
            let tags = tags_after_remove(slot.as_slice(), dots);
            if tags.is_empty() {
                self.entries.remove(e);
            } else {
                *slot = Tags::from(tags);
            }
        }
        record_remove(&mut self.ctx, dots);
    }

    /// Joins a delta into this state in time proportional to the delta.
    pub fn apply(&mut self, delta: &OrSetDelta<E>) {
        for (e, dtags) in &delta.entries {
            let merged = merge_tags(self.tags(e), &self.ctx, dtags, &delta.ctx);
            if merged.is_empty() {
                self.entries.remove(e);
            } else if let Some(slot) = self.entries.get_mut(e) {
                *slot = Tags::from(merged);
            } else {
                self.entries.insert(e.clone(), Tags::from(merged));
            }
        }
        self.ctx.join(&delta.ctx);
    }

    /// Whether `e` is in the set.
    pub fn contains(&self, e: &E) -> bool {
        self.entries.contains_key(e)
    }

    /// The live add events of `e` (empty if absent).
    pub fn tags(&self, e: &E) -> &[Tag] {
        self.entries.get(e).map_or(&[], Tags::as_slice)
    }

    /// Elements in order, with their tags.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&E, &[Tag])> {
        self.entries.iter().map(|(e, t)| (e, t.as_slice()))
    }

    /// Elements within `range`, in order.
    pub fn range<R: RangeBounds<E>>(&self, range: R) -> impl DoubleEndedIterator<Item = (&E, &[Tag])> {
        self.entries.range(range).map(|(e, t)| (e, t.as_slice()))
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The dots this replica has seen.
    pub fn context(&self) -> &CausalContext {
        &self.ctx
    }
}

impl<E: Ord + Clone> Crdt for OrSet<E> {
    fn join(&mut self, other: &Self) {
        let mut merged = Vec::with_capacity(self.entries.len().max(other.entries.len()));
        let mut a = std::mem::take(&mut self.entries).into_iter().peekable();
        let mut b = other.entries.iter().peekable();
        loop {
            let order = match (a.peek(), b.peek()) {
                (None, None) => break,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some((x, _)), Some((y, _))) => x.cmp(y),
            };
            let (e, tags) = match order {
                std::cmp::Ordering::Less => {
                    let (e, t) = a.next().expect("peeked");
                    let tags = merge_tags(t.as_slice(), &self.ctx, &[], &other.ctx);
                    (e, tags)
                }
                std::cmp::Ordering::Greater => {
                    let (e, t) = b.next().expect("peeked");
                    (e.clone(), merge_tags(&[], &self.ctx, t.as_slice(), &other.ctx))
                }
                std::cmp::Ordering::Equal => {
                    let (e, t) = a.next().expect("peeked");
                    let (_, u) = b.next().expect("peeked");
                    let tags = merge_tags(t.as_slice(), &self.ctx, u.as_slice(), &other.ctx);
                    (e, tags)
                }
            };
            if !tags.is_empty() {
                merged.push((e, Tags::from(tags)));
            }
        }
        self.entries = merged.into_iter().collect();
        self.ctx.join(&other.ctx);
    }
}

impl<E: Ord + Clone> OrSetDelta<E> {
    /// An empty delta.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds the delta of adding `e` with `tag`, superseding the dots in `supersedes`.
    pub fn add(e: E, tag: Tag, supersedes: impl IntoIterator<Item = Dot>) -> Self {
        let ctx = CausalContext::from_dots(supersedes.into_iter().chain([tag.dot]));
        OrSetDelta {
            entries: BTreeMap::from([(e, vec![tag])]),
            ctx,
        }
    }

    /// Builds the delta of removing the adds `dots` of `e`.
    pub fn remove(e: E, dots: impl IntoIterator<Item = Dot>) -> Self {
        OrSetDelta {
            entries: BTreeMap::from([(e, Vec::new())]),
            ctx: CausalContext::from_dots(dots),
        }
    }

    /// Whether the delta changes nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Elements the delta touches, with the tags it adds (empty for a pure removal).
    pub fn iter(&self) -> impl Iterator<Item = (&E, &[Tag])> {
        self.entries.iter().map(|(e, t)| (e, t.as_slice()))
    }

    /// The dots the delta has seen: its adds plus the adds it removes or supersedes.
    pub fn context(&self) -> &CausalContext {
        &self.ctx
    }

    /// The delta as a plain state, for comparing delta joins with state joins.
    pub fn to_state(&self) -> OrSet<E> {
        let entries = self
            .entries
            .iter()
            .filter(|(_, t)| !t.is_empty())
            .map(|(e, t)| (e.clone(), Tags::from(t.clone())));
        OrSet {
            entries: entries.collect(),
            ctx: self.ctx.clone(),
        }
    }
}

impl<E: Ord + Clone> Crdt for OrSetDelta<E> {
    /// Groups two deltas into one; elements removed by either stay listed.
    fn join(&mut self, other: &Self) {
        let keys: std::collections::BTreeSet<E> =
            self.entries.keys().chain(other.entries.keys()).cloned().collect();
        let mut entries = BTreeMap::new();
        for e in keys {
            let mine = self.entries.get(&e).map_or(&[][..], Vec::as_slice);
            let theirs = other.entries.get(&e).map_or(&[][..], Vec::as_slice);
            entries.insert(e, merge_tags(mine, &self.ctx, theirs, &other.ctx));
        }
        self.entries = entries;
        self.ctx.join(&other.ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(ms: u64) -> Timestamp {
        Timestamp::new(ms, 0, NodeId(0))
    }

    #[test]
    fn concurrent_add_wins_over_remove() {
        let mut a = OrSet::new();
        a.add("x", NodeId(1), ts(1));
        let mut b = a.clone();
        a.remove(&"x");
        b.add("x", NodeId(2), ts(2));
        let mut ab = a.clone();
        ab.join(&b);
        assert!(ab.contains(&"x"));
        assert_eq!(
            ab.tags(&"x").len(),
            1,
            "the removed add is gone, the concurrent one stays"
        );
    }

    #[test]
    fn remove_before_add_arrives_is_not_undone_by_the_add() {
        let mut origin = OrSet::new();
        let add = origin.add("x", NodeId(1), ts(1));
        let rm = origin.remove(&"x");
        let mut late = OrSet::new();
        late.apply(&rm);
        late.apply(&add);
        assert!(!late.contains(&"x"));
        assert_eq!(late, origin);
    }

    #[test]
    fn delta_application_matches_state_join() {
        let mut a = OrSet::new();
        let d1 = a.add(1u32, NodeId(1), ts(1));
        let d2 = a.add(2, NodeId(1), ts(2));
        let d3 = a.remove(&1);
        let mut group = d3.clone();
        group.join(&d1);
        group.join(&d2);
        let mut via_group = OrSet::new();
        via_group.apply(&group);
        let mut via_state = OrSet::new();
        via_state.join(&group.to_state());
        assert_eq!(via_group, a);
        assert_eq!(via_state, a);
    }
}
