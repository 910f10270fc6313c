//! How the verbs print objects as kubectl does: tables from the server's `Table`
//! ([`table`]) aligned by a tab writer ([`tabwriter`]), and JSON, YAML and
//! `kind.group/name` lines ([`encode`]), YAML the way go-yaml writes it ([`yaml`]).

pub mod encode;
pub mod table;
pub mod tabwriter;
pub mod yaml;

pub use encode::{kind_group, list, to_json, to_yaml};
pub use table::{Table, TableOptions, TablePrinter};
pub use tabwriter::TabWriter;
