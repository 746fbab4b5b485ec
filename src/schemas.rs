//! What a body is checked against: Panther's alert rules (the default, with their
//! exact messages), nothing, or any JSON Schema (draft 2020-12 or draft-07, with the
//! `jsonschema` crate), per path prefix if asked. Problems come in the same
//! pointer / expected / found form whichever it is.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

use serde_json::Value;

use crate::alert::{Problem, Verdict};

/// Characters of a value shown in a problem.
const SHOWN: usize = 80;

/// One schema choice: `panther`, `none`, or a JSON Schema file.
#[derive(Clone, Default)]
pub enum Schema {
    /// Panther's alert rules ([`crate::validate`]).
    #[default]
    Panther,
    /// No check.
    None,
    /// A JSON Schema, compiled once.
    File(Arc<Compiled>),
}

/// A compiled JSON Schema and where it came from.
pub struct Compiled {
    path: PathBuf,
    name: Arc<str>,
    schema: Value,
    validator: jsonschema::Validator,
}

impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// A schema file that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SchemaError(String);

impl FromStr for Schema {
    type Err = SchemaError;

    /// `panther`, `none`, or the path of a JSON Schema file (read and compiled now).
    fn from_str(text: &str) -> Result<Schema, SchemaError> {
        match text.trim() {
            "panther" => Ok(Schema::Panther),
            "none" => Ok(Schema::None),
            path => Schema::compile(PathBuf::from(path)),
        }
    }
}

impl Schema {
    fn compile(path: PathBuf) -> Result<Schema, SchemaError> {
        let shown = path.display().to_string();
        let text = std::fs::read(&path)
            .map_err(|error| SchemaError(format!("cannot read the schema {shown}: {error}")))?;
        let schema: Value = serde_json::from_slice(&text)
            .map_err(|error| SchemaError(format!("the schema {shown} is not JSON: {error}")))?;
        // Relative `$ref`s (schemas split into files, as octokit's are) are read from
        // next to the file; nothing is ever fetched over the network.
        let absolute = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        let folder = absolute
            .parent()
            .map_or_else(|| PathBuf::from("/"), std::path::Path::to_path_buf);
        let validator = jsonschema::options()
            .with_base_uri(format!("file://{}", absolute.display()))
            .with_retriever(SchemaFolder { folder })
            .build(&schema)
            .map_err(|error| {
                // The place in the user's file (the instance the meta-schema checked),
                // not the meta-schema's own path (`/properties/type/anyOf`).
                // The meta-schema's own words ("not valid under any of the schemas
                // listed in the 'anyOf' keyword") name its structure, not the user's.
                let at = error.instance_path().to_string();
                let keyword = at.rsplit('/').next().unwrap_or_default().to_owned();
                let at = if at.is_empty() { "/".to_owned() } else { at };
                let raw = serde_json::to_string(error.instance().as_ref()).unwrap_or_default();
                let found = crate::alert::describe(&raw);
                let what = if keyword.is_empty() {
                    "a schema".to_owned()
                } else {
                    format!("{keyword:?}")
                };
                SchemaError(format!(
                    "the schema {shown} is not a valid JSON Schema: at {at}: {found} is not what JSON Schema allows for {what}"
                ))
            })?;
        let name = path
            .file_name()
            .map_or_else(|| shown.clone(), |name| name.to_string_lossy().into_owned());
        Ok(Schema::File(Arc::new(Compiled {
            path,
            name: name.into(),
            schema,
            validator,
        })))
    }

    /// `panther`, `none`, or the schema file's name.
    pub fn name(&self) -> Arc<str> {
        match self {
            Schema::Panther => Arc::from("panther"),
            Schema::None => Arc::from("none"),
            Schema::File(compiled) => Arc::clone(&compiled.name),
        }
    }

    /// The file, for a JSON Schema.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            Schema::File(compiled) => Some(&compiled.path),
            _ => None,
        }
    }

    /// Checks a body; `None` for `none`.
    pub fn check(&self, body: &[u8]) -> Option<Verdict> {
        match self {
            Schema::Panther => Some(crate::alert::validate(body)),
            Schema::None => None,
            Schema::File(compiled) => Some(compiled.check(body)),
        }
    }
}

impl Compiled {
    fn check(&self, body: &[u8]) -> Verdict {
        let value: Value = match serde_json::from_slice(body) {
            Ok(value) => value,
            Err(error) => {
                return Verdict {
                    problems: vec![Problem {
                        pointer: String::new(),
                        expected: "a JSON document".into(),
                        found: format!("something else ({error})"),
                    }],
                    warnings: Vec::new(),
                    omitted: 0,
                    is_json: false,
                };
            }
        };
        let mut errors = self.validator.iter_errors(&value);
        let problems = errors
            .by_ref()
            .take(crate::alert::MAX_PROBLEMS)
            .map(|error| {
                use jsonschema::error::ValidationErrorKind as Kind;
                let pointer = error.instance_path().to_string();
                // The found value as Panther's check says it ("number 7"), whichever
                // file or `$ref` the rule came from.
                let found = || {
                    let raw = serde_json::to_string(error.instance().as_ref()).unwrap_or_default();
                    crate::alert::describe(&raw)
                };
                match error.kind() {
                    // As Panther's check says it: "expected key `x`, found nothing (missing)".
                    Kind::Required { property } => Problem {
                        pointer,
                        expected: format!("key {property} (required)"),
                        found: "nothing (missing)".into(),
                    },
                    Kind::Type { kind } => Problem {
                        pointer,
                        expected: type_words(kind),
                        found: found(),
                    },
                    Kind::Enum { options } => Problem {
                        pointer,
                        expected: shorten(&format!("one of {options}")),
                        found: found(),
                    },
                    Kind::Constant { expected_value } => Problem {
                        pointer,
                        expected: shorten(&expected_value.to_string()),
                        found: found(),
                    },
                    _ => Problem {
                        pointer,
                        expected: self.rule_at(&error.schema_path().to_string()),
                        found: shorten(&error.to_string()),
                    },
                }
            })
            .collect();
        Verdict {
            problems,
            warnings: Vec::new(),
            omitted: errors.count() as u64,
            is_json: true,
        }
    }

    /// The schema's rule a failure points at, as `keyword: value` (`type: "integer"`).
    fn rule_at(&self, schema_path: &str) -> String {
        let keyword = schema_path.rsplit('/').next().unwrap_or_default();
        match self.schema.pointer(schema_path) {
            Some(rule) => shorten(&format!("{keyword}: {rule}")),
            None => format!("the schema's {keyword:?} rule"),
        }
    }
}

/// A `type` rule in the words of Panther's check: "a string", "an integer or null".
fn type_words(kind: &jsonschema::error::TypeKind) -> String {
    use jsonschema::JsonType;
    let word = |json_type: JsonType| match json_type {
        JsonType::Null => "null",
        JsonType::Boolean => "a boolean",
        JsonType::Integer => "an integer",
        JsonType::Number => "a number",
        JsonType::String => "a string",
        JsonType::Array => "an array",
        JsonType::Object => "an object",
    };
    match kind {
        jsonschema::error::TypeKind::Single(json_type) => word(*json_type).to_owned(),
        jsonschema::error::TypeKind::Multiple(set) => {
            set.iter().map(word).collect::<Vec<_>>().join(" or ")
        }
    }
}

fn shorten(text: &str) -> String {
    crate::values::at_most_chars(text, SHOWN).into_owned()
}

/// Reads `$ref`s from the schema's folder only: never from the network, never from
/// outside it. Schemas whose `$id`s are relative to a root folder (octokit's:
/// `common/repository.schema.json` referring to `user.schema.json`) resolve, by the
/// rules, one level too deep (`common/common/user.schema.json`): a path that does not
/// exist is looked for by its shorter tails inside the folder.
struct SchemaFolder {
    folder: PathBuf,
}

impl jsonschema::Retrieve for SchemaFolder {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        if uri.scheme().as_str() != "file" {
            return Err(
                format!("{uri}: only files next to the schema are read, not the network").into(),
            );
        }
        let path = PathBuf::from(uri.path().as_str());
        let inside = |candidate: &std::path::Path| {
            std::fs::canonicalize(candidate)
                .ok()
                .filter(|real| real.starts_with(&self.folder))
        };
        let components: Vec<_> = path.components().collect();
        let found = inside(&path).or_else(|| {
            (1..components.len()).find_map(|skip| {
                let tail: PathBuf = components[skip..].iter().collect();
                inside(&self.folder.join(tail))
            })
        });
        let file = found.ok_or_else(|| format!("{uri}: no such file in the schema's folder"))?;
        let text = std::fs::read(&file)?;
        Ok(serde_json::from_slice(&text)?)
    }
}

/// A path prefix with its own schema (`--schema-route /github=github-push.json`).
#[derive(Debug, Clone)]
pub struct SchemaRoute {
    /// Path prefix, matched segment by segment as `--route` is.
    pub prefix: String,
    /// Its schema.
    pub schema: Schema,
}

impl FromStr for SchemaRoute {
    type Err = SchemaError;

    fn from_str(text: &str) -> Result<SchemaRoute, SchemaError> {
        let (prefix, schema) = text.split_once('=').ok_or_else(|| {
            SchemaError("expected PATH=SCHEMA, e.g. /github=github-push.json".into())
        })?;
        if !prefix.starts_with('/') {
            return Err(SchemaError(format!(
                "the path {prefix:?} must start with '/'"
            )));
        }
        Ok(SchemaRoute {
            prefix: prefix.to_owned(),
            schema: schema.parse()?,
        })
    }
}

impl SchemaRoute {
    fn matches(&self, path: &str) -> bool {
        let prefix = self.prefix.trim_end_matches('/');
        match path.strip_prefix(prefix) {
            Some(rest) => rest.is_empty() || rest.starts_with('/') || prefix.is_empty(),
            None => false,
        }
    }
}

/// The schema for a path: the longest matching route's, else `default`.
pub fn schema_for<'a>(default: &'a Schema, routes: &'a [SchemaRoute], path: &str) -> &'a Schema {
    routes
        .iter()
        .filter(|route| route.matches(path))
        .max_by_key(|route| route.prefix.trim_end_matches('/').len())
        .map_or(default, |route| &route.schema)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema_file(name: &str, text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("hookscope-{}-{name}", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn problems_have_the_pointer_the_rule_and_what_was_found() {
        let path = schema_file(
            "push.json",
            r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object",
                "required":["ref","commits"],
                "properties":{"ref":{"type":"string"},"commits":{"type":"array","maxItems":2}}}"#,
        );
        let schema: Schema = path.to_str().unwrap().parse().unwrap();
        assert_eq!(&*schema.name(), path.file_name().unwrap().to_str().unwrap());
        let verdict = schema
            .check(br#"{"ref": 7, "commits": [1, 2, 3]}"#)
            .unwrap();
        let mut problems: Vec<(String, String)> = verdict
            .problems
            .iter()
            .map(|p| (p.pointer.clone(), p.expected.clone()))
            .collect();
        problems.sort();
        assert_eq!(
            problems,
            [
                ("/commits".to_owned(), "maxItems: 2".to_owned()),
                ("/ref".to_owned(), "a string".to_owned())
            ]
        );
        assert!(
            schema
                .check(br#"{"ref": "main", "commits": []}"#)
                .unwrap()
                .is_valid()
        );
        let not_json = schema.check(b"ref=main").unwrap();
        assert!(!not_json.is_valid() && !not_json.is_json);
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn bad_schemas_say_why() {
        let error = |text: &str| text.parse::<Schema>().unwrap_err().to_string();
        assert!(
            error("/no/such/schema.json").contains("cannot read the schema /no/such/schema.json")
        );
        let not_json = schema_file("bad.json", "{nope");
        assert!(error(not_json.to_str().unwrap()).contains("is not JSON"));
        let invalid = schema_file("invalid.json", r#"{"type": 12}"#);
        assert!(error(invalid.to_str().unwrap()).contains("not a valid JSON Schema"));
        assert!(matches!("none".parse::<Schema>(), Ok(Schema::None)));
        let _ = std::fs::remove_file(not_json);
        let _ = std::fs::remove_file(invalid);
    }

    #[test]
    fn routes_pick_the_longest_prefix() {
        let routes: Vec<SchemaRoute> = ["/a=none", "/a/b=panther"]
            .iter()
            .map(|r| r.parse().unwrap())
            .collect();
        let default = Schema::Panther;
        assert_eq!(&*schema_for(&default, &routes, "/a/x").name(), "none");
        assert_eq!(&*schema_for(&default, &routes, "/a/b/c").name(), "panther");
        assert_eq!(&*schema_for(&default, &routes, "/ab").name(), "panther");
        assert!("nope".parse::<SchemaRoute>().is_err());
    }
}
