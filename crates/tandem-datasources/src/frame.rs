//! Grafana's data frames and their JSON form.
//!
//! A [`Frame`] is columns of equal length; it serialises as Grafana's data frame JSON:
//! `{"schema": {"name"?, "refId"?, "meta"?, "fields": [{"name", "type", "typeInfo":
//! {"frame", "nullable"?}, "labels"?, "config"?}]}, "data": {"values": [[…], …]}}`, times
//! in epoch milliseconds. NaN and ±Inf, which JSON cannot carry, are written as `null` with
//! their positions in `data.entities` (`{"NaN": [i], "Inf": [j], "NegInf": [k]}`), as
//! Grafana's own encoder does.

use std::collections::BTreeMap;

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

/// Labels of a field (a series' identity): sorted by name.
pub type Labels = BTreeMap<String, String>;

/// A data frame: named, typed columns of equal length.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Frame {
    /// The frame's name (often empty).
    pub name: String,
    /// The refId of the query that produced it.
    pub ref_id: String,
    /// Metadata (`meta`), if any.
    pub meta: Option<FrameMeta>,
    /// The columns.
    pub fields: Vec<Field>,
}

/// A frame's `meta`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FrameMeta {
    /// The data plane type, e.g. `timeseries-multi`, `numeric-multi`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The version of that type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub type_version: Option<[u32; 2]>,
    /// The query as the backend ran it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executed_query_string: Option<String>,
}

impl FrameMeta {
    /// Metadata naming a data plane type and version.
    pub fn typed(kind: &str, version: [u32; 2]) -> Option<FrameMeta> {
        Some(FrameMeta {
            kind: Some(kind.to_owned()),
            type_version: Some(version),
            executed_query_string: None,
        })
    }
}

/// One column.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Field {
    /// The column's name.
    pub name: String,
    /// Its labels; empty labels are left out of the JSON.
    pub labels: Labels,
    /// Display settings.
    pub config: FieldConfig,
    /// The values.
    pub values: Values,
}

/// A field's `config`; empty settings are left out of the JSON.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldConfig {
    /// The spacing of a time column, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    /// The series name the data source chose (Prometheus' `legendFormat`).
    #[serde(rename = "displayNameFromDS", skip_serializing_if = "Option::is_none")]
    pub display_name_from_ds: Option<String>,
}

impl FieldConfig {
    fn is_empty(&self) -> bool {
        self.interval.is_none() && self.display_name_from_ds.is_none()
    }
}

/// A column's values, by type.
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    /// Times in epoch milliseconds, never null (Go's `time.Time`).
    Time(Vec<i64>),
    /// Times in epoch milliseconds that may be null (`*time.Time`).
    NullableTime(Vec<Option<i64>>),
    /// Numbers that may be null (`*float64`).
    Number(Vec<Option<f64>>),
    /// Whole numbers that may be null (`*int64`).
    Int(Vec<Option<i64>>),
    /// Booleans that may be null (`*bool`).
    Bool(Vec<Option<bool>>),
    /// Text that may be null (`*string`).
    Text(Vec<Option<String>>),
}

impl Default for Values {
    fn default() -> Values {
        Values::Number(Vec::new())
    }
}

impl Values {
    /// How many values.
    pub fn len(&self) -> usize {
        match self {
            Values::Time(v) => v.len(),
            Values::NullableTime(v) => v.len(),
            Values::Number(v) => v.len(),
            Values::Int(v) => v.len(),
            Values::Bool(v) => v.len(),
            Values::Text(v) => v.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether this is a time column.
    pub fn is_time(&self) -> bool {
        matches!(self, Values::Time(_) | Values::NullableTime(_))
    }

    /// Whether this is a numeric column.
    pub fn is_number(&self) -> bool {
        matches!(self, Values::Number(_) | Values::Int(_))
    }

    /// The time at `i` of a time column.
    pub fn time_at(&self, i: usize) -> Option<i64> {
        match self {
            Values::Time(v) => v.get(i).copied(),
            Values::NullableTime(v) => v.get(i).copied().flatten(),
            _ => None,
        }
    }

    /// The number at `i` of a numeric column (`None` for null).
    pub fn number_at(&self, i: usize) -> Option<f64> {
        match self {
            Values::Number(v) => v.get(i).copied().flatten(),
            // Precision loss past 2^53 is what Grafana's float conversion does too.
            Values::Int(v) => v.get(i).copied().flatten().map(|n| n as f64),
            _ => None,
        }
    }

    fn type_names(&self) -> (&'static str, &'static str, bool) {
        match self {
            Values::Time(_) => ("time", "time.Time", false),
            Values::NullableTime(_) => ("time", "time.Time", true),
            Values::Number(_) => ("number", "float64", true),
            Values::Int(_) => ("number", "int64", true),
            Values::Bool(_) => ("boolean", "bool", true),
            Values::Text(_) => ("string", "string", true),
        }
    }
}

impl Field {
    /// A non-nullable time column named `name`.
    pub fn time(name: &str, times: Vec<i64>) -> Field {
        Field {
            name: name.to_owned(),
            values: Values::Time(times),
            ..Field::default()
        }
    }

    /// A nullable number column named `name` with `labels`.
    pub fn number(name: &str, labels: Labels, values: Vec<Option<f64>>) -> Field {
        Field {
            name: name.to_owned(),
            labels,
            values: Values::Number(values),
            ..Field::default()
        }
    }
}

impl Frame {
    /// How many rows (the length of the first column).
    pub fn row_count(&self) -> usize {
        self.fields.first().map_or(0, |f| f.values.len())
    }
}

impl Serialize for Frame {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("schema", &Schema(self))?;
        map.serialize_entry("data", &Data(&self.fields))?;
        map.end()
    }
}

struct Schema<'a>(&'a Frame);

impl Serialize for Schema<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let frame = self.0;
        let mut map = serializer.serialize_map(None)?;
        if !frame.name.is_empty() {
            map.serialize_entry("name", &frame.name)?;
        }
        if !frame.ref_id.is_empty() {
            map.serialize_entry("refId", &frame.ref_id)?;
        }
        if let Some(meta) = &frame.meta {
            map.serialize_entry("meta", meta)?;
        }
        let fields: Vec<FieldSchema<'_>> = frame.fields.iter().map(FieldSchema).collect();
        map.serialize_entry("fields", &fields)?;
        map.end()
    }
}

struct FieldSchema<'a>(&'a Field);

impl Serialize for FieldSchema<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let field = self.0;
        let (kind, frame_type, nullable) = field.values.type_names();
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("name", &field.name)?;
        map.serialize_entry("type", kind)?;
        map.serialize_entry(
            "typeInfo",
            &TypeInfo {
                frame: frame_type,
                nullable,
            },
        )?;
        if !field.labels.is_empty() {
            map.serialize_entry("labels", &field.labels)?;
        }
        if !field.config.is_empty() {
            map.serialize_entry("config", &field.config)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct TypeInfo {
    frame: &'static str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    nullable: bool,
}

struct Data<'a>(&'a [Field]);

impl Serialize for Data<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let entities: Vec<Option<Entities>> = self
            .0
            .iter()
            .map(|field| match &field.values {
                Values::Number(values) => Entities::of(values),
                _ => None,
            })
            .collect();
        let mut map = serializer.serialize_map(None)?;
        let columns: Vec<Column<'_>> = self.0.iter().map(|f| Column(&f.values)).collect();
        map.serialize_entry("values", &columns)?;
        if entities.iter().any(Option::is_some) {
            map.serialize_entry("entities", &entities)?;
        }
        map.end()
    }
}

struct Column<'a>(&'a Values);

impl Serialize for Column<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Values::Time(v) => v.serialize(serializer),
            Values::NullableTime(v) | Values::Int(v) => v.serialize(serializer),
            Values::Bool(v) => v.serialize(serializer),
            Values::Text(v) => v.serialize(serializer),
            Values::Number(v) => {
                let mut seq = serializer.serialize_seq(Some(v.len()))?;
                for value in v {
                    // serde_json writes non-finite floats as null; the entities say which.
                    seq.serialize_element(&value.filter(|f| f.is_finite()))?;
                }
                seq.end()
            }
        }
    }
}

#[derive(Default, Serialize)]
struct Entities {
    #[serde(rename = "NaN", skip_serializing_if = "Vec::is_empty")]
    nan: Vec<usize>,
    #[serde(rename = "Inf", skip_serializing_if = "Vec::is_empty")]
    inf: Vec<usize>,
    #[serde(rename = "NegInf", skip_serializing_if = "Vec::is_empty")]
    neg_inf: Vec<usize>,
}

impl Entities {
    fn of(values: &[Option<f64>]) -> Option<Entities> {
        let mut entities = Entities::default();
        for (i, value) in values.iter().enumerate() {
            match value {
                Some(f) if f.is_nan() => entities.nan.push(i),
                Some(f) if *f == f64::INFINITY => entities.inf.push(i),
                Some(f) if *f == f64::NEG_INFINITY => entities.neg_inf.push(i),
                _ => {}
            }
        }
        let any =
            !(entities.nan.is_empty() && entities.inf.is_empty() && entities.neg_inf.is_empty());
        any.then_some(entities)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn frames_serialise_in_grafanas_shape() {
        let frame = Frame {
            ref_id: "A".to_owned(),
            meta: FrameMeta::typed("timeseries-multi", [0, 1]),
            fields: vec![
                Field {
                    config: FieldConfig {
                        interval: Some(15000),
                        ..FieldConfig::default()
                    },
                    ..Field::time("Time", vec![1_700_000_000_000, 1_700_000_015_000])
                },
                Field {
                    config: FieldConfig {
                        display_name_from_ds: Some("api".to_owned()),
                        ..FieldConfig::default()
                    },
                    ..Field::number(
                        "Value",
                        Labels::from([("job".to_owned(), "api".to_owned())]),
                        vec![Some(0.25), Some(0.5)],
                    )
                },
            ],
            ..Frame::default()
        };
        assert_eq!(
            serde_json::to_value(&frame).unwrap(),
            json!({"schema":{"refId":"A","meta":{"type":"timeseries-multi","typeVersion":[0,1]},
              "fields":[{"name":"Time","type":"time","typeInfo":{"frame":"time.Time"},"config":{"interval":15000}},
                        {"name":"Value","type":"number","typeInfo":{"frame":"float64","nullable":true},"labels":{"job":"api"},"config":{"displayNameFromDS":"api"}}]},
              "data":{"values":[[1_700_000_000_000_i64,1_700_000_015_000_i64],[0.25,0.5]]}})
        );
    }

    #[test]
    fn non_finite_numbers_become_entities() {
        let frame = Frame {
            fields: vec![
                Field::time("Time", vec![1, 2, 3, 4]),
                Field::number(
                    "Value",
                    Labels::new(),
                    vec![
                        Some(f64::NAN),
                        None,
                        Some(f64::INFINITY),
                        Some(f64::NEG_INFINITY),
                    ],
                ),
            ],
            ..Frame::default()
        };
        let json = serde_json::to_value(&frame).unwrap();
        assert_eq!(json["data"]["values"][1], json!([null, null, null, null]));
        assert_eq!(
            json["data"]["entities"],
            json!([null, {"NaN": [0], "Inf": [2], "NegInf": [3]}])
        );
    }
}
