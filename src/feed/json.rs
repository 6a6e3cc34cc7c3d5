//! JSON exactly as JavaScript sees it.
//!
//! Owns the order-preserving [`Value`] tree, a parser with `JSON.parse`
//! semantics and a printer with `JSON.stringify(v, null, 2)` (and compact)
//! output, byte for byte. Pure: no I/O, imports nothing from the rest of shoal.
//!
//! Why not `serde_json`: Scuttlebutt signatures are over JavaScript's own
//! re-serialisation of the parsed value, so the parse must behave like V8's
//! `JSON.parse`, and `serde_json` differs where it matters:
//! - strings may hold lone surrogates (`"\ud800"`), which JavaScript keeps and
//!   prints back as the escape; serde_json refuses them;
//! - every number is an IEEE double (`12345678901234567890` prints back as
//!   `12345678901234567000`, `1.0` as `1`, `1e400` as `null`);
//! - object keys that are array indices (`"0"`..`"4294967294"`) come first in
//!   ascending numeric order, all other keys keep insertion order, and a
//!   repeated key keeps its first position with its last value.
//!
//! Strings are stored as WTF-8 (UTF-8 that may also encode lone surrogates as
//! three-byte sequences), so the common case is plain `&str`.

use std::fmt;

/// Maximum nesting of arrays and objects accepted by the parser. A signed
/// message is at most 8192 UTF-16 units when pretty-printed, which bounds real
/// nesting far below this.
pub const MAX_DEPTH: usize = 256;

/// A JavaScript string: WTF-8 bytes (well-formed UTF-8 unless it holds a lone
/// surrogate, encoded as its three-byte generalised UTF-8 sequence).
#[derive(Clone)]
pub struct JsString(Repr);

/// Common message keys (and the two most common values, `"sha256"` and
/// `"post"`) are shared static bytes: most keys of most messages then cost
/// no allocation.
///
/// A string is *plain* when its bytes print inside the quotes as they are
/// (`JSON.stringify` escapes none of them): no `"`, `\\`, control
/// character or lone surrogate. The parser knows it of every literal it
/// read without an escape (the input is valid UTF-8, which holds no
/// surrogate), and the printer then copies it without looking at it again.
/// The common keys are plain.
#[derive(Clone)]
enum Repr {
    /// A common key or value (plain).
    Static(&'static [u8]),
    /// A plain string.
    Plain(Box<[u8]>),
    /// Any other string.
    Heap(Box<[u8]>),
}

/// The shared bytes of `b` when it is one of the keys that nearly every
/// message has, or one of its most common values (one `match`: the
/// compiler compares the length first, then at most a few candidates).
fn common_key(b: &[u8]) -> Option<&'static [u8]> {
    let k = match b {
        b"previous" => "previous",
        b"author" => "author",
        b"sequence" => "sequence",
        b"timestamp" => "timestamp",
        b"hash" => "hash",
        b"content" => "content",
        b"signature" => "signature",
        b"type" => "type",
        b"text" => "text",
        b"root" => "root",
        b"branch" => "branch",
        b"mentions" => "mentions",
        b"channel" => "channel",
        b"link" => "link",
        b"name" => "name",
        b"contact" => "contact",
        b"following" => "following",
        b"blocking" => "blocking",
        b"about" => "about",
        b"vote" => "vote",
        b"value" => "value",
        b"expression" => "expression",
        b"recps" => "recps",
        b"key" => "key",
        b"sha256" => "sha256",
        b"post" => "post",
        _ => return None,
    };
    Some(k.as_bytes())
}

impl JsString {
    /// The string of `b`; `plain` only when `b` is known to be plain (see
    /// [`Repr`]).
    fn from_parsed(b: &[u8], plain: bool) -> JsString {
        match common_key(b) {
            Some(k) => JsString(Repr::Static(k)),
            None if plain => JsString(Repr::Plain(b.into())),
            None => JsString(Repr::Heap(b.into())),
        }
    }

    fn bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Static(b) => b,
            Repr::Plain(b) | Repr::Heap(b) => b,
        }
    }

    /// Whether the bytes are known to print as they are (see [`Repr`]).
    fn is_plain(&self) -> bool {
        matches!(self.0, Repr::Static(_) | Repr::Plain(_))
    }

    /// The string as `&str` when it holds no lone surrogate.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(self.bytes()).ok()
    }

    /// The raw WTF-8 bytes.
    pub fn as_wtf8(&self) -> &[u8] {
        self.bytes()
    }

    /// Length in UTF-16 code units, as JavaScript's `.length` counts it.
    pub fn utf16_len(&self) -> usize {
        utf16_len_wtf8(self.bytes())
    }

    /// A lossy `String` (lone surrogates become U+FFFD), for display.
    pub fn to_string_lossy(&self) -> String {
        String::from_utf8_lossy(self.bytes()).into_owned()
    }
}

impl Default for JsString {
    fn default() -> Self {
        JsString(Repr::Static(b""))
    }
}

impl PartialEq for JsString {
    fn eq(&self, other: &Self) -> bool {
        self.bytes() == other.bytes()
    }
}

impl Eq for JsString {}

impl std::hash::Hash for JsString {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.bytes().hash(state)
    }
}

impl PartialOrd for JsString {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for JsString {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.bytes().cmp(other.bytes())
    }
}

impl From<&str> for JsString {
    fn from(s: &str) -> Self {
        JsString::from_parsed(s.as_bytes(), false)
    }
}

impl From<String> for JsString {
    fn from(s: String) -> Self {
        JsString(Repr::Heap(s.into_bytes().into_boxed_slice()))
    }
}

impl PartialEq<str> for JsString {
    fn eq(&self, other: &str) -> bool {
        self.bytes() == other.as_bytes()
    }
}

impl fmt::Debug for JsString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_string_lossy())
    }
}

/// A parsed JSON value with JavaScript semantics.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// Every JSON number is a double in JavaScript.
    Number(f64),
    /// A string, possibly holding lone surrogates.
    String(JsString),
    /// An array.
    Array(Vec<Value>),
    /// An object, keys in JavaScript's own-property order.
    Object(Object),
}

/// An object whose entries are kept in V8's property order.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Object(Vec<(JsString, Value)>);

impl Object {
    /// An empty object.
    pub fn new() -> Self {
        Object(Vec::new())
    }

    /// Entries in property order.
    pub fn iter(&self) -> impl Iterator<Item = (&JsString, &Value)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// Keys in property order.
    pub fn keys(&self) -> impl Iterator<Item = &JsString> {
        self.0.iter().map(|(k, _)| k)
    }

    /// Number of properties.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the object has no properties.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of a property.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0
            .iter()
            .find(|(k, _)| k.bytes() == key.as_bytes())
            .map(|(_, v)| v)
    }

    /// The entry at a position in property order.
    pub fn entry_at(&self, i: usize) -> Option<(&JsString, &Value)> {
        self.0.get(i).map(|(k, v)| (k, v))
    }

    /// Sets a property as JavaScript's `obj[key] = value` does: an existing
    /// key keeps its position, a new array-index key goes into numeric order,
    /// any other new key goes last.
    pub fn insert(&mut self, key: impl Into<JsString>, value: Value) {
        let key = key.into();
        if let Some(slot) = self.0.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = value;
            return;
        }
        match array_index(key.bytes()) {
            Some(idx) => {
                let pos = self
                    .0
                    .iter()
                    .position(|(k, _)| array_index(k.bytes()).is_none_or(|other| other > idx))
                    .unwrap_or(self.0.len());
                self.0.insert(pos, (key, value));
            }
            None => self.0.push((key, value)),
        }
    }

    /// Removes a property, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let pos = self
            .0
            .iter()
            .position(|(k, _)| k.bytes() == key.as_bytes())?;
        Some(self.0.remove(pos).1)
    }
}

/// The numeric value of `key` when V8 treats it as an array index: the
/// canonical decimal form of an integer in `0..=4294967294`.
fn array_index(key: &[u8]) -> Option<u32> {
    if key.is_empty() || key.len() > 10 || (key.len() > 1 && key[0] == b'0') {
        return None;
    }
    let mut n: u64 = 0;
    for &b in key {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(b - b'0');
    }
    if n <= 4_294_967_294 {
        Some(n as u32)
    } else {
        None
    }
}

impl Value {
    /// The object, if this is one.
    pub fn as_object(&self) -> Option<&Object> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_js_str(&self) -> Option<&JsString> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The string as `&str`, if this is a string without lone surrogates.
    pub fn as_str(&self) -> Option<&str> {
        self.as_js_str().and_then(JsString::as_str)
    }

    /// The number, if this is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// A property of an object value.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_object()?.get(key)
    }

    /// The name JavaScript's `typeof`-like checks would use, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.into())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s.into())
    }
}

impl From<f64> for Value {
    fn from(n: f64) -> Self {
        Value::Number(n)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

/// Why a text is not JSON, with the byte offset where parsing stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// The bytes are not valid UTF-8.
    #[error("invalid UTF-8 at byte {0}")]
    InvalidUtf8(usize),
    /// The text ended inside a value.
    #[error("unexpected end of JSON")]
    UnexpectedEnd,
    /// A byte that cannot start or continue a value here.
    #[error("unexpected {found} at byte {at} of JSON")]
    Unexpected {
        /// Printable description of what was found.
        found: String,
        /// Byte offset.
        at: usize,
    },
    /// A malformed number.
    #[error("invalid number at byte {0}")]
    BadNumber(usize),
    /// A malformed string escape.
    #[error("invalid escape at byte {0}")]
    BadEscape(usize),
    /// A raw control character inside a string.
    #[error("unescaped control character in string at byte {0}")]
    ControlInString(usize),
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("JSON nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// Something other than whitespace after the value.
    #[error("trailing characters after JSON value at byte {0}")]
    Trailing(usize),
}

/// Parses a complete JSON text with `JSON.parse` semantics.
pub fn parse(input: &[u8]) -> Result<Value, JsonError> {
    if simdutf8::basic::from_utf8(input).is_err() {
        // Where it goes wrong, for the error: the slower check says.
        let at = std::str::from_utf8(input).map_or_else(|e| e.valid_up_to(), |_| 0);
        return Err(JsonError::InvalidUtf8(at));
    }
    let mut p = Parser {
        s: input,
        i: 0,
        depth: 0,
        buf: Vec::new(),
    };
    p.ws();
    let v = p.value()?;
    p.ws();
    if p.i != p.s.len() {
        return Err(JsonError::Trailing(p.i));
    }
    Ok(v)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
    buf: Vec<u8>,
}

impl Parser<'_> {
    #[inline]
    fn ws(&mut self) {
        while let Some(&b) = self.s.get(self.i) {
            if matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    fn unexpected(&self) -> JsonError {
        match self.s.get(self.i) {
            None => JsonError::UnexpectedEnd,
            Some(&b) => {
                let found = if b.is_ascii_graphic() {
                    format!("'{}'", b as char)
                } else {
                    format!("byte 0x{b:02x}")
                };
                JsonError::Unexpected { found, at: self.i }
            }
        }
    }

    fn literal(&mut self, word: &[u8], v: Value) -> Result<Value, JsonError> {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(self.unexpected())
        }
    }

    fn value(&mut self) -> Result<Value, JsonError> {
        match self.s.get(self.i) {
            None => Err(JsonError::UnexpectedEnd),
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(b't') => self.literal(b"true", Value::Bool(true)),
            Some(b'f') => self.literal(b"false", Value::Bool(false)),
            Some(b'n') => self.literal(b"null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.unexpected()),
        }
    }

    fn enter(&mut self) -> Result<(), JsonError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            Err(JsonError::TooDeep)
        } else {
            Ok(())
        }
    }

    fn object(&mut self) -> Result<Value, JsonError> {
        self.enter()?;
        self.i += 1;
        let mut obj = Object::new();
        self.ws();
        if self.s.get(self.i) == Some(&b'}') {
            self.i += 1;
            self.depth -= 1;
            return Ok(Value::Object(obj));
        }
        loop {
            self.ws();
            if self.s.get(self.i) != Some(&b'"') {
                return Err(self.unexpected());
            }
            let key = self.string()?;
            self.ws();
            if self.s.get(self.i) != Some(&b':') {
                return Err(self.unexpected());
            }
            self.i += 1;
            self.ws();
            let v = self.value()?;
            obj.insert(key, v);
            self.ws();
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    break;
                }
                _ => return Err(self.unexpected()),
            }
        }
        self.depth -= 1;
        Ok(Value::Object(obj))
    }

    fn array(&mut self) -> Result<Value, JsonError> {
        self.enter()?;
        self.i += 1;
        let mut items = Vec::new();
        self.ws();
        if self.s.get(self.i) == Some(&b']') {
            self.i += 1;
            self.depth -= 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.ws();
            items.push(self.value()?);
            self.ws();
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    break;
                }
                _ => return Err(self.unexpected()),
            }
        }
        self.depth -= 1;
        Ok(Value::Array(items))
    }

    fn number(&mut self) -> Result<Value, JsonError> {
        let start = self.i;
        let s = self.s;
        let mut i = self.i;
        if s.get(i) == Some(&b'-') {
            i += 1;
        }
        match s.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                while s.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
            }
            _ => return Err(JsonError::BadNumber(start)),
        }
        if s.get(i) == Some(&b'.') {
            i += 1;
            if !s.get(i).is_some_and(u8::is_ascii_digit) {
                return Err(JsonError::BadNumber(start));
            }
            while s.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        if matches!(s.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(s.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if !s.get(i).is_some_and(u8::is_ascii_digit) {
                return Err(JsonError::BadNumber(start));
            }
            while s.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
        self.i = i;
        // The grammar above admits only ASCII, and Rust's parse is correctly
        // rounded, as ECMAScript's StringToNumber is.
        let text = std::str::from_utf8(&s[start..i]).map_err(|_| JsonError::BadNumber(start))?;
        text.parse::<f64>()
            .map(Value::Number)
            .map_err(|_| JsonError::BadNumber(start))
    }

    fn hex4(&mut self) -> Result<u16, JsonError> {
        let at = self.i;
        let digits = self
            .s
            .get(self.i..self.i + 4)
            .ok_or(JsonError::BadEscape(at))?;
        let mut v: u16 = 0;
        for &d in digits {
            let n = (d as char).to_digit(16).ok_or(JsonError::BadEscape(at))?;
            v = (v << 4) | n as u16;
        }
        self.i += 4;
        Ok(v)
    }

    fn string(&mut self) -> Result<JsString, JsonError> {
        self.i += 1; // opening quote
        let start = self.i;
        // Fast path: no escapes.
        self.i = scan(self.s, self.i, ends_plain_run);
        match self.s.get(self.i) {
            None => return Err(JsonError::UnexpectedEnd),
            Some(b'"') => {
                // No escape, quote or control character, and no surrogate
                // (the input is valid UTF-8): plain.
                let out = JsString::from_parsed(&self.s[start..self.i], true);
                self.i += 1;
                return Ok(out);
            }
            Some(b'\\') => {}
            Some(_) => return Err(JsonError::ControlInString(self.i)),
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.extend_from_slice(&self.s[start..self.i]);
        let result = self.string_slow(&mut buf);
        let out = result.map(|()| JsString::from_parsed(&buf, false));
        self.buf = buf;
        out
    }

    fn string_slow(&mut self, buf: &mut Vec<u8>) -> Result<(), JsonError> {
        loop {
            match self.s.get(self.i) {
                None => return Err(JsonError::UnexpectedEnd),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    let at = self.i;
                    self.i += 1;
                    let c = *self.s.get(self.i).ok_or(JsonError::UnexpectedEnd)?;
                    self.i += 1;
                    match c {
                        b'"' => buf.push(b'"'),
                        b'\\' => buf.push(b'\\'),
                        b'/' => buf.push(b'/'),
                        b'b' => buf.push(0x08),
                        b'f' => buf.push(0x0c),
                        b'n' => buf.push(b'\n'),
                        b'r' => buf.push(b'\r'),
                        b't' => buf.push(b'\t'),
                        b'u' => {
                            let u = self.hex4()?;
                            let mut cp = u32::from(u);
                            if (0xD800..0xDC00).contains(&u)
                                && self.s.get(self.i..self.i + 2) == Some(b"\\u")
                            {
                                let save = self.i;
                                self.i += 2;
                                let lo = self.hex4()?;
                                if (0xDC00..0xE000).contains(&lo) {
                                    cp = 0x10000 + ((cp - 0xD800) << 10) + (u32::from(lo) - 0xDC00);
                                } else {
                                    self.i = save;
                                }
                            }
                            push_wtf8(buf, cp);
                        }
                        _ => return Err(JsonError::BadEscape(at)),
                    }
                }
                Some(&b) if b < 0x20 => return Err(JsonError::ControlInString(self.i)),
                Some(_) => {
                    let end = scan(self.s, self.i, ends_plain_run);
                    buf.extend_from_slice(&self.s[self.i..end]);
                    self.i = end;
                }
            }
        }
    }
}

/// The index of the first byte of `s` at or after `i` for which `stop`
/// holds (`s.len()` when none does), sixteen bytes at a time where it can
/// (the compiler turns the test of sixteen into a few vector instructions).
#[inline(always)]
fn scan(s: &[u8], mut i: usize, stop: impl Fn(u8) -> bool) -> usize {
    while let Some(chunk) = s.get(i..i + 16).and_then(|c| <&[u8; 16]>::try_from(c).ok()) {
        if chunk.iter().fold(false, |hit, &b| hit | stop(b)) {
            break;
        }
        i += 16;
    }
    while i < s.len() && !stop(s[i]) {
        i += 1;
    }
    i
}

/// A byte a JSON string literal cannot hold as it is: its end, an escape,
/// or a control character.
#[inline(always)]
fn ends_plain_run(b: u8) -> bool {
    b == b'"' || b == b'\\' || b < 0x20
}

/// Appends a code point (possibly a lone surrogate) as WTF-8.
fn push_wtf8(buf: &mut Vec<u8>, cp: u32) {
    match cp {
        0..=0x7F => buf.push(cp as u8),
        0x80..=0x7FF => {
            buf.push(0xC0 | (cp >> 6) as u8);
            buf.push(0x80 | (cp & 0x3F) as u8);
        }
        0x800..=0xFFFF => {
            buf.push(0xE0 | (cp >> 12) as u8);
            buf.push(0x80 | ((cp >> 6) & 0x3F) as u8);
            buf.push(0x80 | (cp & 0x3F) as u8);
        }
        _ => {
            buf.push(0xF0 | (cp >> 18) as u8);
            buf.push(0x80 | ((cp >> 12) & 0x3F) as u8);
            buf.push(0x80 | ((cp >> 6) & 0x3F) as u8);
            buf.push(0x80 | (cp & 0x3F) as u8);
        }
    }
}

/// UTF-16 length of WTF-8 bytes: four-byte sequences are two units, every
/// other sequence one.
pub fn utf16_len_wtf8(bytes: &[u8]) -> usize {
    // Every byte that is not a continuation byte starts one unit; four-byte
    // lead bytes start two. Counted in bytes over runs of 127 (at most 254
    // each), which the compiler vectorises.
    bytes
        .chunks(127)
        .map(|run| {
            let units = run.iter().fold(0u8, |n, &b| {
                n.wrapping_add(u8::from((b & 0xC0) != 0x80) + u8::from(b >= 0xF0))
            });
            usize::from(units)
        })
        .sum()
}

/// Latin-1 view of WTF-8 text as JavaScript's `Buffer.from(s, 'latin1')`
/// makes it: each UTF-16 code unit truncated to its low byte.
pub fn latin1_bytes(wtf8: &[u8], out: &mut Vec<u8>) {
    out.reserve(wtf8.len());
    let mut i = 0;
    while i < wtf8.len() {
        let b = wtf8[i];
        if b < 0x80 {
            // Copy the whole ASCII run at once.
            let end = scan(wtf8, i, |c| c >= 0x80);
            out.extend_from_slice(&wtf8[i..end]);
            i = end;
        } else if b < 0xE0 {
            let cp = (u32::from(b & 0x1F) << 6) | u32::from(wtf8[i + 1] & 0x3F);
            out.push(cp as u8);
            i += 2;
        } else if b < 0xF0 {
            let cp = (u32::from(b & 0x0F) << 12)
                | (u32::from(wtf8[i + 1] & 0x3F) << 6)
                | u32::from(wtf8[i + 2] & 0x3F);
            out.push(cp as u8);
            i += 3;
        } else {
            let cp = (u32::from(b & 0x07) << 18)
                | (u32::from(wtf8[i + 1] & 0x3F) << 12)
                | (u32::from(wtf8[i + 2] & 0x3F) << 6)
                | u32::from(wtf8[i + 3] & 0x3F);
            let v = cp - 0x10000;
            let hi = 0xD800 + (v >> 10);
            let lo = 0xDC00 + (v & 0x3FF);
            out.push(hi as u8);
            out.push(lo as u8);
            i += 4;
        }
    }
}

/// Prints a double exactly as JavaScript's `JSON.stringify` does.
pub fn write_number(out: &mut Vec<u8>, n: f64) {
    if !n.is_finite() {
        out.extend_from_slice(b"null");
    } else if n == 0.0 {
        out.push(b'0'); // also -0
    } else {
        let mut b = ryu_js::Buffer::new();
        out.extend_from_slice(b.format_finite(n).as_bytes());
    }
}

/// A byte that needs attention when printing a string: control
/// characters, `"` and `\\`, and 0xED (the lead byte of a surrogate in
/// WTF-8).
#[inline(always)]
fn needs_care(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\' || b == 0xED
}

/// Prints a string literal exactly as JavaScript's `JSON.stringify` does
/// (well-formed stringify: lone surrogates become lowercase `\udxxx`).
pub fn write_string(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(s.len() + 2);
    out.push(b'"');
    let mut run = 0;
    let mut i = 0;
    while i < s.len() {
        i = scan(s, i, needs_care);
        let Some(&b) = s.get(i) else { break };
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x0c => b"\\f",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0xED if s.get(i + 1).is_some_and(|&c| c >= 0xA0) => {
                // A lone surrogate in WTF-8: ED A0..BF xx.
                out.extend_from_slice(&s[run..i]);
                let cp = (u32::from(b & 0x0F) << 12)
                    | (u32::from(s[i + 1] & 0x3F) << 6)
                    | u32::from(s[i + 2] & 0x3F);
                out.extend_from_slice(b"\\u");
                for shift in [12, 8, 4, 0] {
                    out.push(HEX[((cp >> shift) & 0xF) as usize]);
                }
                i += 3;
                run = i;
                continue;
            }
            0xED => {
                i += 1;
                continue;
            }
            _ => {
                out.extend_from_slice(&s[run..i]);
                out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[(b >> 4) as usize],
                    HEX[(b & 0xF) as usize],
                ]);
                i += 1;
                run = i;
                continue;
            }
        };
        out.extend_from_slice(&s[run..i]);
        out.extend_from_slice(esc);
        i += 1;
        run = i;
    }
    out.extend_from_slice(&s[run..]);
    out.push(b'"');
}

/// Prints `s` as [`write_string`] does, copying a plain string (see
/// [`Repr`]) without looking at its bytes.
pub fn write_js_string(out: &mut Vec<u8>, s: &JsString) {
    if s.is_plain() {
        let b = s.bytes();
        out.reserve(b.len() + 2);
        out.push(b'"');
        out.extend_from_slice(b);
        out.push(b'"');
    } else {
        write_string(out, s.bytes());
    }
}

/// Turns `JSON.stringify(v, null, 2)` output into `JSON.stringify(v)` by
/// dropping the whitespace between tokens (the two differ in nothing else).
pub fn minify_pretty(pretty: &[u8], out: &mut Vec<u8>) {
    out.reserve(pretty.len());
    let mut i = 0;
    while i < pretty.len() {
        let b = pretty[i];
        match b {
            b' ' | b'\n' => i += 1,
            b'"' => {
                // Copy the whole string literal, escapes included.
                let start = i;
                i += 1;
                while i < pretty.len() {
                    match memchr::memchr2(b'\\', b'"', &pretty[i..]) {
                        Some(at) if pretty[i + at] == b'\\' => i += at + 2,
                        Some(at) => {
                            i += at + 1;
                            break;
                        }
                        None => i = pretty.len(),
                    }
                }
                out.extend_from_slice(&pretty[start..i.min(pretty.len())]);
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
}

/// `JSON.stringify(v)`: no whitespace.
pub fn to_compact(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_compact(&mut out, v);
    out
}

/// Appends `JSON.stringify(v)`.
pub fn write_compact(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(out, *n),
        Value::String(s) => write_js_string(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_compact(out, item);
            }
            out.push(b']');
        }
        Value::Object(obj) => {
            out.push(b'{');
            for (i, (k, item)) in obj.0.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_js_string(out, k);
                out.push(b':');
                write_compact(out, item);
            }
            out.push(b'}');
        }
    }
}

/// `JSON.stringify(v, null, 2)`.
pub fn to_pretty(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    write_pretty(&mut out, v, 0);
    out
}

fn indent(out: &mut Vec<u8>, level: usize) {
    out.push(b'\n');
    out.resize(out.len() + 2 * level, b' ');
}

/// Appends `JSON.stringify(v, null, 2)` as it prints at nesting `level`.
pub fn write_pretty(out: &mut Vec<u8>, v: &Value, level: usize) {
    match v {
        Value::Array(items) if !items.is_empty() => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                indent(out, level + 1);
                write_pretty(out, item, level + 1);
            }
            indent(out, level);
            out.push(b']');
        }
        Value::Object(obj) if !obj.is_empty() => {
            out.push(b'{');
            for (i, (k, item)) in obj.0.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                indent(out, level + 1);
                write_js_string(out, k);
                out.extend_from_slice(b": ");
                write_pretty(out, item, level + 1);
            }
            indent(out, level);
            out.push(b'}');
        }
        other => write_compact(out, other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(input: &str) -> String {
        String::from_utf8(to_compact(&parse(input.as_bytes()).unwrap())).unwrap()
    }

    #[test]
    fn numbers_print_like_javascript() {
        let cases = [
            ("1.0", "1"),
            ("-0", "0"),
            ("-0.0", "0"),
            ("1e21", "1e+21"),
            ("1e20", "100000000000000000000"),
            ("123456789012345678901234", "1.2345678901234569e+23"),
            ("12345678901234567890", "12345678901234567000"),
            ("0.000001", "0.000001"),
            ("0.0000001", "1e-7"),
            ("1E400", "null"),
            ("-1e400", "null"),
            ("0.1", "0.1"),
            ("1.5e-10", "1.5e-10"),
            ("5e-324", "5e-324"),
            ("1.7976931348623157e308", "1.7976931348623157e+308"),
            ("9007199254740993", "9007199254740992"),
            ("100", "100"),
            ("-1.25", "-1.25"),
        ];
        for (input, want) in cases {
            assert_eq!(roundtrip(input), want, "input {input}");
        }
    }

    #[test]
    fn strings_escape_like_javascript() {
        assert_eq!(
            roundtrip(r#""a\u0000\u001f\b\f\n\r\t\"\\\/\u007f\u2028é😀""#),
            "\"a\\u0000\\u001f\\b\\f\\n\\r\\t\\\"\\\\/\u{7f}\u{2028}é😀\""
        );
        // Lone surrogates survive and print as lowercase escapes.
        assert_eq!(roundtrip(r#""\uD800x\uDFFF""#), r#""\ud800x\udfff""#);
        // A valid escaped pair becomes the raw character.
        assert_eq!(roundtrip(r#""\ud83d\ude00""#), "\"😀\"");
        // A high surrogate followed by a non-low escape stays lone.
        assert_eq!(roundtrip(r#""\ud83d\u0041""#), r#""\ud83dA""#);
    }

    #[test]
    fn plain_strings_print_as_the_escaping_printer_prints_them() {
        // Read without an escape, a string is copied as it is: the copy must
        // be what the escaping printer writes. Hangul (ED 80..9F in UTF-8)
        // shares its lead byte with the surrogates the printer escapes.
        let samples = [
            "",
            "plain",
            "한국어 텍스트 \u{d7ff}",
            "é😀\u{7f}\u{2028}\u{2029}\u{fffd}",
            "/slashes/ and 'quotes'",
        ];
        for text in samples {
            let literal = format!("\"{text}\"");
            let v = parse(literal.as_bytes()).unwrap();
            let Value::String(js) = &v else { panic!() };
            assert!(js.is_plain(), "{text:?} read without escapes is plain");
            let mut escaped = Vec::new();
            write_string(&mut escaped, text.as_bytes());
            assert_eq!(to_compact(&v), escaped, "{text:?}");
            assert_eq!(escaped, literal.as_bytes(), "{text:?}");
        }
        // A literal with an escape is printed by the escaping printer, which
        // may spell it differently from the input.
        for (literal, printed) in [
            (r#""a\/b""#, r#""a/b""#),
            (r#""\u0041""#, r#""A""#),
            (r#""\ud800""#, r#""\ud800""#),
            (r#""\"\\""#, r#""\"\\""#),
        ] {
            let v = parse(literal.as_bytes()).unwrap();
            let Value::String(js) = &v else { panic!() };
            assert!(!js.is_plain(), "{literal} holds an escape");
            assert_eq!(String::from_utf8(to_compact(&v)).unwrap(), printed);
        }
        // Strings made in Rust are printed by the escaping printer.
        let made = Value::String(JsString::from("a\"b\n"));
        assert_eq!(to_compact(&made), br#""a\"b\n""#);
        let made = Value::String(JsString::from(String::from("x\u{1}")));
        assert_eq!(to_compact(&made), br#""x\u0001""#);
    }

    #[test]
    fn the_latin1_view_has_one_byte_per_utf16_unit() {
        // A message's size in UTF-16 units is read off its latin-1 view.
        let lone = parse(br#""a\ud800b""#).unwrap();
        let Value::String(lone) = lone else { panic!() };
        for text in [
            "ascii".as_bytes(),
            "é ñ 한국어".as_bytes(),
            "😀 two units each 🎉".as_bytes(),
            lone.as_wtf8(),
        ] {
            let mut latin1 = Vec::new();
            latin1_bytes(text, &mut latin1);
            assert_eq!(latin1.len(), utf16_len_wtf8(text), "{text:?}");
        }
    }

    #[test]
    fn keys_follow_v8_order() {
        assert_eq!(
            roundtrip(r#"{"b":1,"2":2,"a":3,"1":4,"01":5,"4294967295":6,"4294967294":7,"-1":8}"#),
            r#"{"1":4,"2":2,"4294967294":7,"b":1,"a":3,"01":5,"4294967295":6,"-1":8}"#
        );
        assert_eq!(roundtrip(r#"{"a":1,"b":2,"a":3}"#), r#"{"a":3,"b":2}"#);
    }

    #[test]
    fn pretty_matches_stringify() {
        let v = parse(br#"{"a":[],"b":{},"c":[1,{"d":null}],"e":"x"}"#).unwrap();
        let want = "{\n  \"a\": [],\n  \"b\": {},\n  \"c\": [\n    1,\n    {\n      \"d\": null\n    }\n  ],\n  \"e\": \"x\"\n}";
        assert_eq!(String::from_utf8(to_pretty(&v)).unwrap(), want);
    }

    #[test]
    fn rejects_what_json_parse_rejects() {
        for bad in [
            "",
            "01",
            "1.",
            ".5",
            "+1",
            "-",
            "1e",
            "[1,]",
            "{\"a\":1,}",
            "{a:1}",
            "'x'",
            "\"\t\"",
            "\"\\x\"",
            "\"\\u12\"",
            "[1] 2",
            "nul",
            "NaN",
            "Infinity",
            "\"abc",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "accepted {bad:?}");
        }
        assert!(matches!(parse(b"\"\xff\""), Err(JsonError::InvalidUtf8(1))));
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert_eq!(parse(deep.as_bytes()), Err(JsonError::TooDeep));
    }

    #[test]
    fn minify_matches_compact() {
        for text in [
            r#"{"a":[],"b":{},"c":[1,{"d":null,"e":"x y\n\"q\\"}],"f":" : , "}"#,
            r#"[]"#,
            r#""s p a c e""#,
            r#"{"\u0000 k":[-0,1e21,"\ud800"]}"#,
        ] {
            let v = parse(text.as_bytes()).unwrap();
            let mut out = Vec::new();
            minify_pretty(&to_pretty(&v), &mut out);
            assert_eq!(out, to_compact(&v), "{text}");
        }
    }

    #[test]
    fn utf16_and_latin1() {
        let s = JsString::from("a€😀");
        assert_eq!(s.utf16_len(), 4);
        let mut out = Vec::new();
        latin1_bytes(s.as_wtf8(), &mut out);
        // 'a', U+20AC -> 0xAC, U+1F600 -> D83D DE00 -> 0x3D 0x00
        assert_eq!(out, vec![b'a', 0xAC, 0x3D, 0x00]);
    }

    /// The scanners skip sixteen bytes at a time: a byte that needs care
    /// is found wherever it falls in or across those blocks, in strings of
    /// every length around them.
    #[test]
    fn what_needs_care_is_found_at_every_position() {
        let specials: [&str; 7] = ["\"", "\\", "\n", "\u{1}", "é", "€", "😀"];
        for len in 0..50 {
            for at in 0..=len {
                for special in specials {
                    let text: String = (0..len)
                        .map(|i| {
                            if i == at {
                                special.to_string()
                            } else {
                                "a".into()
                            }
                        })
                        .collect();
                    let text = if at == len {
                        format!("{text}{special}")
                    } else {
                        text
                    };
                    // Printed as JavaScript would: by hand, one char at a time.
                    let mut expected = String::from("\"");
                    for c in text.chars() {
                        match c {
                            '"' => expected.push_str("\\\""),
                            '\\' => expected.push_str("\\\\"),
                            '\n' => expected.push_str("\\n"),
                            '\u{1}' => expected.push_str("\\u0001"),
                            c => expected.push(c),
                        }
                    }
                    expected.push('"');
                    let mut printed = Vec::new();
                    write_string(&mut printed, text.as_bytes());
                    assert_eq!(String::from_utf8(printed.clone()).unwrap(), expected);
                    // Parsed back, escapes and all.
                    let back = parse(&printed).unwrap();
                    assert_eq!(back.as_str(), Some(text.as_str()), "{expected}");
                    // A raw control character in a literal is refused where it is.
                    if special == "\u{1}" {
                        let raw = format!("\"{text}\"");
                        assert!(matches!(
                            parse(raw.as_bytes()),
                            Err(JsonError::ControlInString(i)) if i == at + 1
                        ));
                    }
                    // Lengths and the latin-1 view, against a count by hand.
                    let units: usize = text.chars().map(char::len_utf16).sum();
                    assert_eq!(utf16_len_wtf8(text.as_bytes()), units);
                    let mut latin1 = Vec::new();
                    latin1_bytes(text.as_bytes(), &mut latin1);
                    let by_hand: Vec<u8> = text.encode_utf16().map(|u| u as u8).collect();
                    assert_eq!(latin1, by_hand);
                    // Pretty and back: minify keeps the literal whole.
                    let v = Value::from(text.as_str());
                    let mut obj = Object::new();
                    obj.insert("k", v);
                    let obj = Value::Object(obj);
                    let mut min = Vec::new();
                    minify_pretty(&to_pretty(&obj), &mut min);
                    assert_eq!(min, to_compact(&obj));
                }
            }
        }
    }
}
