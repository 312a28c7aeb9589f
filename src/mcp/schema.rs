//! Turns the schemas schemars derives into schemas every MCP client accepts,
//! at the size an agent pays for on every turn.
//!
//! schemars writes what Rust knows: `format: "int64"` on an `i64`, a union
//! type `["string", "null"]` for an `Option<String>`, the struct's name as
//! `title` and its doc comment as `description`. Standard validators do not
//! know the integer formats (Ajv refuses them in strict mode and warns
//! otherwise), Ajv strict mode refuses union types, and the prose of the
//! output structs doubled the size of `tools/list`. So, once per process:
//!
//! - only formats defined by JSON Schema itself survive;
//! - an optional *input* is plain `{"type": T}`, left out of `required`: an
//!   agent leaves it out (or sends `null`, which [`drop_null_arguments`]
//!   treats the same);
//! - a nullable *output* is `{"anyOf": [{"type": T}, {"type": "null"}]}`,
//!   the form JSON Schema validators in every language accept;
//! - the struct's own `title` and `description` go (the tool carries both),
//!   and output schemas keep only their shape: the tool's description says
//!   what the result means.

use serde_json::{Map, Value};

/// Which side of a tool a schema describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// `inputSchema`: what the model fills in; property descriptions stay.
    Input,
    /// `outputSchema`: what the client validates; shape only.
    Output,
}

/// The formats JSON Schema 2020-12 defines; any other is dropped.
const STANDARD_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// Makes a derived root schema portable and compact (see the module doc).
pub fn portable(mut root: Map<String, Value>, side: Side) -> Map<String, Value> {
    root.remove("title");
    root.remove("description");
    root.remove("$schema");
    let mut value = Value::Object(root);
    rewrite(&mut value, side);
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Removes top-level arguments whose value is `null`: an optional argument
/// sent as `null` (as some function-calling front ends do for every field
/// they leave unset) means the same as leaving it out. A required argument
/// sent as `null` is then reported as missing.
pub fn drop_null_arguments(args: &mut Map<String, Value>) {
    args.retain(|_, v| !v.is_null());
}

/// Rewrites one schema and then each subschema, walking only the keywords
/// that hold schemas, so a property named `format` or `description` is
/// never mistaken for the keyword.
fn rewrite(value: &mut Value, side: Side) {
    let Value::Object(map) = value else {
        return;
    };
    rewrite_object(map, side);
    if let Some(Value::Object(props)) = map.get_mut("properties") {
        props.values_mut().for_each(|v| rewrite(v, side));
    }
    for key in ["items", "additionalProperties"] {
        if let Some(sub) = map.get_mut(key) {
            rewrite(sub, side);
        }
    }
    // A list's items keep their properties but not the `required` list: the
    // three message lists repeat it, and the top level already pins the shape.
    if side == Side::Output
        && let Some(Value::Object(items)) = map.get_mut("items")
    {
        items.remove("required");
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(Value::Array(subs)) = map.get_mut(key) {
            subs.iter_mut().for_each(|v| rewrite(v, side));
        }
    }
}

fn rewrite_object(map: &mut Map<String, Value>, side: Side) {
    if let Some(Value::String(format)) = map.get("format")
        && !STANDARD_FORMATS.contains(&format.as_str())
    {
        map.remove("format");
    }
    if side == Side::Output {
        // A result is read, never validated by the model: its fields' types
        // are what it needs; descriptions and value bounds only cost tokens.
        for key in ["description", "title", "pattern", "minimum", "maximum"] {
            map.remove(key);
        }
        // A list of strings says so in its field's name (`redacted`,
        // `files_involved`); seven copies of the item schema are not worth it.
        if map
            .get("items")
            .and_then(|i| i.get("type"))
            .and_then(Value::as_str)
            == Some("string")
        {
            map.remove("items");
        }
    }
    let Some(base) = nullable_base(map) else {
        return;
    };
    match side {
        Side::Input => {
            map.insert("type".into(), Value::String(base));
            if map.get("default").is_some_and(Value::is_null) {
                map.remove("default");
            }
        }
        Side::Output => {
            // Everything but the annotations moves into the non-null branch.
            let mut branch = Map::new();
            for key in map.keys().cloned().collect::<Vec<_>>() {
                if !matches!(key.as_str(), "description" | "title" | "default") {
                    branch.insert(key.clone(), map.remove(&key).unwrap_or_default());
                }
            }
            branch.insert("type".into(), Value::String(base));
            let null = Value::Object(Map::from_iter([("type".into(), Value::String("null".into()))]));
            map.insert("anyOf".into(), Value::Array(vec![Value::Object(branch), null]));
        }
    }
}

/// `Some("string")` for `"type": ["string", "null"]` (in either order).
fn nullable_base(map: &Map<String, Value>) -> Option<String> {
    let Value::Array(types) = map.get("type")? else {
        return None;
    };
    let mut non_null = types.iter().filter(|t| t.as_str() != Some("null"));
    let base = non_null.next()?.as_str()?.to_owned();
    (types.len() == 2 && non_null.next().is_none()).then_some(base)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn drops_rust_integer_formats_and_keeps_standard_ones() {
        let out = portable(
            obj(json!({"type": "object", "properties": {
                "n": {"type": "integer", "format": "int64"},
                "u": {"type": "integer", "format": "uint32", "minimum": 0},
                "at": {"type": "string", "format": "date-time"}
            }})),
            Side::Input,
        );
        assert_eq!(out["properties"]["n"], json!({"type": "integer"}));
        assert_eq!(out["properties"]["u"], json!({"type": "integer", "minimum": 0}));
        assert_eq!(out["properties"]["at"]["format"], json!("date-time"));
    }

    #[test]
    fn nullable_output_becomes_any_of_with_null() {
        let out = portable(
            obj(
                json!({"type": "object", "title": "X", "description": "d", "properties": {
                    "s": {"type": ["integer", "null"], "format": "int64", "description": "secs"}
                }}),
            ),
            Side::Output,
        );
        assert_eq!(
            Value::Object(out),
            json!({"type": "object", "properties": {
                "s": {"anyOf": [{"type": "integer"}, {"type": "null"}]}
            }})
        );
    }

    #[test]
    fn nullable_input_becomes_its_plain_type() {
        let out = portable(
            obj(json!({"type": "object", "properties": {
                "note": {"type": ["string", "null"], "maxLength": 9, "default": null, "description": "n"}
            }})),
            Side::Input,
        );
        assert_eq!(
            out["properties"]["note"],
            json!({"type": "string", "maxLength": 9, "description": "n"})
        );
    }

    #[test]
    fn a_property_named_description_is_not_a_keyword() {
        let out = portable(
            obj(json!({"type": "object", "properties": {"description": {"type": "string"}}})),
            Side::Output,
        );
        assert_eq!(out["properties"]["description"], json!({"type": "string"}));
    }

    #[test]
    fn null_arguments_count_as_absent() {
        let mut args = obj(json!({"note": null, "status": "working"}));
        drop_null_arguments(&mut args);
        assert_eq!(Value::Object(args), json!({"status": "working"}));
    }
}
