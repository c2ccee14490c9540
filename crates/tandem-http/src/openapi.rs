//! `GET /api/openapi.json`: an OpenAPI 3.0 description of every API route, made from the
//! route table itself ([`crate::route_table`]), so it cannot drift from what is served:
//! each route's method and path (with its path parameters), the query keys and the JSON
//! body it reads (with the table's examples), whether it needs a signed-in caller, and
//! Grafana's error body. Bodies are described by their example, not by a schema: Grafana
//! publishes no schema Tandem could be checked against, and a tool such as schemathesis
//! then sends the example and arbitrary JSON, which must never be answered 5xx.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::routing::RouteSpec;
use crate::state::AppState;

/// `GET /api/openapi.json`, built once per process.
pub(crate) async fn document(State(state): State<AppState>) -> Response {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    let text =
        DOCUMENT.get_or_init(|| describe(&crate::route_table(), state.build.version).to_string());
    ([(header::CONTENT_TYPE, "application/json")], text.clone()).into_response()
}

/// The document for `routes`.
pub(crate) fn describe(routes: &[RouteSpec], version: &str) -> Value {
    let mut paths: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    for route in routes {
        let Some(method) = method_key(&route.method) else {
            continue;
        };
        paths
            .entry(route.path)
            .or_default()
            .insert(method.to_owned(), operation(route, method));
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Tandem HTTP API",
            "version": version,
            "description": "Grafana 12's HTTP API as Tandem serves it. Generated from the server's route table; request bodies are shown by example.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic"},
                "bearer": {"type": "http", "scheme": "bearer", "description": "a service account token (glsa_…)"},
                "session": {"type": "apiKey", "in": "cookie", "name": "grafana_session"},
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": {"message": {"type": "string"}, "status": {"type": "string"}},
                    "required": ["message"],
                },
            },
        },
    })
}

fn method_key(method: &Method) -> Option<&'static str> {
    Some(match *method {
        Method::GET => "get",
        Method::POST => "post",
        Method::PUT => "put",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        Method::HEAD => "head",
        Method::OPTIONS => "options",
        _ => return None,
    })
}

fn operation(route: &RouteSpec, method: &str) -> Value {
    let mut parameters: Vec<Value> = path_parameters(route.path)
        .map(|name| {
            json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
        })
        .collect();
    parameters.extend(query_parameters(route.query));
    let mut op = Map::new();
    op.insert(
        "operationId".into(),
        json!(operation_id(method, route.path)),
    );
    op.insert("parameters".into(), Value::Array(parameters));
    op.insert(
        "responses".into(),
        json!({
            "200": {"description": "Success", "content": {"application/json": {"schema": {}}}},
            "4XX": {
                "description": "The request was refused; nothing was written",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        }),
    );
    let security = if route.public {
        json!([])
    } else {
        json!([{"basic": []}, {"bearer": []}, {"session": []}])
    };
    op.insert("security".into(), security);
    if let Some(body) = route.body {
        let example: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        op.insert(
            "requestBody".into(),
            json!({
                "required": true,
                "content": {"application/json": {"schema": {}, "example": example}},
            }),
        );
    }
    Value::Object(op)
}

/// The `{name}` segments of an axum path template.
fn path_parameters(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
}

/// One parameter per query key of the example (`a=1&a=2` is an array), with its value as
/// the example.
fn query_parameters(query: &str) -> Vec<Value> {
    let mut keys: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        keys.entry(key).or_default().push(value);
    }
    keys.into_iter()
        .map(|(key, values)| {
            let (schema, example) = match values.as_slice() {
                [one] => (json!({"type": "string"}), json!(one)),
                many => (json!({"type": "array", "items": {"type": "string"}}), json!(many)),
            };
            json!({"name": key, "in": "query", "required": false, "schema": schema, "example": example})
        })
        .collect()
}

/// `get /api/users/{id}` → `get_api_users_id`, unique per method and path.
fn operation_id(method: &str, path: &str) -> String {
    let mut id = String::from(method);
    for c in path.chars() {
        if c.is_ascii_alphanumeric() {
            id.push(c);
        } else if c == '/' || c == '-' || c == '.' {
            id.push('_');
        }
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_described_once_with_its_parameters_and_example() {
        let routes = crate::route_table();
        let doc = describe(&routes, "1.2.3");
        assert_eq!(doc["openapi"], "3.0.3");
        let mut ids = std::collections::HashSet::new();
        for route in &routes {
            let method = method_key(&route.method).expect("a method OpenAPI names");
            let op = &doc["paths"][route.path][method];
            assert!(
                op.is_object(),
                "{} {} is described",
                route.method,
                route.path
            );
            assert!(
                ids.insert(op["operationId"].as_str().unwrap().to_owned()),
                "unique ids"
            );
            let named: Vec<&str> = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            assert_eq!(named, path_parameters(route.path).collect::<Vec<_>>());
            assert_eq!(
                op["requestBody"].is_object(),
                route.body.is_some(),
                "{}",
                route.path
            );
            assert_eq!(op["security"] == json!([]), route.public, "{}", route.path);
        }
        let users = &doc["paths"]["/api/users/{id}"]["get"];
        assert_eq!(users["parameters"][0]["name"], "id");
    }

    #[test]
    fn repeated_query_keys_are_arrays() {
        let params = query_parameters("tag=a&tag=b&limit=10");
        assert_eq!(params[0]["name"], "limit");
        assert_eq!(params[1]["schema"]["type"], "array");
        assert_eq!(params[1]["example"], json!(["a", "b"]));
    }
}
