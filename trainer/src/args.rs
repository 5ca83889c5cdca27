//! Value parsers shared by several commands' flags.

/// A count flag that must be at least 1 (`--top`, `--limit`): 0 would print or score nothing.
pub fn at_least_one(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("`{s}` is not a count: {e}")),
    }
}
