//! Rows gathered column by column into Arrow builders, then handed to DuckDB's Arrow appender as
//! one record batch per table.

use std::sync::Arc;

use duckdb::arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder, UInt64Builder,
};
use duckdb::arrow::record_batch::RecordBatch;
use schemas::event::Timestamp;

use crate::schema::{Kind, Table};

enum Builder {
    Text(StringBuilder),
    Int(Int32Builder),
    BigInt(Int64Builder),
    UBigInt(UInt64Builder),
    Double(Float64Builder),
    Bool(BooleanBuilder),
    Time(TimestampMicrosecondBuilder),
}

impl Builder {
    /// A builder with room for `rows` values (and `bytes` of text), allocated at once.
    fn with_capacity(kind: Kind, rows: usize, bytes: usize) -> Builder {
        match kind {
            Kind::Text | Kind::Json => Builder::Text(StringBuilder::with_capacity(rows, bytes)),
            Kind::Int => Builder::Int(Int32Builder::with_capacity(rows)),
            Kind::BigInt => Builder::BigInt(Int64Builder::with_capacity(rows)),
            Kind::UBigInt => Builder::UBigInt(UInt64Builder::with_capacity(rows)),
            Kind::Double => Builder::Double(Float64Builder::with_capacity(rows)),
            Kind::Bool => Builder::Bool(BooleanBuilder::with_capacity(rows)),
            Kind::Time => Builder::Time(TimestampMicrosecondBuilder::with_capacity(rows)),
        }
    }

    /// The bytes of text gathered so far (0 for other kinds).
    fn text_bytes(&self) -> usize {
        match self {
            Builder::Text(builder) => builder.values_slice().len(),
            _ => 0,
        }
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Text(builder) => Arc::new(builder.finish()),
            Builder::Int(builder) => Arc::new(builder.finish()),
            Builder::BigInt(builder) => Arc::new(builder.finish()),
            Builder::UBigInt(builder) => Arc::new(builder.finish()),
            Builder::Double(builder) => Arc::new(builder.finish()),
            Builder::Bool(builder) => Arc::new(builder.finish()),
            Builder::Time(builder) => Arc::new(builder.finish()),
        }
    }
}

/// The pending rows of one table.
pub struct TableBuffer {
    pub table: &'static Table,
    builders: Vec<Builder>,
    rows: usize,
}

impl std::fmt::Debug for TableBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TableBuffer({}, {} rows)", self.table.name, self.rows)
    }
}

impl TableBuffer {
    pub fn new(table: &'static Table) -> TableBuffer {
        TableBuffer {
            table,
            builders: table
                .columns
                .iter()
                .map(|column| Builder::with_capacity(column.kind, 0, 0))
                .collect(),
            rows: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Starts a row; every column must then be written, in order.
    pub fn row(&mut self) -> Row<'_> {
        Row {
            buffer: self,
            next: 0,
        }
    }

    /// The pending rows as one record batch, leaving the buffer empty. The builders start again
    /// with room for as many rows and bytes as this batch had: a rebuild's batches are alike,
    /// and builders grown by doubling copied their values into ever larger fresh memory (in a
    /// profile of a rebuild, a quarter of the fold's CPU was the kernel zeroing those pages).
    pub fn take_batch(&mut self) -> RecordBatch {
        let rows = self.rows;
        let columns: Vec<ArrayRef> = self
            .builders
            .iter_mut()
            .zip(self.table.columns)
            .map(|(builder, column)| {
                let bytes = builder.text_bytes();
                let array = builder.finish();
                *builder = Builder::with_capacity(column.kind, rows, bytes);
                array
            })
            .collect();
        self.rows = 0;
        RecordBatch::try_new(self.table.arrow_schema(), columns)
            .expect("the builders follow the table's schema")
    }
}

/// One row being written. Each method writes the next column; a wrong type or a missing column is
/// a programming error and panics.
pub struct Row<'a> {
    buffer: &'a mut TableBuffer,
    next: usize,
}

impl Row<'_> {
    fn builder(&mut self) -> &mut Builder {
        let index = self.next;
        self.next += 1;
        &mut self.buffer.builders[index]
    }

    fn mismatch(&self, wanted: &str) -> ! {
        let column = &self.buffer.table.columns[self.next - 1];
        panic!(
            "{}.{} is {:?}, written as {wanted}",
            self.buffer.table.name, column.name, column.kind
        )
    }

    pub fn text(mut self, value: Option<&str>) -> Self {
        match self.builder() {
            Builder::Text(builder) => builder.append_option(value),
            _ => self.mismatch("text"),
        }
        self
    }

    pub fn int(mut self, value: Option<i32>) -> Self {
        match self.builder() {
            Builder::Int(builder) => builder.append_option(value),
            _ => self.mismatch("int"),
        }
        self
    }

    pub fn bigint(mut self, value: Option<i64>) -> Self {
        match self.builder() {
            Builder::BigInt(builder) => builder.append_option(value),
            _ => self.mismatch("bigint"),
        }
        self
    }

    pub fn ubigint(mut self, value: Option<u64>) -> Self {
        match self.builder() {
            Builder::UBigInt(builder) => builder.append_option(value),
            _ => self.mismatch("ubigint"),
        }
        self
    }

    pub fn double(mut self, value: Option<f64>) -> Self {
        match self.builder() {
            Builder::Double(builder) => builder.append_option(value),
            _ => self.mismatch("double"),
        }
        self
    }

    pub fn bool(mut self, value: Option<bool>) -> Self {
        match self.builder() {
            Builder::Bool(builder) => builder.append_option(value),
            _ => self.mismatch("bool"),
        }
        self
    }

    pub fn time(mut self, value: Option<Timestamp>) -> Self {
        match self.builder() {
            Builder::Time(builder) => builder.append_option(value.map(Timestamp::unix_micros)),
            _ => self.mismatch("time"),
        }
        self
    }

    /// A cell an operator wrote (an [`schemas::event::OperatorRow`] value), in the column's kind:
    /// text keeps numbers as their text, integer columns take integers or integer text; anything
    /// else is NULL.
    pub fn written(mut self, value: Option<&serde_json::Value>) -> Self {
        use serde_json::Value;
        let value = value.filter(|value| !value.is_null());
        let integer = || match value {
            Some(Value::Number(number)) => number
                .as_i64()
                .or_else(|| number.as_f64().map(|x| x as i64)),
            Some(Value::String(text)) => text.trim().parse().ok(),
            _ => None,
        };
        match self.builder() {
            Builder::Text(builder) => match value {
                Some(Value::String(text)) => builder.append_value(text),
                Some(other) => builder.append_value(other.to_string()),
                None => builder.append_null(),
            },
            Builder::BigInt(builder) => builder.append_option(integer()),
            Builder::Int(builder) => {
                builder.append_option(integer().and_then(|n| i32::try_from(n).ok()))
            }
            _ => self.mismatch("an operator's cell"),
        }
        self
    }

    /// Ends the row; every column must have been written.
    pub fn end(self) {
        assert_eq!(
            self.next,
            self.buffer.builders.len(),
            "a row of {} wrote {} of its {} columns",
            self.buffer.table.name,
            self.next,
            self.buffer.builders.len()
        );
        self.buffer.rows += 1;
    }
}
