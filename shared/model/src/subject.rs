//! Encoding of arbitrary identifiers into single NATS subject tokens and KV keys.
//!
//! Subject tokens may not contain `.`, `*`, `>` or white space, and KV keys are
//! limited to `[-/_=.a-zA-Z0-9]`. Identifiers pass through unchanged when they are
//! already safe (every AWS id and region name is); anything else is escaped as
//! `=XX` per byte, which is reversible and keeps distinct ids distinct.

/// Encode `raw` as one subject token (and valid KV key segment).
pub fn token(raw: &str) -> String {
    if raw.is_empty() {
        return "_".to_owned();
    }
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || (b == b'_' && raw != "_") {
            out.push(b as char);
        } else {
            out.push_str(&format!("={b:02X}"));
        }
    }
    out
}

/// Decode a token made by [`token`]; `None` if it is not one.
pub fn untoken(token: &str) -> Option<String> {
    if token == "_" {
        return Some(String::new());
    }
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            let hex = token.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Subject token for an optional region: `_` stands for "no region" (account-wide kinds).
pub fn region_token(region: Option<&str>) -> String {
    match region {
        Some(r) => token(r),
        None => "_".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_ids_pass_through() {
        assert_eq!(token("i-0abc123"), "i-0abc123");
        assert_eq!(token("eu-west-1"), "eu-west-1");
    }

    #[test]
    fn unsafe_bytes_are_escaped_and_distinct() {
        assert_eq!(token("a.b"), "a=2Eb");
        assert_eq!(token("a b*>"), "a=20b=2A=3E");
        assert_ne!(token("a.b"), token("a=2Eb"));
        assert_eq!(token(""), "_");
        assert_ne!(token("_"), region_token(None));
    }

    #[test]
    fn tokens_decode_to_what_was_encoded() {
        for raw in ["i-0abc123", "a.b", "a b*>", "", "_", "=41", "ü/x"] {
            assert_eq!(untoken(&token(raw)).as_deref(), Some(raw), "{raw:?}");
        }
        assert_eq!(untoken("bad=Z"), None);
    }
}
