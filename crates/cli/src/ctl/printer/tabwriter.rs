//! Column alignment as kubectl's tab writer does it: each column as wide as its widest
//! cell plus three spaces (at least six), left-aligned; the last cell of a row is not
//! padded. Widths are remembered across flushes, so rows printed one at a time (a
//! watch) line up with the table above them and columns only ever widen.

use std::io::{self, Write};

/// Spaces after the widest cell of a column.
const PADDING: usize = 3;
/// The narrowest a padded column gets.
const MIN_WIDTH: usize = 6;

/// Rows of cells waiting to be aligned.
#[derive(Debug, Default)]
pub struct TabWriter {
    rows: Vec<Vec<String>>,
    widths: Vec<usize>,
}

impl TabWriter {
    pub fn new() -> TabWriter {
        TabWriter::default()
    }

    /// Queues one row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Writes the queued rows aligned, remembering the column widths.
    pub fn flush(&mut self, out: &mut dyn Write) -> io::Result<()> {
        for row in &self.rows {
            // The last cell of a row belongs to no column.
            for (column, cell) in row.iter().enumerate().take(row.len().saturating_sub(1)) {
                let width = (display_width(cell) + PADDING).max(MIN_WIDTH);
                match self.widths.get_mut(column) {
                    Some(w) => *w = (*w).max(width),
                    None => self.widths.push(width),
                }
            }
        }
        let mut text = String::new();
        for row in self.rows.drain(..) {
            let last = row.len().saturating_sub(1);
            for (column, cell) in row.iter().enumerate() {
                text.push_str(cell);
                if column < last {
                    let pad = self.widths[column].saturating_sub(display_width(cell));
                    text.extend(std::iter::repeat_n(' ', pad));
                }
            }
            text.push('\n');
        }
        out.write_all(text.as_bytes())
    }

    /// Forgets the remembered widths: the next table starts narrow again.
    pub fn forget_widths(&mut self) {
        self.widths.clear();
    }
}

/// A cell's width in characters (Go's tab writer counts runes).
fn display_width(cell: &str) -> usize {
    cell.chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(w: &mut TabWriter) -> String {
        let mut out = Vec::new();
        w.flush(&mut out).expect("write to a vec");
        String::from_utf8(out).expect("utf-8")
    }

    fn cells(row: &[&str]) -> Vec<String> {
        row.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn pads_columns_by_three_except_the_last() {
        let mut w = TabWriter::new();
        w.row(cells(&["NAME", "READY", "UP-TO-DATE", "AGE"]));
        w.row(cells(&["deployment.apps/web", "2/2", "2", "3s"]));
        assert_eq!(
            render(&mut w),
            "NAME                  READY   UP-TO-DATE   AGE\n\
             deployment.apps/web   2/2     2            3s\n"
        );
    }

    #[test]
    fn narrow_columns_are_six_wide() {
        let mut w = TabWriter::new();
        w.row(cells(&["A", "B", "C"]));
        w.row(cells(&["", "é", "last"]));
        assert_eq!(render(&mut w), "A     B     C\n      é     last\n");
    }

    #[test]
    fn widths_are_remembered_until_forgotten() {
        let mut w = TabWriter::new();
        w.row(cells(&["NAME", "AGE"]));
        w.row(cells(&["a-long-name", "1s"]));
        render(&mut w);
        w.row(cells(&["b", "2s"]));
        assert_eq!(render(&mut w), "b".to_string() + &" ".repeat(13) + "2s\n");
        w.forget_widths();
        w.row(cells(&["b", "2s"]));
        assert_eq!(render(&mut w), "b     2s\n");
    }
}
