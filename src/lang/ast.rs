//! The syntax tree: what the text says, with a span on everything a diagnostic
//! may point at. Nothing here is checked beyond the grammar (and integer ranges);
//! [`crate::lang::check`] turns it into a [`crate::lang::Spec`].

use super::Span;
use crate::group::Rep;

/// A value with the span it was written at.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub node: T,
    pub span: Span,
}

/// A name as written.
pub type Ident = Spanned<String>;

/// One parsed file.
#[derive(Debug, Clone, PartialEq)]
pub struct Ast {
    pub items: Vec<Item>,
}

/// A top-level item.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    /// `include "groups.sym"`: group declarations from another file.
    Include(Spanned<String>),
    /// `group NAME = EXPR`.
    Group {
        name: Ident,
        expr: Spanned<GroupExpr>,
    },
    /// `model NAME { statements }`.
    Model(ModelDecl),
}

/// A group expression.
#[derive(Debug, Clone, PartialEq)]
pub enum GroupExpr {
    /// A built-in family with parameters (`SO(3)`, `Lorentz`) or a declared name.
    Named {
        name: Ident,
        params: Vec<Spanned<usize>>,
    },
    /// `lie(args) { A, … } discrete { B, … }`: matrices and arguments as
    /// written, checked later.
    Custom {
        lie: Vec<Spanned<Value>>,
        discrete: Vec<Spanned<Value>>,
        args: Vec<Arg>,
    },
    /// `G x H`.
    Product(Vec<Spanned<GroupExpr>>),
}

/// A literal argument value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number, kept as text so integers and floats are told apart when its type is known.
    Number(String),
    Str(String),
    List(Vec<Spanned<Value>>),
    /// A bare word such as `tanh`.
    Ident(String),
}

/// `key = value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    pub key: Ident,
    pub value: Spanned<Value>,
}

/// `model NAME { … }`.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelDecl {
    pub name: Ident,
    pub statements: Vec<Spanned<Statement>>,
}

/// A statement of a model block.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement {
    Data(DataSource),
    Input(Vec<PortDecl>),
    Output(Vec<PortDecl>),
    State(Vec<PortDecl>),
    Symmetry(SymmetryDecl),
    Net { kind: Ident, args: Vec<Arg> },
    Train(Vec<Arg>),
    Export(Ident),
}

impl Statement {
    /// The keyword that starts the statement.
    pub fn keyword(&self) -> &'static str {
        match self {
            Statement::Data(_) => "data",
            Statement::Input(_) => "input",
            Statement::Output(_) => "output",
            Statement::State(_) => "state",
            Statement::Symmetry(_) => "symmetry",
            Statement::Net { .. } => "net",
            Statement::Train(_) => "train",
            Statement::Export(_) => "export",
        }
    }
}

/// Where the data comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum DataSource {
    /// `builtin.NAME(args)`.
    Builtin { name: Ident, args: Vec<Arg> },
    /// `file("path", args)`.
    File {
        path: Spanned<String>,
        args: Vec<Arg>,
    },
}

/// `name: type`.
#[derive(Debug, Clone, PartialEq)]
pub struct PortDecl {
    pub name: Ident,
    pub ty: Spanned<PortType>,
}

/// The type of a port.
#[derive(Debug, Clone, PartialEq)]
pub enum PortType {
    /// `R^n` (shape `[n]`) or `R^[h, w]`.
    Real(Vec<usize>),
    /// `classes(k)`: a label out of `k`.
    Classes(usize),
    /// `REP over GROUP`.
    Rep { rep: Rep, group: Ident },
}

/// `symmetry NAME(args) => strategy`.
#[derive(Debug, Clone, PartialEq)]
pub struct SymmetryDecl {
    /// The symmetry part, without the strategy.
    pub span: Span,
    pub name: Ident,
    pub args: Vec<SymArg>,
    pub strategy: Option<StrategyDecl>,
}

/// An argument of a symmetry.
#[derive(Debug, Clone, PartialEq)]
pub enum SymArg {
    /// `on a, b`: the ports the symmetry acts on.
    On(Vec<Ident>),
    Arg(Arg),
    Value(Spanned<Value>),
}

/// `=> NAME(args)`.
#[derive(Debug, Clone, PartialEq)]
pub struct StrategyDecl {
    pub name: Ident,
    pub args: Vec<Arg>,
}
