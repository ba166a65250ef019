//! What text from the database becomes before it reaches a terminal or a spreadsheet. Agents
//! write whatever they like (reasoning, commands, tool output), so a read command must not hand
//! their bytes to a terminal as control sequences, and a CSV cell must not reach a spreadsheet
//! as a formula. One function for each, shared by every command and the web download.

use std::borrow::Cow;

/// `text` with every control character made visible, for a terminal: ESC as `\e`, BEL as `\a`,
/// CR as `\r`, backspace as `\b`, other C0 and C1 characters and DEL as `\x..` or `\u{..}`, and
/// the Unicode bidirectional overrides and isolates as `\u{..}` (they reorder what a line shows).
/// Newline and tab are kept: a multi-line field (a prompt, a reasoning) is printed on purpose as
/// several lines, and neither can move the cursor anywhere a line could not.
pub fn terminal(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !needs_escape(c) {
            out.push(c);
            continue;
        }
        match c {
            '\x1b' => out.push_str("\\e"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\r' => out.push_str("\\r"),
            c if u32::from(c) < 0x80 => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// One RFC 4180 CSV field. A cell that a spreadsheet would run as a formula (it starts with `=`,
/// `+`, `@`, a tab or a CR, or with `-` and is not a number) gets a leading `'`, as OWASP
/// advises; `-3` stays a number.
pub fn csv_field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '@', '\t', '\r'])
        || (text.starts_with('-') && text.parse::<f64>().is_err())
    {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}
