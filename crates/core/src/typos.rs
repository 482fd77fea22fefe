//! Tokens one typing error away: a deletion-neighbourhood index (the
//! SymSpell scheme) over the distinct tokens of the designated names.
//!
//! Every token of three letters or more is stored under the hash of each
//! spelling with one letter deleted. A token typed with one letter inserted,
//! deleted, changed, or two neighbours swapped shares one of those spellings
//! (or is one) with the token it was meant to be, so the tokens one edit away
//! from a query token are found with about twice its length in hash lookups,
//! no string built and no scan of the vocabulary.
//!
//! Deletions are keyed by 64-bit hashes of the spellings: a collision only
//! brings one more candidate to scoring. Tokens are checked against their
//! text, so a token is known only when spelt exactly.

use foldhash::HashMap;

use crate::frozen::{HashLists, HashListsBuilder, Texts, hash, hash_str};

/// Tokens shorter than this have no neighbours: one edit of two letters makes
/// another name, not a typo (three-letter tokens keep theirs: `Kmi` is `Kim`,
/// and scoring, not retrieval, tells `Kim` from `Kia`).
pub const MIN_TYPO_LEN: usize = 3;

/// The tokens of a list and their one-edit neighbourhoods, frozen (see
/// [`crate::frozen`]): about 12 bytes a deletion.
#[derive(Debug, Default)]
pub struct TypoIndex {
    /// Hash of a token → its id.
    tokens: HashLists,
    /// Each token's text, by id.
    texts: Texts,
    /// Hash of a token with one letter deleted → the ids of the tokens it
    /// comes from.
    deletions: HashLists,
}

/// A [`TypoIndex`] being filled.
#[derive(Debug, Default)]
pub struct TypoIndexBuilder {
    tokens: HashMap<u64, u32>,
    texts: Texts,
    deletions: HashListsBuilder,
}

impl TypoIndexBuilder {
    /// The id of `token`, adding it (and its deletions) when new. Ids are
    /// given in order from 0.
    pub fn intern(&mut self, token: &str) -> u32 {
        let bytes = token.as_bytes();
        let next = u32::try_from(self.texts.len()).unwrap_or(u32::MAX);
        let id = *self.tokens.entry(hash_str(token)).or_insert(next);
        if id != next && self.texts.get(id) == Some(token) {
            return id;
        }
        // A new token (or, once in 2^64, one whose hash another has: it
        // keeps its own id and neighbours, and both are found by the hash).
        self.texts.push(token);
        let id = next;
        if bytes.len() >= MIN_TYPO_LEN && token.is_ascii() {
            for at in 0..bytes.len() {
                let h = hash(&[
                    bytes.get(..at).unwrap_or_default(),
                    bytes.get(at + 1..).unwrap_or_default(),
                ]);
                self.deletions.push(h, id);
            }
        }
        id
    }

    /// How many distinct tokens were interned.
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    /// Whether no token was interned.
    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// The frozen index.
    pub fn build(self) -> TypoIndex {
        // Every token under its hash (one whose hash another token took
        // too is found beside it, and told apart by its text).
        let mut tokens = HashListsBuilder::default();
        for id in 0..u32::try_from(self.texts.len()).unwrap_or(u32::MAX) {
            if let Some(text) = self.texts.get(id) {
                tokens.push(hash_str(text), id);
            }
        }
        let mut texts = self.texts;
        texts.shrink_to_fit();
        TypoIndex {
            tokens: tokens.build(),
            texts,
            deletions: self.deletions.build(),
        }
    }
}

impl TypoIndex {
    /// How many distinct tokens are indexed.
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    /// Whether no token is indexed.
    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }

    /// The id of `token` when it is a token of the list.
    pub fn get(&self, token: &str) -> Option<u32> {
        self.tokens
            .get(hash_str(token))
            .iter()
            .copied()
            .find(|&id| self.text(id) == Some(token))
    }

    /// The text of token `id`.
    pub fn text(&self, id: u32) -> Option<&str> {
        self.texts.get(id)
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.tokens.heap_bytes() + self.deletions.heap_bytes() + self.texts.heap_bytes()
    }

    /// The ids of the list's tokens one edit from `token` (itself excluded),
    /// sorted and distinct. Empty for short or non-ASCII tokens.
    pub fn neighbours(&self, token: &str) -> Vec<u32> {
        let bytes = token.as_bytes();
        let mut out: Vec<u32> = Vec::new();
        if bytes.len() < MIN_TYPO_LEN || !token.is_ascii() {
            return out;
        }
        // One letter inserted in the token typed: the token is a deletion of it.
        out.extend(self.deletions.get(hash(&[bytes])));
        for at in 0..bytes.len() {
            let h = hash(&[
                bytes.get(..at).unwrap_or_default(),
                bytes.get(at + 1..).unwrap_or_default(),
            ]);
            // One letter missing from the token typed.
            if bytes.len() > MIN_TYPO_LEN {
                out.extend(self.tokens.get(h));
            }
            // One letter changed, or two swapped: a deletion in common.
            out.extend(self.deletions.get(h));
        }
        out.sort_unstable();
        out.dedup();
        if let Some(own) = self.get(token) {
            out.retain(|&id| id != own);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(tokens: &[&str]) -> TypoIndex {
        let mut t = TypoIndexBuilder::default();
        for token in tokens {
            t.intern(token);
        }
        t.build()
    }

    fn found(t: &TypoIndex, query: &str) -> Vec<u32> {
        t.neighbours(query)
    }

    #[test]
    fn every_kind_of_single_edit_finds_the_token() {
        let t = index(&["ibrahim", "mustafa", "flores"]);
        let ibrahim = t.get("ibrahim");
        assert!(ibrahim.is_some());
        for typed in [
            "ibrahib", "ibrahimm", "ibraim", "ibrhaim", "xbrahim", "brahim",
        ] {
            let n = found(&t, typed);
            assert!(n.contains(&0), "{typed} → {n:?}");
        }
        assert_eq!(found(&t, "floees"), vec![2]);
    }

    #[test]
    fn two_edits_two_letter_tokens_and_the_token_itself_are_not_neighbours() {
        let t = index(&["ibrahim", "ali", "omar"]);
        assert!(found(&t, "ibrxhxm").is_empty());
        assert!(found(&t, "ibrahim").is_empty());
        assert!(found(&t, "al").is_empty(), "two letters: no typo");
        assert!(found(&t, "alo").contains(&1));
        assert!(found(&t, "omer").contains(&2));
    }

    #[test]
    fn interning_is_stable() {
        let mut t = TypoIndexBuilder::default();
        let a = t.intern("hassan");
        let b = t.intern("hussein");
        assert_eq!(t.intern("hassan"), a);
        assert_ne!(a, b);
        assert_eq!(t.len(), 2);
    }
}
