//! Read-only lookup tables for the screening index, laid out flat.
//!
//! The index is built once per snapshot and then only read, so its maps need
//! neither room to grow nor a heap allocation per key: a [`HashLists`] holds
//! the values of a multimap end to end, behind its distinct keys sorted
//! under a directory of hash prefixes (4 bytes a value and about 12 a key,
//! against 50–60 for a `HashMap<_, Vec<u32>>` entry with its own list), and a [`Lists`] holds
//! numbered lists end to end (4 bytes a value).
//!
//! Keys are 64-bit hashes: a [`HashLists`] keeps the top bits in its
//! directory and the low 32 with each key, so of a million keys two share
//! both about once in 2^52 lookups. Callers use the values as
//! candidates and check them (the screening index scores every candidate, and
//! checks an exact name against the name itself), so a collision costs a
//! lookup, never a wrong answer.

/// A multimap from 64-bit hashes to `u32` values, frozen.
#[derive(Debug, Default)]
pub struct HashLists {
    /// `64 - bits`: a hash's directory slot is `hash >> shift`.
    shift: u32,
    /// Slot `s` → the first key whose slot is `s` or more (one past the last
    /// slot: the key count).
    directory: Box<[u32]>,
    /// The low 32 bits of each distinct key's hash, sorted within each slot:
    /// a slot is scanned over keys, never over a long list's values.
    checks: Box<[u32]>,
    /// Key `k`'s values are `values[starts[k]..starts[k + 1]]`.
    starts: Box<[u32]>,
    values: Box<[u32]>,
}

/// The pairs of a [`HashLists`] while it is being built.
#[derive(Debug, Default)]
pub struct HashListsBuilder {
    pairs: Vec<(u64, u32)>,
}

impl HashListsBuilder {
    /// Adds `value` under `hash` (a pair added twice is kept once).
    pub fn push(&mut self, hash: u64, value: u32) {
        self.pairs.push((hash, value));
    }

    /// The frozen multimap. Each hash's values come out in ascending order.
    pub fn build(mut self) -> HashLists {
        self.pairs.sort_unstable();
        self.pairs.dedup();
        let keys = self.pairs.chunk_by(|a, b| a.0 == b.0).count();
        // About one slot per key, at least two slots.
        let bits = usize::BITS - keys.max(2).saturating_sub(1).leading_zeros();
        let shift = 64 - bits;
        // By slot, then by the bits kept: hashes that agree on both (a
        // collision) share one key and one run of values, so neither loses
        // its own.
        self.pairs
            .sort_unstable_by_key(|&(h, v)| (h >> shift, h as u32, v));
        let slot_of = |h: u64| usize::try_from(h >> shift).unwrap_or(usize::MAX);
        let slots = 1usize << bits;
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        let mut checks = Vec::with_capacity(keys);
        let mut starts = Vec::with_capacity(keys + 1);
        let mut directory = Vec::with_capacity(slots + 1);
        let mut at = 0usize;
        for run in self
            .pairs
            .chunk_by(|a, b| slot_of(a.0) == slot_of(b.0) && a.0 as u32 == b.0 as u32)
        {
            if let Some(&(h, _)) = run.first() {
                // Every slot up to this key's that has no entry yet starts here.
                while directory.len() <= slot_of(h).min(slots) {
                    directory.push(count(checks.len()));
                }
                // The low half of the hash: the truncation is the point.
                checks.push(h as u32);
                starts.push(count(at));
            }
            at += run.len();
        }
        starts.push(count(at));
        while directory.len() <= slots {
            directory.push(count(checks.len()));
        }
        HashLists {
            shift,
            directory: directory.into(),
            checks: checks.into(),
            starts: starts.into(),
            values: self.pairs.into_iter().map(|(_, v)| v).collect(),
        }
    }
}

impl HashLists {
    /// The values under `hash`, ascending (empty when none).
    pub fn get(&self, hash: u64) -> &[u32] {
        let slot = usize::try_from(hash >> self.shift).unwrap_or(usize::MAX);
        let (Some(&from), Some(&to)) = (self.directory.get(slot), self.directory.get(slot + 1))
        else {
            return &[];
        };
        let check = hash as u32;
        let Some(k) = self
            .checks
            .get(from as usize..to as usize)
            .and_then(|keys| keys.iter().position(|&c| c == check))
        else {
            return &[];
        };
        let k = from as usize + k;
        match (self.starts.get(k), self.starts.get(k + 1)) {
            (Some(&a), Some(&b)) => self.values.get(a as usize..b as usize).unwrap_or_default(),
            _ => &[],
        }
    }

    /// How many values are held.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no value is held.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        4 * (self.directory.len() + self.checks.len() + self.starts.len() + self.values.len())
    }
}

/// Numbered lists of `u32` held end to end, frozen.
#[derive(Debug, Default, Clone)]
pub struct Lists {
    /// List `i` is `items[ends[i - 1]..ends[i]]` (from 0 for the first).
    ends: Box<[u32]>,
    items: Box<[u32]>,
}

impl Lists {
    /// Lists from `(list, item)` pairs in any order; each list comes out
    /// ascending and without repeats, and lists no pair names are empty.
    pub fn from_pairs(mut pairs: Vec<(u32, u32)>) -> Self {
        pairs.sort_unstable();
        pairs.dedup();
        let count = pairs.last().map_or(0, |&(list, _)| list as usize + 1);
        let mut ends = Vec::with_capacity(count);
        let mut at = 0usize;
        for list in 0..count {
            while pairs.get(at).is_some_and(|&(l, _)| l as usize == list) {
                at += 1;
            }
            ends.push(u32::try_from(at).unwrap_or(u32::MAX));
        }
        Self {
            ends: ends.into(),
            items: pairs.into_iter().map(|(_, item)| item).collect(),
        }
    }

    /// List `i` (empty when there is no such list).
    pub fn get(&self, i: usize) -> &[u32] {
        span(&self.ends, i)
            .and_then(|at| self.items.get(at))
            .unwrap_or_default()
    }

    /// How many lists there are.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there is no list.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        4 * (self.ends.len() + self.items.len())
    }
}

/// Strings held end to end in one buffer, by number.
#[derive(Debug, Default, Clone)]
pub struct Texts {
    text: String,
    ends: Vec<u32>,
}

impl Texts {
    /// Adds `s`; its number is the count of strings before it.
    pub fn push(&mut self, s: &str) -> u32 {
        self.text.push_str(s);
        self.ends
            .push(u32::try_from(self.text.len()).unwrap_or(u32::MAX));
        u32::try_from(self.ends.len() - 1).unwrap_or(u32::MAX)
    }

    /// String `i`.
    pub fn get(&self, i: u32) -> Option<&str> {
        self.text.get(span(&self.ends, i as usize)?)
    }

    /// How many strings are held.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether no string is held.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.text.capacity() + 4 * self.ends.capacity()
    }

    /// Gives back the room kept for more strings.
    pub fn shrink_to_fit(&mut self) {
        self.text.shrink_to_fit();
        self.ends.shrink_to_fit();
    }
}

/// Where item `i` lies in a buffer of items held end to end, given where
/// each ends (the first starts at 0); `None` past the last.
pub(crate) fn span(ends: &[u32], i: usize) -> Option<std::ops::Range<usize>> {
    let to = *ends.get(i)? as usize;
    let from = match i.checked_sub(1) {
        Some(before) => *ends.get(before)? as usize,
        None => 0,
    };
    Some(from..to)
}

/// FNV-1a over the parts in turn: the hash of a spelling given in pieces is
/// the hash of the pieces written as one.
pub fn hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for &b in *part {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    // FNV's low bits mix poorly into its high ones, and the directory is
    // indexed by the high ones: a final avalanche (from SplitMix64).
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The hash of a string.
pub fn hash_str(s: &str) -> u64 {
    hash(&[s.as_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_lists_give_each_hash_its_values_and_nothing_else() {
        let mut b = HashListsBuilder::default();
        for i in 0..5000u32 {
            let key = hash_str(&format!("key{}", i % 1000));
            b.push(key, i);
        }
        b.push(hash_str("key7"), 7);
        let m = b.build();
        assert_eq!(m.len(), 5000, "a pair added twice is kept once");
        for k in 0..1000u32 {
            let expected: Vec<u32> = (0..5).map(|r| k + 1000 * r).collect();
            assert_eq!(m.get(hash_str(&format!("key{k}"))), expected, "key{k}");
        }
        assert!(m.get(hash_str("absent")).is_empty());
        assert!(HashLists::default().get(hash_str("key1")).is_empty());
        let one = {
            let mut b = HashListsBuilder::default();
            b.push(u64::MAX, 1);
            b.push(0, 2);
            b.build()
        };
        assert_eq!(one.get(u64::MAX), [1]);
        assert_eq!(one.get(0), [2]);
    }

    #[test]
    fn lists_hold_their_items_sorted_and_leave_gaps_empty() {
        let l = Lists::from_pairs(vec![(2, 9), (0, 3), (2, 1), (0, 3), (4, 0)]);
        assert_eq!(l.len(), 5);
        assert_eq!(l.get(0), [3]);
        assert!(l.get(1).is_empty());
        assert_eq!(l.get(2), [1, 9]);
        assert!(l.get(3).is_empty());
        assert_eq!(l.get(4), [0]);
        assert!(l.get(5).is_empty());
    }

    #[test]
    fn texts_give_back_what_was_pushed() {
        let mut t = Texts::default();
        let a = t.push("hassan");
        let b = t.push("");
        let c = t.push("حسين");
        assert_eq!(
            (t.get(a), t.get(b), t.get(c)),
            (Some("hassan"), Some(""), Some("حسين"))
        );
        assert_eq!(t.get(3), None);
    }
}
