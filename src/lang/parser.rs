//! pest parse → [`Ast`], and pest's errors → [`ParseError`].
//!
//! A file that fails to parse is re-parsed item by item and statement by statement,
//! resynchronising at each line that starts with a keyword, so one run reports
//! every syntax error that is not a consequence of an earlier one.

use super::ast::*;
use super::diagnostic::{Diagnostic, FileId, Span};
use crate::group::Rep;
use pest::iterators::Pair;
use pest::Parser as _;
use std::collections::BTreeSet;
use std::sync::Once;

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/symc.pest"]
struct SymcParser;

/// Brackets may nest this deep; deeper input is refused before pest sees it, so
/// neither the parser nor the tree walk can exhaust the stack.
pub const MAX_NESTING: usize = 64;

/// A syntax error.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    /// The text does not match the grammar at `span`.
    #[error("{}", syntax_message(expected, found))]
    Syntax {
        span: Span,
        expected: Vec<String>,
        found: String,
    },
    /// Brackets nest deeper than [`MAX_NESTING`].
    #[error("brackets nest deeper than {MAX_NESTING} levels")]
    TooDeep { span: Span },
    /// An integer does not fit, or is zero where a count is needed.
    #[error("{what} must be between 1 and {max}, found `{text}`")]
    Integer {
        span: Span,
        what: &'static str,
        text: String,
        max: u64,
    },
}

impl ParseError {
    /// Where the error is.
    pub fn span(&self) -> Span {
        match self {
            ParseError::Syntax { span, .. }
            | ParseError::TooDeep { span }
            | ParseError::Integer { span, .. } => *span,
        }
    }
}

impl From<&ParseError> for Diagnostic {
    fn from(e: &ParseError) -> Diagnostic {
        let d = Diagnostic::error(e.to_string());
        match e {
            ParseError::Syntax {
                span,
                expected,
                found,
            } => {
                let d = d.with_primary(*span, format!("unexpected {found}"));
                match syntax_help(expected, found) {
                    Some(help) => d.with_help(help),
                    None => d,
                }
            }
            ParseError::TooDeep { span } => d
                .with_primary(*span, "this bracket is too deep")
                .with_help("flatten the expression; specs never need this much nesting"),
            ParseError::Integer { span, what, .. } => d
                .with_primary(*span, format!("invalid {what}"))
                .with_help(format!("write a whole number of at least 1 for the {what}")),
        }
    }
}

fn syntax_help(expected: &[String], found: &str) -> Option<String> {
    let wants = |s: &str| expected.iter().any(|e| e == s);
    if found == "end of line" && wants("string") {
        Some("a string ends on the line it starts: add the closing `\"`".into())
    } else if found == "end of file" && wants("`}`") {
        Some("a `{` is never closed: add `}` at the end of the block".into())
    } else if wants("statement") && found.starts_with('`') {
        Some(
            "a model block holds `data`, `input`, `output`, `state`, `symmetry`, `net`, `train` \
             and `export` statements"
                .into(),
        )
    } else if wants("representation") {
        Some("a representation is built from `scalar` and `V` with `+`, `k*`, `*`, `^k` and a postfix `*` (dual)".into())
    } else if found == "`=`" && wants("`(`") {
        Some("arguments go inside parentheses: `name(key = value, …)`".into())
    } else {
        None
    }
}

fn syntax_message(expected: &[String], found: &str) -> String {
    match expected {
        [] => format!("unexpected {found}"),
        [one] => format!("expected {one}, found {found}"),
        [init @ .., last] => format!("expected {} or {last}, found {found}", init.join(", ")),
    }
}

/// Runs pest with error detail on: only then does it report the furthest token
/// it tried and the literal tokens (`}`, `=`) it expected there.
fn pest_parse(
    rule: Rule,
    text: &str,
) -> Result<pest::iterators::Pairs<'_, Rule>, pest::error::Error<Rule>> {
    static ERROR_DETAIL: Once = Once::new();
    ERROR_DETAIL.call_once(|| pest::set_error_detail(true));
    SymcParser::parse(rule, text)
}

/// Parses a whole file.
pub fn parse_file(text: &str, file: FileId) -> Result<Ast, Vec<ParseError>> {
    check_nesting(text, file)?;
    match pest_parse(Rule::file, text) {
        Ok(mut pairs) => {
            let root = pairs.next().map(|p| p.into_inner());
            let mut b = Builder {
                file,
                errors: Vec::new(),
            };
            let items = root
                .into_iter()
                .flatten()
                .filter(|p| p.as_rule() == Rule::item)
                .map(|p| b.item(p))
                .collect();
            if b.errors.is_empty() {
                Ok(Ast { items })
            } else {
                Err(b.errors)
            }
        }
        Err(e) => {
            let first = translate(&e, text, file, 0);
            let mut errors = recover(text, file);
            if !errors.contains(&first) {
                errors.insert(0, first);
            }
            errors.sort_by_key(|e| e.span().start);
            errors.dedup_by_key(|e| e.span().start);
            Err(errors)
        }
    }
}

/// Parses a group expression alone, e.g. `SO(3) x O(2)`.
pub fn parse_group(text: &str, file: FileId) -> Result<Spanned<GroupExpr>, ParseError> {
    let mut b = Builder {
        file,
        errors: Vec::new(),
    };
    let pair = b.entry(Rule::group_entry, text)?;
    let g = b.group_expr(pair);
    b.finish(g)
}

/// Parses a representation alone, e.g. `5*scalar+5*V`.
pub fn parse_rep(text: &str, file: FileId) -> Result<Spanned<Rep>, ParseError> {
    let mut b = Builder {
        file,
        errors: Vec::new(),
    };
    let pair = b.entry(Rule::rep_entry, text)?;
    let span = b.span(&pair);
    let rep = b.rep_expr(pair);
    b.finish(Spanned { node: rep, span })
}

fn check_nesting(text: &str, file: FileId) -> Result<(), Vec<ParseError>> {
    let mut depth = 0usize;
    let mut in_comment = false;
    let mut in_string = false;
    for (i, c) in text.char_indices() {
        match c {
            '\n' => {
                in_comment = false;
                in_string = false;
            }
            _ if in_comment => {}
            '"' => in_string = !in_string,
            _ if in_string => {}
            '#' => in_comment = true,
            '(' | '[' | '{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    let span = Span {
                        file,
                        start: i,
                        end: i + 1,
                    };
                    return Err(vec![ParseError::TooDeep { span }]);
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Re-parses the pieces of a broken file to find every independent syntax error.
///
/// Top-level items start at lines beginning with `model`, `group` or `include`;
/// inside a model, statements start at lines beginning with a statement keyword.
/// Each piece is parsed on its own with the matching entry rule.
fn recover(text: &str, file: FileId) -> Vec<ParseError> {
    const ITEM: [&str; 3] = ["model", "group", "include"];
    const STATEMENT: [&str; 8] = [
        "data", "input", "output", "state", "symmetry", "net", "train", "export",
    ];
    let mut errors = Vec::new();
    let starts = line_starts(text, &ITEM);
    for (k, &start) in starts.iter().enumerate() {
        let end = starts.get(k + 1).copied().unwrap_or(text.len());
        let piece = &text[start..end];
        let Err(e) = pest_parse(Rule::item_entry, piece) else {
            continue;
        };
        if !piece.trim_start().starts_with("model") {
            errors.push(translate(&e, text, file, start));
            continue;
        }
        // Parse a model's header and body statements separately.
        let braces = code_positions(piece, '{');
        let Some(&open) = braces.first() else {
            errors.push(translate(&e, text, file, start));
            continue;
        };
        let body_end = code_positions(piece, '}')
            .last()
            .copied()
            .filter(|&c| c > open)
            .unwrap_or(piece.len());
        let header = format!("{}}}", &piece[..=open]);
        if let Err(e) = pest_parse(Rule::item_entry, &header) {
            errors.push(translate(&e, text, file, start));
        }
        let body = &piece[open + 1..body_end];
        let stmts = line_starts(body, &STATEMENT);
        if stmts
            .first()
            .map_or(!body.trim().is_empty(), |&s| !body[..s].trim().is_empty())
        {
            // Text before the first statement keyword is itself an error.
            let first = stmts.first().copied().unwrap_or(body.len());
            let chunk = &body[..first];
            if let Err(e) = pest_parse(Rule::statement_entry, chunk) {
                errors.push(translate(&e, text, file, start + open + 1));
            }
        }
        for (j, &s) in stmts.iter().enumerate() {
            let e_ = stmts.get(j + 1).copied().unwrap_or(body.len());
            if let Err(e) = pest_parse(Rule::statement_entry, &body[s..e_]) {
                errors.push(translate(&e, text, file, start + open + 1 + s));
            }
        }
        if body_end == piece.len() {
            errors.push(translate(&e, text, file, start));
        }
    }
    if starts.first().map_or(!blank(text), |&s| !blank(&text[..s])) {
        let end = starts.first().copied().unwrap_or(text.len());
        if let Err(e) = pest_parse(Rule::file, &text[..end]) {
            errors.push(translate(&e, text, file, 0));
        }
    }
    // Pieces overlap at their edges (a header and an unclosed body both end at
    // the end of the file), so one mistake can surface twice.
    let mut unique = Vec::with_capacity(errors.len());
    for e in errors {
        if !unique.contains(&e) {
            unique.push(e);
        }
    }
    unique
}

/// Byte offsets of the occurrences of `c` in `text` outside comments and strings.
fn code_positions(text: &str, c: char) -> Vec<usize> {
    let mut in_comment = false;
    let mut in_string = false;
    let mut positions = Vec::new();
    for (i, ch) in text.char_indices() {
        match ch {
            '\n' => (in_comment, in_string) = (false, false),
            _ if in_comment => {}
            '"' => in_string = !in_string,
            '#' if !in_string => in_comment = true,
            _ if ch == c && !in_string => positions.push(i),
            _ => {}
        }
    }
    positions
}

/// True when `text` holds only whitespace and comments.
fn blank(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim_start();
        l.is_empty() || l.starts_with('#')
    })
}

/// Byte offsets of the lines whose first word is one of `keywords`.
fn line_starts(text: &str, keywords: &[&str]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let word: String = trimmed
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if keywords.contains(&word.as_str()) {
            starts.push(offset + line.len() - trimmed.len());
        }
        offset += line.len();
    }
    starts
}

/// Translates a pest error on `text[offset..]` (a piece of `full`) into a [`ParseError`].
///
/// pest reports the furthest position a *rule* was tried at; with error detail on
/// it also knows the furthest position any token was tried at, which is where the
/// user's mistake is (`1000 seed` fails at `seed`, not at the `(` before it).
fn translate(e: &pest::error::Error<Rule>, full: &str, file: FileId, offset: usize) -> ParseError {
    use pest::error::{ErrorVariant, InputLocation};
    let mut pos = match e.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    let mut expected = BTreeSet::new();
    match (&e.variant, e.parse_attempts()) {
        (ErrorVariant::CustomError { message }, _) => {
            // pest's call and stack limits arrive as custom errors.
            expected.insert(format!("input within the parser's limits ({message})"));
        }
        (_, Some(attempts)) if attempts.max_position >= pos => {
            pos = attempts.max_position;
            // Punctuation is named as itself; words are named by their rules.
            const PUNCTUATION: [&str; 12] =
                ["{", "}", "(", ")", "[", "]", "=", ",", ":", "=>", "+", "^"];
            for token in attempts.expected_tokens().iter().map(ToString::to_string) {
                if PUNCTUATION.contains(&token.as_str()) {
                    expected.insert(format!("`{token}`"));
                }
            }
            for stack in attempts.call_stacks() {
                let rule = stack.deepest.get_rule().copied().or(stack.parent);
                expected.extend(rule.and_then(readable).map(String::from));
            }
        }
        (ErrorVariant::ParsingError { .. }, _) => {}
    }
    if let ErrorVariant::ParsingError { positives, .. } = &e.variant {
        // Keywords are atomic rules, which the detailed attempts do not name.
        if expected.is_empty() || e.location == InputLocation::Pos(pos) {
            expected.extend(
                positives
                    .iter()
                    .filter_map(|r| readable(*r))
                    .map(String::from),
            );
        }
    }
    // A piece may be parsed with a closing brace appended (a model header), so
    // pest can fail one byte past the piece's end; the file ends there too.
    let start = (offset + pos).min(full.len());
    let (found, len) = found_at(full, start);
    let span = Span {
        file,
        start,
        end: start + len,
    };
    ParseError::Syntax {
        span,
        expected: expected.into_iter().collect(),
        found,
    }
}

/// Describes the token at `pos` and its length in bytes.
fn found_at(text: &str, pos: usize) -> (String, usize) {
    let rest = &text[pos.min(text.len())..];
    let Some(c) = rest.chars().next() else {
        return ("end of file".into(), 0);
    };
    if c == '\n' || c == '\r' {
        return ("end of line".into(), 0);
    }
    if c.is_ascii_alphanumeric() || c == '_' {
        let word: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let len = word.len();
        (format!("`{}`", truncate(&word)), len)
    } else if c.is_control() || c == '\u{FFFD}' {
        (format!("character {:?}", c), c.len_utf8())
    } else {
        (format!("`{c}`"), c.len_utf8())
    }
}

fn truncate(word: &str) -> String {
    if word.chars().count() > 24 {
        format!("{}…", word.chars().take(24).collect::<String>())
    } else {
        word.to_string()
    }
}

/// The name a rule has in error messages; `None` hides it (its parent names it).
fn readable(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::ident => "identifier",
        Rule::int => "integer",
        Rule::number => "number",
        Rule::string => "string",
        Rule::value | Rule::list => "value",
        Rule::arg => "argument",
        Rule::args => "`(`",
        Rule::kw_model => "`model`",
        Rule::kw_group => "`group`",
        Rule::kw_include => "`include`",
        Rule::kw_over => "`over`",
        Rule::kw_on => "`on`",
        Rule::kw_product => "`x`",
        Rule::kw_data
        | Rule::kw_input
        | Rule::kw_output
        | Rule::kw_state
        | Rule::kw_symmetry
        | Rule::kw_net
        | Rule::kw_train
        | Rule::kw_export
        | Rule::statement => "statement",
        Rule::kw_builtin | Rule::kw_file | Rule::builtin_source | Rule::file_source => {
            "data source (`builtin.NAME(…)` or `file(\"PATH\", …)`)"
        }
        Rule::group_expr
        | Rule::group_atom
        | Rule::named_group
        | Rule::custom_group
        | Rule::kw_lie
        | Rule::kw_discrete => "group",
        Rule::matrix_list => "`{`",
        Rule::rep_expr
        | Rule::rep_term
        | Rule::rep_product
        | Rule::rep_factor
        | Rule::rep_atom
        | Rule::rep_scalar
        | Rule::rep_v => "representation",
        Rule::dual | Rule::power => "`*` or `^`",
        Rule::port | Rule::ports => "port (`name: type`)",
        Rule::port_type | Rule::real_type | Rule::class_type | Rule::rep_type => "type",
        Rule::symmetry => "symmetry",
        Rule::strategy => "strategy",
        Rule::item => "`model`, `group` or `include`",
        Rule::EOI => "end of file",
        _ => return None,
    })
}

/// Walks pest's pairs into the AST. Integer range errors are collected, not fatal.
struct Builder {
    file: FileId,
    errors: Vec<ParseError>,
}

impl Builder {
    fn entry<'i>(&mut self, rule: Rule, text: &'i str) -> Result<Pair<'i, Rule>, ParseError> {
        check_nesting(text, self.file).map_err(|mut e| e.remove(0))?;
        let mut pairs = pest_parse(rule, text).map_err(|e| translate(&e, text, self.file, 0))?;
        let entry = pairs.next().and_then(|p| p.into_inner().next());
        entry.ok_or_else(|| ParseError::Syntax {
            span: Span {
                file: self.file,
                start: 0,
                end: 0,
            },
            expected: vec!["something".into()],
            found: "end of file".into(),
        })
    }

    fn finish<T>(mut self, value: T) -> Result<T, ParseError> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            Err(self.errors.remove(0))
        }
    }

    /// The pair's span without the whitespace pest lets a repetition swallow.
    fn span(&self, p: &Pair<Rule>) -> Span {
        let s = p.as_span();
        let end = s.start() + p.as_str().trim_end().len();
        Span {
            file: self.file,
            start: s.start(),
            end,
        }
    }

    fn ident(&self, p: Pair<Rule>) -> Ident {
        Spanned {
            node: p.as_str().to_string(),
            span: self.span(&p),
        }
    }

    fn count(&mut self, p: Pair<Rule>, what: &'static str, max: u64) -> Spanned<usize> {
        let span = self.span(&p);
        let text = p.as_str();
        match text.parse::<u64>() {
            Ok(v) if (1..=max).contains(&v) => Spanned {
                node: v as usize,
                span,
            },
            _ => {
                self.errors.push(ParseError::Integer {
                    span,
                    what,
                    text: text.into(),
                    max,
                });
                Spanned { node: 1, span }
            }
        }
    }

    fn item(&mut self, p: Pair<Rule>) -> Item {
        let inner = first(p);
        match inner.as_rule() {
            Rule::include_item => Item::Include(self.string(nth(inner, 1))),
            Rule::group_item => {
                let mut it = inner.into_inner().skip(1);
                let name = self.ident(next(&mut it));
                let expr = self.group_expr(next(&mut it));
                Item::Group { name, expr }
            }
            _ => {
                let mut it = inner.into_inner().skip(1);
                let name = self.ident(next(&mut it));
                let statements = it.map(|s| self.statement(s)).collect();
                Item::Model(ModelDecl { name, statements })
            }
        }
    }

    fn string(&self, p: Pair<Rule>) -> Spanned<String> {
        let span = self.span(&p);
        Spanned {
            node: first(p).as_str().to_string(),
            span,
        }
    }

    fn group_expr(&mut self, p: Pair<Rule>) -> Spanned<GroupExpr> {
        let span = self.span(&p);
        let mut atoms: Vec<_> = p
            .into_inner()
            .filter(|a| a.as_rule() == Rule::group_atom)
            .map(|a| self.group_atom(a))
            .collect();
        if atoms.len() == 1 {
            atoms.remove(0)
        } else {
            Spanned {
                node: GroupExpr::Product(atoms),
                span,
            }
        }
    }

    fn group_atom(&mut self, p: Pair<Rule>) -> Spanned<GroupExpr> {
        let inner = first(p);
        let span = self.span(&inner);
        match inner.as_rule() {
            Rule::group_expr => self.group_expr(inner),
            Rule::named_group => {
                let mut it = inner.into_inner();
                let name = self.ident(next(&mut it));
                let params = it
                    .flat_map(|ps| ps.into_inner())
                    .map(|n| self.count(n, "group parameter", 64))
                    .collect();
                Spanned {
                    node: GroupExpr::Named { name, params },
                    span,
                }
            }
            _ => {
                let (mut lie, mut discrete) = (Vec::new(), Vec::new());
                for block in inner.into_inner() {
                    let target = if block.as_rule() == Rule::lie_block {
                        &mut lie
                    } else {
                        &mut discrete
                    };
                    let matrices = nth(block, 1).into_inner();
                    target.extend(matrices.map(|m| self.value_list(m)));
                }
                Spanned {
                    node: GroupExpr::Custom { lie, discrete },
                    span,
                }
            }
        }
    }

    fn value(&mut self, p: Pair<Rule>) -> Spanned<Value> {
        let inner = first(p);
        let span = self.span(&inner);
        let node = match inner.as_rule() {
            Rule::number => Value::Number(inner.as_str().to_string()),
            Rule::string => Value::Str(first(inner).as_str().to_string()),
            Rule::list => return self.value_list(inner),
            _ => Value::Ident(inner.as_str().to_string()),
        };
        Spanned { node, span }
    }

    fn value_list(&mut self, p: Pair<Rule>) -> Spanned<Value> {
        let span = self.span(&p);
        let items = p.into_inner().map(|v| self.value(v)).collect();
        Spanned {
            node: Value::List(items),
            span,
        }
    }

    fn arg(&mut self, p: Pair<Rule>) -> Arg {
        let mut it = p.into_inner();
        let key = self.ident(next(&mut it));
        let value = self.value(next(&mut it));
        Arg { key, value }
    }

    fn args(&mut self, p: Option<Pair<Rule>>) -> Vec<Arg> {
        p.into_iter()
            .flat_map(|a| a.into_inner())
            .map(|a| self.arg(a))
            .collect()
    }

    fn statement(&mut self, p: Pair<Rule>) -> Spanned<Statement> {
        let span = self.span(&p);
        let inner = first(p);
        let rule = inner.as_rule();
        let mut it = inner.into_inner().skip(1);
        let node = match rule {
            Rule::data_stmt => {
                let source = next(&mut it);
                let is_file = source.as_rule() == Rule::file_source;
                let mut parts = source.into_inner().skip(1);
                if is_file {
                    let path = self.string(next(&mut parts));
                    let args = parts.map(|a| self.arg(a)).collect();
                    Statement::Data(DataSource::File { path, args })
                } else {
                    let name = self.ident(next(&mut parts));
                    let args = self.args(parts.next());
                    Statement::Data(DataSource::Builtin { name, args })
                }
            }
            Rule::input_stmt => Statement::Input(self.ports(next(&mut it))),
            Rule::output_stmt => Statement::Output(self.ports(next(&mut it))),
            Rule::state_stmt => Statement::State(self.ports(next(&mut it))),
            Rule::symmetry_stmt => {
                let sym = next(&mut it);
                let sym_span = self.span(&sym);
                let mut sym = sym.into_inner();
                let name = self.ident(next(&mut sym));
                let args = sym.map(|a| self.sym_arg(a)).collect();
                let strategy = it.next().map(|s| {
                    let mut s = s.into_inner();
                    let name = self.ident(next(&mut s));
                    StrategyDecl {
                        name,
                        args: self.args(s.next()),
                    }
                });
                Statement::Symmetry(SymmetryDecl {
                    span: sym_span,
                    name,
                    args,
                    strategy,
                })
            }
            Rule::net_stmt => {
                let kind = self.ident(next(&mut it));
                Statement::Net {
                    kind,
                    args: self.args(it.next()),
                }
            }
            Rule::train_stmt => Statement::Train(self.args(it.next())),
            _ => {
                let mut it = it.skip(1);
                Statement::Export(self.ident(next(&mut it)))
            }
        };
        Spanned { node, span }
    }

    fn sym_arg(&mut self, p: Pair<Rule>) -> SymArg {
        let inner = first(p);
        match inner.as_rule() {
            Rule::on_clause => {
                SymArg::On(inner.into_inner().skip(1).map(|i| self.ident(i)).collect())
            }
            Rule::arg => SymArg::Arg(self.arg(inner)),
            _ => SymArg::Value(self.value(inner)),
        }
    }

    fn ports(&mut self, p: Pair<Rule>) -> Vec<PortDecl> {
        p.into_inner()
            .map(|port| {
                let mut it = port.into_inner();
                let name = self.ident(next(&mut it));
                let ty = self.port_type(next(&mut it));
                PortDecl { name, ty }
            })
            .collect()
    }

    fn port_type(&mut self, p: Pair<Rule>) -> Spanned<PortType> {
        let inner = first(p);
        let span = self.span(&inner);
        let node = match inner.as_rule() {
            Rule::real_type => {
                let dims = first(inner);
                let ints: Vec<Pair<Rule>> = if dims.as_rule() == Rule::shape {
                    dims.into_inner().collect()
                } else {
                    vec![dims]
                };
                PortType::Real(
                    ints.into_iter()
                        .map(|i| self.count(i, "dimension", 1 << 24).node)
                        .collect(),
                )
            }
            Rule::class_type => {
                PortType::Classes(self.count(nth(inner, 1), "class count", 1 << 24).node)
            }
            _ => {
                let mut it = inner.into_inner();
                let rep = self.rep_expr(next(&mut it));
                let group = self.ident(nth_of(&mut it, 1));
                PortType::Rep { rep, group }
            }
        };
        Spanned { node, span }
    }

    fn rep_expr(&mut self, p: Pair<Rule>) -> Rep {
        let mut terms: Vec<Rep> = p.into_inner().map(|t| self.rep_term(t)).collect();
        if terms.len() == 1 {
            terms.remove(0)
        } else {
            Rep::Sum(terms)
        }
    }

    fn rep_term(&mut self, p: Pair<Rule>) -> Rep {
        let mut it = p.into_inner().peekable();
        let multiplicity = match it.peek().map(|m| m.as_rule()) {
            Some(Rule::multiplicity) => {
                let m = next(&mut it);
                Some(self.count(first(m), "multiplicity", 1 << 20).node)
            }
            _ => None,
        };
        let product = self.rep_product(next(&mut it));
        match multiplicity {
            Some(k) => Rep::Mul(k, Box::new(product)),
            None => product,
        }
    }

    fn rep_product(&mut self, p: Pair<Rule>) -> Rep {
        let mut factors: Vec<Rep> = p.into_inner().map(|f| self.rep_factor(f)).collect();
        if factors.len() == 1 {
            factors.remove(0)
        } else {
            Rep::Tensor(factors)
        }
    }

    fn rep_factor(&mut self, p: Pair<Rule>) -> Rep {
        let mut it = p.into_inner();
        let atom = first(next(&mut it));
        let mut rep = match atom.as_rule() {
            Rule::rep_scalar => Rep::Scalar,
            Rule::rep_v => Rep::V,
            _ => self.rep_expr(atom),
        };
        for op in it {
            rep = if op.as_rule() == Rule::dual {
                Rep::Dual(Box::new(rep))
            } else {
                let k = self.count(first(op), "tensor power", 16).node as u32;
                Rep::Pow(Box::new(rep), k)
            };
        }
        rep
    }
}

// The grammar guarantees the children these helpers take; a missing one would be a
// grammar/walker mismatch, which the snapshot tests of every spec would catch.
fn first(p: Pair<Rule>) -> Pair<Rule> {
    nth(p, 0)
}

fn nth(p: Pair<Rule>, n: usize) -> Pair<Rule> {
    nth_of(&mut p.into_inner(), n)
}

fn nth_of<'i>(it: &mut impl Iterator<Item = Pair<'i, Rule>>, n: usize) -> Pair<'i, Rule> {
    it.nth(n).expect("grammar guarantees this child")
}

fn next<'i>(it: &mut impl Iterator<Item = Pair<'i, Rule>>) -> Pair<'i, Rule> {
    nth_of(it, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file cut off after a header whose brace is commented out: found by
    /// fuzzing, once reported twice with a span past the end of the text.
    #[test]
    fn a_commented_brace_at_the_end_gives_one_located_error() {
        let text = "model m # {";
        let errors = recover(text, FileId::default());
        assert_eq!(errors.len(), 1, "{errors:?}");
        let ParseError::Syntax { span, found, .. } = &errors[0] else {
            panic!("{errors:?}");
        };
        assert_eq!((span.start, span.end), (text.len(), text.len()));
        assert_eq!(found, "end of file");
    }

    #[test]
    fn braces_in_comments_and_strings_are_not_code() {
        let text = "a { # }\n\"}\" } # {";
        assert_eq!(code_positions(text, '{'), vec![2]);
        assert_eq!(code_positions(text, '}'), vec![12]);
    }
}
