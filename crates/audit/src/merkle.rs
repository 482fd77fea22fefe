//! Merkle trees over record hashes, as Certificate Transparency builds them
//! (RFC 6962 / RFC 9162 §2.1): a leaf is `SHA-256(0x00 ‖ record hash)`, a node
//! `SHA-256(0x01 ‖ left ‖ right)`, and a tree of `n` leaves splits at the
//! largest power of two below `n`.
//!
//! A signed checkpoint states the root of the tree over the records written
//! since the checkpoint before it. An export then proves that one record is in
//! the chain with the hashes on its path to that root (about 14 for 10,000
//! records) and nothing of the records beside it.
//!
//! The writer folds each record into a [`Frontier`] (a stack of perfect
//! subtrees: constant memory, about two hashes a record); `export` builds an
//! interval's tree once and reads every path it needs from it
//! ([`root_and_paths`], linear in the interval). Paths are checked with the
//! `ct-merkle` crate ([`verify`]), an implementation independent of both.

use sha2::{Digest, Sha256};

use super::chain::Hash;

/// The leaf of a record.
pub fn leaf(record: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(record);
    h.finalize().into()
}

fn node(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of an empty tree.
pub fn empty_root() -> Hash {
    Sha256::digest(b"").into()
}

/// The right edge of a tree being built: the roots of its perfect subtrees,
/// largest first.
#[derive(Debug, Clone, Default)]
pub struct Frontier {
    /// (leaves, root) of each perfect subtree.
    stack: Vec<(u64, Hash)>,
    len: u64,
}

impl Frontier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the next record.
    pub fn push(&mut self, record: &Hash) {
        let mut size = 1u64;
        let mut hash = leaf(record);
        while let Some((top, left)) = self.stack.last().copied().filter(|(s, _)| *s == size) {
            self.stack.pop();
            hash = node(&left, &hash);
            size = top.saturating_mul(2);
        }
        self.stack.push((size, hash));
        self.len += 1;
    }

    /// Records added.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The root of the tree of every record added.
    pub fn root(&self) -> Hash {
        let mut subtrees = self.stack.iter().rev();
        let Some((_, last)) = subtrees.next() else {
            return empty_root();
        };
        subtrees.fold(*last, |acc, (_, left)| node(left, &acc))
    }
}

/// The root of the tree over `records`, and the inclusion path (leaf to root)
/// of each of `targets` (indices into `records`, ascending).
pub fn root_and_paths(records: &[Hash], targets: &[usize]) -> (Hash, Vec<Vec<Hash>>) {
    let mut paths = vec![Vec::new(); targets.len()];
    if records.is_empty() {
        return (empty_root(), paths);
    }
    let wanted: Vec<(usize, usize)> = targets
        .iter()
        .enumerate()
        .map(|(slot, i)| (*i, slot))
        .collect();
    let root = subtree(records, &wanted, &mut paths);
    (root, paths)
}

/// The root of `records`; pushes, onto the path of each wanted leaf (its
/// index here, and its slot in `paths`), the siblings below this root.
fn subtree(records: &[Hash], wanted: &[(usize, usize)], paths: &mut [Vec<Hash>]) -> Hash {
    let n = records.len();
    if n <= 1 {
        return records.first().map(leaf).unwrap_or_else(empty_root);
    }
    // The largest power of two below n.
    let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
    let (l, r) = records.split_at(k);
    let split = wanted.partition_point(|(i, _)| *i < k);
    let (wl, wr) = wanted.split_at(split);
    let wr: Vec<(usize, usize)> = wr.iter().map(|(i, slot)| (i - k, *slot)).collect();
    let left = subtree(l, wl, paths);
    let right = subtree(r, &wr, paths);
    for (_, slot) in wl {
        if let Some(p) = paths.get_mut(*slot) {
            p.push(right);
        }
    }
    for (_, slot) in &wr {
        if let Some(p) = paths.get_mut(*slot) {
            p.push(left);
        }
    }
    node(&left, &right)
}

/// Whether `path` proves `record` to be leaf `index` of the tree of `size`
/// leaves whose root is `root`.
pub fn verify(root: &Hash, size: u64, index: u64, record: &Hash, path: &[Hash]) -> bool {
    let digest = ct_merkle::digest::Output::<Sha256>::from(*root);
    let root = ct_merkle::RootHash::<Sha256>::new(digest, size);
    let proof = ct_merkle::InclusionProof::<Sha256>::from_bytes(path.concat());
    root.verify_inclusion(record, index, &proof).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| Sha256::digest(i.to_le_bytes()).into())
            .collect()
    }

    #[test]
    fn the_frontier_root_is_the_certificate_transparency_root() {
        for n in 0..70 {
            let rs = records(n);
            let mut tree = ct_merkle::mem_backed_tree::MemoryBackedTree::<Sha256, Hash>::new();
            let mut frontier = Frontier::new();
            for r in &rs {
                tree.push(*r);
                frontier.push(r);
            }
            let expected: Hash = (*tree.root().as_bytes()).into();
            assert_eq!(frontier.root(), expected, "{n} leaves");
            assert_eq!(frontier.len(), n as u64);
            assert_eq!(root_and_paths(&rs, &[]).0, expected, "{n} leaves");
        }
    }

    #[test]
    fn every_path_proves_its_leaf_and_nothing_else() {
        for n in 1..40 {
            let rs = records(n);
            let all: Vec<usize> = (0..n).collect();
            let (root, paths) = root_and_paths(&rs, &all);
            for (i, path) in paths.iter().enumerate() {
                assert!(
                    verify(&root, n as u64, i as u64, &rs[i], path),
                    "{i} of {n}"
                );
                let other = (i + 1) % n;
                if other != i {
                    assert!(!verify(&root, n as u64, other as u64, &rs[i], path));
                    assert!(!verify(&root, n as u64, i as u64, &rs[other], path));
                }
                if let Some(first) = path.first() {
                    let mut bad = path.clone();
                    bad[0][0] ^= 1;
                    assert!(
                        !verify(&root, n as u64, i as u64, &rs[i], &bad),
                        "{first:?}"
                    );
                }
            }
            // A few targets give the same paths as all of them.
            let some: Vec<usize> = (0..n).step_by(3).collect();
            let (root2, some_paths) = root_and_paths(&rs, &some);
            assert_eq!(root2, root);
            for (slot, i) in some.iter().enumerate() {
                assert_eq!(some_paths[slot], paths[*i]);
            }
        }
    }
}
