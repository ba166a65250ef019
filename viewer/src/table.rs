//! Text tables for the terminal, drawn by `comfy-table` without borders: one space between
//! columns (more where a column asks), each column at least as wide as its least width and wider
//! when a value is longer, so a long variant or fault name pushes its column out instead of
//! shifting the rest of the line. Nothing wraps (output is often piped), and lines end without
//! trailing spaces.

use comfy_table::{
    Cell, CellAlignment, ColumnConstraint, ContentArrangement, Table, TableComponent, Width,
};

/// A column: its header, its least width, its alignment and the spaces before it.
#[derive(Debug, Clone)]
pub struct Column {
    header: String,
    width: u16,
    right: bool,
    /// Spaces before the column; by default none before the first, one before the others.
    gap: Option<u16>,
}

impl Column {
    /// A left-aligned column at least `width` characters wide.
    pub fn left(header: impl Into<String>, width: u16) -> Column {
        Column {
            header: header.into(),
            width,
            right: false,
            gap: None,
        }
    }

    /// A right-aligned column at least `width` characters wide.
    pub fn right(header: impl Into<String>, width: u16) -> Column {
        Column {
            right: true,
            ..Column::left(header, width)
        }
    }

    /// `spaces` before the column (one by default; for the first column, its indentation, none
    /// by default).
    pub fn after(mut self, spaces: u16) -> Column {
        self.gap = Some(spaces);
        self
    }
}

/// A table being filled, row by row.
#[derive(Debug)]
pub struct TextTable {
    table: Table,
}

impl TextTable {
    pub fn new(columns: &[Column]) -> TextTable {
        let mut table = Table::new();
        table.load_preset(comfy_table::presets::NOTHING);
        // No border, no line under the header, no line between columns: the gaps between
        // columns are their padding.
        for component in TableComponent::iter() {
            table.remove_style(component);
        }
        table.set_content_arrangement(ContentArrangement::Disabled);
        table.set_header(columns.iter().map(|column| Cell::new(&column.header)));
        for (index, spec) in columns.iter().enumerate() {
            let padding = spec.gap.unwrap_or(if index == 0 { 0 } else { 1 });
            if let Some(column) = table.column_mut(index) {
                column.set_padding((padding, 0));
                column.set_constraint(ColumnConstraint::LowerBoundary(Width::Fixed(
                    spec.width + padding,
                )));
                column.set_cell_alignment(if spec.right {
                    CellAlignment::Right
                } else {
                    CellAlignment::Left
                });
            }
        }
        TextTable { table }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: impl IntoIterator<Item = impl ToString>) -> &mut TextTable {
        self.table
            .add_row(cells.into_iter().map(|cell| Cell::new(cell.to_string())));
        self
    }

    /// The header and the rows, each line ending in a newline.
    pub fn render(&self) -> String {
        self.lines(0)
    }

    /// The rows alone, for a listing without a header.
    pub fn render_rows(&self) -> String {
        self.lines(1)
    }

    fn lines(&self, skip: usize) -> String {
        self.table
            .lines()
            .skip(skip)
            .map(|line| line.trim_end().to_string() + "\n")
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::{Column, TextTable};

    fn variants_table(rows: &[[&str; 3]]) -> String {
        let mut table = TextTable::new(&[
            Column::left("VARIANT", 20),
            Column::left("CHAOS", 18),
            Column::right("TRIALS", 7),
        ]);
        for row in rows {
            table.row(*row);
        }
        table.render()
    }

    #[test]
    fn short_values_give_the_hand_aligned_layout() {
        let mut expected = format!("{:<20} {:<18} {:>7}\n", "VARIANT", "CHAOS", "TRIALS");
        expected.push_str(&format!(
            "{:<20} {:<18} {:>7}\n",
            "careful", "node_kill", 12
        ));
        assert_eq!(variants_table(&[["careful", "node_kill", "12"]]), expected);
    }

    #[test]
    fn a_long_variant_or_fault_name_keeps_the_columns_aligned() {
        let text = variants_table(&[
            ["careful", "node_kill", "12"],
            [
                "a-very-long-variant-name-from-a-sweep",
                "network_partition_with_latency",
                "7",
            ],
            ["hasty", "process_pause", "3"],
        ]);
        let lines: Vec<&str> = text.lines().collect();
        // Every column starts where the header's does, and the numbers end at one place.
        let chaos_at = lines[0].find("CHAOS").unwrap();
        for line in &lines[1..] {
            let chaos = line[chaos_at..].split(' ').next().unwrap();
            assert!(!chaos.is_empty(), "{text}");
            assert_eq!(line.as_bytes()[chaos_at - 1], b' ', "{text}");
        }
        let width = lines[0].len();
        assert!(lines.iter().all(|line| line.len() == width), "{text}");
        assert!(lines[2].starts_with("a-very-long-variant-name-from-a-sweep network_partition"));
    }

    #[test]
    fn indentation_and_wider_gaps() {
        let mut table = TextTable::new(&[
            Column::left("", 6).after(2),
            Column::right("n", 4),
            Column::left("RULE", 5).after(2),
        ]);
        table.row(["group", "3", "r1"]);
        assert_eq!(
            table.render(),
            format!(
                "  {:<6} {:>4}  RULE\n  {:<6} {:>4}  r1\n",
                "", "n", "group", "3"
            )
        );
    }
}
