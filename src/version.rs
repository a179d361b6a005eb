//! Versions and version constraints, in the dialect FuseML's extension
//! registry used for selector `version` fields.
//!
//! FuseML matched selectors with the Go library Masterminds/semver at
//! v1.5.0. This module implements the same rules from scratch so that
//! selectors written for FuseML keep selecting the same extensions:
//!
//! * versions are lenient: an optional lowercase `v`, and optional minor and
//!   patch numbers (`1` is 1.0.0, `v1.2` is 1.2.0), then an optional
//!   `-prerelease` and `+build`;
//! * a constraint is a list of alternatives separated by `||`, each a list of
//!   clauses separated by `,` that must all hold;
//! * a clause is an operator (`=`, `!=`, `>`, `<`, `>=`, `=>`, `<=`, `=<`,
//!   `~`, `~>`, `^`, or none) followed by a version that may use the
//!   wildcards `x`, `X` and `*`, or a hyphen range `A - B`;
//! * a bare `1` or `1.x` means "any 1.x.y", but a bare `1.0` means exactly
//!   1.0.0 (unlike Cargo, where it means `^1.0`);
//! * a prerelease version only satisfies clauses that name a prerelease
//!   themselves (with one inherited exception, plain `!=`).
//!
//! A selector's `version` field is a [`VersionRequirement`]: exact string
//! equality is tried first, then the text is used as a [`Constraint`].
//!
//! The full rules, with a table of examples, the inherited quirks and the
//! error format, are in `docs/version-constraints.md` in the repository.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

/// Longest input, in bytes, that [`Version::parse`], [`Constraint::parse`]
/// and [`VersionRequirement::parse`] accept.
pub const MAX_INPUT_LEN: usize = 256;

/// How many bytes of an over-long input an error keeps.
const ERROR_EXCERPT_LEN: usize = 32;

/// Bytes that begin an operator.
const OPERATOR_BYTES: &[u8] = b"<>=!~^";

/// Operators, longest first so that a prefix never shadows a longer one.
const OPERATORS: &[(&str, Op)] = &[
    ("!=", Op::Ne),
    (">=", Op::Ge),
    ("=>", Op::Ge),
    ("<=", Op::Le),
    ("=<", Op::Le),
    ("~>", Op::Tilde),
    (">", Op::Gt),
    ("<", Op::Lt),
    ("=", Op::Eq),
    ("~", Op::Tilde),
    ("^", Op::Caret),
];

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Why a version, constraint or requirement could not be parsed.
///
/// Displays as `invalid <what> "<input>": <reason>`, for example
/// `invalid version constraint "~>>1.0": unexpected ">" at byte 2`.
/// Byte offsets count from the start of the whole input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {input:?}: {reason}")]
pub struct VersionError {
    what: &'static str,
    input: String,
    reason: String,
    cause: Cause,
}

/// Coarse class of a parse failure; used to tell labels from broken
/// constraints in [`VersionRequirement::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    Empty,
    TooLong,
    Overflow,
    Syntax,
}

impl VersionError {
    fn new(what: &'static str, input: &str, cause: Cause, reason: String) -> Self {
        VersionError {
            what,
            input: excerpt(input),
            reason,
            cause,
        }
    }

    /// The text that failed to parse. Inputs longer than
    /// [`MAX_INPUT_LEN`] are cut to their first few bytes followed by `...`.
    pub fn input(&self) -> &str {
        &self.input
    }

    /// What was wrong, without the `invalid ... "<input>": ` prefix.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// The input itself when it is within the limit, else a short prefix of it
/// (cut on a character boundary) so that errors stay small.
fn excerpt(input: &str) -> String {
    if input.len() <= MAX_INPUT_LEN {
        return input.to_owned();
    }
    let mut cut = ERROR_EXCERPT_LEN;
    while !input.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut out = String::with_capacity(cut + 3);
    out.push_str(input.get(..cut).unwrap_or_default());
    out.push_str("...");
    out
}

/// A failure found while scanning, before it is wrapped with the input.
#[derive(Debug)]
struct Fault {
    cause: Cause,
    reason: String,
}

impl Fault {
    fn syntax(reason: String) -> Self {
        Fault {
            cause: Cause::Syntax,
            reason,
        }
    }
}

/// Checks shared by every parser: the length limit and emptiness.
fn check_limits(what: &'static str, input: &str) -> Result<(), VersionError> {
    if input.len() > MAX_INPUT_LEN {
        return Err(VersionError::new(
            what,
            input,
            Cause::TooLong,
            format!(
                "input is {} bytes long; at most {MAX_INPUT_LEN} bytes are allowed",
                input.len()
            ),
        ));
    }
    if input.trim_matches(is_space).is_empty() {
        let reason = if input.is_empty() {
            format!("empty {what}")
        } else {
            format!("blank {what}")
        };
        return Err(VersionError::new(what, input, Cause::Empty, reason));
    }
    Ok(())
}

/// Whitespace as the dialect understands it: space, tab, newline, form feed
/// and carriage return.
fn is_space(c: char) -> bool {
    c.is_ascii_whitespace()
}

/// The character at byte `pos` of `text`, for error messages.
fn unexpected(text: &str, pos: usize) -> Fault {
    match text.get(pos..).and_then(|rest| rest.chars().next()) {
        Some('|') => Fault::syntax(format!(
            "unexpected \"|\" at byte {pos} (alternatives are separated by \"||\")"
        )),
        Some(c) => Fault::syntax(format!("unexpected \"{}\" at byte {pos}", c.escape_debug())),
        None => Fault::syntax(format!("unexpected end of input at byte {pos}")),
    }
}

// ---------------------------------------------------------------------------
// Versions
// ---------------------------------------------------------------------------

/// A parsed version: `MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]`.
///
/// Ordering, equality and hashing follow semver 2.0 precedence: numbers
/// first, then a version without prerelease above one with, then the
/// prerelease identifiers one by one (numeric ones numerically and below
/// alphanumeric ones, alphanumeric ones by ASCII order, a shorter list of
/// identifiers below a longer one that starts the same). Build metadata is
/// ignored by all three, so `1.0.0+a == 1.0.0+b`. Numeric identifiers with
/// leading zeros (accepted, as in v1.5) are compared by value and then as
/// text, so `1.0.0-01` sorts just below `1.0.0-1` and the order stays total.
#[derive(Clone, Debug)]
pub struct Version {
    major: u64,
    minor: u64,
    patch: u64,
    pre: String,
    build: String,
}

impl Version {
    /// Parses a version leniently: an optional `v`, a major number, optional
    /// `.minor` and `.patch`, then optional `-prerelease` and `+build` made of
    /// dot-separated `[0-9A-Za-z-]` identifiers. No surrounding whitespace.
    pub fn parse(s: &str) -> Result<Version, VersionError> {
        const WHAT: &str = "version";
        check_limits(WHAT, s)?;
        let core = parse_core(s, 0, s.len(), false)
            .map_err(|f| VersionError::new(WHAT, s, f.cause, f.reason))?;
        let number = |c: Option<Part>| match c {
            Some(Part::Num(n)) => n,
            _ => 0,
        };
        Ok(Version {
            major: number(Some(core.major)),
            minor: number(core.minor),
            patch: number(core.patch),
            pre: core.pre.to_owned(),
            build: core.build.to_owned(),
        })
    }

    /// The major number.
    pub fn major(&self) -> u64 {
        self.major
    }

    /// The minor number (0 when the text had none).
    pub fn minor(&self) -> u64 {
        self.minor
    }

    /// The patch number (0 when the text had none).
    pub fn patch(&self) -> u64 {
        self.patch
    }

    /// The prerelease part without its leading `-`, or `""`.
    pub fn prerelease(&self) -> &str {
        &self.pre
    }

    /// The build metadata without its leading `+`, or `""`.
    pub fn build(&self) -> &str {
        &self.build
    }

    fn triple(&self) -> (u64, u64, u64) {
        (self.major, self.minor, self.patch)
    }
}

impl FromStr for Version {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Version::parse(s)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.pre.is_empty() {
            write!(f, "-{}", self.pre)?;
        }
        if !self.build.is_empty() {
            write!(f, "+{}", self.build)?;
        }
        Ok(())
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl Hash for Version {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Precedence-equal versions have identical numbers and prerelease
        // text, so hashing those (and not the build) agrees with `Eq`.
        self.triple().hash(state);
        self.pre.hash(state);
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        self.triple()
            .cmp(&other.triple())
            .then_with(|| compare_prerelease(&self.pre, &other.pre))
    }
}

fn compare_prerelease(a: &str, b: &str) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        (false, false) => {}
    }
    let mut left = a.split('.');
    let mut right = b.split('.');
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let order = compare_identifier(x, y);
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

fn compare_identifier(a: &str, b: &str) -> Ordering {
    match (numeric_identifier(a), numeric_identifier(b)) {
        (Some(x), Some(y)) => x.cmp(&y).then_with(|| a.cmp(b)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// An identifier counts as numeric when it is all digits and fits in a u64;
/// longer digit strings compare as text, as in v1.5.
fn numeric_identifier(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

// ---------------------------------------------------------------------------
// The shared scanner for `[v]MAJOR[.MINOR[.PATCH]][-PRE][+BUILD]`
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Num(u64),
    Wild,
}

#[derive(Debug)]
struct Core<'a> {
    major: Part,
    minor: Option<Part>,
    patch: Option<Part>,
    pre: &'a str,
    build: &'a str,
}

fn is_wild(b: u8) -> bool {
    matches!(b, b'x' | b'X' | b'*')
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

/// Scans `text[start..end]` as a version, reporting positions as offsets
/// into `text`. `start..end` must lie on character boundaries.
fn parse_core(text: &str, start: usize, end: usize, allow_wild: bool) -> Result<Core<'_>, Fault> {
    let bytes = text.as_bytes();
    let at = |i: usize| if i < end { bytes.get(i).copied() } else { None };
    let mut pos = start;
    if at(pos) == Some(b'v') {
        pos += 1;
    }

    let mut parts: [Option<Part>; 3] = [None; 3];
    for (index, slot) in parts.iter_mut().enumerate() {
        let part_start = pos;
        match at(pos) {
            Some(b) if b.is_ascii_digit() => {
                let mut value: u64 = 0;
                while let Some(d) = at(pos).filter(u8::is_ascii_digit) {
                    value = value
                        .checked_mul(10)
                        .and_then(|v| v.checked_add(u64::from(d - b'0')))
                        .ok_or_else(|| Fault {
                            cause: Cause::Overflow,
                            reason: format!(
                                "number at byte {part_start} is too large (the maximum is {})",
                                u64::MAX
                            ),
                        })?;
                    pos += 1;
                }
                *slot = Some(Part::Num(value));
            }
            Some(b) if is_wild(b) => {
                if !allow_wild {
                    return Err(Fault::syntax(format!(
                        "wildcard \"{}\" at byte {pos} is only allowed in constraints",
                        char::from(b)
                    )));
                }
                pos += 1;
                *slot = Some(Part::Wild);
            }
            Some(b'.') => {
                return Err(Fault::syntax(format!("empty version number at byte {pos}")));
            }
            None => {
                return Err(Fault::syntax(format!(
                    "missing version number at byte {pos}"
                )));
            }
            Some(_) => return Err(unexpected(text, pos)),
        }
        if at(pos) != Some(b'.') {
            break;
        }
        if index == 2 {
            return Err(Fault::syntax(format!(
                "too many version numbers: \".\" at byte {pos} follows the patch number"
            )));
        }
        pos += 1;
    }

    let mut pre = "";
    if at(pos) == Some(b'-') {
        pos += 1;
        let from = pos;
        pos = scan_identifiers(text, pos, end, "prerelease")?;
        pre = text.get(from..pos).unwrap_or_default();
    }
    let mut build = "";
    if at(pos) == Some(b'+') {
        pos += 1;
        let from = pos;
        pos = scan_identifiers(text, pos, end, "build")?;
        build = text.get(from..pos).unwrap_or_default();
    }
    if pos < end {
        return Err(unexpected(text, pos));
    }

    let [major, minor, patch] = parts;
    Ok(Core {
        major: major.unwrap_or(Part::Num(0)),
        minor,
        patch,
        pre,
        build,
    })
}

/// Scans dot-separated, non-empty `[0-9A-Za-z-]` identifiers from `pos`;
/// returns where they stop.
fn scan_identifiers(text: &str, mut pos: usize, end: usize, kind: &str) -> Result<usize, Fault> {
    let bytes = text.as_bytes();
    let at = |i: usize| if i < end { bytes.get(i).copied() } else { None };
    loop {
        let from = pos;
        while at(pos).is_some_and(is_ident_byte) {
            pos += 1;
        }
        if pos == from {
            return Err(match at(pos) {
                None | Some(b'.' | b'+') => {
                    Fault::syntax(format!("empty {kind} identifier at byte {pos}"))
                }
                Some(_) => unexpected(text, pos),
            });
        }
        if at(pos) != Some(b'.') {
            return Ok(pos);
        }
        pos += 1;
    }
}

// ---------------------------------------------------------------------------
// Constraints
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `=` or no operator.
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    /// `~` or `~>`.
    Tilde,
    Caret,
}

/// Which part of a clause's version was a wildcard or missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wild {
    /// Fully specified (a missing patch alone counts as `.0`).
    Exact,
    /// Major is a wildcard (`*`, `x.1`); the base version becomes 0.0.0 and
    /// any prerelease in the clause is dropped.
    Major,
    /// Minor missing or a wildcard (`1`, `1.x`, `1.*.3`).
    Minor,
    /// Patch is a wildcard (`1.2.x`).
    Patch,
}

/// One comparison: an operator, a base version and its wildcard state.
#[derive(Debug, Clone)]
struct Clause {
    op: Op,
    base: Version,
    wild: Wild,
}

impl Clause {
    fn new(op: Op, core: &Core<'_>) -> Clause {
        let num = |p: Option<Part>| match p {
            Some(Part::Num(n)) => n,
            _ => 0,
        };
        let version = |major, minor, patch, pre: &str, build: &str| Version {
            major,
            minor,
            patch,
            pre: pre.to_owned(),
            build: build.to_owned(),
        };
        let major = num(Some(core.major));
        let (base, wild) = if core.major == Part::Wild {
            (version(0, 0, 0, "", ""), Wild::Major)
        } else if matches!(core.minor, None | Some(Part::Wild)) {
            (version(major, 0, 0, core.pre, ""), Wild::Minor)
        } else if core.patch == Some(Part::Wild) {
            (
                version(major, num(core.minor), 0, core.pre, ""),
                Wild::Patch,
            )
        } else {
            let v = version(
                major,
                num(core.minor),
                num(core.patch),
                core.pre,
                core.build,
            );
            (v, Wild::Exact)
        };
        Clause { op, base, wild }
    }

    fn dirty(&self) -> bool {
        self.wild != Wild::Exact
    }

    fn minor_dirty(&self) -> bool {
        self.wild == Wild::Minor
    }

    fn patch_dirty(&self) -> bool {
        self.wild == Wild::Patch
    }

    /// A prerelease version is only considered when the clause itself names
    /// a prerelease.
    fn admits_prerelease_of(&self, v: &Version) -> bool {
        v.pre.is_empty() || !self.base.pre.is_empty()
    }

    fn matches(&self, v: &Version) -> bool {
        let base = &self.base;
        match self.op {
            Op::Eq => {
                self.admits_prerelease_of(v)
                    && if self.dirty() {
                        self.tilde(v)
                    } else {
                        v == base
                    }
            }
            Op::Ne => {
                if !self.dirty() {
                    // Inherited from v1.5: plain `!=` has no prerelease rule.
                    return v != base;
                }
                if !self.admits_prerelease_of(v) {
                    return false;
                }
                // Only the numbers the clause names are compared; a major
                // wildcard compares as 0.0 (so `!=*` excludes only 0.0.x).
                v.major != base.major || (!self.minor_dirty() && v.minor != base.minor)
            }
            Op::Gt => self.admits_prerelease_of(v) && v > base,
            Op::Ge => self.admits_prerelease_of(v) && v >= base,
            Op::Lt => {
                self.admits_prerelease_of(v)
                    && if self.dirty() {
                        self.below_dirty(v)
                    } else {
                        v < base
                    }
            }
            Op::Le => {
                self.admits_prerelease_of(v)
                    && if self.dirty() {
                        self.below_dirty(v)
                    } else {
                        v <= base
                    }
            }
            Op::Tilde => self.admits_prerelease_of(v) && self.tilde(v),
            Op::Caret => self.admits_prerelease_of(v) && v >= base && v.major == base.major,
        }
    }

    /// `<` and `<=` with a wildcard: the major must not exceed the base's,
    /// and unless the minor is the wildcard, the minor must not exceed the
    /// base's either, compared on its own (v1.5 does not look at the major
    /// first, so `<1.2.x` rejects 0.5.0).
    fn below_dirty(&self, v: &Version) -> bool {
        v.major <= self.base.major && (self.minor_dirty() || v.minor <= self.base.minor)
    }

    /// At least the base, with the same major and (unless the minor is the
    /// wildcard) the same minor. A base of 0.0.0 without a minor or patch
    /// wildcard (`~0.0.0`, `~0.0`, `*`) accepts everything.
    fn tilde(&self, v: &Version) -> bool {
        let base = &self.base;
        if v < base {
            return false;
        }
        if base.triple() == (0, 0, 0) && !self.minor_dirty() && !self.patch_dirty() {
            return true;
        }
        v.major == base.major && (self.minor_dirty() || v.minor == base.minor)
    }
}

/// A parsed constraint expression such as `>=1.2, <2 || ~3.1`.
///
/// Displays as the original text.
#[derive(Clone, Debug)]
pub struct Constraint {
    text: String,
    /// Alternatives (joined by `||`), each a list of clauses that must all
    /// hold (joined by `,`).
    alternatives: Vec<Vec<Clause>>,
}

/// Splits `text[start..end]` on `sep`, returning absolute `(start, end)`
/// ranges of the pieces.
fn split_ranges(text: &str, start: usize, end: usize, sep: &str) -> Vec<(usize, usize)> {
    let piece = text.get(start..end).unwrap_or_default();
    let mut out = Vec::new();
    let mut from = start;
    for (offset, _) in piece.match_indices(sep) {
        out.push((from, start + offset));
        from = start + offset + sep.len();
    }
    out.push((from, end));
    out
}

/// Narrows `start..end` past surrounding whitespace.
fn trim_range(text: &str, mut start: usize, mut end: usize) -> (usize, usize) {
    let bytes = text.as_bytes();
    while start < end && bytes.get(start).is_some_and(u8::is_ascii_whitespace) {
        start += 1;
    }
    while end > start && bytes.get(end - 1).is_some_and(u8::is_ascii_whitespace) {
        end -= 1;
    }
    (start, end)
}

/// Parses one trimmed, non-empty clause; a hyphen range yields two clauses.
fn parse_clause(text: &str, start: usize, end: usize, out: &mut Vec<Clause>) -> Result<(), Fault> {
    let bytes = text.as_bytes();
    // `||` was split off already, so any `|` left is a lone one.
    if let Some(offset) = text.get(start..end).and_then(|t| t.find('|')) {
        return Err(unexpected(text, start + offset));
    }
    if bytes.get(start) == Some(&b'-')
        && (start + 1 == end || bytes.get(start + 1).is_some_and(u8::is_ascii_whitespace))
    {
        return Err(Fault::syntax(
            "missing lower bound of hyphen range".to_owned(),
        ));
    }
    // A `-` preceded by whitespace separates a hyphen range; anywhere else a
    // `-` starts or continues a prerelease.
    let separator = (start + 1..end).find(|&i| {
        bytes.get(i) == Some(&b'-') && bytes.get(i - 1).is_some_and(u8::is_ascii_whitespace)
    });
    if let Some(dash) = separator {
        if bytes
            .get(dash + 1)
            .is_some_and(|b| dash + 1 < end && !b.is_ascii_whitespace())
        {
            return Err(Fault::syntax(format!(
                "the hyphen range separator at byte {dash} must be followed by a space"
            )));
        }
        let (low_start, low_end) = trim_range(text, start, dash);
        let (high_start, high_end) = trim_range(text, dash + 1, end);
        if high_start == high_end {
            return Err(Fault::syntax(
                "missing upper bound of hyphen range".to_owned(),
            ));
        }
        if let Some(second) = (high_start + 1..high_end).find(|&i| {
            bytes.get(i) == Some(&b'-') && bytes.get(i - 1).is_some_and(u8::is_ascii_whitespace)
        }) {
            return Err(Fault::syntax(format!(
                "second hyphen range separator at byte {second}; a clause holds at most one range"
            )));
        }
        for bound in [low_start, high_start] {
            if bytes.get(bound).is_some_and(|b| OPERATOR_BYTES.contains(b)) {
                return Err(Fault::syntax(format!(
                    "operator at byte {bound} is not allowed in a hyphen range bound"
                )));
            }
        }
        let low = parse_core(text, low_start, low_end, true)?;
        let high = parse_core(text, high_start, high_end, true)?;
        out.push(Clause::new(Op::Ge, &low));
        out.push(Clause::new(Op::Le, &high));
        return Ok(());
    }

    let rest = text.get(start..end).unwrap_or_default();
    let (op, op_text) = OPERATORS
        .iter()
        .find(|(symbol, _)| rest.starts_with(symbol))
        .map(|&(symbol, op)| (op, symbol))
        .unwrap_or((Op::Eq, ""));
    let (version_start, _) = trim_range(text, start + op_text.len(), end);
    if version_start == end {
        return Err(Fault::syntax(format!(
            "missing version after operator \"{op_text}\""
        )));
    }
    let core = parse_core(text, version_start, end, true)?;
    out.push(Clause::new(op, &core));
    Ok(())
}

impl Constraint {
    /// Parses a constraint expression. See the module documentation and
    /// `docs/version-constraints.md` for the syntax.
    pub fn parse(s: &str) -> Result<Constraint, VersionError> {
        const WHAT: &str = "version constraint";
        check_limits(WHAT, s)?;
        let groups: Vec<Vec<(usize, usize)>> = split_ranges(s, 0, s.len(), "||")
            .into_iter()
            .map(|(start, end)| split_ranges(s, start, end, ","))
            .collect();
        let clause_count: usize = groups.iter().map(Vec::len).sum();

        let mut alternatives = Vec::with_capacity(groups.len());
        let mut number = 0;
        for group in groups {
            let mut clauses = Vec::with_capacity(group.len());
            for (raw_start, raw_end) in group {
                number += 1;
                let (start, end) = trim_range(s, raw_start, raw_end);
                let result = if start == end {
                    Err(Fault::syntax("empty clause".to_owned()))
                } else {
                    parse_clause(s, start, end, &mut clauses)
                };
                if let Err(fault) = result {
                    let reason = if clause_count > 1 {
                        let clause_text = s.get(start..end).unwrap_or_default();
                        format!("clause {number} ({clause_text:?}): {}", fault.reason)
                    } else {
                        fault.reason
                    };
                    return Err(VersionError::new(WHAT, s, fault.cause, reason));
                }
            }
            alternatives.push(clauses);
        }
        Ok(Constraint {
            text: s.to_owned(),
            alternatives,
        })
    }

    /// True when `v` satisfies every clause of at least one alternative.
    pub fn matches(&self, v: &Version) -> bool {
        self.alternatives
            .iter()
            .any(|clauses| clauses.iter().all(|c| c.matches(v)))
    }
}

impl FromStr for Constraint {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Constraint::parse(s)
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

// ---------------------------------------------------------------------------
// Selector requirements
// ---------------------------------------------------------------------------

/// What a selector's `version` field means: exact string equality first,
/// else a constraint.
///
/// Displays as the original text.
#[derive(Clone, Debug)]
pub struct VersionRequirement {
    text: String,
    /// `None` for plain labels such as `latest`, which only match exactly.
    constraint: Option<Constraint>,
}

impl VersionRequirement {
    /// Plain labels that are not constraints (e.g. "latest", "2021.09-rc" if not parseable) are accepted and match only by exact string equality.
    /// Text that uses constraint syntax (operators, `||`, `,`, a hyphen range, wildcards) but does not parse is an error.
    ///
    /// Numbers too large for 64 bits, blank text and text longer than
    /// [`MAX_INPUT_LEN`] bytes are errors too.
    pub fn parse(s: &str) -> Result<VersionRequirement, VersionError> {
        check_limits("version requirement", s)?;
        match Constraint::parse(s) {
            Ok(constraint) => Ok(VersionRequirement {
                text: s.to_owned(),
                constraint: Some(constraint),
            }),
            Err(error) if error.cause == Cause::Overflow || uses_constraint_syntax(s) => Err(error),
            Err(_) => Ok(VersionRequirement {
                text: s.to_owned(),
                constraint: None,
            }),
        }
    }

    /// True when `version` equals the requirement text exactly, or parses leniently as a Version that satisfies the constraint. Never panics; an unparseable record version only matches exactly.
    pub fn matches(&self, version: &str) -> bool {
        if version == self.text {
            return true;
        }
        match &self.constraint {
            Some(constraint) => Version::parse(version).is_ok_and(|v| constraint.matches(&v)),
            None => false,
        }
    }

    /// The requirement text exactly as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// Whether text that failed to parse was meant as a constraint: it holds an
/// operator, `|`, `,`, `*`, a whitespace-preceded `-` (a hyphen range), or
/// is version-shaped with an `x`/`X` wildcard number (`1.x.2.3`).
fn uses_constraint_syntax(s: &str) -> bool {
    let bytes = s.as_bytes();
    if bytes
        .iter()
        .any(|b| OPERATOR_BYTES.contains(b) || matches!(b, b'|' | b',' | b'*'))
    {
        return true;
    }
    if bytes
        .windows(2)
        .any(|w| w.first().is_some_and(u8::is_ascii_whitespace) && w.get(1) == Some(&b'-'))
    {
        return true;
    }
    let trimmed = s.trim_matches(is_space);
    let unprefixed = trimmed.strip_prefix('v').unwrap_or(trimmed);
    let numbers = unprefixed.split(['-', '+']).next().unwrap_or_default();
    let mut saw_wildcard = false;
    for part in numbers.split('.') {
        match part.as_bytes() {
            [b] if is_wild(*b) => saw_wildcard = true,
            digits if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) => {}
            _ => return false,
        }
    }
    saw_wildcard
}

impl FromStr for VersionRequirement {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        VersionRequirement::parse(s)
    }
}

impl fmt::Display for VersionRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::DefaultHasher;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
    }

    fn c(s: &str) -> Constraint {
        Constraint::parse(s).unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
    }

    fn hash_of(value: &Version) -> u64 {
        let mut hasher = DefaultHasher::new();
        value.hash(&mut hasher);
        hasher.finish()
    }

    /// (constraint, version, expected). Every row was also checked against
    /// the reference behaviour of Masterminds/semver v1.5.0.
    const TABLE: &[(&str, &str, bool)] = &[
        ("=1.2.3", "1.2.3", true),
        ("=1.2.3", "1.2.4", false),
        ("1.2.3", "1.2.3+build.7", true),
        ("1.2.3+a", "1.2.3+b", true),
        ("!=1.2.3", "1.2.3", false),
        ("!=1.2.3", "1.2.4", true),
        ("!=1.2.3", "1.2.3-beta", true),
        ("!=1.2.x", "1.2.9", false),
        ("!=1.2.x", "1.3.0", true),
        ("!=1.x", "1.9.9", false),
        ("!=1.x", "2.0.0", true),
        ("!=1.x", "1.0.0-beta", false),
        ("!=*", "0.0.5", false),
        ("!=*", "1.0.0", true),
        (">1.2.3", "1.2.4", true),
        (">1.2.3", "1.2.3", false),
        (">1", "1.5.0", true),
        (">1.2", "1.2.1", true),
        (">1.2.3", "1.3.0-beta", false),
        ("<1.2.3", "1.2.2", true),
        ("<1.2.3", "1.2.3", false),
        ("<1.2.x", "1.2.9", true),
        ("<1.2.x", "1.3.0", false),
        ("<1.2.x", "0.5.0", false),
        ("<1.2.x", "0.1.0", true),
        ("<1", "1.9.0", true),
        ("<1", "2.0.0", false),
        ("<*", "0.0.7", true),
        ("<*", "0.1.0", false),
        (">=1.2", "1.2.0", true),
        (">=1.2", "1.1.9", false),
        ("=>1.2", "1.3.0", true),
        ("<=1.2", "1.2.0", true),
        ("<=1.2", "1.2.1", false),
        ("=<1.2", "1.1.0", true),
        ("<=1.2.x", "1.2.500", true),
        ("<=2.x", "2.9.9", true),
        ("<=2.x", "3.0.0", false),
        ("~1.10.0", "1.10.3", true),
        ("~1.10.0", "1.11.0", false),
        ("~1.10.0", "0.9.1", false),
        ("~1.2.3", "1.2.2", false),
        ("~>1.2", "1.2.9", true),
        ("~1", "1.9.0", true),
        ("~1", "2.0.0", false),
        ("~0.0.0", "7.1.0", true),
        ("~*", "3.0.0", true),
        ("~0", "0.9.0", true),
        ("~0", "1.0.0", false),
        ("~0.2", "0.2.5", true),
        ("~0.2", "0.3.0", false),
        ("~0.0", "5.0.0", true),
        ("~1.2.3", "1.2.4-beta", false),
        ("~1.2-beta", "1.2.5-alpha", true),
        ("^1.2.3", "1.9.0", true),
        ("^1.2.3", "2.0.0", false),
        ("^1.2.3", "1.2.2", false),
        ("^0.2.3", "0.9.0", true),
        ("^0.2.3", "1.0.0", false),
        ("^0.0.3", "0.0.4", true),
        ("^0.0.3", "0.1.0", true),
        ("^*", "0.5.0", true),
        ("^*", "1.0.0", false),
        ("^1.x", "1.1.1", true),
        ("^1.1.2-alpha", "1.2.1-beta1", true),
        ("1.0", "1.0.0", true),
        ("1.0", "1.0.1", false),
        ("1", "1.9.0", true),
        ("1", "2.0.0", false),
        ("1", "0.9.0", false),
        ("1.x", "1.4.0", true),
        ("1.X", "1.4.0", true),
        ("1.*", "1.4.0", true),
        ("1.2.x", "1.2.7", true),
        ("1.2.x", "1.3.0", false),
        ("*", "3.4.5", true),
        ("x", "0.0.0", true),
        ("*", "1.0.0-beta", false),
        ("1.x.5", "1.0.0", true),
        ("=1.x", "1.2.0", true),
        ("1.2", "1.2.0", true),
        ("v1.2.3", "1.2.3", true),
        ("=v1.0", "1.0.0", true),
        (">=1.0", "v1.2.0", true),
        ("1", "v1", true),
        ("1.2 - 2.3", "2.3.0", true),
        ("1.2 - 2.3", "2.3.1", false),
        ("1.2 - 2.3", "1.1.9", false),
        ("1 - 2", "2.9.9", true),
        ("1 - 2", "3.0.0", false),
        ("v1 - v2", "2.1.0", true),
        ("1.0.0-alpha - 1.0.0", "1.0.0-beta", false),
        ("1.0.0-alpha - 1.0.0-rc", "1.0.0-beta", true),
        ("1.1-3", "1.1.0-3", true),
        ("1.1-3", "1.2.0", false),
        (">=1.2, <2", "1.5.0", true),
        (">=1.2, <2", "2.0.0", true),
        (">=1.2, <2.0.0", "2.0.0", false),
        (">=1.2,<2 || >=3", "3.1.0", true),
        (">=1.2,<2 || >=3", "2.5.0", true),
        (">=1.2,<2.0 || >=3", "2.5.0", false),
        ("~1.2 || ^2", "2.5.0", true),
        ("~1.2 || ^2", "1.3.0", false),
        (">=1.1, <2, !=1.2.3 || > 3", "1.2.3", false),
        (">=1.1, <2, !=1.2.3 || > 3", "1.2.4", true),
        (" >= 1.0 , < 2.0 ", "1.5.0", true),
        (">=1.0.0-alpha", "1.0.0-beta", true),
        (">=1.0.0-alpha", "1.0.0", true),
        (">=1.0.0-alpha", "1.0.1-beta", true),
        (">=1.0.0", "1.0.1-beta", false),
        ("<2.0.0", "2.0.0-rc.1", false),
        ("1.2.3-beta", "1.2.3-beta", true),
        ("1.2.3-alpha.2 - 1.2.3-alpha.10", "1.2.3-alpha.9", true),
        (">1.0.0-alpha.beta", "1.0.0-alpha.1", false),
        (">1.0.0-alpha", "1.0.0-alpha.1", true),
        ("1.x-beta", "1.5.0-rc", true),
        ("*-beta", "1.0.0-beta", false),
        (">0-0", "0.0.1-alpha", true),
        ("2021-09", "2021.5.0", true),
    ];

    #[test]
    fn constraint_table() {
        let mut failures = Vec::new();
        for &(constraint, version, expected) in TABLE {
            let got = c(constraint).matches(&v(version));
            if got != expected {
                failures.push(format!(
                    "{constraint:?} vs {version:?}: got {got}, want {expected}"
                ));
            }
        }
        assert!(TABLE.len() >= 60);
        assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
    }

    #[test]
    fn seed_example_tilde_1_10_0() {
        let tilde = c("~1.10.0");
        assert!(tilde.matches(&v("1.10.3")));
        assert!(!tilde.matches(&v("1.11.0")));
        assert!(!tilde.matches(&v("0.9.1")));
    }

    #[test]
    fn version_parsing_is_lenient() {
        for (text, normalized) in [
            ("1", "1.0.0"),
            ("v1.0", "1.0.0"),
            ("1.2", "1.2.0"),
            ("v1.2.3", "1.2.3"),
            ("01.02.03", "1.2.3"),
            ("1-beta", "1.0.0-beta"),
            ("1.2.3-alpha.1+build.5", "1.2.3-alpha.1+build.5"),
            ("1.2.3--x", "1.2.3--x"),
            ("1.0+sha.abc-1", "1.0.0+sha.abc-1"),
        ] {
            assert_eq!(v(text).to_string(), normalized, "{text:?}");
        }
        let full = v("v4.5.6-rc.1+b7");
        assert_eq!(
            (
                full.major(),
                full.minor(),
                full.patch(),
                full.prerelease(),
                full.build()
            ),
            (4, 5, 6, "rc.1", "b7")
        );
        assert_eq!("2.0".parse::<Version>(), Ok(v("2.0.0")));
    }

    #[test]
    fn version_precedence() {
        let ordered = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "1.0.1",
            "1.1.0",
            "2.0.0",
            "10.0.0",
        ];
        for pair in ordered.windows(2) {
            if let [lower, higher] = pair {
                assert!(v(lower) < v(higher), "{lower} < {higher}");
            }
        }
        // Build metadata is ignored by Eq, Ord and Hash alike.
        assert_eq!(v("1.0.0+a"), v("1.0.0+b"));
        assert_eq!(v("1.0.0+a").cmp(&v("1.0.0")), Ordering::Equal);
        assert_eq!(hash_of(&v("1.0.0+a")), hash_of(&v("v1.0")));
        // Leading zeros compare by value, ties broken as text (total order).
        assert!(v("1.0.0-01") < v("1.0.0-1"));
        assert!(v("1.0.0-1") < v("1.0.0-2"));
        assert_ne!(v("1.0.0-01"), v("1.0.0-1"));
        // Numeric identifiers too large for u64 compare as text.
        assert!(v("1.0.0-99999999999999999999") > v("1.0.0-5"));
    }

    /// Every error names the input and says what was wrong (and where).
    #[test]
    fn constraint_errors() {
        let long = "1".repeat(300);
        let cases: &[(&str, &str)] = &[
            ("~>>1", r#"unexpected ">" at byte 2"#),
            ("~>>1.0", r#"unexpected ">" at byte 2"#),
            (">=", r#"missing version after operator ">=""#),
            (">= ", r#"missing version after operator ">=""#),
            ("1.2.3.4", "too many version numbers"),
            ("1..2", "empty version number at byte 2"),
            ("1.0 -", "missing upper bound of hyphen range"),
            ("- 1.0", "missing lower bound of hyphen range"),
            ("|| 1.0", r#"clause 1 (""): empty clause"#),
            ("1.0,", r#"clause 2 (""): empty clause"#),
            (">=a.b.c", r#"unexpected "a" at byte 2"#),
            ("a.b.c", r#"unexpected "a" at byte 0"#),
            ("99999999999999999999999", "number at byte 0 is too large"),
            ("", "empty version constraint"),
            ("  ", "blank version constraint"),
            (
                &long,
                "input is 300 bytes long; at most 256 bytes are allowed",
            ),
            ("1 | 2", r#"unexpected "|" at byte 2"#),
            ("1.0.0-", "empty prerelease identifier at byte 6"),
            ("1.0.0-a..b", "empty prerelease identifier at byte 8"),
            ("1.2.3+", "empty build identifier at byte 6"),
            ("V1", r#"unexpected "V" at byte 0"#),
            ("1x", r#"unexpected "x" at byte 1"#),
            ("> = 1", r#"unexpected "=" at byte 2"#),
            ("1 -2", "must be followed by a space"),
            ("1 - 2 - 3", "at most one range"),
            (">1 - 2", "not allowed in a hyphen range bound"),
            ("1.0 1.0", r#"unexpected " " at byte 3"#),
            ("1 - 2 3", r#"unexpected " " at byte 5"#),
            (
                "1.0 - 2 || 1.x - ",
                r#"clause 2 ("1.x -"): missing upper bound of hyphen range"#,
            ),
            ("\u{e9}1", r#"unexpected "é" at byte 0"#),
        ];
        for &(input, reason) in cases {
            let error = match Constraint::parse(input) {
                Ok(parsed) => panic!("{input:?} parsed as {parsed:?}"),
                Err(error) => error,
            };
            let message = error.to_string();
            assert!(
                error.reason().contains(reason),
                "{input:?}: reason {:?} lacks {reason:?}",
                error.reason()
            );
            assert!(
                message.starts_with("invalid version constraint \""),
                "{message}"
            );
            assert!(message.ends_with(error.reason()), "{message}");
            if input.len() <= MAX_INPUT_LEN {
                assert_eq!(error.input(), input);
                assert!(message.contains(&format!("{input:?}")), "{message}");
            } else {
                assert!(error.input().len() < 40 && error.input().ends_with("..."));
            }
            assert!(input.parse::<Constraint>().is_err());
        }
        assert_eq!(cases.len(), 30);
    }

    #[test]
    fn version_errors() {
        let long = format!("1.0.0-{}", "a".repeat(300));
        for (input, reason) in [
            ("", "empty version"),
            (
                "1.x",
                r#"wildcard "x" at byte 2 is only allowed in constraints"#,
            ),
            (" 1.0", r#"unexpected " " at byte 0"#),
            ("1.2.3.4", "too many version numbers"),
            ("18446744073709551616", "too large"),
            ("v", "missing version number at byte 1"),
            ("1.", "missing version number at byte 2"),
            ("latest", r#"unexpected "l" at byte 0"#),
            (long.as_str(), "306 bytes long"),
        ] {
            let error = Version::parse(input).expect_err(input);
            assert!(error.reason().contains(reason), "{input:?}: {error}");
            assert!(
                error.to_string().starts_with("invalid version \""),
                "{error}"
            );
        }
        assert_eq!(
            Version::parse("18446744073709551615").map(|x| x.major()),
            Ok(u64::MAX)
        );
    }

    #[test]
    fn no_panics_on_odd_input() {
        let odd = [
            "\u{0}",
            "é",
            "v",
            "vé",
            "1.é",
            "1-é",
            "1+é",
            "||",
            ",",
            "-",
            " - ",
            "~",
            "^",
            "!",
            "1 - é",
            "é - 1",
            "1.2.3-α",
            "x.x.x.x",
            "*-",
            "1||",
            "||1",
            "\u{1F600}1.0",
        ];
        for input in odd {
            let _ = Version::parse(input);
            let _ = Constraint::parse(input);
            if let Ok(req) = VersionRequirement::parse(input) {
                let _ = req.matches(input);
                let _ = req.matches("1.0.0");
            }
        }
        let multibyte = "é".repeat(200);
        let error = Constraint::parse(&multibyte).expect_err("too long");
        assert!(error.input().ends_with("..."));
    }

    #[test]
    fn requirement_exact_string_first() {
        let latest = VersionRequirement::parse("latest").expect("label");
        assert!(latest.matches("latest"));
        assert!(!latest.matches("Latest"));
        assert!(!latest.matches("1.0.0"));
        assert_eq!(latest.as_str(), "latest");
        assert_eq!(latest.to_string(), "latest");

        let one_oh = VersionRequirement::parse("1.0").expect("constraint");
        assert!(one_oh.matches("1.0"));
        assert!(one_oh.matches("1.0.0"));
        assert!(one_oh.matches("v1.0.0"));
        assert!(one_oh.matches("1.0.0+build"));
        assert!(!one_oh.matches("1.0.1"));
        assert!(!one_oh.matches("1.0.0-rc.1"));
        assert!(!one_oh.matches("garbage"));

        let range = VersionRequirement::parse(">=1.2, <2.0.0").expect("constraint");
        assert!(range.matches("1.5"));
        assert!(!range.matches("2.0.0"));
        assert!(!range.matches("not a version"));

        // An unparseable label still matches itself exactly.
        let four = VersionRequirement::parse("1.2.3.4").expect("label");
        assert!(four.matches("1.2.3.4"));
        assert!(!four.matches("1.2.3"));

        // Non-semver text that is nevertheless a valid constraint.
        let dated = VersionRequirement::parse("2021.09-rc").expect("constraint");
        assert!(dated.matches("2021.09-rc"));
        assert!(dated.matches("2021.9.0-rc"));

        // Exact equality wins even where the constraint would say no.
        let bang = VersionRequirement::parse("1.x").expect("constraint");
        assert!(bang.matches("1.x"));
        assert!(bang.matches("1.7.2"));
        assert!(!bang.matches("1.7.2-beta"));
        assert_eq!(
            "1.x".parse::<VersionRequirement>().map(|r| r.to_string()),
            Ok("1.x".to_owned())
        );
    }

    #[test]
    fn requirement_errors() {
        for (input, what) in [
            ("", "version requirement"),
            ("   ", "version requirement"),
            (">=latest", "version constraint"),
            ("~>>1.0", "version constraint"),
            ("1.0 -", "version constraint"),
            ("1.x.2.3", "version constraint"),
            ("a || b", "version constraint"),
            ("1.0, beta", "version constraint"),
            ("99999999999999999999", "version constraint"),
        ] {
            let error = VersionRequirement::parse(input).expect_err(input);
            assert!(
                error.to_string().starts_with(&format!("invalid {what} ")),
                "{input:?}: {error}"
            );
        }
        let long = "x".repeat(257);
        let error = VersionRequirement::parse(&long).expect_err("long");
        assert!(error.reason().contains("257 bytes long"), "{error}");
        for label in [
            "latest",
            "stable",
            "release x",
            "X11",
            "2021.09.01.7",
            "nightly-2021",
        ] {
            assert!(VersionRequirement::parse(label).is_ok(), "{label:?}");
        }
    }

    #[test]
    fn display_keeps_original_text() {
        let text = " >= 1.0 ,< 2 ";
        assert_eq!(c(text).to_string(), text);
        assert_eq!(v("v1.2").to_string(), "1.2.0");
    }
}
