//! okerr over HTTP. The router arrives with the server issue; this crate only reserves its place.
