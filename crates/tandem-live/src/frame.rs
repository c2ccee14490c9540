//! Grafana data frames in their JSON form (`data.FrameToJSON`): a schema (name, fields
//! with types and labels) and the data (one array of values per field).

use std::collections::BTreeMap;

use serde::Serialize;

/// A data frame.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    /// The frame's name (the measurement).
    pub name: String,
    /// Its columns.
    pub fields: Vec<Field>,
}

/// One column.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    /// The field's name.
    pub name: String,
    /// Its labels (the series' tags).
    pub labels: BTreeMap<String, String>,
    /// Its values.
    pub values: Values,
}

/// A column's values.
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    /// Times, in milliseconds since the epoch.
    Time(Vec<i64>),
    /// Numbers (nullable).
    Number(Vec<Option<f64>>),
    /// Strings (nullable).
    Text(Vec<Option<String>>),
    /// Booleans (nullable).
    Bool(Vec<Option<bool>>),
}

impl Values {
    fn type_names(&self) -> (&'static str, &'static str, bool) {
        match self {
            Values::Time(_) => ("time", "time.Time", false),
            Values::Number(_) => ("number", "float64", true),
            Values::Text(_) => ("string", "string", true),
            Values::Bool(_) => ("boolean", "bool", true),
        }
    }

    /// How many values the column holds.
    pub fn len(&self) -> usize {
        match self {
            Values::Time(v) => v.len(),
            Values::Number(v) => v.len(),
            Values::Text(v) => v.len(),
            Values::Bool(v) => v.len(),
        }
    }

    /// Whether the column is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Frame {
    /// `{"name":…,"fields":[{"name","type","typeInfo","labels"?}…]}`.
    pub fn schema_json(&self) -> String {
        json(&self.schema())
    }

    /// `{"schema":…,"data":{"values":[…]}}`: what a new subscriber needs.
    pub fn full_json(&self) -> String {
        json(&FullWire {
            schema: self.schema(),
            data: self.data(),
        })
    }

    /// `{"data":{"values":[…]}}`: what subscribers who have the schema get.
    pub fn data_only_json(&self) -> String {
        json(&DataOnlyWire { data: self.data() })
    }

    fn schema(&self) -> SchemaWire<'_> {
        SchemaWire {
            name: &self.name,
            fields: self
                .fields
                .iter()
                .map(|field| {
                    let (kind, frame, nullable) = field.values.type_names();
                    FieldWire {
                        name: &field.name,
                        kind,
                        type_info: TypeInfoWire { frame, nullable },
                        labels: (!field.labels.is_empty()).then_some(&field.labels),
                    }
                })
                .collect(),
        }
    }

    fn data(&self) -> DataWire<'_> {
        DataWire {
            values: self.fields.iter().map(|field| &field.values).collect(),
        }
    }
}

impl Serialize for Values {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Values::Time(v) => v.serialize(serializer),
            // serde_json writes non-finite numbers as null, as Grafana's JSON does.
            Values::Number(v) => v.serialize(serializer),
            Values::Text(v) => v.serialize(serializer),
            Values::Bool(v) => v.serialize(serializer),
        }
    }
}

#[derive(Serialize)]
struct SchemaWire<'a> {
    name: &'a str,
    fields: Vec<FieldWire<'a>>,
}

#[derive(Serialize)]
struct FieldWire<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "typeInfo")]
    type_info: TypeInfoWire,
    #[serde(skip_serializing_if = "Option::is_none")]
    labels: Option<&'a BTreeMap<String, String>>,
}

#[derive(Serialize)]
struct TypeInfoWire {
    frame: &'static str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    nullable: bool,
}

#[derive(Serialize)]
struct DataWire<'a> {
    values: Vec<&'a Values>,
}

#[derive(Serialize)]
struct FullWire<'a> {
    schema: SchemaWire<'a>,
    data: DataWire<'a>,
}

#[derive(Serialize)]
struct DataOnlyWire<'a> {
    data: DataWire<'a>,
}

fn json<T: Serialize>(value: &T) -> String {
    crate::protocol::reply::json(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_serialise_as_grafana_does() {
        let frame = Frame {
            name: "cpu".into(),
            fields: vec![
                Field {
                    name: "time".into(),
                    labels: BTreeMap::new(),
                    values: Values::Time(vec![1000, 2000]),
                },
                Field {
                    name: "usage".into(),
                    labels: BTreeMap::from([("host".into(), "a".into())]),
                    values: Values::Number(vec![Some(1.5), None]),
                },
            ],
        };
        assert_eq!(
            frame.full_json(),
            r#"{"schema":{"name":"cpu","fields":[{"name":"time","type":"time","typeInfo":{"frame":"time.Time"}},{"name":"usage","type":"number","typeInfo":{"frame":"float64","nullable":true},"labels":{"host":"a"}}]},"data":{"values":[[1000,2000],[1.5,null]]}}"#
        );
        assert_eq!(
            frame.data_only_json(),
            r#"{"data":{"values":[[1000,2000],[1.5,null]]}}"#
        );
    }
}
