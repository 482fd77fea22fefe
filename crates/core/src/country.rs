//! ISO 3166-1 alpha-2 country codes: validation and a compact value type.

use std::fmt;

/// Every officially assigned ISO 3166-1 alpha-2 code (249 of them), sorted.
const ASSIGNED: [&str; 249] = [
    "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN",
    "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE",
    "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF",
    "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY", "HK", "HM",
    "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM",
    "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC",
    "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK",
    "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA",
    "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG",
    "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW",
    "SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS",
    "ST", "SV", "SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO",
    "TR", "TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
    "VN", "VU", "WF", "WS", "YE", "YT", "ZA", "ZM", "ZW",
];

/// A validated, upper-case ISO 3166-1 alpha-2 country code.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Country([u8; 2]);

impl Country {
    /// Parses a code case-insensitively; `None` unless it is an assigned alpha-2 code.
    pub fn parse(input: &str) -> Option<Self> {
        let &[a, b] = input.as_bytes() else {
            return None;
        };
        let code = [a.to_ascii_uppercase(), b.to_ascii_uppercase()];
        let text = std::str::from_utf8(&code).ok()?;
        ASSIGNED.binary_search(&text).ok().map(|_| Self(code))
    }

    /// Accepts any two ASCII letters, upper-cased. Geo databases use a few codes
    /// outside the assigned list (`EU`, `AP`, `XK`); they are facts, not input to validate.
    pub(crate) fn from_geo(input: &str) -> Option<Self> {
        match input.as_bytes() {
            &[a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Some(Self([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => None,
        }
    }

    /// Whether `text` is exactly this code (upper case, as Cedar compares strings).
    pub(crate) fn is(&self, text: &str) -> bool {
        text.as_bytes() == self.0
    }

    /// The code as an upper-case string slice.
    pub(crate) fn as_str(&self) -> &str {
        // Both bytes are ASCII letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Country({})", self.as_str())
    }
}

impl serde::Serialize for Country {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_sorted_and_unique() {
        assert!(ASSIGNED.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn is_compares_exactly_as_cedar_compares_strings() {
        let ru = Country::parse("RU").unwrap();
        assert!(ru.is("RU"));
        for other in ["ru", "Ru", "RUS", "R", "", "UR"] {
            assert!(!ru.is(other), "{other}");
        }
    }

    #[test]
    fn parses_case_insensitively() {
        assert_eq!(
            Country::parse("ru").map(|c| c.to_string()),
            Some("RU".into())
        );
        assert_eq!(
            Country::parse("Gb").map(|c| c.to_string()),
            Some("GB".into())
        );
    }

    #[test]
    fn rejects_unassigned_and_malformed() {
        for bad in ["ZZ", "XK", "Iran", "", "R", "RUS", "1A", "ßß"] {
            assert_eq!(Country::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn geo_codes_are_looser() {
        assert_eq!(
            Country::from_geo("eu").map(|c| c.to_string()),
            Some("EU".into())
        );
        assert_eq!(Country::from_geo("E1"), None);
    }
}
