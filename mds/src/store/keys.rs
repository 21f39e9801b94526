//! Key layouts. Integers are big-endian so that keys sort numerically; every key starts with
//! the shard id.

use crdt::model::{Entry, Ino, Name};

/// `shard`.
pub fn shard(shard: u32) -> [u8; 4] {
    shard.to_be_bytes()
}

/// `shard, a`.
pub fn shard_u64(shard: u32, a: u64) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..4].copy_from_slice(&shard.to_be_bytes());
    k[4..].copy_from_slice(&a.to_be_bytes());
    k
}

/// `shard, a, b`.
pub fn shard_u64_u64(shard: u32, a: u64, b: u64) -> [u8; 20] {
    let mut k = [0u8; 20];
    k[..12].copy_from_slice(&shard_u64(shard, a));
    k[12..].copy_from_slice(&b.to_be_bytes());
    k
}

/// `shard, a, b, c`.
pub fn shard_u64_u64_u64(shard: u32, a: u64, b: u64, c: u64) -> [u8; 28] {
    let mut k = [0u8; 28];
    k[..20].copy_from_slice(&shard_u64_u64(shard, a, b));
    k[20..].copy_from_slice(&c.to_be_bytes());
    k
}

/// `shard, tag`.
pub fn shard_tag(shard: u32, tag: u8) -> [u8; 5] {
    let mut k = [0u8; 5];
    k[..4].copy_from_slice(&shard.to_be_bytes());
    k[4] = tag;
    k
}

/// The prefix of every entry of directory `dir`: `shard, dir`.
pub fn dir_prefix(shard: u32, dir: Ino) -> [u8; 12] {
    shard_u64(shard, dir.0)
}

/// The prefix of the entries named `name` in `dir`: `shard, dir, name, 0`. Names never contain
/// NUL, so the separator keeps (name, inode) order: "a" sorts before "ab".
pub fn name_prefix(shard: u32, dir: Ino, name: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(12 + name.len() + 1);
    k.extend_from_slice(&dir_prefix(shard, dir));
    k.extend_from_slice(name);
    k.push(0);
    k
}

/// An entry key: `shard, dir, name, 0, ino`.
pub fn entry(shard: u32, dir: Ino, e: &Entry) -> Vec<u8> {
    let mut k = name_prefix(shard, dir, e.name.as_bytes());
    k.extend_from_slice(&e.ino.0.to_be_bytes());
    k
}

/// Parses an entry key back into its directory and entry.
pub fn parse_entry(key: &[u8]) -> Option<(Ino, Entry)> {
    let dir = u64::from_be_bytes(key.get(4..12)?.try_into().ok()?);
    let rest = key.get(12..)?;
    let (name, ino) = rest.split_at(rest.len().checked_sub(9)?);
    if ino[0] != 0 {
        return None;
    }
    let ino = u64::from_be_bytes(ino[1..].try_into().ok()?);
    let name = Name::new(name).ok()?;
    Some((Ino(dir), Entry { name, ino: Ino(ino) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_keys_sort_by_name_then_inode_and_parse_back() {
        let e = |n: &str, i: u64| Entry {
            name: Name::try_from(n).unwrap(),
            ino: Ino(i),
        };
        let keys: Vec<Vec<u8>> = [e("a", 9), e("a", 10), e("ab", 1), e("b", 0)]
            .iter()
            .map(|x| entry(7, Ino(3), x))
            .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(parse_entry(&keys[1]), Some((Ino(3), e("a", 10))));
        assert_eq!(parse_entry(&keys[1][..10]), None);
    }
}
