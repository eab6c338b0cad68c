//! Escaping shared by the XML and HTML writers.

/// Escapes text for XML/HTML element content and attribute values, and drops characters that
/// XML 1.0 cannot carry at all (control characters from arbitrary server messages or logs).
pub fn markup(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(ch),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Escapes a table cell for Markdown: pipes would split the cell and newlines end the row.
pub fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_escapes_specials_and_strips_invalid_controls() {
        assert_eq!(markup("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
        assert_eq!(markup("x\u{1}y\nz"), "x\u{FFFD}y\nz");
        assert_eq!(md_cell("a|b\nc"), "a\\|b c");
    }
}
