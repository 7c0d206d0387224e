//! The JSON report: a lossless round trip, `schema_version`, and a clear refusal of other versions.

mod report_fixture;

use report_fixture::{sample_report, HOSTILE};
use rstest::rstest;
use vdi_conformance::model::REPORT_SCHEMA_VERSION;
use vdi_conformance::report::{from_json, to_json};

#[test]
fn json_round_trips_losslessly_hostile_strings_included() {
    let report = sample_report();
    let json = to_json(&report);
    assert!(json.ends_with('\n'));
    assert!(
        !json.contains('\u{1b}') && !json.contains('\u{0}'),
        "JSON escapes control characters"
    );
    match from_json(&json) {
        Ok(back) => assert_eq!(back, report),
        Err(e) => panic!("{e}"),
    }
    assert!(json.contains(&serde_json::to_string(HOSTILE).unwrap_or_default()));
}

#[test]
fn json_shape_has_the_schema_version_and_tagged_verdicts() {
    let json = to_json(&sample_report());
    let value: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
    assert_eq!(value["schema_version"], REPORT_SCHEMA_VERSION);
    assert_eq!(value["tool"], "vdisim");
    let failure = &value["runs"][1]["results"][4];
    assert_eq!(failure["case_id"], "termination.close-after-vd-e-close");
    assert_eq!(failure["verdict"]["kind"], "fail");
    assert_eq!(failure["integrity"], "corrupt");
    assert_eq!(failure["termination"], "unclean");
    assert_eq!(failure["transcript"][9]["result"], "VD_E_ABORT");
    assert_eq!(value["runs"][1]["results"][5]["verdict"]["kind"], "hang");
    assert_eq!(value["cases"][7]["level"], "SHOULD");
    assert_eq!(value["runs"][3]["role"], "server");
}

#[test]
fn json_always_writes_this_builds_schema_version() {
    let mut report = sample_report();
    report.schema_version = 0;
    let json = to_json(&report);
    let back = from_json(&json).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back.schema_version, REPORT_SCHEMA_VERSION);
}

fn with_version(version: serde_json::Value) -> String {
    let mut value: serde_json::Value = serde_json::from_str(&to_json(&sample_report())).unwrap_or_default();
    value["schema_version"] = version;
    value.to_string()
}

#[rstest]
#[case::newer_version(with_version(2.into()), "report schema version 2 is not supported: this vdisim reads schema version 1")]
#[case::older_version(with_version(0.into()), "report schema version 0 is not supported")]
#[case::version_not_a_number(with_version("1".into()), "schema_version is \"1\", not a number")]
#[case::no_version(r#"{"tool": "vdisim"}"#.to_string(), "it has no schema_version")]
#[case::not_an_object("[1, 2]".to_string(), "not a JSON object")]
#[case::not_json("<testsuites/>".to_string(), "invalid JSON")]
#[case::missing_fields(r#"{"schema_version": 1, "tool": "vdisim"}"#.to_string(), "malformed vdisim JSON report (schema version 1): missing field")]
fn from_json_refuses_with_a_clear_message(#[case] text: String, #[case] message: &str) {
    match from_json(&text) {
        Ok(_) => panic!("accepted {text}"),
        Err(e) => assert!(e.contains(message), "{e:?} should contain {message:?}"),
    }
}
