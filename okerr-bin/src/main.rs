//! The `okerr` binary. The server, admin commands and client arrive with their issues.

fn main() {
    eprintln!(
        "okerr {}: the server is not built yet",
        env!("CARGO_PKG_VERSION")
    );
    std::process::exit(2);
}
