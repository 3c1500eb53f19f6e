//! `crm import customers FILE.csv`: a customer book read from a CSV file and
//! streamed to `ImportCustomers` (CUS-14). The whole file is read and
//! checked before anything is sent, so a bad header or a broken row never
//! leaves half an import behind; the service checks each row as a
//! registration and reports bad rows by row and field.

mod book;
mod columns;
mod send;
mod summary;
mod values;

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::{Duration, Instant},
};

use chrono_tz::Tz;
use clap::{Args, Subcommand, ValueEnum};
use crm_domain::Role;
use crm_proto::customers::v1::{self as pb, customer_service_client::CustomerServiceClient};
use tonic_types::StatusExt;
use uuid::Uuid;

/// The service numbers rows from here: the header is the sheet's row 1.
pub const FIRST_ROW: i64 = 2;

#[derive(Subcommand)]
pub enum ImportCommand {
    /// Import customers from a CSV file: UTF-8, a header line naming the
    /// columns (see docs/operations.md), one customer per row.
    Customers(CustomersArgs),
}

#[derive(Args)]
pub struct CustomersArgs {
    /// The CSV file.
    file: PathBuf,
    /// The customers service.
    #[arg(long, env = "CRM_CUSTOMERS_URL", default_value = "http://127.0.0.1:50051")]
    addr: String,
    /// Bearer token of the importer. Without one, an admin token is minted
    /// with CRM_JWT_SECRET or the key `crm up` keeps, as `crm token` does.
    #[arg(long, env = "CRM_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// What becomes of a row that is a customer already registered, or
    /// repeats an earlier row: skipped and counted, or also listed.
    #[arg(long, value_enum, default_value_t = Duplicates::Report)]
    duplicates: Duplicates,
    /// Rows per message.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    batch: u32,
    /// The import's id [default: derived from the file's bytes, --duplicates
    /// and --time-zone, so that the same command resumes an interrupted
    /// import or replays a finished one instead of importing twice].
    #[arg(long)]
    request_id: Option<Uuid>,
    /// How many errors and duplicates to list.
    #[arg(long, default_value_t = 20)]
    show: usize,
    /// Time zone of `collect_time` values written without an offset.
    #[arg(long, env = "CRM_TIME_ZONE", default_value = "Asia/Shanghai")]
    time_zone: Tz,
    /// Key to mint the admin token with, when there is no token.
    #[arg(long, env = "CRM_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Where `crm up` keeps its key, read when there is neither a token nor
    /// CRM_JWT_SECRET.
    #[arg(long, env = "CRM_HOME", default_value = ".crm")]
    data_dir: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
enum Duplicates {
    Skip,
    Report,
}

impl Duplicates {
    fn policy(self) -> pb::ImportDuplicatePolicy {
        match self {
            Duplicates::Skip => pb::ImportDuplicatePolicy::Skip,
            Duplicates::Report => pb::ImportDuplicatePolicy::Report,
        }
    }
}

/// Why an import ended without a summary.
enum Failure {
    /// The command line or the file; nothing was sent (exit 2).
    Input(String),
    /// The call failed (exit 3).
    Call(String),
}

/// Exit 0 when every row was created or settled, 1 when some were invalid
/// or duplicates, 2 for the command line or the file, 3 when the call failed.
pub async fn run(command: ImportCommand) -> ExitCode {
    let ImportCommand::Customers(args) = command;
    match customers(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(Failure::Input(message)) => {
            eprintln!("crm import: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Call(message)) => {
            eprintln!("crm import: {message}");
            ExitCode::from(3)
        }
    }
}

async fn customers(args: CustomersArgs) -> Result<bool, Failure> {
    let file = args.file.display().to_string();
    let bytes = std::fs::read(&args.file).map_err(|e| Failure::Input(format!("cannot read {file}: {e}")))?;
    let plan = book::Plan::read(&bytes, args.time_zone).map_err(|e| Failure::Input(format!("{file}: {e}")))?;
    if plan.rows.is_empty() {
        return Err(Failure::Input(format!("{file} has no rows under its header")));
    }
    let token = match args.token {
        Some(t) => t,
        None => admin_token(args.jwt_secret, &args.data_dir)?,
    };
    let bearer = format!("Bearer {}", token.trim())
        .parse()
        .map_err(|_| Failure::Input("the token is not valid in a header".into()))?;
    let request_id = args.request_id.unwrap_or_else(|| derived_request_id(&bytes, args.duplicates, args.time_zone));
    println!(
        "Importing {} rows of {file} as import {request_id} (the same command again resumes or replays it).",
        plan.rows.len()
    );

    let channel = tonic::transport::Endpoint::from_shared(args.addr.clone())
        .map_err(|e| Failure::Input(format!("--addr {}: {e}", args.addr)))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(|e| Failure::Call(format!("cannot reach the customers service at {}: {}", args.addr, chain(&e))))?;

    let policy = args.duplicates.policy();
    let options = pb::ImportOptions {
        request_id: request_id.to_string(),
        duplicate_policy: policy as i32,
        first_row_number: FIRST_ROW,
    };
    let total = u64::try_from(plan.rows.len()).unwrap_or(u64::MAX);
    let bar = send::progress_bar(total);
    let rows = book::Rows::open(std::io::Cursor::new(bytes), args.time_zone).map_err(Failure::Input)?;
    let (messages, broken) = send::messages(options, rows, args.batch as usize, bar.clone());
    let mut request = tonic::Request::new(messages);
    request.metadata_mut().insert("authorization", bearer);
    let started = Instant::now();
    let mut client = CustomerServiceClient::new(channel);
    let answer = tokio::select! {
        answer = client.import_customers(request) => answer,
        // Dropping the call resets the stream, so the service never takes
        // what was sent for the whole file.
        message = broken => {
            bar.abandon();
            return Err(Failure::Input(format!("{file}: {message}")));
        }
    };
    bar.finish_and_clear();
    let summary = answer.map_err(|status| Failure::Call(refusal(&status)))?.into_inner();
    let seconds = started.elapsed().as_secs_f64();
    if summary.already_settled > 0 && summary.already_settled == summary.rows {
        println!("Import {request_id} was done before; nothing new was written. Its summary:");
    } else {
        println!("Imported {file} in {seconds:.1} s ({:.0} rows/s):", total as f64 / seconds.max(0.001));
    }
    let mut out = std::io::stdout().lock();
    summary::print(&mut out, &summary, &plan, args.show, policy)
        .map_err(|e| Failure::Input(format!("cannot write the summary: {e}")))?;
    // A summary of other rows: the id (given with --request-id) names an
    // import of another file.
    let counted = i64::try_from(total).is_ok_and(|t| t == summary.rows);
    if !counted {
        eprintln!("crm import: the service counted {} rows, the file has {total}", summary.rows);
    }
    Ok(counted && summary::complete(&summary))
}

/// An admin token minted as `crm token --role admin --sub admin` would
/// (the token `crm up` prints), for an hour.
fn admin_token(secret: Option<String>, data_dir: &Path) -> Result<String, Failure> {
    let keys = crate::signing_key(secret, data_dir)
        .map_err(|e| Failure::Input(format!("no --token or CRM_TOKEN, and no key to mint one: {e}")))?;
    keys.mint("admin", &[Role::Admin], None, Duration::from_secs(3600)).map_err(Failure::Input)
}

/// The same bytes sent the same way give the same id: running the command
/// again resumes an interrupted import or replays a finished one.
fn derived_request_id(bytes: &[u8], duplicates: Duplicates, zone: Tz) -> Uuid {
    let namespace = Uuid::new_v5(&Uuid::NAMESPACE_URL, b"urn:crm:import:customers");
    let policy = match duplicates {
        Duplicates::Skip => "skip",
        Duplicates::Report => "report",
    };
    let mut name = Vec::with_capacity(bytes.len() + 64);
    for part in [policy.as_bytes(), zone.name().as_bytes()] {
        name.extend_from_slice(part);
        name.push(0);
    }
    name.extend_from_slice(bytes);
    Uuid::new_v5(&namespace, &name)
}

/// A failed call as the user can act on it: the gRPC code and message, the
/// fields the service named, and what to do next.
fn refusal(status: &tonic::Status) -> String {
    use tonic::Code;
    let code = status.code();
    let mut text = format!("the call failed with {} ({}): {}", code_name(code), code as i32, status.message());
    if let Some(bad) = status.get_details_bad_request() {
        for v in bad.field_violations {
            text.push_str(&format!("\n  {}: {}", v.field, v.description));
        }
    }
    let reason = status.get_details_error_info().map(|i| i.reason).unwrap_or_default();
    let hint = match code {
        _ if reason == "REQUEST_ID_REUSED" => "\nThis id names another import: pass --request-id with a new UUID.",
        Code::Unauthenticated => "\nThe token is missing, expired or signed with another key: see `crm token`.",
        Code::PermissionDenied => "\nThe token's role may not import customers (admins and sales managers may).",
        Code::InvalidArgument | Code::FailedPrecondition | Code::AlreadyExists | Code::NotFound => "",
        _ => "\nRows written so far stay written: run the same command again to resume.",
    };
    text.push_str(hint);
    text
}

/// `InvalidArgument` as gRPC writes it, `INVALID_ARGUMENT`.
fn code_name(code: tonic::Code) -> String {
    let mut name = String::new();
    for (i, ch) in format!("{code:?}").chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(ch.to_ascii_uppercase());
    }
    name
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_id_follows_the_bytes_and_how_they_are_sent() {
        let zone: Tz = "Asia/Shanghai".parse().unwrap();
        let id = derived_request_id(b"kind,display_name\n", Duplicates::Skip, zone);
        assert_eq!(id, derived_request_id(b"kind,display_name\n", Duplicates::Skip, zone));
        assert_eq!(id.get_version_num(), 5);
        assert_ne!(id, derived_request_id(b"kind,display_name\r\n", Duplicates::Skip, zone));
        assert_ne!(id, derived_request_id(b"kind,display_name\n", Duplicates::Report, zone));
        assert_ne!(id, derived_request_id(b"kind,display_name\n", Duplicates::Skip, Tz::UTC));
    }

    #[test]
    fn codes_are_named_as_grpc_names_them() {
        assert_eq!(code_name(tonic::Code::InvalidArgument), "INVALID_ARGUMENT");
        assert_eq!(code_name(tonic::Code::Ok), "OK");
    }
}
