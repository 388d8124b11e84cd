//! Sets of rows (a batch of indicators, log lines, ids) bound as plain parameters.
//!
//! A statement over a set of rows reads them from a common table expression of `VALUES`:
//!
//! ```sql
//! WITH j (pos, id, version) AS (VALUES (0, $2, $3), (1, $4, $5)) UPDATE … FROM j …
//! ```
//!
//! Both dialects read that alike, and the database gets each value as a parameter of its
//! type: nothing is serialized to JSON to be parsed and taken apart again (on SQLite that
//! was a third of an update's instructions). So that a handful of prepared statements
//! serve every batch size, the number of rows is rounded up to a power of two and the
//! rows beyond the set are NULL; every statement skips rows whose first column is NULL.
//! A set larger than [`MAX_ROWS`] is written in chunks of at most that many rows.
//!
//! `pos` is the row's position in the set, written into the statement's text: a statement
//! that must keep the order of its rows (log lines, notifications) says `ORDER BY pos`.
//!
//! The placeholders of the rows are the dialect's ([`Placeholders`]): PostgreSQL numbers
//! them after the plain parameters; SQLite takes anonymous `?`, because it looks a named
//! parameter up by a linear scan of the statement's names (sqlx asks the name of every
//! parameter it binds, so numbered rows would cost time quadratic in the batch size).

use std::borrow::Cow;
use std::sync::OnceLock;

/// The most rows one statement binds; larger sets are written in chunks.
pub const MAX_ROWS: usize = 1024;

/// Prepared statements a backend keeps per connection: every statement over a set of rows
/// has one text per power of two of rows, and there are about a dozen such statements.
pub const STATEMENT_CACHE: usize = 512;

/// How many statement texts a [`RowsSql`] keeps: one per power of two up to [`MAX_ROWS`].
const SIZES: usize = MAX_ROWS.trailing_zeros() as usize + 1;

/// How a dialect's statements over rows number their parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholders {
    /// `$1` … `$k` the plain parameters, then the rows' values numbered on: they are
    /// bound in that order.
    Numbered,
    /// The rows' values as anonymous `?`, bound first; then the plain parameters, written
    /// `$n` with `n` numbered after the rows' values.
    Anonymous,
}

/// One value of a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value<'a> {
    /// An integer (a time in microseconds, an id, a version), or NULL.
    Int(Option<i64>),
    /// A text (a name, a message, JSON), or NULL.
    Text(Option<Cow<'a, str>>),
}

impl Value<'_> {
    /// NULL of the same type, to pad a chunk (a prepared statement keeps the types of its
    /// parameters).
    fn null<'b>(&self) -> Value<'b> {
        match self {
            Value::Int(_) => Value::Int(None),
            Value::Text(_) => Value::Text(None),
        }
    }
}

impl From<i64> for Value<'_> {
    fn from(v: i64) -> Self {
        Value::Int(Some(v))
    }
}

impl From<Option<i64>> for Value<'_> {
    fn from(v: Option<i64>) -> Self {
        Value::Int(v)
    }
}

impl<'a> From<&'a str> for Value<'a> {
    fn from(v: &'a str) -> Self {
        Value::Text(Some(Cow::Borrowed(v)))
    }
}

impl<'a> From<Option<&'a str>> for Value<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Value::Text(v.map(Cow::Borrowed))
    }
}

impl From<String> for Value<'_> {
    fn from(v: String) -> Self {
        Value::Text(Some(Cow::Owned(v)))
    }
}

/// A set of rows of `width` values each, to bind to a [`RowsSql`] statement.
#[derive(Debug, Clone, Default)]
pub struct Rows<'a> {
    width: usize,
    values: Vec<Value<'a>>,
}

impl<'a> Rows<'a> {
    /// An empty set of rows of `width` values.
    pub fn new(width: usize) -> Rows<'a> {
        Rows {
            width: width.max(1),
            values: Vec::new(),
        }
    }

    /// Appends a row.
    ///
    /// # Panics
    /// When the row is not `width` values wide: a bug in the statement's caller.
    pub fn push<const N: usize>(&mut self, row: [Value<'a>; N]) {
        assert_eq!(
            N, self.width,
            "a row of {N} values in a set of {}",
            self.width
        );
        self.values.extend(row);
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.values.len() / self.width
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Column `i` of every row as integers, for a statement that binds a set as one array
    /// per column (PostgreSQL's `unnest`). NULL where a row holds NULL, or a text (a set
    /// built wrong, which a debug build catches).
    pub fn ints(&self, i: usize) -> Vec<Option<i64>> {
        self.column(i)
            .map(|v| match v {
                Value::Int(v) => *v,
                Value::Text(_) => {
                    debug_assert!(false, "column {i} of a set of rows holds a text");
                    None
                }
            })
            .collect()
    }

    /// Column `i` of every row as texts (see [`Rows::ints`]).
    pub fn texts(&self, i: usize) -> Vec<Option<&str>> {
        self.column(i)
            .map(|v| match v {
                Value::Text(v) => v.as_deref(),
                Value::Int(_) => {
                    debug_assert!(false, "column {i} of a set of rows holds an integer");
                    None
                }
            })
            .collect()
    }

    fn column(&self, i: usize) -> impl Iterator<Item = &Value<'a>> {
        self.values.iter().skip(i).step_by(self.width)
    }

    /// The set in chunks of at most [`MAX_ROWS`] rows, each padded to a power of two.
    pub fn chunks(&self) -> impl Iterator<Item = Chunk<'_, 'a>> {
        self.values
            .chunks(self.width * MAX_ROWS)
            .map(move |values| Chunk {
                width: self.width,
                values,
            })
    }
}

/// At most [`MAX_ROWS`] rows of a [`Rows`], as one statement binds them.
#[derive(Debug, Clone, Copy)]
pub struct Chunk<'r, 'a> {
    width: usize,
    values: &'r [Value<'a>],
}

impl<'r, 'a> Chunk<'r, 'a> {
    /// The rows the statement binds: the chunk's, rounded up to a power of two.
    pub fn padded_rows(self) -> usize {
        (self.values.len() / self.width).next_power_of_two()
    }

    /// Every value to bind, in order, the padding's NULLs included.
    pub fn values(self) -> impl Iterator<Item = Value<'r>> + 'r {
        let first_row = &self.values[..self.width.min(self.values.len())];
        let padding = self.padded_rows() * self.width - self.values.len();
        let values = self.values;
        values
            .iter()
            .map(|v| match v {
                Value::Int(i) => Value::Int(*i),
                Value::Text(t) => Value::Text(t.as_deref().map(Cow::Borrowed)),
            })
            .chain(first_row.iter().cycle().take(padding).map(Value::null))
    }
}

/// A statement over a set of rows: its text for each padded size.
#[derive(Debug)]
pub struct RowsSql {
    placeholders: Placeholders,
    /// Plain parameters, written `$1` … `$scalars` in the body.
    scalars: usize,
    /// The names of a row's columns, after `pos`.
    columns: &'static [&'static str],
    /// The statement after `WITH j (…) AS (VALUES …)`.
    body: String,
    texts: [OnceLock<String>; SIZES],
}

impl RowsSql {
    /// A statement that reads its rows from `j (pos, columns…)`, with `scalars` plain
    /// parameters written `$1` … in `body`.
    pub fn new(
        placeholders: Placeholders,
        scalars: usize,
        columns: &'static [&'static str],
        body: impl Into<String>,
    ) -> Self {
        RowsSql {
            placeholders,
            scalars,
            columns,
            body: body.into(),
            texts: Default::default(),
        }
    }

    /// The width of the rows this statement reads.
    pub fn width(&self) -> usize {
        self.columns.len()
    }

    /// Whether the plain parameters are bound before the rows' values (else after).
    pub fn scalars_first(&self) -> bool {
        self.placeholders == Placeholders::Numbered
    }

    /// The statement's text for `rows` rows (a power of two at most [`MAX_ROWS`], as
    /// [`Chunk::padded_rows`] gives).
    pub fn text(&self, rows: usize) -> &str {
        let rows = rows.clamp(1, MAX_ROWS).next_power_of_two();
        let slot = rows.trailing_zeros() as usize;
        self.texts[slot].get_or_init(|| {
            use std::fmt::Write as _;
            let mut sql = format!("WITH j (pos, {}) AS (VALUES ", self.columns.join(", "));
            let mut n = self.scalars;
            for row in 0..rows {
                if row > 0 {
                    sql.push_str(", ");
                }
                let _ = write!(sql, "({row}");
                for _ in self.columns {
                    match self.placeholders {
                        Placeholders::Numbered => {
                            n += 1;
                            let _ = write!(sql, ", ${n}");
                        }
                        Placeholders::Anonymous => sql.push_str(", ?"),
                    }
                }
                sql.push(')');
            }
            sql.push_str(") ");
            match self.placeholders {
                Placeholders::Numbered => sql.push_str(&self.body),
                Placeholders::Anonymous => {
                    renumber(&mut sql, &self.body, rows * self.columns.len());
                }
            }
            sql
        })
    }

    /// The text of every size, smallest first (for plans and tests).
    pub fn texts(&self) -> impl Iterator<Item = &str> {
        (0..SIZES).map(move |i| self.text(1 << i))
    }
}

/// Appends `body` to `sql` with each `$n` written `$(n + offset)`.
fn renumber(sql: &mut String, body: &str, offset: usize) {
    let mut rest = body;
    while let Some(at) = rest.find('$') {
        sql.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits].parse::<usize>() {
            Ok(n) => sql.push_str(&(n + offset).to_string()),
            Err(_) => sql.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    sql.push_str(rest);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_rows_come_after_the_plain_parameters() {
        let sql = RowsSql::new(
            Placeholders::Numbered,
            1,
            &["id", "name"],
            "SELECT * FROM j WHERE id IS NOT NULL AND id > $1",
        );
        assert!(sql.scalars_first());
        assert_eq!(
            sql.text(2),
            "WITH j (pos, id, name) AS (VALUES (0, $2, $3), (1, $4, $5)) \
             SELECT * FROM j WHERE id IS NOT NULL AND id > $1"
        );
        assert_eq!(sql.text(3), sql.text(4));
        assert_eq!(sql.text(0), sql.text(1));
        assert_eq!(sql.texts().count(), 11);
    }

    #[test]
    fn anonymous_rows_come_before_the_plain_parameters() {
        let sql = RowsSql::new(
            Placeholders::Anonymous,
            2,
            &["id"],
            "UPDATE t SET a = $2, b = $1 WHERE c = $2 AND id IN (SELECT j.id FROM j)",
        );
        assert!(!sql.scalars_first());
        assert_eq!(
            sql.text(2),
            "WITH j (pos, id) AS (VALUES (0, ?), (1, ?)) \
             UPDATE t SET a = $4, b = $3 WHERE c = $4 AND id IN (SELECT j.id FROM j)"
        );
    }

    #[test]
    fn chunks_are_padded_to_a_power_of_two_with_nulls_of_each_type() {
        let mut rows = Rows::new(2);
        for i in 0..3 {
            rows.push([Value::from(i), Value::from("x")]);
        }
        let chunks: Vec<_> = rows.chunks().collect();
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].padded_rows(), 4);
        let values: Vec<_> = chunks[0].values().collect();
        assert_eq!(values.len(), 8);
        assert_eq!(values[6], Value::Int(None));
        assert_eq!(values[7], Value::Text(None));
        assert_eq!(values[4], Value::from(2));
    }

    #[test]
    fn a_set_is_read_column_by_column() {
        let mut rows = Rows::new(2);
        rows.push([Value::from(1), Value::from("a")]);
        rows.push([Value::from(None::<i64>), Value::from(None::<&str>)]);
        rows.push([Value::from(3), Value::from("c")]);
        assert_eq!(rows.ints(0), [Some(1), None, Some(3)]);
        assert_eq!(rows.texts(1), [Some("a"), None, Some("c")]);
        assert!(Rows::new(3).ints(2).is_empty());
    }

    #[test]
    fn large_sets_are_written_in_chunks() {
        let mut rows = Rows::new(1);
        for i in 0..(MAX_ROWS as i64 * 2 + 5) {
            rows.push([Value::from(i)]);
        }
        let sizes: Vec<usize> = rows.chunks().map(|c| c.padded_rows()).collect();
        assert_eq!(sizes, [MAX_ROWS, MAX_ROWS, 8]);
        let bound: usize = rows.chunks().map(|c| c.values().count()).sum();
        assert_eq!(bound, MAX_ROWS * 2 + 8);
        assert_eq!(rows.len(), MAX_ROWS * 2 + 5);
    }
}
