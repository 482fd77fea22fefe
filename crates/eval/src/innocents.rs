//! Names of people who are not designated: given and family names of the
//! `fake` crate's locales, combined at random (one or two given names).

use fake::locales::{
    AR_SA, CY_GB, DE_DE, Data, EN, FR_FR, IT_IT, JA_JP, PT_BR, PT_PT, ZH_CN, ZH_TW,
};

/// A locale's name tables.
#[derive(Debug, Clone, Copy)]
pub struct Locale {
    /// The locale's name (`en`, `ar_SA`…).
    pub name: &'static str,
    /// Given names.
    pub given: &'static [&'static str],
    /// Family names.
    pub family: &'static [&'static str],
    /// Whether the family name is written first, without a space (Chinese, Japanese).
    pub family_first: bool,
}

const fn locale<L: Data>(name: &'static str, family_first: bool) -> Locale {
    Locale {
        name,
        given: L::NAME_FIRST_NAME,
        family: L::NAME_LAST_NAME,
        family_first,
    }
}

/// Every locale with name tables.
pub const LOCALES: [Locale; 11] = [
    locale::<EN>("en", false),
    locale::<FR_FR>("fr_FR", false),
    locale::<DE_DE>("de_DE", false),
    locale::<IT_IT>("it_IT", false),
    locale::<PT_BR>("pt_BR", false),
    locale::<PT_PT>("pt_PT", false),
    locale::<CY_GB>("cy_GB", false),
    locale::<AR_SA>("ar_SA", false),
    locale::<ZH_CN>("zh_CN", true),
    locale::<ZH_TW>("zh_TW", true),
    locale::<JA_JP>("ja_JP", true),
];

/// `per_locale` names of each locale, as `(locale, name)`.
pub fn generate(per_locale: usize, seed: u64) -> Vec<(&'static str, String)> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut out = Vec::with_capacity(per_locale * LOCALES.len());
    for l in LOCALES {
        for _ in 0..per_locale {
            out.push((l.name, name(&l, &mut rng)));
        }
    }
    out
}

/// One name of the locale: a given name (two, one time in five) and a family name.
pub fn name(l: &Locale, rng: &mut fastrand::Rng) -> String {
    let pick = |table: &'static [&'static str], rng: &mut fastrand::Rng| -> &'static str {
        table.get(rng.usize(..table.len())).copied().unwrap_or("")
    };
    let mut given = pick(l.given, rng).to_owned();
    if !l.family_first && rng.u8(..5) == 0 {
        let second = pick(l.given, rng);
        if second != given {
            given = format!("{given} {second}");
        }
    }
    let family = pick(l.family, rng);
    if l.family_first {
        format!("{family}{given}")
    } else {
        format!("{given} {family}")
    }
}
