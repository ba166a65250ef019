//! Will own the projection of the event log and the operator.db files into DuckDB tables, through Arrow record batches, resumable and idempotent.
