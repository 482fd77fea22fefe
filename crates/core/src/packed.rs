//! Prepared designated names held as bytes, end to end in one buffer.
//!
//! A [`NormalName`] is built for comparison, not for keeping: a dozen
//! vectors and strings, each its own allocation, about 350 bytes before any
//! text. The screening index holds tens of thousands (hundreds of thousands
//! for a consolidated list) and compares at most a few dozen per screened
//! name, so it keeps each one packed (its texts and marks, about 60–120
//! bytes) and unpacks a candidate into a reused [`NormalName`] when it scores
//! it: a few copies, no allocation once the scratch name has grown.
//!
//! The layout is private to this module and rebuilt with every index: the
//! length of a head (four bytes), the head, then the name's texts end to end,
//! checked as UTF-8 once per unpacking. In the head a count or length is one
//! byte; a text is its length there and its bytes in the texts. A name with a
//! longer count or text (no real name has a token of 256 bytes or 256
//! tokens) is not packed: it never unpacks, and the index prepares it afresh.

use crate::frozen::span;
use crate::names::{NormalName, legal_form_class, legal_form_index};
use crate::scripts::{ArabicMarks, Initial, Script};

/// Packed names, numbered in the order they were pushed.
#[derive(Debug, Default)]
pub struct PackedNames {
    bytes: Vec<u8>,
    /// Name `i` is `bytes[ends[i - 1]..ends[i]]` (from 0 for the first).
    ends: Vec<u32>,
}

impl PackedNames {
    /// Packs `name` (its exact key is not kept); its number is the count of
    /// names before it.
    pub fn push(&mut self, name: &NormalName) -> u32 {
        let mut w = Writer {
            head: Vec::with_capacity(64),
            text: String::with_capacity(64),
            whole: true,
        };
        w.strings(&name.tokens);
        w.strings(&name.keys);
        w.len(name.scripts.len());
        for s in &name.scripts {
            w.byte(script_code(*s));
        }
        w.positioned(&name.alt_keys);
        w.positioned(&name.alt_tokens);
        w.len(name.arabic_marks.len());
        for (at, marks) in name.arabic_marks.iter().take(usize::from(u8::MAX)) {
            w.len(*at);
            w.marks(marks);
        }
        w.u64(name.articled);
        w.strings(&name.particles);
        w.strings(&name.numbers);
        w.len(name.forms.len());
        for form in name.forms.iter().take(usize::from(u8::MAX)) {
            w.len(legal_form_index(form).unwrap_or(usize::from(u8::MAX)));
        }
        match name.patronymic_head.as_deref() {
            Some((text, key, script)) => {
                w.byte(1);
                w.str(text);
                w.str(key);
                w.byte(script_code(*script));
            }
            None => w.byte(0),
        }
        w.str(&name.joined);
        w.str(&name.joined_key);
        w.u64(name.family);
        w.u64(name.run_breaks);
        match u32::try_from(w.head.len()) {
            Ok(head) if w.whole && head != u32::MAX => {
                self.bytes.extend_from_slice(&head.to_le_bytes());
                self.bytes.extend_from_slice(&w.head);
                self.bytes.extend_from_slice(w.text.as_bytes());
            }
            // Something had to be cut: a head no unpacking reads, so the
            // caller prepares the name afresh instead of scoring it cut.
            _ => self.bytes.extend_from_slice(&u32::MAX.to_le_bytes()),
        }
        self.ends
            .push(u32::try_from(self.bytes.len()).unwrap_or(u32::MAX));
        u32::try_from(self.ends.len() - 1).unwrap_or(u32::MAX)
    }

    /// Unpacks name `i` into `out`, reusing its room. `false` when there is
    /// no such name, or it was too large to pack whole (a token of 256 bytes
    /// or more, 256 tokens or more): then `out` is not to be used.
    pub fn unpack(&self, i: u32, out: &mut NormalName) -> bool {
        let Some(bytes) = span(&self.ends, i as usize).and_then(|at| self.bytes.get(at)) else {
            return false;
        };
        let Some((head, rest)) = bytes.split_first_chunk::<4>() else {
            return false;
        };
        let Some((head, text)) = rest.split_at_checked(u32::from_le_bytes(*head) as usize) else {
            return false;
        };
        let Ok(text) = std::str::from_utf8(text) else {
            return false;
        };
        Reader { head, text }.name(out).is_some()
    }

    /// Gives back the room kept for more names.
    pub fn shrink_to_fit(&mut self) {
        self.bytes.shrink_to_fit();
        self.ends.shrink_to_fit();
    }

    /// Heap bytes held.
    pub fn heap_bytes(&self) -> usize {
        self.bytes.capacity() + 4 * self.ends.capacity()
    }
}

fn script_code(s: Script) -> u8 {
    match s {
        Script::Latin => 0,
        Script::Arabic => 1,
        Script::Cyrillic => 2,
        Script::Ideographic => 3,
        Script::Other => 4,
    }
}

fn script_of(code: u8) -> Option<Script> {
    Some(match code {
        0 => Script::Latin,
        1 => Script::Arabic,
        2 => Script::Cyrillic,
        3 => Script::Ideographic,
        4 => Script::Other,
        _ => return None,
    })
}

fn initial_code(i: Initial) -> u8 {
    match i {
        Initial::Vowel => 0,
        Initial::Consonant => 1,
        Initial::Either => 2,
    }
}

fn initial_of(code: u8) -> Option<Initial> {
    Some(match code {
        0 => Initial::Vowel,
        1 => Initial::Consonant,
        2 => Initial::Either,
        _ => return None,
    })
}

struct Writer {
    head: Vec<u8>,
    text: String,
    /// Whether nothing was cut to fit a one-byte count or length.
    whole: bool,
}

impl Writer {
    fn byte(&mut self, b: u8) {
        self.head.push(b);
    }

    /// A count or length, cut to a byte (see the module's note).
    fn len(&mut self, n: usize) {
        let byte = u8::try_from(n).unwrap_or(u8::MAX);
        self.whole &= usize::from(byte) == n;
        self.byte(byte);
    }

    fn bytes(&mut self, b: &[u8]) {
        self.whole &= b.len() <= usize::from(u8::MAX);
        let b = b.get(..usize::from(u8::MAX)).unwrap_or(b);
        self.len(b.len());
        self.head.extend_from_slice(b);
    }

    fn str(&mut self, s: &str) {
        // A cut inside a character would not read back: cut at a boundary.
        let mut end = s.len().min(usize::from(u8::MAX));
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.whole &= end == s.len();
        self.len(end);
        self.text.push_str(s.get(..end).unwrap_or_default());
    }

    fn strings(&mut self, list: &[String]) {
        self.len(list.len());
        for s in list.iter().take(usize::from(u8::MAX)) {
            self.str(s);
        }
    }

    fn positioned(&mut self, list: &[(usize, String)]) {
        self.len(list.len());
        for (at, s) in list.iter().take(usize::from(u8::MAX)) {
            self.len(*at);
            self.str(s);
        }
    }

    fn u64(&mut self, v: u64) {
        self.head.extend_from_slice(&v.to_le_bytes());
    }

    fn marks(&mut self, m: &ArabicMarks) {
        self.bytes(&m.vowels);
        self.bytes(&m.letters);
        self.byte(initial_code(m.initial));
        let flags = u8::from(m.feminine)
            | u8::from(m.inner_h) << 1
            | u8::from(m.any_h) << 2
            | u8::from(m.kh) << 3;
        self.byte(flags);
    }
}

struct Reader<'a> {
    head: &'a [u8],
    /// The texts not read yet.
    text: &'a str,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.head.split_first()?;
        self.head = rest;
        Some(b)
    }

    fn len(&mut self) -> Option<usize> {
        self.byte().map(usize::from)
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.len()?;
        let (b, rest) = self.head.split_at_checked(n)?;
        self.head = rest;
        Some(b)
    }

    fn str(&mut self) -> Option<&'a str> {
        let n = self.len()?;
        let (s, rest) = self.text.split_at_checked(n)?;
        self.text = rest;
        Some(s)
    }

    fn string_into(&mut self, out: &mut String) -> Option<()> {
        let s = self.str()?;
        out.clear();
        out.push_str(s);
        Some(())
    }

    fn strings_into(&mut self, out: &mut Vec<String>) -> Option<()> {
        let n = self.len()?;
        out.truncate(n);
        for i in 0..n {
            let s = self.str()?;
            match out.get_mut(i) {
                Some(slot) => {
                    slot.clear();
                    slot.push_str(s);
                }
                None => out.push(s.to_owned()),
            }
        }
        Some(())
    }

    fn positioned_into(&mut self, out: &mut Vec<(usize, String)>) -> Option<()> {
        let n = self.len()?;
        out.truncate(n);
        for i in 0..n {
            let at = self.len()?;
            let s = self.str()?;
            match out.get_mut(i) {
                Some(slot) => {
                    slot.0 = at;
                    slot.1.clear();
                    slot.1.push_str(s);
                }
                None => out.push((at, s.to_owned())),
            }
        }
        Some(())
    }

    fn u64(&mut self) -> Option<u64> {
        let (b, rest) = self.head.split_first_chunk::<8>()?;
        self.head = rest;
        Some(u64::from_le_bytes(*b))
    }

    fn marks_into(&mut self, m: &mut ArabicMarks) -> Option<()> {
        let vowels = self.bytes()?;
        m.vowels.clear();
        m.vowels.extend_from_slice(vowels);
        let letters = self.bytes()?;
        m.letters.clear();
        m.letters.extend_from_slice(letters);
        m.initial = initial_of(self.byte()?)?;
        let flags = self.byte()?;
        m.feminine = flags & 1 != 0;
        m.inner_h = flags & 2 != 0;
        m.any_h = flags & 4 != 0;
        m.kh = flags & 8 != 0;
        Some(())
    }

    fn name(&mut self, out: &mut NormalName) -> Option<()> {
        self.strings_into(&mut out.tokens)?;
        self.strings_into(&mut out.keys)?;
        let n = self.len()?;
        out.scripts.clear();
        for _ in 0..n {
            out.scripts.push(script_of(self.byte()?)?);
        }
        self.positioned_into(&mut out.alt_keys)?;
        self.positioned_into(&mut out.alt_tokens)?;
        let n = self.len()?;
        out.arabic_marks.truncate(n);
        for i in 0..n {
            let at = self.len()?;
            match out.arabic_marks.get_mut(i) {
                Some(slot) => {
                    slot.0 = at;
                    self.marks_into(&mut slot.1)?;
                }
                None => {
                    let mut marks = ArabicMarks::default();
                    self.marks_into(&mut marks)?;
                    out.arabic_marks.push((at, marks));
                }
            }
        }
        out.articled = self.u64()?;
        self.strings_into(&mut out.particles)?;
        self.strings_into(&mut out.numbers)?;
        let n = self.len()?;
        out.forms.clear();
        for _ in 0..n {
            if let Some(class) = legal_form_class(self.len()?) {
                out.forms.push(class);
            }
        }
        out.patronymic_head = match self.byte()? {
            0 => None,
            _ => {
                let (text, key) = (self.str()?.to_owned(), self.str()?.to_owned());
                Some(Box::new((text, key, script_of(self.byte()?)?)))
            }
        };
        self.string_into(&mut out.joined)?;
        self.string_into(&mut out.joined_key)?;
        out.exact.clear();
        out.family = self.u64()?;
        out.run_breaks = self.u64()?;
        (self.head.is_empty() && self.text.is_empty()).then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: &[&str] = &[
        "HASSAN, Ali Mohammed",
        "صدام حسين التكريتي",
        "عبد الله بن عبد العزيز آل سعود",
        "Джойке Теураи Ропа Муджуру",
        "Гао Ян",
        "金铁三",
        "BANK MELLI IRAN ZAO",
        "AL-QAIDA IN THE ARABIAN PENINSULA 2004",
        "Ould Mohamed Lemine",
        "Rosneft Oil Company PJSC",
        "Ahmad bin Ali",
        "",
    ];

    #[test]
    fn every_name_unpacks_to_what_was_packed_but_its_exact_key() {
        let mut packed = PackedNames::default();
        let prepared: Vec<NormalName> = NAMES.iter().map(|n| NormalName::new(n)).collect();
        for (i, n) in prepared.iter().enumerate() {
            assert_eq!(packed.push(n) as usize, i);
        }
        // One scratch name through all of them, both ways round: nothing of
        // an earlier, longer name may linger.
        let mut scratch = NormalName::default();
        for order in [false, true] {
            let mut at: Vec<usize> = (0..prepared.len()).collect();
            if order {
                at.reverse();
            }
            for i in at {
                assert!(packed.unpack(i as u32, &mut scratch), "{}", NAMES[i]);
                let mut expected = prepared[i].clone();
                expected.exact.clear();
                assert_eq!(scratch, expected, "{}", NAMES[i]);
            }
        }
        assert!(!packed.unpack(NAMES.len() as u32, &mut scratch));
    }

    #[test]
    fn a_name_too_large_to_pack_whole_never_unpacks() {
        let mut packed = PackedNames::default();
        let long_token = format!("Ali {}", "x".repeat(300));
        let ok = packed.push(&NormalName::new("Omar Ali"));
        let cut = packed.push(&NormalName::new(&long_token));
        let after = packed.push(&NormalName::new("Ali Omar"));
        let mut scratch = NormalName::default();
        assert!(!packed.unpack(cut, &mut scratch));
        // A name of hundreds of words is prepared from its first words only,
        // and packs whole.
        let many = packed.push(&NormalName::new(&["Omar"; 300].join(" ")));
        assert!(packed.unpack(many, &mut scratch));
        assert_eq!(scratch.tokens.len(), crate::names::MAX_NAME_TOKENS);
        // Its neighbours are untouched.
        for (i, name) in [(ok, "Omar Ali"), (after, "Ali Omar")] {
            assert!(packed.unpack(i, &mut scratch));
            assert_eq!(scratch.tokens, NormalName::new(name).tokens);
        }
    }
}
