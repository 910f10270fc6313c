//! Field paths as upstream's `field.Path` renders them: names joined by `.`, list
//! indexes as `[0]` and map keys as `[key]` (unquoted), e.g.
//! `spec.containers[0].resources.limits[cpu]`.

use std::fmt;

/// A field path, built by appending names, indexes and keys to a root.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Path(String);

impl Path {
    /// A path whose first element is `name`. An empty name gives the empty (root) path,
    /// which upstream uses for errors about the whole object.
    pub fn new(name: &str) -> Self {
        Self(name.to_string())
    }

    /// The path of the named field below this one.
    pub fn child(&self, name: &str) -> Self {
        if self.0.is_empty() {
            Self(name.to_string())
        } else {
            Self(format!("{}.{name}", self.0))
        }
    }

    /// The path of the `i`th list element below this one.
    pub fn index(&self, i: usize) -> Self {
        Self(format!("{}[{i}]", self.0))
    }

    /// The path of the map entry `key` below this one.
    pub fn key(&self, key: &str) -> Self {
        Self(format!("{}[{key}]", self.0))
    }

    /// The rendered path.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_upstream() {
        let cases = [
            (Path::new("metadata").child("name"), "metadata.name"),
            (
                Path::new("spec")
                    .child("containers")
                    .index(0)
                    .child("image"),
                "spec.containers[0].image",
            ),
            (
                Path::new("spec")
                    .child("resources")
                    .child("limits")
                    .key("cpu"),
                "spec.resources.limits[cpu]",
            ),
            (Path::new("").child("data"), "data"),
            (Path::new(""), ""),
            (Path::new("data").key("a.b"), "data[a.b]"),
        ];
        for (path, want) in cases {
            assert_eq!(path.to_string(), want);
            assert_eq!(path.as_str(), want);
        }
    }
}
