//! The passwords of URLs with credentials (`scheme://user:password@host`) in a variable's value.

/// Every password of a `scheme://user:password@host` URL in `value`, as written (still
/// percent-encoded: the view decodes `%XX` when matching).
pub(super) fn passwords(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(at) = rest.find("://") {
        let after = &rest[at + 3..];
        // The authority ends at the path, query, fragment or any whitespace or quote.
        let end = after
            .find(|c: char| matches!(c, '/' | '?' | '#' | '"' | '\'') || c.is_whitespace())
            .unwrap_or(after.len());
        let authority = &after[..end];
        // The userinfo ends at the authority's last `@` (a password may contain `@`).
        if let Some(userinfo) = authority.rfind('@').map(|i| &authority[..i]) {
            if let Some((_, password)) = userinfo.split_once(':') {
                if !password.is_empty() {
                    out.push(password);
                }
            }
        }
        rest = &after[end..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::passwords;

    #[test]
    fn url_passwords() {
        assert_eq!(
            passwords("postgres://app:s3cr3t-pw@db:5432/x"),
            ["s3cr3t-pw"]
        );
        assert_eq!(
            passwords("https://u:p@ss@host/x https://a:b@c"),
            ["p@ss", "b"]
        );
        assert_eq!(passwords("https://:tok@host"), ["tok"]);
        assert!(passwords("https://user@host/a:b@c").is_empty());
        assert!(passwords("/usr/bin:/bin").is_empty());
        assert!(passwords("git@github.com:org/repo").is_empty());
    }
}
