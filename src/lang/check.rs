//! Semantic checking: [`Ast`] → [`Spec`].
//!
//! The checker keeps going after an error so that one run reports every problem
//! of a file; a value that failed its check is replaced by a harmless default and
//! the checks that depend on it are skipped rather than repeated.

use super::ast::*;
use super::diagnostic::{suggest, Diagnostic, Diagnostics, FileId, SourceMap, Span};
use super::parser::{parse_file, ParseError};
use super::spec::*;
use crate::group::{Group, GroupError};
use crate::plan::{
    Activation, DataConfig, HeadInit, LinearInit, Penalty, Strategy, Task, TrainConfig,
};
use nalgebra::DMatrix;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

/// A semantic error, with the spans that show it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CheckError {
    /// A syntax error in an included file.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// A name that is not defined.
    #[error("unknown {what} `{name}`")]
    Unknown {
        span: Span,
        what: &'static str,
        name: String,
        candidates: Vec<String>,
    },
    /// A name defined twice.
    #[error("{what} `{name}` is defined twice")]
    Duplicate {
        span: Span,
        first: Span,
        what: &'static str,
        name: String,
    },
    /// A required statement or argument is missing.
    #[error("missing {what}")]
    Missing {
        span: Span,
        what: String,
        label: &'static str,
        help: String,
    },
    /// A value of the wrong type.
    #[error("`{key}` expects {expected}, found {found}")]
    Type {
        span: Span,
        key: String,
        expected: &'static str,
        found: String,
    },
    /// Sizes that do not agree.
    #[error("{message}")]
    Dimension {
        span: Span,
        message: String,
        other: Option<(Span, String)>,
        help: Option<String>,
    },
    /// A strategy that does not apply to the symmetry it follows.
    #[error("strategy `{strategy}` does not apply to `{symmetry}`")]
    Strategy {
        span: Span,
        strategy: String,
        symmetry: String,
        allowed: &'static [&'static str],
    },
    /// The group engine refused a group.
    #[error("invalid group: {error}")]
    Group { span: Span, error: GroupError },
    /// Two statements that cannot hold together; `labels` name the two spans.
    #[error("{message}")]
    Conflict {
        span: Span,
        other: Span,
        labels: [&'static str; 2],
        message: String,
        help: String,
    },
    /// Any other rule of the language.
    #[error("{message}")]
    Invalid {
        span: Span,
        message: String,
        help: Option<String>,
    },
}

impl From<&CheckError> for Diagnostic {
    fn from(e: &CheckError) -> Diagnostic {
        let d = Diagnostic::error(e.to_string());
        match e {
            CheckError::Parse(p) => p.into(),
            CheckError::Unknown {
                span,
                what,
                name,
                candidates,
            } => {
                let d = d.with_primary(*span, format!("not a known {what}"));
                match suggest(name, candidates.iter().map(String::as_str)) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None if candidates.is_empty() => d,
                    None => d.with_help(format!("expected {}", quoted(candidates))),
                }
            }
            CheckError::Duplicate { span, first, .. } => d
                .with_primary(*span, "defined again here")
                .with_secondary(*first, "first defined here")
                .with_help("remove one of them or give it another name"),
            CheckError::Missing {
                span, label, help, ..
            } => d.with_primary(*span, *label).with_help(help.clone()),
            CheckError::Type { span, expected, .. } => {
                d.with_primary(*span, format!("expected {expected}"))
            }
            CheckError::Dimension {
                span, other, help, ..
            } => {
                let mut d = d.with_primary(*span, "size mismatch");
                if let Some((s, m)) = other {
                    d = d.with_secondary(*s, m.clone());
                }
                match help {
                    Some(h) => d.with_help(h.clone()),
                    None => d,
                }
            }
            CheckError::Strategy {
                span,
                symmetry,
                allowed,
                ..
            } => d
                .with_primary(*span, format!("not a way to honour `{symmetry}`"))
                .with_help(format!(
                    "`{symmetry}` can use {}",
                    quoted(allowed.iter().copied())
                )),
            CheckError::Group { span, .. } => d.with_primary(*span, "in this group"),
            CheckError::Conflict {
                span,
                other,
                labels,
                help,
                ..
            } => d
                .with_primary(*span, labels[0])
                .with_secondary(*other, labels[1])
                .with_help(help.clone()),
            CheckError::Invalid { span, help, .. } => {
                let d = d.with_primary(*span, "here");
                match help {
                    Some(h) => d.with_help(h.clone()),
                    None => d,
                }
            }
        }
    }
}

fn quoted<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> String {
    let items: Vec<String> = items
        .into_iter()
        .map(|s| format!("`{}`", s.as_ref()))
        .collect();
    match items.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// Data sets that symc generates itself, with their sizes.
struct BuiltinData {
    name: &'static str,
    inputs: usize,
    /// Output columns, or the class count for a classification set.
    outputs: usize,
    classes: bool,
    /// Whether a sample holds `points` points (a pair set), so that the
    /// columns above are per point.
    per_point: bool,
    /// Whether a sample holds `bodies` bodies in `dims` dimensions (3 and 2
    /// unless given), so that the columns above are per body and dimension.
    per_body: bool,
}

const BUILTIN_DATA: &[BuiltinData] = &[
    BuiltinData {
        name: "o5_synthetic",
        inputs: 10,
        outputs: 1,
        classes: false,
        per_point: false,
        per_body: false,
    },
    BuiltinData {
        name: "inertia",
        inputs: 20,
        outputs: 9,
        classes: false,
        per_point: false,
        per_body: false,
    },
    BuiltinData {
        name: "modified_inertia",
        inputs: 20,
        outputs: 9,
        classes: false,
        per_point: false,
        per_body: false,
    },
    BuiltinData {
        name: "lorentz",
        inputs: 16,
        outputs: 1,
        classes: false,
        per_point: false,
        per_body: false,
    },
    BuiltinData {
        name: "mass_spring",
        inputs: 2,
        outputs: 2,
        classes: false,
        per_point: false,
        per_body: false,
    },
    BuiltinData {
        name: "pendulum",
        inputs: 2,
        outputs: 2,
        classes: false,
        per_point: false,
        per_body: false,
    },
    BuiltinData {
        name: "two_body",
        inputs: 8,
        outputs: 8,
        classes: false,
        per_point: false,
        per_body: false,
    },
    BuiltinData {
        name: "three_body",
        inputs: 12,
        outputs: 12,
        classes: false,
        per_point: false,
        per_body: false,
    },
    BuiltinData {
        name: "double_pendulum",
        inputs: 4,
        outputs: 4,
        classes: false,
        per_point: false,
        per_body: false,
    },
    BuiltinData {
        name: "rotation2_pairs",
        inputs: 2,
        outputs: 2,
        classes: false,
        per_point: true,
        per_body: false,
    },
    BuiltinData {
        name: "boost2_pairs",
        inputs: 2,
        outputs: 2,
        classes: false,
        per_point: true,
        per_body: false,
    },
    BuiltinData {
        name: "scaling2_pairs",
        inputs: 2,
        outputs: 2,
        classes: false,
        per_point: true,
        per_body: false,
    },
    BuiltinData {
        name: "rotation3_pairs",
        inputs: 3,
        outputs: 3,
        classes: false,
        per_point: true,
        per_body: false,
    },
    BuiltinData {
        name: "oscillator_pairs",
        inputs: 2,
        outputs: 2,
        classes: false,
        per_point: true,
        per_body: false,
    },
    BuiltinData {
        name: "observed_oscillator_pairs",
        inputs: 6,
        outputs: 6,
        classes: false,
        per_point: true,
        per_body: false,
    },
    BuiltinData {
        name: "digits",
        inputs: 64,
        outputs: 10,
        classes: true,
        per_point: false,
        per_body: false,
    },
    BuiltinData {
        name: "nbody_spring",
        inputs: 2,
        outputs: 2,
        classes: false,
        per_point: false,
        per_body: true,
    },
    BuiltinData {
        name: "nbody_gravity",
        inputs: 2,
        outputs: 2,
        classes: false,
        per_point: false,
        per_body: true,
    },
];

/// Arguments of the built-in data sets: sample counts, seed and n-body sizes (integers),
/// then the real-valued ones: noise, the settings of the physical systems (time
/// span, energy scale, range of initial radii, orbit perturbation, softening) and of the
/// pair sets (extent, frequency, time step), and the shares of trajectories or
/// samples held out for validation and test, which the data module checks per set.
const BUILTIN_DATA_KEYS: &[&str] = &[
    "train",
    "val",
    "test",
    "trajectories",
    "points",
    "seed",
    "bodies",
    "dims",
    "noise",
    "t_end",
    "scale",
    "r_min",
    "r_max",
    "orbit_noise",
    "softening",
    "extent",
    "omega",
    "dt",
    "val_fraction",
    "test_fraction",
];

/// The keys of [`BUILTIN_DATA_KEYS`] whose values are real numbers.
const REAL_DATA_KEYS: &[&str] = BUILTIN_DATA_KEYS.split_at(8).1;

const SYMMETRY_WORDS: [&str; 6] = [
    "time",
    "translation",
    "permutation",
    "rotation",
    "reflection",
    "learn",
];
const STRATEGIES: [&str; 12] = [
    "architecture",
    "hamiltonian",
    "lagrangian",
    "graph",
    "group_conv",
    "loss",
    "soft",
    "augment",
    "operator",
    "latent",
    "invariance",
    "none",
];
const NETS: [&str; 4] = ["mlp", "emlp", "graph", "gcnn"];
const ACTIVATIONS: [&str; 5] = ["tanh", "relu", "softplus", "swish", "sigmoid"];
const BUILTIN_GROUPS: [&str; 16] = [
    "SO", "O", "SE", "T", "C", "Z", "D", "S", "Lorentz", "Sp", "SL", "GL", "Scaling", "Trivial",
    "lie", "discrete",
];

/// Reads spec files, following `include`s relative to the including file.
pub trait Loader {
    /// The text of `path`, or an error message.
    fn load(&self, path: &Path) -> Result<String, String>;
}

/// Loads from the file system.
pub struct FileLoader;

impl Loader for FileLoader {
    fn load(&self, path: &Path) -> Result<String, String> {
        std::fs::read(path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .map_err(|e| e.to_string())
    }
}

/// Checks a parsed file called `name`. `base_dir` is the folder data paths and
/// includes are relative to.
pub fn check_ast(
    ast: &Ast,
    file: FileId,
    name: &str,
    sources: SourceMap,
    base_dir: &Path,
    loader: &dyn Loader,
) -> Result<Spec, (SourceMap, Vec<Diagnostic>)> {
    let mut c = Checker {
        sources,
        loader,
        errors: Vec::new(),
        warnings: Vec::new(),
        groups: Vec::new(),
        index: HashMap::new(),
        failed: HashSet::new(),
        including: vec![base_dir.join(Path::new(name).file_name().unwrap_or_default())],
    };
    let mut models = Vec::new();
    c.items(ast, file, base_dir, &mut models);
    if c.errors.is_empty() {
        Ok(Spec {
            groups: c.groups,
            models,
            sources: c.sources,
            warnings: c.warnings,
        })
    } else {
        let mut diags: Vec<Diagnostic> = c.errors.iter().map(Diagnostic::from).collect();
        diags.extend(c.warnings);
        Err((c.sources, diags))
    }
}

/// Resolves a group expression given alone (no declared names in scope).
pub(crate) fn resolve_group(
    expr: &Spanned<GroupExpr>,
    sources: SourceMap,
) -> Result<Group, Diagnostics> {
    let mut c = Checker {
        sources,
        loader: &FileLoader,
        errors: Vec::new(),
        warnings: Vec::new(),
        groups: Vec::new(),
        index: HashMap::new(),
        failed: HashSet::new(),
        including: Vec::new(),
    };
    let name = collapse(&c.sources.text(expr.span.file)[expr.span.start..expr.span.end]);
    match c.group_expr(&name, expr) {
        Some(g) if c.errors.is_empty() => Ok(g),
        _ => Err(Diagnostics::new(
            c.sources,
            c.errors.iter().map(Diagnostic::from).collect(),
        )),
    }
}

struct Checker<'l> {
    sources: SourceMap,
    loader: &'l dyn Loader,
    errors: Vec<CheckError>,
    warnings: Vec<Diagnostic>,
    groups: Vec<NamedGroup>,
    /// Position of each declared group in `groups`: a spec may declare many.
    index: HashMap<String, usize>,
    /// Declared groups that failed to resolve: already reported, so uses stay quiet.
    failed: HashSet<String>,
    /// The spec and the files being included in it, to refuse cycles.
    including: Vec<PathBuf>,
}

/// Arguments by key, after unknown and repeated keys were reported.
type ArgMap<'a> = BTreeMap<&'a str, &'a Spanned<Value>>;

impl Checker<'_> {
    fn declared(&self, name: &str) -> Option<&NamedGroup> {
        self.index.get(name).map(|&i| &self.groups[i])
    }

    fn err(&mut self, e: CheckError) {
        self.errors.push(e);
    }

    fn invalid(&mut self, span: Span, message: impl Into<String>, help: Option<String>) {
        self.err(CheckError::Invalid {
            span,
            message: message.into(),
            help,
        });
    }

    fn items(&mut self, ast: &Ast, file: FileId, dir: &Path, models: &mut Vec<Model>) {
        let mut model_names: HashMap<String, Span> = HashMap::new();
        for item in &ast.items {
            match item {
                Item::Include(path) => self.include(path, dir),
                Item::Group { name, expr } => self.declare_group(name, expr),
                Item::Model(decl) => {
                    if self.including.len() > 1 {
                        self.invalid(
                            decl.name.span,
                            "an included file may only declare groups",
                            Some("move this model into a spec of its own".into()),
                        );
                        continue;
                    }
                    if let Some(first) = model_names.insert(decl.name.node.clone(), decl.name.span)
                    {
                        self.err(CheckError::Duplicate {
                            span: decl.name.span,
                            first,
                            what: "model",
                            name: decl.name.node.clone(),
                        });
                    }
                    if let Some(m) = self.model(decl, dir) {
                        models.push(m);
                    }
                }
            }
        }
        if models.is_empty() && self.including.len() <= 1 && self.errors.is_empty() {
            let end = self.sources.text(file).len();
            self.err(CheckError::Missing {
                span: Span {
                    file,
                    start: end,
                    end,
                },
                what: "`model` block".into(),
                label: "the file ends here",
                help: "a spec needs at least one `model NAME { … }` block".into(),
            });
        }
    }

    fn include(&mut self, path: &Spanned<String>, dir: &Path) {
        let full = dir.join(&path.node);
        if self.including.contains(&full) {
            self.invalid(path.span, format!("`{}` includes itself", path.node), None);
            return;
        }
        let text = match self.loader.load(&full) {
            Ok(t) => t,
            Err(e) => {
                self.invalid(
                    path.span,
                    format!("cannot read `{}`: {e}", path.node),
                    Some("include paths are relative to the including file".into()),
                );
                return;
            }
        };
        let file = self.sources.add(full.display().to_string(), text);
        let ast = match parse_file(self.sources.text(file), file) {
            Ok(ast) => ast,
            Err(errors) => {
                self.errors
                    .extend(errors.into_iter().map(CheckError::Parse));
                return;
            }
        };
        self.including.push(full.clone());
        let sub_dir = full.parent().map(Path::to_path_buf).unwrap_or_default();
        self.items(&ast, file, &sub_dir, &mut Vec::new());
        self.including.pop();
    }

    fn declare_group(&mut self, name: &Ident, expr: &Spanned<GroupExpr>) {
        if SYMMETRY_WORDS.contains(&name.node.as_str()) {
            self.invalid(
                name.span,
                format!("`{}` is a symmetry word and cannot name a group", name.node),
                Some("choose another name".into()),
            );
            return;
        }
        if let Some(first) = self.declared(&name.node) {
            let first = first.span;
            self.err(CheckError::Duplicate {
                span: name.span,
                first,
                what: "group",
                name: name.node.clone(),
            });
            return;
        }
        match self.group_expr(&name.node, expr) {
            Some(group) => {
                self.index.insert(name.node.clone(), self.groups.len());
                self.groups.push(NamedGroup {
                    name: name.node.clone(),
                    group,
                    span: name.span,
                });
            }
            None => {
                self.failed.insert(name.node.clone());
            }
        }
    }

    fn group_expr(&mut self, name: &str, expr: &Spanned<GroupExpr>) -> Option<Group> {
        match &expr.node {
            GroupExpr::Named {
                name: family,
                params,
            } => {
                if let Some(g) = self.declared(&family.node).map(|g| g.group.clone()) {
                    if let Some(p) = params.first() {
                        self.invalid(
                            p.span,
                            format!(
                                "`{}` is a declared group and takes no parameters",
                                family.node
                            ),
                            None,
                        );
                    }
                    return Some(g);
                }
                let ints: Vec<i64> = params.iter().map(|p| p.node as i64).collect();
                match Group::builtin(&family.node, &ints) {
                    Ok(g) => Some(g),
                    Err(GroupError::UnknownGroup { .. }) => {
                        let mut candidates: Vec<String> =
                            BUILTIN_GROUPS.iter().map(|s| s.to_string()).collect();
                        candidates.extend(self.groups.iter().map(|g| g.name.clone()));
                        self.err(CheckError::Unknown {
                            span: family.span,
                            what: "group",
                            name: family.node.clone(),
                            candidates,
                        });
                        None
                    }
                    Err(error) => {
                        self.err(CheckError::Group {
                            span: expr.span,
                            error,
                        });
                        None
                    }
                }
            }
            GroupExpr::Product(factors) => {
                let groups: Vec<Option<Group>> =
                    factors.iter().map(|f| self.group_expr(name, f)).collect();
                let groups: Option<Vec<Group>> = groups.into_iter().collect();
                let groups = groups?;
                let (first, rest) = groups.split_first()?;
                Some(
                    rest.iter()
                        .fold(first.clone(), |acc, g| Group::product(&acc, g)),
                )
            }
            GroupExpr::Custom {
                lie,
                discrete,
                args,
            } => {
                let map = self.args(args, &["tolerance"]);
                let tolerance = match map.get("tolerance") {
                    Some(v) => Some(self.tolerance(v)?),
                    None => None,
                };
                let lie_m: Vec<Option<DMatrix<f64>>> = lie.iter().map(|m| self.matrix(m)).collect();
                let disc_m: Vec<Option<DMatrix<f64>>> =
                    discrete.iter().map(|m| self.matrix(m)).collect();
                let (lie_m, disc_m): (Option<Vec<_>>, Option<Vec<_>>) =
                    (lie_m.into_iter().collect(), disc_m.into_iter().collect());
                let (lie_m, disc_m) = (lie_m?, disc_m?);
                // Report size disagreements at the matrix that disagrees.
                let spans: Vec<Span> = lie.iter().chain(discrete).map(|m| m.span).collect();
                let sizes: Vec<usize> = lie_m.iter().chain(&disc_m).map(|m| m.nrows()).collect();
                if let Some(k) = sizes.iter().position(|&s| s != sizes[0]) {
                    self.err(CheckError::Dimension {
                        span: spans[k],
                        message: format!(
                            "generator is {0}×{0}, but the first generator is {1}×{1}",
                            sizes[k], sizes[0]
                        ),
                        other: Some((spans[0], format!("{0}×{0}", sizes[0]))),
                        help: Some("all generators of a group act on the same space".into()),
                    });
                    return None;
                }
                match Group::custom(name, lie_m, disc_m) {
                    Ok((g, warnings)) => {
                        // Within the tolerance, an approximately closed algebra is closed.
                        let loose = warnings
                            .into_iter()
                            .filter(|w| w.residual > tolerance.unwrap_or(0.0));
                        for w in loose {
                            self.warnings.push(
                                Diagnostic::warning("the Lie algebra does not close")
                                    .with_primary(expr.span, w.to_string())
                                    .with_help(
                                        "add the commutator as a generator to make the span a Lie algebra",
                                    ),
                            );
                        }
                        Some(g.with_tolerance(tolerance))
                    }
                    Err(error) => {
                        let span = match &error {
                            GroupError::Singular { index } => discrete.get(*index).map(|m| m.span),
                            GroupError::NonFinite { kind, index } => match kind {
                                crate::group::GeneratorKind::Lie => lie.get(*index),
                                crate::group::GeneratorKind::Discrete => discrete.get(*index),
                            }
                            .map(|m| m.span),
                            _ => None,
                        };
                        self.err(CheckError::Group {
                            span: span.unwrap_or(expr.span),
                            error,
                        });
                        None
                    }
                }
            }
        }
    }

    /// A square matrix of numbers from a list of rows.
    fn matrix(&mut self, m: &Spanned<Value>) -> Option<DMatrix<f64>> {
        let Value::List(rows) = &m.node else {
            self.err(type_error("matrix", "a matrix `[[…], …]`", m));
            return None;
        };
        let mut entries = Vec::new();
        let mut width = None;
        for row in rows {
            let Value::List(cells) = &row.node else {
                self.err(type_error("matrix row", "a row `[a, b, …]`", row));
                return None;
            };
            match width {
                None => width = Some(cells.len()),
                Some(w) if w != cells.len() => {
                    self.err(CheckError::Dimension {
                        span: row.span,
                        message: format!(
                            "matrix row has {} entries, but the first row has {w}",
                            cells.len()
                        ),
                        other: Some((rows[0].span, format!("{w} entries"))),
                        help: Some("every row of a matrix has the same length".into()),
                    });
                    return None;
                }
                Some(_) => {}
            }
            for cell in cells {
                entries.push(self.float(cell, "matrix entry")?);
            }
        }
        let n = rows.len();
        if width != Some(n) {
            self.err(CheckError::Dimension {
                span: m.span,
                message: format!(
                    "generator is {n}×{}, expected a square matrix",
                    width.unwrap_or(0)
                ),
                other: None,
                help: Some(
                    "a generator maps the space to itself, so it has as many rows as columns"
                        .into(),
                ),
            });
            return None;
        }
        Some(DMatrix::from_row_slice(n, n, &entries))
    }

    fn float(&mut self, v: &Spanned<Value>, key: &str) -> Option<f64> {
        match &v.node {
            Value::Number(text) => match text.parse::<f64>() {
                Ok(x) if x.is_finite() => Some(x),
                _ => {
                    self.err(type_error(key, "a finite number", v));
                    None
                }
            },
            _ => {
                self.err(type_error(key, "a number", v));
                None
            }
        }
    }

    /// A basis-solver tolerance: a relative singular value in (0, 1).
    fn tolerance(&mut self, v: &Spanned<Value>) -> Option<f64> {
        let x = self.float(v, "tolerance")?;
        if x > 0.0 && x < 1.0 {
            Some(x)
        } else {
            self.err(type_error(
                "tolerance",
                "a number between 0 and 1 (e.g. 5e-3)",
                v,
            ));
            None
        }
    }

    fn positive_float(&mut self, v: &Spanned<Value>, key: &str) -> Option<f64> {
        let x = self.float(v, key)?;
        if x > 0.0 {
            Some(x)
        } else {
            self.err(type_error(key, "a positive number", v));
            None
        }
    }

    fn non_negative_float(&mut self, v: &Spanned<Value>, key: &str) -> Option<f64> {
        let x = self.float(v, key)?;
        if x >= 0.0 {
            Some(x)
        } else {
            self.err(type_error(key, "a number of at least 0", v));
            None
        }
    }

    /// A non-negative integer; `min` is 0 or 1.
    fn integer(&mut self, v: &Spanned<Value>, key: &str, min: u64) -> Option<usize> {
        let expected = if min == 0 {
            "a whole number of at least 0"
        } else {
            "a positive whole number"
        };
        match &v.node {
            Value::Number(text) => match text.parse::<u64>() {
                Ok(x) if x >= min && x <= u32::MAX as u64 => Some(x as usize),
                _ => {
                    self.err(type_error(key, expected, v));
                    None
                }
            },
            _ => {
                self.err(type_error(key, expected, v));
                None
            }
        }
    }

    fn int_list(&mut self, v: &Spanned<Value>, key: &str) -> Option<Vec<usize>> {
        let Value::List(items) = &v.node else {
            self.err(type_error(
                key,
                "a list of positive whole numbers `[a, b, …]`",
                v,
            ));
            return None;
        };
        if items.is_empty() {
            self.err(type_error(key, "a non-empty list", v));
            return None;
        }
        items.iter().map(|i| self.integer(i, key, 1)).collect()
    }

    fn word<'w>(&mut self, v: &Spanned<Value>, key: &str, choices: &[&'w str]) -> Option<&'w str> {
        let found = match &v.node {
            Value::Ident(w) | Value::Str(w) => w,
            _ => {
                self.err(type_error(key, "a word", v));
                return None;
            }
        };
        match choices.iter().find(|c| *c == found) {
            Some(c) => Some(c),
            None => {
                self.err(CheckError::Unknown {
                    span: v.span,
                    what: "value",
                    name: found.clone(),
                    candidates: choices.iter().map(|s| s.to_string()).collect(),
                });
                None
            }
        }
    }

    /// Indexes `args`, reporting unknown and repeated keys.
    fn args<'a>(&mut self, args: &'a [Arg], allowed: &[&str]) -> ArgMap<'a> {
        let mut map = ArgMap::new();
        for a in args {
            let key = a.key.node.as_str();
            if !allowed.contains(&key) {
                self.err(CheckError::Unknown {
                    span: a.key.span,
                    what: "argument",
                    name: key.to_string(),
                    candidates: allowed.iter().map(|s| s.to_string()).collect(),
                });
                continue;
            }
            if let Some(first) = map.get(key) {
                let first = args
                    .iter()
                    .find(|b| b.key.node == key && b.value.span == first.span);
                let first = first.map_or(a.key.span, |b| b.key.span);
                self.err(CheckError::Duplicate {
                    span: a.key.span,
                    first,
                    what: "argument",
                    name: key.to_string(),
                });
                continue;
            }
            map.insert(key, &a.value);
        }
        map
    }

    fn model(&mut self, decl: &ModelDecl, dir: &Path) -> Option<Model> {
        let errors_before = self.errors.len();
        let name_span = decl.name.span;
        // Statements that may appear once.
        let mut once: HashMap<&'static str, Span> = HashMap::new();
        let mut data = None;
        let (mut input_decls, mut output_decls, mut state) = (Vec::new(), Vec::new(), Vec::new());
        let mut symmetry_decls = Vec::new();
        let mut net_decl = None;
        let mut train_args: &[Arg] = &[];
        let mut export = None;
        for stmt in &decl.statements {
            let kw = stmt.node.keyword();
            if matches!(kw, "data" | "net" | "train" | "export") {
                if let Some(first) = once.insert(kw, stmt.span) {
                    self.err(CheckError::Duplicate {
                        span: stmt.span,
                        first,
                        what: "statement",
                        name: kw.into(),
                    });
                    continue;
                }
            }
            match &stmt.node {
                Statement::Data(d) => data = Some((d, stmt.span)),
                Statement::Input(p) => input_decls.extend(p),
                Statement::Output(p) => output_decls.extend(p),
                Statement::State(p) => state.extend(p),
                Statement::Symmetry(s) => symmetry_decls.push((s, stmt.span)),
                Statement::Net { kind, args } => {
                    net_decl = Some((kind, args.as_slice(), stmt.span))
                }
                Statement::Train(args) => train_args = args,
                Statement::Export(name) => export = Some(name),
            }
        }

        // Ports.
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for p in input_decls.iter().chain(&output_decls).chain(&state) {
            if let Some(first) = seen.insert(&p.name.node, p.name.span) {
                self.err(CheckError::Duplicate {
                    span: p.name.span,
                    first,
                    what: "port",
                    name: p.name.node.clone(),
                });
            }
        }
        let inputs: Vec<Port> = input_decls
            .iter()
            .filter_map(|p| self.port(p, false))
            .collect();
        let mut outputs: Vec<Port> = output_decls
            .iter()
            .filter_map(|p| self.port(p, true))
            .collect();
        let state_ports: Vec<Port> = state.iter().filter_map(|p| self.port(p, false)).collect();

        let n_in = inputs.iter().chain(&state_ports).map(Port::dim).sum();
        let symmetries: Vec<Symmetry> = symmetry_decls
            .iter()
            .filter_map(|(s, span)| self.symmetry(s, *span, n_in))
            .collect();
        let learn = symmetries
            .iter()
            .find(|s| matches!(s.kind, SymmetryKind::Learn { .. }));

        // The task, and the ports the network reads and writes.
        let (task, inputs) = if !state.is_empty() {
            if let Some(first) = input_decls.first().or(output_decls.first()) {
                self.err(CheckError::Conflict {
                    span: first.name.span,
                    other: state[0].name.span,
                    labels: ["a port of the network", "the state is declared here"],
                    message: "a model with `state` has no `input` or `output`".into(),
                    help: "the network reads the state and predicts its time derivative; remove the `input` and `output` statements".into(),
                });
            }
            let dim: usize = state_ports.iter().map(Port::dim).sum();
            if dim % 2 != 0 && state_ports.len() == state.len() {
                self.err(CheckError::Dimension {
                    span: state[0].name.span.to(state[state.len() - 1].ty.span),
                    message: format!("the state has {dim} components, an odd number"),
                    other: None,
                    help: Some("a state is positions and their momenta or velocities, e.g. `state q: R^1, p: R^1`".into()),
                });
            }
            outputs = state_ports
                .iter()
                // A time-independent linear action commutes with d/dt, so a
                // derivative carries its port's representation.
                .map(|p| Port {
                    name: format!("d{}/dt", p.name),
                    ..p.clone()
                })
                .collect();
            (
                Task::Dynamics {
                    coordinates: dim / 2,
                },
                state_ports,
            )
        } else {
            if input_decls.is_empty() {
                self.err(CheckError::Missing {
                    span: name_span,
                    what: "`input` statement".into(),
                    label: "in this model",
                    help: "declare what the network reads, e.g. `input x: R^10`, or a `state` for dynamics".into(),
                });
            }
            if output_decls.is_empty() {
                self.err(CheckError::Missing {
                    span: name_span,
                    what: "`output` statement".into(),
                    label: "in this model",
                    help: "declare what the network predicts, e.g. `output y: R^1`".into(),
                });
            }
            let classes = output_decls.iter().find_map(|p| match p.ty.node {
                PortType::Classes(k) => Some(k),
                _ => None,
            });
            if classes.is_some() && output_decls.len() > 1 {
                let other = output_decls
                    .iter()
                    .find(|p| !matches!(p.ty.node, PortType::Classes(_)));
                if let Some(o) = other.or(output_decls.get(1)) {
                    self.invalid(
                        o.name.span,
                        "a model with a `classes(k)` output has no other outputs",
                        None,
                    );
                }
            }
            let task = if let Some(SymmetryKind::Learn { generators, dim }) = learn.map(|s| &s.kind)
            {
                // The export name is filled in below, once it is checked.
                Task::Discover {
                    generators: *generators,
                    dim: *dim,
                    export: None,
                }
            } else if let Some(k) = classes {
                Task::Classification { classes: k }
            } else {
                Task::Regression
            };
            (task, inputs)
        };

        let data = match data {
            Some((d, span)) => {
                // `invariance` learns from the data of an ordinary regression.
                let feeds = match learn {
                    Some(s) if s.strategy == Strategy::Invariance => &Task::Regression,
                    _ => &task,
                };
                self.data(d, span, dir, &inputs, &outputs, feeds)
            }
            None => {
                self.err(CheckError::Missing {
                    span: name_span,
                    what: "`data` statement".into(),
                    label: "in this model",
                    help: "add e.g. `data builtin.o5_synthetic(train = 1000, seed = 0)` or `data file(\"data.csv\", inputs = 2, outputs = 1)`".into(),
                });
                None
            }
        };
        let net = net_decl.and_then(|(kind, args, _)| self.net(kind, args));
        let train = self.train(train_args);
        let export = export.and_then(|name| {
            if learn.is_none() {
                self.invalid(
                    name.span,
                    "`export group` names the result of a `learn(...)` symmetry",
                    Some("add `symmetry learn(generators = 1)` or remove the export".into()),
                );
                None
            } else if let Some(g) = self.declared(&name.node) {
                let first = g.span;
                self.err(CheckError::Duplicate {
                    span: name.span,
                    first,
                    what: "group",
                    name: name.node.clone(),
                });
                None
            } else {
                Some(name.node.clone())
            }
        });

        let task = match task {
            Task::Discover {
                generators, dim, ..
            } => Task::Discover {
                generators,
                dim,
                export: export.clone(),
            },
            other => other,
        };
        let model = Model {
            name: decl.name.node.clone(),
            span: name_span,
            task,
            inputs,
            outputs,
            symmetries,
            net,
            data: data?,
            train,
            export,
        };
        if self.errors.len() == errors_before {
            self.consistency(&model, net_decl.map(|(_, _, s)| s));
        }
        (self.errors.len() == errors_before).then_some(model)
    }

    fn port(&mut self, p: &PortDecl, output: bool) -> Option<Port> {
        let (shape, rep) = match &p.ty.node {
            PortType::Real(shape) => (shape.clone(), None),
            PortType::Classes(k) => {
                if !output {
                    self.invalid(
                        p.ty.span,
                        "`classes(k)` is an output type",
                        Some("an input of k numbers is `R^k`".into()),
                    );
                    return None;
                }
                (vec![*k], None)
            }
            PortType::Rep { rep, group } => {
                let Some(g) = self.declared(&group.node) else {
                    if self.failed.contains(&group.node) {
                        return None;
                    }
                    let candidates = self.groups.iter().map(|g| g.name.clone()).collect();
                    self.err(CheckError::Unknown {
                        span: group.span,
                        what: "group",
                        name: group.node.clone(),
                        candidates,
                    });
                    return None;
                };
                (
                    vec![rep.size(g.group.n())],
                    Some((group.node.clone(), rep.clone())),
                )
            }
        };
        Some(Port {
            name: p.name.node.clone(),
            shape,
            rep,
            span: p.name.span.to(p.ty.span),
        })
    }

    fn symmetry(&mut self, s: &SymmetryDecl, span: Span, n_in: usize) -> Option<Symmetry> {
        let name = s.name.node.as_str();
        let text = collapse(&self.sources.text(span.file)[s.span.start..s.span.end]);
        let no_args = |c: &mut Self| {
            if let Some(a) = s.args.first() {
                c.invalid(
                    sym_arg_span(a),
                    format!("`{name}` takes no arguments"),
                    None,
                );
            }
        };
        let on_ports = |c: &mut Self| -> Option<Vec<String>> {
            match s.args.as_slice() {
                [SymArg::On(ports)] => Some(ports.iter().map(|p| p.node.clone()).collect()),
                _ => {
                    c.invalid(
                        s.name.span,
                        format!("`{name}` needs the ports it acts on"),
                        Some(format!(
                            "write `{name}(on x)` with the port that holds the positions"
                        )),
                    );
                    None
                }
            }
        };
        let kind = match name {
            "time" => {
                no_args(self);
                SymmetryKind::Time
            }
            "translation" => SymmetryKind::Translation {
                on: on_ports(self)?,
            },
            "permutation" => SymmetryKind::Permutation {
                on: on_ports(self)?,
            },
            "reflection" => {
                no_args(self);
                SymmetryKind::Reflection
            }
            "rotation" => match s.args.as_slice() {
                [SymArg::Value(v)] => SymmetryKind::Rotation(self.integer(v, "rotation", 1)?),
                _ => {
                    self.invalid(
                        s.name.span,
                        "`rotation` needs the number of rotations",
                        Some("write `rotation(4)` for quarter turns".into()),
                    );
                    return None;
                }
            },
            "learn" => {
                let args: Vec<Arg> = s
                    .args
                    .iter()
                    .filter_map(|a| match a {
                        SymArg::Arg(a) => Some(a.clone()),
                        other => {
                            self.invalid(
                                sym_arg_span(other),
                                "`learn` takes `key = value` arguments",
                                None,
                            );
                            None
                        }
                    })
                    .collect();
                let map = self.args(&args, &["generators", "dim"]);
                let generators = match map.get("generators") {
                    Some(v) => self.integer(v, "generators", 1)?,
                    None => 1,
                };
                // A latent space is the model's own; its size need not divide the input's.
                let latent = s.strategy.as_ref().is_some_and(|d| d.name.node == "latent");
                let dim = match map.get("dim") {
                    Some(v) => {
                        let dim = self.integer(v, "dim", 1)?;
                        if !latent && n_in % dim != 0 {
                            self.err(CheckError::Dimension {
                                span: v.span,
                                message: format!(
                                    "`learn` acts on {dim} dimensions, which do not divide the input's {n_in}"
                                ),
                                other: None,
                                help: Some(format!(
                                    "write `dim = {n_in}`, or a divisor of {n_in} when each sample holds several points"
                                )),
                            });
                            return None;
                        }
                        dim
                    }
                    None if latent => {
                        self.invalid(
                            s.name.span,
                            "`learn(...) => latent` needs the size of its latent space",
                            Some("add the latent size to `learn`, e.g. `learn(generators = 1, dim = 2)`".into()),
                        );
                        return None;
                    }
                    None => n_in,
                };
                SymmetryKind::Learn { generators, dim }
            }
            group if self.failed.contains(group) => return None,
            group => {
                if self.declared(group).is_some() {
                    no_args(self);
                    SymmetryKind::Group(group.to_string())
                } else {
                    let mut candidates: Vec<String> =
                        SYMMETRY_WORDS.iter().map(|s| s.to_string()).collect();
                    candidates.extend(self.groups.iter().map(|g| g.name.clone()));
                    self.err(CheckError::Unknown {
                        span: s.name.span,
                        what: "symmetry",
                        name: group.into(),
                        candidates,
                    });
                    return None;
                }
            }
        };
        let (strategy, explicit) = match &s.strategy {
            None => (kind.default_strategy(), false),
            Some(decl) => (self.strategy(decl, &kind, &text)?, true),
        };
        Some(Symmetry {
            text,
            kind,
            strategy,
            explicit,
            span,
        })
    }

    fn strategy(
        &mut self,
        decl: &StrategyDecl,
        kind: &SymmetryKind,
        text: &str,
    ) -> Option<Strategy> {
        let name = decl.name.node.as_str();
        if !STRATEGIES.contains(&name) {
            self.err(CheckError::Unknown {
                span: decl.name.span,
                what: "strategy",
                name: name.into(),
                candidates: STRATEGIES.iter().map(|s| s.to_string()).collect(),
            });
            return None;
        }
        if !kind.strategies().contains(&name) {
            self.err(CheckError::Strategy {
                span: decl.name.span,
                strategy: name.into(),
                symmetry: text.into(),
                allowed: kind.strategies(),
            });
            return None;
        }
        let keys: &[&str] = match name {
            "loss" => &["weight", "samples", "penalty"],
            "soft" => &["weight"],
            "augment" => &["samples"],
            "lagrangian" => &["damping", "init"],
            _ => &[],
        };
        if keys.is_empty() {
            if let Some(a) = decl.args.first() {
                self.invalid(
                    a.key.span,
                    format!("strategy `{name}` takes no arguments"),
                    None,
                );
                return None;
            }
        }
        let map = self.args(&decl.args, keys);
        let weight = match map.get("weight") {
            Some(v) => self.positive_float(v, "weight")?,
            None => 1.0,
        };
        let samples = match map.get("samples") {
            Some(v) => self.integer(v, "samples", 1)?,
            None => {
                if name == "loss" {
                    8
                } else {
                    1
                }
            }
        };
        let penalty = match map.get("penalty") {
            Some(v) => Some(self.penalty(v, kind)?),
            None => None,
        };
        let damping = match map.get("damping") {
            Some(v) => self.non_negative_float(v, "damping")?,
            None => 0.0,
        };
        let init = match map.get("init") {
            Some(v) => match self.word(v, "init", &["lnn", "uniform"])? {
                "uniform" => HeadInit::Uniform,
                _ => HeadInit::Lnn,
            },
            None => HeadInit::Lnn,
        };
        Some(match name {
            "architecture" => Strategy::Architecture,
            "hamiltonian" => Strategy::Hamiltonian,
            "lagrangian" => Strategy::Lagrangian { damping, init },
            "graph" => Strategy::Graph,
            "group_conv" => Strategy::GroupConv,
            "loss" => Strategy::Loss {
                weight,
                samples,
                penalty,
            },
            "soft" => Strategy::Soft { weight },
            "augment" => Strategy::Augment { samples },
            "operator" => Strategy::Operator,
            "latent" => Strategy::Latent,
            "invariance" => Strategy::Invariance,
            _ => Strategy::None,
        })
    }

    /// The `penalty` of `=> loss(...)`, refused where the group cannot honour it.
    fn penalty(&mut self, v: &Spanned<Value>, kind: &SymmetryKind) -> Option<Penalty> {
        let penalty = match self.word(v, "penalty", &["sampled", "lie", "orbit"])? {
            "sampled" => Penalty::Sampled,
            "lie" => Penalty::Lie,
            _ => Penalty::Orbit,
        };
        let SymmetryKind::Group(name) = kind else {
            return Some(penalty);
        };
        let group = &self.declared(name)?.group;
        let problem = match penalty {
            Penalty::Sampled if !group.is_compact() => Some((
                format!("`{name}` does not act orthogonally, so its elements cannot be sampled"),
                "use `penalty = lie`: the Lie derivative needs only the generators",
            )),
            Penalty::Lie if group.lie().is_empty() => Some((
                format!("`{name}` has no Lie generators to differentiate along"),
                "use `penalty = sampled` for a discrete group",
            )),
            _ => None,
        };
        match problem {
            Some((message, help)) => {
                self.invalid(v.span, message, Some(help.into()));
                None
            }
            None => Some(penalty),
        }
    }

    fn data(
        &mut self,
        source: &DataSource,
        span: Span,
        dir: &Path,
        inputs: &[Port],
        outputs: &[Port],
        task: &Task,
    ) -> Option<DataConfig> {
        let n_in: usize = inputs.iter().map(Port::dim).sum();
        let n_out: usize = outputs.iter().map(Port::dim).sum();
        let classes = match task {
            Task::Classification { classes } => Some(*classes),
            _ => None,
        };
        match source {
            DataSource::Builtin { name, args } => {
                let Some(b) = BUILTIN_DATA.iter().find(|b| b.name == name.node) else {
                    self.err(CheckError::Unknown {
                        span: name.span,
                        what: "built-in data set",
                        name: name.node.clone(),
                        candidates: BUILTIN_DATA.iter().map(|b| b.name.to_string()).collect(),
                    });
                    return None;
                };
                let map = self.args(args, BUILTIN_DATA_KEYS);
                let mut params = BTreeMap::new();
                for (key, v) in map {
                    let x = if REAL_DATA_KEYS.contains(&key) {
                        self.non_negative_float(v, key)
                    } else {
                        self.integer(v, key, 0).map(|x| x as f64)
                    };
                    params.insert(key.to_string(), x?);
                }
                let count =
                    |key: &str, default: f64| params.get(key).map_or(default, |&v| v) as usize;
                let points = match b.per_point {
                    true => count("points", 1.0).max(1),
                    false if b.per_body => count("bodies", 3.0).saturating_mul(count("dims", 2.0)),
                    false => 1,
                };
                // Saturating: a huge count then fails the size check instead of overflowing.
                let (b_in, b_out) = (
                    b.inputs.saturating_mul(points),
                    b.outputs.saturating_mul(points),
                );
                if !inputs.is_empty() && n_in != b_in {
                    self.dim_vs_data(
                        inputs,
                        n_in,
                        name.span,
                        format!("`{}` has {b_in} inputs", b.name),
                    );
                }
                let fits = if b.classes {
                    classes == Some(b.outputs)
                } else {
                    classes.is_none() && n_out == b_out
                };
                // A dynamics model's outputs mirror its state: one mismatch, reported once.
                let mirrored = matches!(task, Task::Discover { .. } | Task::Dynamics { .. });
                if !outputs.is_empty() && !fits && !mirrored {
                    let have = if b.classes {
                        format!(
                            "`{0}` has {1} classes: declare `output y: classes({1})`",
                            b.name, b.outputs
                        )
                    } else {
                        format!("`{}` has {b_out} outputs", b.name)
                    };
                    self.dim_vs_data(outputs, n_out, name.span, have);
                }
                Some(DataConfig::Builtin {
                    name: b.name.to_string(),
                    params,
                })
            }
            DataSource::File { path, args } => {
                let map = self.args(args, &["inputs", "outputs"]);
                let get = |c: &mut Self, key: &str| match map.get(key) {
                    Some(v) => c.integer(v, key, 1),
                    None => {
                        c.err(CheckError::Missing {
                            span,
                            what: format!("argument `{key}`"),
                            label: "in this data source",
                            help: format!("`file(...)` needs the column counts: add `{key} = N`"),
                        });
                        None
                    }
                };
                let (fin, fout) = (get(self, "inputs"), get(self, "outputs"));
                let (fin, fout) = (fin?, fout?);
                if !inputs.is_empty() && fin != n_in {
                    self.dim_vs_data(
                        inputs,
                        n_in,
                        map["inputs"].span,
                        format!("the file has {fin} input columns"),
                    );
                }
                let expected_out = if classes.is_some() { 1 } else { n_out };
                if !outputs.is_empty() && fout != expected_out {
                    let help = if classes.is_some() {
                        "; a `classes(k)` output reads one label column"
                    } else {
                        ""
                    };
                    self.dim_vs_data(
                        outputs,
                        expected_out,
                        map["outputs"].span,
                        format!("the file has {fout} output columns{help}"),
                    );
                }
                self.csv_columns(path, dir, fin + fout);
                Some(DataConfig::File {
                    path: path.node.clone(),
                    inputs: fin,
                    outputs: fout,
                })
            }
        }
    }

    fn dim_vs_data(&mut self, ports: &[Port], declared: usize, data_span: Span, data_says: String) {
        let span = ports[0].span.to(ports[ports.len() - 1].span);
        self.err(CheckError::Dimension {
            span,
            message: format!("the ports declare {declared} components, but {data_says}"),
            other: Some((data_span, "the data".into())),
            help: Some("make the declared dimensions match the data".into()),
        });
    }

    /// Checks a CSV file's header against the declared column count.
    fn csv_columns(&mut self, path: &Spanned<String>, dir: &Path, expected: usize) {
        let full = dir.join(&path.node);
        let text = match self.loader.load(&full) {
            Ok(t) => t,
            Err(e) => {
                self.invalid(
                    path.span,
                    format!("cannot read data file `{}`: {e}", path.node),
                    Some("data paths are relative to the spec file".into()),
                );
                return;
            }
        };
        let header = text.lines().next().unwrap_or("");
        let columns = if header.trim().is_empty() {
            0
        } else {
            header.split(',').count()
        };
        if columns != expected {
            self.err(CheckError::Dimension {
                span: path.span,
                message: format!("the file has {columns} columns, but `inputs` and `outputs` add up to {expected}"),
                other: None,
                help: Some("set `inputs` and `outputs` to the file's column counts".into()),
            });
        }
    }

    fn net(&mut self, kind: &Ident, args: &[Arg]) -> Option<Net> {
        let Some(mut net) = Net::defaults(&kind.node) else {
            self.err(CheckError::Unknown {
                span: kind.span,
                what: "net",
                name: kind.node.clone(),
                candidates: NETS.iter().map(|s| s.to_string()).collect(),
            });
            return None;
        };
        let keys: &[&str] = match net {
            Net::Mlp { .. } => &["hidden", "act", "init"],
            Net::Graph { .. } => &["hidden", "act"],
            Net::Emlp { .. } => &["channels", "layers"],
            Net::Gcnn { .. } => &["channels", "kernel"],
        };
        let map = self.args(args, keys);
        match &mut net {
            Net::Mlp { hidden, act, .. } | Net::Graph { hidden, act } => {
                if let Some(v) = map.get("hidden") {
                    *hidden = self.int_list(v, "hidden")?;
                }
                if let Some(v) = map.get("act") {
                    *act = activation(self.word(v, "act", &ACTIVATIONS)?);
                }
            }
            Net::Emlp { channels, layers } => {
                if let Some(v) = map.get("channels") {
                    *channels = self.integer(v, "channels", 1)?;
                }
                if let Some(v) = map.get("layers") {
                    *layers = self.integer(v, "layers", 1)?;
                }
            }
            Net::Gcnn { channels, kernel } => {
                if let Some(v) = map.get("channels") {
                    *channels = self.int_list(v, "channels")?;
                }
                if let Some(v) = map.get("kernel") {
                    *kernel = self.integer(v, "kernel", 1)?;
                    if *kernel % 2 == 0 {
                        self.invalid(
                            v.span,
                            "a kernel size must be odd",
                            Some("use 3 or 5, so the kernel has a centre".into()),
                        );
                        return None;
                    }
                }
            }
        }
        if let (Net::Mlp { init, .. }, Some(v)) = (&mut net, map.get("init")) {
            *init = match self.word(v, "init", &["uniform", "xavier"])? {
                "xavier" => LinearInit::Xavier,
                _ => LinearInit::Uniform,
            };
        }
        Some(net)
    }

    fn train(&mut self, args: &[Arg]) -> TrainConfig {
        let map = self.args(
            args,
            &[
                "steps",
                "lr",
                "batch",
                "weight_decay",
                "seed",
                "schedule",
                "clip",
            ],
        );
        let defaults = TrainConfig {
            steps: 2000,
            lr: 1e-3,
            batch: None,
            weight_decay: 0.0,
            seed: 0,
            schedule: "constant".into(),
            clip: None,
        };
        let mut t = defaults;
        if let Some(v) = map.get("steps").and_then(|v| self.integer(v, "steps", 1)) {
            t.steps = v;
        }
        if let Some(v) = map.get("lr").and_then(|v| self.positive_float(v, "lr")) {
            t.lr = v;
        }
        if let Some(v) = map.get("batch") {
            t.batch = self.integer(v, "batch", 1);
        }
        if let Some(v) = map
            .get("weight_decay")
            .and_then(|v| self.non_negative_float(v, "weight_decay"))
        {
            t.weight_decay = v;
        }
        if let Some(v) = map.get("seed").and_then(|v| self.integer(v, "seed", 0)) {
            t.seed = v as u64;
        }
        if let Some(v) = map
            .get("schedule")
            .and_then(|v| self.word(v, "schedule", &["constant", "cosine"]))
        {
            t.schedule = v.into();
        }
        if let Some(v) = map.get("clip") {
            t.clip = self.positive_float(v, "clip");
        }
        t
    }

    /// Rules that relate symmetries, ports and the net to each other.
    fn consistency(&mut self, m: &Model, net_span: Option<Span>) {
        let family = |s: &Strategy| match s {
            Strategy::Hamiltonian | Strategy::Lagrangian { .. } => {
                Some("a Hamiltonian or Lagrangian head")
            }
            Strategy::Graph => Some("a graph network"),
            Strategy::GroupConv => Some("a group convolution"),
            Strategy::Architecture => Some("an equivariant MLP"),
            Strategy::Soft { .. } => Some("a residual-pathway equivariant MLP"),
            Strategy::Operator | Strategy::Latent | Strategy::Invariance => {
                Some("symmetry discovery")
            }
            _ => None,
        };
        let mut base: Option<&Symmetry> = None;
        for s in &m.symmetries {
            let Some(f) = family(&s.strategy) else {
                continue;
            };
            match base {
                None => base = Some(s),
                Some(b) => {
                    let same_family = family(&b.strategy) == Some(f);
                    let same = b.strategy == s.strategy
                        && !matches!(s.strategy, Strategy::Architecture | Strategy::Soft { .. });
                    // A Hamiltonian graph network is both at once.
                    let hamiltonian_graph = matches!(
                        (&b.strategy, &s.strategy),
                        (Strategy::Hamiltonian, Strategy::Graph)
                            | (Strategy::Graph, Strategy::Hamiltonian)
                    );
                    let compatible = (same_family && same)
                        || hamiltonian_graph
                        || matches!(
                            (&b.strategy, &s.strategy),
                            (Strategy::GroupConv, Strategy::GroupConv)
                        );
                    if !compatible {
                        let lagrangian_graph = matches!(
                            (&b.strategy, &s.strategy),
                            (Strategy::Lagrangian { .. }, Strategy::Graph)
                                | (Strategy::Graph, Strategy::Lagrangian { .. })
                        );
                        let help = if matches!(s.strategy, Strategy::Architecture) && same_family {
                            "an equivariant MLP honours one group: declare the product, e.g. `group GH = G x H`".to_string()
                        } else if lagrangian_graph {
                            "a graph network carries time symmetry as `time => hamiltonian`, not as a Lagrangian".to_string()
                        } else {
                            format!("one network cannot be both {} and {f}; honour one of them with `=> loss(...)` or `=> augment(...)`", family(&b.strategy).unwrap_or(f))
                        };
                        self.err(CheckError::Conflict {
                            span: s.span,
                            other: b.span,
                            labels: ["this architecture", "conflicts with this one"],
                            message: format!(
                                "`{}` and `{}` ask for different architectures",
                                s.text, b.text
                            ),
                            help,
                        });
                        return;
                    }
                }
            }
        }
        let is_learn = matches!(m.task, Task::Discover { .. });
        if is_learn && m.symmetries.len() > 1 {
            let other = m
                .symmetries
                .iter()
                .find(|s| !matches!(s.kind, SymmetryKind::Learn { .. }));
            if let Some(o) = other {
                let learn = m
                    .symmetries
                    .iter()
                    .find(|s| matches!(s.kind, SymmetryKind::Learn { .. }));
                self.err(CheckError::Conflict {
                    span: o.span,
                    other: learn.map_or(o.span, |l| l.span),
                    labels: ["another symmetry", "the symmetry to learn"],
                    message: "a `learn(...)` model has no other symmetries".into(),
                    help: "learn the symmetry first, then enforce it in a model of its own".into(),
                });
                return;
            }
        }
        // The net must fit the architecture; a graph network shapes a Hamiltonian too.
        let graph = m.symmetries.iter().any(|s| s.strategy == Strategy::Graph);
        let wanted = match base.map(|b| &b.strategy) {
            _ if graph => "graph",
            // `invariance` learns from a trained predictor's input gradients.
            Some(Strategy::Hamiltonian | Strategy::Lagrangian { .. } | Strategy::Invariance)
            | None => "mlp",
            Some(Strategy::Graph) => "graph",
            Some(Strategy::GroupConv) => "gcnn",
            Some(Strategy::Architecture | Strategy::Soft { .. }) => "emlp",
            // The encoder; the decoder mirrors it.
            Some(Strategy::Latent) => "mlp",
            Some(_) => "",
        };
        if let (Some(net), Some(span)) = (&m.net, net_span) {
            if wanted.is_empty() {
                self.invalid(
                    span,
                    "a `learn(...)` model has no network to configure",
                    Some("remove the `net` statement".into()),
                );
            } else if matches!(net, Net::Mlp { init, .. } if *init != LinearInit::Uniform)
                && matches!(
                    base.map(|b| &b.strategy),
                    Some(Strategy::Hamiltonian | Strategy::Lagrangian { .. })
                )
            {
                let help = match base.map(|b| &b.strategy) {
                    Some(Strategy::Lagrangian { .. }) => {
                        "remove `init`; a Lagrangian head takes `=> lagrangian(init = lnn | uniform)`"
                    }
                    _ => "remove `init`; a Hamiltonian head starts uniform in ±1/√fan_in",
                };
                self.invalid(
                    span,
                    "`init` draws a plain MLP's layers; a dynamics head starts its own way",
                    Some(help.into()),
                );
            } else if net.keyword() != wanted {
                self.invalid(
                    span,
                    format!("net `{}` does not fit this model", net.keyword()),
                    Some(format!(
                        "{} needs `net {wanted}(...)`",
                        base.map_or(
                            "a model without an architectural symmetry".to_string(),
                            |b| format!("`{}`", b.text)
                        )
                    )),
                );
            }
        }
        for s in &m.symmetries {
            self.symmetry_ports(m, s);
        }
    }

    /// Checks that the ports carry what a symmetry acts on.
    fn symmetry_ports(&mut self, m: &Model, s: &Symmetry) {
        let port = |name: &str| m.inputs.iter().find(|p| p.name == name);
        match &s.kind {
            SymmetryKind::Time => {
                if !matches!(m.task, Task::Dynamics { .. }) {
                    self.invalid(
                        s.span,
                        "`time` symmetry needs a `state`",
                        Some("declare the state, e.g. `state q: R^1, p: R^1`".into()),
                    );
                }
            }
            SymmetryKind::Translation { on } | SymmetryKind::Permutation { on } => {
                let mut bodies = None;
                for name in on {
                    let Some(p) = port(name) else {
                        let candidates = m.inputs.iter().map(|p| p.name.clone()).collect();
                        self.err(CheckError::Unknown {
                            span: s.span,
                            what: "port",
                            name: name.clone(),
                            candidates,
                        });
                        continue;
                    };
                    if p.shape.len() != 2 {
                        self.err(CheckError::Dimension {
                            span: p.span,
                            message: format!(
                                "`{}` acts on bodies, but `{}` is not a table of bodies",
                                s.text, p.name
                            ),
                            other: Some((s.span, "this symmetry".into())),
                            help: Some(format!(
                                "give it a shape `R^[bodies, dims]`, e.g. `{}: R^[3, 2]`",
                                p.name
                            )),
                        });
                        continue;
                    }
                    if let Some((b, other)) = bodies {
                        if b != p.shape[0] {
                            self.err(CheckError::Dimension {
                                span: p.span,
                                message: format!(
                                    "`{}` has {} bodies, but `{other}` has {b}",
                                    p.name, p.shape[0]
                                ),
                                other: None,
                                help: None,
                            });
                        }
                    }
                    bodies = Some((p.shape[0], p.name.clone()));
                }
                if let (Strategy::Graph, Some((bodies, _))) = (&s.strategy, &bodies) {
                    for p in m.inputs.iter().filter(|p| !on.contains(&p.name)) {
                        if p.shape.len() != 2 || p.shape[0] != *bodies {
                            self.err(CheckError::Dimension {
                                span: p.span,
                                message: format!("a graph network reads one row per body, but `{}` is not a table of bodies", p.name),
                                other: None,
                                help: Some("give every state port the shape `R^[bodies, dims]`".into()),
                            });
                        }
                    }
                }
            }
            SymmetryKind::Rotation(n) => {
                if matches!(s.strategy, Strategy::GroupConv) && *n != 4 {
                    self.invalid(
                        s.span,
                        format!(
                            "group convolutions exist for quarter turns only, not `rotation({n})`"
                        ),
                        Some(
                            "use `rotation(4)`, or `=> augment(samples = 8)` for other angles"
                                .into(),
                        ),
                    );
                }
                self.image_input(m, s);
            }
            SymmetryKind::Reflection => {
                let has_rotation = m.symmetries.iter().any(|r| {
                    matches!(r.kind, SymmetryKind::Rotation(_))
                        && matches!(r.strategy, Strategy::GroupConv)
                });
                if matches!(s.strategy, Strategy::GroupConv) && !has_rotation {
                    self.invalid(
                        s.span,
                        "group convolutions with reflections need quarter turns too",
                        Some("add `symmetry rotation(4) => group_conv` for p4m".into()),
                    );
                }
                self.image_input(m, s);
            }
            SymmetryKind::Group(g) => {
                if matches!(s.strategy, Strategy::None) {
                    return;
                }
                for p in m.inputs.iter().chain(&m.outputs) {
                    match &p.rep {
                        Some((pg, _)) if pg == g => {}
                        Some((pg, _)) => self.err(CheckError::Conflict {
                            span: p.span,
                            other: s.span,
                            labels: ["the port's group", "the symmetry"],
                            message: format!(
                                "port `{}` is over `{pg}`, but the symmetry is `{g}`",
                                p.name
                            ),
                            help: format!("declare it `over {g}`"),
                        }),
                        None => self.invalid(
                            p.span,
                            format!("`{g}` needs to know how it acts on `{}`", p.name),
                            Some(format!(
                                "give the port a representation, e.g. `{}: V over {g}`",
                                p.name
                            )),
                        ),
                    }
                }
            }
            // `invariance` reads (x, y) samples of a predictor, not pairs.
            SymmetryKind::Learn { .. } if s.strategy == Strategy::Invariance => {}
            SymmetryKind::Learn { .. } => {
                let (i, o): (usize, usize) = (
                    m.inputs.iter().map(Port::dim).sum(),
                    m.outputs.iter().map(Port::dim).sum(),
                );
                if i != o {
                    self.err(CheckError::Dimension {
                        span: m.outputs[0].span,
                        message: format!("`learn` reads pairs (x, x′) of equal size, but x has {i} components and x′ has {o}"),
                        other: Some((m.inputs[0].span, format!("{i} components"))),
                        help: None,
                    });
                }
            }
        }
    }

    fn image_input(&mut self, m: &Model, s: &Symmetry) {
        let images = m.inputs.iter().filter(|p| p.shape.len() == 2).count();
        if images != 1 || m.inputs.len() != 1 {
            self.invalid(
                s.span,
                format!("`{}` acts on one image input", s.text),
                Some("declare the input as an image: `input image: R^[8, 8]`".into()),
            );
        }
    }
}

fn activation(word: &str) -> Activation {
    match word {
        "relu" => Activation::Relu,
        "softplus" => Activation::Softplus,
        "swish" => Activation::Swish,
        "sigmoid" => Activation::Sigmoid,
        _ => Activation::Tanh,
    }
}

fn type_error(key: &str, expected: &'static str, v: &Spanned<Value>) -> CheckError {
    let found = match &v.node {
        Value::Number(t) => format!("`{t}`"),
        Value::Str(s) => format!("the string \"{s}\""),
        Value::List(_) => "a list".into(),
        Value::Ident(w) => format!("`{w}`"),
    };
    CheckError::Type {
        span: v.span,
        key: key.into(),
        expected,
        found,
    }
}

fn sym_arg_span(a: &SymArg) -> Span {
    match a {
        SymArg::On(ports) => ports[0].span.to(ports[ports.len() - 1].span),
        SymArg::Arg(a) => a.key.span.to(a.value.span),
        SymArg::Value(v) => v.span,
    }
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
