//! Escaping shared by every format. Whatever an implementation under test printed or returned
//! ends up in these reports, so every string is hostile: it may carry markup, quotes, newlines,
//! terminal escape sequences or bidi overrides.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Characters never written raw: C0 and C1 controls except newline and tab, DEL, the Unicode bidi
/// embeddings/overrides/isolates (they make a terminal or a page display something other than what
/// is there), and U+FFFE/U+FFFF (not characters in XML 1.0).
fn needs_visible_escape(c: char) -> bool {
    match c {
        '\n' | '\t' => false,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => true,
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{fffe}' | '\u{ffff}' => true,
        _ => false,
    }
}

/// Replaces the characters above with a visible escape (`\x1b`, `\u{202e}`), keeping the rest.
pub(crate) fn visible(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_visible_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if needs_visible_escape(c) {
            let n = u32::from(c);
            if n < 0x100 {
                let _ = write!(out, "\\x{n:02x}");
            } else {
                let _ = write!(out, "\\u{{{n:04x}}}");
            }
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Escaped for XML or HTML text content (newlines and tabs kept).
pub(crate) fn xml_text(s: &str) -> String {
    let s = visible(s);
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
    out
}

/// Escaped for a double- or single-quoted XML or HTML attribute. Newlines and tabs become
/// character references so that attribute-value normalization keeps them.
pub(crate) fn xml_attr(s: &str) -> String {
    let s = visible(s);
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            _ => out.push(c),
        }
    }
    out
}

/// Safe for a terminal: visible escapes, tabs as spaces (newlines kept for the caller to indent).
pub(crate) fn terminal(s: &str) -> String {
    visible(s).replace('\t', " ")
}

/// A case duration: `12 ms`, `1.2 s`, `123 s`.
pub(crate) fn short_duration(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 100_000 {
        format!("{}.{} s", ms / 1000, (ms % 1000) / 100)
    } else {
        format!("{} s", ms / 1000)
    }
}

/// Seconds with one decimal, for summary lines: `12.3 s`.
pub(crate) fn seconds(ms: u64) -> String {
    format!("{}.{} s", ms / 1000, (ms % 1000) / 100)
}

/// Seconds with millisecond precision, for JUnit `time` attributes.
pub(crate) fn junit_seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visible_escapes_controls_and_bidi() {
        assert_eq!(visible("a\u{1b}[31mb"), "a\\x1b[31mb");
        assert_eq!(visible("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(visible("\u{9b}"), "\\x9b");
        assert_eq!(
            visible("keep\nnewline\tand tab, Zürich ✓"),
            "keep\nnewline\tand tab, Zürich ✓"
        );
        assert!(matches!(visible("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn xml_escaping() {
        assert_eq!(xml_text("<a & b>\"'"), "&lt;a &amp; b&gt;\"'");
        assert_eq!(xml_attr("<a & b>\"'\n\t"), "&lt;a &amp; b&gt;&quot;&#39;&#10;&#9;");
        assert_eq!(xml_text("\u{0}\u{fffe}"), "\\x00\\u{fffe}");
    }

    #[test]
    fn durations() {
        assert_eq!(short_duration(0), "0 ms");
        assert_eq!(short_duration(999), "999 ms");
        assert_eq!(short_duration(1250), "1.2 s");
        assert_eq!(short_duration(123_456), "123 s");
        assert_eq!(seconds(12_345), "12.3 s");
        assert_eq!(junit_seconds(12_345), "12.345");
        assert_eq!(junit_seconds(7), "0.007");
    }
}
