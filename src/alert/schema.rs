//! The JSON Schema (2020-12) that `hookscope schema` prints.
//!
//! It is kept in agreement with [`crate::validate`] by the tests in
//! `tests/validate_and_schema.rs`, which run both over `tests/payloads/`.
//! Duplicate keys are the one thing a JSON Schema cannot see; the validator refuses them.

/// The alert payload as a JSON Schema, draft 2020-12.
pub const JSON_SCHEMA: &str = r##"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "$id": "urn:hookscope:panther-alert",
  "title": "Panther alert (Custom Webhook payload)",
  "description": "What Panther POSTs to a Custom Webhook destination. Unknown keys and unknown alert types are allowed (hookscope warns about them).",
  "type": "object",
  "required": [
    "id",
    "createdAt",
    "severity",
    "type",
    "link",
    "title",
    "name",
    "alertId",
    "description",
    "runbook",
    "tags",
    "version"
  ],
  "properties": {
    "id": {
      "type": "string",
      "minLength": 1,
      "description": "Rule or policy id, e.g. AllLogs.IPMonitoring"
    },
    "createdAt": {
      "type": "string",
      "pattern": "^(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29)T(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:\\.[0-9]{1,9})?)?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9])?)$",
      "description": "AWSDateTime: YYYY-MM-DDThh:mm[:ss[.f]] with offset Z, \u00b1hh:mm or \u00b1hh:mm:ss; the date must exist"
    },
    "severity": {
      "enum": [
        "INFO",
        "LOW",
        "MEDIUM",
        "HIGH",
        "CRITICAL"
      ]
    },
    "type": {
      "type": "string",
      "examples": [
        "RULE",
        "RULE_ERROR",
        "POLICY",
        "SCHEDULED_RULE",
        "SCHEDULED_RULE_ERROR",
        "SYSTEM_ERROR"
      ]
    },
    "link": {
      "type": "string"
    },
    "title": {
      "type": "string"
    },
    "name": {
      "type": [
        "string",
        "null"
      ]
    },
    "alertId": {
      "type": [
        "string",
        "null"
      ],
      "description": "null for policy alerts"
    },
    "description": {
      "type": [
        "string",
        "null"
      ]
    },
    "runbook": {
      "type": [
        "string",
        "null"
      ]
    },
    "tags": {
      "type": "array",
      "items": {
        "type": "string"
      }
    },
    "version": {
      "type": [
        "string",
        "null"
      ]
    },
    "alertContext": {
      "type": "object",
      "description": "Absent from older payloads"
    }
  }
}"##;
