//! Scenario 3: one meter reader opens many `RecordMeterReadings` uploads
//! and sends nothing. Another principal's unary calls keep their normal
//! latency, a second reader's upload goes through, health stays SERVING,
//! and the stalled uploads end (DEADLINE_EXCEEDED after the stream idle
//! timeout, or RESOURCE_EXHAUSTED when no upload slot freed in time) — X-4.

use std::time::{Duration, Instant};

use crm_domain::Role;
use crm_proto::billing::v1::{self as bpb, billing_service_client::BillingServiceClient};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::{
    Config, Error,
    report::{Tally, Verdict},
    system::{self, System},
    wire,
};

/// Adds `authorization: Bearer <token>`.
#[derive(Clone)]
struct Bearer(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        req.metadata_mut().insert("authorization", self.0.clone());
        Ok(req)
    }
}

fn bearer(token: &str) -> Result<Bearer, Error> {
    Ok(Bearer(format!("Bearer {token}").parse()?))
}

async fn unary_latencies(
    client: &mut BillingServiceClient<
        tonic::service::interceptor::InterceptedService<tonic::transport::Channel, Bearer>,
    >,
    n: usize,
    tally: &mut Tally,
) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let mut req = tonic::Request::new(bpb::ListTariffsRequest::default());
        req.set_timeout(Duration::from_secs(10));
        let r = client.list_tariffs(req).await;
        out.push(started.elapsed());
        tally.add(r.map(|_| Code::Ok).unwrap_or_else(|s| s.code()));
    }
    out
}

pub async fn run(sys: &System, cfg: &Config) -> Result<Verdict, Error> {
    let billing = sys.service("billing")?;
    let mut v = Verdict::new(
        "3 stalled streams",
        format!("billing: {} silent RecordMeterReadings from one reader", cfg.stalled_streams),
    );
    let channel = wire::channel(&billing.url())?;
    let mut finance = BillingServiceClient::with_interceptor(
        channel.clone(),
        bearer(&sys.token(&[Role::Finance], "faults-finance-2")?)?,
    );
    // Baseline: the same unary calls with nothing stalled.
    let mut base_tally = Tally::default();
    let _warm = unary_latencies(&mut finance, 20, &mut base_tally).await;
    let baseline = unary_latencies(&mut finance, cfg.stall_calls, &mut base_tally).await;

    let reader_token = sys.token(&[Role::MeterReader], "faults-reader-1")?;
    let started = Instant::now();
    let mut stalls = Vec::new();
    for _ in 0..cfg.stalled_streams {
        // Each on its own connection, as separate handhelds would be.
        let mut c = BillingServiceClient::with_interceptor(wire::channel(&billing.url())?, bearer(&reader_token)?);
        stalls.push(tokio::spawn(async move {
            let r = c.record_meter_readings(tokio_stream::pending::<bpb::RecordMeterReadingsRequest>()).await;
            (r.map(|_| Code::Ok).unwrap_or_else(|s| s.code()), started.elapsed())
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut tally = Tally::default();
    let during = unary_latencies(&mut finance, cfg.stall_calls, &mut tally).await;
    let measured_by = started.elapsed();
    let health = system::health(&channel, billing.grpc_service).await;
    v.check(health == Some(ServingStatus::Serving), || format!("health {health:?} while streams were stalled"));

    let mut other = BillingServiceClient::with_interceptor(
        channel.clone(),
        bearer(&sys.token(&[Role::MeterReader], "faults-reader-2")?)?,
    );
    let upload_started = Instant::now();
    let upload =
        other.record_meter_readings(tokio_stream::iter(vec![bpb::RecordMeterReadingsRequest::default()])).await;
    let upload_ms = upload_started.elapsed().as_millis();
    v.check(upload.is_ok(), || format!("the second reader's upload failed: {:?}", upload.as_ref().err()));

    let bound = Duration::from_millis(cfg.stream_idle_ms) + Duration::from_secs(5);
    let mut ends = Tally::default();
    let mut longest = Duration::ZERO;
    let mut shortest = Duration::MAX;
    for s in stalls {
        match tokio::time::timeout(bound + Duration::from_secs(5), s).await {
            Ok(Ok((code, took))) => {
                ends.add(code);
                longest = longest.max(took);
                shortest = shortest.min(took);
                v.check(matches!(code, Code::DeadlineExceeded | Code::ResourceExhausted), || {
                    format!("a stalled upload ended {code:?}")
                });
            }
            _ => {
                v.fail(format!("a stalled upload still open after {} ms", (bound + Duration::from_secs(5)).as_millis()))
            }
        }
    }
    // Otherwise the other principal's calls were measured with nothing stalled.
    v.check(shortest >= measured_by, || {
        format!(
            "a stalled upload ended after {} ms, before the other principal's calls were measured ({} ms)",
            shortest.as_millis(),
            measured_by.as_millis()
        )
    });
    v.check(longest <= bound, || {
        format!("a stalled upload lasted {} ms (idle timeout {} ms)", longest.as_millis(), cfg.stream_idle_ms)
    });
    v.check(ends.get(Code::DeadlineExceeded) > 0, || "no stalled upload was admitted and timed out".into());
    let failed = tally.total() - tally.get(Code::Ok);
    v.check(failed == 0, || format!("{failed} of the other principal's calls failed: {tally}"));
    let (p50, p99) = (wire::percentile_ms(&during, 50.0), wire::percentile_ms(&during, 99.0));
    let (b50, b99) = (wire::percentile_ms(&baseline, 50.0), wire::percentile_ms(&baseline, 99.0));
    v.check(p99 <= (b99 * 5.0).max(cfg.stall_p99_ms), || {
        format!(
            "p99 {p99:.1} ms with stalled streams against {b99:.1} ms without (limit max(5×, {} ms))",
            cfg.stall_p99_ms
        )
    });
    v.numbers = format!(
        "other principal's ListTariffs ×{}: {} p50 {p50:.1} ms p99 {p99:.1} ms (without stalls p50 {b50:.1} ms p99 {b99:.1} ms); \
         second reader's upload {} in {upload_ms} ms; health {}; stalled uploads ended {} within {} ms (idle timeout {} ms)",
        during.len(),
        tally,
        if upload.is_ok() { "OK" } else { "FAILED" },
        health.map_or("no answer".into(), |h| format!("{h:?}")),
        ends,
        longest.as_millis(),
        cfg.stream_idle_ms,
    );
    Ok(v)
}
