//! What may be printed: text from the repository (ids, authors, subjects, field names, a task's
//! output, a node's hostname) and URLs from the user's configuration. Anyone with push access
//! writes that text, so before it reaches a terminal its control characters go (an ESC can move
//! the cursor, rewrite earlier lines or set the window title), and a URL's credentials never
//! reach a message or a log. JSON output needs neither: serde escapes control characters.

/// One field on one line: every control character (C0, DEL, C1; newlines too) becomes `?`.
pub fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// Several lines (a task's output, a list of problems): newlines and tabs stay, every other
/// control character becomes `?`.
pub fn clean_lines(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' | '\t' => c,
            c if c.is_control() => '?',
            c => c,
        })
        .collect()
}

/// A message made one line (a log line must stay one line): its lines joined by ` | `, each
/// cleaned.
pub fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .map(clean)
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Hides the secret of every URL in `text`, wherever it occurs (a remote's URL, or git's own
/// message quoting it): `https://user:token@host/x` → `https://user:[redacted]@host/x`. Over
/// http(s) a lone user name may be the token itself (`https://ghp_…@github.com`), so it goes too;
/// an SSH user name (`ssh://git@host`, `git@host:x`) is no secret and stays.
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at + 3);
        out.push_str(before);
        let scheme: String = before
            .chars()
            .rev()
            .skip(3)
            .take_while(|c| c.is_ascii_alphanumeric() || "+.-".contains(*c))
            .collect::<String>()
            .chars()
            .rev()
            .collect::<String>()
            .to_ascii_lowercase();
        let http = scheme == "http" || scheme == "https";
        // The authority ends at the first '/', '?', '#' or whitespace; userinfo is before its
        // last '@'.
        let end = after
            .find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == '\'')
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rsplit_once('@') {
            Some((userinfo, host)) => {
                match userinfo.split_once(':') {
                    Some((user, _secret)) => out.push_str(&format!("{user}:[redacted]")),
                    None if http => out.push_str("[redacted]"),
                    None => out.push_str(userinfo),
                }
                out.push('@');
                out.push_str(host);
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Both: text from anywhere, made safe for a terminal line by line.
pub fn printable(text: &str) -> String {
    clean_lines(&redact_urls(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_go() {
        assert_eq!(clean("a\x1b[31mb\u{9b}c\nd\x07"), "a?[31mb?c?d?");
        assert_eq!(clean_lines("a\x1b]0;x\x07\n\tb\r"), "a?]0;x?\n\tb?");
        assert_eq!(one_line("fatal: x\n\nhint: \x1by\n"), "fatal: x | hint: ?y");
    }

    #[test]
    fn credentials_go_from_urls() {
        assert_eq!(
            redact_urls("fetch https://user:secret@127.0.0.1:1/x.git failed"),
            "fetch https://user:[redacted]@127.0.0.1:1/x.git failed"
        );
        assert_eq!(
            redact_urls("'HTTPS://tok@h/x' and ssh://git@h:22/y"),
            "'HTTPS://[redacted]@h/x' and ssh://git@h:22/y"
        );
        assert_eq!(redact_urls("https://h/x git@h:y"), "https://h/x git@h:y");
        assert_eq!(redact_urls("https://a:b@c"), "https://a:[redacted]@c");
    }
}
