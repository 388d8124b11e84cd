//! The storage conformance suite of okerr-lib on PostgreSQL, each check in a schema of
//! its own. Skipped without `OKERR_TEST_PG_URL`; failing without it when
//! `OKERR_REQUIRE_PG=1`.
#![allow(clippy::unwrap_used)]

mod common;

okerr::storage_conformance!(common::storage());
