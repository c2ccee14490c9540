//! The `math` expression: Grafana's small language over query results.
//!
//! Grammar (Grafana's, from lowest to highest precedence): `||`; `&&`; `== != > >= < <=`;
//! `+ -`; `* / %`; `**`; then unary `!` and `-`, numbers, `$A` / `${A}` references, and the
//! functions `abs log ceil floor round is_nan is_null is_number is_inf`. Comparisons and
//! logic yield 1 or 0; null in, null out (except `is_null`); NaN and ±Inf follow IEEE 754.
//!
//! Two sets are joined by labels as Grafana does: an item of one side meets every item of
//! the other whose labels are equal, or a subset or superset of its own (the result takes
//! the larger set), or either side's labels are empty; when nothing meets and each side has
//! one item, the two meet with no labels. Series meet series point by point on equal times.

use std::collections::HashMap;

use crate::expr::{MAX_EXPRESSION_NODES, Number, Series, Value};
use crate::frame::Labels;
use crate::query::QueryError;

/// The longest expression accepted, in bytes.
const MAX_EXPRESSION_LEN: usize = 10_000;
/// The deepest nesting of parentheses and unary operators.
const MAX_DEPTH: usize = 64;
/// The most pairs a join of two sets may make (unlabelled sets join every item with every
/// other).
const MAX_JOINED: usize = 1_000_000;

/// A parsed math expression.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Expression {
    root: Node,
}

#[derive(Clone, Debug, PartialEq)]
enum Node {
    Number(f64),
    Var(String),
    Unary(UnaryOp, Box<Node>),
    Binary(BinaryOp, Box<Node>, Box<Node>),
    Call(Function, Box<Node>),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum UnaryOp {
    Neg,
    Not,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum BinaryOp {
    Or,
    And,
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Function {
    Abs,
    Log,
    Ceil,
    Floor,
    Round,
    IsNan,
    IsNull,
    IsNumber,
    IsInf,
}

impl Function {
    fn from_name(name: &str) -> Option<Function> {
        Some(match name {
            "abs" => Function::Abs,
            "log" => Function::Log,
            "ceil" => Function::Ceil,
            "floor" => Function::Floor,
            "round" => Function::Round,
            "is_nan" => Function::IsNan,
            "is_null" => Function::IsNull,
            "is_number" => Function::IsNumber,
            "is_inf" => Function::IsInf,
            _ => return None,
        })
    }

    fn apply(self, value: Option<f64>) -> Option<f64> {
        let flag = |b: bool| Some(if b { 1.0 } else { 0.0 });
        match (self, value) {
            (Function::IsNull, v) => flag(v.is_none()),
            (_, None) => None,
            (Function::Abs, Some(v)) => Some(v.abs()),
            (Function::Log, Some(v)) => Some(v.ln()),
            (Function::Ceil, Some(v)) => Some(v.ceil()),
            (Function::Floor, Some(v)) => Some(v.floor()),
            // Go's math.Round: half away from zero, as Rust's `round`.
            (Function::Round, Some(v)) => Some(v.round()),
            (Function::IsNan, Some(v)) => flag(v.is_nan()),
            (Function::IsNumber, Some(v)) => flag(v.is_finite()),
            (Function::IsInf, Some(v)) => flag(v.is_infinite()),
        }
    }
}

impl BinaryOp {
    fn apply(self, a: Option<f64>, b: Option<f64>) -> Option<f64> {
        let (a, b) = (a?, b?);
        let flag = |x: bool| if x { 1.0 } else { 0.0 };
        Some(match self {
            BinaryOp::Or => flag(a != 0.0 || b != 0.0),
            BinaryOp::And => flag(a != 0.0 && b != 0.0),
            BinaryOp::Eq => flag(a == b),
            BinaryOp::Ne => flag(a != b),
            BinaryOp::Gt => flag(a > b),
            BinaryOp::Ge => flag(a >= b),
            BinaryOp::Lt => flag(a < b),
            BinaryOp::Le => flag(a <= b),
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div => a / b,
            // Go's math.Mod and Rust's `%` both keep the sign of the dividend.
            BinaryOp::Mod => a % b,
            BinaryOp::Pow => a.powf(b),
        })
    }
}

impl UnaryOp {
    fn apply(self, value: Option<f64>) -> Option<f64> {
        let v = value?;
        Some(match self {
            UnaryOp::Neg => -v,
            UnaryOp::Not => {
                if v == 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
        })
    }
}

impl Expression {
    /// Parses `text`; a syntax error is a 400 naming where it is.
    pub(crate) fn parse(text: &str) -> Result<Expression, QueryError> {
        if text.trim().is_empty() {
            return Err(QueryError::bad_request("math expression is empty"));
        }
        if text.len() > MAX_EXPRESSION_LEN {
            return Err(QueryError::bad_request("math expression is too long"));
        }
        let tokens = lex(text)?;
        if tokens.len() > MAX_EXPRESSION_NODES {
            return Err(QueryError::bad_request("math expression is too long"));
        }
        let mut parser = Parser {
            tokens,
            pos: 0,
            depth: 0,
        };
        let root = parser.or()?;
        if let Some(token) = parser.tokens.get(parser.pos) {
            return Err(QueryError::bad_request(format!(
                "math expression: unexpected {token:?}"
            )));
        }
        Ok(Expression { root })
    }

    /// The refIds the expression reads, in order of first use.
    pub(crate) fn variables(&self) -> Vec<String> {
        fn walk(node: &Node, out: &mut Vec<String>) {
            match node {
                Node::Var(name) if !out.contains(name) => out.push(name.clone()),
                Node::Unary(_, n) | Node::Call(_, n) => walk(n, out),
                Node::Binary(_, a, b) => {
                    walk(a, out);
                    walk(b, out);
                }
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &mut out);
        out
    }

    /// Evaluates the expression over `vars` (the values of the refIds it reads).
    pub(crate) fn evaluate(&self, vars: &HashMap<String, Value>) -> Result<Value, QueryError> {
        match eval(&self.root, vars)? {
            Operand::Scalar(value) => Ok(Value::Numbers(vec![Number {
                labels: Labels::new(),
                value,
            }])),
            Operand::Set(value) => Ok(value),
        }
    }
}

/// An operand: a constant, or a query's value.
enum Operand {
    Scalar(Option<f64>),
    Set(Value),
}

fn eval(node: &Node, vars: &HashMap<String, Value>) -> Result<Operand, QueryError> {
    Ok(match node {
        Node::Number(n) => Operand::Scalar(Some(*n)),
        Node::Var(name) => Operand::Set(crate::expr::input(vars, name)?.clone()),
        Node::Unary(op, inner) => map(eval(inner, vars)?, |v| op.apply(v)),
        Node::Call(function, inner) => map(eval(inner, vars)?, |v| function.apply(v)),
        Node::Binary(op, a, b) => binary(*op, eval(a, vars)?, eval(b, vars)?)?,
    })
}

fn map(operand: Operand, f: impl Fn(Option<f64>) -> Option<f64>) -> Operand {
    match operand {
        Operand::Scalar(v) => Operand::Scalar(f(v)),
        Operand::Set(Value::Numbers(mut numbers)) => {
            for n in &mut numbers {
                n.value = f(n.value);
            }
            Operand::Set(Value::Numbers(numbers))
        }
        Operand::Set(Value::Series(mut series)) => {
            for s in &mut series {
                for v in &mut s.values {
                    *v = f(*v);
                }
            }
            Operand::Set(Value::Series(series))
        }
        Operand::Set(Value::NoData) => Operand::Set(Value::NoData),
    }
}

fn binary(op: BinaryOp, a: Operand, b: Operand) -> Result<Operand, QueryError> {
    Ok(match (a, b) {
        (Operand::Scalar(a), Operand::Scalar(b)) => Operand::Scalar(op.apply(a, b)),
        (Operand::Scalar(a), set) => map(set, |b| op.apply(a, b)),
        (set, Operand::Scalar(b)) => map(set, |a| op.apply(a, b)),
        (Operand::Set(a), Operand::Set(b)) => Operand::Set(sets(op, a, b)?),
    })
}

/// One item of a set, for joining.
enum Item<'a> {
    Number(&'a Number),
    Series(&'a Series),
}

impl Item<'_> {
    fn labels(&self) -> &Labels {
        match self {
            Item::Number(n) => &n.labels,
            Item::Series(s) => &s.labels,
        }
    }
}

fn items(value: &Value) -> Vec<Item<'_>> {
    match value {
        Value::Numbers(numbers) => numbers.iter().map(Item::Number).collect(),
        Value::Series(series) => series.iter().map(Item::Series).collect(),
        Value::NoData => Vec::new(),
    }
}

fn sets(op: BinaryOp, a: Value, b: Value) -> Result<Value, QueryError> {
    if matches!(a, Value::NoData) || matches!(b, Value::NoData) {
        return Ok(Value::NoData);
    }
    let (left, right) = (items(&a), items(&b));
    let pairs = union(&left, &right)?;
    let any_series = matches!(a, Value::Series(_)) || matches!(b, Value::Series(_));
    if any_series {
        let mut out = Vec::with_capacity(pairs.len());
        for (i, j, labels) in pairs {
            if let (Some(x), Some(y)) = (left.get(i), right.get(j)) {
                out.push(combine_series(op, x, y, labels));
            }
        }
        Ok(Value::Series(out))
    } else {
        let mut out = Vec::with_capacity(pairs.len());
        for (i, j, labels) in pairs {
            if let (Some(Item::Number(x)), Some(Item::Number(y))) = (left.get(i), right.get(j)) {
                out.push(Number {
                    labels,
                    value: op.apply(x.value, y.value),
                });
            }
        }
        Ok(Value::Numbers(out))
    }
}

fn combine_series(op: BinaryOp, a: &Item<'_>, b: &Item<'_>, labels: Labels) -> Series {
    match (a, b) {
        (Item::Series(a), Item::Number(b)) => Series {
            labels,
            times: a.times.clone(),
            values: a.values.iter().map(|v| op.apply(*v, b.value)).collect(),
        },
        (Item::Number(a), Item::Series(b)) => Series {
            labels,
            times: b.times.clone(),
            values: b.values.iter().map(|v| op.apply(a.value, *v)).collect(),
        },
        (Item::Series(a), Item::Series(b)) => {
            // Both are sorted by time: a merge keeps the points whose time is in both.
            let (mut times, mut values) = (Vec::new(), Vec::new());
            let mut j = 0;
            for (t, v) in a.times.iter().zip(&a.values) {
                while b.times.get(j).is_some_and(|bt| bt < t) {
                    j += 1;
                }
                if b.times.get(j) == Some(t) {
                    times.push(*t);
                    values.push(op.apply(*v, b.values.get(j).copied().flatten()));
                }
            }
            Series {
                labels,
                times,
                values,
            }
        }
        // Two numbers never meet in a join that involves series: each side is one kind.
        (Item::Number(_), Item::Number(_)) => Series {
            labels,
            times: Vec::new(),
            values: Vec::new(),
        },
    }
}

/// Grafana's label join: the pairs `(i, j, labels)` in Grafana's order (by `i`, then `j`).
fn union(a: &[Item<'_>], b: &[Item<'_>]) -> Result<Vec<(usize, usize, Labels)>, QueryError> {
    let too_many =
        || QueryError::bad_request("math expression: the join of the two sets is too large");
    // Equal label sets are found by hash; only sets of other sizes need the subset test.
    let mut exact: HashMap<&Labels, Vec<usize>> = HashMap::new();
    let mut unlabelled = Vec::new();
    let mut by_len: HashMap<usize, Vec<usize>> = HashMap::new();
    for (j, item) in b.iter().enumerate() {
        let labels = item.labels();
        if labels.is_empty() {
            unlabelled.push(j);
        } else {
            exact.entry(labels).or_default().push(j);
            by_len.entry(labels.len()).or_default().push(j);
        }
    }
    let mut pairs = Vec::new();
    for (i, item) in a.iter().enumerate() {
        let labels = item.labels();
        if labels.is_empty() {
            if pairs.len() + b.len() > MAX_JOINED {
                return Err(too_many());
            }
            pairs.extend(
                b.iter()
                    .enumerate()
                    .map(|(j, other)| (i, j, other.labels().clone())),
            );
            continue;
        }
        let mut matched: Vec<(usize, Labels)> = unlabelled
            .iter()
            .map(|&j| (j, labels.clone()))
            .chain(
                exact
                    .get(labels)
                    .into_iter()
                    .flatten()
                    .map(|&j| (j, labels.clone())),
            )
            .collect();
        for (&len, indices) in &by_len {
            if len == labels.len() {
                continue;
            }
            for &j in indices {
                let Some(other) = b.get(j).map(Item::labels) else {
                    continue;
                };
                if len < labels.len() && contains(labels, other) {
                    matched.push((j, labels.clone()));
                } else if len > labels.len() && contains(other, labels) {
                    matched.push((j, other.clone()));
                }
            }
        }
        matched.sort_by_key(|(j, _)| *j);
        pairs.extend(matched.into_iter().map(|(j, l)| (i, j, l)));
        if pairs.len() > MAX_JOINED {
            return Err(too_many());
        }
    }
    if pairs.is_empty() && a.len() == 1 && b.len() == 1 {
        // Grafana joins a lone item with a lone item whatever their labels, dropping them.
        pairs.push((0, 0, Labels::new()));
    }
    Ok(pairs)
}

/// Whether every label of `small` is in `big` with the same value.
fn contains(big: &Labels, small: &Labels) -> bool {
    small.iter().all(|(k, v)| big.get(k) == Some(v))
}

// ---- lexing and parsing

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Number(f64),
    Var(String),
    Ident(String),
    Op(&'static str),
    LParen,
    RParen,
}

fn lex(text: &str) -> Result<Vec<Token>, QueryError> {
    let bad = |what: String| QueryError::bad_request(format!("math expression: {what}"));
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = bytes.get(i) {
        let rest = text.get(i..).unwrap_or("");
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'(' => {
                tokens.push(Token::LParen);
                i += 1;
            }
            b')' => {
                tokens.push(Token::RParen);
                i += 1;
            }
            b'$' => {
                let (name, len) = if let Some(braced) = rest.strip_prefix("${") {
                    let end = braced
                        .find('}')
                        .ok_or_else(|| bad("unclosed ${".to_owned()))?;
                    (braced.get(..end).unwrap_or("").trim().to_owned(), end + 3)
                } else {
                    let len = rest
                        .bytes()
                        .skip(1)
                        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-')
                        .count();
                    (rest.get(1..=len).unwrap_or("").to_owned(), len + 1)
                };
                if name.is_empty() {
                    return Err(bad("a $ must name a query".to_owned()));
                }
                tokens.push(Token::Var(name));
                i += len;
            }
            b'0'..=b'9' | b'.' => {
                let mut len = rest
                    .bytes()
                    .take_while(|b| b.is_ascii_digit() || *b == b'.')
                    .count();
                // An exponent: 1e3, 2.5E-4.
                let tail = rest.get(len..).unwrap_or("").as_bytes();
                if matches!(tail.first(), Some(b'e' | b'E')) {
                    let sign = usize::from(matches!(tail.get(1), Some(b'+' | b'-')));
                    let digits = tail
                        .iter()
                        .skip(1 + sign)
                        .take_while(|b| b.is_ascii_digit())
                        .count();
                    if digits > 0 {
                        len += 1 + sign + digits;
                    }
                }
                let literal = rest.get(..len).unwrap_or("");
                let value = literal
                    .parse::<f64>()
                    .map_err(|_| bad(format!("bad number {literal:?}")))?;
                tokens.push(Token::Number(value));
                i += len;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let len = rest
                    .bytes()
                    .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                    .count();
                tokens.push(Token::Ident(rest.get(..len).unwrap_or("").to_owned()));
                i += len;
            }
            _ => {
                let op = [
                    "**", "==", "!=", ">=", "<=", "&&", "||", "+", "-", "*", "/", "%", ">", "<",
                    "!",
                ]
                .into_iter()
                .find(|op| rest.starts_with(op))
                .ok_or_else(|| {
                    bad(format!(
                        "unexpected character {:?}",
                        rest.chars().next().unwrap_or(' ')
                    ))
                })?;
                tokens.push(Token::Op(op));
                i += op.len();
            }
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek_op(&self) -> Option<&'static str> {
        match self.tokens.get(self.pos) {
            Some(Token::Op(op)) => Some(op),
            _ => None,
        }
    }

    /// One precedence level: `next {op next}` for the operators in `ops`.
    fn level(
        &mut self,
        ops: &[(&str, BinaryOp)],
        next: fn(&mut Parser) -> Result<Node, QueryError>,
    ) -> Result<Node, QueryError> {
        let mut node = next(self)?;
        while let Some(op) = self
            .peek_op()
            .and_then(|t| ops.iter().find(|(s, _)| *s == t).map(|(_, op)| *op))
        {
            self.pos += 1;
            node = Node::Binary(op, Box::new(node), Box::new(next(self)?));
        }
        Ok(node)
    }

    fn or(&mut self) -> Result<Node, QueryError> {
        self.level(&[("||", BinaryOp::Or)], Parser::and)
    }

    fn and(&mut self) -> Result<Node, QueryError> {
        self.level(&[("&&", BinaryOp::And)], Parser::comparison)
    }

    fn comparison(&mut self) -> Result<Node, QueryError> {
        self.level(
            &[
                ("==", BinaryOp::Eq),
                ("!=", BinaryOp::Ne),
                (">", BinaryOp::Gt),
                (">=", BinaryOp::Ge),
                ("<", BinaryOp::Lt),
                ("<=", BinaryOp::Le),
            ],
            Parser::sum,
        )
    }

    fn sum(&mut self) -> Result<Node, QueryError> {
        self.level(
            &[("+", BinaryOp::Add), ("-", BinaryOp::Sub)],
            Parser::product,
        )
    }

    fn product(&mut self) -> Result<Node, QueryError> {
        self.level(
            &[
                ("*", BinaryOp::Mul),
                ("/", BinaryOp::Div),
                ("%", BinaryOp::Mod),
            ],
            Parser::power,
        )
    }

    fn power(&mut self) -> Result<Node, QueryError> {
        self.level(&[("**", BinaryOp::Pow)], Parser::factor)
    }

    fn factor(&mut self) -> Result<Node, QueryError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(QueryError::bad_request(
                "math expression is nested too deeply",
            ));
        }
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        let node = match token {
            Some(Token::Number(n)) => Node::Number(n),
            Some(Token::Var(name)) => Node::Var(name),
            Some(Token::Op("-")) => Node::Unary(UnaryOp::Neg, Box::new(self.factor()?)),
            Some(Token::Op("!")) => Node::Unary(UnaryOp::Not, Box::new(self.factor()?)),
            Some(Token::LParen) => {
                let inner = self.or()?;
                self.expect_close()?;
                inner
            }
            Some(Token::Ident(name)) => {
                let function = Function::from_name(&name).ok_or_else(|| {
                    QueryError::bad_request(format!(
                        "math expression: unknown function {:?}",
                        crate::types::truncate(&name, 32)
                    ))
                })?;
                if self.tokens.get(self.pos) != Some(&Token::LParen) {
                    return Err(QueryError::bad_request(format!(
                        "math expression: {name} needs an argument in parentheses"
                    )));
                }
                self.pos += 1;
                let argument = self.or()?;
                self.expect_close()?;
                Node::Call(function, Box::new(argument))
            }
            other => {
                return Err(QueryError::bad_request(match other {
                    Some(token) => format!("math expression: unexpected {token:?}"),
                    None => "math expression ends too early".to_owned(),
                }));
            }
        };
        self.depth -= 1;
        Ok(node)
    }

    fn expect_close(&mut self) -> Result<(), QueryError> {
        if self.tokens.get(self.pos) == Some(&Token::RParen) {
            self.pos += 1;
            Ok(())
        } else {
            Err(QueryError::bad_request("math expression: missing )"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::test_support::*;

    fn eval_text(text: &str, vars: &[(&str, Value)]) -> Value {
        let vars: HashMap<String, Value> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        Expression::parse(text).unwrap().evaluate(&vars).unwrap()
    }

    fn scalar(text: &str) -> Option<f64> {
        match eval_text(text, &[]) {
            Value::Numbers(n) => n[0].value,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn precedence_and_operators_follow_grafana() {
        for (text, expected) in [
            ("1 + 2 * 3", 7.0),
            ("(1 + 2) * 3", 9.0),
            ("2 ** 3 ** 2", 64.0),
            ("-2 ** 2", 4.0),
            ("10 % 4", 2.0),
            ("-7 % 3", -1.0),
            ("3 > 2 && 1 < 0 || 1", 1.0),
            ("!0", 1.0),
            ("!5", 0.0),
            ("5 >= 5", 1.0),
            ("1 != 1", 0.0),
            ("abs(-3) + floor(2.7) + ceil(0.1) + round(2.5)", 9.0),
            ("log(1)", 0.0),
            ("is_nan(0/0) + is_inf(1/0) + is_number(1/0)", 2.0),
            ("1e3 / 2.5E1", 40.0),
        ] {
            assert_eq!(scalar(text), Some(expected), "{text}");
        }
        assert!(scalar("0/0").unwrap().is_nan());
    }

    #[test]
    fn syntax_errors_are_refused() {
        for text in [
            "",
            "1 +",
            "(1",
            "$",
            "foo(1)",
            "abs 1",
            "1 ~ 2",
            "1 2",
            &"(".repeat(200),
        ] {
            assert!(Expression::parse(text).is_err(), "{text:?}");
        }
        let e = Expression::parse("$A + ${B} * $A").unwrap();
        assert_eq!(e.variables(), ["A", "B"]);
    }

    #[test]
    fn numbers_join_by_labels_like_grafana() {
        let a = Value::Numbers(vec![
            number(&[("host", "a")], Some(1.0)),
            number(&[("host", "b")], Some(2.0)),
        ]);
        let b = Value::Numbers(vec![
            number(&[("host", "b")], Some(20.0)),
            number(&[("host", "a")], Some(10.0)),
            number(&[("host", "c")], Some(30.0)),
        ]);
        assert_eq!(
            eval_text("$A + $B", &[("A", a.clone()), ("B", b)]),
            Value::Numbers(vec![
                number(&[("host", "a")], Some(11.0)),
                number(&[("host", "b")], Some(22.0)),
            ])
        );
        // A subset joins its supersets and the result keeps the larger labels.
        let detailed = Value::Numbers(vec![
            number(&[("host", "a"), ("cpu", "0")], Some(5.0)),
            number(&[("host", "a"), ("cpu", "1")], Some(6.0)),
            number(&[("host", "b"), ("cpu", "0")], Some(7.0)),
        ]);
        assert_eq!(
            eval_text("$D - $A", &[("A", a.clone()), ("D", detailed)]),
            Value::Numbers(vec![
                number(&[("host", "a"), ("cpu", "0")], Some(4.0)),
                number(&[("host", "a"), ("cpu", "1")], Some(5.0)),
                number(&[("host", "b"), ("cpu", "0")], Some(5.0)),
            ])
        );
        // Lone items meet whatever their labels; otherwise unrelated labels do not.
        let x = Value::Numbers(vec![number(&[("x", "1")], Some(3.0))]);
        let y = Value::Numbers(vec![number(&[("y", "1")], Some(4.0))]);
        assert_eq!(
            eval_text("$X * $Y", &[("X", x), ("Y", y.clone())]),
            Value::Numbers(vec![number(&[], Some(12.0))])
        );
        assert_eq!(
            eval_text("$A * $Y", &[("A", a), ("Y", y)]),
            Value::Numbers(vec![])
        );
        assert_eq!(eval_text("$N + 1", &[("N", Value::NoData)]), Value::NoData);
    }

    #[test]
    fn joins_are_bounded() {
        let many = Value::Numbers((0..1_001).map(|_| number(&[], Some(1.0))).collect());
        let vars: HashMap<String, Value> =
            [("A".to_owned(), many.clone()), ("B".to_owned(), many)].into();
        let result = Expression::parse("$A + $B").unwrap().evaluate(&vars);
        assert!(
            matches!(result, Err(QueryError { status: 400, .. })),
            "a million pairs are refused"
        );
    }

    #[test]
    fn series_join_on_time_and_nulls_propagate() {
        let a = Value::Series(vec![series(
            &[("job", "api")],
            &[(1, Some(1.0)), (2, None), (3, Some(3.0)), (5, Some(5.0))],
        )]);
        let b = Value::Series(vec![series(
            &[("job", "api")],
            &[
                (2, Some(20.0)),
                (3, Some(30.0)),
                (4, Some(40.0)),
                (5, Some(50.0)),
            ],
        )]);
        assert_eq!(
            eval_text("$A + $B", &[("A", a.clone()), ("B", b)]),
            Value::Series(vec![series(
                &[("job", "api")],
                &[(2, None), (3, Some(33.0)), (5, Some(55.0))]
            )])
        );
        assert_eq!(
            eval_text("$A * 2 > 5", &[("A", a.clone())]),
            Value::Series(vec![series(
                &[("job", "api")],
                &[(1, Some(0.0)), (2, None), (3, Some(1.0)), (5, Some(1.0))]
            )])
        );
        assert_eq!(
            eval_text("is_null($A)", &[("A", a)]),
            Value::Series(vec![series(
                &[("job", "api")],
                &[
                    (1, Some(0.0)),
                    (2, Some(1.0)),
                    (3, Some(0.0)),
                    (5, Some(0.0))
                ]
            )])
        );
    }
}
