//! The whole route table under hostile requests. The routes come from the
//! server's own OpenAPI document (axum can't list a router's routes), and
//! `the_openapi_document_and_the_router_agree` keeps that document honest.
//! Every route is asked with no, a wrong and a junk credential (a 401 with
//! Go's body, except `GET /health`), then with junk path parameters, junk
//! values for every query parameter it documents and junk bodies: each
//! answer is a 4xx carrying Go's error body, or the route's documented
//! success when the input is valid after all; never a 5xx, a panic or a
//! dropped connection.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use api::server::{MAX_PREAMBLE_BYTES, RestConfig};
use serde_json::Value;

use crate::support::{CID, FakeCluster, PEER, Raw, RawConn, TestServer, basic};

/// The document `GET /openapi.json` serves.
const OPENAPI: &str = include_str!("../../src/server/openapi.json");
/// The router's source: its `.route("...")` calls are the route table.
const ROUTER_SOURCE: &str = concat!(
    include_str!("../../src/server/routes.rs"),
    include_str!("../../src/server/history.rs"),
    include_str!("../../src/server/ui.rs")
);

const USER: (&str, &str) = ("alice", "secret");
const BOUNDARY: &str = "XyZ";
/// A body larger than every limit of the server. Only a prefix past the
/// route's limit is sent: the answer must come without the rest (the
/// server is not buffering it all).
const HUGE_BODY: usize = 20 * 1024 * 1024;
/// axum's default body limit, which `POST /peers` keeps.
const JSON_BODY_LIMIT: usize = 2 * 1024 * 1024;
/// The longest request head the server reads (Go's `MaxHeaderBytes`
/// default, 4096, plus the 4096 bytes of slack Go allows): past it, both
/// answer 431 before routing and authentication (Go's body is plain text).
const MAX_HEAD: usize = 4096 + 4096;
/// The methods probed on every path.
const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
const NO_AUTH_401: &str = "{\"code\":401,\"message\":\"unauthorized: no auth provided\"}\n";

/// One operation of the OpenAPI document.
#[derive(Debug)]
struct Route {
    method: String,
    template: String,
    path_params: Vec<String>,
    query_params: Vec<QueryParam>,
    /// The media type of the request body, when the route reads one.
    body: Option<String>,
    /// The statuses documented for it.
    statuses: Vec<u16>,
    /// `security: []`: no credentials asked.
    open: bool,
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.template)
    }
}

#[derive(Debug)]
struct QueryParam {
    /// The name sent (`meta-{key}` becomes `meta-k`).
    name: String,
    /// Go reads any text as a valid value.
    any_text: bool,
}

/// Every operation of the document (paths sorted, as `serde_json` reads
/// objects).
fn routes() -> Vec<Route> {
    let doc: Value = serde_json::from_str(OPENAPI).unwrap();
    let mut routes = Vec::new();
    for (template, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            assert!(
                METHODS.contains(&method.to_ascii_uppercase().as_str()),
                "{template}: {method:?} is not a method (path-level keys: teach the sweep)"
            );
            let mut route = Route {
                method: method.to_ascii_uppercase(),
                template: template.clone(),
                path_params: Vec::new(),
                query_params: Vec::new(),
                body: op["requestBody"]["content"]
                    .as_object()
                    .and_then(|c| c.keys().next().cloned()),
                statuses: op["responses"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .filter_map(|s| s.parse().ok())
                    .collect(),
                open: op["security"].as_array().is_some_and(Vec::is_empty),
            };
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap();
                match p["in"].as_str().unwrap() {
                    "path" => route.path_params.push(name.to_string()),
                    "query" => route.query_params.push(QueryParam {
                        name: name.replace("{key}", "k"),
                        any_text: query_takes_any_text(name, p["schema"]["type"].as_str()),
                    }),
                    other => panic!("{route}: a parameter in {other}: teach the sweep"),
                }
            }
            routes.push(route);
        }
    }
    routes
}

/// The query parameters for which Go reads any text as a valid value;
/// every other one must refuse junk.
fn query_takes_any_text(name: &str, schema_type: Option<&str>) -> bool {
    match name {
        // Free text.
        "name" | "meta-{key}" | "search" => true,
        // Go compares with the exact text `true` (anything else is false),
        // except on `/add`, where it is a `strconv.ParseBool` boolean.
        "local" => schema_type != Some("boolean"),
        _ => false,
    }
}

/// A valid value of a path parameter.
fn valid_path_value(name: &str) -> &'static str {
    match name {
        "hash" | "path" => CID,
        "peer" => PEER,
        "keyType" => "ipfs",
        "name" => "freespace",
        other => panic!("no valid value for the path parameter {other:?}: teach the sweep"),
    }
}

/// Path parameters for which Go takes any text (a metric's name).
fn path_takes_any_text(name: &str) -> bool {
    name == "name"
}

/// The path of `route` with `junk` for the parameter `junk_for`, valid
/// values for the others.
fn path_of(route: &Route, junk_for: Option<(&str, &str)>) -> String {
    let mut path = route.template.clone();
    for p in &route.path_params {
        let value = match junk_for {
            Some((name, junk)) if name == p => junk,
            _ => valid_path_value(p),
        };
        path = path.replace(&format!("{{{p}}}"), value);
    }
    path
}

fn upload() -> Vec<u8> {
    format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\n\
         hello\r\n--{BOUNDARY}--\r\n"
    )
    .into_bytes()
}

fn multipart_type() -> String {
    format!("Content-Type: multipart/form-data; boundary={BOUNDARY}")
}

/// A valid body for `route`: its content type header and bytes.
fn valid_body(route: &Route) -> Option<(String, Vec<u8>)> {
    match route.body.as_deref()? {
        "multipart/form-data" => Some((multipart_type(), upload())),
        "application/json" if route.template == "/peers" => Some((
            "Content-Type: application/json".into(),
            format!("{{\"peer_id\":\"{PEER}\"}}").into_bytes(),
        )),
        other => panic!("{route}: no valid {other} body: teach the sweep"),
    }
}

#[derive(Debug, Clone)]
enum Body {
    Whole(Vec<u8>),
    /// `Content-Length: declared` and only `sent` sent.
    Declared {
        declared: usize,
        sent: Vec<u8>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A 4xx: Go refuses this input.
    Refused,
    /// A 400 or 413 before the body is read whole.
    TooLarge,
    /// A 4xx or the route's documented success (valid after all), or
    /// Go's 307 to the path without its trailing slash.
    Either,
    /// A 431, credentials or not: the head is longer than [`MAX_HEAD`].
    HeadTooLarge,
}

/// One hostile request.
#[derive(Debug, Clone)]
struct Case {
    what: String,
    method: String,
    target: String,
    headers: Vec<String>,
    body: Body,
    expect: Expect,
}

impl Case {
    /// `route` with valid path parameters and body.
    fn base(route: &Route, what: impl Into<String>, expect: Expect) -> Case {
        let (headers, body) =
            valid_body(route).map_or((Vec::new(), Vec::new()), |(h, b)| (vec![h], b));
        Case {
            what: what.into(),
            method: route.method.clone(),
            target: path_of(route, None),
            headers,
            body: Body::Whole(body),
            expect,
        }
    }
}

/// Junk for the path parameter `name`.
fn junk_segments(name: &str) -> Vec<(&'static str, String)> {
    let other_id = if valid_path_value(name) == CID {
        PEER
    } else {
        CID
    };
    vec![
        ("junk text", "abc".into()),
        ("another kind of ID", other_id.into()),
        ("empty", String::new()),
        ("10 KB long", "a".repeat(10 * 1024)),
        ("percent-encoded garbage", "%00%ff%fe%2F%25%zz".into()),
        ("..", "..".into()),
        ("encoded ..", "%2e%2e".into()),
    ]
}

/// Wrong-typed values for a query parameter named `p`: the query text.
fn junk_queries(p: &str) -> Vec<(&'static str, String, bool)> {
    // (what, query, refused when the parameter is strict)
    vec![
        ("abc", format!("{p}=abc"), true),
        ("negative", format!("{p}=-5"), true),
        ("huge", format!("{p}=99999999999999999999"), true),
        ("not UTF-8", format!("{p}=%ff%fe"), true),
        ("repeated, junk first", format!("{p}=abc&{p}=1"), true),
        ("repeated, empty first", format!("{p}=&{p}=abc"), false),
        ("empty", format!("{p}="), false),
        ("no value", p.to_string(), false),
    ]
}

/// Every hostile request for `route`.
fn cases(route: &Route) -> Vec<Case> {
    let mut cases = Vec::new();
    for p in &route.path_params {
        for (what, junk) in junk_segments(p) {
            let target = path_of(route, Some((p, &junk)));
            let expect = if target.len() > MAX_HEAD {
                Expect::HeadTooLarge
            } else if path_takes_any_text(p) || junk.is_empty() {
                Expect::Either
            } else {
                Expect::Refused
            };
            cases.push(Case {
                target,
                ..Case::base(route, format!("path {p}: {what}"), expect)
            });
        }
    }
    let path = path_of(route, None);
    for p in &route.query_params {
        for (what, query, refused) in junk_queries(&p.name) {
            let expect = if refused && !p.any_text {
                Expect::Refused
            } else {
                Expect::Either
            };
            cases.push(Case {
                target: format!("{path}?{query}"),
                ..Case::base(route, format!("query {}: {what}", p.name), expect)
            });
        }
    }
    match route.body.as_deref() {
        Some("application/json") => {
            for (what, body) in [
                ("invalid JSON", "{nope"),
                ("an array", "[1,2,3]"),
                ("a string", "\"peer\""),
                ("null", "null"),
                ("a number for a string", "{\"peer_id\":5}"),
                ("an empty object", "{}"),
                ("empty", ""),
            ] {
                cases.push(Case {
                    body: Body::Whole(body.into()),
                    ..Case::base(route, format!("body: {what}"), Expect::Refused)
                });
            }
            cases.push(Case {
                body: Body::Declared {
                    declared: HUGE_BODY,
                    sent: vec![b' '; JSON_BODY_LIMIT + 64 * 1024],
                },
                ..Case::base(route, "body: 20 MB", Expect::TooLarge)
            });
        }
        Some("multipart/form-data") => {
            for (what, content_type) in [
                ("no Content-Type", None),
                ("text/plain", Some("text/plain")),
                ("application/json", Some("application/json")),
                ("multipart without boundary", Some("multipart/form-data")),
                ("an empty boundary", Some("multipart/form-data; boundary=")),
                (
                    "another boundary",
                    Some("multipart/form-data; boundary=other"),
                ),
            ] {
                cases.push(Case {
                    headers: content_type
                        .map(|t| format!("Content-Type: {t}"))
                        .into_iter()
                        .collect(),
                    ..Case::base(route, format!("Content-Type: {what}"), Expect::Refused)
                });
            }
            for (what, body) in [("not multipart", b"{nope".to_vec()), ("empty", Vec::new())] {
                cases.push(Case {
                    body: Body::Whole(body),
                    ..Case::base(route, format!("body: {what}"), Expect::Refused)
                });
            }
            cases.push(Case {
                body: Body::Declared {
                    declared: HUGE_BODY,
                    sent: vec![b'a'; 4 * MAX_PREAMBLE_BYTES],
                },
                ..Case::base(route, "body: 20 MB, no boundary", Expect::TooLarge)
            });
        }
        Some(other) => panic!("{route}: no junk {other} bodies: teach the sweep"),
        None => cases.push(Case {
            body: Body::Whole(b"{\"junk\":[1,2]}".to_vec()),
            ..Case::base(route, "an unexpected body", Expect::Either)
        }),
    }
    cases
}

/// Sends `case` (with `auth`, a header line) on a fresh connection. An
/// error is a connection dropped or never answered.
async fn exchange(addr: SocketAddr, case: &Case, auth: Option<&str>) -> Result<Raw, String> {
    let mut headers = case.headers.clone();
    headers.extend(auth.map(str::to_string));
    let (method, target, body) = (case.method.clone(), case.target.clone(), case.body.clone());
    // The raw client panics on a short read: in a task, that is an error.
    tokio::spawn(async move {
        let mut conn = RawConn::connect(addr).await;
        let lines: Vec<&str> = headers.iter().map(String::as_str).collect();
        match body {
            Body::Whole(b) => conn.send(&method, &target, &lines, &b).await,
            Body::Declared { declared, sent } => {
                let mut head = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
                for l in lines {
                    head.push_str(l);
                    head.push_str("\r\n");
                }
                head.push_str(&format!("Content-Length: {declared}\r\n\r\n"));
                conn.send_raw(head.as_bytes()).await;
                conn.send_raw(&sent).await;
            }
        }
        tokio::time::timeout(Duration::from_secs(30), conn.response())
            .await
            .expect("an answer within 30 s")
    })
    .await
    .map_err(|e| format!("no answer: {e}"))
}

/// Why `raw` is not Go's error body for its status, if it isn't.
fn not_an_error_body(raw: &Raw) -> Option<String> {
    if raw.header("content-type") != Some("application/json") {
        return Some(format!("content-type {:?}", raw.header("content-type")));
    }
    let Ok(v) = serde_json::from_slice::<Value>(&raw.body) else {
        return Some("not JSON".into());
    };
    let ok = v["code"] == raw.status
        && v["message"].as_str().is_some_and(|m| !m.is_empty())
        && v.as_object().is_some_and(|o| o.len() == 2);
    (!ok).then(|| "not {\"code\",\"message\"}".into())
}

/// The figures of a sweep and what went wrong.
#[derive(Debug, Default)]
struct Tally {
    requests: usize,
    server_errors: usize,
    dropped: usize,
    /// Hostile requests with credentials: refused (4xx, but 431), refused
    /// for a head too long (431), answered as valid (2xx), redirected (Go's
    /// 307 on a trailing slash).
    refused: usize,
    head_too_long: usize,
    accepted: usize,
    redirected: usize,
    problems: Vec<String>,
}

impl Tally {
    fn problem(&mut self, route: &Route, case: &Case, raw: Option<&Raw>, why: impl fmt::Display) {
        let answer = raw.map_or(String::new(), |r| {
            let body: String = String::from_utf8_lossy(&r.body).chars().take(200).collect();
            format!(" -> {} {body}", r.status)
        });
        let target: String = case.target.chars().take(120).collect();
        self.problems.push(format!(
            "{route} [{}] {} {target}{answer}: {why}",
            case.what, case.method
        ));
    }

    /// Counts an exchange: the answer, unless it is a 5xx or none at all.
    fn answered<'a>(
        &mut self,
        route: &Route,
        case: &Case,
        answer: &'a Result<Raw, String>,
    ) -> Option<&'a Raw> {
        self.requests += 1;
        match answer {
            Ok(raw) if raw.status >= 500 => {
                self.server_errors += 1;
                self.problem(route, case, Some(raw), "a 5xx");
                None
            }
            Ok(raw) => Some(raw),
            Err(e) => {
                self.dropped += 1;
                self.problem(route, case, None, e);
                None
            }
        }
    }
}

async fn secured() -> TestServer {
    let cfg = RestConfig {
        basic_auth_credentials: Some(BTreeMap::from([(USER.0.to_string(), USER.1.to_string())])),
        // Every wrong credential here is deliberate: no lockout.
        max_failed_logins: 0,
        ..RestConfig::default()
    };
    TestServer::start_with(FakeCluster::golden(), cfg).await
}

/// No credentials, a wrong Basic password and a junk bearer token: Go's
/// 401s on `route` (its documented answer if it is open); a CORS preflight
/// is answered without credentials.
async fn check_credentials(addr: SocketAddr, route: &Route, tally: &mut Tally) {
    let refusals = [
        (None, "unauthorized: no auth provided"),
        (Some(basic(USER.0, "wrong")), "unauthorized: access denied"),
        (
            Some("Authorization: Bearer junk.junk.junk".to_string()),
            "unauthorized: invalid token",
        ),
    ];
    let case = Case::base(route, "credentials", Expect::Refused);
    for (auth, message) in &refusals {
        let answer = exchange(addr, &case, auth.as_deref()).await;
        let Some(raw) = tally.answered(route, &case, &answer) else {
            continue;
        };
        if route.open {
            if !route.statuses.contains(&raw.status) {
                tally.problem(route, &case, Some(raw), "an open route refused");
            }
            continue;
        }
        let body = format!("{{\"code\":401,\"message\":\"{message}\"}}\n");
        if raw.status != 401 || raw.text() != body {
            tally.problem(route, &case, Some(raw), format!("not a 401 {message:?}"));
        }
        if raw.header("www-authenticate").is_none() {
            tally.problem(route, &case, Some(raw), "no challenge");
        }
    }
    let preflight = Case {
        method: "OPTIONS".into(),
        headers: vec![
            "Origin: https://app.example".into(),
            format!("Access-Control-Request-Method: {}", route.method),
        ],
        body: Body::Whole(Vec::new()),
        ..case
    };
    let answer = exchange(addr, &preflight, None).await;
    if let Some(raw) = tally.answered(route, &preflight, &answer)
        && raw.status != 204
    {
        tally.problem(route, &preflight, Some(raw), "a preflight not answered");
    }
}

/// `case` without credentials (a 401 first, or the 431 of a head too
/// long), then with them.
async fn check_hostile(s: &TestServer, route: &Route, case: &Case, tally: &mut Tally) {
    if !route.open {
        let answer = exchange(s.addr, case, None).await;
        if let Some(raw) = tally.answered(route, case, &answer) {
            let refused = if case.expect == Expect::HeadTooLarge {
                raw.status == 431
            } else {
                raw.status == 401 && raw.text() == NO_AUTH_401
            };
            if !refused {
                tally.problem(route, case, Some(raw), "not refused without credentials");
            }
        }
    }
    let calls = s.calls().len();
    let answer = exchange(s.addr, case, Some(&basic(USER.0, USER.1))).await;
    let Some(raw) = tally.answered(route, case, &answer) else {
        return;
    };
    let path = case.target.split('?').next().unwrap();
    match raw.status {
        431 => tally.head_too_long += 1,
        400..=499 => tally.refused += 1,
        307 => tally.redirected += 1,
        _ => tally.accepted += 1,
    }
    let refused = (400..500).contains(&raw.status);
    if refused
        && case.expect != Expect::HeadTooLarge
        && let Some(why) = not_an_error_body(raw)
    {
        tally.problem(
            route,
            case,
            Some(raw),
            format!("not Go's error body: {why}"),
        );
    }
    let wrong = match case.expect {
        Expect::HeadTooLarge => (raw.status != 431).then_some("not a 431"),
        Expect::Refused => (!refused).then_some("accepted what Go refuses"),
        Expect::TooLarge => (raw.status != 400 && raw.status != 413).then_some("not a 400 or 413"),
        // Go's strict-slash redirect, or a documented answer.
        Expect::Either if raw.status == 307 => (raw.header("location") != path.strip_suffix('/'))
            .then_some("not a redirect to the path without its slash"),
        Expect::Either => {
            (!refused && !route.statuses.contains(&raw.status)).then_some("an undocumented answer")
        }
    };
    if let Some(why) = wrong {
        tally.problem(route, case, Some(raw), why);
    }
    if case.expect != Expect::Either && s.calls().len() != calls {
        tally.problem(route, case, Some(raw), "refused after calling the service");
    }
}

/// Every route but `GET /health` refuses a request without credentials,
/// with a wrong Basic password and with a junk bearer token (Go's 401
/// bodies) before anything reaches the service. Then every route answers
/// junk path parameters, wrong-typed query values and junk, wrongly typed
/// or 20 MB bodies with a 4xx carrying Go's error body (or its documented
/// success when the input is valid after all), never a 5xx or a dropped
/// connection; what Go refuses never reaches the service, and without
/// credentials each is a 401.
#[tokio::test]
async fn every_route_refuses_bad_credentials_and_hostile_input() {
    let s = secured().await;
    let routes = routes();
    let mut tally = Tally::default();
    for route in &routes {
        check_credentials(s.addr, route, &mut tally).await;
    }
    assert!(s.calls().is_empty(), "reached the service: {:?}", s.calls());
    let guarded = routes.iter().filter(|r| !r.open).count();

    let mut hostile = 0;
    for route in &routes {
        for case in cases(route) {
            hostile += 1;
            check_hostile(&s, route, &case, &mut tally).await;
        }
    }

    println!(
        "sweep: {} routes, {} requests: {} 5xx, {} dropped or panicked; \
         {guarded} routes (all but GET /health) refused 3 bad credentials; \
         {hostile} hostile requests, also sent without credentials (401): \
         {} refused with Go's error body, {} with a 431 (a head past {MAX_HEAD} bytes, \
         as Go), {} valid after all, {} redirected (trailing slash); {} other problems",
        routes.len(),
        tally.requests,
        tally.server_errors,
        tally.dropped,
        tally.refused,
        tally.head_too_long,
        tally.accepted,
        tally.redirected,
        tally.problems.len() - tally.server_errors - tally.dropped,
    );
    assert!(
        tally.problems.is_empty(),
        "{} problems:\n{}",
        tally.problems.len(),
        tally.problems.join("\n")
    );
    s.stop().await;
}

/// The paths of the router's `.route("...", ...)` calls.
fn router_paths() -> Vec<&'static str> {
    let paths: Vec<&str> = ROUTER_SOURCE
        .split(".route(")
        .skip(1)
        .map(|call| {
            let literal = call.trim_start().strip_prefix('"').expect("a literal path");
            &literal[..literal.find('"').unwrap()]
        })
        .collect();
    assert!(
        paths.len() > 10 && paths.iter().all(|p| p.starts_with('/')),
        "{paths:?}"
    );
    paths
}

/// Whether the router's `path` (axum syntax: `{name}` a segment, `{*rest}`
/// one or more) serves the document's `template`.
fn serves(path: &str, template: &str) -> bool {
    let (p, t): (Vec<&str>, Vec<&str>) = (path.split('/').collect(), template.split('/').collect());
    for (i, segment) in p.iter().enumerate() {
        if segment.starts_with("{*") {
            return t.len() > i;
        }
        match t.get(i) {
            Some(s) if segment.starts_with('{') || segment == s => {}
            _ => return false,
        }
    }
    p.len() == t.len()
}

/// The document lists what the router serves: every `.route` path of the
/// router serves a documented path and every documented path is served;
/// every documented method reaches a handler (not a 405, not the
/// fallback's 404); every other method, HEAD and OPTIONS included, is a
/// 4xx, as Go's router answers.
#[tokio::test]
async fn the_openapi_document_and_the_router_agree() {
    let routes = routes();
    let paths = router_paths();
    for path in &paths {
        assert!(
            routes.iter().any(|r| serves(path, &r.template)),
            "the router serves {path}, the document lists nothing there"
        );
    }
    for r in &routes {
        assert!(
            paths.iter().any(|p| serves(p, &r.template)),
            "{r} is documented, the router has no path for it"
        );
    }

    let s = TestServer::start(FakeCluster::golden()).await;
    let mut probes = 0;
    let mut templates: Vec<&Route> = Vec::new();
    for r in &routes {
        if !templates.iter().any(|t| t.template == r.template) {
            templates.push(r);
        }
    }
    for route in templates {
        for method in METHODS {
            let documented = routes
                .iter()
                .find(|r| r.template == route.template && r.method == method);
            let case = Case {
                method: method.into(),
                ..Case::base(documented.unwrap_or(route), "probe", Expect::Either)
            };
            let raw = exchange(s.addr, &case, None).await.unwrap();
            probes += 1;
            let at = format!("{method} {} -> {} {}", case.target, raw.status, raw.text());
            // `POST /peers` is a documented 501.
            let answer_documented = documented.is_some_and(|r| r.statuses.contains(&raw.status));
            assert!(raw.status < 500 || answer_documented, "{at}");
            if documented.is_some() {
                let fallback = raw.status == 404 && raw.text().contains("\"not found\"");
                assert!(raw.status != 405 && !fallback, "not routed: {at}");
            } else {
                assert!((400..500).contains(&raw.status), "served: {at}");
            }
        }
    }
    println!(
        "sweep: the router's {} paths and the document's {} operations agree ({probes} probes)",
        paths.len(),
        routes.len()
    );
    s.stop().await;
}
