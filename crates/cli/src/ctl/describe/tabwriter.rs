//! Go's `text/tabwriter` as kubectl's describers use it (`minwidth 0, padding 2, ' '`,
//! no flags), so aligned text comes out byte for byte as kubectl's.
//!
//! The rules that matter: a line is cells separated by tabs, and only tab-terminated
//! cells count (the text after a line's last tab is never padded). A column block is a
//! run of consecutive lines that all have a cell in that column; its width is the
//! widest cell plus the padding. Blocks nest: within a block of column `c`, runs of
//! lines with a cell in column `c + 1` form the next blocks. Widths are in characters.

/// Buffers text and aligns it on [`TabWriter::flush`].
#[derive(Debug)]
pub struct TabWriter {
    padding: usize,
    pending: String,
    out: String,
}

impl TabWriter {
    /// A writer padding each column by `padding` spaces.
    pub fn new(padding: usize) -> Self {
        Self {
            padding,
            pending: String::new(),
            out: String::new(),
        }
    }

    pub fn write(&mut self, text: &str) {
        self.pending.push_str(text);
    }

    /// Aligns what was written so far: later text never widens these columns (Go's
    /// `Flush`, which kubectl calls before an events table).
    pub fn flush(&mut self) {
        let text = std::mem::take(&mut self.pending);
        self.out.push_str(&align(&text, self.padding));
    }

    /// Flushes and returns everything.
    pub fn finish(mut self) -> String {
        self.flush();
        self.out
    }
}

/// `text` aligned as one Go tabwriter would between two flushes.
pub fn align(text: &str, padding: usize) -> String {
    let lines: Vec<Vec<&str>> = text.split('\n').map(|l| l.split('\t').collect()).collect();
    let mut out = String::with_capacity(text.len() * 2);
    let mut widths = Vec::new();
    format(&lines, &mut widths, 0, lines.len(), padding, &mut out);
    out
}

/// Go's `Writer.format`: writes lines `line0..line1`, aligning the column `widths.len()`
/// in every block of lines that has a cell there.
fn format(
    lines: &[Vec<&str>],
    widths: &mut Vec<usize>,
    line0: usize,
    line1: usize,
    padding: usize,
    out: &mut String,
) {
    let column = widths.len();
    let mut start = line0;
    let mut this = line0;
    while this < line1 {
        if column + 1 >= lines[this].len() {
            this += 1;
            continue;
        }
        write_lines(lines, widths, start, this, out);
        start = this;
        let mut width = 0;
        while this < line1 && column + 1 < lines[this].len() {
            width = width.max(lines[this][column].chars().count() + padding);
            this += 1;
        }
        widths.push(width);
        format(lines, widths, start, this, padding, out);
        widths.pop();
        start = this;
    }
    write_lines(lines, widths, start, line1, out);
}

/// Go's `Writer.writeLines`: each cell padded to its column's width; a newline after
/// every line but the very last (which is what followed the final newline).
fn write_lines(
    lines: &[Vec<&str>],
    widths: &[usize],
    line0: usize,
    line1: usize,
    out: &mut String,
) {
    for (i, line) in lines.iter().enumerate().take(line1).skip(line0) {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if let Some(&width) = widths.get(j) {
                let used = cell.chars().count();
                out.extend(std::iter::repeat_n(' ', width.saturating_sub(used)));
            }
        }
        if i + 1 < lines.len() {
            out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_per_block() {
        let text = "Name:\tweb\nNamespace:\tdefault\nPod Template:\n  Labels:\tapp=web\n";
        assert_eq!(
            align(text, 2),
            "Name:       web\nNamespace:  default\nPod Template:\n  Labels:  app=web\n"
        );
    }

    #[test]
    fn trailing_text_is_not_a_cell_and_empty_cells_pad() {
        // kubectl's node pods table: "Name\t\tCPU" has an empty cell.
        let text = "  NS\tName\t\tCPU\n  default\tweb-1\t\t0\n";
        assert_eq!(
            align(text, 2),
            "  NS       Name     CPU\n  default  web-1    0\n"
        );
        // Conditions: trailing spaces inside a cell are kept.
        assert_eq!(align("  Ready \tTrue \n", 2), "  Ready   True \n");
    }

    #[test]
    fn nested_blocks_and_partial_last_line() {
        let text = "a\tb\tc\nlonger\tb\nx\ty";
        assert_eq!(align(text, 1), "a      b c\nlonger b\nx      y");
    }

    #[test]
    fn flush_separates_blocks() {
        let mut w = TabWriter::new(2);
        w.write("Long label:\tx\n");
        w.flush();
        w.write("A:\ty\n");
        assert_eq!(w.finish(), "Long label:  x\nA:  y\n");
    }
}
