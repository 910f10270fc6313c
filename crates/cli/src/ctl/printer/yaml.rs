//! `-o yaml` as kubectl writes it. kubectl turns objects into JSON and then into YAML
//! with go-yaml v2 (YAML 1.1 rules, 80-column folding), so its output differs from a
//! YAML 1.2 library's: strings that v2 would read back as something else (`"1"`,
//! `"true"`, `"yes"`, timestamps, `""`) are double-quoted, strings that cannot be plain
//! single-quoted, multi-line strings written as literal blocks (`|-`), long plain
//! strings folded at spaces past column 80, and map keys in v2's "natural" order
//! (digit runs compared as numbers, other characters before letters).
//!
//! This module mirrors those rules (libyaml's emitter states: column, whitespace,
//! indention) for the values JSON can hold. Whatever it writes must read back as the
//! same value; when it would not, the caller falls back to a plain YAML library.

use std::cmp::Ordering;

use serde_json::{Map, Value};

/// go-yaml's `best_width`: plain and quoted scalars fold at a space past this column.
const BEST_WIDTH: usize = 80;
/// go-yaml's `best_indent`.
const INDENT: usize = 2;

/// `value` as kubectl's `-o yaml` prints it.
pub fn to_yaml(value: &Value) -> String {
    let mut emitter = Emitter {
        out: String::new(),
        column: 0,
        whitespace: true,
        indention: true,
    };
    emitter.node(value, None, Context::Root);
    // Document end: finish the last line.
    emitter.write_indent(0);
    emitter.out
}

/// Where a node sits, as libyaml's emitter distinguishes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    Root,
    MappingValue,
    SequenceItem,
    /// A mapping key (libyaml's "simple key" context: no line breaks).
    Key,
}

/// How a string scalar is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
}

struct Emitter {
    out: String,
    /// Characters written on the current line.
    column: usize,
    /// Whether the last character written was whitespace (or the line is new).
    whitespace: bool,
    /// Whether only indentation (and indicators like `- `) is on the current line.
    indention: bool,
}

impl Emitter {
    fn put(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn put_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
    }

    fn write_indent(&mut self, indent: usize) {
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
        self.indention = true;
    }

    fn write_indicator(
        &mut self,
        indicator: &str,
        need_space: bool,
        is_space: bool,
        is_indent: bool,
    ) {
        if need_space && !self.whitespace {
            self.put(' ');
        }
        indicator.chars().for_each(|c| self.put(c));
        self.whitespace = is_space;
        self.indention = self.indention && is_indent;
    }

    /// Emits `value`; `indent` is the enclosing collection's indentation (None at the
    /// root).
    fn node(&mut self, value: &Value, indent: Option<usize>, context: Context) {
        match value {
            Value::Object(map) if map.is_empty() => self.empty_collection("{", "}"),
            Value::Array(items) if items.is_empty() => self.empty_collection("[", "]"),
            Value::Object(map) => self.mapping(map, indent),
            Value::Array(items) => self.sequence(items, indent, context),
            Value::Null => self.plain_token("null", indent),
            Value::Bool(b) => self.plain_token(if *b { "true" } else { "false" }, indent),
            Value::Number(n) => self.plain_token(&number_text(n), indent),
            Value::String(s) => self.string(s, indent, context),
        }
    }

    fn empty_collection(&mut self, open: &str, close: &str) {
        self.write_indicator(open, true, true, false);
        self.write_indicator(close, false, false, false);
    }

    fn mapping(&mut self, map: &Map<String, Value>, indent: Option<usize>) {
        let indent = indent.map_or(0, |i| i + INDENT);
        let mut entries: Vec<(&String, &Value)> = map.iter().collect();
        entries.sort_by(|a, b| natural_order(a.0, b.0));
        for (key, value) in entries {
            self.write_indent(indent);
            self.string(key, Some(indent), Context::Key);
            self.write_indicator(":", false, false, false);
            self.node(value, Some(indent), Context::MappingValue);
        }
    }

    fn sequence(&mut self, items: &[Value], indent: Option<usize>, context: Context) {
        // A sequence that is a mapping's value starts at the key's column.
        let indentless = context == Context::MappingValue && !self.indention;
        let indent = match indent {
            None => 0,
            Some(i) if indentless => i,
            Some(i) => i + INDENT,
        };
        for item in items {
            self.write_indent(indent);
            self.write_indicator("-", true, false, true);
            self.node(item, Some(indent), Context::SequenceItem);
        }
    }

    /// A plain scalar that needs no analysis (null, booleans, numbers).
    fn plain_token(&mut self, text: &str, indent: Option<usize>) {
        self.plain(text, scalar_indent(indent), false);
    }

    fn string(&mut self, s: &str, indent: Option<usize>, context: Context) {
        let simple_key = context == Context::Key;
        let scalar_indent = scalar_indent(indent);
        let allow_breaks = !simple_key;
        match style(s, simple_key) {
            Style::Plain => self.plain(s, scalar_indent, allow_breaks),
            Style::SingleQuoted => self.single_quoted(s, scalar_indent, allow_breaks),
            Style::DoubleQuoted => self.double_quoted(s, scalar_indent, allow_breaks),
            Style::Literal => self.literal(s, scalar_indent),
        }
    }

    fn plain(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        if !self.whitespace {
            self.put(' ');
        }
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let next_is_space = chars.get(i + 1) == Some(&' ');
                if allow_breaks && !spaces && self.column > BEST_WIDTH && !next_is_space {
                    self.write_indent(indent);
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                self.indention = false;
                spaces = false;
            }
        }
        self.whitespace = false;
        self.indention = false;
    }

    fn single_quoted(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        self.write_indicator("'", true, false, false);
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let next_is_space = chars.get(i + 1) == Some(&' ');
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i > 0
                    && i + 1 < chars.len()
                    && !next_is_space
                {
                    self.write_indent(indent);
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                if c == '\'' {
                    self.put('\'');
                }
                self.put(c);
                self.indention = false;
                spaces = false;
            }
        }
        self.write_indicator("'", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn double_quoted(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        self.write_indicator("\"", true, false, false);
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if !is_printable(c) || c == '\u{feff}' || is_break(c) || c == '"' || c == '\\' {
                self.put('\\');
                match escape_letter(c) {
                    Some(letter) => self.put(letter),
                    None => {
                        let code = u32::from(c);
                        let (prefix, digits) = match code {
                            0..=0xFF => ('x', 2),
                            0x100..=0xFFFF => ('u', 4),
                            _ => ('U', 8),
                        };
                        self.put(prefix);
                        for hex in format!("{code:0digits$X}").chars() {
                            self.put(hex);
                        }
                    }
                }
                spaces = false;
            } else if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i > 0
                    && i + 1 < chars.len()
                {
                    self.write_indent(indent);
                    if chars.get(i + 1) == Some(&' ') {
                        self.put('\\');
                    }
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                spaces = false;
            }
        }
        self.write_indicator("\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn literal(&mut self, s: &str, indent: usize) {
        self.write_indicator("|", true, false, false);
        if s.starts_with([' ', '\n']) || s.starts_with(is_break) {
            self.write_indicator(&INDENT.to_string(), false, false, false);
        }
        let chomp = if !s.ends_with(is_break) {
            Some("-")
        } else {
            let mut rest = s.chars().rev();
            rest.next();
            match rest.next() {
                None => Some("+"),
                Some(c) if is_break(c) => Some("+"),
                Some(_) => None,
            }
        };
        if let Some(chomp) = chomp {
            self.write_indicator(chomp, false, false, false);
        }
        self.put_break();
        self.indention = true;
        self.whitespace = true;
        let mut breaks = true;
        for c in s.chars() {
            if is_break(c) {
                // A line feed ends the line; other breaks are written as they are.
                if c == '\n' {
                    self.put_break();
                } else {
                    self.out.push(c);
                    self.column = 0;
                }
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent(indent);
                }
                self.put(c);
                self.indention = false;
                breaks = false;
            }
        }
    }
}

/// The indentation of a scalar's continuation lines.
fn scalar_indent(indent: Option<usize>) -> usize {
    indent.map_or(INDENT, |i| i + INDENT)
}

/// How go-yaml v2 writes the string `s`: its encoder picks literal (multi-line),
/// double-quoted (would read back as another type) or plain; the emitter then falls
/// back to single, then double quotes when the text cannot be written that way.
fn style(s: &str, simple_key: bool) -> Style {
    let analysis = Analysis::of(s);
    let wanted = if s.contains('\n') {
        Style::Literal
    } else if !resolves_to_string(s) || is_base60_float(s) {
        Style::DoubleQuoted
    } else {
        Style::Plain
    };
    let mut chosen = wanted;
    if simple_key && analysis.multiline {
        chosen = Style::DoubleQuoted;
    }
    if chosen == Style::Plain && (!analysis.block_plain_allowed || (s.is_empty() && simple_key)) {
        chosen = Style::SingleQuoted;
    }
    if chosen == Style::SingleQuoted && !analysis.single_quoted_allowed {
        chosen = Style::DoubleQuoted;
    }
    if chosen == Style::Literal && (!analysis.block_allowed || simple_key) {
        chosen = Style::DoubleQuoted;
    }
    chosen
}

/// libyaml's `yaml_emitter_analyze_scalar`: which styles can carry the text.
#[derive(Debug)]
struct Analysis {
    multiline: bool,
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

impl Analysis {
    fn of(s: &str) -> Analysis {
        if s.is_empty() {
            return Analysis {
                multiline: false,
                block_plain_allowed: true,
                single_quoted_allowed: true,
                block_allowed: false,
            };
        }
        let chars: Vec<char> = s.chars().collect();
        let mut block_indicators = false;
        if s.starts_with("---") || s.starts_with("...") {
            let after = chars.get(3).copied();
            if after.is_none_or(is_blankz) {
                block_indicators = true;
            }
        }
        let (mut special, mut line_breaks) = (false, false);
        let (mut leading_space, mut leading_break) = (false, false);
        let (mut trailing_space, mut trailing_break) = (false, false);
        let (mut break_space, mut space_break) = (false, false);
        let (mut previous_space, mut previous_break) = (false, false);
        let mut preceded_by_whitespace = true;
        for (i, &c) in chars.iter().enumerate() {
            let followed_by_whitespace = chars.get(i + 1).is_none_or(|&n| is_blankz(n));
            let first = i == 0;
            let last = i + 1 == chars.len();
            if first {
                if "#,[]{}&*!|>'\"%@`".contains(c) {
                    block_indicators = true;
                }
                if (c == '?' || c == ':' || c == '-') && followed_by_whitespace {
                    block_indicators = true;
                }
            } else {
                if c == ':' && followed_by_whitespace {
                    block_indicators = true;
                }
                if c == '#' && preceded_by_whitespace {
                    block_indicators = true;
                }
            }
            if !is_printable(c) {
                special = true;
            }
            if is_break(c) {
                line_breaks = true;
            }
            if c == ' ' {
                leading_space |= first;
                trailing_space |= last;
                break_space |= previous_break;
                previous_space = true;
                previous_break = false;
            } else if is_break(c) {
                leading_break |= first;
                trailing_break |= last;
                space_break |= previous_space;
                previous_space = false;
                previous_break = true;
            } else {
                previous_space = false;
                previous_break = false;
            }
            preceded_by_whitespace = is_blankz(c);
        }
        let mut analysis = Analysis {
            multiline: line_breaks,
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: true,
        };
        if leading_space || leading_break || trailing_space || trailing_break {
            analysis.block_plain_allowed = false;
        }
        if trailing_space {
            analysis.block_allowed = false;
        }
        if break_space {
            analysis.block_plain_allowed = false;
            analysis.single_quoted_allowed = false;
        }
        if space_break || special {
            analysis.block_plain_allowed = false;
            analysis.single_quoted_allowed = false;
            analysis.block_allowed = false;
        }
        if line_breaks || block_indicators {
            analysis.block_plain_allowed = false;
        }
        analysis
    }
}

/// libyaml's printable set (with its Unicode output on): tab and other controls, and
/// characters beyond the Basic Multilingual Plane, are not.
fn is_printable(c: char) -> bool {
    matches!(c, '\n' | '\u{20}'..='\u{7e}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}')
        && c != '\u{feff}'
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_blankz(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\0' || is_break(c)
}

fn escape_letter(c: char) -> Option<char> {
    Some(match c {
        '\0' => '0',
        '\u{7}' => 'a',
        '\u{8}' => 'b',
        '\t' => 't',
        '\n' => 'n',
        '\u{b}' => 'v',
        '\u{c}' => 'f',
        '\r' => 'r',
        '\u{1b}' => 'e',
        '"' => '"',
        '\\' => '\\',
        '\u{85}' => 'N',
        '\u{a0}' => '_',
        '\u{2028}' => 'L',
        '\u{2029}' => 'P',
        _ => return None,
    })
}

/// Whether go-yaml v2 reads the plain scalar `s` back as a string (not null, a bool,
/// a number, a timestamp).
fn resolves_to_string(s: &str) -> bool {
    const SPECIAL: [&str; 39] = [
        "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", "n", "N", "no",
        "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF", "", "~", "null", "Null",
        "NULL", ".nan", ".NaN", ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf",
        "-.Inf", "-.INF",
    ];
    let Some(first) = s.chars().next() else {
        return false;
    };
    let hinted = first.is_ascii_digit() || "+-.yYnNtTfFoO~".contains(first);
    if !hinted {
        return true;
    }
    if SPECIAL.contains(&s) {
        return false;
    }
    if first == '.' {
        return !is_dot_float(s);
    }
    if first.is_ascii_digit() || first == '+' || first == '-' {
        if is_timestamp(s) {
            return false;
        }
        let plain = s.replace('_', "");
        return !(is_go_int(&plain) || is_yaml_float(&plain));
    }
    true
}

/// `.5`, `.5e3`: what Go's ParseFloat takes after a leading dot.
fn is_dot_float(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('.') else {
        return false;
    };
    let (digits, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
        && exponent.is_none_or(|e| {
            let e = e.strip_prefix(['+', '-']).unwrap_or(e);
            !e.is_empty() && e.chars().all(|c| c.is_ascii_digit())
        })
}

/// Go's `strconv.ParseInt(s, 0, 64)` syntax (sign, then `0x`, `0o`, `0b`, a leading
/// `0` for octal, or decimal digits).
fn is_go_int(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let all =
        |digits: &str, radix: u32| !digits.is_empty() && digits.chars().all(|c| c.is_digit(radix));
    let lower = s.to_ascii_lowercase();
    if let Some(hex) = lower.strip_prefix("0x") {
        return all(hex, 16);
    }
    if let Some(octal) = lower.strip_prefix("0o") {
        return all(octal, 8);
    }
    if let Some(binary) = lower.strip_prefix("0b") {
        return all(binary, 2);
    }
    if s.len() > 1 && s.starts_with('0') {
        return all(&s[1..], 8);
    }
    all(s, 10)
}

/// go-yaml's float syntax: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_float(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(at) => (&s[..at], Some(&s[at + 1..])),
        None => (s, None),
    };
    let digits = |t: &str| t.chars().all(|c| c.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", fraction)) => !fraction.is_empty() && digits(fraction),
        Some((whole, fraction)) => !whole.is_empty() && digits(whole) && digits(fraction),
        None => !mantissa.is_empty() && digits(mantissa),
    };
    mantissa_ok
        && exponent.is_none_or(|e| {
            let e = e.strip_prefix(['+', '-']).unwrap_or(e);
            !e.is_empty() && digits(e)
        })
}

/// go-yaml v2's timestamps: `YYYY-M-D`, optionally with a time (`T`, `t` and a zone,
/// or a space and no zone).
fn is_timestamp(s: &str) -> bool {
    let bytes = s.as_bytes();
    if bytes.len() < 5 || !bytes[..4].iter().all(u8::is_ascii_digit) || bytes[4] != b'-' {
        return false;
    }
    let rest = &s[5..];
    let (date, time) = match rest.find(['T', 't', ' ']) {
        Some(at) => (&rest[..at], Some((&rest[at..at + 1], &rest[at + 1..]))),
        None => (rest, None),
    };
    let Some((month, day)) = date.split_once('-') else {
        return false;
    };
    if !(number_in(month, 1, 12) && number_in(day, 1, 31)) {
        return false;
    }
    let Some((separator, time)) = time else {
        return true;
    };
    let (clock, zone) = if separator == " " {
        (time, None)
    } else {
        match time.find(['Z', '+', '-']) {
            Some(at) => (&time[..at], Some(&time[at..])),
            None => return false,
        }
    };
    let (clock, fraction) = clock.split_once('.').unwrap_or((clock, "0"));
    let parts: Vec<&str> = clock.split(':').collect();
    let clock_ok = parts.len() == 3
        && number_in(parts[0], 0, 23)
        && number_in(parts[1], 0, 59)
        && number_in(parts[2], 0, 59)
        && !fraction.is_empty()
        && fraction.chars().all(|c| c.is_ascii_digit());
    let zone_ok = zone.is_none_or(|z| {
        z == "Z"
            || z[1..].split_once(':').is_some_and(|(h, m)| {
                h.len() == 2 && m.len() == 2 && number_in(h, 0, 23) && number_in(m, 0, 59)
            })
    });
    clock_ok && zone_ok
}

/// A one- or two-digit number within `low..=high`.
fn number_in(text: &str, low: u32, high: u32) -> bool {
    (1..=2).contains(&text.len())
        && text.chars().all(|c| c.is_ascii_digit())
        && text.parse::<u32>().is_ok_and(|n| (low..=high).contains(&n))
}

/// go-yaml quotes base-60 floats (`1:20`) for YAML 1.1 readers:
/// `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`.
fn is_base60_float(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (body, fraction) = s.split_once('.').unwrap_or((s, ""));
    if !fraction.chars().all(|c| c.is_ascii_digit() || c == '_') {
        return false;
    }
    let mut parts = body.split(':');
    let Some(head) = parts.next() else {
        return false;
    };
    let head_ok = head.chars().next().is_some_and(|c| c.is_ascii_digit())
        && head.chars().all(|c| c.is_ascii_digit() || c == '_');
    let sixties: Vec<&str> = parts.collect();
    head_ok
        && !sixties.is_empty()
        && sixties.iter().all(|p| match p.as_bytes() {
            [d] => d.is_ascii_digit(),
            [t, d] => (b'0'..=b'5').contains(t) && d.is_ascii_digit(),
            _ => false,
        })
}

/// A number as go-yaml writes what JSON decoding gave it: integers as they are,
/// other floats in Go's shortest `%g` form (an exponent from 1e6, or below 1e-4).
fn number_text(n: &serde_json::Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    let Some(f) = n.as_f64() else {
        return n.to_string();
    };
    let scientific = format!("{f:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    if (-4..6).contains(&exponent) {
        format!("{f}")
    } else {
        let sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exponent.abs())
    }
}

/// go-yaml v2's key order: runes compared one by one; of two letters the smaller
/// first, a non-letter before a letter, and digit runs by their numeric value.
pub fn natural_order(a: &str, b: &str) -> Ordering {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    for i in 0..a.len().min(b.len()) {
        if a[i] == b[i] {
            continue;
        }
        let (a_letter, b_letter) = (a[i].is_alphabetic(), b[i].is_alphabetic());
        if a_letter && b_letter {
            return a[i].cmp(&b[i]);
        }
        if a_letter || b_letter {
            return if b_letter {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        let (mut an, mut bn) = (0u128, 0u128);
        if a[i] == '0' || b[i] == '0' {
            // A zero inside a number counts as a digit, not a leading zero.
            if a[..i]
                .iter()
                .rev()
                .take_while(|c| c.is_ascii_digit())
                .any(|&c| c != '0')
            {
                an = 1;
                bn = 1;
            }
        }
        let digits = |chars: &[char], n: &mut u128| {
            let mut end = i;
            while end < chars.len() && chars[end].is_ascii_digit() {
                *n = n
                    .saturating_mul(10)
                    .saturating_add(u128::from(chars[end] as u8 - b'0'));
                end += 1;
            }
            end
        };
        let a_end = digits(&a, &mut an);
        let b_end = digits(&b, &mut bn);
        if an != bn {
            return an.cmp(&bn);
        }
        if a_end != b_end {
            return a_end.cmp(&b_end);
        }
        return a[i].cmp(&b[i]);
    }
    a.len().cmp(&b.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_as_kubectl_prints_them() {
        let object = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "web", "resourceVersion": "12", "labels": {},
                         "creationTimestamp": "2024-05-01T10:00:00Z",
                         "annotations": {"deployment.kubernetes.io/revision": "1"}},
            "data": {"empty": "", "yes": "yes", "multi": "a\nb\n", "plain": "hello world",
                     "tricky": "- x", "quote": "it's: here", "tab": "a\tb"},
            "list": [{"name": "a", "ports": [80, 443]}, [], "x", null, true, 1.5],
        });
        let expected = "\
apiVersion: v1
data:
  empty: \"\"
  multi: |
    a
    b
  plain: hello world
  quote: 'it''s: here'
  tab: \"a\\tb\"
  tricky: '- x'
  \"yes\": \"yes\"
kind: ConfigMap
list:
- name: a
  ports:
  - 80
  - 443
- []
- x
- null
- true
- 1.5
metadata:
  annotations:
    deployment.kubernetes.io/revision: \"1\"
  creationTimestamp: \"2024-05-01T10:00:00Z\"
  labels: {}
  name: web
  resourceVersion: \"12\"
";
        assert_eq!(to_yaml(&object), expected);
    }

    #[test]
    fn long_strings_fold_past_column_80() {
        let words = vec!["word"; 30].join(" ");
        let text = to_yaml(&json!({"message": words}));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.len() > 1, "{text}");
        assert!(lines[1].starts_with("  word"), "{text}");
        let back: Value = serde_yaml::from_str(&text).expect("parses");
        assert_eq!(back["message"], words.as_str());
    }

    #[test]
    fn strings_that_would_read_back_as_other_types_are_quoted() {
        for s in [
            "1",
            "-2",
            "0x1F",
            "0o17",
            "1_000",
            "1e3",
            ".5",
            "1.5",
            "true",
            "No",
            "~",
            "null",
            "2024-05-01",
            "2024-5-1T1:2:3Z",
            "2024-05-01 10:00:00",
            "1:20",
            ".inf",
        ] {
            assert_eq!(style(s, false), Style::DoubleQuoted, "{s}");
        }
        for s in [
            "web",
            "10.42.0.3",
            "80/TCP",
            "app=web",
            "None",
            "1.2.3",
            "v1.32",
            "0.1.x",
        ] {
            assert_eq!(style(s, false), Style::Plain, "{s}");
        }
        for s in ["*", "- a", "a: b", "a #b", " lead", "trail ", "[x]", "@x"] {
            assert_eq!(style(s, false), Style::SingleQuoted, "{s}");
        }
        assert_eq!(style("a\nb", false), Style::Literal);
        assert_eq!(style("a \nb", false), Style::DoubleQuoted);
        assert_eq!(style("emoji 🙂", false), Style::DoubleQuoted);
    }

    #[test]
    fn numbers_as_go_formats_them() {
        let text = |v: Value| to_yaml(&json!({"v": v}));
        assert_eq!(text(json!(1.5)), "v: 1.5\n");
        assert_eq!(text(json!(1e6)), "v: 1e+06\n");
        assert_eq!(text(json!(1234567.5)), "v: 1.2345675e+06\n");
        assert_eq!(text(json!(0.0001)), "v: 0.0001\n");
        assert_eq!(text(json!(-2.5e-7)), "v: -2.5e-07\n");
        assert_eq!(text(json!(-3)), "v: -3\n");
    }

    #[test]
    fn keys_in_natural_order() {
        let mut keys = vec!["b", "a10", "a9", "a_b", "aB", "A", "a", "x2y", "x10y"];
        keys.sort_by(|a, b| natural_order(a, b));
        assert_eq!(
            keys,
            ["A", "a", "a_b", "a9", "a10", "aB", "b", "x2y", "x10y"]
        );
    }

    #[test]
    fn everything_reads_back() {
        let value = json!({
            "s": ["", " ", "a  b", "x\n", "\n", "a\n\n", " a\nb", "\"q\"", "back\\slash",
                  "tab\tend", "\u{1b}[0m", "ünïcödé", "#hash", "a:b", "a: b", "- ", "?",
                  "'", "%x", "---", "...", "x\r\ny", "\u{2028}", "long ".repeat(40)],
            "n": [0, -1, 18446744073709551615u64, 0.25, 1e300, -2.5e-7],
        });
        let text = to_yaml(&value);
        let back: Value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(back["s"], value["s"], "{text}");
        let numbers: Vec<f64> = back["n"]
            .as_array()
            .map(|n| n.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default();
        assert_eq!(
            numbers,
            [0.0, -1.0, 18446744073709551615.0, 0.25, 1e300, -2.5e-7]
        );
    }
}
