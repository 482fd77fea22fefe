//! Names written in other scripts, read the way their Latin spellings are.
//!
//! One transliteration is not enough: the same Arabic name is `Hussein`,
//! `Husayn` or `Hossein` in Latin letters, because Arabic does not write short
//! vowels; a Russian clerk writes the `h` of a foreign name as `г`, so
//! `Мугаммад` is `Muhammad`. So a token keeps what its script says about it:
//!
//! - **Arabic script** (Arabic, Persian, Urdu letters): a consonant skeleton
//!   built from the letters themselves, in the alphabet of
//!   [`crate::names::phonetic_key`] (letter classes: `ق`/`ك`/`غ` are `k`,
//!   `ح`/`ه`/`خ`/`ع`/`ء` and the long vowels are silent, `ة` is silent, `و` is
//!   a consonant only at the start of a word or before `ا`), compared with the
//!   Latin names' skeletons; the article `ال` is a particle, as `al-` is.
//! - **Cyrillic**: the standard transliteration, and a second reading where
//!   `г` is `h` (`Гасан` is `Hasan`); the equality of skeletons counts even
//!   when the spellings differ (`Джойс` / `Joyce`).
//! - Other scripts go through the general transliteration.

/// The script a token was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Script {
    /// Latin letters, with or without diacritics (and digits).
    #[default]
    Latin,
    /// Arabic script (Arabic, Persian, Urdu).
    Arabic,
    /// Cyrillic.
    Cyrillic,
    /// Han characters and Japanese kana, transliterated by their Mandarin
    /// reading: many characters share one reading, and a Japanese name's
    /// reading is another, so the Latin letters say little of the name.
    Ideographic,
    /// Anything else (Greek, Hebrew, Hangul, …), transliterated.
    Other,
}

impl Script {
    /// The script most letters of `word` are written in.
    pub fn of(word: &str) -> Self {
        let (mut arabic, mut cyrillic, mut latin, mut ideographic, mut other) = (0, 0, 0, 0, 0);
        for c in word.chars().filter(|c| c.is_alphanumeric()) {
            match c {
                c if is_arabic(c) => arabic += 1,
                '\u{0400}'..='\u{04FF}' | '\u{0500}'..='\u{052F}' => cyrillic += 1,
                c if c.is_ascii() || ('\u{00C0}'..='\u{024F}').contains(&c) => latin += 1,
                '\u{3040}'..='\u{30FF}'
                | '\u{3400}'..='\u{4DBF}'
                | '\u{4E00}'..='\u{9FFF}'
                | '\u{F900}'..='\u{FAFF}' => ideographic += 1,
                _ => other += 1,
            }
        }
        let most = arabic.max(cyrillic).max(latin).max(ideographic).max(other);
        if most == 0 || latin == most {
            Self::Latin
        } else if arabic == most {
            Self::Arabic
        } else if cyrillic == most {
            Self::Cyrillic
        } else if ideographic == most {
            Self::Ideographic
        } else {
            Self::Other
        }
    }
}

fn is_arabic(c: char) -> bool {
    matches!(c, '\u{0600}'..='\u{06FF}' | '\u{0750}'..='\u{077F}' | '\u{08A0}'..='\u{08FF}' | '\u{FB50}'..='\u{FDFF}' | '\u{FE70}'..='\u{FEFF}')
}

/// The letters of an Arabic-script word, without vowel marks, tatweel or
/// anything else, in their isolated forms (NFKC folds presentation forms).
pub fn arabic_letters(word: &str) -> Vec<char> {
    use unicode_normalization::UnicodeNormalization as _;
    word.nfkc()
        .filter(|&c| {
            is_arabic(c)
                && c.is_alphabetic()
                && !matches!(c, '\u{064B}'..='\u{065F}' | '\u{0670}' | '\u{0640}')
        })
        .collect()
}

/// The Latin particle an Arabic-script word (its [`arabic_letters`]) is
/// (`ابو` is `abu`, `بن` is `bin`), if it is one.
pub fn arabic_particle(letters: &[char]) -> Option<&'static str> {
    let letters: String = letters.iter().collect();
    match letters.as_str() {
        "ابو" | "أبو" | "ابي" | "أبي" | "ابا" | "أبا" => Some("abu"),
        "بن" => Some("bin"),
        "ابن" | "إبن" => Some("ibn"),
        "بنت" => Some("bint"),
        "ولد" => Some("ould"),
        "ب" => Some("bi"),
        // `آل سعود`, the family of Saud.
        "آل" => Some("al"),
        "و" => Some("wa"),
        "حاجي" | "حاجی" | "حاجى" => Some("haji"),
        _ => None,
    }
}

/// An Arabic-script word's letters split off its article: `التكريتي` is
/// `ال` + `تكريتي`. Returns whether it had one, and the rest of the word.
pub fn split_article(letters: &[char]) -> (bool, &[char]) {
    match letters {
        // `الله` is a name (`Allah`, in `عبد الله`), not the article on `له`.
        ['ا', 'ل', 'ل', 'ه'] => (false, letters),
        ['ا', 'ل', rest @ ..] if rest.len() >= 2 => (true, rest),
        _ => (false, letters),
    }
}

/// How many letters of a word are `عبد` or `ابو` written onto the
/// article-bearing name that follows it (`عبدالرحمن` is `عبد الرحمن`,
/// `ابواليزيد` is `ابو اليزيد`), or `و`, `ب` onto an article-bearing word
/// (`والجهاد`): the word is the two, apart.
pub fn split_glued_head(letters: &[char]) -> Option<usize> {
    let head = match letters {
        ['ع', 'ب', 'د', ..] => 3,
        ['ا' | 'أ', 'ب', 'و', ..] => 3,
        // `و` (and) and `ب` (by) written onto an article-bearing word:
        // `والجهاد` is `و الجهاد`, `wal-Jihad`.
        ['و' | 'ب', 'ا', 'ل', ..] => 1,
        _ => return None,
    };
    match letters.get(head..)? {
        // `عبدالله` is one name, as `Abdullah` is.
        ['ا', 'ل', 'ل', 'ه'] => None,
        ['ا', 'ل', tail @ ..] if tail.len() >= 2 => Some(head),
        _ => None,
    }
}

/// A long `a` (`ا`, `ى`), in [`ArabicMarks::vowels`].
pub const VOWEL_A: u8 = 1;
/// A long `i` (`ي`).
pub const VOWEL_I: u8 = 2;
/// A long `u` (`و`).
pub const VOWEL_U: u8 = 4;

/// Whether the long vowels an Arabic-script word writes (`written`, one
/// class set per gap of its skeleton) are heard in a Latin spelling with the
/// same skeleton (`heard`, from [`crate::names::vowel_gaps`]).
pub fn vowels_agree(written: &[u8], heard: &[u8]) -> bool {
    written.len() != heard.len()
        || written
            .iter()
            .zip(heard)
            .all(|(&w, &h)| w == 0 || w & h != 0)
}

/// How a word starts, as far as a spelling in another script can tell: a
/// vowel (`ا`, `ع`, `Omar`), a consonant, or either (`و` is `w` or `u`, `ي`
/// is `y` or `i`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Initial {
    /// A vowel, or the letters that carry one (alef, hamza, `ʿayn`).
    Vowel,
    /// A consonant.
    Consonant,
    /// Either.
    #[default]
    Either,
}

impl Initial {
    /// Whether two words could start with the same sound.
    pub fn agrees(self, other: Self) -> bool {
        self == Self::Either || other == Self::Either || self == other
    }

    /// How a Latin token starts (`y` and `w` are either).
    pub fn of_latin(token: &str) -> Self {
        match token.as_bytes().first() {
            Some(b'a' | b'e' | b'i' | b'o' | b'u') => Self::Vowel,
            Some(b'y' | b'w') | None => Self::Either,
            Some(_) => Self::Consonant,
        }
    }
}

/// Whether the letters behind the skeletons' `v`, `s` and `t` agree, one
/// by one: classes of one letter in the skeleton that Arabic keeps apart
/// (`b` `ب`, `f` `ف`, `w` `و`; `s` `س`, `z` `ز`, `x` the `sh` of `ش`; `d`
/// `د`, `t` `ت`; `*` a letter read two ways: `ث`, `ذ`, `ض`, `ظ`). A Latin
/// `v` is `f` or `w`, and `e` (a final `t`, a `th`) is `t` or `d`.
/// Sequences of different lengths are not compared.
pub fn letters_agree(arabic: &[u8], latin: &[u8]) -> bool {
    arabic.len() != latin.len()
        || arabic.iter().zip(latin).all(|(&a, &l)| {
            a == l
                || a == b'*'
                || (a == b'+' && matches!(l, b's' | b'x'))
                || (l == b'v' && matches!(a, b'f' | b'w'))
                || (l == b'e' && matches!(a, b'd' | b't'))
        })
}

/// What an Arabic-script word writes beyond its skeleton, checked against a
/// Latin spelling of the same skeleton.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ArabicMarks {
    /// The long vowels written before each consonant of the skeleton and
    /// after the last (`VOWEL_*` bits per gap).
    pub vowels: Vec<u8>,
    /// The letter behind each `v`, `s` and `t` of the skeleton (see
    /// [`letters_agree`]).
    pub letters: Vec<u8>,
    /// How the word starts.
    pub initial: Initial,
    /// Whether it ends in `ة`, heard as a final `a` (`Osama`, `أسامة`).
    pub feminine: bool,
    /// Whether an `h` sound (`ح`, `ه`, `خ`) is written before the last letter.
    pub inner_h: bool,
    /// Whether an `h` sound is written at all.
    pub any_h: bool,
    /// Whether `خ` is written.
    pub kh: bool,
}

/// An Arabic-script word as [`arabic_reading`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArabicReading {
    /// Its consonant skeleton ([`arabic_skeleton`]).
    pub key: String,
    /// What it writes beyond the skeleton.
    pub marks: ArabicMarks,
    /// Other skeletons it may be spelt by ([`arabic_other_skeletons`]).
    pub others: Vec<String>,
}

/// An Arabic-script word's letters ([`arabic_letters`]) read once: the
/// skeleton, what the word writes beyond it (the long vowels before each
/// consonant and after the last, a word-initial alef carrying any vowel and
/// not counted; the letter behind each `v`, `s` and `t`; how it starts; a
/// final `ة`; its `h` sounds), and the other skeletons it may be spelt by.
pub fn arabic_reading(letters: &[char]) -> ArabicReading {
    let h_sound = |c: &char| matches!(c, 'ح' | 'ه' | 'خ' | 'ہ' | 'ھ');
    let mut marks = ArabicMarks {
        vowels: Vec::new(),
        letters: Vec::new(),
        initial: match letters {
            // A Persian or Pashto alef before `s` and a consonant only
            // carries the cluster (`استانکزی`, `Stanekzai`).
            ['ا', 'س' | 'ش' | 'ص', c, ..] if !matches!(c, 'ا' | 'و' | 'ي' | 'ی' | 'ى') => {
                Initial::Either
            }
            ['ا' | 'أ' | 'إ' | 'آ' | 'ع' | 'ء' | 'ئ' | 'ؤ' | 'ى', ..] => Initial::Vowel,
            ['و' | 'ي' | 'ی', ..] | [] => Initial::Either,
            [_, ..] => Initial::Consonant,
        },
        feminine: letters.last() == Some(&'ة'),
        inner_h: letters.iter().rev().skip(1).any(h_sound),
        any_h: letters.iter().any(h_sound),
        kh: letters.contains(&'خ'),
    };
    // One gap before the first consonant, one more after each.
    let mut gaps = vec![0u8];
    let key = skeleton_of(letters, false, false, |step| match step {
        Step::Kept { c, next } => {
            gaps.push(0);
            marks.letters.extend(letter_behind(c, next));
        }
        Step::Silent { i, c, next } => {
            // The article's alef in a name ending in `الله` (`عبدالله`,
            // `Abdullah`) carries any vowel.
            let allah = letters.get(i..) == Some(&['ا', 'ل', 'ل', 'ه'][..]);
            let class = match c {
                'ا' if allah => 0,
                'ا' | 'آ' if i > 0 => VOWEL_A,
                // A final `ى` or Persian `ی` ends `Mustafa` and `Isa`
                // (`عیسی`) as well as `Ali` (`على`).
                'ى' | 'ی' if next.is_none() => VOWEL_A | VOWEL_I,
                'ى' => VOWEL_A,
                'ي' | 'ی' => VOWEL_I,
                'و' => VOWEL_U,
                _ => 0,
            };
            if let Some(gap) = gaps.last_mut() {
                *gap |= class;
            }
        }
    });
    // A skeleton of no consonant stands on the first letter (`يحيى`).
    gaps.resize(key.len() + 1, 0);
    marks.vowels = gaps;
    let others = other_skeletons(letters, &key);
    ArabicReading { key, marks, others }
}

/// The letter behind a `v`, `s` or `t` of the skeleton, as
/// [`letters_agree`] compares them.
fn letter_behind(c: char, next: Option<char>) -> Option<u8> {
    Some(match c {
        'ف' => b'f',
        'و' => b'w',
        'ب' | 'پ' => b'b',
        'ز' => b'z',
        // Before an `h`, a Latin `sh` may be the two (`اسحاق`, `Ishaq`).
        'س' | 'ص' if matches!(next, Some('ح' | 'ه' | 'ہ' | 'ھ')) => b'+',
        'س' | 'ص' => b's',
        'ش' | 'چ' => b'x',
        // Letters read two ways (`ض` is `d` in Arabic, `z` in Persian;
        // `ث` `t` or `s`): any.
        'ذ' | 'ض' | 'ث' | 'ظ' => b'*',
        'د' => b'd',
        'ت' | 'ط' => b't',
        _ => return None,
    })
}

/// The skeleton letter of an Arabic-script letter, `None` when silent.
fn consonant(c: char, i: usize, prev: Option<char>, next: Option<char>) -> Option<char> {
    Some(match c {
        'ب' | 'پ' | 'ف' => 'v',
        'ت' | 'ث' | 'د' | 'ذ' | 'ض' | 'ط' => 't',
        'ج' | 'ژ' => 'j',
        'ر' => 'r',
        'ز' | 'س' | 'ش' | 'ص' | 'ظ' => 's',
        'غ' | 'ق' | 'ك' | 'ک' | 'گ' => 'k',
        // `چ` is the `ch` of `Chaudhry`, as `ش` is the French `ch` of
        // `Achour`: one letter with `s` (see `names::arabic_comparable_key`).
        'چ' => 's',
        'ل' => 'l',
        'م' => 'm',
        'ن' => 'n',
        // `و` is `w` at the start of a word, before a long vowel (`حويش`,
        // `Huwaysh`) or after a long `a` (`راوي`, `Rawi`), a vowel elsewhere.
        'و' if i == 0 || matches!(next, Some('ا' | 'ى' | 'ة' | 'ي')) || prev == Some('ا') => {
            'v'
        }
        // Silent in the skeleton: `h` sounds, `ʿayn`, hamza, long vowels, tā' marbūṭa.
        _ => return None,
    })
}

/// The consonant skeleton of an Arabic-script word, in the alphabet of
/// [`crate::names::phonetic_key`]: `حسين` → `sn` (as `Hussein`), `صدام` → `stm`
/// (as `Saddam`), `إبراهيم` → `vrm` (as `Ibrahim`).
pub fn arabic_skeleton(word: &str) -> String {
    skeleton_of(&arabic_letters(word), false, false, |_| {})
}

/// A letter [`skeleton_of`] wrote into the skeleton, or passed over as
/// silent (a long vowel, an `h` sound, `ʿayn`).
enum Step {
    /// Written: the letter and the one after it.
    Kept { c: char, next: Option<char> },
    /// Silent: its position, the letter and the one after it.
    Silent {
        i: usize,
        c: char,
        next: Option<char>,
    },
}

/// The skeleton of an Arabic-script word's letters, telling `step` of each
/// letter written or passed over; `w_consonant` reads every `و` between
/// letters as the consonant `w` (`انور`, `Anwar`), `soft` reads `ث ذ ض` as
/// `s` and `ظ` as `t`.
fn skeleton_of(
    letters: &[char],
    w_consonant: bool,
    soft: bool,
    mut step: impl FnMut(Step),
) -> String {
    let mut out = String::with_capacity(letters.len());
    let mut last = '\0';
    for (i, &c) in letters.iter().enumerate() {
        let next = letters.get(i + 1).copied();
        let prev = i.checked_sub(1).and_then(|p| letters.get(p)).copied();
        let mapped = match consonant(c, i, prev, next) {
            None if w_consonant && c == 'و' && next.is_some() => Some('v'),
            // Persian and colloquial readings: `ث`, `ذ`, `ض` as `s`/`z`
            // (`Saqib`, `Zakir`, `Fazel`), `ظ` as `d`/`th` (`Hafed`, `Kathim`).
            Some(_) if soft && matches!(c, 'ث' | 'ذ' | 'ض') => Some('s'),
            Some(_) if soft && c == 'ظ' => Some('t'),
            m => m,
        };
        let Some(m) = mapped else {
            last = '\0';
            step(Step::Silent { i, c, next });
            continue;
        };
        // Two letters of one class side by side are both heard (`فواز`,
        // `Fawaz`): a short vowel the script does not write stands between.
        if m != last || prev != Some(c) {
            out.push(m);
            step(Step::Kept { c, next });
        }
        last = m;
    }
    if out.is_empty() {
        // No consonant written (`يحيى`, `حی`): the first letter stands for
        // the name, as a Latin spelling's first letter does.
        match letters.first() {
            Some('ي' | 'ی') => out.push('y'),
            Some('ح' | 'ه' | 'خ') => out.push('h'),
            _ => {}
        }
    }
    out
}

/// Other skeletons an Arabic-script word may be spelt by: `و` heard as `w`
/// (`انور`, `Anwar`), `ث`/`ذ`/`ض` as `s` and `ظ` as `t` (`فضل`, `Fazel`),
/// a final `ة` heard as `t` (`جبهة`, `Jabhat`).
pub fn arabic_other_skeletons(word: &str) -> Vec<String> {
    arabic_reading(&arabic_letters(word)).others
}

/// Marks another skeleton of an Arabic-script word that reads its `ج` as a
/// hard `g`: it is compared only with a Latin spelling that writes a `g`.
pub const HARD_G: char = '!';

/// Whether a Latin spelling writes a hard `g` (`Gamal`, not `Ghali`).
pub fn writes_hard_g(latin: &str) -> bool {
    let b = latin.as_bytes();
    b.iter()
        .enumerate()
        .any(|(i, &c)| c == b'g' && b.get(i + 1) != Some(&b'h'))
}

/// [`arabic_other_skeletons`] of a word's letters, given its skeleton `base`.
fn other_skeletons(letters: &[char], base: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |k: String| {
        if k != base && !out.contains(&k) {
            out.push(k);
        }
    };
    let readings = [(true, false), (false, true), (true, true)]
        .map(|(w, soft)| skeleton_of(letters, w, soft, |_| {}));
    let feminine = letters.last() == Some(&'ة');
    for k in std::iter::once(base.to_owned()).chain(readings) {
        if feminine && !k.ends_with('t') {
            add(format!("{k}t"));
        }
        add(k);
    }
    // A foreign name written as heard: `تش` is the `ch` of `Chun` and of
    // `-vich` (`الكسندروفيتش`), `ج` the hard `g` of Egyptian and foreign
    // names (`جمال` / *Gamal*, `جونو` / *Gono*).
    let ch = |l: &[char]| -> Vec<char> {
        let mut v = Vec::with_capacity(l.len());
        for (i, &c) in l.iter().enumerate() {
            if !(c == 'ت' && l.get(i + 1) == Some(&'ش')) {
                v.push(c);
            }
        }
        v
    };
    let g =
        |l: &[char]| -> Vec<char> { l.iter().map(|&c| if c == 'ج' { 'گ' } else { c }).collect() };
    // `Abdul` written as heard, as one word (`ابدول`, `عبدل`): the `abd`
    // the Latin spelling is read as, its article apart.
    if base == "vtl" && matches!(letters.first(), Some('ا' | 'أ' | 'إ' | 'ع')) {
        add("vt".to_owned());
    }
    let has_ch = letters.windows(2).any(|w| w == ['ت', 'ش']);
    let has_j = letters.contains(&'ج');
    if has_ch {
        add(skeleton_of(&ch(letters), false, false, |_| {}));
    }
    // The `g` readings are marked (see [`HARD_G`]): they hold only against
    // a Latin `g`, never the `k` or `q` the skeleton merges with it (`جنى`
    // is not *Kony*).
    if has_j {
        add(format!(
            "{HARD_G}{}",
            skeleton_of(&g(letters), false, false, |_| {})
        ));
    }
    if has_ch && has_j {
        add(format!(
            "{HARD_G}{}",
            skeleton_of(&g(&ch(letters)), false, false, |_| {})
        ));
    }
    out
}

/// The second reading of a Cyrillic word, the way a foreign name written in
/// Cyrillic is spelt back in English: `г` and `х` as `h` (a Russian clerk's
/// letters for a foreign `h`: `Мугаммад` is `Muhammad`, `Хасан` is `Hasan`),
/// `дж` as `j`, `й` as `y`, `я`/`ю`/`ё` as `ya`/`yu`/`yo`, `э` as `e`, the
/// signs silent. `None` when it reads as the standard transliteration does.
pub fn cyrillic_second_reading(word: &str) -> Option<String> {
    let lower: Vec<char> = word.chars().flat_map(char::to_lowercase).collect();
    let mut out = String::with_capacity(word.len() + 4);
    let mut i = 0;
    while let Some(&c) = lower.get(i) {
        let next = lower.get(i + 1).copied();
        match (c, next) {
            ('д', Some('ж')) => {
                out.push('j');
                i += 1;
            }
            // `гх` is the `gh` of `Abdelghani`.
            ('г', Some('х')) => {
                out.push_str("gh");
                i += 1;
            }
            ('г' | 'х', _) => out.push('h'),
            ('й', _) => out.push('y'),
            ('я', _) => out.push_str("ya"),
            ('ю', _) => out.push_str("yu"),
            ('ё', _) => out.push_str("yo"),
            ('э' | 'е', _) => out.push('e'),
            ('ъ' | 'ь', _) => {}
            (c, _) => out.push_str(deunicode::deunicode_char(c).unwrap_or("")),
        }
        i += 1;
    }
    let standard = deunicode::deunicode(word).to_lowercase();
    (out != standard).then_some(out)
}

/// Similarity of two consonant skeletons, one of them from Arabic script
/// (where vowels are not written, so the skeleton is all there is).
pub fn skeleton_similarity(a: &str, b: &str) -> f64 {
    let shorter = a.len().min(b.len());
    if a == b {
        return match shorter {
            0 => 0.0,
            1 => 0.86,
            2 => 0.92,
            _ => 0.95,
        };
    }
    if shorter < 2 {
        return 0.0;
    }
    let edits = strsim::osa_distance(a, b);
    match (edits, shorter) {
        (1, 2) => 0.8,
        (1, 3) => 0.88,
        // One letter of four or more: a clerk's choice (`ص` or `س` for `s`).
        (1, _) => 0.9,
        (2, 5..) => 0.8,
        _ => 0.5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::phonetic_key;

    #[test]
    fn arabic_skeletons_agree_with_latin_spellings() {
        for (arabic, latin) in [
            ("صدام", "saddam"),
            ("حسين", "hussein"),
            ("تكريتي", "tikriti"),
            ("إبراهيم", "ibrahim"),
            ("محمد", "muhammad"),
            ("عمر", "omar"),
            ("مروان", "marwan"),
            ("وليد", "walid"),
            ("أسامة", "osama"),
        ] {
            assert_eq!(
                arabic_skeleton(arabic),
                phonetic_key(latin),
                "{arabic} / {latin}"
            );
        }
        let (letters, rest) = (arabic_letters("التكريتي"), arabic_letters("تكريتي"));
        assert_eq!(split_article(&letters), (true, rest.as_slice()));
        let allah = arabic_letters("الله");
        assert_eq!(split_article(&allah), (false, allah.as_slice()));
    }

    #[test]
    fn arabic_words_are_read_beyond_their_skeletons() {
        // `عبد` + `الرحمن`.
        assert_eq!(split_glued_head(&arabic_letters("عبدالرحمن")), Some(3));
        assert_eq!(split_glued_head(&arabic_letters("عبدالله")), None);
        assert_eq!(split_glued_head(&arabic_letters("عبيد")), None);
        // `فواز`: two letters of one class, both heard.
        assert_eq!(arabic_skeleton("فواز"), phonetic_key("fawaz"));
        assert_eq!(arabic_skeleton("يحيى"), "y");
        assert_eq!(arabic_other_skeletons("انور"), ["nvr"]);
        assert!(arabic_other_skeletons("جبهة").contains(&"jvt".to_owned()));
        let marks = arabic_reading(&arabic_letters("ﺁخوند")).marks;
        assert_eq!(
            marks.initial,
            Initial::Vowel,
            "presentation forms are folded"
        );
        let marks = arabic_reading(&arabic_letters("صفوان")).marks;
        assert_eq!(marks.letters, b"sfw");
        assert!(!letters_agree(&marks.letters, b"xbw"));
        assert!(letters_agree(b"fw", b"vv"));
        assert!(letters_agree(b"d", b"e"));
        assert!(!letters_agree(b"z", b"s"));
        assert!(arabic_reading(&arabic_letters("أسامة")).marks.feminine);
    }

    #[test]
    fn scripts_are_told_apart() {
        assert_eq!(Script::of("Hussein"), Script::Latin);
        assert_eq!(Script::of("José"), Script::Latin);
        assert_eq!(Script::of("حسين"), Script::Arabic);
        assert_eq!(Script::of("Гасан"), Script::Cyrillic);
        assert_eq!(Script::of("金正恩"), Script::Ideographic);
        assert_eq!(Script::of("김정은"), Script::Other);
    }

    #[test]
    fn cyrillic_is_also_read_as_english_spells_foreign_names() {
        let read = |w: &str| cyrillic_second_reading(w).unwrap_or_default();
        assert_eq!(phonetic_key(&read("Мугаммад")), phonetic_key("muhammad"));
        assert_eq!(read("Хасан"), "hasan");
        assert_eq!(read("Джо"), "jo");
        assert_eq!(read("Йосэф"), "yosef");
        assert_eq!(read("Аяд"), "ayad");
        assert_eq!(cyrillic_second_reading("Иван"), None);
    }

    #[test]
    fn skeletons_one_edit_apart_are_close_but_not_equal() {
        assert!(skeleton_similarity("stm", "stm") > skeleton_similarity("stm", "stn"));
        assert!(skeleton_similarity("tkrt", "tkrs") >= 0.85);
        assert!(skeleton_similarity("l", "n") < 0.5);
    }
}
