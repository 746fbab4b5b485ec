//! Making untrusted text safe for a terminal.
//!
//! Anything that came from the network can carry bytes that move the cursor,
//! rewrite the title, plant OSC-8 hyperlinks or reorder text (bidi overrides).
//! Such characters are shown as visible escapes instead.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io;

use serde_json::ser::Formatter;

/// True for characters that must never reach a terminal raw: C0 and C1 controls,
/// DEL, bidirectional controls and the Unicode line/paragraph separators.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
                | '\u{2028}' | '\u{2029}'
        )
}

/// Escapes every unsafe character, for one-line fields (path, header, problem text).
pub fn escape_line(text: &str) -> Cow<'_, str> {
    escape_with(text, is_unsafe)
}

/// Escapes every unsafe character but newlines and tabs, for multi-line bodies.
pub fn escape_block(text: &str) -> Cow<'_, str> {
    escape_with(text, |c| c != '\n' && c != '\t' && is_unsafe(c))
}

fn escape_with(text: &str, unsafe_char: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(&unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if !unsafe_char(c) {
            escaped.push(c);
            continue;
        }
        let _ = match c {
            '\n' => write!(escaped, "\\n"),
            '\r' => write!(escaped, "\\r"),
            '\t' => write!(escaped, "\\t"),
            c if (c as u32) < 0x100 => write!(escaped, "\\x{:02x}", c as u32),
            c => write!(escaped, "\\u{{{:04x}}}", c as u32),
        };
    }
    Cow::Owned(escaped)
}

/// A JSON formatter that also escapes, as `\uXXXX`, the unsafe characters that
/// JSON allows raw in strings (DEL, C1, bidi controls). The output stays valid
/// JSON and decodes to the same text. serde_json already escapes C0 itself.
#[derive(Clone, Debug)]
pub struct SafeFormatter<F>(pub F);

impl<F: Formatter> Formatter for SafeFormatter<F> {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // Every unsafe character is DEL or beyond ASCII (serde_json escapes C0 itself).
        if fragment.bytes().all(|b| b < 0x7f) {
            return self.0.write_string_fragment(writer, fragment);
        }
        let mut start = 0;
        for (index, c) in fragment.char_indices() {
            if is_unsafe(c) {
                self.0
                    .write_string_fragment(writer, &fragment[start..index])?;
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(writer, "\\u{:04x}", unit)?;
                }
                start = index + c.len_utf8();
            }
        }
        self.0.write_string_fragment(writer, &fragment[start..])
    }

    fn begin_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.begin_array(writer)
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_array(writer)
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_array_value(writer)
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.begin_object(writer)
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_object(writer)
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn end_object_key<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_object_key(writer)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.begin_object_value(writer)
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_object_value(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_show_controls_visibly() {
        assert_eq!(escape_line("plain / path"), "plain / path");
        assert_eq!(escape_line("a\x1b[31mred"), "a\\x1b[31mred");
        assert_eq!(escape_line("a\r\nb\t"), "a\\r\\nb\\t");
        assert_eq!(escape_line("del\x7f c1\u{9b}"), "del\\x7f c1\\x9b");
        assert_eq!(escape_line("rtl\u{202e}txt"), "rtl\\u{202e}txt");
        assert_eq!(escape_line("\u{2066}iso"), "\\u{2066}iso");
        assert_eq!(escape_line("héllo ✓"), "héllo ✓");
    }

    #[test]
    fn blocks_keep_newlines_and_tabs() {
        assert_eq!(
            escape_block("a\n\tb\x1b]8;;http://x\x07"),
            "a\n\tb\\x1b]8;;http://x\\x07"
        );
    }

    #[test]
    fn json_stays_json_and_safe() {
        let value = serde_json::json!({"k\u{202e}": "esc\u{1b} del\u{7f} c1\u{85} ok é"});
        let mut out = Vec::new();
        let mut serializer = serde_json::Serializer::with_formatter(
            &mut out,
            SafeFormatter(serde_json::ser::CompactFormatter),
        );
        serde::Serialize::serialize(&value, &mut serializer).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.chars().any(is_unsafe), "{text}");
        assert_eq!(text, r#"{"k\u202e":"esc\u001b del\u007f c1\u0085 ok é"}"#);
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, value);
    }
}
