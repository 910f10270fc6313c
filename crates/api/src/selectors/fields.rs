//! Field selectors, as upstream's `fields.ParseSelector`: comma-separated terms
//! `field=value`, `field==value` or `field!=value`; in values, `\,` `\=` and `\\` escape
//! the characters that would otherwise split terms. A missing field compares as "".

use std::fmt;

use super::SelectorError;

/// How a term compares a field with its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldOperator {
    /// `=` or `==`.
    Equals,
    /// `!=`.
    NotEquals,
}

/// One `field op value` term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    /// The field path, e.g. `metadata.name`.
    pub field: String,
    /// The comparison.
    pub operator: FieldOperator,
    /// The value, unescaped.
    pub value: String,
}

/// A parsed field selector.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

/// Operators in the order upstream tries them at each position, `==` before `=` so that
/// no `=` is left on the value.
const OPERATORS: [(&str, FieldOperator); 3] = [
    ("!=", FieldOperator::NotEquals),
    ("==", FieldOperator::Equals),
    ("=", FieldOperator::Equals),
];

/// Splits on commas that are not escaped; escapes are kept for the value unescaping.
fn split_terms(selector: &str) -> Vec<&str> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in selector.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            terms.push(&selector[start..i]);
            start = i + 1;
        }
    }
    terms.push(&selector[start..]);
    terms
}

/// Splits a term at the first operator; the field part supports no escaping.
fn split_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (text, op) in OPERATORS {
            if rest.starts_with(text) {
                return Some((&term[..i], op, &term[i + text.len()..]));
            }
        }
    }
    None
}

/// Upstream's `UnescapeValue`.
pub fn unescape_value(s: &str) -> Result<String, SelectorError> {
    let mut out = String::with_capacity(s.len());
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            match c {
                '\\' | ',' | '=' => out.push(c),
                other => {
                    return Err(SelectorError(format!(
                        "invalid field selector: invalid escape sequence: \\{other}"
                    )));
                }
            }
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            ',' | '=' => {
                // Upstream prints the rune with %v, i.e. as its number.
                return Err(SelectorError(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                )));
            }
            other => out.push(other),
        }
    }
    if escaped {
        return Err(SelectorError(
            "invalid field selector: invalid escape sequence: \\".to_string(),
        ));
    }
    Ok(out)
}

/// Upstream's `EscapeValue`.
pub fn escape_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl FieldSelector {
    /// Parses `a=b,c==d,e!=f`; the empty string selects everything. Terms are kept in
    /// sorted order, as upstream sorts them.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut terms = split_terms(s);
        terms.sort_unstable();
        let mut requirements = Vec::new();
        for term in terms {
            if term.is_empty() {
                continue;
            }
            let Some((field, operator, raw)) = split_term(term) else {
                return Err(SelectorError(format!(
                    "invalid selector: '{s}'; can't understand '{term}'"
                )));
            };
            requirements.push(FieldRequirement {
                field: field.to_string(),
                operator,
                value: unescape_value(raw)?,
            });
        }
        Ok(Self { requirements })
    }

    /// The field paths the selector mentions, in order.
    pub fn fields(&self) -> Vec<&str> {
        self.requirements.iter().map(|r| r.field.as_str()).collect()
    }

    /// The terms.
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// Whether every requirement holds; `value_of(field)` gives the object's value
    /// (None when the field is absent, which compares as the empty string).
    pub fn matches(&self, value_of: impl Fn(&str) -> Option<String>) -> bool {
        self.requirements.iter().all(|r| {
            let actual = value_of(&r.field).unwrap_or_default();
            match r.operator {
                FieldOperator::Equals => actual == r.value,
                FieldOperator::NotEquals => actual != r.value,
            }
        })
    }

    /// Whether there are no requirements.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }
}

impl fmt::Display for FieldSelector {
    /// Upstream's `String()`: terms joined by commas, values escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            let op = match r.operator {
                FieldOperator::Equals => "=",
                FieldOperator::NotEquals => "!=",
            };
            write!(f, "{}{op}{}", r.field, escape_value(&r.value))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(field: &str, operator: FieldOperator, value: &str) -> FieldRequirement {
        FieldRequirement {
            field: field.into(),
            operator,
            value: value.into(),
        }
    }

    #[test]
    fn parses_terms() {
        use FieldOperator::{Equals, NotEquals};
        let cases = [
            ("", vec![]),
            (
                "metadata.name=web",
                vec![req("metadata.name", Equals, "web")],
            ),
            ("a==b", vec![req("a", Equals, "b")]),
            ("a!=b", vec![req("a", NotEquals, "b")]),
            (
                "b=2,a=1",
                vec![req("a", Equals, "1"), req("b", Equals, "2")],
            ),
            ("a=", vec![req("a", Equals, "")]),
            ("a=x\\,y", vec![req("a", Equals, "x,y")]),
            ("a=x\\=y\\\\z", vec![req("a", Equals, "x=y\\z")]),
            ("a=1,,", vec![req("a", Equals, "1")]),
        ];
        for (input, want) in cases {
            let s = FieldSelector::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(s.requirements(), want.as_slice(), "{input}");
            assert_eq!(s.is_empty(), want.is_empty());
        }
    }

    #[test]
    fn rejects_malformed_terms() {
        let cases = [
            ("a", "invalid selector: 'a'; can't understand 'a'"),
            ("x=1,b", "invalid selector: 'x=1,b'; can't understand 'b'"),
            (
                "a=b=c",
                "invalid field selector: unescaped character in value: 61",
            ),
            (
                "a=b\\x",
                "invalid field selector: invalid escape sequence: \\x",
            ),
            (
                "a=b\\",
                "invalid field selector: invalid escape sequence: \\",
            ),
            (
                "a!==b",
                "invalid field selector: unescaped character in value: 61",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                FieldSelector::parse(input).expect_err(input).0,
                want,
                "{input}"
            );
        }
    }

    #[test]
    fn matches_with_missing_fields_as_empty() {
        let value_of = |f: &str| match f {
            "metadata.name" => Some("web".to_string()),
            "spec.nodeName" => Some(String::new()),
            _ => None,
        };
        let cases = [
            ("", true),
            ("metadata.name=web", true),
            ("metadata.name!=web", false),
            ("spec.nodeName=", true),
            ("status.phase=", true),
            ("status.phase!=Running", true),
            ("status.phase=Running", false),
            ("metadata.name=web,spec.nodeName!=", false),
        ];
        for (input, want) in cases {
            let s = FieldSelector::parse(input).expect(input);
            assert_eq!(s.matches(value_of), want, "{input}");
        }
    }

    #[test]
    fn lists_fields_and_renders() {
        let s = FieldSelector::parse("spec.nodeName=n1,metadata.name!=a\\,b").expect("valid");
        assert_eq!(s.fields(), vec!["metadata.name", "spec.nodeName"]);
        assert_eq!(s.to_string(), "metadata.name!=a\\,b,spec.nodeName=n1");
    }
}
