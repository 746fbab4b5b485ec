//! The fast path of the alert check: the top-level members of a JSON object, each
//! value's exact text, found by one pass that accepts only what serde_json accepts.
//!
//! serde_json tokenises every value it is asked to skip, a byte or a word at a time,
//! through its general reader; at 64 KB, skipping `alertContext` was half of what a
//! check cost. This scanner knows it only has to say whether a value is well-formed
//! and where it ends: string bodies are searched 8 bytes at a time for the three bytes
//! that matter (`"`, `\`, a control character) and structure is a small loop with a
//! bit stack. It gives up (`None`) on anything it leaves to serde_json: a syntax
//! error (whose words serde_json gives), an escaped key (which must be decoded to be
//! named), or nesting deeper than its stack. So a body is checked the same whichever
//! path reads it; `tests` holds the two to each other.

/// Calls `each(key, value)` for every member of the object `text` holds, in order,
/// `value` being the member's JSON text as serde_json's `RawValue` would give it.
/// `None` (after calling `each` for none, some or all members) means "let serde_json
/// read it": the caller starts again there.
pub(super) fn members<'a>(text: &'a str, mut each: impl FnMut(&'a str, &'a str)) -> Option<()> {
    let mut scanner = Scanner {
        bytes: text.as_bytes(),
        at: 0,
    };
    scanner.whitespace();
    scanner.eat(b'{')?;
    scanner.whitespace();
    if scanner.peek() == Some(b'}') {
        scanner.at += 1;
    } else {
        loop {
            let key = scanner.key()?;
            scanner.whitespace();
            scanner.eat(b':')?;
            scanner.whitespace();
            let start = scanner.at;
            scanner.value()?;
            // Both ends fall on ASCII bytes (structure), so these are char boundaries.
            each(&text[key.0..key.1], text.get(start..scanner.at)?);
            scanner.whitespace();
            match scanner.next()? {
                b',' => scanner.whitespace(),
                b'}' => break,
                _ => return None,
            }
        }
    }
    scanner.whitespace();
    (scanner.at == scanner.bytes.len()).then_some(())
}

struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

/// The deepest nesting followed here (serde_json follows any: deeper goes to it).
const MAX_DEPTH: usize = 256;

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.next()? == byte).then_some(())
    }

    /// JSON's whitespace, as serde_json's `parse_whitespace` takes it.
    fn whitespace(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    /// A member's key without escapes: the span of its text between the quotes.
    fn key(&mut self) -> Option<(usize, usize)> {
        self.eat(b'"')?;
        let start = self.at;
        let end = start + find_special(&self.bytes[start..])?;
        (self.bytes[end] == b'"').then_some(())?;
        self.at = end + 1;
        Some((start, end))
    }

    /// The rest of a string whose opening quote was read.
    fn string(&mut self) -> Option<()> {
        loop {
            self.at += find_special(&self.bytes[self.at..])?;
            match self.next()? {
                b'"' => return Some(()),
                b'\\' => match self.next()? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                    // serde_json does not judge the code point of a skipped escape.
                    b'u' => {
                        let digits = self.bytes.get(self.at..self.at + 4)?;
                        digits.iter().all(u8::is_ascii_hexdigit).then_some(())?;
                        self.at += 4;
                    }
                    _ => return None,
                },
                _ => return None,
            }
        }
    }

    /// A number, with serde_json's grammar (`-`? int frac? exp?).
    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.next()? {
            b'0' => {}
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.some_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            self.some_digits()?;
        }
        Some(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|byte| byte.is_ascii_digit()) {
            self.at += 1;
        }
    }

    fn some_digits(&mut self) -> Option<()> {
        let start = self.at;
        self.digits();
        (self.at > start).then_some(())
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let found = self.bytes.get(self.at..self.at + word.len())?;
        (found == word).then_some(())?;
        self.at += word.len();
        Some(())
    }

    /// One value, nested ones included, without recursion: the open containers are
    /// a bit stack (1: object, 0: array).
    fn value(&mut self) -> Option<()> {
        let mut open = [0u64; MAX_DEPTH / 64];
        let mut depth = 0usize;
        let is_object = |open: &[u64; MAX_DEPTH / 64], depth: usize| {
            open[(depth - 1) / 64] >> ((depth - 1) % 64) & 1 == 1
        };
        loop {
            // A value is expected here.
            match self.next()? {
                container @ (b'{' | b'[') => {
                    self.whitespace();
                    let close = if container == b'{' { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.at += 1;
                    } else {
                        if depth == MAX_DEPTH {
                            return None;
                        }
                        let bit = 1u64 << (depth % 64);
                        if container == b'{' {
                            open[depth / 64] |= bit;
                            depth += 1;
                            self.key()?;
                            self.whitespace();
                            self.eat(b':')?;
                        } else {
                            open[depth / 64] &= !bit;
                            depth += 1;
                        }
                        self.whitespace();
                        continue;
                    }
                }
                b'"' => self.string()?,
                b'-' | b'0'..=b'9' => {
                    self.at -= 1;
                    self.number()?;
                }
                b't' => self.literal(b"rue")?,
                b'f' => self.literal(b"alse")?,
                b'n' => self.literal(b"ull")?,
                _ => return None,
            }
            // A value ended: close what it ends, or find the next one.
            loop {
                if depth == 0 {
                    return Some(());
                }
                self.whitespace();
                let object = is_object(&open, depth);
                match (self.next()?, object) {
                    (b',', true) => {
                        self.whitespace();
                        self.key()?;
                        self.whitespace();
                        self.eat(b':')?;
                        self.whitespace();
                        break;
                    }
                    (b',', false) => {
                        self.whitespace();
                        break;
                    }
                    (b'}', true) | (b']', false) => depth -= 1,
                    _ => return None,
                }
            }
        }
    }
}

/// Where the first `"`, `\` or control character (below U+0020) is, 8 bytes at a
/// time: a string's body is everything else.
fn find_special(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut words = bytes.chunks_exact(8);
    let mut offset = 0;
    for word in words.by_ref() {
        let word = u64::from_le_bytes(word.try_into().unwrap_or_default());
        let quote = word ^ (ONES * u64::from(b'"'));
        let backslash = word ^ (ONES * u64::from(b'\\'));
        // A byte is zero (or below 0x20) where subtracting borrows into its high bit
        // and the byte itself had it clear: exact for the lowest such byte.
        let found = (quote.wrapping_sub(ONES) & !quote
            | backslash.wrapping_sub(ONES) & !backslash
            | word.wrapping_sub(ONES * 0x20) & !word)
            & HIGHS;
        if found != 0 {
            return Some(offset + found.trailing_zeros() as usize / 8);
        }
        offset += 8;
    }
    let tail = words.remainder();
    tail.iter()
        .position(|&byte| byte == b'"' || byte == b'\\' || byte < 0x20)
        .map(|at| offset + at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(text: &str) -> Option<Vec<(&str, &str)>> {
        let mut found = Vec::new();
        members(text, |key, value| found.push((key, value)))?;
        Some(found)
    }

    #[test]
    fn members_are_the_raw_values_serde_json_gives() {
        let text = r#" { "a" : [1, -0.5e+3, {"b": [true, false, null]}] ,"c":"x\"\u00e9\n","d":{} , "e": [ ] }  "#;
        assert_eq!(
            spans(text).unwrap(),
            [
                ("a", r#"[1, -0.5e+3, {"b": [true, false, null]}]"#),
                ("c", r#""x\"\u00e9\n""#),
                ("d", "{}"),
                ("e", "[ ]"),
            ]
        );
        assert_eq!(spans("{}").unwrap(), []);
    }

    #[test]
    fn what_serde_json_refuses_is_left_to_it() {
        for text in [
            "",
            "[]",
            "{",
            r#"{"a":1,}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":1e}"#,
            r#"{"a":-}"#,
            r#"{"a":+1}"#,
            r#"{"a":.5}"#,
            r#"{"a":tru}"#,
            r#"{"a":nul}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\u12g4"}"#,
            "{\"a\":\"tab\there\"}",
            r#"{"a":"open}"#,
            r#"{"a":{"b"}}"#,
            r#"{"a":{1:2}}"#,
            r#"{"a":[}"#,
            r#"{"a":{]}"#,
            r#"{"a":1 2}"#,
            r#"{"a":1} x"#,
            r#"{"a":1}{}"#,
            r#"{"a\u0062":1}"#,
        ] {
            assert!(spans(text).is_none(), "{text:?}");
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(300), "]".repeat(300));
        assert!(
            spans(&deep).is_none(),
            "deeper than the stack: serde_json's"
        );
        let deep_enough = format!("{{\"a\":{}{}}}", "[".repeat(256), "]".repeat(256));
        assert_eq!(spans(&deep_enough).unwrap().len(), 1);
    }

    #[test]
    fn special_bytes_are_found_wherever_they_are() {
        for length in 0..40 {
            for at in 0..length {
                for special in [b'"', b'\\', 0x00, 0x1f] {
                    let mut bytes = vec![b'a'; length];
                    bytes[at] = special;
                    if at + 1 < length {
                        bytes[at + 1] = b'"';
                    }
                    assert_eq!(find_special(&bytes), Some(at), "{length} {at} {special}");
                }
            }
            let plain: Vec<u8> = (0..length)
                .map(|i| 0x20 + u8::try_from(i * 7 % 0x60).unwrap())
                .filter(|byte| *byte != b'"' && *byte != b'\\')
                .collect();
            assert_eq!(find_special(&plain), None);
            let high = vec![0xe9u8; length];
            assert_eq!(find_special(&high), None, "bytes of other characters");
        }
    }
}
