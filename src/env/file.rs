//! The env-file format of `inferlink env`: one `NAME=VALUE` line per
//! variable, which POSIX `sh` (`set -a; . ./FILE`) and `docker run
//! --env-file FILE` both read as exactly that name and value.
//!
//! The two readers disagree about almost everything but plain words: `sh`
//! runs the line as a command (quotes, `$`, backquotes, `\`, `;`, `&`, `|`,
//! `<`, `>`, parentheses, blanks and `~` all mean something), while Docker
//! takes everything after the first `=` literally up to the end of the line
//! (no quoting, no escapes, a trailing carriage return dropped). No quoting
//! works for both, so a value is printed as it is when every character of
//! it is a printable ASCII character other than a space and
//! [`SHELL_SPECIAL`], and refused otherwise. Characters such as `*`, `?`,
//! `[`, `{`, `!` and `#` are plain inside a POSIX assignment (no pathname or
//! brace expansion there, and `#` starts a comment only at the start of a
//! word). Non-ASCII characters and control characters are refused as well:
//! shells disagree on which multibyte characters are blanks, and a control
//! character has no business in a line a person may read on a terminal. The
//! empty value is safe. Secret values that are not revealed become comment
//! lines (`# NAME=<hidden> (secret)`), which both readers skip.

/// The printable ASCII characters a POSIX shell gives a meaning to inside an
/// unquoted assignment value (besides the space): never written.
pub const SHELL_SPECIAL: &str = "\"'`$\\|&;<>()~";

/// True when `value` can be written as `NAME=value` and read back unchanged
/// by both `sh` and `docker --env-file`.
pub fn is_env_file_safe(value: &str) -> bool {
    value.chars().all(is_safe_char)
}

fn is_safe_char(c: char) -> bool {
    c.is_ascii_graphic() && !SHELL_SPECIAL.contains(c)
}

/// Says which kind of character makes a (non-secret) value unsafe, for messages.
pub(crate) fn first_unsafe(value: &str) -> Option<String> {
    let c = value.chars().find(|c| !is_safe_char(*c))?;
    Some(match c {
        '\n' => "a newline".to_owned(),
        '\r' => "a carriage return".to_owned(),
        ' ' => "a space".to_owned(),
        '\t' => "a tab".to_owned(),
        c if c.is_control() => format!("the control character {}", c.escape_unicode()),
        c if !c.is_ascii() => format!("the non-ASCII character {}", c.escape_unicode()),
        c => format!("'{c}'"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_words_are_safe_and_shell_or_docker_syntax_is_not() {
        for safe in [
            "",
            "abc",
            "http://mlflow.mlflow:5000/path",
            "24oT0SfbJPEu6kUbUKsH",
            "a=b",
            "user@host",
            "1.5,2.5",
            "50%",
            "a+b/c",
            "a*b?[c]{d}!e#f^g",
            "#start",
        ] {
            assert!(is_env_file_safe(safe), "{safe:?}");
        }
        for not_safe in [
            "safe\nLD_PRELOAD=/tmp/evil.so",
            "a b",
            "$HOME",
            "`id`",
            "$(id)",
            "'q'",
            "\"q\"",
            "a;b",
            "a&b",
            "a|b",
            "<hidden>",
            "~/x",
            "a:~/x",
            "a\\b",
            "x\r",
            "\u{1b}[2J",
            "Zürich",
            "(x)",
            "a\u{a0}b",
        ] {
            assert!(!is_env_file_safe(not_safe), "{not_safe:?}");
        }
        assert_eq!(first_unsafe("a\nb").as_deref(), Some("a newline"));
        assert_eq!(first_unsafe("a$b").as_deref(), Some("'$'"));
        assert_eq!(first_unsafe("ok"), None);
    }
}
