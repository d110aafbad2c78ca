//! Plain `env` values that look like credentials: public on a grid anyone can read, so
//! `validate` and the hook warn and point at `secrets`.

/// What kind of credential `value` looks like, or `None`.
pub fn looks_like_token(value: &str) -> Option<&'static str> {
    let v = value.trim();
    let rest_is = |prefix: &str, min: usize| {
        v.strip_prefix(prefix).is_some_and(|rest| {
            rest.len() >= min
                && rest
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        })
    };
    if ["ghp_", "gho_", "ghs_", "ghu_", "ghr_"]
        .iter()
        .any(|p| rest_is(p, 20))
        || rest_is("github_pat_", 20)
    {
        return Some("a GitHub token");
    }
    if rest_is("glpat-", 16) {
        return Some("a GitLab token");
    }
    let aws = ["AKIA", "ASIA"].iter().any(|p| {
        v.strip_prefix(p).is_some_and(|rest| {
            rest.len() == 16
                && rest
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        })
    });
    if aws {
        return Some("an AWS access key");
    }
    if v.contains("-----BEGIN") && v.contains("PRIVATE KEY") {
        return Some("a private key");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::looks_like_token;

    #[test]
    fn known_shapes() {
        assert!(looks_like_token("ghp_0123456789abcdefghijABCDEFGHIJ012345").is_some());
        assert!(looks_like_token("github_pat_11ABCDEFG0123456789_abcdef").is_some());
        assert!(looks_like_token("glpat-abcdefghij0123456789").is_some());
        assert!(looks_like_token("AKIAIOSFODNN7EXAMPLE").is_some());
        assert!(looks_like_token("-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl").is_some());
        for plain in ["", "1", "ghp_", "release", "AKIA", "production", "/usr/bin"] {
            assert_eq!(looks_like_token(plain), None, "{plain}");
        }
    }
}
