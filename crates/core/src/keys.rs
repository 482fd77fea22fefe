//! Comparison keys: the folded forms of names, identifiers, e-mail addresses
//! and domains that screening indexes and decision records hash. One
//! definition, so that a record's pseudonym and a designation's index key
//! fold a value the same way.

/// Folds a name to its exact comparison key: transliterated to ASCII,
/// lower-case, punctuation removed, tokens sorted. `"Petrov, Ivan"` and
/// `"IVAN  PETROV"` and `"Иван Петров"` all give `"ivan petrov"`.
pub fn name_key(name: &str) -> String {
    // `NormalName::new(name).exact`, without the rest of the normalisation.
    crate::names::exact_key(name)
}

/// Folds an identifier value: ASCII letters and digits only, upper-case.
pub fn identifier_key(value: &str) -> String {
    value
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Folds an e-mail address: trimmed, lower-case.
pub fn email_key(email: &str) -> String {
    email.trim().to_ascii_lowercase()
}

/// Folds a domain: trimmed, without a leading `@` or a trailing dot, lower-case.
pub(crate) fn domain_key(domain: &str) -> String {
    domain
        .trim()
        .trim_start_matches('@')
        .trim_end_matches('.')
        .to_ascii_lowercase()
}
