//! shoal's JSON is JavaScript's JSON, checked against real node on texts
//! nobody wrote by hand.
//!
//! A fixed-seed generator writes a few thousand JSON texts biased to the traps
//! (integer-like and duplicated keys, numbers that print oddly or overflow,
//! every escape, lone surrogates, line separators, non-BMP text), plus
//! mutations of them that are mostly not JSON. One node process parses each
//! with `JSON.parse` and prints `JSON.stringify(v, null, 2)`,
//! `JSON.stringify(v)`, the UTF-16 length and the latin1 sha256 of the pretty
//! text, and the `.length` and latin1 bytes of every string in the value. The
//! test asserts shoal's `json::parse`, `to_pretty`, `to_compact`,
//! `utf16_len_wtf8` and `latin1_bytes` give the same, and that both sides
//! accept and reject the same texts. A missing `node` fails the test.

use std::io::Write as _;

use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};
use shoal::crypto::{b64_decode, b64_encode, sha256};
use shoal::feed::json::{self, Value};

use crate::jsenv::{bounded, require_node, run};

/// For every input line (`:` + base64 of a UTF-8 JSON text, so that texts may
/// hold newlines or be empty) prints `E` when `JSON.parse` throws, else
/// `O <b64 pretty> <b64 compact> <pretty.length> <sha256 latin1 pretty>
/// <lengths of all strings, keys included, in Object.keys order> <sha256 latin1 of them all>`.
const NODE_SCRIPT: &str = r#"
const fs = require('fs')
const crypto = require('crypto')
const sha = s => crypto.createHash('sha256').update(Buffer.from(s, 'latin1')).digest('hex')
const b64 = s => Buffer.from(s, 'utf8').toString('base64')
function strings (v, acc) {
  if (typeof v === 'string') acc.push(v)
  else if (Array.isArray(v)) for (const x of v) strings(x, acc)
  else if (v !== null && typeof v === 'object') for (const k of Object.keys(v)) { acc.push(k); strings(v[k], acc) }
  return acc
}
const out = []
for (const line of fs.readFileSync(process.argv[1], 'utf8').split('\n')) {
  if (line === '') continue
  const text = Buffer.from(line.slice(1), 'base64').toString('utf8')
  let v
  try { v = JSON.parse(text) } catch (e) { out.push('E'); continue }
  const pretty = JSON.stringify(v, null, 2)
  const strs = strings(v, [])
  out.push(['O', b64(pretty), b64(JSON.stringify(v)), pretty.length, sha(pretty),
    strs.map(s => s.length).join(',') || '-', sha(strs.join(''))].join(' '))
}
process.stdout.write(out.join('\n') + '\n')
"#;

/// What one side makes of one text: `None` when it is not JSON.
#[derive(Debug, PartialEq)]
struct Seen {
    pretty: String,
    compact: String,
    pretty_units: usize,
    pretty_latin1_sha: String,
    string_units: String,
    strings_latin1_sha: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn utf8(bytes: Vec<u8>, what: &str) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| panic!("{what} is not UTF-8: {e}"))
}

/// Runs node once over all texts.
fn node_side(texts: &[String]) -> Vec<Option<Seen>> {
    require_node();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    for t in texts {
        writeln!(file, ":{}", b64_encode(t.as_bytes())).unwrap();
    }
    file.flush().unwrap();
    let out = run(
        bounded(60, "node")
            .args(["-e", NODE_SCRIPT])
            .arg(file.path()),
        "node JSON.parse/JSON.stringify",
    );
    let stdout = utf8(out.stdout, "node output");
    let results: Vec<Option<Seen>> = stdout
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split(' ').collect();
            match f.as_slice() {
                ["E"] => None,
                ["O", pretty, compact, units, psha, lens, ssha] => Some(Seen {
                    pretty: utf8(b64_decode(pretty).unwrap(), "pretty"),
                    compact: utf8(b64_decode(compact).unwrap(), "compact"),
                    pretty_units: units.parse().unwrap(),
                    pretty_latin1_sha: psha.to_string(),
                    string_units: lens.to_string(),
                    strings_latin1_sha: ssha.to_string(),
                }),
                _ => panic!("unexpected node output line {line:?}"),
            }
        })
        .collect();
    assert_eq!(results.len(), texts.len(), "node printed one line per text");
    results
}

fn collect_strings(v: &Value, units: &mut Vec<String>, latin1: &mut Vec<u8>) {
    match v {
        Value::String(s) => {
            units.push(s.utf16_len().to_string());
            json::latin1_bytes(s.as_wtf8(), latin1);
        }
        Value::Array(items) => items.iter().for_each(|x| collect_strings(x, units, latin1)),
        Value::Object(o) => {
            for (k, x) in o.iter() {
                units.push(k.utf16_len().to_string());
                json::latin1_bytes(k.as_wtf8(), latin1);
                collect_strings(x, units, latin1);
            }
        }
        _ => {}
    }
}

fn shoal_side(text: &str) -> Option<Seen> {
    let v = json::parse(text.as_bytes()).ok()?;
    let pretty = json::to_pretty(&v);
    let mut pretty_latin1 = Vec::new();
    json::latin1_bytes(&pretty, &mut pretty_latin1);
    let mut units = Vec::new();
    let mut latin1 = Vec::new();
    collect_strings(&v, &mut units, &mut latin1);
    Some(Seen {
        pretty_units: json::utf16_len_wtf8(&pretty),
        pretty_latin1_sha: hex(&sha256(&pretty_latin1)),
        pretty: utf8(pretty, "shoal pretty"),
        compact: utf8(json::to_compact(&v), "shoal compact"),
        string_units: if units.is_empty() {
            "-".into()
        } else {
            units.join(",")
        },
        strings_latin1_sha: hex(&sha256(&latin1)),
    })
}

/// Compares both sides on every text (one node process); returns what node
/// made of each text.
fn assert_same_as_node(texts: &[String]) -> Vec<Option<Seen>> {
    let js = node_side(texts);
    let mut diffs = Vec::new();
    for (text, js) in texts.iter().zip(&js) {
        let ours = shoal_side(text);
        if ours.as_ref() != js.as_ref() {
            diffs.push(format!(
                "input {text:?}\n  node:  {js:?}\n  shoal: {ours:?}"
            ));
        }
    }
    assert!(
        diffs.is_empty(),
        "{} of {} texts differ between node and shoal; first ones:\n{}",
        diffs.len(),
        texts.len(),
        diffs
            .iter()
            .take(12)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    js
}

/// A fixed-seed generator with the few draws the generators below use.
struct Rng(StdRng);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0.random()
    }
    fn below(&mut self, n: usize) -> usize {
        self.0.random_range(0..n)
    }
    fn percent(&mut self, p: usize) -> bool {
        self.below(100) < p
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

/// Number spellings that print oddly, round, overflow or underflow.
const TRAP_NUMBERS: &[&str] = &[
    "0",
    "-0",
    "-0.0",
    "0.0",
    "0e0",
    "0E-0",
    "-0e+0",
    "1",
    "-1",
    "0.1",
    "0.30000000000000004",
    "1.1",
    "2.50",
    "2.5e0",
    "1.0e+0",
    "1e0001",
    "1E5",
    "1e+5",
    "1e5",
    "1E+5",
    "1e-5",
    "1E-5",
    "1e20",
    "100000000000000000000",
    "1e21",
    "1E21",
    "1e+21",
    "999999999999999999999",
    "1e-6",
    "0.000001",
    "1e-7",
    "0.0000001",
    "123e-20",
    "5e-324",
    "4.9406564584124654e-324",
    "2.4703282292062327e-324",
    "2.4703282292062328e-324",
    "1e-400",
    "2.2250738585072014e-308",
    "2.225073858507201e-308",
    "1.7976931348623157e308",
    "1.7976931348623158e308",
    "1.7976931348623159e308",
    "1e400",
    "-1e400",
    "1E400",
    "9007199254740991",
    "9007199254740992",
    "9007199254740993",
    "9007199254740995",
    "-9007199254740993",
    "18446744073709551615",
    "18446744073709551616",
    "12345678901234567890",
    "123456789012345678901234567890",
    "4294967294",
    "4294967295",
    "4294967296",
    "-2147483648",
    "2147483648",
    "1.00000000000000011102230246251565404236316680908203125",
    "1.00000000000000011102230246251565404236316680908203124",
    "1.00000000000000011102230246251565404236316680908203126",
    "9.999999999999999e22",
    "1e23",
    "8.41e21",
    "0.000123456789e-3",
    "3.141592653589793238462643383279",
];

/// Object keys (JSON string bodies): array indices and near misses, names
/// that mean something to JavaScript objects, escapes that decode to digits.
const TRAP_KEYS: &[&str] = &[
    "0",
    "1",
    "2",
    "10",
    "01",
    "00",
    "-1",
    "-0",
    "1.5",
    "1e3",
    " 1",
    "1 ",
    "+1",
    "4294967294",
    "4294967295",
    "4294967296",
    "9007199254740993",
    "99999999999",
    "__proto__",
    "constructor",
    "toString",
    "hasOwnProperty",
    "",
    "type",
    "a",
    "b",
    "é",
    "😀",
    "\\ud800",
    "\\u0030",
    "\\u0031\\u0030",
    "1\\u0030",
    "\\u0000",
    "\\n",
];

/// Raw characters allowed inside a JSON string as they are.
const RAW: &[&str] = &[
    "a",
    "Z",
    "0",
    " ",
    "'",
    "/",
    "\u{7f}",
    "\u{80}",
    "\u{9f}",
    "\u{a0}",
    "é",
    "ÿ",
    "\u{100}",
    "\u{17f}",
    "€",
    "\u{2028}",
    "\u{2029}",
    "\u{feff}",
    "\u{fffd}",
    "\u{ffff}",
    "\u{fffe}",
    "日本語",
    "한국어",
    "中",
    "😀",
    "🐟",
    "👩\u{200d}👩\u{200d}👧",
    "\u{10ffff}",
    "\u{10000}",
    "e\u{301}",
    "\u{301}",
    "\u{200d}",
    "𝄞",
    "\u{e000}",
    "\u{d7ff}",
    "شكرا",
];

/// Escapes, including every kind of surrogate arrangement.
const ESCAPES: &[&str] = &[
    "\\\"",
    "\\\\",
    "\\/",
    "\\b",
    "\\f",
    "\\n",
    "\\r",
    "\\t",
    "\\u0000",
    "\\u001f",
    "\\u001F",
    "\\u007f",
    "\\u007F",
    "\\u0080",
    "\\u00e9",
    "\\u00E9",
    "\\u0100",
    "\\u2028",
    "\\u2029",
    "\\uFEFF",
    "\\uffff",
    "\\uD800",
    "\\ud800",
    "\\udbff",
    "\\udc00",
    "\\uDFFF",
    "\\udfff",
    "\\uDBFF\\uDFFF",
    "\\ud83d\\ude00",
    "\\uD83D\\uDE00",
    "\\ud83d\\u0041",
    "\\ud83dA",
    "\\ud83d😀",
    "\\ude00\\ud83d",
    "\\ud800\\ud800",
    "\\udc00\\udc00",
    "\\ud800\\n",
    "\\ud800\\\\",
    "\\ud800\\\"",
];

fn ws(rng: &mut Rng, out: &mut String) {
    if rng.percent(15) {
        out.push_str(rng.pick(&[" ", "\t", "\n", "\r\n", "  ", " \t\r\n "]));
    }
}

fn digits(rng: &mut Rng, n: usize, out: &mut String) {
    for _ in 0..n {
        out.push(char::from(b'0' + rng.below(10) as u8));
    }
}

fn gen_number(rng: &mut Rng, out: &mut String) {
    match rng.below(5) {
        0 | 1 => out.push_str(rng.pick(TRAP_NUMBERS)),
        2 => {
            // Any spelling the grammar allows.
            if rng.percent(30) {
                out.push('-');
            }
            if rng.percent(20) {
                out.push('0');
            } else {
                out.push(char::from(b'1' + rng.below(9) as u8));
                let n = rng.below(26);
                digits(rng, n, out);
            }
            if rng.percent(50) {
                out.push('.');
                let n = 1 + rng.below(20);
                digits(rng, n, out);
            }
            if rng.percent(40) {
                out.push(if rng.percent(50) { 'e' } else { 'E' });
                out.push_str(rng.pick(&["", "+", "-"]));
                let n = 1 + rng.below(3);
                digits(rng, n, out);
            }
        }
        3 => {
            // A random double, as Rust prints it three ways.
            let f = loop {
                let f = f64::from_bits(rng.next());
                if f.is_finite() {
                    break f;
                }
            };
            match rng.below(3) {
                0 => out.push_str(&format!("{f:?}")),
                1 => out.push_str(&format!("{f:e}")),
                _ => out.push_str(&format!("{f}")),
            }
        }
        _ => {
            let shift = rng.below(64) as u32;
            if rng.percent(30) {
                out.push('-');
            }
            out.push_str(&(rng.next() >> shift).to_string());
        }
    }
}

fn gen_string_body(rng: &mut Rng, out: &mut String) {
    let n = rng.below(10);
    for _ in 0..n {
        match rng.below(10) {
            0..=3 => out.push_str(rng.pick(RAW)),
            4..=7 => out.push_str(rng.pick(ESCAPES)),
            8 => {
                // Some code unit as \uXXXX, biased to controls and surrogates.
                let u: u32 = match rng.below(3) {
                    0 => rng.below(0x20) as u32,
                    1 => 0xD800 + rng.below(0x800) as u32,
                    _ => rng.below(0x10000) as u32,
                };
                let e = format!("\\u{u:04x}");
                out.push_str(&if rng.percent(50) {
                    e.to_uppercase().replace("\\U", "\\u")
                } else {
                    e
                });
            }
            _ => out.push_str("plain text"),
        }
    }
}

fn gen_string(rng: &mut Rng, out: &mut String) {
    out.push('"');
    gen_string_body(rng, out);
    out.push('"');
}

fn gen_value(rng: &mut Rng, depth: usize, out: &mut String) {
    let kinds = if depth >= 5 { 6 } else { 10 };
    match rng.below(kinds) {
        0..=1 => gen_number(rng, out),
        2..=4 => gen_string(rng, out),
        5 => out.push_str(rng.pick(&["null", "true", "false"])),
        6..=7 => {
            out.push('[');
            ws(rng, out);
            let n = rng.below(6);
            for i in 0..n {
                if i > 0 {
                    out.push(',');
                }
                ws(rng, out);
                gen_value(rng, depth + 1, out);
                ws(rng, out);
            }
            out.push(']');
        }
        _ => {
            out.push('{');
            ws(rng, out);
            let n = rng.below(8);
            let mut keys: Vec<String> = Vec::new();
            for i in 0..n {
                if i > 0 {
                    out.push(',');
                }
                ws(rng, out);
                let key = if !keys.is_empty() && rng.percent(20) {
                    keys[rng.below(keys.len())].clone()
                } else if rng.percent(65) {
                    rng.pick(TRAP_KEYS).to_string()
                } else {
                    let mut k = String::new();
                    gen_string_body(rng, &mut k);
                    k
                };
                out.push('"');
                out.push_str(&key);
                out.push('"');
                keys.push(key);
                ws(rng, out);
                out.push(':');
                ws(rng, out);
                gen_value(rng, depth + 1, out);
                ws(rng, out);
            }
            out.push('}');
        }
    }
}

/// Breaks a text: deletes, inserts, duplicates or replaces one character.
fn mutate(rng: &mut Rng, text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let at = rng.below(chars.len() + 1);
    let inserts = [
        ",", "]", "}", "[", "{", "\"", "\\", ":", "0", "-", ".", "e", "+", "\u{0}", "\u{1f}", "\t",
        "\u{b}", "\u{c}", "\u{a0}", "\u{feff}", "\u{2028}", "x", "\\u", "\\ud800", "nul", "01",
        " ",
    ];
    let mut out: String = chars[..at].iter().collect();
    let rest: String = chars[at..].iter().collect();
    match rng.below(4) {
        0 => out.push_str(
            rest.get(rest.chars().next().map_or(0, char::len_utf8)..)
                .unwrap_or(""),
        ),
        1 => {
            out.push_str(rng.pick(&inserts));
            out.push_str(&rest);
        }
        2 => {
            out.push_str(rng.pick(&inserts));
            out.push_str(
                rest.get(rest.chars().next().map_or(0, char::len_utf8)..)
                    .unwrap_or(""),
            );
        }
        _ => {
            if let Some(c) = rest.chars().next() {
                out.push(c);
            }
            out.push_str(&rest);
        }
    }
    out
}

/// Random texts and every trap spelled alone (all JSON), then mutations of
/// them (mostly not JSON). Returns the texts and how many are the JSON ones.
fn corpus() -> (Vec<String>, usize) {
    let mut rng = Rng(StdRng::seed_from_u64(SEED));
    let mut texts = Vec::new();
    for n in TRAP_NUMBERS {
        texts.push((*n).to_string());
        texts.push(format!("[{n}]"));
    }
    for k in TRAP_KEYS {
        texts.push(format!("{{\"b\":1,\"{k}\":2,\"a\":3,\"{k}\":4,\"1\":5}}"));
    }
    let controls: String = (0..0x20u32).map(|c| format!("\\u{c:04x}")).collect();
    texts.push(format!("\"{controls}\""));
    texts.push(format!(
        "{{\"{controls}\":\"{}\"}}",
        controls.to_uppercase().replace("\\U", "\\u")
    ));
    for e in ESCAPES {
        texts.push(format!("\"{e}\""));
        texts.push(format!("{{\"{e}\":\"{e}x{e}\"}}"));
    }
    for _ in 0..3000 {
        let mut t = String::new();
        ws(&mut rng, &mut t);
        gen_value(&mut rng, 0, &mut t);
        ws(&mut rng, &mut t);
        texts.push(t);
    }
    let valid = texts.len();
    for i in 0..1500 {
        let src = texts[(i * 7919) % valid].clone();
        texts.push(mutate(&mut rng, &src));
    }
    (texts, valid)
}

/// The generator's seed: fixed, so that a failure reproduces.
const SEED: u64 = 0x5407_a15e_ed00_0001;

#[test]
fn random_json_prints_exactly_as_node_does() {
    let (texts, generated) = corpus();
    let js = assert_same_as_node(&texts);
    let refused = js[..generated].iter().filter(|r| r.is_none()).count();
    assert_eq!(
        refused, 0,
        "node refuses {refused} generated texts: the generator is wrong"
    );
    let mutants = &js[generated..];
    let (ok, bad) = (
        mutants.iter().filter(|r| r.is_some()).count(),
        mutants.iter().filter(|r| r.is_none()).count(),
    );
    assert!(ok > 100 && bad > 500, "mutants: {ok} still JSON, {bad} not");
}

/// Hand-picked texts at the edges of the grammar: node and shoal must accept
/// and reject the same ones, and print the accepted ones the same.
#[test]
fn edge_texts_accepted_and_rejected_as_node_does() {
    // shoal refuses nesting deeper than json::MAX_DEPTH on purpose (node goes
    // on until its stack runs out), so the deepest texts sit at that limit.
    let deep_array = "[".repeat(json::MAX_DEPTH) + &"]".repeat(json::MAX_DEPTH);
    let deep_object =
        "{\"a\":".repeat(json::MAX_DEPTH - 1) + "{}" + &"}".repeat(json::MAX_DEPTH - 1);
    let mut texts: Vec<String> = [
        // not JSON
        "",
        " ",
        "\n",
        "01",
        "-01",
        "00",
        "1.",
        ".5",
        "+1",
        "-",
        "- 1",
        "--1",
        "1e",
        "1e+",
        "1E-",
        "1.e5",
        "01.5",
        "0x10",
        "1_000",
        "Infinity",
        "-Infinity",
        "NaN",
        "nul",
        "tru",
        "TRUE",
        "True",
        "Null",
        "undefined",
        "[1,]",
        "[,1]",
        "[1,,2]",
        "[",
        "]",
        "{",
        "}",
        "{,}",
        "{\"a\":1,}",
        "{\"a\"}",
        "{\"a\" 1}",
        "{\"a\":}",
        "{a:1}",
        "{'a':1}",
        "{1:1}",
        "'x'",
        "[1 2]",
        "{\"a\":1 \"b\":2}",
        "[\"a\"\"b\"]",
        "\"a\"\"b\"",
        "[1,2,3]]",
        "{}}",
        "\"abc",
        "\"\\\"",
        "\"\\x\"",
        "\"\\'\"",
        "\"\\a\"",
        "\"\\0\"",
        "\"\\U0041\"",
        "\"\\u{41}\"",
        "\"\\u12\"",
        "\"\\u12G4\"",
        "\"\\u\"",
        "\"\\u 123\"",
        "\"\\ud800\\u12\"",
        "\"\\ud800\\uZZZZ\"",
        "\"\\ud800\\\"",
        "\"\\ud800\\",
        "[1] 2",
        "true false",
        "null null",
        "1 2",
        "/*c*/1",
        "1 //c",
        "1 /*c*/",
        "\u{feff}1",
        "\u{a0}1",
        "1\u{a0}",
        "\u{2028}1",
        "1\u{2029}",
        "\u{c}1",
        "\u{b}1",
        "1\u{0}",
        "\u{0}",
        "\"\t\"",
        "\"\n\"",
        "\"\r\"",
        "\"\u{0}\"",
        "\"\u{1f}\"",
        "\"a\u{8}b\"",
        "[\"\u{c}\"]",
        "{\"\u{1}\":1}",
        // JSON
        "0",
        "-0",
        "[-0]",
        "{\"a\":-0}",
        "-0.0e-0",
        "1E400",
        "-1E400",
        "1e-400",
        "\"\u{7f}\"",
        "\"\u{2028}\u{2029}\"",
        "\"\\/\"",
        "\"\\uD800\\uDC00\"",
        "\"\\uDC00\\uD800\"",
        "[1]\n",
        " \t\r\n[1] \t\r\n",
        "\r\n\"x\"\r\n",
        "{\"\":1}",
        "{\"\":1,\"\":2}",
        "{\"__proto__\":1}",
        "{\"__proto__\":{\"a\":1},\"b\":2}",
        "{\"a\":1,\"a\":{\"b\":2},\"a\":[3]}",
        "{\"2\":1,\"1\":2,\"1\":3,\"0\":4}",
        "{\"4294967295\":1,\"4294967294\":2,\"4294967293\":3}",
        "[[[[[]]]]]",
        "[{},[],{\"a\":[]},[{}]]",
        "\"\\u0000\\u001f\\u007f\\u0080\\u009f\"",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Every raw control character inside a string, and the same escaped.
    for c in (0..0x20u8).map(char::from) {
        texts.push(format!("\"a{c}b\""));
        texts.push(format!("[\"\\u{:04x}{c}\"]", c as u32));
    }
    texts.push(deep_array);
    texts.push(deep_object);
    let js = assert_same_as_node(&texts);
    assert!(js.iter().filter(|r| r.is_none()).count() > 140);
}
