//! The JSON report: the model serialized as is, with `schema_version` first-class.

use crate::model::{RunReport, REPORT_SCHEMA_VERSION};

/// The JSON report, pretty-printed, ending with a newline. `schema_version` is always this
/// build's [`REPORT_SCHEMA_VERSION`]: it describes the shape written, whatever the struct held.
pub fn to_json(report: &RunReport) -> String {
    let mut value = match serde_json::to_value(report) {
        Ok(v) => v,
        // Unreachable for this model (string keys, no non-finite floats); never panic anyway.
        Err(e) => return format!("{{\"error\": {:?}}}\n", e.to_string()),
    };
    if let Some(obj) = value.as_object_mut() {
        obj.insert("schema_version".to_string(), REPORT_SCHEMA_VERSION.into());
    }
    let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
    text.push('\n');
    text
}

/// Parses a JSON report (e.g. a `--baseline`), refusing any other schema version.
pub fn from_json(text: &str) -> Result<RunReport, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not a vdisim JSON report: invalid JSON: {e}"))?;
    let Some(obj) = value.as_object() else {
        return Err("not a vdisim JSON report: the document is not a JSON object".to_string());
    };
    match obj.get("schema_version") {
        None => return Err("not a vdisim JSON report: it has no schema_version".to_string()),
        Some(v) => match v.as_u64() {
            Some(n) if n == u64::from(REPORT_SCHEMA_VERSION) => {}
            Some(n) => {
                return Err(format!(
                    "report schema version {n} is not supported: this vdisim reads schema version \
                     {REPORT_SCHEMA_VERSION} only; regenerate the report (e.g. the baseline) with this vdisim"
                ))
            }
            None => return Err(format!("not a vdisim JSON report: schema_version is {v}, not a number")),
        },
    }
    // Parse the text again rather than the Value, so errors carry a line and column.
    serde_json::from_str(text)
        .map_err(|e| format!("malformed vdisim JSON report (schema version {REPORT_SCHEMA_VERSION}): {e}"))
}
