//! Latin names written in another script, as a clerk would render them by
//! ear: Cyrillic (several habits at once, `Joyce` → `Джойс` or `Джойке`) and
//! Arabic script (short vowels left unwritten, long ones as letters, `al-`
//! joined to the next word).

/// Letter groups first (longest first), then single letters; each with the
/// renderings a writer might choose.
const CYRILLIC: &[(&str, &[&str])] = &[
    ("shch", &["щ"]),
    ("sch", &["ш", "сч"]),
    ("zh", &["ж"]),
    ("kh", &["х"]),
    ("sh", &["ш"]),
    ("ch", &["ч", "х"]),
    ("ts", &["ц", "тс"]),
    ("ya", &["я"]),
    ("yu", &["ю"]),
    ("yo", &["ё", "йо"]),
    ("ye", &["е", "йе"]),
    ("ph", &["ф"]),
    ("th", &["т"]),
    ("ck", &["к"]),
    ("ee", &["и"]),
    ("oo", &["у"]),
    ("ou", &["у"]),
    ("a", &["а"]),
    ("b", &["б"]),
    ("c", &["к", "с"]),
    ("d", &["д"]),
    ("e", &["е", "э"]),
    ("f", &["ф"]),
    ("g", &["г"]),
    ("h", &["х", "г"]),
    ("i", &["и"]),
    ("j", &["дж", "ж"]),
    ("k", &["к"]),
    ("l", &["л"]),
    ("m", &["м"]),
    ("n", &["н"]),
    ("o", &["о"]),
    ("p", &["п"]),
    ("q", &["к"]),
    ("r", &["р"]),
    ("s", &["с"]),
    ("t", &["т"]),
    ("u", &["у"]),
    ("v", &["в"]),
    ("w", &["в", "у"]),
    ("x", &["кс"]),
    ("y", &["й", "и", "ы"]),
    ("z", &["з"]),
];

/// One token in Cyrillic, capitalised as given.
pub fn cyrillic(token: &str, rng: &mut fastrand::Rng) -> String {
    let lower = token.to_lowercase();
    let mut out = String::new();
    let mut rest = lower.as_str();
    'scan: while let Some(c) = rest.chars().next() {
        for (from, to) in CYRILLIC {
            if rest.starts_with(from) {
                let pick = to.get(rng.usize(..to.len())).copied().unwrap_or("");
                out.push_str(pick);
                rest = &rest[from.len()..];
                continue 'scan;
            }
        }
        if c.is_alphabetic() {
            // Letters with diacritics and the like: dropped, as a clerk would.
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    capitalise_like(token, &out)
}

fn capitalise_like(original: &str, rendered: &str) -> String {
    let upper = original
        .chars()
        .filter(|c| c.is_alphabetic())
        .all(char::is_uppercase);
    if upper {
        return rendered.to_uppercase();
    }
    let mut chars = rendered.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Consonant groups and letters in Arabic script (with the choices a writer
/// has: `h` is `ه` or `ح`, `s` is `س` or `ص`…).
const ARABIC: &[(&str, &[&str])] = &[
    ("sh", &["ش"]),
    ("kh", &["خ"]),
    ("gh", &["غ"]),
    ("th", &["ث", "ت"]),
    ("dh", &["ذ", "ظ"]),
    ("ch", &["تش", "ش"]),
    ("ph", &["ف"]),
    ("b", &["ب"]),
    ("c", &["ك", "س"]),
    ("d", &["د", "ض"]),
    ("f", &["ف"]),
    ("g", &["ج", "غ", "ق"]),
    ("h", &["ه", "ح"]),
    ("j", &["ج"]),
    ("k", &["ك", "ق"]),
    ("l", &["ل"]),
    ("m", &["م"]),
    ("n", &["ن"]),
    ("p", &["ب"]),
    ("q", &["ق"]),
    ("r", &["ر"]),
    ("s", &["س", "ص"]),
    ("t", &["ت", "ط"]),
    ("v", &["ف"]),
    ("w", &["و"]),
    ("x", &["كس"]),
    ("y", &["ي"]),
    ("z", &["ز"]),
];

/// A name in Arabic script: `al`/`el` joined to the next word as `ال`.
pub fn arabic_name(tokens: &[String], rng: &mut fastrand::Rng) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut article = false;
    for t in tokens {
        let lower = t.to_lowercase();
        if matches!(lower.as_str(), "al" | "el") {
            article = true;
            continue;
        }
        let (prefix, word) = match lower.split_once('-') {
            Some(("al" | "el", rest)) => ("ال", rest.to_owned()),
            _ => ("", lower.replace('-', "")),
        };
        let prefix = if article { "ال" } else { prefix };
        article = false;
        out.push(format!("{prefix}{}", arabic(&word, rng)));
    }
    out
}

/// One word in Arabic script: consonants as letters, long or stressed vowels
/// as `ا`, `و`, `ي`, short ones mostly left out, a word-initial vowel as `ا`
/// or `ع`, a final `a`/`ah` as `ة` or `ا`.
pub fn arabic(word: &str, rng: &mut fastrand::Rng) -> String {
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let rest: String = chars[i..].iter().collect();
        let c = chars[i];
        let vowel = matches!(c, 'a' | 'e' | 'i' | 'o' | 'u');
        if vowel {
            let doubled = chars
                .get(i + 1)
                .is_some_and(|n| matches!(n, 'a' | 'e' | 'i' | 'o' | 'u'));
            let last =
                i + 1 == chars.len() || (i + 2 == chars.len() && chars.get(i + 1) == Some(&'h'));
            if i == 0 {
                out.push_str(if rng.u8(..4) == 0 { "ع" } else { "ا" });
            } else if last && c == 'a' {
                out.push_str(if rng.bool() { "ة" } else { "ا" });
                break;
            } else if last || doubled || rng.u8(..3) == 0 {
                out.push_str(match c {
                    'a' => "ا",
                    'o' | 'u' => "و",
                    _ => "ي",
                });
            }
            i += if doubled { 2 } else { 1 };
            continue;
        }
        if chars.get(i + 1) == Some(&c) {
            // A doubled consonant is written once (with a shadda, left out).
            i += 1;
            continue;
        }
        let mut matched = false;
        for (from, to) in ARABIC {
            if rest.starts_with(from) {
                let pick = to.get(rng.usize(..to.len())).copied().unwrap_or("");
                out.push_str(pick);
                i += from.chars().count();
                matched = true;
                break;
            }
        }
        if !matched {
            i += 1;
        }
    }
    out
}
