//! `portcullis bench`: an open-loop load generator for any Portcullis URL.
//!
//! Requests are scheduled at a fixed offered rate by a dispatcher that never
//! waits for answers: it puts each request on a queue at its due time, and the
//! connections take from the queue. Latency is measured from that moment, not
//! from when a connection became free, so a server that stalls cannot hide the
//! queue that builds behind it (coordinated omission). The dispatcher's own
//! lateness against the schedule (timer granularity, a starved runtime) is
//! reported separately rather than charged to the server. Latencies go into an
//! HDR histogram per connection, merged at the end.
//!
//! With `--reload-every`, the run has two phases of equal length: steady state,
//! then the same load while `POST /v1/admin/reload` is called at that interval.
//!
//! With `--grpc`, the same corpus goes to `portcullis.v1.Decisions` instead:
//! each JSON body is turned once, before the clock starts, into the message
//! whose proto3 JSON form it is (from the service's own descriptors), and
//! each connection is one HTTP/2 channel sending them already encoded.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `host:port` of the service.
    pub address: String,
    /// Requests per second offered.
    pub rate: u64,
    pub duration: Duration,
    pub connections: usize,
    /// Request bodies, sent in turn.
    pub corpus: Vec<Bytes>,
    /// Path to POST to.
    pub path: String,
    /// Call the admin reload at this interval in a second phase.
    pub reload_every: Option<Duration>,
    pub admin_token: Option<String>,
    /// Call `portcullis.v1.Decisions` over gRPC instead of the JSON API.
    pub grpc: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    // The cause is in the message and deliberately not a `source`: the command
    // line prints errors chained (`{:#}`), which would repeat it.
    #[error("cannot connect to `{address}`: {cause}")]
    Connect {
        address: String,
        cause: std::io::Error,
    },
    #[error("HTTP handshake with `{address}` failed: {cause}")]
    Handshake {
        address: String,
        cause: hyper::Error,
    },
    #[error("the corpus is empty")]
    EmptyCorpus,
    #[error("cannot connect over gRPC to `{address}`: {cause}")]
    GrpcConnect {
        address: String,
        cause: tonic::transport::Error,
    },
    #[error("corpus line {line} is not a `portcullis.v1` request: {cause}")]
    NotAMessage { line: usize, cause: String },
    #[error("invalid request: {0}")]
    Request(String),
    #[error("histogram: {0}")]
    Histogram(String),
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

/// The result of one phase.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    pub phase: &'static str,
    pub offered_rate: u64,
    pub duration_s: f64,
    pub sent: u64,
    pub ok: u64,
    pub errors: u64,
    /// Completed requests per second.
    pub throughput: f64,
    pub latency_us: Percentiles,
    /// How late the dispatcher put requests on the queue, against the schedule.
    pub dispatch_lag_us: Percentiles,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reloads: Option<ReloadCounts>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ReloadCounts {
    pub ok: u64,
    pub failed: u64,
}

/// The built-in representative mix: ordinary customers, a designated
/// jurisdiction, a designated person, a conditional GPU request, IPv4 and IPv6.
pub fn builtin_corpus() -> Vec<Bytes> {
    [
        r#"{"action":"open_account","customer":{"id":"c-1","kind":"individual","name":"Ann Lee","nationalities":["FR"],"address":{"country":"FR"},"payment":{"country":"FR","method":"card"}},"source_ips":["8.8.8.8"]}"#,
        r#"{"action":"maintain_account","customer":{"id":"c-2","kind":"organization","name":"Acme Research GmbH","address":{"country":"DE"},"beneficial_owners":[{"name":"Anna Schmidt","nationalities":["DE","AT"]}]},"source_ips":["2001:4860:4860::8888"]}"#,
        r#"{"action":"open_account","customer":{"id":"c-3","name":"Bo Chen"},"reseller":{"id":"r-1","country":"KP"}}"#,
        r#"{"action":"open_account","customer":{"id":"c-4","name":"Фиктив Борис","nationalities":["RU"]},"source_ips":["1.1.1.1"]}"#,
        r#"{"action":"provision","customer":{"id":"c-5","kind":"organization","name":"Example Trading LLC","address":{"country":"AE"},"beneficial_owners":[{"name":"Ivan Petrov","nationalities":["RU"]}]},"resource":{"kind":"gpu_cluster","region":"us-east-1","gpu_count":512}}"#,
        r#"{"action":"provision","customer":{"id":"c-6","name":"Jane Roe","address":{"country":"US"}},"source_ips":["9.9.9.9","2606:4700::1111"],"resource":{"kind":"vm","region":"us-west-2","gpu_count":0}}"#,
    ]
    .into_iter()
    .map(|s: &'static str| Bytes::from_static(s.as_bytes()))
    .collect()
}

/// Runs the plan: one phase, or steady then reloading.
pub async fn run(plan: Plan) -> Result<Vec<PhaseReport>, LoadError> {
    if plan.corpus.is_empty() {
        return Err(LoadError::EmptyCorpus);
    }
    let plan = if plan.grpc {
        Plan {
            corpus: grpc::encode(&plan.corpus, &plan.path)?,
            ..plan
        }
    } else {
        plan
    };
    let mut reports = vec![phase(&plan, "steady", None).await?];
    if let Some(every) = plan.reload_every {
        reports.push(phase(&plan, "reloading", Some(every)).await?);
    }
    Ok(reports)
}

struct Job {
    intended: Instant,
    body: Bytes,
}

/// A connection's task: its latency histogram and how many answers were good.
type WorkerTask = tokio::task::JoinHandle<Result<(Histogram<u64>, u64), LoadError>>;

async fn phase(
    plan: &Plan,
    name: &'static str,
    reload_every: Option<Duration>,
) -> Result<PhaseReport, LoadError> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
    let errors = Arc::new(AtomicU64::new(0));
    let workers = start_workers(plan, rx, &errors).await?;

    let stop = Arc::new(AtomicBool::new(false));
    let reloader = reload_every.map(|every| {
        tokio::spawn(reload_loop(
            plan.address.clone(),
            plan.admin_token.clone(),
            every,
            stop.clone(),
        ))
    });

    let start = Instant::now();
    let (total, lag) = dispatch(plan, start, tx).await?;
    let (merged, ok) = join_workers(workers).await?;
    let elapsed = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let reloads = match reloader {
        Some(r) => Some(r.await.unwrap_or_default()),
        None => None,
    };
    Ok(PhaseReport {
        phase: name,
        offered_rate: plan.rate,
        duration_s: elapsed,
        sent: total,
        ok,
        errors: errors.load(Ordering::Relaxed),
        throughput: ok as f64 / elapsed,
        latency_us: Percentiles::of(&merged),
        dispatch_lag_us: Percentiles::of(&lag),
        reloads,
    })
}

/// Opens the plan's connections (at least one), each taking jobs from `rx`
/// and counting failed requests in `errors`.
async fn start_workers(
    plan: &Plan,
    rx: tokio::sync::mpsc::UnboundedReceiver<Job>,
    errors: &Arc<AtomicU64>,
) -> Result<Vec<WorkerTask>, LoadError> {
    let rx = Arc::new(Mutex::new(rx));
    let mut workers = Vec::with_capacity(plan.connections);
    for _ in 0..plan.connections.max(1) {
        if plan.grpc {
            let channel = grpc::connect(&plan.address).await?;
            workers.push(tokio::spawn(grpc::worker(
                channel,
                grpc::method(&plan.path),
                rx.clone(),
                errors.clone(),
            )));
            continue;
        }
        let sender = connect(&plan.address).await?;
        workers.push(tokio::spawn(worker(
            sender,
            plan.address.clone(),
            plan.path.clone(),
            rx.clone(),
            errors.clone(),
        )));
    }
    Ok(workers)
}

/// Puts the phase's requests on the queue on schedule (request i is due at
/// `start + i / rate`), never waiting for answers; the queue closes at the
/// end. Returns how many were scheduled and the dispatcher's lateness.
async fn dispatch(
    plan: &Plan,
    start: Instant,
    tx: tokio::sync::mpsc::UnboundedSender<Job>,
) -> Result<(u64, Histogram<u64>), LoadError> {
    let interval = Duration::from_secs_f64(1.0 / plan.rate.max(1) as f64);
    let total = (plan.duration.as_secs_f64() * plan.rate as f64) as u64;
    let mut bodies = plan.corpus.iter().cycle();
    let mut lag = new_histogram()?;
    for i in 0..total {
        let due = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due).await;
        let now = Instant::now();
        let _ = lag.record(
            u64::try_from((now - due).as_micros())
                .unwrap_or(u64::MAX)
                .max(1),
        );
        let body = bodies.next().cloned().unwrap_or_default();
        if tx
            .send(Job {
                intended: now,
                body,
            })
            .is_err()
        {
            break;
        }
    }
    Ok((total, lag))
}

/// Waits for every connection to finish the queue; merges their latencies
/// and counts their good answers.
async fn join_workers(workers: Vec<WorkerTask>) -> Result<(Histogram<u64>, u64), LoadError> {
    let mut merged = new_histogram()?;
    let mut ok = 0;
    for w in workers {
        if let Ok(Ok((h, n))) = w.await {
            ok += n;
            merged
                .add(&h)
                .map_err(|e| LoadError::Histogram(e.to_string()))?;
        }
    }
    Ok((merged, ok))
}

impl Percentiles {
    /// The percentiles of a histogram.
    fn of(h: &Histogram<u64>) -> Self {
        Self {
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

fn new_histogram() -> Result<Histogram<u64>, LoadError> {
    Histogram::new_with_bounds(1, 60_000_000, 3).map_err(|e| LoadError::Histogram(e.to_string()))
}

type Sender = http1::SendRequest<Full<Bytes>>;

async fn connect(address: &str) -> Result<Sender, LoadError> {
    let stream = TcpStream::connect(address)
        .await
        .map_err(|cause| LoadError::Connect {
            address: address.to_owned(),
            cause,
        })?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|cause| LoadError::Handshake {
            address: address.to_owned(),
            cause,
        })?;
    tokio::spawn(conn);
    Ok(sender)
}

async fn worker(
    mut sender: Sender,
    address: String,
    path: String,
    jobs: Arc<Mutex<tokio::sync::mpsc::UnboundedReceiver<Job>>>,
    errors: Arc<AtomicU64>,
) -> Result<(Histogram<u64>, u64), LoadError> {
    let mut hist = new_histogram()?;
    let mut ok = 0;
    loop {
        let job = { jobs.lock().await.recv().await };
        let Some(job) = job else { break };
        let request = Request::post(path.as_str())
            .header("host", address.as_str())
            .header("content-type", "application/json")
            .body(Full::new(job.body))
            .map_err(|e| LoadError::Request(e.to_string()))?;
        let ready = sender.ready().await.is_ok();
        let good = ready
            && match sender.send_request(request).await {
                Ok(response) => {
                    let status = response.status();
                    let drained = response.into_body().collect().await.is_ok();
                    status.is_success() && drained
                }
                Err(_) => false,
            };
        let micros = u64::try_from(job.intended.elapsed().as_micros()).unwrap_or(u64::MAX);
        let _ = hist.record(micros.max(1));
        if good {
            ok += 1;
        } else {
            errors.fetch_add(1, Ordering::Relaxed);
            if sender.ready().await.is_err() {
                sender = connect(&address).await?;
            }
        }
    }
    Ok((hist, ok))
}

async fn reload_loop(
    address: String,
    token: Option<String>,
    every: Duration,
    stop: Arc<AtomicBool>,
) -> ReloadCounts {
    let mut counts = ReloadCounts::default();
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let Ok(mut sender) = connect(&address).await else {
        return counts;
    };
    while !stop.load(Ordering::Relaxed) {
        ticker.tick().await;
        let mut req = Request::post("/v1/admin/reload").header("host", address.as_str());
        if let Some(t) = &token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let Ok(req) = req.body(Full::new(Bytes::new())) else {
            break;
        };
        match sender.send_request(req).await {
            Ok(r) if r.status().is_success() => {
                counts.ok += 1;
                let _ = r.into_body().collect().await;
            }
            _ => {
                counts.failed += 1;
                match connect(&address).await {
                    Ok(s) => sender = s,
                    Err(_) => break,
                }
            }
        }
    }
    counts
}

/// Human-readable report lines.
pub fn render(reports: &[PhaseReport]) -> String {
    let mut out = String::from(
        "phase       offered/s  done/s   ok       errors  p50µs  p90µs  p99µs  p99.9µs  maxµs  lag-p99µs  reloads\n",
    );
    for r in reports {
        let reloads = r.reloads.as_ref().map_or("-".to_owned(), |c| {
            format!("{} ok, {} failed", c.ok, c.failed)
        });
        out.push_str(&format!(
            "{:<11} {:>9} {:>7.0} {:>8} {:>6} {:>6} {:>6} {:>6} {:>8} {:>6} {:>10}  {}\n",
            r.phase,
            r.offered_rate,
            r.throughput,
            r.ok,
            r.errors,
            r.latency_us.p50,
            r.latency_us.p90,
            r.latency_us.p99,
            r.latency_us.p999,
            r.latency_us.max,
            r.dispatch_lag_us.p99,
            reloads
        ));
    }
    if let [steady, reloading] = reports {
        let ratio = |a: u64, b: u64| a as f64 / b.max(1) as f64;
        out.push_str(&format!(
            "reloading / steady: p50 {:.2}x, p99 {:.2}x\n",
            ratio(reloading.latency_us.p50, steady.latency_us.p50),
            ratio(reloading.latency_us.p99, steady.latency_us.p99)
        ));
    }
    out
}

/// The gRPC side of the load generator.
mod grpc {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use bytes::Bytes;
    use hdrhistogram::Histogram;
    use prost_reflect::{DescriptorPool, DynamicMessage};
    use tokio::sync::Mutex;
    use tonic::transport::Channel;

    use super::{Job, LoadError, new_histogram};
    use crate::server::grpc::{DESCRIPTORS, SERVICE, raw::RawCodec};

    /// The method a JSON API path stands for.
    pub(super) fn method(path: &str) -> &'static str {
        if path.trim_end_matches('/').ends_with("/batch") {
            "DecideBatch"
        } else {
            "Decide"
        }
    }

    /// Each JSON body as the encoded message of the path's method.
    pub(super) fn encode(corpus: &[Bytes], path: &str) -> Result<Vec<Bytes>, LoadError> {
        let not_a_message = |line: usize, cause: String| LoadError::NotAMessage { line, cause };
        let pool =
            DescriptorPool::decode(DESCRIPTORS).map_err(|e| not_a_message(0, e.to_string()))?;
        let input = pool
            .get_service_by_name(SERVICE)
            .and_then(|s| s.methods().find(|m| m.name() == method(path)))
            .map(|m| m.input())
            .ok_or_else(|| not_a_message(0, format!("no method {}", method(path))))?;
        corpus
            .iter()
            .enumerate()
            .map(|(i, body)| {
                let mut de = serde_json::Deserializer::from_slice(body);
                let message = DynamicMessage::deserialize(input.clone(), &mut de)
                    .map_err(|e| not_a_message(i + 1, e.to_string()))?;
                Ok(Bytes::from(prost::Message::encode_to_vec(&message)))
            })
            .collect()
    }

    pub(super) async fn connect(address: &str) -> Result<Channel, LoadError> {
        let fail = |cause| LoadError::GrpcConnect {
            address: address.to_owned(),
            cause,
        };
        Channel::from_shared(format!("http://{address}"))
            .map_err(|e| LoadError::Request(e.to_string()))?
            .tcp_nodelay(true)
            .connect()
            .await
            .map_err(fail)
    }

    /// One channel's task: sends each job's message, times it from the
    /// moment it was due.
    pub(super) async fn worker(
        channel: Channel,
        method: &'static str,
        jobs: Arc<Mutex<tokio::sync::mpsc::UnboundedReceiver<Job>>>,
        errors: Arc<AtomicU64>,
    ) -> Result<(Histogram<u64>, u64), LoadError> {
        let path: tonic::codegen::http::uri::PathAndQuery =
            format!("/{SERVICE}/{method}").parse().map_err(
                |e: tonic::codegen::http::uri::InvalidUri| LoadError::Request(e.to_string()),
            )?;
        let mut client = tonic::client::Grpc::new(channel);
        let mut hist = new_histogram()?;
        let mut ok = 0;
        loop {
            let job = { jobs.lock().await.recv().await };
            let Some(job) = job else { break };
            let good = client.ready().await.is_ok()
                && client
                    .unary(tonic::Request::new(job.body), path.clone(), RawCodec)
                    .await
                    .is_ok();
            let micros = u64::try_from(job.intended.elapsed().as_micros()).unwrap_or(u64::MAX);
            let _ = hist.record(micros.max(1));
            if good {
                ok += 1;
            } else {
                errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok((hist, ok))
    }
}
