//! InfluxDB line protocol, as Telegraf's `http` output sends it, turned into one Grafana
//! data frame per measurement.
//!
//! `measurement[,tag=value…] field=value[,field=value…] [timestamp]`, one point per line,
//! `#` comments and blank lines skipped. Numbers (floats, `i` integers, `u` unsigned)
//! become float64 columns as Grafana's push endpoint makes them; strings and booleans keep
//! their type. Timestamps are nanoseconds; a point without one gets the current time.
//! Every size is bounded ([`InfluxLimits`]) and every failure is an [`InfluxError`] naming
//! the line.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::channel::is_valid_segment;
use crate::frame::{Field, Frame, Values};

/// Bounds on one push body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InfluxLimits {
    /// Bytes in the body.
    pub max_bytes: usize,
    /// Lines (points).
    pub max_lines: usize,
    /// Fields in one line.
    pub max_fields_per_line: usize,
    /// Tags in one line.
    pub max_tags_per_line: usize,
    /// Distinct measurements (frames) in one body.
    pub max_measurements: usize,
    /// Columns in one frame (distinct field and tag-set pairs).
    pub max_columns: usize,
    /// Characters in a measurement, tag or field name, or in a tag or string value.
    pub max_text_len: usize,
}

impl Default for InfluxLimits {
    fn default() -> InfluxLimits {
        InfluxLimits {
            max_bytes: 4 * 1024 * 1024,
            max_lines: 50_000,
            max_fields_per_line: 256,
            max_tags_per_line: 64,
            max_measurements: 256,
            max_columns: 1024,
            max_text_len: 4096,
        }
    }
}

/// A line-protocol body Tandem cannot take.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("line {line}: {kind}")]
pub struct InfluxError {
    /// The 1-based line number (0 for the body as a whole).
    pub line: usize,
    /// What is wrong.
    pub kind: InfluxErrorKind,
}

/// What is wrong with a line-protocol body.
#[derive(Clone, Debug, PartialEq)]
pub enum InfluxErrorKind {
    /// The body is larger than allowed.
    BodyTooLarge(usize),
    /// More lines than allowed.
    TooManyLines(usize),
    /// A line has more fields than allowed.
    TooManyFields(usize),
    /// A line has more tags than allowed.
    TooManyTags(usize),
    /// More measurements than allowed.
    TooManyMeasurements(usize),
    /// A frame would have more columns than allowed.
    TooManyColumns(usize),
    /// A name or value is longer than allowed.
    TextTooLong(usize),
    /// The text contains NUL.
    Nul,
    /// The line has no measurement.
    MissingMeasurement,
    /// The measurement cannot be part of a channel name.
    InvalidMeasurement(String),
    /// A tag is not `key=value`.
    InvalidTag,
    /// The line has no fields.
    MissingFields,
    /// A field is not `key=value`.
    InvalidField,
    /// A field value is not a number, boolean or quoted string.
    InvalidFieldValue(String),
    /// A string value is not closed.
    UnterminatedString,
    /// The timestamp is not an integer.
    InvalidTimestamp,
    /// A field changes type within one body.
    TypeConflict(String),
}

impl fmt::Display for InfluxErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InfluxErrorKind::BodyTooLarge(max) => write!(f, "the body is over {max} bytes"),
            InfluxErrorKind::TooManyLines(max) => write!(f, "more than {max} lines"),
            InfluxErrorKind::TooManyFields(max) => write!(f, "more than {max} fields"),
            InfluxErrorKind::TooManyTags(max) => write!(f, "more than {max} tags"),
            InfluxErrorKind::TooManyMeasurements(max) => {
                write!(f, "more than {max} measurements")
            }
            InfluxErrorKind::TooManyColumns(max) => write!(f, "more than {max} columns in a frame"),
            InfluxErrorKind::TextTooLong(max) => {
                write!(f, "a name or value is over {max} characters")
            }
            InfluxErrorKind::Nul => f.write_str("NUL characters are not allowed"),
            InfluxErrorKind::MissingMeasurement => f.write_str("missing measurement"),
            InfluxErrorKind::InvalidMeasurement(name) => write!(
                f,
                "measurement {name:?} must be letters, digits and _-=.~ to name a channel"
            ),
            InfluxErrorKind::InvalidTag => f.write_str("a tag must be key=value"),
            InfluxErrorKind::MissingFields => f.write_str("missing fields"),
            InfluxErrorKind::InvalidField => f.write_str("a field must be key=value"),
            InfluxErrorKind::InvalidFieldValue(value) => write!(f, "invalid field value {value:?}"),
            InfluxErrorKind::UnterminatedString => f.write_str("unterminated string value"),
            InfluxErrorKind::InvalidTimestamp => f.write_str("the timestamp must be an integer"),
            InfluxErrorKind::TypeConflict(field) => write!(f, "field {field:?} changes type"),
        }
    }
}

/// One point.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// The measurement.
    pub measurement: String,
    /// The tags, as written.
    pub tags: Vec<(String, String)>,
    /// The fields, as written.
    pub fields: Vec<(String, FieldValue)>,
    /// Nanoseconds since the epoch, when given.
    pub timestamp: Option<i64>,
}

/// A field's value.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldValue {
    /// A float.
    Float(f64),
    /// An `i` integer.
    Int(i64),
    /// A `u` unsigned integer.
    UInt(u64),
    /// A boolean.
    Bool(bool),
    /// A quoted string.
    Str(String),
}

/// Parses a body into points.
pub fn parse(body: &str, limits: &InfluxLimits) -> Result<Vec<Point>, InfluxError> {
    let whole = |kind| InfluxError { line: 0, kind };
    if body.len() > limits.max_bytes {
        return Err(whole(InfluxErrorKind::BodyTooLarge(limits.max_bytes)));
    }
    let mut points = Vec::new();
    for (index, line) in body.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if points.len() >= limits.max_lines {
            return Err(whole(InfluxErrorKind::TooManyLines(limits.max_lines)));
        }
        let point = parse_line(line, limits).map_err(|kind| InfluxError {
            line: index + 1,
            kind,
        })?;
        points.push(point);
    }
    Ok(points)
}

/// Parses a body and builds one frame per measurement, in the order measurements first
/// appear: a `time` column, then one column per field and tag set.
pub fn to_frames(body: &str, limits: &InfluxLimits) -> Result<Vec<Frame>, InfluxError> {
    let points = parse(body, limits)?;
    let now_ms = tandem_storage::now_ms();
    let mut order: Vec<String> = Vec::new();
    let mut builders: HashMap<String, FrameBuilder> = HashMap::new();
    for (index, point) in points.into_iter().enumerate() {
        let fail = |kind| InfluxError { line: 0, kind };
        if !is_valid_segment(&point.measurement) {
            return Err(InfluxError {
                line: index + 1,
                kind: InfluxErrorKind::InvalidMeasurement(point.measurement),
            });
        }
        if !builders.contains_key(&point.measurement) {
            if order.len() >= limits.max_measurements {
                return Err(fail(InfluxErrorKind::TooManyMeasurements(
                    limits.max_measurements,
                )));
            }
            order.push(point.measurement.clone());
        }
        let builder = builders.entry(point.measurement.clone()).or_default();
        let time = point
            .timestamp
            .map_or(now_ms, |ns| ns.div_euclid(1_000_000));
        builder.add(point, time, limits)?;
    }
    Ok(order
        .into_iter()
        .filter_map(|name| {
            let builder = builders.remove(&name)?;
            Some(builder.build(name))
        })
        .collect())
}

#[derive(Default)]
struct FrameBuilder {
    times: BTreeMap<i64, usize>,
    rows: usize,
    columns: Vec<Column>,
    index: HashMap<(String, BTreeMap<String, String>), usize>,
}

struct Column {
    name: String,
    labels: BTreeMap<String, String>,
    cells: Vec<(usize, FieldValue)>,
}

impl FrameBuilder {
    fn add(&mut self, point: Point, time: i64, limits: &InfluxLimits) -> Result<(), InfluxError> {
        let row = *self.times.entry(time).or_insert_with(|| {
            self.rows += 1;
            self.rows - 1
        });
        let labels: BTreeMap<String, String> = point.tags.into_iter().collect();
        for (name, value) in point.fields {
            let key = (name, labels.clone());
            let column = match self.index.get(&key) {
                Some(column) => *column,
                None => {
                    if self.columns.len() >= limits.max_columns {
                        return Err(InfluxError {
                            line: 0,
                            kind: InfluxErrorKind::TooManyColumns(limits.max_columns),
                        });
                    }
                    self.columns.push(Column {
                        name: key.0.clone(),
                        labels: key.1.clone(),
                        cells: Vec::new(),
                    });
                    self.index.insert(key, self.columns.len() - 1);
                    self.columns.len() - 1
                }
            };
            let Some(column) = self.columns.get_mut(column) else {
                continue;
            };
            if let Some((_, first)) = column.cells.first()
                && kind(first) != kind(&value)
            {
                return Err(InfluxError {
                    line: 0,
                    kind: InfluxErrorKind::TypeConflict(column.name.clone()),
                });
            }
            column.cells.push((row, value));
        }
        Ok(())
    }

    fn build(self, name: String) -> Frame {
        // Rows in time order: row number → position.
        let mut position = vec![0; self.rows];
        let mut times = Vec::with_capacity(self.rows);
        for (at, (time, row)) in self.times.iter().enumerate() {
            if let Some(slot) = position.get_mut(*row) {
                *slot = at;
            }
            times.push(*time);
        }
        let mut fields = Vec::with_capacity(self.columns.len() + 1);
        fields.push(Field {
            name: "time".into(),
            labels: BTreeMap::new(),
            values: Values::Time(times),
        });
        for column in self.columns {
            let values = match column.cells.first().map(|(_, value)| kind(value)) {
                Some(Kind::Text) => {
                    let mut values = vec![None; self.rows];
                    for (row, value) in column.cells {
                        if let (FieldValue::Str(text), Some(slot)) =
                            (value, position.get(row).and_then(|at| values.get_mut(*at)))
                        {
                            *slot = Some(text);
                        }
                    }
                    Values::Text(values)
                }
                Some(Kind::Bool) => {
                    let mut values = vec![None; self.rows];
                    for (row, value) in column.cells {
                        if let (FieldValue::Bool(b), Some(slot)) =
                            (value, position.get(row).and_then(|at| values.get_mut(*at)))
                        {
                            *slot = Some(b);
                        }
                    }
                    Values::Bool(values)
                }
                _ => {
                    let mut values = vec![None; self.rows];
                    for (row, value) in column.cells {
                        let number = match value {
                            FieldValue::Float(v) => Some(v),
                            FieldValue::Int(v) => Some(v as f64),
                            FieldValue::UInt(v) => Some(v as f64),
                            FieldValue::Bool(_) | FieldValue::Str(_) => None,
                        };
                        if let Some(slot) = position.get(row).and_then(|at| values.get_mut(*at)) {
                            *slot = number;
                        }
                    }
                    Values::Number(values)
                }
            };
            fields.push(Field {
                name: column.name,
                labels: column.labels,
                values,
            });
        }
        Frame { name, fields }
    }
}

#[derive(PartialEq, Eq)]
enum Kind {
    Number,
    Text,
    Bool,
}

fn kind(value: &FieldValue) -> Kind {
    match value {
        FieldValue::Float(_) | FieldValue::Int(_) | FieldValue::UInt(_) => Kind::Number,
        FieldValue::Str(_) => Kind::Text,
        FieldValue::Bool(_) => Kind::Bool,
    }
}

fn parse_line(line: &str, limits: &InfluxLimits) -> Result<Point, InfluxErrorKind> {
    if line.contains('\0') {
        return Err(InfluxErrorKind::Nul);
    }
    let mut cursor = Cursor { line, at: 0 };
    let measurement = cursor.token(b", ", limits)?;
    if measurement.is_empty() {
        return Err(InfluxErrorKind::MissingMeasurement);
    }
    let mut tags = Vec::new();
    while cursor.peek() == Some(b',') {
        cursor.at += 1;
        if tags.len() >= limits.max_tags_per_line {
            return Err(InfluxErrorKind::TooManyTags(limits.max_tags_per_line));
        }
        let key = cursor.token(b"=, ", limits)?;
        if key.is_empty() || cursor.peek() != Some(b'=') {
            return Err(InfluxErrorKind::InvalidTag);
        }
        cursor.at += 1;
        let value = cursor.token(b", ", limits)?;
        if value.is_empty() {
            return Err(InfluxErrorKind::InvalidTag);
        }
        tags.push((key, value));
    }
    cursor.skip_spaces();
    if cursor.peek().is_none() {
        return Err(InfluxErrorKind::MissingFields);
    }
    let mut fields = Vec::new();
    loop {
        if fields.len() >= limits.max_fields_per_line {
            return Err(InfluxErrorKind::TooManyFields(limits.max_fields_per_line));
        }
        let key = cursor.token(b"=, ", limits)?;
        if key.is_empty() || cursor.peek() != Some(b'=') {
            return Err(InfluxErrorKind::InvalidField);
        }
        cursor.at += 1;
        let value = cursor.field_value(limits)?;
        fields.push((key, value));
        match cursor.peek() {
            Some(b',') => cursor.at += 1,
            _ => break,
        }
    }
    cursor.skip_spaces();
    let rest = cursor.rest().trim();
    let timestamp = if rest.is_empty() {
        None
    } else {
        Some(
            rest.parse::<i64>()
                .map_err(|_| InfluxErrorKind::InvalidTimestamp)?,
        )
    };
    Ok(Point {
        measurement,
        tags,
        fields,
        timestamp,
    })
}

struct Cursor<'a> {
    line: &'a str,
    at: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.line.as_bytes().get(self.at).copied()
    }

    fn rest(&self) -> &str {
        self.line.get(self.at..).unwrap_or_default()
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.at += 1;
        }
    }

    /// Reads up to an unescaped byte of `stops`, unescaping `\` before a stop byte or a
    /// backslash. Only ASCII bytes are compared, so multi-byte characters pass whole.
    fn token(&mut self, stops: &[u8], limits: &InfluxLimits) -> Result<String, InfluxErrorKind> {
        let bytes = self.line.as_bytes();
        let mut out = String::new();
        let mut start = self.at;
        while let Some(&b) = bytes.get(self.at) {
            if b == b'\\' {
                if let Some(&next) = bytes.get(self.at + 1)
                    && (stops.contains(&next) || next == b'\\')
                {
                    out.push_str(self.line.get(start..self.at).unwrap_or_default());
                    out.push(char::from(next));
                    self.at += 2;
                    start = self.at;
                    continue;
                }
            } else if stops.contains(&b) {
                break;
            }
            self.at += 1;
        }
        out.push_str(self.line.get(start..self.at).unwrap_or_default());
        check_len(&out, limits)?;
        Ok(out)
    }

    fn field_value(&mut self, limits: &InfluxLimits) -> Result<FieldValue, InfluxErrorKind> {
        let bytes = self.line.as_bytes();
        if self.peek() == Some(b'"') {
            self.at += 1;
            let mut out = String::new();
            let mut start = self.at;
            loop {
                match bytes.get(self.at) {
                    None => return Err(InfluxErrorKind::UnterminatedString),
                    Some(b'\\') if matches!(bytes.get(self.at + 1), Some(b'"' | b'\\')) => {
                        out.push_str(self.line.get(start..self.at).unwrap_or_default());
                        out.push(char::from(bytes.get(self.at + 1).copied().unwrap_or(b'\\')));
                        self.at += 2;
                        start = self.at;
                    }
                    Some(b'"') => {
                        out.push_str(self.line.get(start..self.at).unwrap_or_default());
                        self.at += 1;
                        check_len(&out, limits)?;
                        return Ok(FieldValue::Str(out));
                    }
                    Some(_) => self.at += 1,
                }
            }
        }
        let start = self.at;
        while let Some(&b) = bytes.get(self.at) {
            if b == b',' || b == b' ' {
                break;
            }
            self.at += 1;
        }
        let raw = self.line.get(start..self.at).unwrap_or_default();
        let invalid = || InfluxErrorKind::InvalidFieldValue(raw.chars().take(64).collect());
        match raw {
            "t" | "T" | "true" | "True" | "TRUE" => return Ok(FieldValue::Bool(true)),
            "f" | "F" | "false" | "False" | "FALSE" => return Ok(FieldValue::Bool(false)),
            _ => {}
        }
        if let Some(int) = raw.strip_suffix('i') {
            return int.parse().map(FieldValue::Int).map_err(|_| invalid());
        }
        if let Some(uint) = raw.strip_suffix('u') {
            return uint.parse().map(FieldValue::UInt).map_err(|_| invalid());
        }
        // Only plain decimal notation: Rust also reads "inf" and "NaN", line protocol does not.
        let plain = !raw.is_empty()
            && raw
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
        match raw.parse::<f64>() {
            Ok(value) if plain && value.is_finite() => Ok(FieldValue::Float(value)),
            _ => Err(invalid()),
        }
    }
}

fn check_len(text: &str, limits: &InfluxLimits) -> Result<(), InfluxErrorKind> {
    if text.len() > limits.max_text_len && text.chars().count() > limits.max_text_len {
        return Err(InfluxErrorKind::TextTooLong(limits.max_text_len));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(line: &str) -> Point {
        parse(line, &InfluxLimits::default())
            .unwrap()
            .pop()
            .unwrap()
    }

    #[track_caller]
    fn refused(body: &str, line: usize, kind: InfluxErrorKind) {
        assert_eq!(
            to_frames(body, &InfluxLimits::default()),
            Err(InfluxError { line, kind })
        );
    }

    #[test]
    fn telegraf_lines_parse() {
        let p = point(
            r#"cpu,cpu=cpu-total,host=a\ b usage_idle=98.5,usage_user=1i,up=true,note="say \"hi\", ok" 1700000000000000000"#,
        );
        assert_eq!(p.measurement, "cpu");
        assert_eq!(
            p.tags,
            vec![
                ("cpu".into(), "cpu-total".into()),
                ("host".into(), "a b".into())
            ]
        );
        assert_eq!(
            p.fields,
            vec![
                ("usage_idle".into(), FieldValue::Float(98.5)),
                ("usage_user".into(), FieldValue::Int(1)),
                ("up".into(), FieldValue::Bool(true)),
                ("note".into(), FieldValue::Str("say \"hi\", ok".into())),
            ]
        );
        assert_eq!(p.timestamp, Some(1_700_000_000_000_000_000));
        assert_eq!(point("m\\,x v=1u").measurement, "m,x");
        assert_eq!(
            point("m v=-1.5e3").fields,
            vec![("v".into(), FieldValue::Float(-1500.0))]
        );
        assert_eq!(
            point("m v=\"é\"").fields,
            vec![("v".into(), FieldValue::Str("é".into()))]
        );
    }

    #[test]
    fn one_frame_per_measurement_with_a_column_per_series() {
        let body = "# telegraf\n\
            cpu,host=a usage=1 2000000000\n\
            cpu,host=b usage=2 2000000000\n\
            mem used=10i 1000000000\n\
            cpu,host=a usage=3 1000000000\n";
        let frames = to_frames(body, &InfluxLimits::default()).unwrap();
        let names: Vec<&str> = frames.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["cpu", "mem"]);
        let cpu = frames.first().unwrap();
        assert_eq!(
            cpu.full_json(),
            r#"{"schema":{"name":"cpu","fields":[{"name":"time","type":"time","typeInfo":{"frame":"time.Time"}},{"name":"usage","type":"number","typeInfo":{"frame":"float64","nullable":true},"labels":{"host":"a"}},{"name":"usage","type":"number","typeInfo":{"frame":"float64","nullable":true},"labels":{"host":"b"}}]},"data":{"values":[[1000,2000],[3.0,1.0],[null,2.0]]}}"#
        );
    }

    #[test]
    fn bad_bodies_are_clear_errors() {
        refused("cpu", 1, InfluxErrorKind::MissingFields);
        refused("cpu ", 1, InfluxErrorKind::MissingFields);
        refused(",a=b v=1", 1, InfluxErrorKind::MissingMeasurement);
        refused("cpu,host v=1", 1, InfluxErrorKind::InvalidTag);
        refused("ok v=1\ncpu v", 2, InfluxErrorKind::InvalidField);
        refused(
            "cpu v=abc",
            1,
            InfluxErrorKind::InvalidFieldValue("abc".into()),
        );
        refused(
            "cpu v=NaN",
            1,
            InfluxErrorKind::InvalidFieldValue("NaN".into()),
        );
        refused(
            "cpu v=inf",
            1,
            InfluxErrorKind::InvalidFieldValue("inf".into()),
        );
        refused(
            "cpu v=99999999999999999999i",
            1,
            InfluxErrorKind::InvalidFieldValue("99999999999999999999i".into()),
        );
        refused("cpu v=\"open", 1, InfluxErrorKind::UnterminatedString);
        refused("cpu v=1 12:00", 1, InfluxErrorKind::InvalidTimestamp);
        refused(
            "cpu v=1\ncpu v=\"x\"",
            0,
            InfluxErrorKind::TypeConflict("v".into()),
        );
        refused(
            "a/b v=1",
            1,
            InfluxErrorKind::InvalidMeasurement("a/b".into()),
        );
        refused("cpu v=\"\0\"", 1, InfluxErrorKind::Nul);
        let limits = InfluxLimits {
            max_lines: 2,
            max_fields_per_line: 2,
            max_bytes: 64,
            ..InfluxLimits::default()
        };
        assert_eq!(
            parse("a v=1\na v=1\na v=1", &limits).unwrap_err().kind,
            InfluxErrorKind::TooManyLines(2)
        );
        assert_eq!(
            parse("a x=1,y=2,z=3", &limits).unwrap_err().kind,
            InfluxErrorKind::TooManyFields(2)
        );
        assert_eq!(
            parse(&"a v=1\n".repeat(20), &limits).unwrap_err().kind,
            InfluxErrorKind::BodyTooLarge(64)
        );
        assert_eq!(
            to_frames("cpu,host v=1", &InfluxLimits::default())
                .unwrap_err()
                .to_string(),
            "line 1: a tag must be key=value"
        );
    }

    #[test]
    fn missing_timestamps_get_the_current_time() {
        let before = tandem_storage::now_ms();
        let frames = to_frames("m v=1", &InfluxLimits::default()).unwrap();
        let Some(Values::Time(times)) = frames
            .first()
            .and_then(|f| f.fields.first())
            .map(|f| &f.values)
        else {
            panic!("no time column")
        };
        assert!(times.iter().all(|t| *t >= before));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let alphabet = b"ab ,=\\\"i u.-1t\n#e";
        for _ in 0..2000 {
            let len = (seed % 40) as usize;
            let mut line = String::new();
            for _ in 0..len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                line.push(char::from(
                    alphabet[(seed % alphabet.len() as u64) as usize],
                ));
            }
            let _ = to_frames(&line, &InfluxLimits::default());
        }
    }
}
