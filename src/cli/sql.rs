//! `evalctl sql`: read-only ad-hoc SQL over the DuckDB tables.

use std::io::{IsTerminal, Write};
use viewer::table::{Column, TextTable};

use clap::Args;
use viewer::escape::{self, csv_field};
use viewer::query::{Limits, QueryResult, display};
use viewer::reader::Reader;

use super::Outcome;
use crate::Global;

#[derive(Debug, Args)]
pub struct SqlArgs {
    /// One read-only query, such as "SELECT status, count(*) FROM trials GROUP BY ALL".
    query: String,
    /// Print the rows as JSON: {"columns": [...], "rows": [[...]], "truncated": false}.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print the rows as CSV with a header line.
    #[arg(long)]
    csv: bool,
    /// At most this many rows (the output says when rows were left off).
    #[arg(long, default_value_t = 1000)]
    limit: usize,
    /// Stop the query after this many seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// The DuckDB file (default: <data-dir>/eval.duckdb).
    #[arg(long)]
    db: Option<std::path::PathBuf>,
}

pub async fn run(global: &Global, args: SqlArgs) -> Outcome {
    let path = super::project::db_path(global, args.db.as_deref());
    let limits = Limits {
        max_rows: args.limit.max(1),
        max_bytes: viewer::query::DEFAULT_MAX_BYTES,
        timeout_ms: args.timeout.max(1) * 1000,
    };
    let query = args.query.clone();
    let result = tokio::task::spawn_blocking(move || {
        let reader = Reader::open(&path)?;
        reader.query(&query, &[], limits)
    })
    .await??;
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &result)?;
        writeln!(out)?;
    } else if args.csv {
        write_csv(&mut out, &result)?;
    } else {
        write_table(&mut out, &result)?;
        if let Some(note) = result.truncation_note(limits) {
            eprintln!("({note})");
        } else {
            eprintln!("({} rows)", result.rows.len());
        }
    }
    Ok(())
}

/// RFC 4180 CSV: a header line, then one line per row. Cells a spreadsheet would run as formulas
/// are neutralised as the web download does (`viewer::escape::csv_field`); on a terminal,
/// control characters are shown escaped, while a file or pipe gets the cells as stored.
pub fn write_csv(out: &mut impl Write, result: &QueryResult) -> std::io::Result<()> {
    let to_terminal = std::io::stdout().is_terminal();
    let line = |cells: Vec<String>| {
        let line = cells.join(",");
        if to_terminal {
            escape::terminal(&line).into_owned()
        } else {
            line
        }
    };
    writeln!(
        out,
        "{}",
        line(result.columns.iter().map(|c| csv_field(c)).collect())
    )?;
    for row in &result.rows {
        writeln!(
            out,
            "{}",
            line(row.iter().map(|v| csv_field(&display(v))).collect())
        )?;
    }
    Ok(())
}

/// An aligned text table; long cells are cut at 60 characters, line breaks shown as ⏎ and other
/// control characters escaped (`\e`, `\a`, …).
pub fn write_table(out: &mut impl Write, result: &QueryResult) -> std::io::Result<()> {
    const WIDEST: usize = 60;
    let cell = |text: String| {
        let text = escape::terminal(&text.replace('\n', "⏎")).replace('\t', "\\t");
        if text.chars().count() > WIDEST {
            let cut: String = text.chars().take(WIDEST - 1).collect();
            format!("{cut}…")
        } else {
            text
        }
    };
    let rows: Vec<Vec<String>> = result
        .rows
        .iter()
        .map(|row| row.iter().map(|v| cell(display(v))).collect())
        .collect();
    let columns: Vec<Column> = result
        .columns
        .iter()
        .enumerate()
        .map(|(index, name)| Column::left(name, 0).after(if index == 0 { 0 } else { 2 }))
        .collect();
    let mut table = TextTable::new(&columns);
    // A rule under the header, as wide as each column.
    let mut widths: Vec<usize> = result.columns.iter().map(|c| c.chars().count()).collect();
    for row in &rows {
        for (width, text) in widths.iter_mut().zip(row) {
            *width = (*width).max(text.chars().count());
        }
    }
    table.row(widths.iter().map(|width| "-".repeat(*width)));
    for row in rows {
        table.row(row);
    }
    write!(out, "{}", table.render())?;
    Ok(())
}
