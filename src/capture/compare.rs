//! Comparing two exchanges the way a person reads them: headers by name, and the
//! body JSON-aware, by pointer (a reordered object is no change; a changed value
//! is one line, not a block of lines).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::Exchange;

/// One difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// `header:NAME`, `method`, `path`, `query`, or the body's JSON pointer (`/severity`;
    /// `body` for a body that is not JSON).
    pub at: String,
    /// The value in the first exchange, if it has one there.
    pub before: Option<String>,
    /// The value in the second.
    pub after: Option<String>,
}

/// What differs from `a` to `b`, in order: request line, headers, body.
pub fn compare(a: &Exchange, b: &Exchange) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut field = |at: &str, before: Option<String>, after: Option<String>| {
        if before != after {
            changes.push(Change {
                at: at.to_owned(),
                before,
                after,
            });
        }
    };
    field(
        "method",
        Some(a.method.to_string()),
        Some(b.method.to_string()),
    );
    field("path", Some(a.path.clone()), Some(b.path.clone()));
    field("query", a.query.clone(), b.query.clone());
    let headers = |exchange: &Exchange| -> BTreeMap<String, String> {
        let mut map = BTreeMap::new();
        for (name, value) in exchange.header_pairs() {
            map.entry(format!("header:{name}"))
                .and_modify(|joined: &mut String| {
                    joined.push_str(", ");
                    joined.push_str(&value);
                })
                .or_insert_with(|| value.into_owned());
        }
        map
    };
    merge(&mut changes, headers(a), headers(b));
    let json = |exchange: &Exchange| serde_json::from_slice::<Value>(&exchange.body).ok();
    match (json(a), json(b)) {
        (Some(before), Some(after)) => {
            let (mut left, mut right) = (BTreeMap::new(), BTreeMap::new());
            flatten(&before, String::new(), &mut left);
            flatten(&after, String::new(), &mut right);
            merge(&mut changes, left, right);
        }
        _ => {
            let text = |exchange: &Exchange| Some(exchange.body_text().into_owned());
            if a.body != b.body {
                changes.push(Change {
                    at: "body".into(),
                    before: text(a),
                    after: text(b),
                });
            }
        }
    }
    changes
}

fn merge(
    changes: &mut Vec<Change>,
    before: BTreeMap<String, String>,
    mut after: BTreeMap<String, String>,
) {
    for (at, value) in before {
        let other = after.remove(&at);
        if other.as_ref() != Some(&value) {
            changes.push(Change {
                at,
                before: Some(value),
                after: other,
            });
        }
    }
    for (at, value) in after {
        changes.push(Change {
            at,
            before: None,
            after: Some(value),
        });
    }
}

/// Every leaf (and every empty object or array) by its JSON pointer.
fn flatten(value: &Value, pointer: String, out: &mut BTreeMap<String, String>) {
    let escape = |key: &str| key.replace('~', "~0").replace('/', "~1");
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, item) in map {
                flatten(item, format!("{pointer}/{}", escape(key)), out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (index, item) in items.iter().enumerate() {
                flatten(item, format!("{pointer}/{index}"), out);
            }
        }
        leaf => {
            let at = if pointer.is_empty() {
                "/".to_owned()
            } else {
                pointer
            };
            out.insert(at, leaf.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange(body: &str, header: &str) -> Exchange {
        let mut exchange = Exchange::posted(1, "/", 200, body.as_bytes());
        exchange
            .headers
            .insert("x-attempt", http::HeaderValue::from_str(header).unwrap());
        exchange
    }

    #[test]
    fn bodies_are_compared_by_pointer_and_order_does_not_matter() {
        let a = exchange(
            r#"{"severity":"INFO","tags":["a"],"ctx":{"ip":"1"},"same":1}"#,
            "1",
        );
        let b = exchange(
            r#"{"same":1,"severity":"HIGH","ctx":{"ip":"1","port":22},"tags":[]}"#,
            "4",
        );
        let changes = compare(&a, &b);
        let at: Vec<&str> = changes.iter().map(|c| c.at.as_str()).collect();
        assert_eq!(
            at,
            [
                "header:x-attempt",
                "/severity",
                "/tags/0",
                "/ctx/port",
                "/tags"
            ]
        );
        assert_eq!(changes[1].before.as_deref(), Some("\"INFO\""));
        assert_eq!(changes[1].after.as_deref(), Some("\"HIGH\""));
        assert_eq!(changes[3].before, None);
        assert!(compare(&a, &a).is_empty());
    }

    #[test]
    fn text_bodies_are_compared_whole() {
        let changes = compare(&exchange("a=1", "1"), &exchange("a=2", "1"));
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].at, "body");
    }
}
