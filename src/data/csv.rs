//! Numeric CSV tables and the rule that splits them.

use super::{DataError, Splits, Table};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::path::Path;

/// Reads a CSV file whose first row is a header and whose other rows hold
/// `inputs` input columns followed by `outputs` target columns, all numeric.
///
/// Blank lines are skipped. A missing value, a value that is not a finite number,
/// a row with the wrong number of columns or a file without data rows is an
/// error naming the line and column.
pub fn read_csv(path: &Path, inputs: usize, outputs: usize) -> Result<Table, DataError> {
    let text = std::fs::read_to_string(path).map_err(|source| DataError::Io {
        path: path.into(),
        source,
    })?;
    parse(&text, &path.display().to_string(), inputs, outputs)
}

/// Parses CSV `text`; `source` names it in errors.
pub(super) fn parse(
    text: &str,
    source: &str,
    inputs: usize,
    outputs: usize,
) -> Result<Table, DataError> {
    let error = |row: usize, column: Option<usize>, message: String| DataError::Csv {
        path: source.into(),
        row,
        column,
        message,
    };
    let width = inputs + outputs;
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim_end_matches('\r')))
        .filter(|(_, line)| !line.trim().is_empty());
    let (header_row, header) = lines
        .next()
        .ok_or_else(|| error(1, None, "empty file: expected a header row".into()))?;
    let names: Vec<&str> = header.split(',').map(str::trim).collect();
    if names.len() != width {
        return Err(error(
            header_row,
            None,
            format!(
                "the header has {} columns, expected {width} ({inputs} inputs + {outputs} outputs)",
                names.len()
            ),
        ));
    }
    let mut table = Table {
        x: Vec::new(),
        y: Vec::new(),
        rows: 0,
        x_dim: inputs,
        y_dim: outputs,
    };
    for (row, line) in lines {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() != width {
            return Err(error(
                row,
                None,
                format!("found {} columns, expected {width}", fields.len()),
            ));
        }
        for (column, (field, name)) in fields.iter().zip(&names).enumerate() {
            let at = |message: String| error(row, Some(column + 1), format!("`{name}`: {message}"));
            if field.is_empty() {
                return Err(at("missing value".into()));
            }
            let value: f32 = field
                .parse()
                .map_err(|_| at(format!("`{field}` is not a number")))?;
            if !value.is_finite() {
                return Err(at(format!("`{field}` is not a finite number")));
            }
            if column < inputs {
                table.x.push(value);
            } else {
                table.y.push(value);
            }
        }
        table.rows += 1;
    }
    if table.rows == 0 {
        return Err(error(
            header_row,
            None,
            "no data rows after the header".into(),
        ));
    }
    Ok(table)
}

/// How a single table is cut into training, validation and test sets: the rows
/// are shuffled with `seed`, the first `round(test · rows)` go to test, the next
/// `round(val · rows)` to validation and the rest to training.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SplitRule {
    pub val: f64,
    pub test: f64,
    pub seed: u64,
}

impl Default for SplitRule {
    /// 70% training, 10% validation, 20% test, seed 0.
    fn default() -> Self {
        SplitRule {
            val: 0.1,
            test: 0.2,
            seed: 0,
        }
    }
}

impl SplitRule {
    /// Splits `table`; an error if the training part would be empty.
    ///
    /// ```
    /// use symc::data::{SplitRule, Table};
    /// let t = Table { x: (0..10).map(|i| i as f32).collect(), y: vec![0.0; 10], rows: 10, x_dim: 1, y_dim: 1 };
    /// let s = SplitRule::default().split(&t).unwrap();
    /// assert_eq!((s.train.rows, s.val.rows, s.test.rows), (7, 1, 2));
    /// ```
    pub fn split(&self, table: &Table) -> Result<Splits, DataError> {
        let mut order: Vec<usize> = (0..table.rows).collect();
        order.shuffle(&mut StdRng::seed_from_u64(self.seed));
        let count = |fraction: f64| (fraction * table.rows as f64).round() as usize;
        let (test, val) = (count(self.test), count(self.val));
        if test + val >= table.rows {
            return Err(DataError::Invalid(format!(
                "splitting {} rows into {val} validation and {test} test rows leaves none to train on",
                table.rows
            )));
        }
        Ok(Splits {
            test: table.select(&order[..test]),
            val: table.select(&order[test..test + val]),
            train: table.select(&order[test + val..]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv_error(text: &str) -> (usize, Option<usize>, String) {
        match parse(text, "t.csv", 2, 1) {
            Err(DataError::Csv {
                row,
                column,
                message,
                ..
            }) => (row, column, message),
            other => panic!("expected a CSV error, got {other:?}"),
        }
    }

    #[test]
    fn parses_inputs_and_outputs() {
        let t = parse("a,b,y\n1,2,3\r\n\n4, 5 ,6e-1\n", "t.csv", 2, 1).unwrap();
        assert_eq!((t.rows, t.x_dim, t.y_dim), (2, 2, 1));
        assert_eq!(t.x, [1.0, 2.0, 4.0, 5.0]);
        assert_eq!(t.y, [3.0, 0.6]);
    }

    #[test]
    fn defects_name_their_row_and_column() {
        assert_eq!(
            csv_error("a,b,y\n1,2,3\n4,,6\n"),
            (3, Some(2), "`b`: missing value".into())
        );
        assert_eq!(
            csv_error("a,b,y\n1,2,NaN\n"),
            (2, Some(3), "`y`: `NaN` is not a finite number".into())
        );
        assert_eq!(
            csv_error("a,b,y\n1,x,3\n"),
            (2, Some(2), "`b`: `x` is not a number".into())
        );
        assert_eq!(
            csv_error("a,b,y\n1,2,3\n1,2\n"),
            (3, None, "found 2 columns, expected 3".into())
        );
        assert_eq!(
            csv_error(""),
            (1, None, "empty file: expected a header row".into())
        );
        assert_eq!(
            csv_error("a,b,y\n\n"),
            (1, None, "no data rows after the header".into())
        );
        let (row, column, message) = csv_error("a,b\n1,2\n");
        assert_eq!((row, column), (1, None));
        assert!(
            message.contains("expected 3 (2 inputs + 1 outputs)"),
            "{message}"
        );
        let shown = parse("a,b,y\n1,inf,3\n", "t.csv", 2, 1)
            .unwrap_err()
            .to_string();
        assert_eq!(
            shown,
            "t.csv:2, column 2: `b`: `inf` is not a finite number"
        );
    }

    #[test]
    fn missing_file_is_an_io_error() {
        let err = read_csv(Path::new("/nonexistent/data.csv"), 1, 1).unwrap_err();
        assert!(matches!(err, DataError::Io { .. }), "{err}");
    }

    #[test]
    fn split_partitions_the_rows_by_seed() {
        let t = Table {
            x: (0..100).map(|i| i as f32).collect(),
            y: (0..100).map(|i| -(i as f32)).collect(),
            rows: 100,
            x_dim: 1,
            y_dim: 1,
        };
        let rule = SplitRule::default();
        let s = rule.split(&t).unwrap();
        assert_eq!((s.train.rows, s.val.rows, s.test.rows), (70, 10, 20));
        let mut seen: Vec<f32> = [&s.train, &s.val, &s.test]
            .iter()
            .flat_map(|p| p.x.clone())
            .collect();
        seen.sort_by(f32::total_cmp);
        assert_eq!(seen, t.x);
        // Rows keep their targets, and the seed decides the order.
        assert!(s.train.x.iter().zip(&s.train.y).all(|(x, y)| *y == -x));
        assert_eq!(rule.split(&t).unwrap(), s);
        assert_ne!(
            SplitRule { seed: 1, ..rule }.split(&t).unwrap().test,
            s.test
        );
        assert!(SplitRule {
            val: 0.5,
            test: 0.5,
            seed: 0
        }
        .split(&t)
        .is_err());
    }
}
