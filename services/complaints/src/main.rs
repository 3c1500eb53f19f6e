//! `crm-complaints`: the complaints service alone, configured by flags and
//! `CRM_*` variables (see docs/operations.md).

use clap::Parser;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "crm-complaints", about = "The complaints gRPC service", version)]
struct Cli {
    #[command(flatten)]
    server: crm_platform::ServerConfig,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match crm_platform::service::main(&crm_complaints::SERVICE, cli.server).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "crm-complaints failed");
            eprintln!("crm-complaints: {e}");
            ExitCode::FAILURE
        }
    }
}
