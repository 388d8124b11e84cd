//! okerr `Storage` on sqlite. The backend itself arrives with the backends issue; this crate
//! only reserves its place in the workspace.
