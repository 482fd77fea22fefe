//! Screening of a request's people against designated persons.
//!
//! The [`ScreeningIndex`] is built once per snapshot. Names are matched in two
//! steps: *retrieval* looks up the phonetic keys of the screened name's
//! tokens (and of the whole name), and the list's tokens one typing error
//! away, in posting lists built at load, so a name costs about the same
//! against 100 or 20,000 designations; *scoring* compares the screened name
//! with each candidate (`names::compare`: per-script readings, token order,
//! middle and family names, initials, typos, legal forms) and adjusts the
//! score by kind, date of birth and nationality when both sides give them.
//! Identifiers, emails, email domains and CIDRs match exactly, at 100.
//!
//! The work of a request grows with its names, never faster: a repeated match
//! is found through a hash map, and a [`Budget`] is checked before each name.

// A fast hasher (seeded per process): lookups run per screened name.
use foldhash::HashMap;
use std::cell::RefCell;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use crate::budget::{Budget, Unbounded};
use crate::country::Country;
use crate::designation::Designated;
use crate::frozen::{HashLists, HashListsBuilder, Lists, hash_str};
use crate::keys::{domain_key, email_key, identifier_key};
use crate::names::{Explanation, NameKind, NormalName, compare, explain};
use crate::packed::PackedNames;
use crate::request::PartialDate;
use crate::scripts::Script;
use crate::typos::{TypoIndex, TypoIndexBuilder};

/// What a match was found on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// A name or alias, scored 0–100 by similarity.
    Name,
    /// An identifier value, equal once folded (100).
    Identifier,
    /// An e-mail address, equal once folded (100).
    Email,
    /// The domain of an e-mail address, a designated domain or under one.
    EmailDomain,
    /// A source IP inside a designated network.
    Cidr,
}

/// One designated person matched by the request.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Match {
    /// The designation id (`SMP-0001`).
    pub designation: String,
    /// The designated name (or identifier, email, domain, network) that matched.
    pub name: String,
    /// What in the request matched it.
    pub screened: String,
    /// `customer`, `customer.alias`, `beneficial_owner`, … .
    #[schema(value_type = String)]
    pub party: &'static str,
    /// What the match was found on.
    pub basis: Basis,
    /// 0–100; 100 for an exact name, identifier, e-mail, domain or network.
    pub score: u8,
    /// The special measure the designation carries, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measure: Option<String>,
    /// How a name match was scored, when the request asked (`"explain": true`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Box<MatchExplanation>>,
}

/// How a name match was scored: the tokens paired, the name's own score, and
/// what the party's kind, date of birth and countries added or took away.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MatchExplanation {
    /// The pairing of tokens and the name's score before adjustments.
    #[serde(flatten)]
    pub name: Explanation,
    /// Points added or taken away by what the party declared.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub adjustments: Vec<Adjustment>,
}

/// Points a declared attribute added to (or took from) a name's score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Adjustment {
    /// `kind_differs`, `date_of_birth_agrees`, `date_of_birth_differs`,
    /// `country_agrees`, `country_differs`.
    #[schema(value_type = String)]
    pub reason: &'static str,
    /// Points, positive or negative.
    pub points: i32,
}

/// The best score and every match, highest score first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Screening {
    /// The best score of any match (0 when none).
    pub score: u8,
    /// The matches, best first (near misses below the threshold included).
    pub matches: Vec<Match>,
    /// Set when `matches` was cut to a limit (`--max-matches`): more
    /// matched than are listed. The score is the best of all of them.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub matches_truncated: bool,
}

impl Screening {
    /// Keeps the `max` best matches (they are sorted best first) and says so if
    /// any were cut. The score, computed from every match, does not change.
    pub fn truncate(&mut self, max: usize) {
        if self.matches.len() > max {
            self.matches.truncate(max);
            self.matches_truncated = true;
        }
    }
}

/// Matches found so far, and where each is in the list: finding a repeated
/// match costs one hash lookup, whatever the number of matches.
#[derive(Default)]
struct Found {
    screening: Screening,
    /// (designation entry, basis, screened value) → position in `matches`.
    /// Designation ids are unique, so the entry stands for the id.
    seen: HashMap<(u32, Basis, Box<str>), usize>,
    /// Name matches carry their explanation.
    explain: bool,
}

impl Found {
    /// The screening found: matches best first (then by designation id), and
    /// the best score.
    #[inline]
    fn best_first(self) -> Screening {
        let mut out = self.screening;
        out.matches.sort_by(|a, b| {
            b.score
                .cmp(&a.score)
                .then_with(|| a.designation.cmp(&b.designation))
        });
        out.score = out.matches.first().map_or(0, |m| m.score);
        out
    }
}

/// One designated name, prepared for comparison: where it comes from, and
/// its [`NormalName`] packed under the same number in [`PackedNames`].
#[derive(Debug)]
struct IndexedName {
    entry: u32,
    name: u16,
    kind: NameKind,
    /// How many tokens its prepared name has.
    tokens: u8,
}

/// Matches reported per screened name, best first (near misses included, so the
/// best score is visible even below the threshold).
const MAX_REPORTED: usize = 10;
/// Scores below this are not reported at all.
const REPORT_FLOOR: u8 = 70;
/// A posting list longer than this is a token too common to retrieve on its own
/// (`mohammed`): its names must share a second key with the screened name.
const SHORT_POSTING: usize = 256;
/// At most this many candidates are scored for one screened name.
const MAX_CANDIDATES: usize = 32;
/// Tokens longer than this (no name has one) get no typo neighbours and are
/// not split in two: the work on a token grows with the square of its length.
const MAX_TYPO_TOKEN: usize = 40;
/// At most this many names are reached through the near keys of one token.
const NEAR_BUDGET: usize = 512;
/// At most this many names found through short lists are probed in long ones.
const MAX_PROBED: usize = 1024;
/// A token the list spells for at most this many names brings them to be
/// scored on its own (`Drago Spasojevic`: `SPASOJEVIC, Dragon`).
const RARE_SPELLING: usize = 4;
/// A key shared by at most this many names retrieves on its own.
const RARE_POSTING: usize = 32;

/// What a name's score loses when the customer declared itself a person and
/// the designation is an organisation, or the other way round.
const KIND_CONFLICT: i32 = 10;

/// Who is being screened, with what they declared about themselves.
struct Party {
    label: &'static str,
    kind: NameKind,
    date_of_birth: Option<PartialDate>,
    countries: Vec<Country>,
}

/// Who a screened person is to the request: what a match on their name (or on
/// an alias) is reported as (`customer`, `customer.alias`, `beneficial_owner`,
/// `beneficial_owner.alias`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The customer the request is about.
    Customer,
    /// One of the customer's beneficial owners.
    BeneficialOwner,
}

impl Role {
    fn labels(self) -> (&'static str, &'static str) {
        match self {
            Self::Customer => ("customer", "customer.alias"),
            Self::BeneficialOwner => ("beneficial_owner", "beneficial_owner.alias"),
        }
    }
}

/// One person to screen: a name, its aliases, and what qualifies a match on
/// them (a date of birth, the countries the person is tied to).
#[derive(Debug, Clone)]
pub struct Person<'a> {
    /// What a match on this person is reported as.
    pub role: Role,
    /// What the person declared itself to be, when known (the customer's
    /// `kind`; `Unknown` for beneficial owners).
    pub kind: NameKind,
    /// The name as given.
    pub name: &'a str,
    /// Other names, screened the same way.
    pub aliases: &'a [String],
    /// Raises a match on a designation born the same day (or year), lowers one
    /// born otherwise.
    pub date_of_birth: Option<PartialDate>,
    /// Nationalities and countries of residence: a designation tied to none of
    /// them (when it names any) scores lower.
    pub countries: Vec<Country>,
}

/// What screening reads of a request: the people in it and what else
/// identifies the customer. Screening knows no wire format; `enrich`
/// implements this for the decision request.
pub trait Subject {
    /// The people to screen, the customer first.
    fn people(&self) -> impl Iterator<Item = Person<'_>>;
    /// The customer's identifier values (passport, tax id…).
    fn identifiers(&self) -> impl Iterator<Item = &str>;
    /// The customer's e-mail address, if given and not blank.
    fn email(&self) -> Option<&str>;
    /// The addresses the request came from.
    fn source_ips(&self) -> impl Iterator<Item = IpAddr>;
    /// Whether each name match should say how it was scored.
    fn explain(&self) -> bool {
        false
    }
}

/// What one name retrieves from an index, before the screened party's
/// qualifiers (date of birth, countries) adjust the scores.
#[derive(Debug, Clone, Copy)]
struct Hit {
    entry: u32,
    name: u16,
    /// 100 for an exact (order-insensitive) name; else the name score.
    base: i32,
    exact: bool,
}

/// Names remembered per thread. The same customers are screened again and
/// again (every review and provisioning call repeats their names), and what a
/// name retrieves depends only on the name and the index: a repeated name
/// costs a hash lookup instead of normalisation and candidate scoring. One
/// cache per thread needs no lock. It keeps the names of two indexes, so
/// that a thread deciding each request on two snapshots (impact analysis,
/// shadow evaluation) keeps both warm; a third index takes the place of the
/// one used least recently (after a reload). A slot is emptied when full.
const NAME_CACHE_CAPACITY: usize = 4096;

#[derive(Default)]
struct NameCacheSlot {
    index: u64,
    hits: HashMap<Box<str>, Rc<[Hit]>>,
}

#[derive(Default)]
struct NameCache {
    slots: [NameCacheSlot; 2],
    /// The slot used last; the other goes to a new index.
    last: usize,
}

impl NameCache {
    /// The slot of `index`, taken over from the index used least recently if
    /// neither slot holds it.
    fn slot(&mut self, index: u64) -> &mut NameCacheSlot {
        let found = self.slots.iter().position(|s| s.index == index);
        let at = found.unwrap_or(1 - self.last.min(1));
        self.last = at;
        let [first, second] = &mut self.slots;
        let slot = if at == 0 { first } else { second };
        if slot.index != index {
            slot.hits.clear();
            slot.index = index;
        }
        slot
    }
}

thread_local! {
    static NAME_CACHE: RefCell<NameCache> = RefCell::new(NameCache::default());
}

/// Tells indexes apart in [`NameCache`]; 0 is never given out.
static NEXT_INDEX_ID: AtomicU64 = AtomicU64::new(1);

/// Designations indexed for lookup. Indices point into `entries`.
#[derive(Debug, Default)]
pub struct ScreeningIndex {
    /// Unique per built index, for the name cache.
    id: u64,
    entries: Vec<Designated>,
    /// Hash of an exact, order-insensitive name key → `exact_names` positions.
    exact: HashLists,
    /// `(entry, name)` of every designated name with an exact key.
    exact_names: Box<[(u32, u16)]>,
    indexed: Vec<IndexedName>,
    /// The prepared names of `indexed`, by the same number.
    packed: PackedNames,
    /// Hash of the phonetic key of a token, or of a whole name's letters →
    /// `indexed` positions.
    postings: HashLists,
    /// The keys of `postings` (three letters or more) under their one-letter
    /// deletions: retrieval that survives one edit of a key.
    near: TypoIndex,
    /// The names' Latin tokens, with those one typing error away.
    typos: TypoIndex,
    /// A token of `typos` → the `indexed` positions of the names holding it.
    token_postings: Lists,
    identifiers: HashMap<String, Vec<(u32, u16)>>,
    emails: HashMap<String, Vec<u32>>,
    domains: HashMap<String, Vec<u32>>,
    cidrs: Vec<(ipnetwork::IpNetwork, u32)>,
}

impl ScreeningIndex {
    /// Indexes designations: names (exact keys and phonetic postings),
    /// identifiers, e-mail addresses, domains and networks.
    pub fn build(entries: Vec<Designated>) -> Self {
        let mut index = Self {
            id: NEXT_INDEX_ID.fetch_add(1, Ordering::Relaxed),
            ..Self::default()
        };
        let mut exact = HashListsBuilder::default();
        let mut exact_names = Vec::new();
        let mut postings = HashListsBuilder::default();
        // Keys of three letters or more, for `near`.
        let mut near_keys: std::collections::BTreeSet<String> = Default::default();
        let mut typos = TypoIndexBuilder::default();
        let mut token_postings: Vec<(u32, u32)> = Vec::new();
        for (i, d) in entries.iter().enumerate() {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            let kind = NameKind::of_designation(d.record.kind.as_deref());
            for (n, name) in d.record.names.iter().enumerate() {
                let n = u16::try_from(n).unwrap_or(u16::MAX);
                let normal = NormalName::new(name);
                // The exact key is looked up by its hash, and a hit checked
                // against the designated name itself.
                if !normal.exact.is_empty() {
                    let at = u32::try_from(exact_names.len()).unwrap_or(u32::MAX);
                    exact.push(hash_str(&normal.exact), at);
                    exact_names.push((i, n));
                }
                if normal.is_empty() {
                    continue;
                }
                let at = u32::try_from(index.indexed.len()).unwrap_or(u32::MAX);
                let mut keys: Vec<String> = normal.keys.clone();
                keys.push(joined_key(&normal));
                // `Muraj` is also reached from `مراج`: a `j` after a vowel
                // is `ج` to an Arabic reader, not the `y` of `Sergej`.
                keys.extend(
                    normal
                        .tokens
                        .iter()
                        .filter(|t| crate::names::reads_otherwise_to_arabic(t))
                        .map(|t| crate::names::arabic_comparable_key(t)),
                );
                keys.sort_unstable();
                keys.dedup();
                for k in keys {
                    postings.push(hash_str(&k), at);
                    if k.len() >= 3 && !k.starts_with('~') {
                        near_keys.insert(k);
                    }
                }
                let latin = normal.tokens.iter().zip(&normal.scripts);
                for (token, _) in latin.filter(|(_, s)| **s == Script::Latin) {
                    token_postings.push((typos.intern(token), at));
                }
                // A Latin token's second spelling (`abdul` behind `abd`), for a
                // mistyped one (`Adbul`) to find among its typo neighbours.
                for (p, alt) in &normal.alt_tokens {
                    if normal.scripts.get(*p) == Some(&Script::Latin) {
                        token_postings.push((typos.intern(alt), at));
                    }
                }
                index.packed.push(&normal);
                index.indexed.push(IndexedName {
                    entry: i,
                    name: n,
                    kind,
                    tokens: u8::try_from(normal.tokens.len()).unwrap_or(u8::MAX),
                });
            }
            for (n, id) in d.record.identifiers.iter().enumerate() {
                let key = identifier_key(&id.value);
                if !key.is_empty() {
                    let slot = index.identifiers.entry(key).or_default();
                    slot.push((i, u16::try_from(n).unwrap_or(u16::MAX)));
                }
            }
            for email in &d.record.emails {
                index.emails.entry(email_key(email)).or_default().push(i);
            }
            for domain in &d.record.domains {
                index.domains.entry(domain_key(domain)).or_default().push(i);
            }
            index.cidrs.extend(d.cidrs.iter().map(|net| (*net, i)));
        }
        // Ids in key order: the same list builds the same index.
        let mut near = TypoIndexBuilder::default();
        for key in &near_keys {
            near.intern(key);
        }
        index.near = near.build();
        index.typos = typos.build();
        index.token_postings = Lists::from_pairs(token_postings);
        index.postings = postings.build();
        index.exact = exact.build();
        index.exact_names = exact_names.into();
        index.indexed.shrink_to_fit();
        index.packed.shrink_to_fit();
        index.entries = entries;
        index
    }

    /// Heap bytes held by the index's own tables (the designation records
    /// it answers from left out): what a designated name costs, counted
    /// rather than read off the process's resident memory.
    pub fn heap_bytes(&self) -> usize {
        fn map<V>(m: &HashMap<String, Vec<V>>) -> usize {
            let table = m.capacity() * (std::mem::size_of::<(String, Vec<V>)>() + 1);
            table
                + m.iter()
                    .map(|(k, v)| k.capacity() + v.capacity() * std::mem::size_of::<V>())
                    .sum::<usize>()
        }
        self.exact.heap_bytes()
            + std::mem::size_of_val(&*self.exact_names)
            + self.indexed.capacity() * std::mem::size_of::<IndexedName>()
            + self.packed.heap_bytes()
            + self.postings.heap_bytes()
            + self.near.heap_bytes()
            + self.typos.heap_bytes()
            + self.token_postings.heap_bytes()
            + map(&self.identifiers)
            + map(&self.emails)
            + map(&self.domains)
            + self.cidrs.capacity() * std::mem::size_of::<(ipnetwork::IpNetwork, u32)>()
    }

    /// How many designations are indexed.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no designation is indexed (screening then finds nothing).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The designations indexed, in load order.
    pub fn entries(&self) -> &[Designated] {
        &self.entries
    }

    /// Screens every person and identity attribute of a request. Matches of
    /// `threshold` or more count; near misses down to a floor are reported too.
    pub fn screen(&self, req: &impl Subject, threshold: u8) -> Screening {
        let Ok(screening) = self.screen_with(req, threshold, true, &Unbounded);
        screening
    }

    /// [`Self::screen`] within `budget`, checked before each name, identifier
    /// and source IP: once it is spent, screening stops with its error.
    pub fn screen_within<B: Budget>(
        &self,
        req: &impl Subject,
        threshold: u8,
        budget: &B,
    ) -> Result<Screening, B::Over> {
        self.screen_with(req, threshold, true, budget)
    }

    /// [`Self::screen`] without this thread's name cache: what a new customer
    /// costs (benchmarks), and the reference the cache is tested against.
    pub fn screen_uncached(&self, req: &impl Subject, threshold: u8) -> Screening {
        let Ok(screening) = self.screen_with(req, threshold, false, &Unbounded);
        screening
    }

    fn screen_with<B: Budget>(
        &self,
        req: &impl Subject,
        threshold: u8,
        cached: bool,
        budget: &B,
    ) -> Result<Screening, B::Over> {
        let mut out = Found {
            explain: req.explain(),
            ..Found::default()
        };
        if self.entries.is_empty() {
            return Ok(out.screening);
        }
        for person in req.people() {
            self.screen_person(person, threshold, cached, budget, &mut out)?;
        }
        self.screen_identifiers(req.identifiers(), budget, &mut out)?;
        if let Some(email) = req.email() {
            self.screen_email(email, &mut out);
        }
        self.screen_source_ips(req.source_ips(), budget, &mut out)?;
        Ok(out.best_first())
    }

    /// A person's name and aliases, qualified by their date of birth and
    /// countries.
    #[inline]
    fn screen_person<B: Budget>(
        &self,
        person: Person<'_>,
        threshold: u8,
        cached: bool,
        budget: &B,
        out: &mut Found,
    ) -> Result<(), B::Over> {
        let (name_label, alias_label) = person.role.labels();
        let mut party = Party {
            label: name_label,
            kind: person.kind,
            date_of_birth: person.date_of_birth,
            countries: person.countries,
        };
        budget.check()?;
        self.screen_name(person.name, &party, threshold, cached, out);
        party.label = alias_label;
        for alias in person.aliases {
            budget.check()?;
            self.screen_name(alias, &party, threshold, cached, out);
        }
        Ok(())
    }

    /// The customer's identifiers, matched exactly (folded) at 100.
    #[inline]
    fn screen_identifiers<'a, B: Budget>(
        &self,
        ids: impl Iterator<Item = &'a str>,
        budget: &B,
        out: &mut Found,
    ) -> Result<(), B::Over> {
        for id in ids {
            budget.check()?;
            if let Some(hits) = self.identifiers.get(&identifier_key(id)) {
                for &(i, n) in hits {
                    let name = self
                        .entry(i)
                        .and_then(|d| d.record.identifiers.get(usize::from(n)))
                        .map(|x| x.value.clone())
                        .unwrap_or_default();
                    self.push(out, i, name, id, "customer", Basis::Identifier, 100);
                }
            }
        }
        Ok(())
    }

    /// The customer's email, matched exactly (folded) at 100, then its domain.
    #[inline]
    fn screen_email(&self, email: &str, out: &mut Found) {
        let key = email_key(email);
        for &i in self.emails.get(&key).into_iter().flatten() {
            self.push(out, i, key.clone(), email, "customer", Basis::Email, 100);
        }
        if let Some((_, domain)) = key.rsplit_once('@') {
            self.screen_domain(domain, email, out);
        }
    }

    /// The source IPs (and the IPv4 address each carries, if any) against the
    /// designated networks.
    #[inline]
    fn screen_source_ips<B: Budget>(
        &self,
        ips: impl Iterator<Item = IpAddr>,
        budget: &B,
        out: &mut Found,
    ) -> Result<(), B::Over> {
        for ip in ips {
            budget.check()?;
            self.screen_ip(ip, out);
            // The IPv4 address a 6to4, NAT64 or Teredo address carries.
            if let Some(v4) = crate::geo::embedded_ipv4(ip) {
                self.screen_ip(v4.into(), out);
            }
        }
        Ok(())
    }

    fn entry(&self, i: u32) -> Option<&Designated> {
        self.entries.get(usize::try_from(i).ok()?)
    }

    fn screen_name(&self, name: &str, party: &Party, threshold: u8, cached: bool, out: &mut Found) {
        let hits = if cached {
            self.cached_hits(name)
        } else {
            self.hits(name).into()
        };
        let report = |out: &mut Found, hit: Hit, score: u8| {
            let designated = self.designated_name(hit);
            let explanation = out
                .explain
                .then(|| self.explain_hit(name, &designated, hit, party));
            self.push_explained(
                out,
                hit.entry,
                designated,
                name,
                party.label,
                Basis::Name,
                score,
                explanation,
            )
        };
        let mut found: Vec<(u8, Hit)> = Vec::new();
        for &hit in hits.iter() {
            if hit.exact {
                // Exact (order-insensitive) names: certain, whatever the qualifiers.
                report(out, hit, 100);
                continue;
            }
            let adjusted = hit.base + self.entry(hit.entry).map_or(0, |d| qualifiers(d, party));
            let score = u8::try_from(adjusted.clamp(0, 100)).unwrap_or(0);
            if score >= REPORT_FLOOR {
                found.push((score, hit));
            }
        }
        found.sort_unstable_by_key(|&(score, _)| std::cmp::Reverse(score));
        let mut reported = 0;
        for (score, hit) in found {
            if reported >= MAX_REPORTED && score < threshold {
                break;
            }
            if report(out, hit, score) {
                reported += 1;
            }
        }
    }

    /// How `hit` was scored against the screened `name`.
    fn explain_hit(
        &self,
        name: &str,
        designated: &str,
        hit: Hit,
        party: &Party,
    ) -> Box<MatchExplanation> {
        let d = self.entry(hit.entry);
        let kind = NameKind::of_designation(d.and_then(|d| d.record.kind.as_deref()));
        // The reading the hit was scored by: as written, or split.
        let (query, designated) = (NormalName::new(name), NormalName::new(designated));
        let split = query.unglued(|t| self.typos.get(t).is_some()).filter(|s| {
            compare(s, &designated, kind).score > compare(&query, &designated, kind).score
        });
        let mut explained = explain(split.as_ref().unwrap_or(&query), &designated, kind);
        explained.name_score = u8::try_from(hit.base.clamp(0, 100)).unwrap_or(0);
        let adjustments = if hit.exact {
            Vec::new()
        } else {
            d.map(|d| adjustments(d, party))
                .into_iter()
                .flatten()
                .filter(|a| a.points != 0)
                .collect()
        };
        Box::new(MatchExplanation {
            name: explained,
            adjustments,
        })
    }

    fn designated_name(&self, hit: Hit) -> String {
        self.entry(hit.entry)
            .and_then(|d| d.record.names.get(usize::from(hit.name)))
            .cloned()
            .unwrap_or_default()
    }

    /// [`Self::hits`] through this thread's [`NameCache`].
    fn cached_hits(&self, name: &str) -> Rc<[Hit]> {
        let cached = NAME_CACHE.try_with(|cache| {
            let mut cache = cache.borrow_mut();
            let cache = cache.slot(self.id);
            if let Some(hits) = cache.hits.get(name) {
                return hits.clone();
            }
            let hits: Rc<[Hit]> = self.hits(name).into();
            if cache.hits.len() >= NAME_CACHE_CAPACITY {
                cache.hits.clear();
            }
            cache.hits.insert(name.into(), hits.clone());
            hits
        });
        // Only while the thread is being torn down is there no cache.
        cached.unwrap_or_else(|_| self.hits(name).into())
    }

    /// What `name` retrieves: exact names first, then scored candidates that
    /// could reach the report floor once qualifiers are added, in retrieval order.
    fn hits(&self, name: &str) -> Vec<Hit> {
        let query = NormalName::new(name);
        let mut hits: Vec<Hit> = self
            .exact_names(&query.exact)
            .map(|(entry, name)| Hit {
                entry,
                name,
                base: 100,
                exact: true,
            })
            .collect();
        if query.is_empty() {
            return hits;
        }
        // A particle written onto a token the list does not know: the name
        // is screened as written and split (see `NormalName::unglued`).
        let split = query.unglued(|t| self.typos.get(t).is_some());
        let mut candidates = self.candidates(&query);
        if let Some(split) = &split {
            for at in self.candidates(split) {
                if !candidates.contains(&at) {
                    candidates.push(at);
                }
            }
        }
        // Each candidate is unpacked into this one name in turn.
        let mut scratch = NormalName::default();
        for at in candidates {
            let Some(cand) = self.indexed.get(at as usize) else {
                continue;
            };
            if !self.packed.unpack(at, &mut scratch) {
                // Not for anything `PackedNames::push` wrote, short of a
                // name too large to pack whole: prepared afresh, never
                // skipped.
                let name = self
                    .entry(cand.entry)
                    .and_then(|d| d.record.names.get(usize::from(cand.name)));
                let Some(name) = name else {
                    continue;
                };
                scratch = NormalName::new(name);
            }
            let mut base = compare(&query, &scratch, cand.kind).score;
            if let Some(split) = &split {
                base = base.max(compare(split, &scratch, cand.kind).score);
            }
            let base = (base * 100.0).round() as i32;
            if base >= i32::from(REPORT_FLOOR) - 10 {
                hits.push(Hit {
                    entry: cand.entry,
                    name: cand.name,
                    base,
                    exact: false,
                });
            }
        }
        hits
    }

    /// The designated names whose exact key is `key`: those under its hash,
    /// each checked against the name itself.
    fn exact_names<'a>(&'a self, key: &'a str) -> impl Iterator<Item = (u32, u16)> + 'a {
        let found = if key.is_empty() {
            &[][..]
        } else {
            self.exact.get(hash_str(key))
        };
        found
            .iter()
            .filter_map(|&at| self.exact_names.get(at as usize).copied())
            .filter(move |&(entry, name)| {
                self.entry(entry)
                    .and_then(|d| d.record.names.get(usize::from(name)))
                    .is_some_and(|n| NormalName::new(n).exact == key)
            })
    }

    /// The names under a key's hash, when there are any.
    fn posting(&self, key: &str) -> Option<&[u32]> {
        let list = self.postings.get(hash_str(key));
        (!list.is_empty()).then_some(list)
    }

    /// The names spelling token `id` of `typos`.
    fn spelling(&self, id: u32) -> Option<&[u32]> {
        let list = self.token_postings.get(id as usize);
        (!list.is_empty()).then_some(list)
    }

    /// Designated names worth scoring against the query. Each token of the
    /// query brings the posting list of its key; a Latin token the list never
    /// spells brings the lists of the list's tokens one typing error away
    /// (`Floees` / `Flores`, see [`TypoIndex`]), a token of another script
    /// those of keys one letter from its skeleton; a long token brings the
    /// names holding two names it may be run together from (`Arnoldolobo`);
    /// two adjacent tokens bring the list of their key written as one
    /// (`Pa lacios`). A name is a candidate when at least two tokens lead to
    /// it, one through its own key (or three through near ones), or the
    /// query is one token. Long posting lists (common tokens such as
    /// `mohammed`) are only probed, never walked, unless nothing rarer
    /// exists. The best-overlapping [`MAX_CANDIDATES`] are kept.
    fn candidates(&self, query: &NormalName) -> Vec<u32> {
        let groups = self.token_lists(query);
        let mut exact: Vec<&[u32]> = groups.iter().filter_map(|g| g.own).collect();
        exact.sort_by_key(|l| l.len());
        let single = query.tokens.len() <= 1;
        let mut found: HashMap<u32, Reach> = HashMap::default();
        for (g, group) in groups.iter().enumerate().take(64) {
            let bit = 1u64 << g;
            for (own, list) in group.lists().filter(|(_, l)| l.len() <= SHORT_POSTING) {
                for &at in list.iter() {
                    found.entry(at).or_default().add(bit, own);
                }
            }
        }
        // Tokens whose own key's list is too common to walk (`Muhammabd
        // Ibrahim`; `عباس حسن غريب`, whose near keys' short lists were
        // walked but hold other names): the names on the key lists of the
        // two rarest of them (by key, not spelling: `Mohamed` also finds
        // `Muhammad`). A token none of whose lists is long enough to need it
        // was walked already; its names are probed in the others.
        let tokens = groups.len().saturating_sub(1);
        let mut rarest: Vec<&[u32]> = groups
            .iter()
            .take(tokens)
            .filter_map(|g| {
                if g.lists().all(|(_, l)| l.len() > SHORT_POSTING) {
                    g.key
                        .or_else(|| g.lists().map(|(_, l)| l).min_by_key(|l| l.len()))
                } else {
                    // Its own list is its key's (no spelling of the list's
                    // stands in for it: another script), too long to walk.
                    let own_is_key = g.own.zip(g.key).is_some_and(|(o, k)| std::ptr::eq(o, k));
                    own_is_key
                        .then_some(g.key)
                        .flatten()
                        .filter(|l| l.len() > SHORT_POSTING)
                        .or_else(|| {
                            // A spelling one typing error away, or two
                            // tokens written as one, too common to walk
                            // (`Mcuhammad`: `muhammad`), beside rare lists.
                            g.typo
                                .iter()
                                .chain(g.near.iter())
                                .copied()
                                .filter(|l| l.len() > SHORT_POSTING)
                                .min_by_key(|l| l.len())
                        })
                }
            })
            .collect();
        rarest.sort_by_key(|l| l.len());
        if let (Some(a), Some(b)) = (rarest.first(), rarest.get(1)) {
            for at in intersect(a, b) {
                found.entry(at).or_default();
            }
        } else if let Some(a) = exact.first().filter(|a| a.len() > SHORT_POSTING) {
            for &at in a.iter().take(SHORT_POSTING) {
                found.entry(at).or_default();
            }
        }
        if found.len() > MAX_PROBED {
            // Too many to probe: keep the best reached.
            let mut all: Vec<(u32, Reach)> = found.into_iter().collect();
            all.sort_unstable_by(|a, b| b.1.rank().cmp(&a.1.rank()).then(a.0.cmp(&b.0)));
            all.truncate(MAX_PROBED);
            found = all.into_iter().collect();
        }
        // Common lists are probed for the names found.
        for (g, group) in groups.iter().enumerate().take(64) {
            let bit = 1u64 << g;
            for (own, list) in group.lists().filter(|(_, l)| l.len() > SHORT_POSTING) {
                for (at, reach) in found.iter_mut() {
                    let known = if own { reach.exact } else { reach.any };
                    if known & bit == 0 && list.binary_search(at).is_ok() {
                        reach.add(bit, own);
                    }
                }
            }
        }
        // Best reached first, then names of about the query's length.
        let length_gap = |at: u32| {
            self.indexed.get(at as usize).map_or(usize::MAX, |n| {
                usize::from(n.tokens).abs_diff(query.tokens.len())
            })
        };
        // A name reached through one rare token of its own only (`Drago
        // Spasojevic`: `SPASOJEVIC, Dragon`, whose `Dragon` the list spells
        // otherwise) is scored when nothing better fills the places.
        let rare: Vec<&[u32]> = groups
            .iter()
            .filter_map(|g| g.spelt.filter(|l| l.len() <= RARE_SPELLING))
            .collect();
        let rarely_reached = |at: &u32| rare.iter().any(|l| l.binary_search(at).is_ok());
        let mut ranked: Vec<(u32, usize, u32)> = found
            .into_iter()
            .filter(|(at, r)| r.rank() >= 3 || single || (r.exact != 0 && rarely_reached(at)))
            .map(|(at, r)| (r.rank(), length_gap(at), at))
            .collect();
        ranked.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        ranked.truncate(MAX_CANDIDATES);
        ranked.into_iter().map(|(_, _, at)| at).collect()
    }

    /// The posting lists each token of the query leads to, and a last group
    /// for the whole name's key.
    fn token_lists<'a>(&'a self, query: &NormalName) -> Vec<Group<'a>> {
        let mut groups: Vec<Group<'a>> = Vec::with_capacity(query.tokens.len() + 1);
        for (i, key) in query.keys.iter().enumerate() {
            let own = self.posting(key);
            let mut group = Group {
                own,
                key: own,
                near: Vec::new(),
                typo: Vec::new(),
                spelt: None,
                runs: Vec::new(),
            };
            let alt = query.alt_keys.iter().filter(|(p, _)| *p == i);
            group.near.extend(alt.filter_map(|(_, k)| {
                self.posting(k.strip_prefix(crate::scripts::HARD_G).unwrap_or(k))
            }));
            let token = query.tokens.get(i).map_or("", String::as_str);
            let script = query.scripts.get(i).copied().unwrap_or_default();
            if script == Script::Latin {
                self.spelling_lists(token, &mut group);
            } else if script == Script::Cyrillic {
                // Both readings, as spelt in Latin letters.
                self.spelling_lists(token, &mut group);
                let alt = query.alt_tokens.iter().filter(|(p, _)| *p == i);
                for (_, reading) in alt {
                    self.spelling_lists(reading, &mut group);
                }
            }
            // Arabic script, whose skeletons differ by a clerk's choice of
            // letter (`غارسي` / `Garcia`), always; another script when its
            // key is missing or rare.
            let near_too = script == Script::Arabic || own.is_none_or(|l| l.len() <= RARE_POSTING);
            if script != Script::Latin && (3..=MAX_TYPO_TOKEN).contains(&key.len()) && near_too {
                // Another script's token: its key (a skeleton) may differ by
                // one letter from the list's reading of the same name.
                // Near keys, rarest first, within a budget of names walked.
                let mut near = self.near_lists(key);
                near.sort_by_key(|l| l.len());
                let mut walked = 0;
                for list in near {
                    walked += list.len();
                    if walked > NEAR_BUDGET {
                        break;
                    }
                    group.near.push(list);
                }
            }
            if (5..=MAX_TYPO_TOKEN).contains(&token.len())
                && self.typos.get(token).is_none()
                && token.is_ascii()
            {
                group.runs = self.halves(token);
            }
            groups.push(group);
        }
        // Two adjacent tokens that are one name split.
        for (i, pair) in query.tokens.windows(2).enumerate() {
            if let [a, b] = pair {
                let joined = format!("{a}{b}");
                let run = crate::names::phonetic_key(&joined);
                // The names spelling the two as one token (`Ibr ahim`:
                // `ibrahim`), which the key's list, shared by many, hides.
                let spelt = self.typos.get(&joined).and_then(|id| self.spelling(id));
                for g in [i, i + 1] {
                    if let Some(group) = groups.get_mut(g) {
                        group.near.extend(self.posting(&run));
                        group.typo.extend(spelt);
                    }
                }
            }
        }
        let whole = self.posting(&joined_key(query));
        groups.push(Group {
            own: whole,
            key: whole,
            near: Vec::new(),
            typo: Vec::new(),
            spelt: None,
            runs: Vec::new(),
        });
        groups
    }

    /// The lists a token brings through its spelling: the names spelling it
    /// exactly (walked in place of its key's list when that list is too
    /// common to walk: `zahedi` shares `sht` with many names), or, when the
    /// list never spells it, the names spelling a token one typing error
    /// away, rarest first, within a budget.
    fn spelling_lists<'a>(&'a self, token: &str, group: &mut Group<'a>) {
        let spelt = self.typos.get(token).and_then(|id| self.spelling(id));
        if let Some(spelt) = spelt {
            group.spelt = group.spelt.or(Some(spelt));
            match group.own {
                Some(key_list)
                    if key_list.len() > SHORT_POSTING && spelt.len() < key_list.len() =>
                {
                    group.own = Some(spelt);
                    group.near.push(key_list);
                }
                None => group.own = Some(spelt),
                Some(_) => {}
            }
            return;
        }
        if token.len() > MAX_TYPO_TOKEN {
            return;
        }
        let mut near: Vec<&[u32]> = self
            .typos
            .neighbours(token)
            .into_iter()
            .filter_map(|id| self.spelling(id))
            .collect();
        near.sort_by_key(|l| l.len());
        // Short lists are walked within a budget; long ones (`Muhammabd`:
        // `muhammad`) are only probed, so they cost nothing unless the names
        // they hold were found otherwise.
        let mut walked = 0;
        for list in near {
            if list.len() <= SHORT_POSTING {
                walked += list.len();
                if walked > NEAR_BUDGET {
                    continue;
                }
            }
            group.typo.push(list);
        }
    }

    /// The lists of the index's token keys one edit away from `key` (a
    /// letter deleted, inserted or changed), `key`'s own excluded, in key
    /// order.
    fn near_lists(&self, key: &str) -> Vec<&[u32]> {
        // Longer by a letter, one changed or two swapped, and shorter by a
        // letter down to three letters.
        let mut keys: Vec<&str> = self
            .near
            .neighbours(key)
            .into_iter()
            .filter_map(|id| self.near.text(id))
            .collect();
        // Shorter by a letter, to two.
        let two = if key.len() == 3 {
            deletions(key)
        } else {
            Vec::new()
        };
        keys.extend(two.iter().map(String::as_str));
        keys.retain(|k| *k != key);
        keys.sort_unstable();
        keys.dedup();
        keys.into_iter().filter_map(|k| self.posting(k)).collect()
    }

    /// The names holding two names a token may be run together from
    /// (`Arnoldolobo`: `Arnoldo` and `Lobo`), for every split into halves of
    /// two letters or more that are both tokens of the list.
    fn halves(&self, token: &str) -> Vec<Vec<u32>> {
        let mut out = Vec::new();
        for cut in 2..token.len().saturating_sub(1) {
            let (Some(a), Some(b)) = (token.get(..cut), token.get(cut..)) else {
                continue;
            };
            // Both halves spelt as the list spells them: two hash lookups a
            // cut, nothing built.
            let spelt = |half: &str| self.typos.get(half).and_then(|id| self.spelling(id));
            // `Jamalaldin`, `Salahuddin`: the article between the two
            // (`JAMAL-AL-DIN`), which the list keeps apart.
            let after_article = || {
                ["al", "el", "ul", "ud", "ad", "ed"]
                    .iter()
                    .filter_map(|p| b.strip_prefix(p))
                    .filter(|rest| rest.len() >= 3)
                    .find_map(spelt)
            };
            let lists = (spelt(a), spelt(b).or_else(after_article));
            if let (Some(x), Some(y)) = lists {
                // The shorter list's names looked up in the longer: two
                // common halves are not walked.
                let (short, long) = if x.len() <= y.len() { (x, y) } else { (y, x) };
                if short.len() > SHORT_POSTING {
                    continue;
                }
                let both: Vec<u32> = short
                    .iter()
                    .copied()
                    .filter(|at| long.binary_search(at).is_ok())
                    .collect();
                if !both.is_empty() {
                    out.push(both);
                }
            }
        }
        out
    }

    /// An email's domain matches a designated domain or any of its subdomains.
    fn screen_domain(&self, domain: &str, email: &str, out: &mut Found) {
        let mut rest = domain;
        loop {
            for &i in self.domains.get(rest).into_iter().flatten() {
                self.push(
                    out,
                    i,
                    rest.to_owned(),
                    email,
                    "customer",
                    Basis::EmailDomain,
                    100,
                );
            }
            match rest.split_once('.') {
                Some((_, parent)) if parent.contains('.') => rest = parent,
                _ => break,
            }
        }
    }

    fn screen_ip(&self, ip: IpAddr, out: &mut Found) {
        for (net, i) in &self.cidrs {
            if net.contains(ip) {
                self.push(
                    out,
                    *i,
                    net.to_string(),
                    &ip.to_string(),
                    "source_ip",
                    Basis::Cidr,
                    100,
                );
            }
        }
    }

    /// Adds a match unless the same designation already matched the same
    /// screened value on the same basis; then keeps the better score of the two.
    /// Constant time: the earlier match is found through `out.seen`.
    #[allow(clippy::too_many_arguments)]
    fn push(
        &self,
        out: &mut Found,
        i: u32,
        name: String,
        screened: &str,
        party: &'static str,
        basis: Basis,
        score: u8,
    ) -> bool {
        self.push_explained(out, i, name, screened, party, basis, score, None)
    }

    /// [`Self::push`], with how a name match was scored: the explanation
    /// follows the score kept.
    #[allow(clippy::too_many_arguments)]
    fn push_explained(
        &self,
        out: &mut Found,
        i: u32,
        name: String,
        screened: &str,
        party: &'static str,
        basis: Basis,
        score: u8,
        explanation: Option<Box<MatchExplanation>>,
    ) -> bool {
        use std::collections::hash_map::Entry;
        let Some(d) = self.entry(i) else { return false };
        let at = out.screening.matches.len();
        match out.seen.entry((i, basis, screened.into())) {
            Entry::Occupied(seen) => {
                if let Some(m) = out.screening.matches.get_mut(*seen.get())
                    && m.score < score
                {
                    m.score = score;
                    m.name = name;
                    m.explanation = explanation;
                }
                return false;
            }
            Entry::Vacant(slot) => {
                slot.insert(at);
            }
        }
        out.screening.matches.push(Match {
            designation: d.record.id.clone(),
            name,
            screened: screened.to_owned(),
            party,
            basis,
            score,
            measure: d.record.measure.clone(),
            explanation,
        });
        true
    }
}

/// The posting lists one token of a query leads to.
struct Group<'a> {
    /// The list of the token's own key, or of its exact spelling when the
    /// key's is too common to walk.
    own: Option<&'a [u32]>,
    /// The list of the token's own key.
    key: Option<&'a [u32]>,
    /// Lists of keys near it (another reading, a split).
    near: Vec<&'a [u32]>,
    /// Lists of the list's spellings one typing error from it: as telling
    /// as its own key (`Xando` / `Bando`).
    typo: Vec<&'a [u32]>,
    /// The names spelling the token as it is written, when the list does.
    spelt: Option<&'a [u32]>,
    /// Names holding both halves of the token, when it is two names run together.
    runs: Vec<Vec<u32>>,
}

impl<'a> Group<'a> {
    /// Every list, with whether it is the token's own.
    fn lists(&self) -> impl Iterator<Item = (bool, &[u32])> + '_ {
        self.own
            .map(|l| (true, l))
            .into_iter()
            .chain(self.typo.iter().map(|l| (true, *l)))
            .chain(self.near.iter().map(|l| (false, *l)))
            // Two tokens of the list run together: as telling as a key.
            .chain(self.runs.iter().map(|l| (true, l.as_slice())))
    }
}

/// How a designated name was reached from a query: by which groups (bits),
/// through their own keys or near ones.
#[derive(Debug, Clone, Copy, Default)]
struct Reach {
    exact: u64,
    any: u64,
}

impl Reach {
    fn add(&mut self, bit: u64, own: bool) {
        self.any |= bit;
        if own {
            self.exact |= bit;
        }
    }

    /// Own keys count twice what near ones do.
    fn rank(&self) -> u32 {
        2 * self.exact.count_ones() + (self.any & !self.exact).count_ones()
    }
}

/// The common elements of two ascending lists, by merging.
fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while let (Some(x), Some(y)) = (a.get(i), b.get(j)) {
        match x.cmp(y) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(*x);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// `key` with each of its letters deleted in turn (distinct).
fn deletions(key: &str) -> Vec<String> {
    let mut out: Vec<String> = (0..key.len())
        .filter(|&i| key.is_char_boundary(i) && key.is_char_boundary(i + 1))
        .map(|i| {
            let mut d = String::with_capacity(key.len());
            d.push_str(key.get(..i).unwrap_or_default());
            d.push_str(key.get(i + 1..).unwrap_or_default());
            d
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The key of a name's letters run together: catches names whose spacing or
/// vowels differ (scripts that omit short vowels, `Abd Allah` / `Abdullah`).
fn joined_key(n: &NormalName) -> String {
    format!("~{}", n.joined_key)
}

/// Kind, date of birth and nationality: agreement raises a name's score, a clear
/// disagreement lowers it; nothing changes when either side is silent.
fn qualifiers(d: &Designated, party: &Party) -> i32 {
    adjustments(d, party).iter().map(|a| a.points).sum()
}

/// What [`qualifiers`] adds up: one adjustment per attribute (0 points when
/// it says nothing).
fn adjustments(d: &Designated, party: &Party) -> [Adjustment; 3] {
    let none = |reason| Adjustment { reason, points: 0 };
    let (mut kind, mut born, mut country) = (none("kind"), none("date_of_birth"), none("country"));
    // A person's name against an organisation's (or the other way round):
    // a match only on strong evidence.
    let theirs = NameKind::of_designation(d.record.kind.as_deref());
    if matches!(
        (party.kind, theirs),
        (NameKind::Person, NameKind::Organization) | (NameKind::Organization, NameKind::Person)
    ) {
        kind = Adjustment {
            reason: "kind_differs",
            points: -KIND_CONFLICT,
        };
    }
    if let Some(dob) = party.date_of_birth
        && !d.dates_of_birth.is_empty()
    {
        let agrees = |x: &PartialDate| {
            x.year == dob.year
                && (x.month.is_none() || dob.month.is_none() || x.month == dob.month)
                && (x.day.is_none() || dob.day.is_none() || x.day == dob.day)
        };
        let near = |x: &PartialDate| x.year.abs_diff(dob.year) <= 1;
        if d.dates_of_birth.iter().any(agrees) {
            born = Adjustment {
                reason: "date_of_birth_agrees",
                points: 5,
            };
        } else if !d.dates_of_birth.iter().any(near) {
            born = Adjustment {
                reason: "date_of_birth_differs",
                points: -15,
            };
        }
    }
    let theirs: Vec<Country> = d
        .nationalities
        .iter()
        .chain(&d.countries)
        .copied()
        .collect();
    if !party.countries.is_empty() && !theirs.is_empty() {
        country = if party.countries.iter().any(|c| theirs.contains(c)) {
            Adjustment {
                reason: "country_agrees",
                points: 3,
            }
        } else {
            Adjustment {
                reason: "country_differs",
                points: -5,
            }
        };
    }
    [kind, born, country]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::designation::parse_file;
    use crate::request::DecideRequest;
    use std::path::Path;

    fn index(jsonl: &str) -> ScreeningIndex {
        let (mut out, mut errors) = (Vec::new(), Vec::new());
        parse_file(Path::new("t.jsonl"), jsonl, &mut out, &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        ScreeningIndex::build(out)
    }

    fn request(customer: &str, ips: &str) -> DecideRequest {
        let body =
            format!(r#"{{"action":"open_account","customer":{customer},"source_ips":[{ips}]}}"#);
        crate::request::parse_decide(body.as_bytes()).unwrap()
    }

    const LIST: &str = r#"{"id":"SMP-1","kind":"individual","date_of_birth":"1970-03-01","names":["Ivan Sergeyevich Petrov","Иван Петров"],"identifiers":[{"kind":"passport","value":"AB 123-456"}],"emails":["ivan@evil.example"],"domains":["bad.example"],"cidrs":["203.0.113.0/24"]}
{"id":"SMP-2","kind":"organization","names":["Zenith Dynamics LLC"]}"#;

    #[test]
    fn name_key_folds_case_accents_punctuation_order_and_script() {
        use crate::keys::name_key;
        assert_eq!(name_key("Petrov, IVAN"), "ivan petrov");
        assert_eq!(name_key("Иван Петров"), "ivan petrov");
        assert_eq!(
            name_key("José  Núñez-García"),
            name_key("garcia jose nunez")
        );
        // The short cut gives the key screening's normalisation gives.
        for name in [
            "Zenith Dynamics LLC",
            "Bank's Holding Co. 2",
            "Abd al-Rahman bin Ali",
            "O'Neil  van der Berg",
            "李小龍",
            "",
        ] {
            assert_eq!(name_key(name), NormalName::new(name).exact, "{name}");
        }
    }

    #[test]
    fn a_cached_name_is_screened_as_before_and_never_against_an_old_index() {
        let first = index(LIST);
        let req = request(
            r#"{"id":"c","name":"Ivan Petrov","date_of_birth":"1970-03-01"}"#,
            "",
        );
        let fresh = first.screen(&req, 90);
        assert_eq!(fresh.score, 100);
        assert_eq!(first.screen_uncached(&req, 90), fresh);
        // The second time comes from this thread's cache: the same answer, and
        // the qualifiers of another party are applied afresh.
        assert_eq!(first.screen(&req, 90), fresh);
        let other_dob = request(
            r#"{"id":"c","name":"Ivan Petrov","date_of_birth":"1990-01-01"}"#,
            "",
        );
        assert_eq!(
            first.screen(&other_dob, 90).matches.len(),
            fresh.matches.len()
        );
        let typo = request(r#"{"id":"c","name":"Ivan Petrof"}"#, "");
        let typo_score = first.screen(&typo, 90).score;
        assert!(typo_score >= 90, "{typo_score}");
        let wrong_dob = request(
            r#"{"id":"c","name":"Ivan Petrof","date_of_birth":"1990-01-01"}"#,
            "",
        );
        let lowered = first.screen(&wrong_dob, 90).score;
        assert!(
            lowered < typo_score,
            "the date of birth counts on a cached name: {lowered}"
        );
        // A reload builds another index: the cache of the old one is not used.
        let second = index(r#"{"id":"SMP-3","kind":"organization","names":["Other Name Ltd"]}"#);
        let after = second.screen(&req, 90);
        assert!(after.matches.is_empty(), "{after:?}");
        assert_eq!(first.screen(&req, 90), fresh);
        // Two indexes alternate (impact analysis), then a third comes: each
        // answer is its own index's.
        let third = index(r#"{"id":"SMP-4","kind":"individual","names":["Ivan Petrov"]}"#);
        for _ in 0..3 {
            assert!(second.screen(&req, 90).matches.is_empty());
            assert_eq!(first.screen(&req, 90), fresh);
            let ids: Vec<String> = third
                .screen(&req, 90)
                .matches
                .into_iter()
                .map(|m| m.designation)
                .collect();
            assert_eq!(ids, ["SMP-4"]);
        }
    }

    #[test]
    fn exact_name_alias_and_script_match() {
        let idx = index(LIST);
        let s = idx.screen(&request(r#"{"id":"c","name":"PETROV Ivan"}"#, ""), 90);
        assert_eq!(s.score, 100);
        assert_eq!(s.matches[0].designation, "SMP-1");
        assert_eq!(s.matches[0].name, "Иван Петров");
        let s = idx.screen(&request(
            r#"{"id":"c","name":"Someone","beneficial_owners":[{"name":"zenith dynamics, llc"}]}"#,
            "",
        ), 90);
        assert_eq!(s.matches[0].designation, "SMP-2");
        assert_eq!(s.matches[0].party, "beneficial_owner");
    }

    #[test]
    fn identifier_email_domain_and_cidr_match() {
        let idx = index(LIST);
        let s = idx.screen(
            &request(
                r#"{"id":"c","name":"X","identifiers":[{"kind":"passport","value":"ab123456"}]}"#,
                "",
            ),
            90,
        );
        assert_eq!(s.matches[0].basis, Basis::Identifier);
        let s = idx.screen(
            &request(r#"{"id":"c","name":"X","email":"Ivan@Evil.Example"}"#, ""),
            90,
        );
        assert_eq!(s.matches[0].basis, Basis::Email);
        let s = idx.screen(
            &request(r#"{"id":"c","name":"X","email":"a@mail.bad.example"}"#, ""),
            90,
        );
        assert_eq!(s.matches[0].basis, Basis::EmailDomain);
        let s = idx.screen(
            &request(r#"{"id":"c","name":"X"}"#, r#""::ffff:203.0.113.9""#),
            90,
        );
        assert_eq!(s.matches[0].basis, Basis::Cidr);
    }

    #[test]
    fn innocent_names_do_not_match() {
        let idx = index(LIST);
        let s = idx.screen(
            &request(
                r#"{"id":"c","name":"Ivan Petrovich","email":"ivan@good.example"}"#,
                r#""203.0.114.1""#,
            ),
            90,
        );
        assert!(s.score < 90, "{s:?}");
        assert!(
            s.matches
                .iter()
                .all(|m| m.basis == Basis::Name && m.score < 90)
        );
    }

    #[test]
    fn spelling_variants_match_and_qualifiers_adjust() {
        let idx = index(LIST);
        for variant in [
            "Ivan Sergeevich Petrov",
            "PETROV, Ivan Sergeyevich",
            "Ivan Petrov",
            "Ivan S. Petrov",
            "Iwan Sergejewitsch Petrow",
            "Zenith Dynamics Limited Liability Company",
        ] {
            let body = format!(r#"{{"id":"c","name":"{variant}"}}"#);
            let s = idx.screen(&request(&body, ""), 90);
            assert!(s.score >= 90, "{variant}: {s:?}");
        }
        // A date of birth far from the designated person's lowers the score.
        let with_dob = |dob: &str| {
            let body =
                format!(r#"{{"id":"c","name":"Ivan Sergeevich Petrov","date_of_birth":"{dob}"}}"#);
            idx.screen(&request(&body, ""), 90).score
        };
        assert!(with_dob("1990-01-01") < with_dob("1970-03-01"));
    }

    fn with_aliases(name: &str, aliases: &[&str]) -> DecideRequest {
        let body = serde_json::json!({"id": "c", "name": name, "aliases": aliases});
        request(&body.to_string(), "")
    }

    const TYPOS: &str = r#"{"id":"T-1","kind":"individual","names":["FLORES SOTO, Mario"]}
{"id":"T-2","kind":"individual","names":["FAYAD, Saleh Mahmoud"]}
{"id":"T-3","kind":"individual","names":["HUERTA RAMOS, Manuel"]}
{"id":"T-4","kind":"organization","names":["CARILLANCA S.A."]}
{"id":"T-5","kind":"individual","names":["KANG, Song Nam"]}
{"id":"T-6","kind":"individual","names":["MUSTAFA, Ibrahim"]}
{"id":"T-7","kind":"individual","names":["AL-HALABI, Basil"]}"#;

    fn best(idx: &ScreeningIndex, customer: &str) -> (u8, Option<String>) {
        let s = idx.screen_uncached(&request(customer, ""), 90);
        (s.score, s.matches.first().map(|m| m.designation.clone()))
    }

    #[test]
    fn a_typo_that_spells_another_listed_name_still_reaches_the_name() {
        // `Drago` is a name of the list in its own right, so the mistyped
        // token brings no typo neighbours of its own: the rare token beside
        // it must bring the name.
        let idx = index(
            r#"{"id":"R-1","kind":"individual","names":["SPASOJEVIC, Dragon"]}
{"id":"R-2","kind":"individual","names":["DRAGO, Petar"]}"#,
        );
        let (score, found) = best(&idx, r#"{"id":"c","name":"Drago Spasojevic"}"#);
        assert!(score >= 90, "{score}");
        assert_eq!(found.as_deref(), Some("R-1"));
        // A token that splits into a particle and a listed name is also read
        // whole: `Alhun` is `al` + `hun`, or `Altun` mistyped.
        let idx = index(
            r#"{"id":"G-1","kind":"individual","names":["ALTUN, Ali Riza"]}
{"id":"G-2","kind":"individual","names":["HUN, Sen"]}
{"id":"G-3","kind":"individual","names":["NOORZAI, Hajji Faizullah Khan"]}"#,
        );
        let (score, found) = best(&idx, r#"{"id":"c","name":"Ali Riza Alhun"}"#);
        assert!(score >= 90, "{score}");
        assert_eq!(found.as_deref(), Some("G-1"));
        // `Abdul` mistyped reaches the names written `Abdul` (which the
        // index holds as `abd`), beside a token too common to bring them
        // alone; two names run together around the article reach the name
        // that keeps them apart.
        let mut list: Vec<String> = (0..6)
            .map(|n| format!(r#"{{"id":"A-{n}","kind":"individual","names":["AZIZ, Karim{n}"]}}"#))
            .collect();
        list.push(r#"{"id":"A-9","kind":"individual","names":["AZIZ, Abdul"]}"#.to_owned());
        list.push(r#"{"id":"J-1","kind":"individual","names":["JAMAL-AL-DIN, Hasan"]}"#.to_owned());
        let idx = index(&list.join("\n"));
        for (typed, id) in [
            (r#"{"id":"c","name":"Adbul Aziz"}"#, "A-9"),
            (r#"{"id":"c","name":"Hasan Jamalaldin"}"#, "J-1"),
        ] {
            let (score, found) = best(&idx, typed);
            assert!(score >= 90, "{typed}: {score}");
            assert_eq!(found.as_deref(), Some(id), "{typed}");
        }
        // The rare token alone, beside a name the list does not hold, is
        // scored and stays low.
        let (score, _) = best(&idx, r#"{"id":"c","name":"Jovana Spasojevic"}"#);
        assert!(score < 90, "{score}");
    }

    #[test]
    fn one_typing_error_in_any_token_still_reaches_the_name() {
        let idx = index(TYPOS);
        for (typed, id) in [
            (r#"{"id":"c","name":"Mario Floees Soto"}"#, "T-1"),
            (r#"{"id":"c","name":"Mraio Flores Soto"}"#, "T-1"),
            (r#"{"id":"c","name":"Ibrahib Mustafa"}"#, "T-6"),
            (r#"{"id":"c","name":"Ibrahim Mustafq"}"#, "T-6"),
            (r#"{"id":"c","name":"Ibrahim Mutsafa"}"#, "T-6"),
            // A particle written onto the name.
            (r#"{"id":"c","name":"Basil Alhalabi"}"#, "T-7"),
            (r#"{"id":"c","name":"Basilal Halabi"}"#, "T-7"),
        ] {
            let (score, found) = best(&idx, typed);
            assert!(score >= 90, "{typed}: {score}");
            assert_eq!(found.as_deref(), Some(id), "{typed}");
        }
    }

    #[test]
    fn a_designated_name_too_large_to_pack_is_still_scored() {
        // A token of 300 letters cannot be packed; the name is prepared
        // afresh when it is a candidate, not skipped.
        let long = "x".repeat(300);
        let list = format!(r#"{{"id":"T-9","kind":"individual","names":["OMAR, Ali {long}"]}}"#);
        let idx = index(&list);
        let (score, found) = best(&idx, &format!(r#"{{"id":"c","name":"Ali {long} Omer"}}"#));
        assert!(score >= 90, "{score}");
        assert_eq!(found.as_deref(), Some("T-9"));
    }

    #[test]
    fn a_family_name_left_out_is_a_near_miss_a_middle_name_is_not() {
        let idx = index(TYPOS);
        let (middle, _) = best(&idx, r#"{"id":"c","name":"Saleh Fayad"}"#);
        assert!(middle >= 90, "middle name left out: {middle}");
        let (family, found) = best(&idx, r#"{"id":"c","name":"Manuel Ramos"}"#);
        assert!((70..90).contains(&family), "family name left out: {family}");
        assert_eq!(found.as_deref(), Some("T-3"), "still listed for review");
    }

    #[test]
    fn a_person_reaches_an_organisation_only_on_strong_evidence() {
        let idx = index(TYPOS);
        let undeclared = best(&idx, r#"{"id":"c","name":"Carilanca SA"}"#).0;
        let person = best(
            &idx,
            r#"{"id":"c","kind":"individual","name":"Carilanca SA"}"#,
        )
        .0;
        assert!(person + 5 <= undeclared, "{person} vs {undeclared}");
        // An exact name is certain whatever was declared.
        let exact = r#"{"id":"c","kind":"individual","name":"Carillanca S.A."}"#;
        assert_eq!(best(&idx, exact).0, 100);
    }

    #[test]
    fn han_characters_against_letters_are_near_misses_at_best() {
        let idx = index(TYPOS);
        // 康松南 reads `Kang Song Nan`: one reading of many.
        let (score, _) = best(&idx, r#"{"id":"c","name":"康松南"}"#);
        assert!(score < 90, "{score}");
        // Hangul is an alphabet: its letters are the name.
        let (score, found) = best(&idx, r#"{"id":"c","name":"강송남"}"#);
        assert!(score >= 90, "{score}");
        assert_eq!(found.as_deref(), Some("T-5"));
    }

    #[test]
    fn repeated_matches_collapse_to_the_best_one() {
        let idx = index(LIST);
        // "Ivan Petrov" matches both names of SMP-1, and is given three times.
        let s = idx.screen(
            &with_aliases(
                "Ivan Petrov",
                &["Ivan Petrov", "Ivan Petrov", "Zenith Dynamics"],
            ),
            90,
        );
        let same: Vec<&Match> = s
            .matches
            .iter()
            .filter(|m| m.screened == "Ivan Petrov" && m.designation == "SMP-1")
            .collect();
        assert_eq!(same.len(), 1, "{s:?}");
        assert_eq!(same[0].score, 100);
        assert_eq!(same[0].party, "customer");
        // Another screened value is another match.
        assert!(s.matches.iter().any(|m| m.designation == "SMP-2"), "{s:?}");
    }

    #[test]
    fn a_spent_budget_stops_screening() {
        use crate::budget::{OverBudget, Timebox};
        use std::time::{Duration, Instant};
        let idx = index(LIST);
        let req = with_aliases("Ivan Petrov", &["Zenith Dynamics"]);
        let spent = Timebox::until(Instant::now());
        assert_eq!(idx.screen_within(&req, 90, &spent), Err(OverBudget));
        let ample = Timebox::until(Instant::now() + Duration::from_secs(3600));
        assert_eq!(
            idx.screen_within(&req, 90, &ample),
            Ok(idx.screen(&req, 90))
        );
    }

    const MANY: &str = r#"{"id":"SMP-1","kind":"individual","names":["Ivan Sergeyevich Petrov","Ivan Petrov"]}
{"id":"SMP-2","kind":"individual","names":["Ivan Petrova"]}
{"id":"SMP-3","kind":"individual","names":["Ivana Petrov"]}
{"id":"SMP-4","kind":"individual","names":["Iwan Petrow"]}
{"id":"SMP-5","kind":"organization","names":["Zenith Dynamics LLC"]}"#;

    proptest::proptest! {
        #[test]
        fn the_cut_list_is_the_head_of_the_full_one(
            picks in proptest::collection::vec(0usize..8, 0..12),
            max in 0usize..30,
        ) {
            const NAMES: [&str; 8] = [
                "Ivan Petrov", "Petrov Ivan", "Iwan Petrow", "Ivan Petrova",
                "Ivana Petrova", "Zenith Dynamics", "Ivan S Petrov", "Nobody Else",
            ];
            let idx = index(MANY);
            let aliases: Vec<&str> = picks.iter().map(|&i| NAMES[i]).collect();
            let full = idx.screen(&with_aliases("Ivan Petrov", &aliases), 90);
            let mut cut = full.clone();
            cut.truncate(max);
            let head = &full.matches[..full.matches.len().min(max)];
            proptest::prop_assert_eq!(&cut.matches[..], head);
            proptest::prop_assert_eq!(cut.score, full.score);
            proptest::prop_assert_eq!(cut.matches_truncated, full.matches.len() > max);
        }
    }
}
