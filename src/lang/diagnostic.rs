//! symc's one diagnostic type and the one place it is rendered.
//!
//! Every stage (parser, checker, planner) has its own error enum carrying spans;
//! each converts into a [`Diagnostic`], and [`Diagnostics::render`] turns them into
//! text with codespan-reporting: `file:line:col`, the offending line, a caret and a
//! `help:` line. Plain text for snapshots and pipes, colour for a terminal.

use codespan_reporting::diagnostic as cs;
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term::{self, termcolor};
use std::fmt;

/// Index of a source file in a [`SourceMap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FileId(usize);

/// A byte range in one source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Span {
    pub file: FileId,
    pub start: usize,
    pub end: usize,
}

impl Span {
    /// The smallest span covering both `self` and `other` (same file).
    pub fn to(self, other: Span) -> Span {
        Span {
            file: self.file,
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

/// The source files a diagnostic may point into: the spec and what it includes.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    files: Vec<(String, String)>,
}

impl SourceMap {
    /// Registers a file and returns its id.
    pub fn add(&mut self, name: impl Into<String>, text: impl Into<String>) -> FileId {
        self.files.push((name.into(), text.into()));
        FileId(self.files.len() - 1)
    }

    /// The file's name as given to [`SourceMap::add`].
    pub fn name(&self, id: FileId) -> &str {
        &self.files[id.0].0
    }

    /// The file's text.
    pub fn text(&self, id: FileId) -> &str {
        &self.files[id.0].1
    }

    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, id: FileId, offset: usize) -> (usize, usize) {
        let text = self.text(id);
        let before = &text[..floor_char_boundary(text, offset)];
        let line = before.matches('\n').count() + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, col)
    }
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// A message attached to a span.
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    pub span: Span,
    pub message: String,
    /// The primary label marks the problem (`^^^`); secondary ones give context (`---`).
    pub primary: bool,
}

/// One error or warning: message, labelled spans, notes and an optional fix.
///
/// ```
/// use symc::lang::{Diagnostic, Diagnostics, SourceMap, Span};
/// let mut sources = SourceMap::default();
/// let file = sources.add("a.sym", "model m { dta x }");
/// let d = Diagnostic::error("unknown statement `dta`")
///     .with_primary(Span { file, start: 10, end: 13 }, "not a statement")
///     .with_help("did you mean `data`?");
/// let text = Diagnostics::new(sources, vec![d]).render(false);
/// assert!(text.contains("a.sym:1:11"));
/// assert!(text.contains("help: did you mean `data`?"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    pub labels: Vec<Label>,
    pub notes: Vec<String>,
    pub help: Option<String>,
}

impl Diagnostic {
    /// An error with no labels yet.
    pub fn error(message: impl Into<String>) -> Self {
        Self::new(Severity::Error, message)
    }

    /// A warning with no labels yet.
    pub fn warning(message: impl Into<String>) -> Self {
        Self::new(Severity::Warning, message)
    }

    fn new(severity: Severity, message: impl Into<String>) -> Self {
        Self {
            severity,
            message: message.into(),
            labels: Vec::new(),
            notes: Vec::new(),
            help: None,
        }
    }

    /// Marks the span where the problem is.
    pub fn with_primary(mut self, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            message: message.into(),
            primary: true,
        });
        self
    }

    /// Marks a span that explains the problem.
    pub fn with_secondary(mut self, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label {
            span,
            message: message.into(),
            primary: false,
        });
        self
    }

    /// Adds a note below the source excerpt.
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// Says how to fix the problem.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// The span of the first primary label, if any.
    pub fn primary_span(&self) -> Option<Span> {
        self.labels.iter().find(|l| l.primary).map(|l| l.span)
    }
}

/// Diagnostics together with the sources they point into.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics {
    pub sources: SourceMap,
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new(sources: SourceMap, items: Vec<Diagnostic>) -> Self {
        Self { sources, items }
    }

    /// Whether any item is an error (not just warnings).
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    /// Renders every item, rustc style; `color` adds ANSI colours.
    pub fn render(&self, color: bool) -> String {
        let mut files = SimpleFiles::new();
        for (name, text) in &self.sources.files {
            files.add(name.as_str(), text.as_str());
        }
        let mut buffer = if color {
            termcolor::Buffer::ansi()
        } else {
            termcolor::Buffer::no_color()
        };
        let config = term::Config::default();
        for item in &self.items {
            // Emitting into an in-memory buffer only fails on a span outside its
            // file, which the stages never produce; the message is still kept.
            if term::emit(
                &mut buffer,
                &config,
                &files,
                &to_codespan(&self.sources, item),
            )
            .is_err()
            {
                buffer_line(&mut buffer, &item.message);
            }
        }
        String::from_utf8_lossy(buffer.as_slice()).into_owned()
    }
}

fn buffer_line(buffer: &mut termcolor::Buffer, line: &str) {
    use std::io::Write;
    // Writing to a `Vec`-backed buffer cannot fail.
    let _ = writeln!(buffer, "error: {line}");
}

fn to_codespan(sources: &SourceMap, d: &Diagnostic) -> cs::Diagnostic<usize> {
    let severity = match d.severity {
        Severity::Error => cs::Severity::Error,
        Severity::Warning => cs::Severity::Warning,
    };
    let labels = d
        .labels
        .iter()
        .map(|l| {
            let text = sources.text(l.span.file);
            let start = floor_char_boundary(text, l.span.start);
            let end = floor_char_boundary(text, l.span.end.max(start));
            let style = if l.primary {
                cs::LabelStyle::Primary
            } else {
                cs::LabelStyle::Secondary
            };
            cs::Label::new(style, l.span.file.0, start..end).with_message(&l.message)
        })
        .collect();
    let notes = d
        .notes
        .iter()
        .map(|n| format!("note: {n}"))
        .chain(d.help.iter().map(|h| format!("help: {h}")))
        .collect();
    cs::Diagnostic::new(severity)
        .with_message(&d.message)
        .with_labels(labels)
        .with_notes(notes)
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(false))
    }
}

impl std::error::Error for Diagnostics {}

/// Closest candidate to `word` by edit distance, if it is close enough to be a typo.
pub(crate) fn suggest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (edit_distance(&word.to_lowercase(), &c.to_lowercase()), c))
        .filter(|&(d, c)| d <= (c.len().max(word.len()) / 3).max(1))
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Edit distance counting a swap of neighbours as one edit (`stpes` → `steps`).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for j in 0..=b.len() {
        d[0][j] = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j - 1] + cost)
                .min(d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_catch_typos_only() {
        assert_eq!(
            suggest("hamiltonain", ["hamiltonian", "lagrangian"]),
            Some("hamiltonian")
        );
        assert_eq!(suggest("lrr", ["lr", "steps"]), Some("lr"));
        assert_eq!(suggest("stpes", ["lr", "steps"]), Some("steps"));
        assert_eq!(suggest("banana", ["lr", "steps"]), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn line_col_counts_from_one_and_respects_utf8() {
        let mut s = SourceMap::default();
        let f = s.add("a", "ab\nc×d");
        assert_eq!(s.line_col(f, 0), (1, 1));
        assert_eq!(s.line_col(f, 4), (2, 2));
        // Offset inside the two-byte `×` rounds down to its start.
        assert_eq!(s.line_col(f, 5), (2, 2));
    }
}
