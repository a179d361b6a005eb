//! A small JSON reader that accepts what TensorFlow Serving writes: standard
//! JSON plus the bare tokens `NaN`, `Infinity` and `-Infinity` for
//! non-finite floats (serde_json rejects them). Integers and floats stay
//! apart (`1` is an integer, `1.0` a float), which the REST codec needs to
//! tell int64 from float features and outputs.
//!
//! Bounded: nesting deeper than [`MAX_DEPTH`] is an error, never a stack overflow.

use std::fmt;

/// Deepest nesting accepted.
pub const MAX_DEPTH: usize = 128;

/// A JSON number, kept as written: integer or float.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    /// An integer that fits `i64`.
    Int(i64),
    /// A non-negative integer above `i64::MAX`.
    Uint(u64),
    /// Anything with a fraction or exponent, integers beyond `u64`, and the
    /// non-finite tokens.
    Float(f64),
}

impl Number {
    /// The value as `f64` (large integers round).
    pub fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Uint(u) => u as f64,
            Number::Float(f) => f,
        }
    }

    /// True for integers written without fraction or exponent.
    pub fn is_integer(self) -> bool {
        !matches!(self, Number::Float(_))
    }
}

/// A parsed JSON value; object members keep their order.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number.
    Num(Number),
    /// A string.
    Str(String),
    /// An array.
    Arr(Vec<Json>),
    /// An object, members in document order.
    Obj(Vec<(String, Json)>),
}

impl Json {
    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string, when this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The base64 text of a `{"b64": "…"}` object.
    pub fn as_b64(&self) -> Option<&str> {
        match self {
            Json::Obj(members) if members.len() == 1 && members[0].0 == "b64" => {
                members[0].1.as_str()
            }
            _ => None,
        }
    }

    /// A short name of the value's type, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Num(_) => "a number",
            Json::Str(_) => "a string",
            Json::Arr(_) => "an array",
            Json::Obj(_) => "an object",
        }
    }
}

/// Where and why a document is not JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset of the problem.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.message, self.offset)
    }
}

/// Parses one JSON document (whitespace around it allowed).
pub fn parse(input: &[u8]) -> Result<Json, ParseError> {
    let mut p = Parser { s: input, at: 0 };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.at != p.s.len() {
        return Err(p.err("trailing characters after the JSON value"));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn err(&self, message: &str) -> ParseError {
        ParseError {
            offset: self.at,
            message: message.to_owned(),
        }
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.at) {
            self.at += 1;
        }
    }

    fn eat(&mut self, word: &[u8]) -> bool {
        if self.s[self.at..].starts_with(word) {
            self.at += word.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, ParseError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nesting is too deep"));
        }
        match self.s.get(self.at) {
            None => Err(self.err("unexpected end of input")),
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().map(Json::Str),
            Some(b't') if self.eat(b"true") => Ok(Json::Bool(true)),
            Some(b'f') if self.eat(b"false") => Ok(Json::Bool(false)),
            Some(b'n') if self.eat(b"null") => Ok(Json::Null),
            Some(b'N') if self.eat(b"NaN") => Ok(Json::Num(Number::Float(f64::NAN))),
            Some(b'I') if self.eat(b"Infinity") => Ok(Json::Num(Number::Float(f64::INFINITY))),
            Some(b'-') if self.eat(b"-Infinity") => Ok(Json::Num(Number::Float(f64::NEG_INFINITY))),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err("unexpected character")),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Json, ParseError> {
        let mut members = Vec::new();
        self.sequence(b'}', |p| {
            if p.s.get(p.at) != Some(&b'"') {
                return Err(p.err("expected a string key"));
            }
            let key = p.string()?;
            p.ws();
            if !p.eat(b":") {
                return Err(p.err("expected ':'"));
            }
            p.ws();
            members.push((key, p.value(depth + 1)?));
            Ok(())
        })?;
        Ok(Json::Obj(members))
    }

    fn array(&mut self, depth: usize) -> Result<Json, ParseError> {
        let mut items = Vec::new();
        self.sequence(b']', |p| {
            items.push(p.value(depth + 1)?);
            Ok(())
        })?;
        Ok(Json::Arr(items))
    }

    /// The comma-separated items of an object or array, from its opening
    /// bracket to `close`; `item` reads one (white space around it is skipped).
    fn sequence(
        &mut self,
        close: u8,
        mut item: impl FnMut(&mut Self) -> Result<(), ParseError>,
    ) -> Result<(), ParseError> {
        self.at += 1;
        self.ws();
        if self.eat(&[close]) {
            return Ok(());
        }
        loop {
            self.ws();
            item(self)?;
            self.ws();
            if self.eat(b",") {
                continue;
            }
            if self.eat(&[close]) {
                return Ok(());
            }
            return Err(self.err(&format!("expected ',' or '{}'", close as char)));
        }
    }

    fn hex4(&mut self) -> Result<u32, ParseError> {
        let digits = self
            .s
            .get(self.at..self.at + 4)
            .ok_or_else(|| self.err("truncated \\u escape"))?;
        let text = std::str::from_utf8(digits).map_err(|_| self.err("bad \\u escape"))?;
        let v = u32::from_str_radix(text, 16).map_err(|_| self.err("bad \\u escape"))?;
        self.at += 4;
        Ok(v)
    }

    fn string(&mut self) -> Result<String, ParseError> {
        self.at += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(&b) = self.s.get(self.at) else {
                return Err(self.err("unterminated string"));
            };
            self.at += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.s.get(self.at) else {
                        return Err(self.err("unterminated escape"));
                    };
                    self.at += 1;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                if !self.eat(b"\\u") {
                                    return Err(self.err("unpaired surrogate"));
                                }
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(self.err("unpaired surrogate"));
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            char::from_u32(code).ok_or_else(|| self.err("unpaired surrogate"))?
                        }
                        _ => return Err(self.err("unknown escape")),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                0..=0x1f => return Err(self.err("control character in string")),
                _ => out.push(b),
            }
        }
        String::from_utf8(out).map_err(|_| self.err("string is not UTF-8"))
    }

    fn number(&mut self) -> Result<Json, ParseError> {
        let start = self.at;
        let digits = |p: &mut Self| {
            let from = p.at;
            while let Some(b'0'..=b'9') = p.s.get(p.at) {
                p.at += 1;
            }
            p.at - from
        };
        if self.s.get(self.at) == Some(&b'-') {
            self.at += 1;
        }
        if digits(self) == 0 {
            return Err(self.err("expected digits"));
        }
        let mut float = false;
        if self.s.get(self.at) == Some(&b'.') {
            self.at += 1;
            float = true;
            if digits(self) == 0 {
                return Err(self.err("expected digits after '.'"));
            }
        }
        if let Some(b'e' | b'E') = self.s.get(self.at) {
            self.at += 1;
            float = true;
            if let Some(b'+' | b'-') = self.s.get(self.at) {
                self.at += 1;
            }
            if digits(self) == 0 {
                return Err(self.err("expected exponent digits"));
            }
        }
        // Only ASCII digits and signs were consumed.
        let text = std::str::from_utf8(&self.s[start..self.at]).unwrap_or("0");
        if !float {
            if let Ok(i) = text.parse::<i64>() {
                return Ok(Json::Num(Number::Int(i)));
            }
            if let Ok(u) = text.parse::<u64>() {
                return Ok(Json::Num(Number::Uint(u)));
            }
        }
        text.parse::<f64>()
            .map(|f| Json::Num(Number::Float(f)))
            .map_err(|_| ParseError {
                offset: start,
                message: "bad number".to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_json_and_non_finite_tokens() {
        let v = parse(
            br#" {"a": [1, -2.5, 1e3, NaN, Infinity, -Infinity, 18446744073709551615],
                           "s": "x\u00fc\ud83d\ude00\n", "b": [true, false, null], "o": {}} "#,
        )
        .unwrap();
        let Json::Arr(a) = v.get("a").unwrap() else {
            panic!()
        };
        assert_eq!(a[0], Json::Num(Number::Int(1)));
        assert_eq!(a[1], Json::Num(Number::Float(-2.5)));
        assert_eq!(a[2], Json::Num(Number::Float(1000.0)));
        assert!(matches!(a[3], Json::Num(Number::Float(f)) if f.is_nan()));
        assert_eq!(a[4], Json::Num(Number::Float(f64::INFINITY)));
        assert_eq!(a[5], Json::Num(Number::Float(f64::NEG_INFINITY)));
        assert_eq!(a[6], Json::Num(Number::Uint(u64::MAX)));
        assert_eq!(v.get("s").unwrap().as_str(), Some("xü😀\n"));
        assert_eq!(v.get("o"), Some(&Json::Obj(vec![])));
    }

    #[test]
    fn malformed_documents_are_errors_not_panics() {
        for bad in [
            &b""[..],
            b"[1,",
            b"{\"a\" 1}",
            b"[1 2]",
            b"\"\\ud800\"",
            b"01x",
            b"-",
            b"1.",
            b"[NaNa]",
            b"\"a\x01\"",
            b"{} {}",
            b"\"\xff\"",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let deep = "[".repeat(MAX_DEPTH + 5);
        let e = parse(deep.as_bytes()).unwrap_err();
        assert!(e.message.contains("too deep"), "{e}");
    }
}
