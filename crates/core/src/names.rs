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

use serde::Serialize;

use crate::scripts::{self, ArabicMarks, Initial, Script};

/// The words of a name that are compared: the first this many.
pub const MAX_NAME_TOKENS: usize = 32;

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

/// The position of legal-form class `class` in the table of legal forms.
pub(crate) fn legal_form_index(class: &str) -> Option<usize> {
    LEGAL_FORMS.iter().position(|(c, _)| *c == class)
}

/// The legal-form class at position `i` of the table of legal forms.
pub(crate) fn legal_form_class(i: usize) -> Option<&'static str> {
    LEGAL_FORMS.get(i).map(|(c, _)| *c)
}

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
    "abou", "abu", "ag", "al", "and", "ben", "bi", "bin", "bint", "da", "de", "del", "della",
    "der", "di", "dr", "du", "el", "haji", "hajji", "ibn", "la", "le", "mr", "mrs", "ms", "of",
    "ould", "sheikh", "the", "ul", "ur", "van", "von", "wa", "wal", "y",
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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NormalName {
    /// Significant tokens, in their original order.
    pub tokens: Vec<String>,
    /// Phonetic keys of `tokens` (for a token written in Arabic script, the
    /// skeleton of its letters).
    pub keys: Vec<String>,
    /// The script each of `tokens` was written in.
    pub scripts: Vec<Script>,
    /// A second phonetic key of a token, where its script reads two ways
    /// (Cyrillic `г` as `g` or `h`): `(token position, key)`.
    pub alt_keys: Vec<(usize, String)>,
    /// The second reading itself: `(token position, text)`.
    pub alt_tokens: Vec<(usize, String)>,
    /// What an Arabic-script token writes beyond its skeleton (long vowels,
    /// which letter each `v` is, how it starts): `(token position, marks)`.
    pub arabic_marks: Vec<(usize, ArabicMarks)>,
    /// Bit `i`: token `i` had the Arabic article written on it (`الخرافي`).
    pub articled: u64,
    /// Particles (`al`, `bin`, `van`, `de`…), weighed less than other tokens.
    pub particles: Vec<String>,
    /// Numbers (`2004`, `44`): series and branches, weak evidence.
    pub numbers: Vec<String>,
    /// Legal-form classes found (`llc`, `jsc`, …).
    pub forms: Vec<&'static str>,
    /// The token before `bin`/`ibn` (`X bin Y` is not `Y bin X`), and its
    /// key and script.
    pub patronymic_head: Option<Box<(String, String, Script)>>,
    /// The tokens run together, and its phonetic key.
    pub joined: String,
    /// The phonetic key of `joined`.
    pub joined_key: String,
    /// Every token (forms and particles included), sorted: the exact key.
    pub exact: String,
    /// The tokens (bit `i` for token `i`) written before the comma of a name
    /// written `FAMILY, Given`: leaving one out is not leaving out a middle name.
    pub family: u64,
    /// Bit `i`: a particle stands between tokens `i` and `i + 1`, so the two
    /// are not one name written apart (`فداء آل علي` is not `Abdallah`).
    pub run_breaks: u64,
}

/// A token with what its script says about it.
#[derive(Debug, Clone, Default)]
struct Tok {
    text: String,
    script: Script,
    /// The key, when the script gives it (an Arabic skeleton).
    key: Option<String>,
    /// A second reading (Cyrillic).
    alt: Option<String>,
    /// What an Arabic-script word writes beyond its skeleton.
    marks: Option<ArabicMarks>,
    /// The Arabic article, written on the word that follows it.
    attached: bool,
    /// The word the Arabic article was written on (`الخرافي`).
    articled: bool,
    /// Other skeletons the word may be spelt by (Arabic script).
    other_keys: Vec<String>,
}

impl Tok {
    fn latin(text: String) -> Self {
        Self {
            text: unleet(text),
            ..Self::default()
        }
    }

    /// Whether the token is a particle: one of [`PARTICLES`], and for a word
    /// of Arabic script one read as a particle (`ابو`, the article), not a
    /// name whose letters happen to spell one (`آلاء` is not `al`).
    fn is_particle(&self) -> bool {
        let particle = |t: &str| PARTICLES.contains(&t);
        (particle(&self.text) && (self.script != Script::Arabic || self.key.is_none()))
            // Cyrillic read the second way (`Хаджджи` is `hajji`; `Гаджи`,
            // `Хаджи` are given names).
            || self.alt.as_deref() == Some("hajji")
    }

    fn arabic(text: String) -> Self {
        Self {
            text,
            script: Script::Arabic,
            ..Self::default()
        }
    }
}

/// Digits written for the letters they look like, in a token that is
/// otherwise letters (`Ig0r Sech1n` is `Igor Sechin`). Numbers (`2004`),
/// ordinals (`1st`, `44th`) and codes with more digits than letters stay.
fn unleet(text: String) -> String {
    let digits = text.bytes().filter(u8::is_ascii_digit).count();
    let letters = text.bytes().filter(u8::is_ascii_alphabetic).count();
    let ordinal = ["st", "nd", "rd", "th"].iter().any(|s| {
        text.strip_suffix(s)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    });
    if digits == 0 || letters < 2 || digits >= letters || ordinal {
        return text;
    }
    text.chars()
        .map(|c| match c {
            '0' => 'o',
            '1' => 'i',
            '3' => 'e',
            '4' => 'a',
            '5' => 's',
            '7' => 't',
            '8' => 'b',
            '9' => 'g',
            c => c,
        })
        .collect()
}

/// Splits a name into tokens, each transliterated according to its script
/// (see [`crate::scripts`]).
fn scripted_tokens(name: &str) -> Vec<Tok> {
    if name.is_ascii() {
        return tokenize(name).into_iter().map(Tok::latin).collect();
    }
    let mut out = Vec::with_capacity(4);
    for word in name.split(|c: char| c.is_whitespace() || c == '-' || c == '\u{2010}') {
        match Script::of(word) {
            Script::Latin => out.extend(tokenize(word).into_iter().map(Tok::latin)),
            Script::Arabic => push_arabic(&mut out, word),
            Script::Cyrillic => {
                let texts = tokenize(word);
                let count = texts.len();
                let alts = scripts::cyrillic_second_reading(word).map(|w| tokenize(&w));
                for (i, text) in texts.into_iter().enumerate() {
                    let alt = alts
                        .as_ref()
                        .filter(|a| a.len() == count)
                        .and_then(|a| a.get(i))
                        .cloned();
                    out.push(Tok {
                        text,
                        script: Script::Cyrillic,
                        alt,
                        ..Tok::default()
                    });
                }
            }
            script @ (Script::Ideographic | Script::Other) => {
                out.extend(tokenize(word).into_iter().map(|text| Tok {
                    text,
                    script,
                    ..Tok::default()
                }))
            }
        }
    }
    out
}

/// The tokens of one Arabic-script word: a particle (`ابو`, `بن`) as the
/// Latin particle; `عبد` and `ابو` written onto an article-bearing name
/// (`عبدالرحمن`, `ابواليزيد`) apart; the article `ال` apart from the word
/// it is written on.
fn push_arabic(out: &mut Vec<Tok>, word: &str) {
    push_arabic_letters(out, &scripts::arabic_letters(word));
}

/// [`push_arabic`] of a word's letters, read once.
fn push_arabic_letters(out: &mut Vec<Tok>, letters: &[char]) {
    if let Some(particle) = scripts::arabic_particle(letters) {
        out.push(Tok::arabic(particle.to_owned()));
        return;
    }
    if let Some(head) = scripts::split_glued_head(letters) {
        let (head, rest) = letters.split_at(head);
        push_arabic_letters(out, head);
        push_arabic_letters(out, rest);
        return;
    }
    let (article, rest) = scripts::split_article(letters);
    if article {
        // Written on its word: `عبد الرحمن` is still one name run apart
        // (see `run_breaks`), unlike a particle of its own.
        out.push(Tok {
            attached: true,
            ..Tok::arabic(ARTICLE.to_owned())
        });
    }
    let text: String = tokenize(&rest.iter().collect::<String>()).concat();
    if !text.is_empty() {
        let reading = scripts::arabic_reading(rest);
        let mut others = reading.others;
        if article {
            // `ال` may also be a foreign name's own first letters, written
            // as heard (`الينا`, *Eliana*; `الكسندر`, *Alexander*).
            let whole = scripts::arabic_reading(letters).key;
            if !others.contains(&whole) {
                others.push(whole);
            }
        }
        out.push(Tok {
            key: Some(reading.key),
            marks: Some(reading.marks),
            articled: article,
            other_keys: others,
            ..Tok::arabic(text)
        });
    }
}

impl NormalName {
    /// Normalises a name: transliterated, folded, tokenised, with legal forms,
    /// particles and numbers set apart.
    pub fn new(name: &str) -> Self {
        let exact = exact_key(name);
        let mut raw = scripted_tokens(name);
        // Beyond this many words no name goes (the longest designated one
        // has 23): what a crafted name of hundreds costs stays bounded.
        raw.truncate(MAX_NAME_TOKENS);
        let (rest, forms) = extract_forms(raw);
        let patronymic_head = rest
            .windows(2)
            .find(|w| {
                matches!(
                    w.get(1).map(|t| t.text.as_str()),
                    Some("bin" | "ibn" | "bint")
                )
            })
            .and_then(|w| w.first())
            .map(|t| {
                let key = t.key.clone().unwrap_or_else(|| phonetic_key(&t.text));
                Box::new((t.text.clone(), key, t.script))
            });
        let (numbers, rest): (Vec<Tok>, Vec<Tok>) = rest
            .into_iter()
            .partition(|t| t.text.bytes().all(|b| b.is_ascii_digit()));
        // `Abdul`, `Abdel`: `Abd` and the article of the name after it
        // (`Abdul Aziz` is `Abd al-Aziz`, `عبد العزيز`).
        let rest: Vec<Tok> = rest
            .into_iter()
            .flat_map(|t| match t.script {
                Script::Latin => split_abd(&t.text).unwrap_or_else(|| vec![t]),
                _ => vec![t],
            })
            .collect();
        let run_breaks = run_breaks(&rest);
        let (mut tokens, mut particles): (Vec<Tok>, Vec<Tok>) =
            rest.into_iter().partition(|t| !t.is_particle());
        if tokens.is_empty() {
            // A name made only of particles or forms: compare what there is.
            tokens = std::mem::take(&mut particles);
        }
        let keys: Vec<String> = tokens
            .iter()
            .map(|t| t.key.clone().unwrap_or_else(|| phonetic_key(&t.text)))
            .collect();
        let alt_tokens: Vec<(usize, String)> = tokens
            .iter()
            .enumerate()
            .filter_map(|(i, t)| Some((i, t.alt.clone()?)))
            .filter(|(i, a)| tokens.get(*i).is_some_and(|t| t.text != *a))
            .collect();
        let mut alt_keys: Vec<(usize, String)> = alt_tokens
            .iter()
            // A Latin token's second spelling is only compared, not looked up.
            .filter(|(i, _)| tokens.get(*i).is_some_and(|t| t.script != Script::Latin))
            .map(|(i, a)| (*i, phonetic_key(a)))
            .filter(|(i, k)| keys.get(*i) != Some(k))
            .collect();
        for (i, t) in tokens.iter_mut().enumerate() {
            alt_keys.extend(
                std::mem::take(&mut t.other_keys)
                    .into_iter()
                    .map(|k| (i, k)),
            );
        }
        let arabic_marks = tokens
            .iter_mut()
            .enumerate()
            .filter_map(|(i, t)| Some((i, t.marks.take()?)))
            .collect();
        let articled = tokens
            .iter()
            .take(64)
            .enumerate()
            .filter(|(_, t)| t.articled)
            .fold(0u64, |bits, (i, _)| bits | 1 << i);
        let scripts: Vec<Script> = tokens.iter().map(|t| t.script).collect();
        let tokens: Vec<String> = tokens.into_iter().map(|t| t.text).collect();
        let family = family_tokens(name, &tokens);
        let joined = tokens.concat();
        let joined_key = if scripts.contains(&Script::Arabic) {
            // Skeletons run together, the article's `l` heard where it was
            // written (`عبد الرحمن` is `Abdelrahman`), a letter repeated across
            // a boundary once.
            run_together(keys.iter().enumerate().flat_map(|(i, key)| {
                let article = i > 0 && i < 64 && articled & (1 << i) != 0;
                article.then_some("l").into_iter().chain([key.as_str()])
            }))
        } else {
            phonetic_key(&joined)
        };
        Self {
            exact,
            joined,
            joined_key,
            tokens,
            keys,
            scripts,
            alt_keys,
            alt_tokens,
            arabic_marks,
            articled,
            particles: particles
                .into_iter()
                .map(|t| match t.alt {
                    Some(alt) if !PARTICLES.contains(&t.text.as_str()) => alt,
                    _ => t.text,
                })
                .collect(),
            numbers: numbers.into_iter().map(|t| t.text).collect(),
            forms,
            patronymic_head,
            family,
            run_breaks,
        }
    }

    /// The name with a particle or title written onto a Latin token split
    /// off (`Alhalabi`, `Salihal`, `Abuyahya`, `Hajjifaizullah`), when the
    /// token is not one `known` knows and what is left of it is: `al` +
    /// `halabi`. `None` when nothing splits. Both readings are screened: a
    /// token that splits may also be a name mistyped (`Alhun` is `Altun`,
    /// not `al` + `hun`).
    pub fn unglued(&self, known: impl Fn(&str) -> bool) -> Option<Self> {
        // Not the titles `haji`, `sheikh`: `Sheikhahmadi`, `Hajimohammadi`
        // are family names of their own.
        const BEFORE: [&str; 6] = ["abu", "bin", "ibn", "al", "el", "ul"];
        const AFTER: [&str; 2] = ["al", "el"];
        let mut out: Option<Self> = None;
        for i in 0..self.tokens.len() {
            let (Some(token), Some(Script::Latin)) = (self.tokens.get(i), self.scripts.get(i))
            else {
                continue;
            };
            if token.len() < 5 || known(token) {
                continue;
            }
            let before = BEFORE.iter().find_map(|p| {
                let rest = token.strip_prefix(p)?;
                (rest.len() >= 3 && known(rest)).then(|| (*p, rest.to_owned()))
            });
            let after = || {
                AFTER.iter().find_map(|p| {
                    let head = token.strip_suffix(p)?;
                    (head.len() >= 3 && known(head)).then(|| (*p, head.to_owned()))
                })
            };
            let Some((particle, rest)) = before.or_else(after) else {
                continue;
            };
            let split = out.get_or_insert_with(|| self.clone());
            if let Some(k) = split.keys.get_mut(i) {
                *k = phonetic_key(&rest);
            }
            if let Some(t) = split.tokens.get_mut(i) {
                *t = rest;
            }
            split.particles.push(particle.to_owned());
        }
        out
    }

    /// Gives back what preparing the name allocated beyond what it keeps (a
    /// list built in place of a longer one keeps that one's buffer): for
    /// names held for a long time, the designated ones.
    pub fn compact(&mut self) {
        fn strings(list: &mut Vec<String>) {
            list.iter_mut().for_each(String::shrink_to_fit);
            list.shrink_to_fit();
        }
        strings(&mut self.tokens);
        strings(&mut self.keys);
        strings(&mut self.particles);
        strings(&mut self.numbers);
        self.scripts.shrink_to_fit();
        self.alt_keys.shrink_to_fit();
        self.alt_tokens.shrink_to_fit();
        self.arabic_marks.shrink_to_fit();
        self.forms.shrink_to_fit();
        self.joined.shrink_to_fit();
        self.joined_key.shrink_to_fit();
        self.exact.shrink_to_fit();
    }

    /// Whether nothing comparable is left of the name.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Whether any token was written in Arabic script (compared by skeleton).
    pub fn has_arabic(&self) -> bool {
        self.has(Script::Arabic)
    }

    /// Whether any token was written in `script`.
    pub fn has(&self, script: Script) -> bool {
        self.scripts.contains(&script)
    }

    /// The tokens sorted and joined: order-insensitive exact key.
    pub fn sorted_key(&self) -> String {
        let mut t: Vec<&str> = self.tokens.iter().map(String::as_str).collect();
        t.sort_unstable();
        t.join(" ")
    }
}

/// `Abdul`, `Abdel` alone, or written onto the name after it
/// (`Abdelhalim`, `Abdurrahman`, `Abdirahman`): `abd`, the article, and
/// that name. `Abdullah` stays one name.
fn split_abd(text: &str) -> Option<Vec<Tok>> {
    let abd = || Tok::latin("abd".to_owned());
    let article = || Tok::latin(ARTICLE.to_owned());
    if matches!(
        text,
        "abdul" | "abdel" | "abdol" | "abdoul" | "abdal" | "abdil" | "abdou"
    ) {
        // The word as written stays a second reading of `abd`, for a
        // mistyped one (`Adbul`, `Aboul`) to be compared with.
        let whole = Tok {
            alt: Some(text.to_owned()),
            ..abd()
        };
        return Some(vec![whole, article()]);
    }
    let rest = text.strip_prefix("abd")?;
    let vowels = rest
        .bytes()
        .take_while(|b| matches!(b, b'a' | b'e' | b'i' | b'o' | b'u'))
        .count();
    if !(1..=2).contains(&vowels) {
        return None;
    }
    let after = rest.get(vowels..)?;
    let c = after.bytes().next()?;
    let tail = after.get(1..)?;
    let name = match c {
        // `Abdullah`, `Abdallah`, `Abdulla`, `Abdolahi`: one name.
        b'l' if tail.starts_with("la") || tail.starts_with("ah") => return None,
        b'l' => tail.to_owned(),
        // The article's `l` heard as the letter after it (`Abdurrahman`,
        // `Abdussalam`), written once or twice (`Abdurahman`).
        b'r' | b's' | b'z' | b'n' | b't' | b'd' if tail.as_bytes().first() == Some(&c) => {
            tail.to_owned()
        }
        b'r' | b's' | b'z' | b'n' | b't' | b'd' => format!("{}{tail}", char::from(c)),
        _ => return None,
    };
    (name.len() >= 3).then(|| vec![abd(), article(), Tok::latin(name)])
}

/// The Arabic article `ال`, split off the word it is written on.
const ARTICLE: &str = "al";

/// [`NormalName::run_breaks`] of the tokens left once forms and numbers are
/// set apart, particles still among them.
fn run_breaks(tokens: &[Tok]) -> u64 {
    let (mut breaks, mut seen, mut particle) = (0u64, 0usize, false);
    for t in tokens {
        if t.attached {
            continue;
        }
        if t.is_particle() {
            particle = seen > 0;
        } else {
            if particle && (1..=64).contains(&seen) {
                breaks |= 1 << (seen - 1);
            }
            particle = false;
            seen += 1;
        }
    }
    breaks
}

/// Which of `tokens` are family names: those of the part before the comma
/// of a name written `FAMILY, Given` (one comma, given names after it) and
/// not also among the given names.
fn family_tokens(name: &str, tokens: &[String]) -> u64 {
    let mut parts = name.split(',');
    let (Some(before), Some(after), None) = (parts.next(), parts.next(), parts.next()) else {
        return 0;
    };
    let texts =
        |part: &str| -> Vec<String> { scripted_tokens(part).into_iter().map(|t| t.text).collect() };
    let (family, given) = (texts(before), texts(after));
    if given.is_empty() {
        return 0;
    }
    tokens
        .iter()
        .take(64)
        .enumerate()
        .filter(|(_, t)| family.contains(t) && !given.contains(t))
        .fold(0, |bits, (i, _)| bits | 1 << i)
}

/// A name's exact, order-insensitive key: its tokens sorted and joined
/// (`"Petrov, IVAN"` and `"Иван Петров"` both give `"ivan petrov"`).
pub fn exact_key(name: &str) -> String {
    let mut tokens = tokenize(name);
    tokens.sort_unstable();
    tokens.join(" ")
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
fn extract_forms(tokens: Vec<Tok>) -> (Vec<Tok>, Vec<&'static str>) {
    let mut rest = Vec::with_capacity(tokens.len());
    let mut forms = Vec::new();
    let mut i = 0;
    'outer: while i < tokens.len() {
        let starts_a_form = tokens
            .get(i)
            .is_some_and(|t| FORM_FIRST_WORDS.binary_search(&t.text.as_str()).is_ok());
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
                    let ok = tokens.get(end).is_some_and(|t| t.text == w);
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
    let folded = fold(token);
    skeleton(&folded, true, |_, _| {})
}

/// [`phonetic_key`] as compared with an Arabic skeleton: a `j` is always the
/// consonant `ج` (`Khafaji`, `Raja`), never the `y` of `Sergej`.
pub fn arabic_comparable_key(token: &str) -> String {
    // Nor is `zh` the Russian `ж`: it is `ز` and `ه` (`Azhar`).
    let token = arabic_comparable_spelling(token);
    let folded: Vec<u8> = token
        .split("zh")
        .map(fold)
        .collect::<Vec<_>>()
        .join(&b"zh"[..]);
    skeleton(&folded, false, |_, _| {})
}

/// A Latin spelling as an Arabic reader hears it: a `ch` is `ش` (`Achour`)
/// or `چ` (`Chaudhry`), one letter with `sh`; a French `ou` before a vowel
/// is `و` (`Aouadi`, `Rouine`).
fn arabic_comparable_spelling(token: &str) -> String {
    let token = token.replace("ch", "sh");
    let bytes = token.as_bytes();
    let mut out = String::with_capacity(token.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let ou = b == b'o'
            && bytes.get(i + 1) == Some(&b'u')
            && bytes
                .get(i + 2)
                .is_some_and(|c| matches!(c, b'a' | b'e' | b'i' | b'o'));
        if ou {
            out.push('w');
            i += 2;
        } else {
            out.push(char::from(b));
            i += 1;
        }
    }
    out
}

/// Whether [`arabic_comparable_key`] can differ from [`phonetic_key`].
pub fn reads_otherwise_to_arabic(token: &str) -> bool {
    token.contains('j') || token.contains("zh") || token.contains("ch") || token.contains("ou")
}

/// The multi-letter spellings of one sound folded to one letter.
fn fold(token: &str) -> Vec<u8> {
    // Fold multi-letter spellings of one sound in a single pass.
    const FOLDS: &[(&[u8], u8)] = &[
        (b"tsch", b'c'),
        (b"sch", b'$'),
        (b"tch", b'c'),
        (b"dzh", b'j'),
        (b"dj", b'j'),
        (b"zh", b'j'),
        (b"kh", b'h'),
        (b"gh", b'g'),
        (b"ph", b'f'),
        (b"th", b'%'),
        (b"sh", b'$'),
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
    folded
}

/// The consonant skeleton of folded letters; `vowel` is told of each vowel
/// letter and the position (in the skeleton) of the consonant it precedes.
fn skeleton(folded: &[u8], j_after_vowel_is_y: bool, heard: impl FnMut(usize, u8)) -> String {
    skeleton_with(folded, j_after_vowel_is_y, heard, |_, _| {})
}

/// [`skeleton`], also telling `letter` the folded letter behind each `v`,
/// `s` and `t` it writes, and whether it ends the token.
fn skeleton_with(
    folded: &[u8],
    j_after_vowel_is_y: bool,
    mut heard: impl FnMut(usize, u8),
    mut letter: impl FnMut(u8, bool),
) -> String {
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
            'j' if j_after_vowel_is_y && vowel(prev) => 'a',
            // A soft `c` (`Francisco` / `Fransisco`, `Cecilia` / `Sesilia`),
            // in the Latin reading only.
            'c' if j_after_vowel_is_y && matches!(next, Some(b'e' | b'i' | b'y')) => 's',
            'c' | 'q' | 'k' | 'g' => 'k',
            'j' => 'j',
            'z' | 's' | 'x' | '$' => 's',
            'v' | 'f' | 'b' | 'p' => 'v',
            'd' | 't' | '%' => 't',
            'w' | 'y' | 'i' | 'e' | 'a' | 'o' | 'u' => 'a',
            'h' => continue,
            c => c,
        };
        if mapped == 'a' {
            heard(out.len(), byte);
            last = 'a';
            continue;
        }
        if mapped != last {
            if matches!(mapped, 'v' | 's' | 't') {
                letter(byte, i + 1 == folded.len());
            }
            out.push(mapped);
        }
        last = mapped;
    }
    if out.is_empty() {
        out.push(folded.first().map_or('a', |&b| char::from(b)));
    }
    out
}

/// The vowels heard before each consonant of a token's skeleton and after
/// the last, as classes (`A`, `I`, `U` bits; `e` is either `A` or `I`):
/// what an Arabic-script spelling's long vowels are checked against.
pub fn vowel_gaps(token: &str) -> Vec<u8> {
    let folded = fold(token);
    let mut gaps = vec![0u8; folded.len() + 1];
    let key = skeleton(&folded, true, |at, letter| {
        if let Some(gap) = gaps.get_mut(at) {
            *gap |= match letter {
                b'a' => scripts::VOWEL_A,
                b'e' => scripts::VOWEL_A | scripts::VOWEL_I,
                b'i' | b'y' | b'j' => scripts::VOWEL_I,
                _ => scripts::VOWEL_U,
            };
        }
    });
    gaps.truncate(key.len() + 1);
    gaps
}

/// The letters behind a Latin token's skeleton's `v`, `s` and `t`, as
/// [`scripts::letters_agree`] compares them with Arabic script (read as
/// [`arabic_comparable_key`] reads the token).
pub fn latin_letters(token: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let token = arabic_comparable_spelling(token);
    skeleton_with(
        &fold(&token),
        false,
        |_, _| {},
        |b, last| {
            out.push(match b {
                b'p' => b'b',
                b'x' => b's',
                b'$' => b'x',
                b't' if last => b'e',
                b'%' => b'e',
                other => other,
            });
        },
    );
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
    // Two neighbouring letters swapped: a typo, which Jaro-Winkler's window
    // does not see in short tokens (`Kmi` / `Kim`).
    if swapped_neighbours(a, b) {
        sim = sim.max(0.92);
    } else if a.len() == b.len() && a.len() >= 4 && one_letter_changed(a, b) {
        // One letter changed in a token of four or more (`Floees` / `Flores`,
        // `Ourat` / `Murat`, first letter included).
        sim = sim.max(0.9);
    } else if short.len() >= 2 && long.len() <= 3 && ka == kb && same_sound_typo(a, b) {
        // A short token, one letter changed for one of the same sound
        // (`Dun` / `Tun`, `Vei` / `Wei`), or one vowel more (`Jong-uun` /
        // `Jong-un`).
        sim = sim.max(0.9);
    } else if a.len() == 3
        && b.len() == 3
        && a.as_bytes().first() == b.as_bytes().first()
        && one_letter_changed(a, b)
    {
        // Of three, after the same first letter (`Kin` / `Kim`): close, not
        // enough alone.
        sim = sim.max(0.86);
    }
    // A feminine patronymic is one letter from a family name (`Ivanovna` /
    // `Ivanova`): only a typo that leaves neither looking like one counts.
    let family_like = |t: &str| {
        ["ova", "eva", "ov", "ev", "ovic", "evic"]
            .iter()
            .any(|e| t.ends_with(e))
    };
    if is_patronymic(a) != is_patronymic(b)
        && !(one_typo(a, b) && !family_like(a) && !family_like(b))
    {
        // `Petrovich` (a father's name) is not `Petrov` (a family name);
        // `Vladimirovicyh` is `Vladimirovich` mistyped.
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

/// Whether `b` is `a` with one letter inserted, deleted or changed, or two
/// neighbours swapped.
fn one_typo(a: &str, b: &str) -> bool {
    a.len().abs_diff(b.len()) <= 1 && strsim::osa_distance(a, b) <= 1
}

/// The entry of token `at` in a list by position (`alt_tokens`, `alt_keys`).
fn at_position(list: &[(usize, String)], at: usize) -> Option<&str> {
    list.iter().find(|(p, _)| *p == at).map(|(_, k)| k.as_str())
}

/// Whether `b` is `a` with one consonant changed for another (`Dun` /
/// `Tun`) or one vowel added (`un` / `uun`); never a vowel changed (`Li` is
/// not `Lu`).
fn same_sound_typo(a: &str, b: &str) -> bool {
    let vowel = |c: u8| matches!(c, b'a' | b'e' | b'i' | b'o' | b'u' | b'y');
    let (x, y) = (a.as_bytes(), b.as_bytes());
    if x.len() == y.len() {
        let mut diff = x.iter().zip(y).filter(|(p, q)| p != q);
        return match (diff.next(), diff.next()) {
            (Some((&p, &q)), None) => !vowel(p) && !vowel(q),
            _ => false,
        };
    }
    let (short, long) = if x.len() < y.len() { (x, y) } else { (y, x) };
    long.len() == short.len() + 1
        && (0..long.len()).any(|at| {
            long.get(at).is_some_and(|&c| vowel(c))
                && long
                    .get(..at)
                    .zip(long.get(at + 1..))
                    .is_some_and(|(h, t)| short.get(..at) == Some(h) && short.get(at..) == Some(t))
        })
}

/// Whether `a` and `b` (of one length) differ in exactly one letter.
fn one_letter_changed(a: &str, b: &str) -> bool {
    a.bytes().zip(b.bytes()).filter(|(p, q)| p != q).count() == 1
}

/// Whether `a` is `b` with two neighbouring, different letters swapped.
fn swapped_neighbours(a: &str, b: &str) -> bool {
    let (x, y) = (a.as_bytes(), b.as_bytes());
    if x.len() != y.len() || x.len() < 3 {
        return false;
    }
    let Some(at) = x.iter().zip(y).position(|(p, q)| p != q) else {
        return false;
    };
    let (Some(x0), Some(x1), Some(y0), Some(y1)) =
        (x.get(at), x.get(at + 1), y.get(at), y.get(at + 1))
    else {
        return false;
    };
    x0 == y1 && x1 == y0 && x.get(at + 2..) == y.get(at + 2..)
}

fn is_patronymic(t: &str) -> bool {
    [
        "ovich", "evich", "ovna", "evna", "ichna", "vich", "witsch", "wich",
    ]
    .iter()
    .any(|s| t.len() > s.len() + 2 && t.ends_with(s))
}

/// Similarity of token `i` of `a` and token `j` of `b`, by what their
/// scripts allow: Arabic script by skeleton, Cyrillic by spelling or by
/// either reading's skeleton, everything else by [`token_similarity`].
#[inline]
pub fn pair_similarity(a: &NormalName, i: usize, b: &NormalName, j: usize) -> f64 {
    let (Some(ta), Some(ka), Some(tb), Some(kb)) = (
        a.tokens.get(i),
        a.keys.get(i),
        b.tokens.get(j),
        b.keys.get(j),
    ) else {
        return 0.0;
    };
    let sa = a.scripts.get(i).copied().unwrap_or_default();
    let sb = b.scripts.get(j).copied().unwrap_or_default();
    if sa == sb && sa != Script::Cyrillic {
        let sim = token_similarity(ta, ka, tb, kb);
        if sim >= 0.9 || (a.alt_tokens.is_empty() && b.alt_tokens.is_empty()) {
            return sim;
        }
        // A second spelling (`abdul` behind `abd`), mistyped (`adbul`).
        let mut best = sim;
        if let Some(t) = at_position(&a.alt_tokens, i) {
            best = best.max(token_similarity(t, &phonetic_key(t), tb, kb));
        }
        if let Some(t) = at_position(&b.alt_tokens, j) {
            best = best.max(token_similarity(ta, ka, t, &phonetic_key(t)));
        }
        return best;
    }
    if sa == Script::Arabic || sb == Script::Arabic {
        if sa == sb {
            return token_similarity(ta, ka, tb, kb).max(scripts::skeleton_similarity(ka, kb));
        }
        // The Arabic-script token and the other.
        let (arabic, at, arabic_key, arabic_text, latin, latin_key) = if sa == Script::Arabic {
            (a, i, ka, ta, tb, kb)
        } else {
            (b, j, kb, tb, ta, ka)
        };
        // A Latin `j` after a vowel is read `y` (`Sergej`); against Arabic
        // it is `ج` (`Khafaji`), as a `ch` is `ش` and an `ou` before a vowel
        // is `و`: the token as an Arabic reader hears it.
        let strict = reads_otherwise_to_arabic(latin).then(|| arabic_comparable_key(latin));
        let heard = strict.as_deref().unwrap_or(latin_key);
        let mut sim = scripts::skeleton_similarity(arabic_key, heard);
        let mut equal = arabic_key == heard;
        // Another reading of the Arabic letters is a little less sure.
        for (_, other) in arabic.alt_keys.iter().filter(|(p, _)| *p == at) {
            let other = match other.strip_prefix(scripts::HARD_G) {
                Some(k) if scripts::writes_hard_g(latin) => k,
                Some(_) => continue,
                None => other.as_str(),
            };
            sim = sim.max(scripts::skeleton_similarity(other, heard).min(0.9));
            equal |= other == heard;
        }
        // Letters the skeleton leaves out but a Latin spelling shows: an
        // `h` sound written in Arabic (`خضير` is not `Diarra`), a `y` that
        // starts the Latin name (`Yusuf` is not `سبأ`).
        let marks = arabic
            .arabic_marks
            .iter()
            .find(|(p, _)| *p == at)
            .map(|(_, m)| m);
        let sounds = sounds_agree(arabic_text, marks, latin);
        if !sounds {
            sim = sim.min(0.85);
        }
        // The long vowels Arabic writes must be heard in the Latin spelling
        // (`حسين` is `Hussein`, not `Hassan`).
        let Some(marks) = marks else {
            return sim;
        };
        let articled = at < 64 && arabic.articled & (1 << at) != 0;
        if !arabic_agrees_with_latin(marks, articled, latin) {
            sim = sim.min(0.8);
        }
        let gaps = vowel_gaps(latin);
        if ka == kb && !scripts::vowels_agree(&marks.vowels, &gaps) {
            return sim.min(0.82);
        }
        // A skeleton of one or two letters says little, but the long vowels
        // written and how the word starts, all heard in the Latin spelling,
        // say more (`علي` / `Ali`, `يحيى` / `Yahya`).
        let short = arabic_key.len() <= 2;
        let confirmed = equal
            && marks.vowels.iter().any(|&v| v != 0)
            && marks.vowels.len() == gaps.len()
            && scripts::vowels_agree(&marks.vowels, &gaps)
            && marks.initial.agrees(Initial::of_latin(latin))
            // `ي` against `y`, `و` against `w`: either, on both sides.
            && (marks.initial != Initial::Either || Initial::of_latin(latin) == Initial::Either);
        if short && confirmed && sounds && sim >= 0.85 {
            sim = sim.max(if arabic_key.len() == 1 || arabic_key != latin_key {
                0.9
            } else {
                0.94
            });
        }
        return sim;
    }
    let mut sim = token_similarity(ta, ka, tb, kb);
    if sa == Script::Cyrillic || sb == Script::Cyrillic {
        // Another script's spelling: the skeleton (of either reading) decides.
        let at = at_position;
        // The second reading, spelt (`Хасан` read `hasan`).
        if let Some(t) = at(&a.alt_tokens, i) {
            sim = sim.max(token_similarity(t, &phonetic_key(t), tb, kb));
        }
        if let Some(t) = at(&b.alt_tokens, j) {
            sim = sim.max(token_similarity(ta, ka, t, &phonetic_key(t)));
        }
        // A skeleton in common says the same name only when the letters
        // are not far apart (`Фуад` is `ft`, as `Vita` is, and no more).
        let spelt_close = [Some(ta.as_str()), at(&a.alt_tokens, i)]
            .into_iter()
            .flatten()
            .any(|x| {
                [Some(tb.as_str()), at(&b.alt_tokens, j)]
                    .into_iter()
                    .flatten()
                    .any(|y| jaro_winkler(x, y) >= 0.75)
            });
        let readings_a = std::iter::once(ka.as_str()).chain(at(&a.alt_keys, i));
        for ra in readings_a {
            for rb in std::iter::once(kb.as_str()).chain(at(&b.alt_keys, j)) {
                if ra == rb && ra.len() >= 2 && ta.len() > 1 && tb.len() > 1 && spelt_close {
                    sim = sim.max(0.93);
                } else if ra.len() >= 3 && rb.len() >= 3 && spelt_close {
                    sim = sim.max(scripts::skeleton_similarity(ra, rb).min(0.88));
                }
            }
        }
    }
    sim
}

/// Whether what an Arabic-script word writes beyond its skeleton agrees
/// with a Latin spelling of it: the letter behind each `v` (`ب`, `ف`, `و`
/// are three letters: `صفوان` is not `Shaaban`), and a vowel or a
/// consonant first (`بتول` is not `Abdollahi`), unless the article was
/// written on the word (`السعدي`, `Essaadi`).
fn arabic_agrees_with_latin(marks: &ArabicMarks, articled: bool, latin: &str) -> bool {
    (articled || marks.initial.agrees(Initial::of_latin(latin)))
        && scripts::letters_agree(&marks.letters, &latin_letters(latin))
        && (!marks.feminine || ends_as_feminine(latin))
}

/// Whether a Latin spelling ends the way a final `ة` is heard: `Osama`,
/// `Hamzeh`, `Talhah`, `Jabhat`.
fn ends_as_feminine(latin: &str) -> bool {
    latin.ends_with(['a', 'e'])
        || ["ah", "eh", "at", "et", "it", "ih", "ya", "iya"]
            .iter()
            .any(|end| latin.ends_with(end))
}

/// Whether the sounds an Arabic skeleton drops agree with a Latin spelling:
/// an `h` (`ح`, `ه`, `خ`) the Arabic writes before its last letter is
/// written in the Latin, and a Latin name starting with `y` and a vowel
/// starts with `ي` in Arabic. `arabic` is the Arabic token's letters as
/// transliterated (`khdyr`).
fn sounds_agree(arabic: &str, marks: Option<&ArabicMarks>, latin: &str) -> bool {
    fn inner(t: &str) -> &str {
        t.get(..t.len().saturating_sub(1)).unwrap_or_default()
    }
    // An `h` sound (`ح`, `ه`, `خ`) inside the Arabic is heard inside the
    // Latin (`حجار` is not `Djarrah`), and a Latin `h` inside the name is
    // written in the Arabic (`ماذى` is not `Hamza`); a final one is often
    // the silent `ة`. The Arabic letters say it when they are at hand, else
    // their transliteration.
    let (arabic_inner, arabic_any, arabic_kh) = match marks {
        Some(m) => (m.inner_h, m.any_h, m.kh),
        None => (
            h_sound(inner(arabic)),
            h_sound(arabic),
            arabic.contains("kh"),
        ),
    };
    let latin_inner = h_sound(inner(latin));
    if (arabic_inner && !latin_inner) || (latin_inner && !arabic_inner && !arabic_any) {
        return false;
    }
    // A Latin `kh` is `خ`, which the skeleton leaves out (`Kharoubi` is
    // not `ربى`).
    if latin.contains("kh") && !arabic_kh {
        return false;
    }
    let bytes = latin.as_bytes();
    let y_vowel = bytes.first() == Some(&b'y')
        && bytes
            .get(1)
            .is_some_and(|b| matches!(b, b'a' | b'e' | b'i' | b'o' | b'u'));
    !y_vowel || arabic.starts_with('y')
}

/// Whether a transliterated name holds an `h` sound: an `h` that is not
/// the second letter of `sh`, `ch`, `th`, `dh`, `gh` or `ph` (`kh` is one,
/// and against Arabic a `zh` is `z` and `h`: `Azhar`).
fn h_sound(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().any(|(i, &b)| {
        b == b'h'
            && !i
                .checked_sub(1)
                .and_then(|p| bytes.get(p))
                .is_some_and(|p| matches!(p, b's' | b'c' | b't' | b'd' | b'g' | b'p'))
    })
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

/// The best score of a name in Han characters or kana against one in
/// letters (or the other way round): a near miss for a reviewer, a match only
/// when a date of birth or nationality agrees.
const IDEOGRAPHIC_CAP: f64 = 0.87;

/// Two tokens run together are looked for only in names of at most this many.
const MAX_RUN_TOKENS: usize = 8;

/// What a score loses, beyond [`penalise_unmatched_tokens`], for each family
/// name of a designated person's `FAMILY, Given` name the other name leaves
/// out: `Manuel Ramos` is a near miss of `HUERTA RAMOS, Manuel`, while
/// `Saleh Fayad` still matches `FAYAD, Saleh Mahmoud`.
const FAMILY_LEFT_OUT: f64 = 0.1;
/// What leaving out the designated person's first given name costs.
const FIRST_GIVEN_LEFT_OUT: f64 = 0.06;

/// Compares two prepared names; 0.0–1.0.
pub fn compare(q: &NormalName, c: &NormalName, kind: NameKind) -> Comparison {
    compare_aligned(q, c, kind).0
}

/// How the tokens of a screened name and a designated name were paired, and
/// the score it gave: what a reviewer reads to see why a name matched.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = NameScoring)]
pub struct Explanation {
    /// 0–100, the name's score before the party's kind, date of birth and
    /// countries adjust it.
    pub name_score: u8,
    /// Each token of the screened name paired with the designated name's.
    pub pairs: Vec<TokenPair>,
    /// Tokens of the screened name paired with nothing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub screened_left_out: Vec<String>,
    /// Tokens of the designated name paired with nothing (family names cost
    /// more than middle names).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub designated_left_out: Vec<String>,
}

/// One token of the screened name and what it was paired with.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    /// The screened token, as compared (folded, transliterated).
    pub screened: String,
    /// The designated token, or two written as one (`arnoldo lobo`).
    pub designated: String,
    /// 0–100.
    pub similarity: u8,
}

/// [`compare`] with the pairing of tokens spelt out.
pub fn explain(q: &NormalName, c: &NormalName, kind: NameKind) -> Explanation {
    let (comparison, al) = compare_aligned(q, c, kind);
    let percent = |x: f64| (x * 100.0).round().clamp(0.0, 100.0) as u8;
    let mut out = Explanation {
        name_score: percent(comparison.score),
        pairs: Vec::new(),
        screened_left_out: Vec::new(),
        designated_left_out: Vec::new(),
    };
    let Some(al) = al else {
        return out;
    };
    let q_is_short = q.tokens.len() <= c.tokens.len();
    let (short, long) = if q_is_short { (q, c) } else { (c, q) };
    let token = |n: &NormalName, i: usize| n.tokens.get(i).cloned().unwrap_or_default();
    for (i, partner) in al.partners.iter().enumerate() {
        let sim = percent(al.sims.get(i).copied().unwrap_or(0.0));
        let other = match *partner {
            Partner::None => None,
            Partner::One(j) => Some(token(long, j)),
            Partner::Run(x, y) => Some(format!("{} {}", token(long, x), token(long, y))),
        };
        match (other, q_is_short) {
            (Some(other), true) => out.pairs.push(TokenPair {
                screened: token(short, i),
                designated: other,
                similarity: sim,
            }),
            (Some(other), false) => out.pairs.push(TokenPair {
                screened: other,
                designated: token(short, i),
                similarity: sim,
            }),
            (None, true) => out.screened_left_out.push(token(short, i)),
            (None, false) => out.designated_left_out.push(token(short, i)),
        }
    }
    for (j, used) in al.used_long.iter().enumerate() {
        if !used {
            if q_is_short {
                out.designated_left_out.push(token(long, j));
            } else {
                out.screened_left_out.push(token(long, j));
            }
        }
    }
    out
}

/// [`compare`], with the alignment it scored (none for an empty name).
fn compare_aligned(
    q: &NormalName,
    c: &NormalName,
    kind: NameKind,
) -> (Comparison, Option<Alignment>) {
    if q.is_empty() || c.is_empty() {
        return (Comparison { score: 0.0 }, None);
    }
    let (short, long) = if q.tokens.len() <= c.tokens.len() {
        (q, c)
    } else {
        (c, q)
    };
    let al = align_tokens(short, long);
    let (sims, used, family_left) = (&al.sims, al.used, al.family_left);
    // Initials alone do not make a match.
    let full_matches = full_matches(short, sims);
    let mut score = aligned_score(sims);
    // Three tokens or more, every one paired closely: the agreement of so
    // many outweighs one weaker pair (a one-letter skeleton, `علي` / `Ali`).
    if short.tokens.len() >= 3 && sims.iter().all(|&s| s >= 0.85) {
        score = score.max(sims.iter().sum::<f64>() / sims.len() as f64);
    }
    score = penalise_unmatched_tokens(score, short, long, used, kind);
    // A family name of the designated name left out: another person of the
    // same given names. (Never the screened name's: a comma typed by the
    // customer must not lower their own score.)
    let designated_is_long = q.tokens.len() <= c.tokens.len();
    if kind != NameKind::Organization && designated_is_long {
        score -= FAMILY_LEFT_OUT * family_left as f64;
        // Its first given name left out, when the name says which it is
        // (`Davide Ferrara` is not `FERRARI, Sergio David`): a middle name
        // goes unwritten, a first name rarely.
        if al.first_given_left {
            score -= FIRST_GIVEN_LEFT_OUT;
        }
    }
    if full_matches == 0 {
        score = score.min(0.5);
    }
    score = whole_name_bonus(score, q, c);
    // Han characters or kana against letters: the reading is one of many.
    if q.has(Script::Ideographic) != c.has(Script::Ideographic) {
        score = score.min(IDEOGRAPHIC_CAP);
    }
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
    (
        Comparison {
            score: score.clamp(0.0, 1.0),
        },
        Some(al),
    )
}

/// What a token of the shorter name was paired with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Partner {
    /// Nothing close enough.
    None,
    /// One token of the longer name.
    One(usize),
    /// Two tokens of the longer name written as one.
    Run(usize, usize),
}

/// How the tokens of two names were paired.
struct Alignment {
    /// Similarity of each token of `short` to its partner (0.0 if none).
    sims: Vec<f64>,
    /// The partner of each token of `short`.
    partners: Vec<Partner>,
    /// Which tokens of `long` were paired.
    used_long: Vec<bool>,
    /// How many tokens of `long` were paired.
    used: usize,
    /// How many of `long`'s family names were left unpaired.
    family_left: u32,
    /// Whether `long`'s first given name was left unpaired.
    first_given_left: bool,
}

/// Pairs each token of `short` with a token of `long`: greedy best-first
/// alignment on the similarity matrix (similarities below 0.7 never pair).
/// A token of `short` left weak is then tried against two tokens of `long`
/// run together (`Arnoldolobo` / `Arnoldo Lobo`, `Pa lacios` / `Palacios`
/// the other way round).
#[inline]
fn align_tokens(short: &NormalName, long: &NormalName) -> Alignment {
    let mut pairs: Vec<(f64, usize, usize)> =
        Vec::with_capacity(short.tokens.len() * long.tokens.len());
    for i in 0..short.tokens.len() {
        for j in 0..long.tokens.len() {
            let s = pair_similarity(short, i, long, j);
            if s >= 0.7 {
                pairs.push((s, i, j));
            }
        }
    }
    pairs.sort_by(|x, y| y.0.total_cmp(&x.0));
    let mut a = Alignment {
        sims: vec![0.0; short.tokens.len()],
        partners: vec![Partner::None; short.tokens.len()],
        used_long: vec![false; long.tokens.len()],
        used: 0,
        family_left: 0,
        first_given_left: false,
    };
    for (s, i, j) in pairs {
        if a.partners.get(i) == Some(&Partner::None)
            && a.used_long.get(j) == Some(&false)
            && let (Some(p), Some(ul), Some(slot)) = (
                a.partners.get_mut(i),
                a.used_long.get_mut(j),
                a.sims.get_mut(i),
            )
        {
            *p = Partner::One(j);
            *ul = true;
            *slot = s;
            a.used += 1;
        }
    }
    // Runs are looked for in names of a few tokens (the search is quadratic
    // in the longer name's tokens).
    if long.tokens.len() > short.tokens.len()
        && long.tokens.len() <= MAX_RUN_TOKENS
        && a.sims.iter().any(|&s| s < 0.9)
    {
        pair_runs_together(short, long, &mut a);
    }
    let family_left = a
        .used_long
        .iter()
        .take(64)
        .enumerate()
        .filter(|&(j, used)| !used && long.family & (1 << j) != 0)
        .count();
    a.family_left = u32::try_from(family_left).unwrap_or(u32::MAX);
    // The first given name (the first token after the family names of a
    // name written `FAMILY, Given`).
    a.first_given_left = long.family != 0
        && (0..long.tokens.len().min(64))
            .find(|&j| long.family & (1 << j) == 0)
            .is_some_and(|j| a.used_long.get(j) == Some(&false));
    a
}

/// For each weak token of `short` (written in Latin-like letters), the best
/// pair of two tokens of `long` written as one, when it beats the token's
/// present pair; the tokens of `long` it takes are marked used. Returns how
/// many more tokens of `long` were used.
fn pair_runs_together(short: &NormalName, long: &NormalName, al: &mut Alignment) {
    for i in 0..short.tokens.len() {
        let (Some(a), Some(&slot)) = (short.tokens.get(i), al.sims.get(i)) else {
            continue;
        };
        if slot >= 0.9 {
            continue;
        }
        // The long token it was paired with, if any, is free to be one half.
        let current = match al.partners.get(i) {
            Some(Partner::One(j)) => Some(*j),
            _ => None,
        };
        let free = |j: usize| al.used_long.get(j) == Some(&false) || Some(j) == current;
        let best = if long.has_arabic() || short.scripts.get(i) == Some(&Script::Arabic) {
            // `Abdullah` / `عبد الله`, `عبدالحليم` / `Abd Halim`: by
            // skeletons, the two in their order.
            arabic_run(short, i, long, &free).map(|(s, x)| (s, x, x + 1))
        } else {
            latin_run(a, long, &free)
        };
        let Some((s, x, y)) = best.filter(|&(s, _, _)| s > slot) else {
            continue;
        };
        // The pair it had is given back, then the two of the run are taken.
        if let Some(j) = current
            && let Some(u) = al.used_long.get_mut(j)
        {
            *u = false;
            al.used -= 1;
        }
        for j in [x, y] {
            if let Some(u) = al.used_long.get_mut(j) {
                if !*u {
                    al.used += 1;
                }
                *u = true;
            }
        }
        if let Some(sl) = al.sims.get_mut(i) {
            *sl = s;
        }
        if let Some(p) = al.partners.get_mut(i) {
            *p = Partner::Run(x, y);
        }
    }
}

/// The best two free tokens of `long` that, written as one, spell `a`
/// (`Arnoldolobo` / `Arnoldo Lobo`): their similarity (0.85 or more) and
/// positions.
fn latin_run(
    a: &str,
    long: &NormalName,
    free: &impl Fn(usize) -> bool,
) -> Option<(f64, usize, usize)> {
    if a.len() < 5 {
        return None;
    }
    let first = a.as_bytes().first();
    let fits = |x: &String, y: &String| {
        x.as_bytes().first() == first
            && x.len() + y.len() + 2 >= a.len()
            && a.len() + 2 >= x.len() + y.len()
    };
    let ka = phonetic_key(a);
    let mut best: Option<(f64, usize, usize)> = None;
    for (x, tx) in long.tokens.iter().enumerate().filter(|&(x, _)| free(x)) {
        for (y, ty) in long.tokens.iter().enumerate() {
            if y == x || !free(y) || !fits(tx, ty) {
                continue;
            }
            let run = format!("{tx}{ty}");
            let s = token_similarity(a, &ka, &run, &phonetic_key(&run));
            if best.is_none_or(|(b, _, _)| s > b) {
                best = Some((s, x, y));
            }
        }
    }
    best.filter(|&(s, _, _)| s >= 0.85)
}

/// The best two adjacent tokens of `long`, written in the other script than
/// token `i` of `short` (one side Arabic), whose skeletons run together are
/// its skeleton: their similarity and the first one's position.
fn arabic_run(
    short: &NormalName,
    i: usize,
    long: &NormalName,
    free: &impl Fn(usize) -> bool,
) -> Option<(f64, usize)> {
    // A token's skeleton as compared across the two scripts.
    let key_of = |n: &NormalName, at: usize| -> Option<String> {
        match n.scripts.get(at)? {
            Script::Arabic => n.keys.get(at).cloned(),
            _ => n.tokens.get(at).map(|t| arabic_comparable_key(t)),
        }
    };
    let arabic = short.scripts.get(i) == Some(&Script::Arabic);
    // Skeletons of fewer than three letters are shared by too many names,
    // unless the token is long enough to say more than its skeleton
    // (`Khayrallah`, `rl`, is `خير الله`; its letters and `h` sounds are
    // checked below).
    let long_token = short.tokens.get(i).is_some_and(|t| t.chars().count() >= 8);
    let key = key_of(short, i).filter(|k| k.len() >= 3 || (k.len() == 2 && long_token))?;
    let mut best: Option<(f64, usize)> = None;
    for x in 0..long.keys.len().saturating_sub(1) {
        let other_script = |at: usize| (long.scripts.get(at) == Some(&Script::Arabic)) != arabic;
        let broken = x < 64 && long.run_breaks & (1 << x) != 0;
        if broken || !free(x) || !free(x + 1) || !other_script(x) || !other_script(x + 1) {
            continue;
        }
        let (Some(kx), Some(ky)) = (key_of(long, x), key_of(long, x + 1)) else {
            continue;
        };
        // A letter ending one and starting the other is heard once; the
        // article written on the second may be heard (`عبد الرحمن`,
        // `Abdelrahman`) or not (`Abdurrahman`).
        // (Not when the first ends with a long vowel: `ولى الله`, `Waliullah`.)
        let vowel_end = long
            .arabic_marks
            .iter()
            .find(|(p, _)| *p == x)
            .is_some_and(|(_, m)| m.vowels.last().is_some_and(|&v| v != 0));
        let joined = |article: bool| -> String {
            let parts = [kx.as_str()]
                .into_iter()
                .chain(article.then_some("l"))
                .chain([ky.as_str()]);
            if vowel_end {
                parts.collect()
            } else {
                run_together(parts)
            }
        };
        let articled = x + 1 < 64 && long.articled & (1 << (x + 1)) != 0;
        let s = scripts::skeleton_similarity(&key, &joined(false)).max(if articled {
            scripts::skeleton_similarity(&key, &joined(true))
        } else {
            0.0
        });
        if s >= 0.88 && best.is_none_or(|(b, _)| s > b) && run_agrees(short, i, long, x, arabic) {
            best = Some((s, x));
        }
    }
    best
}

/// Whether token `i` of `short` and tokens `x`, `x + 1` of `long` run
/// together (the Arabic-script side `short`'s when `arabic`) agree beyond
/// their skeletons: the letters each writes, how the first starts, the `h`
/// sounds (see [`arabic_agrees_with_latin`], [`sounds_agree`]).
fn run_agrees(short: &NormalName, i: usize, long: &NormalName, x: usize, arabic: bool) -> bool {
    fn text(n: &NormalName, at: usize) -> &str {
        n.tokens.get(at).map_or("", String::as_str)
    }
    let run = format!("{}{}", text(long, x), text(long, x + 1));
    let (a, at, arabic_text, latin) = if arabic {
        (short, i, text(short, i), run.as_str())
    } else {
        (long, x, run.as_str(), text(short, i))
    };
    let marks_at = |at: usize| {
        a.arabic_marks
            .iter()
            .find(|(p, _)| *p == at)
            .map(|(_, m)| m)
    };
    let mut marks = marks_at(at).cloned().unwrap_or_default();
    if !arabic && let Some(second) = marks_at(at + 1) {
        marks.letters.extend(&second.letters);
        // Every letter of the first is inside the run.
        marks.inner_h = marks.any_h || second.inner_h;
        marks.any_h |= second.any_h;
        marks.kh |= second.kh;
        marks.feminine = second.feminine;
    }
    let articled = at < 64 && a.articled & (1 << at) != 0;
    arabic_agrees_with_latin(&marks, articled, latin)
        && sounds_agree(arabic_text, Some(&marks), latin)
}

/// Skeletons run together, a letter ending one and starting the next heard
/// once (`vv` and `l` are `vvl`, `mt` and `t` are `mt`).
fn run_together<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for part in parts {
        let mut chars = part.chars();
        if let (Some(first), Some(last)) = (part.chars().next(), out.chars().last())
            && first == last
        {
            chars.next();
        }
        out.extend(chars);
    }
    out
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
    used: usize,
    kind: NameKind,
) -> f64 {
    let extra = long
        .tokens
        .len()
        .saturating_sub(used.max(short.tokens.len()));
    let per_extra = match kind {
        NameKind::Person => 0.025,
        NameKind::Organization => 0.06,
        NameKind::Unknown => 0.04,
    };
    // One name left out is common (a middle name); more is less likely.
    score -= per_extra * extra as f64 + 0.025 * extra.saturating_sub(1) as f64;
    // A syllable of a Chinese, Japanese or Korean given name is not a middle name.
    if extra > 0
        && long
            .scripts
            .iter()
            .any(|s| matches!(s, Script::Ideographic | Script::Other))
    {
        score -= 0.08;
    }
    // One token against several, unless it is two of them run together.
    if short.tokens.len() == 1 && long.tokens.len() >= 2 && used < 2 {
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
        // In Latin or Cyrillic letters, which write vowels and spaces, the
        // tokens must agree already (`Sole Messina` is not `SALAMI,
        // Hossein`); Arabic omits vowels, Hangul is read as one word.
        && (q.has_arabic()
            || c.has_arabic()
            || q.has(Script::Other)
            || c.has(Script::Other)
            || (score >= 0.6 && jaro_winkler(&q.joined, &c.joined) >= 0.8))
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
    let (Some((tq, kq, sq)), Some((tc, kc, sc))) =
        (q.patronymic_head.as_deref(), c.patronymic_head.as_deref())
    else {
        return false;
    };
    let close = match (sq, sc) {
        (Script::Arabic, Script::Arabic) => scripts::skeleton_similarity(kq, kc) >= 0.85,
        // One in Arabic script: by skeletons (`بلال بن مروان`, `Bilal bin Marwan`).
        (Script::Arabic, _) => scripts::skeleton_similarity(kq, &arabic_comparable_key(tc)) >= 0.85,
        (_, Script::Arabic) => scripts::skeleton_similarity(&arabic_comparable_key(tq), kc) >= 0.85,
        _ => token_similarity(tq, kq, tc, kc) >= 0.85,
    };
    !close
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
    fn a_comma_in_the_screened_name_changes_nothing() {
        let designated = "FAYAD, Saleh";
        assert_eq!(
            score("Fayad Junk, Saleh", designated, NameKind::Person),
            score("Fayad Junk Saleh", designated, NameKind::Person)
        );
    }

    #[test]
    fn explanations_pair_runs_and_list_what_was_left_out() {
        let e = explain(
            &NormalName::new("Olgaplaksina"),
            &NormalName::new("PLAKSINA, Olga"),
            NameKind::Person,
        );
        assert!(e.name_score >= 90, "{e:?}");
        assert_eq!(e.pairs.len(), 1);
        assert_eq!(e.pairs[0].screened, "olgaplaksina");
        assert_eq!(e.pairs[0].designated, "olga plaksina");
        assert!(e.designated_left_out.is_empty(), "{e:?}");
        let e = explain(
            &NormalName::new("Manuel Ramos"),
            &NormalName::new("HUERTA RAMOS, Manuel"),
            NameKind::Person,
        );
        assert_eq!(e.designated_left_out, ["huerta"]);
        assert!(e.name_score < 90, "{e:?}");
        // عبد الرحمن written apart is still one name; فداء آل علي is two.
        let one = score("عبد الرحمن", "Abdulrahman", NameKind::Person);
        assert!(one >= 90, "{one}");
        let two = score("فداء آل علي", "ABDALLAH, Abu", NameKind::Person);
        assert!(two < 90, "{two}");
        // `الله` written apart after a short skeleton (`خير`, `عطاء`) is one
        // name with it (see `arabic_names_against_their_latin_spellings`),
        // not two other names of the same skeletons.
        let s = score("خير الله", "Khalil Rahman", NameKind::Person);
        assert!(s < 90, "{s}");
    }

    #[test]
    fn arabic_names_against_their_latin_spellings() {
        for (arabic, latin) in [
            ("الأزهر", "AL-AZHAR"),
            ("عبد العزيز", "Abdul Aziz"),
            ("خفاجي", "Khafaji"),
            ("حويش", "Huwaysh"),
            ("الراوي", "AL-RAWI"),
            // `الله` written apart, after a first part whose skeleton is
            // short, against its Latin spelling run together.
            ("خير الله", "KHAYRALLAH"),
            ("خير الله", "Khairullah"),
            ("عطاء الله", "Ataullah"),
            ("ساجدة خير الله طلفاح", "SAJIDA KHAYRALLAH TILFAH"),
        ] {
            let s = score(arabic, latin, NameKind::Person);
            assert!(s >= 90, "{arabic} / {latin}: {s}");
        }
        // Latin to Latin, `Abdul` is `Abd al-`, written apart or not.
        assert!(score("Abdul Aziz", "ABD AL-AZIZ", NameKind::Person) >= 95);
        assert!(score("Abdulaziz Haqqani", "HAQQANI, Abdul Aziz", NameKind::Person) >= 90);
        assert_eq!(NormalName::new("Abdullah").tokens, ["abdullah"]);
    }

    #[test]
    fn arabic_names_of_the_un_list_against_their_latin_names() {
        for (arabic, latin) in [
            // `بن` on both sides: the patronymic heads are one name.
            ("بلال بن مروان", "BILAL BIN MARWAN"),
            // `عبد` written onto the article-bearing name after it.
            ("عبدالرحمان زاهد", "Abdul Rehman Zahid"),
            ("عبدالمنان نیازی", "Abdul Manan Niazi"),
            // Two letters of one class side by side: `فواز` is `Fawaz`.
            (
                "خالد عبد الرحمن حمد الفواز",
                "KHALID ABD AL-RAHMAN HAMD AL-FAWAZ",
            ),
            // No consonant written: the first letter, the vowels heard.
            ("يحيى حقانی", "YAHYA HAQQANI"),
            // `و` heard as `w`.
            ("انور ناصر عبدالله العولقي", "Anwar Nasser Abdulla Aulaqi"),
            // `ولد` is `ould`, a particle.
            ("حماده ولد محمد الخيري", "HAMADA OULD MOHAMED EL KHAIRY"),
            // Two names run together, letters doubled inside one kept.
            ("حبیب الله رشاد", "HABIBULLAH RESHAD"),
            // Persian and colloquial readings of `ض`, `ث`, `ظ`.
            ("فضل رحيم", "Fazil Rahim"),
            ("نور محمد ثاقب", "NOOR MOHAMMAD SAQIB"),
            ("رشيد طعان كاظم", "Rashid Taan Kathim"),
            // A French `ou` before a vowel is `و`.
            ("يحيى جوادي", "YAHIA DJOUADI"),
            // `ه` after `ز` is an `h`, not the `zh` of a transliteration.
            ("محمد زاهد", "MOHAMMAD ZAHID"),
            // A Latin `sh` may be `س` and `ح` (`Ishak`).
            ("عبدالمنان محمد اسحاق", "ABDUL MANAN MOHAMMAD ISHAK"),
            // An alef carrying an initial cluster (`Stanekzai`).
            (
                "شیر محمد عباس استانکزی پادشاه خان",
                "SHER MOHAMMAD ABBAS STANEKZAI PADSHAH KHAN",
            ),
            // A long vowel ends the first of two names run together.
            ("نذیر الله حنفى ولى الله", "NAZIRULLAH HANAFI WALIULLAH"),
            // `و` written onto an article-bearing word.
            (
                "جماعة نصرة الإسلام والمسلمين",
                "JAMA'A NUSRAT UL-ISLAM WA AL-MUSLIMIN",
            ),
        ] {
            let s = score(arabic, latin, NameKind::Person);
            assert!(s >= 90, "{arabic} / {latin}: {s}");
        }
    }

    #[test]
    fn arabic_letters_the_skeleton_merges_still_tell_names_apart() {
        for (arabic, latin) in [
            // A vowel first against a consonant first.
            ("بتول آل معيض", "ABDOLLAHI, Hamed"),
            // `ب` is not `v`, `ف` is not `b`.
            ("آلاء حنبولي", "NAVAI, Ali"),
            ("آلاء الجابر", "JA'FAR, Abu"),
            // `ظ` is `z`, not `s`; `ش` is `sh`, not `z`.
            ("جودي آل بن ظافر", "SAFARI, Mohammad Javad"),
            ("روعة الشايع", "HIJAZI, Riad"),
            // A final `ة` is heard as `a`: `عالية` is not `Ali`.
            ("عالية آل صفوان", "AL SIFRANI, Ali"),
            // A Latin `kh` is `خ`.
            ("ربى آل علي", "KHAROUBI, Ali"),
            // An `h` the Arabic writes, across two names run together.
            ("تاليا أحلام مهنا", "AL-ALMANI, Abu Talha"),
            // An `h` inside the Arabic is heard inside the Latin, and the
            // other way round.
            ("آلاء حجار", "ABOU DJARRAH"),
            ("جنى كانو", "CANO, Jhonny"),
            ("ماذى بن لادن", "BIN LADEN, Hamza"),
            // A name whose letters spell a particle is a name (`آلاء`).
            ("آلاء آل سعود", "ABU ZUBAYDAH"),
            // `ch` against Arabic is `ش` or `چ`, not `ك`.
            ("كوثر آل بن ظافر", "CHAUDHRY, Zafar Iqbal"),
        ] {
            let s = score(arabic, latin, NameKind::Person);
            assert!(s < 90, "{arabic} / {latin}: {s}");
        }
    }

    #[test]
    fn a_first_given_name_left_out_is_a_near_miss_a_middle_one_is_not() {
        let p = NameKind::Person;
        assert!(score("Sergio Ferrara", "FERRARI, Sergio David", p) >= 90);
        let first_left_out = score("Davide Ferrara", "FERRARI, Sergio David", p);
        assert!((70..90).contains(&first_left_out), "{first_left_out}");
        // Without a comma the list does not say which name is the first
        // given one.
        assert!(score("Davide Ferrari", "Sergio David Ferrari", p) >= 90);
    }

    #[test]
    fn a_whole_name_skeleton_in_common_is_not_a_match_by_itself() {
        let p = NameKind::Person;
        // `slmsn` both, in letters that have nothing else in common.
        assert!(score("Sole Messina", "SALAMI, Hossein", p) < 70);
        // Cyrillic read to the skeleton `ft klf`, as the Latin is.
        assert!(score("Vita Klave", "Фуад Гулієв", p) < 70);
        assert!(score("Fuad Guliyev", "Фуад Гулієв", p) >= 90);
        // The same letters spaced otherwise still are.
        assert!(
            score(
                "Good Will Trading",
                "Goodwill Trading",
                NameKind::Organization
            ) >= 90
        );
    }

    #[test]
    fn an_initial_al_is_read_as_the_article_or_as_the_names_own_letters() {
        let p = NameKind::Person;
        // A foreign name written as heard.
        assert!(score("الينا منوز مجي", "MUNOZ MEJIA, Eliana", p) >= 90);
        // The article, as before.
        assert!(score("صدام حسين التكريتي", "Saddam Hussein al-Tikriti", p) >= 90);
    }

    #[test]
    fn foreign_sounds_written_as_heard_in_arabic_script() {
        let p = NameKind::Person;
        // `تش` is a `ch`, in a name and in `-vich`.
        assert!(score("تشون هوان ري", "RI, Chun Hwan", p) >= 90);
        assert!(score("الكسندر الكسندروفيتش", "Alexander Alexandrovich", p) >= 90);
        // `ج` is the hard `g` of an Egyptian name, against a Latin `g` only.
        assert!(score("جمال عبد الناصر", "Gamal Abdel Nasser", p) >= 90);
        assert!(score("جنى آل علي", "KONY, Ali", p) < 90);
    }

    #[test]
    fn a_mistyped_patronymic_is_still_one_and_a_cyrillic_title_is_a_title() {
        let p = NameKind::Person;
        assert!(
            score(
                "Anatoliy Vladimirovicyh Chepiga",
                "CHEPIGA, Anatoliy Vladimirovich",
                p
            ) >= 90
        );
        // A father's name is still not a family name.
        assert!(score("Ivan Petrovich", "Ivan Petrov", p) < 90);
        // A feminine patronymic is one letter from a family name, and is not one.
        assert!(score("Anna Ivanovna", "IVANOVA, Anna", p) < 90);
        // `Гаджи` is a given name.
        assert!(score("Гаджи Магомедов", "MAGOMEDOV, Gadzhi", p) >= 90);
        // `Хаджджи` read the second way is the title `hajji`.
        let n = NormalName::new("Мугаммад Фаузи Хаджджи");
        assert_eq!(n.particles, ["hajji"]);
        assert!(score("Мугаммад Фаузи Хаджджи", "HAJJI, Muhammad Fawzi", p) >= 90);
    }

    #[test]
    fn short_tokens_one_sound_apart_and_abdul_as_one_word() {
        let p = NameKind::Person;
        assert!(score("Tun Dun Naung", "NAUNG, Tun Tun", p) >= 90);
        assert!(score("Kim Jong-uun", "Kim Jong-un", p) >= 90);
        // A vowel changed is another syllable.
        assert!(score("Lu Fang", "LI, Fang", p) < 90);
        assert!(score("Ra Je-Son", "RI, Je-Son", p) < 90);
        // Another sound is another name.
        assert!(score("Pyong Chan Lim", "KIM, Pyong Chan", p) < 90);
        assert!(score("ابدول جليل ملاح", "MALLAH, Abdul Jalil", p) >= 90);
        // `Abdul` mistyped is still `Abdul`.
        assert!(score("Abdlu Hadi", "HADI, Abdul", p) >= 90);
        assert!(
            score(
                "Adel Aboul Jalil Ibrahim",
                "BATARJEE, Adel Abdul Jalil Ibrahim",
                p
            ) >= 85
        );
    }

    #[test]
    fn only_the_first_words_of_a_very_long_name_are_compared() {
        let long = ["جمال", "نجم", "جبر", "Ali", "Hassan"].repeat(60).join(" ");
        let n = NormalName::new(&long);
        assert!(
            n.tokens.len() + n.particles.len() <= MAX_NAME_TOKENS,
            "{}",
            n.tokens.len()
        );
        // Its exact key is still the whole name's.
        assert_eq!(n.exact, exact_key(&long));
    }

    #[test]
    fn digits_written_for_letters_are_read_as_letters() {
        assert_eq!(NormalName::new("Ig0r Sech1n").tokens, ["igor", "sechin"]);
        assert!(score("I9or Sech1n", "Igor Sechin", NameKind::Person) >= 95);
        // Numbers, ordinals and codes are left as they are.
        assert_eq!(unleet("1st".into()), "1st");
        assert_eq!(unleet("44th".into()), "44th");
        assert_eq!(unleet("2004".into()), "2004");
        assert_eq!(unleet("a1234".into()), "a1234");
    }

    #[test]
    fn a_soft_c_is_an_s() {
        assert_eq!(phonetic_key("francisco"), phonetic_key("fransisco"));
        assert!(score("Франсиссо Диаз", "DIAZ, Francisco", NameKind::Person) >= 90);
        assert_ne!(phonetic_key("carlos"), phonetic_key("sarlos"));
    }

    #[test]
    fn one_letter_changed_in_a_short_name_among_others_matches() {
        assert!(score("Jong Sik Kin", "KIM, Jong Sik", NameKind::Person) >= 90);
        assert!(score("Kin", "Kim", NameKind::Person) < 90);
    }

    #[test]
    fn swapped_and_changed_letters_are_typos() {
        let sim = |a: &str, b: &str| token_similarity(a, &phonetic_key(a), b, &phonetic_key(b));
        assert!(sim("kmi", "kim") >= 0.9, "{}", sim("kmi", "kim"));
        assert!(sim("ourat", "murat") >= 0.9, "{}", sim("ourat", "murat"));
        assert!(sim("kim", "kia") < 0.9, "three letters: another name");
        assert!(!swapped_neighbours("abc", "abc"));
        assert!(!swapped_neighbours("abcd", "badc"), "two swaps");
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
