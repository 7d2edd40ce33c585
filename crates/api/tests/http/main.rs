//! The REST API over real HTTP: a fake `ClusterApi` behind the real server
//! on 127.0.0.1:0 (and on a unix socket), driven with a raw HTTP/1.1 client
//! (bytes, chunks, trailers) and with `api::Client`.

mod add;
mod auth;
mod bad_input;
mod client;
mod dashboard;
mod pinsvc;
mod routes;
mod rules;
mod streaming;
mod support;
mod sweep;
mod unix;
