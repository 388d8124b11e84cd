//! `okerr`: the reference server (`okerr serve`) and the admin commands that work on its
//! database directly. Admin commands print only the value asked for on stdout, so that
//! scripts can capture it; everything else goes to stderr.

#![forbid(unsafe_code)]

mod admin;
mod check;
mod cli;
mod client;
mod logfmt;
mod secret;
mod serve;
mod store;

use clap::Parser;

use crate::cli::{Cli, Command};

/// mimalloc instead of the system allocator: the update path allocates for every request
/// (form fields, names, JSON), and glibc's malloc and free were a fifth of its
/// instructions (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Why a command failed; printed on stderr, exit status 1.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("storage: {0}")]
    Storage(#[from] okerr::StorageError),
    #[error("{0}")]
    Usage(String),
    #[error("cannot read the config file {path}: {source}")]
    Config {
        path: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Client(#[from] client::Failure),
    /// A check that ran and found ERR (its result is printed already).
    #[error("the check found ERR")]
    Failed,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .fmt_fields(logfmt::fields())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("okerr: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => serve::run(&cli.database, *args).await,
            Command::Project(cmd) => admin::project(&cli.database, cmd).await,
            Command::Policy(cmd) => admin::policy(&cli.database, cmd).await,
            Command::Key(cmd) => admin::key(&cli.database, cmd).await,
            Command::Member(cmd) => admin::member(&cli.database, cmd).await,
            Command::Indicator(cmd) => admin::indicator(&cli.database, cmd).await,
            Command::Client(args) => client::client(args).await,
            Command::Update(args) => client::update(args).await,
            Command::Check(args) => check::check(args).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("okerr: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
