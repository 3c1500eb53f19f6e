//! `crm`: run the back office locally (`crm up`), run one service
//! (`crm serve customers`), mint development tokens (`crm token`), check a
//! service's health (`crm health`, used by container health checks) and
//! import a customer book (`crm import customers`).

mod import;
mod up;

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};
use crm_domain::Role;
use crm_platform::{ServerConfig, ServiceDef, TokenKeys, server::BoxError};

/// Every service this build can run, in port order.
pub const SERVICES: &[&ServiceDef] =
    &[&crm_customers::SERVICE, &crm_complaints::SERVICE, &crm_dispatch::SERVICE, &crm_billing::SERVICE];

#[derive(Parser)]
#[command(name = "crm", version, about = "Customer-service back office: customers, complaints, dispatch, billing")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start every service against DATABASE_URL, or against a private
    /// Postgres under ./.crm/ when DATABASE_URL is unset.
    Up(up::UpArgs),
    /// Run one service against DATABASE_URL.
    Serve {
        /// Which service: customers, complaints, dispatch, billing.
        service: String,
        #[command(flatten)]
        server: ServerConfig,
    },
    /// Mint a development bearer token signed with CRM_JWT_SECRET (or the key
    /// `crm up` generated under ./.crm/).
    Token {
        /// A role (repeat for several): sales, sales_manager, branch_manager,
        /// senior_manager, service_desk, dept_head, quality_manager, office,
        /// dispatcher, service_manager, technician, meter_reader, cashier,
        /// finance, admin, auditor, system.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// The caller's id (the `sub` claim).
        #[arg(long)]
        sub: String,
        /// The caller's branch.
        #[arg(long)]
        branch: Option<String>,
        #[arg(long, default_value_t = 12)]
        ttl_hours: u64,
        #[arg(long, env = "CRM_JWT_SECRET", hide_env_values = true)]
        jwt_secret: Option<String>,
        #[arg(long, env = "CRM_HOME", default_value = ".crm")]
        data_dir: PathBuf,
    },
    /// Exit 0 when the service at --addr reports SERVING.
    Health {
        #[arg(long, default_value = "http://127.0.0.1:50051")]
        addr: String,
        /// Service name to check; empty checks the server as a whole.
        #[arg(long, default_value = "")]
        service: String,
    },
    /// Import records in bulk.
    Import {
        #[command(subcommand)]
        what: import::ImportCommand,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up(args) => up::run(args).await,
        Command::Serve { service, server } => serve(&service, server).await,
        Command::Token { roles, sub, branch, ttl_hours, jwt_secret, data_dir } => {
            token(&roles, &sub, branch.as_deref(), ttl_hours, jwt_secret, &data_dir)
        }
        Command::Health { addr, service } => health(&addr, &service).await,
        // Its exit code says how the import went (0, 1, 2 or 3).
        Command::Import { what } => return import::run(what).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("crm: {e}");
            ExitCode::FAILURE
        }
    }
}

fn find(service: &str) -> Result<&'static ServiceDef, BoxError> {
    SERVICES.iter().copied().find(|s| s.name == service).ok_or_else(|| {
        let names: Vec<&str> = SERVICES.iter().map(|s| s.name).collect();
        format!("unknown service {service:?}; available: {}", names.join(", ")).into()
    })
}

async fn serve(service: &str, server: ServerConfig) -> Result<(), BoxError> {
    let def = find(service)?;
    crm_platform::service::main(def, server).await
}

/// The signing key: CRM_JWT_SECRET, else the one `crm up` keeps in the data dir.
pub fn signing_key(explicit: Option<String>, data_dir: &std::path::Path) -> Result<TokenKeys, BoxError> {
    let secret = match explicit {
        Some(s) => s,
        None => std::fs::read_to_string(data_dir.join("jwt-secret"))
            .map(|s| s.trim().to_string())
            .map_err(|_| "no CRM_JWT_SECRET and no ./.crm/jwt-secret: set CRM_JWT_SECRET or run `crm up` once")?,
    };
    Ok(TokenKeys::hs256(secret.as_bytes())?)
}

fn token(
    roles: &[String],
    sub: &str,
    branch: Option<&str>,
    ttl_hours: u64,
    secret: Option<String>,
    data_dir: &std::path::Path,
) -> Result<(), BoxError> {
    let roles = roles.iter().map(|r| r.parse::<Role>()).collect::<Result<Vec<_>, _>>()?;
    if sub.trim().is_empty() {
        return Err("--sub must not be empty".into());
    }
    let keys = signing_key(secret, data_dir)?;
    println!("{}", keys.mint(sub, &roles, branch, Duration::from_secs(ttl_hours * 3600))?);
    Ok(())
}

async fn health(addr: &str, service: &str) -> Result<(), BoxError> {
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
    let channel = tonic::transport::Endpoint::from_shared(addr.to_string())?
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(3))
        .connect()
        .await?;
    let status = HealthClient::new(channel)
        .check(HealthCheckRequest { service: service.to_string() })
        .await?
        .into_inner()
        .status;
    if status == ServingStatus::Serving as i32 {
        println!("SERVING");
        Ok(())
    } else {
        Err(format!("{addr} is not serving (status {status})").into())
    }
}
