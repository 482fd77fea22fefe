//! Spelling variants of a designated individual's name, one kind at a time.

use crate::render;

/// A designated individual's name, split as the SDN list writes it
/// (`FAMILY NAME, Given Names`).
#[derive(Debug, Clone)]
pub struct PersonName {
    /// The designation id.
    pub id: String,
    /// Family-name tokens, as written.
    pub family: Vec<String>,
    /// Given-name tokens, as written.
    pub given: Vec<String>,
}

impl PersonName {
    /// Splits `FAMILY, Given Middle`; `None` when the name has no comma or
    /// either side is empty.
    pub fn parse(id: &str, name: &str) -> Option<Self> {
        let (family, given) = name.split_once(',')?;
        let words = |s: &str| -> Vec<String> { s.split_whitespace().map(str::to_owned).collect() };
        let (family, given) = (words(family), words(given));
        if family.is_empty() || given.is_empty() {
            return None;
        }
        Some(Self {
            id: id.to_owned(),
            family,
            given,
        })
    }

    /// Given names then family names.
    pub fn natural(&self) -> Vec<String> {
        self.given
            .iter()
            .chain(&self.family)
            .map(|t| title_case(t))
            .collect()
    }
}

/// What was done to a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Given names first (`Mahmud Rahhal`).
    NaturalOrder,
    /// Family name first, without the comma (`RAHHAL Mahmud`).
    SurnameFirst,
    /// Upper case, natural order.
    UpperCase,
    /// One letter of one token replaced by another.
    Substitution,
    /// One letter inserted into one token.
    Insertion,
    /// One letter of one token deleted.
    Deletion,
    /// Two adjacent letters of one token swapped.
    Transposition,
    /// Two adjacent tokens written as one.
    Joined,
    /// One token split in two.
    Split,
    /// A given name other than the first left out.
    DroppedMiddle,
    /// Hyphens added or removed, particles joined or detached.
    ParticlesHyphens,
    /// Written in Cyrillic.
    Cyrillic,
    /// Written in Arabic script.
    Arabic,
}

impl Kind {
    /// Every kind, in table order.
    pub const ALL: [Kind; 13] = [
        Kind::NaturalOrder,
        Kind::SurnameFirst,
        Kind::UpperCase,
        Kind::Substitution,
        Kind::Insertion,
        Kind::Deletion,
        Kind::Transposition,
        Kind::Joined,
        Kind::Split,
        Kind::DroppedMiddle,
        Kind::ParticlesHyphens,
        Kind::Cyrillic,
        Kind::Arabic,
    ];

    /// The kind as the tables name it.
    pub fn label(self) -> &'static str {
        match self {
            Kind::NaturalOrder => "natural order",
            Kind::SurnameFirst => "surname first",
            Kind::UpperCase => "upper case",
            Kind::Substitution => "one letter substituted",
            Kind::Insertion => "one letter inserted",
            Kind::Deletion => "one letter deleted",
            Kind::Transposition => "two letters transposed",
            Kind::Joined => "tokens joined",
            Kind::Split => "token split",
            Kind::DroppedMiddle => "middle name dropped",
            Kind::ParticlesHyphens => "particles and hyphens moved",
            Kind::Cyrillic => "Cyrillic rendering",
            Kind::Arabic => "Arabic rendering",
        }
    }
}

/// `Word` from `WORD` or `word`.
pub fn title_case(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    let mut first = true;
    for c in word.chars() {
        if first {
            out.extend(c.to_uppercase());
        } else {
            out.extend(c.to_lowercase());
        }
        first = !c.is_alphabetic();
    }
    out
}

/// The variant of `name` of this kind, or `None` when the name does not lend
/// itself to it (no middle name to drop, no token long enough to split…).
pub fn variant(name: &PersonName, kind: Kind, rng: &mut fastrand::Rng) -> Option<String> {
    let natural = name.natural();
    let out = match kind {
        Kind::NaturalOrder => natural,
        Kind::SurnameFirst => name.family.iter().chain(&name.given).cloned().collect(),
        Kind::UpperCase => natural.iter().map(|t| t.to_uppercase()).collect(),
        Kind::Substitution | Kind::Insertion | Kind::Deletion | Kind::Transposition => {
            typo(natural, kind, rng)?
        }
        Kind::Joined => {
            if natural.len() < 2 {
                return None;
            }
            let mut v = natural;
            let at = rng.usize(..v.len() - 1);
            let next = v.remove(at + 1);
            let joined = format!("{}{}", v.get(at)?, next.to_lowercase());
            *v.get_mut(at)? = joined;
            v
        }
        Kind::Split => {
            let mut v = natural;
            let long: Vec<usize> = (0..v.len()).filter(|&i| letters(&v[i]) >= 6).collect();
            let at = *long.get(rng.usize(..long.len().max(1)))?;
            let chars: Vec<char> = v.get(at)?.chars().collect();
            let cut = 2 + rng.usize(..chars.len() - 3);
            let (a, b): (String, String) =
                (chars[..cut].iter().collect(), chars[cut..].iter().collect());
            v.splice(at..=at, [a, b]);
            v
        }
        Kind::DroppedMiddle => {
            if name.given.len() < 2 {
                return None;
            }
            let mut v = natural;
            let drop = 1 + rng.usize(..name.given.len() - 1);
            v.remove(drop);
            v
        }
        Kind::ParticlesHyphens => particles_hyphens(&natural, rng)?,
        Kind::Cyrillic => natural.iter().map(|t| render::cyrillic(t, rng)).collect(),
        Kind::Arabic => render::arabic_name(&natural, rng),
    };
    let text = out.join(" ");
    (!text.trim().is_empty()).then_some(text)
}

fn letters(token: &str) -> usize {
    token.chars().filter(|c| c.is_alphabetic()).count()
}

/// One edit in one token of at least three letters.
fn typo(mut tokens: Vec<String>, kind: Kind, rng: &mut fastrand::Rng) -> Option<Vec<String>> {
    let min = if kind == Kind::Deletion { 4 } else { 3 };
    let eligible: Vec<usize> = (0..tokens.len())
        .filter(|&i| {
            letters(&tokens[i]) >= min && tokens[i].chars().all(|c| c.is_ascii_alphabetic())
        })
        .collect();
    let at = *eligible.get(rng.usize(..eligible.len().max(1)))?;
    let mut chars: Vec<char> = tokens.get(at)?.chars().collect();
    let lower = chars.iter().skip(1).all(|c| c.is_lowercase());
    let letter = |rng: &mut fastrand::Rng| {
        let c = rng.lowercase();
        if lower { c } else { c.to_ascii_uppercase() }
    };
    match kind {
        Kind::Substitution => {
            let p = rng.usize(..chars.len());
            let was = chars[p];
            let mut c = letter(rng);
            while c.eq_ignore_ascii_case(&was) {
                c = letter(rng);
            }
            chars[p] = if p == 0 { c.to_ascii_uppercase() } else { c };
        }
        Kind::Insertion => {
            let p = 1 + rng.usize(..chars.len());
            chars.insert(p, letter(rng));
        }
        Kind::Deletion => {
            let p = 1 + rng.usize(..chars.len() - 1);
            chars.remove(p);
        }
        _ => {
            let candidates: Vec<usize> = (1..chars.len() - 1)
                .filter(|&p| chars[p] != chars[p + 1])
                .collect();
            let p = *candidates.get(rng.usize(..candidates.len().max(1)))?;
            chars.swap(p, p + 1);
        }
    }
    *tokens.get_mut(at)? = chars.into_iter().collect();
    Some(tokens)
}

/// Particles detached or joined, hyphens added or removed: `al-Assad` →
/// `Al Assad` or `Alassad`; `Flores Soto` → `Flores-Soto`.
fn particles_hyphens(tokens: &[String], rng: &mut fastrand::Rng) -> Option<Vec<String>> {
    const PARTICLES: &[&str] = &[
        "al", "el", "bin", "ibn", "abu", "abd", "de", "van", "von", "da", "del", "ul",
    ];
    let hyphenated: Vec<usize> = (0..tokens.len())
        .filter(|&i| tokens[i].contains('-'))
        .collect();
    if let Some(&at) = hyphenated.get(rng.usize(..hyphenated.len().max(1))) {
        let mut v = tokens.to_vec();
        let t = v.get(at)?.clone();
        let parts: Vec<String> = t
            .split('-')
            .filter(|p| !p.is_empty())
            .map(title_case)
            .collect();
        if rng.bool() {
            v.splice(at..=at, parts);
        } else {
            let joined: String = parts.concat();
            *v.get_mut(at)? = title_case(&joined);
        }
        return Some(v);
    }
    let particle: Vec<usize> = (0..tokens.len().saturating_sub(1))
        .filter(|&i| PARTICLES.contains(&tokens[i].to_lowercase().as_str()))
        .collect();
    let mut v = tokens.to_vec();
    if let Some(&at) = particle.first() {
        let next = v.remove(at + 1);
        let sep = if rng.bool() { "-" } else { "" };
        let p = v.get(at)?.to_lowercase();
        let p = if at == 0 { title_case(&p) } else { p };
        *v.get_mut(at)? = format!("{p}{sep}{}", next);
        return Some(v);
    }
    if v.len() < 2 {
        return None;
    }
    // No particle, no hyphen: two adjacent tokens hyphenated.
    let at = rng.usize(..v.len() - 1);
    let next = v.remove(at + 1);
    let joined = format!("{}-{next}", v.get(at)?);
    *v.get_mut(at)? = joined;
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rahhal() -> PersonName {
        PersonName::parse("X", "RAHHAL, Mahmud Ali").unwrap_or_else(|| unreachable!())
    }

    fn letters_differ(a: &str, b: &str) -> usize {
        strsim::osa_distance(&a.to_lowercase(), &b.to_lowercase())
    }

    #[test]
    fn typos_are_one_edit_of_one_token() {
        let p = rahhal();
        let natural = p.natural().join(" ");
        let mut rng = fastrand::Rng::with_seed(7);
        for kind in [
            Kind::Substitution,
            Kind::Insertion,
            Kind::Deletion,
            Kind::Transposition,
        ] {
            for _ in 0..50 {
                let v = variant(&p, kind, &mut rng).unwrap_or_default();
                assert_eq!(v.split(' ').count(), 3, "{v}");
                assert_eq!(letters_differ(&v, &natural), 1, "{kind:?}: {v} / {natural}");
            }
        }
    }

    #[test]
    fn other_kinds_do_what_they_say() {
        let p = rahhal();
        let mut rng = fastrand::Rng::with_seed(7);
        assert_eq!(
            variant(&p, Kind::NaturalOrder, &mut rng).as_deref(),
            Some("Mahmud Ali Rahhal")
        );
        assert_eq!(
            variant(&p, Kind::SurnameFirst, &mut rng).as_deref(),
            Some("RAHHAL Mahmud Ali")
        );
        assert_eq!(
            variant(&p, Kind::DroppedMiddle, &mut rng).as_deref(),
            Some("Mahmud Rahhal")
        );
        let joined = variant(&p, Kind::Joined, &mut rng).unwrap_or_default();
        assert_eq!(joined.split(' ').count(), 2, "{joined}");
        assert_eq!(joined.replace(' ', "").to_lowercase(), "mahmudalirahhal");
        let split = variant(&p, Kind::Split, &mut rng).unwrap_or_default();
        assert_eq!(split.split(' ').count(), 4, "{split}");
        let cyrillic = variant(&p, Kind::Cyrillic, &mut rng).unwrap_or_default();
        assert!(
            cyrillic
                .chars()
                .filter(|c| c.is_alphabetic())
                .all(|c| ('\u{0400}'..='\u{04FF}').contains(&c)),
            "{cyrillic}"
        );
        let arabic = variant(&p, Kind::Arabic, &mut rng).unwrap_or_default();
        assert!(
            arabic
                .chars()
                .filter(|c| c.is_alphabetic())
                .all(|c| ('\u{0600}'..='\u{06FF}').contains(&c)),
            "{arabic}"
        );
    }
}
