//! Which configuration keys may become environment variables.
//!
//! Every exported name must be a portable identifier (`[A-Za-z_][A-Za-z0-9_]*`,
//! at most 256 bytes). Names that the dynamic loader, a shell, a language
//! runtime or a common tool *acts on* — they choose which code runs, where
//! traffic goes or where configuration is read from — are *refused* when
//! they come from a record, and allowed only when the step's own `env:` sets
//! them. The list and the reasons are in `docs/environment.md`.
//!
//! Matching ignores ASCII case: Windows treats `Path` as `PATH`, and several
//! tools read both `http_proxy` and `HTTP_PROXY`.

/// Refused names (compared ignoring ASCII case).
pub const REFUSED_NAMES: &[&str] = &[
    // Where commands, libraries and shells are found; shell start-up and parsing.
    "PATH",
    "CDPATH",
    "IFS",
    "ENV",
    "BASH_ENV",
    "SHELLOPTS",
    "BASHOPTS",
    "GLOBIGNORE",
    "PROMPT_COMMAND",
    "PS1",
    "PS2",
    "PS4",
    "ZDOTDIR",
    "SHELL",
    // Commands other programs start on the user's behalf.
    "EDITOR",
    "VISUAL",
    "PAGER",
    "MANPAGER",
    "BROWSER",
    "LESSOPEN",
    "LESSCLOSE",
    // Where programs read their configuration (dotfiles can run commands) and write temporary files.
    "HOME",
    "XDG_CONFIG_HOME",
    "XDG_CONFIG_DIRS",
    "TMPDIR",
    // Python.
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "PYTHONUSERBASE",
    "PYTHONBREAKPOINT",
    "PYTHONWARNINGS",
    "PYTHONPLATLIBDIR",
    // Node.js.
    "NODE_OPTIONS",
    "NODE_PATH",
    // Perl.
    "PERL5LIB",
    "PERLLIB",
    "PERL5OPT",
    "PERL5DB",
    // Ruby.
    "RUBYOPT",
    "RUBYLIB",
    // Java.
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "CLASSPATH",
    // The C library: character-set modules, locales, name resolution, tunables.
    "GCONV_PATH",
    "LOCPATH",
    "NLSPATH",
    "HOSTALIASES",
    "LOCALDOMAIN",
    "RES_OPTIONS",
    "GLIBC_TUNABLES",
    // OpenSSL loads engines and providers named by its configuration.
    "OPENSSL_CONF",
    "OPENSSL_ENGINES",
    "OPENSSL_MODULES",
    // Proxies redirect every request of the child, credentials included.
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "FTP_PROXY",
];

/// Refused name prefixes (compared ignoring ASCII case).
pub const REFUSED_PREFIXES: &[&str] = &[
    // The dynamic loaders of Linux/BSD (LD_PRELOAD, LD_LIBRARY_PATH, …) and macOS.
    "LD_",
    "DYLD_",
    // Git runs commands named by GIT_SSH_COMMAND, GIT_EXEC_PATH, GIT_CONFIG_*, GIT_PYTHON_GIT_EXECUTABLE, ….
    "GIT_",
    // npm configuration (scripts, registries).
    "NPM_CONFIG_",
    // Bash exported functions.
    "BASH_FUNC_",
    // inferlink's own settings: a record must not choose the child's store or key.
    "INFERLINK_",
];

/// Longest exported name, in bytes.
pub const MAX_NAME_LEN: usize = 256;

/// True when `name` is a portable environment variable name:
/// `[A-Za-z_][A-Za-z0-9_]*`, at most [`MAX_NAME_LEN`] bytes.
pub fn is_valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && name.len() <= MAX_NAME_LEN
}

/// True when `name` is one the loader, a shell or a runtime acts on: refused
/// from records, allowed from a step's `env:`.
pub fn is_refused_from_records(name: &str) -> bool {
    REFUSED_NAMES.iter().any(|n| n.eq_ignore_ascii_case(name))
        || REFUSED_PREFIXES.iter().any(|p| {
            name.len() >= p.len()
                && name.is_char_boundary(p.len())
                && name[..p.len()].eq_ignore_ascii_case(p)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_identifiers() {
        for good in ["A", "_", "a1", "AWS_ACCESS_KEY_ID", "_x9"] {
            assert!(is_valid_name(good), "{good}");
        }
        let long = "A".repeat(MAX_NAME_LEN + 1);
        for bad in [
            "",
            "9BAD",
            "9BAD-NAME",
            "A-B",
            "A B",
            "A=B",
            "É",
            "A\nB",
            &long,
        ] {
            assert!(!is_valid_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn loader_and_shell_names_are_refused_in_any_case() {
        for refused in [
            "PATH",
            "Path",
            "LD_PRELOAD",
            "ld_library_path",
            "DYLD_INSERT_LIBRARIES",
            "PYTHONPATH",
            "BASH_ENV",
            "IFS",
            "GIT_SSH_COMMAND",
            "https_proxy",
            "INFERLINK_STORE",
        ] {
            assert!(is_refused_from_records(refused), "{refused}");
        }
        for allowed in [
            "AWS_ACCESS_KEY_ID",
            "MLFLOW_TRACKING_URI",
            "PATHS",
            "MY_PATH",
            "LD",
            "PYTHONUNBUFFERED",
            "NO_PROXY",
        ] {
            assert!(!is_refused_from_records(allowed), "{allowed}");
        }
    }
}
