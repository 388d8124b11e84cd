//! A `multipart/form-data` field is the same text as the urlencoded one (found by the fuzz
//! target `update_multipart`).
#![allow(clippy::unwrap_used)]

mod common;

use common::{Form, World, post_multipart};

#[tokio::test]
async fn a_leading_bom_in_a_multipart_value_is_kept() {
    let w = World::new().await;
    let form = Form::okerrupdate("p1", "bom", "OK").set("details", "\u{feff}disk ok");
    let answer = w.send(post_multipart("/update", &form)).await;
    assert_eq!(answer.pair(), (200, "OK"));
    let ind = w.indicator("bom").await.unwrap();
    assert_eq!(ind.details, "\u{feff}disk ok");
}
