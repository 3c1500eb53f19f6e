//! `crm-dispatch`: the dispatch service alone, configured by flags and
//! `CRM_*` variables (see docs/operations.md).

use clap::Parser;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "crm-dispatch", about = "The dispatch gRPC service", version)]
struct Cli {
    #[command(flatten)]
    server: crm_platform::ServerConfig,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match crm_platform::service::main(&crm_dispatch::SERVICE, cli.server).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "crm-dispatch failed");
            eprintln!("crm-dispatch: {e}");
            ExitCode::FAILURE
        }
    }
}
