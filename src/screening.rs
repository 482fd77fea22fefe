//! Screening of a request's people against designated persons.
//!
//! The [`ScreeningIndex`] is built once per snapshot. Screening a name looks up
//! keys in hash maps, so its cost does not grow with the number of designations.
//! Matching today is exact on a normalised name key (case, accents, script,
//! punctuation and word order folded) and on identifiers, emails, email
//! domains and CIDRs. Each match carries a score 0–100; fuzzier matchers add
//! candidates and scores through the same [`Match`] type.

use std::collections::HashMap;
use std::net::IpAddr;

use serde::Serialize;

use crate::designation::Designated;
use crate::request::DecideRequest;

/// What a match was found on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    Name,
    Identifier,
    Email,
    EmailDomain,
    Cidr,
}

/// One designated person matched by the request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Match {
    /// The designation id (`SMP-0001`).
    pub designation: String,
    /// The designated name (or identifier, email, domain, network) that matched.
    pub name: String,
    /// What in the request matched it.
    pub screened: String,
    /// `customer`, `customer.alias`, `beneficial_owner`, … .
    pub party: &'static str,
    pub basis: Basis,
    pub score: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measure: Option<String>,
}

/// The best score and every match, highest score first.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Screening {
    pub score: u8,
    pub matches: Vec<Match>,
}

/// Folds a name to its comparison key: transliterated to ASCII, lower-case,
/// punctuation removed, tokens sorted. `"Petrov, Ivan"` and `"IVAN  PETROV"` and
/// `"Иван Петров"` all give `"ivan petrov"`.
pub fn name_key(name: &str) -> String {
    let ascii = deunicode::deunicode(name);
    let mut tokens: Vec<String> = ascii
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    tokens.sort_unstable();
    tokens.join(" ")
}

/// Folds an identifier value: ASCII letters and digits only, upper-case.
pub fn identifier_key(value: &str) -> String {
    value
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

pub fn email_key(email: &str) -> String {
    email.trim().to_ascii_lowercase()
}

fn domain_key(domain: &str) -> String {
    domain
        .trim()
        .trim_start_matches('@')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

/// Designations indexed for lookup. Indices point into `entries`.
#[derive(Debug, Default)]
pub struct ScreeningIndex {
    entries: Vec<Designated>,
    names: HashMap<String, Vec<(u32, u16)>>,
    identifiers: HashMap<String, Vec<(u32, u16)>>,
    emails: HashMap<String, Vec<u32>>,
    domains: HashMap<String, Vec<u32>>,
    cidrs: Vec<(ipnetwork::IpNetwork, u32)>,
}

impl ScreeningIndex {
    pub fn build(entries: Vec<Designated>) -> Self {
        let mut index = Self::default();
        for (i, d) in entries.iter().enumerate() {
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            for (n, name) in d.record.names.iter().enumerate() {
                let key = name_key(name);
                if !key.is_empty() {
                    let slot = index.names.entry(key).or_default();
                    slot.push((i, u16::try_from(n).unwrap_or(u16::MAX)));
                }
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
        index.entries = entries;
        index
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> &[Designated] {
        &self.entries
    }

    /// Screens every person and identity attribute of a request.
    pub fn screen(&self, req: &DecideRequest) -> Screening {
        let mut out = Screening::default();
        if self.entries.is_empty() {
            return out;
        }
        let c = &req.customer;
        self.screen_name(c.name.as_str(), "customer", &mut out);
        for alias in &c.aliases {
            self.screen_name(alias, "customer.alias", &mut out);
        }
        for owner in &c.beneficial_owners {
            self.screen_name(owner.name.as_str(), "beneficial_owner", &mut out);
            for alias in &owner.aliases {
                self.screen_name(alias, "beneficial_owner.alias", &mut out);
            }
        }
        for id in &c.identifiers {
            if let Some(hits) = self.identifiers.get(&identifier_key(id.value.as_str())) {
                for &(i, n) in hits {
                    let name = self
                        .entry(i)
                        .and_then(|d| d.record.identifiers.get(usize::from(n)))
                        .map(|x| x.value.clone())
                        .unwrap_or_default();
                    self.push(
                        &mut out,
                        i,
                        name,
                        id.value.as_str(),
                        "customer",
                        Basis::Identifier,
                    );
                }
            }
        }
        if let Some(email) = c.email.as_deref().filter(|e| !e.trim().is_empty()) {
            let key = email_key(email);
            for &i in self.emails.get(&key).into_iter().flatten() {
                self.push(&mut out, i, key.clone(), email, "customer", Basis::Email);
            }
            if let Some((_, domain)) = key.rsplit_once('@') {
                self.screen_domain(domain, email, &mut out);
            }
        }
        for ip in &req.source_ips {
            self.screen_ip(ip.0, &mut out);
        }
        out.matches.sort_by(|a, b| {
            b.score
                .cmp(&a.score)
                .then_with(|| a.designation.cmp(&b.designation))
        });
        out.score = out.matches.first().map_or(0, |m| m.score);
        out
    }

    fn entry(&self, i: u32) -> Option<&Designated> {
        self.entries.get(usize::try_from(i).ok()?)
    }

    fn screen_name(&self, name: &str, party: &'static str, out: &mut Screening) {
        let key = name_key(name);
        for &(i, n) in self.names.get(&key).into_iter().flatten() {
            let designated = self
                .entry(i)
                .and_then(|d| d.record.names.get(usize::from(n)))
                .cloned()
                .unwrap_or_default();
            self.push(out, i, designated, name, party, Basis::Name);
        }
    }

    /// An email's domain matches a designated domain or any of its subdomains.
    fn screen_domain(&self, domain: &str, email: &str, out: &mut Screening) {
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
                );
            }
            match rest.split_once('.') {
                Some((_, parent)) if parent.contains('.') => rest = parent,
                _ => break,
            }
        }
    }

    fn screen_ip(&self, ip: IpAddr, out: &mut Screening) {
        for (net, i) in &self.cidrs {
            if net.contains(ip) {
                self.push(
                    out,
                    *i,
                    net.to_string(),
                    &ip.to_string(),
                    "source_ip",
                    Basis::Cidr,
                );
            }
        }
    }

    fn push(
        &self,
        out: &mut Screening,
        i: u32,
        name: String,
        screened: &str,
        party: &'static str,
        basis: Basis,
    ) {
        let Some(d) = self.entry(i) else { return };
        if out
            .matches
            .iter()
            .any(|m| m.designation == d.record.id && m.basis == basis && m.screened == screened)
        {
            return;
        }
        out.matches.push(Match {
            designation: d.record.id.clone(),
            name,
            screened: screened.to_owned(),
            party,
            basis,
            score: 100,
            measure: d.record.measure.clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::designation::parse_file;
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

    const LIST: &str = r#"{"id":"SMP-1","names":["Ivan Sergeyevich Petrov","Иван Петров"],"identifiers":[{"kind":"passport","value":"AB 123-456"}],"emails":["ivan@evil.example"],"domains":["bad.example"],"cidrs":["203.0.113.0/24"]}
{"id":"SMP-2","kind":"organization","names":["Zenith Dynamics LLC"]}"#;

    #[test]
    fn name_key_folds_case_accents_punctuation_order_and_script() {
        assert_eq!(name_key("Petrov, IVAN"), "ivan petrov");
        assert_eq!(name_key("Иван Петров"), "ivan petrov");
        assert_eq!(
            name_key("José  Núñez-García"),
            name_key("garcia jose nunez")
        );
    }

    #[test]
    fn exact_name_alias_and_script_match() {
        let idx = index(LIST);
        let s = idx.screen(&request(r#"{"id":"c","name":"PETROV Ivan"}"#, ""));
        assert_eq!(s.score, 100);
        assert_eq!(s.matches[0].designation, "SMP-1");
        assert_eq!(s.matches[0].name, "Иван Петров");
        let s = idx.screen(&request(
            r#"{"id":"c","name":"Someone","beneficial_owners":[{"name":"zenith dynamics, llc"}]}"#,
            "",
        ));
        assert_eq!(s.matches[0].designation, "SMP-2");
        assert_eq!(s.matches[0].party, "beneficial_owner");
    }

    #[test]
    fn identifier_email_domain_and_cidr_match() {
        let idx = index(LIST);
        let s = idx.screen(&request(
            r#"{"id":"c","name":"X","identifiers":[{"kind":"passport","value":"ab123456"}]}"#,
            "",
        ));
        assert_eq!(s.matches[0].basis, Basis::Identifier);
        let s = idx.screen(&request(
            r#"{"id":"c","name":"X","email":"Ivan@Evil.Example"}"#,
            "",
        ));
        assert_eq!(s.matches[0].basis, Basis::Email);
        let s = idx.screen(&request(
            r#"{"id":"c","name":"X","email":"a@mail.bad.example"}"#,
            "",
        ));
        assert_eq!(s.matches[0].basis, Basis::EmailDomain);
        let s = idx.screen(&request(
            r#"{"id":"c","name":"X"}"#,
            r#""::ffff:203.0.113.9""#,
        ));
        assert_eq!(s.matches[0].basis, Basis::Cidr);
    }

    #[test]
    fn innocent_names_do_not_match() {
        let idx = index(LIST);
        let s = idx.screen(&request(
            r#"{"id":"c","name":"Ivan Petrovich","email":"ivan@good.example"}"#,
            r#""203.0.114.1""#,
        ));
        assert_eq!(s, Screening::default());
    }
}
