//! End-to-end tests across the okerr crates live in `tests/`.
