//! Keeps the committed JSON Schema files in `schemas/json/` equal to what the models generate;
//! `UPDATE_EXPECT=1 cargo test -p schemas --test json_schema` regenerates them.

use expect_test::{ExpectFile, expect_file};
use schemars::Schema;

fn check(schema: Schema, expected: ExpectFile) {
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema serializes to json");
    text.push('\n');
    expected.assert_eq(&text);
}

#[test]
fn campaign_file_schema() {
    check(
        schemars::schema_for!(schemas::campaign::CampaignFile),
        expect_file!["../json/campaign.schema.json"],
    );
}

#[test]
fn variant_file_schema() {
    check(
        schemars::schema_for!(schemas::campaign::VariantFile),
        expect_file!["../json/variant.schema.json"],
    );
}

#[test]
fn event_schema() {
    check(
        schemars::schema_for!(schemas::event::EventSchema),
        expect_file!["../json/event.schema.json"],
    );
}
