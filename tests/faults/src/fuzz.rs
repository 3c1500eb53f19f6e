//! Scenario 4: fuzzed requests to every method of a service (random bytes,
//! damaged messages, hostile values, plausible values), each with a token of
//! one role the method's policy allows (found from outside: a role is
//! allowed unless the undecodable probe body is refused at the auth layer),
//! one in twenty with a role it refuses. Checks: no INTERNAL, no panic (the
//! process lives and logged none), and no refused call changed a row of the
//! service's schema.
//!
//! Rows: after each call the cluster's next transaction id is read; if it
//! moved (a transaction wrote somewhere), every table of the schema is asked
//! how many live rows carry an `xmin` among the ids handed out meanwhile, and
//! how many rows it has. After a refused call, any such row or any change of
//! a row count is a change made by the refusal (or by background work
//! meanwhile: the fuzzing waits for the schema to be quiet first, and calls
//! are made one at a time). A call answered OK (or one whose outcome is
//! unknown) sets new row counts.

use std::{
    collections::{BTreeMap, HashMap},
    fmt::Write as _,
    time::{Duration, Instant},
};

use crm_domain::Role;
use sqlx::{Connection, PgConnection};
use tonic::Code;

use crate::{
    Config, Error,
    report::{Tally, Verdict},
    rng::Rng,
    shapes::{self, Generator, Known, Method, Schema},
    system::System,
    wire::{self, CallOptions},
};

const EVENT_FEED: &str = "crm.events.v1.EventFeedService";

/// Which roles each method allows, asked from outside.
async fn probe_roles(sys: &System, url: &str, methods: &[Method]) -> Result<HashMap<String, Vec<Role>>, Error> {
    let channel = wire::channel(url)?;
    let mut allowed = HashMap::new();
    for m in methods {
        let mut roles = Vec::new();
        for role in Role::ALL {
            let token = sys.token(&[role], "faults-probe")?;
            let out =
                wire::call(channel.clone(), &m.path, Some(&token), vec![vec![0xff]], CallOptions::default()).await;
            // Past the auth layer: the policy lets this role call the method.
            if !matches!(out.code, Code::PermissionDenied | Code::Unimplemented | Code::Unauthenticated) {
                roles.push(role);
            }
        }
        allowed.insert(m.path.clone(), roles);
    }
    Ok(allowed)
}

/// Ids that exist in any schema, for fields named `id`/`*_id`.
async fn known_ids(conn: &mut PgConnection) -> Result<Known, Error> {
    let tables: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_schema::text, table_name::text FROM information_schema.columns \
         WHERE column_name = 'id' AND data_type = 'uuid' \
         AND table_schema IN ('customers', 'complaints', 'dispatch', 'billing')",
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut ids = Vec::new();
    for (schema, table) in tables {
        let sql = format!("SELECT id::text FROM \"{schema}\".\"{table}\" ORDER BY random() LIMIT 25");
        let some: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_all(&mut *conn).await?;
        ids.extend(some);
    }
    Ok(Known { ids })
}

/// What transactions wrote to one schema: per table, its live rows and how
/// many of them carry an `xmin` among given transaction ids (a row inserted
/// or updated by one of them: an update writes a new row version). A
/// deletion shows as fewer rows. Counting needs no hashing of row text, so
/// a check costs milliseconds however large earlier scenarios made the
/// tables.
struct Writes {
    sql: String,
}

/// Table → (live rows, rows written by the transactions asked about).
type Counts = BTreeMap<String, (i64, i64)>;

impl Writes {
    async fn new(conn: &mut PgConnection, schema: &str) -> Result<Writes, Error> {
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = $1 AND tablename <> '_sqlx_migrations' ORDER BY 1",
        )
        .bind(schema)
        .fetch_all(&mut *conn)
        .await?;
        let parts: Vec<String> = tables
            .iter()
            .map(|t| {
                format!(
                    "SELECT '{t}'::text, count(*)::bigint, \
                     count(*) FILTER (WHERE x.xmin = ANY($1::text[]::xid[]))::bigint FROM \"{schema}\".\"{t}\" x"
                )
            })
            .collect();
        Ok(Writes { sql: parts.join(" UNION ALL ") })
    }

    async fn take(&self, conn: &mut PgConnection, xids: &[String]) -> Result<Counts, Error> {
        let rows: Vec<(String, i64, i64)> =
            sqlx::query_as(sqlx::AssertSqlSafe(self.sql.clone())).bind(xids).fetch_all(&mut *conn).await?;
        Ok(rows.into_iter().map(|(t, n, w)| (t, (n, w))).collect())
    }
}

/// The next transaction id the cluster will hand out (64-bit, no wraparound).
async fn next_xid(conn: &mut PgConnection) -> Result<u64, Error> {
    let x: String =
        sqlx::query_scalar("SELECT pg_snapshot_xmax(pg_current_snapshot())::text").fetch_one(&mut *conn).await?;
    Ok(x.parse()?)
}

/// The transaction ids handed out in `from..to`, as the 32-bit `xid`s rows
/// carry (subtransactions draw from the same counter).
fn xids_between(from: u64, to: u64) -> Vec<String> {
    (from..to.min(from + 100_000)).map(|x| (x % (1 << 32)).to_string()).collect()
}

/// Tables with rows written by the transactions asked about, or whose row
/// count moved since `before`.
fn touched(before: &Counts, after: &Counts) -> Vec<String> {
    after
        .iter()
        .filter(|(t, (n, written))| *written > 0 || before.get(*t).map(|b| b.0) != Some(*n))
        .map(|(t, (n, written))| format!("{t} (rows {} → {n}, {written} written)", before.get(t).map_or(0, |b| b.0)))
        .collect()
}

/// Waits until no transaction writes to the schema for a second (events of
/// earlier scenarios applied), at most 20 s; returns the row counts then.
async fn quiet(conn: &mut PgConnection, writes: &Writes) -> Result<Counts, Error> {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let from = next_xid(conn).await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let to = next_xid(conn).await?;
        let counts = writes.take(conn, &xids_between(from, to)).await?;
        if counts.values().all(|(_, w)| *w == 0) || Instant::now() > until {
            return Ok(counts);
        }
    }
}

fn hex(b: &[u8], max: usize) -> String {
    let mut s = String::new();
    for x in b.iter().take(max) {
        let _ = write!(s, "{x:02x}");
    }
    if b.len() > max {
        let _ = write!(s, "… ({} bytes)", b.len());
    }
    s
}

pub async fn run(sys: &System, cfg: &Config, schema: &Schema, service: &str, rng: &mut Rng) -> Result<Verdict, Error> {
    let svc = sys.service(service)?;
    let mut methods = schema.methods(svc.grpc_service);
    methods.extend(schema.methods(EVENT_FEED));
    let mut v = Verdict::new(
        "4 fuzzing",
        format!("{service}: {} random requests over {} methods", cfg.fuzz_requests, methods.len()),
    );
    if methods.is_empty() {
        v.fail(format!("no methods for {} in the descriptor set", svc.grpc_service));
        return Ok(v);
    }
    let allowed = probe_roles(sys, &svc.url(), &methods).await?;
    let closed: Vec<String> =
        methods.iter().filter(|m| allowed.get(&m.path).is_none_or(Vec::is_empty)).map(|m| m.name.clone()).collect();
    let mut conn = PgConnection::connect(&sys.cluster.url).await?;
    let known = known_ids(&mut conn).await?;
    let writes = Writes::new(&mut conn, service).await?;
    let mut baseline = quiet(&mut conn, &writes).await?;
    let mut xid = next_xid(&mut conn).await?;
    let panics_before = svc.panics().len();

    let channel = wire::channel(&svc.url())?;
    let mut generator = Generator { schema, known: &known, rng: rng.fork(), plausible: false };
    let mut tokens: HashMap<(Role, usize), String> = HashMap::new();
    let opts =
        CallOptions { timeout: Duration::from_secs(10), max_messages: 3, stream_wait: Duration::from_millis(200) };
    let (mut tally, mut kinds) = (Tally::default(), BTreeMap::<&str, u64>::new());
    let mut ok_methods: BTreeMap<String, u64> = BTreeMap::new();
    let (mut internals, mut changed, mut odd) = (Vec::new(), Vec::new(), Vec::new());
    let (mut refused_checked, mut checks, mut unknown_outcome) = (0u64, 0u64, 0u64);
    let started = Instant::now();
    for n in 0..cfg.fuzz_requests {
        let Some(m) = rng.pick(&methods).cloned() else { break };
        // One role the policy allows, alone: a token that also carried admin
        // would only ever take the handlers' admin paths (and would make the
        // role probe above pointless). One call in twenty goes with a role
        // the method refuses, to check that refusals change nothing.
        let roles = allowed.get(&m.path).cloned().unwrap_or_default();
        let refused_roles: Vec<Role> = Role::ALL.into_iter().filter(|r| !roles.contains(r)).collect();
        let role = if rng.chance(0.05) && !refused_roles.is_empty() {
            rng.pick(&refused_roles).copied().unwrap_or(Role::Admin)
        } else {
            rng.pick(&roles).copied().unwrap_or(Role::Admin)
        };
        let sub = rng.index(4);
        let token = match tokens.get(&(role, sub)) {
            Some(t) => t.clone(),
            None => {
                let t = sys.token(&[role], &format!("faults-fuzz-{sub}"))?;
                tokens.insert((role, sub), t.clone());
                t
            }
        };
        let count = if m.client_streaming { 1 + rng.below(3) as usize } else { 1 };
        let mut bodies = Vec::with_capacity(count);
        let kind = match rng.below(10) {
            0 => "random bytes",
            1 => "damaged message",
            2..=5 => "plausible message",
            _ => "hostile message",
        };
        generator.plausible = kind == "plausible message";
        *kinds.entry(kind).or_default() += 1;
        for _ in 0..count {
            bodies.push(match kind {
                "random bytes" => {
                    let len = rng.below(256) as usize;
                    rng.bytes(len)
                }
                "damaged message" => {
                    let body = generator.message(&m.input);
                    shapes::mutate(rng, body)
                }
                _ => generator.message(&m.input),
            });
        }
        let out = wire::call(channel.clone(), &m.path, Some(&token), bodies.clone(), opts).await;
        tally.add(out.code);
        match out.code {
            Code::Ok => *ok_methods.entry(m.name.clone()).or_default() += 1,
            Code::Internal => {
                let file = sys.run_dir.join(format!("internal-{service}-{n}.bin"));
                let _ = std::fs::write(&file, bodies.concat());
                internals.push(format!(
                    "{} → INTERNAL {:?} (role {}; body {}; saved {})",
                    m.name,
                    out.message,
                    role.as_str(),
                    hex(bodies.first().map_or(&[][..], Vec::as_slice), 160),
                    file.display()
                ));
            }
            Code::Unknown | Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => {
                odd.push(format!("{} → {:?} {:?}", m.name, out.code, out.message));
            }
            _ => {}
        }
        // Did a refused call change anything?
        let refused = !matches!(
            out.code,
            Code::Ok | Code::Unknown | Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled
        );
        let now = next_xid(&mut conn).await?;
        if now != xid {
            let counts = writes.take(&mut conn, &xids_between(xid, now)).await?;
            xid = now;
            checks += 1;
            let tables = touched(&baseline, &counts);
            if refused && !tables.is_empty() {
                changed.push(format!(
                    "{} answered {:?} {:?} but changed {} (role {}; body {})",
                    m.name,
                    out.code,
                    out.message,
                    tables.join(", "),
                    role.as_str(),
                    hex(bodies.first().map_or(&[][..], Vec::as_slice), 160)
                ));
            }
            baseline = counts;
        }
        if refused {
            refused_checked += 1;
        } else if out.code != Code::Ok {
            unknown_outcome += 1;
        }
    }
    let elapsed = started.elapsed();
    conn.close().await?;

    let svc = sys.service(service)?;
    let panics = svc.panics();
    let alive = svc.alive();
    let health = crate::system::health(&channel, svc.grpc_service).await;
    v.check(alive, || "the process is gone".into());
    v.check(health.is_some(), || "the service does not answer health checks after fuzzing".into());
    let new_panics = panics.len().saturating_sub(panics_before);
    v.check(new_panics == 0, || format!("{new_panics} panics logged: {}", panics[panics_before..].join(" | ")));
    for i in &internals {
        v.fail(i.clone());
    }
    for c in &changed {
        v.fail(format!("rows changed by a refused call: {c}"));
    }
    for o in odd.iter().take(10) {
        v.fail(format!("no clear answer: {o}"));
    }
    let kinds: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
    v.numbers = format!(
        "{} calls in {:.1} s ({}); codes: {}; INTERNAL {}; panics {}; refused calls checked for changed rows {} \
         (row checks after a transaction id moved {}), changed {}; {} calls with no clear answer; OK from {} of {} methods{}; process {}, health {:?}",
        tally.total(),
        elapsed.as_secs_f64(),
        kinds.join(", "),
        tally,
        internals.len(),
        new_panics,
        refused_checked,
        checks,
        changed.len(),
        unknown_outcome,
        ok_methods.len(),
        methods.len(),
        if closed.is_empty() { String::new() } else { format!(" (no role may call {})", closed.join(", ")) },
        if alive { "alive" } else { "GONE" },
        health,
    );
    Ok(v)
}

/// Broken gRPC framing (not message content): what each case is answered,
/// and whether the process survives. Tonic, like grpc-go, answers framing
/// errors INTERNAL, and gRPC's own spec requires INTERNAL for a compressed
/// flag without `grpc-encoding`; so these are reported, and only fail the
/// run with `FAULTS_STRICT_FRAMING=1`.
pub async fn framing(sys: &System, cfg: &Config, schema: &Schema, service: &str) -> Result<Verdict, Error> {
    let svc = sys.service(service)?;
    let mut v = Verdict::new("4 framing", format!("{service}: broken gRPC frames"));
    let methods = schema.methods(svc.grpc_service);
    let Some(m) = methods.iter().find(|m| !m.client_streaming && !m.server_streaming && schema.mutates(m)) else {
        v.fail("no unary mutating method".to_string());
        return Ok(v);
    };
    // A role the method's policy allows: otherwise every case stops at the
    // auth layer (PERMISSION_DENIED) and the framing is never read.
    let allowed = probe_roles(sys, &svc.url(), std::slice::from_ref(m)).await?;
    let Some(role) = allowed.get(&m.path).and_then(|r| r.first()).copied() else {
        v.fail(format!("no role may call {}", m.name));
        return Ok(v);
    };
    let token = sys.token(&[role], "faults-framing")?;
    let channel = wire::channel(&svc.url())?;
    let body = b"\x0a\x24not-a-uuid-but-some-bytes-to-decode!!".to_vec();
    let cases: Vec<(&str, bytes::Bytes)> = vec![
        ("compressed flag, no grpc-encoding", wire::frame(1, body.len() as u32, &body)),
        ("flag byte 7", wire::frame(7, body.len() as u32, &body)),
        ("frame cut short", wire::frame(0, 100, &body[..10])),
        ("no message at all", bytes::Bytes::new()),
        ("two messages to a unary method", {
            let mut b = wire::frame(0, body.len() as u32, &body).to_vec();
            b.extend_from_slice(&wire::frame(0, body.len() as u32, &body));
            bytes::Bytes::from(b)
        }),
        ("header announcing 64 MB", wire::frame(0, 64 << 20, &body)),
        ("half a header", bytes::Bytes::from_static(&[0, 0, 0])),
    ];
    let mut parts = Vec::new();
    let mut internal = 0;
    for (name, bytes) in cases {
        let out = wire::call_framed(channel.clone(), &svc.authority(), &m.path, Some(&token), bytes).await;
        if out.code == Code::Internal {
            internal += 1;
        }
        if matches!(out.code, Code::Unknown | Code::Ok) {
            v.fail(format!("{name}: {:?} {:?}", out.code, out.message));
        }
        if matches!(out.code, Code::PermissionDenied | Code::Unauthenticated | Code::Unimplemented) {
            v.fail(format!("{name}: {:?} — the case never reached the server's framing", out.code));
        }
        parts.push(format!("{name} → {:?}", out.code));
    }
    if cfg.strict_framing && internal > 0 {
        v.fail(format!("{internal} framing errors answered INTERNAL (FAULTS_STRICT_FRAMING)"));
    }
    let health = crate::system::health(&channel, svc.grpc_service).await;
    v.check(health.is_some(), || "no health answer after the framing cases".into());
    v.numbers = format!(
        "{} cases on {} as {}: {}; INTERNAL {internal}; process answers health {:?}",
        parts.len(),
        m.name,
        role.as_str(),
        parts.join("; "),
        health
    );
    Ok(v)
}
