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
fn arabic_letters(word: &str) -> Vec<char> {
    word.chars()
        .filter(|&c| {
            is_arabic(c)
                && c.is_alphabetic()
                && !matches!(c, '\u{064B}'..='\u{065F}' | '\u{0670}' | '\u{0640}')
        })
        .collect()
}

/// The Latin particle an Arabic-script word is (`ابو` is `abu`, `بن` is
/// `bin`), if it is one.
pub fn arabic_particle(word: &str) -> Option<&'static str> {
    let letters: String = arabic_letters(word).into_iter().collect();
    match letters.as_str() {
        "ابو" | "أبو" | "ابي" | "أبي" | "ابا" | "أبا" => Some("abu"),
        "بن" => Some("bin"),
        "ابن" | "إبن" => Some("ibn"),
        "بنت" => Some("bint"),
        _ => None,
    }
}

/// An Arabic-script word split off its article: `التكريتي` is `ال` +
/// `تكريتي`. Returns whether it had one, and the rest of the word.
pub fn split_article(word: &str) -> (bool, String) {
    let letters = arabic_letters(word);
    match letters.as_slice() {
        // `الله` is a name (`Allah`, in `عبد الله`), not the article on `له`.
        ['ا', 'ل', 'ل', 'ه'] => (false, letters.iter().collect()),
        ['ا', 'ل', rest @ ..] if rest.len() >= 2 => (true, rest.iter().collect()),
        _ => (false, letters.iter().collect()),
    }
}

/// A long `a` (`ا`, `ى`), in [`arabic_skeleton_and_vowels`]'s gaps.
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

/// [`arabic_skeleton`], and the long vowels written before each of its
/// consonants and after the last (a word-initial alef carries any vowel and
/// is not counted).
pub fn arabic_skeleton_and_vowels(word: &str) -> (String, Vec<u8>) {
    let key = arabic_skeleton(word);
    let letters = arabic_letters(word);
    let mut gaps = vec![0u8; key.len() + 1];
    let mut at = 0;
    let mut last = '\0';
    for (i, &c) in letters.iter().enumerate() {
        let next = letters.get(i + 1).copied();
        let prev = i.checked_sub(1).and_then(|p| letters.get(p)).copied();
        let mapped = consonant(c, i, prev, next);
        match mapped {
            Some(m) => {
                if m != last {
                    at += 1;
                }
                last = m;
            }
            None => {
                last = 'a';
                let class = match c {
                    'ا' | 'ى' | 'آ' if i > 0 => VOWEL_A,
                    'ي' | 'ی' => VOWEL_I,
                    'و' => VOWEL_U,
                    _ => 0,
                };
                if let Some(gap) = gaps.get_mut(at) {
                    *gap |= class;
                }
            }
        }
    }
    (key, gaps)
}

/// The skeleton letter of an Arabic-script letter, `None` when silent.
fn consonant(c: char, i: usize, prev: Option<char>, next: Option<char>) -> Option<char> {
    Some(match c {
        'ب' | 'پ' | 'ف' => 'v',
        'ت' | 'ث' | 'د' | 'ذ' | 'ض' | 'ط' => 't',
        'ج' | 'ژ' => 'j',
        'ر' => 'r',
        'ز' | 'س' | 'ش' | 'ص' | 'ظ' => 's',
        'غ' | 'ق' | 'ك' | 'ک' | 'گ' | 'چ' => 'k',
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
    let letters = arabic_letters(word);
    let mut out = String::with_capacity(letters.len());
    let mut last = '\0';
    for (i, &c) in letters.iter().enumerate() {
        let next = letters.get(i + 1).copied();
        let prev = i.checked_sub(1).and_then(|p| letters.get(p)).copied();
        let mapped = consonant(c, i, prev, next).unwrap_or('a');
        if mapped == 'a' {
            last = 'a';
            continue;
        }
        if mapped != last {
            out.push(mapped);
        }
        last = mapped;
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
        assert_eq!(split_article("التكريتي"), (true, "تكريتي".to_owned()));
        assert_eq!(split_article("الله"), (false, "الله".to_owned()));
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
