//! Name comparison for screening: normalisation and a 0–100 similarity score.
//!
//! A name is transliterated to ASCII (Cyrillic, Greek, Arabic, Hebrew, CJK,
//! Hangul, … with `deunicode`), lower-cased, stripped of punctuation (dots and
//! apostrophes join, so `A.B.C.` is `abc` and `Qa'ida` is `qaida`), split into
//! tokens, and separated into three parts: the significant tokens, particles
//! (`al`, `bin`, `de`, `van`, …, weak evidence) and legal forms, folded to a
//! class (`OOO`, `LLC` and `Limited Liability Company` are one form).
//!
//! Two names are compared token by token in any order: each token of the
//! shorter name is aligned with its best partner (exact, same phonetic key, a
//! typo within Jaro-Winkler distance, an initial, a known short form), and the
//! score is driven by the *weakest* aligned token, so `Tariq Anwar Mohamed` is not
//! `Tariq Anwar Ahmed`. Extra tokens in the longer name (a middle name, a
//! patronymic) cost little; a one-token name against a full name costs a lot,
//! and two different legal forms (`AG` and `GmbH`) cost most.

/// Legal-form classes: spellings and abbreviations of one form share a class.
const LEGAL_FORMS: &[(&str, &[&str])] = &[
    (
        "llc",
        &[
            "llc",
            "ooo",
            "limited liability company",
            "obshchestvo s ogranichennoi otvetstvennostiu",
            "sp z oo",
            "spzoo",
            "srl",
            "societatea cu raspundere limitata",
            "sarl",
            "tov",
            "llp",
        ],
    ),
    (
        "jsc",
        &[
            "jsc",
            "ojsc",
            "cjsc",
            "pjsc",
            "oao",
            "zao",
            "pao",
            "ao",
            "joint stock company",
            "open joint stock company",
            "closed joint stock company",
            "public joint stock company",
            "aktsionernoe obshchestvo",
            "otkrytoe aktsionernoe obshchestvo",
        ],
    ),
    ("ag", &["ag", "aktiengesellschaft", "aktiengeselschaft"]),
    ("gmbh", &["gmbh", "gesellschaft mit beschrankter haftung"]),
    (
        "ano",
        &["ano", "avtonomnaia nekommercheskaia organizatsiia"],
    ),
    ("plc", &["plc", "public limited company"]),
    ("ltd", &["ltd", "limited"]),
    ("inc", &["inc", "incorporated"]),
    ("corp", &["corp", "corporation"]),
    ("co", &["co", "company"]),
    ("sa", &["sa", "societe anonyme", "sociedad anonima"]),
    ("bv", &["bv"]),
    ("nv", &["nv"]),
];

/// The first word of every legal-form spelling, sorted: most tokens start none.
static FORM_FIRST_WORDS: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
    let mut words: Vec<&'static str> = LEGAL_FORMS
        .iter()
        .flat_map(|(_, spellings)| spellings.iter())
        .filter_map(|s| s.split(' ').next())
        .collect();
    words.sort_unstable();
    words.dedup();
    words
});

/// Forms that say little about identity: compatible with any other form.
const GENERIC_FORMS: &[&str] = &["ltd", "inc", "corp", "co", "plc"];

/// Particles and titles: kept, but weak evidence. Sorted (binary search).
const PARTICLES: &[&str] = &[
    "abu", "al", "and", "ben", "bin", "bint", "da", "de", "del", "della", "der", "di", "dr", "du",
    "el", "haji", "ibn", "la", "le", "mr", "mrs", "ms", "of", "sheikh", "the", "van", "von", "y",
];

/// Short forms of given names (both directions are tried).
const SHORT_FORMS: &[(&str, &str)] = &[
    ("ted", "theodore"),
    ("bill", "william"),
    ("will", "william"),
    ("bob", "robert"),
    ("rob", "robert"),
    ("alex", "alexander"),
    ("sasha", "aleksandr"),
    ("jim", "james"),
    ("mike", "michael"),
    ("dick", "richard"),
    ("tony", "anthony"),
    ("joe", "joseph"),
    ("kate", "katherine"),
    ("liz", "elizabeth"),
    ("misha", "mikhail"),
    ("volodya", "vladimir"),
    ("dima", "dmitrii"),
];

/// A name prepared for comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalName {
    /// Significant tokens, in their original order.
    pub tokens: Vec<String>,
    /// Phonetic keys of `tokens`.
    pub keys: Vec<String>,
    /// Particles (`al`, `bin`, `van`, `de`…), weighed less than other tokens.
    pub particles: Vec<String>,
    /// Numbers (`2004`, `44`): series and branches, weak evidence.
    pub numbers: Vec<String>,
    /// Legal-form classes found (`llc`, `jsc`, …).
    pub forms: Vec<&'static str>,
    /// The token before `bin`/`ibn` (`X bin Y` is not `Y bin X`).
    pub patronymic_head: Option<String>,
    /// The tokens run together, and its phonetic key.
    pub joined: String,
    /// The phonetic key of `joined`.
    pub joined_key: String,
    /// Every token (forms and particles included), sorted: the exact key.
    pub exact: String,
}

impl NormalName {
    /// Normalises a name: transliterated, folded, tokenised, with legal forms,
    /// particles and numbers set apart.
    pub fn new(name: &str) -> Self {
        let raw = tokenize(name);
        let exact = {
            let mut sorted: Vec<&str> = raw.iter().map(String::as_str).collect();
            sorted.sort_unstable();
            sorted.join(" ")
        };
        let (rest, forms) = extract_forms(raw);
        let patronymic_head = rest
            .windows(2)
            .find(|w| matches!(w.get(1).map(String::as_str), Some("bin" | "ibn" | "bint")))
            .and_then(|w| w.first().cloned());
        let (numbers, rest): (Vec<String>, Vec<String>) = rest
            .into_iter()
            .partition(|t| t.bytes().all(|b| b.is_ascii_digit()));
        let (mut tokens, mut particles): (Vec<String>, Vec<String>) = rest
            .into_iter()
            .partition(|t| !PARTICLES.contains(&t.as_str()));
        if tokens.is_empty() {
            // A name made only of particles or forms: compare what there is.
            tokens = std::mem::take(&mut particles);
        }
        let keys = tokens.iter().map(|t| phonetic_key(t)).collect();
        let joined = tokens.concat();
        let joined_key = phonetic_key(&joined);
        Self {
            exact,
            joined,
            joined_key,
            tokens,
            keys,
            particles,
            numbers,
            forms,
            patronymic_head,
        }
    }

    /// Whether nothing comparable is left of the name.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The tokens sorted and joined: order-insensitive exact key.
    pub fn sorted_key(&self) -> String {
        let mut t: Vec<&str> = self.tokens.iter().map(String::as_str).collect();
        t.sort_unstable();
        t.join(" ")
    }
}

/// ASCII, lower case, dots and apostrophes joined, split on everything else.
pub fn tokenize(name: &str) -> Vec<String> {
    let ascii: std::borrow::Cow<'_, str> = if name.is_ascii() {
        name.into()
    } else {
        deunicode::deunicode(name).into()
    };
    let bytes = ascii.as_bytes();
    let mut tokens = Vec::with_capacity(4);
    let mut current = String::new();
    let flush = |current: &mut String, tokens: &mut Vec<String>| {
        if !current.is_empty() {
            tokens.push(std::mem::take(current));
        }
    };
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            // A possessive `'s` ends the word: `Bank's` is `Bank`.
            b'\''
                if bytes
                    .get(i + 1)
                    .is_some_and(|n| n.eq_ignore_ascii_case(&b's'))
                    && !bytes.get(i + 2).is_some_and(u8::is_ascii_alphanumeric) =>
            {
                flush(&mut current, &mut tokens);
            }
            b's' | b'S'
                if i > 0
                    && bytes.get(i - 1) == Some(&b'\'')
                    && !bytes.get(i + 1).is_some_and(u8::is_ascii_alphanumeric) => {}
            // Dots and apostrophes join: `A.B.C.` is `abc`, `Qa'ida` is `qaida`.
            b'.' | b'\'' | b'`' => {}
            b'&' => {
                flush(&mut current, &mut tokens);
                tokens.push("and".to_owned());
            }
            b if b.is_ascii_alphanumeric() => current.push(char::from(b.to_ascii_lowercase())),
            _ => flush(&mut current, &mut tokens),
        }
    }
    flush(&mut current, &mut tokens);
    tokens
}

/// Pulls legal forms (single tokens or phrases) out of the token list.
fn extract_forms(tokens: Vec<String>) -> (Vec<String>, Vec<&'static str>) {
    let mut rest = Vec::with_capacity(tokens.len());
    let mut forms = Vec::new();
    let mut i = 0;
    'outer: while i < tokens.len() {
        let starts_a_form = tokens
            .get(i)
            .is_some_and(|t| FORM_FIRST_WORDS.binary_search(&t.as_str()).is_ok());
        if !starts_a_form {
            if let Some(t) = tokens.get(i) {
                rest.push(t.clone());
            }
            i += 1;
            continue;
        }
        for (class, spellings) in LEGAL_FORMS {
            for spelling in *spellings {
                let mut end = i;
                let mut words = 0;
                let matched = spelling.split(' ').all(|w| {
                    let ok = tokens.get(end).is_some_and(|t| t == w);
                    end += 1;
                    words += 1;
                    ok
                });
                // A lone `co`/`ao`/`sa` inside a longer name is a form only at an edge.
                if matched && (words > 1 || spelling.len() > 2 || i == 0 || end == tokens.len()) {
                    if !forms.contains(class) {
                        forms.push(*class);
                    }
                    i = end;
                    continue 'outer;
                }
            }
        }
        if let Some(t) = tokens.get(i) {
            rest.push(t.clone());
        }
        i += 1;
    }
    (rest, forms)
}

/// A coarse phonetic key, a consonant skeleton: transliteration variants of one
/// sound share a letter (`kh`/`h`, `ph`/`f`, `c`/`k`/`q`, `j`/`zh`/`dzh`, `x`/`s`),
/// vowels (with `w` and `y`, which Arabic and Slavic transliterations use as
/// vowels) and repeated letters are dropped, so `Muhammad`, `Mohamed` and the
/// vowel-less `mhmd` of Arabic script agree.
pub fn phonetic_key(token: &str) -> String {
    if token.bytes().all(|b| b.is_ascii_digit()) {
        return token.to_owned();
    }
    // Fold multi-letter spellings of one sound in a single pass.
    const FOLDS: &[(&[u8], u8)] = &[
        (b"tsch", b'c'),
        (b"sch", b's'),
        (b"tch", b'c'),
        (b"dzh", b'j'),
        (b"dj", b'j'),
        (b"zh", b'j'),
        (b"kh", b'h'),
        (b"gh", b'g'),
        (b"ph", b'f'),
        (b"th", b't'),
        (b"sh", b's'),
        (b"ch", b'c'),
        (b"ck", b'k'),
        (b"ks", b'x'),
        (b"hs", b's'),
    ];
    let bytes = token.as_bytes();
    let mut folded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    'scan: while i < bytes.len() {
        let rest = bytes.get(i..).unwrap_or_default();
        let first = rest.first().copied();
        for (from, to) in FOLDS {
            if from.first().copied() == first && rest.starts_with(from) {
                folded.push(*to);
                i += from.len();
                continue 'scan;
            }
        }
        folded.extend(rest.first());
        i += 1;
    }
    let mut out = String::with_capacity(folded.len());
    let mut last = '\0';
    let vowel = |c: Option<&u8>| matches!(c, Some(b'a' | b'e' | b'i' | b'o' | b'u' | b'y'));
    for (i, &byte) in folded.iter().enumerate() {
        let c = char::from(byte);
        let next = folded.get(i + 1);
        let prev = i.checked_sub(1).and_then(|p| folded.get(p));
        let mapped = match c {
            // `w` before a vowel or at the end is a consonant (`Iwan`, `Petrow`),
            // elsewhere a vowel (`Mahmwd`); `j` after a vowel is a `y` (`Sergej`).
            'w' if next.is_none() || vowel(next) => 'v',
            'j' if vowel(prev) => 'a',
            'c' | 'q' | 'k' | 'g' => 'k',
            'j' => 'j',
            'z' | 's' | 'x' => 's',
            'v' | 'f' | 'b' | 'p' => 'v',
            'd' | 't' => 't',
            'w' | 'y' | 'i' | 'e' | 'a' | 'o' | 'u' => 'a',
            'h' => continue,
            c => c,
        };
        if mapped == 'a' {
            last = 'a';
            continue;
        }
        if mapped != last {
            out.push(mapped);
        }
        last = mapped;
    }
    if out.is_empty() {
        out.push(folded.first().map_or('a', |&b| char::from(b)));
    }
    out
}

/// Jaro-Winkler similarity exactly as `strsim::jaro_winkler` computes it (the
/// same steps and arithmetic), without allocating, for ASCII words of at most
/// 64 bytes, which is what tokenized names are. It is most of the cost of
/// screening a name the service has not seen; longer or non-ASCII input goes
/// to `strsim`.
pub fn jaro_winkler(a: &str, b: &str) -> f64 {
    let (x, y) = (a.as_bytes(), b.as_bytes());
    if !a.is_ascii() || !b.is_ascii() || x.len() > 64 || y.len() > 64 {
        return strsim::jaro_winkler(a, b);
    }
    let sim = jaro_ascii(x, y);
    if sim > 0.7 {
        let prefix = x.iter().take(4).zip(y).take_while(|(p, q)| p == q).count();
        sim + 0.1 * prefix as f64 * (1.0 - sim)
    } else {
        sim
    }
}

/// Jaro similarity of two byte strings of at most 64 bytes (flags are bits).
fn jaro_ascii(a: &[u8], b: &[u8]) -> f64 {
    let (a_len, b_len) = (a.len(), b.len());
    if a_len == 0 && b_len == 0 {
        return 1.0;
    }
    if a_len == 0 || b_len == 0 {
        return 0.0;
    }
    let range = (a_len.max(b_len) / 2).saturating_sub(1);
    let (mut a_flags, mut b_flags) = (0u64, 0u64);
    let mut matches = 0usize;
    for (i, &p) in a.iter().enumerate() {
        let from = i.saturating_sub(range);
        let to = b_len.min(i + range + 1);
        for (j, &q) in b.iter().enumerate().take(to).skip(from) {
            if p == q && b_flags & (1 << j) == 0 {
                a_flags |= 1 << i;
                b_flags |= 1 << j;
                matches += 1;
                break;
            }
        }
    }
    if matches == 0 {
        return 0.0;
    }
    let mut b_matched = b
        .iter()
        .enumerate()
        .filter(|&(j, _)| b_flags & (1 << j) != 0)
        .map(|(_, q)| q);
    let transpositions = a
        .iter()
        .enumerate()
        .filter(|&(i, _)| a_flags & (1 << i) != 0)
        .filter(|&(_, p)| b_matched.next() != Some(p))
        .count()
        / 2;
    let m = matches as f64;
    ((m / a_len as f64) + (m / b_len as f64) + ((matches - transpositions) as f64 / m)) / 3.0
}

/// Similarity of two tokens, 0.0–1.0.
pub fn token_similarity(a: &str, ka: &str, b: &str, kb: &str) -> f64 {
    if a == b {
        return 1.0;
    }
    let numeric = |t: &str| t.bytes().any(|c| c.is_ascii_digit());
    if numeric(a) || numeric(b) {
        return 0.0;
    }
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if short.len() == 1 {
        // An initial.
        return if long.starts_with(short) { 0.9 } else { 0.0 };
    }
    if SHORT_FORMS
        .iter()
        .any(|&(s, l)| (s == a && l == b) || (s == b && l == a))
    {
        return 0.93;
    }
    // Tokens of very different lengths cannot be close (and Jaro-Winkler is the
    // cost of comparing names): 0.5 is below every threshold that matters.
    if long.len() > 2 * short.len() + 2 && !long.starts_with(short) {
        return 0.5;
    }
    let jw = jaro_winkler(a, b);
    let mut sim = jw;
    if is_patronymic(a) != is_patronymic(b) {
        // `Petrovich` (a father's name) is not `Petrov` (a family name).
        return sim.min(0.8);
    }
    let vowelless = |t: &str| {
        !t.bytes()
            .any(|b| matches!(b, b'a' | b'e' | b'i' | b'o' | b'u'))
    };
    if ka == kb && (jw >= 0.82 || vowelless(a) || vowelless(b)) {
        // The same skeleton and close spelling, or a script that omits vowels.
        sim = sim.max(0.93);
    } else if ka != kb && jw < 0.9 && ka.len() >= 3 && kb.len() >= 3 {
        // Skeletons that differ by little (`Sergejewitsch` / `Sergeyevich`).
        sim = sim.max(jaro_winkler(ka, kb) * 0.92);
    }
    if long.starts_with(short) && long.len() >= short.len() + 3 {
        if short.len() >= 4 {
            // A longer name built on this one (`Petrov` / `Petrovsky`) is another name.
            sim = sim.min(0.85);
        } else if short.len() == 3 {
            // `ben` / `benjamin`: a short form.
            sim = sim.max(0.88);
        }
    }
    sim
}

fn is_patronymic(t: &str) -> bool {
    [
        "ovich", "evich", "ovna", "evna", "ichna", "vich", "witsch", "wich",
    ]
    .iter()
    .any(|s| t.len() > s.len() + 2 && t.ends_with(s))
}

/// How a comparison was scored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Comparison {
    /// 0.0–1.0.
    pub score: f64,
}

/// Whether the names are of people (particles and middle names behave differently).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    /// A person's name.
    Person,
    /// An organisation's name.
    Organization,
    /// Either.
    Unknown,
}

impl NameKind {
    /// The kind of a designation's names, from its record's `kind`
    /// (`individual`, `organization`, anything else or nothing: either).
    pub fn of_designation(kind: Option<&str>) -> Self {
        match kind {
            Some("individual") => Self::Person,
            Some("organization") => Self::Organization,
            _ => Self::Unknown,
        }
    }
}

/// Compares two prepared names; 0.0–1.0.
pub fn compare(q: &NormalName, c: &NormalName, kind: NameKind) -> Comparison {
    if q.is_empty() || c.is_empty() {
        return Comparison { score: 0.0 };
    }
    let (short, long) = if q.tokens.len() <= c.tokens.len() {
        (q, c)
    } else {
        (c, q)
    };
    let sims = align_tokens(short, long);
    // Initials alone do not make a match.
    let full_matches = full_matches(short, &sims);
    let mut score = aligned_score(&sims);
    score = penalise_unmatched_tokens(score, short, long, kind);
    if full_matches == 0 {
        score = score.min(0.5);
    }
    score = whole_name_bonus(score, q, c);
    // Two distinct, specific legal forms: different entities.
    if distinct_legal_forms(q, c) {
        score -= 0.3;
    }
    // `X bin Y` against `Y bin X`: another person.
    if distinct_patronymic_heads(q, c) {
        score -= 0.3;
    }
    // Different series numbers: a little less likely the same.
    if !q.numbers.is_empty() && !c.numbers.is_empty() && q.numbers != c.numbers {
        score -= 0.05;
    }
    Comparison {
        score: score.clamp(0.0, 1.0),
    }
}

/// Pairs each token of `short` with a token of `long`: greedy best-first
/// alignment on the similarity matrix (similarities below 0.7 never pair).
/// Returns the similarity of each token of `short` to its pair, 0.0 if none.
#[inline]
fn align_tokens(short: &NormalName, long: &NormalName) -> Vec<f64> {
    let mut pairs: Vec<(f64, usize, usize)> =
        Vec::with_capacity(short.tokens.len() * long.tokens.len());
    for (i, (a, ka)) in short.tokens.iter().zip(&short.keys).enumerate() {
        for (j, (b, kb)) in long.tokens.iter().zip(&long.keys).enumerate() {
            let s = token_similarity(a, ka, b, kb);
            if s >= 0.7 {
                pairs.push((s, i, j));
            }
        }
    }
    pairs.sort_by(|x, y| y.0.total_cmp(&x.0));
    let mut used_short = vec![false; short.tokens.len()];
    let mut used_long = vec![false; long.tokens.len()];
    let mut sims = vec![0.0; short.tokens.len()];
    for (s, i, j) in pairs {
        if used_short.get(i) == Some(&false) && used_long.get(j) == Some(&false) {
            if let (Some(us), Some(ul), Some(slot)) =
                (used_short.get_mut(i), used_long.get_mut(j), sims.get_mut(i))
            {
                *us = true;
                *ul = true;
                *slot = s;
            }
        }
    }
    sims
}

/// How many tokens of `short` longer than an initial closely match their pair.
#[inline]
fn full_matches(short: &NormalName, sims: &[f64]) -> usize {
    short
        .tokens
        .iter()
        .zip(sims)
        .filter(|(t, s)| t.len() > 1 && **s >= 0.85)
        .count()
}

/// The score of an alignment: mostly its weakest pair, partly the mean.
#[inline]
fn aligned_score(sims: &[f64]) -> f64 {
    let n = sims.len() as f64;
    let mean = sims.iter().sum::<f64>() / n;
    let weakest = sims.iter().copied().fold(1.0, f64::min);
    0.35 * mean + 0.65 * weakest
}

/// Lowers `score` for each token of `long` left unpaired (less for people,
/// whose middle names are often left out), and more when a single token is
/// compared with a name of several.
#[inline]
fn penalise_unmatched_tokens(
    mut score: f64,
    short: &NormalName,
    long: &NormalName,
    kind: NameKind,
) -> f64 {
    let extra = long.tokens.len() - short.tokens.len();
    let per_extra = match kind {
        NameKind::Person => 0.025,
        NameKind::Organization => 0.06,
        NameKind::Unknown => 0.04,
    };
    score -= per_extra * extra as f64;
    if short.tokens.len() == 1 && long.tokens.len() >= 2 {
        score -= match kind {
            NameKind::Organization => 0.08,
            _ => 0.2,
        };
    }
    score
}

/// Raises `score` for the same letters with different spacing (`Goodwill` /
/// `Good Will`), or the same consonant skeleton over the whole name (scripts
/// that omit vowels).
#[inline]
fn whole_name_bonus(score: f64, q: &NormalName, c: &NormalName) -> f64 {
    if q.joined.len() >= 6 && q.joined == c.joined {
        score.max(0.97)
    } else if q.joined_key.len() >= 5
        && q.joined_key == c.joined_key
        && (q.tokens.len() != c.tokens.len() || q.keys != c.keys)
        && jaro_winkler(&q.joined, &c.joined) >= 0.75
    {
        score.max(0.91)
    } else {
        score
    }
}

/// Both names have specific (not generic) legal forms, and none in common.
#[inline]
fn distinct_legal_forms(q: &NormalName, c: &NormalName) -> bool {
    let specific = |f: &[&'static str]| -> Vec<&'static str> {
        f.iter()
            .copied()
            .filter(|x| !GENERIC_FORMS.contains(x))
            .collect()
    };
    let (fq, fc) = (specific(&q.forms), specific(&c.forms));
    !fq.is_empty() && !fc.is_empty() && !fq.iter().any(|f| fc.contains(f))
}

/// Both names have a patronymic head (`X` of `X bin Y`), and they differ.
#[inline]
fn distinct_patronymic_heads(q: &NormalName, c: &NormalName) -> bool {
    match (&q.patronymic_head, &c.patronymic_head) {
        (Some(hq), Some(hc)) => {
            token_similarity(hq, &phonetic_key(hq), hc, &phonetic_key(hc)) < 0.85
        }
        _ => false,
    }
}

/// Scores two raw names, 0–100.
pub fn score(a: &str, b: &str, kind: NameKind) -> u8 {
    let s = compare(&NormalName::new(a), &NormalName::new(b), kind).score;
    (s * 100.0).round().clamp(0.0, 100.0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        /// The allocation-free version is `strsim`'s, bit for bit (lengths
        /// beyond 64 and non-ASCII text take `strsim`'s own path).
        #[test]
        fn jaro_winkler_is_strsims(a in "[a-e]{0,70}", b in "[a-e]{0,70}", c in "[a-z]{0,12}", d in ".{0,6}") {
            for (x, y) in [(&a, &b), (&c, &a), (&b, &c), (&d, &c), (&c, &c)] {
                proptest::prop_assert_eq!(
                    jaro_winkler(x, y).to_bits(),
                    strsim::jaro_winkler(x, y).to_bits(),
                    "{:?} {:?}", x, y
                );
            }
        }
    }

    #[test]
    fn jaro_winkler_examples() {
        for (a, b) in [
            ("martha", "marhta"),
            ("dwayne", "duane"),
            ("dixon", "dicksonx"),
            ("", ""),
            ("a", ""),
            ("petrov", "petrof"),
        ] {
            assert_eq!(
                jaro_winkler(a, b).to_bits(),
                strsim::jaro_winkler(a, b).to_bits(),
                "{a} {b}"
            );
        }
        assert!((jaro_winkler("martha", "marhta") - 0.9611).abs() < 1e-4);
    }

    #[test]
    fn particle_list_is_sorted() {
        assert!(PARTICLES.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn normalises_forms_particles_and_punctuation() {
        let n = NormalName::new("OOO \"Oboronnye Initsiativy\"");
        assert_eq!(n.tokens, ["oboronnye", "initsiativy"]);
        assert_eq!(n.forms, ["llc"]);
        let n = NormalName::new("Limited Liability Company Iskusstvo Krasoty");
        assert_eq!(n.forms, ["llc"]);
        let n = NormalName::new("A.B.C. Company");
        assert_eq!(n.tokens, ["abc"]);
        let n = NormalName::new("Bashar al-Assad");
        assert_eq!(n.tokens, ["bashar", "assad"]);
        assert_eq!(n.particles, ["al"]);
    }

    #[test]
    fn phonetic_keys_fold_transliterations() {
        assert_eq!(phonetic_key("mohammed"), phonetic_key("muhammad"));
        assert_eq!(phonetic_key("khaled"), phonetic_key("haled"));
        assert_eq!(phonetic_key("aleksandr"), phonetic_key("alexandr"));
        assert_ne!(phonetic_key("ivanov"), phonetic_key("lavrov"));
    }

    #[test]
    fn scores_variants_high_and_different_people_low() {
        let p = NameKind::Person;
        assert!(score("Vladimir Putin", "PUTIN, Vladimir Vladimirovich", p) >= 90);
        assert!(score("Владимир Путин", "Vladimir Putin", p) >= 90);
        assert!(score("Boris Jonson", "Boris Johnson", p) >= 90);
        assert!(
            score(
                "TARIQ ANWAR EL SAYED MOHAMED",
                "TARIQ ANWAR EL SAYED AHMED",
                p
            ) < 85
        );
        assert!(score("Octavian Scholz", "Olaf Scholz", p) < 80);
        assert!(score("WALIJAN", "WALIJAN ABDUL GHAFOOR HAQQANI", p) < 85);
        let o = NameKind::Organization;
        assert!(score("Oboronnye Initsiativy OOO", "OOO Oboronnye Initsiativy", o) >= 95);
        assert!(score("Deutsche Bank AG", "Deutsche Bank GmbH", o) < 80);
        assert!(score("Goodwill Company", "Good Will Company", o) >= 95);
    }
}
