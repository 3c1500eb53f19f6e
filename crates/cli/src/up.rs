//! `crm up`: every service in one process, on its own port, against
//! DATABASE_URL or a private Postgres cluster under `./.crm/pg` that is
//! created on first use and reused (data survives restarts).

use std::{
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    time::Duration,
};

use clap::Args;
use crm_domain::Role;
use crm_platform::{
    ServerConfig, ServiceContext,
    localpg::{self, Durability, LocalPostgres},
    server::{self, BoxError},
    service,
};

use crate::SERVICES;

#[derive(Args)]
pub struct UpArgs {
    /// Where `crm up` keeps its Postgres cluster and signing key.
    #[arg(long, env = "CRM_HOME", default_value = ".crm")]
    data_dir: PathBuf,
    /// Port of the private Postgres cluster.
    #[arg(long, env = "CRM_PG_PORT", default_value_t = 55432)]
    pg_port: u16,
    /// Address the gRPC ports listen on.
    #[arg(long, env = "CRM_BIND", default_value = "127.0.0.1")]
    bind: IpAddr,
    #[command(flatten)]
    server: ServerConfig,
}

pub async fn run(args: UpArgs) -> Result<(), BoxError> {
    crm_platform::telemetry::init();
    std::fs::create_dir_all(&args.data_dir)?;
    let data_dir = std::fs::canonicalize(&args.data_dir)?;
    let cfg = args.server.clone();

    let (database_url, private_pg) = match &cfg.database_url {
        Some(url) => (url.clone(), None),
        None => {
            let (url, pg, started) = private_postgres(&data_dir, args.pg_port).await?;
            (url, Some((pg, started)))
        }
    };
    let secret = match &cfg.jwt_secret {
        Some(s) => s.clone(),
        None => dev_secret(&data_dir)?,
    };
    let keys = crm_platform::TokenKeys::hs256(secret.as_bytes())?;
    let mut ctx = ServiceContext::new(&cfg, keys.clone())?;
    // In one process every peer is on this machine, on its own port.
    let local = |port| format!("http://{}", SocketAddr::new(loopback(args.bind), port));
    ctx.customers_url = local(crm_customers::SERVICE.default_port);
    ctx.complaints_url = local(crm_complaints::SERVICE.default_port);
    ctx.dispatch_url = local(crm_dispatch::SERVICE.default_port);
    ctx.billing_url = local(crm_billing::SERVICE.default_port);

    let admin = cfg.admin_addr.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9090)));
    if let Err(e) = crm_platform::metrics::install_exporter(admin) {
        tracing::warn!(error = %e, %admin, "metrics exporter not started");
    }

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut running = Vec::new();
    let mut endpoints = Vec::new();
    for def in SERVICES {
        let pool = service::prepare(def, &cfg, &database_url).await?;
        let addr = SocketAddr::new(args.bind, def.default_port);
        let listener = server::bind(addr).await?;
        endpoints.push((def.name, addr));
        let (keys, cfg, ctx, mut rx) = (keys.clone(), cfg.clone(), ctx.clone(), stop_rx.clone());
        running.push(tokio::spawn(async move {
            let stop = async move {
                let _ = rx.wait_for(|s| *s).await;
            };
            if let Err(e) = service::serve_prepared(def, pool, listener, keys, &cfg, &ctx, stop).await {
                tracing::error!(service = def.name, error = %e, "service stopped with an error");
            }
        }));
    }

    let token = keys.mint("admin", &[Role::Admin], None, Duration::from_secs(12 * 3600))?;
    println!();
    println!("crm is up.");
    match &private_pg {
        Some((pg, _)) => println!("  postgres    {} (data in {})", pg.url("crm"), pg.data_dir.display()),
        None => println!("  postgres    DATABASE_URL"),
    }
    for (name, addr) in &endpoints {
        println!("  {name:<11} grpc://{addr}");
    }
    println!("  metrics     http://{admin}/metrics");
    println!();
    println!("Admin token (12 h):");
    println!("{token}");
    println!();
    println!(
        "Try:  grpcurl -plaintext -H \"authorization: Bearer $TOKEN\" {} list",
        endpoints.first().map(|e| e.1.to_string()).unwrap_or_default()
    );
    println!("More tokens: crm token --role sales --sub u1 --branch bj");
    println!("Stop with Ctrl-C.");

    server::shutdown_signal().await;
    let _ = stop_tx.send(true);
    for r in running {
        let _ = r.await;
    }
    if let Some((pg, true)) = private_pg {
        tracing::info!("stopping the private Postgres cluster");
        tokio::task::spawn_blocking(move || pg.stop()).await??;
    }
    Ok(())
}

/// Starts (or reuses) the cluster under `<data_dir>/pg`, with a `crm`
/// database. Returns whether this call started it.
async fn private_postgres(data_dir: &Path, port: u16) -> Result<(String, LocalPostgres, bool), BoxError> {
    let pg = LocalPostgres::new(data_dir.join("pg"), port)?;
    let started = {
        let pg = pg.clone();
        tokio::task::spawn_blocking(move || -> Result<bool, BoxError> {
            let was_running = pg.is_running();
            pg.ensure_started(Durability::Durable)?;
            Ok(!was_running)
        })
        .await??
    };
    localpg::ensure_database(&pg.url("postgres"), "crm").await?;
    Ok((pg.url("crm"), pg, started))
}

/// A random signing key kept in `<data_dir>/jwt-secret` (mode 0600) so tokens
/// from `crm token` stay valid across restarts.
fn dev_secret(data_dir: &Path) -> Result<String, BoxError> {
    let path = data_dir.join("jwt-secret");
    if let Ok(s) = std::fs::read_to_string(&path) {
        return Ok(s.trim().to_string());
    }
    let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    std::fs::write(&path, &secret)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(secret)
}

/// An address peers can dial: the bind address, or loopback when binding to
/// every interface.
fn loopback(bind: IpAddr) -> IpAddr {
    if bind.is_unspecified() { IpAddr::from([127, 0, 0, 1]) } else { bind }
}
