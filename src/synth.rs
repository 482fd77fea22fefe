//! Synthetic policy directories for benchmarks and capacity tests: many
//! jurisdiction measures, conditions and obligations, and a large list of
//! designated persons, all valid against the built-in schema.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use portcullis_core::snapshot::DESIGNATIONS_DIR;

pub mod accounts;

/// Real ISO codes the generated measures cycle over.
const CODES: [&str; 48] = [
    "AF", "AL", "AM", "AO", "AR", "AZ", "BA", "BD", "BH", "BI", "BO", "BY", "CD", "CF", "CG", "CM",
    "CU", "DZ", "EG", "ER", "ET", "GN", "GW", "HT", "IQ", "IR", "KG", "KH", "KP", "LA", "LB", "LY",
    "MD", "ML", "MM", "MZ", "NE", "NI", "PK", "RU", "SD", "SO", "SS", "SY", "TJ", "TM", "VE", "YE",
];

const GIVEN: [&str; 16] = [
    "Ivan", "Olga", "Ahmad", "Fatima", "Wei", "Li", "Sergei", "Anna", "Omar", "Leila", "Dmitri",
    "Yusuf", "Mei", "Hassan", "Elena", "Reza",
];
const FAMILY: [&str; 16] = [
    "Petrov",
    "Ivanova",
    "Karimi",
    "Haddad",
    "Zhang",
    "Wang",
    "Smirnov",
    "Kuznetsova",
    "Rahimi",
    "Nasser",
    "Volkov",
    "Demir",
    "Chen",
    "Mahmoud",
    "Sokolova",
    "Tehrani",
];

/// The text of `n` policies: a baseline permit, then jurisdiction forbids (most
/// of them), conditions on large GPU clusters, obligations and owner-country
/// forbids. Every other jurisdiction forbid is guarded by `containsAny`.
pub fn policies(n: usize) -> String {
    let mut out = String::from("@id(\"baseline\")\npermit(principal, action, resource);\n\n");
    for i in 1..n {
        let code = CODES.get(i % CODES.len()).copied().unwrap_or("KP");
        let other = CODES
            .get((i * 7 + 3) % CODES.len())
            .copied()
            .unwrap_or("IR");
        let _ = match i % 10 {
            0 => writeln!(
                out,
                "@id(\"gen-{i}\") @measure(\"SM-GEN-{i}\") @condition(\"end_use_{i}\")\n\
                 forbid(principal, action == Action::\"provision\", resource)\n\
                 when {{ context.jurisdictions.contains(\"{code}\") && resource.gpu_count >= {} }};\n",
                8 * (i % 64 + 1)
            ),
            1 => writeln!(
                out,
                "@id(\"gen-{i}\") @measure(\"SM-GEN-{i}\") @obligation(\"monitor_{i}\")\n\
                 permit(principal, action, resource)\n\
                 when {{ context.ip_country_mismatch && context.ip_countries.contains(\"{code}\") }};\n"
            ),
            2 => writeln!(
                out,
                "@id(\"gen-{i}\") @measure(\"SM-GEN-{i}\")\n\
                 forbid(principal, action, resource)\n\
                 when {{ principal.owner_countries.containsAny([\"{code}\", \"{other}\"]) && action == Action::\"open_account\" }};\n"
            ),
            k if k % 2 == 0 => writeln!(
                out,
                "@id(\"gen-{i}\") @measure(\"SM-GEN-{i}\") @message(\"ties to {code} are prohibited\")\n\
                 forbid(principal, action, resource)\n\
                 when {{ context.jurisdictions.contains(\"{code}\") }};\n"
            ),
            _ => writeln!(
                out,
                "@id(\"gen-{i}\") @measure(\"SM-GEN-{i}\")\n\
                 forbid(principal, action, resource)\n\
                 when {{ context.jurisdictions.containsAny([\"{code}\", \"{other}\"]) && principal.kind == \"organization\" }};\n"
            ),
        };
    }
    out
}

/// `n` designated persons as JSON Lines: names with aliases, some with dates of
/// birth, identifiers, emails and networks.
pub fn designations(n: usize) -> String {
    let mut out = String::with_capacity(n * 200);
    for i in 0..n {
        let given = GIVEN.get(i % GIVEN.len()).copied().unwrap_or("Ivan");
        let family = FAMILY
            .get((i / GIVEN.len()) % FAMILY.len())
            .copied()
            .unwrap_or("Petrov");
        let code = CODES.get(i % CODES.len()).copied().unwrap_or("RU");
        let record = serde_json::json!({
            "id": format!("SYN-{i:06}"),
            "kind": if i % 5 == 0 { "organization" } else { "individual" },
            "names": [format!("{given} {family} {i}"), format!("{family} {given} N{i}")],
            "date_of_birth": format!("{}-{:02}-{:02}", 1940 + i % 60, 1 + i % 12, 1 + i % 28),
            "nationalities": [code],
            "identifiers": [{"kind": "passport", "value": format!("P{i:08}")}],
            "emails": [format!("person{i}@synthetic.example")],
            "cidrs": if i % 50 == 0 { vec![format!("10.{}.{}.0/24", (i / 256) % 256, i % 256)] } else { vec![] },
            "measure": format!("SM-GEN-{}", i % 100),
        });
        let _ = writeln!(out, "{record}");
    }
    out
}

/// Writes a policy directory with `policies` policies and `designations`
/// designated persons.
pub fn write_dir(dir: &Path, policy_count: usize, designation_count: usize) -> io::Result<()> {
    std::fs::create_dir_all(dir.join(DESIGNATIONS_DIR))?;
    std::fs::write(dir.join("generated.cedar"), policies(policy_count.max(1)))?;
    std::fs::write(
        dir.join(DESIGNATIONS_DIR).join("generated.jsonl"),
        designations(designation_count),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_core::snapshot::{Snapshot, Sources};

    #[test]
    fn generated_directories_are_valid() {
        let dir = tempfile::tempdir().unwrap();
        write_dir(dir.path(), 120, 300).unwrap();
        let s = Snapshot::build(Sources::new(dir.path().to_owned(), Vec::new())).unwrap();
        assert_eq!(s.policies.len(), 120);
        assert_eq!(s.designations.len(), 300);
    }
}
