//! Label and annotation templates in Go `text/template` syntax, the subset Grafana's alert
//! templates use.
//!
//! No maintained Rust implementation of Go templates fits (the one crate there is has not
//! kept up with Go's syntax), so this is a small interpreter of what alert rules write:
//! - text with `{{ … }}` actions, `{{-` and `-}}` trimming the blanks beside them;
//! - `{{ if PIPELINE }} … {{ else }} … {{ end }}` (a value is true when it is not empty,
//!   not zero and not missing);
//! - operands: `$labels.name`, `$labels`, `$values.B.Value`, `$values.B.Labels.name`,
//!   `$value` (Grafana's value string), and the same through `.Labels`, `.Values`,
//!   `.Value`; string literals in `"…"` or `` `…` ``, numbers;
//! - pipelines `x | f` and calls `f a b`, with the functions `index`, `humanize`,
//!   `humanize1024`, `humanizePercentage`, `humanizeDuration`, `toUpper`, `toLower`,
//!   `title`, `printf` (`%s %d %f %.Nf %g %v %%`), `reReplaceAll`, `match`, `or`, `and`,
//!   `not`, `eq`, `ne`, `lt`, `gt`, `le`, `ge`.
//!
//! A missing label prints `<no value>`, as Go does. A template that cannot be parsed or run
//! expands, as in Grafana, to an error text starting `<error expanding template:`.

use std::collections::BTreeMap;

use crate::Labels;

/// The most output one expansion may produce, so a hostile template cannot exhaust memory.
const MAX_OUTPUT: usize = 64 * 1024;

/// What a template sees.
#[derive(Clone, Debug, Default)]
pub struct TemplateData {
    /// `$labels`.
    pub labels: Labels,
    /// `$values`: each refId's value and labels.
    pub values: BTreeMap<String, (Option<f64>, Labels)>,
    /// `$value`: Grafana's value string.
    pub value: String,
}

/// Expands `text`; errors become Grafana's error text.
pub fn expand(text: &str, data: &TemplateData) -> String {
    if !text.contains("{{") {
        return text.to_owned();
    }
    match parse(text).and_then(|nodes| {
        let mut out = String::new();
        render(&nodes, data, &mut out)?;
        Ok(out)
    }) {
        Ok(out) => out,
        Err(message) => format!("<error expanding template: {message}>"),
    }
}

#[derive(Clone, Debug)]
enum Node {
    Text(String),
    Action(Vec<Command>),
    If(Vec<Command>, Vec<Node>, Vec<Node>),
}

/// One command of a pipeline: a function with arguments, or a single operand.
#[derive(Clone, Debug)]
struct Command {
    name: Option<String>,
    args: Vec<Operand>,
}

#[derive(Clone, Debug)]
enum Operand {
    Path(Vec<String>),
    Str(String),
    Num(f64),
    Sub(Vec<Command>),
}

#[derive(Clone, Debug, PartialEq)]
enum Val {
    Str(String),
    Num(f64),
    Map(Labels),
    Bool(bool),
    Nil,
}

impl Val {
    fn text(&self) -> String {
        match self {
            Val::Str(s) => s.clone(),
            Val::Num(n) => format_float(*n),
            Val::Map(m) => {
                let pairs: Vec<String> = m.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("map[{}]", pairs.join(" "))
            }
            Val::Bool(b) => b.to_string(),
            Val::Nil => "<no value>".to_owned(),
        }
    }

    fn truthy(&self) -> bool {
        match self {
            Val::Str(s) => !s.is_empty(),
            Val::Num(n) => *n != 0.0,
            Val::Map(m) => !m.is_empty(),
            Val::Bool(b) => *b,
            Val::Nil => false,
        }
    }

    fn number(&self) -> Result<f64, String> {
        match self {
            Val::Num(n) => Ok(*n),
            Val::Str(s) => s
                .trim()
                .parse()
                .map_err(|_| format!("cannot convert {s:?} to a number")),
            _ => Err("expected a number".to_owned()),
        }
    }
}

// ---- parsing

fn parse(text: &str) -> Result<Vec<Node>, String> {
    let mut tokens = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let (before, after) = rest.split_at(open);
        let after = after.get(2..).unwrap_or("");
        let close = after.find("}}").ok_or("unclosed action")?;
        let inner = after.get(..close).unwrap_or("");
        rest = after.get(close + 2..).unwrap_or("");
        let (mut inner, mut before) = (inner, before.to_owned());
        if let Some(stripped) = inner.strip_prefix('-') {
            before = before.trim_end().to_owned();
            inner = stripped;
        }
        let trim_after = inner.ends_with('-');
        if trim_after {
            inner = inner.get(..inner.len() - 1).unwrap_or("");
            rest = rest.trim_start();
        }
        tokens.push((before, Some(inner.trim().to_owned())));
    }
    tokens.push((rest.to_owned(), None));
    let mut iter = tokens.into_iter();
    let (nodes, end) = parse_nodes(&mut iter)?;
    if end.is_some() {
        return Err("unexpected {{end}} or {{else}}".to_owned());
    }
    Ok(nodes)
}

type Tokens = std::vec::IntoIter<(String, Option<String>)>;

/// Parses until `{{end}}`/`{{else}}` (returned) or the end of input.
fn parse_nodes(tokens: &mut Tokens) -> Result<(Vec<Node>, Option<String>), String> {
    let mut nodes = Vec::new();
    while let Some((text, action)) = tokens.next() {
        if !text.is_empty() {
            nodes.push(Node::Text(text));
        }
        let Some(action) = action else { break };
        if action.is_empty() || action.starts_with("/*") {
            continue;
        }
        if action == "end" || action == "else" {
            return Ok((nodes, Some(action)));
        }
        if let Some(condition) = action.strip_prefix("if ") {
            let condition = parse_pipeline(condition)?;
            let (then, end) = parse_nodes(tokens)?;
            let otherwise = match end.as_deref() {
                Some("else") => {
                    let (otherwise, end) = parse_nodes(tokens)?;
                    if end.as_deref() != Some("end") {
                        return Err("missing {{end}}".to_owned());
                    }
                    otherwise
                }
                Some("end") => Vec::new(),
                _ => return Err("missing {{end}}".to_owned()),
            };
            nodes.push(Node::If(condition, then, otherwise));
            continue;
        }
        nodes.push(Node::Action(parse_pipeline(&action)?));
    }
    Ok((nodes, None))
}

fn parse_pipeline(text: &str) -> Result<Vec<Command>, String> {
    let words = lex(text)?;
    let mut commands = Vec::new();
    let mut current: Vec<Lexeme> = Vec::new();
    for word in words {
        if word == Lexeme::Pipe {
            commands.push(command(std::mem::take(&mut current))?);
        } else {
            current.push(word);
        }
    }
    commands.push(command(current)?);
    Ok(commands)
}

#[derive(Clone, Debug, PartialEq)]
enum Lexeme {
    Word(String),
    Str(String),
    Pipe,
    Group(String),
}

fn lex(text: &str) -> Result<Vec<Lexeme>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '|' => {
                out.push(Lexeme::Pipe);
                i += 1;
            }
            '"' | '`' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("unterminated string".to_owned()),
                        Some(&q) if q == c => break,
                        Some('\\') if c == '"' => {
                            i += 1;
                            match chars.get(i) {
                                Some('n') => s.push('\n'),
                                Some('t') => s.push('\t'),
                                Some(&other) => s.push(other),
                                None => return Err("unterminated string".to_owned()),
                            }
                        }
                        Some(&other) => s.push(other),
                    }
                    i += 1;
                }
                i += 1;
                out.push(Lexeme::Str(s));
            }
            '(' => {
                let mut depth = 0;
                let start = i + 1;
                while let Some(&d) = chars.get(i) {
                    if d == '(' {
                        depth += 1;
                    } else if d == ')' {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    i += 1;
                }
                if depth != 0 {
                    return Err("unbalanced parentheses".to_owned());
                }
                out.push(Lexeme::Group(
                    chars.get(start..i).unwrap_or(&[]).iter().collect(),
                ));
                i += 1;
            }
            _ => {
                let start = i;
                while chars
                    .get(i)
                    .is_some_and(|c| !matches!(c, ' ' | '\t' | '\n' | '\r' | '|' | '(' | ')'))
                {
                    i += 1;
                }
                out.push(Lexeme::Word(
                    chars.get(start..i).unwrap_or(&[]).iter().collect(),
                ));
            }
        }
    }
    Ok(out)
}

fn operand(lexeme: Lexeme) -> Result<Operand, String> {
    Ok(match lexeme {
        Lexeme::Str(s) => Operand::Str(s),
        Lexeme::Group(inner) => Operand::Sub(parse_pipeline(&inner)?),
        Lexeme::Pipe => return Err("unexpected |".to_owned()),
        Lexeme::Word(word) => {
            if let Ok(n) = word.parse::<f64>() {
                Operand::Num(n)
            } else if word.starts_with('$') || word.starts_with('.') {
                let path = word
                    .trim_start_matches('.')
                    .split('.')
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect();
                Operand::Path(path)
            } else {
                return Err(format!("function {word:?} not defined"));
            }
        }
    })
}

fn command(mut words: Vec<Lexeme>) -> Result<Command, String> {
    if words.is_empty() {
        return Err("missing value for command".to_owned());
    }
    match words.first() {
        Some(Lexeme::Word(w))
            if !w.starts_with('$') && !w.starts_with('.') && w.parse::<f64>().is_err() =>
        {
            let name = w.clone();
            words.remove(0);
            let args = words.into_iter().map(operand).collect::<Result<_, _>>()?;
            Ok(Command {
                name: Some(name),
                args,
            })
        }
        _ if words.len() == 1 => Ok(Command {
            name: None,
            args: words.into_iter().map(operand).collect::<Result<_, _>>()?,
        }),
        _ => Err("can't give argument to non-function".to_owned()),
    }
}

// ---- evaluation

fn render(nodes: &[Node], data: &TemplateData, out: &mut String) -> Result<(), String> {
    for node in nodes {
        match node {
            Node::Text(text) => out.push_str(text),
            Node::Action(pipeline) => out.push_str(&run(pipeline, data)?.text()),
            Node::If(condition, then, otherwise) => {
                let branch = if run(condition, data)?.truthy() {
                    then
                } else {
                    otherwise
                };
                render(branch, data, out)?;
            }
        }
        if out.len() > MAX_OUTPUT {
            return Err("output too long".to_owned());
        }
    }
    Ok(())
}

fn run(pipeline: &[Command], data: &TemplateData) -> Result<Val, String> {
    let mut previous: Option<Val> = None;
    for command in pipeline {
        let mut args = command
            .args
            .iter()
            .map(|a| resolve(a, data))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(prev) = previous.take() {
            args.push(prev);
        }
        previous = Some(match &command.name {
            None => args.pop().unwrap_or(Val::Nil),
            Some(name) => call(name, args)?,
        });
    }
    Ok(previous.unwrap_or(Val::Nil))
}

fn resolve(operand: &Operand, data: &TemplateData) -> Result<Val, String> {
    match operand {
        Operand::Str(s) => Ok(Val::Str(s.clone())),
        Operand::Num(n) => Ok(Val::Num(*n)),
        Operand::Sub(pipeline) => run(pipeline, data),
        Operand::Path(path) => {
            let parts: Vec<&str> = path.iter().map(String::as_str).collect();
            Ok(match parts.as_slice() {
                ["$labels" | "Labels"] => Val::Map(data.labels.clone()),
                ["$labels" | "Labels", name] => data
                    .labels
                    .get(*name)
                    .map_or(Val::Nil, |v| Val::Str(v.clone())),
                ["$value" | "Value"] => Val::Str(data.value.clone()),
                ["$values" | "Values", ref_id] => match data.values.get(*ref_id) {
                    Some((Some(v), _)) => Val::Num(*v),
                    _ => Val::Nil,
                },
                ["$values" | "Values", ref_id, "Value"] => match data.values.get(*ref_id) {
                    Some((Some(v), _)) => Val::Num(*v),
                    _ => Val::Nil,
                },
                ["$values" | "Values", ref_id, "Labels"] => data
                    .values
                    .get(*ref_id)
                    .map_or(Val::Nil, |(_, l)| Val::Map(l.clone())),
                ["$values" | "Values", ref_id, "Labels", name] => data
                    .values
                    .get(*ref_id)
                    .and_then(|(_, l)| l.get(*name))
                    .map_or(Val::Nil, |v| Val::Str(v.clone())),
                [] => Val::Map(data.labels.clone()),
                _ => return Err(format!("can't evaluate field {}", path.join("."))),
            })
        }
    }
}

fn arg(args: &[Val], i: usize) -> Result<&Val, String> {
    args.get(i).ok_or_else(|| "wrong number of args".to_owned())
}

fn call(name: &str, args: Vec<Val>) -> Result<Val, String> {
    let text = |i: usize| arg(&args, i).map(Val::text);
    let num = |i: usize| arg(&args, i).and_then(Val::number);
    Ok(match name {
        "index" => match (arg(&args, 0)?, arg(&args, 1)?) {
            (Val::Map(m), key) => m.get(&key.text()).map_or(Val::Nil, |v| Val::Str(v.clone())),
            _ => return Err("index of a non-map".to_owned()),
        },
        "humanize" => Val::Str(humanize(num(0)?, 1000.0)),
        "humanize1024" => Val::Str(humanize(num(0)?, 1024.0)),
        "humanizePercentage" => Val::Str(format!("{}%", format_g(num(0)? * 100.0, 4))),
        "humanizeDuration" => Val::Str(humanize_duration(num(0)?)),
        "toUpper" => Val::Str(text(0)?.to_uppercase()),
        "toLower" => Val::Str(text(0)?.to_lowercase()),
        "title" => Val::Str(title(&text(0)?)),
        "printf" => Val::Str(printf(&text(0)?, args.get(1..).unwrap_or(&[]))?),
        "reReplaceAll" => {
            let re = regex::Regex::new(&text(0)?).map_err(|e| e.to_string())?;
            Val::Str(re.replace_all(&text(2)?, text(1)?.as_str()).into_owned())
        }
        "match" => {
            let re = regex::Regex::new(&text(0)?).map_err(|e| e.to_string())?;
            Val::Num(if re.is_match(&text(1)?) { 1.0 } else { 0.0 })
        }
        "or" => args
            .iter()
            .find(|v| v.truthy())
            .cloned()
            .or(args.last().cloned())
            .unwrap_or(Val::Nil),
        "and" => args
            .iter()
            .find(|v| !v.truthy())
            .cloned()
            .or(args.last().cloned())
            .unwrap_or(Val::Nil),
        "not" => flag(!arg(&args, 0)?.truthy()),
        "eq" => flag(arg(&args, 0)?.text() == arg(&args, 1)?.text()),
        "ne" => flag(arg(&args, 0)?.text() != arg(&args, 1)?.text()),
        "lt" => flag(num(0)? < num(1)?),
        "gt" => flag(num(0)? > num(1)?),
        "le" => flag(num(0)? <= num(1)?),
        "ge" => flag(num(0)? >= num(1)?),
        other => return Err(format!("function {other:?} not defined")),
    })
}

fn flag(b: bool) -> Val {
    Val::Bool(b)
}

fn title(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut start = true;
    for c in text.chars() {
        if start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    out
}

/// Go's `%v` of a float64: the shortest representation.
fn format_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    if v != 0.0 && (v.abs() >= 1e21 || v.abs() < 1e-4) {
        let s = format!("{v:e}");
        return s.replace("e", "e+").replace("e+-", "e-");
    }
    format!("{v}")
}

/// C's `%.Ng`: `digits` significant digits, trailing zeros removed.
fn format_g(v: f64, digits: usize) -> String {
    if v == 0.0 || !v.is_finite() {
        return format_float(v);
    }
    let exponent = v.abs().log10().floor() as i32;
    let digits_i = i32::try_from(digits).unwrap_or(4);
    if exponent < -4 || exponent >= digits_i {
        let s = format!("{:.*e}", digits.saturating_sub(1), v);
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = trim_zeros(mantissa);
        let exp: i32 = exp.parse().unwrap_or(0);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    let decimals = usize::try_from((digits_i - 1 - exponent).max(0)).unwrap_or(0);
    trim_zeros(&format!("{v:.decimals$}"))
}

fn trim_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s.to_owned()
    }
}

/// Prometheus' `humanize`: SI prefixes, four significant digits.
fn humanize(v: f64, base: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format_g(v, 4);
    }
    if v.abs() >= 1.0 {
        let prefixes = if base == 1024.0 {
            ["", "ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"]
        } else {
            ["", "k", "M", "G", "T", "P", "E", "Z", "Y"]
        };
        let mut value = v;
        for prefix in prefixes {
            if value.abs() < base || prefix == "Yi" || prefix == "Y" {
                return format!("{}{prefix}", format_g(value, 4));
            }
            value /= base;
        }
        return format_g(value, 4);
    }
    let mut value = v;
    for prefix in ["", "m", "u", "n", "p", "f", "a", "z", "y"] {
        if value.abs() >= 1.0 || prefix == "y" {
            return format!("{}{prefix}", format_g(value, 4));
        }
        value *= 1000.0;
    }
    format_g(value, 4)
}

/// Prometheus' `humanizeDuration` of seconds.
fn humanize_duration(v: f64) -> String {
    if !v.is_finite() {
        return format_g(v, 4);
    }
    if v.abs() < 1.0 {
        if v == 0.0 {
            return "0s".to_owned();
        }
        return humanize(v, 1000.0) + "s";
    }
    let sign = if v < 0.0 { "-" } else { "" };
    let seconds = v.abs();
    let whole = seconds.floor() as i64;
    let (days, hours, minutes) = (whole / 86_400, whole / 3600 % 24, whole / 60 % 60);
    let rest = seconds - (whole - whole % 60) as f64;
    let secs = format_g(rest, 4);
    if days > 0 {
        return format!("{sign}{days}d {hours}h {minutes}m {secs}s");
    }
    if hours > 0 {
        return format!("{sign}{hours}h {minutes}m {secs}s");
    }
    if minutes > 0 {
        return format!("{sign}{minutes}m {secs}s");
    }
    format!("{sign}{secs}s")
}

fn printf(format: &str, args: &[Val]) -> Result<String, String> {
    let mut out = String::new();
    let mut next = args.iter();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut precision: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut digits = String::new();
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                digits.push(*d);
                chars.next();
            }
            precision = Some(digits.parse().unwrap_or(0).min(20));
        }
        let verb = chars.next().ok_or("bad printf format")?;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let value = next.next().cloned().unwrap_or(Val::Nil);
        match verb {
            's' | 'v' => out.push_str(&value.text()),
            'd' => out.push_str(&(value.number()?.trunc() as i64).to_string()),
            'f' => out.push_str(&format!("{:.*}", precision.unwrap_or(6), value.number()?)),
            'g' => out.push_str(&format_g(value.number()?, precision.unwrap_or(6).max(1))),
            'q' => out.push_str(&format!("{:?}", value.text())),
            other => return Err(format!("printf verb %{other} is not supported")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> TemplateData {
        TemplateData {
            labels: [("instance".to_owned(), "web-1".to_owned())].into(),
            values: [(
                "B".to_owned(),
                (
                    Some(1234.5678),
                    [("job".to_owned(), "api".to_owned())].into(),
                ),
            )]
            .into(),
            value: "[ var='B' labels={job=api} value=1234.5678 ]".to_owned(),
        }
    }

    #[track_caller]
    fn check(template: &str, expected: &str) {
        assert_eq!(expand(template, &data()), expected, "{template}");
    }

    #[test]
    fn grafana_templates() {
        check("plain", "plain");
        check("{{ $labels.instance }} is down", "web-1 is down");
        check("{{ $labels.missing }}", "<no value>");
        check("{{ $values.B.Value }}", "1234.5678");
        check("{{ $values.B }}", "1234.5678");
        check("{{ $values.B.Labels.job }}", "api");
        check("{{ humanize $values.B.Value }}", "1.235k");
        check("{{ $values.B.Value | humanize }}", "1.235k");
        check("{{ humanize1024 2048 }}", "2ki");
        check("{{ humanizePercentage 0.1234 }}", "12.34%");
        check("{{ humanizeDuration 3661 }}", "1h 1m 1s");
        check("{{ printf \"%.2f\" $values.B.Value }}", "1234.57");
        check("{{ index $labels \"instance\" | toUpper }}", "WEB-1");
        check(
            "{{ if gt $values.B.Value 1000.0 }}high{{ else }}low{{ end }}",
            "high",
        );
        check("a {{- \" b \" -}} c", "a b c");
        check(
            "{{ $value }}",
            "[ var='B' labels={job=api} value=1234.5678 ]",
        );
        check("{{ title \"hello world\" }}", "Hello World");
        check(
            "{{ reReplaceAll \"web-(.*)\" \"host $1\" $labels.instance }}",
            "host 1",
        );
        assert!(expand("{{ nosuch 1 }}", &data()).starts_with("<error expanding template:"));
        assert!(expand("{{ if 1 }}x", &data()).starts_with("<error expanding template:"));
        check("{{ humanize 0.0012 }}", "1.2m");
    }
}
