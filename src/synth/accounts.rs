//! Synthetic accounts: `maintain_account` requests as a provider would
//! export its customers for re-screening, for capacity tests and the docs.
//!
//! Names are drawn from real given and family names (the `fake` crate's
//! locales, and short lists of common Russian, Persian and Korean names), each
//! account in a country of its locale; a third are organisations with one to
//! three beneficial owners. Source IPs are addresses the geo database places
//! in the account's country (one time in fourteen another country's, as a
//! traveller or a VPN gives), found by sampling the database itself.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr};

use fake::locales::{
    AR_SA, CY_GB, DE_DE, Data, EN, FR_FR, IT_IT, JA_JP, PT_BR, PT_PT, ZH_CN, ZH_TW,
};
use serde_json::{Value, json};

use portcullis_core::geo::GeoSet;

/// A locale's name tables and how its names are written.
#[derive(Clone, Copy)]
struct Names {
    given: &'static [&'static str],
    family: &'static [&'static str],
    /// Family name first, without a space (Chinese, Japanese).
    family_first: bool,
    /// Legal forms of organisations.
    forms: &'static [&'static str],
}

const fn names<L: Data>(family_first: bool, forms: &'static [&'static str]) -> Names {
    Names {
        given: L::NAME_FIRST_NAME,
        family: L::NAME_LAST_NAME,
        family_first,
        forms,
    }
}

const RU_GIVEN: &[&str] = &[
    "Aleksandr",
    "Dmitry",
    "Sergey",
    "Andrey",
    "Alexey",
    "Maxim",
    "Ivan",
    "Mikhail",
    "Nikolai",
    "Yuri",
    "Olga",
    "Elena",
    "Tatiana",
    "Natalia",
    "Irina",
    "Svetlana",
    "Anna",
    "Maria",
    "Ekaterina",
    "Yulia",
];
const RU_FAMILY: &[&str] = &[
    "Ivanov",
    "Smirnov",
    "Kuznetsov",
    "Popov",
    "Vasiliev",
    "Petrov",
    "Sokolov",
    "Mikhailov",
    "Novikov",
    "Fedorov",
    "Morozov",
    "Volkov",
    "Alekseev",
    "Lebedev",
    "Semenov",
    "Egorov",
    "Pavlov",
    "Kozlov",
    "Stepanov",
    "Nikolaev",
];
const FA_GIVEN: &[&str] = &[
    "Mohammad", "Ali", "Hossein", "Reza", "Mehdi", "Amir", "Hamid", "Saeed", "Fatemeh", "Zahra",
    "Maryam", "Narges", "Leila", "Sara", "Mina", "Parisa", "Farhad", "Kaveh", "Babak", "Shirin",
];
const FA_FAMILY: &[&str] = &[
    "Mohammadi",
    "Hosseini",
    "Ahmadi",
    "Rezaei",
    "Moradi",
    "Karimi",
    "Jafari",
    "Rahimi",
    "Mousavi",
    "Hashemi",
    "Ghasemi",
    "Sadeghi",
    "Heidari",
    "Kazemi",
    "Azimi",
    "Najafi",
    "Salehi",
    "Rostami",
    "Asadi",
    "Tehrani",
];
const KO_GIVEN: &[&str] = &[
    "Chol",
    "Song Il",
    "Myong Chol",
    "Kwang Hyok",
    "Jong Nam",
    "Yong Su",
    "Hye Gyong",
    "Sun Hui",
];
const KO_FAMILY: &[&str] = &["Kim", "Ri", "Pak", "Choe", "Jong", "Kang", "Han", "Yun"];

const EN_NAMES: Names = names::<EN>(false, &["LLC", "Inc.", "Ltd", "Holdings"]);
const FR_NAMES: Names = names::<FR_FR>(false, &["SAS", "SARL", "SA"]);
const DE_NAMES: Names = names::<DE_DE>(false, &["GmbH", "AG", "KG"]);
const IT_NAMES: Names = names::<IT_IT>(false, &["S.r.l.", "S.p.A."]);
const BR_NAMES: Names = names::<PT_BR>(false, &["Ltda.", "S.A."]);
const PT_NAMES: Names = names::<PT_PT>(false, &["Lda.", "S.A."]);
const CY_NAMES: Names = names::<CY_GB>(false, &["Ltd", "Cyf."]);
const AR_NAMES: Names = names::<AR_SA>(false, &["LLC", "Trading Co.", "FZE"]);
const CN_NAMES: Names = names::<ZH_CN>(true, &["Co., Ltd."]);
const TW_NAMES: Names = names::<ZH_TW>(true, &["Co., Ltd."]);
const JA_NAMES: Names = names::<JA_JP>(true, &["K.K.", "G.K."]);
const RU_NAMES: Names = Names {
    given: RU_GIVEN,
    family: RU_FAMILY,
    family_first: false,
    forms: &["OOO", "AO"],
};
const FA_NAMES: Names = Names {
    given: FA_GIVEN,
    family: FA_FAMILY,
    family_first: false,
    forms: &["Co.", "Group"],
};
const KO_NAMES: Names = Names {
    given: KO_GIVEN,
    family: KO_FAMILY,
    family_first: false,
    forms: &["Corporation", "Trading Company"],
};

/// Where accounts are, and how many in a thousand.
const REGIONS: [(&str, Names, u32); 30] = [
    ("US", EN_NAMES, 300),
    ("GB", EN_NAMES, 45),
    ("GB", CY_NAMES, 5),
    ("CA", EN_NAMES, 40),
    ("AU", EN_NAMES, 25),
    ("IE", EN_NAMES, 10),
    ("IN", EN_NAMES, 30),
    ("FR", FR_NAMES, 60),
    ("BE", FR_NAMES, 10),
    ("DE", DE_NAMES, 75),
    ("AT", DE_NAMES, 10),
    ("CH", DE_NAMES, 10),
    ("IT", IT_NAMES, 40),
    ("BR", BR_NAMES, 45),
    ("PT", PT_NAMES, 15),
    ("SA", AR_NAMES, 15),
    ("AE", AR_NAMES, 20),
    ("EG", AR_NAMES, 10),
    ("JO", AR_NAMES, 5),
    ("CN", CN_NAMES, 40),
    ("SG", CN_NAMES, 10),
    ("TW", TW_NAMES, 15),
    ("JP", JA_NAMES, 45),
    ("RU", RU_NAMES, 20),
    ("KZ", RU_NAMES, 5),
    ("BY", RU_NAMES, 3),
    ("IR", FA_NAMES, 5),
    ("AF", FA_NAMES, 2),
    ("KP", KO_NAMES, 1),
    ("KR", KO_NAMES, 10),
];

const BUSINESS: [&str; 14] = [
    "Trading",
    "Logistics",
    "Systems",
    "Analytics",
    "Capital",
    "Industries",
    "Software",
    "Labs",
    "Energy",
    "Consulting",
    "Foods",
    "Media",
    "Robotics",
    "Cloud",
];

/// Addresses sampled per country, at most.
const IPS_PER_COUNTRY: usize = 32;
/// Random IPv4 addresses looked up to find them, at most.
const IP_SAMPLES: usize = 4_000_000;

/// How accounts are drawn.
#[derive(Debug, Clone, Copy)]
pub struct AccountOptions {
    /// Accounts to write.
    pub count: u64,
    /// Seed: the same seed and database give the same accounts.
    pub seed: u64,
    /// Draw names (with their country and owners) from a pool of this many,
    /// so that names repeat as a provider's do across reviews; `None`: each
    /// account drawn afresh.
    pub distinct_names: Option<u64>,
}

/// Writes `options.count` accounts to `out`, one request per line.
pub fn write_accounts(
    out: &mut impl Write,
    geo: &GeoSet,
    options: AccountOptions,
) -> io::Result<()> {
    let mut rng = fastrand::Rng::with_seed(options.seed);
    let pools = ip_pools(geo, &mut rng);
    let total: u32 = REGIONS.iter().map(|r| r.2).sum();
    for i in 0..options.count {
        let mut names_rng = match options.distinct_names {
            Some(n) => fastrand::Rng::with_seed(mix(options.seed, i % n.max(1))),
            None => rng.fork(),
        };
        let account = account(i, total, &mut names_rng, &mut rng, &pools);
        serde_json::to_writer(&mut *out, &account)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

/// SplitMix64 of the seed and the index: one independent stream per name.
fn mix(seed: u64, i: u64) -> u64 {
    let mut z = seed
        .wrapping_add(i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn region(total: u32, rng: &mut fastrand::Rng) -> (&'static str, Names) {
    let mut roll = rng.u32(..total.max(1));
    for (country, names, weight) in REGIONS {
        if roll < weight {
            return (country, names);
        }
        roll -= weight;
    }
    ("US", EN_NAMES)
}

/// `country`, but one time in `one_in` a country drawn from all regions
/// (a traveller's IP, a foreign card, a reseller abroad).
fn usually(country: &'static str, one_in: u8, total: u32, rng: &mut fastrand::Rng) -> &'static str {
    if rng.u8(..one_in) == 0 {
        region(total, rng).0
    } else {
        country
    }
}

fn pick(table: &'static [&'static str], rng: &mut fastrand::Rng) -> &'static str {
    table
        .get(rng.usize(..table.len().max(1)))
        .copied()
        .unwrap_or("")
}

fn person_name(n: &Names, rng: &mut fastrand::Rng) -> String {
    let mut given = pick(n.given, rng).to_owned();
    if !n.family_first && rng.u8(..5) == 0 {
        let second = pick(n.given, rng);
        if second != given {
            given = format!("{given} {second}");
        }
    }
    let family = pick(n.family, rng);
    if n.family_first {
        format!("{family}{given}")
    } else {
        format!("{given} {family}")
    }
}

fn date_of_birth(rng: &mut fastrand::Rng) -> String {
    format!(
        "{}-{:02}-{:02}",
        rng.u32(1940..2005),
        rng.u32(1..13),
        rng.u32(1..29)
    )
}

fn account(
    i: u64,
    total: u32,
    names: &mut fastrand::Rng,
    rng: &mut fastrand::Rng,
    pools: &HashMap<&'static str, Vec<Ipv4Addr>>,
) -> Value {
    let (country, locale) = region(total, names);
    let organization = names.u8(..10) < 3;
    let mut customer = serde_json::Map::new();
    customer.insert("id".into(), json!(format!("cust-{i:07}")));
    if organization {
        let family = pick(locale.family, names);
        let name = format!(
            "{family} {} {}",
            BUSINESS
                .get(names.usize(..BUSINESS.len()))
                .copied()
                .unwrap_or("Trading"),
            pick(locale.forms, names)
        );
        customer.insert("kind".into(), json!("organization"));
        customer.insert("name".into(), json!(name));
        let count = names.u32(1..4);
        // Each owner holds 10 % or more; together at most 100 %.
        let most = 100 / count;
        let owners: Vec<Value> = (0..count)
            .map(|_| {
                let (owner_country, owner_names) = if names.u8(..10) < 8 {
                    (country, locale)
                } else {
                    region(total, names)
                };
                json!({
                    "name": person_name(&owner_names, names),
                    "nationalities": [owner_country],
                    "ownership_percent": names.u32(10..=most),
                })
            })
            .collect();
        customer.insert("beneficial_owners".into(), Value::Array(owners));
    } else {
        customer.insert("kind".into(), json!("individual"));
        customer.insert("name".into(), json!(person_name(&locale, names)));
        if names.u8(..10) < 6 {
            customer.insert("date_of_birth".into(), json!(date_of_birth(names)));
        }
        let mut nationalities = vec![country];
        if rng.u8(..20) == 0 {
            let (other, _) = region(total, rng);
            if other != country {
                nationalities.push(other);
            }
        }
        customer.insert("nationalities".into(), json!(nationalities));
    }
    customer.insert("address".into(), json!({ "country": country }));
    if rng.u8(..2) == 0 {
        customer.insert(
            "email".into(),
            json!(format!("billing-{i}@customers.example")),
        );
    }
    if rng.u8(..10) < 8 {
        let payment = usually(country, 20, total, rng);
        customer.insert(
            "payment".into(),
            json!({ "country": payment, "method": "card" }),
        );
    }
    let mut request = serde_json::Map::new();
    request.insert("request_id".into(), json!(format!("acct-{i:07}")));
    request.insert("action".into(), json!("maintain_account"));
    request.insert("customer".into(), Value::Object(customer));
    if rng.u8(..100) < 8 {
        let at = usually(country, 10, total, rng);
        request.insert(
            "reseller".into(),
            json!({ "id": format!("reseller-{:03}", rng.u32(..200)), "country": at }),
        );
    }
    let ips: Vec<String> = (0..match rng.u8(..20) {
        0 => 0,
        1..=3 => 2,
        _ => 1,
    })
        .filter_map(|_| {
            let from = usually(country, 14, total, rng);
            let pool = pools.get(from)?;
            pool.get(rng.usize(..pool.len().max(1)))
                .map(ToString::to_string)
        })
        .collect();
    if !ips.is_empty() {
        request.insert("source_ips".into(), json!(ips));
    }
    Value::Object(request)
}

/// Public IPv4 addresses the database places in each country of
/// [`REGIONS`], found by looking up random addresses.
fn ip_pools(geo: &GeoSet, rng: &mut fastrand::Rng) -> HashMap<&'static str, Vec<Ipv4Addr>> {
    let mut pools: HashMap<&'static str, Vec<Ipv4Addr>> =
        REGIONS.iter().map(|r| (r.0, Vec::new())).collect();
    let mut missing = pools.len();
    for _ in 0..IP_SAMPLES {
        if missing == 0 {
            break;
        }
        let ip = Ipv4Addr::from(rng.u32(..));
        let Ok(facts) = geo.lookup(IpAddr::V4(ip)) else {
            continue;
        };
        let Some(country) = facts.country else {
            continue;
        };
        let code = country.to_string();
        if let Some(pool) = pools.get_mut(code.as_str())
            && pool.len() < IPS_PER_COUNTRY
        {
            pool.push(ip);
            if pool.len() == IPS_PER_COUNTRY {
                missing -= 1;
            }
        }
    }
    pools
}
