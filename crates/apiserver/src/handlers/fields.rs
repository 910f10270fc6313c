//! Server-side field validation (`fieldValidation=Strict|Warn|Ignore`, default Warn):
//! fields the type does not have and keys repeated in one JSON object are rejected
//! (Strict, 400), reported in `Warning` headers (Warn), or let through (Ignore). Either
//! way they are not stored.

use std::sync::Mutex;

use serde_json::Value;

use crate::codec;
use crate::error::ApiError;

/// What to do with unknown and duplicate fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

impl FieldValidation {
    pub fn parse(value: Option<&str>) -> Result<Self, ApiError> {
        match value {
            None | Some("") | Some("Warn") => Ok(Self::Warn),
            Some("Ignore") => Ok(Self::Ignore),
            Some("Strict") => Ok(Self::Strict),
            Some(other) => Err(ApiError::BadRequest(format!(
                "fieldValidation: Unsupported value: \"{other}\": supported values: \"Ignore\", \"Strict\", \"Warn\""
            ))),
        }
    }
}

/// The field problems found in one request, gathered as it is decoded and
/// normalized, and the warnings to send back.
#[derive(Debug)]
pub struct FieldChecks {
    pub mode: FieldValidation,
    duplicates: Mutex<Vec<String>>,
    warnings: Mutex<Vec<String>>,
}

impl FieldChecks {
    pub fn new(mode: FieldValidation) -> Self {
        Self {
            mode,
            duplicates: Mutex::new(Vec::new()),
            warnings: Mutex::new(Vec::new()),
        }
    }

    /// Notes the repeated keys of a JSON body.
    pub fn scan_body(&self, content_type: &str, body: &[u8]) {
        if self.mode == FieldValidation::Ignore || content_type.contains("yaml") {
            return;
        }
        let found = codec::duplicate_fields(body);
        if let Ok(mut d) = self.duplicates.lock() {
            d.extend(found);
        }
    }

    /// Compares what was sent with what the type kept; rejects or warns.
    pub fn check(&self, sent: &Value, kept: &Value) -> Result<(), ApiError> {
        if self.mode == FieldValidation::Ignore {
            return Ok(());
        }
        let mut problems: Vec<String> = self
            .duplicates
            .lock()
            .map(|mut d| std::mem::take(&mut *d))
            .unwrap_or_default()
            .into_iter()
            .map(|p| format!("duplicate field \"{p}\""))
            .collect();
        problems.extend(
            api::typed::unknown_fields(sent, kept)
                .into_iter()
                .map(|p| format!("unknown field \"{p}\"")),
        );
        if problems.is_empty() {
            return Ok(());
        }
        match self.mode {
            FieldValidation::Strict => Err(ApiError::BadRequest(format!(
                "strict decoding error: {}",
                problems.join(", ")
            ))),
            _ => {
                if let Ok(mut w) = self.warnings.lock() {
                    w.extend(problems);
                }
                Ok(())
            }
        }
    }

    /// The warnings for the response's `Warning` headers, each once (an update that
    /// retried a lost race checked the same fields again).
    pub fn take_warnings(&self) -> Vec<String> {
        let mut warnings = self
            .warnings
            .lock()
            .map(|mut w| std::mem::take(&mut *w))
            .unwrap_or_default();
        let mut seen = std::collections::HashSet::new();
        warnings.retain(|w| seen.insert(w.clone()));
        warnings
    }
}
