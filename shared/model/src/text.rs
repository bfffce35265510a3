//! Quoting input in messages: an error that echoes what it was given shows at
//! most a bounded prefix of it, so a hostile or mistaken input of any length
//! never becomes a message (or a stored record) of that length.

/// At most this many characters of an input are quoted in a message.
pub const QUOTED_CHARS: usize = 64;

/// `input` as a Rust-style quoted string, cut after [`QUOTED_CHARS`]
/// characters with the full length noted: `"aaaa…" (5000 bytes)`.
pub fn quoted(input: &str) -> String {
    match input.char_indices().nth(QUOTED_CHARS) {
        None => format!("{input:?}"),
        Some((end, _)) => format!("{:?}… ({} bytes)", &input[..end], input.len()),
    }
}

/// `text` cut to at most `max` characters, ending in `…` when cut.
pub fn truncated(text: &str, max: usize) -> String {
    match text.char_indices().nth(max.saturating_sub(1)) {
        Some((end, _)) if text[end..].chars().nth(1).is_some() => format!("{}…", &text[..end]),
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_input_is_quoted_in_part() {
        assert_eq!(quoted("eu-west-1"), "\"eu-west-1\"");
        let long = "x".repeat(5000);
        let q = quoted(&long);
        assert!(q.len() < 100, "{q}");
        assert!(q.ends_with("… (5000 bytes)"), "{q}");
        assert_eq!(
            quoted(&"ü".repeat(70))
                .chars()
                .filter(|c| *c == 'ü')
                .count(),
            64
        );
    }

    #[test]
    fn cells_are_cut_with_an_ellipsis() {
        assert_eq!(truncated("short", 10), "short");
        assert_eq!(truncated("exactly10!", 10), "exactly10!");
        assert_eq!(truncated("longer than ten", 10), "longer th…");
        assert_eq!(truncated("longer than ten", 10).chars().count(), 10);
    }
}
