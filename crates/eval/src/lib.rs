//! Screening quality, measured the way a compliance team tries it.
//!
//! Everything here is generated reproducibly (a fixed seed) from the real lists
//! kept under `tests/fixtures/`:
//!
//! - [`variants`]: spelling variants of designated individuals of the 2021 SDN
//!   list, one kind at a time (reordered, a letter substituted, inserted,
//!   deleted or transposed in any token, tokens joined or split, a middle name
//!   dropped, particles and hyphens moved, Cyrillic and Arabic renderings);
//! - [`innocents`]: realistic names of people who are not on the list, from the
//!   name tables of the `fake` crate across locales;
//! - [`sets::un_original_script`]: the UN consolidated list's names in their
//!   own script, screened against the same list with every non-Latin name
//!   removed;
//! - [`sets::name_bench`]: the public labelled pairs.
//!
//! [`report`] screens them through the service's own index at a threshold and
//! prints the tables of `docs/screening.md`; the suite (`tests/quality.rs`)
//! holds the floors.

// The generators index into token and letter vectors they have just built and
// measured; nothing here reads input from outside the repository's fixtures.
#![allow(clippy::indexing_slicing)]

pub mod innocents;
pub mod render;
pub mod report;
pub mod sets;
pub mod variants;

use std::net::IpAddr;
use std::path::PathBuf;

use portcullis_core::country::Country;
use portcullis_core::names::NameKind;
use portcullis_core::screening::{Person, Role, ScreeningIndex, Subject};

/// The repository's `tests/fixtures` directory.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// One name to screen, as a customer of a known kind.
#[derive(Debug, Clone)]
pub struct Customer<'a> {
    /// The name as written.
    pub name: &'a str,
    /// What the customer declared itself to be.
    pub kind: NameKind,
    /// The customer's nationalities, if declared.
    pub countries: Vec<Country>,
}

impl Subject for Customer<'_> {
    fn people(&self) -> impl Iterator<Item = Person<'_>> {
        std::iter::once(Person {
            role: Role::Customer,
            name: self.name,
            kind: self.kind,
            aliases: &[],
            date_of_birth: None,
            countries: self.countries.clone(),
        })
    }

    fn identifiers(&self) -> impl Iterator<Item = &str> {
        std::iter::empty()
    }

    fn email(&self) -> Option<&str> {
        None
    }

    fn source_ips(&self) -> impl Iterator<Item = IpAddr> {
        std::iter::empty()
    }
}

/// What screening a name found: the best score for the expected designation
/// (0 when it was not retrieved) and the best score of any designation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Outcome {
    /// The best score of a match on the designation the name stands for.
    pub expected: u8,
    /// The best score of any match.
    pub best: u8,
}

/// Screens `name` as a customer of `kind` and reports how it scored against
/// `expected` (a designation id) and overall.
pub fn screen(
    index: &ScreeningIndex,
    name: &str,
    kind: NameKind,
    expected: Option<&str>,
    threshold: u8,
) -> Outcome {
    let customer = Customer {
        name,
        kind,
        countries: Vec::new(),
    };
    let screening = index.screen_uncached(&customer, threshold);
    let expected = expected.map_or(0, |id| {
        screening
            .matches
            .iter()
            .filter(|m| m.designation == id)
            .map(|m| m.score)
            .max()
            .unwrap_or(0)
    });
    Outcome {
        expected,
        best: screening.score,
    }
}
