//! Strict argument checking: every call's arguments are validated against
//! the very schema the tool advertises, and the first violation becomes an
//! `invalid_argument` tool error naming the field and the rule. The MCP spec
//! asks for input validation failures as tool errors (not protocol errors)
//! so the model can correct itself. Messages are built from the rule, never
//! from the value: a 60 KB body or a token pasted into the wrong field is
//! never echoed back.

use std::collections::HashMap;
use std::sync::LazyLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::tools::{AGENT_TOOLS, TOOLS, YOLO_SEAT_TOOLS, YOLO_TOOLS};
use crate::bridge::Error;

/// One validator per listed tool schema, for each of the two listings.
fn validators(tools: &[rmcp::model::Tool]) -> HashMap<String, jsonschema::Validator> {
    tools
        .iter()
        .map(|t| {
            let schema = Value::Object((*t.input_schema).clone());
            let v = jsonschema::validator_for(&schema).expect("tool input schemas are valid JSON Schema");
            (t.name.to_string(), v)
        })
        .collect()
}

static SEAT_VALIDATORS: LazyLock<HashMap<String, jsonschema::Validator>> = LazyLock::new(|| {
    validators(
        &TOOLS
            .iter()
            .chain(YOLO_SEAT_TOOLS.iter())
            .cloned()
            .collect::<Vec<_>>(),
    )
});

static AGENT_VALIDATORS: LazyLock<HashMap<String, jsonschema::Validator>> = LazyLock::new(|| {
    validators(
        &AGENT_TOOLS
            .iter()
            .chain(YOLO_TOOLS.iter())
            .cloned()
            .collect::<Vec<_>>(),
    )
});

/// Builds the listing and the validators of one caller kind now, so the
/// first `tools/list` and `tools/call` find them ready: `serve` runs this
/// on a thread of its own while the client's `initialize` round trip is
/// in flight (about 1 ms of schema generation and compilation, which a
/// client otherwise waits for).
pub fn warm(agent: bool) {
    if agent {
        LazyLock::force(&AGENT_TOOLS);
        LazyLock::force(&AGENT_VALIDATORS);
    } else {
        LazyLock::force(&TOOLS);
        LazyLock::force(&SEAT_VALIDATORS);
    }
}

/// Checks arguments against tool `name`'s input schema as listed to this
/// caller (`agent`: a server acting as a registered agent); the first
/// violation becomes an `invalid_argument` error naming the field and the rule.
pub fn check(name: &str, value: &Value, agent: bool) -> Result<(), Error> {
    let set = if agent {
        &*AGENT_VALIDATORS
    } else {
        &*SEAT_VALIDATORS
    };
    match set.get(name).and_then(|v| v.iter_errors(value).next()) {
        Some(err) => Err(describe(name, err.kind(), err.instance_path().as_str(), agent)),
        None => Ok(()),
    }
}

/// Deserializes arguments that passed [`check`]. After schema validation
/// this only fails if the schema and the struct disagree, a bug; still no
/// value is echoed.
pub fn deserialize<T: DeserializeOwned>(value: Value) -> Result<T, Error> {
    serde_json::from_value(value)
        .map_err(|_| Error::invalid("arguments", "do not match the tool's input schema"))
}

/// `/files_involved/3` -> `files_involved[3]`.
fn field_name(pointer: &str) -> String {
    let mut out = String::new();
    for seg in pointer.split('/').filter(|s| !s.is_empty()) {
        if seg.bytes().all(|b| b.is_ascii_digit()) {
            out.push('[');
            out.push_str(seg);
            out.push(']');
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&seg.replace("~1", "/").replace("~0", "~"));
        }
    }
    if out.is_empty() { "arguments".into() } else { out }
}

/// A caller-chosen key, shortened and stripped so it is safe to repeat.
fn safe_key(key: &str) -> String {
    let cleaned: String = key.chars().filter(|c| !c.is_control()).take(40).collect();
    if cleaned.chars().count() < key.chars().count() {
        format!("{cleaned}...")
    } else {
        cleaned
    }
}

/// The fields `tool` accepts in the listing its caller was given.
fn accepted_fields(tool: &str, agent: bool) -> String {
    let listed: Vec<&rmcp::model::Tool> = if agent {
        AGENT_TOOLS.iter().chain(YOLO_TOOLS.iter()).collect()
    } else {
        TOOLS.iter().chain(YOLO_SEAT_TOOLS.iter()).collect()
    };
    listed
        .into_iter()
        .find(|t| t.name == tool)
        .and_then(|t| t.input_schema.get("properties"))
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}

fn type_name(kind: &TypeKind) -> String {
    let one = |t: &jsonschema::JsonType| match t.to_string().as_str() {
        "array" => "an array".to_owned(),
        "object" => "an object".to_owned(),
        "integer" => "an integer".to_owned(),
        other => format!("a {other}"),
    };
    match kind {
        TypeKind::Single(t) => one(t),
        TypeKind::Multiple(set) => set.iter().map(|t| one(&t)).collect::<Vec<_>>().join(" or "),
    }
}

/// The shape a patterned field must have, for its refusal. The value sent is
/// never repeated: a token pasted into the wrong field, or a sequence that
/// steers a terminal, would otherwise travel on into logs and the audit.
fn shape_of(field: &str) -> &'static str {
    match field {
        "conversation_id" => {
            "must be \"conv_\" followed by 32 lowercase hex characters, exactly as create_conversation returned it"
        }
        "token" => {
            "must be \"mcpb_\" followed by 43 base64url characters, exactly as create_conversation returned it for your seat"
        }
        "session_id" => {
            "must be your seat's letter: \"a\", \"b\", ... up to \"p\", as create_conversation assigned it"
        }
        "proposal_id" => {
            "must be \"prop_\" followed by 32 lowercase hex characters, exactly as propose_command returned it"
        }
        _ => "may contain only letters, digits, '-' and '_' (e.g. \"backend\", \"security-reviewer\")",
    }
}

fn describe(tool: &str, kind: &ValidationErrorKind, pointer: &str, agent: bool) -> Error {
    let field = field_name(pointer);
    match kind {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let name = unexpected.first().map(|k| safe_key(k)).unwrap_or_default();
            let name = if field == "arguments" {
                name
            } else {
                format!("{field}.{name}")
            };
            Error::invalid(
                name,
                format!(
                    "unknown field; {tool} accepts only: {}",
                    accepted_fields(tool, agent)
                ),
            )
        }
        ValidationErrorKind::Required { property } => {
            let name = property
                .as_str()
                .map(safe_key)
                .unwrap_or_else(|| property.to_string());
            Error::invalid(name, "is required")
        }
        ValidationErrorKind::Type { kind } => {
            let reason = if field == "files_involved" {
                "must be an array of strings (paths)".to_owned()
            } else {
                format!("must be {}", type_name(kind))
            };
            Error::invalid(field, reason)
        }
        ValidationErrorKind::Enum { options } => {
            let list = options
                .as_array()
                .map(|a| a.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", "))
                .unwrap_or_default();
            Error::invalid(field, format!("must be one of: {list}"))
        }
        ValidationErrorKind::MaxLength { limit } => {
            Error::invalid(field, format!("must be at most {limit} characters"))
        }
        ValidationErrorKind::MinLength { limit } if *limit <= 1 => Error::invalid(field, "must not be empty"),
        ValidationErrorKind::MinLength { limit } => {
            Error::invalid(field, format!("must be at least {limit} characters"))
        }
        ValidationErrorKind::Maximum { limit } => Error::invalid(field, format!("must be at most {limit}")),
        ValidationErrorKind::Minimum { limit } => Error::invalid(field, format!("must be at least {limit}")),
        ValidationErrorKind::MaxItems { limit } => {
            Error::invalid(field, format!("must have at most {limit} items"))
        }
        ValidationErrorKind::Pattern { .. } => {
            let reason = shape_of(&field);
            Error::invalid(field, reason)
        }
        _ => Error::invalid(field, "does not match the tool's input schema"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tools::*;
    use super::*;
    use rmcp::model::JsonObject;
    use serde_json::json;

    const CONV: &str = "conv_0123456789abcdef0123456789abcdef";
    const TOKEN: &str = "mcpb_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA-_0";

    /// What `dispatch` does with a call's arguments: drop nulls, check, then deserialize.
    fn parse<T: DeserializeOwned>(name: &str, args: Option<JsonObject>) -> Result<T, Error> {
        let mut args = args.unwrap_or_default();
        super::super::schema::drop_null_arguments(&mut args);
        let value = Value::Object(args);
        check(name, &value, false)?;
        deserialize(value)
    }

    fn args(v: Value) -> Option<JsonObject> {
        v.as_object().cloned()
    }

    fn err(tool: &str, v: Value) -> Error {
        match tool {
            SEND_TO_PARTNER => parse::<SendToPartnerArgs>(tool, args(v)).unwrap_err(),
            CREATE_CONVERSATION => parse::<CreateConversationArgs>(tool, args(v)).unwrap_err(),
            UPDATE_MY_STATUS => parse::<UpdateStatusArgs>(tool, args(v)).unwrap_err(),
            _ => parse::<SessionArgs>(tool, args(v)).unwrap_err(),
        }
    }

    fn send(extra: Value) -> Value {
        let mut base = json!({"conversation_id": CONV, "session_id": "a", "token": TOKEN, "message": "hi"});
        for (k, v) in extra.as_object().unwrap() {
            base[k] = v.clone();
        }
        base
    }

    #[test]
    fn names_an_unknown_field() {
        let e = err(SEND_TO_PARTNER, send(json!({"priority": 1})));
        assert_eq!(e.field(), Some("priority"));
        assert!(e.to_string().contains("unknown field"), "{e}");
    }

    #[test]
    fn names_a_missing_field() {
        let e = err(CREATE_CONVERSATION, json!({"partner_role": "a"}));
        assert_eq!(e.field(), Some("my_role"));
        assert!(e.to_string().contains("required"));
    }

    #[test]
    fn names_a_mistyped_field_without_echoing_it() {
        let e = err(
            SEND_TO_PARTNER,
            send(json!({"files_involved": "secret-path-value"})),
        );
        assert_eq!(e.field(), Some("files_involved"));
        assert!(!e.to_string().contains("secret-path-value"));
    }

    #[test]
    fn names_a_bad_enum_value_without_echoing_it() {
        let e = err(SEND_TO_PARTNER, send(json!({"session_id": "zzz-secret"})));
        assert_eq!(e.field(), Some("session_id"));
        assert!(e.to_string().contains("\"a\", \"b\""), "{e}");
        assert!(!e.to_string().contains("zzz-secret"));
    }

    #[test]
    fn names_the_item_over_the_path_limit() {
        let e = err(
            SEND_TO_PARTNER,
            send(json!({"files_involved": ["ok", "x".repeat(1025)]})),
        );
        assert_eq!(e.field(), Some("files_involved[1]"));
        assert!(e.to_string().contains("1024"));
    }

    #[test]
    fn refuses_too_many_files() {
        let e = err(SEND_TO_PARTNER, send(json!({"files_involved": vec!["a"; 51]})));
        assert_eq!(e.field(), Some("files_involved"));
        assert!(e.to_string().contains("50"));
    }

    #[test]
    fn refuses_bad_role_characters() {
        let e = err(
            CREATE_CONVERSATION,
            json!({"my_role": "a b", "partner_role": "b"}),
        );
        assert_eq!(e.field(), Some("my_role"));
    }

    #[test]
    fn accepts_a_well_formed_call() {
        let a: SendToPartnerArgs = parse(
            SEND_TO_PARTNER,
            args(send(json!({"action_type": "review_request"}))),
        )
        .unwrap();
        assert_eq!(a.action_type, crate::bridge::ActionType::ReviewRequest);
    }

    /// Issue 10: hostile ids reached the audit trail, checked only for length.
    #[test]
    fn hostile_conversation_ids_are_refused_by_shape_without_echo() {
        for hostile in [
            "AKIAABCDEFGHJKLMNPQ2",
            "conv_0123456789ABCDEF0123456789ABCDEF",
            "conv_0123456789abcdef0123456789abcdef\u{1b}[2K",
            "conv_0123456789abcdef0123456789abcde",
            "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB",
            "",
        ] {
            let e = err(CHECK_MESSAGES, send(json!({"conversation_id": hostile})));
            assert_eq!(e.code(), "invalid_argument");
            assert_eq!(e.field(), Some("conversation_id"), "{hostile:?}");
            assert!(
                e.to_string().contains("\"conv_\" followed by 32 lowercase hex"),
                "{e}"
            );
            if !hostile.is_empty() {
                assert!(!e.to_string().contains(hostile), "{e}");
            }
        }
    }

    #[test]
    fn tokens_of_the_wrong_shape_are_refused_without_echo() {
        for hostile in [
            "mcpb_short",
            "sk-proj-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH",
            "mcpb_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "mcpb_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\u{1b}[2K",
        ] {
            let e = err(SEND_TO_PARTNER, send(json!({"token": hostile})));
            assert_eq!(e.field(), Some("token"), "{hostile:?}");
            assert!(
                e.to_string().contains("\"mcpb_\" followed by 43 base64url"),
                "{e}"
            );
            assert!(!e.to_string().contains(hostile), "{e}");
        }
    }

    #[test]
    fn proposal_ids_of_the_wrong_shape_are_refused() {
        let mut a = send(json!({"proposal_id": "prop_../../etc/passwd"}));
        a.as_object_mut().unwrap().remove("message");
        let e = parse::<ExecuteApprovedArgs>(EXECUTE_APPROVED, args(a)).unwrap_err();
        assert_eq!(e.field(), Some("proposal_id"));
        assert!(!e.to_string().contains("passwd"), "{e}");
    }

    #[test]
    fn a_null_optional_argument_counts_as_absent() {
        let a: UpdateStatusArgs = parse(
            UPDATE_MY_STATUS,
            args(json!({"conversation_id": CONV, "session_id": "a", "token": TOKEN, "status": "working", "note": null})),
        )
        .unwrap();
        assert_eq!(a.note, None);
        let e = err(SEND_TO_PARTNER, send(json!({"message": null})));
        assert_eq!(e.field(), Some("message"));
        assert!(e.to_string().contains("required"), "{e}");
    }

    #[test]
    fn missing_arguments_are_a_tool_error() {
        let e = parse::<SessionArgs>(CHECK_MESSAGES, None).unwrap_err();
        assert_eq!(e.code(), "invalid_argument");
    }
}
