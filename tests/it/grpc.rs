//! gRPC beside HTTP (`serve --grpc-listen`), driven through the real binary
//! on loopback by a client that knows nothing but what server reflection
//! tells it: the descriptors it fetches turn each HTTP body into a message
//! (its proto3 JSON form *is* the body) and each answer back into JSON, which
//! must be the HTTP answer. Same validation (codes and fields in the status
//! details), same records, metrics by transport, health as `/readyz`.

use std::time::Duration;

use bytes::Bytes;
use portcullis::server::grpc::raw::RawCodec;
use prost::Message as _;
use prost_reflect::{DescriptorPool, DeserializeOptions, DynamicMessage, SerializeOptions};
use serde_json::{Value, json};
use tonic::Code;
use tonic::transport::Channel;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_types::StatusExt as _;

use crate::binary::{Server, post, start};
use crate::support::{default_geo, root, shipped_policies};

const SERVICE: &str = "portcullis.v1.Decisions";

/// `serve --grpc-listen 127.0.0.1:0` on the shipped defaults; the gRPC
/// address is read from the `listening` log line.
fn serve(extra: &[&str]) -> (Server, String) {
    let geo = default_geo();
    let policies = shipped_policies();
    let mut args = vec![
        "--policies",
        policies.to_str().unwrap(),
        "--geo",
        geo.to_str().unwrap(),
        "--grpc-listen",
        "127.0.0.1:0",
        "--allow-as-of",
    ];
    args.extend_from_slice(extra);
    let server = start(&args, root(), &[]);
    let line = server.startup_logs.last().unwrap();
    let log: Value = serde_json::from_str(line).unwrap();
    let grpc = log["fields"]["grpc"].as_str().unwrap().to_owned();
    assert_ne!(grpc, "off", "{line}");
    (server, grpc)
}

/// A client built from server reflection alone.
struct ReflectedClient {
    channel: Channel,
    pool: DescriptorPool,
}

impl ReflectedClient {
    async fn connect(address: &str) -> Self {
        let channel = Channel::from_shared(format!("http://{address}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let mut reflection = ServerReflectionClient::new(channel.clone());
        let ask = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(SERVICE.to_owned())),
        };
        let mut answers = reflection
            .server_reflection_info(tokio_stream::iter([ask]))
            .await
            .unwrap()
            .into_inner();
        let answer = answers.message().await.unwrap().unwrap();
        let Some(MessageResponse::FileDescriptorResponse(files)) = answer.message_response else {
            panic!("reflection answered {answer:?}");
        };
        let set = prost_types::FileDescriptorSet {
            file: files
                .file_descriptor_proto
                .iter()
                .map(|bytes| prost_types::FileDescriptorProto::decode(bytes.as_slice()).unwrap())
                .collect(),
        };
        let pool = DescriptorPool::from_file_descriptor_set(set).unwrap();
        Self { channel, pool }
    }

    /// Calls `method` with the message whose proto3 JSON form is `body`;
    /// the answer in proto3 JSON with the original field names.
    async fn call(&self, method: &str, body: &Value) -> Result<Value, tonic::Status> {
        let service = self.pool.get_service_by_name(SERVICE).unwrap();
        let method = service.methods().find(|m| m.name() == method).unwrap();
        let request = DynamicMessage::deserialize_with_options(
            method.input(),
            body,
            &DeserializeOptions::new(),
        )
        .unwrap_or_else(|e| panic!("{body} is not a {}: {e}", method.input().full_name()));
        let mut grpc = tonic::client::Grpc::new(self.channel.clone());
        grpc.ready().await.unwrap();
        let path = format!("/{SERVICE}/{}", method.name()).parse().unwrap();
        let answer = grpc
            .unary(
                tonic::Request::new(Bytes::from(request.encode_to_vec())),
                path,
                RawCodec,
            )
            .await?
            .into_inner();
        let decoded = DynamicMessage::decode(method.output(), answer).unwrap();
        let options = SerializeOptions::new().use_proto_field_name(true);
        Ok(decoded
            .serialize_with_options(serde_json::value::Serializer, &options)
            .unwrap())
    }
}

/// A JSON answer as proto3 JSON writes it: no nulls, no empty lists or
/// objects, no `false`, `0` or `""` (proto3 leaves out default values), and
/// without what differs per decision (`decision_id`, `decided_at`).
fn proto3_view(v: &Value) -> Value {
    fn strip(v: &Value) -> Option<Value> {
        match v {
            Value::Null | Value::Bool(false) => None,
            Value::String(s) if s.is_empty() => None,
            Value::Number(n) if n.as_f64() == Some(0.0) => None,
            Value::Array(items) => {
                let kept: Vec<Value> = items
                    .iter()
                    .map(|i| strip(i).unwrap_or(json!({})))
                    .collect();
                (!kept.is_empty()).then_some(Value::Array(kept))
            }
            Value::Object(map) => {
                let kept: serde_json::Map<String, Value> = map
                    .iter()
                    .filter(|(k, _)| *k != "decision_id" && *k != "decided_at")
                    .filter_map(|(k, v)| strip(v).map(|v| (k.clone(), v)))
                    .collect();
                (!kept.is_empty()).then_some(Value::Object(kept))
            }
            other => Some(other.clone()),
        }
    }
    strip(v).unwrap_or(json!({}))
}

/// Every request of the shipped policy test cases and of the README, plus
/// each again with its screening explained.
fn scenarios() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(shipped_policies().join("tests")).unwrap() {
        let cases: Value =
            serde_json::from_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap()).unwrap();
        for case in cases.as_array().unwrap() {
            out.push((
                case["name"].as_str().unwrap().to_owned(),
                case["request"].clone(),
            ));
        }
    }
    for (i, request) in crate::openapi::readme_requests().into_iter().enumerate() {
        out.push((format!("README request {i}"), request));
    }
    let explained: Vec<(String, Value)> = out
        .iter()
        .map(|(name, r)| {
            let mut r = r.clone();
            r["explain"] = json!(true);
            (format!("{name} (explained)"), r)
        })
        .collect();
    out.extend(explained);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reflected_client_gets_the_http_answer_for_every_case_and_readme_scenario() {
    let records = tempfile::tempdir().unwrap();
    let dir = records.path().join("records");
    // Written and synced before each answer: the count below needs no wait.
    let (server, grpc) = serve(&[
        "--records",
        dir.to_str().unwrap(),
        "--records-sync",
        "always",
    ]);
    let client = ReflectedClient::connect(&grpc).await;
    let scenarios = scenarios();
    assert!(scenarios.len() >= 12, "{}", scenarios.len());
    let mut decided = 0;
    let mut refused = 0;
    for (name, body) in &scenarios {
        let (status, http) = post(&server.base, "/v1/decide", body, None);
        let over_grpc = client.call("Decide", body).await;
        match (status, over_grpc) {
            (200, Ok(answer)) => {
                assert_eq!(proto3_view(&answer), proto3_view(&http), "{name}");
                decided += 1;
            }
            (400, Err(status)) => {
                assert_eq!(status.code(), Code::InvalidArgument, "{name}");
                let details = status.get_error_details();
                let info = details.error_info().unwrap();
                assert_eq!(
                    info.reason,
                    http["error"]["code"].as_str().unwrap(),
                    "{name}"
                );
                assert_eq!(info.domain, "portcullis.v1");
                let field = http["error"]["field"].as_str().unwrap();
                assert_eq!(info.metadata.get("field").map(String::as_str), Some(field));
                let violation = &details.bad_request().unwrap().field_violations[0];
                assert_eq!(violation.field, field);
                refused += 1;
            }
            (status, answer) => panic!("{name}: HTTP {status} {http}, gRPC {answer:?}"),
        }
    }
    assert!(
        decided >= 10 && refused >= 1,
        "{decided} decided, {refused} refused"
    );

    // A batch gives the same answers, in order.
    let bodies: Vec<Value> = scenarios
        .iter()
        .map(|(_, b)| b.clone())
        .filter(|b| b["customer"]["nationalities"] != json!(["Iran"]))
        .collect();
    let batch = json!({ "requests": bodies });
    let (status, http) = post(&server.base, "/v1/decide/batch", &batch, None);
    assert_eq!(status, 200, "{http}");
    let answer = client.call("DecideBatch", &batch).await.unwrap();
    assert_eq!(proto3_view(&answer), proto3_view(&http));

    // Every decision over either transport was recorded, and counted by transport.
    let metrics = crate::binary::metrics_text(&server.base);
    let count = |transport: &str| -> u64 {
        metrics
            .lines()
            .filter(|l| {
                l.starts_with("portcullis_decisions_total")
                    && l.contains(&format!("transport=\"{transport}\""))
            })
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    let expected = (decided + bodies.len()) as u64;
    assert_eq!(count("grpc"), expected, "{metrics}");
    assert_eq!(count("http"), expected, "{metrics}");
    assert!(
        metrics.contains(&format!(
            "portcullis_rejected_requests_total{{code=\"invalid_country\",transport=\"grpc\"}} {refused}"
        )),
        "{metrics}"
    );
    let recorded = crate::support::record_lines(&dir);
    assert_eq!(recorded as u64, 2 * expected);
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_invalid_argument_with_the_apis_code_and_field() {
    let (server, grpc) = serve(&[]);
    let client = ReflectedClient::connect(&grpc).await;
    let aliases: Vec<String> = (0..60).map(|i| format!("Alias {i}")).collect();
    let cases = [
        json!({"action": "open_account", "customer": {"id": "c"}}),
        json!({"action": "close", "customer": {"id": "c", "name": "n"}}),
        json!({"action": "open_account", "customer": {"id": "c", "name": "   "}}),
        json!({"action": "open_account", "customer": {"id": "c", "name": "n"}, "source_ips": ["1.2.3"]}),
        json!({"action": "open_account", "customer": {"id": "c", "name": "n", "date_of_birth": "1970-13-01"}}),
        json!({"action": "open_account", "customer": {"id": "c", "name": "n", "aliases": aliases}}),
        json!({"action": "open_account", "customer": {"id": "c", "name": "n"}, "reseller": {"id": "r"}}),
        // Beyond 32 bits: refused as over HTTP, never wrapped to a small count.
        json!({"action": "provision", "customer": {"id": "c", "name": "n"},
               "resource": {"kind": "gpu_cluster", "gpu_count": 4_294_967_808_u64}}),
    ];
    for body in &cases {
        let (status, http) = post(&server.base, "/v1/decide", body, None);
        assert_eq!(status, 400, "{http}");
        let e = client.call("Decide", body).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{body}");
        let details = e.get_error_details();
        let info = details.error_info().unwrap();
        assert_eq!(
            info.reason,
            http["error"]["code"].as_str().unwrap(),
            "{body}"
        );
        assert_eq!(
            info.metadata.get("field"),
            http["error"]["field"].as_str().map(str::to_owned).as_ref(),
            "{body}"
        );
        assert_eq!(e.message(), http["error"]["message"].as_str().unwrap());
    }
    // An empty string is proto3's absent field: where HTTP says the field is
    // blank, gRPC says it is missing, and both refuse it, naming the field.
    let blank_kind = json!({"action": "open_account", "customer": {"id": "c", "name": "n",
        "identifiers": [{"kind": "", "value": "AB123"}]}});
    let (status, http) = post(&server.base, "/v1/decide", &blank_kind, None);
    assert_eq!(status, 400, "{http}");
    let e = client.call("Decide", &blank_kind).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(
        e.get_error_details()
            .error_info()
            .unwrap()
            .metadata
            .get("field"),
        http["error"]["field"].as_str().map(str::to_owned).as_ref(),
    );
    // In a batch, the field names the request.
    let batch = json!({"requests": [{"action": "open_account", "customer": {"id": "c", "name": "n"}}, cases[0]]});
    let e = client.call("DecideBatch", &batch).await.unwrap_err();
    assert_eq!(
        e.get_error_details()
            .error_info()
            .unwrap()
            .metadata
            .get("field")
            .map(String::as_str),
        Some("requests[1].customer.name")
    );
    let many = json!({"requests": vec![json!({"action": "open_account", "customer": {"id": "c", "name": "n"}}); 1001]});
    let e = client.call("DecideBatch", &many).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(
        e.get_error_details().error_info().unwrap().reason,
        "batch_too_large"
    );
    // A message over --max-body is refused by the transport, not decided.
    let huge =
        json!({"action": "open_account", "customer": {"id": "c", "name": "x".repeat(2 << 20)}});
    let e = client.call("Decide", &huge).await.unwrap_err();
    assert!(
        matches!(e.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{e:?}"
    );
    // `at` is refused on the live endpoint as over HTTP unless allowed.
    drop(server);
    let geo = default_geo();
    let server = start(
        &[
            "--policies",
            shipped_policies().to_str().unwrap(),
            "--geo",
            geo.to_str().unwrap(),
            "--grpc-listen",
            "127.0.0.1:0",
        ],
        root(),
        &[],
    );
    let log: Value = serde_json::from_str(server.startup_logs.last().unwrap()).unwrap();
    let client = ReflectedClient::connect(log["fields"]["grpc"].as_str().unwrap()).await;
    let e = client
        .call("Decide", &json!({"action": "open_account", "customer": {"id": "c", "name": "n"}, "at": "2030-01-01"}))
        .await
        .unwrap_err();
    assert_eq!(
        e.get_error_details().error_info().unwrap().reason,
        "invalid_value"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_follows_readiness_and_reflection_lists_the_services() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    let records = tempfile::tempdir().unwrap();
    let dir = records.path().join("records");
    let (server, grpc) = serve(&[
        "--records",
        dir.to_str().unwrap(),
        "--records-sync",
        "always",
        "--records-max-file-bytes",
        "1",
    ]);
    let client = ReflectedClient::connect(&grpc).await;
    let services: Vec<String> = client
        .pool
        .services()
        .map(|s| s.full_name().to_owned())
        .collect();
    assert!(services.contains(&SERVICE.to_owned()), "{services:?}");
    let mut health = HealthClient::new(client.channel.clone());
    let check = async |health: &mut HealthClient<Channel>, service: &str| {
        health
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await
            .unwrap()
            .into_inner()
            .status()
    };
    let person = json!({"action": "open_account", "customer": {"id": "c", "name": "Ana Lima"}});
    assert!(client.call("Decide", &person).await.is_ok());
    assert_eq!(check(&mut health, SERVICE).await, ServingStatus::Serving);
    assert_eq!(check(&mut health, "").await, ServingStatus::Serving);

    // Records cannot be written: no decision, and the service is NOT_SERVING,
    // as `/readyz` is 503.
    let aside = dir.with_file_name("aside");
    std::fs::rename(&dir, &aside).unwrap();
    std::fs::write(&dir, "not a directory").unwrap();
    let e = client.call("Decide", &person).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
    assert_eq!(
        e.get_error_details().error_info().unwrap().reason,
        "records_unavailable"
    );
    let mut seen = None;
    for _ in 0..200 {
        let now = check(&mut health, SERVICE).await;
        if now == ServingStatus::NotServing {
            seen = Some(now);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(seen, Some(ServingStatus::NotServing));
    let (status, _) = crate::binary::get(&server.base, "/readyz");
    assert_eq!(status, 503);

    // Repaired: SERVING again.
    std::fs::remove_file(&dir).unwrap();
    std::fs::rename(&aside, &dir).unwrap();
    let mut back = false;
    for _ in 0..400 {
        if check(&mut health, SERVICE).await == ServingStatus::Serving {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(back, "never SERVING again");
}

#[test]
fn the_load_generator_drives_grpc_with_the_json_corpus() {
    let (server, grpc) = serve(&[]);
    let corpus = tempfile::NamedTempFile::new().unwrap();
    let bodies: Vec<String> = scenarios()
        .into_iter()
        .map(|(_, b)| b)
        .filter(|b| b["customer"]["nationalities"] != json!(["Iran"]))
        .map(|b| b.to_string())
        .collect();
    std::fs::write(corpus.path(), bodies.join("\n")).unwrap();
    for path in ["", "/v1/decide/batch"] {
        let batch_corpus;
        let corpus_path = if path.is_empty() {
            corpus.path().to_owned()
        } else {
            batch_corpus = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(
                batch_corpus.path(),
                format!("{{\"requests\": [{}]}}", bodies.join(",")),
            )
            .unwrap();
            batch_corpus.path().to_owned()
        };
        let out = std::process::Command::new(crate::binary::BIN)
            .args(["bench", "--grpc", "--url"])
            .arg(format!("http://{grpc}{path}"))
            .args([
                "--rate",
                "200",
                "--duration",
                "1s",
                "--connections",
                "2",
                "--json",
                "--corpus",
            ])
            .arg(&corpus_path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report[0]["errors"], 0, "{report}");
        assert_eq!(report[0]["ok"], report[0]["sent"], "{report}");
        assert!(report[0]["ok"].as_u64().unwrap() >= 150, "{report}");
    }
    // A corpus line that is no request is refused before the run, by line.
    let bad = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(bad.path(), "{\"action\": \"open_account\", \"shoe\": 1}\n").unwrap();
    let out = std::process::Command::new(crate::binary::BIN)
        .args(["bench", "--grpc", "--url"])
        .arg(format!("http://{grpc}"))
        .args(["--duration", "1s", "--corpus"])
        .arg(bad.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("corpus line 1"), "{stderr}");
    drop(server);
}

#[test]
fn a_grpc_address_in_use_stops_the_start_with_one_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let out = std::process::Command::new(crate::binary::BIN)
        .current_dir(root())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--records",
            "off",
            "--grpc-listen",
            &address,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let said = format!("cannot listen for gRPC on {address}");
    assert!(stderr.contains(&said), "{stderr}");
    assert_eq!(
        stderr.matches("in use").count(),
        1,
        "the cause once: {stderr}"
    );
}

/// Sends raw bytes as a `Decide` message.
async fn raw_decide(channel: &Channel, bytes: Vec<u8>) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.unwrap();
    let request = tonic::Request::new(Bytes::from(bytes));
    let path = format!("/{SERVICE}/Decide").parse().unwrap();
    grpc.unary(request, path, RawCodec).await.unwrap_err()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_protobuf_would_drop_is_refused_and_the_time_limit_answers_deadline_exceeded() {
    let (_server, grpc) = serve(&[]);
    let client = ReflectedClient::connect(&grpc).await;
    let input = client
        .pool
        .get_message_by_name("portcullis.v1.DecideRequest")
        .unwrap();
    let valid = |body: Value| {
        DynamicMessage::deserialize_with_options(input.clone(), &body, &DeserializeOptions::new())
            .unwrap()
            .encode_to_vec()
    };
    let person = json!({"action": "open_account", "customer": {"id": "c", "name": "Ana Lima"},
                        "reseller": {"id": "r", "country": "KP"}});
    // A field this service does not know (number 99): prost would drop it.
    let mut unknown = valid(person.clone());
    unknown.extend_from_slice(&[0x98, 0x06, 0x01]);
    // `action` given twice: prost would keep the last.
    let mut twice = valid(person.clone());
    twice.extend_from_slice(&[0x12, 0x09]);
    twice.extend_from_slice(b"provision");
    for (what, bytes, code) in [
        ("unknown field", unknown, "unknown_field"),
        ("field twice", twice, "unknown_field"),
        ("not protobuf", vec![0xff, 0xff, 0xff], "malformed_message"),
    ] {
        let e = raw_decide(&client.channel, bytes).await;
        assert_eq!(e.code(), Code::InvalidArgument, "{what}: {e:?}");
        assert_eq!(
            e.get_error_details().error_info().unwrap().reason,
            code,
            "{what}"
        );
    }
    // The same message without the extra field is decided.
    assert!(client.call("Decide", &person).await.is_ok());
    // Refused by the codec, before the service: counted all the same, and
    // the marker the counting layer reads does not reach the client.
    let metrics = crate::binary::metrics_text(&_server.base);
    for (code, n) in [("unknown_field", 2), ("malformed_message", 1)] {
        let line =
            format!("portcullis_rejected_requests_total{{code=\"{code}\",transport=\"grpc\"}} {n}");
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }
    let e = raw_decide(&client.channel, vec![0xff]).await;
    assert!(e.metadata().get("portcullis-refused").is_none(), "{e:?}");

    // 100 parties of 50 names cannot be screened in 5 ms: past
    // --request-timeout the call is answered as over HTTP (408).
    drop(_server);
    let (_server, grpc) = serve(&["--request-timeout", "5ms"]);
    let client = ReflectedClient::connect(&grpc).await;
    let owners: Vec<Value> = (0..99)
        .map(|i| json!({"name": format!("Owner {i}"), "aliases": (0..49).map(|j| format!("Mohammed Ali {i} {j}")).collect::<Vec<_>>()}))
        .collect();
    let heavy = json!({"action": "open_account", "customer": {"id": "c", "name": "Mohammed Ali",
        "aliases": (0..49).map(|j| format!("Mohammed Ali {j}")).collect::<Vec<_>>(),
        "beneficial_owners": owners}});
    let e = raw_decide(&client.channel, valid(heavy.clone())).await;
    assert_eq!(e.code(), Code::DeadlineExceeded, "{e:?}");
    assert_eq!(
        e.get_error_details().error_info().unwrap().reason,
        "request_timeout"
    );

    // The client's own shorter `grpc-timeout` is answered the same way, not
    // with the transport's bare CANCELLED. (tonic's client enforces the
    // header itself and would give up first, so the call goes over bare
    // HTTP/2 to see what the server answers.)
    drop(_server);
    let (_server, grpc) = serve(&[]);
    for _ in 0..5 {
        let e = bare_call(&grpc, "Decide", &valid(heavy.clone()), Some("1u")).await;
        assert_eq!(e.code(), Code::DeadlineExceeded, "{e:?}");
        assert_eq!(
            e.get_error_details().error_info().unwrap().reason,
            "request_timeout"
        );
    }
}

/// One unary call over a bare HTTP/2 connection: the gRPC status the server
/// answers, with no client-side deadline.
async fn bare_call(
    address: &str,
    method: &str,
    message: &[u8],
    timeout: Option<&str>,
) -> tonic::Status {
    use http_body_util::BodyExt as _;
    let stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let mut frame = vec![0u8];
    frame.extend_from_slice(&u32::try_from(message.len()).unwrap().to_be_bytes());
    frame.extend_from_slice(message);
    let mut request = hyper::Request::post(format!("http://{address}/{SERVICE}/{method}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    if let Some(t) = timeout {
        request = request.header("grpc-timeout", t);
    }
    let request = request
        .body(http_body_util::Full::new(Bytes::from(frame)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    if let Some(status) = tonic::Status::from_header_map(&parts.headers) {
        return status;
    }
    let trailers = body.collect().await.unwrap().trailers().cloned().unwrap();
    tonic::Status::from_header_map(&trailers).unwrap()
}

/// Reads from `stream` until the server closes it (end of stream or reset);
/// `None` if it is still open after `wait`.
fn closed_within(stream: &mut std::net::TcpStream, wait: Duration) -> Option<()> {
    use std::io::Read as _;
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut buf = [0u8; 256];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Some(()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None;
            }
            Err(_) => return Some(()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grpc_listener_has_the_connection_cap_and_the_silent_connection_timeout() {
    let (server, grpc) = serve(&["--max-connections", "2", "--header-read-timeout", "300ms"]);

    // A connection that never sends the HTTP/2 preface is closed after the
    // header read timeout, and so is one that sends part of it.
    let mut silent = std::net::TcpStream::connect(&grpc).unwrap();
    assert!(
        closed_within(&mut silent, Duration::from_secs(20)).is_some(),
        "a silent connection stayed open"
    );
    let mut partial = std::net::TcpStream::connect(&grpc).unwrap();
    std::io::Write::write_all(&mut partial, b"PRI * HTTP/2.0").unwrap();
    assert!(
        closed_within(&mut partial, Duration::from_secs(20)).is_some(),
        "half a preface held the connection"
    );

    // Two live channels fill the cap, and stay open past the preface timeout.
    let first = ReflectedClient::connect(&grpc).await;
    let second = ReflectedClient::connect(&grpc).await;
    let person = json!({"action": "open_account", "customer": {"id": "c", "name": "Ana Lima"}});
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(first.call("Decide", &person).await.is_ok());
    assert!(second.call("Decide", &person).await.is_ok());

    // A third connection is closed at once, while the two keep deciding.
    // It sends the whole preface, so that only the cap can close it: over
    // an uncapped listener it would stay open, waiting for its SETTINGS.
    let mut third = std::net::TcpStream::connect(&grpc).unwrap();
    // (Closed at once, the write may already fail: what matters is the close.)
    let _ = std::io::Write::write_all(&mut third, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    assert!(
        closed_within(&mut third, Duration::from_secs(3)).is_some(),
        "a connection over the cap was kept"
    );
    assert!(first.call("Decide", &person).await.is_ok());

    // When one ends, a new one is admitted.
    drop(second);
    let mut admitted = None;
    for _ in 0..100 {
        let channel = Channel::from_shared(format!("http://{grpc}")).unwrap();
        if let Ok(channel) = channel.connect().await {
            let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
            let asked = tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            };
            if health.check(asked).await.is_ok() {
                admitted = Some(health);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(admitted.is_some(), "no room after a connection ended");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_stop_health_says_not_serving_and_an_open_watch_does_not_hold_the_drain() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    let (mut server, grpc) = serve(&["--drain-timeout", "30s", "--request-timeout", "2s"]);
    let channel = Channel::from_shared(format!("http://{grpc}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    let mut watch = health
        .watch(HealthCheckRequest {
            service: SERVICE.to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(first.status(), ServingStatus::Serving);

    let stopped = std::time::Instant::now();
    crate::binary::signal(&server.child, "TERM");
    // The watch hears NOT_SERVING before the stream is closed.
    let mut heard = Vec::new();
    while let Ok(Some(m)) = watch.message().await {
        heard.push(m.status());
    }
    assert!(heard.contains(&ServingStatus::NotServing), "{heard:?}");
    let status = crate::binary::wait_exit(&mut server.child);
    assert!(status.success(), "{status:?}");
    // Closed at the request time limit, well before the 30 s drain.
    assert!(
        stopped.elapsed() < Duration::from_secs(20),
        "{:?}",
        stopped.elapsed()
    );
}
